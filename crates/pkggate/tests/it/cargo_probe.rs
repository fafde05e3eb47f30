//! Security and robustness probes of the cargo gates (sparse index gate, crate download
//! gate and the cargo adapter's facts behind `/-/pkggate/why/cargo/…`), over HTTP against a
//! pkggate started by [`cargo_env_with`].
//!
//! A scripted raw upstream ([`RawUpstream`]) answers byte for byte what a test sets
//! (lying `Content-Length`, truncated bodies, cookies, redirects) and keeps every request
//! head; a [`Tripwire`] counts every connection made to it, to detect requests to a host
//! pkggate was not configured with. All on 127.0.0.1.

use crate::cargo_gate::{CargoEnv, cargo_env_with, make_crate};
use crate::raw_http::*;
use axum::extract::State;
use base64::Engine;
use bytes::Bytes;
use pkggate::env;
use pkggate_formats::cargo::{parse_index_path, valid_name};
use serde_json::Value;
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const OLD: &str = "2020-01-01T00:00:00Z";
/// Every probe request must be answered within this.
const BOUND: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// One index line (compact, `pubtime` last, as the public index writes them).
fn index_line(name: &str, vers: &str, cksum: Option<&str>, pubtime: &str) -> String {
    let ck = cksum.map_or(String::new(), |c| format!(r#""cksum":"{c}","#));
    format!(
        r#"{{"name":"{name}","vers":"{vers}","deps":[],{ck}"features":{{}},"yanked":false,"pubtime":"{pubtime}","v":2}}"#
    )
}

/// One raw request to `addr` (the target is sent as is: no client library normalises it);
/// the status (0 when the connection closed without an answer) and the whole answer.
async fn raw_get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, out) = raw_get_bytes(addr, target, headers).await;
    (status, String::from_utf8_lossy(&out).into_owned())
}

/// [`raw_get`] with the answer's bytes.
async fn raw_get_bytes(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    crate::raw_http::raw_request(&addr.to_string(), "GET", target, headers).await
}

impl RawUpstream {
    /// Answer `path` with an index file (framed by `Content-Length`).
    fn index(&self, path: &str, body: impl Into<Vec<u8>>) {
        let body = body.into();
        self.answer(path, framed(200, &[("Content-Type", "text/plain")], &body));
    }
}

/// pkggate with its cargo index at `<up>/index/` and downloads at `<up>/dl`.
async fn gate_on(up: &RawUpstream, policy: &str, extra: &[(&str, &str)]) -> CargoEnv {
    let index = format!("{}/index/", up.origin());
    let dl = format!("{}/dl", up.origin());
    let mut all = vec![
        (env::UPSTREAM_CARGO_INDEX, index.as_str()),
        (env::UPSTREAM_CARGO_DL, dl.as_str()),
    ];
    all.extend_from_slice(extra);
    cargo_env_with(policy, &[], &all).await
}

/// `democrate` 0.1.0 on `up`: its index file and its `.crate`; answers the bytes.
fn publish_democrate(up: &RawUpstream) -> Vec<u8> {
    let bytes = make_crate("democrate", "0.1.0");
    let line = index_line("democrate", "0.1.0", Some(&sha256_hex(&bytes)), OLD);
    up.index("/index/de/mo/democrate", format!("{line}\n"));
    up.answer(
        "/dl/democrate/0.1.0/download",
        framed(200, &[("Content-Type", "application/gzip")], &bytes),
    );
    bytes
}

/// Whether an upstream request target is one pkggate may send: a canonical index path of a
/// valid crate name under `/index/`, or `/dl/<valid name>/<version>/download` of a version
/// the index lists (`versions`).
fn expected_target(target: &str, versions: &[&str]) -> bool {
    if let Some(rest) = target.strip_prefix("/index/") {
        return parse_index_path(rest).is_ok();
    }
    let Some(rest) = target.strip_prefix("/dl/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [name, version, "download"]
        if valid_name(name) && versions.contains(version))
}

/// 1. Client-chosen index and download paths (encoded slashes, dot segments, upper case,
/// `-`/`_` variants, wrong directories, overlong names, versions with `/`, `?`, `#`, `@`,
/// `+build`, queries, absolute-form targets, URLs as names) are answered 4xx (or 200 where
/// the path is really a valid one), in bounded time, and upstream is only ever asked for
/// canonical index paths and downloads of listed versions; no other host is contacted.
#[tokio::test]
async fn hostile_index_and_download_paths_never_steer_the_upstream_url() {
    let up = RawUpstream::start().await;
    let trip = Tripwire::start().await;
    let bytes = publish_democrate(&up);
    let e = gate_on(&up, "{}\n", &[]).await;
    let t = trip.addr;
    let long = "a".repeat(10_000);
    let name65 = format!("demo{}", "a".repeat(61));
    // (request target, answered 200 — else a 4xx is expected)
    let cases: Vec<(String, bool)> = vec![
        // Index paths.
        ("/cargo/de/mo/..%2F..%2Fsecret".into(), false),
        ("/cargo/de/mo/%2e%2e/%2e%2e/secret".into(), false),
        ("/cargo/de/mo/%2E%2E%2F%2E%2E%2Fsecret".into(), false),
        (
            "/cargo/de/mo/democrate%2F..%2F..%2F..%2Fsecret".into(),
            false,
        ),
        ("/cargo/de/mo/../../../index/de/mo/democrate".into(), false),
        ("/cargo/de/mo/Democrate".into(), false),
        ("/cargo/DE/MO/democrate".into(), false),
        ("/cargo/de/mo/demo_crate".into(), false),
        ("/cargo/2/abc".into(), false),
        ("/cargo/3/abc".into(), false),
        ("/cargo/3/b/abc".into(), false),
        ("/cargo/1/ab".into(), false),
        ("/cargo/ab/c/abc".into(), false),
        ("/cargo/de/democrate".into(), false),
        ("/cargo/de/mo/mo/democrate".into(), false),
        ("/cargo/de/mo/democrate/".into(), false),
        ("/cargo/de/mo/democrate%2F".into(), false),
        ("/cargo/de/mo/democrate%00".into(), false),
        ("/cargo/de/mo/democrate%0d%0aHost:%20x".into(), false),
        ("/cargo/de/mo/demo-crat%C3%A9".into(), false),
        (format!("/cargo/de/mo/{name65}"), false),
        (format!("/cargo/aa/aa/{long}"), false),
        (format!("/cargo/ht/tp/http:%2F%2F{t}%2Fx"), false),
        (format!("/cargo/%2F%2F{t}/x"), false),
        (format!("/cargo//{t}/de/mo/democrate"), false),
        (format!("/cargo/de/mo/@{t}"), false),
        // Valid index paths in disguise: served, from the canonical upstream path.
        ("/cargo/de%2Fmo%2Fdemocrate".into(), true),
        (
            format!("/cargo/de/mo/democrate?u=http://{t}/&p=..%2F..%2Fx"),
            true,
        ),
        (format!("http://{t}/cargo/de/mo/democrate"), true),
        // Downloads.
        (
            "/cargo/api/v1/crates/democrate/..%2F..%2Fsecret/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/%2e%2e/download".into(),
            false,
        ),
        ("/cargo/api/v1/crates/democrate/./download".into(), false),
        (
            "/cargo/api/v1/crates/..%2Fsecret/0.1.0/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0%2F..%2F..%2Fx/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0+build/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0%3Fx=1/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0%23x/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0%20/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/demo_crate/0.1.0/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/DEMOCRATE/0.1.0/download".into(),
            false,
        ),
        (
            "/cargo/api/v1/crates/democrate/0.1.0/download/x".into(),
            false,
        ),
        (
            format!("/cargo/api/v1/crates/democrate/%40{t}/download"),
            false,
        ),
        (
            format!("/cargo/api/v1/crates/http:%2F%2F{t}%2Fx/0.1.0/download"),
            false,
        ),
        (format!("/cargo/api/v1/crates/{long}/0.1.0/download"), false),
        (
            format!("/cargo/api/v1/crates/democrate/{long}/download"),
            false,
        ),
        (
            format!("/cargo/api/v1/crates/democrate/0.1.0/download?u=http://{t}/"),
            true,
        ),
    ];
    let mut wrong = Vec::new();
    for (target, ok) in &cases {
        let started = Instant::now();
        let (status, raw) = raw_get_bytes(e.running.addr, target, &[]).await;
        let elapsed = started.elapsed();
        let answer = String::from_utf8_lossy(&raw);
        let fine = if *ok {
            status == 200
        } else {
            matches!(status, 400 | 404 | 414 | 431)
        };
        if !fine || elapsed > BOUND {
            let shown: String = target.chars().take(120).collect();
            let head: String = answer.chars().take(300).collect();
            wrong.push(format!("{shown}: {status} in {elapsed:?}: {head}"));
        }
        if *ok && target.contains("/download") {
            let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(&raw[end..], bytes.as_slice(), "{target}: {answer:.400}");
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected answers:\n{}",
        wrong.join("\n")
    );
    let targets = up.targets();
    let unexpected: Vec<&String> = targets
        .iter()
        .filter(|t| !expected_target(t, &["0.1.0"]))
        .collect();
    assert!(
        unexpected.is_empty(),
        "upstream was asked for non-canonical paths: {unexpected:?}"
    );
    assert!(
        targets.iter().any(|t| t == "/dl/democrate/0.1.0/download"),
        "{targets:?}"
    );
    assert_eq!(
        trip.hits(),
        0,
        "a client path made pkggate connect elsewhere"
    );
    e.running.stop().await.unwrap();
}

/// The admin explanation of a cargo crate (`/-/pkggate/why/cargo/<name>/<version>`, open to
/// loopback clients by default) loads the crate's facts through the cargo adapter: its name
/// must not choose the upstream path either.
#[tokio::test]
async fn why_name_cannot_steer_the_index_fetch() {
    let up = RawUpstream::start().await;
    publish_democrate(&up);
    up.index("/internal/secret", "not an index\n");
    let e = gate_on(&up, "{}\n", &[]).await;
    for target in [
        "/-/pkggate/why/cargo/ab%2F..%2F..%2F..%2F..%2Finternal%2Fsecret/1.0.0",
        "/-/pkggate/why/cargo/ab/../../../../internal/secret/1.0.0",
    ] {
        let (status, answer) = raw_get(e.running.addr, target, &[]).await;
        assert!(
            matches!(status, 200 | 400 | 404),
            "{target}: {status} {answer}"
        );
    }
    // The endpoint itself works for a real crate (so the probe above reached the adapter).
    let (status, answer) =
        raw_get(e.running.addr, "/-/pkggate/why/cargo/democrate/0.1.0", &[]).await;
    assert_eq!(status, 200, "{answer}");
    let targets = up.targets();
    let unexpected: Vec<&String> = targets
        .iter()
        .filter(|t| !expected_target(t, &[]))
        .collect();
    assert!(
        unexpected.is_empty(),
        "the why-name steered the upstream path: {unexpected:?}"
    );
    e.running.stop().await.unwrap();
}

/// A non-ASCII cargo name in the explanation endpoint must be refused, not crash the request.
#[tokio::test]
async fn why_non_ascii_name_is_an_answer_not_a_panic() {
    let up = RawUpstream::start().await;
    let e = gate_on(&up, "{}\n", &[]).await;
    for target in [
        "/-/pkggate/why/cargo/a%C3%A9bc/1.0.0",
        "/-/pkggate/why/cargo/abc%C3%A9/1.0.0",
    ] {
        let (status, answer) = raw_get(e.running.addr, target, &[]).await;
        assert!(
            matches!(status, 200 | 400 | 404),
            "{target}: status {status} (0 = no answer) {answer:?}"
        );
    }
    // The server is still there.
    let (status, _) = raw_get(e.running.addr, "/-/pkggate/health", &[]).await;
    assert_eq!(status, 200);
    e.running.stop().await.unwrap();
}

/// 2. The upstream's own `config.json` (a hostile `dl` and `api`, `auth-required`) is never
/// relayed or used, and the `dl` pkggate writes is its own base whatever `Host` or
/// `X-Forwarded-*` a client sends (forwarded headers are not trusted by default): downloads
/// go to the configured download base only.
#[tokio::test]
async fn upstream_config_json_and_client_host_never_steer_dl() {
    let up = RawUpstream::start().await;
    let trip = Tripwire::start().await;
    let t = trip.addr;
    let bytes = publish_democrate(&up);
    up.answer(
        "/index/config.json",
        framed(
            200,
            &[("Content-Type", "application/json")],
            format!(
                r#"{{"dl":"http://{t}/{{crate}}/../../{{version}}","api":"http://{t}/api","auth-required":true}}"#
            )
            .as_bytes(),
        ),
    );
    let e = gate_on(&up, "{}\n", &[]).await;
    let want_dl = format!("{}/cargo/api/v1/crates", e.base());
    let host = t.to_string();
    for headers in [
        vec![],
        vec![("Host", host.as_str())],
        vec![
            ("X-Forwarded-Host", host.as_str()),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "host=127.0.0.1:1;proto=https"),
        ],
    ] {
        let (status, answer) = raw_get(e.running.addr, "/cargo/config.json", &headers).await;
        assert_eq!(status, 200, "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let cfg: Value = serde_json::from_str(body).unwrap();
        assert_eq!(cfg["dl"], want_dl.as_str(), "{headers:?}: {cfg}");
        assert!(cfg.get("api").is_none(), "{cfg}");
        assert!(cfg.get("auth-required").is_none(), "{cfg}");
    }
    let r = client()
        .get(format!("{want_dl}/democrate/0.1.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(trip.hits(), 0);
    assert!(
        up.targets().iter().all(|t| t != "/index/config.json"),
        "{:?}",
        up.targets()
    );
    e.running.stop().await.unwrap();
}

/// 2b. `UPSTREAM_CARGO_DL` is handed to the `dl` template expansion (markers `{crate}`,
/// `{version}`, …), so a mirror whose files live at `/files/{crate}/{crate}-{version}.crate`
/// must be asked for exactly that path.
#[tokio::test]
async fn dl_template_markers_in_the_path_are_expanded() {
    let up = RawUpstream::start().await;
    let bytes = publish_democrate(&up);
    up.answer(
        "/files/democrate/democrate-0.1.0.crate",
        framed(200, &[("Content-Type", "application/gzip")], &bytes),
    );
    let dl = format!(
        "{}/files/{{crate}}/{{crate}}-{{version}}.crate",
        up.origin()
    );
    let e = gate_on(&up, "{}\n", &[(env::UPSTREAM_CARGO_DL, &dl)]).await;
    let r = client()
        .get(format!(
            "{}/cargo/api/v1/crates/democrate/0.1.0/download",
            e.base()
        ))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let got = r.bytes().await.unwrap();
    let targets = up.targets();
    assert_eq!(status, 200, "upstream was asked for {targets:?}");
    assert_eq!(got.to_vec(), bytes);
    assert!(
        targets
            .iter()
            .any(|t| t == "/files/democrate/democrate-0.1.0.crate"),
        "{targets:?}"
    );
    e.running.stop().await.unwrap();
}

/// 3a. A client's `Authorization`, `Cookie` and `Proxy-Authorization` never reach the index
/// or download host, and an upstream's `Set-Cookie` never reaches the client.
#[tokio::test]
async fn client_credentials_never_reach_upstream_and_upstream_cookies_never_reach_clients() {
    let up = RawUpstream::start().await;
    let bytes = make_crate("democrate", "0.1.0");
    let line = index_line("democrate", "0.1.0", Some(&sha256_hex(&bytes)), OLD);
    let cookie = ("Set-Cookie", "upstream-session=tracking-value; Path=/");
    up.answer(
        "/index/de/mo/democrate",
        framed(
            200,
            &[("Content-Type", "text/plain"), cookie],
            format!("{line}\n").as_bytes(),
        ),
    );
    up.answer(
        "/dl/democrate/0.1.0/download",
        framed(200, &[("Content-Type", "application/gzip"), cookie], &bytes),
    );
    let e = gate_on(&up, "{}\n", &[]).await;
    let secrets = [
        ("Authorization", "Bearer client-secret-token"),
        ("Cookie", "session=client-cookie-value"),
        ("Proxy-Authorization", "Basic cHJveHktc2VjcmV0"),
    ];
    for path in [
        "/cargo/config.json",
        "/cargo/de/mo/democrate",
        "/cargo/api/v1/crates/democrate/0.1.0/download",
    ] {
        let mut r = client().get(format!("{}{path}", e.base()));
        for (k, v) in secrets {
            r = r.header(k, v);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{path}: {:?}",
            r.headers()
        );
        r.bytes().await.unwrap();
    }
    let heads = up.heads();
    assert!(heads.len() >= 2, "{heads:?}");
    for h in &heads {
        let l = h.to_ascii_lowercase();
        for needle in [
            "client-secret-token",
            "client-cookie-value",
            "chj2ehktc2vjcmv0",
            "authorization",
            "cookie",
        ] {
            assert!(!l.contains(needle), "{needle} reached upstream: {h}");
        }
    }
    e.running.stop().await.unwrap();
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
    .to_ascii_lowercase()
}

/// 3b. Credentials written in the configured index and download URLs (private mirrors) are
/// sent to their own origin only, and never shown to clients: not in `config.json`, index
/// files, headers, nor the reasons of 502s (upstream errors, redirects off the configured
/// origins, unreachable hosts).
#[tokio::test]
async fn upstream_url_credentials_are_sent_per_origin_and_never_shown() {
    let idx = RawUpstream::start().await;
    let dl = RawUpstream::start().await;
    let trip = Tripwire::start().await;
    let t = trip.addr;
    let mut lines = String::new();
    for v in ["0.1.0", "0.2.0", "0.3.0"] {
        let bytes = make_crate("democrate", v);
        lines.push_str(&index_line("democrate", v, Some(&sha256_hex(&bytes)), OLD));
        lines.push('\n');
        if v == "0.1.0" {
            dl.answer(
                "/dl/democrate/0.1.0/download",
                framed(200, &[("Content-Type", "application/gzip")], &bytes),
            );
        }
    }
    idx.index("/index/de/mo/democrate", lines);
    idx.answer("/index/er/r5/err500", framed(500, &[], b"boom"));
    let off = format!("http://{t}/elsewhere");
    idx.answer(
        "/index/re/di/redir",
        framed(302, &[("Location", off.as_str())], b""),
    );
    dl.answer("/dl/democrate/0.2.0/download", framed(500, &[], b"boom"));
    dl.answer(
        "/dl/democrate/0.3.0/download",
        framed(302, &[("Location", off.as_str())], b""),
    );
    let index_url = format!("http://idx-user:idx-s3cret@{}/index/", idx.addr);
    let dl_url = format!("http://dl-user:dl-s3cret@{}/dl", dl.addr);
    let e = cargo_env_with(
        "{}\n",
        &[],
        &[
            (env::UPSTREAM_CARGO_INDEX, &index_url),
            (env::UPSTREAM_CARGO_DL, &dl_url),
        ],
    )
    .await;
    let idx_basic = basic("idx-user", "idx-s3cret");
    let dl_basic = basic("dl-user", "dl-s3cret");
    let mut leaks = Vec::new();
    let mut check = |what: String, text: &str| {
        let l = text.to_ascii_lowercase();
        for s in ["idx-s3cret", "dl-s3cret", "idx-user:", "dl-user:"] {
            if l.contains(s) {
                leaks.push(format!("{what}: {text}"));
            }
        }
        for b in [&idx_basic, &dl_basic] {
            if l.contains(b.trim_start_matches("basic ")) {
                leaks.push(format!("{what} (base64): {text}"));
            }
        }
    };
    let mut statuses = Vec::new();
    for path in [
        "/cargo/config.json",
        "/cargo/de/mo/democrate",
        "/cargo/er/r5/err500",
        "/cargo/re/di/redir",
        "/cargo/api/v1/crates/democrate/0.1.0/download",
        "/cargo/api/v1/crates/democrate/0.2.0/download",
        "/cargo/api/v1/crates/democrate/0.3.0/download",
    ] {
        let (status, answer) = raw_get(e.running.addr, path, &[]).await;
        statuses.push((path, status));
        check(path.to_string(), &answer);
    }
    assert_eq!(
        statuses.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [200, 200, 502, 502, 200, 502, 502],
        "{statuses:?}"
    );
    // Unreachable hosts: the connection error names the URL.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e2 = cargo_env_with(
        "{}\n",
        &[],
        &[
            (
                env::UPSTREAM_CARGO_INDEX,
                &format!("http://idx-user:idx-s3cret@{closed}/index/"),
            ),
            (
                env::UPSTREAM_CARGO_DL,
                &format!("http://dl-user:dl-s3cret@{closed}/dl"),
            ),
        ],
    )
    .await;
    let (status, answer) = raw_get(e2.running.addr, "/cargo/de/mo/democrate", &[]).await;
    assert_eq!(status, 502, "{answer}");
    check("unreachable index".into(), &answer);
    assert!(
        leaks.is_empty(),
        "upstream credentials reached clients:\n{}",
        leaks.join("\n")
    );
    // Still used: each origin got its own credentials, and only its own.
    let auth_of = |heads: Vec<String>| -> Vec<String> {
        heads
            .iter()
            .map(|h| {
                h.lines()
                    .find_map(|l| {
                        let l = l.to_ascii_lowercase();
                        l.strip_prefix("authorization:")
                            .map(|v| v.trim().to_string())
                    })
                    .unwrap_or_default()
            })
            .collect()
    };
    let idx_auth = auth_of(idx.heads());
    let dl_auth = auth_of(dl.heads());
    assert!(!idx_auth.is_empty() && !dl_auth.is_empty());
    assert!(idx_auth.iter().all(|a| *a == idx_basic), "{idx_auth:?}");
    assert!(dl_auth.iter().all(|a| *a == dl_basic), "{dl_auth:?}");
    assert_eq!(
        trip.hits(),
        0,
        "a redirect off the configured origins was followed"
    );
    e.running.stop().await.unwrap();
    e2.running.stop().await.unwrap();
}

/// The answer to one hostile index file: a 200, or a 502 with a JSON reason; bounded time.
async fn bounded_index(e: &CargoEnv, path: &str) -> (u16, reqwest::header::HeaderMap, Bytes) {
    let started = Instant::now();
    let r = client()
        .get(format!("{}{path}", e.base()))
        .send()
        .await
        .unwrap_or_else(|err| panic!("{path}: {err:?}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "{path} took {elapsed:?}");
    assert!(
        matches!(status, 200 | 404 | 502),
        "{path}: {status} {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    if status == 502 {
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().unwrap().starts_with("upstream_error"));
    }
    (status, headers, body)
}

/// 4a. Lines that cannot be read (invalid JSON, invalid UTF-8 in `name`/`vers`, binary, an
/// empty `vers`) are dropped and every readable line is served byte-identical (a
/// 200,000-deep nested `deps` neither crashes nor stalls the reader); a download of an
/// unreadable version is refused without contacting the download host; and a 100,000-line
/// file is served in bounded time.
#[tokio::test]
async fn hostile_index_lines_are_dropped_and_the_rest_kept_in_bounded_time() {
    let up = RawUpstream::start().await;
    let good1 = index_line("mixed", "1.0.0", Some(&"ab".repeat(32)), OLD);
    let good2 = index_line("mixed", "1.1.0", Some(&"cd".repeat(32)), OLD);
    let mut body: Vec<u8> = Vec::new();
    body.extend_from_slice(good1.as_bytes());
    body.push(b'\n');
    body.extend_from_slice(b"{not json at all\n");
    body.extend_from_slice(b"{\"name\":\"mixed\",\"vers\":\"1.2.\xff\xfe\",\"deps\":[],\"pubtime\":\"2020-01-01T00:00:00Z\"}\n");
    body.extend_from_slice(b"\xff\xfe\xfd\n");
    body.extend_from_slice(b"{\"name\":\"mixed\",\"vers\":\"\",\"deps\":[]}\n");
    body.extend_from_slice(b"{\"name\":\"mixed\",\"vers\":\"1.3.0\",\"deps\":");
    body.extend_from_slice(&b"[".repeat(200_000));
    body.extend_from_slice(&b"]".repeat(200_000));
    body.extend_from_slice(b",\"cksum\":\"");
    body.extend_from_slice("ef".repeat(32).as_bytes());
    body.extend_from_slice(b"\",\"pubtime\":\"2020-01-01T00:00:00Z\"}\n");
    body.extend_from_slice(good2.as_bytes());
    body.push(b'\n');
    up.index("/index/mi/xe/mixed", body);
    let mut many = String::with_capacity(100_000 * 48);
    for i in 0..100_000 {
        many.push_str(&format!(
            "{{\"name\":\"many\",\"vers\":\"0.0.{i}\",\"pubtime\":\"{OLD}\"}}\n"
        ));
    }
    up.index("/index/ma/ny/many", many.clone());
    let e = gate_on(&up, "block_malicious: true\n", &[]).await;

    let (status, _, got) = bounded_index(&e, "/cargo/mi/xe/mixed").await;
    assert_eq!(status, 200);
    let got = String::from_utf8(got.to_vec()).expect("the served file is UTF-8");
    assert!(got.starts_with(&format!("{good1}\n")), "{got:.300}");
    assert!(got.ends_with(&format!("{good2}\n")), "{got:.300}");
    assert!(!got.contains("not json"), "{got:.300}");
    // The deep line is valid JSON to no reader (cargo's serde stops at 128 levels): either
    // dropped or kept, but its download must not reach the download host.
    for v in ["1.3.0", "1.2.0"] {
        let r = client()
            .get(format!(
                "{}/cargo/api/v1/crates/mixed/{v}/download",
                e.base()
            ))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 404 | 502),
            "{v}: {}",
            r.status()
        );
    }
    // The deep line reads in full for pkggate (nested values are skipped, not parsed), so
    // 1.3.0 is decided and asked for like any listed version; the unreadable 1.2.x never.
    assert!(
        up.targets().iter().all(|t| !t.starts_with("/dl/mixed/1.2")),
        "{:?}",
        up.targets()
    );

    let (status, headers, got) = bounded_index(&e, "/cargo/ma/ny/many").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-pkggate-blocked-versions"], "0");
    assert_eq!(got.len(), many.len());
    e.running.stop().await.unwrap();
}

/// 4b. An upstream "index file" that is no index at all (an HTML error page served with 200
/// by a misconfigured mirror or a captive portal, binary garbage) is an upstream failure
/// (SPEC §3 item 17: 502 with a JSON reason, never a cached empty document), not a crate
/// with no versions.
#[tokio::test]
async fn an_index_of_only_unreadable_lines_is_a_502_not_an_empty_crate() {
    let up = RawUpstream::start().await;
    up.index(
        "/index/ht/ml/htmlpage",
        "<!doctype html>\n<html><body>\n<h1>Service temporarily unavailable</h1>\n</body></html>\n",
    );
    up.index(
        "/index/bi/na/binary",
        b"\x1f\x8b\x08\x00\xff\xfe\n\x00\x01\n".to_vec(),
    );
    let e = gate_on(&up, "{}\n", &[]).await;
    for path in ["/cargo/ht/ml/htmlpage", "/cargo/bi/na/binary"] {
        let (status, headers, body) = bounded_index(&e, path).await;
        assert_eq!(
            status,
            502,
            "{path}: served {:?} with cache-control {:?}",
            String::from_utf8_lossy(&body),
            headers.get("cache-control")
        );
        assert_eq!(headers["cache-control"], "no-store");
    }
    e.running.stop().await.unwrap();
}

/// 4c. Duplicate lines for one version (pkggate reads both; cargo keeps one): the index
/// gate and the download gate must agree. Here the first line is 1 hour old and the second
/// one old; with `min_package_age_days: 3` the index gate removes the version (both lines)
/// — then a lockfile install (`cargo fetch --locked` asks the download gate directly) must
/// be refused too.
#[tokio::test]
async fn duplicate_version_lines_are_decided_alike_by_both_gates() {
    let up = RawUpstream::start().await;
    let bytes = make_crate("dupcrate", "1.0.0");
    let ck = sha256_hex(&bytes);
    let fresh = crate::timefmt_now_minus(3600);
    let body = format!(
        "{}\n{}\n{}\n",
        index_line("dupcrate", "0.9.0", Some(&ck), OLD),
        index_line("dupcrate", "1.0.0", Some(&ck), &fresh),
        index_line("dupcrate", "1.0.0", Some(&ck), OLD),
    );
    up.index("/index/du/pc/dupcrate", body);
    up.answer(
        "/dl/dupcrate/1.0.0/download",
        framed(200, &[("Content-Type", "application/gzip")], &bytes),
    );
    let e = gate_on(&up, "min_package_age_days: 3\n", &[]).await;
    let (status, headers, got) = bounded_index(&e, "/cargo/du/pc/dupcrate").await;
    assert_eq!(status, 200);
    let index_lists_1_0_0 = String::from_utf8_lossy(&got).contains("\"1.0.0\"");
    let r = client()
        .get(format!(
            "{}/cargo/api/v1/crates/dupcrate/1.0.0/download",
            e.base()
        ))
        .send()
        .await
        .unwrap();
    let dl_status = r.status().as_u16();
    assert_eq!(
        index_lists_1_0_0,
        dl_status == 200,
        "index gate lists 1.0.0: {index_lists_1_0_0} (blocked-versions {:?}); download gate answered {dl_status}",
        headers.get("x-pkggate-blocked-versions")
    );
    e.running.stop().await.unwrap();
}

/// Read a download from the gate: `Ok(bytes)` when the body completed, `Err` when cut.
async fn fetch(url: &str) -> Result<usize, String> {
    let mut r = client()
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if r.status() != 200 {
        return Err(format!("status {}", r.status()));
    }
    let mut n = 0;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => n += c.len(),
            Ok(None) => return Ok(n),
            Err(e) => return Err(format!("{e:?} after {n} bytes")),
        }
    }
}

/// 5. A `.crate` that upstream cuts short (lying `Content-Length`, early close, chunked body
/// without its end, close-delimited short body), sends with too many bytes for its declared
/// length, or replaces with other bytes of the same length never reaches the client as a
/// complete body, in bounded time, and each leaves an audit line (`transfer_incomplete` or
/// `integrity_mismatch`). Also without a `cksum` (served unverified by policy), a declared
/// length that is not met cuts the transfer.
#[tokio::test]
async fn cut_or_wrong_crate_downloads_never_look_complete_and_are_audited() {
    let up = RawUpstream::start().await;
    // (version, listed cksum, upstream answer builder)
    type Build = fn(&[u8]) -> Bytes;
    let cases: Vec<(&str, bool, Build)> = vec![
        ("1.0.0", true, |b| {
            let n = b.len().to_string();
            unframed(
                200,
                &[("Content-Type", "application/gzip"), ("Content-Length", &n)],
                &b[..b.len() / 2],
            )
        }),
        ("1.0.1", true, |b| {
            unframed(
                200,
                &[("Content-Type", "application/gzip")],
                &b[..b.len() / 2],
            )
        }),
        ("1.0.2", true, |b| {
            let half = &b[..b.len() / 2];
            let mut body = format!("{:x}\r\n", half.len()).into_bytes();
            body.extend_from_slice(half);
            body.extend_from_slice(b"\r\n");
            unframed(
                200,
                &[
                    ("Content-Type", "application/gzip"),
                    ("Transfer-Encoding", "chunked"),
                ],
                &body,
            )
        }),
        ("1.0.3", true, |b| {
            let mut other = b.to_vec();
            let mid = other.len() / 2;
            other[mid] ^= 0x55;
            framed(200, &[("Content-Type", "application/gzip")], &other)
        }),
        ("1.0.4", true, |b| {
            let n = (b.len() / 2).to_string();
            unframed(
                200,
                &[("Content-Type", "application/gzip"), ("Content-Length", &n)],
                b,
            )
        }),
        ("1.0.5", false, |b| {
            let n = b.len().to_string();
            unframed(
                200,
                &[("Content-Type", "application/gzip"), ("Content-Length", &n)],
                &b[..b.len() / 2],
            )
        }),
    ];
    let mut lines = String::new();
    for (v, with_cksum, build) in &cases {
        let bytes = make_crate("cutcrate", v);
        let ck = sha256_hex(&bytes);
        lines.push_str(&index_line(
            "cutcrate",
            v,
            with_cksum.then_some(ck.as_str()),
            OLD,
        ));
        lines.push('\n');
        up.answer(&format!("/dl/cutcrate/{v}/download"), build(&bytes));
    }
    up.index("/index/cu/tc/cutcrate", lines);
    let e = gate_on(&up, "{}\n", &[]).await;
    let mut complete = Vec::new();
    for (v, ..) in &cases {
        let started = Instant::now();
        let got = fetch(&format!(
            "{}/cargo/api/v1/crates/cutcrate/{v}/download",
            e.base()
        ))
        .await;
        assert!(
            started.elapsed() < BOUND,
            "{v} took {:?}",
            started.elapsed()
        );
        if let Ok(n) = got {
            complete.push(format!("{v}: {n} bytes"));
        }
    }
    assert!(
        complete.is_empty(),
        "bodies served as complete: {complete:?}"
    );
    let audit = e.audit.clone();
    for (v, ..) in &cases {
        crate::support::eventually(
            &format!("an audit line for the failed transfer of cutcrate {v}"),
            Duration::from_secs(3),
            async || {
                audit
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|ev| {
                        ev.package == "cutcrate"
                            && ev.version == *v
                            && ev.action == "block"
                            && matches!(
                                ev.rule.as_str(),
                                "transfer_incomplete" | "integrity_mismatch"
                            )
                    })
                    .then_some(())
            },
        )
        .await;
    }
    e.running.stop().await.unwrap();
}

/// 4d. A compressed index (`Content-Encoding: gzip`) that is corrupt, or that inflates past
/// `PKGGATE_MAX_DOCUMENT_BYTES` (a 16 MiB gzip bomb of ~16 KiB against a 1 MiB limit), is a
/// 502 with a JSON reason in bounded time, and the gate keeps serving.
#[tokio::test]
async fn corrupt_or_bomb_gzip_index_is_a_bounded_502() {
    use std::io::Write;
    let up = RawUpstream::start().await;
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let mut bomb_plain = Vec::with_capacity(16 << 20);
    let line = index_line("bomb", "1.0.0", None, OLD);
    while bomb_plain.len() < 16 << 20 {
        bomb_plain.extend_from_slice(line.as_bytes());
        bomb_plain.push(b'\n');
    }
    let bomb = gz(&bomb_plain);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let enc = ("Content-Encoding", "gzip");
    up.answer("/index/bo/mb/bomb", framed(200, &[enc], &bomb));
    let mut corrupt = gz(format!("{line}\n").as_bytes());
    let n = corrupt.len();
    corrupt[n / 2..].iter_mut().for_each(|b| *b ^= 0xa5);
    up.answer("/index/co/rr/corrupt", framed(200, &[enc], &corrupt));
    up.answer(
        "/index/ok/ay/okay",
        framed(
            200,
            &[enc],
            &gz(index_line("okay", "1.0.0", None, OLD).as_bytes()),
        ),
    );
    let e = gate_on(&up, "{}\n", &[(env::MAX_DOCUMENT_BYTES, "1048576")]).await;
    for (path, reason) in [
        ("/cargo/bo/mb/bomb", "larger than 1048576"),
        ("/cargo/co/rr/corrupt", "the index transfer failed"),
    ] {
        let (status, headers, body) = bounded_index(&e, path).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 502, "{path}: {text}");
        assert!(text.contains(reason), "{path}: {text}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }
    let (status, _, body) = bounded_index(&e, "/cargo/ok/ay/okay").await;
    assert_eq!(status, 200);
    assert_eq!(body, index_line("okay", "1.0.0", None, OLD).as_bytes());
    e.running.stop().await.unwrap();
}

/// An upstream index host that holds every answer until released, counting requests.
#[derive(Clone)]
struct HeldIndex {
    hits: Arc<AtomicU64>,
    open: tokio::sync::watch::Receiver<bool>,
    body: Arc<String>,
}

async fn held_index(State(h): State<HeldIndex>) -> String {
    h.hits.fetch_add(1, Ordering::SeqCst);
    let mut open = h.open.clone();
    let _ = open.wait_for(|o| *o).await;
    (*h.body).clone()
}

/// 4e. Concurrent requests for one uncached index file (a cold start, a CI fleet running
/// `cargo fetch` at once) share one upstream fetch (PROTOCOLS §5 item 53, SPEC §6
/// "single-flight per document"); otherwise each buffers its own copy of a file of up to
/// `PKGGATE_MAX_DOCUMENT_BYTES`.
#[tokio::test]
async fn concurrent_cold_index_requests_share_one_upstream_fetch() {
    const N: u64 = 16;
    let mut body = String::new();
    for i in 0..2_000 {
        body.push_str(&index_line("stampede", &format!("1.0.{i}"), None, OLD));
        body.push('\n');
    }
    let (release, open) = tokio::sync::watch::channel(false);
    let held = HeldIndex {
        hits: Arc::new(AtomicU64::new(0)),
        open,
        body: Arc::new(body.clone()),
    };
    let app = axum::Router::new()
        .route("/index/{*path}", axum::routing::get(held_index))
        .with_state(held.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let index = format!("http://{addr}/index/");
    let e = cargo_env_with("{}\n", &[], &[(env::UPSTREAM_CARGO_INDEX, &index)]).await;
    let url = format!("{}/cargo/st/am/stampede", e.base());
    let requests: Vec<_> = (0..N)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let r = client().get(&url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    // Every request is in flight once all N reached upstream (the defect) or, coalesced,
    // once the first did and the others had a second to follow.
    let deadline = Instant::now() + Duration::from_secs(1);
    while held.hits.load(Ordering::SeqCst) < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hits = held.hits.load(Ordering::SeqCst);
    release.send(true).unwrap();
    for r in requests {
        let (status, text) = r.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(text.len(), body.len());
    }
    assert_eq!(
        hits, 1,
        "{hits} upstream fetches for {N} concurrent requests of one crate"
    );
    e.running.stop().await.unwrap();
}
