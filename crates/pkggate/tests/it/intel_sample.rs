//! The intelligence table over the real OSV samples: every schema variation of
//! `../shared/osv/README.md`, looked up through the store as the gates do.

use crate::support::*;
use pkggate::intel::sync::SyncOutcome;
use pkggate_formats::Ecosystem::{self, CratesIo, Npm, PyPI};

async fn loaded() -> TempMirror {
    let m = TempMirror::new();
    for (eco, path) in [
        (Npm, osv("npm", "sample.zip")),
        (PyPI, osv("PyPI", "sample.zip")),
        (CratesIo, osv("crates.io", "all.zip")),
    ] {
        let out = m.sync(eco, path.to_str().unwrap()).await.unwrap();
        assert!(matches!(out, SyncOutcome::Replaced(..)), "{eco}: {out:?}");
    }
    m
}

fn ids(m: &TempMirror, eco: Ecosystem, name: &str, version: &str) -> Vec<String> {
    let single: Vec<String> = m
        .store
        .lookup_version(eco, name, version)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    // The whole-document lookup must agree with the single-version one.
    let whole = m.store.lookup_package(eco, name, &[version]).unwrap();
    let mut from_whole: Vec<String> = whole.of(0).map(|f| f.id.clone()).collect();
    let mut s = single.clone();
    s.sort();
    from_whole.sort();
    assert_eq!(
        s, from_whole,
        "{eco} {name}@{version}: single and whole-document lookups disagree"
    );
    single
}

#[tokio::test]
async fn sample_table() {
    let m = loaded().await;
    // (ecosystem, name as a client asks, version, advisory, affected?)
    let table: &[(Ecosystem, &str, &str, &str, bool)] = &[
        // catch-all range plus a precise range in the same entry
        (Npm, "@ctrl/tinycolor", "1.0.0", "MAL-2025-47141", true),
        (Npm, "@ctrl/tinycolor", "4.1.2", "MAL-2025-47141", true),
        // `fixed` is exclusive
        (Npm, "fsevents", "1.0.0", "MAL-2023-462", true),
        (Npm, "fsevents", "1.2.10", "MAL-2023-462", true),
        (Npm, "fsevents", "1.2.11", "MAL-2023-462", false),
        (Npm, "fsevents", "0.9.0", "MAL-2023-462", false),
        // `last_affected` is inclusive
        (Npm, "@ledgerhq/connect-kit", "1.1.7", "MAL-2023-8697", true),
        (
            Npm,
            "@ledgerhq/connect-kit",
            "1.1.8",
            "MAL-2023-8697",
            false,
        ),
        (
            Npm,
            "@ledgerhq/connect-kit",
            "1.1.4",
            "MAL-2023-8697",
            false,
        ),
        // a versions list with an introduced-0 range: every version
        (Npm, "com.unity.assetgraph", "1.2.3", "MAL-2024-11925", true),
        // withdrawn records affect nothing
        (Npm, "drata", "1.0.0", "MAL-2024-1398", false),
        (Npm, "pwn", "1.0.14", "MAL-2024-2904", false),
        // PyPI names in PEP 503 normal form on both sides; versions in PEP 440
        (PyPI, "Nasrtox", "8.0", "MAL-2024-1546", true),
        (PyPI, "nasrtox", "8.0.0", "MAL-2024-1546", true),
        (PyPI, "NASRTOX", "8.1", "MAL-2024-1546", false),
        (PyPI, "jw-util", "2.2", "PYSEC-2020-341", true),
        (PyPI, "JW_Util", "1.0a", "PYSEC-2020-341", true),
        (PyPI, "jw.util", "2.3", "PYSEC-2020-341", false),
        // multi-interval ranges: every interval counts
        (PyPI, "apache-airflow", "1.9.0", "PYSEC-2021-4", true),
        (PyPI, "apache-airflow", "1.10.15", "PYSEC-2021-4", false),
        (PyPI, "apache-airflow", "2.0.1", "PYSEC-2021-4", true),
        (PyPI, "apache-airflow", "2.0.2", "PYSEC-2021-4", false),
        // non-semver PyPI versions (`1.0`, rc bounds)
        (PyPI, "putyourgrabbernamehere", "1.0", "MAL-2024-5577", true),
        (
            PyPI,
            "putyourgrabbernamehere",
            "1.0.0",
            "MAL-2024-5577",
            true,
        ),
        (
            PyPI,
            "putyourgrabbernamehere",
            "1.0.1",
            "MAL-2024-5577",
            false,
        ),
        (PyPI, "tensorflow-cpu", "2.1.0", "PYSEC-2021-461", true),
        (PyPI, "tensorflow-cpu", "2.2.0rc0", "PYSEC-2021-461", false),
        (PyPI, "tensorflow-cpu", "2.2.0", "PYSEC-2021-461", true),
        (PyPI, "tensorflow-cpu", "2.3.0rc1", "PYSEC-2021-461", false),
        // withdrawn PyPI vulnerability
        (PyPI, "ansible", "1.0", "PYSEC-2020-221", false),
        // crates.io: `-` and `_` are one name; prerelease bounds (`0.0.0-0`)
        (
            CratesIo,
            "remove_dir_all",
            "0.7.0",
            "GHSA-mc8h-8q98-g5hr",
            true,
        ),
        (
            CratesIo,
            "remove-dir-all",
            "0.7.0",
            "GHSA-mc8h-8q98-g5hr",
            true,
        ),
        (
            CratesIo,
            "Remove_Dir_All",
            "0.8.0",
            "GHSA-mc8h-8q98-g5hr",
            false,
        ),
        (
            CratesIo,
            "tree-sitter-pkl",
            "0.1.0-alpha.1",
            "RUSTSEC-2025-0156",
            true,
        ),
        (CratesIo, "wasmtime", "4.0.0", "RUSTSEC-2023-0090", true),
        (CratesIo, "wasmtime", "4.0.1", "RUSTSEC-2023-0090", false),
        (CratesIo, "wasmtime", "5.0.0", "RUSTSEC-2023-0090", true),
        (CratesIo, "wasmtime", "5.0.1", "RUSTSEC-2023-0090", false),
        (CratesIo, "rustdecimal", "1.23.1", "MAL-2022-1", true),
        (CratesIo, "humantime", "2.1.0", "RUSTSEC-2025-0014", false),
    ];
    let mut failures = Vec::new();
    for (eco, name, version, id, want) in table {
        let got = ids(&m, *eco, name, version);
        if got.iter().any(|g| g == id) != *want {
            failures.push(format!(
                "{eco} {name}@{version}: expected {id} {}, got {got:?}",
                if *want { "present" } else { "absent" }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn severity_and_kind_survive_storage() {
    let m = loaded().await;
    let f = m
        .store
        .lookup_version(CratesIo, "wasmtime", "4.0.0")
        .unwrap();
    let adv = f
        .iter()
        .find(|f| f.id == "RUSTSEC-2023-0090")
        .expect("RUSTSEC-2023-0090");
    assert_eq!(adv.kind.as_str(), "vulnerability");
    assert_eq!(adv.score, Some(9.9));
    let mal = m.store.lookup_version(Npm, "fsevents", "1.2.10").unwrap();
    assert_eq!(mal[0].kind.as_str(), "malicious");
    let states = m.store.states();
    let npm = states.iter().find(|s| s.ecosystem == Npm).unwrap();
    assert!(
        npm.loaded() && npm.records > 150 && npm.withdrawn >= 5,
        "{npm:?}"
    );
    assert!(npm.revision.as_deref().is_some_and(|r| r.len() == 64));
}

#[tokio::test]
async fn whole_document_lookup_is_one_call_for_every_version() {
    let m = loaded().await;
    let versions: Vec<String> = (0..3000)
        .map(|i| format!("{}.{}.{}", i / 100, (i / 10) % 10, i % 10))
        .collect();
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let found = m.store.lookup_package(Npm, "fsevents", &refs).unwrap();
    let affected: Vec<&str> = (0..refs.len())
        .filter(|&i| !found.per_version[i].is_empty())
        .map(|i| refs[i])
        .collect();
    // 1.0.0 ..= 1.2.10 of the generated versions
    assert_eq!(affected.first(), Some(&"1.0.0"));
    assert_eq!(affected.last(), Some(&"1.2.9"));
    assert_eq!(affected.len(), 30);
    assert!(!found.covers_all_versions);
    let all = m
        .store
        .lookup_package(Npm, "@ctrl/tinycolor", &refs)
        .unwrap();
    assert!(all.covers_all_versions);
    assert!(all.per_version.iter().all(|v| v.len() == 1));
}

/// A directory of OSV JSON files, read recursively; `react`'s withdrawn record from the full
/// bundle never blocks it.
#[tokio::test]
async fn directory_source_and_withdrawn_react() {
    let all = std::fs::File::open(osv("npm", "all.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(all).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("nested/deeper")).unwrap();
    for (i, id) in ["MAL-2024-2929", "MAL-2023-462", "MAL-2024-523"]
        .iter()
        .enumerate()
    {
        let mut e = zip.by_name(&format!("{id}.json")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        let sub = if i == 0 { "nested/deeper" } else { "." };
        std::fs::write(dir.path().join(sub).join(format!("{id}.json")), s).unwrap();
    }
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    std::fs::write(dir.path().join("README.txt"), "ignored").unwrap();
    let m = TempMirror::new();
    let out = m.sync(Npm, dir.path().to_str().unwrap()).await.unwrap();
    let SyncOutcome::Replaced(stats, _) = out else {
        panic!("{out:?}")
    };
    assert_eq!((stats.records, stats.skipped, stats.withdrawn), (3, 1, 1));
    for v in ["1.0.0", "35.0.0", "18.2.0"] {
        assert!(
            ids(&m, Npm, "react", v).is_empty(),
            "react@{v} must never be blocked"
        );
    }
    assert_eq!(ids(&m, Npm, "wlwz-2312-3902", "1.0.0"), ["MAL-2024-523"]);
    // Same directory again: same revision, nothing rewritten.
    assert!(matches!(
        m.sync(Npm, dir.path().to_str().unwrap()).await.unwrap(),
        SyncOutcome::Unchanged(_)
    ));
    // file:// URL of the same directory works too.
    let url = format!("file://{}", dir.path().display());
    assert!(m.sync(Npm, &url).await.is_ok());
}
