//! `cargo::IndexScanner` (the index gate's incremental reader) on arbitrary bodies cut into
//! arbitrary chunks. Input: `<chunking seed><index file>`.
//!
//! Checks: no panic; the summary does not depend on how the body was cut (same as
//! `summarize_index` on the whole body) and the scanner hands back exactly the bytes it was
//! given; entries are in bounds, ordered and cover whole lines; every entry that the full
//! reader (`parse_index`) reads has the same range, `vers` and `pubtime`; the full reader of
//! an entry's line (`IndexSummary::fields`, used by downloads) agrees with `parse_index`;
//! a rendering without removals, when `renders_unchanged` says so, is the body itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::cargo::{IndexScanner, parse_index, summarize_index};
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let mut scanner = IndexScanner::with_capacity(0);
    let mut at = 0;
    let mut step = usize::from(seed % 13) + 1;
    while at < body.len() {
        let end = (at + step).min(body.len());
        scanner.push(&body[at..end]);
        at = end;
        step = (step * 7 + usize::from(seed)) % 17 + 1;
    }
    let (bytes, summary) = scanner.finish();
    assert!(bytes == body, "the scanner changed the body");
    assert_eq!(summary, summarize_index(body), "result depends on the chunking");

    let mut prev_end = 0;
    for e in &summary.entries {
        assert!(prev_end <= e.start && e.start < e.end && e.end <= body.len(), "bad range");
        assert!(e.start == 0 || body[e.start - 1] == b'\n', "entry does not start a line");
        assert!(e.end == body.len() || body[e.end - 1] == b'\n', "entry does not end a line");
        prev_end = e.end;
        let _ = e.published_unix();
    }
    let full = parse_index(body);
    for l in &full.lines {
        // Every line the full reader reads is an entry, identical where it matters.
        let e = summary
            .entries
            .iter()
            .find(|e| e.start == l.start)
            .unwrap_or_else(|| panic!("line at {} read in full but not scanned", l.start));
        assert_eq!((e.end, &e.vers, &e.pubtime), (l.end, &l.vers, &l.pubtime));
        let f = summary.fields(body, e).expect("fields of a readable line");
        assert_eq!((&f.vers, &f.cksum, f.yanked), (&l.vers, &l.cksum, l.yanked));
    }
    let none = HashSet::new();
    if summary.renders_unchanged(body, &none) {
        assert!(summary.render(body, &none) == body, "unchanged rendering differs");
    }
});
