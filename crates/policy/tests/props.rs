//! Property tests: no panics on arbitrary input; allowlisted exact entries always allow
//! unless denylisted or internal.

use pkggate_formats::Ecosystem;
use pkggate_policy::{Action, EvalInput, Fact, Finding, IntelStatus, Policy, VersionFacts};
use proptest::prelude::*;

const RICH: &str = r#"
max_cvss_score: 7
min_package_age_days: 0.5
missing_publish_time: block
require_repository_url: true
deny_lifecycle_scripts: true
unknown_facts: block
internal_namespaces: ["@corp/*", "corp-*"]
min_package_age_exempt: ["*-exempt"]
rule_modes: {block_cvss_score: monitor}
denylist: ["a*b*c*d", "x@<2", "y@^1.2 || >=3", "z@*"]
allowlist: ["w@>=1.0.0", {package: "v", expires: 2026-01-01}]
ecosystems:
  PyPI: {denylist: ["p@>=1,<2", "q@~=1.4"], mode: monitor}
  crates.io: {denylist: ["serde@^1", "t@>=0.1, <0.3"]}
"#;

fn eco() -> impl Strategy<Value = Ecosystem> {
    prop::sample::select(Ecosystem::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn evaluation_never_panics(
        eco in eco(),
        name in "\\PC{0,24}",
        version in prop_oneof!["\\PC{0,24}", "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z0-9.]{1,6})?"],
        now in any::<i64>(),
        published in prop::option::of(any::<i64>()),
        score in prop::option::of(any::<f32>()),
        malicious in any::<bool>(),
        down in any::<bool>(),
        repo in prop_oneof![Just(Fact::Unknown), Just(Fact::Absent), Just(Fact::Present("https://x"))],
    ) {
        let p = Policy::from_yaml(RICH, "rich.yaml").unwrap();
        let findings = [Finding { id: "ID".into(), aliases: vec![], malicious, score }];
        let scripts = ["install".to_string()];
        let intel = if down { IntelStatus::Unavailable { why: "x".into() } } else { IntelStatus::Available };
        let input = EvalInput {
            ecosystem: eco, name: &name, now_unix: now, intel: &intel,
            facts: VersionFacts { version: &version, published_unix: published, repository_url: repo,
                lifecycle_scripts: Fact::Present(&scripts), findings: &findings },
        };
        let d = p.evaluate(&input);
        let e = p.explain(&input);
        prop_assert_eq!((d.action, d.rule, &d.reason), (e.action, e.rule, &e.reason));
        prop_assert!(!d.reason.is_empty());
    }

    #[test]
    fn arbitrary_entries_load_or_fail_cleanly(entry in "\\PC{0,30}", eco in prop::sample::select(vec!["npm", "PyPI", "crates.io"])) {
        let yaml = format!("ecosystems:\n  {eco}:\n    denylist:\n      - {entry:?}\n");
        if let Ok(p) = Policy::from_yaml(&yaml, "p.yaml") {
            let intel = IntelStatus::Available;
            let _ = p.package(Ecosystem::parse_strict(eco).unwrap(), &entry, 0, &intel)
                .evaluate(&VersionFacts { version: "1.0.0", ..Default::default() });
        }
    }

    #[test]
    fn allowlisted_exact_entry_always_allows(
        eco in eco(),
        name in "[a-z][a-z0-9-]{0,12}",
        version in "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        published in prop::option::of(0i64..2_000_000_000),
        malicious in any::<bool>(),
        score in prop::option::of(0f32..10.0),
        down in any::<bool>(),
        mode in prop::sample::select(vec!["enforce", "monitor"]),
    ) {
        let yaml = format!(
            "min_package_age_days: 30\nmissing_publish_time: block\nmax_cvss_score: 0.1\nrequire_repository_url: true\n\
             deny_lifecycle_scripts: true\nunknown_facts: block\nmode: {mode}\nallowlist: [\"{name}@{version}\"]\n\
             denylist: [\"other-denied\"]\ninternal_namespaces: [\"@internal/*\"]\n"
        );
        let p = Policy::from_yaml(&yaml, "p.yaml").unwrap();
        let findings = [Finding { id: "F".into(), aliases: vec![], malicious, score }];
        let intel = if down { IntelStatus::Unavailable { why: "x".into() } } else { IntelStatus::Available };
        let d = p.evaluate(&EvalInput {
            ecosystem: eco, name: &name, now_unix: 1_800_000_000, intel: &intel,
            facts: VersionFacts { version: &version, published_unix: published, repository_url: Fact::Unknown,
                lifecycle_scripts: Fact::Unknown, findings: &findings },
        });
        prop_assert_eq!(d.action, Action::Allow);
        prop_assert_eq!(d.rule, "allowlist");
        prop_assert_eq!(d.reason.to_string(), format!("explicit allowlist entry: {name}@{version}"));

        // ...unless it is also denylisted or internal (enforced).
        if mode == "enforce" {
            let yaml2 = format!("{yaml}ecosystems:\n  {eco}:\n    denylist: [\"{name}\"]\n");
            let p2 = Policy::from_yaml(&yaml2, "p.yaml").unwrap();
            let d2 = p2.evaluate(&EvalInput {
                ecosystem: eco, name: &name, now_unix: 0, intel: &intel,
                facts: VersionFacts { version: &version, ..Default::default() },
            });
            prop_assert_eq!(d2.action, Action::Block);
            prop_assert_eq!(d2.rule, "denylist");
        }
    }
}
