//! npm request paths: routing, package-name rules and tarball file names.

use super::raw::brief;

/// Longest npm package name (scope included), as `validate-npm-package-name` enforces.
pub const MAX_NAME_LEN: usize = 214;

/// Longest version or tag accepted in a path.
pub const MAX_SPEC_LEN: usize = 256;

/// What an npm registry request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpmRoute {
    /// `GET /<name>`, `/@scope%2fname`, `/@scope%2Fname`, `/@scope/name`.
    Packument { name: String },
    /// `GET /<name>/<version-or-tag>` (decoded; not yet resolved).
    VersionOrTag { name: String, spec: String },
    /// `GET /<name>/-/<filename>`; `version` is `filename` minus `<base>-` and `.tgz`.
    Tarball {
        name: String,
        filename: String,
        version: String,
    },
    /// `/-/<rest>`: `rest` exactly as requested (still percent-encoded, checked against
    /// traversal), e.g. `ping`, `whoami`, `v1/search`, `npm/v1/security/advisories/bulk`,
    /// `pkggate/health`.
    Special(String),
}

impl NpmRoute {
    /// The package name, for the package routes.
    pub fn name(&self) -> Option<&str> {
        match self {
            NpmRoute::Packument { name }
            | NpmRoute::VersionOrTag { name, .. }
            | NpmRoute::Tarball { name, .. } => Some(name),
            NpmRoute::Special(_) => None,
        }
    }
}

/// A package name that breaks npm's name rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid npm package name {:?}: {reason}", brief(.name))]
pub struct InvalidName {
    pub name: String,
    pub reason: &'static str,
}

/// A request path pkggate refuses to route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpmPathError {
    #[error("npm path {:?} does not start with `/`", brief(.path))]
    NotAbsolute { path: String },
    #[error("npm path {:?} contains the character {ch:?}, which is not allowed", brief(.path))]
    BadChar { path: String, ch: char },
    #[error("npm path {:?} has a malformed percent-escape or is not UTF-8 once decoded", brief(.path))]
    BadEscape { path: String },
    #[error("npm path {:?} is percent-encoded twice (`%25`); it is decoded only once", brief(.path))]
    DoubleEncoded { path: String },
    #[error("npm path {:?} has an empty segment", brief(.path))]
    EmptySegment { path: String },
    #[error("npm path {:?} has a `.` or `..` segment", brief(.path))]
    DotSegment { path: String },
    #[error("npm path {:?}: {source}", brief(.path))]
    BadName {
        path: String,
        #[source]
        source: InvalidName,
    },
    #[error("npm path {:?} has an invalid version or tag {:?}: {reason}", brief(.path), brief(.spec))]
    BadSpec {
        path: String,
        spec: String,
        reason: &'static str,
    },
    #[error("npm tarball {:?} in path {:?} is not named `{base}-<version>.tgz` for package {name:?}", brief(.filename), brief(.path))]
    TarballMismatch {
        path: String,
        name: String,
        base: String,
        filename: String,
    },
    #[error("npm path {:?} matches no registry route", brief(.path))]
    UnknownRoute { path: String },
}

/// Characters `encodeURIComponent` leaves alone: the only ones an npm name may contain.
fn is_url_safe_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '!' | '~' | '*' | '\'' | '(' | ')')
}

/// RFC 3986 `pchar` minus percent-escapes: what may stand unescaped in a path segment.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
        )
}

/// Check a package name against npm's rules (`validate-npm-package-name`): at most 214
/// characters; URL-safe characters only; unscoped names may not start with `.` or `_`;
/// scoped names are `@scope/name` with neither part empty or starting with `.`. Legacy
/// upper-case names are valid (names are never lower-cased).
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let bad = |reason| {
        Err(InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("the name is longer than 214 characters");
    }
    if let Some(scoped) = name.strip_prefix('@') {
        let Some((scope, pkg)) = scoped.split_once('/') else {
            return bad("a scoped name must be `@scope/name`");
        };
        if scope.is_empty() || pkg.is_empty() {
            return bad("a scoped name must be `@scope/name` with both parts non-empty");
        }
        if scope.starts_with('.') || pkg.starts_with('.') {
            return bad("a scope or name cannot start with `.`");
        }
        if !scope.chars().all(is_url_safe_name_char) || !pkg.chars().all(is_url_safe_name_char) {
            return bad("the name contains characters that are not URL-safe");
        }
        return Ok(());
    }
    if name.starts_with('.') || name.starts_with('_') {
        return bad("an unscoped name cannot start with `.` or `_`");
    }
    if !name.chars().all(is_url_safe_name_char) {
        return bad("the name contains characters that are not URL-safe");
    }
    if name.eq_ignore_ascii_case("node_modules") || name.eq_ignore_ascii_case("favicon.ico") {
        return bad("the name is reserved");
    }
    Ok(())
}

/// The unscoped part of a name (`@types/node` → `node`), which tarball file names start with.
pub fn base_name(name: &str) -> &str {
    match name.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((_, pkg)) => pkg,
        None => name,
    }
}

/// The name as the upstream registry wants it in a packument URL: `@scope%2fname` for
/// scoped names, the name itself otherwise.
pub fn escaped_name(name: &str) -> String {
    match name.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, pkg)) => format!("@{scope}%2f{pkg}"),
        None => name.to_string(),
    }
}

/// The version in a tarball file name: strip `<base>-` (the package's unscoped name) and
/// `.tgz`. `x-2.0.0-beta-2.tgz` for `x` is `2.0.0-beta-2`. `None` when the file name does not
/// have that shape or the version would be empty (never guessed).
pub fn tarball_version<'f>(name: &str, filename: &'f str) -> Option<&'f str> {
    let base = base_name(name);
    let v = filename
        .strip_prefix(base)?
        .strip_prefix('-')?
        .strip_suffix(".tgz")?;
    (!v.is_empty()).then_some(v)
}

/// `<base>-<version>.tgz`.
pub fn tarball_filename(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", base_name(name))
}

/// The proxy's tarball URL: `{base}/{name}/-/{base_name}-{version}.tgz` (scoped names keep
/// their literal `/`). Characters of the version outside `[A-Za-z0-9._~+-]` are
/// percent-encoded; [`parse_path`] decodes them back.
pub fn tarball_url(tarball_base: &str, name: &str, version: &str) -> String {
    let base = tarball_base.trim_end_matches('/');
    let mut out = String::with_capacity(base.len() + 2 * name.len() + version.len() + 8);
    out.push_str(base);
    out.push('/');
    out.push_str(name);
    out.push_str("/-/");
    out.push_str(base_name(name));
    out.push('-');
    for b in version.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'-') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out.push_str(".tgz");
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode once; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a decoded version or tag is refused, if it is.
pub(crate) fn spec_problem(spec: &str) -> Option<&'static str> {
    if spec.is_empty() {
        return Some("it is empty");
    }
    if spec.len() > MAX_SPEC_LEN {
        return Some("it is longer than 256 bytes");
    }
    if spec
        .chars()
        .any(|c| !(is_pchar(c) || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())))
    {
        return Some("it contains characters not allowed in a version or tag");
    }
    None
}

/// Route a raw request path (still percent-encoded, no query string).
///
/// Each segment is percent-decoded exactly once; `%2f`/`%2F` may only join a scope and a
/// name. Refused: `%25` (double encoding), `.`/`..` segments (also encoded), empty segments,
/// backslashes, control characters, characters that cannot appear in a URL path, names that
/// break npm's rules, and tarball file names not of the form `<base>-<version>.tgz`.
pub fn parse_path(path: &str) -> Result<NpmRoute, NpmPathError> {
    let p = || path.to_string();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(NpmPathError::NotAbsolute { path: p() });
    };
    if let Some(ch) = path
        .chars()
        .find(|&c| !(is_pchar(c) || c == '/' || c == '%'))
    {
        return Err(NpmPathError::BadChar { path: p(), ch });
    }
    if path.contains("%25") {
        return Err(NpmPathError::DoubleEncoded { path: p() });
    }
    if rest.is_empty() {
        return Err(NpmPathError::UnknownRoute { path: p() });
    }
    let raw_segs: Vec<&str> = rest.split('/').collect();
    let mut segs: Vec<String> = Vec::with_capacity(raw_segs.len());
    for raw in &raw_segs {
        if raw.is_empty() {
            return Err(NpmPathError::EmptySegment { path: p() });
        }
        let dec = percent_decode(raw).ok_or_else(|| NpmPathError::BadEscape { path: p() })?;
        if let Some(ch) = dec
            .chars()
            .find(|&c| c.is_control() || c == '\\' || c == '%')
        {
            return Err(if ch == '%' {
                NpmPathError::DoubleEncoded { path: p() }
            } else {
                NpmPathError::BadChar { path: p(), ch }
            });
        }
        for part in dec.split('/') {
            if part.is_empty() {
                return Err(NpmPathError::EmptySegment { path: p() });
            }
            if part == "." || part == ".." {
                return Err(NpmPathError::DotSegment { path: p() });
            }
        }
        segs.push(dec);
    }

    if segs[0] == "-" {
        let special = rest.split_once('/').map(|(_, s)| s).unwrap_or("");
        if special.is_empty() {
            return Err(NpmPathError::UnknownRoute { path: p() });
        }
        return Ok(NpmRoute::Special(special.to_string()));
    }

    let (name, tail) = if segs[0].starts_with('@') && !segs[0].contains('/') && segs.len() >= 2 {
        (format!("{}/{}", segs[0], segs[1]), &segs[2..])
    } else {
        (segs[0].clone(), &segs[1..])
    };
    validate_name(&name).map_err(|source| NpmPathError::BadName { path: p(), source })?;

    match tail {
        [] => Ok(NpmRoute::Packument { name }),
        [spec] if spec != "-" => {
            if let Some(reason) = spec_problem(spec) {
                return Err(NpmPathError::BadSpec {
                    path: p(),
                    spec: spec.clone(),
                    reason,
                });
            }
            Ok(NpmRoute::VersionOrTag {
                name,
                spec: spec.clone(),
            })
        }
        [dash, filename] if dash == "-" => {
            let Some(version) = tarball_version(&name, filename) else {
                return Err(NpmPathError::TarballMismatch {
                    path: p(),
                    base: base_name(&name).to_string(),
                    name,
                    filename: filename.clone(),
                });
            };
            if let Some(reason) = spec_problem(version) {
                return Err(NpmPathError::BadSpec {
                    path: p(),
                    spec: version.to_string(),
                    reason,
                });
            }
            Ok(NpmRoute::Tarball {
                version: version.to_string(),
                filename: filename.clone(),
                name,
            })
        }
        _ => Err(NpmPathError::UnknownRoute { path: p() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pack(name: &str) -> NpmRoute {
        NpmRoute::Packument { name: name.into() }
    }
    fn spec(name: &str, s: &str) -> NpmRoute {
        NpmRoute::VersionOrTag {
            name: name.into(),
            spec: s.into(),
        }
    }
    fn tgz(name: &str, file: &str, v: &str) -> NpmRoute {
        NpmRoute::Tarball {
            name: name.into(),
            filename: file.into(),
            version: v.into(),
        }
    }

    #[test]
    fn accepted_paths_table() {
        let table: Vec<(&str, NpmRoute)> = vec![
            ("/lodash", pack("lodash")),
            ("/JSONStream", pack("JSONStream")),
            ("/@types%2fnode", pack("@types/node")),
            ("/@types%2Fnode", pack("@types/node")),
            ("/@types/node", pack("@types/node")),
            ("/%40types%2fnode", pack("@types/node")),
            ("/@scope/_under", pack("@scope/_under")),
            ("/lodash/4.17.21", spec("lodash", "4.17.21")),
            ("/lodash/latest", spec("lodash", "latest")),
            ("/lodash/1.0.0%2Bbuild.1", spec("lodash", "1.0.0+build.1")),
            ("/@types%2fnode/latest", spec("@types/node", "latest")),
            ("/@types/node/26.6.7", spec("@types/node", "26.6.7")),
            (
                "/lodash/-/lodash-4.17.21.tgz",
                tgz("lodash", "lodash-4.17.21.tgz", "4.17.21"),
            ),
            (
                "/x/-/x-2.0.0-beta-2.tgz",
                tgz("x", "x-2.0.0-beta-2.tgz", "2.0.0-beta-2"),
            ),
            (
                "/left-pad/-/left-pad-1.3.0.tgz",
                tgz("left-pad", "left-pad-1.3.0.tgz", "1.3.0"),
            ),
            (
                "/@types/node/-/node-26.6.7.tgz",
                tgz("@types/node", "node-26.6.7.tgz", "26.6.7"),
            ),
            (
                "/@types%2fnode/-/node-26.6.7.tgz",
                tgz("@types/node", "node-26.6.7.tgz", "26.6.7"),
            ),
            (
                "/@types%2Fnode/-/node-1.0.0-rc.1.tgz",
                tgz("@types/node", "node-1.0.0-rc.1.tgz", "1.0.0-rc.1"),
            ),
            (
                "/JSONStream/-/JSONStream-1.3.5.tgz",
                tgz("JSONStream", "JSONStream-1.3.5.tgz", "1.3.5"),
            ),
            (
                "/x/-/x-1.0.0-%C3%A9.tgz",
                tgz("x", "x-1.0.0-é.tgz", "1.0.0-é"),
            ),
            ("/-/ping", NpmRoute::Special("ping".into())),
            ("/-/whoami", NpmRoute::Special("whoami".into())),
            ("/-/v1/search", NpmRoute::Special("v1/search".into())),
            (
                "/-/npm/v1/security/advisories/bulk",
                NpmRoute::Special("npm/v1/security/advisories/bulk".into()),
            ),
            (
                "/-/npm/v1/attestations/@s%2fn@1.0.0",
                NpmRoute::Special("npm/v1/attestations/@s%2fn@1.0.0".into()),
            ),
            (
                "/-/pkggate/health",
                NpmRoute::Special("pkggate/health".into()),
            ),
        ];
        for (path, want) in table {
            assert_eq!(parse_path(path), Ok(want), "{path}");
        }
    }

    #[test]
    fn hostile_paths_table() {
        use NpmPathError as E;
        type Check = fn(&NpmPathError) -> bool;
        let table: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::NotAbsolute { .. })),
            ("lodash", |e| matches!(e, E::NotAbsolute { .. })),
            ("/", |e| matches!(e, E::UnknownRoute { .. })),
            ("/..", |e| matches!(e, E::DotSegment { .. })),
            ("/.", |e| matches!(e, E::DotSegment { .. })),
            ("/lodash/..", |e| matches!(e, E::DotSegment { .. })),
            ("/lodash/../../etc/passwd", |e| {
                matches!(e, E::DotSegment { .. })
            }),
            ("/%2e%2e/x", |e| matches!(e, E::DotSegment { .. })),
            ("/%2E%2E", |e| matches!(e, E::DotSegment { .. })),
            ("/x/%2e", |e| matches!(e, E::DotSegment { .. })),
            ("/@s%2f..", |e| matches!(e, E::DotSegment { .. })),
            ("/..%2f..%2fadmin", |e| matches!(e, E::DotSegment { .. })),
            ("/-/..%2fadmin", |e| matches!(e, E::DotSegment { .. })),
            ("/-/../x", |e| matches!(e, E::DotSegment { .. })),
            ("/@s%252fn", |e| matches!(e, E::DoubleEncoded { .. })),
            ("/%252e%252e", |e| matches!(e, E::DoubleEncoded { .. })),
            ("//lodash", |e| matches!(e, E::EmptySegment { .. })),
            ("/lodash/", |e| matches!(e, E::EmptySegment { .. })),
            ("/lodash//1.0.0", |e| matches!(e, E::EmptySegment { .. })),
            ("/@s%2f%2fn", |e| matches!(e, E::EmptySegment { .. })),
            ("/-/", |e| matches!(e, E::EmptySegment { .. })),
            ("/-", |e| matches!(e, E::UnknownRoute { .. })),
            ("/a\\b", |e| matches!(e, E::BadChar { ch: '\\', .. })),
            ("/a%5cb", |e| matches!(e, E::BadChar { ch: '\\', .. })),
            ("/a%00b", |e| matches!(e, E::BadChar { ch: '\0', .. })),
            ("/a\nb", |e| matches!(e, E::BadChar { ch: '\n', .. })),
            ("/a%0ab", |e| matches!(e, E::BadChar { ch: '\n', .. })),
            ("/a b", |e| matches!(e, E::BadChar { ch: ' ', .. })),
            ("/a?b", |e| matches!(e, E::BadChar { ch: '?', .. })),
            ("/é", |e| matches!(e, E::BadChar { ch: 'é', .. })),
            ("/a%", |e| matches!(e, E::BadEscape { .. })),
            ("/a%2", |e| matches!(e, E::BadEscape { .. })),
            ("/a%zz", |e| matches!(e, E::BadEscape { .. })),
            ("/a%c3", |e| matches!(e, E::BadEscape { .. })),
            ("/.hidden", |e| matches!(e, E::BadName { .. })),
            ("/_private", |e| matches!(e, E::BadName { .. })),
            ("/node_modules", |e| matches!(e, E::BadName { .. })),
            ("/favicon.ico", |e| matches!(e, E::BadName { .. })),
            ("/a%20b", |e| matches!(e, E::BadName { .. })),
            ("/a%2fb", |e| matches!(e, E::BadName { .. })),
            ("/@scope", |e| matches!(e, E::BadName { .. })),
            ("/@%2fname", |e| matches!(e, E::BadName { .. })),
            ("/@s%2fn%2fx", |e| matches!(e, E::BadName { .. })),
            ("/@s/.n", |e| matches!(e, E::BadName { .. })),
            ("/a@b", |e| matches!(e, E::BadName { .. })),
            ("/lodash/1.0.0%2f..", |e| matches!(e, E::DotSegment { .. })),
            ("/lodash/a%2fb", |e| matches!(e, E::BadSpec { .. })),
            ("/lodash/a%20b", |e| matches!(e, E::BadSpec { .. })),
            ("/lodash/-", |e| matches!(e, E::UnknownRoute { .. })),
            ("/lodash/-/", |e| matches!(e, E::EmptySegment { .. })),
            ("/lodash/-rev/1-abc", |e| {
                matches!(e, E::UnknownRoute { .. })
            }),
            ("/lodash/1.0.0/extra", |e| {
                matches!(e, E::UnknownRoute { .. })
            }),
            ("/lodash/-/lodash-1.0.0.tgz/x", |e| {
                matches!(e, E::UnknownRoute { .. })
            }),
            ("/lodash/-/other-1.0.0.tgz", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/lodash/-/lodash-.tgz", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/lodash/-/lodash1.0.0.tgz", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/lodash/-/lodash-1.0.0.tar.gz", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/lodash/-/lodash-1.0.0", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/@s/n/-/@s/n-1.0.0.tgz", |e| {
                matches!(e, E::UnknownRoute { .. })
            }),
            ("/@s/n/-/s-n-1.0.0.tgz", |e| {
                matches!(e, E::TarballMismatch { .. })
            }),
            ("/lodash/-/lodash-1%2f0.tgz", |e| {
                matches!(e, E::BadSpec { .. })
            }),
            ("/lodash/-/lodash-1.0%20.tgz", |e| {
                matches!(e, E::BadSpec { .. })
            }),
        ];
        for (path, check) in table {
            match parse_path(path) {
                Ok(r) => panic!("{path:?} accepted as {r:?}"),
                Err(e) => {
                    assert!(check(&e), "{path:?}: unexpected {e:?}");
                    let msg = e.to_string();
                    let shown = brief(path);
                    assert!(
                        msg.contains(&format!("{shown:?}")),
                        "{path:?}: message does not quote the input: {msg}"
                    );
                }
            }
        }
    }

    #[test]
    fn name_rules() {
        assert!(validate_name(&"a".repeat(214)).is_ok());
        assert!(validate_name(&"a".repeat(215)).is_err());
        assert!(validate_name(&format!("@s/{}", "a".repeat(211))).is_ok());
        assert!(validate_name(&format!("@s/{}", "a".repeat(212))).is_err());
        for ok in [
            "JSONStream",
            "a.b",
            "-x",
            "x_y",
            "@s/n",
            "@S/N",
            "a!b",
            "(x)",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".a", "_a", "a/b", "@s", "@/n", "@s/", "@s/n/x", "a b", "a%b", "a\\b",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn tarball_version_stripping_table() {
        for (name, file, want) in [
            ("x", "x-2.0.0-beta-2.tgz", Some("2.0.0-beta-2")),
            ("x", "x-2.tgz", Some("2")),
            ("left-pad", "left-pad-1.3.0.tgz", Some("1.3.0")),
            ("left", "left-pad-1.3.0.tgz", Some("pad-1.3.0")),
            ("left-pad", "left-1.3.0.tgz", None),
            ("@types/node", "node-26.6.7.tgz", Some("26.6.7")),
            ("@types/node", "types-node-26.6.7.tgz", None),
            (
                "next",
                "next-16.5.0-canary.38.tgz",
                Some("16.5.0-canary.38"),
            ),
            (
                "react",
                "react-0.0.0-experimental-dc9aed36-20261027.tgz",
                Some("0.0.0-experimental-dc9aed36-20261027"),
            ),
            ("a", "a-1.0.0+build-7.tgz", Some("1.0.0+build-7")),
            ("a", "a-.tgz", None),
            ("a", "a-1.0.0.tar.gz", None),
            ("a", "A-1.0.0.tgz", None),
            ("JSONStream", "JSONStream-1.0.0.tgz", Some("1.0.0")),
            ("JSONStream", "jsonstream-1.0.0.tgz", None),
        ] {
            assert_eq!(tarball_version(name, file), want, "{name} {file}");
        }
    }

    #[test]
    fn urls_and_names() {
        assert_eq!(base_name("@types/node"), "node");
        assert_eq!(base_name("lodash"), "lodash");
        assert_eq!(escaped_name("@types/node"), "@types%2fnode");
        assert_eq!(escaped_name("JSONStream"), "JSONStream");
        assert_eq!(tarball_filename("@types/node", "1.0.0"), "node-1.0.0.tgz");
        assert_eq!(
            tarball_url("http://127.0.0.1:8080/", "@types/node", "1.0.0+b"),
            "http://127.0.0.1:8080/@types/node/-/node-1.0.0+b.tgz"
        );
        assert_eq!(
            tarball_url("http://h", "x", "1.0.0-é"),
            "http://h/x/-/x-1.0.0-%C3%A9.tgz"
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse_path(&s);
            let _ = parse_path(&format!("/{s}"));
        }

        #[test]
        fn parser_never_panics_on_pathish(s in "(/|%|2|f|F|e|E|5|c|\\.|@|-|a|_|t|g|z|~|\\\\)*") {
            if let Ok(route) = parse_path(&s) {
                // Whatever is accepted never carries traversal in a decoded component.
                let parts: Vec<String> = match route {
                    NpmRoute::Packument { name } => vec![name],
                    NpmRoute::VersionOrTag { name, spec } => vec![name, spec],
                    NpmRoute::Tarball { name, filename, version } => vec![name, filename, version],
                    NpmRoute::Special(s) => vec![s],
                };
                for part in parts {
                    prop_assert!(!part.contains('\\') && !part.contains("%25"), "{s:?}");
                    for seg in part.split('/') {
                        prop_assert!(seg != ".." && seg != "." && !seg.is_empty(), "{s:?}");
                    }
                }
            }
        }

        #[test]
        fn tarball_urls_round_trip(
            scope in prop::option::of("[a-z][a-z0-9-]{0,8}"),
            pkg in "[a-zA-Z][a-zA-Z0-9._-]{0,12}",
            version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-zA-Z0-9.-]{1,10})?(\\+[a-z0-9.]{1,6})?|[^\\p{C}/%\\\\ ]{1,12}",
        ) {
            let name = match scope { Some(s) => format!("@{s}/{pkg}"), None => pkg };
            prop_assume!(validate_name(&name).is_ok());
            prop_assume!(version != "." && version != ".." && spec_problem(&version).is_none());
            let url = tarball_url("http://proxy:1/", &name, &version);
            let path = url.strip_prefix("http://proxy:1").unwrap();
            let route = parse_path(path).unwrap();
            prop_assert_eq!(route, NpmRoute::Tarball {
                filename: tarball_filename(&name, &version),
                name,
                version,
            });
        }
    }
}
