//! Security and robustness probes of the npm gates (packument / `/<name>/<version>` metadata
//! gate and tarball gate), over HTTP against a pkggate started here: hostile names and paths
//! never steer the upstream URL, client credentials and upstream cookies stay on their side,
//! credentials written in the configured upstream URL never reach clients, hostile upstream
//! documents end in a bounded 502, a `dist.tarball` elsewhere is never followed, and
//! tarballs cut short by upstream never look complete and are audited.
//!
//! Besides [`FakeNpm`], a scripted raw upstream ([`RawUpstream`]) answers byte for byte
//! what a test sets (lying `Content-Length`, truncated bodies, cookies, hostile JSON), and a
//! [`Tripwire`] counts every connection made to it. All on 127.0.0.1.

use crate::npm_fake::*;
use crate::raw_http::*;
use crate::support::eventually;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Every probe request must be answered within this.
const BOUND: Duration = Duration::from_secs(5);

/// The secret of the credentialed upstream URL: must never be shown to a client.
const SECRET: &str = "s3cret-token";
const USER: &str = "probe-user";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One raw request (the target is sent as is: no client library normalises it); the status
/// code and the whole answer as text.
async fn raw_request(addr: &str, method: &str, target: &str) -> (u16, String) {
    let (status, out) = crate::raw_http::raw_request(addr, method, target, &[("Host", addr)]).await;
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_ne!(status, 0, "no HTTP answer for {target}: {out:?}");
    (status, out)
}

impl RawUpstream {
    fn json(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.answer(
            path,
            framed(200, &[("Content-Type", "application/json")], &body.into()),
        );
    }

    /// Every piece of a synthetic package: its full document (whatever the `Accept`) and
    /// its tarballs.
    fn add(&self, s: &Synthetic) {
        let path = format!("/{}", s.name.replace('/', "%2f"));
        self.json(&path, s.full.clone());
        for (p, b) in &s.tarballs {
            self.answer(
                p,
                framed(200, &[("Content-Type", "application/octet-stream")], b),
            );
        }
    }
}

/// pkggate whose npm upstream is `upstream_url` (a [`RawUpstream`], maybe with credentials).
async fn gate_on(upstream_url: &str, policy: &str, extra: &[(&str, &str)]) -> Harness {
    Harness::start_with(
        FakeNpm::default(),
        upstream_url.to_string(),
        policy,
        &[("evil-pkg", &["6.6.6"])],
        extra,
    )
    .await
}

/// A JSON answer from the gate, in bounded time: status and body.
async fn timed_get(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let started = Instant::now();
    let mut r = client().get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "{url} took {elapsed:?}");
    (status, h, body)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned()
}

/// 1. Hostile names and paths (encoded slashes and dots, `:`/`@`/`?`/`#`/backslash/
/// whitespace, absolute-URL-looking names, over-long names and versions, odd tarball file
/// names, the special `/-/` namespace, an absolute-form request target): refused with a 4xx
/// JSON answer and no upstream contact, or routed to the one expected upstream path; never a
/// 5xx, never a connection to another host.
#[tokio::test]
async fn hostile_names_and_paths_never_steer_the_upstream_url() {
    let trip = Tripwire::start().await;
    let t = trip.addr.to_string();
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    h.add(
        "alpha",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    h.add(
        "@sc/pkg",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    let addr = h.base.trim_start_matches("http://").to_string();
    let long = |c: &str, n: usize| c.repeat(n);
    let refused: Vec<String> = vec![
        "/@a%2fb%2fc".into(),
        "/%40a%2fb%2f..%2fc".into(),
        "/@a%2f..".into(),
        "/@a%2f%2e%2e".into(),
        "/@a/%2e%2e".into(),
        "/@..%2fx".into(),
        "/@%2fx".into(),
        "/http:evil".into(),
        "/http:%2f%2fevil".into(),
        format!("/http:%2f%2f{t}%2fx"),
        format!("/http:%2F%2F{t}"),
        format!("/https:%2f%2f{t}"),
        format!("/%2f%2f{t}%2fx"),
        format!("//{t}/x"),
        format!("///{t}"),
        format!("/@{t}/x"),
        format!("/@{t}%2fx"),
        format!("/a@{t}"),
        format!("/{t}"),
        "/a:b".into(),
        "/a%3fb".into(),
        "/a%23b".into(),
        "/a%20b".into(),
        "/a%09b".into(),
        "/a%0d%0aX-Injected:%201".into(),
        "/a%5cb".into(),
        "/a%5c..%5cb".into(),
        "/a%00".into(),
        "/%2e%2e".into(),
        "/%2E%2E%2fx".into(),
        "/.a".into(),
        "/_a".into(),
        "/%2ea".into(),
        "/%C0%AE%C0%AE".into(),
        "/@s%252fn".into(),
        "/alpha%252f..%252f".into(),
        "/alpha/%2e%2e".into(),
        "/alpha/..%2f..%2fx".into(),
        "/alpha/%2e%2e%2f%2e%2e%2fx".into(),
        "/alpha/1.0.0%2f..%2f..%2fx".into(),
        "/alpha/1.0.0%3f".into(),
        "/alpha/1.0.0%23x".into(),
        "/alpha/1.0.0%20".into(),
        "/alpha/-/alpha-1.0.0%2f..%2f..%2fx.tgz".into(),
        "/alpha/-/..%2falpha-1.0.0.tgz".into(),
        "/alpha/-/%2e%2e%2f%2e%2e%2falpha-1.0.0.tgz".into(),
        "/alpha/-/alpha-1.0.0%3f.tgz".into(),
        "/alpha/-/alpha-1.0.0%23.tgz".into(),
        "/alpha/-/alpha-1.0.0%20.tgz".into(),
        "/alpha/-/alpha-1.0.0%5c..%5cx.tgz".into(),
        "/alpha/-/alpha-1.0.0%C0%AE.tgz".into(),
        format!("/alpha/-/alpha-%2f%2f{t}.tgz"),
        format!("/alpha/-/alpha-1.0.0%2f%2f{t}.tgz"),
        "/alpha/-/alpha-1.0.0.tgz%00".into(),
        "/alpha/-/alpha-1.0.0.tgz/x".into(),
        "/alpha/-/x/alpha-1.0.0.tgz".into(),
        "/alpha/-/ALPHA-1.0.0.tgz".into(),
        "/alpha/-/alpha-.tgz".into(),
        "/alpha/-/alpha-1.0.0.tar.gz".into(),
        "/@sc/pkg/-/sc-pkg-1.0.0.tgz".into(),
        "/@sc%2fpkg/-/@sc%2fpkg-1.0.0.tgz".into(),
        "/-/..%2f..%2fx".into(),
        "/-/%2e%2e/x".into(),
        "/-/v1%2fsearch".into(),
        "/-/v1/search/..%2f..%2fx".into(),
        "/-/npm/v1/keys%3fx".into(),
        "/-/npm/v1/keys/%2e%2e/%2e%2e/alpha".into(),
        "/-/".into(),
        format!("/{}", long("a", 215)),
        format!("/{}", long("a", 6000)),
        format!("/@{}%2f{}", long("s", 200), long("n", 20)),
        format!("/alpha/{}", long("1", 300)),
        format!("/alpha/-/alpha-{}.tgz", long("1", 300)),
    ];
    let mut problems = Vec::new();
    for path in &refused {
        let before = h.upstream.log.lock().unwrap().len();
        let started = Instant::now();
        let (status, answer) = raw_request(&addr, "GET", path).await;
        if started.elapsed() > BOUND {
            problems.push(format!("{path}: took {:?}", started.elapsed()));
        }
        if !(status == 400 || status == 404 || status == 414) {
            problems.push(format!("{path}: {status} {}", text(answer.as_bytes())));
        } else if status != 414 && !answer.contains("\"error\"") {
            problems.push(format!(
                "{path}: {status} without a JSON reason: {answer:?}"
            ));
        }
        if answer.to_ascii_lowercase().contains("x-injected") && !answer.contains("\"error\"") {
            problems.push(format!("{path}: header injection: {answer:?}"));
        }
        let log = h.upstream.log.lock().unwrap();
        for (m, p, _) in &log[before..] {
            problems.push(format!("{path}: reached upstream as {m} {p}"));
        }
    }
    // Spellings that are routed: only the expected upstream paths, never a 5xx.
    let accepted: Vec<(String, &str, u16)> = vec![
        ("/%40sc%2fpkg".into(), "GET", 200),
        ("/%40sc/pkg".into(), "GET", 200),
        ("/@sc%2Fpkg".into(), "GET", 200),
        ("/@sc/pkg/1.0.0".into(), "GET", 200),
        ("/@sc/pkg/-/pkg-1.0.0.tgz".into(), "GET", 200),
        ("/%40sc%2fpkg/-/pkg-1.0.0.tgz".into(), "HEAD", 200),
        (format!("/alpha?redirect=http://{t}/"), "GET", 200),
        (format!("http://{t}/alpha"), "GET", 200),
        (format!("http://{t}/alpha/-/alpha-1.0.0.tgz"), "GET", 200),
        (format!("/alpha/1.0.0@{t}"), "GET", 404),
        (format!("/alpha/-/alpha-1.0.0@{t}.tgz"), "GET", 404),
        (format!("/alpha/-/alpha-1.0.0;u=http:{t}.tgz"), "GET", 404),
    ];
    for (path, method, want) in &accepted {
        let before = h.upstream.log.lock().unwrap().len();
        let (status, answer) = raw_request(&addr, method, path).await;
        if status != *want {
            problems.push(format!(
                "{method} {path}: {status} (want {want}) {}",
                text(answer.as_bytes())
            ));
        }
        let log = h.upstream.log.lock().unwrap();
        for (m, p, _) in &log[before..] {
            let ok = p == "/alpha"
                || p == "/@sc%2fpkg"
                || p == "/@sc/pkg/-/pkg-1.0.0.tgz"
                || p.strip_prefix("/alpha/-/alpha-1.0.0")
                    .is_some_and(|rest| rest.ends_with(".tgz") && !rest.contains('/'));
            if !ok {
                problems.push(format!("{method} {path}: reached upstream as {m} {p}"));
            }
        }
    }
    assert_eq!(trip.hits(), 0, "pkggate connected to another host");
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// 2. A client's `Authorization`, `Proxy-Authorization`, `Cookie` and `npm-otp` reach no
/// upstream on any npm route (both document forms, scoped names, `/<name>/<version>` and
/// tags, tarballs GET and HEAD, search, keys, audit); an upstream's `Set-Cookie` reaches no
/// client.
#[tokio::test]
async fn client_credentials_and_upstream_cookies_stay_on_their_side() {
    let up = RawUpstream::start().await;
    let cookie = ("Set-Cookie", "upstream-session=leaked-cookie; Path=/");
    let alpha = synthetic(
        &up.origin(),
        "alpha",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    let scoped = synthetic(
        &up.origin(),
        "@sc/pkg",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    for s in [&alpha, &scoped] {
        let path = format!("/{}", s.name.replace('/', "%2f"));
        up.answer(
            &path,
            framed(
                200,
                &[("Content-Type", "application/json"), cookie],
                &s.full,
            ),
        );
        for (p, b) in &s.tarballs {
            up.answer(
                p,
                framed(
                    200,
                    &[("Content-Type", "application/octet-stream"), cookie],
                    b,
                ),
            );
        }
    }
    for p in [
        "/-/v1/search",
        "/-/npm/v1/keys",
        "/-/npm/v1/security/advisories/bulk",
        "/-/npm/v1/security/audits/quick",
    ] {
        up.answer(
            p,
            framed(200, &[("Content-Type", "application/json"), cookie], b"{}"),
        );
    }
    let h = gate_on(&up.origin(), DEFAULT_POLICY, &[]).await;
    let creds = [
        ("authorization", "Bearer client-secret-1"),
        ("proxy-authorization", "Basic Y2xpZW50LXNlY3JldC0y"),
        ("cookie", "client-session=client-secret-3"),
        ("npm-otp", "client-secret-4"),
    ];
    let c = client();
    let mut leaks = Vec::new();
    for (method, path, accept) in [
        ("GET", "/alpha", "application/json"),
        ("GET", "/alpha", CORGI),
        ("GET", "/@sc%2fpkg", CORGI),
        ("GET", "/@sc/pkg", "application/json"),
        ("GET", "/alpha/1.0.0", "application/json"),
        ("GET", "/alpha/latest", "application/json"),
        ("GET", "/alpha/-/alpha-1.0.0.tgz", CORGI),
        ("HEAD", "/alpha/-/alpha-1.0.0.tgz", "*/*"),
        ("GET", "/@sc%2fpkg/-/pkg-1.0.0.tgz", "*/*"),
        ("GET", "/-/v1/search?text=alpha", "*/*"),
        ("GET", "/-/npm/v1/keys", "*/*"),
        ("POST", "/-/npm/v1/security/advisories/bulk", "*/*"),
        ("POST", "/-/npm/v1/security/audits/quick", "*/*"),
    ] {
        let mut r = c
            .request(method.parse().unwrap(), format!("{}{path}", h.base))
            .header("accept", accept);
        for (k, v) in creds {
            r = r.header(k, v);
        }
        if method == "POST" {
            r = r
                .header("content-type", "application/json")
                .body(r#"{"alpha":["1.0.0"]}"#);
        }
        let started = Instant::now();
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
        for v in resp.headers().get_all("set-cookie") {
            leaks.push(format!(
                "{method} {path}: Set-Cookie {v:?} reached the client"
            ));
        }
        let body = resp.bytes().await.unwrap();
        assert!(started.elapsed() < BOUND, "{method} {path}");
        if String::from_utf8_lossy(&body).contains("leaked-cookie") {
            leaks.push(format!(
                "{method} {path}: the upstream cookie is in the body"
            ));
        }
    }
    let heads = up.heads();
    assert!(heads.len() >= 8, "{heads:#?}");
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        for k in ["authorization:", "cookie:", "npm-otp:", "client-secret"] {
            if lower.contains(k) {
                leaks.push(format!("{k} forwarded upstream: {head:?}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
    h.stop().await;
}

/// The credentialed URL of a [`RawUpstream`] (`http://probe-user:s3cret-token@127.0.0.1:p`).
fn credentialed(up: &RawUpstream) -> String {
    format!("http://{USER}:{SECRET}@{}", up.addr)
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET}"))
    )
}

/// Does a request head carry the configured upstream credentials?
fn carries_basic_auth(head: &str) -> bool {
    let want = basic_auth().to_ascii_lowercase();
    head.to_ascii_lowercase()
        .lines()
        .any(|l| l.trim() == format!("authorization: {want}"))
}

/// 3a. Credentials written in the configured npm upstream URL authenticate every upstream
/// request (documents, tarballs, search, audit) as basic authentication, and never appear in
/// what clients get on the success paths: rewritten `dist.tarball` URLs, the
/// `/<name>/<version>` document, headers, or the reason of a refused redirect.
#[tokio::test]
async fn upstream_url_credentials_authenticate_and_never_show_in_documents() {
    let up = RawUpstream::start().await;
    let trip = Tripwire::start().await;
    let alpha = synthetic(
        &up.origin(),
        "alpha",
        &[
            Ver::new("1.0.0", NOW - 9 * DAY),
            Ver::new("1.1.0", NOW - 8 * DAY),
        ],
        &[("latest", "1.1.0")],
    );
    // One version's tarball URL as a mirror might echo it: with the credentials in it.
    let full = String::from_utf8(alpha.full.clone()).unwrap().replace(
        &format!("{}/alpha/-/alpha-1.1.0.tgz", up.origin()),
        &format!("{}/alpha/-/alpha-1.1.0.tgz", credentialed(&up)),
    );
    up.add(&alpha);
    up.json("/alpha", full);
    up.json("/-/v1/search", r#"{"objects":[],"total":0}"#);
    up.json("/-/npm/v1/security/advisories/bulk", "{}");
    up.answer(
        "/moved",
        framed(
            302,
            &[("Location", &format!("http://{}/elsewhere", trip.addr))],
            b"",
        ),
    );
    let h = gate_on(&credentialed(&up), DEFAULT_POLICY, &[]).await;
    let mut leaks = Vec::new();
    let mut check = |what: String, headers: &reqwest::header::HeaderMap, body: &[u8]| {
        if format!("{headers:?}").contains(SECRET) || String::from_utf8_lossy(body).contains(SECRET)
        {
            leaks.push(format!("{what}: {}", text(body)));
        }
    };
    for accept in ["application/json", CORGI] {
        let (status, hdrs, body) =
            timed_get(&format!("{}/alpha", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 200, "{accept}: {}", text(&body));
        check(format!("the document ({accept})"), &hdrs, &body);
        let doc = json_of(&body);
        for (v, m) in doc["versions"].as_object().unwrap() {
            let url = m["dist"]["tarball"].as_str().unwrap();
            assert!(url.starts_with(&format!("{}/", h.base)), "{v}: {url}");
        }
    }
    let (status, hdrs, body) = timed_get(&format!("{}/alpha/1.1.0", h.base), &[]).await;
    assert_eq!(status, 200);
    check("the version document".into(), &hdrs, &body);
    for (i, v) in ["1.0.0", "1.1.0"].iter().enumerate() {
        let (status, hdrs, body) =
            timed_get(&format!("{}/alpha/-/alpha-{v}.tgz", h.base), &[]).await;
        assert_eq!(status, 200, "{v}: {}", text(&body));
        assert_eq!(body, alpha.tarballs[i].1, "{v}");
        check(format!("the tarball {v}"), &hdrs, &body);
    }
    let (status, hdrs, body) = timed_get(&format!("{}/-/v1/search?text=a", h.base), &[]).await;
    assert_eq!(status, 200);
    check("search".into(), &hdrs, &body);
    let r = client()
        .post(format!("{}/-/npm/v1/security/advisories/bulk", h.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A redirect out of the configured origins: refused, and the reason is redacted.
    let (status, hdrs, body) = timed_get(&format!("{}/moved", h.base), &[]).await;
    assert_eq!(status, 502, "{}", text(&body));
    check("the refused redirect".into(), &hdrs, &body);
    assert_eq!(trip.hits(), 0, "the redirect was followed");
    assert!(leaks.is_empty(), "{leaks:#?}");
    // Every upstream request carried the credentials (as basic authentication).
    let heads = up.heads();
    for want in [
        "GET /alpha ",
        "GET /alpha/-/alpha-1.0.0.tgz ",
        "GET /alpha/-/alpha-1.1.0.tgz ",
        "GET /-/v1/search",
        "POST /-/npm/v1/security/advisories/bulk ",
    ] {
        let sent: Vec<&String> = heads.iter().filter(|hd| hd.starts_with(want)).collect();
        assert!(!sent.is_empty(), "{want} never asked: {heads:#?}");
        assert!(
            sent.iter().all(|hd| carries_basic_auth(hd)),
            "{want} without the configured credentials: {sent:#?}"
        );
    }
    h.stop().await;
}

/// 3b. A packument upstream refuses (HTTP 500): the 502 reason names the upstream URL, and
/// must not show the password written in the configured upstream URL.
#[tokio::test]
async fn upstream_url_credentials_never_in_a_packument_502_reason() {
    let up = RawUpstream::start().await;
    up.answer(
        "/err-pkg",
        framed(500, &[("Content-Type", "text/plain")], b"boom"),
    );
    up.answer(
        "/@sc%2ferr",
        framed(503, &[("Content-Type", "text/plain")], b"boom"),
    );
    let h = gate_on(&credentialed(&up), DEFAULT_POLICY, &[]).await;
    let mut leaks = Vec::new();
    for path in ["/err-pkg", "/@sc%2ferr", "/err-pkg/1.0.0"] {
        let (status, hdrs, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
        assert_eq!(status, 502, "{path}: {}", text(&body));
        assert!(
            json_of(&body)["error"]
                .as_str()
                .unwrap()
                .starts_with("upstream_error"),
            "{path}"
        );
        if format!("{hdrs:?}").contains(SECRET) || String::from_utf8_lossy(&body).contains(SECRET) {
            leaks.push(format!("{path}: {}", text(&body)));
        }
    }
    assert!(
        leaks.is_empty(),
        "the upstream password reached clients: {leaks:#?}"
    );
    h.stop().await;
}

/// 3c. A tarball upstream refuses (HTTP 500): the 502 reason names the tarball URL, and
/// must not show the password written in the configured upstream URL.
#[tokio::test]
async fn upstream_url_credentials_never_in_a_tarball_502_reason() {
    let up = RawUpstream::start().await;
    let alpha = synthetic(
        &up.origin(),
        "alpha",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    up.add(&alpha);
    up.answer(
        "/alpha/-/alpha-1.0.0.tgz",
        framed(500, &[("Content-Type", "text/plain")], b"boom"),
    );
    // A version the document does not list: fetched at the conventional URL.
    up.answer(
        "/alpha/-/alpha-9.9.9.tgz",
        framed(500, &[("Content-Type", "text/plain")], b"boom"),
    );
    let h = gate_on(&credentialed(&up), DEFAULT_POLICY, &[]).await;
    let mut leaks = Vec::new();
    for path in ["/alpha/-/alpha-1.0.0.tgz", "/alpha/-/alpha-9.9.9.tgz"] {
        let (status, hdrs, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
        assert_eq!(status, 502, "{path}: {}", text(&body));
        if format!("{hdrs:?}").contains(SECRET) || String::from_utf8_lossy(&body).contains(SECRET) {
            leaks.push(format!("{path}: {}", text(&body)));
        }
    }
    assert!(
        leaks.is_empty(),
        "the upstream password reached clients: {leaks:#?}"
    );
    h.stop().await;
}

/// A small valid full document of `name` (one version, `1.0.0`) with `extra` spliced in as
/// more top-level members (`extra` starts with a comma when not empty).
fn small_doc(name: &str, version_extra: &str, extra: &str) -> String {
    format!(
        r#"{{"name":"{name}","dist-tags":{{"latest":"1.0.0"}},"versions":{{"1.0.0":{{"name":"{name}","version":"1.0.0"{version_extra},"dist":{{"tarball":"http://127.0.0.1:9/{name}/-/{name}-1.0.0.tgz","shasum":"0000000000000000000000000000000000000000"}}}}}},"time":{{"created":"2020-01-01T00:00:00.000Z","1.0.0":"2020-01-01T00:00:00.000Z"}}{extra}}}"#
    )
}

/// Hostile documents: (name, body bytes).
/// 100,000 nested arrays.
fn deep_arrays() -> String {
    format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))
}

/// 50,000 nested objects.
fn deep_objects() -> String {
    format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000))
}

/// A served document with the values `serde_json` cannot read but `JSON.parse` can (nesting
/// past 128 levels, lone surrogates, out-of-range numbers) replaced by plain ones.
fn neutralised(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .replace(&deep_arrays(), "0")
        .replace(&deep_objects(), "0")
        .replace("\\ud800", "?")
        .replace("1e999999", "0")
}

fn hostile_documents() -> Vec<(String, Vec<u8>)> {
    let deep = |_: usize| deep_arrays();
    let deep_obj = |_: usize| deep_objects();
    let mut out: Vec<(String, Vec<u8>)> = vec![
        (
            "deep-top".into(),
            small_doc("deep-top", "", &format!(r#","x":{}"#, deep(100_000))).into(),
        ),
        (
            "deep-top-open".into(),
            small_doc("deep-top-open", "", &format!(r#","x":{}"#, "[".repeat(100_000))).into(),
        ),
        (
            "deep-version".into(),
            small_doc("deep-version", &format!(r#","x":{}"#, deep(100_000)), "").into(),
        ),
        (
            "deep-objects".into(),
            small_doc("deep-objects", &format!(r#","x":{}"#, deep_obj(50_000)), "").into(),
        ),
        (
            "deep-repo".into(),
            small_doc("deep-repo", &format!(r#","repository":{}"#, deep_obj(50_000)), "").into(),
        ),
        (
            "deep-scripts".into(),
            small_doc(
                "deep-scripts",
                &format!(r#","scripts":{{"postinstall":{}}}"#, deep(100_000)),
                "",
            )
            .into(),
        ),
        (
            "deep-dist-tags".into(),
            format!(
                r#"{{"name":"deep-dist-tags","dist-tags":{{"latest":{}}},"versions":{{}}}}"#,
                deep(100_000)
            )
            .into(),
        ),
        (
            "deep-time".into(),
            small_doc("deep-time", "", "")
                .replace(r#""created":"2020-01-01T00:00:00.000Z""#, &format!(r#""created":{}"#, deep(100_000)))
                .into(),
        ),
        // Duplicate keys, where a last-wins JSON parser (JSON.parse, npm) would see what
        // a first-wins reader did not decide.
        (
            "dup-versions".into(),
            br#"{"name":"dup-versions","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-versions","version":"1.0.0"}},"versions":{"6.6.6":{"name":"dup-versions","version":"6.6.6"}}}"#.to_vec(),
        ),
        (
            "dup-escaped".into(),
            br#"{"name":"dup-escaped","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-escaped","version":"1.0.0"}},"vers\u0069ons":{"6.6.6":{"name":"dup-escaped","version":"6.6.6"}}}"#.to_vec(),
        ),
        (
            "dup-version-key".into(),
            br#"{"name":"dup-version-key","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-version-key","version":"1.0.0"},"1.0.0":{"name":"dup-version-key","version":"1.0.0","scripts":{"postinstall":"x"}}}}"#.to_vec(),
        ),
        (
            "dup-scripts".into(),
            br#"{"name":"dup-scripts","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-scripts","version":"1.0.0","scripts":{},"scripts":{"postinstall":"x"}}}}"#.to_vec(),
        ),
        (
            "dup-script-name".into(),
            br#"{"name":"dup-script-name","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-script-name","version":"1.0.0","scripts":{"postinstall":"","postinstall":"node evil.js"}}}}"#.to_vec(),
        ),
        (
            "dup-dist".into(),
            br#"{"name":"dup-dist","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-dist","version":"1.0.0","dist":{"tarball":"http://127.0.0.1:9/a.tgz"},"dist":{"tarball":"http://127.0.0.1:9/b.tgz"}}}}"#.to_vec(),
        ),
        (
            "dup-tarball".into(),
            br#"{"name":"dup-tarball","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-tarball","version":"1.0.0","dist":{"tarball":"http://127.0.0.1:9/a.tgz","tarball":"http://127.0.0.1:9/b.tgz"}}}}"#.to_vec(),
        ),
        (
            "dup-name".into(),
            br#"{"name":"dup-name","name":"other","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-name","version":"1.0.0"}}}"#.to_vec(),
        ),
        (
            "dup-tags".into(),
            br#"{"name":"dup-tags","dist-tags":{"latest":"1.0.0","latest":"6.6.6"},"versions":{"1.0.0":{"name":"dup-tags","version":"1.0.0"}}}"#.to_vec(),
        ),
        (
            "dup-time".into(),
            br#"{"name":"dup-time","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"dup-time","version":"1.0.0"}},"time":{"1.0.0":"2020-01-01T00:00:00.000Z","1.0.0":"2026-05-31T23:00:00.000Z"}}"#.to_vec(),
        ),
        // Broken text.
        ("surrogate".into(), small_doc("surrogate", r#","x":"\ud800""#, "").into()),
        ("surrogate-key".into(), small_doc("surrogate-key", r#","\udfff":1"#, "").into()),
        ("big-number".into(), small_doc("big-number", r#","x":1e999999"#, "").into()),
        ("nan".into(), small_doc("nan", r#","x":NaN"#, "").into()),
        ("bom".into(), [&b"\xEF\xBB\xBF"[..], small_doc("bom", "", "").as_bytes()].concat()),
        ("trailing".into(), format!("{} {{}}", small_doc("trailing", "", "")).into()),
        ("array".into(), b"[1,2,3]".to_vec()),
        ("null".into(), b"null".to_vec()),
        ("string".into(), b"\"x\"".to_vec()),
        ("empty-body".into(), Vec::new()),
        ("version-array".into(), br#"{"name":"version-array","versions":{"1.0.0":[]}}"#.to_vec()),
        ("versions-string".into(), br#"{"name":"versions-string","versions":"1.0.0"}"#.to_vec()),
        ("tags-number".into(), br#"{"name":"tags-number","dist-tags":{"latest":1},"versions":{}}"#.to_vec()),
        ("dist-string".into(), small_doc("dist-string", "", "").replace(r#""dist":{"#, r#""dist":"x","dist2":{"#).into()),
        ("long-key".into(), small_doc("long-key", &format!(r#","{}":1"#, "k".repeat(200_000)), "").into()),
        ("many-keys".into(), {
            let keys: Vec<String> = (0..20_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
            small_doc("many-keys", &format!(",{}", keys.join(",")), "").into()
        }),
    ];
    // Invalid UTF-8: in a value, in a key, in a version key, in the name.
    for (name, at) in [
        ("utf8-value", "VALUE"),
        ("utf8-key", "KEY"),
        ("utf8-version", "VERSION"),
    ] {
        let tmpl = small_doc(name, r#","readme":"VALUE","KEY":1"#, "").replace(
            r#""versions":{"1.0.0":"#,
            r#""versions":{"2.0.0-VERSION":{"name":"x","version":"2.0.0"},"1.0.0":"#,
        );
        let mut t = tmpl;
        for other in ["VALUE", "KEY", "VERSION"].into_iter().filter(|o| *o != at) {
            t = t.replace(other, &other.to_lowercase());
        }
        let pieces: Vec<&[u8]> = t.split(at).map(str::as_bytes).collect();
        let bytes = pieces.join(&b"\xff\xfe\xc3("[..]);
        out.push((name.to_string(), bytes));
    }
    out
}

/// 4a. Hostile upstream documents (nesting 100,000 deep in every place, duplicate keys at
/// every level, invalid UTF-8, lone surrogates, huge numbers, BOM, trailing data, wrong
/// types, 200 KB keys, 20,000 keys): a 502 with a JSON reason, a 403 block, or a valid document
/// in bounded time, never a 500 or a crash; what a document that is served shows a last-wins
/// parser (npm's `JSON.parse`) is what was decided; the gate keeps serving.
#[tokio::test]
async fn hostile_upstream_packuments_end_in_bounded_time() {
    let up = RawUpstream::start().await;
    let docs = hostile_documents();
    for (name, body) in &docs {
        up.json(&format!("/{name}"), body.clone());
    }
    let ok = synthetic(
        &up.origin(),
        "ok-pkg",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    up.add(&ok);
    let h = gate_on(
        &up.origin(),
        "deny_lifecycle_scripts: true\nmin_package_age_days: 1\n",
        &[],
    )
    .await;
    let mut problems = Vec::new();
    let mut outcome = Vec::new();
    for (name, _) in &docs {
        for (path, accept) in [
            (format!("/{name}"), "application/json"),
            (format!("/{name}"), CORGI),
            (format!("/{name}/latest"), "application/json"),
        ] {
            let (status, hdrs, body) =
                timed_get(&format!("{}{path}", h.base), &[("accept", accept)]).await;
            outcome.push(format!("{path} {accept:.10}: {status}"));
            match status {
                200 => {
                    let Ok(doc) = serde_json::from_str::<Value>(&neutralised(&body)) else {
                        problems.push(format!("{path}: 200 with invalid JSON: {}", text(&body)));
                        continue;
                    };
                    // serde_json keeps the last of duplicate keys, like JSON.parse.
                    let versions = if path.ends_with("/latest") {
                        vec![doc.clone()]
                    } else {
                        doc["versions"]
                            .as_object()
                            .map(|m| m.values().cloned().collect())
                            .unwrap_or_default()
                    };
                    for v in versions {
                        if v["version"] == "6.6.6"
                            || v.get("scripts")
                                .is_some_and(|s| s.get("postinstall").is_some())
                        {
                            problems.push(format!("{path}: a forbidden version is served: {v}"));
                        }
                    }
                    if doc.get("dist-tags").is_some() {
                        for (tag, target) in doc["dist-tags"].as_object().unwrap() {
                            if doc["versions"].get(target.as_str().unwrap_or("")).is_none() {
                                problems
                                    .push(format!("{path}: dist-tag {tag} -> {target} is missing"));
                            }
                        }
                    }
                }
                404 => {}
                // Every version refused by the policy (a postinstall hidden in deep nesting).
                403 if String::from_utf8_lossy(&body).contains("blocked_by_pkggate") => {}
                502 => {
                    let err = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    if !err.starts_with("upstream_error") {
                        problems.push(format!("{path}: 502 without a reason: {}", text(&body)));
                    }
                    if hdrs.get("cache-control").is_none_or(|v| v != "no-store") {
                        problems.push(format!("{path}: 502 without no-store"));
                    }
                }
                s => problems.push(format!("{path} ({accept}): {s} {}", text(&body))),
            }
        }
    }
    let (status, _, body) = timed_get(&format!("{}/ok-pkg", h.base), &[]).await;
    assert_eq!(
        status,
        200,
        "a normal document after the hostile ones: {}",
        text(&body)
    );
    let (status, _, _) = timed_get(&format!("{}/-/pkggate/health", h.base), &[]).await;
    assert_eq!(status, 200);
    assert!(problems.is_empty(), "{problems:#?}\n{outcome:#?}");
    h.stop().await;
}

/// A gzip body of `n` zero bytes (a few KB on the wire).
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..n / zeros.len() {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}

/// Documents over `limit` bytes in every framing: declared, chunked, close-delimited, and
/// gzip-encoded (small on the wire, over the limit once decoded).
fn oversized(up: &RawUpstream, limit: usize) -> Vec<String> {
    let body = small_doc("x", &format!(r#","readme":"{}""#, "r".repeat(limit)), "");
    let ct = ("Content-Type", "application/json");
    let chunked = {
        let mut b = Vec::new();
        for c in body.as_bytes().chunks(8 << 10) {
            b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            b.extend_from_slice(c);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"0\r\n\r\n");
        b
    };
    let cases = vec![
        ("big-declared", framed(200, &[ct], body.as_bytes())),
        (
            "big-chunked",
            unframed(200, &[ct, ("Transfer-Encoding", "chunked")], &chunked),
        ),
        ("big-close", unframed(200, &[ct], body.as_bytes())),
        (
            "big-gzip",
            framed(
                200,
                &[ct, ("Content-Encoding", "gzip")],
                &gzip_zeros(16 << 20),
            ),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, answer)| {
            up.answer(&format!("/{name}"), answer);
            name.to_string()
        })
        .collect()
}

/// 4b. Documents over `PKGGATE_MAX_DOCUMENT_BYTES` in every framing (declared, chunked,
/// close-delimited, a gzip bomb small on the wire) end in a 502 with a reason in bounded
/// time, on the packument route and on the tarball route that needs the document's facts;
/// twice in a row; and the gate keeps serving.
#[tokio::test]
async fn documents_over_the_size_limit_are_502_on_both_gates() {
    const LIMIT: usize = 256 << 10;
    let up = RawUpstream::start().await;
    let names = oversized(&up, LIMIT);
    let ok = synthetic(
        &up.origin(),
        "ok-pkg",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    up.add(&ok);
    let h = gate_on(
        &up.origin(),
        "min_package_age_days: 1\n",
        &[(pkggate::env::MAX_DOCUMENT_BYTES, &LIMIT.to_string())],
    )
    .await;
    let mut problems = Vec::new();
    for name in &names {
        for path in [
            format!("/{name}"),
            format!("/{name}"),
            format!("/{name}/1.0.0"),
            format!("/{name}/-/{name}-1.0.0.tgz"),
        ] {
            let (status, hdrs, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
            let err = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_default();
            if status != 502 || !err.starts_with("upstream_error") {
                problems.push(format!("{path}: {status} {}", text(&body)));
            }
            if hdrs.get("cache-control").is_none_or(|v| v != "no-store") {
                problems.push(format!("{path}: no no-store"));
            }
        }
    }
    assert_eq!(up.streamed.load(Ordering::SeqCst), 0);
    let (status, _, body) = timed_get(&format!("{}/ok-pkg/-/ok-pkg-1.0.0.tgz", h.base), &[]).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// 4c. The tarball gate, when the policy needs a document's facts (age, repository,
/// scripts) and upstream's document is malformed or of another package, answers like the
/// metadata gate: 502 with an `upstream_error` reason (SPEC §3.17: invalid upstream JSON is
/// never a 500; clients retry 5xx but a 500 says pkggate itself is broken).
#[tokio::test]
async fn tarball_gate_answers_502_for_a_bad_upstream_document() {
    let up = RawUpstream::start().await;
    up.json("/broken", r#"{"name":"broken","versions":{"#);
    up.json("/notjson", "<html>oops</html>");
    up.json(
        "/liar",
        r#"{"name":"other","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"other","version":"1.0.0"}}}"#,
    );
    up.json(
        "/dupkeys",
        r#"{"name":"dupkeys","versions":{"1.0.0":{"version":"1.0.0"}},"versions":{}}"#,
    );
    let h = gate_on(&up.origin(), "min_package_age_days: 1\n", &[]).await;
    let mut problems = Vec::new();
    for name in ["broken", "notjson", "liar", "dupkeys"] {
        // The metadata gate: 502.
        let (status, _, body) = timed_get(&format!("{}/{name}", h.base), &[]).await;
        assert_eq!(status, 502, "{name}: {}", text(&body));
        // The tarball gate must say the same.
        let path = format!("/{name}/-/{name}-1.0.0.tgz");
        let (status, hdrs, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
        let err = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        if status != 502 || !err.starts_with("upstream_error") {
            problems.push(format!("{path}: {status} {}", text(&body)));
        }
        assert_eq!(hdrs["cache-control"], "no-store", "{path}");
    }
    assert!(
        !up.targets().iter().any(|p| p.ends_with(".tgz")),
        "a tarball was fetched without the facts"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// 4d. A `dist.tarball` on another host (plain, `user@host` confusion, backslashes, an
/// obfuscated IP, a scheme-relative or `file:` URL) or with `..` is never fetched: pkggate
/// asks only its upstream, serves the verified bytes, and every rewritten URL points at
/// pkggate. No connection is made to the other host.
#[tokio::test]
async fn dist_tarball_elsewhere_is_never_followed() {
    let up = RawUpstream::start().await;
    let trip = Tripwire::start().await;
    let t = trip.addr;
    let origin = up.origin();
    let urls = [
        format!("http://{t}/odd/-/odd-1.0.0.tgz"),
        format!("http://{}@{t}/odd/-/odd-1.0.1.tgz", up.addr),
        format!("http:\\\\{t}\\odd\\-\\odd-1.0.2.tgz"),
        format!("http://0x7f.0.0.1:{}/odd/-/odd-1.0.3.tgz", t.port()),
        format!("//{t}/odd/-/odd-1.0.4.tgz"),
        "file:///etc/passwd".to_string(),
        format!("{origin}/odd/-/x/../../../odd/-/odd-1.0.6.tgz"),
        format!("{origin}/odd/-/%2e%2e/%2e%2e/odd/-/odd-1.0.7.tgz"),
        format!("http://localhost:{}/odd/-/odd-1.0.8.tgz", t.port()),
        format!("http://[::ffff:127.0.0.1]:{}/odd/-/odd-1.0.9.tgz", t.port()),
    ];
    let vers: Vec<Ver> = (0..urls.len())
        .map(|i| Ver::new(&format!("1.0.{i}"), NOW - 9 * DAY))
        .collect();
    let s = synthetic(&origin, "odd", &vers, &[("latest", "1.0.0")]);
    let mut doc: Value = serde_json::from_slice(&s.full).unwrap();
    for (i, u) in urls.iter().enumerate() {
        doc["versions"][format!("1.0.{i}")]["dist"]["tarball"] = json!(u);
    }
    up.add(&s);
    up.json("/odd", serde_json::to_vec(&doc).unwrap());
    let h = gate_on(&origin, DEFAULT_POLICY, &[]).await;
    let (status, _, body) = timed_get(&format!("{}/odd", h.base), &[]).await;
    assert_eq!(status, 200, "{}", text(&body));
    let served = json_of(&body);
    for (v, m) in served["versions"].as_object().unwrap() {
        let u = m["dist"]["tarball"].as_str().unwrap();
        assert_eq!(u, format!("{}/odd/-/odd-{v}.tgz", h.base), "{v}");
    }
    let mut problems = Vec::new();
    for (i, (_, bytes)) in s.tarballs.iter().enumerate() {
        let path = format!("/odd/-/odd-1.0.{i}.tgz");
        let (status, _, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
        if status != 200 || &body != bytes {
            problems.push(format!("{path} ({}): {status} {}", urls[i], text(&body)));
        }
    }
    assert_eq!(trip.hits(), 0, "a tarball URL on another host was followed");
    for p in up.targets() {
        if !(p == "/odd" || (p.starts_with("/odd/-/odd-1.0.") && p.ends_with(".tgz"))) {
            problems.push(format!("upstream asked for {p}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// Read a tarball from the gate: `Ok(bytes)` when the body completed, `Err` when it was cut.
async fn fetch_body(url: &str) -> Result<usize, String> {
    let mut r = match client().get(url).send().await {
        Ok(r) => r,
        Err(e) => return Err(format!("{e:?}")),
    };
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

/// 5. Tarballs upstream cuts short (lying `Content-Length`, close-delimited short body,
/// chunked body without its end; with and without `dist.integrity`) never complete for the
/// client, and each leaves a `block` audit line (`transfer_incomplete` or
/// `integrity_mismatch`).
#[tokio::test]
async fn a_tarball_cut_short_by_upstream_never_looks_complete_and_is_audited() {
    let up = RawUpstream::start().await;
    let vers: Vec<Ver> = vec![
        Ver::new("1.0.0", NOW - 9 * DAY),
        Ver::new("1.0.1", NOW - 9 * DAY),
        Ver::new("1.0.2", NOW - 9 * DAY),
        Ver::new("1.0.3", NOW - 9 * DAY).no_digest(),
        Ver::new("1.0.4", NOW - 9 * DAY).no_digest(),
    ];
    let s = synthetic(&up.origin(), "short", &vers, &[("latest", "1.0.0")]);
    up.add(&s);
    let ct = ("Content-Type", "application/octet-stream");
    let mut cut_cases = Vec::new();
    for (i, (path, full)) in s.tarballs.iter().enumerate() {
        let half = &full[..full.len() / 2];
        let len = full.len().to_string();
        let chunked_cut = {
            let mut b = format!("{:x}\r\n", half.len()).into_bytes();
            b.extend_from_slice(half);
            b.extend_from_slice(b"\r\n");
            b
        };
        let answer = match i {
            // Declares the whole length, sends half, closes.
            0 | 3 => unframed(200, &[ct, ("Content-Length", &len)], half),
            // Close-delimited half (the digest catches it).
            1 => unframed(200, &[ct], half),
            // Chunked without the last chunk.
            2 | 4 => unframed(200, &[ct, ("Transfer-Encoding", "chunked")], &chunked_cut),
            _ => unreachable!(),
        };
        up.answer(path, answer);
        cut_cases.push(format!("1.0.{i}"));
    }
    let h = gate_on(&up.origin(), "{}", &[]).await;
    for v in &cut_cases {
        let url = format!("{}/short/-/short-{v}.tgz", h.base);
        let started = Instant::now();
        let got = fetch_body(&url).await;
        assert!(started.elapsed() < BOUND, "{v}");
        assert!(got.is_err(), "{v}: a cut body completed ({got:?})");
    }
    for v in &cut_cases {
        eventually(
            &format!("a block audit line for the cut transfer of {v}"),
            Duration::from_secs(3),
            async || {
                h.audit
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| {
                        e.package == "short"
                            && &e.version == v
                            && e.action == "block"
                            && (e.rule == "transfer_incomplete" || e.rule == "integrity_mismatch")
                    })
                    .then_some(())
            },
        )
        .await;
    }
    h.stop().await;
}

/// 4e. The audit pass-through (`POST /-/npm/v1/security/advisories/bulk`) holds upstream's
/// answer to `PKGGATE_MAX_DOCUMENT_BYTES` like every other document: an upstream that
/// declares and sends 64 MiB is cut off at the limit, not buffered whole.
#[tokio::test]
async fn audit_pass_through_answers_are_held_to_the_size_limit() {
    const LIMIT: usize = 256 << 10;
    const SENT: usize = 64 << 20;
    let up = RawUpstream::start().await;
    let head = head_bytes(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &SENT.to_string()),
        ],
    );
    up.answers.lock().unwrap().insert(
        "/-/npm/v1/security/advisories/bulk".into(),
        Answer::Stream {
            head: Bytes::from(head),
            total: SENT,
        },
    );
    let h = gate_on(
        &up.origin(),
        DEFAULT_POLICY,
        &[(pkggate::env::MAX_DOCUMENT_BYTES, &LIMIT.to_string())],
    )
    .await;
    let started = Instant::now();
    let r = client()
        .post(format!("{}/-/npm/v1/security/advisories/bulk", h.base))
        .header("content-type", "application/json")
        .body(r#"{"alpha":["1.0.0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    assert!(started.elapsed() < BOUND);
    let streamed = up.streamed.load(Ordering::SeqCst) as usize;
    assert!(
        streamed < SENT / 2,
        "pkggate read {streamed} bytes of a {SENT}-byte answer with a {LIMIT}-byte limit"
    );
    h.stop().await;
}

/// Search, keys and audit answers are served on the admin page's origin: whatever upstream
/// calls them, they go out as JSON a browser will not sniff into HTML.
#[tokio::test]
async fn passed_through_answers_are_json_never_html() {
    let up = RawUpstream::start().await;
    let page = b"<html><script>alert(document.cookie)</script></html>";
    for path in ["/-/v1/search", "/-/npm/v1/keys"] {
        up.answer(path, framed(200, &[("Content-Type", "text/html")], page));
    }
    let h = gate_on(&up.origin(), DEFAULT_POLICY, &[]).await;
    for path in ["/-/v1/search?text=a", "/-/npm/v1/keys"] {
        let (status, hdrs, body) = timed_get(&format!("{}{path}", h.base), &[]).await;
        assert_eq!(status, 200, "{path}: {}", text(&body));
        assert_eq!(
            hdrs.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            hdrs.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
    }
    h.stop().await;
}
