//! PyPI index and file gates against a fake upstream (no real clients).

use crate::pypi_fake::*;
use crate::pypi_http::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

const UV_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

async fn setup(policy: &str) -> (FakePypi, GateUnderTest) {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let gate = start_gate(&fake, policy, standard_records(), &[]).await;
    (fake, gate)
}

async fn json_page(gate: &GateUnderTest, project: &str) -> Value {
    let r = get(&gate.url(&format!("/simple/{project}/")), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type").as_deref(), Some(JSON_CT));
    r.json().await.unwrap()
}

#[tokio::test]
async fn negotiation_matrix_with_exact_content_types() {
    let (_fake, gate) = setup("{}").await;
    let url = gate.url("/simple/demo-pkg/");
    for (accept, want) in [
        (Some(PIP_ACCEPT), JSON_CT),
        (Some(UV_ACCEPT), JSON_CT),
        (
            Some("application/vnd.pypi.simple.v1+json, */*;q=0.1"),
            JSON_CT,
        ),
        (
            Some("application/vnd.pypi.simple.v1+html"),
            "application/vnd.pypi.simple.v1+html",
        ),
        (Some("text/html"), "text/html"),
        (Some("application/vnd.pypi.simple.latest+json"), JSON_CT),
        (Some("application/xml"), "text/html"),
    ] {
        let r = get(&url, accept).await;
        assert_eq!(r.status(), 200, "{accept:?}");
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some(want),
            "{accept:?}"
        );
        assert_eq!(header(&r, "vary").as_deref(), Some("Accept"));
        assert_eq!(header(&r, "cache-control").as_deref(), Some("max-age=300"));
        let body = r.text().await.unwrap();
        if want == JSON_CT {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["meta"]["api-version"], "1.1");
        } else {
            assert!(body.contains("pypi:repository-version"), "{body}");
        }
    }
    // No Accept at all (sent raw: HTTP libraries add `*/*`).
    let r = raw_request(&gate, "GET /simple/demo-pkg/ HTTP/1.1").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.to_ascii_lowercase()
            .contains("content-type: text/html\r\n"),
        "{r}"
    );
    // ?format= wins over Accept.
    let r = get(
        &format!("{url}?format=application/vnd.pypi.simple.v1%2Bjson"),
        Some("text/html"),
    )
    .await;
    assert_eq!(header(&r, "content-type").as_deref(), Some(JSON_CT));
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn non_normal_names_and_missing_slash_redirect() {
    let (fake, gate) = setup("{}").await;
    for (path, to) in [
        ("/simple/Demo_Pkg/", "/simple/demo-pkg/"),
        ("/simple/demo.pkg/", "/simple/demo-pkg/"),
        ("/simple/demo-pkg", "/simple/demo-pkg/"),
        ("/simple/DEMO--pkg", "/simple/demo-pkg/"),
        ("/simple", "/simple/"),
    ] {
        for accept in [Some(PIP_ACCEPT), Some("text/html")] {
            let r = get(&gate.url(path), accept).await;
            assert_eq!(r.status(), 301, "{path}");
            assert_eq!(header(&r, "location").as_deref(), Some(to), "{path}");
        }
    }
    assert_eq!(fake.simple_requests(), 0);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn forbidden_versions_leave_files_and_versions_and_fields_are_kept() {
    let (fake, gate) = setup("{}").await;
    let r = get(&gate.url("/simple/demo-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(
        header(&r, "x-pkggate-blocked-versions").as_deref(),
        Some("1")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["_last-serial"], "42");
    assert_eq!(v["name"], "demo-pkg");
    assert_eq!(v["alternate-locations"], serde_json::json!([]));
    assert_eq!(v["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        let name = f["filename"].as_str().unwrap();
        assert!(!name.contains("2.0.0"), "{name}");
        let url = f["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/files/demo-pkg/", gate.base)),
            "{url}"
        );
        assert!(url.ends_with(&format!("/{name}")), "{url}");
        assert!(f["hashes"]["sha256"].as_str().unwrap().len() == 64);
        assert!(f["size"].as_u64().unwrap() > 0);
        assert!(f["upload-time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(f["_private"]["kept"], true);
    }
    let whl = &files[0];
    assert_eq!(whl["requires-python"], ">=3.8");
    assert!(whl["core-metadata"]["sha256"].is_string());
    assert!(whl["dist-info-metadata"]["sha256"].is_string());
    assert_eq!(files[2]["yanked"], "broken build");
    assert_eq!(files[1]["yanked"], false);

    // The same from an HTML-only upstream, served as HTML.
    let fake2 = FakePypi::start().await;
    standard_projects(&fake2);
    fake2.set_mode(Mode::HtmlOnly);
    let gate2 = start_gate(&fake2, "{}", standard_records(), &[]).await;
    let r = get(&gate2.url("/simple/demo-pkg/"), Some("text/html")).await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("2.0.0"), "{html}");
    assert_eq!(html.matches("<a ").count(), 3, "{html}");
    assert!(html.contains("data-requires-python=\"&gt;=3.8\""), "{html}");
    assert!(html.contains("#sha256="), "{html}");
    assert!(html.contains("data-yanked=\"broken build\""), "{html}");
    assert!(html.contains("data-core-metadata=\"sha256="), "{html}");
    assert!(html.contains(&format!("href=\"{}/files/demo-pkg/", gate2.base)));
    // HTML upstream → JSON output keeps upload-time (uv --exclude-newer needs it).
    let v = json_page(&gate2, "demo-pkg").await;
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    assert!(v["files"][0]["upload-time"].is_string(), "{v}");
    assert_eq!(v["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    assert!(fake.simple_requests() >= 1);
    gate.running.stop().await.unwrap();
    gate2.running.stop().await.unwrap();
}

#[tokio::test]
async fn files_and_metadata_are_served_and_verified() {
    let (fake, gate) = setup("{}").await;
    let v = json_page(&gate, "demo-pkg").await;
    let whl = &v["files"][0];
    let url = whl["url"].as_str().unwrap();
    let series = r#"pkggate_artifact_bytes_total{ecosystem="PyPI"} "#;
    let sent_before = pkggate::metrics::render_registry()
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let r = get(url, None).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "accept-ranges").is_none());
    let len = header(&r, "content-length").unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(len, body.len().to_string());
    assert_eq!(sha256_hex(&body), whl["hashes"]["sha256"].as_str().unwrap());
    // Bytes sent are counted (the registry is shared: at least ours).
    let sent_after = pkggate::metrics::render_registry()
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.parse::<f64>().ok()))
        .unwrap_or(0.0);
    assert!(
        sent_after >= sent_before + body.len() as f64,
        "{sent_before} -> {sent_after}"
    );
    // HEAD: same Content-Length, no body.
    let r = client().head(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), Some(len));
    // PEP 658 sibling, hash as listed.
    let r = get(&format!("{url}.metadata"), None).await;
    assert_eq!(r.status(), 200);
    let meta = r.bytes().await.unwrap();
    assert_eq!(
        sha256_hex(&meta),
        whl["core-metadata"]["sha256"].as_str().unwrap()
    );
    let r = client()
        .head(format!("{url}.metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-length"), Some(meta.len().to_string()));
    // A Range request gets the whole file (no Accept-Ranges advertised).
    let r = client()
        .get(url)
        .header("range", "bytes=-8192")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), body);
    assert!(gate.audit_has("default"), "allowed downloads are audited");
    assert!(fake.file_requests() >= 3);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn blocked_files_are_refused_before_upstream_even_without_the_index() {
    let (fake, gate) = setup("{}").await;
    // A lockfile install: the URL pkggate handed out earlier, no index request first.
    let page = fake.json_page("demo-pkg").unwrap();
    let page: Value = serde_json::from_str(&page).unwrap();
    let files_base = fake.files_base();
    for f in page["files"].as_array().unwrap() {
        let name = f["filename"].as_str().unwrap();
        let up = f["url"].as_str().unwrap();
        let rest = up.strip_prefix(&files_base).unwrap();
        let url = gate.url(&format!("/files/demo-pkg/{rest}"));
        let before = fake.file_requests();
        if name.contains("2.0.0") {
            for u in [url.clone(), format!("{url}.metadata")] {
                let r = get(&u, None).await;
                assert_eq!(r.status(), 403, "{u}");
                assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["rule"], "block_malicious");
                assert_eq!(b["source"], "MAL-2026-0001");
                assert_eq!(b["package"], "demo-pkg");
                assert_eq!(b["version"], "2.0.0");
                assert!(
                    b["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("blocked_by_pkggate: block_malicious MAL-2026-0001")
                );
            }
            let r = client().head(&url).send().await.unwrap();
            assert_eq!(r.status(), 403);
            assert_eq!(
                fake.file_requests(),
                before,
                "upstream contacted for {name}"
            );
        } else {
            let r = get(&url, None).await;
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(fake.file_requests(), before + 1);
        }
    }
    let events = gate.audit.take();
    assert!(events.iter().any(|e| e.action == "block"
        && e.request_kind == "file"
        && e.version == "2.0.0"
        && e.rule == "block_malicious"));
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn tampered_files_abort_and_are_audited() {
    let (_fake, gate) = setup("{}").await;
    let v = json_page(&gate, "tamper-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    // The transfer is cut: before the headers (one-chunk file) or within the body.
    match client().get(&url).send().await {
        Ok(r) => assert!(
            r.bytes().await.is_err(),
            "a tampered body must not complete"
        ),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
    eventually_audit(&gate, "integrity_mismatch").await;
    // Without a listed hash: served and audited.
    let v = json_page(&gate, "nohash-pkg").await;
    let r = get(v["files"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    assert!(gate.audit_has("integrity_unknown"));
    gate.running.stop().await.unwrap();
}

async fn eventually_audit(gate: &GateUnderTest, rule: &str) {
    crate::support::eventually(
        "the audit line",
        std::time::Duration::from_secs(10),
        async || gate.audit_has(rule).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn relative_and_off_host_urls_are_rewritten_and_signed() {
    let (fake, gate) = setup("{}").await;
    let v = json_page(&gate, "rel-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    assert!(url.contains("/files/rel-pkg/~u/"), "{url}");
    assert!(url.ends_with("/rel_pkg-1.0.0-py3-none-any.whl"));
    let r = get(&url, None).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert_eq!(
        sha256_hex(&body),
        v["files"][0]["hashes"]["sha256"].as_str().unwrap()
    );
    // A token for another project, or a forged one, is refused without an upstream request.
    let before = fake.file_requests();
    let other = url.replacen("/files/rel-pkg/", "/files/demo-pkg/", 1);
    assert_eq!(get(&other, None).await.status(), 400);
    let forged = format!(
        "{}/files/rel-pkg/~u/{}.{}/rel_pkg-1.0.0-py3-none-any.whl",
        gate.base,
        hex::encode("http://127.0.0.1:1/rel_pkg-1.0.0-py3-none-any.whl"),
        "00".repeat(16)
    );
    assert_eq!(get(&forged, None).await.status(), 400);
    assert_eq!(fake.file_requests(), before);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn hostile_paths_and_bad_names_are_refused() {
    let (fake, gate) = setup("{}").await;
    for path in [
        "/files/demo-pkg/%2e%2e/%2e%2e/etc/passwd",
        "/files/demo-pkg/packages/..%2Fsimple/x.whl",
        "/files/demo-pkg/packages%2F..%2F/demo_pkg-1.0.0-py3-none-any.whl",
        "/files/demo-pkg/packages//demo_pkg-1.0.0-py3-none-any.whl",
        "/files/Demo_Pkg/packages/x/demo_pkg-1.0.0-py3-none-any.whl",
        "/files/demo-pkg/packages/x/other_pkg-1.0.0-py3-none-any.whl",
        "/files/demo-pkg/packages/x/evil-1.0.tar.gz",
        "/files/demo-pkg/packages/x/a%5C..%5Cb.whl",
        "/simple/%2e%2e/",
        "/simple/a%2Fb/",
        "/simple/%3Cscript%3E/",
        "/pypi/..%2F..%2Fadmin/json",
        "/pypi/demo-pkg/%2e%2e/json",
    ] {
        // Sent raw: an HTTP client library would resolve `%2e%2e` itself.
        let r = raw_request(&gate, &format!("GET {path} HTTP/1.1")).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{path}: {r}");
        assert!(r.contains("bad_request"), "{path}: {r}");
    }
    // Literal dot segments are resolved by the client library or refused here.
    let r = raw_request(&gate, "GET /files/demo-pkg/../../simple/demo-pkg/ HTTP/1.1").await;
    assert!(
        r.starts_with("HTTP/1.1 400") || r.starts_with("HTTP/1.1 404"),
        "{r}"
    );
    // Absolute-form request target naming another host: never proxied there.
    let r = raw_request(&gate, "GET http://127.0.0.1:1/files/demo-pkg/x HTTP/1.1").await;
    assert!(!r.starts_with("HTTP/1.1 200"), "{r}");
    // An unlisted file of the project: 404 after the index, never fetched.
    let r = get(
        &gate.url("/files/demo-pkg/packages/ab/demo_pkg-9.9.9-py3-none-any.whl"),
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(fake.file_requests(), 0);
    gate.running.stop().await.unwrap();
}

async fn raw_request(gate: &GateUnderTest, line: &str) -> String {
    let addr = gate.running.addr;
    let line = line.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(s, "{line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn malformed_upstream_answers_are_502_with_a_reason() {
    let (fake, gate) = setup("{}").await;
    fake.set_raw(
        "bad-json",
        "application/vnd.pypi.simple.v1+json",
        "{\"files\": [",
    );
    fake.set_raw(
        "bad-html",
        "text/html",
        "<html><body><a href=\"x-1.0.tar.gz\">x-1.0.tar.gz",
    );
    fake.set_raw(
        "major-two",
        "application/vnd.pypi.simple.v1+json",
        r#"{"meta":{"api-version":"2.0"},"name":"major-two","files":[]}"#,
    );
    for p in ["bad-json", "bad-html", "major-two"] {
        let r = get(&gate.url(&format!("/simple/{p}/")), Some(PIP_ACCEPT)).await;
        assert_eq!(r.status(), 502, "{p}");
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        let b: Value = r.json().await.unwrap();
        assert!(b["error"].as_str().unwrap().contains("upstream"), "{b}");
    }
    // Unknown project: upstream's 404 passes through.
    let r = get(&gate.url("/simple/no-such-project/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 404);
    // Upstream down: 502 JSON.
    let down = start_gate_upstream_down().await;
    let r = get(&down.url("/simple/demo-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("10"));
    down.running.stop().await.unwrap();
    gate.running.stop().await.unwrap();
}

async fn start_gate_upstream_down() -> GateUnderTest {
    let fake = FakePypi::start().await;
    let bad = "http://127.0.0.1:1/simple/".to_string();
    start_gate(
        &fake,
        "{}",
        vec![],
        &[(pkggate::env::PYPI_UPSTREAM_SIMPLE, bad.as_str())],
    )
    .await
}

#[tokio::test]
async fn min_age_uses_upload_time_at_both_gates() {
    let (fake, gate) = setup("ecosystems:\n  PyPI:\n    min_package_age_days: 7\n").await;
    let v = json_page(&gate, "young-pkg").await;
    assert_eq!(v["versions"], serde_json::json!(["1.0.0"]));
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    let page: Value = serde_json::from_str(&fake.json_page("young-pkg").unwrap()).unwrap();
    let up = page["files"][1]["url"].as_str().unwrap();
    let rest = up.strip_prefix(&fake.files_base()).unwrap();
    let before = fake.file_requests();
    let r = get(&gate.url(&format!("/files/young-pkg/{rest}")), None).await;
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["rule"], "min_package_age_days");
    assert_eq!(b["reason"], "version published 1d ago, minimum is 7d");
    assert_eq!(fake.file_requests(), before);
    gate.running.stop().await.unwrap();
}

/// Files whose version cannot be derived are decided as one pseudo-version whose publish
/// time is their latest upload: a minimum-age rule holds them back at both gates while one
/// of them is too young.
#[tokio::test]
async fn min_age_applies_to_files_of_unknown_version() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let odd = |p: &str, age: i64, tag: &str| {
        FakeFile::wheel(p, "0.1.0", days_ago(age)).named(&format!("{p}-{tag}.rpm"))
    };
    fake.add("odd-pkg", vec![odd("odd-pkg", 100, "nightly")]);
    fake.add(
        "odd-young-pkg",
        vec![
            FakeFile::wheel("odd-young-pkg", "1.0.0", days_ago(100)),
            odd("odd-young-pkg", 100, "old"),
            odd("odd-young-pkg", 1, "new"),
        ],
    );
    let gate = start_gate(
        &fake,
        "ecosystems:\n  PyPI:\n    min_package_age_days: 7\n",
        standard_records(),
        &[],
    )
    .await;
    // Old enough: listed and served.
    let v = json_page(&gate, "odd-pkg").await;
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    let r = get(v["files"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status(), 200);
    // One of them uploaded yesterday: both leave the page, the known version stays …
    let v = json_page(&gate, "odd-young-pkg").await;
    let names: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["odd_young_pkg-1.0.0-py3-none-any.whl"]);
    // … and the file gate refuses them before the file host is asked.
    for tag in ["new", "old"] {
        let rest = upstream_rest(&fake, "odd-young-pkg", &format!("odd-young-pkg-{tag}.rpm"));
        let before = fake.file_requests();
        let r = get(&gate.url(&format!("/files/odd-young-pkg/{rest}")), None).await;
        assert_eq!(r.status(), 403, "{tag}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["rule"], "min_package_age_days", "{tag}");
        assert_eq!(fake.file_requests(), before, "{tag}");
    }
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn projects_blocked_outright_are_refused_and_leave_the_root() {
    let (fake, gate) = setup("denylist: [demo-pkg]\n").await;
    let before = fake.simple_requests();
    let r = get(&gate.url("/simple/evil-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(
        fake.simple_requests(),
        before,
        "refused without asking upstream"
    );
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["source"], "MAL-2026-0002");
    let r = get(&gate.url("/simple/demo-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 403);
    let root = get(&gate.url("/simple/"), Some("text/html")).await;
    assert_eq!(root.status(), 200);
    assert_eq!(header(&root, "content-type").as_deref(), Some("text/html"));
    assert_eq!(header(&root, "vary").as_deref(), Some("Accept"));
    let body = root.text().await.unwrap();
    assert!(body.contains("young-pkg"), "{body}");
    assert!(!body.contains("evil-pkg"), "{body}");
    assert!(!body.contains("demo-pkg"), "{body}");
    assert_eq!(
        fake.counters.root.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    gate.running.stop().await.unwrap();
}

/// Every PyPI gate refuses a project blocked outright before upstream hears its name:
/// file downloads (a lockfile install never fetched the index) and the legacy JSON API too.
#[tokio::test]
async fn blocked_outright_projects_never_reach_upstream_at_any_gate() {
    use std::sync::atomic::Ordering::SeqCst;
    let (fake, gate) = setup("denylist: [demo-pkg]\ninternal_namespaces: ['corp-*']\n").await;
    let upstream = |f: &FakePypi| {
        (
            f.counters.simple.load(SeqCst),
            f.counters.legacy.load(SeqCst),
            f.counters.files.load(SeqCst),
        )
    };
    let before = upstream(&fake);
    for (path, rule, kind, version) in [
        (
            "/files/corp-secret/packages/corp_secret-1.0-py3-none-any.whl",
            "internal_namespace",
            "file",
            "1.0",
        ),
        (
            "/files/corp-secret/packages/corp_secret-1.0-py3-none-any.whl.metadata",
            "internal_namespace",
            "file",
            "1.0",
        ),
        (
            "/pypi/corp-secret/json",
            "internal_namespace",
            "legacy_json",
            "",
        ),
        (
            "/pypi/demo-pkg/1.0.0/json",
            "denylist",
            "legacy_json",
            "1.0.0",
        ),
        (
            "/files/demo-pkg/packages/demo_pkg-1.0.0.tar.gz",
            "denylist",
            "file",
            "1.0.0",
        ),
        (
            "/files/evil-pkg/packages/evil_pkg-1.0-py3-none-any.whl",
            "block_malicious",
            "file",
            "1.0",
        ),
    ] {
        let r = get(&gate.url(path), None).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            header(&r, "cache-control").as_deref(),
            Some("no-store"),
            "{path}"
        );
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["package"], path.split('/').nth(2).unwrap(), "{path}");
        assert_eq!(upstream(&fake), before, "upstream asked for {path}");
        let events = gate.audit.take();
        assert!(
            events.iter().any(|e| e.action == "block"
                && e.rule == rule
                && e.request_kind == kind
                && e.version == version),
            "{path}: {events:?}"
        );
    }
    gate.running.stop().await.unwrap();
}

/// The upstream path of `project`'s file `filename`, relative to the files base.
fn upstream_rest(fake: &FakePypi, project: &str, filename: &str) -> String {
    let page: Value = serde_json::from_str(&fake.json_page(project).unwrap()).unwrap();
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .and_then(|f| f["url"].as_str())
        .and_then(|u| u.strip_prefix(&fake.files_base()))
        .unwrap_or_else(|| panic!("{filename} not in {page}"))
        .to_string()
}

/// A release after the page was cached (a lockfile made elsewhere names it) is served once
/// pkggate asked upstream again — once, however often the file is asked for meanwhile.
#[tokio::test]
async fn a_file_released_after_the_page_was_cached_becomes_downloadable() {
    let (fake, gate) = setup("{}").await;
    json_page(&gate, "demo-pkg").await;
    let mut files = fake.projects.lock().unwrap()["demo-pkg"].clone();
    let new = FakeFile::wheel("demo-pkg", "3.0.0", days_ago(30));
    let want = new.body.clone();
    files.push(new);
    fake.add("demo-pkg", files);
    let rest = upstream_rest(&fake, "demo-pkg", "demo_pkg-3.0.0-py3-none-any.whl");
    let url = gate.url(&format!("/files/demo-pkg/{rest}"));
    let before = fake.simple_requests();
    let mut asked = 0;
    let got = crate::support::eventually(
        "the new release to be served",
        std::time::Duration::from_secs(10),
        async || {
            asked += 1;
            let r = get(&url, None).await;
            match r.status().as_u16() {
                200 => Some(r.bytes().await.unwrap()),
                404 => None,
                s => panic!("{url}: {s}"),
            }
        },
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(
        fake.simple_requests(),
        before + 1,
        "one new upstream page request for {asked} file requests"
    );
    gate.running.stop().await.unwrap();
}

/// A file listed without a sha256 makes pkggate ask upstream for the page again; when
/// upstream cannot answer then, the file is still served from the cached listing.
#[tokio::test]
async fn an_unhashed_file_is_served_when_the_page_cannot_be_asked_again() {
    let (fake, gate) = setup("{}").await;
    let v = json_page(&gate, "nohash-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    // From now on upstream's answer for the page is a redirect pkggate refuses (502).
    fake.redirect("/simple/nohash-pkg/", 302, "http://127.0.0.1:1/elsewhere/");
    crate::support::eventually(
        "a download that asked upstream for the page again",
        std::time::Duration::from_secs(10),
        async || {
            let r = get(&url, None).await;
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            (fake.redirect_requests() > 0).then_some(())
        },
    )
    .await;
    // Served again while upstream still cannot answer.
    assert_eq!(get(&url, None).await.status(), 200);
    gate.running.stop().await.unwrap();
}

/// The index is the authority: a file a page lists is served whatever its name (pkggate
/// handed its URL out), while an unlisted file of another project's name stays 400.
#[tokio::test]
async fn listed_files_are_served_whatever_their_name() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    fake.add(
        "renamed-pkg",
        vec![FakeFile::wheel("old-name", "1.0.0", days_ago(100))],
    );
    let gate = start_gate(&fake, "{}", standard_records(), &[]).await;
    let v = json_page(&gate, "renamed-pkg").await;
    assert_eq!(v["files"][0]["filename"], "old_name-1.0.0-py3-none-any.whl");
    let r = get(v["files"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status(), 200);
    let r = get(
        &gate.url("/files/renamed-pkg/packages/x/other_name-1.0.0-py3-none-any.whl"),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    gate.running.stop().await.unwrap();
}

/// An upstream that serves only PEP 691 JSON: the root is filtered and answered in the
/// representation each client asked for.
#[tokio::test]
async fn a_json_only_upstream_root_is_answered_as_each_client_asks() {
    let (fake, gate) = setup("denylist: [demo-pkg]\n").await;
    fake.set_mode(Mode::JsonOnly);
    let r = get(&gate.url("/simple/"), Some("text/html")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type").as_deref(), Some("text/html"));
    assert_eq!(header(&r, "vary").as_deref(), Some("Accept"));
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<a href="young-pkg/">young-pkg</a>"#),
        "{html}"
    );
    assert!(!html.contains("demo-pkg"), "{html}");
    assert!(!html.contains("evil-pkg"), "{html}");
    let r = get(&gate.url("/simple/"), Some(PIP_ACCEPT)).await;
    assert_eq!(header(&r, "content-type").as_deref(), Some(JSON_CT));
    let v: Value = r.json().await.unwrap();
    let names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"young-pkg"), "{names:?}");
    assert!(
        !names.contains(&"demo-pkg") && !names.contains(&"evil-pkg"),
        "{names:?}"
    );
    gate.running.stop().await.unwrap();
}

/// A root whose links point at upstream's own root URL: they are made relative, so a client
/// that follows them stays on pkggate (and blocked projects still leave).
#[tokio::test]
async fn root_links_to_the_upstream_root_stay_on_pkggate() {
    let (fake, gate) = setup("denylist: [demo-pkg]\n").await;
    let up = fake.simple_base();
    *fake.root_body.lock().unwrap() = Some(bytes::Bytes::from(format!(
        "<!DOCTYPE html><html><body>\n<a href=\"{up}young-pkg/\">young-pkg</a><br/>\n<a href=\"{up}demo-pkg/\">demo-pkg</a><br/>\n<a href=\"/simple/rel-pkg/\">rel-pkg</a><br/>\n</body></html>\n"
    )));
    let r = get(&gate.url("/simple/"), Some("text/html")).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(
        body,
        "<!DOCTYPE html><html><body>\n<a href=\"young-pkg/\">young-pkg</a><br/>\n<a href=\"/simple/rel-pkg/\">rel-pkg</a><br/>\n</body></html>\n"
    );
    // Followed from pkggate's root, the link is pkggate's page.
    let link = url::Url::parse(&gate.url("/simple/"))
        .unwrap()
        .join("young-pkg/")
        .unwrap();
    assert_eq!(link.as_str(), gate.url("/simple/young-pkg/"));
    assert_eq!(get(link.as_str(), Some(PIP_ACCEPT)).await.status(), 200);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn recorded_root_is_streamed_and_filtered() {
    let fake = FakePypi::start().await;
    let root = gunzip(&crate::support::shared().join("fixtures/registry/pypi/root.v1.html.gz"));
    let lines = root.iter().filter(|&&b| b == b'\n').count();
    *fake.root_body.lock().unwrap() = Some(bytes::Bytes::from(root.clone()));
    let gate = start_gate(
        &fake,
        "denylist: [0-core-client]\ninternal_namespaces: ['0-orch*']\n",
        vec![mal_all("MAL-2026-0100", "0.618")],
        &[],
    )
    .await;
    let r = get(&gate.url("/simple/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/vnd.pypi.simple.v1+html")
    );
    assert!(
        header(&r, "content-length").is_none(),
        "streamed, not buffered"
    );
    let body = r.bytes().await.unwrap();
    let out_lines = body.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(out_lines, lines - 3);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains("href=\"0-core-client/\""));
    assert!(!text.contains("href=\"0-orchestrator/\""));
    assert!(!text.contains("href=\"0-618/\""));
    assert!(text.contains("href=\"0-0/\""));
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn legacy_json_is_filtered_like_the_index() {
    let (_fake, gate) = setup("{}").await;
    let r = get(&gate.url("/pypi/demo-pkg/json"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    let v: Value = r.json().await.unwrap();
    let releases = v["releases"].as_object().unwrap();
    assert!(releases.contains_key("1.0.0") && releases.contains_key("1.1.0"));
    assert!(!releases.contains_key("2.0.0"));
    assert_ne!(v["info"]["version"], "2.0.0");
    for f in v["urls"].as_array().unwrap() {
        let u = f["url"].as_str().unwrap();
        assert!(
            u.starts_with(&format!("{}/files/demo-pkg/", gate.base)),
            "{u}"
        );
    }
    for f in releases["1.0.0"].as_array().unwrap() {
        let u = f["url"].as_str().unwrap();
        let r = get(u, None).await;
        assert_eq!(r.status(), 200, "{u}");
    }
    assert_eq!(
        get(&gate.url("/pypi/demo-pkg/2.0.0/json"), None)
            .await
            .status(),
        404
    );
    let r = get(&gate.url("/pypi/demo-pkg/1.0.0/json"), None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["info"]["version"], "1.0.0");
    assert_eq!(
        get(&gate.url("/pypi/nope-nope/json"), None).await.status(),
        404
    );
    let r = get(&gate.url("/pypi/Demo_Pkg/json"), None).await;
    assert_eq!(r.status(), 301);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn repository_url_rule_uses_the_legacy_document_when_needed() {
    let (fake, gate) = setup("require_repository_url: true\n").await;
    let v = json_page(&gate, "demo-pkg").await;
    assert_eq!(v["versions"], serde_json::json!(["1.0.0", "1.1.0"]));
    assert_eq!(
        fake.counters
            .legacy
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    gate.running.stop().await.unwrap();
    let (fake, gate) = setup("{}").await;
    json_page(&gate, "demo-pkg").await;
    assert_eq!(
        fake.counters
            .legacy
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "fetched only when the policy needs it"
    );
    gate.running.stop().await.unwrap();
}

/// Requests that arrive while the legacy document is being fetched wait for that fetch
/// instead of each asking upstream for a document that can be megabytes (here: a lockfile
/// install downloading files of one project at once, no index request first).
#[tokio::test]
async fn concurrent_requests_share_one_legacy_fetch() {
    let (fake, gate) = setup("require_repository_url: true\n").await;
    let legacy = || {
        fake.counters
            .legacy
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let page: Value = serde_json::from_str(&fake.json_page("demo-pkg").unwrap()).unwrap();
    let urls: Vec<String> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap())
        .filter(|u| u.contains("1.0.0"))
        .map(|u| {
            let rest = u.strip_prefix(&fake.files_base()).unwrap();
            gate.url(&format!("/files/demo-pkg/{rest}"))
        })
        .collect();
    assert!(!urls.is_empty());
    let held = fake.legacy_gate.clone().write_owned().await;
    let downloads: Vec<_> = (0..8)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            tokio::spawn(async move { get(&url, None).await.status() })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while legacy() == 0 {
        assert!(std::time::Instant::now() < deadline, "no legacy fetch");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every request is in by now or soon: a second fetch would show within this window.
    let window = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < window && legacy() == 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(held);
    for d in downloads {
        assert_eq!(d.await.unwrap(), 200);
    }
    assert_eq!(legacy(), 1);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn validators_cover_the_output() {
    let (_fake, gate) = setup("{}").await;
    let url = gate.url("/simple/demo-pkg/");
    let r = get(&url, Some(PIP_ACCEPT)).await;
    let etag = header(&r, "etag").unwrap();
    let r2 = client()
        .get(&url)
        .header("accept", PIP_ACCEPT)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 304);
    assert_eq!(header(&r2, "etag").as_deref(), Some(etag.as_str()));
    let html = get(&url, Some("text/html")).await;
    assert_ne!(header(&html, "etag").unwrap(), etag);
    // Another policy: another ETag for the same upstream page.
    let (_fake2, gate2) = setup("denylist: ['demo-pkg@1.1.0']\n").await;
    let r3 = get(&gate2.url("/simple/demo-pkg/"), Some(PIP_ACCEPT)).await;
    assert_ne!(header(&r3, "etag").unwrap(), etag);
    gate.running.stop().await.unwrap();
    gate2.running.stop().await.unwrap();
}

#[tokio::test]
async fn recorded_pages_pass_through_with_every_url_rewritten() {
    let fake = FakePypi::start().await;
    for (p, json) in [
        ("requests", true),
        ("python-dateutil", false),
        ("pytz", false),
        ("django", true),
        ("six", false),
    ] {
        fake.add_fixture(p, json);
    }
    let gate = start_gate(&fake, "{}", vec![], &[]).await;
    let fast_series = r#"pkggate_cache_lookups_total{cache="pypi_page_fast_index",result="hit"} "#;
    let fast = || {
        pkggate::metrics::render_registry()
            .lines()
            .find_map(|l| {
                l.strip_prefix(fast_series)
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let fast_before = fast();
    for p in ["requests", "python-dateutil", "pytz", "django", "six"] {
        let (ct, upstream) = fake.raw.lock().unwrap().get(p).cloned().unwrap();
        let page = pkggate_formats::pypi::parse_project_page(
            p,
            &upstream,
            pkggate_formats::pypi::SimpleFormat::from_media_type(&ct),
            &format!("{}{p}/", fake.simple_base()),
        )
        .unwrap();
        let v = json_page(&gate, p).await;
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), page.files.len(), "{p}");
        for (f, up) in files.iter().zip(&page.files) {
            let u = f["url"].as_str().unwrap();
            assert!(u.starts_with(&format!("{}/files/{p}/", gate.base)), "{u}");
            assert!(
                u.ends_with(&pkggate::pypi::paths::encode_segment(&up.filename)),
                "{u}"
            );
            assert_eq!(f["filename"], up.filename.as_str());
        }
        let r = get(&gate.url(&format!("/simple/{p}/")), Some("text/html")).await;
        let html = r.text().await.unwrap();
        assert_eq!(html.matches("<a ").count(), page.files.len(), "{p}");
    }
    // The recorded JSON pages (requests, django) were indexed by the one-pass scanner, not
    // left to the full parser (the registry is shared by concurrent tests: at least ours).
    assert!(fast() >= fast_before + 2.0, "{fast_before} -> {}", fast());
    // pytz's eggs and non-PEP 440 versions get through the gate, and are decided.
    let r = get(&gate.url("/simple/pytz/"), Some(PIP_ACCEPT)).await;
    let v: Value = r.json().await.unwrap();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["filename"].as_str().unwrap().ends_with(".egg"))
    );
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn files_of_unknown_version_are_still_decided() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let odd =
        |p: &str| FakeFile::wheel(p, "0.1.0", days_ago(100)).named(&format!("{}-nightly.rpm", p));
    fake.add("evil-pkg", vec![odd("evil-pkg")]);
    fake.add("odd-pkg", vec![odd("odd-pkg")]);
    let gate = start_gate(&fake, "{}", standard_records(), &[]).await;
    // Allowed (and listed with a pkggate URL) when nothing covers the whole project …
    let v = json_page(&gate, "odd-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&gate.base), "{url}");
    assert_eq!(get(&url, None).await.status(), 200);
    // … refused when an advisory covers every version.
    let r = get(&gate.url("/simple/evil-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 403);
    let page: Value = serde_json::from_str(&fake.json_page("evil-pkg").unwrap()).unwrap();
    let rest = page["files"][0]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&fake.files_base())
        .unwrap()
        .to_string();
    let before = fake.file_requests();
    let r = get(&gate.url(&format!("/files/evil-pkg/{rest}")), None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(fake.file_requests(), before);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_version_block_removes_such_files_and_refuses_their_download() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    fake.add(
        "odd-pkg",
        vec![
            FakeFile::wheel("odd-pkg", "1.0.0", days_ago(100)),
            FakeFile::wheel("odd-pkg", "0.1.0", days_ago(100)).named("odd-pkg-nightly.rpm"),
        ],
    );
    let gate = start_gate(&fake, "unknown_version: block", standard_records(), &[]).await;
    let v = json_page(&gate, "odd-pkg").await;
    let names: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["odd_pkg-1.0.0-py3-none-any.whl"]);
    // Its URL, as upstream lists it, is refused before upstream's file host is asked.
    let page: Value = serde_json::from_str(&fake.json_page("odd-pkg").unwrap()).unwrap();
    let odd = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == "odd-pkg-nightly.rpm")
        .unwrap();
    let rest = odd["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&fake.files_base())
        .unwrap()
        .to_string();
    let before = fake.file_requests();
    let r = get(&gate.url(&format!("/files/odd-pkg/{rest}")), None).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("unknown_version"),
        "{body}"
    );
    assert_eq!(fake.file_requests(), before);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_file_hash_block_refuses_unhashed_files_and_audits() {
    let (fake, gate) = setup("unknown_file_hash: block").await;
    let v = json_page(&gate, "nohash-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    let before = fake.file_requests();
    let r = get(&url, None).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("integrity_unknown"),
        "{body}"
    );
    assert_eq!(
        fake.file_requests(),
        before,
        "upstream asked for a refused file"
    );
    let events = gate.audit.take();
    assert!(
        events.iter().any(|e| e.action == "block"
            && e.rule == "integrity_unknown"
            && e.package == "nohash-pkg"
            && e.version == "1.0.0"),
        "{events:?}"
    );
    // Hashed files are unaffected.
    let v = json_page(&gate, "demo-pkg").await;
    let r = get(v["files"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status(), 200);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn npm_packages_named_simple_pypi_or_files_stay_npm() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let gate = start_gate(
        &fake,
        "{}",
        standard_records(),
        &[(pkggate::env::UPSTREAM_NPM, "http://127.0.0.1:1/")],
    )
    .await;
    for (path, accept) in [
        ("/files/-/files-1.0.0.tgz", "*/*"),
        ("/pypi/-/pypi-1.0.0.tgz", "*/*"),
        ("/simple/-/simple-1.0.0.tgz", "*/*"),
        ("/simple", "application/vnd.npm.install-v1+json"),
        ("/simple/latest", "application/json"),
        ("/files/1.0.0", "application/json"),
    ] {
        let r = get(&gate.url(path), Some(accept)).await;
        // The npm adapter answers (its upstream is down here): never PyPI's 301 or 400.
        assert!(
            r.status() != 301 && r.status() != 400 && r.status() != 200,
            "{path}: {}",
            r.status()
        );
    }
    // pip's requests are still PyPI's.
    let r = get(&gate.url("/simple/demo-pkg"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 301);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_cold_requests_for_a_page_make_one_upstream_fetch() {
    let fake = FakePypi::start().await;
    fake.add_fixture("numpy", true);
    let gate = start_gate(&fake, "{}", standard_records(), &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let url = gate.url("/simple/numpy/");
        tasks.push(tokio::spawn(async move {
            let r = get(&url, Some(PIP_ACCEPT)).await;
            (r.status().as_u16(), r.bytes().await.unwrap())
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200);
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "same page for all");
    assert_eq!(
        fake.simple_requests(),
        1,
        "one upstream fetch for 40 requests"
    );
    // Every request was decided and audited for itself.
    let summaries = gate
        .audit
        .take()
        .iter()
        .filter(|e| e.package == "numpy" && e.request_kind == "simple_index")
        .count();
    assert_eq!(summaries, 40);
    gate.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_index_digest_is_refused_before_the_file_host_is_asked() {
    let (fake, gate) = setup("{}").await;
    let page = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": "badhash-pkg",
        "files": [{
            "filename": "badhash_pkg-1.0.0-py3-none-any.whl",
            "url": format!("{}packages/aa/badhash_pkg-1.0.0-py3-none-any.whl", fake.files_base()),
            "hashes": {"sha256": "not-a-digest"},
        }],
    });
    fake.set_raw(
        "badhash-pkg",
        "application/vnd.pypi.simple.v1+json",
        &page.to_string(),
    );
    let v = json_page(&gate, "badhash-pkg").await;
    let url = v["files"][0]["url"].as_str().unwrap().to_string();
    let before = fake.file_requests();
    let r = get(&url, None).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("malformed sha256"), "{body}");
    assert_eq!(fake.file_requests(), before);
    gate.running.stop().await.unwrap();
}
