//! npm metadata gate benchmark: `cargo bench -p pkggate --bench npm`.
//!
//! A fake upstream on 127.0.0.1 serves the recorded `next` (21 MB, 2,627 versions), `express`
//! and synthetic documents; pkggate runs in the same process with 300 versions of `next`
//! marked malicious. Compared in the same run: fetching from the fake upstream directly,
//! through pkggate cold (a fresh server: every request goes upstream, is parsed, decided and
//! rendered) and warm (cached view, upstream revalidated with its ETag). Peak RSS is the
//! process high-water mark reset before each measurement (`/proc/self/clear_refs`).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::gate::Gate;
use pkggate::intel::{Intel, IntelSource, IntelStore};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::AppState;
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem;
use sha2::Digest;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Docs = Arc<HashMap<String, (Bytes, String)>>;

async fn upstream(State(docs): State<Docs>, uri: Uri, headers: HeaderMap) -> Response {
    let name = uri.path().trim_start_matches('/').to_string();
    let Some((body, etag)) = docs.get(&name).cloned() else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Body::empty())
            .unwrap();
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ETAG, etag)
        .body(Body::from(body))
        .unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../../shared/fixtures/registry/npm/{name}.full.json.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&p).expect("fixture"))
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn synthetic(name: &str, n: usize) -> Vec<u8> {
    let mut versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for i in 0..n {
        let v = format!("1.{}.{}", i / 100, i % 100);
        versions.insert(v.clone(), serde_json::json!({
            "name": name, "version": v, "description": "synthetic package for growth measurements",
            "dependencies": {"a": "^1.0.0", "b": "^2.0.0"}, "scripts": {"test": "node test.js"},
            "repository": {"type": "git", "url": "git+https://example.invalid/x.git"},
            "dist": {"tarball": format!("http://upstream/{name}/-/{name}-{v}.tgz"),
                     "shasum": "0000000000000000000000000000000000000000",
                     "integrity": format!("sha512-{}", "A".repeat(86) + "=="),
                     "fileCount": 10, "unpackedSize": 12345},
            "readme": "x".repeat(2000),
        }));
        time.insert(v, serde_json::json!("2020-01-01T00:00:00.000Z"));
    }
    serde_json::to_vec(&serde_json::json!({
        "name": name, "dist-tags": {"latest": "1.0.0"}, "versions": versions, "time": time,
    }))
    .unwrap()
}

fn peak_reset() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0)
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0)
}

struct Env {
    store: Arc<IntelStore>,
    upstream_base: String,
    _dir: tempfile::TempDir,
}

async fn start_pkggate(env: &Env) -> (String, pkggate::server::Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut raw = RawInputs::default();
    for (k, v) in [
        (pkggate::env::PORT, addr.port().to_string()),
        (pkggate::env::UPSTREAM_NPM, env.upstream_base.clone()),
        (pkggate::env::PUBLIC_BASE_URL, format!("http://{addr}")),
        (pkggate::env::PYPI_ENABLED, "false".into()),
        (pkggate::env::CARGO_ENABLED, "false".into()),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    let config = Arc::new(Config::load(&raw).unwrap());
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(env.store.clone()),
        live: None,
    });
    let audit: Arc<dyn pkggate::audit::AuditSink> = Arc::new(MemoryAudit::default());
    let policy = PolicyHandle::fixed(pkggate_policy::Policy::default());
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: audit.clone(),
        clock: Arc::new(pkggate::intel::now_unix),
        audit_allowed_each: false,
    });
    let up = Arc::new(Upstream::new(
        config.upstream_timeout,
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    let state = AppState {
        config,
        intel,
        gate,
        upstream: up,
        policy,
        audit,
    };
    let running = pkggate::server::start_with(listener, state, None)
        .await
        .unwrap();
    (format!("http://{addr}"), running)
}

async fn fetch(c: &reqwest::Client, url: &str, gzip: bool) -> (Duration, usize) {
    let t = Instant::now();
    let mut r = c.get(url);
    if gzip {
        r = r.header("accept-encoding", "gzip");
    }
    let resp = r.send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let n = resp.bytes().await.unwrap().len();
    (t.elapsed(), n)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let next = fixture("next");
    let express = fixture("express");
    // 300 versions of next marked malicious.
    // Sorted, as the key order of a `serde_json::Value` object (the same 300 as before).
    let mut next_versions: Vec<String> = pkggate_formats::npm::Packument::parse(&next)
        .unwrap()
        .versions()
        .map(str::to_string)
        .collect();
    next_versions.sort();
    let blocked: Vec<String> = next_versions.iter().step_by(8).take(300).cloned().collect();
    let mut docs = HashMap::new();
    let etag = |b: &[u8]| format!("\"{}\"", &hex::encode(sha2::Sha256::digest(b))[..16]);
    docs.insert("next".to_string(), (Bytes::from(next.clone()), etag(&next)));
    docs.insert(
        "express".to_string(),
        (Bytes::from(express.clone()), etag(&express)),
    );
    for n in [1000usize, 3000, 10000] {
        let name = format!("syn{n}");
        let b = synthetic(&name, n);
        let e = etag(&b);
        docs.insert(name, (Bytes::from(b), e));
    }
    let sizes: HashMap<String, usize> = docs
        .iter()
        .map(|(k, (b, _))| (k.clone(), b.len()))
        .collect();
    let app = Router::new().fallback(upstream).with_state(Arc::new(docs));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = IntelStore::open(&dir.path().join("mirror.db")).unwrap();
    let record = serde_json::json!({
        "id": "MAL-2099-1", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "next"}, "versions": blocked}],
    });
    let zip_path = dir.path().join("npm.zip");
    {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("MAL-2099-1.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(record.to_string().as_bytes()).unwrap();
        w.finish().unwrap();
        std::fs::write(&zip_path, buf.into_inner()).unwrap();
    }
    let client = pkggate::intel::source::bundle_client(Duration::from_secs(30));
    pkggate::intel::sync::sync_ecosystem(
        &store,
        &client,
        Ecosystem::Npm,
        zip_path.to_str().unwrap(),
        &pkggate::intel::sync::SyncOptions {
            max_bundle_bytes: u64::MAX,
            progress: None,
        },
    )
    .await
    .unwrap();
    let env = Env {
        store,
        upstream_base: format!("http://{up_addr}"),
        _dir: dir,
    };
    let c = reqwest::Client::builder().no_gzip().build().unwrap();
    let direct_url = |n: &str| format!("http://{up_addr}/{n}");
    let runs = 7;

    // `NPM_BENCH_COLD_ONLY=N`: only N cold requests of `next` (for a profiler), then exit.
    if let Some(n) = std::env::var("NPM_BENCH_COLD_ONLY")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut times = Vec::new();
        for _ in 0..n {
            let (base, running) = start_pkggate(&env).await;
            times.push(fetch(&c, &format!("{base}/next"), false).await.0);
            running.stop().await.unwrap();
        }
        times.sort();
        println!(
            "{n} cold requests of next: min {:.1} ms, median {:.1} ms, max {:.1} ms",
            ms(times[0]),
            ms(median(times.clone())),
            ms(times[times.len() - 1])
        );
        return;
    }

    println!("# npm metadata gate benchmark (release build, 2-core machine)");
    println!();
    println!(
        "next: {:.1} MB, {} versions, {} blocked",
        sizes["next"] as f64 / 1e6,
        next_versions.len(),
        blocked.len()
    );

    // Warm-up of the client pool and the fake upstream.
    for _ in 0..2 {
        fetch(&c, &direct_url("next"), false).await;
    }
    let mut d = Vec::new();
    for _ in 0..runs {
        d.push(fetch(&c, &direct_url("next"), false).await.0);
    }
    let direct = median(d);

    // Cold: a fresh server each time (no view, no fact cache).
    let mut cold = Vec::new();
    let mut cold_peak = 0.0f64;
    let mut served = 0;
    for _ in 0..runs {
        let (base, running) = start_pkggate(&env).await;
        let before = rss_mib();
        peak_reset();
        let (t, n) = fetch(&c, &format!("{base}/next"), false).await;
        cold_peak = cold_peak.max(peak_mib() - before);
        served = n;
        cold.push(t);
        running.stop().await.unwrap();
    }
    let cold = median(cold);

    // Warm: one server, the view cached; each request revalidates upstream (304).
    let (base, running) = start_pkggate(&env).await;
    fetch(&c, &format!("{base}/next"), false).await;
    let mut warm = Vec::new();
    for _ in 0..runs {
        warm.push(fetch(&c, &format!("{base}/next"), false).await.0);
    }
    let warm = median(warm);
    // Warm, gzip (what npm asks for).
    fetch(&c, &format!("{base}/next"), true).await;
    let mut warm_gz = Vec::new();
    let mut gz_len = 0;
    for _ in 0..runs {
        let (t, n) = fetch(&c, &format!("{base}/next"), true).await;
        gz_len = n;
        warm_gz.push(t);
    }
    let warm_gz = median(warm_gz);
    // Abbreviated, cold-ish (first request of that form on this server).
    let t = Instant::now();
    let resp = c
        .get(format!("{base}/next"))
        .header(
            "accept",
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        )
        .send()
        .await
        .unwrap();
    let corgi_len = resp.bytes().await.unwrap().len();
    let corgi_first = t.elapsed();

    println!();
    println!("| measurement | time (median of {runs}) | ratio to direct |");
    println!("|---|---|---|");
    println!(
        "| direct from the fake upstream (identity, {:.1} MB) | {:.1} ms | 1.00× |",
        sizes["next"] as f64 / 1e6,
        ms(direct)
    );
    println!(
        "| through pkggate, cold (fresh server: fetch + parse + decide + render; {:.1} MB served) | {:.1} ms | {:.2}× |",
        served as f64 / 1e6,
        ms(cold),
        ms(cold) / ms(direct)
    );
    println!(
        "| through pkggate, warm (cached view, upstream 304) | {:.1} ms | {:.2}× |",
        ms(warm),
        ms(warm) / ms(direct)
    );
    println!(
        "| through pkggate, warm, gzip ({:.2} MB on the wire) | {:.1} ms | {:.2}× |",
        gz_len as f64 / 1e6,
        ms(warm_gz),
        ms(warm_gz) / ms(direct)
    );
    println!(
        "| abbreviated form, first request on a warm server ({:.1} MB) | {:.1} ms | |",
        corgi_len as f64 / 1e6,
        ms(corgi_first)
    );
    println!();
    println!(
        "peak RSS growth during one cold request of next: {:.0} MiB ({:.1}× the {:.0} MiB document)",
        cold_peak,
        cold_peak / (sizes["next"] as f64 / 1048576.0),
        sizes["next"] as f64 / 1048576.0
    );

    // express: added latency p50 (warm).
    let mut dl = Vec::new();
    let mut pl = Vec::new();
    fetch(&c, &format!("{base}/express"), false).await;
    for _ in 0..200 {
        dl.push(fetch(&c, &direct_url("express"), false).await.0);
        pl.push(fetch(&c, &format!("{base}/express"), false).await.0);
    }
    let (dp, pp) = (median(dl), median(pl));
    println!();
    println!(
        "express ({:.2} MB): direct p50 {:.2} ms, through pkggate (warm) p50 {:.2} ms, added {:.2} ms",
        sizes["express"] as f64 / 1e6,
        ms(dp),
        ms(pp),
        ms(pp) - ms(dp)
    );
    running.stop().await.unwrap();

    // Growth with document size (cold, fresh server each).
    println!();
    println!(
        "| synthetic document | size | direct | pkggate cold | pkggate warm | peak RSS growth (cold) |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [1000usize, 3000, 10000] {
        let name = format!("syn{n}");
        let mut dd = Vec::new();
        for _ in 0..3 {
            dd.push(fetch(&c, &direct_url(&name), false).await.0);
        }
        let mut cc = Vec::new();
        let mut peak = 0.0f64;
        let mut ww = Vec::new();
        for _ in 0..3 {
            let (base, running) = start_pkggate(&env).await;
            let before = rss_mib();
            peak_reset();
            cc.push(fetch(&c, &format!("{base}/{name}"), false).await.0);
            peak = peak.max(peak_mib() - before);
            ww.push(fetch(&c, &format!("{base}/{name}"), false).await.0);
            running.stop().await.unwrap();
        }
        println!(
            "| {n} versions | {:.1} MB | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} MiB |",
            sizes[&name] as f64 / 1e6,
            ms(median(dd)),
            ms(median(cc)),
            ms(median(ww)),
            peak
        );
    }
}
