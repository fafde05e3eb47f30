//! List entries (`name`, `name@*`, `name@<version or range>`, name globs), their compiled
//! matchers, and the small parsers they need (dates, durations).

use pkggate_formats::Ecosystem;
use pkggate_formats::version::MAX_VERSION_LEN;
use std::cmp::Ordering;
use std::str::FromStr;
use std::sync::Arc;

/// `*` glob matching on bytes: `*` matches any run of bytes (including none and `/`); every
/// other byte matches itself. No `?`, classes or escapes. Linear-time backtracking on the last
/// star, so hostile names cost O(len(pattern) · len(name)) at worst.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A package name or name glob, stored in the ecosystem's normal form.
#[derive(Debug, Clone)]
pub(crate) struct NamePattern {
    /// As written in the file.
    pub text: Arc<str>,
    pub normalized: Box<str>,
    pub glob: bool,
}

impl NamePattern {
    pub fn new(eco: Ecosystem, text: Arc<str>, name: &str) -> NamePattern {
        let normalized: Box<str> = eco.normalize_name(name).into();
        NamePattern {
            glob: normalized.contains('*'),
            text,
            normalized,
        }
    }

    /// `name` must already be in the ecosystem's normal form.
    pub fn matches(&self, normalized_name: &str) -> bool {
        if self.glob {
            glob_match(&self.normalized, normalized_name)
        } else {
            *self.normalized == *normalized_name
        }
    }
}

/// A version parsed in one ecosystem's rules (same rules as `EcoVersion`: trimmed, at most
/// `MAX_VERSION_LEN` bytes, otherwise unparsed).
#[derive(Debug, Clone)]
pub(crate) enum PVer {
    Node(nodejs_semver::Version),
    Cargo(semver::Version),
    Pep(pep440_rs::Version),
    Unparsed,
}

impl PVer {
    pub fn parse(eco: Ecosystem, raw: &str) -> PVer {
        let s = raw.trim();
        if s.is_empty() || s.len() > MAX_VERSION_LEN {
            return PVer::Unparsed;
        }
        match eco {
            Ecosystem::Npm => nodejs_semver::Version::parse(s)
                .map(PVer::Node)
                .unwrap_or(PVer::Unparsed),
            Ecosystem::CratesIo => semver::Version::parse(s)
                .map(PVer::Cargo)
                .unwrap_or(PVer::Unparsed),
            Ecosystem::PyPI => pep440_rs::Version::from_str(s)
                .map(PVer::Pep)
                .unwrap_or(PVer::Unparsed),
        }
    }

    fn equals(&self, other: &PVer) -> bool {
        match (self, other) {
            (PVer::Node(a), PVer::Node(b)) => a.cmp(b) == Ordering::Equal,
            (PVer::Cargo(a), PVer::Cargo(b)) => a.cmp_precedence(b) == Ordering::Equal,
            (PVer::Pep(a), PVer::Pep(b)) => a == b,
            _ => false,
        }
    }
}

/// One bound of a cargo comparator interval.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    v: semver::Version,
    inclusive: bool,
}

/// `lo ≤/< v ≤/< hi`; `None` is unbounded.
#[derive(Debug, Clone)]
pub(crate) struct Interval {
    lo: Option<Bound>,
    hi: Option<Bound>,
}

impl Interval {
    fn contains(&self, v: &semver::Version) -> bool {
        if let Some(lo) = &self.lo {
            match v.cmp_precedence(&lo.v) {
                Ordering::Less => return false,
                Ordering::Equal if !lo.inclusive => return false,
                _ => {}
            }
        }
        if let Some(hi) = &self.hi {
            match v.cmp_precedence(&hi.v) {
                Ordering::Greater => return false,
                Ordering::Equal if !hi.inclusive => return false,
                _ => {}
            }
        }
        true
    }
}

/// Which versions of the named package an entry covers.
#[derive(Debug, Clone)]
pub(crate) enum VersionMatcher {
    /// `name` or `name@*`.
    Any,
    /// A single version: equal as raw strings or in the ecosystem's rules.
    Exact { raw: Box<str>, parsed: PVer },
    /// node-semver range, prereleases included by order (`includePrerelease`).
    Npm(nodejs_semver::Range),
    /// cargo requirement as intervals (all must hold), prereleases included by order.
    Cargo(Vec<Interval>),
    /// PEP 440 specifiers (PEP 440's own pre-release rules for `<` / `>`).
    Pep(pep440_rs::VersionSpecifiers),
}

impl VersionMatcher {
    pub fn needs_version(&self) -> bool {
        !matches!(self, VersionMatcher::Any)
    }

    pub fn matches(&self, raw: &str, v: &PVer) -> bool {
        match (self, v) {
            (VersionMatcher::Any, _) => true,
            (VersionMatcher::Exact { raw: r, parsed }, _) => **r == *raw || parsed.equals(v),
            (VersionMatcher::Npm(range), PVer::Node(v)) => range.satisfies_with_prerelease(v, true),
            (VersionMatcher::Cargo(ivs), PVer::Cargo(v)) => ivs.iter().all(|i| i.contains(v)),
            (VersionMatcher::Pep(specs), PVer::Pep(v)) => specs.contains(v),
            _ => false,
        }
    }
}

/// Characters that make a version text a range rather than one version.
fn has_range_syntax(s: &str) -> bool {
    s.chars().any(|c| {
        matches!(c, '<' | '>' | '=' | '!' | '~' | '^' | '*' | ',' | '|') || c.is_whitespace()
    })
}

/// Compile the version part of an entry in `eco`'s syntax.
///
/// A text that parses as one version is an exact version (in every ecosystem, so cargo's
/// `serde@1.0.100` means exactly 1.0.100, as 0.1.x meant, not `^1.0.100`). Otherwise it is a
/// range in the ecosystem's syntax (`lodash@4` is npm `4.x`; `serde@1` is cargo `^1`;
/// `django@>=4,<4.2` PEP 440). A plain token that is neither (`foo@latest`, PyPI `2005k`) is
/// kept as an exact raw string, as 0.1.x compared it. Anything with range syntax that does not
/// parse is an error.
pub(crate) fn compile_version(eco: Ecosystem, text: &str) -> Result<VersionMatcher, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty version after `@`".into());
    }
    if t == "*" {
        return Ok(VersionMatcher::Any);
    }
    if t.len() > MAX_VERSION_LEN {
        return Err(format!("version longer than {MAX_VERSION_LEN} bytes"));
    }
    let parsed = PVer::parse(eco, t);
    let exact_ok = !matches!(parsed, PVer::Unparsed);
    if exact_ok {
        return Ok(VersionMatcher::Exact {
            raw: t.into(),
            parsed,
        });
    }
    let range = match eco {
        Ecosystem::Npm => nodejs_semver::Range::parse(t)
            .map(VersionMatcher::Npm)
            .map_err(|e| format!("not an npm version range: {e}")),
        Ecosystem::CratesIo => semver::VersionReq::parse(t)
            .map_err(|e| format!("not a cargo version requirement: {e}"))
            .and_then(|req| cargo_intervals(&req).map(VersionMatcher::Cargo)),
        Ecosystem::PyPI => pep440_rs::VersionSpecifiers::from_str(t)
            .map(VersionMatcher::Pep)
            .map_err(|e| format!("not PEP 440 version specifiers: {e}")),
    };
    // Parser messages may span lines (a caret diagram); keep the first.
    let range = range.map_err(|e| {
        e.lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches(':')
            .to_string()
    });
    match range {
        Ok(m) => Ok(m),
        Err(_) if !has_range_syntax(t) => Ok(VersionMatcher::Exact {
            raw: t.into(),
            parsed: PVer::Unparsed,
        }),
        Err(e) => Err(e),
    }
}

fn zero_pre() -> semver::Prerelease {
    semver::Prerelease::new("0").unwrap_or(semver::Prerelease::EMPTY)
}

fn ver(major: u64, minor: u64, patch: u64, pre: semver::Prerelease) -> semver::Version {
    semver::Version {
        major,
        minor,
        patch,
        pre,
        build: semver::BuildMetadata::EMPTY,
    }
}

/// The lowest version with this triple, prereleases included (`x.y.z-0`); `None` on overflow.
fn lowest(major: Option<u64>, minor: Option<u64>, patch: Option<u64>) -> Option<semver::Version> {
    Some(ver(major?, minor?, patch?, zero_pre()))
}

fn incl(v: semver::Version) -> Option<Bound> {
    Some(Bound { v, inclusive: true })
}

fn excl(v: semver::Version) -> Option<Bound> {
    Some(Bound {
        v,
        inclusive: false,
    })
}

/// A cargo requirement as intervals in precedence order, following node-semver's
/// `includePrerelease` desugaring (partial bounds get `-0`).
fn cargo_intervals(req: &semver::VersionReq) -> Result<Vec<Interval>, String> {
    use semver::Op;
    let mut out = Vec::with_capacity(req.comparators.len());
    for c in &req.comparators {
        let m = c.major;
        let m1 = m.checked_add(1);
        let (lo, hi) = match (c.op, c.minor, c.patch) {
            (Op::Exact | Op::Wildcard, Some(mi), Some(pa)) => {
                let v = ver(m, mi, pa, c.pre.clone());
                (incl(v.clone()), incl(v))
            }
            (Op::Exact | Op::Wildcard, Some(mi), None) | (Op::Tilde, Some(mi), None) => (
                lowest(Some(m), Some(mi), Some(0)).and_then(incl),
                lowest(Some(m), mi.checked_add(1), Some(0)).and_then(excl),
            ),
            (Op::Exact | Op::Wildcard | Op::Tilde | Op::Caret, None, _) => (
                lowest(Some(m), Some(0), Some(0)).and_then(incl),
                lowest(m1, Some(0), Some(0)).and_then(excl),
            ),
            (Op::Greater, Some(mi), Some(pa)) => (excl(ver(m, mi, pa, c.pre.clone())), None),
            (Op::Greater, Some(mi), None) => (
                lowest(Some(m), mi.checked_add(1), Some(0)).and_then(incl),
                None,
            ),
            (Op::Greater, None, _) => (lowest(m1, Some(0), Some(0)).and_then(incl), None),
            (Op::GreaterEq, Some(mi), Some(pa)) => (incl(ver(m, mi, pa, c.pre.clone())), None),
            (Op::GreaterEq, mi, _) => (
                lowest(Some(m), Some(mi.unwrap_or(0)), Some(0)).and_then(incl),
                None,
            ),
            (Op::Less, Some(mi), Some(pa)) => (None, excl(ver(m, mi, pa, c.pre.clone()))),
            (Op::Less, mi, _) => (
                None,
                lowest(Some(m), Some(mi.unwrap_or(0)), Some(0)).and_then(excl),
            ),
            (Op::LessEq, Some(mi), Some(pa)) => (None, incl(ver(m, mi, pa, c.pre.clone()))),
            (Op::LessEq, Some(mi), None) => (
                None,
                lowest(Some(m), mi.checked_add(1), Some(0)).and_then(excl),
            ),
            (Op::LessEq, None, _) => (None, lowest(m1, Some(0), Some(0)).and_then(excl)),
            (Op::Tilde, Some(mi), Some(pa)) => (
                incl(ver(m, mi, pa, c.pre.clone())),
                lowest(Some(m), mi.checked_add(1), Some(0)).and_then(excl),
            ),
            (Op::Caret, Some(mi), Some(pa)) => {
                let hi = if m > 0 {
                    lowest(m1, Some(0), Some(0))
                } else if mi > 0 {
                    lowest(Some(0), mi.checked_add(1), Some(0))
                } else {
                    lowest(Some(0), Some(0), pa.checked_add(1))
                };
                (incl(ver(m, mi, pa, c.pre.clone())), hi.and_then(excl))
            }
            (Op::Caret, Some(mi), None) => {
                let hi = if m > 0 {
                    lowest(m1, Some(0), Some(0))
                } else {
                    lowest(Some(0), mi.checked_add(1), Some(0))
                };
                (
                    lowest(Some(m), Some(mi), Some(0)).and_then(incl),
                    hi.and_then(excl),
                )
            }
            (op, _, _) => return Err(format!("unsupported cargo operator in `{c}` ({op:?})")),
        };
        out.push(Interval { lo, hi });
    }
    Ok(out)
}

/// Split `name@version` at the first `@` after position 0 (so `@scope/name@1.0` works).
pub(crate) fn split_entry(text: &str) -> (&str, Option<&str>) {
    match text.get(1..).and_then(|rest| rest.find('@')) {
        Some(i) => (&text[..i + 1], Some(&text[i + 2..])),
        None => (text, None),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits<T: FromStr>(s: &str, n: usize) -> Option<T> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The instant an `expires` value stops applying, in Unix seconds.
///
/// `YYYY-MM-DD` names the last day the entry applies: it expires at the following midnight
/// UTC. `YYYY-MM-DDTHH:MM:SSZ` (or with a space instead of `T`) expires at that instant.
pub(crate) fn parse_expiry(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid date `{s}` (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
    let s = s.trim();
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = match (digits(y, 4), digits(m, 2), digits(d, 2)) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let day = days_from_civil(y, m, d) * 86_400;
    let Some(time) = time else {
        return Ok(day + 86_400);
    };
    let time = time
        .strip_suffix(['Z', 'z'])
        .or_else(|| time.strip_suffix("+00:00"))
        .ok_or_else(bad)?;
    let mut parts = time.split(':');
    let (Some(h), Some(mi), Some(sec), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    match (
        digits::<i64>(h, 2),
        digits::<i64>(mi, 2),
        digits::<i64>(sec, 2),
    ) {
        (Some(h), Some(mi), Some(sec)) if h < 24 && mi < 60 && sec < 60 => {
            Ok(day + h * 3600 + mi * 60 + sec)
        }
        _ => Err(bad()),
    }
}

/// A duration such as `48h`, `30m`, `90s`, `2d`, `1w`, `1h30m`, or plain seconds (`3600`).
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration `{s}` (expected e.g. `48h`, `30m`, `2d` or seconds)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Python `repr()` of a list of strings: `['postinstall', 'install']`.
pub(crate) fn python_list_repr(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let q = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        out.push(q);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == q => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push(q);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("@corp/*", "@corp/a", true),
            ("@corp/*", "@corp/", true),
            ("@corp/*", "@corpx/a", false),
            ("corp-*", "corp-x", true),
            ("corp-*", "corp", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*-internal", "x-internal", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**", "x", true),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn splits() {
        assert_eq!(split_entry("lodash"), ("lodash", None));
        assert_eq!(split_entry("lodash@4.17.21"), ("lodash", Some("4.17.21")));
        assert_eq!(split_entry("@scope/x"), ("@scope/x", None));
        assert_eq!(split_entry("@scope/x@1.0.0"), ("@scope/x", Some("1.0.0")));
        assert_eq!(split_entry("@"), ("@", None));
        assert_eq!(split_entry("x@"), ("x", Some("")));
    }

    #[test]
    fn expiry_dates() {
        assert_eq!(parse_expiry("1970-01-01"), Ok(86_400));
        assert_eq!(parse_expiry("2000-03-01T00:00:00Z"), Ok(951_868_800));
        assert_eq!(parse_expiry("2024-02-29"), Ok(1_709_164_800 + 86_400));
        assert!(parse_expiry("2023-02-29").is_err());
        assert!(parse_expiry("2026-13-01").is_err());
        assert!(parse_expiry("tomorrow").is_err());
        assert!(parse_expiry("2026-1-01").is_err());
        assert!(parse_expiry("2026-01-01T25:00:00Z").is_err());
        assert!(parse_expiry("2026-01-01T10:00:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Ok(172_800));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("12").is_ok());
        assert!(parse_duration("12x").is_err());
        assert!(parse_duration("5h3").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn python_repr() {
        assert_eq!(python_list_repr(&["postinstall".into()]), "['postinstall']");
        assert_eq!(
            python_list_repr(&["preinstall".into(), "install".into()]),
            "['preinstall', 'install']"
        );
        assert_eq!(python_list_repr(&["it's".into()]), "[\"it's\"]");
        assert_eq!(python_list_repr(&[]), "[]");
    }

    fn m(eco: Ecosystem, range: &str, v: &str) -> bool {
        compile_version(eco, range)
            .unwrap()
            .matches(v, &PVer::parse(eco, v))
    }

    #[test]
    fn cargo_requirements_include_prereleases_by_order() {
        use Ecosystem::CratesIo as C;
        for (req, v, want) in [
            ("^1", "1.9.0", true),
            ("^1", "2.0.0", false),
            ("^1", "2.0.0-alpha", false),
            ("^1", "1.5.0-beta", true),
            ("^1", "0.9.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("^0.0.3", "0.0.3", true),
            ("^1.2", "1.2.0-rc.1", true),
            ("<2.0.0", "2.0.0-beta", true),
            ("<2.0.0", "2.0.0", false),
            ("<=1.2", "1.2.9", true),
            ("<=1.2", "1.3.0", false),
            (">1.2", "1.2.9", false),
            (">1.2", "1.3.0", true),
            (">1", "1.9.9", false),
            (">1", "2.0.0", true),
            (">=1.0, <1.5", "1.4.99", true),
            (">=1.0, <1.5", "1.5.0", false),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1", "1.9.0", true),
            ("=1.2", "1.2.7", true),
            ("=1.2", "1.3.0", false),
            ("1.*", "1.4.0", true),
            ("1.2.*", "1.3.0", false),
            ("1.0.0", "1.0.0+build", true),
            ("1.0.0", "1.0.1", false),
            ("1", "1.7.0", true),
            ("1", "2.0.0", false),
            ("<1", "0.9.0", true),
            ("<1", "1.0.0", false),
            ("<=1", "1.99.0", true),
        ] {
            assert_eq!(m(C, req, v), want, "{req} vs {v}");
        }
    }

    #[test]
    fn npm_and_pep440_ranges() {
        use Ecosystem::{Npm, PyPI};
        for (eco, range, v, want) in [
            (Npm, "<4.17.21", "4.17.20", true),
            (Npm, "<4.17.21", "4.17.21", false),
            (Npm, "<4.17.21", "4.17.21-beta.1", true),
            (Npm, "4", "4.2.0", true),
            (Npm, "4", "5.0.0", false),
            (Npm, "^1.2.0 || ^2", "2.5.0", true),
            (Npm, "1.2.3", "v1.2.3", true),
            (Npm, "latest", "latest", true),
            (Npm, "latest", "1.0.0", false),
            (PyPI, ">=4,<4.2", "4.1.9", true),
            (PyPI, ">=4,<4.2", "4.2", false),
            (PyPI, ">=4,<4.2", "3.2", false),
            (PyPI, "4.2", "4.2.0", true),
            (PyPI, "==4.2.*", "4.2.7", true),
            (PyPI, "2005k", "2005k", true),
            (PyPI, "~=1.4", "1.9", true),
            (PyPI, "~=1.4", "2.0", false),
        ] {
            assert_eq!(m(eco, range, v), want, "{eco} {range} vs {v}");
        }
        assert!(compile_version(PyPI, ">=banana").is_err());
        assert!(compile_version(Npm, ">=banana").is_err());
        assert!(compile_version(Ecosystem::CratesIo, "^x").is_err());
        assert!(compile_version(Npm, " ").is_err());
    }
}
