//! Timing of the cold page path on the recorded pages (not run by default):
//! `cargo test -p pkggate-formats --release pypi::perf_tests -- --ignored --nocapture`.
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
        println!(
            "{file} ({:.1} MB, {} files): parse {:.2} ms ({:.0} MB/s) | facts {:.2} ms | render JSON {:.2} ms | render HTML {:.2} ms",
            body.len() as f64 / 1e6,
            page.files.len(),
            ms(parse),
            body.len() as f64 / 1e6 / parse.as_secs_f64(),
            ms(facts),
            ms(json),
            ms(html),
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
