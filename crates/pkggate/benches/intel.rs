//! Intelligence benchmarks (issue: foundation). Run:
//!
//! ```text
//! cargo bench -p pkggate --bench intel
//! ```
//!
//! Reports ingest time and peak RSS per real bundle in `../shared/osv/`, whole-document
//! lookup (3,000 versions) and single-version lookup latency, and how both grow with the
//! number of advisories per package. Plain timing loops with percentiles: no criterion, so
//! the numbers come from one process on a shared machine; read them as ratios to the
//! targets, not absolutes.

use pkggate::intel::IntelStore;
use pkggate::intel::sync::{SyncOptions, SyncOutcome, sync_ecosystem};
use pkggate_formats::Ecosystem;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// (VmHWM, VmRSS) in MiB from /proc/self/status.
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn sync(store: &std::sync::Arc<IntelStore>, eco: Ecosystem, path: &Path) -> SyncOutcome {
    let client = reqwest::Client::new();
    let opts = SyncOptions {
        max_bundle_bytes: u64::MAX,
        progress: None,
    };
    sync_ecosystem(store, &client, eco, path.to_str().unwrap(), &opts)
        .await
        .unwrap()
}

fn make_zip(path: &Path, entries: &[(String, String)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap();
}

/// A package `bench-pkg` with 3,000 versions of which 50 are affected, spread over `k`
/// advisories (k > 50 adds advisories for versions that do not exist), plus 2,000 filler
/// advisories for other packages.
fn synthetic_bundle(dir: &Path, k: usize) -> PathBuf {
    let affected: Vec<String> = (0..50).map(|i| version(i * 60)).collect();
    let mut entries = Vec::new();
    for j in 0..k {
        let mut list: Vec<String> = affected
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k.min(50) == j % k.min(50))
            .map(|(_, v)| format!("{v:?}"))
            .collect();
        if j >= 50 {
            list = vec![format!("\"9.9.{j}\"")];
        }
        let id = format!("MAL-BENCH-{j}");
        entries.push((
            format!("{id}.json"),
            format!(
                r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"npm","name":"bench-pkg"}},"versions":[{}],"ranges":[{{"type":"SEMVER","events":[{{"introduced":"5.0.0"}},{{"fixed":"5.1.0"}}]}}]}}]}}"#,
                list.join(",")
            ),
        ));
    }
    for j in 0..2000 {
        let id = format!("MAL-FILL-{j}");
        entries.push((
            format!("{id}.json"),
            format!(r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"npm","name":"filler-{j}"}},"versions":["1.0.0"]}}]}}"#),
        ));
    }
    let path = dir.join(format!("bench-{k}.zip"));
    make_zip(&path, &entries);
    path
}

fn version(i: usize) -> String {
    format!("1.{}.{}", i / 100, i % 100)
}

fn time_lookups(
    store: &IntelStore,
    eco: Ecosystem,
    name: &str,
    versions: &[&str],
) -> (Duration, Duration, Duration, Duration, usize) {
    let mut whole = Vec::new();
    let mut hits = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let f = store.lookup_package(eco, name, versions).unwrap();
        whole.push(t.elapsed());
        hits = f.per_version.iter().filter(|v| !v.is_empty()).count();
    }
    whole.sort();
    let mut single = Vec::new();
    for i in 0..20_000 {
        let v = versions[(i * 7919) % versions.len()];
        let t = Instant::now();
        let f = store.lookup_version(eco, name, v).unwrap();
        single.push(t.elapsed());
        std::hint::black_box(f);
    }
    single.sort();
    (
        percentile(&whole, 0.5),
        percentile(&whole, 0.99),
        percentile(&single, 0.5),
        percentile(&single, 0.99),
        hits,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("## Ingest (real bundles from ../shared/osv)\n");
    println!("| bundle | records | skipped | withdrawn | time | process peak RSS (VmHWM) |");
    println!("|---|---|---|---|---|---|");
    for (eco, sub) in [
        (Ecosystem::Npm, "npm"),
        (Ecosystem::PyPI, "PyPI"),
        (Ecosystem::CratesIo, "crates.io"),
    ] {
        let store = IntelStore::open(&dir.path().join(format!("ingest-{sub}.db"))).unwrap();
        let t = Instant::now();
        let out = sync(&store, eco, &shared().join("osv").join(sub).join("all.zip")).await;
        let elapsed = t.elapsed();
        let (hwm, _) = rss_mib();
        let SyncOutcome::Replaced(stats, _) = out else {
            panic!("not replaced")
        };
        println!(
            "| {sub}/all.zip | {} | {} | {} | {:.2} s | {:.0} MiB |",
            stats.records,
            stats.skipped,
            stats.withdrawn,
            elapsed.as_secs_f64(),
            hwm
        );
    }

    println!(
        "\n## Lookups: package `bench-pkg`, 3,000 versions, 50 affected, growing advisories\n"
    );
    println!(
        "| advisories for the package | whole-document p50 | p99 | single-version p50 | p99 | affected found |"
    );
    println!("|---|---|---|---|---|---|");
    let versions: Vec<String> = (0..3000).map(version).collect();
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    for k in [1usize, 10, 50, 200, 1000] {
        let bundle = synthetic_bundle(dir.path(), k);
        let store = IntelStore::open(&dir.path().join(format!("lookup-{k}.db"))).unwrap();
        sync(&store, Ecosystem::Npm, &bundle).await;
        let (w50, w99, s50, s99, hits) = time_lookups(&store, Ecosystem::Npm, "bench-pkg", &refs);
        println!(
            "| {k} | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs | {hits} |",
            us(w50),
            us(w99),
            us(s50),
            us(s99)
        );
        assert_eq!(
            hits, 50,
            "the synthetic package must have 50 affected versions"
        );
    }

    println!("\n## Lookups on real data (PyPI all.zip loaded)\n");
    println!(
        "| package | advisories | whole-document (3,000 versions) p50 | p99 | single-version p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|");
    let store = IntelStore::open(&dir.path().join("ingest-PyPI.db")).unwrap();
    let pyversions: Vec<String> = (0..3000)
        .map(|i| format!("{}.{}.{}", i / 300, (i / 10) % 30, i % 10))
        .collect();
    let pyrefs: Vec<&str> = pyversions.iter().map(String::as_str).collect();
    for name in ["tensorflow", "django", "requests"] {
        let n = store.package_rows(Ecosystem::PyPI, name).unwrap().len();
        let (w50, w99, s50, s99, _) = time_lookups(&store, Ecosystem::PyPI, name, &pyrefs);
        println!(
            "| {name} | {n} | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs |",
            us(w50),
            us(w99),
            us(s50),
            us(s99)
        );
    }
    // What the PyPI root index and the "blocked outright" pre-check read once per
    // intelligence revision: every advisory that covers all versions.
    let mut times = Vec::new();
    let mut names = 0;
    for _ in 0..5 {
        let t = Instant::now();
        names = store.catch_all(Ecosystem::PyPI).unwrap().len();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "\ncatch-all advisories of PyPI (read once per intelligence revision): {names} rows, median of 5 {:.1} ms",
        times[2].as_secs_f64() * 1e3
    );
    let (hwm, rss) = rss_mib();
    println!("\nprocess VmHWM {hwm:.0} MiB, VmRSS {rss:.0} MiB at the end");
}
