//! PyPI conformance against the fake upstream: files larger than the (legacy) buffer limit
//! stream whole and verified, upstream redirects are followed only within the configured
//! origins, and `HEAD` answers the headers of `GET` without a body.

use crate::pypi_fake::*;
use crate::pypi_http::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

async fn head(url: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = client().head(url);
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    r.send().await.unwrap()
}

/// One raw request with `Connection: close`; everything the server sent until it closed.
async fn raw_request(addr: SocketAddr, head: &str) -> String {
    let head = head.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap()
}

/// The path of `url` on `origin` (`http://host:port`).
fn path_on(url: &str, origin: SocketAddr) -> String {
    url.strip_prefix(&format!("http://{origin}"))
        .unwrap_or_else(|| panic!("{url} is not on {origin}"))
        .to_string()
}

fn seen_paths(fake: &FakePypi) -> Vec<String> {
    fake.seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

async fn eventually_audit(gate: &GateUnderTest, rule: &str) {
    crate::support::eventually("the audit line", Duration::from_secs(10), async || {
        gate.audit_has(rule).then_some(())
    })
    .await;
}

/// A JSON page listing generated files on the fake's files host: `(filename, path, sha256)`.
fn generated_page(fake: &FakePypi, project: &str, size: u64, files: &[(&str, &str)]) {
    let files: Vec<Value> = files
        .iter()
        .map(|(filename, route)| {
            serde_json::json!({
                "filename": filename,
                "url": format!("{}{route}/{size}/{filename}", fake.files_base()),
                "hashes": {"sha256": generated_sha256(size)},
                "size": size,
                "upload-time": iso(days_ago(100)),
            })
        })
        .collect();
    let page = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": files,
    });
    fake.set_raw(project, JSON_CT, &page.to_string());
}

/// `PKGGATE_PYPI_MAX_BUFFER_BYTES` is a 0.1.x setting kept for compatibility: files stream
/// with no size cap. With the limit lowered to 1 MiB, a file 8 times larger arrives whole
/// with the listed sha256; a tampered file of the same size is cut short.
#[tokio::test]
async fn files_larger_than_the_buffer_limit_stream_whole_and_verified() {
    const LIMIT: u64 = 1 << 20;
    const SIZE: u64 = 8 * LIMIT + 12_345;
    let fake = FakePypi::start().await;
    generated_page(
        &fake,
        "big-pkg",
        SIZE,
        &[
            ("big_pkg-1.0.0-py3-none-any.whl", "gen"),
            ("big_pkg-1.0.1-py3-none-any.whl", "gen-flip"),
        ],
    );
    let limit = LIMIT.to_string();
    let gate = start_gate(
        &fake,
        "{}",
        vec![],
        &[(pkggate::env::PYPI_MAX_BUFFER_BYTES, limit.as_str())],
    )
    .await;
    assert_eq!(gate.config.pypi_max_buffer_bytes, LIMIT, "setting applied");
    let r = get(&gate.url("/simple/big-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let url = |i: usize| v["files"][i]["url"].as_str().unwrap().to_string();
    assert!(url(0).starts_with(&gate.base), "{}", url(0));

    // The good file: every byte, the listed digest.
    let mut r = get(&url(0), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), Some(SIZE.to_string()));
    let (mut n, mut h) = (0u64, Sha256::new());
    while let Some(chunk) = r.chunk().await.unwrap() {
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    assert_eq!(n, SIZE, "the whole file arrives");
    assert_eq!(hex::encode(h.finalize()), generated_sha256(SIZE));
    assert!(gate.audit_has("default"), "the download is audited");
    assert!(!gate.audit_has("integrity_mismatch"));

    // The tampered file (same size, one byte inverted): the transfer never completes.
    let mut received = 0u64;
    let outcome = match client().get(url(1)).send().await {
        Err(e) => Err(format!("{e:?}")),
        Ok(mut r) => {
            assert_eq!(r.status(), 200);
            loop {
                match r.chunk().await {
                    Ok(Some(c)) => received += c.len() as u64,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(format!("{e:?}")),
                }
            }
        }
    };
    assert!(
        outcome.is_err() && received < SIZE,
        "a tampered body must be cut: {outcome:?}, {received} of {SIZE} bytes"
    );
    eventually_audit(&gate, "integrity_mismatch").await;
    assert_eq!(fake.file_requests(), 2);
    gate.running.stop().await.unwrap();
}

/// Redirects within the configured origins are followed: 301/302/307/308 with an absolute
/// or relative `Location`, for project pages, the legacy JSON API and file downloads (also
/// from the files host to the simple host, both configured). Relative file URLs of a
/// redirected page resolve against the page's final URL.
#[tokio::test]
async fn upstream_redirects_within_configured_origins_are_followed() {
    let fake = FakePypi::start().await;
    let statuses = [301u16, 302, 307, 308];
    let mut wheels = Vec::new();
    for s in statuses {
        let project = format!("redir-{s}");
        let whl = FakeFile::wheel(&project, "1.0.0", days_ago(100));
        fake.add(&project, vec![whl.clone()]);
        wheels.push(whl);
    }
    let rel = FakeFile::wheel("redir-rel", "1.0.0", days_ago(100)).relative();
    fake.add("redir-rel", vec![rel.clone()]);
    let simple_origin = format!("http://{}", fake.simple);
    for (i, s) in statuses.into_iter().enumerate() {
        let from = format!("/simple/redir-{s}/");
        let to = format!("/moved/simple/redir-{s}/");
        // Absolute for half of them, relative for the others.
        let location = if i % 2 == 0 {
            format!("{simple_origin}{to}")
        } else {
            to
        };
        fake.redirect(&from, s, &location);
        // The file: 302 to another path on the files host, or (307, 308) to the simple host.
        let file_path = path_on(&fake.file_url(&wheels[i]), fake.files);
        let file_to = if s < 307 {
            format!("http://{}/moved{file_path}", fake.files)
        } else {
            format!("{simple_origin}/rel/{}", wheels[i].filename)
        };
        fake.redirect(&file_path, s, &file_to);
    }
    fake.redirect("/pypi/redir-302/json", 302, "/moved/pypi/redir-302/json");
    fake.redirect("/simple/redir-rel/", 302, "/moved/simple/redir-rel/");
    let gate = start_gate(&fake, "{}", vec![], &[]).await;

    for (i, s) in statuses.into_iter().enumerate() {
        let project = format!("redir-{s}");
        let r = get(&gate.url(&format!("/simple/{project}/")), Some(PIP_ACCEPT)).await;
        assert_eq!(r.status(), 200, "{project}");
        assert_eq!(header(&r, "content-type").as_deref(), Some(JSON_CT));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["name"], project.as_str());
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{v}");
        let url = files[0]["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/files/{project}/", gate.base)),
            "{url}"
        );
        // The file, through its redirect.
        let r = get(url, None).await;
        assert_eq!(r.status(), 200, "{url}");
        let body = r.bytes().await.unwrap();
        assert_eq!(body, wheels[i].body, "{url}");
        let r = head(url, None).await;
        assert_eq!(r.status(), 200, "HEAD {url}");
        assert_eq!(
            header(&r, "content-length"),
            Some(body.len().to_string()),
            "HEAD {url}"
        );
    }
    let seen = seen_paths(&fake);
    for s in statuses {
        let moved = format!("/moved/simple/redir-{s}/");
        assert!(seen.contains(&moved), "{moved} not requested: {seen:?}");
    }
    assert!(seen.iter().any(|p| p.starts_with("/moved/packages/")));
    assert!(seen.iter().any(|p| p.starts_with("/rel/redir_30")));

    // The legacy JSON API.
    let r = get(&gate.url("/pypi/redir-302/json"), None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["info"]["name"], "redir-302");
    assert!(seen_paths(&fake).contains(&"/moved/pypi/redir-302/json".to_string()));

    // A relative file URL (`../../rel/<file>`) on a page moved to `/moved/simple/<p>/`
    // is `/moved/rel/<file>`, like a client that fetched the page itself would resolve it.
    let v: Value = get(&gate.url("/simple/redir-rel/"), Some(PIP_ACCEPT))
        .await
        .json()
        .await
        .unwrap();
    let url = v["files"][0]["url"].as_str().unwrap();
    assert!(url.contains("/files/redir-rel/~u/"), "{url}");
    let r = get(url, None).await;
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.bytes().await.unwrap(), rel.body);
    let want = format!("/moved/rel/{}", rel.filename);
    assert!(seen_paths(&fake).contains(&want), "{want} not requested");
    gate.running.stop().await.unwrap();
}

async fn redirect_loop() -> (FakePypi, GateUnderTest, u64, Value) {
    let fake = FakePypi::start().await;
    fake.add(
        "redir-loop",
        vec![FakeFile::wheel("redir-loop", "1.0.0", days_ago(100))],
    );
    fake.redirect("/simple/redir-loop/", 302, "/simple/redir-loop/");
    let gate = start_gate(&fake, "{}", vec![], &[]).await;
    let r = get(&gate.url("/simple/redir-loop/"), Some(PIP_ACCEPT)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    let b: Value = r.json().await.unwrap();
    let hops = fake.redirect_requests();
    (fake, gate, hops, b)
}

/// A same-origin redirect loop is given up after a few hops: 502 with a JSON reason.
#[tokio::test]
async fn upstream_redirect_loops_end_in_502() {
    let (fake, gate, hops, b) = redirect_loop().await;
    assert!(b["error"].as_str().unwrap().contains("redirected"), "{b}");
    assert!((2..=10).contains(&hops), "{hops} redirects followed");
    assert_eq!(
        fake.simple_requests(),
        0,
        "the page itself was never reached"
    );
    gate.running.stop().await.unwrap();
}

/// The reason of a loop's 502 says what happened (too many redirects), not that the
/// (configured) origin is outside the configured upstreams.
#[tokio::test]
async fn upstream_redirect_loop_reason_does_not_blame_the_origin() {
    let (_fake, gate, _hops, b) = redirect_loop().await;
    let e = b["error"].as_str().unwrap();
    assert!(!e.contains("outside the configured upstreams"), "{e}");
    assert!(e.contains("redirected more than 5 times"), "{e}");
    gate.running.stop().await.unwrap();
}

async fn assert_refused_redirect(r: reqwest::Response, location: &str) {
    assert_eq!(r.status(), 502, "redirect to {location}");
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&r, "retry-after").as_deref(), Some("10"));
    let b: Value = r.json().await.unwrap();
    let e = b["error"].as_str().unwrap();
    assert!(e.starts_with("upstream_error:"), "{b}");
    assert!(e.contains("outside the configured upstreams"), "{b}");
    assert!(e.contains(location), "{b}");
}

/// A redirect to an origin that is not a configured upstream is not followed: 502 with a
/// JSON reason, and the other origin (here a second fake with the same projects, which
/// would answer 200) receives no request. Same host on another port, another host name for
/// the configured socket and another scheme are all other origins.
#[tokio::test]
async fn upstream_redirects_to_other_origins_are_refused_without_contacting_them() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let other = FakePypi::start().await;
    standard_projects(&other);
    let gate = start_gate(&fake, "{}", standard_records(), &[]).await;
    let port = fake.simple.port();
    for (project, location) in [
        (
            "demo-pkg",
            format!("http://{}/simple/demo-pkg/", other.simple),
        ),
        (
            "young-pkg",
            format!("http://localhost:{port}/moved/simple/young-pkg/"),
        ),
        (
            "nohash-pkg",
            format!("https://127.0.0.1:{port}/moved/simple/nohash-pkg/"),
        ),
    ] {
        fake.redirect(&format!("/simple/{project}/"), 302, &location);
        let r = get(&gate.url(&format!("/simple/{project}/")), Some(PIP_ACCEPT)).await;
        assert_refused_redirect(r, &location).await;
    }
    // The legacy JSON API.
    let location = format!("http://{}/pypi/demo-pkg/json", other.simple);
    fake.redirect("/pypi/demo-pkg/json", 301, &location);
    let r = get(&gate.url("/pypi/demo-pkg/json"), None).await;
    assert_refused_redirect(r, &location).await;

    // A file download (its page is not redirected): GET and HEAD.
    let page = fake.json_page("tamper-pkg").unwrap();
    let page: Value = serde_json::from_str(&page).unwrap();
    let up = page["files"][0]["url"].as_str().unwrap();
    let file_path = path_on(up, fake.files);
    let location = format!("http://{}{file_path}", other.files);
    fake.redirect(&file_path, 302, &location);
    let url = gate.url(&format!("/files/tamper-pkg{file_path}"));
    assert_refused_redirect(get(&url, None).await, &location).await;
    let r = head(&url, None).await;
    assert_eq!(r.status(), 502, "HEAD");
    assert_eq!(fake.redirect_requests(), 6, "each redirect answered once");

    assert!(
        other.seen.lock().unwrap().is_empty(),
        "the other origin was contacted: {:?}",
        seen_paths(&other)
    );
    assert_eq!(other.simple_requests(), 0);
    assert_eq!(other.file_requests(), 0);
    assert_eq!(
        other
            .counters
            .legacy
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let moved: Vec<String> = seen_paths(&fake)
        .into_iter()
        .filter(|p| p.starts_with("/moved/"))
        .collect();
    assert!(moved.is_empty(), "followed to another origin: {moved:?}");
    gate.running.stop().await.unwrap();
}

/// The headers `HEAD` must share with `GET`.
const SAME: &[&str] = &[
    "content-type",
    "vary",
    "etag",
    "cache-control",
    "content-length",
    "x-pkggate-blocked-versions",
];

async fn head_matches_get(gate: &GateUnderTest, path: &str, accept: Option<&str>) {
    // HEAD first (cold), then GET, then HEAD again (warm).
    let h1 = head(&gate.url(path), accept).await;
    let g = get(&gate.url(path), accept).await;
    let h2 = head(&gate.url(path), accept).await;
    let what = format!("{path} accept={accept:?}");
    assert_eq!(h1.status(), g.status(), "{what}");
    assert_eq!(h2.status(), g.status(), "{what}");
    for name in SAME {
        assert_eq!(header(&h1, name), header(&g, name), "{name} of {what}");
        assert_eq!(header(&h2, name), header(&g, name), "{name} of {what}");
    }
    let len = header(&g, "content-length");
    let body = g.bytes().await.unwrap();
    if let Some(len) = len {
        assert_eq!(len, body.len().to_string(), "{what}");
    }
    assert!(!body.is_empty(), "{what}");
    // On the wire: headers and nothing after them.
    let accept_line = accept
        .map(|a| format!("\r\nAccept: {a}"))
        .unwrap_or_default();
    let raw = raw_request(
        gate.running.addr,
        &format!("HEAD {path} HTTP/1.1{accept_line}"),
    )
    .await;
    let (head_part, rest) = raw.split_once("\r\n\r\n").expect("a complete head");
    assert!(head_part.starts_with("HTTP/1.1 "), "{raw}");
    assert_eq!(rest, "", "HEAD {what} sent a body");
}

/// `HEAD` on index pages and the legacy JSON API answers what `GET` answers (status and
/// validators included) with an empty body.
#[tokio::test]
async fn head_on_index_and_legacy_json_matches_get() {
    let fake = FakePypi::start().await;
    standard_projects(&fake);
    let gate = start_gate(&fake, "{}", standard_records(), &[]).await;
    for accept in [
        Some(PIP_ACCEPT),
        Some("text/html"),
        Some("application/vnd.pypi.simple.v1+html"),
    ] {
        head_matches_get(&gate, "/simple/demo-pkg/", accept).await;
    }
    let r = head(&gate.url("/simple/demo-pkg/"), Some(PIP_ACCEPT)).await;
    assert_eq!(header(&r, "content-type").as_deref(), Some(JSON_CT));
    assert_eq!(header(&r, "vary").as_deref(), Some("Accept"));
    assert!(header(&r, "etag").is_some());
    // A conditional HEAD is answered like a conditional GET.
    let etag = header(&r, "etag").unwrap();
    let r = client()
        .head(gate.url("/simple/demo-pkg/"))
        .header("accept", PIP_ACCEPT)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), Some(etag));
    // Cold HEAD of a project never fetched before, and the legacy JSON API.
    head_matches_get(&gate, "/simple/young-pkg/", Some(PIP_ACCEPT)).await;
    head_matches_get(&gate, "/pypi/demo-pkg/json", None).await;
    head_matches_get(&gate, "/pypi/young-pkg/1.1.0/json", None).await;
    let r = head(&gate.url("/pypi/demo-pkg/json"), None).await;
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    assert!(header(&r, "etag").is_some());
    // Refusals too: blocked outright (403), unknown project (404).
    head_matches_get(&gate, "/simple/evil-pkg/", Some(PIP_ACCEPT)).await;
    head_matches_get(&gate, "/simple/no-such-project/", Some(PIP_ACCEPT)).await;
    head_matches_get(&gate, "/pypi/no-such-project/json", None).await;
    gate.running.stop().await.unwrap();
}
