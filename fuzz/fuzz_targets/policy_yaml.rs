//! `pkggate_policy::Policy::from_yaml` on arbitrary policy files (user input), then a few
//! decisions with the loaded policy.
//!
//! Checks: no panic (also no stack overflow on deep nesting); errors format; a loaded policy
//! answers its accessors, and `evaluate` and `explain` reach the same decision (action,
//! rule, reason, source) for a handful of packages, versions and intel states, as do
//! `evaluate_many` and `package(...).evaluate`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::Ecosystem;
use pkggate_policy::{EvalInput, Fact, Finding, IntelStatus, Policy, VersionFacts};

const NAMES: [(Ecosystem, &str); 4] = [
    (Ecosystem::Npm, "@corp/internal"),
    (Ecosystem::Npm, "left-pad"),
    (Ecosystem::PyPI, "Django_Extra"),
    (Ecosystem::CratesIo, "serde_json"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::from_yaml(text, "policy.yaml") {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (
        policy.revision(),
        policy.warnings(),
        policy.expiring_entries(),
    );
    let _ = policy.expired_entries(1_700_000_000);
    for eco in Ecosystem::ALL {
        let _ = (policy.settings(eco), policy.needs(eco));
    }

    let scripts = vec!["postinstall".to_string()];
    let findings = [Finding {
        id: "GHSA-xxxx".into(),
        aliases: vec!["CVE-1".into()],
        malicious: false,
        score: Some(7.5),
    }];
    let facts = [
        VersionFacts {
            version: "1.0.0",
            published_unix: Some(1_699_990_000),
            repository_url: Fact::Present("https://github.com/x/y"),
            lifecycle_scripts: Fact::Present(&scripts),
            findings: &findings,
        },
        VersionFacts {
            version: "2.0.0-beta.1",
            published_unix: None,
            repository_url: Fact::Unknown,
            lifecycle_scripts: Fact::Absent,
            findings: &[],
        },
    ];
    let intels = [
        IntelStatus::Available,
        IntelStatus::Unavailable {
            why: "stale".into(),
        },
    ];
    for (eco, name) in NAMES {
        for intel in &intels {
            let many = policy.evaluate_many(eco, name, 1_700_000_000, intel, &facts);
            let pkg = policy.package(eco, name, 1_700_000_000, intel);
            for (f, m) in facts.iter().zip(&many) {
                let input = EvalInput {
                    ecosystem: eco,
                    name,
                    now_unix: 1_700_000_000,
                    intel,
                    facts: *f,
                };
                let e = policy.evaluate(&input);
                let x = policy.explain(&input);
                let p = pkg.evaluate(f);
                let key = |d: &pkggate_policy::Decision| {
                    (d.action, d.rule, d.reason.to_string(), d.source.clone())
                };
                assert_eq!(
                    key(&e),
                    key(&x),
                    "evaluate vs explain for {name} {}",
                    f.version
                );
                assert_eq!(key(&e), key(m), "evaluate vs evaluate_many");
                assert_eq!(key(&e), key(&p), "evaluate vs package().evaluate");
                assert!(!x.trace.is_empty(), "explain without a trace");
            }
        }
    }
});
