//! `osv::parse_advisory` on arbitrary OSV records (bundle entries come from the network),
//! then matching: `VersionMatcher::affects`, `compile` + `CompiledMatcher::affects`/
//! `affects_keyed`, and `VersionIndex::affected`.
//!
//! Checks: no panic; the stored form (serde JSON) round-trips to an equal `Advisory`; for
//! every version the record names (listed versions, bounds, limits) plus a few probes, the
//! uncompiled, compiled and keyed matchers agree, and the whole-document `VersionIndex`
//! answers exactly the versions `CompiledMatcher::affects` says (as its doc promises);
//! `covers_all_versions` agrees before and after compiling.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::EcoVersion;
use pkggate_formats::osv::{Advisory, VersionIndex, parse_advisory};

const PROBES: [&str; 8] = [
    "0",
    "0.0.0",
    "0.0.0-0",
    "1.0.0",
    "1.0",
    "1.0.0-alpha",
    "2.0.0rc1",
    "999999.0.0",
];

fuzz_target!(|data: &[u8]| {
    let Ok(adv) = parse_advisory("fuzz.json", data) else {
        return;
    };
    let _ = (
        adv.severity.effective_score(),
        adv.severity.is_computed(),
        adv.kind.as_str(),
    );

    let stored = serde_json::to_vec(&adv).expect("serialize advisory");
    let back: Advisory = match serde_json::from_slice(&stored) {
        Ok(a) => a,
        Err(e) => panic!(
            "stored advisory does not load: {e}\n{}",
            String::from_utf8_lossy(&stored)
        ),
    };
    assert_eq!(back, adv, "advisory changes through its stored form");

    for pkg in adv.affected.iter().take(4) {
        let eco = pkg.ecosystem;
        let m = &pkg.matcher;
        let compiled = m.compile(eco);
        assert_eq!(compiled.covers_all_versions(), m.covers_all_versions());

        let mut names: Vec<&str> = PROBES.to_vec();
        names.extend(m.versions.iter().take(16).map(String::as_str));
        for r in m.ranges.iter().take(4) {
            for i in r.intervals.iter().take(4) {
                for b in [&i.introduced, &i.fixed, &i.last_affected]
                    .into_iter()
                    .flatten()
                {
                    names.push(b);
                }
            }
            names.extend(r.limits.iter().take(4).map(String::as_str));
        }
        let parsed: Vec<EcoVersion> = names.iter().map(|v| EcoVersion::parse(eco, v)).collect();
        let mut expected = Vec::new();
        for (i, v) in parsed.iter().enumerate() {
            let c = compiled.affects(v);
            assert_eq!(
                m.affects(eco, v),
                c,
                "affects vs compiled for {:?} ({eco})",
                v.raw()
            );
            let key = v.is_parsed().then(|| v.key());
            assert_eq!(
                compiled.affects_keyed(v, key.as_deref()),
                c,
                "keyed for {:?}",
                v.raw()
            );
            if c {
                expected.push(i as u32);
            }
        }
        let index = VersionIndex::new(eco, &names);
        assert_eq!(index.len(), names.len());
        assert_eq!(
            index.affected(&compiled),
            expected,
            "VersionIndex vs CompiledMatcher ({eco}) over {names:?}"
        );
    }
});
