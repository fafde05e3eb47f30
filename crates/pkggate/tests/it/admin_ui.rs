//! The admin page (`/-/pkggate/ui`) and its JSON (`/-/pkggate/api/…`): filters, early-stopping
//! reads of a large audit log (checked through the `scan.bytes_read` the API reports), the
//! admin guard, the CSP header, and headless Chromium driving the page over the DevTools
//! protocol (load, filter, explain).

use crate::cargo_gate::{CargoEnv, cargo_env, cargo_env_with};
use crate::support::eventually;
use futures_util::{SinkExt, StreamExt};
use pkggate::audit::AuditEvent;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::intel::now_unix;
use pkggate::timefmt::rfc3339;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const OLD: &str = "2020-01-01T00:00:00Z";

/// pkggate with `evilcrate@0.2.0` malicious, after real traffic: the index of `evilcrate`
/// (one block and a summary), a blocked download and an allowed one (`goodcrate`).
async fn env_with_traffic(extra: &[(&str, &str)]) -> CargoEnv {
    let e = cargo_env_with("block_malicious: true\n", &[("evilcrate", "0.2.0")], extra).await;
    e.fake.publish("evilcrate", "0.1.0", OLD, false);
    e.fake.publish("evilcrate", "0.2.0", OLD, false);
    e.fake.publish("goodcrate", "1.0.0", OLD, false);
    let c = client();
    let auth = |r: reqwest::RequestBuilder| match extra.iter().find(|(k, _)| *k == env::ADMIN_TOKEN)
    {
        Some((_, t)) => r.bearer_auth(t),
        None => r,
    };
    for (path, want) in [
        ("/cargo/ev/il/evilcrate", 200),
        ("/cargo/go/od/goodcrate", 200),
        ("/cargo/api/v1/crates/evilcrate/0.2.0/download", 403),
        ("/cargo/api/v1/crates/goodcrate/1.0.0/download", 200),
    ] {
        let r = auth(c.get(format!("{}{path}", e.base())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{path}");
        let _ = r.bytes().await.unwrap();
    }
    e
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn api(base: &str, path: &str) -> Value {
    let r = client().get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

fn rows(v: &Value) -> Vec<Value> {
    v["decisions"].as_array().unwrap().clone()
}

fn field<'a>(rows: &'a [Value], k: &str) -> Vec<&'a str> {
    rows.iter().map(|r| r[k].as_str().unwrap_or("")).collect()
}

#[tokio::test]
async fn decisions_api_filters() {
    let e = env_with_traffic(&[]).await;
    let b = e.base();
    let all = rows(&api(&b, "/-/pkggate/api/decisions").await);
    let packages = field(&all, "package");
    assert!(packages.contains(&"evilcrate") && packages.contains(&"goodcrate"));
    // Newest first: the allowed goodcrate download was the last decision.
    assert_eq!(all[0]["package"], "goodcrate");
    assert_eq!(all[0]["request_kind"], "crate");

    let blocked = rows(&api(&b, "/-/pkggate/api/decisions?action=block").await);
    assert_eq!(blocked.len(), 2, "{blocked:?}"); // index line and download
    assert!(field(&blocked, "action").iter().all(|a| *a == "block"));
    assert!(field(&blocked, "package").iter().all(|p| *p == "evilcrate"));
    assert!(field(&blocked, "version").iter().all(|v| *v == "0.2.0"));

    let good = rows(&api(&b, "/-/pkggate/api/decisions?package=GOOD").await);
    assert!(!good.is_empty());
    assert!(field(&good, "package").iter().all(|p| *p == "goodcrate"));

    let by_rule = rows(&api(&b, "/-/pkggate/api/decisions?rule=summary").await);
    assert!(!by_rule.is_empty());
    assert!(field(&by_rule, "rule").iter().all(|r| *r == "summary"));

    // Ecosystem by OSV name or alias.
    assert_eq!(
        rows(&api(&b, "/-/pkggate/api/decisions?ecosystem=cargo").await).len(),
        all.len()
    );
    assert!(
        rows(&api(&b, "/-/pkggate/api/decisions?ecosystem=npm").await).is_empty(),
        "no npm traffic"
    );
    // Time range.
    let future = rfc3339(now_unix() + 3600);
    assert!(rows(&api(&b, &format!("/-/pkggate/api/decisions?since={future}")).await).is_empty());
    assert!(rows(&api(&b, "/-/pkggate/api/decisions?until=2020-01-01T00:00:00Z").await).is_empty());
    assert_eq!(
        rows(&api(&b, "/-/pkggate/api/decisions?since=1h&action=block").await).len(),
        2
    );
    assert_eq!(
        rows(&api(&b, "/-/pkggate/api/decisions?limit=1").await).len(),
        1
    );
    // Bad input: 400, not a panic.
    for q in ["since=yesterday-ish", "limit=many"] {
        let r = client()
            .get(format!("{b}/-/pkggate/api/decisions?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }

    let stats = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(stats["series"].as_array().unwrap().len(), 24);
    assert_eq!(stats["total"]["blocked"], 2);
    assert_eq!(stats["total"]["rules"]["block_malicious"], 2);
    let per_hour: u64 = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["blocked"].as_u64().unwrap())
        .sum();
    assert_eq!(per_hour, 2, "{stats}");
    assert_eq!(stats["scan"]["source"], "memory");
}

#[tokio::test]
async fn page_has_a_strict_csp_and_artifact_bytes_are_counted() {
    let e = env_with_traffic(&[]).await;
    let b = e.base();
    let r = client()
        .get(format!("{b}/-/pkggate/ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<script src="/-/pkggate/ui/app.js""#));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    for (asset, ty) in [
        ("/-/pkggate/ui/app.js", "text/javascript"),
        ("/-/pkggate/ui/app.css", "text/css"),
    ] {
        let r = client().get(format!("{b}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ty)
        );
    }
    let js = client()
        .get(format!("{b}/-/pkggate/ui/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));

    // Bytes of the allowed download went through the verified stream.
    let size = crate::cargo_gate::make_crate("goodcrate", "1.0.0").len() as f64;
    let metrics = client()
        .get(format!("{b}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = r#"pkggate_artifact_bytes_total{ecosystem="crates.io"} "#;
    let got: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {metrics}"));
    assert!(got >= size, "{got} < {size}");
    assert!(metrics.contains(r#"pkggate_cache_lookups_total{cache="intel",result="#));
}

#[tokio::test]
async fn admin_page_and_api_need_the_token() {
    let e = cargo_env_with("{}\n", &[], &[(env::ADMIN_TOKEN, "s3cret")]).await;
    let c = client();
    for path in [
        "/-/pkggate/ui",
        "/-/pkggate/ui/app.js",
        "/-/pkggate/ui/app.css",
        "/-/pkggate/api/decisions",
        "/-/pkggate/api/stats",
    ] {
        let url = format!("{}{path}", e.base());
        // The page itself answers a sign-in form to a browser without a session.
        let bare = if path == "/-/pkggate/ui" { 401 } else { 403 };
        assert_eq!(c.get(&url).send().await.unwrap().status(), bare, "{path}");
        assert_eq!(
            c.get(&url)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            bare,
            "{path} with a wrong token"
        );
        assert_eq!(
            c.get(&url)
                .bearer_auth("s3cret")
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path} with the token"
        );
    }
}

#[tokio::test]
async fn signing_in_sets_a_session_cookie_that_opens_the_page_and_api() {
    let e = cargo_env_with("{}\n", &[], &[(env::ADMIN_TOKEN, "s3cret")]).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = e.base();
    let page = c.get(format!("{base}/-/pkggate/ui")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(r#"action="/-/pkggate/login""#)
    );
    // A wrong token: the form again, no cookie.
    let r = c
        .post(format!("{base}/-/pkggate/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // The right one (form-encoded, as a browser sends it).
    let r = c
        .post(format!("{base}/-/pkggate/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/-/pkggate/ui");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/-/pkggate", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("s3cret"),
        "the cookie must not carry the token: {set}"
    );
    let session = set.split(';').next().unwrap().to_string();
    for path in ["/-/pkggate/ui", "/-/pkggate/api/decisions", "/metrics"] {
        let r = c
            .get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the session");
    }
    // A forged or stale cookie opens nothing.
    let r = c
        .get(format!("{base}/-/pkggate/api/decisions"))
        .header("cookie", "pkggate_admin=s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Signing out clears it.
    let r = c
        .post(format!("{base}/-/pkggate/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

pub(crate) fn event(ts: i64, action: &str, package: &str, rule: &str) -> AuditEvent {
    AuditEvent {
        ts: rfc3339(ts),
        action: action.into(),
        ecosystem: "npm".into(),
        package: package.into(),
        version: "1.0.0".into(),
        rule: rule.into(),
        reason: "test".into(),
        source: None,
        request_kind: "tarball".into(),
        client_ip: "127.0.0.1".into(),
        request_id: "0000000000000000".into(),
        user_agent: Some("npm/10.0.0 node/v22.0.0 linux x64".into()),
        policy_revision: "r".into(),
        intel_revision: "i".into(),
        counts: None,
    }
}

fn line(e: &AuditEvent) -> String {
    format!("{}\n", serde_json::to_string(e).unwrap())
}

/// pkggate reading the audit log at `log` (mirror off: nothing is fetched).
async fn file_server(dir: &std::path::Path, log: &std::path::Path) -> pkggate::server::Running {
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, "0".to_string()),
        (env::MIRROR_ENABLED, "false".into()),
        (env::MIRROR_DB, dir.join("mirror.db").display().to_string()),
        (env::AUDIT_LOG, log.display().to_string()),
        (
            env::POLICY_FILE,
            dir.join("policy.yaml").display().to_string(),
        ),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    pkggate::server::start(Arc::new(Config::load(&raw).unwrap()))
        .await
        .unwrap()
}

/// Stats counted from a file are reused only for that file: a new log that has the old one's
/// inode (rotation deletes a file and the next one may get its inode; here the same file
/// rewritten in place) is counted afresh, not extended from the old file's offset.
#[tokio::test]
async fn stats_are_not_reused_for_another_file_under_the_same_inode() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let now = now_unix();
    let write = |first: &str, n: usize, then: &str, m: usize| {
        let mut text = String::new();
        for (action, count) in [(first, n), (then, m)] {
            for i in 0..count {
                text += &line(&event(now - 60, action, &format!("p{i}"), "denylist"));
            }
        }
        // Truncates and rewrites: the same inode.
        std::fs::write(&log, text).unwrap();
    };
    write("allow", 2, "block", 0);
    let running = file_server(dir.path(), &log).await;
    let b = format!("http://{}", running.addr);
    let v = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(v["total"]["allowed"], 2, "{v}");
    write("block", 4, "allow", 3);
    let v = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(v["total"]["blocked"], 4, "{v}");
    assert_eq!(v["total"]["allowed"], 3, "{v}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn big_log_reads_stop_early() {
    const LINES: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let now = now_unix();
    let old = now - 3 * 86400;
    let mut size = 0u64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        for i in 0..LINES {
            let l = line(&event(old + (i / 100) as i64, "allow", "filler", "default"));
            size += l.len() as u64;
            w.write_all(l.as_bytes()).unwrap();
        }
        for i in 0..3 {
            let l = line(&event(
                now - 60 + i,
                "block",
                &format!("needle{i}"),
                "block_malicious",
            ));
            size += l.len() as u64;
            w.write_all(l.as_bytes()).unwrap();
        }
        w.flush().unwrap();
    }
    assert!(size > 40 << 20, "the log is large: {size}");
    let running = file_server(dir.path(), &log).await;
    let b = format!("http://{}", running.addr);
    let small = 256 * 1024;

    // `limit` reached in the last lines.
    let v = api(&b, "/-/pkggate/api/decisions?package=needle&limit=3").await;
    assert_eq!(
        field(&rows(&v), "package"),
        ["needle2", "needle1", "needle0"]
    );
    assert_eq!(v["scan"]["source"], "file");
    let read = v["scan"]["bytes_read"].as_u64().unwrap();
    assert!(read > 0 && read < small, "read {read} of {size} bytes");

    // `since` passed: stops at the first old line, even with no limit reached.
    let v = api(
        &b,
        "/-/pkggate/api/decisions?action=block&since=1h&limit=1000",
    )
    .await;
    assert_eq!(rows(&v).len(), 3);
    assert!(v["scan"]["bytes_read"].as_u64().unwrap() < small, "{v}");
    let v = api(&b, "/-/pkggate/api/decisions?package=absent&since=1h").await;
    assert!(rows(&v).is_empty());
    assert!(v["scan"]["bytes_read"].as_u64().unwrap() < small, "{v}");
    assert_eq!(v["scan"]["complete"], true);

    // Without bounds a filter that matches nothing reads the whole log (the control: the
    // counter does measure reads).
    let v = api(&b, "/-/pkggate/api/decisions?package=absent").await;
    assert!(rows(&v).is_empty());
    assert_eq!(v["scan"]["bytes_read"].as_u64().unwrap(), size);

    // Stats: the last 24 hours are read once, then only what was appended.
    let v = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(v["total"]["blocked"], 3, "{v}");
    assert!(v["scan"]["bytes_read"].as_u64().unwrap() < small, "{v}");
    let v = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(v["total"]["blocked"], 3);
    assert_eq!(v["scan"]["bytes_read"], 0, "{v}");
    let more = line(&event(now, "block", "needle3", "denylist"));
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(more.as_bytes()).unwrap();
        // A torn line (a write in progress) is not counted yet.
        f.write_all(b"{\"ts\":\"").unwrap();
    }
    let v = api(&b, "/-/pkggate/api/stats?hours=24").await;
    assert_eq!(v["total"]["blocked"], 4, "{v}");
    assert_eq!(v["total"]["rules"]["denylist"], 1);
    assert!(v["scan"]["bytes_read"].as_u64().unwrap() <= more.len() as u64 + 8);
    running.stop().await.unwrap();
}

// --- headless Chromium ------------------------------------------------------------------

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PKGGATE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Chromium, or `None` (skip) when it is missing and neither `CI` nor `PKGGATE_E2E` is set.
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    match find_chromium() {
        Some(p) => Some(p),
        None => {
            let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
                || std::env::var_os("PKGGATE_E2E").is_some_and(|v| !v.is_empty());
            assert!(
                !required,
                "chromium is not installed: run scripts/install-browser-clients"
            );
            eprintln!("SKIP {test}: chromium is not installed (scripts/install-browser-clients)");
            None
        }
    }
}

fn chromium_args(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// A browser this test started; killed (by its own handle) when dropped.
struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools protocol session on one page.
struct Cdp {
    ws: Ws,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let answer = self.answer(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// The whole answer to one call (`result` or `error`).
    async fn answer(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(msg))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(m) = self.ws.next().await {
                let m = m.unwrap();
                let Ok(text) = m.to_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if v["id"] == id {
                    return v;
                }
            }
            panic!("devtools connection closed");
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method}"))
    }

    /// Evaluate `expr` in the page; its value (JSON-serializable).
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Poll `expr` until it is `true`. While the page navigates (a submitted form), an
    /// evaluation can fail ("Inspected target navigated or closed"): that is "not yet".
    async fn wait_for(&mut self, what: &str, expr: &str) {
        eventually(what, Duration::from_secs(20), async || {
            let a = self
                .answer(
                    "Runtime.evaluate",
                    json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
                )
                .await;
            (a["result"]["result"]["value"] == Value::Bool(true)).then_some(())
        })
        .await;
    }
}

async fn launch(chromium: &std::path::Path) -> (Browser, Cdp) {
    let profile = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(chromium)
        .args(chromium_args(profile.path()))
        .args(["--remote-debugging-port=0", "about:blank"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port_file = profile.path().join("DevToolsActivePort");
    let browser = Browser {
        child,
        _profile: profile,
    };
    // Chromium writes its port (and the browser target's path) once it listens.
    let port: u16 = eventually(
        "chromium's DevToolsActivePort",
        Duration::from_secs(30),
        async || {
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
        },
    )
    .await;
    let ws_url: String = eventually("a page target", Duration::from_secs(20), async || {
        let list: Value = client()
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        list.as_array()?
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .map(str::to_string)
    })
    .await;
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    (browser, Cdp { ws, next: 0 })
}

#[tokio::test]
async fn chromium_signs_in_with_the_admin_token_and_out_again() {
    let Some(chromium) = chromium_or_skip("chromium_signs_in_with_the_admin_token_and_out_again")
    else {
        return;
    };
    let e = env_with_traffic(&[(env::ADMIN_TOKEN, "s3cret-token")]).await;
    let url = format!("{}/-/pkggate/ui", e.base());
    let (_browser, mut cdp) = launch(&chromium).await;
    cdp.call("Runtime.enable", json!({})).await;
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({"url": url})).await;
    cdp.wait_for("the sign-in form", "!!document.getElementById('token')")
        .await;
    // A wrong token first: the form says so.
    cdp.eval("document.getElementById('token').value = 'nope'; document.querySelector('form').submit(); true")
        .await;
    cdp.wait_for(
        "the wrong-token note",
        "!!document.getElementById('login-error')",
    )
    .await;
    cdp.eval("document.getElementById('token').value = 's3cret-token'; document.querySelector('form').submit(); true")
        .await;
    // Signed in: the page and its API calls work (the cookie rides along).
    cdp.wait_for(
        "the first decisions",
        "document.getElementById('decisions-meta')?.dataset.generation === '1'",
    )
    .await;
    let rows = cdp
        .eval("document.querySelectorAll('#decisions tbody tr').length")
        .await;
    assert!(rows.as_u64().unwrap() >= 1, "{rows}");
    // The session cookie is not readable from script.
    assert_eq!(cdp.eval("document.cookie").await, json!(""));
    cdp.eval("document.getElementById('sign-out').click(); true")
        .await;
    cdp.wait_for(
        "the sign-in form again",
        "!!document.getElementById('token')",
    )
    .await;
}

#[tokio::test]
async fn chromium_loads_filters_and_explains() {
    let Some(chromium) = chromium_or_skip("chromium_loads_filters_and_explains") else {
        return;
    };
    let e = env_with_traffic(&[]).await;
    // An attacker-chosen name must be shown as text, never parsed as HTML.
    let hostile = r#"<img id="pwned" src="x">"#;
    e.audit
        .events
        .lock()
        .unwrap()
        .push(event(now_unix() - 5, "block", hostile, "denylist"));
    let url = format!("{}/-/pkggate/ui", e.base());

    // Smoke check: --dump-dom renders the page's shell.
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let chromium = chromium.clone();
        let args = chromium_args(profile.path());
        let url = url.clone();
        move || {
            std::process::Command::new(chromium)
                .args(args)
                .args(["--dump-dom", url.as_str()])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium --dump-dom failed: {out:?}");
    assert!(
        dom.contains("Why is this blocked?") && dom.contains(r#"id="decisions""#),
        "{dom}"
    );

    let (_browser, mut cdp) = launch(&chromium).await;
    cdp.call("Runtime.enable", json!({})).await;
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({"url": url})).await;
    cdp.wait_for(
        "the first decisions",
        "document.getElementById('decisions-meta')?.dataset.generation === '1'",
    )
    .await;
    let packages = "Array.from(document.querySelectorAll('#decisions tbody td.package')).map(td => td.textContent)";
    let shown = cdp.eval(packages).await;
    let shown: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        shown.contains(&"evilcrate") && shown.contains(&"goodcrate"),
        "{shown:?}"
    );
    assert!(
        shown.contains(&hostile),
        "hostile name shown as text: {shown:?}"
    );
    assert_eq!(
        cdp.eval("document.getElementById('pwned') === null && document.querySelectorAll('#decisions img').length === 0").await,
        true
    );
    // Intelligence state and the chart come from ready and stats.
    cdp.wait_for(
        "the crates.io intelligence row",
        "document.querySelector('#intel tr[data-ecosystem=\"crates.io\"] td:nth-child(3)')?.textContent === 'yes'",
    )
    .await;
    cdp.wait_for(
        "a bar with blocks",
        "Array.from(document.querySelectorAll('#chart rect')).some(r => Number(r.dataset.blocked) >= 1)",
    )
    .await;
    assert_ne!(
        cdp.eval("document.getElementById('policy-revision').textContent")
            .await,
        "–"
    );

    // Filter: only goodcrate rows.
    cdp.eval(
        "document.getElementById('f-package').value = 'good'; \
         document.getElementById('filters').requestSubmit(); true",
    )
    .await;
    cdp.wait_for(
        "the filtered decisions",
        "document.getElementById('decisions-meta').dataset.generation === '2'",
    )
    .await;
    let shown = cdp.eval(packages).await;
    let shown = shown.as_array().unwrap();
    assert!(!shown.is_empty());
    assert!(shown.iter().all(|p| p == "goodcrate"), "{shown:?}");
    // Filter by action: only blocks.
    cdp.eval(
        "document.getElementById('f-package').value = ''; \
         document.getElementById('f-action').value = 'block'; \
         document.getElementById('filters').requestSubmit(); true",
    )
    .await;
    cdp.wait_for(
        "the blocked decisions",
        "document.getElementById('decisions-meta').dataset.generation === '3'",
    )
    .await;
    let actions = cdp
        .eval("Array.from(document.querySelectorAll('#decisions tbody tr')).map(tr => tr.children[1].textContent)")
        .await;
    let actions = actions.as_array().unwrap();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions.iter().all(|a| a == "block"));

    // Why is evilcrate 0.2.0 blocked?
    cdp.eval(
        "document.getElementById('why-ecosystem').value = 'crates.io'; \
         document.getElementById('why-name').value = 'evilcrate'; \
         document.getElementById('why-version').value = '0.2.0'; \
         document.getElementById('why-form').requestSubmit(); true",
    )
    .await;
    cdp.wait_for(
        "the explanation",
        "document.getElementById('why-result').hidden === false",
    )
    .await;
    assert_eq!(
        cdp.eval("document.getElementById('why-rule').textContent")
            .await,
        "block_malicious"
    );
    assert_eq!(
        cdp.eval("document.getElementById('why-action').textContent")
            .await,
        "block"
    );
    let steps = cdp
        .eval("Array.from(document.querySelectorAll('#why-trace li')).map(li => li.textContent)")
        .await;
    let steps = steps.as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("block_malicious")),
        "{steps:?}"
    );
    // And an allowed version says so.
    cdp.eval(
        "document.getElementById('why-version').value = '0.1.0'; \
         document.getElementById('why-form').requestSubmit(); true",
    )
    .await;
    cdp.wait_for(
        "the second explanation",
        "document.getElementById('why-result').dataset.generation === '2'",
    )
    .await;
    assert_eq!(
        cdp.eval("document.getElementById('why-action').textContent")
            .await,
        "allow"
    );
}

#[tokio::test]
async fn memory_sink_answers_without_a_file() {
    // The in-memory sink answers even though the configured log path does not exist.
    let e = cargo_env("{}\n", &[]).await;
    for i in 0..5 {
        e.audit.events.lock().unwrap().push(event(
            now_unix() - 10 + i,
            "block",
            &format!("p{i}"),
            "denylist",
        ));
    }
    let v = api(&e.base(), "/-/pkggate/api/decisions?limit=2").await;
    assert_eq!(field(&rows(&v), "package"), ["p4", "p3"]);
    assert_eq!(v["scan"]["source"], "memory");
    assert_eq!(v["scan"]["lines"], 2, "stops at the limit");
}
