//! Shared helpers: paths to `../shared/`, temporary mirrors, zips built in the test, a
//! fake bundle server, and polling with a deadline (never a bare sleep).

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use pkggate::intel::IntelStore;
use pkggate::intel::sync::{SyncOptions, SyncOutcome, sync_ecosystem};
use pkggate_formats::Ecosystem;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `../shared/` seen from the workspace root.
pub fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

pub fn osv(eco_dir: &str, file: &str) -> PathBuf {
    shared().join("osv").join(eco_dir).join(file)
}

pub struct TempMirror {
    pub dir: tempfile::TempDir,
    pub store: Arc<IntelStore>,
}

impl TempMirror {
    pub fn new() -> TempMirror {
        let dir = tempfile::tempdir().unwrap();
        let store = IntelStore::open(&dir.path().join("mirror.db")).unwrap();
        TempMirror { dir, store }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("mirror.db")
    }

    pub async fn sync(&self, eco: Ecosystem, spec: &str) -> anyhow::Result<SyncOutcome> {
        self.sync_limited(eco, spec, u64::MAX).await
    }

    pub async fn sync_limited(
        &self,
        eco: Ecosystem,
        spec: &str,
        max: u64,
    ) -> anyhow::Result<SyncOutcome> {
        let client = pkggate::intel::source::bundle_client(Duration::from_secs(10));
        let opts = SyncOptions {
            max_bundle_bytes: max,
            progress: None,
        };
        sync_ecosystem(&self.store, &client, eco, spec, &opts).await
    }
}

/// A zip of `(file name, JSON text)` entries.
pub fn make_zip(entries: &[(String, String)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in entries {
            w.start_file(name.as_str(), opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

/// A minimal malicious-package record for `name` at `versions`.
pub fn mal_record(
    id: &str,
    eco: &str,
    name: &str,
    versions: &[&str],
    extra: &str,
) -> (String, String) {
    let versions: Vec<String> = versions.iter().map(|v| format!("{v:?}")).collect();
    let body = format!(
        r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z"{extra},"affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},"versions":[{}]}}]}}"#,
        versions.join(",")
    );
    (format!("{id}.json"), body)
}

/// Poll `f` until it returns `Some` or the deadline passes.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake bundle host with ETag/Last-Modified support that counts what it sent.
#[derive(Clone, Default)]
pub struct BundleServer {
    pub body: Arc<Mutex<Vec<u8>>>,
    pub full_responses: Arc<AtomicU64>,
    pub not_modified: Arc<AtomicU64>,
    pub bytes_sent: Arc<AtomicU64>,
}

async fn serve_bundle(State(s): State<BundleServer>, headers: HeaderMap) -> Response {
    let body = s.body.lock().unwrap().clone();
    let etag = format!(
        "\"{:x}\"",
        body.len() as u64 * 31 + body.iter().map(|&b| b as u64).sum::<u64>()
    );
    let inm = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if inm == Some(etag.as_str()) {
        s.not_modified.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Body::empty())
            .unwrap();
    }
    s.full_responses.fetch_add(1, Ordering::SeqCst);
    s.bytes_sent.fetch_add(body.len() as u64, Ordering::SeqCst);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, etag)
        .header(header::LAST_MODIFIED, "Mon, 01 Jan 2024 00:00:00 GMT")
        .header(header::CONTENT_TYPE, "application/zip")
        .body(Body::from(body))
        .unwrap()
}

impl BundleServer {
    pub async fn start(body: Vec<u8>) -> (BundleServer, SocketAddr) {
        let s = BundleServer {
            body: Arc::new(Mutex::new(body)),
            ..Default::default()
        };
        let app = Router::new()
            .route("/osv/all.zip", get(serve_bundle))
            .route(
                "/redirect-away",
                get(|| async {
                    Response::builder()
                        .status(StatusCode::FOUND)
                        .header(header::LOCATION, "http://localhost:9/elsewhere.zip")
                        .body(Body::empty())
                        .unwrap()
                }),
            )
            .with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (s, addr)
    }
}

/// Run the `pkggate` binary in `dir` with only the given `PKGGATE_*` variables (the test
/// process's own are removed) and warnings-only logging.
pub fn pkggate(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pkggate"));
    cmd.current_dir(dir).args(args).env("PKGGATE_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("PKGGATE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}
