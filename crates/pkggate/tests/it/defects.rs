//! Regression tests for the 0.1.x defects of SPEC §3 and the cargo cases of PROTOCOLS §5
//! that no other module pins, each met as a user meets it: over HTTP, through the binary,
//! or through files. Fakes bind 127.0.0.1:0.

use crate::cargo_gate::{cargo_env, cargo_env_with, make_crate};
use crate::npm_fake::{self, CORGI, DAY, FakeNpm, Harness, Ver, json_of, synthetic};
use crate::pypi_fake::{FakeFile, FakePypi, days_ago, start_gate};
use crate::raw_http::{RawUpstream, framed};
use crate::support::*;
use pkggate::env;
use serde_json::Value;
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

const OLD: &str = "2020-01-01T00:00:00Z";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn versions(doc: &Value) -> Vec<String> {
    doc["versions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// One compact cargo index line; `pubtime: None` leaves the field out.
fn line(name: &str, vers: &str, cksum: &str, pubtime: Option<&str>) -> String {
    let pt = pubtime.map_or(String::new(), |p| format!(r#","pubtime":"{p}""#));
    format!(
        r#"{{"name":"{name}","vers":"{vers}","deps":[],"cksum":"{cksum}","features":{{}},"yanked":false{pt}}}"#
    )
}

/// A scripted cargo upstream (index under `/index/`, downloads under `/dl`) and pkggate on it.
async fn cargo_on(up: &RawUpstream, policy: &str) -> crate::cargo_gate::CargoEnv {
    let index = format!("{}/index/", up.origin());
    let dl = format!("{}/dl", up.origin());
    cargo_env_with(
        policy,
        &[],
        &[
            (env::UPSTREAM_CARGO_INDEX, &index),
            (env::UPSTREAM_CARGO_DL, &dl),
        ],
    )
    .await
}

/// Publish `name@vers` on a scripted upstream: returns its index line (the caller writes the
/// index file) and answers its download with the `.crate` bytes.
fn crate_on(up: &RawUpstream, name: &str, vers: &str, pubtime: Option<&str>) -> (String, Vec<u8>) {
    let bytes = make_crate(name, vers);
    up.answer(
        &format!("/dl/{name}/{vers}/download"),
        framed(200, &[("Content-Type", "application/gzip")], &bytes),
    );
    (line(name, vers, &sha256_hex(&bytes), pubtime), bytes)
}

fn index_answer(up: &RawUpstream, path: &str, body: &str, headers: &[(&str, &str)]) {
    let mut h = vec![("Content-Type", "text/plain")];
    h.extend_from_slice(headers);
    up.answer(path, framed(200, &h, body.as_bytes()));
}

/// A production configuration: port 0, mirror, audit log and policy file in `dir`, cargo
/// disabled, then `vars` (which may override any of these).
fn config_in(dir: &std::path::Path, vars: &[(&str, String)]) -> Arc<pkggate::config::Config> {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let mut raw = pkggate::config::RawInputs::default();
    let defaults = [
        (env::PORT, "0".to_string()),
        (env::CARGO_ENABLED, "false".into()),
        (env::MIRROR_DB, p("mirror.db")),
        (env::AUDIT_LOG, p("audit.log")),
        (env::POLICY_FILE, p("policy.yaml")),
    ];
    for (k, v) in defaults.iter().chain(vars) {
        raw.env.insert(k.to_string(), v.clone());
    }
    Arc::new(pkggate::config::Config::load(&raw).unwrap())
}

// SPEC §3 item 5: abbreviated documents.

/// `require_repository_url` must not block every version of an abbreviated (corgi) document,
/// which carries no `repository`: the rule sees the full document's facts in both forms.
#[tokio::test]
async fn repository_rule_keeps_versions_with_a_repository_in_both_forms() {
    let h = Harness::start("require_repository_url: true\n", &[]).await;
    h.add(
        "repo-pkg",
        &[
            Ver::new("1.0.0", npm_fake::NOW - 30 * DAY),
            Ver::new("1.1.0", npm_fake::NOW - 20 * DAY).no_repo(),
        ],
        &[("latest", "1.1.0")],
    );
    for accept in ["application/json", CORGI] {
        let url = format!("{}/repo-pkg", h.base);
        let (status, _, body) = npm_fake::get(&url, &[("accept", accept)]).await;
        assert_eq!(status, 200, "{accept}: {}", String::from_utf8_lossy(&body));
        let doc = json_of(&body);
        assert_eq!(versions(&doc), ["1.0.0"], "{accept}");
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0", "{accept}");
    }
    h.stop().await;
}

// SPEC §3 item 9 and PROTOCOLS case 47: the upstream's validators and caching headers are not
// forwarded; validators cover the intelligence revision.

#[tokio::test]
async fn upstream_etag_and_cache_control_are_not_forwarded() {
    let up = RawUpstream::start().await;
    let (l1, _) = crate_on(&up, "revcrate", "0.1.0", Some(OLD));
    let (l2, _) = crate_on(&up, "revcrate", "0.2.0", Some(OLD));
    let upstream_cc = "public, max-age=31536000, immutable";
    index_answer(
        &up,
        "/index/re/vc/revcrate",
        &format!("{l1}\n{l2}\n"),
        &[
            ("ETag", "\"upstream-etag\""),
            ("Cache-Control", upstream_cc),
        ],
    );
    let e = cargo_on(&up, "block_malicious: true\n").await;
    let url = format!("{}/cargo/re/vc/revcrate", e.base());
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, "\"upstream-etag\"", "the upstream ETag was forwarded");
    let cc = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        cc.as_deref()
            .is_some_and(|c| c != upstream_cc && !c.contains("immutable")),
        "metadata needs its own explicit Cache-Control, got {cc:?}"
    );
    assert!(r.text().await.unwrap().contains(r#""vers":"0.2.0""#));
    let r = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304, "pkggate's own ETag revalidates");
}

/// New intelligence, same upstream bytes, same policy: the bundle files change on disk, the
/// background refresh loads them, and a revalidation with the old ETag gets the new view
/// (npm full and abbreviated, PyPI JSON).
#[tokio::test]
async fn a_background_refresh_reaches_npm_and_pypi_views_and_their_validators() {
    let (up, up_base) = FakeNpm::start().await;
    up.add(&synthetic(
        &up_base,
        "plain",
        &[
            Ver::new("1.0.0", npm_fake::NOW - 400 * DAY),
            Ver::new("1.1.0", npm_fake::NOW - 300 * DAY),
        ],
        &[("latest", "1.1.0")],
    ));
    let fake = FakePypi::start().await;
    fake.add(
        "demo-pkg",
        vec![
            FakeFile::wheel("demo-pkg", "1.0.0", days_ago(400)),
            FakeFile::wheel("demo-pkg", "2.0.0", days_ago(300)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    // Replace a bundle file atomically (the refresh may read it at any moment).
    let publish = |file: &str, records: &[(String, String)]| {
        let tmp = dir.path().join(format!("{file}.tmp"));
        std::fs::write(&tmp, make_zip(records)).unwrap();
        std::fs::rename(&tmp, dir.path().join(file)).unwrap();
    };
    let filler = |eco: &str| mal_record("MAL-FILL", eco, "unrelated", &["1.0.0"], "");
    publish("npm.zip", &[filler("npm")]);
    publish("pypi.zip", &[filler("PyPI")]);
    std::fs::write(dir.path().join("policy.yaml"), "block_malicious: true\n").unwrap();
    let config = config_in(
        dir.path(),
        &[
            (env::UPSTREAM_NPM, up_base.clone()),
            (env::PYPI_UPSTREAM_SIMPLE, fake.simple_base()),
            (env::PYPI_UPSTREAM_FILES, fake.files_base()),
            (env::OSV_BUNDLE_NPM, p("npm.zip")),
            (env::OSV_BUNDLE_PYPI, p("pypi.zip")),
            (env::MIRROR_REFRESH_SECONDS, "1".into()),
        ],
    );
    let running = pkggate::server::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
    eventually("readiness", Duration::from_secs(30), async || {
        let r = client()
            .get(format!("{base}/-/pkggate/ready"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let pypi_accept = crate::pypi_http::PIP_ACCEPT;
    // (path, Accept, the version the refresh blocks as it shows in the body)
    let rows = [
        ("/plain", "application/json", r#""1.1.0""#),
        ("/plain", CORGI, r#""1.1.0""#),
        ("/simple/demo-pkg/", pypi_accept, "demo_pkg-2.0.0"),
    ];
    let mut etags = Vec::new();
    for (path, accept, marker) in rows {
        let r = client()
            .get(format!("{base}{path}"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} {accept}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(r.text().await.unwrap().contains(marker), "{path} {accept}");
        etags.push(etag);
    }
    publish(
        "npm.zip",
        &[
            filler("npm"),
            mal_record("MAL-NPM-REV", "npm", "plain", &["1.1.0"], ""),
        ],
    );
    publish(
        "pypi.zip",
        &[
            filler("PyPI"),
            mal_record("MAL-PY-REV", "PyPI", "demo-pkg", &["2.0.0"], ""),
        ],
    );
    for ((path, accept, marker), etag) in rows.into_iter().zip(etags) {
        let what = format!("{path} ({accept}) to drop {marker} after the refresh");
        eventually(&what, Duration::from_secs(30), async || {
            let r = client()
                .get(format!("{base}{path}"))
                .header("accept", accept)
                .header("if-none-match", &etag)
                .send()
                .await
                .ok()?;
            if r.status() != 200 || r.headers()["etag"].to_str().ok()? == etag {
                return None;
            }
            (!r.text().await.ok()?.contains(marker)).then_some(())
        })
        .await;
    }
    running.stop().await.unwrap();
}

// SPEC §3 item 15: intelligence state and the fail mode.

/// A mirror older than the policy's `max_intel_age` is unavailable intelligence: readiness
/// shows its age, `fail_closed` refuses, fail-open serves, a longer limit serves.
#[tokio::test]
async fn a_mirror_older_than_max_intel_age_follows_the_fail_mode() {
    let e = cargo_env("fail_closed: true\nmax_intel_age: 1\n", &[]).await;
    e.fake.publish("stalecrate", "0.1.0", OLD, false);
    let dl = format!("{}/cargo/api/v1/crates/stalecrate/0.1.0/download", e.base());
    let index = format!("{}/cargo/st/al/stalecrate", e.base());
    // The mirror was loaded just now; it turns stale after a second.
    let body: Value = eventually(
        "the mirror to be older than max_intel_age",
        Duration::from_secs(30),
        async || {
            let r = client().get(&dl).send().await.unwrap();
            (r.status() == 403).then_some(())?;
            r.json().await.ok()
        },
    )
    .await;
    assert_eq!(body["rule"], "intel_unavailable", "{body}");
    assert!(
        body["reason"].as_str().unwrap_or("").contains("intel"),
        "{body}"
    );
    let ready: Value = client()
        .get(format!("{}/-/pkggate/ready", e.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ready["intel"][pkggate_formats::Ecosystem::CratesIo.osv_name()]["age_seconds"]
            .as_i64()
            .unwrap()
            >= 2,
        "{ready}"
    );
    // (policy, download status, index lists the version)
    let table = [
        ("fail_closed: true\nmax_intel_age: 1\n", 403, false),
        ("fail_closed: false\nmax_intel_age: 1\n", 200, true),
        ("fail_closed: true\nmax_intel_age: 1h\n", 200, true),
    ];
    for (policy, status, listed) in table {
        std::fs::write(&e.policy_file, policy).unwrap();
        e.policy.reload(&e.policy_file);
        let r = client().get(&dl).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{policy}");
        let r = client().get(&index).send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        if listed {
            assert_eq!(s, 200, "{policy}");
            assert!(text.contains(r#""vers":"0.1.0""#), "{policy}: {text}");
        } else {
            assert!(matches!(s, 404 | 410 | 451), "{policy}: {s} {text}");
        }
    }
}

/// A server whose npm mirror never loaded (its bundle source is unreachable), a fake npm
/// upstream with `plain@1.0.0`, and `policy` as its policy file.
async fn never_loaded(policy: &str) -> (pkggate::server::Running, String, tempfile::TempDir) {
    let (up, up_base) = FakeNpm::start().await;
    up.add(&synthetic(
        &up_base,
        "plain",
        &[Ver::new("1.0.0", npm_fake::NOW - 400 * DAY)],
        &[("latest", "1.0.0")],
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let config = config_in(
        dir.path(),
        &[
            (env::UPSTREAM_NPM, up_base),
            (env::OSV_BUNDLE_NPM, "http://127.0.0.1:1/npm/all.zip".into()),
            (env::PYPI_ENABLED, "false".into()),
        ],
    );
    let running = pkggate::server::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
    // Wait until the first refresh has failed (so its failure is on record).
    eventually("the failed refresh", Duration::from_secs(20), async || {
        let r = client()
            .get(format!("{base}/-/pkggate/ready"))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["intel"]["npm"]["last_error"].is_string().then_some(())
    })
    .await;
    (running, base, dir)
}

/// A mirror never loaded is no silent "clean": `fail_closed` decides, over HTTP.
#[tokio::test]
async fn a_never_loaded_mirror_follows_the_fail_mode() {
    for (policy, status) in [("fail_closed: true\n", 403), ("fail_closed: false\n", 200)] {
        let (running, base, _dir) = never_loaded(policy).await;
        let r = client()
            .get(format!("{base}/plain/-/plain-1.0.0.tgz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{policy}");
        if status == 403 {
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["rule"], "intel_unavailable", "{b}");
        }
        let metrics = client()
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(r#"pkggate_intel_loaded{ecosystem="npm"} 0"#),
            "{metrics}"
        );
        running.stop().await.unwrap();
    }
}

/// A failing refresh must show in the metrics, not only in readiness.
#[tokio::test]
async fn a_failing_refresh_is_visible_in_metrics() {
    let (running, base, _dir) = never_loaded("fail_closed: true\n").await;
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failing = metrics.lines().any(|l| {
        l.starts_with("pkggate_intel")
            && l.contains(r#"ecosystem="npm""#)
            && (l.contains("fail") || l.contains("error"))
            && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(1.0)
    });
    assert!(failing, "no npm refresh failure series in:\n{metrics}");
    running.stop().await.unwrap();
}

// SPEC §3 item 16: bind at once; drain on SIGTERM.

/// A bundle source that accepts connections and never answers: pkggate still binds at
/// once, answers health, reports not-ready, and stops promptly.
#[tokio::test]
async fn startup_does_not_wait_for_a_hanging_bundle_download() {
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = hang.accept().await {
            h.lock().unwrap().push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(
        dir.path(),
        &[
            (
                env::OSV_BUNDLE_NPM,
                format!("http://{hang_addr}/npm/all.zip"),
            ),
            (env::PYPI_ENABLED, "false".into()),
        ],
    );
    let running = tokio::time::timeout(Duration::from_secs(10), pkggate::server::start(config))
        .await
        .expect("start-up waited for the bundle download")
        .unwrap();
    let base = format!("http://{}", running.addr);
    // The download is under way (the source holds a connection) while pkggate answers.
    eventually("the bundle request", Duration::from_secs(10), async || {
        (!held.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    let r = client()
        .get(format!("{base}/-/pkggate/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{base}/-/pkggate/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    tokio::time::timeout(Duration::from_secs(20), running.stop())
        .await
        .expect("stop waited for the hanging refresh")
        .unwrap();
}

/// `pkggate serve` receiving SIGTERM while a request waits on upstream: the request is
/// answered in full, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_request() {
    use std::process::{Command, Stdio};
    let (up, up_base) = FakeNpm::start().await;
    let s = synthetic(
        &up_base,
        "slowpkg",
        &[Ver::new("1.0.0", npm_fake::NOW - 400 * DAY)],
        &[("latest", "1.0.0")],
    );
    up.add(&s);
    up.holding.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/policy.yaml"),
        "fail_closed: false\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkggate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PKGGATE_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    /// Kills the child it holds if the test ends early.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = cmd
        .current_dir(dir.path())
        .args(["serve", "--port", "0", "--mirror-enabled", "false"])
        .env(env::UPSTREAM_NPM, &up_base)
        .env(env::PYPI_ENABLED, "false")
        .env(env::CARGO_ENABLED, "false")
        .env(env::LOG, "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Reap)
        .unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            l.lock().unwrap().push(line);
        }
    });
    let logged = |what: &'static str| {
        let lines = lines.clone();
        async move || {
            lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.split_once(what).map(|x| x.1.to_string()))
        }
    };
    let rest = eventually(
        "the listening line",
        Duration::from_secs(30),
        logged("pkggate listening"),
    )
    .await;
    let at = rest
        .find("127.0.0.1:")
        .expect("an address on the listening line");
    let addr: String = rest[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    let url = format!("http://{addr}/slowpkg");
    let pending = tokio::spawn(async move {
        let r = client().get(url).send().await?;
        let status = r.status().as_u16();
        Ok::<_, reqwest::Error>((status, r.bytes().await?))
    });
    eventually(
        "the request to reach upstream",
        Duration::from_secs(20),
        async || (up.hits("/slowpkg") >= 1).then_some(()),
    )
    .await;
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Release the upstream only once pkggate is shutting down (it logs so).
    eventually(
        "the shutdown to begin",
        Duration::from_secs(20),
        logged("shutting down"),
    )
    .await;
    up.hold.0.add_permits(100);
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("the in-flight request was never answered")
        .unwrap()
        .expect("the in-flight request was cut by the shutdown");
    assert_eq!(status, 200);
    assert_eq!(versions(&json_of(&body)), ["1.0.0"]);
    let exit = eventually("pkggate to exit", Duration::from_secs(20), async || {
        child.0.try_wait().unwrap()
    })
    .await;
    assert_eq!(exit.code(), Some(0));
}

// SPEC §3 item 17: an upstream failure is never remembered as a document.

#[tokio::test]
async fn a_failed_upstream_answer_is_not_cached() {
    // npm: invalid JSON, then the real document.
    let h = Harness::start("{}\n", &[]).await;
    h.upstream
        .add_raw("flaky", b"{\"name\":\"flaky\",\"versions\":{".to_vec());
    let url = format!("{}/flaky", h.base);
    let (status, hdrs, _) = npm_fake::get(&url, &[]).await;
    assert_eq!(
        (status, &hdrs["cache-control"]),
        (502, &"no-store".parse().unwrap())
    );
    h.add(
        "flaky",
        &[Ver::new("1.0.0", npm_fake::NOW - 400 * DAY)],
        &[("latest", "1.0.0")],
    );
    let (status, _, body) = npm_fake::get(&url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(versions(&json_of(&body)), ["1.0.0"]);
    h.stop().await;

    // cargo: an upstream 500, then the real index file.
    let up = RawUpstream::start().await;
    up.answer("/index/fl/ak/flaky", framed(500, &[], b"boom"));
    let e = cargo_on(&up, "{}\n").await;
    let url = format!("{}/cargo/fl/ak/flaky", e.base());
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (l, _) = crate_on(&up, "flaky", "1.0.0", Some(OLD));
    index_answer(&up, "/index/fl/ak/flaky", &format!("{l}\n"), &[]);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("{l}\n"));
}

// SPEC §3 item 10: eggs, `.bz2`, `.exe` and other legacy file types go through both gates.

#[tokio::test]
async fn legacy_file_types_of_a_forbidden_version_are_refused_at_both_gates() {
    let fake = FakePypi::start().await;
    let names = |v: &str| {
        [
            format!("oddtypes-{v}.tar.bz2"),
            format!("oddtypes-{v}.zip"),
            format!("oddtypes-{v}.win32.exe"),
            format!("oddtypes-{v}-py2.7.egg"),
            format!("oddtypes-{v}.tar.xz"),
        ]
    };
    let mut files = Vec::new();
    for v in ["1.0", "2.0"] {
        for n in names(v) {
            files.push(FakeFile::sdist("oddtypes", v, days_ago(400)).named(&n));
        }
    }
    fake.add("oddtypes", files.clone());
    let gate = start_gate(&fake, "denylist: ['oddtypes@2.0']\n", vec![], &[]).await;
    let r = crate::pypi_http::get(
        &gate.url("/simple/oddtypes/"),
        Some(crate::pypi_http::PIP_ACCEPT),
    )
    .await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let listed: Vec<&str> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        names("1.0").iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page["versions"], serde_json::json!(["1.0"]));
    // The file gate, asked directly (a lockfile install), with the path pkggate hands out.
    let files_base = fake.files_base();
    let mut wrong = Vec::new();
    for f in &files {
        let rest = fake
            .file_url(f)
            .strip_prefix(&files_base)
            .unwrap()
            .to_string();
        let before = fake.file_requests();
        let r = crate::pypi_http::get(&gate.url(&format!("/files/oddtypes/{rest}")), None).await;
        let status = r.status().as_u16();
        let want = if f.version == "2.0" { 403 } else { 200 };
        let body = r.bytes().await.unwrap();
        let asked = fake.file_requests() - before;
        if status != want || (want == 403 && asked != 0) || (want == 200 && body != f.served) {
            wrong.push(format!(
                "{}: {status} (want {want}), upstream asked {asked}",
                f.filename
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    gate.running.stop().await.unwrap();
}

// PROTOCOLS case 43 (and 44): index layouts, mixed-case names, unusual lines.

/// Every index layout (`1/a`, `2/cc`, `3/s/syn`, `in/fl/inflector`) is served from the same
/// upstream path; lines keep the name's case and are byte-identical, including a `v: 3` line
/// and spaced JSON; the download gate finds a mixed-case crate by its index name.
#[tokio::test]
async fn every_index_layout_and_mixed_case_names_are_served() {
    let up = RawUpstream::start().await;
    let mut files = Vec::new();
    for (path, name) in [
        ("1/a", "a"),
        ("2/cc", "cc"),
        ("3/s/syn", "syn"),
        ("in/fl/inflector", "Inflector"),
    ] {
        let (l, bytes) = crate_on(&up, name, "0.1.0", Some(OLD));
        // A later format cargo skips, and a spaced writer's line: both passed through as is.
        let v3 = format!(
            r#"{{"name":"{name}","vers":"0.2.0","deps":[],"cksum":"{}","features":{{}},"yanked":false,"v":3,"features3":{{"x":[]}},"pubtime":"{OLD}"}}"#,
            "ab".repeat(32)
        );
        let ck3 = sha256_hex(&make_crate(name, "0.3.0"));
        let spaced = format!(
            r#"{{ "name": "{name}", "vers": "0.3.0", "deps": [], "cksum": "{ck3}", "features": {{}}, "yanked": false, "pubtime": "{OLD}" }}"#
        );
        let body = format!("{l}\n{v3}\n{spaced}\n");
        index_answer(&up, &format!("/index/{path}"), &body, &[]);
        files.push((path, name, body, bytes));
    }
    let e = cargo_on(&up, "{}\n").await;
    for (path, name, body, bytes) in &files {
        let r = client()
            .get(format!("{}/cargo/{path}", e.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(&r.text().await.unwrap(), body, "{path}");
        // cargo asks for the download under the name the index line gives.
        let r = client()
            .get(format!(
                "{}/cargo/api/v1/crates/{name}/0.1.0/download",
                e.base()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(&r.bytes().await.unwrap().to_vec(), bytes, "{name}");
    }
    // An upper-case index path is not the index (404, or a redirect to the lower-case one).
    let r = client()
        .get(format!("{}/cargo/in/fl/Inflector", e.base()))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status().as_u16(), 301 | 302 | 307 | 308 | 404),
        "{}",
        r.status()
    );
}

// PROTOCOLS case 49: cargo's libcurl asks plain-HTTP servers to upgrade to h2c.

/// The request head cargo sends over `sparse+http://`, written byte for byte: a plain
/// HTTP/1.1 answer (never a 101) with the index file.
#[tokio::test]
async fn an_h2c_upgrade_request_gets_a_plain_http1_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let e = cargo_env("{}\n", &[]).await;
    e.fake.publish("h2ccrate", "0.1.0", OLD, false);
    let mut s = tokio::net::TcpStream::connect(e.running.addr)
        .await
        .unwrap();
    let head = "GET /cargo/h2/cc/h2ccrate HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                User-Agent: cargo/1.95.0\r\nAccept: text/plain\r\n\
                Accept-Encoding: deflate, gzip\r\ncargo-protocol: version=1\r\n\
                Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n\
                HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("no end of the answer")
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out:.300}");
    assert!(out.contains(r#""vers":"0.1.0""#), "{out:.600}");
}

// PROTOCOLS case 48: HEAD and GET of a download agree.

/// GET and HEAD of `headcrate@<v>` for each (version, status): same status, HEAD announces
/// the length GET sends, and has no body.
async fn head_and_get_agree(rows: &[(&str, u16)]) {
    let e = cargo_env("block_malicious: true\n", &[("headcrate", "0.2.0")]).await;
    e.fake.publish("headcrate", "0.1.0", OLD, false);
    e.fake.publish("headcrate", "0.2.0", OLD, false);
    for (v, status) in rows {
        let url = format!("{}/cargo/api/v1/crates/headcrate/{v}/download", e.base());
        let get = client().get(&url).send().await.unwrap();
        let get_status = get.status().as_u16();
        let get_body = get.bytes().await.unwrap();
        let head = client().head(&url).send().await.unwrap();
        assert_eq!(
            (get_status, head.status().as_u16()),
            (*status, *status),
            "{v}"
        );
        let announced = head
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            announced,
            Some(get_body.len().to_string()),
            "{v}: HEAD Content-Length"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{v}");
    }
}

#[tokio::test]
async fn download_head_and_get_agree_when_refused() {
    head_and_get_agree(&[("0.2.0", 403), ("9.9.9", 404)]).await;
}

#[tokio::test]
async fn download_head_announces_the_length_get_sends() {
    head_and_get_agree(&[("0.1.0", 200)]).await;
}

// PROTOCOLS case 50: lines without `pubtime` follow `missing_publish_time`.

#[tokio::test]
async fn lines_without_pubtime_follow_missing_publish_time() {
    // (policy, index keeps the line, download status)
    let table = [
        ("min_package_age_days: 3\n", true, 200),
        (
            "min_package_age_days: 3\nmissing_publish_time: allow\n",
            true,
            200,
        ),
        (
            "min_package_age_days: 3\nmissing_publish_time: block\n",
            false,
            403,
        ),
    ];
    for (policy, kept, status) in table {
        let up = RawUpstream::start().await;
        let (dated, _) = crate_on(&up, "notime", "0.1.0", Some(OLD));
        let (undated, bytes) = crate_on(&up, "notime", "0.2.0", None);
        index_answer(
            &up,
            "/index/no/ti/notime",
            &format!("{dated}\n{undated}\n"),
            &[],
        );
        let e = cargo_on(&up, policy).await;
        let r = client()
            .get(format!("{}/cargo/no/ti/notime", e.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{policy}");
        let want = if kept {
            format!("{dated}\n{undated}\n")
        } else {
            format!("{dated}\n")
        };
        assert_eq!(r.text().await.unwrap(), want, "{policy}");
        let r = client()
            .get(format!(
                "{}/cargo/api/v1/crates/notime/0.2.0/download",
                e.base()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{policy}");
        let got = r.bytes().await.unwrap();
        if status == 200 {
            assert_eq!(got.to_vec(), bytes, "{policy}");
        } else {
            let b: Value = serde_json::from_slice(&got).unwrap();
            assert_eq!(b["rule"], "min_package_age_days", "{policy}: {b}");
        }
    }
}
