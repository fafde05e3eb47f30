//! Policy evaluation for pkggate: pure, deterministic, no IO, no clock (callers pass `now`).
//!
//! # API
//!
//! * [`Policy::from_yaml`]`(text, file_name) -> Result<Policy, PolicyError>` — load and
//!   validate a policy file; errors read `file:line:column: message`.
//! * [`Policy::default`] — the 0.1.x defaults (what an empty file means).
//! * [`Policy::evaluate`]`(&EvalInput) -> Decision` — decide one version (no trace).
//! * [`Policy::explain`]`(&EvalInput) -> Decision` — same decision, with `trace` filled.
//! * [`Policy::package`]`(eco, name, now_unix, &IntelStatus) -> PackagePolicy` — resolve
//!   names, list entries and expiry once for a package; then
//!   [`PackagePolicy::evaluate`]`(&VersionFacts)` / [`PackagePolicy::explain`] per version.
//!   This is the path for a 3,000-version document.
//! * [`Policy::evaluate_many`] — `package` + `evaluate` over a slice of versions.
//! * [`Policy::revision`] — stable id of the file bytes (16 hex digits of SHA-256).
//! * [`Policy::settings`]`(eco) -> &EcoSettings` — effective scalars per ecosystem
//!   (`fail_closed`, `max_intel_age_secs`, …); [`Policy::rule_mode`]; [`Policy::needs`] tells
//!   the caller which facts (publish time, repository, scripts, intel) the rules use.
//! * [`Policy::expired_entries`]`(now_unix)` / [`Policy::expiring_entries`] — time-limited
//!   list entries; [`Policy::warnings`] — non-fatal load notes.
//!
//! # The file (`config/policy.yaml`)
//!
//! Every key is optional; 0.1.x files load unchanged and mean the same.
//!
//! ```yaml
//! fail_closed: true            # intel unavailable + an intel rule on → block `intel_unavailable`
//! block_malicious: true
//! max_cvss_score: null         # a number 0–10 turns on block_cvss_score
//! min_package_age_days: 0      # fractions allowed (0.5 = 12 h); 0 disables
//! min_package_age_exempt: []   # names / globs the age rule skips
//! missing_publish_time: allow  # allow | block: a version without a publish time
//! require_repository_url: false
//! deny_lifecycle_scripts: false
//! unknown_facts: allow         # allow | block: repository/scripts rule when the fact is unknown
//! unknown_version: allow       # allow | block: a file whose version its name does not tell (PyPI)
//! unknown_file_hash: allow     # allow | block: an artifact the index gives no digest for
//!                              #   (allow: served unverified and audited; read by the caller)
//! internal_namespaces: []      # names / globs never served from a public upstream
//! mode: enforce                # enforce | monitor
//! rule_modes: {}               # e.g. {min_package_age_days: monitor}
//! max_intel_age: 48h           # read by the caller (Policy::settings); `48h`, `30m`, `2d`, seconds
//! allowlist: []
//! denylist: []
//! ecosystems:                  # keys exactly `npm`, `PyPI`, `crates.io`
//!   npm: {min_package_age_days: 3}
//! ```
//!
//! Under `ecosystems.<eco>` every key above except `ecosystems` may appear: scalars (and
//! `mode`) override the top-level value, lists add to the top-level lists, `rule_modes`
//! merges key by key. `null` for a scalar means "not set" (inherit), except `max_cvss_score`
//! where `null` disables the rule (0.1.x's default), also per ecosystem. Unknown keys,
//! wrong types, unknown ecosystems (`pypi` → "did you mean `PyPI`?"), unknown rule names,
//! out-of-range numbers, bad dates and bad ranges are errors with line and column.
//!
//! ## List entries
//!
//! `allowlist` / `denylist` items are strings or maps `{package, reason, expires}`:
//!
//! * `name` or `name@*`: every version. The name splits from the version at the first `@`
//!   after position 0 (`@scope/name@1.0.0`).
//! * `name@<version>`: a text that parses as one version in the ecosystem's rules is an exact
//!   version (equal as a string or in the ecosystem's order: PyPI `1.0` = `1.0.0`), in every
//!   ecosystem — cargo's `serde@1.0.100` means exactly 1.0.100, not `^1.0.100`.
//! * `name@<range>`: otherwise a range in the ecosystem's syntax: npm (`<4.17.21`, `4`,
//!   `^1 || ^2`), PEP 440 specifiers (`>=4,<4.2`, `~=1.4`), cargo requirements (`^1`,
//!   `>=1, <1.5`). npm and cargo ranges include prereleases by order (node-semver
//!   `includePrerelease`: `<2.0.0` covers `2.0.0-beta`, `^1` does not cover `2.0.0-alpha`);
//!   PEP 440 specifiers follow PEP 440. A version that does not parse in its ecosystem's rules
//!   matches only `*` and exact entries with the same text. A plain token that is neither a
//!   version nor a range (`foo@latest`) is an exact string, as 0.1.x compared it.
//! * Top-level entries apply to every ecosystem, compiled in each one's syntax; one whose
//!   version parses in none is an error, one that parses only in some applies only there
//!   (see [`Policy::warnings`]).
//! * Names compare in each ecosystem's normal form on both sides
//!   ([`Ecosystem::normalize_name`]: npm exact, PyPI PEP 503, crates.io lower case with
//!   `-` = `_`). A `*` in the name is a glob matching any run of characters (including `/`
//!   and none): `@corp/*`, `corp-*`. No other glob syntax.
//! * `expires: YYYY-MM-DD` is the last day (UTC) the entry applies; `YYYY-MM-DDTHH:MM:SSZ`
//!   an exact instant. An expired entry is ignored; `explain` notes it in the trace.
//!
//! # Evaluation
//!
//! Rule order, first enforced decision wins:
//! `internal_namespace` → `denylist` → `allowlist` → (`intel_unavailable`) → `block_malicious`
//! → `block_cvss_score` → `unknown_version` → `min_package_age_days` → `require_repository_url` →
//! `deny_lifecycle_scripts` → `default` (allow, `no_rule_matched`).
//!
//! * `internal_namespace`: the caller evaluates only what comes from a public upstream; a
//!   name matching `internal_namespaces` is blocked (reason `internal namespace: <pattern>`).
//! * `intel_unavailable` applies only when `block_malicious` or `max_cvss_score` is on and
//!   the caller says [`IntelStatus::Unavailable`]: `fail_closed: true` blocks (reason
//!   `intel_unavailable`, source the cause); `false` skips both intel rules (trace notes it).
//! * `block_malicious`: any finding with `malicious` → `osv_malicious_advisory`, source its id.
//! * `block_cvss_score`: the highest finding score ≥ threshold (tolerance 1e-4 for f32
//!   rounding) → `CVSS score <x.x> meets or exceeds threshold <t.t>`, source its id.
//! * `unknown_version`: the version is `""` (the caller could not determine it, e.g. a PyPI
//!   filename that does not parse): `unknown_version: block` blocks (reason `version unknown:
//!   the filename does not tell it`); `allow` skips. List entries for every version and
//!   advisories covering every version already applied above.
//! * `min_package_age_days`: blocks while `now - published < days · 86400` →
//!   `version published <n>d ago, minimum is <m>d`, `n` the whole days floored (as Python's
//!   `timedelta.days`, so a publish time in the future reads `-1d`), `m` as configured (`7`,
//!   `0.5`). Exempt names skip it. No publish time: `missing_publish_time` decides (block →
//!   `publish time unknown, minimum is <m>d`).
//! * `require_repository_url`: absent or blank URL → `missing_repository_url`; unknown →
//!   `unknown_facts` (block → `repository_url_unknown`).
//! * `deny_lifecycle_scripts`: scripts present → `declares lifecycle scripts: ['postinstall']`
//!   (Python list repr of the names given); unknown → `unknown_facts` (block →
//!   `lifecycle_scripts_unknown`).
//! * Monitor: a blocking rule whose mode is `monitor` (from `rule_modes`, merged per
//!   ecosystem, else `mode`, per ecosystem then global) does not block; evaluation goes on.
//!   A later enforced block still blocks; otherwise the result is [`Action::Warn`] with the
//!   first monitored rule's rule, reason and source (also when the allowlist then matches:
//!   an enforcing policy would have blocked).

mod entry;
mod error;
mod eval;
mod load;
mod model;

pub use entry::glob_match;
pub use error::PolicyError;
pub use eval::PackagePolicy;
pub use load::ListEntryInfo;
pub use model::{
    Action, Decision, EvalInput, Fact, Finding, IntelStatus, Mode, NPM_INSTALL_SCRIPTS, OnUnknown,
    Outcome, Rule, TraceStep, VersionFacts, lifecycle_scripts,
};

use load::{EcoPolicy, eco_index};
use pkggate_formats::Ecosystem;
use sha2::{Digest, Sha256};

/// The effective scalar settings of one ecosystem (top level overlaid with its block).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EcoSettings {
    pub fail_closed: bool,
    pub block_malicious: bool,
    pub max_cvss_score: Option<f64>,
    pub min_package_age_days: f64,
    pub missing_publish_time: OnUnknown,
    pub require_repository_url: bool,
    pub deny_lifecycle_scripts: bool,
    pub unknown_facts: OnUnknown,
    /// A file whose version cannot be determined (the caller passes version `""`).
    pub unknown_version: OnUnknown,
    /// An artifact whose digest the index does not give: serve it unverified (and audit
    /// it) or refuse it. Read by the caller at the artifact gate (not a per-version rule).
    pub unknown_file_hash: OnUnknown,
    pub mode: Mode,
    /// `max_intel_age` in seconds: intel older than this should be reported to the policy as
    /// [`IntelStatus::Unavailable`]. `None`: not set (the caller's default applies).
    pub max_intel_age_secs: Option<u64>,
}

impl Default for EcoSettings {
    /// The 0.1.x defaults.
    fn default() -> Self {
        EcoSettings {
            fail_closed: true,
            block_malicious: true,
            max_cvss_score: None,
            min_package_age_days: 0.0,
            missing_publish_time: OnUnknown::Allow,
            require_repository_url: false,
            deny_lifecycle_scripts: false,
            unknown_facts: OnUnknown::Allow,
            unknown_version: OnUnknown::Allow,
            unknown_file_hash: OnUnknown::Allow,
            mode: Mode::Enforce,
            max_intel_age_secs: None,
        }
    }
}

/// Which facts the enabled rules of one ecosystem use, so the caller fetches only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct FactNeeds {
    pub intel: bool,
    pub publish_time: bool,
    pub repository_url: bool,
    pub lifecycle_scripts: bool,
}

/// A loaded, validated and compiled policy. Cheap to share (`Arc<Policy>`); immutable.
#[derive(Debug, Clone)]
pub struct Policy {
    revision: String,
    ecos: [EcoPolicy; 3],
    expiring: Vec<ListEntryInfo>,
    warnings: Vec<String>,
}

pub(crate) fn revision_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..8])
}

impl Default for Policy {
    /// The 0.1.x defaults; the revision is that of an empty file.
    fn default() -> Self {
        Policy {
            revision: revision_of(b""),
            ecos: std::array::from_fn(|_| EcoPolicy::new(EcoSettings::default())),
            expiring: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Policy {
    /// Parse, validate and compile a policy file. `file_name` only labels errors.
    pub fn from_yaml(text: &str, file_name: &str) -> Result<Policy, PolicyError> {
        load::load(text, file_name)
    }

    /// A stable id of the file's bytes: the first 16 hex digits of its SHA-256.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Effective settings for `eco`.
    pub fn settings(&self, eco: Ecosystem) -> &EcoSettings {
        &self.ecos[eco_index(eco)].settings
    }

    /// The effective mode of `rule` in `eco` (`Enforce` for non-blocking rules).
    pub fn rule_mode(&self, eco: Ecosystem, rule: Rule) -> Mode {
        self.ecos[eco_index(eco)].mode(rule)
    }

    /// The facts the enabled rules of `eco` use.
    pub fn needs(&self, eco: Ecosystem) -> FactNeeds {
        let s = self.settings(eco);
        FactNeeds {
            intel: s.block_malicious || s.max_cvss_score.is_some(),
            publish_time: s.min_package_age_days > 0.0,
            repository_url: s.require_repository_url,
            lifecycle_scripts: s.deny_lifecycle_scripts,
        }
    }

    /// Non-fatal notes from loading (top-level list entries whose range applies only to some
    /// ecosystems), each `file:line:column: …`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every list entry that has an `expires` date, in file order.
    pub fn expiring_entries(&self) -> &[ListEntryInfo] {
        &self.expiring
    }

    /// The list entries that have expired at `now_unix` (no longer applied).
    pub fn expired_entries(&self, now_unix: i64) -> Vec<&ListEntryInfo> {
        self.expiring
            .iter()
            .filter(|e| now_unix >= e.expires_unix)
            .collect()
    }

    /// Whether any rule that names packages — an internal namespace or a denylist entry
    /// (live or expired, any version) — matches `name` in `eco`. `false` means only
    /// intelligence findings can block the package: a cheap pre-check for callers deciding
    /// many names (the PyPI root index lists about a million).
    pub fn lists_may_name(&self, eco: Ecosystem, name: &str) -> bool {
        let pol = &self.ecos[eco_index(eco)];
        if pol.internal.is_empty() && pol.deny.is_empty() {
            return false;
        }
        let norm = eco.normalize_name(name);
        pol.internal.iter().any(|p| p.matches(&norm))
            || pol.deny.iter().any(|e| e.name.matches(&norm))
    }

    /// The policy as it applies to one package at `now_unix` with this intel state.
    pub fn package<'a>(
        &'a self,
        eco: Ecosystem,
        name: &str,
        now_unix: i64,
        intel: &'a IntelStatus,
    ) -> PackagePolicy<'a> {
        PackagePolicy::new(eco, &self.ecos[eco_index(eco)], name, now_unix, intel)
    }

    /// Decide one version (no trace).
    pub fn evaluate(&self, input: &EvalInput<'_>) -> Decision {
        self.package(input.ecosystem, input.name, input.now_unix, input.intel)
            .evaluate(&input.facts)
    }

    /// Decide one version with the full trace (for the explanation endpoint).
    pub fn explain(&self, input: &EvalInput<'_>) -> Decision {
        self.package(input.ecosystem, input.name, input.now_unix, input.intel)
            .explain(&input.facts)
    }

    /// Decide many versions of one package (one decision per element, same order).
    pub fn evaluate_many(
        &self,
        eco: Ecosystem,
        name: &str,
        now_unix: i64,
        intel: &IntelStatus,
        versions: &[VersionFacts<'_>],
    ) -> Vec<Decision> {
        let p = self.package(eco, name, now_unix, intel);
        versions.iter().map(|v| p.evaluate(v)).collect()
    }
}
