//! Deriving the kind and version of a distribution file from its filename (PROTOCOLS §2.8).
//!
//! The project name is always known (it is the page being served), so the version is found by
//! stripping a prefix that normalises (PEP 503) to the project name, never by splitting on a
//! guessed `-`:
//!
//! * wheel `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`: exactly 5 or 6 `-`
//!   parts, the first normalising to the project, a build tag starting with a digit;
//! * sdist (`.tar.gz`, `.zip`, `.tar.bz2`, `.tgz`, `.tar`, `.tar.xz`, `.tar.zst`, `.tar.lz`,
//!   `.tar.lzma`, `.tbz`, `.tlz`, `.txz`): the remainder after the name prefix is the version;
//!   when the remainder is `{version}.{platform}` with a distutils platform
//!   (`x-1.0.linux-x86_64.tar.gz`, `x-1.0.win32.zip`) it is a `bdist_dumb` archive and the
//!   version stops before the platform;
//! * egg `{name}-{version}(-py{X.Y})(-{platform})?.egg`;
//! * `bdist_wininst` / `bdist_msi` `{name}-{version}.{platform}(-py{X.Y})?(-…)?.exe|.msi`;
//!   without a recognisable platform the version is unknown;
//! * anything else (`.rpm`, `.dmg`, `.deb`, …) is [`FileKind::Other`] with an unknown version.
//!
//! A file whose name does not start with the project name, or whose version part is empty or
//! contains characters no version has, gets `version: None`: unknown, never a guess. Whether an
//! unknown version is served is the caller's policy decision.

use crate::ecosystem::pep503_normalize;
use crate::version::MAX_VERSION_LEN;

/// Longest filename parsed; longer names get an unknown version (bounded work).
pub const MAX_FILENAME_LEN: usize = 1024;

/// What kind of distribution a filename denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// `.whl` (PEP 427).
    Wheel,
    /// A source archive (PEP 625 or legacy extension).
    Sdist,
    /// An archive with a distutils platform after the version (`bdist_dumb`).
    BdistDumb,
    /// `.egg`.
    Egg,
    /// `.exe` (`bdist_wininst`).
    WinInst,
    /// `.msi` (`bdist_msi`).
    Msi,
    /// Anything else (`.rpm`, `.dmg`, unknown extensions).
    Other,
}

/// The result of [`parse_filename`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    pub kind: FileKind,
    /// The version as spelled in the filename; `None` when it cannot be derived with
    /// certainty (name mismatch, unknown layout, implausible characters).
    pub version: Option<String>,
}

/// Source archive extensions, as PyPI and uv accept them.
pub const SDIST_EXTENSIONS: &[&str] = &[
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tar.lzma",
    ".tar.lz",
    ".tar",
    ".tgz",
    ".tbz",
    ".tlz",
    ".txz",
    ".zip",
];

/// distutils platform names (`get_platform()`) start with one of these; in a filename they
/// follow the version after a `.`. A token ending in `-` must be followed by more text; the
/// others must be followed by the end, `-` or `.`.
const PLATFORM_PREFIXES: &[&str] = &[
    "win32", "win-", "linux-", "macosx-", "darwin-", "cygwin-", "freebsd-", "openbsd-", "netbsd-",
    "solaris-", "sunos-", "aix-", "hp-ux-", "irix-", "irix64-", "mingw", "msys",
];

/// Parse `filename` as a file of `project` (any spelling; compared in PEP 503 form).
pub fn parse_filename(project: &str, filename: &str) -> ParsedFile {
    let (kind, version) = parse_filename_str(project, filename);
    ParsedFile {
        kind,
        version: version.map(str::to_string),
    }
}

/// [`parse_filename`] with the version borrowed from `filename` (it is always a part of it).
pub(crate) fn parse_filename_str<'f>(
    project: &str,
    filename: &'f str,
) -> (FileKind, Option<&'f str>) {
    parse_filename_normalized(&pep503_normalize(project), filename)
}

/// [`parse_filename_str`] with `project` already PEP 503-normalised (by `pep503_normalize`
/// of what the caller would pass to [`parse_filename`]).
pub(crate) fn parse_filename_normalized<'f>(
    project: &str,
    filename: &'f str,
) -> (FileKind, Option<&'f str>) {
    let kind = kind_of(filename);
    if filename.len() > MAX_FILENAME_LEN {
        return (kind, None);
    }
    if project.is_empty() {
        return (kind, None);
    }
    match version_of(kind, project, filename) {
        Some((kind, v)) if plausible_version(v) => (kind, Some(v)),
        Some((kind, _)) => (kind, None),
        None => (kind, None),
    }
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn strip_suffix_ci<'s>(s: &'s str, suffix: &str) -> Option<&'s str> {
    if ends_with_ci(s, suffix) {
        Some(&s[..s.len() - suffix.len()])
    } else {
        None
    }
}

fn sdist_stem(filename: &str) -> Option<&str> {
    SDIST_EXTENSIONS
        .iter()
        .find_map(|ext| strip_suffix_ci(filename, ext))
}

/// The kind by extension alone (archives are sdists until the version part shows a platform).
fn kind_of(filename: &str) -> FileKind {
    if ends_with_ci(filename, ".whl") {
        FileKind::Wheel
    } else if ends_with_ci(filename, ".egg") {
        FileKind::Egg
    } else if ends_with_ci(filename, ".exe") {
        FileKind::WinInst
    } else if ends_with_ci(filename, ".msi") {
        FileKind::Msi
    } else if sdist_stem(filename).is_some() {
        FileKind::Sdist
    } else {
        FileKind::Other
    }
}

/// The refined kind and the raw version part, before the plausibility check.
fn version_of<'f>(kind: FileKind, project: &str, filename: &'f str) -> Option<(FileKind, &'f str)> {
    match kind {
        FileKind::Wheel => {
            let stem = strip_suffix_ci(filename, ".whl")?;
            // Split at `-` (ASCII: every offset is a char boundary), at most 6 parts.
            let mut parts = [""; 6];
            let mut n = 0;
            let mut start = 0;
            for dash in memchr::memchr_iter(b'-', stem.as_bytes()) {
                *parts.get_mut(n)? = stem.get(start..dash)?;
                n += 1;
                start = dash + 1;
            }
            *parts.get_mut(n)? = stem.get(start..)?;
            n += 1;
            let parts = &parts[..n];
            if !(parts.len() == 5 || parts.len() == 6) || parts.iter().any(|p| p.is_empty()) {
                return None;
            }
            if pep503_normalize(parts[0]) != project {
                return None;
            }
            if parts.len() == 6 && !parts[2].starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            Some((kind, parts[1]))
        }
        FileKind::Sdist | FileKind::BdistDumb => {
            let rest = strip_project_prefix(project, sdist_stem(filename)?)?;
            Some(match platform_split(rest) {
                Some(v) => (FileKind::BdistDumb, v),
                None => (FileKind::Sdist, rest),
            })
        }
        FileKind::Egg => {
            let rest = strip_project_prefix(project, strip_suffix_ci(filename, ".egg")?)?;
            let mut parts = rest.split('-');
            let version = parts.next()?;
            if let Some(py) = parts.next() {
                let b = py.as_bytes();
                if !(b.len() >= 3 && b.starts_with(b"py") && b[2].is_ascii_digit()) {
                    return None;
                }
            }
            Some((kind, version))
        }
        FileKind::WinInst | FileKind::Msi => {
            let ext = if kind == FileKind::WinInst {
                ".exe"
            } else {
                ".msi"
            };
            let rest = strip_project_prefix(project, strip_suffix_ci(filename, ext)?)?;
            Some((kind, platform_split(rest)?))
        }
        FileKind::Other => None,
    }
}

/// The rest of `stem` after a prefix that normalises to `project` and its `-`.
///
/// Equivalent to comparing `pep503_normalize(&stem[..i])` with `project` at every `-`, but
/// normalises incrementally, comparing as it goes: O(n), no allocation, and it stops as
/// soon as the normalised prefix is no longer a prefix of the project (it only grows, so it
/// could never become equal).
fn strip_project_prefix<'s>(project: &str, stem: &'s str) -> Option<&'s str> {
    let p = project.as_bytes();
    // `p[..len]` is the normalised prefix of `stem` read so far.
    let mut len = 0;
    let mut in_sep = false;
    for (i, c) in stem.char_indices() {
        if c == '-' && len == p.len() {
            let rest = &stem[i + 1..];
            return (!rest.is_empty()).then_some(rest);
        }
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                if p.get(len) != Some(&b'-') {
                    return None;
                }
                len += 1;
            }
            in_sep = true;
        } else {
            in_sep = false;
            for l in c.to_lowercase() {
                let mut buf = [0u8; 4];
                let enc = l.encode_utf8(&mut buf).as_bytes();
                if p.get(len..len + enc.len()) != Some(enc) {
                    return None;
                }
                len += enc.len();
            }
        }
    }
    None
}

/// `{version}.{platform}…` → `{version}`, for a recognised distutils platform.
fn platform_split(rest: &str) -> Option<&str> {
    rest.match_indices('.').find_map(|(i, _)| {
        let after = &rest[i + 1..];
        let is_platform = PLATFORM_PREFIXES.iter().any(|p| {
            if let Some(tail) = after.strip_prefix(p) {
                if p.ends_with('-') {
                    !tail.is_empty()
                } else {
                    tail.is_empty() || tail.starts_with(['-', '.'])
                }
            } else {
                false
            }
        });
        (is_platform && i > 0).then(|| &rest[..i])
    })
}

/// Versions are made of ASCII letters, digits and `. _ + ! -`; anything else means the
/// filename is not understood.
fn plausible_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VERSION_LEN
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'!' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FileKind::*;
    use proptest::prelude::*;

    fn check(project: &str, filename: &str, kind: FileKind, version: Option<&str>) {
        let got = parse_filename(project, filename);
        assert_eq!(
            got,
            ParsedFile {
                kind,
                version: version.map(str::to_string)
            },
            "{project} / {filename}"
        );
    }

    /// PROTOCOLS §5 case 37, exactly.
    #[test]
    fn corpus_case_37() {
        let table: &[(&str, &str, FileKind, Option<&str>)] = &[
            (
                "requests",
                "requests-2.9.2-py2.py3-none-any.whl",
                Wheel,
                Some("2.9.2"),
            ),
            (
                "python-dateutil",
                "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
                Wheel,
                Some("2.9.0.post0"),
            ),
            (
                "python-dateutil",
                "python-dateutil-2.2.tar.gz",
                Sdist,
                Some("2.2"),
            ),
            ("django", "Django-1.0.tar.gz", Sdist, Some("1.0")),
            (
                "zope-interface",
                "zope.interface-5.4.0.tar.gz",
                Sdist,
                Some("5.4.0"),
            ),
            ("pytz", "pytz-2004b.2.tar.gz", Sdist, Some("2004b.2")),
            ("pytz", "pytz-2006g-py2.4.egg", Egg, Some("2006g")),
            ("foo", "foo-1.0-1-py3-none-any.whl", Wheel, Some("1.0")),
            (
                "torch",
                "torch-2.3.0+cpu-cp311-cp311-linux_x86_64.whl",
                Wheel,
                Some("2.3.0+cpu"),
            ),
            ("numpy", "numpy-1.26.4.tar.gz", Sdist, Some("1.26.4")),
            ("x", "x-1.0.zip", Sdist, Some("1.0")),
            ("x", "x-1.0.tar.bz2", Sdist, Some("1.0")),
            ("x", "x-1.0.win32.exe", WinInst, Some("1.0")),
            ("x", "x-1.0.linux-x86_64.tar.gz", BdistDumb, Some("1.0")),
        ];
        for (project, filename, kind, version) in table {
            check(project, filename, *kind, *version);
        }
    }

    #[test]
    fn more_layouts() {
        let table: &[(&str, &str, FileKind, Option<&str>)] = &[
            // Real numpy installers.
            (
                "numpy",
                "numpy-1.5.1.win32-py2.6-nosse.exe",
                WinInst,
                Some("1.5.1"),
            ),
            (
                "numpy",
                "numpy-1.0.1.dev3460.win32-py2.4.exe",
                WinInst,
                Some("1.0.1.dev3460"),
            ),
            (
                "numpy",
                "numpy-1.7.0.win-amd64-py2.7.exe",
                WinInst,
                Some("1.7.0"),
            ),
            ("numpy", "numpy-1.0.win32-py2.5.msi", Msi, Some("1.0")),
            ("x", "x-1.0.exe", WinInst, None),
            ("pytz", "pytz-2011b-py3.1.egg", Egg, Some("2011b")),
            ("pytz", "pytz-2005k.tar.bz2", Sdist, Some("2005k")),
            (
                "zope-interface",
                "zope.interface-3.5.0-py2.5-linux-i686.egg",
                Egg,
                Some("3.5.0"),
            ),
            ("foo", "foo-1.0.egg", Egg, Some("1.0")),
            ("foo", "foo-bar-1.0-py2.4.egg", Egg, None),
            ("x", "x-1.0.win32.zip", BdistDumb, Some("1.0")),
            (
                "x",
                "x-1.0.macosx-10.9-x86_64.tar.gz",
                BdistDumb,
                Some("1.0"),
            ),
            ("x", "X-1.0.TAR.GZ", Sdist, Some("1.0")),
            ("x", "x-1.0.tgz", Sdist, Some("1.0")),
            ("x", "x-1.0.tar.zst", Sdist, Some("1.0")),
            ("x", "x-1.0.tar.lzma", Sdist, Some("1.0")),
            ("x", "x-1.0-SNAPSHOT.tar.gz", Sdist, Some("1.0-SNAPSHOT")),
            // Name does not belong to the project.
            ("requests", "urllib3-1.0.tar.gz", Sdist, None),
            ("requests", "urllib3-1.0-py3-none-any.whl", Wheel, None),
            ("foo", "foobar-1.0.tar.gz", Sdist, None),
            // Wheels must have 5 or 6 parts and a numeric build tag.
            ("foo", "foo-1.0-py3-none-any-extra-x.whl", Wheel, None),
            ("foo", "foo-1.0-none-any.whl", Wheel, None),
            ("foo", "foo-1.0-x1-py3-none-any.whl", Wheel, None),
            (
                "python-dateutil",
                "python-dateutil-2.2-py3-none-any.whl",
                Wheel,
                None,
            ),
            ("foo", "foo--py3-none-any.whl", Wheel, None),
            // Empty or implausible versions.
            ("foo", "foo-.tar.gz", Sdist, None),
            ("foo", "foo.tar.gz", Sdist, None),
            ("foo", "foo-1.0 beta.tar.gz", Sdist, None),
            ("foo", "foo-<script>.zip", Sdist, None),
            // Other kinds.
            ("foo", "foo-1.0-1.noarch.rpm", Other, None),
            ("foo", "foo-1.0.dmg", Other, None),
            ("foo", "", Other, None),
            ("", "-1.0.tar.gz", Sdist, None),
        ];
        for (project, filename, kind, version) in table {
            check(project, filename, *kind, *version);
        }
    }

    fn version_strategy() -> impl Strategy<Value = String> {
        (
            prop::option::of(1u8..3),
            prop::collection::vec(0u32..3000, 1..4),
            prop::option::of((prop::sample::select(vec!["a", "b", "rc"]), 0u8..20)),
            prop::option::of(0u8..20),
            prop::option::of(0u8..20),
            prop::option::of("[a-z0-9]{1,6}"),
        )
            .prop_map(|(epoch, release, pre, post, dev, local)| {
                let mut s = String::new();
                if let Some(e) = epoch {
                    s.push_str(&format!("{e}!"));
                }
                let rel: Vec<String> = release.iter().map(u32::to_string).collect();
                s.push_str(&rel.join("."));
                if let Some((l, n)) = pre {
                    s.push_str(&format!("{l}{n}"));
                }
                if let Some(n) = post {
                    s.push_str(&format!(".post{n}"));
                }
                if let Some(n) = dev {
                    s.push_str(&format!(".dev{n}"));
                }
                if let Some(l) = local {
                    s.push('+');
                    s.push_str(&l);
                }
                s
            })
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9]{0,6}([-_.][A-Za-z0-9]{1,6}){0,3}"
    }

    proptest! {
        #[test]
        fn never_panics(project in "\\PC{0,20}", filename in "\\PC{0,80}") {
            let _ = parse_filename(&project, &filename);
        }

        #[test]
        fn never_panics_on_near_misses(
            project in "[a-z._-]{1,8}",
            filename in "[a-zA-Z0-9._+!-]{0,40}(\\.whl|\\.tar\\.gz|\\.egg|\\.exe|\\.msi|\\.zip)",
        ) {
            let parsed = parse_filename(&project, &filename);
            if let Some(v) = parsed.version {
                prop_assert!(!v.is_empty());
            }
        }

        #[test]
        fn prefix_strip_matches_naive(project in "[a-zA-Z._-]{1,6}", stem in "[a-zA-Z0-9._-]{0,16}") {
            let project = pep503_normalize(&project).into_owned();
            let naive = stem.match_indices('-').find_map(|(i, _)| {
                let rest = &stem[i + 1..];
                (pep503_normalize(&stem[..i]) == project.as_str()).then_some(rest)
            });
            let naive = naive.filter(|r| !r.is_empty());
            prop_assert_eq!(strip_project_prefix(&project, &stem), naive);
        }

        /// The same with characters whose lower case is longer or context-dependent.
        #[test]
        fn prefix_strip_matches_naive_unicode(
            project in "[a-zİiß̇Σσς._-]{1,6}",
            stem in "[a-zİIiß̇Σσς0-9._-]{0,16}",
        ) {
            let project = pep503_normalize(&project).into_owned();
            let naive = stem.match_indices('-').find_map(|(i, _)| {
                let rest = &stem[i + 1..];
                (pep503_normalize(&stem[..i]) == project.as_str()).then_some(rest)
            });
            let naive = naive.filter(|r| !r.is_empty());
            prop_assert_eq!(strip_project_prefix(&project, &stem), naive);
        }

        #[test]
        fn round_trip(
            name in name_strategy(),
            version in version_strategy(),
            layout in 0usize..7,
        ) {
            let escaped = pep503_normalize(&name).replace('-', "_");
            let (filename, kind) = match layout {
                0 => (format!("{escaped}-{version}-py3-none-any.whl"), Wheel),
                1 => (format!("{escaped}-{version}-7-cp311-cp311-manylinux_2_17_x86_64.whl"), Wheel),
                2 => (format!("{name}-{version}.tar.gz"), Sdist),
                3 => (format!("{name}-{version}.zip"), Sdist),
                4 => (format!("{escaped}-{version}-py2.7.egg"), Egg),
                5 => (format!("{name}-{version}.win-amd64-py2.7.exe"), WinInst),
                _ => (format!("{name}-{version}.linux-x86_64.tar.gz"), BdistDumb),
            };
            let got = parse_filename(&name, &filename);
            prop_assert_eq!(got.kind, kind);
            prop_assert_eq!(got.version.as_deref(), Some(version.as_str()), "{}", filename);
            // The same file never belongs to a different project.
            let other = format!("{name}x");
            let got = parse_filename(&other, &filename);
            prop_assert_eq!(got.version, None);
        }
    }
}
