//! Tests over recorded real packuments (`shared/fixtures/registry/npm/*.full.json.gz`).

use super::*;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/registry/npm"
);
const BASE: &str = "http://127.0.0.1:8080";

pub(crate) fn load(path: &PathBuf) -> Vec<u8> {
    let gz = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub(crate) fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("fixtures missing at {DIR}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".full.json.gz"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the recorded npm fixtures in {DIR}"
    );
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, load(p))
        })
        .collect()
}

/// Highest stable version by node-semver, independent of the code under test.
fn expected_latest(kept: &[&str]) -> String {
    let parse = |v: &str| nodejs_semver::Version::parse(v).ok();
    let stable = kept
        .iter()
        .filter_map(|v| parse(v).map(|p| (p, *v)))
        .filter(|(p, _)| !p.is_prerelease())
        .max_by(|a, b| a.0.cmp(&b.0));
    stable.unwrap().1.to_string()
}

fn install_script(v: &Value) -> bool {
    let s = &v["scripts"];
    ["preinstall", "install", "postinstall"].iter().any(|k| {
        s.get(k)
            .is_some_and(|x| x.as_str().is_some_and(|x| !x.is_empty()))
    }) || v["gypfile"] == Value::Bool(true)
}

#[test]
fn every_fixture_filters_correctly() {
    for (file, bytes) in fixtures() {
        let upstream: Value = serde_json::from_slice(&bytes).unwrap();
        let doc = Packument::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let name = upstream["name"].as_str().unwrap();
        assert_eq!(doc.name(), Some(name));
        let up_versions = upstream["versions"].as_object().unwrap();
        let order: Vec<&str> = doc.versions().collect();
        assert_eq!(order.len(), up_versions.len(), "{file}");
        // document order: as an ordered read of the raw `versions` object
        let crate::npm::raw::RawMap(top) = serde_json::from_slice(&bytes).unwrap();
        let versions_raw = top.iter().find(|(k, _)| k == "versions").unwrap().1;
        let crate::npm::raw::RawMap(raw_versions) = serde_json::from_str(versions_raw).unwrap();
        assert!(
            order.iter().zip(&raw_versions).all(|(a, (b, _))| a == b),
            "{file}: document order"
        );
        let facts = doc.facts().unwrap();
        assert_eq!(facts.len(), order.len());
        for f in &facts {
            let uv = &up_versions[&f.version];
            assert_eq!(
                f.published.as_deref(),
                upstream["time"][&f.version].as_str(),
                "{file} {}",
                f.version
            );
            assert_eq!(f.integrity.as_deref(), uv["dist"]["integrity"].as_str());
            assert_eq!(f.tarball_url.as_deref(), uv["dist"]["tarball"].as_str());
            assert_eq!(f.has_install_script, Some(install_script(uv)));
            let repo = |r: &Value| {
                r.as_str()
                    .or_else(|| r["url"].as_str())
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            let want_repo = repo(&uv["repository"]).or_else(|| repo(&upstream["repository"]));
            assert_eq!(f.repository, want_repo, "{file} {}: repository", f.version);
            assert_eq!(
                f.deprecated,
                uv["deprecated"].as_str().is_some_and(|d| !d.is_empty())
            );
        }

        // Drop every third version and the current latest.
        let latest = upstream["dist-tags"]["latest"].as_str().unwrap();
        let removed: HashSet<String> = order
            .iter()
            .enumerate()
            .filter(|(i, v)| i % 3 == 2 || **v == latest)
            .map(|(_, v)| v.to_string())
            .collect();
        let kept: Vec<&str> = order
            .iter()
            .copied()
            .filter(|v| !removed.contains(*v))
            .collect();

        for representation in [Representation::Full, Representation::Abbreviated] {
            let opts = RenderOptions {
                removed: &removed,
                tarball_base: BASE,
                representation,
            };
            let out = doc.render(&opts).unwrap();
            assert_eq!(out.removed, removed.len(), "{file}");
            assert_eq!(out.kept, kept.len());
            let v: Value = serde_json::from_slice(&out.bytes)
                .unwrap_or_else(|e| panic!("{file} {representation:?}: invalid JSON: {e}"));
            let vs = v["versions"].as_object().unwrap();
            assert_eq!(vs.len(), kept.len());
            assert_eq!(
                Packument::parse(&out.bytes)
                    .unwrap()
                    .versions()
                    .collect::<Vec<_>>(),
                kept
            );
            // dist-tags: latest retargeted by semver; nothing points at a missing version
            assert_eq!(v["dist-tags"]["latest"], expected_latest(&kept), "{file}");
            for (tag, target) in v["dist-tags"].as_object().unwrap() {
                assert!(vs.contains_key(target.as_str().unwrap()), "{file}: {tag}");
            }
            for (ver, obj) in vs {
                let up = &up_versions[ver];
                let url = tarball_url(BASE, name, ver);
                assert_eq!(obj["dist"]["tarball"], Value::String(url.clone()));
                match parse_path(url.strip_prefix(BASE).unwrap()) {
                    Ok(NpmRoute::Tarball {
                        name: n, version, ..
                    }) => assert_eq!((n.as_str(), version.as_str()), (name, ver.as_str())),
                    other => panic!("{file}: {url} routes to {other:?}"),
                }
                for k in [
                    "integrity",
                    "shasum",
                    "signatures",
                    "attestations",
                    "npm-signature",
                ] {
                    assert_eq!(obj["dist"].get(k), up["dist"].get(k), "{file} {ver} {k}");
                }
            }
            match representation {
                Representation::Full => {
                    let time = v["time"].as_object().unwrap();
                    for r in &removed {
                        assert!(!time.contains_key(r), "{file}: time keeps removed {r}");
                    }
                    for k in &kept {
                        assert_eq!(time[*k], upstream["time"][*k]);
                    }
                    // every kept version object is upstream's, byte for byte, but the tarball
                    let out_doc = Packument::parse(&out.bytes).unwrap();
                    for k in &kept {
                        let up_raw = doc.version_raw(k).unwrap().get();
                        let down_raw = out_doc.version_raw(k).unwrap().get();
                        let old =
                            serde_json::to_string(&up_versions[*k]["dist"]["tarball"]).unwrap();
                        let new = serde_json::to_string(&tarball_url(BASE, name, k)).unwrap();
                        assert_eq!(down_raw.replacen(&new, &old, 1), up_raw, "{file} {k}");
                    }
                    // top-level key order
                    let keys = |b: &[u8]| {
                        let crate::npm::raw::RawMap(m) = serde_json::from_slice(b).unwrap();
                        m.into_iter()
                            .map(|(k, _)| k.into_owned())
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(keys(&out.bytes), keys(&bytes));
                    // idempotent
                    let again = out_doc.render(&opts).unwrap();
                    assert!(again.bytes == out.bytes, "{file}: not idempotent");
                    // the single-version endpoint agrees
                    let one = extract_version(&out.bytes, "latest").unwrap().unwrap();
                    let direct = doc.render_version(&opts, "latest").unwrap().unwrap();
                    assert_eq!(one, direct);
                    assert_eq!(doc.render_version(&opts, latest).unwrap(), None);
                }
                Representation::Abbreviated => {
                    assert!(v.get("time").is_none() && v.get("readme").is_none());
                    for (ver, obj) in vs {
                        for k in obj.as_object().unwrap().keys() {
                            assert!(
                                CORGI_VERSION_FIELDS.contains(&k.as_str())
                                    || k == "hasInstallScript",
                                "{file} {ver}: {k}"
                            );
                        }
                        assert_eq!(
                            obj.get("hasInstallScript").is_some(),
                            install_script(&up_versions[ver]),
                            "{file} {ver}"
                        );
                        assert_eq!(obj["dependencies"], up_versions[ver]["dependencies"]);
                    }
                    // fixtures carry no time.modified: none may be invented
                    assert_eq!(
                        v.get("modified"),
                        upstream["time"].get("modified"),
                        "{file}"
                    );
                    assert!(out.bytes.len() < bytes.len());
                }
            }
        }
    }
}

#[test]
fn next_fixture_details() {
    let bytes = load(&PathBuf::from(format!("{DIR}/next.full.json.gz")));
    let doc = Packument::parse(&bytes).unwrap();
    assert_eq!(doc.version_count(), 2627);
    assert_eq!(doc.dist_tag("latest"), Some("16.4.6"));
    let removed: HashSet<String> = ["16.4.6", "16.4.5"].iter().map(|s| s.to_string()).collect();
    let out = doc
        .render(&RenderOptions {
            removed: &removed,
            tarball_base: BASE,
            representation: Representation::Full,
        })
        .unwrap();
    assert_eq!(out.removed, 2);
    let latest = &out.dist_tags[0];
    assert_eq!(latest.0, "latest");
    // the highest stable remaining, never a canary
    assert_eq!(latest.1, "16.4.4");
    let text = std::str::from_utf8(&out.bytes).unwrap();
    assert!(!text.contains("\"16.4.6\""));
    assert!(
        !text.contains("registry.example/next/-/"),
        "every tarball rewritten"
    );
}

#[test]
fn scoped_fixture_urls() {
    let bytes = load(&PathBuf::from(format!("{DIR}/types__node.full.json.gz")));
    let doc = Packument::parse(&bytes).unwrap();
    let out = doc
        .render(&RenderOptions {
            removed: &HashSet::new(),
            tarball_base: "http://proxy:1/",
            representation: Representation::Abbreviated,
        })
        .unwrap();
    let v: Value = serde_json::from_slice(&out.bytes).unwrap();
    assert_eq!(
        v["versions"]["26.6.7"]["dist"]["tarball"],
        "http://proxy:1/@types/node/-/node-26.6.7.tgz"
    );
    assert_eq!(out.dist_tags, vec![("latest".into(), "26.6.7".into())]);
}

/// `cargo test -p pkggate-formats --release -- --ignored bench_next --nocapture`
#[test]
#[ignore]
fn bench_next() {
    let bytes = load(&PathBuf::from(format!("{DIR}/next.full.json.gz")));
    let doc = Packument::parse(&bytes).unwrap();
    let removed: HashSet<String> = doc.versions().step_by(2).map(str::to_string).collect();
    drop(doc);
    for representation in [Representation::Full, Representation::Abbreviated] {
        let mut best = std::time::Duration::MAX;
        for _ in 0..10 {
            let t = std::time::Instant::now();
            let doc = Packument::parse(&bytes).unwrap();
            let out = doc
                .render(&RenderOptions {
                    removed: &removed,
                    tarball_base: BASE,
                    representation,
                })
                .unwrap();
            std::hint::black_box(&out.bytes);
            best = best.min(t.elapsed());
        }
        println!(
            "next ({} bytes) parse+render {representation:?}: best {best:?}",
            bytes.len()
        );
    }
    let mut phases = [std::time::Duration::MAX; 3];
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let doc = Packument::parse(&bytes).unwrap();
        let t1 = t.elapsed();
        let facts = doc.facts().unwrap();
        let t2 = t.elapsed();
        let out = doc
            .render(&RenderOptions {
                removed: &removed,
                tarball_base: BASE,
                representation: Representation::Full,
            })
            .unwrap();
        let t3 = t.elapsed();
        std::hint::black_box((&facts, &out.bytes));
        phases[0] = phases[0].min(t1);
        phases[1] = phases[1].min(t2 - t1);
        phases[2] = phases[2].min(t3 - t2);
    }
    println!(
        "phases (best of 10): parse {:?}, facts {:?}, render full {:?}",
        phases[0], phases[1], phases[2]
    );
    let mut scan_best = [std::time::Duration::MAX; 2];
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let scan = PackumentScanner::scan(&bytes);
        let t1 = t.elapsed();
        let doc = Packument::parse_scanned(&bytes, scan.as_ref()).unwrap();
        let t2 = t.elapsed();
        std::hint::black_box(&doc);
        scan_best[0] = scan_best[0].min(t1);
        scan_best[1] = scan_best[1].min(t2 - t1);
    }
    println!(
        "scan (while the document arrives, in the app) {:?}, then parse_scanned {:?}",
        scan_best[0], scan_best[1]
    );
    let t = std::time::Instant::now();
    let facts = facts_only(&bytes).unwrap();
    println!(
        "facts_only: {:?} ({} versions)",
        t.elapsed(),
        facts.versions.len()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmHWM")) {
            println!("{line} (includes the decoded input and test harness)");
        }
    }
}

/// One cold pass over `next` as the app makes it (scan, read, facts, full render), for a
/// profiler: `valgrind --tool=callgrind <test binary> --ignored profile_next_once`.
#[test]
#[ignore]
fn profile_next_once() {
    let bytes = load(&PathBuf::from(format!("{DIR}/next.full.json.gz")));
    let scan = PackumentScanner::scan(&bytes);
    let doc = Packument::parse_scanned(&bytes, scan.as_ref()).unwrap();
    let facts = doc.facts().unwrap();
    let removed: HashSet<String> = doc.versions().step_by(8).map(str::to_string).collect();
    let out = doc
        .render(&RenderOptions {
            removed: &removed,
            tarball_base: BASE,
            representation: Representation::Full,
        })
        .unwrap();
    std::hint::black_box((&facts, &out.bytes));
}
