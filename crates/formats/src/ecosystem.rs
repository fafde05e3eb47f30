//! The ecosystems pkggate serves and their name rules.

use std::borrow::Cow;
use std::fmt;

/// An ecosystem as OSV names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Ecosystem {
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "PyPI")]
    PyPI,
    #[serde(rename = "crates.io")]
    CratesIo,
}

/// A string that names no ecosystem pkggate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ecosystem {input:?} (expected one of: npm, PyPI, crates.io){}", suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
pub struct UnknownEcosystem {
    pub input: String,
    pub suggestion: Option<&'static str>,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 3] = [Ecosystem::Npm, Ecosystem::PyPI, Ecosystem::CratesIo];

    /// The exact OSV ecosystem string (`npm`, `PyPI`, `crates.io`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::CratesIo => "crates.io",
        }
    }

    /// A short lower-case key used in configuration and CLI (`npm`, `pypi`, `cargo`).
    pub fn key(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "pypi",
            Ecosystem::CratesIo => "crates-io",
        }
    }

    /// Exact OSV name match, as used inside OSV records and the policy file.
    pub fn from_osv_name(s: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.osv_name() == s)
    }

    /// Lenient parse for command lines: accepts the OSV name in any case and common aliases
    /// (`pypi`, `cargo`, `crates`, `crates-io`).
    pub fn parse_lenient(s: &str) -> Result<Ecosystem, UnknownEcosystem> {
        match s.to_ascii_lowercase().as_str() {
            "npm" => Ok(Ecosystem::Npm),
            "pypi" | "pip" => Ok(Ecosystem::PyPI),
            "crates.io" | "crates-io" | "crates_io" | "crates" | "cargo" => Ok(Ecosystem::CratesIo),
            _ => Err(UnknownEcosystem {
                input: s.to_string(),
                suggestion: None,
            }),
        }
    }

    /// Strict parse (policy files): the exact OSV name; a case or alias mismatch is an error
    /// that suggests the right spelling.
    pub fn parse_strict(s: &str) -> Result<Ecosystem, UnknownEcosystem> {
        if let Some(e) = Ecosystem::from_osv_name(s) {
            return Ok(e);
        }
        let suggestion = Ecosystem::parse_lenient(s).ok().map(Ecosystem::osv_name);
        Err(UnknownEcosystem {
            input: s.to_string(),
            suggestion,
        })
    }

    /// The name in the ecosystem's normal form, used to compare names on both sides:
    /// npm names are exact (legacy mixed-case names are distinct packages); PyPI names follow
    /// PEP 503 (lower case, runs of `-`, `_`, `.` become one `-`); crates.io names are
    /// case-insensitive and treat `-` and `_` as the same.
    pub fn normalize_name(self, name: &str) -> Cow<'_, str> {
        match self {
            Ecosystem::Npm => Cow::Borrowed(name),
            Ecosystem::PyPI => pep503_normalize(name),
            Ecosystem::CratesIo => {
                if name.bytes().any(|b| b.is_ascii_uppercase() || b == b'_') {
                    Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
                } else {
                    Cow::Borrowed(name)
                }
            }
        }
    }
}

/// PEP 503 normalisation: `re.sub(r"[-_.]+", "-", name).lower()`.
pub fn pep503_normalize(name: &str) -> Cow<'_, str> {
    let already = {
        let mut prev_sep = false;
        name.bytes().all(|b| {
            let sep = matches!(b, b'-' | b'_' | b'.');
            // Only ASCII is known to be lower case byte by byte (`Σ` is not).
            let ok = b.is_ascii()
                && !b.is_ascii_uppercase()
                && b != b'_'
                && b != b'.'
                && !(sep && prev_sep);
            prev_sep = sep;
            ok
        })
    };
    if already {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            in_sep = false;
            out.extend(c.to_lowercase());
        }
    }
    Cow::Owned(out)
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_table() {
        for (input, want) in [
            ("Nasrtox", "nasrtox"),
            ("jw.util", "jw-util"),
            ("Foo__Bar", "foo-bar"),
            ("foo-._bar", "foo-bar"),
            ("requests", "requests"),
            ("zope.interface", "zope-interface"),
            ("Django", "django"),
            // Non-ASCII upper case is lowered too (the fast path once kept it).
            ("Σ", "σ"),
            ("ΣA", "σa"),
        ] {
            assert_eq!(Ecosystem::PyPI.normalize_name(input), want, "{input}");
        }
    }

    #[test]
    fn crates_and_npm_names() {
        assert_eq!(
            Ecosystem::CratesIo.normalize_name("Serde_Json"),
            "serde-json"
        );
        assert_eq!(
            Ecosystem::CratesIo.normalize_name("serde-json"),
            "serde-json"
        );
        assert_eq!(Ecosystem::Npm.normalize_name("JSONStream"), "JSONStream");
    }

    #[test]
    fn strict_parse_suggests() {
        let err = Ecosystem::parse_strict("pypi").unwrap_err();
        assert_eq!(err.suggestion, Some("PyPI"));
        assert!(err.to_string().contains("did you mean `PyPI`?"), "{err}");
        assert_eq!(
            Ecosystem::parse_strict("crates.io"),
            Ok(Ecosystem::CratesIo)
        );
        assert!(
            Ecosystem::parse_strict("maven")
                .unwrap_err()
                .suggestion
                .is_none()
        );
    }
}
