//! The cargo sparse-registry gate: fake upstream index and download host on 127.0.0.1:0,
//! synthetic `.crate` files built here, and the real `cargo` driving it end to end.

use crate::support::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::gate::Gate;
use pkggate::intel::{Intel, IntelSource, now_unix};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::{AppState, Running, start_with};
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem::CratesIo;
use sha2::Digest;
use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A `.crate`: a gzip'd tar of `<name>-<version>/Cargo.toml` and `src/lib.rs`.
pub fn make_crate(name: &str, version: &str) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let files = [
        (
            "Cargo.toml",
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[lib]\npath = \"src/lib.rs\"\n"
            ),
        ),
        (
            "src/lib.rs",
            format!("pub const VERSION: &str = \"{version}\";\n"),
        ),
    ];
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_cksum();
        tar.append_data(&mut h, format!("{name}-{version}/{path}"), body.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// (crate, version) → `.crate` bytes.
type Crates = HashMap<(String, String), Vec<u8>>;

#[derive(Clone, Default)]
pub struct FakeCargo {
    /// crate → index file body
    pub index: Arc<Mutex<HashMap<String, String>>>,
    /// (crate, version) → bytes served
    pub crates: Arc<Mutex<Crates>>,
    pub index_requests: Arc<AtomicU64>,
    pub downloads: Arc<AtomicU64>,
    pub not_modified: Arc<AtomicU64>,
}

impl FakeCargo {
    /// Add a version: its index line (with `pubtime`) and its `.crate`; returns the cksum.
    pub fn publish(&self, name: &str, version: &str, pubtime: &str, yanked: bool) -> String {
        let bytes = make_crate(name, version);
        let cksum = hex::encode(sha2::Sha256::digest(&bytes));
        let line = format!(
            r#"{{"name":"{name}","vers":"{version}","deps":[],"cksum":"{cksum}","features":{{}},"yanked":{yanked},"pubtime":"{pubtime}","unknown_field":[1,2],"v":2}}"#
        );
        let mut idx = self.index.lock().unwrap();
        let e = idx.entry(name.to_string()).or_default();
        e.push_str(&line);
        e.push('\n');
        self.crates
            .lock()
            .unwrap()
            .insert((name.into(), version.into()), bytes);
        cksum
    }

    pub async fn start(&self) -> std::net::SocketAddr {
        async fn index(
            State(f): State<FakeCargo>,
            Path(path): Path<String>,
            headers: axum::http::HeaderMap,
        ) -> Response {
            f.index_requests.fetch_add(1, Ordering::SeqCst);
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            let Some(body) = f.index.lock().unwrap().get(&name).cloned() else {
                return Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::empty())
                    .unwrap();
            };
            let etag = format!(
                "\"{}\"",
                &hex::encode(sha2::Sha256::digest(body.as_bytes()))[..16]
            );
            if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                f.not_modified.fetch_add(1, Ordering::SeqCst);
                return Response::builder()
                    .status(StatusCode::NOT_MODIFIED)
                    .header("etag", etag)
                    .body(Body::empty())
                    .unwrap();
            }
            Response::builder()
                .header("etag", etag)
                .body(Body::from(body))
                .unwrap()
        }
        async fn dl(
            State(f): State<FakeCargo>,
            Path((name, version)): Path<(String, String)>,
        ) -> Response {
            f.downloads.fetch_add(1, Ordering::SeqCst);
            match f.crates.lock().unwrap().get(&(name, version)) {
                Some(b) => Response::new(Body::from(b.clone())),
                None => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::empty())
                    .unwrap(),
            }
        }
        let app = Router::new()
            .route("/index/{*path}", get(index))
            .route("/dl/{name}/{version}/download", get(dl))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

pub struct CargoEnv {
    pub fake: FakeCargo,
    pub running: Running,
    pub audit: MemoryAudit,
    pub policy: PolicyHandle,
    pub policy_file: std::path::PathBuf,
    /// Kept alive: the mirror's database lives in its directory.
    pub _mirror: TempMirror,
}

impl CargoEnv {
    pub fn base(&self) -> String {
        format!("http://{}", self.running.addr)
    }
}

/// pkggate in front of a fake cargo upstream; `malicious` lists (crate, version) in the mirror.
pub async fn cargo_env(policy_yaml: &str, malicious: &[(&str, &str)]) -> CargoEnv {
    cargo_env_with(policy_yaml, malicious, &[]).await
}

/// [`cargo_env`] with extra settings.
pub async fn cargo_env_with(
    policy_yaml: &str,
    malicious: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> CargoEnv {
    let fake = FakeCargo::default();
    let up = fake.start().await;
    let mirror = TempMirror::new();
    let mut records: Vec<(String, String)> = malicious
        .iter()
        .enumerate()
        .map(|(i, (n, v))| mal_record(&format!("MAL-C-{i}"), "crates.io", n, &[v], ""))
        .collect();
    records.push(mal_record(
        "MAL-C-FILL",
        "crates.io",
        "unrelated",
        &["1.0.0"],
        "",
    ));
    let zip = make_zip(&records);
    let zp = mirror.dir.path().join("c.zip");
    std::fs::write(&zp, zip).unwrap();
    mirror.sync(CratesIo, zp.to_str().unwrap()).await.unwrap();
    let policy_file = mirror.dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy_yaml).unwrap();
    let policy = PolicyHandle::load(&policy_file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, addr.port().to_string()),
        (env::UPSTREAM_CARGO_INDEX, format!("http://{up}/index/")),
        (env::UPSTREAM_CARGO_DL, format!("http://{up}/dl")),
        (env::MIRROR_DB, mirror.db_path().display().to_string()),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    for (k, v) in extra {
        raw.env.insert(k.to_string(), v.to_string());
    }
    let config = Arc::new(Config::load(&raw).unwrap());
    let audit = MemoryAudit::default();
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(mirror.store.clone()),
        live: None,
    });
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: Arc::new(audit.clone()),
        clock: Arc::new(now_unix),
        audit_allowed_each: false,
    });
    let upstream = Arc::new(Upstream::new(
        config.upstream_timeout,
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    let state = AppState {
        config,
        intel,
        gate,
        upstream,
        policy: policy.clone(),
        audit: Arc::new(audit.clone()),
    };
    let running = start_with(listener, state, None).await.unwrap();
    CargoEnv {
        fake,
        running,
        audit,
        policy,
        policy_file,
        _mirror: mirror,
    }
}

const OLD: &str = "2020-01-01T00:00:00Z";

#[tokio::test]
async fn index_gate_filters_lines_and_validates() {
    let e = cargo_env("block_malicious: true\n", &[("democrate", "0.2.0")]).await;
    e.fake.publish("democrate", "0.1.0", OLD, false);
    e.fake.publish("democrate", "0.2.0", OLD, false);
    e.fake.publish("democrate", "0.3.0", OLD, true);
    let upstream_body = e.fake.index.lock().unwrap()["democrate"].clone();
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/cargo/de/mo/democrate", e.base()))
        .header("upgrade", "h2c")
        .header("connection", "Upgrade, HTTP2-Settings")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-pkggate-blocked-versions"], "1");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    let want: String = upstream_body
        .lines()
        .filter(|l| !l.contains("\"0.2.0\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body, want,
        "kept lines must be byte-identical, the blocked one gone"
    );
    assert!(
        body.contains("\"yanked\":true"),
        "yanked lines pass through"
    );

    // If-None-Match → 304; a policy change changes the ETag.
    let r = client
        .get(format!("{}/cargo/de/mo/democrate", e.base()))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    std::fs::write(
        &e.policy_file,
        "block_malicious: true\ndenylist: ['democrate@0.1.0']\n",
    )
    .unwrap();
    assert!(e.policy.reload(&e.policy_file));
    let r = client
        .get(format!("{}/cargo/de/mo/democrate", e.base()))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["x-pkggate-blocked-versions"], "2");

    // config.json points cargo's downloads at pkggate.
    let cfg: serde_json::Value = client
        .get(format!("{}/cargo/config.json", e.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["dl"], format!("{}/cargo/api/v1/crates", e.base()));
    assert!(cfg.get("api").is_none());

    // Unknown crate, upper-case and hostile paths: 404, never a panic.
    for p in [
        "/cargo/un/kn/unknown",
        "/cargo/de/mo/Democrate",
        "/cargo/de/mo/../../x",
        "/cargo/de/mo/demo%2fcrate",
        "/cargo/3/d/democrate",
    ] {
        let r = client.get(format!("{}{p}", e.base())).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{p}: {}",
            r.status()
        );
    }
}

#[tokio::test]
async fn upstream_index_is_revalidated_not_refetched() {
    let e = cargo_env("block_malicious: true\n", &[]).await;
    e.fake.publish("revalcrate", "1.0.0", OLD, false);
    let url = format!("{}/cargo/re/va/revalcrate", e.base());
    let first = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let second = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        e.fake.not_modified.load(Ordering::SeqCst),
        1,
        "the second fetch must be a conditional 304"
    );
    // A new upstream version shows up at once (the validator changed).
    e.fake.publish("revalcrate", "1.1.0", OLD, false);
    let third = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(third.contains("\"1.1.0\""), "{third}");
}

#[tokio::test]
async fn every_version_blocked_is_404_not_403() {
    let e = cargo_env(
        "block_malicious: true\n",
        &[("evilcrate", "1.0.0"), ("evilcrate", "1.1.0")],
    )
    .await;
    e.fake.publish("evilcrate", "1.0.0", OLD, false);
    e.fake.publish("evilcrate", "1.1.0", OLD, false);
    let r = reqwest::get(format!("{}/cargo/ev/il/evilcrate", e.base()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("blocked_by_pkggate"));
}

#[tokio::test]
async fn download_gate_decides_before_upstream_and_verifies() {
    let policy = "block_malicious: true\nmin_package_age_days: 3\n";
    let e = cargo_env(policy, &[("democrate", "0.2.0")]).await;
    e.fake.publish("democrate", "0.1.0", OLD, false);
    e.fake.publish("democrate", "0.2.0", OLD, false);
    let fresh = crate::timefmt_now_minus(3600);
    e.fake.publish("democrate", "0.3.0", &fresh, false);
    let client = reqwest::Client::new();
    let url = |v: &str| format!("{}/cargo/api/v1/crates/democrate/{v}/download", e.base());

    // A lockfile install asks for the crate directly: decided with the index facts, 403,
    // and the download host is never contacted.
    for (v, rule) in [
        ("0.2.0", "block_malicious"),
        ("0.3.0", "min_package_age_days"),
    ] {
        let r = client.get(url(v)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{v}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["rule"], rule, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("blocked_by_pkggate: "),
            "{body}"
        );
    }
    assert_eq!(e.fake.downloads.load(Ordering::SeqCst), 0);

    // Allowed: the bytes arrive intact.
    let r = client.get(url("0.1.0")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.unwrap();
    assert_eq!(got.to_vec(), make_crate("democrate", "0.1.0"));
    let events = e.audit.take();
    assert!(
        events
            .iter()
            .any(|ev| ev.action == "allow" && ev.version == "0.1.0" && ev.request_kind == "crate"),
        "{events:?}"
    );
    assert!(events.iter().any(|ev| ev.action == "block"
        && ev.version == "0.2.0"
        && ev.source.as_deref() == Some("MAL-C-0")));

    // Tampered: the transfer is cut and audited.
    e.fake.crates.lock().unwrap().insert(
        ("democrate".into(), "0.1.0".into()),
        make_crate("democrate", "6.6.6"),
    );
    let complete = match client.get(url("0.1.0")).send().await {
        Ok(r) => r.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!complete, "a tampered crate must not arrive complete");
    let audit = e.audit.clone();
    eventually(
        "the integrity audit line",
        std::time::Duration::from_secs(10),
        async || {
            audit
                .events
                .lock()
                .unwrap()
                .iter()
                .any(|ev| ev.rule == "integrity_mismatch")
                .then_some(())
        },
    )
    .await;
    // Unknown versions are 404 (nothing to verify against).
    assert_eq!(client.get(url("9.9.9")).send().await.unwrap().status(), 404);
    assert_eq!(
        client
            .get(format!(
                "{}/cargo/api/v1/crates/de%2Fmo/1.0.0/download",
                e.base()
            ))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn crates_without_or_with_a_malformed_cksum() {
    for (policy, no_cksum_status, action) in [
        ("{}\n", 200, "allow"),
        ("unknown_file_hash: block\n", 403, "block"),
    ] {
        let e = cargo_env(policy, &[]).await;
        let ok = e.fake.publish("odd", "0.1.0", OLD, false);
        let bad = e.fake.publish("odd", "0.2.0", OLD, false);
        {
            let mut idx = e.fake.index.lock().unwrap();
            let body = idx.get_mut("odd").unwrap();
            *body = body
                .replace(&format!(r#""cksum":"{ok}","#), "")
                .replace(&bad, "not-hex");
        }
        let client = reqwest::Client::new();
        let url = |v: &str| format!("{}/cargo/api/v1/crates/odd/{v}/download", e.base());
        // No cksum: the policy decides, the audit says which way.
        let r = client.get(url("0.1.0")).send().await.unwrap();
        assert_eq!(r.status(), no_cksum_status, "{policy}");
        let body = r.bytes().await.unwrap();
        let served = usize::from(no_cksum_status == 200);
        assert_eq!(e.fake.downloads.load(Ordering::SeqCst), served as u64);
        if no_cksum_status == 200 {
            assert_eq!(body.to_vec(), make_crate("odd", "0.1.0"));
        }
        let events = e.audit.take();
        assert!(
            events.iter().any(|ev| ev.rule == "integrity_unknown"
                && ev.action == action
                && ev.version == "0.1.0"),
            "{events:?}"
        );
        // A cksum that is not one: upstream's error, the download host is not asked.
        let r = client.get(url("0.2.0")).send().await.unwrap();
        assert_eq!(r.status(), 502);
        assert!(r.text().await.unwrap().contains("malformed cksum"));
        assert_eq!(e.fake.downloads.load(Ordering::SeqCst), served as u64);
    }
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A throwaway cargo project using pkggate through source replacement.
fn cargo_project(base: &str, req: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!("[package]\nname = \"e2e\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ndemocrate = \"{req}\"\n"),
    )
    .unwrap();
    let mut f = std::fs::File::create(dir.path().join(".cargo/config.toml")).unwrap();
    writeln!(f, "[source.crates-io]\nreplace-with = \"pkggate\"\n[source.pkggate]\nregistry = \"sparse+{base}/cargo/\"").unwrap();
    dir
}

fn run_cargo(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(cargo_bin())
        .current_dir(dir)
        .args(args)
        .env("CARGO_HOME", dir.join("home"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn locked_version(dir: &std::path::Path) -> Option<String> {
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"democrate\"" {
            return lines.next().map(|v| {
                v.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_string()
            });
        }
    }
    None
}

#[tokio::test]
async fn real_cargo_end_to_end() {
    let policy = "block_malicious: true\nmin_package_age_days: 3\n";
    let e = cargo_env(policy, &[("democrate", "0.1.2")]).await;
    e.fake.publish("democrate", "0.1.0", OLD, false);
    let c011 = e.fake.publish("democrate", "0.1.1", OLD, false);
    let c012 = e.fake.publish("democrate", "0.1.2", OLD, false);
    e.fake
        .publish("democrate", "0.1.3", &crate::timefmt_now_minus(600), false);
    let base = e.base();

    // The malicious newest (0.1.2) and the too-young 0.1.3 are skipped: 0.1.1 is locked.
    let p = cargo_project(&base, "0.1");
    let (ok, out) = tokio::task::spawn_blocking({
        let d = p.path().to_path_buf();
        move || run_cargo(&d, &["generate-lockfile"])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(locked_version(p.path()).as_deref(), Some("0.1.1"), "{out}");
    // The lockfile's source id for the replaced default registry, as cargo wrote it (the
    // hand-written lockfiles below reuse it).
    let lock = std::fs::read_to_string(p.path().join("Cargo.lock")).unwrap();
    let source = lock
        .lines()
        .find_map(|l| {
            l.strip_prefix("source = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .unwrap()
        .to_string();
    let (ok, out) = tokio::task::spawn_blocking({
        let d = p.path().to_path_buf();
        move || run_cargo(&d, &["fetch", "--locked"])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");

    // A requirement only a forbidden version satisfies fails to resolve.
    let p2 = cargo_project(&base, "=0.1.2");
    let (ok, out) = tokio::task::spawn_blocking({
        let d = p2.path().to_path_buf();
        move || run_cargo(&d, &["generate-lockfile"])
    })
    .await
    .unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("failed to select a version"), "{out}");

    // A lockfile pinned to the blocked version: `cargo fetch --locked` fails.
    let p3 = cargo_project(&base, "0.1");
    std::fs::write(
        p3.path().join("Cargo.lock"),
        format!(
            "version = 4\n\n[[package]]\nname = \"democrate\"\nversion = \"0.1.2\"\nsource = \"{source}\"\nchecksum = \"{c012}\"\n\n[[package]]\nname = \"e2e\"\nversion = \"0.1.0\"\ndependencies = [\n \"democrate\",\n]\n"
        ),
    )
    .unwrap();
    let (ok, out) = tokio::task::spawn_blocking({
        let d = p3.path().to_path_buf();
        move || run_cargo(&d, &["fetch", "--locked"])
    })
    .await
    .unwrap();
    assert!(
        !ok,
        "a lockfile pinned to a blocked version must fail: {out}"
    );
    assert!(out.contains("0.1.2"), "{out}");

    // A tampered .crate fails the fetch.
    let p4 = cargo_project(&base, "0.1");
    std::fs::write(
        p4.path().join("Cargo.lock"),
        format!(
            "version = 4\n\n[[package]]\nname = \"democrate\"\nversion = \"0.1.1\"\nsource = \"{source}\"\nchecksum = \"{c011}\"\n\n[[package]]\nname = \"e2e\"\nversion = \"0.1.0\"\ndependencies = [\n \"democrate\",\n]\n"
        ),
    )
    .unwrap();
    e.fake.crates.lock().unwrap().insert(
        ("democrate".into(), "0.1.1".into()),
        make_crate("democrate", "9.9.9"),
    );
    let (ok, out) = tokio::task::spawn_blocking({
        let d = p4.path().to_path_buf();
        move || run_cargo(&d, &["fetch", "--locked"])
    })
    .await
    .unwrap();
    assert!(!ok, "a tampered crate must fail the fetch: {out}");
}

/// Live smoke test against the public crates.io index (its address from the configuration's
/// defaults). Runs only with `PKGGATE_LIVE=1`: CI machines reach the registry, developer
/// laptops may not.
#[tokio::test]
async fn live_cargo_fetch_through_pkggate() {
    if std::env::var("PKGGATE_LIVE").as_deref() != Ok("1") {
        eprintln!("skipped: set PKGGATE_LIVE=1 to run the live cargo smoke test");
        return;
    }
    let mirror = TempMirror::new();
    mirror
        .sync(CratesIo, osv("crates.io", "all.zip").to_str().unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut raw = RawInputs::default();
    raw.env.insert(env::PORT.into(), addr.port().to_string());
    let config = Arc::new(Config::load(&raw).unwrap());
    let audit = MemoryAudit::default();
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(mirror.store.clone()),
        live: None,
    });
    let policy = PolicyHandle::fixed(pkggate_policy::Policy::default());
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: Arc::new(audit.clone()),
        clock: Arc::new(now_unix),
        audit_allowed_each: false,
    });
    let upstream = Arc::new(Upstream::new(
        config.upstream_timeout,
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    let state = AppState {
        config,
        intel,
        gate,
        upstream,
        policy,
        audit: Arc::new(audit.clone()),
    };
    let running = start_with(listener, state, None).await.unwrap();
    let base = format!("http://{}", running.addr);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"live\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n").unwrap();
    std::fs::write(dir.path().join(".cargo/config.toml"), format!("[source.crates-io]\nreplace-with = \"pkggate\"\n[source.pkggate]\nregistry = \"sparse+{base}/cargo/\"\n")).unwrap();
    let d = dir.path().to_path_buf();
    let (ok, out) = tokio::task::spawn_blocking(move || run_cargo(&d, &["fetch"]))
        .await
        .unwrap();
    assert!(ok, "{out}");
    // A malicious crate from the bundle is refused at the download gate without an upstream request.
    let r = reqwest::get(format!(
        "{base}/cargo/api/v1/crates/rustdecimal/1.23.1/download"
    ))
    .await
    .unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    running.stop().await.unwrap();
}

/// An upstream index host that sends `body` for every path in pieces of 1 to 7 bytes
/// (each its own chunk of a chunked response): lines, CRLF and multi-byte characters
/// split anywhere.
async fn trickling_upstream(body: Vec<u8>) -> String {
    async fn serve(State(body): State<Arc<Vec<u8>>>) -> Response {
        let mut pieces = Vec::new();
        let mut at = 0;
        let mut n = 1;
        while at < body.len() {
            let end = (at + n).min(body.len());
            pieces.push(Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(
                &body[at..end],
            )));
            at = end;
            n = n % 7 + 1;
        }
        Response::new(Body::from_stream(futures_util::stream::iter(pieces)))
    }
    let app = Router::new()
        .route("/index/{*path}", get(serve))
        .with_state(Arc::new(body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/index/")
}

/// An upstream index host that answers every request with `head` and the first `sent`
/// bytes of `body`, then closes the connection.
async fn raw_upstream(head: String, body: Vec<u8>, sent: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (head, body) = (head.clone(), body.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body[..sent.min(body.len())]).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/index/")
}

/// Index lines of `trickle`: CRLF ends, non-ASCII strings, a long line (`deps` of ~100 KB)
/// and a last line without `\n`.
/// A well-formed sha256 (of nothing real: downloads of it fail verification).
const ZERO_CKSUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn awkward_index() -> (String, Vec<&'static str>) {
    let line = |vers: &str, deps: &str| {
        format!(
            r#"{{"name":"trickle","vers":"{vers}","deps":[{deps}],"cksum":"{ZERO_CKSUM}","features":{{"ünï":["x/ü"]}},"yanked":false,"pubtime":"{OLD}","v":2}}"#
        )
    };
    let long = vec![r#"{"name":"dép","req":"^1","features":["]}\"["]}"#; 2_500].join(",");
    let body = format!(
        "{}\r\n{}\n{}\r\n{}",
        line("0.1.0", ""),
        line("0.2.0-é", &long),
        line("0.3.0", r#"{"name":"a","req":"^1"}"#),
        line("0.4.0", "")
    );
    (body, vec!["0.1.0", "0.2.0-é", "0.3.0", "0.4.0"])
}

#[tokio::test]
async fn index_arriving_in_pieces_is_read_like_a_whole_one() {
    let (body, versions) = awkward_index();
    let up = trickling_upstream(body.clone().into_bytes()).await;
    let e = cargo_env_with(
        "block_malicious: true\n",
        &[("trickle", "0.3.0")],
        &[(env::UPSTREAM_CARGO_INDEX, &up)],
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/cargo/tr/ic/trickle", e.base());
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-pkggate-blocked-versions"], "1");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let got = r.text().await.unwrap();
    // Every line but the blocked one, byte for byte (its CRLF included).
    let want: String = body
        .split_inclusive('\n')
        .filter(|l| !l.contains(r#""vers":"0.3.0""#))
        .collect();
    assert_eq!(got, want);
    for v in versions {
        assert_eq!(
            got.contains(&format!(r#""vers":"{v}""#)),
            v != "0.3.0",
            "{v}"
        );
    }
    // The same bytes again: the same ETag (it depends on the bytes, not on their pieces).
    let r = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // HEAD announces the length GET sends.
    let r = client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        got.len().to_string().as_str()
    );
    // The audit summary counts every version.
    let events = e.audit.take();
    assert!(
        events
            .iter()
            .any(|ev| ev.version == "0.3.0" && ev.action == "block" && ev.request_kind == "index"),
        "{events:?}"
    );
    assert!(
        events.iter().any(
            |ev| ev.rule == "summary" && ev.reason.starts_with("3 versions allowed, 1 blocked")
        ),
        "{events:?}"
    );
    // Downloads are decided from the same file: the blocked version is refused before any
    // upstream contact; an allowed one reads its line in full for the cksum and goes to the
    // download host (which has no such crate here: 404).
    let dl = |v: &str| format!("{}/cargo/api/v1/crates/trickle/{v}/download", e.base());
    let r = client.get(dl("0.3.0")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = client.get(dl("0.1.0")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(e.fake.downloads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn truncated_or_oversized_upstream_index_is_an_error_not_a_partial_file() {
    let (body, _) = awkward_index();
    let client = reqwest::Client::new();
    // The upstream announces the whole file but closes the connection half way.
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n",
        body.len()
    );
    let up = raw_upstream(head, body.clone().into_bytes(), body.len() / 2).await;
    let e = cargo_env_with("{}\n", &[], &[(env::UPSTREAM_CARGO_INDEX, &up)]).await;
    let r = client
        .get(format!("{}/cargo/tr/ic/trickle", e.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let err: serde_json::Value = r.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("the index transfer failed"),
        "{err}"
    );

    // A file larger than the document limit, announced or not: 502, never a partial file.
    for chunked in [false, true] {
        let up = if chunked {
            trickling_upstream(body.clone().into_bytes()).await
        } else {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            raw_upstream(head, body.clone().into_bytes(), body.len()).await
        };
        let e = cargo_env_with(
            "{}\n",
            &[],
            &[
                (env::UPSTREAM_CARGO_INDEX, &up),
                (env::MAX_DOCUMENT_BYTES, "4096"),
            ],
        )
        .await;
        let r = client
            .get(format!("{}/cargo/tr/ic/trickle", e.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502, "chunked={chunked}");
        let err: serde_json::Value = r.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().contains("larger than 4096"),
            "{err}"
        );
    }
}
