use super::*;
use proptest::prelude::*;
use serde_json::Value;

pub(crate) const BASE: &str = "http://127.0.0.1:8080";

fn set(vs: &[&str]) -> HashSet<String> {
    vs.iter().map(|s| s.to_string()).collect()
}

fn render(doc: &str, removed: &[&str], repr: Representation) -> Result<Rendered, NpmDocError> {
    let removed = set(removed);
    Packument::parse(doc.as_bytes())?.render(&RenderOptions {
        removed: &removed,
        tarball_base: BASE,
        representation: repr,
    })
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "invalid JSON output ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Top-level keys of a document, in order.
pub(crate) fn top_keys(doc: &[u8]) -> Vec<String> {
    let crate::npm::raw::RawMap(m) = serde_json::from_slice(doc).unwrap();
    m.into_iter().map(|(k, _)| k.into_owned()).collect()
}

/// The raw text of `versions[v]` inside a document.
fn raw_version(doc: &[u8], v: &str) -> Option<String> {
    Packument::parse(doc)
        .unwrap()
        .version_raw(v)
        .map(|r| r.get().to_string())
}

pub(crate) const FULL: &str = r#"{
  "_id": "demo",
  "_rev": "12-abc",
  "name": "demo",
  "dist-tags": {"latest": "10.0.0", "next": "11.0.0-rc.1", "beta": "2.0.0-beta.1", "old": "1.0.0"},
  "versions": {
    "1.0.0": {"name": "demo", "version": "1.0.0", "scripts": {"test": "tap", "postinstall": "node x.js"},
              "repository": {"type": "git", "url": "git+https://github.com/o/demo.git"},
              "dist": {"integrity": "sha512-AAA=", "shasum": "aaa", "tarball": "https://registry.example/demo/-/demo-1.0.0.tgz",
                       "signatures": [{"keyid": "SHA256:x", "sig": "MEUC"}]}},
    "2.0.0-beta.1": {"name": "demo", "version": "2.0.0-beta.1", "gypfile": true, "custom": {"keep": [1, 2.50, "x"]},
              "dist": {"tarball": "https:\/\/registry.example\/demo\/-\/demo-2.0.0-beta.1.tgz", "integrity": "sha512-BBB="}},
    "9.0.0": {"name": "demo", "version": "9.0.0", "deprecated": "use 10", "readme": "long",
              "dependencies": {"a": "^1"}, "license": "MIT",
              "dist": {"tarball": "https://registry.example/demo/-/demo-9.0.0.tgz", "integrity": "sha512-CCC=", "shasum": "ccc",
                       "attestations": {"url": "https://registry.example/-/npm/v1/attestations/demo@9.0.0", "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}}}},
    "10.0.0": {"name": "demo", "version": "10.0.0", "scripts": {"install": "node-gyp rebuild"}, "repository": "github:o/demo10",
              "dist": {"tarball": "https://registry.example/demo/-/demo-10.0.0.tgz", "integrity": "sha512-DDD="}},
    "11.0.0-rc.1": {"name": "demo", "version": "11.0.0-rc.1", "scripts": {"preinstall": ""},
              "dist": {"tarball": "https://registry.example/demo/-/demo-11.0.0-rc.1.tgz", "integrity": "sha512-EEE="}}
  },
  "time": {"created": "2015-03-24T00:12:24.039Z", "1.0.0": "2015-03-24T00:12:24.039Z", "2.0.0-beta.1": "2016-01-01T00:00:00Z",
           "9.0.0": "2020-01-01T00:00:00.000000+00:00", "10.0.0": "2021-01-01T00:00:00.000Z", "11.0.0-rc.1": "2022-01-01T00:00:00.000Z",
           "modified": "2022-01-02T00:00:00.000Z", "0.0.1": "2014-01-01T00:00:00.000Z"},
  "repository": {"type": "git", "url": "https://github.com/o/top.git"},
  "readme": "demo readme",
  "unknownTop": {"x": [true, null, 1e3]}
}"#;

pub(crate) const CORGI: &str = r#"{"name":"@s/c","dist-tags":{"latest":"1.1.0"},"modified":"2024-05-01T00:00:00.000Z","versions":{
  "1.0.0":{"name":"@s/c","version":"1.0.0","dist":{"tarball":"https://r/@s/c/-/c-1.0.0.tgz","integrity":"sha512-X"},"hasInstallScript":true},
  "1.1.0":{"name":"@s/c","version":"1.1.0","dist":{"tarball":"https://r/@s/c/-/c-1.1.0.tgz","integrity":"sha512-Y"},"newCorgiField":7}}}"#;

#[test]
fn parses_full_document_and_facts() {
    let doc = Packument::parse(FULL.as_bytes()).unwrap();
    assert_eq!(doc.name(), Some("demo"));
    assert!(!doc.is_abbreviated());
    assert_eq!(
        doc.versions().collect::<Vec<_>>(),
        ["1.0.0", "2.0.0-beta.1", "9.0.0", "10.0.0", "11.0.0-rc.1"]
    );
    assert_eq!(doc.dist_tag("latest"), Some("10.0.0"));
    assert_eq!(doc.dist_tags().count(), 4);
    assert_eq!(doc.modified().as_deref(), Some("2022-01-02T00:00:00.000Z"));
    assert_eq!(doc.created().as_deref(), Some("2015-03-24T00:12:24.039Z"));

    let f = doc.version_facts("1.0.0").unwrap().unwrap();
    assert_eq!(f.published.as_deref(), Some("2015-03-24T00:12:24.039Z"));
    assert_eq!(f.install_scripts, ["postinstall"]);
    assert_eq!(f.has_install_script, Some(true));
    assert_eq!(
        f.repository.as_deref(),
        Some("git+https://github.com/o/demo.git")
    );
    assert!(!f.deprecated);
    assert_eq!(f.integrity.as_deref(), Some("sha512-AAA="));
    assert_eq!(f.shasum.as_deref(), Some("aaa"));
    assert_eq!(
        f.tarball_url.as_deref(),
        Some("https://registry.example/demo/-/demo-1.0.0.tgz")
    );

    let f = doc.version_facts("2.0.0-beta.1").unwrap().unwrap();
    assert_eq!(f.install_scripts, [GYPFILE_LABEL]);
    assert_eq!(f.has_install_script, Some(true));
    // falls back to the top-level repository
    assert_eq!(
        f.repository.as_deref(),
        Some("https://github.com/o/top.git")
    );
    // `\/` escapes are decoded in facts
    assert_eq!(
        f.tarball_url.as_deref(),
        Some("https://registry.example/demo/-/demo-2.0.0-beta.1.tgz")
    );
    assert_eq!(f.published.as_deref(), Some("2016-01-01T00:00:00Z"));

    let f = doc.version_facts("9.0.0").unwrap().unwrap();
    assert!(f.deprecated);
    assert_eq!(f.install_scripts, Vec::<String>::new());
    assert_eq!(f.has_install_script, Some(false), "full doc: known absent");
    assert_eq!(
        f.published.as_deref(),
        Some("2020-01-01T00:00:00.000000+00:00")
    );

    let f = doc.version_facts("10.0.0").unwrap().unwrap();
    assert_eq!(f.install_scripts, ["install"]);
    assert_eq!(f.repository.as_deref(), Some("github:o/demo10"));

    // an empty script is not an install script (npm skips it)
    let f = doc.version_facts("11.0.0-rc.1").unwrap().unwrap();
    assert_eq!(f.has_install_script, Some(false));

    assert!(doc.version_facts("3.0.0").unwrap().is_none());
    let summary = facts_only(FULL.as_bytes()).unwrap();
    assert_eq!(summary.versions.len(), 5);
    assert_eq!(
        summary.modified.as_deref(),
        Some("2022-01-02T00:00:00.000Z")
    );
    assert_eq!(summary.dist_tags[0], ("latest".into(), "10.0.0".into()));
}

#[test]
fn abbreviated_document_facts() {
    let doc = Packument::parse(CORGI.as_bytes()).unwrap();
    assert!(doc.is_abbreviated());
    assert_eq!(doc.modified().as_deref(), Some("2024-05-01T00:00:00.000Z"));
    let facts = doc.facts().unwrap();
    assert_eq!(facts[0].has_install_script, Some(true));
    assert!(facts[0].install_scripts.is_empty());
    assert_eq!(facts[1].has_install_script, None, "unknowable in corgi");
    assert_eq!(facts[1].published, None);
    assert_eq!(facts[1].repository, None);
    assert_eq!(facts[1].integrity.as_deref(), Some("sha512-Y"));
}

#[test]
fn full_render_filters_and_preserves() {
    let out = render(FULL, &["10.0.0", "11.0.0-rc.1"], Representation::Full).unwrap();
    assert_eq!((out.removed, out.kept), (2, 3));
    assert_eq!(out.representation, Representation::Full);
    let v = json(&out.bytes);
    // latest → highest stable remaining by semver (9.0.0, not the beta); next dropped;
    // beta and old kept; order kept.
    assert_eq!(
        out.dist_tags,
        vec![
            ("latest".to_string(), "9.0.0".to_string()),
            ("beta".into(), "2.0.0-beta.1".into()),
            ("old".into(), "1.0.0".into()),
        ]
    );
    assert_eq!(
        v["dist-tags"],
        serde_json::json!({"latest":"9.0.0","beta":"2.0.0-beta.1","old":"1.0.0"})
    );
    let back = Packument::parse(&out.bytes).unwrap();
    assert_eq!(
        back.versions().collect::<Vec<_>>(),
        ["1.0.0", "2.0.0-beta.1", "9.0.0"]
    );
    let time = v["time"].as_object().unwrap();
    assert!(!time.contains_key("10.0.0") && !time.contains_key("11.0.0-rc.1"));
    for k in ["created", "modified", "1.0.0", "9.0.0", "0.0.1"] {
        assert_eq!(time[k], json(FULL.as_bytes())["time"][k], "{k}");
    }
    // top-level order and untouched values, byte for byte
    let text = String::from_utf8(out.bytes.clone()).unwrap();
    assert_eq!(
        top_keys(&out.bytes),
        [
            "_id",
            "_rev",
            "name",
            "dist-tags",
            "versions",
            "time",
            "repository",
            "readme",
            "unknownTop"
        ]
    );
    assert_eq!(
        back.dist_tags().map(|(t, _)| t).collect::<Vec<_>>(),
        ["latest", "beta", "old"]
    );
    assert!(text.contains(r#""unknownTop":{"x": [true, null, 1e3]}"#));
    // tarballs point to the proxy; all other version bytes identical
    for ver in ["1.0.0", "2.0.0-beta.1", "9.0.0"] {
        assert_eq!(
            v["versions"][ver]["dist"]["tarball"],
            format!("{BASE}/demo/-/demo-{ver}.tgz")
        );
        let up = raw_version(FULL.as_bytes(), ver).unwrap();
        let down = raw_version(&out.bytes, ver).unwrap();
        let up_tb = Packument::parse(FULL.as_bytes())
            .unwrap()
            .version_facts(ver)
            .unwrap()
            .unwrap()
            .tarball_url
            .unwrap();
        let up_raw_tb = if ver == "2.0.0-beta.1" {
            up_tb.replace('/', "\\/")
        } else {
            up_tb
        };
        let new_tb = format!("{BASE}/demo/-/demo-{ver}.tgz");
        assert_eq!(down.replacen(&new_tb, &up_raw_tb, 1), up, "{ver}");
    }
    assert!(text.contains(r#""custom": {"keep": [1, 2.50, "x"]}"#));
    assert!(text.contains(r#""signatures": [{"keyid": "SHA256:x", "sig": "MEUC"}]"#));
    assert!(text.contains(r#""provenance": {"predicateType": "https://slsa.dev/provenance/v1"}"#));
}

#[test]
fn corgi_derived_from_full() {
    let out = render(FULL, &["1.0.0"], Representation::Abbreviated).unwrap();
    assert_eq!(out.representation, Representation::Abbreviated);
    let v = json(&out.bytes);
    assert_eq!(
        top_keys(&out.bytes),
        ["name", "dist-tags", "versions", "modified"]
    );
    assert_eq!(v["modified"], "2022-01-02T00:00:00.000Z");
    assert_eq!(v["dist-tags"]["latest"], "10.0.0");
    assert!(v["dist-tags"].get("old").is_none());
    let vs = v["versions"].as_object().unwrap();
    assert_eq!(vs.len(), 4);
    for (ver, obj) in vs {
        for k in obj.as_object().unwrap().keys() {
            assert!(
                CORGI_VERSION_FIELDS.contains(&k.as_str()) || k == "hasInstallScript",
                "{ver}: {k} leaked into corgi"
            );
        }
        assert_eq!(
            obj["dist"]["tarball"],
            format!("{BASE}/demo/-/demo-{ver}.tgz")
        );
    }
    assert_eq!(vs["2.0.0-beta.1"]["hasInstallScript"], true, "gypfile");
    assert_eq!(vs["10.0.0"]["hasInstallScript"], true, "install script");
    assert!(vs["9.0.0"].get("hasInstallScript").is_none());
    assert!(vs["11.0.0-rc.1"].get("hasInstallScript").is_none());
    assert_eq!(vs["9.0.0"]["deprecated"], "use 10");
    assert_eq!(vs["9.0.0"]["dependencies"]["a"], "^1");
    assert!(vs["9.0.0"].get("readme").is_none() && vs["9.0.0"].get("license").is_none());
    assert_eq!(
        vs["9.0.0"]["dist"]["attestations"]["url"],
        "https://registry.example/-/npm/v1/attestations/demo@9.0.0"
    );
    // the derived corgi reads back as abbreviated with the same facts
    let back = Packument::parse(&out.bytes).unwrap();
    assert!(back.is_abbreviated());
    let f = back.version_facts("10.0.0").unwrap().unwrap();
    assert_eq!(f.has_install_script, Some(true));
    assert_eq!(
        back.version_facts("9.0.0")
            .unwrap()
            .unwrap()
            .has_install_script,
        None
    );
}

#[test]
fn corgi_without_upstream_modified_has_none() {
    let doc = r#"{"name":"x","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"version":"1.0.0","dist":{"tarball":"u"}}},"time":{"1.0.0":"2020-01-01T00:00:00Z"}}"#;
    let v = json(&render(doc, &[], Representation::Abbreviated).unwrap().bytes);
    assert!(
        v.get("modified").is_none(),
        "modified must never be invented"
    );
    assert!(v.get("time").is_none());
}

#[test]
fn abbreviated_upstream_passes_through() {
    for repr in [Representation::Abbreviated, Representation::Full] {
        let out = render(CORGI, &["1.1.0"], repr).unwrap();
        assert_eq!(out.representation, Representation::Abbreviated);
        let v = json(&out.bytes);
        assert_eq!(v["dist-tags"]["latest"], "1.0.0");
        assert_eq!(v["modified"], "2024-05-01T00:00:00.000Z");
        assert_eq!(
            v["versions"]["1.0.0"]["dist"]["tarball"],
            format!("{BASE}/@s/c/-/c-1.0.0.tgz")
        );
        assert_eq!(v["versions"]["1.0.0"]["hasInstallScript"], true);
    }
    let v = json(
        &render(CORGI, &["1.0.0"], Representation::Abbreviated)
            .unwrap()
            .bytes,
    );
    assert_eq!(v["versions"]["1.1.0"]["newCorgiField"], 7, "unknown kept");
}

#[test]
fn nothing_left_is_an_error_never_an_empty_document() {
    match render(
        FULL,
        &["1.0.0", "2.0.0-beta.1", "9.0.0", "10.0.0", "11.0.0-rc.1"],
        Representation::Full,
    ) {
        Err(NpmDocError::NoVersionsLeft {
            name,
            removed,
            total,
        }) => {
            assert_eq!((name.as_str(), removed, total), ("demo", 5, 5));
        }
        other => panic!("{other:?}"),
    }
    let removed_pkg = r#"{"dist-tags":{},"versions":{},"time":{}}"#;
    let doc = Packument::parse(removed_pkg.as_bytes()).unwrap();
    assert_eq!(doc.version_count(), 0);
    assert_eq!(doc.facts().unwrap(), vec![]);
    assert!(matches!(
        render(removed_pkg, &[], Representation::Full),
        Err(NpmDocError::NoVersionsLeft { total: 0, .. })
    ));
    // an unpublished package has no `versions` at all
    let unpublished = r#"{"_id":"u","name":"u","time":{"created":"2020-01-01T00:00:00Z","unpublished":{"time":"2021-01-01T00:00:00Z","versions":["1.0.0"]}}}"#;
    let doc = Packument::parse(unpublished.as_bytes()).unwrap();
    assert_eq!(doc.version_count(), 0);
    assert!(matches!(
        render(unpublished, &[], Representation::Full),
        Err(NpmDocError::NoVersionsLeft { total: 0, .. })
    ));
}

#[test]
fn hostile_documents_table() {
    type Check = fn(&NpmDocError) -> bool;
    let table: &[(&[u8], Check, &str)] = &[
        (b"", |e| matches!(e, NpmDocError::Json { .. }), ""),
        (b"{", |e| matches!(e, NpmDocError::Json { .. }), ""),
        (
            b"{\"a\":1} x",
            |e| matches!(e, NpmDocError::Json { .. }),
            "",
        ),
        (
            b"[1,2]",
            |e| matches!(e, NpmDocError::NotAnObject { .. }),
            "[1,2]",
        ),
        (
            b"\"str\"",
            |e| matches!(e, NpmDocError::NotAnObject { .. }),
            "str",
        ),
        (
            b"{\"name\":\"a\xff\"}",
            |e| matches!(e, NpmDocError::NotUtf8 { valid_up_to: 10 }),
            "10",
        ),
        (
            br#"{"versions":[]}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "versions",
        ),
        (
            br#"{"versions":"x"}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "versions",
        ),
        (
            br#"{"versions":{"1.0.0":"x"}}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "1.0.0",
        ),
        (
            br#"{"versions":{"1.0.0":null}}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "1.0.0",
        ),
        (
            br#"{"dist-tags":{"latest":1}}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "latest",
        ),
        (
            br#"{"dist-tags":{"latest":null}}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "latest",
        ),
        (
            br#"{"dist-tags":[]}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "dist-tags",
        ),
        (
            br#"{"time":"2020"}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "time",
        ),
        (
            br#"{"name":5}"#,
            |e| matches!(e, NpmDocError::BadField { .. }),
            "name",
        ),
        (
            br#"{"repository":{"url":"a","url":"b"}}"#,
            |e| matches!(e, NpmDocError::DuplicateKey { .. }),
            "url",
        ),
        (
            br#"{"name":"a","name":"b"}"#,
            |e| matches!(e, NpmDocError::DuplicateKey { .. }),
            "name",
        ),
        (
            br#"{"versions":{"1.0.0":{},"1.0.0":{}}}"#,
            |e| matches!(e, NpmDocError::DuplicateKey { .. }),
            "1.0.0",
        ),
        (
            br#"{"dist-tags":{"latest":"1","latest":"2"}}"#,
            |e| matches!(e, NpmDocError::DuplicateKey { .. }),
            "latest",
        ),
        (
            br#"{"time":{"1.0.0":"a","1.0.0":"b"}}"#,
            |e| matches!(e, NpmDocError::DuplicateKey { .. }),
            "1.0.0",
        ),
    ];
    for (input, check, quoted) in table {
        match Packument::parse(input) {
            Ok(_) => panic!("{:?} accepted", String::from_utf8_lossy(input)),
            Err(e) => {
                assert!(check(&e), "{:?}: {e:?}", String::from_utf8_lossy(input));
                assert!(e.to_string().contains(quoted), "{e} lacks {quoted}");
            }
        }
    }
    // Duplicates inside a version surface when the version is read (facts or render).
    for (doc, quoted) in [
        (
            r#"{"name":"a","versions":{"1.0.0":{"dist":{},"dist":{}}}}"#,
            "dist",
        ),
        (
            r#"{"name":"a","versions":{"1.0.0":{"scripts":{"install":"a","install":""}}}}"#,
            "install",
        ),
        (
            r#"{"name":"a","versions":{"1.0.0":{"dist":{"tarball":"a","tarball":"b"}}}}"#,
            "tarball",
        ),
    ] {
        let p = Packument::parse(doc.as_bytes()).unwrap();
        let e = p.facts().unwrap_err();
        assert!(matches!(e, NpmDocError::DuplicateKey { .. }), "{e:?}");
        assert!(e.to_string().contains(quoted), "{e}");
        assert!(render(doc, &[], Representation::Abbreviated).is_err());
    }
    // A missing or invalid name only matters once there is something to render.
    assert!(matches!(
        render(r#"{"versions":{"1.0.0":{}}}"#, &[], Representation::Full),
        Err(NpmDocError::MissingName)
    ));
    assert!(matches!(
        render(
            r#"{"name":"../x","versions":{"1.0.0":{}}}"#,
            &[],
            Representation::Full
        ),
        Err(NpmDocError::BadName(_))
    ));
}

#[test]
fn escapes_and_odd_versions() {
    let doc = r#"{"name":"e","dist-tags":{"latest":"1.0.0-\u00e9","l\u0061bel":"banana"},"versions":{
        "1.0.0-\u00e9":{"version":"1.0.0-\u00e9","dist":{"tarball":"https:\/\/r\/e\/-\/e-1.0.0-\u00e9.tgz","integrity":"sha512-\/x"}},
        "banana":{"version":"banana","dist":{}},
        "0.9.0":{"version":"0.9.0"},
        "2.0.0":{"version":"2.0.0","dist":"weird"}},
        "time":{"1.0.0-\u00e9":"2020-01-01T00:00:00Z","banana":"2020-01-01T00:00:00Z"}}"#;
    let p = Packument::parse(doc.as_bytes()).unwrap();
    assert!(p.has_version("1.0.0-é"));
    assert_eq!(p.dist_tag("label"), Some("banana"));
    let f = p.version_facts("1.0.0-é").unwrap().unwrap();
    assert_eq!(
        f.tarball_url.as_deref(),
        Some("https://r/e/-/e-1.0.0-é.tgz")
    );
    assert_eq!(f.integrity.as_deref(), Some("sha512-/x"));
    assert_eq!(f.published.as_deref(), Some("2020-01-01T00:00:00Z"));

    let out = render(doc, &["2.0.0"], Representation::Full).unwrap();
    let v = json(&out.bytes);
    let vs = &v["versions"];
    assert_eq!(
        vs["1.0.0-é"]["dist"]["tarball"],
        format!("{BASE}/e/-/e-1.0.0-%C3%A9.tgz")
    );
    // raw escapes of untouched values survive
    assert!(String::from_utf8_lossy(&out.bytes).contains(r#""integrity":"sha512-\/x""#));
    // dist without tarball gets one; no dist stays without
    assert_eq!(
        vs["banana"]["dist"]["tarball"],
        format!("{BASE}/e/-/e-banana.tgz")
    );
    assert!(vs["0.9.0"].get("dist").is_none());
    // latest pointed at a kept invalid-semver version: kept as is
    assert_eq!(v["dist-tags"]["latest"], "1.0.0-é");
    // once it is removed, retargeting ignores invalid semver (`banana`)
    let out = render(doc, &["1.0.0-é", "2.0.0"], Representation::Full).unwrap();
    assert_eq!(
        out.dist_tags,
        vec![
            ("latest".into(), "0.9.0".into()),
            ("label".into(), "banana".into())
        ]
    );
    // a non-object dist is passed through untouched (nothing to rewrite)
    let out = render(doc, &[], Representation::Full).unwrap();
    assert_eq!(json(&out.bytes)["versions"]["2.0.0"]["dist"], "weird");
}

#[test]
fn single_version_endpoint() {
    let removed = set(&["10.0.0"]);
    let opts = RenderOptions {
        removed: &removed,
        tarball_base: BASE,
        representation: Representation::Abbreviated,
    };
    let doc = Packument::parse(FULL.as_bytes()).unwrap();
    let one = doc.render_version(&opts, "9.0.0").unwrap().unwrap();
    let v = json(&one);
    assert_eq!(v["version"], "9.0.0");
    assert_eq!(v["readme"], "long", "the full version object is served");
    assert_eq!(
        v["dist"]["tarball"],
        format!("{BASE}/demo/-/demo-9.0.0.tgz")
    );
    // latest resolves to the retargeted version
    assert_eq!(doc.render_version(&opts, "latest").unwrap().unwrap(), one);
    assert_eq!(doc.render_version(&opts, "10.0.0").unwrap(), None);
    assert_eq!(doc.render_version(&opts, "nope").unwrap(), None);
    assert!(doc.render_version(&opts, "beta").unwrap().is_some());

    let full = render(FULL, &["10.0.0"], Representation::Full).unwrap();
    assert_eq!(
        extract_version(&full.bytes, "latest").unwrap().unwrap(),
        one
    );
    assert_eq!(extract_version(&full.bytes, "9.0.0").unwrap().unwrap(), one);
    assert_eq!(extract_version(&full.bytes, "10.0.0").unwrap(), None);
    assert!(extract_version(&full.bytes, "next").unwrap().is_some());
    assert_eq!(extract_version(&full.bytes, "nope").unwrap(), None);
    let without_next = render(FULL, &["11.0.0-rc.1"], Representation::Full).unwrap();
    assert_eq!(extract_version(&without_next.bytes, "next").unwrap(), None);
    // unfiltered resolution on the upstream doc
    assert_eq!(doc.resolve("latest").unwrap().0, "10.0.0");
}

#[test]
fn accept_negotiation_table() {
    use Representation::*;
    for (accept, want) in [
        (None, Full),
        (Some("application/json"), Full),
        (Some("*/*"), Full),
        (
            Some("application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"),
            Abbreviated,
        ),
        (Some("application/vnd.npm.install-v1+json"), Abbreviated),
        (
            Some("APPLICATION/VND.NPM.INSTALL-V1+JSON;q=0.5"),
            Abbreviated,
        ),
        (Some("application/vnd.npm.install-v1+json;q=0"), Full),
        (Some("application/json; q=1.0, */*"), Full),
    ] {
        assert_eq!(Representation::from_accept(accept), want, "{accept:?}");
    }
    assert_eq!(
        Abbreviated.content_type(),
        "application/vnd.npm.install-v1+json"
    );
    assert_eq!(Full.content_type(), "application/json");
}

/// A synthetic document with `n` versions (every 7th a prerelease, every 11th with a
/// postinstall script).
pub(crate) fn synthetic(n: usize) -> String {
    let mut s = String::from(r#"{"_id":"big","name":"big","dist-tags":{"latest":""#);
    s.push_str(&format!("{}.0.0", n - 1));
    s.push_str(r#"","next":"0.0.0-rc.1"},"versions":{"#);
    let mut time = String::from(r#""created":"2020-01-01T00:00:00.000Z""#);
    for i in 0..n {
        let v = if i % 7 == 3 {
            format!("{i}.0.0-rc.1")
        } else {
            format!("{i}.0.0")
        };
        if i > 0 {
            s.push(',');
        }
        let scripts = if i % 11 == 0 {
            r#","scripts":{"postinstall":"node p.js"}"#
        } else {
            ""
        };
        s.push_str(&format!(
            r#""{v}":{{"name":"big","version":"{v}","description":"{}"{scripts},"dist":{{"integrity":"sha512-{i}","shasum":"{i:040}","tarball":"https://registry.example/big/-/big-{v}.tgz"}}}}"#,
            "x".repeat(i % 50)
        ));
        time.push_str(&format!(r#","{v}":"2020-01-01T00:00:{:02}.000Z""#, i % 60));
    }
    s.push_str(r#"},"time":{"#);
    s.push_str(&time);
    s.push_str(r#","modified":"2024-01-01T00:00:00.000Z"}}"#);
    s
}

#[test]
fn ten_thousand_versions() {
    let doc = synthetic(10_000);
    let p = Packument::parse(doc.as_bytes()).unwrap();
    assert_eq!(p.version_count(), 10_000);
    let removed: HashSet<String> = p.versions().step_by(3).map(str::to_string).collect();
    for repr in [Representation::Full, Representation::Abbreviated] {
        let out = p
            .render(&RenderOptions {
                removed: &removed,
                tarball_base: BASE,
                representation: repr,
            })
            .unwrap();
        assert_eq!(out.removed, 3334);
        assert_eq!(out.kept, 6666);
        // 9999 is removed (9999 % 3 == 0) → the highest stable remaining is 9998
        assert_eq!(out.dist_tags, vec![("latest".into(), "9998.0.0".into())]);
        let v = json(&out.bytes);
        assert_eq!(v["versions"].as_object().unwrap().len(), 6666);
        if repr == Representation::Full {
            assert_eq!(v["time"].as_object().unwrap().len(), 6666 + 2);
        } else {
            assert_eq!(v["versions"]["11.0.0"]["hasInstallScript"], true);
        }
    }
}

// --- property tests ---

fn version_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..30, 0u32..5, 0u32..5).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        2 => (0u32..30, "(alpha|beta|rc)\\.[0-9]").prop_map(|(a, p)| format!("{a}.0.0-{p}")),
        1 => "[a-z]{1,6}",
        1 => "v[0-9]\\.[0-9]\\.[0-9]",
        1 => "[0-9]\\.[0-9]-\\PC{1,3}",
    ]
}

#[derive(Debug, Clone)]
pub(crate) struct GenVersion {
    pub(crate) key: String,
    pub(crate) scripts: Option<u8>,
    pub(crate) dist: u8,
    pub(crate) extra: String,
    pub(crate) removed: bool,
}

pub(crate) fn gen_version() -> impl Strategy<Value = GenVersion> {
    (
        version_strategy(),
        prop::option::of(0u8..4),
        0u8..4,
        "[ a-zA-Z0-9\\\\/é]{0,10}",
        any::<bool>(),
    )
        .prop_map(|(key, scripts, dist, extra, removed)| GenVersion {
            key,
            scripts,
            dist,
            extra,
            removed,
        })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Build a document text by hand (with spacing variety and escapes).
pub(crate) fn build_doc(versions: &[GenVersion], tags: &[(String, usize)], sep: &str) -> String {
    let mut s = format!("{{ \"name\"{sep}:{sep}\"gen\",{sep}\"dist-tags\":{{");
    let tag_items: Vec<String> = tags
        .iter()
        .map(|(t, i)| {
            let target = versions
                .get(*i)
                .map_or("99.99.99".to_string(), |v| v.key.clone());
            format!("{}:{}", json_str(t), json_str(&target))
        })
        .collect();
    s.push_str(&tag_items.join(","));
    s.push_str("},\"versions\":{");
    let items: Vec<String> = versions
        .iter()
        .map(|v| {
            let scripts = match v.scripts {
                None => String::new(),
                Some(0) => r#","scripts":{"test":"t"}"#.into(),
                Some(1) => r#","scripts":{"postinstall":"p"}"#.into(),
                Some(2) => r#","gypfile":true"#.into(),
                Some(_) => r#","hasInstallScript":true"#.into(),
            };
            let tb = format!("https:\\/\\/r\\/gen\\/-\\/gen-{}.tgz", v.key);
            let dist = match v.dist {
                0 => format!(r#","dist":{{"tarball":{},"integrity":"sha512-{}"}}"#, json_str(&tb).replace("\\\\/", "\\/"), v.key.len()),
                1 => format!(r#","dist":{sep}{{ "integrity" : "sha512-q", "tarball":"x" ,"signatures":[{{"sig":"s"}}] }}"#),
                2 => r#","dist":{}"#.into(),
                _ => String::new(),
            };
            format!(
                "{}:{sep}{{\"version\":{},\"extra\":{}{scripts}{dist}}}",
                json_str(&v.key),
                json_str(&v.key),
                json_str(&v.extra)
            )
        })
        .collect();
    s.push_str(&items.join(&format!(",{sep}")));
    s.push_str("},\"time\":{\"created\":\"c\",\"modified\":\"m\"");
    for v in versions {
        s.push_str(&format!(",{}:\"t\"", json_str(&v.key)));
    }
    s.push_str("},\"zzz\":[1, {\"a\":\"\\u00e9\"}]}");
    s
}

pub(crate) fn dedup(mut versions: Vec<GenVersion>) -> Vec<GenVersion> {
    let mut seen = HashSet::new();
    versions.retain(|v| seen.insert(v.key.clone()));
    versions
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Packument::parse(&bytes) {
            let _ = p.facts();
            let _ = p.render(&RenderOptions { removed: &HashSet::new(), tarball_base: BASE, representation: Representation::Abbreviated });
        }
    }

    #[test]
    fn parser_never_panics_on_mutated_documents(
        versions in prop::collection::vec(gen_version(), 1..6),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let doc = build_doc(&dedup(versions), &[("latest".into(), 0)], "");
        let mut bytes = doc.into_bytes();
        let i = cut.index(bytes.len());
        bytes[i] = byte;
        for b in [&bytes[..], &bytes[..i]] {
            if let Ok(p) = Packument::parse(b) {
                let _ = p.facts();
                for representation in [Representation::Full, Representation::Abbreviated] {
                    let opts = RenderOptions { removed: &HashSet::new(), tarball_base: BASE, representation };
                    if let Ok(out) = p.render(&opts) {
                        prop_assert!(serde_json::from_slice::<Value>(&out.bytes).is_ok());
                    }
                    let _ = p.render_version(&opts, "latest");
                }
            }
        }
    }

    #[test]
    fn rendering_invariants(
        versions in prop::collection::vec(gen_version(), 1..12),
        tags in prop::collection::vec(("latest|next|beta|[a-z]{1,4}", 0usize..14), 0..5),
        spaced in any::<bool>(),
    ) {
        let versions = dedup(versions);
        let mut tags = tags;
        let mut seen = HashSet::new();
        tags.retain(|(t, _)| seen.insert(t.clone()));
        let doc = build_doc(&versions, &tags, if spaced { " \n" } else { "" });
        let removed: HashSet<String> = versions.iter().filter(|v| v.removed).map(|v| v.key.clone()).collect();
        let p = Packument::parse(doc.as_bytes()).unwrap();
        prop_assert_eq!(p.version_count(), versions.len());
        for representation in [Representation::Full, Representation::Abbreviated] {
            let opts = RenderOptions { removed: &removed, tarball_base: BASE, representation };
            let out = match p.render(&opts) {
                Err(NpmDocError::NoVersionsLeft { removed: r, total, .. }) => {
                    prop_assert_eq!(r, total);
                    prop_assert!(versions.iter().all(|v| v.removed));
                    continue;
                }
                other => other.unwrap(),
            };
            let v: Value = serde_json::from_slice(&out.bytes).unwrap();
            let vs = v["versions"].as_object().unwrap();
            // exactly the kept versions, in order
            let kept: Vec<&str> = versions.iter().filter(|v| !v.removed).map(|v| v.key.as_str()).collect();
            let back = Packument::parse(&out.bytes).unwrap();
            prop_assert_eq!(back.versions().collect::<Vec<_>>(), kept.clone());
            prop_assert_eq!(out.kept, kept.len());
            prop_assert_eq!(out.removed, versions.len() - kept.len());
            // no dist-tag points at a missing version; latest exists when upstream had one
            for (_, target) in v["dist-tags"].as_object().unwrap() {
                prop_assert!(vs.contains_key(target.as_str().unwrap()));
            }
            if tags.iter().any(|(t, _)| t == "latest") {
                prop_assert!(v["dist-tags"].get("latest").is_some());
            }
            if representation == Representation::Full {
                let time = v["time"].as_object().unwrap();
                prop_assert!(time.contains_key("created") && time.contains_key("modified"));
                for r in &removed {
                    prop_assert!(!time.contains_key(r));
                }
                // kept version objects: byte-identical except dist.tarball
                for gv in versions.iter().filter(|v| !v.removed) {
                    let up = p.version_raw(&gv.key).unwrap().get().to_string();
                    let down = raw_version(&out.bytes, &gv.key).unwrap();
                    let url = tarball_url(BASE, "gen", &gv.key);
                    let mut url_json = Vec::new();
                    push_json_str(&mut url_json, &url);
                    let url_json = String::from_utf8(url_json).unwrap();
                    match gv.dist {
                        0 | 1 => {
                            let up_tb = get(&parse_object(get(&parse_object(p.version_raw(&gv.key).unwrap().get(), String::new).unwrap(), "dist").unwrap(), String::new).unwrap(), "tarball").unwrap();
                            prop_assert_eq!(down.replacen(&url_json, up_tb, 1), up);
                        }
                        2 => prop_assert_eq!(down.replacen(&format!("{{\"tarball\":{url_json}}}"), "{}", 1), up),
                        _ => prop_assert_eq!(down, up),
                    }
                    if gv.dist < 3 {
                        prop_assert_eq!(&vs[&gv.key]["dist"]["tarball"], &Value::String(url));
                    }
                }
            } else {
                for gv in versions.iter().filter(|v| !v.removed) {
                    let want = matches!(gv.scripts, Some(1..=3));
                    prop_assert_eq!(vs[&gv.key].get("hasInstallScript").is_some(), want, "{:?}", gv);
                }
            }
            // idempotent: rendering the output again with the same set changes nothing
            let again = Packument::parse(&out.bytes).unwrap().render(&opts).unwrap();
            prop_assert_eq!(&again.bytes, &out.bytes);
            prop_assert_eq!(&again.dist_tags, &out.dist_tags);
            // every kept tarball URL routes back to the same version
            for gv in versions.iter().filter(|v| !v.removed && v.dist < 3) {
                let url = vs[&gv.key]["dist"]["tarball"].as_str().unwrap();
                let path = url.strip_prefix(BASE).unwrap();
                if let Ok(super::super::NpmRoute::Tarball { version, .. }) = super::super::parse_path(path) {
                    prop_assert_eq!(&version, &gv.key);
                } else {
                    // only versions the path rules refuse (e.g. containing `%` or spaces) may fail
                    prop_assert!(super::super::path::spec_problem(&gv.key).is_some() || gv.key.contains('%') || gv.key.split('/').any(|p| p.is_empty() || p == "." || p == ".."), "{:?}", gv.key);
                }
            }
        }
    }
}

/// The one-pass read (versions split while parsing, tarball positions learnt by `facts`)
/// gives exactly what the plain read does, whatever the whitespace and key escapes.
#[test]
fn one_pass_read_matches_plain_read() {
    let docs = [
        FULL.to_string(),
        CORGI.to_string(),
        // pretty-printed, escaped and quote-ending keys, dist without tarball, empty dist
        "{ \"name\" : \"x\" ,\n \"versions\" : {\n  \"1.0.0\" : { \"a\\\\\" : 1 , \"dist\" : { \"shasum\" : \"ab\" } } ,\n  \"2.0.0-\\u00e9\" :\t{\r\n\"k\\\"\" : [ ] ,\"dist\":{}}, \"3.0.0\":{\"dist\":{\"tarball\":\"t\"}, \"z\":\"}\"}\n } , \"time\" : { \"1.0.0\" : \"2020-01-01T00:00:00Z\" } }".to_string(),
        // no dist at all, dist not an object
        r#"{"name":"x","versions":{"1.0.0":{"name":"x"},"2.0.0":{"dist":"s"}}}"#.to_string(),
    ];
    let removed = set(&["1.0.0"]);
    for doc in &docs {
        let fast = Packument::parse(doc.as_bytes()).unwrap();
        let plain = Packument::parse_plain(doc).unwrap();
        assert!(!fast.members.is_empty(), "{doc}");
        assert_eq!(fast.versions, plain.versions, "{doc}");
        assert_eq!(fast.facts().unwrap(), plain.facts().unwrap(), "{doc}");
        for representation in [Representation::Full, Representation::Abbreviated] {
            let opts = RenderOptions {
                removed: &removed,
                tarball_base: BASE,
                representation,
            };
            // `fast` has its tarball positions (facts ran); a fresh parse does not.
            let fresh = Packument::parse(doc.as_bytes())
                .unwrap()
                .render(&opts)
                .unwrap();
            assert_eq!(
                fast.render(&opts).unwrap(),
                plain.render(&opts).unwrap(),
                "{doc}"
            );
            assert_eq!(fresh, plain.render(&opts).unwrap(), "{doc}");
        }
    }
}
