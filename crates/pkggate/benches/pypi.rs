//! PyPI benchmarks (issue 4). Run:
//!
//! ```text
//! cargo bench -p pkggate --bench pypi
//! ```
//!
//! In one process: a fake PyPI (simple host + files host on 127.0.0.1) serving the recorded
//! `numpy` pages and root index from `../shared/fixtures/registry/pypi/` and a 1 GiB file
//! generated on the fly, and pkggate in front of it. Reports
//! * the numpy page indexed in one pass (the cold path of a JSON page) and parsed in full,
//!   its facts and its renderings (JSON and HTML) timed in process
//!   (first, cold call each; `cargo test -p pkggate-formats --release pypi::perf_tests --
//!   --ignored --nocapture` gives best-of-15 timings of the same steps);
//! * the numpy page (JSON and HTML) through pkggate vs directly from the fake, cold (a new
//!   pkggate, empty caches) and warm (cached), in rounds that interleave direct and pkggate
//!   fetches, as medians and ratios, beside a do-nothing proxy on the same stack (buffered
//!   and streamed: the floor of any proxy here);
//! * the cold numpy JSON page again with the fake throttled to 25 MB/s (a public index's
//!   pace), where the scan overlaps the transfer;
//! * the 40 MB root index streamed through pkggate, with peak RSS growth;
//! * a 1 GiB file streamed directly, through pkggate (sha256 verified) and through pkggate
//!   with verification off and through the do-nothing streaming proxy, interleaved three
//!   times (medians), with peak RSS growth, and
//!   sha256 over memory on one core: on a machine whose cores the client, the fake and
//!   pkggate share, the last two show what the extra hop and the hashing each cost.
//!
//! `PKGGATE_BENCH_FILE_MB` changes the file size (default 1024); `PYPI_BENCH_COLD_ONLY=N`
//! runs only N cold requests of the numpy JSON page (for a profiler).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::gate::Gate;
use pkggate::intel::sync::{SyncOptions, sync_ecosystem};
use pkggate::intel::{Intel, IntelSource, IntelStore};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::{AppState, Running};
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem;
use pkggate_policy::Policy;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

fn gunzip(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(shared().join("fixtures/registry/pypi").join(name)).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// (VmHWM, VmRSS) in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Reset the peak RSS counter (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Clone)]
struct Fake {
    pages: Arc<HashMap<String, (String, Bytes)>>,
    root: Bytes,
    /// Bytes per second for project pages (`None`: as fast as loopback goes).
    rate: Option<u64>,
}

/// Rate of the throttled upstream: 25 MB/s (200 Mbit/s), a fast link to a public index.
const THROTTLED_BYTES_PER_SEC: u64 = 25_000_000;

/// `body` in 64 KiB chunks, each sent when the rate allows.
fn throttled(body: Bytes, rate: u64) -> Body {
    let start = tokio::time::Instant::now();
    let chunks: Vec<(usize, Bytes)> = (0..body.len())
        .step_by(64 << 10)
        .map(|at| (at, body.slice(at..(at + (64 << 10)).min(body.len()))))
        .collect();
    Body::from_stream(
        futures_util::stream::iter(chunks).then(move |(at, chunk)| async move {
            let due = Duration::from_secs_f64(at as f64 / rate as f64);
            tokio::time::sleep_until(start + due).await;
            Ok::<_, std::io::Error>(chunk)
        }),
    )
}

fn block() -> Bytes {
    Bytes::from(
        (0..65536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn generated(size: u64) -> Body {
    let b = block();
    let n = size / b.len() as u64;
    Body::from_stream(futures_util::stream::iter(
        (0..n).map(move |_| Ok::<_, std::io::Error>(b.clone())),
    ))
}

fn generated_sha(size: u64) -> String {
    let b = block();
    let mut h = Sha256::new();
    for _ in 0..size / b.len() as u64 {
        h.update(&b);
    }
    hex::encode(h.finalize())
}

async fn page(State(f): State<Fake>, AxPath(p): AxPath<String>, headers: HeaderMap) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("application/vnd.pypi.simple.v1+json"));
    let key = format!("{p}.{}", if json { "json" } else { "html" });
    match f.pages.get(&key) {
        Some((ct, body)) => Response::builder()
            .header(header::CONTENT_TYPE, ct.as_str())
            .header(header::CONTENT_LENGTH, body.len())
            .body(match f.rate {
                Some(rate) => throttled(body.clone(), rate),
                None => Body::from(body.clone()),
            })
            .unwrap(),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap(),
    }
}

async fn start_fake(
    files_base: &str,
    file_size: u64,
) -> (
    std::net::SocketAddr,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let simple_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simple_addr = simple_l.local_addr().unwrap();
    let files_addr = files_l.local_addr().unwrap();
    let files_base = files_base.replace("FILES", &files_addr.to_string());
    let fix = |name: &str| {
        Bytes::from(
            String::from_utf8(gunzip(name))
                .unwrap()
                .replace("https://files.example/", &files_base),
        )
    };
    let mut pages = HashMap::new();
    pages.insert(
        "numpy.json".to_string(),
        (
            "application/vnd.pypi.simple.v1+json".to_string(),
            fix("numpy.v1.json.gz"),
        ),
    );
    pages.insert(
        "numpy.html".to_string(),
        ("text/html".to_string(), fix("numpy.v1.html.gz")),
    );
    let sha = generated_sha(file_size);
    let big = format!(
        r#"{{"meta":{{"api-version":"1.1"}},"name":"big-pkg","files":[{{"filename":"big_pkg-1.0-py3-none-any.whl","url":"{files_base}gen/big_pkg-1.0-py3-none-any.whl","hashes":{{"sha256":"{sha}"}},"size":{file_size},"upload-time":"2020-01-01T00:00:00.000000Z"}}],"versions":["1.0"]}}"#
    );
    pages.insert(
        "big-pkg.json".to_string(),
        (
            "application/vnd.pypi.simple.v1+json".to_string(),
            Bytes::from(big),
        ),
    );
    let fake = Fake {
        pages: Arc::new(pages),
        root: Bytes::from(gunzip("root.v1.html.gz")),
        rate: None,
    };
    // The same pages from a second host at `THROTTLED_BYTES_PER_SEC`.
    let slow_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow_l.local_addr().unwrap();
    let slow = Router::new()
        .route("/simple/{p}/", get(page))
        .with_state(Fake {
            rate: Some(THROTTLED_BYTES_PER_SEC),
            ..fake.clone()
        });
    tokio::spawn(async move { axum::serve(slow_l, slow).await.unwrap() });
    let simple = Router::new()
        .route(
            "/simple/",
            get(|State(f): State<Fake>| async move {
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/html")
                    .body(Body::from(f.root.clone()))
                    .unwrap()
            }),
        )
        .route("/simple/{p}/", get(page))
        .with_state(fake);
    let files = Router::new().route(
        "/gen/{file}",
        get(move || async move {
            Response::builder()
                .header(header::CONTENT_LENGTH, file_size)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(generated(file_size))
                .unwrap()
        }),
    );
    tokio::spawn(async move { axum::serve(simple_l, simple).await.unwrap() });
    tokio::spawn(async move { axum::serve(files_l, files).await.unwrap() });
    (simple_addr, files_addr, slow_addr)
}

/// The floor: a proxy on the same stack as pkggate (an axum server, a reqwest client with a
/// connection pool) that does nothing with the body. `/buffered/<host>/<path>` reads the
/// whole body before answering, as pkggate must for a page it decides on;
/// `/streamed/<host>/<path>` forwards it chunk by chunk. `<host>` is `simple` or `files`.
/// What pkggate costs beyond the floor is its own work.
#[derive(Clone)]
struct Floor {
    client: reqwest::Client,
    simple: std::net::SocketAddr,
    files: std::net::SocketAddr,
}

async fn floor_proxy(
    State(f): State<Floor>,
    AxPath((mode, host, rest)): AxPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let addr = if host == "files" { f.files } else { f.simple };
    let mut req = f.client.get(format!("http://{addr}/{rest}"));
    if let Some(a) = headers.get(header::ACCEPT) {
        req = req.header(header::ACCEPT, a);
    }
    let up = req.send().await.unwrap();
    let mut out = Response::builder().status(up.status().as_u16());
    if let Some(ct) = up.headers().get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    if mode == "buffered" {
        out.body(Body::from(up.bytes().await.unwrap())).unwrap()
    } else {
        if let Some(len) = up.content_length() {
            out = out.header(header::CONTENT_LENGTH, len);
        }
        out.body(Body::from_stream(up.bytes_stream())).unwrap()
    }
}

async fn start_floor(simple: std::net::SocketAddr, files: std::net::SocketAddr) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let floor = Floor {
        client: reqwest::Client::builder().no_gzip().build().unwrap(),
        simple,
        files,
    };
    let app = Router::new()
        .route("/{mode}/{host}/{*rest}", get(floor_proxy))
        .with_state(floor);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn start_gate(
    simple: std::net::SocketAddr,
    files: std::net::SocketAddr,
    mirror: &std::path::Path,
    store: Arc<IntelStore>,
    verify: Option<bool>,
) -> (Running, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, addr.port().to_string()),
        (env::PUBLIC_BASE_URL, base.clone()),
        (
            env::PYPI_UPSTREAM_SIMPLE,
            format!("http://{simple}/simple/"),
        ),
        (env::PYPI_UPSTREAM_FILES, format!("http://{files}/")),
        (env::MIRROR_DB, mirror.to_string_lossy().into_owned()),
        (env::CARGO_ENABLED, "false".into()),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    if let Some(v) = verify
        .map(|v| v.to_string())
        .or_else(|| std::env::var(env::PYPI_VERIFY_INTEGRITY).ok())
    {
        raw.env.insert(env::PYPI_VERIFY_INTEGRITY.to_string(), v);
    }
    let config = Arc::new(Config::load(&raw).unwrap());
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(store),
        live: None,
    });
    let audit = MemoryAudit::default();
    let policy = PolicyHandle::fixed(Policy::default());
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: Arc::new(audit.clone()),
        clock: Arc::new(pkggate::intel::now_unix),
        audit_allowed_each: false,
    });
    let upstream = Arc::new(Upstream::new(
        Duration::from_secs(30),
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    let state = AppState {
        config,
        intel,
        gate,
        upstream,
        policy,
        audit: Arc::new(audit),
    };
    (
        pkggate::server::start_with(listener, state, None)
            .await
            .unwrap(),
        base,
    )
}

async fn fetch(c: &reqwest::Client, url: &str, accept: &str) -> (Duration, usize) {
    let t = Instant::now();
    let r = c.get(url).header("accept", accept).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let mut n = 0;
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    (t.elapsed(), n)
}

/// Rounds of the page comparison (each: a new pkggate, one cold fetch).
const COLD_ROUNDS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let file_mb: u64 = std::env::var("PKGGATE_BENCH_FILE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let file_size = file_mb * 1024 * 1024;
    let (simple, files, slow) = start_fake("http://FILES/", file_size).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    let store = IntelStore::open(&db).unwrap();
    sync_ecosystem(
        &store,
        &reqwest::Client::new(),
        Ecosystem::PyPI,
        shared().join("osv/PyPI/sample.zip").to_str().unwrap(),
        &SyncOptions {
            max_bundle_bytes: u64::MAX,
            progress: None,
        },
    )
    .await
    .unwrap();
    let c = reqwest::Client::builder()
        .no_gzip()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap();
    let floor = start_floor(simple, files).await;
    // `PYPI_BENCH_COLD_ONLY=N`: only N cold requests of the numpy JSON page (for a
    // profiler), then exit.
    if let Some(n) = std::env::var("PYPI_BENCH_COLD_ONLY")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let accept = std::env::var("PYPI_BENCH_ACCEPT")
            .unwrap_or_else(|_| "application/vnd.pypi.simple.v1+json".into());
        let direct_url = format!("http://{simple}/simple/numpy/");
        let (mut times, mut warm, mut direct) = (Vec::new(), Vec::new(), Vec::new());
        let mut buffered = Vec::new();
        let buffered_url = format!("{floor}/buffered/simple/simple/numpy/");
        for _ in 0..n {
            let (running, base) = start_gate(simple, files, &db, store.clone(), None).await;
            fetch(&c, &format!("{base}/simple/big-pkg/"), &accept).await;
            times.push(fetch(&c, &format!("{base}/simple/numpy/"), &accept).await.0);
            for _ in 0..3 {
                warm.push(fetch(&c, &format!("{base}/simple/numpy/"), &accept).await.0);
                direct.push(fetch(&c, &direct_url, &accept).await.0);
                buffered.push(fetch(&c, &buffered_url, &accept).await.0);
            }
            running.stop().await.unwrap();
        }
        times.sort();
        println!(
            "{n} cold requests of numpy ({accept}): min {:.2} ms, median {:.2} ms, max {:.2} ms | warm median {:.2} ms | direct median {:.2} ms | do-nothing buffering proxy median {:.2} ms",
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            ms(median(warm)),
            ms(median(direct)),
            ms(median(buffered)),
        );
        return;
    }
    println!("# PyPI benchmarks");
    // Components of a cold page, in process (no HTTP).
    for (label, file) in [("JSON", "numpy.v1.json.gz"), ("HTML", "numpy.v1.html.gz")] {
        use pkggate_formats::pypi::{Rewrite, SimpleFormat, parse_project_page};
        let body = gunzip(file);
        let t = Instant::now();
        let page =
            parse_project_page("numpy", &body, None, "https://x.example/simple/numpy/").unwrap();
        let parse = t.elapsed();
        let t = Instant::now();
        let facts = page.facts();
        let facts_t = t.elapsed();
        let t = Instant::now();
        let keep_file = |_: &pkggate_formats::pypi::FileEntry| true;
        let keep_version = |_: &str| true;
        let file_url =
            |f: &pkggate_formats::pypi::FileEntry| format!("http://g/files/numpy/{}", f.filename);
        let rw = Rewrite {
            keep_file: &keep_file,
            keep_version: &keep_version,
            file_url: &file_url,
        };
        let out = page.render(SimpleFormat::Json, &rw).unwrap();
        let render = t.elapsed();
        let t = Instant::now();
        let out_html = page.render(SimpleFormat::TextHtml, &rw).unwrap();
        let render_html = t.elapsed();
        // The cold path of a JSON page: the one-pass index, then a render from it.
        if label == "JSON" {
            use pkggate_formats::pypi::JsonPageScanner;
            let t = Instant::now();
            let mut scanner = JsonPageScanner::new("numpy", "https://x.example/simple/numpy/");
            for end in (0..body.len())
                .step_by(64 << 10)
                .skip(1)
                .chain([body.len()])
            {
                scanner.advance(&body[..end]);
            }
            let index = scanner.finish(&body).expect("numpy takes the fast path");
            let scan = t.elapsed();
            let t = Instant::now();
            let facts = index.facts();
            let facts_t = t.elapsed();
            let url = |_: &str, name: &str| format!("http://g/files/numpy/{name}");
            let t = Instant::now();
            let out = index
                .render(&body, SimpleFormat::Json, &|_| true, &url)
                .unwrap();
            let render = t.elapsed();
            let t = Instant::now();
            let html = index
                .render(&body, SimpleFormat::TextHtml, &|_| true, &url)
                .unwrap();
            let render_html = t.elapsed();
            println!(
                "numpy JSON in process, one-pass index (the cold path): scan in 64 KiB steps {:.1} ms ({:.0} MB/s), facts {:.2} ms ({} versions), render JSON {:.1} ms ({} B), render HTML {:.1} ms ({} B)",
                ms(scan),
                body.len() as f64 / 1e6 / scan.as_secs_f64(),
                ms(facts_t),
                facts.versions.len(),
                ms(render),
                out.body.len(),
                ms(render_html),
                html.body.len()
            );
        }
        println!(
            "numpy {label} in process, full parse: parse {:.1} ms ({:.0} MB/s), facts {:.1} ms ({} versions), render JSON {:.1} ms ({} B), render HTML {:.1} ms ({} B)",
            ms(parse),
            body.len() as f64 / 1e6 / parse.as_secs_f64(),
            ms(facts_t),
            facts.versions.len(),
            ms(render),
            out.body.len(),
            ms(render_html),
            out_html.body.len()
        );
    }
    for (label, accept) in [
        ("JSON", "application/vnd.pypi.simple.v1+json"),
        ("HTML", "text/html"),
    ] {
        // Rounds of: a new pkggate, direct fetches, the cold fetch, warm fetches, so that
        // direct and pkggate see the same machine load.
        let direct_url = format!("http://{simple}/simple/numpy/");
        let buffered_url = format!("{floor}/buffered/simple/simple/numpy/");
        let streamed_url = format!("{floor}/streamed/simple/simple/numpy/");
        let (mut buffered, mut streamed) = (Vec::new(), Vec::new());
        let mut direct = Vec::new();
        let mut direct_len = 0;
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut out_len = 0;
        for _ in 0..COLD_ROUNDS {
            let (running, base) = start_gate(simple, files, &db, store.clone(), None).await;
            let url = format!("{base}/simple/numpy/");
            // Warm the process (connection pool, intelligence), not the numpy caches.
            fetch(&c, &format!("{base}/simple/big-pkg/"), accept).await;
            for _ in 0..4 {
                let (d, n) = fetch(&c, &direct_url, accept).await;
                direct.push(d);
                direct_len = n;
                buffered.push(fetch(&c, &buffered_url, accept).await.0);
                streamed.push(fetch(&c, &streamed_url, accept).await.0);
            }
            let (d, n) = fetch(&c, &url, accept).await;
            cold.push(d);
            out_len = n;
            for _ in 0..8 {
                warm.push(fetch(&c, &url, accept).await.0);
            }
            running.stop().await.unwrap();
        }
        let (direct, cold, warm) = (median(direct), median(cold), median(warm));
        let (buffered, streamed) = (median(buffered), median(streamed));
        let x = |d: Duration| d.as_secs_f64() / direct.as_secs_f64();
        println!(
            "numpy {label} ({COLD_ROUNDS} rounds): upstream {direct_len} B, served {out_len} B | direct {:.2} ms | cold {:.2} ms ({:.2}x) | warm {:.2} ms ({:.2}x) | do-nothing proxy: buffered {:.2} ms ({:.2}x), streamed {:.2} ms ({:.2}x)",
            ms(direct),
            ms(cold),
            x(cold),
            ms(warm),
            x(warm),
            ms(buffered),
            x(buffered),
            ms(streamed),
            x(streamed),
        );
    }

    // The same cold comparison against an upstream that delivers at a public index's pace:
    // pkggate scans while the body arrives, so what remains is rendering and sending.
    {
        let accept = "application/vnd.pypi.simple.v1+json";
        let direct_url = format!("http://{slow}/simple/numpy/");
        let (mut direct, mut cold) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let (running, base) = start_gate(slow, files, &db, store.clone(), None).await;
            fetch(&c, &format!("{base}/simple/big-pkg/"), accept).await;
            direct.push(fetch(&c, &direct_url, accept).await.0);
            cold.push(fetch(&c, &format!("{base}/simple/numpy/"), accept).await.0);
            running.stop().await.unwrap();
        }
        let (direct, cold) = (median(direct), median(cold));
        println!(
            "numpy JSON from an upstream at {} MB/s (5 rounds): direct {:.1} ms | cold {:.1} ms ({:.2}x, +{:.1} ms)",
            THROTTLED_BYTES_PER_SEC / 1_000_000,
            ms(direct),
            ms(cold),
            cold.as_secs_f64() / direct.as_secs_f64(),
            ms(cold.saturating_sub(direct)),
        );
    }

    let (running, base) = start_gate(simple, files, &db, store.clone(), None).await;
    // Root index, streamed.
    let (_, rss_before) = rss_mib();
    reset_peak();
    let (d, n) = fetch(&c, &format!("{base}/simple/"), "text/html").await;
    let (peak, _) = rss_mib();
    println!(
        "root index: {n} B in {:.0} ms, peak RSS growth {:.1} MiB",
        ms(d),
        peak - rss_before
    );

    // The big file, interleaved three times: directly, through pkggate (sha256 verified while
    // streaming) and through a pkggate with verification off (what the extra hop alone
    // costs); plus sha256 over memory on one core (the ceiling of a verified stream).
    let (plain, plain_base) = start_gate(simple, files, &db, store.clone(), Some(false)).await;
    let direct_url = format!("http://{files}/gen/big_pkg-1.0-py3-none-any.whl");
    let file_url = |base: String| {
        let c = c.clone();
        async move {
            let page: serde_json::Value = c
                .get(format!("{base}/simple/big-pkg/"))
                .header("accept", "application/vnd.pypi.simple.v1+json")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["files"][0]["url"].as_str().unwrap().to_string()
        }
    };
    let urls = [
        direct_url.clone(),
        file_url(base.clone()).await,
        file_url(plain_base.clone()).await,
        format!("{floor}/streamed/files/gen/big_pkg-1.0-py3-none-any.whl"),
    ];
    let mut speed = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut growth = [0f64; 4];
    for _ in 0..3 {
        for (i, url) in urls.iter().enumerate() {
            let (_, rss_before) = rss_mib();
            reset_peak();
            let (d, n) = fetch(&c, url, "*/*").await;
            let (peak, _) = rss_mib();
            assert_eq!(n as u64, file_size, "{url}");
            speed[i].push(n as f64 / 1048576.0 / d.as_secs_f64());
            growth[i] = growth[i].max(peak - rss_before);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [d, g, p, f] = speed.map(|mut v| med(&mut v));
    let block = vec![7u8; 1 << 20];
    let t = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..256 {
        h.update(&block);
    }
    std::hint::black_box(h.finalize());
    let sha = 256.0 / t.elapsed().as_secs_f64();
    println!(
        "file {file_mb} MiB (median of 3, interleaved): direct {d:.0} MiB/s | via pkggate {g:.0} MiB/s ({:.2}x of direct, peak RSS +{:.1} MiB) | via pkggate, verification off {p:.0} MiB/s ({:.2}x, peak RSS +{:.1} MiB) | do-nothing streaming proxy {f:.0} MiB/s ({:.2}x) | sha256 on one core {sha:.0} MiB/s ({:.2}x of direct)",
        g / d,
        growth[1],
        p / d,
        growth[2],
        f / d,
        sha / d
    );
    plain.stop().await.unwrap();
    running.stop().await.unwrap();
}
