//! `pypi::negotiate` (the `Accept` header) and `SimpleFormat::from_media_type` (upstream
//! `Content-Type`, `?format=`) on arbitrary header values.
//!
//! Checks: no panic; the chosen format's own `Content-Type` negotiates to itself and maps
//! back through `from_media_type`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::{SimpleFormat, negotiate};

fuzz_target!(|data: &[u8]| {
    let Ok(accept) = std::str::from_utf8(data) else {
        return;
    };
    let chosen = negotiate(Some(accept));
    assert!(SimpleFormat::ALL.contains(&chosen));
    let ct = chosen.content_type();
    assert_eq!(
        negotiate(Some(ct)),
        chosen,
        "{ct:?} does not negotiate to itself"
    );
    assert_eq!(SimpleFormat::from_media_type(ct), Some(chosen));
    if let Some(f) = SimpleFormat::from_media_type(accept) {
        assert!(SimpleFormat::ALL.contains(&f));
    }
});
