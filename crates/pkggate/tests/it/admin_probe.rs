//! A hostile client against the admin surface (`/metrics`, `/-/pkggate/why/…`, the admin page
//! and its API, sign-in and sign-out): who is let in, what a session cookie is worth, what
//! hostile query parameters do, and what the open probes (`health`, `ready`) reveal.

use crate::admin_ui::event;
use crate::cargo_gate::{cargo_env, cargo_env_with};
use crate::support::eventually;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::intel::now_unix;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-Admin-Token";

/// Every route behind the admin guard (`why` with a name that is not a crate, so nothing is
/// fetched: only the guard is probed here).
const ADMIN_ROUTES: &[&str] = &[
    "/metrics",
    "/-/pkggate/why/cargo/no%20such/1.0.0",
    "/-/pkggate/ui",
    "/-/pkggate/ui/app.js",
    "/-/pkggate/ui/app.css",
    "/-/pkggate/api/decisions",
    "/-/pkggate/api/stats",
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// pkggate started from settings alone (mirror off, nothing fetched), listening on `host`.
struct Server {
    running: pkggate::server::Running,
    _dir: tempfile::TempDir,
}

async fn server(host: &str, extra: &[(&str, &str)]) -> Option<Server> {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::HOST, host.to_string()),
        (env::PORT, "0".into()),
        (env::MIRROR_ENABLED, "false".into()),
        (
            env::MIRROR_DB,
            dir.path().join("m.db").display().to_string(),
        ),
        (
            env::AUDIT_LOG,
            dir.path().join("a.log").display().to_string(),
        ),
        (
            env::POLICY_FILE,
            dir.path().join("p.yaml").display().to_string(),
        ),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    for (k, v) in extra {
        raw.env.insert(k.to_string(), v.to_string());
    }
    // A host without that address family cannot listen there: the caller skips.
    let running = pkggate::server::start(Arc::new(Config::load(&raw).unwrap()))
        .await
        .ok()?;
    Some(Server { running, _dir: dir })
}

/// An address of this machine that is not loopback (the source of a route outwards).
fn non_loopback_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn status(req: reqwest::RequestBuilder) -> (u16, String) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

#[tokio::test]
async fn non_loopback_clients_are_refused_even_with_forged_forwarded_headers() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this host has no non-loopback address");
        return;
    };
    // The worst case: forwarded headers are trusted (for URLs) and no token is set.
    let s = server("0.0.0.0", &[(env::TRUST_FORWARDED_HEADERS, "true")])
        .await
        .unwrap();
    let port = s.running.addr.port();
    let remote = SocketAddr::new(ip, port);
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    let c = client();
    for path in ADMIN_ROUTES {
        for (h, v) in [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
            ("x-forwarded-host", "localhost"),
            ("host", "localhost"),
        ] {
            let (st, body) = status(c.get(format!("http://{remote}{path}")).header(h, v)).await;
            assert_eq!(st, 403, "{path} from {ip} with {h}: {v}: {body}");
        }
        // The same route from loopback: the guard lets it through.
        let (st, _) = status(c.get(format!("http://{local}{path}"))).await;
        assert_ne!(st, 403, "{path} from loopback");
    }
    // Probes stay open to everyone.
    for (path, want) in [
        ("/-/pkggate/health", [200, 200]),
        ("/-/pkggate/ready", [200, 503]),
    ] {
        let (st, _) = status(c.get(format!("http://{remote}{path}"))).await;
        assert!(want.contains(&st), "{path} from {ip}: {st}");
    }
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_lock_out_a_loopback_admin() {
    let e = cargo_env("{}\n", &[]).await;
    let (st, _) = status(
        client()
            .get(format!("{}/metrics", e.base()))
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(
        st, 200,
        "forwarded headers are not trusted: the peer decides"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_decides() {
    // A TLS proxy on the same host (what the docs advise for the admin page) connects from
    // loopback; the client it forwards for is remote.
    let e = cargo_env_with("{}\n", &[], &[(env::TRUST_FORWARDED_HEADERS, "true")]).await;
    for path in ADMIN_ROUTES {
        let (st, body) = status(
            client()
                .get(format!("{}{path}", e.base()))
                .header("x-forwarded-for", "203.0.113.9")
                .header("x-forwarded-proto", "https"),
        )
        .await;
        assert_eq!(st, 403, "{path}: {body}");
    }
}

#[tokio::test]
async fn ipv4_loopback_on_a_dual_stack_listener_is_loopback() {
    let Some(s) = server("::", &[]).await else {
        eprintln!("skipped: no IPv6 on this host");
        return;
    };
    let url = format!("http://127.0.0.1:{}/metrics", s.running.addr.port());
    let (st, body) = status(client().get(url)).await;
    assert_eq!(st, 200, "{body}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_bearer_tokens_and_cookies_open_nothing_and_nothing_echoes_the_token() {
    let e = cargo_env_with("{}\n", &[], &[(env::ADMIN_TOKEN, TOKEN)]).await;
    let b = e.base();
    let c = client();
    let good = sign_in(&b, &[]).await;
    let good = good.split(';').next().unwrap().to_string();
    let value = good.strip_prefix("pkggate_admin=").unwrap().to_string();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, TOKEN)
    );
    let headers: Vec<(&str, String)> = vec![
        ("authorization", format!("Bearer {}", TOKEN.to_uppercase())),
        ("authorization", format!("Bearer {}", TOKEN.to_lowercase())),
        (
            "authorization",
            format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        ),
        ("authorization", format!("Bearer {TOKEN}x")),
        ("authorization", format!("Bearer x{TOKEN}")),
        ("authorization", format!("Bearer {TOKEN},{TOKEN}")),
        ("authorization", "Bearer".into()),
        ("authorization", "Bearer ".into()),
        ("authorization", basic),
        ("authorization", format!("Token {TOKEN}")),
        ("authorization", TOKEN.into()),
        ("x-admin-token", TOKEN.into()),
        ("cookie", format!("pkggate_admin={TOKEN}")),
        ("cookie", "pkggate_admin=".into()),
        ("cookie", format!("pkggate_admin={}", value.to_uppercase())),
        ("cookie", format!("PKGGATE_ADMIN={value}")),
        ("cookie", format!("pkggate_admin={value}0")),
        ("cookie", format!("pkggate_admin=x{value}")),
        (
            "cookie",
            format!("pkggate_admin={}", &value[..value.len() - 1]),
        ),
        ("cookie", format!("pkggate_admin_x={value}")),
    ];
    for path in ADMIN_ROUTES {
        let url = format!("{b}{path}");
        let refused = if *path == "/-/pkggate/ui" { 401 } else { 403 };
        for (h, v) in &headers {
            let (st, body) = status(c.get(&url).header(*h, v)).await;
            assert_eq!(st, refused, "{path} with {h}: {v}");
            assert!(!body.contains(TOKEN), "{path} echoes the token: {body}");
        }
        for q in ["token", "access_token", "admin_token"] {
            let (st, _) = status(c.get(format!("{url}?{q}={TOKEN}"))).await;
            assert_eq!(st, refused, "{path}?{q}=");
        }
        // Positive controls: the token and the session open it.
        let (st, body) = status(c.get(&url).bearer_auth(TOKEN)).await;
        assert_eq!(st, 200, "{path} with the token");
        assert!(!body.contains(TOKEN), "{path} echoes the token");
        let (st, _) = status(c.get(&url).header("cookie", &good)).await;
        assert_eq!(st, 200, "{path} with the session");
    }
}

#[tokio::test]
async fn wrong_sign_ins_set_no_cookie_and_echo_nothing() {
    let e = cargo_env_with("{}\n", &[], &[(env::ADMIN_TOKEN, TOKEN)]).await;
    let url = format!("{}/-/pkggate/login", e.base());
    let c = client();
    let upper = format!("token={}", TOKEN.to_uppercase());
    let short = format!("token={}", &TOKEN[..4]);
    let longer = format!("token={TOKEN}x");
    let wrong = "token=%3Cscript%3Ealert(1)%3C%2Fscript%3Ezz-marker";
    for body in ["", "token=", "token=+++", &upper, &short, &longer, wrong] {
        let r = c
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{body:?}");
        assert!(r.headers().get("set-cookie").is_none(), "{body:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("zz-marker") && !html.contains(TOKEN),
            "{html}"
        );
    }
    // The token in a JSON body or the query string is not a form sign-in.
    let (st, _) = status(
        c.post(&url)
            .header("content-type", "application/json")
            .body(format!("{{\"token\":\"{TOKEN}\"}}")),
    )
    .await;
    assert_eq!(st, 401);
    // Positive control.
    let r = c
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_some());
}

async fn sign_in(base: &str, extra: &[(&str, &str)]) -> String {
    let r = client()
        .post(format!("{base}/-/pkggate/login"))
        .headers(
            extra
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_session_cookie_is_secure_with_an_https_public_base() {
    let e = cargo_env_with(
        "{}\n",
        &[],
        &[
            (env::ADMIN_TOKEN, TOKEN),
            (env::PUBLIC_BASE_URL, "https://gate.example"),
        ],
    )
    .await;
    let set = sign_in(&e.base(), &[]).await;
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    for a in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/-/pkggate",
        "Max-Age=43200",
    ] {
        assert!(attrs.contains(&a), "{a} missing: {set}");
    }
    assert!(!attrs.iter().any(|a| a.starts_with("Domain")), "{set}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_a_trusted_https_proxy() {
    let e = cargo_env_with(
        "{}\n",
        &[],
        &[
            (env::ADMIN_TOKEN, TOKEN),
            (env::TRUST_FORWARDED_HEADERS, "true"),
        ],
    )
    .await;
    let set = sign_in(
        &e.base(),
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "gate.example"),
        ],
    )
    .await;
    assert!(set.split(';').any(|a| a.trim() == "Secure"), "{set}");
}

#[tokio::test]
async fn a_signed_out_session_is_refused() {
    let e = cargo_env_with("{}\n", &[], &[(env::ADMIN_TOKEN, TOKEN)]).await;
    let b = e.base();
    let session = sign_in(&b, &[])
        .await
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let api = format!("{b}/-/pkggate/api/decisions");
    assert_eq!(
        status(client().get(&api).header("cookie", &session))
            .await
            .0,
        200
    );
    let r = client()
        .post(format!("{b}/-/pkggate/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // An attacker who copied the cookie before sign-out replays it.
    assert_eq!(
        status(client().get(&api).header("cookie", &session))
            .await
            .0,
        403
    );
}

/// Asserts a clear answer (200 or 400, JSON, `no-store`) within a few seconds.
async fn bounded(c: &reqwest::Client, url: &str, allowed: &[u16]) -> serde_json::Value {
    let started = Instant::now();
    let r = c.get(url).send().await.unwrap();
    let st = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store", "{url}");
    let body = r.text().await.unwrap();
    assert!(allowed.contains(&st), "{url}: {st} {body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{url} took {:?}",
        started.elapsed()
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"))
}

#[tokio::test]
async fn hostile_decisions_and_stats_parameters_get_clear_answers() {
    let e = cargo_env("{}\n", &[]).await;
    let now = now_unix();
    for i in 0..3 {
        e.audit
            .events
            .lock()
            .unwrap()
            .push(event(now - 10 + i, "block", "p", "denylist"));
    }
    let b = format!("{}/-/pkggate/api", e.base());
    let c = client();
    let huge = "a".repeat(32 * 1024);
    for q in [
        "limit=18446744073709551616",
        "limit=-1",
        "limit=1e3",
        "since=1e400d",
        "since=1e300d",
        "since=99999999999999999999",
        "until=%00",
        "since=-1h",
        "since=9223372036854775807x",
    ] {
        bounded(&c, &format!("{b}/decisions?{q}"), &[400]).await;
    }
    for q in [
        "limit=0".to_string(),
        "since=99999999999999999999999d".into(),
        "until=9223372036854775807".into(),
        "since=9223372036854775807".into(),
        "ecosystem=..%2F..%2Fetc%2Fpasswd".into(),
        "ecosystem=%00%0d%0a".into(),
        "package=%2E%2E%2F%2E%2E%2F".into(),
        "rule=%E2%80%AE%0a".into(),
        format!("package={huge}"),
    ] {
        let v = bounded(&c, &format!("{b}/decisions?{q}"), &[200]).await;
        assert!(v["decisions"].is_array(), "{q}: {v}");
    }
    for q in [
        "hours=0",
        "hours=-1",
        "hours=745",
        "hours=99999999999999999999",
        "hours=1.5",
    ] {
        bounded(&c, &format!("{b}/stats?{q}"), &[400]).await;
    }
    assert_eq!(
        bounded(&c, &format!("{b}/stats?hours=744"), &[200]).await["hours"],
        744
    );
}

#[tokio::test]
async fn the_smallest_since_does_not_panic() {
    let e = cargo_env("{}\n", &[]).await;
    e.audit
        .events
        .lock()
        .unwrap()
        .push(event(now_unix(), "block", "p", "denylist"));
    let url = format!(
        "{}/-/pkggate/api/decisions?since=-9223372036854775808",
        e.base()
    );
    bounded(&client(), &url, &[200, 400]).await;
}

#[tokio::test]
async fn hostile_why_paths_get_clear_answers() {
    let e = cargo_env("{}\n", &[]).await;
    let b = format!("{}/-/pkggate/why", e.base());
    let c = client();
    let long = "a".repeat(16 * 1024);
    for (path, want) in [
        ("/martian/x/1.0.0".to_string(), 400),
        ("/%00/x/1.0.0".into(), 400),
        ("/cargo/onlyname".into(), 400),
        ("/cargo//1.0.0".into(), 400),
    ] {
        bounded(&c, &format!("{b}{path}"), &[want]).await;
    }
    let before = e
        .fake
        .index_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    for path in [
        "/cargo/..%2F..%2F..%2Fetc%2Fpasswd/1.0.0".to_string(),
        "/cargo/%2e%2e/%2e%2e/1.0.0".into(),
        "/cargo/a%0d%0aX-Injected:%201/1.0.0".into(),
        format!("/cargo/{long}/1.0.0"),
    ] {
        let v = bounded(&c, &format!("{b}{path}"), &[200, 400, 404]).await;
        // Not a crate name: no upstream fetch is made for it.
        if v.get("facts").is_some() {
            assert_ne!(v["facts"]["source"], "upstream", "{path}: {v}");
        }
    }
    let after = e
        .fake
        .index_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after, before,
        "index requests for names that are not crates"
    );
    // A real name with a huge version: one index read at most, a clear answer.
    let v = bounded(&c, &format!("{b}/cargo/goodcrate/{long}"), &[200]).await;
    assert_eq!(v["version"].as_str().map(str::len), Some(long.len()));
}

/// `health` and `ready` of a pkggate whose bundles and cargo index sit behind credentials on
/// a port nobody listens on, once `ready` reports a failed sync.
async fn probes_with_credentials() -> (String, String) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bundle = format!("http://bundleuser:hunter2pw@{closed}/all.zip");
    let index = format!("http://indexuser:hunter3pw@{closed}/index/");
    let extra = [
        (env::ADMIN_TOKEN, TOKEN),
        (env::MIRROR_ENABLED, "true"),
        (env::OSV_BUNDLE_NPM, bundle.as_str()),
        (env::OSV_BUNDLE_PYPI, bundle.as_str()),
        (env::OSV_BUNDLE_CRATES_IO, bundle.as_str()),
        (env::UPSTREAM_CARGO_INDEX, index.as_str()),
        (env::UPSTREAM_NPM, index.as_str()),
    ];
    let s = server("127.0.0.1", &extra).await.unwrap();
    let base = format!("http://{}", s.running.addr);
    let c = client();
    let (st, health) = status(c.get(format!("{base}/-/pkggate/health"))).await;
    assert_eq!(st, 200);
    let ready = eventually(
        "a failed bundle sync in ready",
        Duration::from_secs(30),
        async || {
            let (st, body) = status(c.get(format!("{base}/-/pkggate/ready"))).await;
            assert_eq!(st, 503, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (!v["intel"]["crates.io"]["last_error"].is_null()).then_some(body)
        },
    )
    .await;
    s.running.stop().await.unwrap();
    (health, ready)
}

#[tokio::test]
async fn health_and_ready_are_open_and_reveal_neither_token_nor_upstream_credentials() {
    let (health, ready) = probes_with_credentials().await;
    for body in [&health, &ready] {
        for secret in [TOKEN, "hunter3pw", "indexuser:"] {
            assert!(!body.contains(secret), "{secret} revealed: {body}");
        }
    }
}

#[tokio::test]
async fn ready_reveals_no_bundle_credentials() {
    let (_, ready) = probes_with_credentials().await;
    for secret in ["hunter2pw", "bundleuser:"] {
        assert!(!ready.contains(secret), "{secret} revealed: {ready}");
    }
}
