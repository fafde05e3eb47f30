//! Inputs and outputs of evaluation.

use serde::Serialize;
use std::borrow::Cow;

/// What happens to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Serve it.
    Allow,
    /// Refuse it (HTTP 403 / removed from metadata).
    Block,
    /// Serve it, but a rule in `monitor` mode would have blocked it: the caller logs it.
    Warn,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
            Action::Warn => "warn",
        }
    }
}

/// Whether a blocking rule blocks (`enforce`) or only reports (`monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

/// What a rule decides when the fact it needs is unknown
/// (`unknown_facts`, `missing_publish_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    #[default]
    Allow,
    Block,
}

/// A fact about a version that the caller may or may not know.
///
/// `Unknown`: the caller could not learn it (an abbreviated npm document, a cache miss).
/// `Absent`: known not to exist. `Present(x)`: known, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fact<T> {
    #[default]
    Unknown,
    Absent,
    Present(T),
}

/// Whether threat intelligence could be consulted for this decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IntelStatus {
    #[default]
    Available,
    /// Never loaded, stale beyond `max_intel_age`, a failing live lookup…; `why` is shown as
    /// the decision's `source` when `fail_closed` blocks.
    Unavailable { why: String },
}

/// One advisory that affects the version being decided (already matched by the caller;
/// withdrawn advisories already dropped).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Finding {
    /// The advisory id (`MAL-2024-1234`, `GHSA-…`, `CVE-…`, `PYSEC-…`, `RUSTSEC-…`); it becomes
    /// the decision's `source`.
    pub id: String,
    pub aliases: Vec<String>,
    /// A malicious-package report (`MAL-*`).
    pub malicious: bool,
    /// The score compared with `max_cvss_score` (computed CVSS, or the label mapping of the
    /// formats crate); `None` or NaN never meets a threshold.
    pub score: Option<f32>,
}

/// The facts about one version of a package.
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionFacts<'a> {
    /// The version as the registry spells it.
    pub version: &'a str,
    /// Publish time, seconds since the Unix epoch; `None` when unknown.
    pub published_unix: Option<i64>,
    /// The declared source repository URL (an empty or blank URL counts as absent).
    pub repository_url: Fact<&'a str>,
    /// The lifecycle scripts the version declares (npm `preinstall`, `install`,
    /// `postinstall`; see [`crate::lifecycle_scripts`]). `Present(&[])` counts as absent.
    pub lifecycle_scripts: Fact<&'a [String]>,
    /// Advisories affecting this version.
    pub findings: &'a [Finding],
}

/// Everything one decision needs.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub ecosystem: pkggate_formats::Ecosystem,
    pub name: &'a str,
    /// The current time, seconds since the Unix epoch (the policy never reads a clock).
    pub now_unix: i64,
    pub intel: &'a IntelStatus,
    pub facts: VersionFacts<'a>,
}

/// The rules, in evaluation order. `Rule::as_str` is the `rule` field of decisions and audit
/// lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "&'static str")]
pub enum Rule {
    InternalNamespace,
    Denylist,
    Allowlist,
    IntelUnavailable,
    BlockMalicious,
    BlockCvssScore,
    UnknownVersion,
    MinPackageAgeDays,
    RequireRepositoryUrl,
    DenyLifecycleScripts,
    Default,
}

impl From<Rule> for &'static str {
    fn from(r: Rule) -> &'static str {
        r.as_str()
    }
}

impl Rule {
    /// Every rule, in evaluation order.
    pub const ALL: [Rule; 11] = [
        Rule::InternalNamespace,
        Rule::Denylist,
        Rule::Allowlist,
        Rule::IntelUnavailable,
        Rule::BlockMalicious,
        Rule::BlockCvssScore,
        Rule::UnknownVersion,
        Rule::MinPackageAgeDays,
        Rule::RequireRepositoryUrl,
        Rule::DenyLifecycleScripts,
        Rule::Default,
    ];

    /// The rules that can block, hence can be put in `monitor` mode through `rule_modes`.
    pub const BLOCKING: [Rule; 9] = [
        Rule::InternalNamespace,
        Rule::Denylist,
        Rule::IntelUnavailable,
        Rule::BlockMalicious,
        Rule::BlockCvssScore,
        Rule::UnknownVersion,
        Rule::MinPackageAgeDays,
        Rule::RequireRepositoryUrl,
        Rule::DenyLifecycleScripts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::InternalNamespace => "internal_namespace",
            Rule::Denylist => "denylist",
            Rule::Allowlist => "allowlist",
            Rule::IntelUnavailable => "intel_unavailable",
            Rule::BlockMalicious => "block_malicious",
            Rule::BlockCvssScore => "block_cvss_score",
            Rule::UnknownVersion => "unknown_version",
            Rule::MinPackageAgeDays => "min_package_age_days",
            Rule::RequireRepositoryUrl => "require_repository_url",
            Rule::DenyLifecycleScripts => "deny_lifecycle_scripts",
            Rule::Default => "default",
        }
    }

    /// The blocking rule named `s` (as in `rule_modes`).
    pub fn blocking_from_str(s: &str) -> Option<Rule> {
        Rule::BLOCKING.into_iter().find(|r| r.as_str() == s)
    }

    pub(crate) fn mode_index(self) -> Option<usize> {
        Rule::BLOCKING.iter().position(|r| *r == self)
    }
}

/// How a consulted rule came out, in a [`TraceStep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The rule decided (block, or allow for `allowlist` / `default`).
    Matched,
    /// The rule applied and did not fire.
    NotMatched,
    /// The rule did not apply (disabled, exempt, expired entry, facts unknown and allowed…).
    Skipped,
    /// The rule would have blocked but is in `monitor` mode; evaluation went on.
    Monitored,
}

/// One rule consulted during an explained evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    pub rule: &'static str,
    pub outcome: Outcome,
    /// Human-readable why.
    pub detail: String,
}

/// The outcome of evaluating one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub action: Action,
    /// The deciding rule ([`Rule::as_str`]); for `warn`, the first monitored rule.
    pub rule: &'static str,
    /// The reason string (0.1.x wording for 0.1.x rules).
    pub reason: Cow<'static, str>,
    /// The advisory id for intel rules, the entry for list rules, the pattern for
    /// `internal_namespace`, the unavailability cause for `intel_unavailable`.
    pub source: Option<String>,
    /// Every rule consulted, in order; empty unless the decision came from an `explain` call.
    pub trace: Vec<TraceStep>,
}

impl Decision {
    pub fn is_blocked(&self) -> bool {
        self.action == Action::Block
    }
}

/// npm lifecycle scripts that run on install, in the order they run.
pub const NPM_INSTALL_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// The install-time lifecycle scripts among a manifest's `scripts` keys, in
/// [`NPM_INSTALL_SCRIPTS`] order, to pass as [`VersionFacts::lifecycle_scripts`].
pub fn lifecycle_scripts<'a>(script_names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = script_names.into_iter().collect();
    NPM_INSTALL_SCRIPTS
        .iter()
        .filter(|s| names.contains(s))
        .map(|s| (*s).to_string())
        .collect()
}
