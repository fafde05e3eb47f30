//! Strict validation: every error names the file, line and column and quotes the input.

use pkggate_formats::Ecosystem;
use pkggate_policy::{Mode, OnUnknown, Policy, Rule};

#[track_caller]
fn err(yaml: &str, line: u32, column: u32, needle: &str) {
    let e = Policy::from_yaml(yaml, "config/policy.yaml").expect_err(yaml);
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("config/policy.yaml", Some(line), Some(column)),
        "{e}"
    );
    assert!(
        e.message.contains(needle),
        "message {:?} lacks {needle:?}",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("config/policy.yaml:{line}:{column}: ")),
        "{shown}"
    );
    assert!(!shown.contains('\n'), "one line: {shown}");
}

#[test]
fn unknown_ecosystem_suggests_the_right_spelling() {
    err(
        "ecosystems:\n  pypi:\n    max_cvss_score: 5\n",
        2,
        3,
        "unknown ecosystem `pypi`; did you mean `PyPI`?",
    );
    err(
        "ecosystems:\n  npm: {}\n  crates-io: {}\n",
        3,
        3,
        "unknown ecosystem `crates-io`; did you mean `crates.io`?",
    );
    err("ecosystems:\n  NPM: {}\n", 2, 3, "did you mean `npm`?");
    let e = Policy::from_yaml("ecosystems:\n  npm: {}\n  maven: {}\n", "p.yaml").unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(3)));
    assert!(
        e.message.contains("unknown ecosystem `maven`") && !e.message.contains("did you mean"),
        "{e}"
    );
}

#[test]
fn wrong_types_and_unknown_keys() {
    err("fail_closed: 3\n", 1, 14, "invalid boolean");
    err(
        "fail_closed: true\nbogus: 1\n",
        2,
        1,
        "unknown field `bogus`",
    );
    err(
        "ecosystems:\n  npm:\n    nope: false\n",
        3,
        5,
        "unknown field `nope`",
    );
    err("max_cvss_score: high\n", 1, 17, "max_cvss_score: high");
    err("allowlist: lodash\n", 1, 12, "allowlist: lodash");
    err("ecosystems: []\n", 1, 13, "ecosystems: []");
    err("- a\n- b\n", 1, 1, "- a");
    err("mode: monitr\n", 1, 7, "monitr");
    err("unknown_facts: maybe\n", 1, 16, "maybe");
    err("fail_closed: true\nfail_closed: false\n", 2, 1, "duplicate");
    err("allowlist: [a, b\n", 1, 12, "allowlist: [a, b");
    err(
        "ecosystems:\n  npm:\n    ecosystems: {}\n",
        3,
        17,
        "only allowed at the top level",
    );
}

#[test]
fn out_of_range_values() {
    err("max_cvss_score: 11\n", 1, 17, "got `11`");
    err(
        "ecosystems:\n  PyPI:\n    max_cvss_score: -0.5\n",
        3,
        21,
        "got `-0.5`",
    );
    err("min_package_age_days: -1\n", 1, 23, "got `-1`");
    err("max_intel_age: 48x\n", 1, 16, "`48x`");
    err("max_intel_age: 0\n", 1, 16, "greater than zero");
    err(
        "rule_modes:\n  min_age: monitor\n",
        2,
        3,
        "unknown rule `min_age`",
    );
    err(
        "rule_modes: {allowlist: monitor}\n",
        1,
        14,
        "unknown rule `allowlist`",
    );
}

#[test]
fn bad_list_entries() {
    err(
        "denylist:\n  - \"lodash@>=banana\"\n",
        2,
        5,
        "`lodash@>=banana`",
    );
    err(
        "ecosystems:\n  crates.io:\n    allowlist: [\"serde@^x\"]\n",
        3,
        17,
        "`serde@^x`",
    );
    err(
        "ecosystems:\n  PyPI:\n    denylist:\n      - django@>=4,<<4.2\n",
        4,
        9,
        "django@>=4,<<4.2",
    );
    err(
        "denylist:\n  - {package: x, expires: \"2026-13-40\"}\n",
        2,
        5,
        "`2026-13-40`",
    );
    err(
        "denylist:\n  - {package: x, expires: \"soon\"}\n",
        2,
        5,
        "`soon`",
    );
    err(
        "allowlist:\n  - {package: x, reasn: y}\n",
        2,
        5,
        "unknown key `reasn`",
    );
    err(
        "allowlist:\n  - {reason: y}\n",
        2,
        5,
        "needs a `package` key",
    );
    err("denylist: [\"@\"]\n", 1, 12, "empty package name");
    err("denylist: [\"x@\"]\n", 1, 12, "`x@`");
    err(
        "internal_namespaces: [\"@corp/x@1\"]\n",
        1,
        23,
        "`@corp/x@1`",
    );
    err(
        "min_package_age_exempt: [\"\"]\n",
        1,
        26,
        "min_package_age_exempt",
    );
}

#[test]
fn partial_ranges_warn_and_apply_where_they_parse() {
    let p = Policy::from_yaml(
        "denylist: [\"foo@~=1.4\", \"baz@>=4,<4.2\", \"ok@<2\"]\n",
        "p.yaml",
    )
    .unwrap();
    assert_eq!(p.warnings().len(), 2, "{:?}", p.warnings());
    assert!(
        p.warnings()[0]
            .starts_with("p.yaml:1:12: top-level denylist entry `foo@~=1.4` applies only to PyPI"),
        "{:?}",
        p.warnings()
    );
}

#[test]
fn empty_and_null_documents_mean_the_defaults() {
    for text in [
        "",
        "# nothing\n",
        "~\n",
        "ecosystems:\n  PyPI: ~\n",
        "allowlist: ~\nmin_package_age_days: ~\n",
    ] {
        let p = Policy::from_yaml(text, "p.yaml").unwrap_or_else(|e| panic!("{text:?}: {e}"));
        for eco in Ecosystem::ALL {
            assert_eq!(p.settings(eco), Policy::default().settings(eco), "{text:?}");
        }
    }
    let d = Policy::default().settings(Ecosystem::Npm).clone();
    assert!(
        d.fail_closed
            && d.block_malicious
            && !d.require_repository_url
            && !d.deny_lifecycle_scripts
    );
    assert_eq!(
        (d.max_cvss_score, d.min_package_age_days, d.mode),
        (None, 0.0, Mode::Enforce)
    );
    assert_eq!(
        (d.missing_publish_time, d.unknown_facts),
        (OnUnknown::Allow, OnUnknown::Allow)
    );
}

#[test]
fn merges_scalars_lists_and_modes_per_ecosystem() {
    let p = Policy::from_yaml(
        "fail_closed: yes\nmax_cvss_score: 7\nmax_intel_age: 48h\nmode: monitor\nrule_modes: {denylist: enforce}\n\
         ecosystems:\n  npm: {max_cvss_score: null, fail_closed: false, max_intel_age: 3600, mode: enforce}\n  \
         crates.io: {rule_modes: {denylist: monitor, block_malicious: enforce}}\n",
        "p.yaml",
    )
    .unwrap();
    let (n, py, c) = (Ecosystem::Npm, Ecosystem::PyPI, Ecosystem::CratesIo);
    assert_eq!(p.settings(n).max_cvss_score, None);
    assert_eq!(p.settings(py).max_cvss_score, Some(7.0));
    assert!(!p.settings(n).fail_closed && p.settings(py).fail_closed);
    assert_eq!(p.settings(n).max_intel_age_secs, Some(3600));
    assert_eq!(p.settings(c).max_intel_age_secs, Some(172_800));
    assert_eq!(p.rule_mode(n, Rule::MinPackageAgeDays), Mode::Enforce);
    assert_eq!(p.rule_mode(py, Rule::MinPackageAgeDays), Mode::Monitor);
    assert_eq!(p.rule_mode(py, Rule::Denylist), Mode::Enforce);
    assert_eq!(p.rule_mode(c, Rule::Denylist), Mode::Monitor);
    assert_eq!(p.rule_mode(c, Rule::BlockMalicious), Mode::Enforce);
    assert_eq!(p.rule_mode(c, Rule::BlockCvssScore), Mode::Monitor);
    assert!(!p.needs(n).intel || p.settings(n).block_malicious);
    assert!(!p.needs(py).publish_time);
}

#[test]
fn the_0_1_x_fixture_loads_and_means_the_same() {
    let p = Policy::from_yaml(
        include_str!("fixtures/policy-0.1.yaml"),
        "config/policy.yaml",
    )
    .unwrap();
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let (n, py, c) = (Ecosystem::Npm, Ecosystem::PyPI, Ecosystem::CratesIo);
    assert_eq!(p.settings(n).min_package_age_days, 7.0);
    assert_eq!(p.settings(py).min_package_age_days, 3.0);
    assert_eq!(p.settings(c).min_package_age_days, 3.0);
    assert_eq!(p.settings(py).max_cvss_score, Some(9.0));
    assert_eq!(p.settings(n).max_cvss_score, Some(7.0));
    assert!(!p.settings(py).deny_lifecycle_scripts && p.settings(n).deny_lifecycle_scripts);
    let needs = p.needs(n);
    assert!(needs.intel && needs.publish_time && needs.lifecycle_scripts && !needs.repository_url);
}

#[test]
fn revision_is_a_stable_hash_of_the_bytes() {
    let a = Policy::from_yaml("fail_closed: true\n", "a").unwrap();
    let b = Policy::from_yaml("fail_closed: true\n", "b").unwrap();
    let c = Policy::from_yaml("fail_closed: true \n", "a").unwrap();
    assert_eq!(a.revision(), b.revision());
    assert_ne!(a.revision(), c.revision());
    assert_eq!(a.revision().len(), 16);
    assert!(a.revision().bytes().all(|x| x.is_ascii_hexdigit()));
    assert_eq!(
        Policy::default().revision(),
        Policy::from_yaml("", "x").unwrap().revision()
    );
    // SHA-256("") starts e3b0c442 98fc1c14.
    assert_eq!(Policy::default().revision(), "e3b0c44298fc1c14");
}
