//! Security and robustness probes of the PyPI gates, over HTTP against a pkggate started
//! here: client credentials never reach an upstream, hostile `/files/` paths never leave the
//! configured files base, hostile or oversized upstream pages end in a bounded 502, response
//! headers (`no-store`, `Vary`, no upstream cookies), and files cut short by upstream.
//!
//! Besides the [`FakePypi`], a scripted raw upstream ([`RawUpstream`]) answers byte for
//! byte what a test sets (lying `Content-Length`, truncated bodies, cookies), and a
//! [`Tripwire`] counts every connection made to it. All on 127.0.0.1.

use crate::pypi_fake::*;
use crate::pypi_http::*;
use crate::raw_http::*;
use bytes::Bytes;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Every probe request must be answered within this.
const BOUND: Duration = Duration::from_secs(5);

/// One raw request (the path is sent as is: no client library normalises it); the status
/// code and the whole answer as text.
async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, out) = crate::raw_http::raw_request(&addr.to_string(), "GET", path, &[]).await;
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_ne!(status, 0, "no HTTP answer for {path}: {out:?}");
    (status, out)
}

impl RawUpstream {
    /// Answer `path` with a page of `content_type` (framed by `Content-Length`).
    fn page(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        let body = body.into();
        self.answer(path, framed(200, &[("Content-Type", content_type)], &body));
    }
}

/// pkggate in front of a [`RawUpstream`] (`<origin>/simple/` and `<origin>/files-host/`).
async fn gate_on_raw(
    up: &RawUpstream,
    policy: &str,
    extra: &[(&str, &str)],
) -> (FakePypi, GateUnderTest) {
    let unused = FakePypi::start().await;
    let simple = format!("{}/simple/", up.origin());
    let files = format!("{}/files-host/", up.origin());
    let mut env = vec![
        (pkggate::env::PYPI_UPSTREAM_SIMPLE, simple.as_str()),
        (pkggate::env::PYPI_UPSTREAM_FILES, files.as_str()),
    ];
    env.extend_from_slice(extra);
    let gate = start_gate(&unused, policy, vec![], &env).await;
    (unused, gate)
}

/// A PEP 691 page: `(filename, url, sha256, size)` per file, uploaded long ago.
fn json_page(project: &str, files: &[(&str, String, Option<String>, Option<u64>)]) -> String {
    let files: Vec<Value> = files
        .iter()
        .map(|(name, url, sha, size)| {
            let mut f = json!({
                "filename": name,
                "url": url,
                "hashes": sha.as_ref().map_or(json!({}), |s| json!({"sha256": s})),
                "upload-time": iso(days_ago(100)),
            });
            if let Some(s) = size {
                f["size"] = json!(s);
            }
            f
        })
        .collect();
    json!({"meta": {"api-version": "1.1"}, "name": project, "files": files}).to_string()
}

async fn standard_gate(policy: &str) -> (FakePypi, GateUnderTest) {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let gate = start_gate(&fake, policy, standard_records(), &[]).await;
    (fake, gate)
}

/// The file URLs the gate lists for `project` (JSON page).
async fn listed_urls(gate: &GateUnderTest, project: &str) -> Vec<String> {
    let r = get(&gate.url(&format!("/simple/{project}/")), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200, "page of {project}");
    let v: Value = r.json().await.unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap().to_string())
        .collect()
}

/// The gate's URL of `project`'s file `filename` (as the fake lists it), built without
/// asking the gate for the page.
fn gate_file_url(fake: &FakePypi, gate: &GateUnderTest, project: &str, filename: &str) -> String {
    let page: Value = serde_json::from_str(&fake.json_page(project).unwrap()).unwrap();
    let url = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .and_then(|f| f["url"].as_str())
        .unwrap_or_else(|| panic!("{filename} not in {page}"))
        .to_string();
    let rest = url.strip_prefix(&fake.files_base()).unwrap();
    gate.url(&format!("/files/{project}/{rest}"))
}

fn seen_paths(fake: &FakePypi) -> Vec<String> {
    fake.seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

/// 1. `Authorization`, `Cookie` and `Proxy-Authorization` of a client never reach an upstream,
/// on any PyPI route (root, page, legacy JSON, file, `.metadata`, signed off-host file).
#[tokio::test]
async fn client_credentials_never_reach_the_upstreams() {
    let (fake, gate) = standard_gate("{}").await;
    let demo = listed_urls(&gate, "demo-pkg").await;
    let rel = listed_urls(&gate, "rel-pkg").await;
    fake.seen.lock().unwrap().clear();
    let wheel = demo
        .iter()
        .find(|u| u.ends_with("demo_pkg-1.0.0-py3-none-any.whl"))
        .unwrap()
        .clone();
    let mut urls = vec![
        gate.url("/simple/"),
        gate.url("/simple/demo-pkg/"),
        gate.url("/simple/young-pkg/"),
        gate.url("/pypi/demo-pkg/json"),
        gate.url("/pypi/demo-pkg/1.0.0/json"),
        format!("{wheel}.metadata"),
        wheel,
        rel[0].clone(),
    ];
    // Cold caches for the file gate too: the page is fetched on behalf of the file request.
    urls.push(gate_file_url(
        &fake,
        &gate,
        "nohash-pkg",
        "nohash_pkg-1.0.0-py3-none-any.whl",
    ));
    for url in &urls {
        let r = client()
            .get(url)
            .header("accept", PIP_ACCEPT)
            .header("authorization", "Basic Y2xpZW50OmNsaWVudC1zZWNyZXQ=")
            .header("cookie", "session=client-secret")
            .header("proxy-authorization", "Bearer client-secret")
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{url}: {}", r.status());
        let _ = r.bytes().await;
    }
    let seen = fake.seen.lock().unwrap().clone();
    for want in [
        "/simple/",
        "/pypi/demo-pkg/json",
        "/pypi/demo-pkg/1.0.0/json",
    ] {
        assert!(seen.iter().any(|(p, _)| p == want), "{want} not asked");
    }
    assert!(seen.iter().any(|(p, _)| p.starts_with("/packages/")));
    assert!(seen.iter().any(|(p, _)| p.starts_with("/rel/")));
    for (path, headers) in &seen {
        for name in ["authorization", "cookie", "proxy-authorization"] {
            assert!(headers.get(name).is_none(), "{name} reached {path}");
        }
        for (name, v) in headers {
            let v = String::from_utf8_lossy(v.as_bytes());
            assert!(
                !v.contains("client-secret") && !v.contains("Y2xpZW50"),
                "{name}: {v} reached {path}"
            );
        }
    }
    gate.running.stop().await.unwrap();
}

/// 2. Hostile `/files/` paths (encoded separators and dots, double encoding, NUL, overlong
/// UTF-8, lookalike characters, overlong paths, forged or tampered `~u/` tokens): 400, 403
/// or 404, never a 5xx, answered quickly, and the files host is never asked.
#[tokio::test]
async fn hostile_file_paths_never_reach_the_files_host() {
    let (fake, gate) = standard_gate("{}").await;
    let rel = listed_urls(&gate, "rel-pkg").await[0].clone();
    let signed = rel.strip_prefix(&gate.base).unwrap().to_string();
    // /files/rel-pkg/~u/<hex>.<mac>/<filename>
    let parts: Vec<&str> = signed.split('/').collect();
    let (hexurl, mac) = parts[4].split_once('.').unwrap();
    let file = parts[5];
    let flip = |s: &str, i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    let other_url = hex::encode(
        String::from_utf8(hex::decode(hexurl).unwrap())
            .unwrap()
            .replace("/rel/", "/moved/rel/"),
    );
    let w = "demo_pkg-1.0.0-py3-none-any.whl";
    let long_dirs = "a/".repeat(3000);
    let long_seg = "b".repeat(20_000);
    let long_hex = "ab".repeat(20_000);
    let huge_seg = "c".repeat(70_000);
    let mut paths: Vec<String> = [
        // Double encoding: `%252e` is a literal `%2e`, never a dot.
        format!("/files/demo-pkg/packages/%252e%252e/%252e%252e/{w}"),
        format!("/files/demo-pkg/%252e%252e%252fsimple/{w}"),
        format!("/files/demo-pkg/packages/%2E%2E%2F/{w}"),
        format!("/files/demo-pkg/packages/.%2e/{w}"),
        format!("/files/demo-pkg/packages/%2e/{w}"),
        format!("/files/demo-pkg/packages/..%5c..%5c/{w}"),
        format!("/files/demo-pkg/packages/x/{w}%00"),
        format!("/files/demo-pkg/packages/%00/{w}"),
        format!("/files/demo-pkg/packages/%0d%0aX-Injected:%201/{w}"),
        // Overlong UTF-8 dots and slashes (not UTF-8 at all).
        format!("/files/demo-pkg/%C0%AE%C0%AE/{w}"),
        format!("/files/demo-pkg/%C0%AF/{w}"),
        // Lookalikes: fullwidth dots and solidus, one/two-dot leaders, division slash.
        format!("/files/demo-pkg/%EF%BC%8E%EF%BC%8E/{w}"),
        format!("/files/demo-pkg/%EF%BC%8F/{w}"),
        format!("/files/demo-pkg/%E2%80%A5/{w}"),
        format!("/files/demo-pkg/%E2%88%95simple/{w}"),
        format!("/files/demo-pkg/%E2%80%A4%E2%80%A4/{w}"),
        // Another URL hidden in a segment.
        format!("/files/demo-pkg/http:%2F%2F127.0.0.1:1%2F/{w}"),
        format!("/files/demo-pkg/@127.0.0.1:1/{w}"),
        format!("/files/demo-pkg/%7Eu/{hexurl}.{mac}/{file}"),
        // Overlong paths.
        format!("/files/demo-pkg/{long_dirs}{w}"),
        format!("/files/demo-pkg/{long_seg}/{w}"),
        format!("/files/demo-pkg/{huge_seg}/{w}"),
        // Signed paths: MAC, URL, project or filename changed; odd shapes.
        format!("/files/rel-pkg/~u/{hexurl}.{}/{file}", flip(mac, 0)),
        format!(
            "/files/rel-pkg/~u/{hexurl}.{}/{file}",
            flip(mac, mac.len() - 1)
        ),
        format!(
            "/files/rel-pkg/~u/{hexurl}.{}/{file}",
            &mac[..mac.len() - 2]
        ),
        format!("/files/rel-pkg/~u/{hexurl}.{mac}{mac}/{file}"),
        format!("/files/rel-pkg/~u/{other_url}.{mac}/{file}"),
        format!(
            "/files/rel-pkg/~u/{}.{mac}/{file}",
            &hexurl[..hexurl.len() - 1]
        ),
        format!("/files/rel-pkg/~u/{hexurl}.{mac}/rel_pkg-9.9.9-py3-none-any.whl"),
        format!("/files/demo-pkg/~u/{hexurl}.{mac}/{file}"),
        format!("/files/rel-pkg/~u/{hexurl}.{mac}/x/{file}"),
        format!("/files/rel-pkg/~u/{hexurl}/{file}"),
        format!("/files/rel-pkg/~u/.{mac}/{file}"),
        format!("/files/rel-pkg/~u/{long_hex}.{mac}/{file}"),
        format!("/files/rel-pkg/~u/zz.{mac}/{file}"),
        format!("/files/rel-pkg/~u/{hexurl}.{mac}/"),
        "/files/rel-pkg/~u/".to_string(),
        "/files/rel-pkg/~u".to_string(),
    ]
    .into();
    // A signed URL is not a plain one, and a plain one is not signed.
    paths.push(format!("/files/rel-pkg/rel/{file}"));
    for path in &paths {
        let started = Instant::now();
        let (status, body) = raw_get(gate.running.addr, path).await;
        let shown: String = path.chars().take(120).collect();
        assert!(
            matches!(status, 400 | 403 | 404 | 414 | 431),
            "{shown}: {status} {}",
            body.chars().take(300).collect::<String>()
        );
        assert!(!body.contains("X-Injected"), "{shown}: {body}");
        assert!(
            started.elapsed() < BOUND,
            "{shown} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(fake.file_requests(), 0, "{:?}", seen_paths(&fake));
    for p in seen_paths(&fake) {
        assert!(
            p == "/simple/demo-pkg/" || p == "/simple/rel-pkg/",
            "unexpected upstream request {p}"
        );
    }
    // The genuine signed URL still works after all that.
    let r = get(&rel, None).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    gate.running.stop().await.unwrap();
}

/// 2b. The project segment of a `/files/` path is only checked for PEP 503 normal form,
/// never for being a valid project name, and is then joined onto the simple base as a
/// relative reference: `https:<host>:<port>` becomes an absolute URL (another scheme than
/// the base's), `?` a query on the simple base (its root index). pkggate then fetches
/// "the project page" from wherever the client pointed it: SSRF to any host and port.
#[tokio::test]
async fn the_project_segment_of_a_file_path_cannot_steer_the_page_fetch() {
    let (fake, gate) = standard_gate("{}").await;
    let trap = Tripwire::start().await;
    let port = trap.addr.port();
    let mut answers = Vec::new();
    for path in [
        // 2130706433 is 127.0.0.1 as one number (WHATWG IPv4 parsing).
        format!("/files/https:2130706433:{port}/x/x-1.0.tar.gz"),
        format!("/files/https:127%252e0%252e0%252e1:{port}/x/x-1.0.tar.gz"),
        "/files/%3F/x/x-1.0.tar.gz".to_string(),
        "/files/%3Fq=1/x/x-1.0.tar.gz".to_string(),
        "/files/%23/x/x-1.0.tar.gz".to_string(),
    ] {
        let (status, body) = raw_get(gate.running.addr, &path).await;
        let reason = body.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        answers.push((path, status, reason));
    }
    assert_eq!(
        trap.hits.load(Ordering::SeqCst),
        0,
        "pkggate connected to a host named in the request path (root index fetched {} times): {answers:#?}",
        fake.counters.root.load(Ordering::SeqCst)
    );
    assert_eq!(
        fake.counters.root.load(Ordering::SeqCst),
        0,
        "root index fetched: {answers:#?}"
    );
    assert!(seen_paths(&fake).is_empty(), "{:?}", seen_paths(&fake));
    for (path, status, reason) in &answers {
        assert_eq!(*status, 400, "{path}: {reason}");
    }
    gate.running.stop().await.unwrap();
}

/// 2c. Credentials in a configured upstream URL (a private mirror,
/// `http://user:token@host/simple/`) are used to authenticate, but must never be shown to
/// clients: not in a signed `~u/` file URL (hex is not secret) and not in a 502 reason.
#[tokio::test]
async fn upstream_url_credentials_never_reach_clients() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    fake.redirect("/simple/err-pkg/", 500, "/");
    let simple = format!("http://probe-user:s3cret-token@{}/simple/", fake.simple);
    let gate = start_gate(
        &fake,
        "{}",
        vec![],
        &[(pkggate::env::PYPI_UPSTREAM_SIMPLE, simple.as_str())],
    )
    .await;
    let found = Mutex::new(Vec::new());
    let leaks = |what: &str, text: &str| {
        if text.contains("s3cret-token") {
            found.lock().unwrap().push(format!("{what}: {text}"));
        }
    };
    let r = get(&gate.url("/simple/rel-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    leaks("the page", &page);
    let v: Value = serde_json::from_str(&page).unwrap();
    let url = v["files"][0]["url"].as_str().unwrap();
    if let Some(token) = url.split("/~u/").nth(1) {
        let hexurl = token.split('.').next().unwrap();
        let decoded = String::from_utf8(hex::decode(hexurl).unwrap()).unwrap();
        leaks("the signed file URL", &decoded);
    }
    // The file (relative to the page, so on the credentialed host) still downloads, and
    // the credentials went to that host as basic authentication.
    let r = get(url, None).await;
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap();
    let sent_auth = fake.seen.lock().unwrap().iter().any(|(p, h)| {
        p.contains("/rel/")
            && h.get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Basic "))
    });
    assert!(
        sent_auth,
        "the file request to the credentialed host carried no credentials"
    );
    for path in ["/simple/err-pkg/", "/files/err-pkg/x/err_pkg-1.0.tar.gz"] {
        let r = get(&gate.url(path), Some(PIP_ACCEPT)).await;
        assert_eq!(r.status(), 502, "{path}");
        let headers = format!("{:?}", r.headers());
        leaks(&format!("headers of {path}"), &headers);
        leaks(&format!("the reason of {path}"), &r.text().await.unwrap());
    }
    let found = found.into_inner().unwrap();
    assert!(
        found.is_empty(),
        "the upstream password reached clients: {found:#?}"
    );
    gate.running.stop().await.unwrap();
}

/// The answer to one hostile page: a 200, or a 502 with a JSON reason; in bounded time.
async fn assert_bounded(gate: &GateUnderTest, path: &str, accept: &str) -> u16 {
    let started = Instant::now();
    let r = client()
        .get(gate.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:?}"));
    let status = r.status().as_u16();
    let ct = header(&r, "content-type").unwrap_or_default();
    let body = r.bytes().await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "{path} took {elapsed:?}");
    match status {
        200 => {}
        502 => {
            assert_eq!(ct, "application/json", "{path}");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                v["error"].as_str().unwrap().starts_with("upstream_error"),
                "{path}: {v}"
            );
        }
        s => panic!(
            "{path}: {s} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    }
    status
}

async fn assert_still_serving(gate: &GateUnderTest) {
    let r = get(&gate.url("/simple/ok-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200, "a normal page after the hostile ones");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    let r = get(&gate.url("/-/pkggate/health"), None).await;
    assert_eq!(r.status(), 200);
}

fn ok_page(up: &RawUpstream) {
    let url = format!("{}/files-host/ok_pkg-1.0.tar.gz", up.origin());
    up.page(
        "/simple/ok-pkg/",
        JSON_CT,
        json_page("ok-pkg", &[("ok_pkg-1.0.tar.gz", url, None, None)]),
    );
}

/// 3a. Documents larger than `PKGGATE_MAX_DOCUMENT_BYTES` (declared, close-delimited or
/// chunked; project page, legacy JSON, JSON root) end in a 502 with a reason, twice in a
/// row (no waiter inherits a stale lock), and the gate keeps serving.
#[tokio::test]
async fn documents_over_the_size_limit_are_502_and_the_gate_recovers() {
    const LIMIT: usize = 64 << 10;
    let up = RawUpstream::start().await;
    ok_page(&up);
    let files = format!("{}/files-host/", up.origin());
    let big_page = |project: &str| {
        let list: Vec<_> = (0..6000)
            .map(|i| {
                let f = format!("{}-1.{i}.tar.gz", project.replace('-', "_"));
                (f.clone(), format!("{files}{f}"))
            })
            .collect();
        let refs: Vec<_> = list
            .iter()
            .map(|(f, u)| (f.as_str(), u.clone(), None, None))
            .collect();
        json_page(project, &refs).into_bytes()
    };
    let body = big_page("big-cl");
    assert!(body.len() > 4 * LIMIT, "{}", body.len());
    up.page("/simple/big-cl/", JSON_CT, body);
    up.answer(
        "/simple/big-close/",
        unframed(200, &[("Content-Type", JSON_CT)], &big_page("big-close")),
    );
    let chunked = {
        let b = big_page("big-chunked");
        let mut out = Vec::new();
        for c in b.chunks(8192) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };
    up.answer(
        "/simple/big-chunked/",
        unframed(
            200,
            &[("Content-Type", JSON_CT), ("Transfer-Encoding", "chunked")],
            &chunked,
        ),
    );
    let legacy = json!({"info": {"name": "big-legacy", "version": "1.0", "summary": "x".repeat(4 * LIMIT)}, "releases": {}});
    up.page(
        "/pypi/big-legacy/json",
        "application/json",
        legacy.to_string(),
    );
    let root = json!({"meta": {"api-version": "1.1"}, "projects": (0..20_000).map(|i| json!({"name": format!("p{i}")})).collect::<Vec<_>>()});
    up.page("/simple/", JSON_CT, root.to_string());
    let limit = LIMIT.to_string();
    let (_unused, gate) = gate_on_raw(
        &up,
        "{}",
        &[(pkggate::env::MAX_DOCUMENT_BYTES, limit.as_str())],
    )
    .await;
    for _ in 0..2 {
        for path in [
            "/simple/big-cl/",
            "/simple/big-close/",
            "/simple/big-chunked/",
            "/pypi/big-legacy/json",
            "/simple/",
            "/files/big-cl/big_cl-1.0.tar.gz",
        ] {
            assert_eq!(assert_bounded(&gate, path, PIP_ACCEPT).await, 502, "{path}");
        }
    }
    assert_still_serving(&gate).await;
    gate.running.stop().await.unwrap();
}

/// 3b. Hostile pages under the default size limit: 100k nested `[` (in `files`, in an
/// unknown key, in a file, in the legacy `info`), 10 MB unterminated HTML constructs,
/// invalid UTF-8 in JSON and HTML. Each answer is a 200 or a 502 with a JSON
/// reason within the bound, and the gate keeps serving.
#[tokio::test]
async fn hostile_upstream_pages_end_in_bounded_time() {
    let up = RawUpstream::start().await;
    ok_page(&up);
    let files = format!("{}/files-host/", up.origin());
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deep_unclosed = "[".repeat(100_000);
    let head = |p: &str| format!(r#"{{"meta":{{"api-version":"1.1"}},"name":"{p}","#);
    let mut pages: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "deep-files",
            JSON_CT,
            format!("{}\"files\":{}}}", head("deep-files"), deep(100_000)).into_bytes(),
        ),
        (
            "deep-extra",
            JSON_CT,
            format!(
                "{}\"files\":[],\"x\":{}}}",
                head("deep-extra"),
                deep(100_000)
            )
            .into_bytes(),
        ),
        (
            "deep-unclosed",
            JSON_CT,
            format!("{}\"files\":[],\"x\":{deep_unclosed}", head("deep-unclosed")).into_bytes(),
        ),
        (
            "deep-file-key",
            JSON_CT,
            format!(
                "{}\"files\":[{{\"filename\":\"deep_file_key-1.0.tar.gz\",\"url\":\"{files}d.tar.gz\",\"hashes\":{{}},\"x\":{}}}]}}",
                head("deep-file-key"),
                deep(100_000)
            )
            .into_bytes(),
        ),
    ];
    let ten_mb = 10 << 20;
    let html = |p: &str, tail: String| {
        format!(
            "<!DOCTYPE html><html><body><a href=\"{files}{p}-1.0.tar.gz\">{p}-1.0.tar.gz</a>{tail}"
        )
        .into_bytes()
    };
    pages.push((
        "html-open-tag",
        "text/html",
        html("html-open-tag", format!("<a {}", "x ".repeat(ten_mb / 2))),
    ));
    pages.push((
        "html-open-quote",
        "text/html",
        html(
            "html-open-quote",
            format!("<a href=\"{}", "a".repeat(ten_mb)),
        ),
    ));
    pages.push((
        "html-open-comment",
        "text/html",
        html(
            "html-open-comment",
            format!("<!--{}", "<a ".repeat(ten_mb / 3)),
        ),
    ));
    pages.push((
        "html-many-attrs",
        "text/html",
        html(
            "html-many-attrs",
            format!("<a {}>x</a>", "a=b ".repeat(ten_mb / 4)),
        ),
    ));
    pages.push((
        "html-open-anchor",
        "text/html",
        html(
            "html-open-anchor",
            format!("<a href=x>{}", "<b>".repeat(ten_mb / 3)),
        ),
    ));
    let mut bad_json = json_page(
        "bad-utf8-json",
        &[(
            "bad_utf8_json-1.0.tar.gz",
            format!("{files}b.tar.gz"),
            None,
            None,
        )],
    )
    .into_bytes();
    let at = bad_json.len() / 2;
    bad_json.splice(at..at, [0xff, 0xfe, 0xc0, 0xaf]);
    pages.push(("bad-utf8-json", JSON_CT, bad_json));
    let mut bad_html = html("bad-utf8-html", String::new());
    bad_html.extend_from_slice(b"<a href=\"x\xff\xfe.tar.gz\">x\xc0\xaf</a>");
    pages.push(("bad-utf8-html", "text/html", bad_html));
    for (p, ct, body) in pages {
        up.page(&format!("/simple/{p}/"), ct, body);
    }
    up.page(
        "/pypi/deep-legacy/json",
        "application/json",
        format!("{{\"info\":{},\"releases\":{{}}}}", deep(100_000)),
    );
    up.page(
        "/pypi/bad-utf8-legacy/json",
        "application/json",
        b"{\"info\":{\"name\":\"x\xff\"},\"releases\":{}}".to_vec(),
    );
    let (_unused, gate) = gate_on_raw(&up, "{}", &[]).await;
    let mut outcome = Vec::new();
    for p in [
        "deep-files",
        "deep-extra",
        "deep-unclosed",
        "deep-file-key",
        "html-open-tag",
        "html-open-quote",
        "html-open-comment",
        "html-many-attrs",
        "html-open-anchor",
        "bad-utf8-json",
        "bad-utf8-html",
    ] {
        let path = format!("/simple/{p}/");
        for accept in [PIP_ACCEPT, "text/html"] {
            outcome.push((path.clone(), assert_bounded(&gate, &path, accept).await));
        }
    }
    for path in ["/pypi/deep-legacy/json", "/pypi/bad-utf8-legacy/json"] {
        outcome.push((
            path.into(),
            assert_bounded(&gate, path, "application/json").await,
        ));
    }
    // Malformed documents are refused, not passed on.
    for (path, status) in &outcome {
        if path.contains("deep-files") || path.contains("unclosed") || path.contains("bad-utf8") {
            assert_eq!(*status, 502, "{path}");
        }
    }
    assert_still_serving(&gate).await;
    gate.running.stop().await.unwrap();
}

/// 3c. A page of 200k tiny files (2,000 versions) is served whole, as JSON and as HTML, in
/// bounded time.
#[tokio::test]
async fn a_page_of_200k_tiny_files_is_served_in_bounded_time() {
    const FILES: usize = 200_000;
    let up = RawUpstream::start().await;
    ok_page(&up);
    let files = format!("{}/files-host/", up.origin());
    let mut many = String::from(r#"{"meta":{"api-version":"1.1"},"name":"many-files","files":["#);
    for i in 0..FILES {
        if i > 0 {
            many.push(',');
        }
        let (v, n) = (i / 100, i % 100);
        many.push_str(&format!(
            r#"{{"filename":"many_files-1.{v}-{n}-py3-none-any.whl","url":"{files}m/many_files-1.{v}-{n}-py3-none-any.whl","hashes":{{}}}}"#
        ));
    }
    many.push_str("]}");
    up.page("/simple/many-files/", JSON_CT, many);
    let (_unused, gate) = gate_on_raw(&up, "{}", &[]).await;
    assert_eq!(
        assert_bounded(&gate, "/simple/many-files/", PIP_ACCEPT).await,
        200
    );
    let r = get(&gate.url("/simple/many-files/"), Some(PIP_ACCEPT)).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), FILES);
    assert_eq!(
        assert_bounded(&gate, "/simple/many-files/", "text/html").await,
        200
    );
    assert_still_serving(&gate).await;
    gate.running.stop().await.unwrap();
}

/// 4a. Every 403 of the PyPI gates is `no-store`; every page (JSON, HTML, `?format=`, root,
/// legacy JSON, and 304 revalidations) says `Vary: Accept`.
#[tokio::test]
async fn every_refusal_is_no_store_and_every_page_varies_on_accept() {
    let policy = "min_package_age_days: 50\nunknown_file_hash: block\n";
    let (fake, gate) = standard_gate(policy).await;
    let file = |p: &str, f: &str| gate_file_url(&fake, &gate, p, f);
    let demo = listed_urls(&gate, "demo-pkg").await;
    let nohash = listed_urls(&gate, "nohash-pkg").await;
    let mut refusals = vec![
        // block_malicious (file of 2.0.0), outright (evil-pkg: page, file, legacy).
        file("demo-pkg", "demo_pkg-2.0.0-py3-none-any.whl"),
        gate.url("/simple/evil-pkg/"),
        file("evil-pkg", "evil_pkg-0.1.0-py3-none-any.whl"),
        gate.url("/pypi/evil-pkg/json"),
        gate.url("/pypi/evil-pkg/0.1.0/json"),
        // min age: young-pkg 1.1.0 is a day old.
        file("young-pkg", "young_pkg-1.1.0-py3-none-any.whl"),
    ];
    // unknown_file_hash: block.
    refusals.push(nohash[0].clone());
    for url in &refusals {
        let r = get(url, Some(PIP_ACCEPT)).await;
        assert_eq!(r.status(), 403, "{url}");
        assert_eq!(
            header(&r, "cache-control").as_deref(),
            Some("no-store"),
            "{url}"
        );
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("application/json")
        );
    }
    assert!(demo.iter().all(|u| !u.contains("2.0.0")));
    for (path, accept) in [
        ("/simple/demo-pkg/", PIP_ACCEPT),
        ("/simple/demo-pkg/", "text/html"),
        ("/simple/demo-pkg/?format=text/html", PIP_ACCEPT),
        ("/simple/", "text/html"),
        ("/simple/", JSON_CT),
        ("/pypi/demo-pkg/json", "application/json"),
    ] {
        let r = get(&gate.url(path), Some(accept)).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            header(&r, "vary").as_deref(),
            Some("Accept"),
            "{path} {accept}"
        );
        if let Some(etag) = header(&r, "etag") {
            let r = client()
                .get(gate.url(path))
                .header("accept", accept)
                .header("if-none-match", etag)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 304, "{path}");
            assert_eq!(header(&r, "vary").as_deref(), Some("Accept"), "304 {path}");
        }
    }
    gate.running.stop().await.unwrap();
}

/// 4b. An upstream `Set-Cookie` (page, root, legacy JSON, file, `.metadata`, error) never
/// reaches a client.
#[tokio::test]
async fn upstream_cookies_never_reach_clients() {
    let up = RawUpstream::start().await;
    let body = b"0123456789".repeat(100);
    let meta = b"Metadata-Version: 2.1\nName: cookie-pkg\nVersion: 1.0\n\n".to_vec();
    let file = "cookie_pkg-1.0-py3-none-any.whl";
    let file_url = format!("{}/files-host/c/{file}", up.origin());
    let mut page: Value = serde_json::from_str(&json_page(
        "cookie-pkg",
        &[(
            file,
            file_url,
            Some(sha256_hex(&body)),
            Some(body.len() as u64),
        )],
    ))
    .unwrap();
    page["files"][0]["core-metadata"] = json!({"sha256": sha256_hex(&meta)});
    let cookie = [("Set-Cookie", "upstream_session=leak; Path=/")];
    let with = |ct: &'static str| [cookie[0], ("Content-Type", ct)];
    up.answer(
        "/simple/cookie-pkg/",
        framed(200, &with(JSON_CT), page.to_string().as_bytes()),
    );
    up.answer(
        "/simple/",
        framed(
            200,
            &with("text/html"),
            b"<a href=\"/simple/cookie-pkg/\">cookie-pkg</a>",
        ),
    );
    let legacy = json!({"info": {"name": "cookie-pkg", "version": "1.0"}, "releases": {}});
    up.answer(
        "/pypi/cookie-pkg/json",
        framed(
            200,
            &with("application/json"),
            legacy.to_string().as_bytes(),
        ),
    );
    up.answer(
        &format!("/files-host/c/{file}"),
        framed(200, &with("application/octet-stream"), &body),
    );
    up.answer(
        &format!("/files-host/c/{file}.metadata"),
        framed(200, &with("application/octet-stream"), &meta),
    );
    up.answer(
        "/simple/broken-pkg/",
        framed(500, &with("text/plain"), b"upstream broke"),
    );
    let (_unused, gate) = gate_on_raw(&up, "{}", &[]).await;
    let url = listed_urls(&gate, "cookie-pkg").await[0].clone();
    for (u, want) in [
        (gate.url("/simple/cookie-pkg/"), 200),
        (gate.url("/simple/"), 200),
        (gate.url("/pypi/cookie-pkg/json"), 200),
        (url.clone(), 200),
        (format!("{url}.metadata"), 200),
        (gate.url("/simple/broken-pkg/"), 502),
    ] {
        let r = get(&u, Some(PIP_ACCEPT)).await;
        assert_eq!(r.status(), want, "{u}");
        assert!(header(&r, "set-cookie").is_none(), "{u} passed a cookie on");
        r.bytes().await.unwrap();
    }
    gate.running.stop().await.unwrap();
}

/// Read a file from the gate: `Ok(bytes)` when the body completed, `Err` when it was cut.
async fn fetch_file(url: &str) -> (Option<String>, Result<usize, String>) {
    let mut r = match client().get(url).send().await {
        Ok(r) => r,
        Err(e) => return (None, Err(format!("{e:?}"))),
    };
    assert_eq!(r.status(), 200, "{url}");
    let declared = header(&r, "content-length");
    let mut n = 0;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => n += c.len(),
            Ok(None) => return (declared, Ok(n)),
            Err(e) => return (declared, Err(format!("{e:?} after {n} bytes"))),
        }
    }
}

/// Files that upstream cuts short, in every framing, with and without the index's sha256
/// and size, plus one whose upstream length contradicts the index's `size`.
async fn short_files() -> (RawUpstream, GateUnderTest, Vec<String>) {
    let up = RawUpstream::start().await;
    let full: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let half = &full[..500];
    let sha = Some(sha256_hex(&full));
    let chunked_cut = {
        let mut b = format!("{:x}\r\n", half.len()).into_bytes();
        b.extend_from_slice(half);
        b.extend_from_slice(b"\r\n");
        b
    };
    let ct = ("Content-Type", "application/octet-stream");
    // (version, sha256 listed, size listed, upstream answer)
    let cases: Vec<(&str, Option<String>, Option<u64>, Bytes)> = vec![
        // Content-Length 1000, 500 bytes, closed.
        (
            "1.0.0",
            sha.clone(),
            Some(1000),
            unframed(200, &[ct, ("Content-Length", "1000")], half),
        ),
        // Close-delimited, 500 bytes.
        ("1.0.1", sha.clone(), Some(1000), unframed(200, &[ct], half)),
        ("1.0.2", None, Some(1000), unframed(200, &[ct], half)),
        (
            "1.0.3",
            None,
            None,
            unframed(200, &[ct, ("Content-Length", "1000")], half),
        ),
        // Chunked without the last chunk.
        (
            "1.0.4",
            None,
            None,
            unframed(200, &[ct, ("Transfer-Encoding", "chunked")], &chunked_cut),
        ),
        // Chunked, 500 bytes, but the index says 1000 and gives the sha256 of 1000.
        (
            "1.0.5",
            sha.clone(),
            Some(1000),
            unframed(200, &[ct, ("Transfer-Encoding", "chunked")], &{
                let mut b = chunked_cut.clone();
                b.extend_from_slice(b"0\r\n\r\n");
                b
            }),
        ),
        // A consistent 500-byte answer (Content-Length 500) where the index lists 1000 bytes
        // and no sha256.
        ("1.0.6", None, Some(1000), framed(200, &[ct], half)),
    ];
    let mut listed = Vec::new();
    for (v, sha, size, answer) in cases {
        let f = format!("short_pkg-{v}-py3-none-any.whl");
        let path = format!("/files-host/s/{f}");
        up.answer(&path, answer);
        listed.push((f, format!("{}{path}", up.origin()), sha, size));
    }
    let refs: Vec<_> = listed
        .iter()
        .map(|(f, u, s, z)| (f.as_str(), u.clone(), s.clone(), *z))
        .collect();
    up.page("/simple/short-pkg/", JSON_CT, json_page("short-pkg", &refs));
    let (_unused, gate) = gate_on_raw(&up, "{}", &[]).await;
    let urls = listed_urls(&gate, "short-pkg").await;
    assert_eq!(urls.len(), 7);
    // In the order of `cases`, whatever order the page lists them in.
    let ordered = listed
        .iter()
        .map(|(f, ..)| {
            let u = urls.iter().find(|u| u.ends_with(&format!("/{f}")));
            u.unwrap_or_else(|| panic!("{f} not listed: {urls:?}"))
                .clone()
        })
        .collect();
    (up, gate, ordered)
}

/// 5a. A file upstream cuts short (lying `Content-Length`, early close, chunked body without
/// its end, fewer bytes than the index's size and sha256) never completes for the client.
#[tokio::test]
async fn a_file_cut_short_by_upstream_never_looks_complete() {
    let (_up, gate, urls) = short_files().await;
    for url in &urls[..6] {
        let started = Instant::now();
        let (declared, got) = fetch_file(url).await;
        assert!(started.elapsed() < BOUND, "{url}");
        assert!(
            got.is_err(),
            "{url}: a cut body completed ({got:?}, content-length {declared:?})"
        );
    }
    gate.running.stop().await.unwrap();
}

/// 5b. A transfer cut because upstream's body is short must leave an audit line, like a
/// digest mismatch does (`integrity_mismatch`): the audit log otherwise shows only the
/// `allow` of a file the client never received intact.
#[tokio::test]
async fn a_file_cut_short_by_upstream_is_audited() {
    let (_up, gate, urls) = short_files().await;
    for url in &urls[..2] {
        assert!(fetch_file(url).await.1.is_err(), "{url}");
    }
    for v in ["1.0.0", "1.0.1"] {
        crate::support::eventually(
            &format!("an audit line for the cut transfer of {v}"),
            Duration::from_secs(2),
            async || {
                gate.audit
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| e.package == "short-pkg" && e.version == v && e.action == "block")
                    .then_some(())
            },
        )
        .await;
    }
    gate.running.stop().await.unwrap();
}

/// 5c. The index's `size` is the authority like its sha256: an upstream that declares and
/// sends fewer bytes than the index lists (here for a file without a sha256, served
/// unverified by default) must not give the client a complete-looking body.
#[tokio::test]
async fn a_file_shorter_than_the_index_size_never_looks_complete() {
    let (_up, gate, urls) = short_files().await;
    // Upstream declares 500 bytes, the index lists 1000: refused before a byte is sent
    // (502 with the reason) and audited.
    let r = client().get(&urls[6]).send().await.unwrap();
    assert_eq!(r.status(), 502, "{}", urls[6]);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("the index of short-pkg lists 1000"),
        "{b}"
    );
    assert!(gate.audit_has("integrity_mismatch"));
    // Without a declared length, the index's size holds the body to 1000 bytes: cut.
    let (declared, got) = fetch_file(&urls[2]).await;
    assert_eq!(declared.as_deref(), Some("1000"));
    assert!(got.is_err(), "served as complete: {got:?}");
    gate.running.stop().await.unwrap();
}

/// A file the index lists without a size, which upstream sends chunked (no length): `HEAD`
/// answers what `GET` answers — no `Content-Length` — never a length of 0.
#[tokio::test]
async fn head_of_a_file_of_unknown_length_claims_no_length() {
    let up = RawUpstream::start().await;
    let full: Vec<u8> = (0..1000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut chunked = format!("{:x}\r\n", full.len()).into_bytes();
    chunked.extend_from_slice(&full);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let f = "nolen_pkg-1.0.0-py3-none-any.whl";
    let path = format!("/files-host/n/{f}");
    up.answer(
        &path,
        unframed(
            200,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Transfer-Encoding", "chunked"),
            ],
            &chunked,
        ),
    );
    let listed = [(
        f,
        format!("{}{path}", up.origin()),
        Some(sha256_hex(&full)),
        None,
    )];
    up.page(
        "/simple/nolen-pkg/",
        JSON_CT,
        json_page("nolen-pkg", &listed),
    );
    let (_unused, gate) = gate_on_raw(&up, "{}", &[]).await;
    let urls = listed_urls(&gate, "nolen-pkg").await;
    assert_eq!(urls.len(), 1);
    let g = client().get(&urls[0]).send().await.unwrap();
    assert_eq!(g.status(), 200);
    let g_len = header(&g, "content-length");
    assert_eq!(g.bytes().await.unwrap().as_ref(), full.as_slice());
    let h = client().head(&urls[0]).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(g_len, None, "GET of a chunked upstream file");
    assert_eq!(header(&h, "content-length"), g_len, "HEAD");
    gate.running.stop().await.unwrap();
}
