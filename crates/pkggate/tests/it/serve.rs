//! `serve`: binds at once, serves from the mirror on disk while the refresh fails in the
//! background, reports readiness, drains on stop.

use crate::support::*;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate_formats::Ecosystem::Npm;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn config(db: &std::path::Path, extra: &[(&str, &str)]) -> Arc<Config> {
    let mut raw = RawInputs::default();
    let mut set = |k: &str, v: &str| {
        raw.env.insert(k.to_string(), v.to_string());
    };
    set(env::PORT, "0");
    set(env::MIRROR_DB, db.to_str().unwrap());
    // Nothing listens on port 1: the refresh fails at once.
    set(env::OSV_BUNDLE_NPM, "http://127.0.0.1:1/npm/all.zip");
    set(env::PYPI_ENABLED, "false");
    set(env::CARGO_ENABLED, "false");
    let dir = db.parent().unwrap();
    set(env::AUDIT_LOG, dir.join("audit.log").to_str().unwrap());
    set(env::POLICY_FILE, dir.join("policy.yaml").to_str().unwrap());
    for (k, v) in extra {
        set(k, v);
    }
    Arc::new(Config::load(&raw).unwrap())
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let cc = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(cc.as_deref(), Some("no-store"), "{url}");
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn existing_mirror_serves_while_the_source_is_unreachable() {
    let m = TempMirror::new();
    m.sync(Npm, osv("npm", "sample.zip").to_str().unwrap())
        .await
        .unwrap();
    let records = m.store.state(Npm).records;
    let running = pkggate::server::start(config(&m.db_path(), &[]))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);

    let (status, body) = get_json(&format!("{base}/-/pkggate/health")).await;
    assert_eq!((status, body), (200, serde_json::json!({"status": "ok"})));

    // The background refresh fails; the error shows in readiness, the data keeps serving.
    let body = eventually(
        "the failed refresh to be recorded",
        Duration::from_secs(20),
        async || {
            let (status, body) = get_json(&format!("{base}/-/pkggate/ready")).await;
            assert_eq!(status, 200, "{body}");
            body["intel"]["npm"]["last_error"]
                .is_string()
                .then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["intel"]["npm"]["loaded"], true);
    assert_eq!(body["intel"]["npm"]["records"], records);
    assert!(body["intel"]["npm"]["age_seconds"].is_number());
    let reopened = pkggate::intel::IntelStore::open(&m.db_path()).unwrap();
    assert_eq!(
        reopened
            .lookup_version(Npm, "fsevents", "1.2.10")
            .unwrap()
            .len(),
        1
    );

    let (status, body) = get_json(&format!("{base}/no/such/route/-/x")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "Not found");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn readiness_fails_until_intelligence_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let running = pkggate::server::start(config(&dir.path().join("sub/mirror.db"), &[]))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let (status, body) = get_json(&format!("{base}/-/pkggate/health")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_json(&format!("{base}/-/pkggate/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["intel"]["npm"]["loaded"], false);
    // Disabled ecosystems do not hold readiness back.
    assert_eq!(body["intel"]["PyPI"]["ready"], true);
    running.stop().await.unwrap();

    // A good local source makes it ready without a restart.
    let running = pkggate::server::start(config(
        &dir.path().join("sub/mirror.db"),
        &[(
            env::OSV_BUNDLE_NPM,
            osv("npm", "sample.zip").to_str().unwrap(),
        )],
    ))
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    eventually("the mirror to load", Duration::from_secs(30), async || {
        let (status, _) = get_json(&format!("{base}/-/pkggate/ready")).await;
        (status == 200).then_some(())
    })
    .await;
    running.stop().await.unwrap();
}
