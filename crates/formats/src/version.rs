//! Versions compared with each ecosystem's own rules.
//!
//! * npm: node-semver (`nodejs-semver`), which accepts the loose forms legacy packuments
//!   contain (`v1.2.3`, `=1.2.3`).
//! * crates.io: SemVer 2.0 (`semver`), prerelease bounds such as `0.0.0-0` included.
//! * PyPI: PEP 440 (`pep440_rs`); versions that are not PEP 440 (`2005k`, `1.0-SNAPSHOT`)
//!   (`2004b.2` is valid PEP 440 and normalises to `2004b2`, as in pip)
//!   stay unparsed and compare by exact string only.
//!
//! Build metadata never affects order or equality (SemVer §10); PEP 440 local versions do.

use crate::Ecosystem;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A version string with its parse in one ecosystem's rules, if it has one.
#[derive(Clone)]
pub struct EcoVersion {
    raw: Box<str>,
    parsed: Parsed,
}

#[derive(Clone)]
enum Parsed {
    Node(nodejs_semver::Version),
    Cargo(semver::Version),
    Pep440(pep440_rs::Version),
    Unparsed,
}

/// Longest version string pkggate parses; longer ones stay raw (bounded work on hostile input).
pub const MAX_VERSION_LEN: usize = 256;

impl EcoVersion {
    /// Parse `raw` in `eco`'s rules. Never fails: an unparsable version is kept raw and then
    /// only equals the identical string.
    pub fn parse(eco: Ecosystem, raw: &str) -> EcoVersion {
        let trimmed = raw.trim();
        // SemVer identifiers are ASCII; node-semver refuses anything else (the crate
        // accepts `1.0.0-é` as a stable 1.0.0, so refuse before it sees it).
        let semver_like = matches!(eco, Ecosystem::Npm | Ecosystem::CratesIo);
        let parsed = if trimmed.is_empty()
            || trimmed.len() > MAX_VERSION_LEN
            || (semver_like && !trimmed.is_ascii())
        {
            Parsed::Unparsed
        } else {
            match eco {
                Ecosystem::Npm => nodejs_semver::Version::parse(trimmed)
                    .map(Parsed::Node)
                    .unwrap_or(Parsed::Unparsed),
                Ecosystem::CratesIo => semver::Version::parse(trimmed)
                    .map(Parsed::Cargo)
                    .unwrap_or(Parsed::Unparsed),
                Ecosystem::PyPI => pep440_rs::Version::from_str(trimmed)
                    .map(Parsed::Pep440)
                    .unwrap_or(Parsed::Unparsed),
            }
        };
        EcoVersion {
            raw: raw.into(),
            parsed,
        }
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the version parsed in its ecosystem's rules.
    pub fn is_parsed(&self) -> bool {
        !matches!(self.parsed, Parsed::Unparsed)
    }

    /// A prerelease (semver `-pre`, PEP 440 `a`/`b`/`rc`/`.dev`). Unparsed versions are not.
    pub fn is_prerelease(&self) -> bool {
        match &self.parsed {
            Parsed::Node(v) => v.is_prerelease(),
            Parsed::Cargo(v) => !v.pre.is_empty(),
            Parsed::Pep440(v) => v.any_prerelease(),
            Parsed::Unparsed => false,
        }
    }

    /// Order in the ecosystem's rules; `None` when either side is unparsed (then only
    /// [`EcoVersion::matches_exact`] can relate them).
    pub fn compare(&self, other: &EcoVersion) -> Option<Ordering> {
        match (&self.parsed, &other.parsed) {
            (Parsed::Node(a), Parsed::Node(b)) => Some(a.cmp(b)),
            (Parsed::Cargo(a), Parsed::Cargo(b)) => Some(a.cmp_precedence(b)),
            (Parsed::Pep440(a), Parsed::Pep440(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Equal as raw strings, or equal in the ecosystem's rules.
    pub fn matches_exact(&self, other: &EcoVersion) -> bool {
        self.raw == other.raw || self.compare(other) == Some(Ordering::Equal)
    }

    /// A canonical string such that two parsed versions are equal in their ecosystem's rules
    /// exactly when their keys are equal (`1.0` and `1.0.0` share a PEP 440 key; build
    /// metadata is dropped from semver keys). Unparsed versions key on their raw string.
    pub fn key(&self) -> String {
        match &self.parsed {
            Parsed::Node(v) => {
                let mut s = format!("{}.{}.{}", v.major(), v.minor(), v.patch());
                for (i, id) in v.pre_release().iter().enumerate() {
                    s.push(if i == 0 { '-' } else { '.' });
                    s.push_str(&id.to_string());
                }
                s
            }
            Parsed::Cargo(v) => {
                let mut s = format!("{}.{}.{}", v.major, v.minor, v.patch);
                if !v.pre.is_empty() {
                    s.push('-');
                    s.push_str(v.pre.as_str());
                }
                s
            }
            Parsed::Pep440(v) => {
                let release = v.release();
                let keep = release.iter().rposition(|&n| n != 0).map_or(1, |i| i + 1);
                let trimmed: Vec<u64> = release[..keep].to_vec();
                v.clone().with_release(trimmed).to_string()
            }
            Parsed::Unparsed => self.raw.to_string(),
        }
    }
}

impl fmt::Debug for EcoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}{}",
            self.raw,
            if self.is_parsed() { "" } else { " (unparsed)" }
        )
    }
}

impl fmt::Display for EcoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ecosystem::*;
    use proptest::prelude::*;

    fn cmp(eco: Ecosystem, a: &str, b: &str) -> Option<Ordering> {
        EcoVersion::parse(eco, a).compare(&EcoVersion::parse(eco, b))
    }

    #[test]
    fn ordering_table() {
        use Ordering::*;
        let table: &[(Ecosystem, &str, &str, Option<Ordering>)] = &[
            (Npm, "10.0.0", "9.0.0", Some(Greater)),
            (Npm, "1.0.0-beta.2", "1.0.0-beta.10", Some(Less)),
            (Npm, "1.0.0-rc.1", "1.0.0", Some(Less)),
            (Npm, "v1.2.3", "1.2.3", Some(Equal)),
            (Npm, "1.2.3+build", "1.2.3", Some(Equal)),
            (Npm, "not-a-version", "1.0.0", None),
            (CratesIo, "0.0.0-0", "0.0.0", Some(Less)),
            (CratesIo, "0.0.0-0", "0.0.0-alpha", Some(Less)),
            (CratesIo, "1.0.0+meta", "1.0.0", Some(Equal)),
            (CratesIo, "1.10.0", "1.9.0", Some(Greater)),
            (PyPI, "1.0", "1.0.0", Some(Equal)),
            (PyPI, "2.0rc1", "2.0", Some(Less)),
            (PyPI, "2.0rc1", "1.9", Some(Greater)),
            (PyPI, "0.1.dev0", "0.1", Some(Less)),
            (PyPI, "1.0.post1", "1.0", Some(Greater)),
            (PyPI, "1!0.1", "2.0", Some(Greater)),
            // `2004b.2` is valid PEP 440 (it normalises to `2004b2`), as in pip.
            (PyPI, "2004b.2", "2004b2", Some(Equal)),
            (PyPI, "2005k", "2005k", None),
            (PyPI, "1.0-SNAPSHOT", "1.0", None),
        ];
        for (eco, a, b, want) in table {
            assert_eq!(cmp(*eco, a, b), *want, "{eco} {a} vs {b}");
        }
    }

    #[test]
    fn exact_matching_and_keys() {
        let a = EcoVersion::parse(PyPI, "2005k");
        assert!(!a.is_parsed());
        assert!(a.matches_exact(&EcoVersion::parse(PyPI, "2005k")));
        assert!(!a.matches_exact(&EcoVersion::parse(PyPI, "2005j")));
        assert_eq!(
            EcoVersion::parse(PyPI, "1.0.0").key(),
            EcoVersion::parse(PyPI, "1").key()
        );
        assert_ne!(
            EcoVersion::parse(PyPI, "1.0+cpu").key(),
            EcoVersion::parse(PyPI, "1.0").key()
        );
        assert_eq!(EcoVersion::parse(PyPI, "1.0RC1").key(), "1rc1");
        assert_eq!(EcoVersion::parse(Npm, "v1.2.3+x").key(), "1.2.3");
        assert_eq!(EcoVersion::parse(CratesIo, "0.0.0-0").key(), "0.0.0-0");
        assert!(EcoVersion::parse(PyPI, "2.0rc1").is_prerelease());
        assert!(!EcoVersion::parse(Npm, "2.0.0").is_prerelease());
        assert!(
            !EcoVersion::parse(Npm, "1.0.0-\u{e9}").is_parsed(),
            "node-semver refuses non-ASCII"
        );
        assert!(!EcoVersion::parse(CratesIo, "1.0.0-\u{e9}").is_parsed());
        assert!(
            EcoVersion::parse(Npm, &"9".repeat(MAX_VERSION_LEN + 1))
                .key()
                .len()
                > MAX_VERSION_LEN
        );
    }

    fn semver_strategy() -> impl Strategy<Value = String> {
        (
            0u64..20,
            0u64..20,
            0u64..20,
            prop::option::of("(alpha|beta|rc)(\\.[1-9][0-9]?)?"),
        )
            .prop_map(|(a, b, c, pre)| match pre {
                Some(p) => format!("{a}.{b}.{c}-{p}"),
                None => format!("{a}.{b}.{c}"),
            })
    }

    fn pep440_strategy() -> impl Strategy<Value = String> {
        (
            1usize..4,
            prop::collection::vec(0u64..12, 3),
            prop::option::of("(a|b|rc|\\.post|\\.dev)[0-9]"),
        )
            .prop_map(|(n, parts, suffix)| {
                let release: Vec<String> = parts[..n].iter().map(u64::to_string).collect();
                format!("{}{}", release.join("."), suffix.unwrap_or_default())
            })
    }

    proptest! {
        #[test]
        fn order_is_total_and_consistent(eco in prop::sample::select(vec![Npm, CratesIo]),
                                         a in semver_strategy(), b in semver_strategy(), c in semver_strategy()) {
            let (a, b, c) = (EcoVersion::parse(eco, &a), EcoVersion::parse(eco, &b), EcoVersion::parse(eco, &c));
            let ab = a.compare(&b).unwrap();
            prop_assert_eq!(ab.reverse(), b.compare(&a).unwrap());
            prop_assert_eq!(ab == Ordering::Equal, a.key() == b.key());
            if ab != Ordering::Greater && b.compare(&c).unwrap() != Ordering::Greater {
                prop_assert_ne!(a.compare(&c).unwrap(), Ordering::Greater);
            }
        }

        #[test]
        fn pep440_keys_agree_with_equality(a in pep440_strategy(), b in pep440_strategy()) {
            let (a, b) = (EcoVersion::parse(PyPI, &a), EcoVersion::parse(PyPI, &b));
            prop_assert!(a.is_parsed() && b.is_parsed());
            prop_assert_eq!(a.compare(&b) == Some(Ordering::Equal), a.key() == b.key());
        }

        #[test]
        fn parse_never_panics(eco in prop::sample::select(Ecosystem::ALL.to_vec()), s in "\\PC{0,40}") {
            let v = EcoVersion::parse(eco, &s);
            let _ = v.key();
            prop_assert!(v.matches_exact(&EcoVersion::parse(eco, &s)));
        }
    }
}
