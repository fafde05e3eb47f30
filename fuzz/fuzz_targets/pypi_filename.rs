//! `pypi::parse_filename` on arbitrary (project, filename) pairs. Input: `<any byte><project>\n<filename>`.
//!
//! Checks: no panic; the version found is a substring of the filename (never invented);
//! the project compares in PEP 503 form (any spelling of it gives the same answer).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::ecosystem::pep503_normalize;
use pkggate_formats::pypi::parse_filename;
use pkggate_fuzz::framed;

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let (Ok(project), Ok(filename)) = (std::str::from_utf8(f.head), std::str::from_utf8(f.body))
    else {
        return;
    };
    let parsed = parse_filename(project, filename);
    if let Some(v) = &parsed.version {
        assert!(!v.is_empty());
        assert!(
            filename.contains(v.as_str()),
            "version {v:?} not in {filename:?}"
        );
    }
    let normal = pep503_normalize(project);
    assert_eq!(
        parse_filename(&normal, filename),
        parsed,
        "{project:?} and its normal form {normal:?} disagree on {filename:?}"
    );
    let upper = project.to_ascii_uppercase();
    if pep503_normalize(&upper) == normal {
        assert_eq!(parse_filename(&upper, filename), parsed);
    }
});
