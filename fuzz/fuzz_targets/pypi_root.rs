//! `pypi::RootFilter` (streaming `/simple/` HTML root) over arbitrary chunking, and
//! `pypi::filter_root_json`. Input: `<selector><chunk seed>\n<root body>`; the selector picks
//! which project names are blocked.
//!
//! Checks: no panic; the output and counters do not depend on how the body is chunked
//! (bodies up to `MAX_PENDING`); with nothing blocked and nothing malformed the output is the
//! input byte for byte; the output never grows; filtering the output again with the same
//! predicate removes nothing (no blocked link survives or is created by a removal); the same
//! for the JSON root, whose output is valid JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::root::MAX_PENDING;
use pkggate_formats::pypi::{RootFilter, filter_root_json};
use pkggate_fuzz::{Rng, fnv, framed, pick};

fn run(chunks: &[&[u8]], blocked: &dyn Fn(&str) -> bool) -> (Vec<u8>, usize, usize) {
    let mut f = RootFilter::new();
    let mut out = Vec::new();
    for c in chunks {
        f.push(c, &mut out, blocked);
    }
    f.finish(&mut out, blocked);
    (out, f.removed(), f.dropped_malformed())
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
    }

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
