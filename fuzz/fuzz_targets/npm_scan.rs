//! `npm::PackumentScanner` (the streaming scanner the app runs while a packument arrives)
//! against the reference reader `npm::Packument::parse`. Input:
//! `<selector><chunking seed>\n<packument JSON>`; the seed picks the sizes of the parts the
//! body arrives in, the selector which versions are removed when rendering.
//!
//! Checks: no panic; fed as growing prefixes (as the app feeds it while the body arrives) the
//! scanner learns the same structure as from the whole body; it takes every document the reference
//! reads, and never JSON `serde_json` refuses; `Packument::parse_scanned` gives what
//! `Packument::parse` gives: the same error text, or the same name, versions, dist-tags,
//! times, facts and renderings (full and abbreviated).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::npm::{
    NpmDocError, Packument, PackumentScan, PackumentScanner, RenderOptions, Representation,
};
use pkggate_fuzz::{Rng, fnv, framed, pick};
use std::collections::HashSet;

const BASE: &str = "http://127.0.0.1:8080";

fn outcome(doc: &Result<Packument<'_>, NpmDocError>, sel: u8) -> String {
    let doc = match doc {
        Err(e) => return format!("error: {e}"),
        Ok(d) => d,
    };
    let mut out = format!(
        "{:?} {} {:?} {:?} {:?}\n",
        doc.name(),
        doc.is_abbreviated(),
        doc.created(),
        doc.modified(),
        doc.dist_tags().collect::<Vec<_>>()
    );
    let versions: Vec<&str> = doc.versions().collect();
    out.push_str(&format!("{versions:?}\n"));
    for v in versions.iter().take(4) {
        out.push_str(&format!("{:?}\n", doc.time(v)));
    }
    out.push_str(&format!("{:?}\n", doc.facts().map_err(|e| e.to_string())));
    let removed: HashSet<String> = versions
        .iter()
        .filter(|v| pick(sel, v, 3))
        .map(|v| v.to_string())
        .collect();
    for representation in [Representation::Full, Representation::Abbreviated] {
        let opts = RenderOptions {
            removed: &removed,
            tarball_base: BASE,
            representation,
        };
        out.push_str(&format!(
            "{:?}\n",
            doc.render(&opts).map_err(|e| e.to_string())
        ));
    }
    out
}

fn sizes(seed: &[u8], len: usize) -> Vec<usize> {
    let mut rng = Rng::new(fnv(seed));
    let max = match seed.first() {
        Some(&b) => usize::from(b) * 16 + 1,
        None => 64,
    };
    let mut out = Vec::new();
    let mut total = 0;
    while total < len {
        let n = rng.size(max);
        total += n;
        out.push(n);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let body = f.body;
    let parts = sizes(f.head, body.len());

    let whole = PackumentScanner::scan(body);
    let mut prefixes = PackumentScanner::new();
    let mut end = 0;
    for n in &parts {
        end = (end + n).min(body.len());
        prefixes.feed(&body[..end]);
    }
    let prefixes = prefixes.finish(body);
    let show = |s: &Option<PackumentScan>| format!("{s:?}");
    assert_eq!(show(&prefixes), show(&whole), "fed as prefixes");

    let reference = Packument::parse(body);
    if reference.is_ok() {
        assert!(
            whole.is_some(),
            "the scanner refused a document the reference reads"
        );
    }
    if whole.is_some() {
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
            "the scanner took invalid JSON"
        );
    }
    let scanned = Packument::parse_scanned(body, whole.as_ref());
    assert_eq!(outcome(&scanned, f.sel), outcome(&reference, f.sel));
});
