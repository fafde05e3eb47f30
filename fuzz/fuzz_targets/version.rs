//! `EcoVersion::parse` in each ecosystem. Input: `<ecosystem selector>a\nb\nc` (three
//! version strings).
//!
//! Checks: no panic; `compare` is antisymmetric and transitive over the three; two parsed
//! versions compare equal exactly when their `key`s are equal (the promise `key` makes);
//! a parsed version's key parses again to an equal version with the same key; `matches_exact`
//! is symmetric and reflexive.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::version::MAX_VERSION_LEN;
use pkggate_formats::{EcoVersion, Ecosystem};
use pkggate_fuzz::selector;
use std::cmp::Ordering;

fuzz_target!(|data: &[u8]| {
    let (sel, body) = selector(data);
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let eco = Ecosystem::ALL[usize::from(sel) % 3];
    let raws: Vec<&str> = text.splitn(3, '\n').collect();
    let vs: Vec<EcoVersion> = raws.iter().map(|r| EcoVersion::parse(eco, r)).collect();
    for v in &vs {
        let _ = (v.is_prerelease(), v.to_string(), format!("{v:?}"));
        assert!(v.matches_exact(v));
        let key = v.key();
        if v.is_parsed() {
            assert_eq!(
                v.compare(v),
                Some(Ordering::Equal),
                "{:?} not equal to itself",
                v.raw()
            );
            if key.len() <= MAX_VERSION_LEN {
                let k = EcoVersion::parse(eco, &key);
                assert!(
                    k.is_parsed(),
                    "key {key:?} of {:?} does not parse ({eco})",
                    v.raw()
                );
                assert_eq!(
                    k.compare(v),
                    Some(Ordering::Equal),
                    "key {key:?} != {:?} ({eco})",
                    v.raw()
                );
                assert_eq!(k.key(), key, "key of key differs ({eco})");
            }
        } else {
            assert_eq!(v.compare(v), None);
        }
    }
    for a in &vs {
        for b in &vs {
            assert_eq!(a.matches_exact(b), b.matches_exact(a));
            let ab = a.compare(b);
            assert_eq!(
                ab,
                b.compare(a).map(Ordering::reverse),
                "antisymmetry {:?} {:?}",
                a.raw(),
                b.raw()
            );
            if let Some(o) = ab {
                assert_eq!(
                    o == Ordering::Equal,
                    a.key() == b.key(),
                    "{:?} vs {:?} ({eco}): compare says {o:?}, keys {:?} / {:?}",
                    a.raw(),
                    b.raw(),
                    a.key(),
                    b.key()
                );
            }
            for c in &vs {
                if let (Some(x), Some(y)) = (ab, b.compare(c))
                    && x == y
                    && x != Ordering::Equal
                {
                    assert_eq!(
                        a.compare(c),
                        Some(x),
                        "transitivity {:?} {:?} {:?}",
                        a.raw(),
                        b.raw(),
                        c.raw()
                    );
                }
            }
        }
    }
});
