//! `pypi::RootFilter` (streaming `/simple/` HTML root) over arbitrary chunking, and
//! `pypi::filter_root_json`. Input: `<selector><chunk seed>\n<root body>`; the selector picks
//! which project names are blocked.
//!
//! Checks: no panic; the output and counters do not depend on how the body is chunked
//! (bodies up to `MAX_PENDING`); with nothing blocked and nothing malformed the output is the
//! input byte for byte; the output never grows; filtering the output again with the same
//! predicate removes nothing (no blocked link survives or is created by a removal); the same
//! for the JSON root, whose output is valid JSON. With links to the upstream root rewritten:
//! the same removals, chunking-independent, no growth. The JSON root written as HTML reads
//! back through the HTML filter without a malformed element.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::root::MAX_PENDING;
use pkggate_formats::pypi::{RootFilter, filter_root_json, root_json_to_html};
use pkggate_fuzz::{Rng, fnv, framed, pick};

/// Upstream root forms whose links the rewriting filter makes relative.
const PREFIXES: [&str; 2] = ["https://up.example/r/simple/", "/r/simple/"];

fn run(chunks: &[&[u8]], blocked: &dyn Fn(&str) -> bool) -> (Vec<u8>, usize, usize) {
    run_with(chunks, blocked, false).0
}

/// (output, removed, malformed), and the links rewritten.
fn run_with(
    chunks: &[&[u8]],
    blocked: &dyn Fn(&str) -> bool,
    rewrite: bool,
) -> ((Vec<u8>, usize, usize), usize) {
    let mut f = RootFilter::new();
    if rewrite {
        f = f.rewriting(PREFIXES.iter().map(|p| p.to_string()).collect());
    }
    let mut out = Vec::new();
    for c in chunks {
        f.push(c, &mut out, blocked);
    }
    f.finish(&mut out, blocked);
    ((out, f.removed(), f.dropped_malformed()), f.rewritten())
}

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let body = f.body;
    let seed = f.sel;
    let blocked = |name: &str| pick(seed, name, 3);
    let never = |_: &str| false;

    let whole = run(&[body], &blocked);
    assert!(whole.0.len() <= body.len(), "output grew");

    if body.len() <= MAX_PENDING {
        let mut rng = Rng::new(fnv(f.head));
        let max_chunk = 1 + (rng.next() % 64) as usize;
        let mut chunks = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = rng.size(max_chunk).min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        let chunked = run(&chunks, &blocked);
        assert_eq!(
            (String::from_utf8_lossy(&chunked.0), chunked.1, chunked.2),
            (String::from_utf8_lossy(&whole.0), whole.1, whole.2),
            "chunked ({max_chunk}) vs whole differ"
        );
        // Rewriting links does not depend on chunking either.
        let a = run_with(&chunks, &blocked, true);
        let b = run_with(&[body], &blocked, true);
        assert_eq!(a, b, "rewriting: chunked ({max_chunk}) vs whole differ");
    }

    // Rewriting links to the upstream root removes and drops the same elements, never
    // grows the output, and nothing of it is blocked when filtered again.
    let (rw, rewritten) = run_with(&[body], &blocked, true);
    assert_eq!(
        (rw.1, rw.2),
        (whole.1, whole.2),
        "rewriting changed what was removed"
    );
    assert!(rw.0.len() <= whole.0.len(), "rewriting grew the output");
    if rewritten == 0 {
        assert_eq!(rw.0, whole.0, "nothing rewritten, yet the output differs");
    }
    assert_eq!(
        run(&[&rw.0], &blocked).1,
        0,
        "a blocked link survived rewriting"
    );

    let open = run(&[body], &never);
    assert_eq!(open.1, 0);
    if open.2 == 0 {
        assert!(
            open.0 == body,
            "nothing blocked, nothing malformed, yet the output differs"
        );
    }

    let again = run(&[&whole.0], &blocked);
    assert_eq!(
        again.1,
        0,
        "a blocked link survived filtering:\n{}",
        String::from_utf8_lossy(&whole.0)
    );

    // The JSON root written as HTML: the HTML filter reads back every link, malformed none,
    // and finds nothing blocked.
    if let Ok((html, removed)) = root_json_to_html(body, blocked) {
        let back = run(&[html.as_bytes()], &blocked);
        assert_eq!((back.1, back.2), (0, 0), "{html}");
        let (_, removed_json) = filter_root_json(body, blocked).expect("the same root as JSON");
        assert_eq!(removed, removed_json);
    }

    if let Ok((json, removed)) = filter_root_json(body, blocked) {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&json) {
            panic!("filtered JSON root is not JSON ({e}): {json}");
        }
        let _ = removed;
        match filter_root_json(json.as_bytes(), blocked) {
            Ok((json2, removed2)) => {
                assert_eq!(removed2, 0, "a blocked project survived JSON filtering");
                assert_eq!(json2, json);
            }
            Err(e) => panic!("filtered JSON root does not filter again: {e}"),
        }
    }
});
