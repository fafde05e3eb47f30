//! cargo index gate benchmark (issue: cargo firewall). Run:
//!
//! ```text
//! cargo bench -p pkggate --bench cargo
//! ```
//!
//! Serves the recorded `tokio` and `reqwest` index files from a fake upstream on loopback and
//! compares, in the same run and interleaved, fetching them directly with fetching them
//! through pkggate (every version decided, one advisory blocking a version). "Cold": the
//! upstream sends no ETag, so every request transfers and filters the whole file. "Warm": the
//! upstream sends an ETag, so pkggate revalidates (304) and filters its cached copy.
//!
//! Two ratios per column: of the medians (`p50 / direct p50`) and the median of the
//! per-round ratios (each round's pkggate time over the same round's direct time, which
//! follows the load of a shared machine better).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::gate::Gate;
use pkggate::intel::{Intel, IntelSource, IntelStore, now_unix};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::{AppState, start_with};
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem;
use pkggate_policy::Policy;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Fake {
    files: Arc<HashMap<String, (String, Vec<u8>)>>,
    etags: bool,
}

async fn index(State(f): State<Fake>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let name = path.rsplit('/').next().unwrap_or("");
    let Some((etag, body)) = f.files.get(name) else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    if f.etags {
        if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            return Response::builder()
                .status(304)
                .header("etag", etag.as_str())
                .body(Body::empty())
                .unwrap();
        }
        return Response::builder()
            .header("etag", etag.as_str())
            .body(Body::from(body.clone()))
            .unwrap();
    }
    Response::new(Body::from(body.clone()))
}

fn load(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../../shared/fixtures/registry/cargo/{name}.idx.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let gz = std::fs::read(p).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn serve_fake(files: Arc<HashMap<String, (String, Vec<u8>)>>, etags: bool) -> String {
    let app = Router::new()
        .route("/index/{*path}", get(index))
        .with_state(Fake { files, etags });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{a}/index/")
}

async fn pkggate(upstream: &str, store: Arc<IntelStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut raw = RawInputs::default();
    raw.env
        .insert("PKGGATE_UPSTREAM_CARGO_INDEX".into(), upstream.to_string());
    let config = Arc::new(Config::load(&raw).unwrap());
    let audit = Arc::new(MemoryAudit::default());
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(store),
        live: None,
    });
    let policy = PolicyHandle::fixed(
        Policy::from_yaml(
            "block_malicious: true\nmin_package_age_days: 1\n",
            "bench.yaml",
        )
        .unwrap(),
    );
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: audit.clone(),
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
        audit,
    };
    let running = start_with(listener, state, None).await.unwrap();
    let addr = running.addr;
    std::mem::forget(running);
    format!("http://{addr}/cargo/")
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = HashMap::new();
    for name in ["tokio", "reqwest"] {
        let body = load(name);
        files.insert(
            name.to_string(),
            (format!("\"{name}-{}\"", body.len()), body),
        );
    }
    let files = Arc::new(files);
    // The mirror: one advisory against one tokio version.
    let zip_path = dir.path().join("c.zip");
    {
        let f = std::fs::File::create(&zip_path).unwrap();
        let mut w = zip::ZipWriter::new(f);
        w.start_file(
            "RUSTSEC-BENCH.json",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.write_all(br#"{"id":"RUSTSEC-BENCH","affected":[{"package":{"ecosystem":"crates.io","name":"tokio"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"1.0.2"}]}]}]}"#).unwrap();
        w.finish().unwrap();
    }
    let store = IntelStore::open(&dir.path().join("m.db")).unwrap();
    let opts = pkggate::intel::sync::SyncOptions {
        max_bundle_bytes: u64::MAX,
        progress: None,
    };
    pkggate::intel::sync::sync_ecosystem(
        &store,
        &reqwest::Client::new(),
        Ecosystem::CratesIo,
        zip_path.to_str().unwrap(),
        &opts,
    )
    .await
    .unwrap();

    let cold_up = serve_fake(files.clone(), false).await;
    let warm_up = serve_fake(files.clone(), true).await;
    let cold_gate = pkggate(&cold_up, store.clone()).await;
    let warm_gate = pkggate(&warm_up, store.clone()).await;
    let client = reqwest::Client::new();

    println!(
        "| index file | size | direct p50 | pkggate cold p50 | ratio | per round | pkggate warm p50 | ratio | per round |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, path) in [("tokio", "to/ki/tokio"), ("reqwest", "re/qw/reqwest")] {
        let (mut direct, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..230 {
            for (url, sink) in [
                (format!("{cold_up}{path}"), &mut direct),
                (format!("{cold_gate}{path}"), &mut cold),
                (format!("{warm_gate}{path}"), &mut warm),
            ] {
                let t = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert!(r.status().is_success(), "{url}: {}", r.status());
                let b = r.bytes().await.unwrap();
                std::hint::black_box(b);
                if i >= 30 {
                    sink.push(t.elapsed());
                }
            }
        }
        let paired = |through: &[Duration]| {
            let mut r: Vec<f64> = through
                .iter()
                .zip(&direct)
                .map(|(t, d)| t.as_secs_f64() / d.as_secs_f64())
                .collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        let (cold_paired, warm_paired) = (paired(&cold), paired(&warm));
        let (d, c, w) = (
            percentile(&mut direct, 0.5),
            percentile(&mut cold, 0.5),
            percentile(&mut warm, 0.5),
        );
        println!(
            "| {name} | {} KB | {:.2} ms | {:.2} ms | {:.2}× | {:.2}× | {:.2} ms | {:.2}× | {:.2}× |",
            files[name].1.len() / 1024,
            d.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            c.as_secs_f64() / d.as_secs_f64(),
            cold_paired,
            w.as_secs_f64() * 1e3,
            w.as_secs_f64() / d.as_secs_f64(),
            warm_paired,
        );
    }
}
