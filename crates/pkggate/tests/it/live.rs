//! The live OSV fallback against a fake `querybatch` on 127.0.0.1:0.

use crate::support::*;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pkggate::intel::live::LiveFallback;
use pkggate::intel::{Intel, IntelSource, IntelStatus};
use pkggate_formats::Ecosystem::Npm;
use reqwest::Url;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Default)]
struct FakeOsv {
    requests: Arc<AtomicU64>,
    queries: Arc<AtomicU64>,
    fail: Arc<AtomicBool>,
}

async fn querybatch(State(s): State<FakeOsv>, Json(body): Json<Value>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if s.fail.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    let queries = body["queries"].as_array().cloned().unwrap_or_default();
    s.queries.fetch_add(queries.len() as u64, Ordering::SeqCst);
    assert!(
        queries.len() <= 1000,
        "querybatch takes at most 1,000 queries"
    );
    let results: Vec<Value> = queries
        .iter()
        .map(|q| {
            let v = q["version"].as_str().unwrap_or("");
            if q["package"]["name"] == "evil" && v == "6.6.6" {
                json!({"vulns": [{"id": "MAL-2099-1", "modified": "2099-01-01T00:00:00Z"}]})
            } else if v == "1.0.1" {
                json!({"vulns": [{"id": "GHSA-live-0001", "modified": "2099-01-01T00:00:00Z"}]})
            } else {
                json!({})
            }
        })
        .collect();
    Json(json!({"results": results})).into_response()
}

async fn fake_osv() -> (FakeOsv, Url) {
    let s = FakeOsv::default();
    let app = Router::new()
        .route("/v1/querybatch", post(querybatch))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (s, Url::parse(&format!("http://{addr}/v1/query")).unwrap())
}

fn live(url: &Url) -> LiveFallback {
    LiveFallback::new(url, Duration::from_secs(5), Duration::from_secs(600))
}

#[tokio::test]
async fn batches_caches_and_coalesces() {
    let (osv, url) = fake_osv().await;
    let l = live(&url);
    let versions: Vec<String> = (0..2500).map(|i| format!("1.0.{i}")).collect();
    let mut refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    refs.push("6.6.6");
    let found = l.query(Npm, "evil", &refs).await.unwrap();
    assert_eq!(
        osv.requests.load(Ordering::SeqCst),
        3,
        "2,501 queries need 3 batches of <= 1,000"
    );
    assert_eq!(found[2500][0].id, "MAL-2099-1");
    assert_eq!(found[2500][0].kind.as_str(), "malicious");
    assert_eq!(found[1][0].kind.as_str(), "vulnerability");
    assert!(found[0].is_empty());
    // Cached: no new request.
    l.query(Npm, "evil", &["6.6.6", "1.0.1"]).await.unwrap();
    assert_eq!(osv.requests.load(Ordering::SeqCst), 3);
    // Identical lookups in flight together share one request.
    let (a, b) = tokio::join!(
        l.query(Npm, "other", &["2.0.0"]),
        l.query(Npm, "other", &["2.0.0"])
    );
    assert!(a.unwrap()[0].is_empty() && b.unwrap()[0].is_empty());
    assert_eq!(osv.requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn failures_are_reported_and_open_the_breaker() {
    let (osv, url) = fake_osv().await;
    osv.fail.store(true, Ordering::SeqCst);
    let l = live(&url);
    for i in 0..3 {
        let err = l.query(Npm, "x", &[&format!("1.0.{i}")]).await.unwrap_err();
        assert!(err.contains("500"), "{err}");
    }
    assert_eq!(osv.requests.load(Ordering::SeqCst), 3);
    let err = l.query(Npm, "x", &["9.9.9"]).await.unwrap_err();
    assert!(err.contains("circuit open"), "{err}");
    assert_eq!(
        osv.requests.load(Ordering::SeqCst),
        3,
        "an open breaker sends nothing"
    );
}

#[tokio::test]
async fn intel_never_answers_a_silent_clean() {
    let (osv, url) = fake_osv().await;
    let m = TempMirror::new();
    let z = make_zip(&[mal_record("MAL-1", "npm", "evil", &["1.0.0"], "")]);
    let p = m.dir.path().join("z.zip");
    std::fs::write(&p, z).unwrap();
    m.sync(Npm, p.to_str().unwrap()).await.unwrap();
    let intel = Intel {
        store: Some(m.store.clone()),
        live: Some(Arc::new(live(&url))),
    };
    let answer = intel
        .package(Npm, "evil", &["1.0.0", "6.6.6", "2.0.0"])
        .await;
    assert!(
        matches!(answer.status, IntelStatus::Available { .. }),
        "{:?}",
        answer.status
    );
    assert_eq!(answer.findings.of(0).next().unwrap().id, "MAL-1");
    assert_eq!(answer.findings.of(1).next().unwrap().id, "MAL-2099-1");
    assert_eq!(answer.findings.of(2).count(), 0);
    // The mirror's hit is not re-asked live: only the clean versions were queried.
    assert_eq!(osv.queries.load(Ordering::SeqCst), 2);

    osv.fail.store(true, Ordering::SeqCst);
    let answer = intel.package(Npm, "evil", &["1.0.0", "3.0.0"]).await;
    match &answer.status {
        IntelStatus::Unavailable { reason } => {
            assert!(reason.contains("live OSV failed"), "{reason}")
        }
        other => panic!("a failed live lookup must not look clean: {other:?}"),
    }
    assert_eq!(
        answer.findings.of(0).next().unwrap().id,
        "MAL-1",
        "mirror findings still count"
    );

    // A mirror that was never loaded is unavailable, not clean.
    let empty = TempMirror::new();
    let intel = Intel {
        store: Some(empty.store.clone()),
        live: None,
    };
    let answer = intel.package(Npm, "evil", &["1.0.0"]).await;
    assert!(matches!(answer.status, IntelStatus::Unavailable { .. }));
}
