//! `cargo::parse_index_path` on arbitrary sparse-index paths.
//!
//! Checks: no panic; an accepted path is exactly `index_path(name)` of a valid crate name;
//! every valid name's `index_path` is accepted (lower-cased).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::cargo::{index_path, parse_index_path, valid_name};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = parse_index_path(path) {
        assert!(valid_name(&name), "{path:?} gave invalid name {name:?}");
        assert_eq!(
            index_path(&name),
            path,
            "{path:?} is not the index path of {name:?}"
        );
    }
    // The same bytes read as a crate name.
    if valid_name(path) {
        let p = index_path(path);
        assert_eq!(
            parse_index_path(&p),
            Ok(path.to_ascii_lowercase()),
            "index_path({path:?}) = {p:?}"
        );
    }
});
