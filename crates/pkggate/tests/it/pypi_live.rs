//! Live smoke test against the public PyPI (addresses from the configuration defaults or the
//! environment, never written here). Runs only with `PKGGATE_LIVE=1`; needs
//! `scripts/install-python-clients` for uv.

use crate::support::*;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate_formats::Ecosystem;
use std::process::Command;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pypi_install_requests_and_refuse_a_malicious_project() {
    if std::env::var("PKGGATE_LIVE").as_deref() != Ok("1") {
        eprintln!("SKIP live PyPI smoke test: set PKGGATE_LIVE=1 to run it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    let m = TempMirror::new();
    m.sync(Ecosystem::PyPI, osv("PyPI", "all.zip").to_str().unwrap())
        .await
        .unwrap();
    std::fs::copy(m.db_path(), &db).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut raw = RawInputs::default();
    // The upstream addresses come from the defaults, or from the environment if set there.
    for (k, v) in std::env::vars() {
        if k.starts_with("PKGGATE_PYPI_UPSTREAM_") {
            raw.env.insert(k, v);
        }
    }
    let mut set = |k: &str, v: &str| {
        raw.env.insert(k.to_string(), v.to_string());
    };
    set(env::PORT, &addr.port().to_string());
    set(env::PUBLIC_BASE_URL, &format!("http://{addr}"));
    set(env::MIRROR_DB, db.to_str().unwrap());
    set(
        env::OSV_BUNDLE_PYPI,
        osv("PyPI", "all.zip").to_str().unwrap(),
    );
    set(env::CARGO_ENABLED, "false");
    set(
        env::AUDIT_LOG,
        dir.path().join("audit.log").to_str().unwrap(),
    );
    set(
        env::POLICY_FILE,
        dir.path().join("policy.yaml").to_str().unwrap(),
    );
    let config = Arc::new(Config::load(&raw).unwrap());
    let (state, store) = pkggate::server::build_state(config).unwrap();
    let running = pkggate::server::start_with(listener, state, store)
        .await
        .unwrap();
    let index = format!("http://{addr}/simple/");

    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |prog: &str, args: Vec<String>| {
        let mut c = Command::new(prog);
        c.args(args)
            .env("HOME", &home)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_CACHE_DIR", home.join("pip"))
            .env("UV_CACHE_DIR", home.join("uv"))
            .env("UV_NO_CONFIG", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
        tokio::task::spawn_blocking(move || c.output().unwrap())
    };
    let target = dir.path().join("t1");
    let o = run(
        "python3",
        ["-m", "pip", "install", "--target"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                target.to_string_lossy().into_owned(),
                "--index-url".into(),
                index.clone(),
                "requests".into(),
            ])
            .collect(),
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(target.join("requests").is_dir(), "requests not installed");

    let uv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/venv/bin/uv");
    let py = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/venv/bin/python");
    if std::path::Path::new(uv).exists() {
        let target = dir.path().join("t2");
        let o = run(
            uv,
            vec![
                "pip".into(),
                "install".into(),
                "--python".into(),
                py.into(),
                "--target".into(),
                target.to_string_lossy().into_owned(),
                "--index-url".into(),
                index.clone(),
                "requests".into(),
            ],
        )
        .await
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        eprintln!("SKIP uv part: run scripts/install-python-clients");
    }

    // A known malicious project: refused at the index.
    let r = reqwest::Client::new()
        .get(format!("{index}py-lgtbping/"))
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    eprintln!("py-lgtbping through pkggate: {status} {body}");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("block_malicious"), "{body}");
    running.stop().await.unwrap();
}
