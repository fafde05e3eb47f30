//! Timing of the cold page path on the recorded pages (not run by default):
//! `cargo test -p pkggate-formats --release pypi::perf_tests -- --ignored --nocapture
//! --test-threads=1` (one at a time: the machine has two cores). `numpy_cold_path_timing`
//! times the full path, `numpy_fast_path_timing` the JSON fast path ([`scan`]).
//! `PYPI_GOLDEN=<file>` also writes every fixture's parse, facts and renderings there, so
//! two builds can be compared byte for byte.

use super::facts::version_key;
use super::*;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, Instant};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/registry/pypi"
);

fn load(file: &str) -> Vec<u8> {
    let gz = std::fs::read(format!("{DIR}/{file}")).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn best(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Like the app: filter by PEP 440 key against a (here: small) removed set.
fn render_like_app(
    page: &ProjectPage<'_>,
    format: SimpleFormat,
    removed: &HashSet<String>,
) -> RenderedPage {
    let keep_file = |f: &FileEntry| match &f.version {
        Some(v) => !removed.contains(&version_key(v)),
        None => !removed.contains(""),
    };
    let keep_version = |v: &str| !removed.contains(&version_key(v));
    let file_url = |f: &FileEntry| {
        format!(
            "http://127.0.0.1:8080/files/{}/{}",
            f.sha256().unwrap_or("none"),
            f.filename
        )
    };
    page.render(
        format,
        &Rewrite {
            keep_file: &keep_file,
            keep_version: &keep_version,
            file_url: &file_url,
        },
    )
    .unwrap()
}

/// Like the app's page handler: `keep_version` memoised per spelling, `keep_file` through it.
fn render_memo(
    page: &ProjectPage<'_>,
    format: SimpleFormat,
    removed: &HashSet<String>,
) -> RenderedPage {
    let memo: std::cell::RefCell<std::collections::HashMap<String, bool>> = Default::default();
    let keep_version = |v: &str| {
        if let Some(&k) = memo.borrow().get(v) {
            return k;
        }
        let k = !removed.contains(&version_key(v));
        memo.borrow_mut().insert(v.to_string(), k);
        k
    };
    let keep_file = |f: &FileEntry| keep_version(f.version.as_deref().unwrap_or(""));
    let file_url = |f: &FileEntry| {
        format!(
            "http://127.0.0.1:8080/files/{}/{}",
            f.sha256().unwrap_or("none"),
            f.filename
        )
    };
    page.render(
        format,
        &Rewrite {
            keep_file: &keep_file,
            keep_version: &keep_version,
            file_url: &file_url,
        },
    )
    .unwrap()
}

#[test]
#[ignore]
fn numpy_cold_path_timing() {
    let removed: HashSet<String> = ["1.22.0", "1.0"].iter().map(|v| version_key(v)).collect();
    for file in ["numpy.v1.json.gz", "numpy.v1.html.gz"] {
        let body = load(file);
        let url = "https://pypi.example/simple/numpy/";
        let parse = best(15, || {
            std::hint::black_box(parse_project_page("numpy", &body, None, url).unwrap());
        });
        let page = parse_project_page("numpy", &body, None, url).unwrap();
        let facts = best(15, || {
            std::hint::black_box(page.facts());
        });
        let json = best(15, || {
            std::hint::black_box(render_like_app(&page, SimpleFormat::Json, &removed));
        });
        let html = best(15, || {
            std::hint::black_box(render_like_app(&page, SimpleFormat::TextHtml, &removed));
        });
        let html_memo = best(15, || {
            std::hint::black_box(render_memo(&page, SimpleFormat::TextHtml, &removed));
        });
        let json_memo = best(15, || {
            std::hint::black_box(render_memo(&page, SimpleFormat::Json, &removed));
        });
        println!(
            "{file} ({:.1} MB, {} files): parse {:.2} ms ({:.0} MB/s) | facts {:.2} ms | render JSON {:.2} ms | render HTML {:.2} ms | memoised keep (like the app): render JSON {:.2} ms, HTML {:.2} ms",
            body.len() as f64 / 1e6,
            page.files.len(),
            ms(parse),
            body.len() as f64 / 1e6 / parse.as_secs_f64(),
            ms(facts),
            ms(json),
            ms(html),
            ms(json_memo),
            ms(html_memo),
        );
    }
    if let Ok(out) = std::env::var("PYPI_GOLDEN") {
        let mut s = String::new();
        for p in [
            "django",
            "numpy",
            "python-dateutil",
            "pytz",
            "requests",
            "six",
            "urllib3",
        ] {
            for ext in ["json", "html"] {
                let body = load(&format!("{p}.v1.{ext}.gz"));
                let page = parse_project_page(
                    p,
                    &body,
                    None,
                    &format!("https://pypi.example/simple/{p}/"),
                )
                .unwrap();
                writeln!(s, "== {p} {ext}").unwrap();
                writeln!(
                    s,
                    "{} {} {:?} {:?} {:?}",
                    page.project, page.name, page.api_version, page.versions, page.source
                )
                .unwrap();
                for f in &page.files {
                    writeln!(s, "{f:?}").unwrap();
                }
                let facts = page.facts();
                writeln!(s, "{:?} {}", facts.versions, facts.unknown_version_files).unwrap();
                for v in &facts.versions {
                    writeln!(s, "{:?}", facts.get(&v.version).map(|f| &f.version)).unwrap();
                }
                for fmt in [
                    SimpleFormat::Json,
                    SimpleFormat::TextHtml,
                    SimpleFormat::V1Html,
                ] {
                    let r = render_like_app(&page, fmt, &removed);
                    writeln!(s, "{r:?}").unwrap();
                }
            }
        }
        std::fs::write(out, s).unwrap();
    }
}

/// A proxy URL the way the app builds one for a file under the upstream files base:
/// `<base>/files/<project>/<path after the files host>`.
fn app_like_url(upstream: &str) -> String {
    let rest = upstream
        .strip_prefix("https://files.example/")
        .unwrap_or(upstream);
    let mut out = String::with_capacity(48 + rest.len());
    out.push_str("http://127.0.0.1:8080/files/numpy/");
    out.push_str(rest);
    out
}

/// The JSON fast path ([`scan`]) on the numpy page: scanning in one call and as the body
/// arrives, finishing, and rendering (against the existing render).
#[test]
#[ignore]
fn numpy_fast_path_timing() {
    let body = load("numpy.v1.json.gz");
    let url = "https://pypi.example/simple/numpy/";
    let mb = body.len() as f64 / 1e6;
    let one = best(15, || {
        let mut s = JsonPageScanner::new("numpy", url);
        s.advance(&body);
        std::hint::black_box(s);
    });
    let steps = |step: usize| {
        best(15, || {
            let mut s = JsonPageScanner::new("numpy", url);
            let mut end = 0;
            while end < body.len() {
                end = (end + step).min(body.len());
                s.advance(&body[..end]);
            }
            std::hint::black_box(s);
        })
    };
    let (k64, k1) = (steps(64 * 1024), steps(1024));
    let scanned = || {
        let mut s = JsonPageScanner::new("numpy", url);
        s.advance(&body);
        s
    };
    // `finish` + `facts` alone (the scan before it is not timed).
    let finish_facts = (0..15)
        .map(|_| {
            let s = scanned();
            let t = Instant::now();
            let idx = s.finish(&body).unwrap();
            std::hint::black_box(idx.facts());
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    let idx = scanned().finish(&body).unwrap();
    let keep_all = |_: &str| true;
    // Every other version removed (by position in the facts, i.e. first appearance).
    let facts = idx.facts();
    let odd: HashSet<&str> = facts
        .versions
        .iter()
        .skip(1)
        .step_by(2)
        .map(|v| v.version.as_str())
        .collect();
    let keep_even = |v: &str| !odd.contains(v);
    let file_url = |u: &str, _: &str| app_like_url(u);
    let render = |format: SimpleFormat, keep: &dyn Fn(&str) -> bool| {
        best(15, || {
            std::hint::black_box(idx.render(&body, format, keep, &file_url).unwrap());
        })
    };
    let json_all = render(SimpleFormat::Json, &keep_all);
    let json_half = render(SimpleFormat::Json, &keep_even);
    let html_all = render(SimpleFormat::TextHtml, &keep_all);
    let html_half = render(SimpleFormat::TextHtml, &keep_even);
    let page = parse_project_page("numpy", &body, None, url).unwrap();
    let existing = |format: SimpleFormat| {
        best(15, || {
            let keep_file = |f: &FileEntry| keep_all(f.version.as_deref().unwrap_or(""));
            let fu = |f: &FileEntry| file_url(&f.url, &f.filename);
            let rw = Rewrite {
                keep_file: &keep_file,
                keep_version: &keep_all,
                file_url: &fu,
            };
            std::hint::black_box(page.render(format, &rw).unwrap());
        })
    };
    let (existing_json, existing_html) = (
        existing(SimpleFormat::Json),
        existing(SimpleFormat::TextHtml),
    );
    println!(
        "numpy JSON fast path ({mb:.1} MB, {} files): advance one call {:.2} ms ({:.0} MB/s) | 64 KiB steps {:.2} ms | 1 KiB steps {:.2} ms | finish+facts {:.2} ms | render JSON all {:.2} ms, every other version removed {:.2} ms | render HTML all {:.2} ms, every other removed {:.2} ms | existing render of the parsed page, same closures, nothing removed: JSON {:.2} ms, HTML {:.2} ms",
        idx.file_count(),
        ms(one),
        mb / one.as_secs_f64(),
        ms(k64),
        ms(k1),
        ms(finish_facts),
        ms(json_all),
        ms(json_half),
        ms(html_all),
        ms(html_half),
        ms(existing_json),
        ms(existing_html),
    );
}
