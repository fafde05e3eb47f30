//! Loading, validating and compiling the policy file.

use crate::entry::{
    NamePattern, VersionMatcher, compile_version, parse_duration, parse_expiry, split_entry,
};
use crate::error::PolicyError;
use crate::model::{Mode, OnUnknown, Rule};
use crate::{EcoSettings, Policy};
use pkggate_formats::Ecosystem;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::fmt;
use std::sync::Arc;

// ---------- raw shapes ----------

/// One settings block: the top level or an `ecosystems.<name>` block (where `ecosystems`
/// itself is refused after parsing).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    fail_closed: Option<bool>,
    #[serde(default)]
    block_malicious: Option<bool>,
    /// Absent → inherit; `null` → disabled (0.1.x default); a number → threshold.
    #[serde(default, deserialize_with = "nullable")]
    max_cvss_score: Option<Option<Spanned<f64>>>,
    #[serde(default)]
    min_package_age_days: Option<Spanned<f64>>,
    #[serde(default)]
    min_package_age_exempt: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    missing_publish_time: Option<OnUnknown>,
    #[serde(default)]
    require_repository_url: Option<bool>,
    #[serde(default)]
    deny_lifecycle_scripts: Option<bool>,
    #[serde(default)]
    unknown_facts: Option<OnUnknown>,
    #[serde(default)]
    unknown_version: Option<OnUnknown>,
    #[serde(default)]
    unknown_file_hash: Option<OnUnknown>,
    #[serde(default)]
    allowlist: Option<Vec<Spanned<RawEntry>>>,
    #[serde(default)]
    denylist: Option<Vec<Spanned<RawEntry>>>,
    #[serde(default)]
    internal_namespaces: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    rule_modes: Option<RuleModes>,
    #[serde(default)]
    max_intel_age: Option<Spanned<RawDuration>>,
    #[serde(default)]
    ecosystems: Option<Spanned<RawEcosystems>>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A list entry: `"name@range"` or `{package, reason, expires}`.
enum RawEntry {
    Plain(String),
    Object {
        package: Option<String>,
        reason: Option<String>,
        expires: Option<String>,
        unknown: Vec<String>,
    },
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a package entry string or a map with `package`, `reason`, `expires`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::Plain(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawEntry, E> {
                Ok(RawEntry::Plain(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawEntry, A::Error> {
                let (mut package, mut reason, mut expires, mut unknown) =
                    (None, None, None, Vec::new());
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "package" => package = Some(m.next_value::<String>()?),
                        "reason" => reason = Some(m.next_value::<String>()?),
                        "expires" => expires = Some(m.next_value::<String>()?),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                            unknown.push(k);
                        }
                    }
                }
                Ok(RawEntry::Object {
                    package,
                    reason,
                    expires,
                    unknown,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `max_intel_age`: seconds as an integer, or a duration string.
enum RawDuration {
    Seconds(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `48h` or a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                u64::try_from(v)
                    .map(RawDuration::Seconds)
                    .map_err(|_| E::custom(format!("negative duration `{v}`")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `rule_modes:` — keys kept with their positions, checked after parsing.
struct RuleModes(Vec<(Spanned<String>, Mode)>);

impl<'de> Deserialize<'de> for RuleModes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleModes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from rule name to `enforce` or `monitor`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RuleModes, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    out.push((k, m.next_value::<Mode>()?));
                }
                Ok(RuleModes(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `ecosystems:` — keys checked with `Ecosystem::parse_strict`; an unknown key's value is
/// skipped so the error names the key, not its contents.
struct RawEcosystems(Vec<(Spanned<String>, Option<RawSettings>)>);

impl<'de> Deserialize<'de> for RawEcosystems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEcosystems;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from ecosystem (npm, PyPI, crates.io) to settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawEcosystems, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    if Ecosystem::parse_strict(&k.value).is_ok() {
                        let v = m.next_value::<Option<RawSettings>>()?;
                        out.push((k, v));
                    } else {
                        m.next_value::<IgnoredAny>()?;
                        out.push((k, None));
                    }
                }
                Ok(RawEcosystems(out))
            }
        }
        d.deserialize_map(V)
    }
}

// ---------- compiled shapes ----------

/// One list entry compiled for one ecosystem.
#[derive(Debug, Clone)]
pub(crate) struct CompiledEntry {
    /// `name.text` is the whole entry as written (`lodash@<4.17.21`).
    pub name: NamePattern,
    pub version: VersionMatcher,
    pub expires_at: Option<i64>,
    pub expires_text: Option<Arc<str>>,
    pub reason: Option<Arc<str>>,
}

/// Everything evaluation needs for one ecosystem, merged and compiled once at load.
#[derive(Debug, Clone)]
pub(crate) struct EcoPolicy {
    pub settings: EcoSettings,
    pub modes: [Mode; Rule::BLOCKING.len()],
    pub internal: Vec<NamePattern>,
    pub exempt: Vec<NamePattern>,
    pub deny: Vec<CompiledEntry>,
    pub allow: Vec<CompiledEntry>,
}

impl EcoPolicy {
    pub fn new(settings: EcoSettings) -> EcoPolicy {
        EcoPolicy {
            modes: [settings.mode; Rule::BLOCKING.len()],
            settings,
            internal: Vec::new(),
            exempt: Vec::new(),
            deny: Vec::new(),
            allow: Vec::new(),
        }
    }

    pub fn mode(&self, rule: Rule) -> Mode {
        rule.mode_index().map_or(Mode::Enforce, |i| self.modes[i])
    }
}

/// An `allowlist` / `denylist` entry with an `expires` date, as [`Policy::expired_entries`]
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListEntryInfo {
    /// `allowlist` or `denylist`.
    pub list: &'static str,
    /// The ecosystem block it is under; `None` for a top-level list.
    pub ecosystem: Option<Ecosystem>,
    /// The `package` text as written.
    pub entry: String,
    pub reason: Option<String>,
    /// The `expires` text as written.
    pub expires: String,
    /// When it stops applying (Unix seconds).
    pub expires_unix: i64,
    pub line: u32,
    pub column: u32,
}

// ---------- loading ----------

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

fn line_col(loc: &Location) -> (Option<u32>, Option<u32>) {
    if loc.line() == 0 {
        (None, None)
    } else {
        (
            u32::try_from(loc.line()).ok(),
            u32::try_from(loc.column()).ok(),
        )
    }
}

impl Ctx<'_> {
    fn err(&self, loc: &Location, message: impl Into<String>) -> PolicyError {
        let (line, column) = line_col(loc);
        PolicyError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn yaml_err(&self, e: &serde_saphyr::Error) -> PolicyError {
        let loc = e.location();
        let mut message = e.without_snippet().to_string();
        if let Some(l) = &loc {
            let suffix = format!(" at line {}, column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
            // Name the offending line: serde-saphyr's type errors ("invalid boolean") do not.
            if let Some(src) = usize::try_from(l.line())
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| self.text.lines().nth(n))
            {
                let src = src.trim();
                if !src.is_empty() && src.chars().count() <= 120 {
                    message = format!("{message} (in `{src}`)");
                }
            }
        }
        let (line, column) = loc.as_ref().map_or((None, None), line_col);
        PolicyError {
            file: self.file.to_string(),
            line,
            column,
            message,
        }
    }
}

pub(crate) fn load(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let cx = Ctx { file, text };
    let raw: Option<RawSettings> = serde_saphyr::from_str(text).map_err(|e| cx.yaml_err(&e))?;
    let mut raw = raw.unwrap_or_default();
    let ecosystems = raw.ecosystems.take();

    // Global settings over the 0.1.x defaults.
    let mut global = EcoSettings::default();
    let mut global_modes: Vec<(Rule, Mode)> = Vec::new();
    apply_scalars(&cx, &raw, &mut global, &mut global_modes)?;

    // Per-ecosystem blocks.
    let mut per_eco: [Option<RawSettings>; 3] = [None, None, None];
    if let Some(ecos) = ecosystems {
        for (key, settings) in ecos.value.0 {
            let eco = Ecosystem::parse_strict(&key.value).map_err(|e| {
                let hint = e
                    .suggestion
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.err(
                    &key.referenced,
                    format!(
                        "unknown ecosystem `{}`{hint} (under `ecosystems`; expected one of: npm, PyPI, crates.io)",
                        key.value
                    ),
                )
            })?;
            let mut settings = settings.unwrap_or_default();
            if let Some(nested) = settings.ecosystems.take() {
                return Err(cx.err(
                    &nested.referenced,
                    format!("`ecosystems` is only allowed at the top level (found under `ecosystems.{eco}`)"),
                ));
            }
            per_eco[eco_index(eco)] = Some(settings);
        }
    }

    let mut ecos: Vec<EcoPolicy> = Vec::with_capacity(3);
    for eco in Ecosystem::ALL {
        let mut settings = global.clone();
        let mut modes = global_modes.clone();
        if let Some(r) = &per_eco[eco_index(eco)] {
            apply_scalars(&cx, r, &mut settings, &mut modes)?;
        }
        let mut p = EcoPolicy::new(settings);
        for (rule, mode) in modes {
            if let Some(i) = rule.mode_index() {
                p.modes[i] = mode;
            }
        }
        ecos.push(p);
    }
    let mut ecos: [EcoPolicy; 3] = match ecos.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("three ecosystems"),
    };

    let mut warnings = Vec::new();
    let mut expiring = Vec::new();
    // Lists: the global ones apply to every ecosystem (compiled in each one's syntax), the
    // per-ecosystem ones add to them.
    let blocks: Vec<(Option<Ecosystem>, &RawSettings)> = std::iter::once((None, &raw))
        .chain(
            Ecosystem::ALL
                .into_iter()
                .filter_map(|e| per_eco[eco_index(e)].as_ref().map(|r| (Some(e), r))),
        )
        .collect();
    for (scope, r) in blocks {
        let targets: Vec<Ecosystem> = match scope {
            Some(e) => vec![e],
            None => Ecosystem::ALL.to_vec(),
        };
        for (list, rule) in [
            (&r.denylist, Rule::Denylist),
            (&r.allowlist, Rule::Allowlist),
        ] {
            for item in list.iter().flatten() {
                let compiled = compile_entry(
                    &cx,
                    item,
                    rule,
                    scope,
                    &targets,
                    &mut warnings,
                    &mut expiring,
                )?;
                for (eco, entry) in compiled {
                    let p = &mut ecos[eco_index(eco)];
                    match rule {
                        Rule::Denylist => p.deny.push(entry),
                        _ => p.allow.push(entry),
                    }
                }
            }
        }
        for (list, what) in [
            (&r.internal_namespaces, "internal_namespaces"),
            (&r.min_package_age_exempt, "min_package_age_exempt"),
        ] {
            for item in list.iter().flatten() {
                let name = item.value.trim();
                if name.is_empty() || split_entry(name).1.is_some() {
                    return Err(cx.err(
                        &item.referenced,
                        format!("invalid {what} entry `{}`: expected a package name or name glob, without a version", item.value),
                    ));
                }
                let text: Arc<str> = Arc::from(item.value.as_str());
                for &eco in &targets {
                    let pat = NamePattern::new(eco, text.clone(), name);
                    let p = &mut ecos[eco_index(eco)];
                    if what == "internal_namespaces" {
                        p.internal.push(pat);
                    } else {
                        p.exempt.push(pat);
                    }
                }
            }
        }
    }

    Ok(Policy {
        revision: crate::revision_of(text.as_bytes()),
        ecos,
        expiring,
        warnings,
    })
}

pub(crate) fn eco_index(e: Ecosystem) -> usize {
    match e {
        Ecosystem::Npm => 0,
        Ecosystem::PyPI => 1,
        Ecosystem::CratesIo => 2,
    }
}

/// Overlay one block's scalar settings (and `rule_modes`) onto `s`.
fn apply_scalars(
    cx: &Ctx<'_>,
    r: &RawSettings,
    s: &mut EcoSettings,
    modes: &mut Vec<(Rule, Mode)>,
) -> Result<(), PolicyError> {
    if let Some(v) = r.fail_closed {
        s.fail_closed = v;
    }
    if let Some(v) = r.block_malicious {
        s.block_malicious = v;
    }
    match &r.max_cvss_score {
        None => {}
        Some(None) => s.max_cvss_score = None,
        Some(Some(v)) => {
            if !v.value.is_finite() || !(0.0..=10.0).contains(&v.value) {
                return Err(cx.err(
                    &v.referenced,
                    format!(
                        "`max_cvss_score` must be between 0.0 and 10.0 (or null), got `{}`",
                        v.value
                    ),
                ));
            }
            s.max_cvss_score = Some(v.value);
        }
    }
    if let Some(v) = &r.min_package_age_days {
        if !v.value.is_finite() || !(0.0..=36_500.0).contains(&v.value) {
            return Err(cx.err(
                &v.referenced,
                format!(
                    "`min_package_age_days` must be a number of days between 0 and 36500, got `{}`",
                    v.value
                ),
            ));
        }
        s.min_package_age_days = v.value;
    }
    if let Some(v) = r.missing_publish_time {
        s.missing_publish_time = v;
    }
    if let Some(v) = r.require_repository_url {
        s.require_repository_url = v;
    }
    if let Some(v) = r.deny_lifecycle_scripts {
        s.deny_lifecycle_scripts = v;
    }
    if let Some(v) = r.unknown_facts {
        s.unknown_facts = v;
    }
    if let Some(v) = r.unknown_version {
        s.unknown_version = v;
    }
    if let Some(v) = r.unknown_file_hash {
        s.unknown_file_hash = v;
    }
    if let Some(v) = r.mode {
        s.mode = v;
    }
    if let Some(d) = &r.max_intel_age {
        let secs = match &d.value {
            RawDuration::Seconds(n) => Ok(*n),
            RawDuration::Text(t) => parse_duration(t),
        }
        .map_err(|m| cx.err(&d.referenced, format!("`max_intel_age`: {m}")))?;
        if secs == 0 {
            return Err(cx.err(&d.referenced, "`max_intel_age` must be greater than zero"));
        }
        s.max_intel_age_secs = Some(secs);
    }
    if let Some(rm) = &r.rule_modes {
        for (k, mode) in &rm.0 {
            let rule = Rule::blocking_from_str(&k.value).ok_or_else(|| {
                let names: Vec<&str> = Rule::BLOCKING.iter().map(|r| r.as_str()).collect();
                cx.err(
                    &k.referenced,
                    format!(
                        "unknown rule `{}` in `rule_modes` (expected one of: {})",
                        k.value,
                        names.join(", ")
                    ),
                )
            })?;
            modes.retain(|(r, _)| *r != rule);
            modes.push((rule, *mode));
        }
    }
    Ok(())
}

fn compile_entry(
    cx: &Ctx<'_>,
    item: &Spanned<RawEntry>,
    rule: Rule,
    scope: Option<Ecosystem>,
    targets: &[Ecosystem],
    warnings: &mut Vec<String>,
    expiring: &mut Vec<ListEntryInfo>,
) -> Result<Vec<(Ecosystem, CompiledEntry)>, PolicyError> {
    let list = rule.as_str();
    let loc = &item.referenced;
    let (package, reason, expires) = match &item.value {
        RawEntry::Plain(s) => (s.as_str(), None, None),
        RawEntry::Object {
            package,
            reason,
            expires,
            unknown,
        } => {
            if let Some(k) = unknown.first() {
                return Err(cx.err(
                    loc,
                    format!("unknown key `{k}` in a `{list}` entry (expected `package`, `reason`, `expires`)"),
                ));
            }
            let Some(p) = package else {
                return Err(cx.err(loc, format!("a `{list}` entry map needs a `package` key")));
            };
            (p.as_str(), reason.as_deref(), expires.as_deref())
        }
    };
    let text = package.trim();
    let (name, version) = split_entry(text);
    let name = name.trim();
    if name.is_empty() || name == "@" {
        return Err(cx.err(
            loc,
            format!("invalid {list} entry `{package}`: empty package name"),
        ));
    }
    let expires_at = match expires {
        None => None,
        Some(e) => Some(
            parse_expiry(e)
                .map_err(|m| cx.err(loc, format!("{list} entry `{package}`: `expires`: {m}")))?,
        ),
    };
    let text_arc: Arc<str> = Arc::from(text);
    let reason_arc: Option<Arc<str>> = reason.map(Arc::from);
    let expires_arc: Option<Arc<str>> = expires.map(|e| Arc::from(e.trim()));

    let mut out = Vec::with_capacity(targets.len());
    let mut failures: Vec<(Ecosystem, String)> = Vec::new();
    for &eco in targets {
        let version = match version {
            None => Ok(VersionMatcher::Any),
            Some(v) => compile_version(eco, v),
        };
        match version {
            Ok(version) => out.push((
                eco,
                CompiledEntry {
                    name: NamePattern::new(eco, text_arc.clone(), name),
                    version,
                    expires_at,
                    expires_text: expires_arc.clone(),
                    reason: reason_arc.clone(),
                },
            )),
            Err(m) => failures.push((eco, m)),
        }
    }
    let describe = |f: &[(Ecosystem, String)]| {
        f.iter()
            .map(|(e, m)| format!("{e}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if out.is_empty() {
        return Err(cx.err(
            loc,
            format!(
                "invalid version in {list} entry `{package}`: {}",
                describe(&failures)
            ),
        ));
    }
    if !failures.is_empty() {
        let applies: Vec<String> = out.iter().map(|(e, _)| e.to_string()).collect();
        let (line, column) = line_col(loc);
        warnings.push(format!(
            "{}:{}:{}: top-level {list} entry `{package}` applies only to {} ({})",
            cx.file,
            line.unwrap_or(0),
            column.unwrap_or(0),
            applies.join(", "),
            describe(&failures)
        ));
    }
    if let (Some(at), Some(e)) = (expires_at, &expires_arc) {
        let (line, column) = line_col(loc);
        expiring.push(ListEntryInfo {
            list,
            ecosystem: scope,
            entry: text.to_string(),
            reason: reason.map(str::to_string),
            expires: e.to_string(),
            expires_unix: at,
            line: line.unwrap_or(0),
            column: column.unwrap_or(0),
        });
    }
    Ok(out)
}
