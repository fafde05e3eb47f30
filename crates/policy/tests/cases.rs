//! Data-driven policy cases: every rule, rule order, per-ecosystem overrides, globs, ranges,
//! expiry, monitor modes, fail_closed and unknown facts, in all three ecosystems.

use pkggate_formats::Ecosystem::{self, CratesIo as C, Npm as N, PyPI as P};
use pkggate_policy::{
    Action, Decision, EvalInput, Fact, Finding, IntelStatus, Outcome, Policy, VersionFacts,
};

/// 2027-01-15T08:00:00Z.
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

const V01: &str = include_str!("fixtures/policy-0.1.yaml");

const EXT: &str = r#"
max_cvss_score: 7
min_package_age_days: 0.5
min_package_age_exempt: ["@corp-tools/*", "trusted-*"]
missing_publish_time: block
require_repository_url: true
deny_lifecycle_scripts: true
unknown_facts: allow
internal_namespaces: ["@corp/*", "corp-*"]
denylist:
  - lodash@<4.17.21
  - {package: "expired-bad", reason: "was bad", expires: "2026-12-31"}
  - {package: "still-bad@*", reason: "bad", expires: "2030-01-01"}
  - "evil-*"
allowlist:
  - {package: "old-ok", reason: "waiver", expires: "2026-12-31"}
  - {package: "waived@^2", reason: "waiver", expires: "2030-01-01T00:00:00Z"}
  - left-pad
  - "@corp/allowed"
ecosystems:
  PyPI:
    denylist: ["django@>=4,<4.2", "Zope.Interface"]
    allowlist: ["Internal_OK@1.0"]
  crates.io:
    denylist: ["serde@^1.0.200", "time@0.3.0"]
    allowlist: ["Serde_JSON"]
    unknown_facts: block
"#;

const MON: &str = r#"
min_package_age_days: 7
deny_lifecycle_scripts: true
rule_modes: {min_package_age_days: monitor}
denylist: ["mon-deny"]
allowlist: ["mon-deny", "allowed-young"]
ecosystems:
  PyPI: {mode: monitor}
  crates.io:
    rule_modes: {denylist: monitor}
    denylist: ["cr-deny"]
"#;

const OVR: &str = r#"
max_cvss_score: 5.0
fail_closed: false
ecosystems:
  crates.io: {max_cvss_score: null, fail_closed: true}
  npm: {block_malicious: false}
"#;

const INTEL_MON: &str = r#"
rule_modes: {intel_unavailable: monitor}
deny_lifecycle_scripts: true
"#;

const NOINTEL: &str = "block_malicious: false\nmax_cvss_score: null\n";

const UNKNOWN_VERSION: &str = r#"
unknown_version: block
denylist: ["denied-whole"]
ecosystems:
  npm: {unknown_version: allow}
  crates.io: {rule_modes: {unknown_version: monitor}}
"#;

const GLOBAL_MON: &str = r#"
mode: monitor
max_cvss_score: 4
denylist: ["bad"]
ecosystems:
  npm:
    mode: enforce
"#;

fn policy(key: &str) -> Policy {
    let text = match key {
        "default" => "",
        "v01" => V01,
        "ext" => EXT,
        "mon" => MON,
        "ovr" => OVR,
        "intel_mon" => INTEL_MON,
        "nointel" => NOINTEL,
        "unknown_version" => UNKNOWN_VERSION,
        "global_mon" => GLOBAL_MON,
        other => panic!("no policy {other}"),
    };
    Policy::from_yaml(text, &format!("{key}.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Clone)]
struct Case {
    line: u32,
    policy: &'static str,
    eco: Ecosystem,
    name: &'static str,
    version: &'static str,
    age_days: Option<f64>,
    repo: Fact<&'static str>,
    scripts: Fact<Vec<String>>,
    findings: Vec<Finding>,
    intel: IntelStatus,
    want: Option<(Action, &'static str, String, Option<String>)>,
}

#[track_caller]
fn c(policy: &'static str, eco: Ecosystem, name: &'static str, version: &'static str) -> Case {
    Case {
        line: std::panic::Location::caller().line(),
        policy,
        eco,
        name,
        version,
        age_days: Some(400.0),
        repo: Fact::Present("https://github.com/o/r"),
        scripts: Fact::Absent,
        findings: Vec::new(),
        intel: IntelStatus::Available,
        want: None,
    }
}

impl Case {
    fn age(mut self, days: Option<f64>) -> Self {
        self.age_days = days;
        self
    }
    fn repo(mut self, f: Fact<&'static str>) -> Self {
        self.repo = f;
        self
    }
    fn scripts(mut self, f: Fact<&[&str]>) -> Self {
        self.scripts = match f {
            Fact::Unknown => Fact::Unknown,
            Fact::Absent => Fact::Absent,
            Fact::Present(s) => Fact::Present(s.iter().map(|x| x.to_string()).collect()),
        };
        self
    }
    fn mal(mut self, id: &str) -> Self {
        self.findings.push(Finding {
            id: id.into(),
            malicious: true,
            ..Default::default()
        });
        self
    }
    fn vuln(mut self, id: &str, score: Option<f32>) -> Self {
        self.findings.push(Finding {
            id: id.into(),
            aliases: vec![format!("CVE-{id}")],
            malicious: false,
            score,
        });
        self
    }
    fn down(mut self) -> Self {
        self.intel = IntelStatus::Unavailable {
            why: "mirror stale".into(),
        };
        self
    }
    fn is(mut self, a: Action, rule: &'static str, reason: &str, source: Option<&str>) -> Self {
        self.want = Some((a, rule, reason.to_string(), source.map(str::to_string)));
        self
    }
    fn allow(self) -> Self {
        self.is(Action::Allow, "default", "no_rule_matched", None)
    }
    fn block(self, rule: &'static str, reason: &str, source: Option<&str>) -> Self {
        self.is(Action::Block, rule, reason, source)
    }
    fn warn(self, rule: &'static str, reason: &str, source: Option<&str>) -> Self {
        self.is(Action::Warn, rule, reason, source)
    }
}

const GH: Fact<&str> = Fact::Present("https://github.com/o/r");

fn cases() -> Vec<Case> {
    use Action::Allow as A;
    vec![
        // ---- defaults (0.1.x): malicious blocks, nothing else ----
        c("default", N, "left-pad", "1.3.0").allow(),
        c("default", N, "x", "1.0.0").mal("MAL-2024-1").block(
            "block_malicious",
            "osv_malicious_advisory",
            Some("MAL-2024-1"),
        ),
        c("default", P, "x", "1.0")
            .vuln("GHSA-1", Some(9.8))
            .allow(),
        c("default", C, "x", "1.0.0")
            .age(Some(0.0))
            .scripts(Fact::Present(&["postinstall"]))
            .repo(Fact::Absent)
            .allow(),
        c("default", N, "x", "1.0.0").down().block(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("default", C, "x", "1.0.0")
            .mal("RUSTSEC-MAL")
            .down()
            .block(
                "intel_unavailable",
                "intel_unavailable",
                Some("mirror stale"),
            ),
        // ---- 0.1.x fixture ----
        c("v01", N, "event-stream", "3.3.6").block(
            "denylist",
            "explicit denylist entry: event-stream@3.3.6",
            Some("event-stream@3.3.6"),
        ),
        c("v01", N, "event-stream", "3.3.5").allow(),
        c("v01", N, "event-stream", "v3.3.6").block(
            "denylist",
            "explicit denylist entry: event-stream@3.3.6",
            Some("event-stream@3.3.6"),
        ),
        c("v01", N, "@evil/pkg", "0.0.1").block(
            "denylist",
            "explicit denylist entry: @evil/pkg",
            Some("@evil/pkg"),
        ),
        c("v01", N, "left-pad", "1.3.0").block(
            "denylist",
            "explicit denylist entry: left-pad",
            Some("left-pad"),
        ),
        c("v01", P, "left-pad", "1.3.0").allow(),
        c("v01", N, "lodash", "4.17.21").mal("MAL-1").is(
            A,
            "allowlist",
            "explicit allowlist entry: lodash@4.17.21",
            Some("lodash@4.17.21"),
        ),
        c("v01", N, "lodash", "4.17.20").mal("MAL-1").block(
            "block_malicious",
            "osv_malicious_advisory",
            Some("MAL-1"),
        ),
        c("v01", N, "@types/node", "20.0.0").age(Some(0.0)).is(
            A,
            "allowlist",
            "explicit allowlist entry: @types/node",
            Some("@types/node"),
        ),
        c("v01", N, "@types/node", "20.0.0").down().is(
            A,
            "allowlist",
            "explicit allowlist entry: @types/node",
            Some("@types/node"),
        ),
        c("v01", P, "Requests", "2.31.0")
            .vuln("PYSEC-1", Some(10.0))
            .is(
                A,
                "allowlist",
                "explicit allowlist entry: requests@*",
                Some("requests@*"),
            ),
        c("v01", P, "django", "4.2").is(
            A,
            "allowlist",
            "explicit allowlist entry: Django@4.2.0",
            Some("Django@4.2.0"),
        ),
        c("v01", P, "django", "4.2.1").age(Some(1.0)).block(
            "min_package_age_days",
            "version published 1d ago, minimum is 3d",
            None,
        ),
        c("v01", P, "zope-interface", "6.0").is(
            A,
            "allowlist",
            "explicit allowlist entry: zope.interface",
            Some("zope.interface"),
        ),
        c("v01", P, "colors", "1.4.1").block(
            "denylist",
            "explicit denylist entry: colors@1.4.1",
            Some("colors@1.4.1"),
        ),
        c("v01", N, "x", "1.0.0")
            .vuln("GHSA-aaaa", Some(7.0))
            .block(
                "block_cvss_score",
                "CVSS score 7.0 meets or exceeds threshold 7.0",
                Some("GHSA-aaaa"),
            ),
        c("v01", N, "x", "1.0.0").vuln("GHSA-a", Some(6.9)).allow(),
        c("v01", N, "x", "1.0.0")
            .vuln("GHSA-a", Some(6.9))
            .vuln("GHSA-b", Some(9.8))
            .vuln("GHSA-c", Some(8.0))
            .block(
                "block_cvss_score",
                "CVSS score 9.8 meets or exceeds threshold 7.0",
                Some("GHSA-b"),
            ),
        c("v01", N, "x", "1.0.0").vuln("GHSA-a", None).allow(),
        c("v01", P, "x", "1.0").vuln("PYSEC-2", Some(8.8)).allow(),
        c("v01", P, "x", "1.0").vuln("PYSEC-2", Some(9.1)).block(
            "block_cvss_score",
            "CVSS score 9.1 meets or exceeds threshold 9.0",
            Some("PYSEC-2"),
        ),
        c("v01", N, "x", "1.0.0")
            .mal("MAL-9")
            .vuln("GHSA-z", Some(9.9))
            .block("block_malicious", "osv_malicious_advisory", Some("MAL-9")),
        c("v01", N, "x", "1.0.0").age(Some(6.99)).block(
            "min_package_age_days",
            "version published 6d ago, minimum is 7d",
            None,
        ),
        c("v01", N, "x", "1.0.0").age(Some(7.0)).allow(),
        c("v01", C, "x", "1.0.0").age(Some(2.5)).block(
            "min_package_age_days",
            "version published 2d ago, minimum is 3d",
            None,
        ),
        c("v01", C, "x", "1.0.0").age(None).allow(),
        c("v01", N, "x", "1.0.0")
            .scripts(Fact::Present(&["postinstall"]))
            .block(
                "deny_lifecycle_scripts",
                "declares lifecycle scripts: ['postinstall']",
                None,
            ),
        c("v01", N, "x", "1.0.0")
            .scripts(Fact::Present(&["preinstall", "install"]))
            .block(
                "deny_lifecycle_scripts",
                "declares lifecycle scripts: ['preinstall', 'install']",
                None,
            ),
        c("v01", N, "x", "1.0.0").scripts(Fact::Unknown).allow(),
        c("v01", N, "x", "1.0.0")
            .scripts(Fact::Present(&[]))
            .allow(),
        c("v01", P, "x", "1.0")
            .scripts(Fact::Present(&["install"]))
            .allow(),
        c("v01", N, "x", "1.0.0")
            .age(Some(1.0))
            .scripts(Fact::Present(&["install"]))
            .block(
                "min_package_age_days",
                "version published 1d ago, minimum is 7d",
                None,
            ),
        c("v01", N, "x", "1.0.0").down().block(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("v01", N, "event-stream", "3.3.6").down().block(
            "denylist",
            "explicit denylist entry: event-stream@3.3.6",
            Some("event-stream@3.3.6"),
        ),
        // ---- extensions: internal namespaces, globs, ranges, expiry ----
        c("ext", N, "@corp/widget", "1.0.0").block(
            "internal_namespace",
            "internal namespace: @corp/*",
            Some("@corp/*"),
        ),
        c("ext", N, "@corp/allowed", "1.0.0").block(
            "internal_namespace",
            "internal namespace: @corp/*",
            Some("@corp/*"),
        ),
        c("ext", P, "Corp_Utils", "1.0").block(
            "internal_namespace",
            "internal namespace: corp-*",
            Some("corp-*"),
        ),
        c("ext", C, "corp_core", "0.1.0").block(
            "internal_namespace",
            "internal namespace: corp-*",
            Some("corp-*"),
        ),
        c("ext", N, "@corporate/x", "1.0.0").allow(),
        c("ext", N, "lodash", "4.17.20").block(
            "denylist",
            "explicit denylist entry: lodash@<4.17.21",
            Some("lodash@<4.17.21"),
        ),
        c("ext", N, "lodash", "4.17.21-rc.1").block(
            "denylist",
            "explicit denylist entry: lodash@<4.17.21",
            Some("lodash@<4.17.21"),
        ),
        c("ext", N, "lodash", "4.17.21").allow(),
        c("ext", N, "lodash", "not-a-version").allow(),
        c("ext", P, "lodash", "4.17.20").block(
            "denylist",
            "explicit denylist entry: lodash@<4.17.21",
            Some("lodash@<4.17.21"),
        ),
        c("ext", C, "lodash", "4.17.21").allow(),
        c("ext", N, "evil-thing", "1.0.0").block(
            "denylist",
            "explicit denylist entry: evil-*",
            Some("evil-*"),
        ),
        c("ext", P, "Evil_Thing", "1.0").block(
            "denylist",
            "explicit denylist entry: evil-*",
            Some("evil-*"),
        ),
        c("ext", N, "expired-bad", "1.0.0").allow(),
        c("ext", N, "still-bad", "1.0.0").block(
            "denylist",
            "explicit denylist entry: still-bad@*",
            Some("still-bad@*"),
        ),
        c("ext", N, "old-ok", "1.0.0").age(Some(0.1)).block(
            "min_package_age_days",
            "version published 0d ago, minimum is 0.5d",
            None,
        ),
        c("ext", N, "waived", "2.3.0").age(Some(0.1)).is(
            A,
            "allowlist",
            "explicit allowlist entry: waived@^2",
            Some("waived@^2"),
        ),
        c("ext", N, "waived", "3.0.0").age(Some(0.1)).block(
            "min_package_age_days",
            "version published 0d ago, minimum is 0.5d",
            None,
        ),
        c("ext", N, "left-pad", "9.9.9").repo(Fact::Absent).is(
            A,
            "allowlist",
            "explicit allowlist entry: left-pad",
            Some("left-pad"),
        ),
        c("ext", P, "django", "4.1.7").block(
            "denylist",
            "explicit denylist entry: django@>=4,<4.2",
            Some("django@>=4,<4.2"),
        ),
        c("ext", P, "Django", "4.2").allow(),
        c("ext", P, "django", "3.2.20").allow(),
        c("ext", N, "django", "4.1.7").allow(),
        c("ext", P, "zope_interface", "5.0").block(
            "denylist",
            "explicit denylist entry: Zope.Interface",
            Some("Zope.Interface"),
        ),
        c("ext", P, "internal-ok", "1.0.0").age(None).is(
            A,
            "allowlist",
            "explicit allowlist entry: Internal_OK@1.0",
            Some("Internal_OK@1.0"),
        ),
        c("ext", P, "internal-ok", "1.0.1").age(None).block(
            "min_package_age_days",
            "publish time unknown, minimum is 0.5d",
            None,
        ),
        c("ext", C, "serde", "1.0.210").block(
            "denylist",
            "explicit denylist entry: serde@^1.0.200",
            Some("serde@^1.0.200"),
        ),
        c("ext", C, "serde", "1.0.199").allow(),
        c("ext", C, "serde", "2.0.0").allow(),
        c("ext", C, "time", "0.3.0").block(
            "denylist",
            "explicit denylist entry: time@0.3.0",
            Some("time@0.3.0"),
        ),
        c("ext", C, "time", "0.3.1").allow(),
        c("ext", C, "serde-json", "1.0.0").repo(Fact::Unknown).is(
            A,
            "allowlist",
            "explicit allowlist entry: Serde_JSON",
            Some("Serde_JSON"),
        ),
        c("ext", N, "serde", "1.0.210").allow(),
        c("ext", N, "x", "1.0.0").age(Some(0.49)).block(
            "min_package_age_days",
            "version published 0d ago, minimum is 0.5d",
            None,
        ),
        c("ext", N, "x", "1.0.0").age(Some(0.51)).allow(),
        c("ext", N, "trusted-lib", "1.0.0").age(Some(0.0)).allow(),
        c("ext", N, "@corp-tools/cli", "1.0.0").age(None).allow(),
        c("ext", N, "x", "1.0.0").age(None).block(
            "min_package_age_days",
            "publish time unknown, minimum is 0.5d",
            None,
        ),
        c("ext", N, "x", "1.0.0").repo(Fact::Absent).block(
            "require_repository_url",
            "missing_repository_url",
            None,
        ),
        c("ext", N, "x", "1.0.0").repo(Fact::Present("  ")).block(
            "require_repository_url",
            "missing_repository_url",
            None,
        ),
        c("ext", N, "x", "1.0.0").repo(Fact::Unknown).allow(),
        c("ext", N, "x", "1.0.0").scripts(Fact::Unknown).allow(),
        c("ext", C, "x", "1.0.0").repo(Fact::Unknown).block(
            "require_repository_url",
            "repository_url_unknown",
            None,
        ),
        c("ext", C, "x", "1.0.0").scripts(Fact::Unknown).block(
            "deny_lifecycle_scripts",
            "lifecycle_scripts_unknown",
            None,
        ),
        c("ext", C, "x", "1.0.0")
            .repo(GH)
            .scripts(Fact::Absent)
            .allow(),
        c("ext", N, "x", "1.0.0")
            .repo(Fact::Absent)
            .scripts(Fact::Present(&["install"]))
            .block("require_repository_url", "missing_repository_url", None),
        c("ext", P, "x", "1.0").vuln("GHSA-m", Some(4.0)).allow(),
        c("ext", P, "x", "1.0").vuln("GHSA-m", Some(7.5)).block(
            "block_cvss_score",
            "CVSS score 7.5 meets or exceeds threshold 7.0",
            Some("GHSA-m"),
        ),
        // ---- monitor modes ----
        c("mon", N, "x", "1.0.0").age(Some(1.0)).warn(
            "min_package_age_days",
            "version published 1d ago, minimum is 7d",
            None,
        ),
        c("mon", N, "x", "1.0.0")
            .age(Some(1.0))
            .scripts(Fact::Present(&["install"]))
            .block(
                "deny_lifecycle_scripts",
                "declares lifecycle scripts: ['install']",
                None,
            ),
        c("mon", N, "x", "1.0.0").allow(),
        c("mon", N, "mon-deny", "1.0.0").block(
            "denylist",
            "explicit denylist entry: mon-deny",
            Some("mon-deny"),
        ),
        c("mon", N, "allowed-young", "1.0.0").age(Some(0.0)).is(
            A,
            "allowlist",
            "explicit allowlist entry: allowed-young",
            Some("allowed-young"),
        ),
        c("mon", P, "mon-deny", "1.0").warn(
            "denylist",
            "explicit denylist entry: mon-deny",
            Some("mon-deny"),
        ),
        c("mon", P, "x", "1.0")
            .mal("MAL-P")
            .scripts(Fact::Present(&["install"]))
            .warn("block_malicious", "osv_malicious_advisory", Some("MAL-P")),
        c("mon", P, "x", "1.0").down().warn(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("mon", C, "cr-deny", "1.0.0").warn(
            "denylist",
            "explicit denylist entry: cr-deny",
            Some("cr-deny"),
        ),
        c("mon", C, "cr-deny", "1.0.0").mal("RUSTSEC-X").block(
            "block_malicious",
            "osv_malicious_advisory",
            Some("RUSTSEC-X"),
        ),
        c("mon", C, "mon-deny", "1.0.0").warn(
            "denylist",
            "explicit denylist entry: mon-deny",
            Some("mon-deny"),
        ),
        c("mon", C, "x", "1.0.0").age(Some(2.0)).warn(
            "min_package_age_days",
            "version published 2d ago, minimum is 7d",
            None,
        ),
        c("global_mon", P, "bad", "1.0")
            .vuln("GHSA-g", Some(5.0))
            .warn("denylist", "explicit denylist entry: bad", Some("bad")),
        c("global_mon", C, "x", "1.0.0")
            .vuln("GHSA-g", Some(5.0))
            .warn(
                "block_cvss_score",
                "CVSS score 5.0 meets or exceeds threshold 4.0",
                Some("GHSA-g"),
            ),
        c("global_mon", N, "bad", "1.0.0").block(
            "denylist",
            "explicit denylist entry: bad",
            Some("bad"),
        ),
        c("global_mon", N, "x", "1.0.0")
            .vuln("GHSA-g", Some(4.0))
            .block(
                "block_cvss_score",
                "CVSS score 4.0 meets or exceeds threshold 4.0",
                Some("GHSA-g"),
            ),
        // ---- per-ecosystem overrides and fail_closed ----
        c("ovr", C, "x", "1.0.0")
            .vuln("RUSTSEC-1", Some(9.8))
            .allow(),
        c("ovr", P, "x", "1.0").vuln("PYSEC-5", Some(5.0)).block(
            "block_cvss_score",
            "CVSS score 5.0 meets or exceeds threshold 5.0",
            Some("PYSEC-5"),
        ),
        c("ovr", P, "x", "1.0").vuln("PYSEC-5", Some(6.1)).block(
            "block_cvss_score",
            "CVSS score 6.1 meets or exceeds threshold 5.0",
            Some("PYSEC-5"),
        ),
        c("ovr", N, "x", "1.0.0").mal("MAL-N").allow(),
        c("ovr", N, "x", "1.0.0")
            .mal("MAL-N")
            .vuln("GHSA-n", Some(6.0))
            .block(
                "block_cvss_score",
                "CVSS score 6.0 meets or exceeds threshold 5.0",
                Some("GHSA-n"),
            ),
        c("ovr", C, "x", "1.0.0").down().block(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("ovr", P, "x", "1.0").down().mal("MAL-P").allow(),
        c("ovr", N, "x", "1.0.0")
            .down()
            .vuln("GHSA-n", Some(9.0))
            .allow(),
        c("intel_mon", N, "x", "1.0.0").down().warn(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("intel_mon", N, "x", "1.0.0").down().mal("MAL-1").warn(
            "intel_unavailable",
            "intel_unavailable",
            Some("mirror stale"),
        ),
        c("intel_mon", N, "x", "1.0.0")
            .down()
            .scripts(Fact::Present(&["postinstall"]))
            .block(
                "deny_lifecycle_scripts",
                "declares lifecycle scripts: ['postinstall']",
                None,
            ),
        c("nointel", N, "x", "1.0.0").down().mal("MAL-1").allow(),
        // ---- unknown_version: the caller passes "" for a file whose version it cannot tell ----
        c("default", P, "x", "").allow(),
        c("unknown_version", P, "x", "").block(
            "unknown_version",
            "version unknown: the filename does not tell it",
            None,
        ),
        c("unknown_version", P, "x", "1.0").allow(),
        c("unknown_version", N, "x", "").allow(),
        c("unknown_version", C, "x", "").warn(
            "unknown_version",
            "version unknown: the filename does not tell it",
            None,
        ),
        // Earlier rules still decide first: the denylist, then a malicious advisory.
        c("unknown_version", P, "denied-whole", "").block(
            "denylist",
            "explicit denylist entry: denied-whole",
            Some("denied-whole"),
        ),
        c("unknown_version", P, "x", "").mal("MAL-9").block(
            "block_malicious",
            "osv_malicious_advisory",
            Some("MAL-9"),
        ),
        c("nointel", P, "x", "1.0")
            .vuln("GHSA-1", Some(10.0))
            .allow(),
    ]
}

fn run(case: &Case, pol: &Policy, explain: bool) -> Decision {
    let scripts: Fact<&[String]> = match &case.scripts {
        Fact::Unknown => Fact::Unknown,
        Fact::Absent => Fact::Absent,
        Fact::Present(v) => Fact::Present(v.as_slice()),
    };
    let input = EvalInput {
        ecosystem: case.eco,
        name: case.name,
        now_unix: NOW,
        intel: &case.intel,
        facts: VersionFacts {
            version: case.version,
            published_unix: case.age_days.map(|d| NOW - (d * DAY as f64) as i64),
            repository_url: case.repo,
            lifecycle_scripts: scripts,
            findings: &case.findings,
        },
    };
    if explain {
        pol.explain(&input)
    } else {
        pol.evaluate(&input)
    }
}

#[test]
fn policy_case_table() {
    let all = cases();
    assert!(all.len() >= 80, "only {} cases", all.len());
    let mut failures = Vec::new();
    for case in &all {
        let pol = policy(case.policy);
        let (action, rule, reason, source) = case.want.clone().expect("case without expectation");
        let d = run(case, &pol, false);
        let got = (d.action, d.rule, d.reason.to_string(), d.source.clone());
        if got != (action, rule, reason.clone(), source.clone()) {
            failures.push(format!(
                "line {}: {} {} {}@{}: want {:?} {} {:?} {:?}, got {:?} {} {:?} {:?}",
                case.line,
                case.policy,
                case.eco,
                case.name,
                case.version,
                action,
                rule,
                reason,
                source,
                got.0,
                got.1,
                got.2,
                got.3
            ));
        }
        assert!(d.trace.is_empty(), "evaluate builds no trace");
        // explain decides the same and records the deciding rule.
        let e = run(case, &pol, true);
        assert_eq!(
            (e.action, e.rule, &e.reason, &e.source),
            (d.action, d.rule, &d.reason, &d.source),
            "line {}",
            case.line
        );
        assert!(!e.trace.is_empty(), "line {}", case.line);
        if d.action != Action::Warn {
            let last = e.trace.last().unwrap();
            assert_eq!(
                (last.rule, last.outcome),
                (d.rule, Outcome::Matched),
                "line {}: {:?}",
                case.line,
                e.trace
            );
        } else {
            assert!(
                e.trace
                    .iter()
                    .any(|s| s.rule == d.rule && s.outcome == Outcome::Monitored),
                "line {}",
                case.line
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_ecosystem_and_rule_is_covered() {
    let all = cases();
    for eco in Ecosystem::ALL {
        assert!(all.iter().filter(|c| c.eco == eco).count() >= 15, "{eco}");
    }
    for rule in pkggate_policy::Rule::ALL {
        assert!(
            all.iter()
                .any(|c| c.want.as_ref().unwrap().1 == rule.as_str()),
            "no case decided by {}",
            rule.as_str()
        );
    }
    for a in [Action::Allow, Action::Block, Action::Warn] {
        assert!(all.iter().any(|c| c.want.as_ref().unwrap().0 == a));
    }
}
