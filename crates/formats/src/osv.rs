//! OSV advisory records: parsing and version matching.
//!
//! An advisory affects a version when the version is listed in `affected[].versions`
//! (compared as a raw string and in the ecosystem's normal form) or falls inside any interval
//! of `affected[].ranges`: `introduced` (inclusive; `"0"` is unbounded), `fixed` (exclusive),
//! `last_affected` (inclusive), each range further bounded by its `limit` events (exclusive).
//! Events are sorted in the ecosystem's order before intervals are formed, so several
//! intervals in one range all count (0.1.x kept only the last). `GIT` ranges carry commits,
//! not versions, and are ignored. Withdrawn advisories affect nothing. A version that does not
//! parse in its ecosystem's rules (PyPI legacy `2005k`) matches only exact list entries and
//! catch-all ranges.

use crate::severity::{Severity, vector_score};
use crate::{EcoVersion, Ecosystem};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Malicious package or vulnerability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisoryKind {
    Malicious,
    Vulnerability,
}

impl AdvisoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdvisoryKind::Malicious => "malicious",
            AdvisoryKind::Vulnerability => "vulnerability",
        }
    }
}

/// One OSV record, reduced to what pkggate decides with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub kind: AdvisoryKind,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    /// The `withdrawn` timestamp; a withdrawn advisory affects nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    /// Affected packages of the ecosystems pkggate serves (others are dropped).
    pub affected: Vec<AffectedPackage>,
}

/// One `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedPackage {
    pub ecosystem: Ecosystem,
    /// The name as the record spells it.
    pub name: String,
    /// The name in the ecosystem's normal form (the lookup key).
    pub name_key: String,
    pub matcher: VersionMatcher,
}

/// Which versions an `affected[]` entry covers, in storable form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMatcher {
    /// `versions[]` as listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// [`EcoVersion::key`] of each listed version that parses (filled by [`parse_advisory`]),
    /// so matching never re-parses the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
}

/// One range: its intervals and the `limit` events that bound all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub intervals: Vec<Interval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
}

/// `[introduced, fixed)` or `[introduced, last_affected]`; a missing bound is unbounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
}

/// A record that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error("OSV record {name:?} is not valid JSON: {source}")]
    Json {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("OSV record {name:?} has an empty id")]
    EmptyId { name: String },
}

// --- raw serde shapes (borrowed where cheap) ---

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    affected: Vec<RawAffected>,
    #[serde(default)]
    database_specific: Option<RawDbSpecific>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawDbSpecific {
    #[serde(default)]
    severity: Option<serde_json::Value>,
    #[serde(default, rename = "malicious-packages-origins")]
    origins: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize, Default)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

/// Parse one OSV record (`name` is used in error messages: the zip entry or file path).
/// Affected entries of ecosystems pkggate does not serve are dropped.
pub fn parse_advisory(name: &str, json: &[u8]) -> Result<Advisory, OsvError> {
    let raw: RawRecord<'_> = serde_json::from_slice(json).map_err(|source| OsvError::Json {
        name: name.to_string(),
        source,
    })?;
    if raw.id.trim().is_empty() {
        return Err(OsvError::EmptyId {
            name: name.to_string(),
        });
    }
    let id = raw.id.into_owned();
    let kind = if id.starts_with("MAL-")
        || raw
            .database_specific
            .as_ref()
            .is_some_and(|d| d.origins.is_some())
    {
        AdvisoryKind::Malicious
    } else {
        AdvisoryKind::Vulnerability
    };

    let mut severity = Severity {
        label: raw
            .database_specific
            .as_ref()
            .and_then(|d| d.severity.as_ref())
            .and_then(|v| v.as_str())
            .map(str::to_string),
        ..Severity::default()
    };
    let all_sev = raw
        .severity
        .iter()
        .chain(raw.affected.iter().flat_map(|a| a.severity.iter()));
    for s in all_sev {
        let slot = match s.kind.as_str() {
            "CVSS_V3" => &mut severity.cvss_v3,
            "CVSS_V4" => &mut severity.cvss_v4,
            _ => continue,
        };
        if let Some(score) = vector_score(&s.score) {
            *slot = Some(slot.map_or(score, |old: f32| old.max(score)));
        }
    }

    let mut affected = Vec::new();
    for a in raw.affected {
        let Some(pkg) = a.package else { continue };
        let Some(eco) = Ecosystem::from_osv_name(&pkg.ecosystem) else {
            continue;
        };
        if pkg.name.is_empty() {
            continue;
        }
        let ranges = a
            .ranges
            .iter()
            .filter(|r| r.kind != "GIT")
            .map(|r| build_range(eco, &r.events))
            .filter(|r| !r.intervals.is_empty())
            .collect();
        let mut keys: Vec<String> = a
            .versions
            .iter()
            .map(|v| EcoVersion::parse(eco, v))
            .filter(EcoVersion::is_parsed)
            .map(|v| v.key())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        affected.push(AffectedPackage {
            ecosystem: eco,
            name_key: eco.normalize_name(&pkg.name).into_owned(),
            name: pkg.name,
            matcher: VersionMatcher {
                versions: a.versions,
                keys,
                ranges,
            },
        });
    }

    Ok(Advisory {
        id,
        aliases: raw.aliases,
        kind,
        summary: raw.summary,
        modified: raw.modified,
        withdrawn: raw.withdrawn.filter(|w| !w.trim().is_empty()),
        severity,
        affected,
    })
}

/// `introduced: "0"` is unbounded; so is semver's lowest possible version `0.0.0-0`
/// (RustSec writes it), which no parsed version precedes.
fn is_zero(v: &str) -> bool {
    matches!(v.trim(), "0" | "0.0.0-0")
}

/// Turn a range's events into intervals: sort them in the ecosystem's order (when every
/// bound parses; otherwise keep the record's order), then walk them, opening an interval at
/// `introduced` and closing it at the next `fixed` or `last_affected`.
fn build_range(eco: Ecosystem, events: &[RawEvent]) -> Range {
    #[derive(Clone, Copy, PartialEq)]
    enum K {
        Intro,
        Fixed,
        Last,
    }
    let mut evs: Vec<(K, &str, Option<EcoVersion>)> = Vec::new();
    let mut limits = Vec::new();
    for e in events {
        if let Some(v) = &e.introduced {
            let parsed = (!is_zero(v)).then(|| EcoVersion::parse(eco, v));
            evs.push((K::Intro, v, parsed));
        }
        if let Some(v) = &e.fixed {
            evs.push((K::Fixed, v, Some(EcoVersion::parse(eco, v))));
        }
        if let Some(v) = &e.last_affected {
            evs.push((K::Last, v, Some(EcoVersion::parse(eco, v))));
        }
        if let Some(v) = &e.limit
            && v.trim() != "*"
        {
            limits.push(v.clone());
        }
    }
    let sortable = evs
        .iter()
        .all(|(_, _, p)| p.as_ref().is_none_or(EcoVersion::is_parsed));
    if sortable {
        evs.sort_by(|a, b| match (&a.2, &b.2) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
        });
    }
    let mut intervals = Vec::new();
    let mut open: Option<Option<String>> = None;
    for (k, v, _) in evs {
        match k {
            K::Intro => {
                if open.is_none() {
                    open = Some((!is_zero(v)).then(|| v.to_string()));
                }
            }
            K::Fixed | K::Last => {
                if let Some(introduced) = open.take() {
                    let (fixed, last_affected) = if k == K::Fixed {
                        (Some(v.to_string()), None)
                    } else {
                        (None, Some(v.to_string()))
                    };
                    intervals.push(Interval {
                        introduced,
                        fixed,
                        last_affected,
                    });
                }
            }
        }
    }
    if let Some(introduced) = open {
        intervals.push(Interval {
            introduced,
            fixed: None,
            last_affected: None,
        });
    }
    Range { intervals, limits }
}

impl VersionMatcher {
    /// Whether some range covers every version (an unbounded interval and no limit).
    pub fn covers_all_versions(&self) -> bool {
        self.ranges.iter().any(|r| {
            r.limits.is_empty()
                && r.intervals.iter().any(|i| {
                    i.introduced.is_none() && i.fixed.is_none() && i.last_affected.is_none()
                })
        })
    }

    /// Whether `v` is affected, without compiling (one-off checks: the artifact gate).
    pub fn affects(&self, eco: Ecosystem, v: &EcoVersion) -> bool {
        if self.versions.iter().any(|x| x == v.raw()) {
            return true;
        }
        if v.is_parsed() && !self.keys.is_empty() {
            let key = v.key();
            if self.keys.binary_search(&key).is_ok() {
                return true;
            }
        }
        if self.covers_all_versions() {
            return true;
        }
        let p = |s: &Option<String>| s.as_deref().map(|x| EcoVersion::parse(eco, x));
        self.ranges.iter().any(|r| {
            let under_limit = r.limits.is_empty()
                || r.limits
                    .iter()
                    .any(|l| v.compare(&EcoVersion::parse(eco, l)) == Some(Ordering::Less));
            under_limit
                && r.intervals.iter().any(|i| {
                    CompiledInterval {
                        introduced: p(&i.introduced),
                        fixed: p(&i.fixed),
                        last_affected: p(&i.last_affected),
                    }
                    .contains(v)
                })
        })
    }

    /// Parse the bounds once, for matching many versions.
    pub fn compile(&self, eco: Ecosystem) -> CompiledMatcher {
        let raw: HashSet<String> = self.versions.iter().cloned().collect();
        let keys: HashSet<String> = if self.keys.is_empty() && !self.versions.is_empty() {
            self.versions
                .iter()
                .map(|v| EcoVersion::parse(eco, v))
                .filter(EcoVersion::is_parsed)
                .map(|v| v.key())
                .collect()
        } else {
            self.keys.iter().cloned().collect()
        };
        let p = |s: &Option<String>| s.as_deref().map(|v| EcoVersion::parse(eco, v));
        let ranges = self
            .ranges
            .iter()
            .map(|r| CompiledRange {
                intervals: r
                    .intervals
                    .iter()
                    .map(|i| CompiledInterval {
                        introduced: p(&i.introduced),
                        fixed: p(&i.fixed),
                        last_affected: p(&i.last_affected),
                    })
                    .collect(),
                limits: r.limits.iter().map(|l| EcoVersion::parse(eco, l)).collect(),
            })
            .collect();
        CompiledMatcher {
            raw,
            keys,
            ranges,
            all: self.covers_all_versions(),
        }
    }
}

/// A [`VersionMatcher`] with its bounds parsed.
#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    raw: HashSet<String>,
    keys: HashSet<String>,
    ranges: Vec<CompiledRange>,
    all: bool,
}

#[derive(Debug, Clone)]
struct CompiledRange {
    intervals: Vec<CompiledInterval>,
    limits: Vec<EcoVersion>,
}

#[derive(Debug, Clone)]
struct CompiledInterval {
    introduced: Option<EcoVersion>,
    fixed: Option<EcoVersion>,
    last_affected: Option<EcoVersion>,
}

impl CompiledInterval {
    fn contains(&self, v: &EcoVersion) -> bool {
        let lower_ok = match &self.introduced {
            None => true,
            Some(lo) => matches!(v.compare(lo), Some(Ordering::Greater | Ordering::Equal)),
        };
        let upper_ok = match (&self.fixed, &self.last_affected) {
            (Some(f), _) => v.compare(f) == Some(Ordering::Less),
            (None, Some(l)) => matches!(v.compare(l), Some(Ordering::Less | Ordering::Equal)),
            (None, None) => true,
        };
        lower_ok && upper_ok
    }
}

impl CompiledMatcher {
    /// Whether every version is covered (see [`VersionMatcher::covers_all_versions`]).
    pub fn covers_all_versions(&self) -> bool {
        self.all
    }

    /// Whether `v` is affected. `key` is `v.key()` when the caller has it already.
    pub fn affects(&self, v: &EcoVersion) -> bool {
        let key = (!self.keys.is_empty() && v.is_parsed()).then(|| v.key());
        self.affects_keyed(v, key.as_deref())
    }

    /// [`CompiledMatcher::affects`] with `v.key()` computed once by the caller (`None` for
    /// an unparsed version), for checking one version against many advisories.
    pub fn affects_keyed(&self, v: &EcoVersion, key: Option<&str>) -> bool {
        if self.all || self.raw.contains(v.raw()) {
            return true;
        }
        if let Some(key) = key
            && v.is_parsed()
            && self.keys.contains(key)
        {
            return true;
        }
        self.ranges.iter().any(|r| {
            let under_limit = r.limits.is_empty()
                || r.limits
                    .iter()
                    .any(|l| v.compare(l) == Some(Ordering::Less));
            under_limit && r.intervals.iter().any(|i| i.contains(v))
        })
    }
}

/// The versions of one document, parsed and sorted once, so that each advisory costs a few
/// binary searches instead of a comparison per version (whole-document lookups).
pub struct VersionIndex<'a> {
    versions: Vec<EcoVersion>,
    /// Indices of parsed versions, ascending in the ecosystem's order.
    sorted: Vec<u32>,
    by_raw: HashMap<&'a str, Vec<u32>>,
    by_key: HashMap<String, Vec<u32>>,
}

impl<'a> VersionIndex<'a> {
    pub fn new(eco: Ecosystem, versions: &[&'a str]) -> VersionIndex<'a> {
        let parsed: Vec<EcoVersion> = versions.iter().map(|v| EcoVersion::parse(eco, v)).collect();
        let mut by_raw: HashMap<&'a str, Vec<u32>> = HashMap::with_capacity(versions.len());
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::with_capacity(versions.len());
        let mut sorted = Vec::with_capacity(versions.len());
        for (i, v) in versions.iter().enumerate() {
            by_raw.entry(v).or_default().push(i as u32);
            if parsed[i].is_parsed() {
                by_key.entry(parsed[i].key()).or_default().push(i as u32);
                sorted.push(i as u32);
            }
        }
        sorted.sort_by(|&a, &b| {
            parsed[a as usize]
                .compare(&parsed[b as usize])
                .unwrap_or(Ordering::Equal)
        });
        VersionIndex {
            versions: parsed,
            sorted,
            by_raw,
            by_key,
        }
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The i-th version as parsed.
    pub fn version(&self, i: usize) -> Option<&EcoVersion> {
        self.versions.get(i)
    }

    /// Position in `sorted` of the first version for which `below(v)` is false.
    fn cut(&self, below: impl Fn(&EcoVersion) -> bool) -> usize {
        self.sorted
            .partition_point(|&i| below(&self.versions[i as usize]))
    }

    /// Indices (into the input) of the versions `m` affects, ascending, without duplicates.
    /// Agrees with [`CompiledMatcher::affects`] on every version.
    pub fn affected(&self, m: &CompiledMatcher) -> Vec<u32> {
        if m.all {
            return (0..self.versions.len() as u32).collect();
        }
        let mut out: Vec<u32> = Vec::new();
        for raw in &m.raw {
            if let Some(ix) = self.by_raw.get(raw.as_str()) {
                out.extend(ix);
            }
        }
        for key in &m.keys {
            if let Some(ix) = self.by_key.get(key) {
                out.extend(ix);
            }
        }
        for r in &m.ranges {
            let limit_hi = if r.limits.is_empty() {
                self.sorted.len()
            } else {
                // `v < some limit` is `v < the highest limit`; unparsed limits match nothing.
                let highest = r
                    .limits
                    .iter()
                    .filter(|l| l.is_parsed())
                    .max_by(|a, b| a.compare(b).unwrap_or(Ordering::Equal));
                match highest {
                    Some(l) => self.cut(|v| v.compare(l) == Some(Ordering::Less)),
                    None => continue,
                }
            };
            for i in &r.intervals {
                let lo = match &i.introduced {
                    None => 0,
                    Some(b) if b.is_parsed() => self.cut(|v| v.compare(b) == Some(Ordering::Less)),
                    Some(_) => continue,
                };
                let hi = match (&i.fixed, &i.last_affected) {
                    (Some(f), _) if f.is_parsed() => {
                        self.cut(|v| v.compare(f) == Some(Ordering::Less))
                    }
                    (Some(_), _) => continue,
                    (None, Some(l)) if l.is_parsed() => {
                        self.cut(|v| matches!(v.compare(l), Some(Ordering::Less | Ordering::Equal)))
                    }
                    (None, Some(_)) => continue,
                    (None, None) => self.sorted.len(),
                };
                let hi = hi.min(limit_hi);
                if lo < hi {
                    out.extend(&self.sorted[lo..hi]);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(eco: &str, name: &str, versions: &str, ranges: &str) -> Advisory {
        let json = format!(
            r#"{{"id":"TEST-1","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},"versions":{versions},"ranges":{ranges}}}]}}"#
        );
        parse_advisory("test", json.as_bytes()).unwrap()
    }

    fn hits(a: &Advisory, v: &str) -> bool {
        let p = &a.affected[0];
        p.matcher
            .compile(p.ecosystem)
            .affects(&EcoVersion::parse(p.ecosystem, v))
    }

    #[test]
    fn range_table() {
        let multi = r#"[{"type":"SEMVER","events":[{"introduced":"2.0.0"},{"fixed":"2.3.0"},{"introduced":"1.0.0"},{"fixed":"1.2.0"}]}]"#;
        let last =
            r#"[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"last_affected":"1.2"}]}]"#;
        let limit = r#"[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"3.0.0"}]}]"#;
        let pre = r#"[{"type":"SEMVER","events":[{"introduced":"0.0.0-0"},{"fixed":"0.3.1"}]}]"#;
        let git = r#"[{"type":"GIT","events":[{"introduced":"abc"}]}]"#;
        let table: &[(&str, &str, &str, &str, &str, bool)] = &[
            ("npm", "x", "[]", multi, "1.1.0", true),
            ("npm", "x", "[]", multi, "1.2.0", false),
            ("npm", "x", "[]", multi, "1.5.0", false),
            ("npm", "x", "[]", multi, "2.2.9", true),
            ("npm", "x", "[]", multi, "2.3.0", false),
            ("PyPI", "x", "[]", last, "1.2", true),
            ("PyPI", "x", "[]", last, "1.2.0", true),
            ("PyPI", "x", "[]", last, "1.2.1", false),
            ("PyPI", "x", "[]", last, "0.9", false),
            ("PyPI", "x", "[]", last, "1.1rc1", true),
            ("npm", "x", "[]", limit, "2.9.9", true),
            ("npm", "x", "[]", limit, "3.0.0", false),
            ("crates.io", "x", "[]", pre, "0.0.0-alpha", true),
            ("crates.io", "x", "[]", pre, "0.3.0", true),
            ("crates.io", "x", "[]", pre, "0.3.1", false),
            ("npm", "x", "[]", git, "1.0.0", false),
            ("PyPI", "x", r#"["1.0","2005k"]"#, "[]", "1.0.0", true),
            ("PyPI", "x", r#"["1.0","2005k"]"#, "[]", "2005k", true),
            ("PyPI", "x", r#"["1.0","2005k"]"#, "[]", "2005j", false),
            ("PyPI", "x", r#"["2.0rc1"]"#, "[]", "2.0RC1", true),
        ];
        for (eco, name, versions, ranges, v, want) in table {
            let a = rec(eco, name, versions, ranges);
            assert_eq!(hits(&a, v), *want, "{eco} {versions} {ranges} @ {v}");
        }
    }

    proptest::proptest! {
        /// Membership agrees with a brute-force reading of the events over small versions.
        #[test]
        fn range_membership_matches_brute_force(
            bounds in proptest::collection::vec((0u64..12, 0u8..3), 1..6),
            probe in 0u64..14,
        ) {
            // Events in ascending order: alternate introduced / (fixed | last_affected).
            let mut sorted = bounds.clone();
            sorted.sort_by_key(|b| b.0);
            sorted.dedup_by_key(|b| b.0);
            let mut events = Vec::new();
            let mut expect_open: Vec<(u64, Option<(u64, bool)>)> = Vec::new();
            for (i, (v, kind)) in sorted.iter().enumerate() {
                if i % 2 == 0 {
                    events.push(format!(r#"{{"introduced":"{v}.0.0"}}"#));
                    expect_open.push((*v, None));
                } else {
                    let inclusive = *kind == 0;
                    let key = if inclusive { "last_affected" } else { "fixed" };
                    events.push(format!(r#"{{"{key}":"{v}.0.0"}}"#));
                    if let Some(last) = expect_open.last_mut() { last.1 = Some((*v, inclusive)); }
                }
            }
            // Shuffle-independent: present the events reversed.
            events.reverse();
            let ranges = format!(r#"[{{"type":"SEMVER","events":[{}]}}]"#, events.join(","));
            let a = rec("npm", "x", "[]", &ranges);
            let want = expect_open.iter().any(|(lo, hi)| {
                probe >= *lo && match hi { None => true, Some((h, true)) => probe <= *h, Some((h, false)) => probe < *h }
            });
            proptest::prop_assert_eq!(hits(&a, &format!("{probe}.0.0")), want);
        }
    }

    proptest::proptest! {
        /// The sorted index agrees with matching version by version.
        #[test]
        fn index_agrees_with_direct_matching(
            eco in proptest::sample::select(vec![Ecosystem::Npm, Ecosystem::PyPI, Ecosystem::CratesIo]),
            versions in proptest::collection::vec("(0|1|2|10)\\.(0|1|5)\\.(0|3)(-rc\\.1|rc1|\\.post1)?|2005k|x", 0..40),
            listed in proptest::collection::vec("(0|1|2)\\.(0|1|5)(\\.0)?|2005k", 0..4),
            events in proptest::collection::vec((0u8..4, "(0|1|2|10)\\.(0|1|5)\\.(0|3)|0|bad"), 0..6),
        ) {
            let evs: Vec<String> = events.iter().map(|(k, v)| {
                let key = ["introduced", "fixed", "last_affected", "limit"][*k as usize];
                format!(r#"{{"{key}":"{v}"}}"#)
            }).collect();
            let listed: Vec<String> = listed.iter().map(|v| format!("{v:?}")).collect();
            let ranges = format!(r#"[{{"type":"ECOSYSTEM","events":[{}]}}]"#, evs.join(","));
            let a = rec(eco.osv_name(), "x", &format!("[{}]", listed.join(",")), &ranges);
            let Some(p) = a.affected.first() else { return Ok(()); };
            let compiled = p.matcher.compile(eco);
            let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
            let index = VersionIndex::new(eco, &refs);
            let got = index.affected(&compiled);
            let want: Vec<u32> = (0..refs.len() as u32)
                .filter(|&i| compiled.affects(index.version(i as usize).unwrap()))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn catch_all_covers_unparsable_versions() {
        let a = rec(
            "PyPI",
            "x",
            "[]",
            r#"[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]"#,
        );
        assert!(a.affected[0].matcher.covers_all_versions());
        assert!(hits(&a, "2005k"));
        assert!(hits(&a, ""));
    }

    #[test]
    fn names_kind_severity() {
        let json = br#"{"id":"GHSA-x","aliases":["CVE-1"],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "database_specific":{"severity":"CRITICAL"},
            "affected":[{"package":{"ecosystem":"PyPI","name":"Jw.Util"},"versions":["1"]},
                        {"package":{"ecosystem":"Debian:11","name":"x"}},
                        {"package":{"ecosystem":"crates.io","name":"Foo_Bar"}}]}"#;
        let a = parse_advisory("t", json).unwrap();
        assert_eq!(a.kind, AdvisoryKind::Vulnerability);
        assert_eq!(a.severity.cvss_v3, Some(9.8));
        assert_eq!(a.severity.label.as_deref(), Some("CRITICAL"));
        let keys: Vec<_> = a.affected.iter().map(|p| p.name_key.as_str()).collect();
        assert_eq!(keys, ["jw-util", "foo-bar"]);
        let mal = parse_advisory("t", br#"{"id":"MAL-2024-1","affected":[]}"#).unwrap();
        assert_eq!(mal.kind, AdvisoryKind::Malicious);
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"id\":\"\"}",
            b"{\"id\":5}",
            b"\xff\xfe",
        ] {
            let err = parse_advisory("bad.json", bad).unwrap_err();
            assert!(err.to_string().contains("bad.json"), "{err}");
        }
    }

    #[test]
    fn withdrawn_is_kept_for_the_caller() {
        let a = parse_advisory(
            "t",
            br#"{"id":"MAL-1","withdrawn":"2024-01-01T00:00:00Z","affected":[]}"#,
        )
        .unwrap();
        assert!(a.withdrawn.is_some());
    }
}
