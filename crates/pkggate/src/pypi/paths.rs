//! The file URL scheme pkggate hands out, and its safe mapping back to upstream.
//!
//! Every rewritten URL is `<base>/files/<project>/…/<filename>` (the project in PEP 503
//! normal form, so a URL pinned in a lockfile still names its project):
//!
//! * `/files/<project>/<path>`: a file on the configured files host, under
//!   `PYPI_UPSTREAM_FILES`; `<path>` is the upstream path relative to that base, as
//!   upstream wrote it. It maps back to `PYPI_UPSTREAM_FILES` joined with `<path>` and
//!   nowhere else: every segment is checked (no empty, `.`, `..`, encoded `/`, `\` or
//!   control characters, also after percent-decoding) and the result must still be under
//!   the base.
//! * `/files/<project>/~u/<token>/<filename>`: any other URL the index gave (relative URLs
//!   on the simple host, other hosts). `<token>` is the hex of the upstream URL followed by
//!   `.` and an HMAC-SHA256 (128 bits) over project, URL and filename with a server key
//!   ([`UrlSigner`], kept in a file beside the mirror database so tokens survive restarts).
//!   A client cannot forge a token, so it cannot steer pkggate to another host.
//!
//! `<file URL>.metadata` is the PEP 658 sibling of either form.
//!
//! Independently of the URL, the file gate checks that the index of `<project>` lists the
//! filename at exactly this upstream URL before anything is fetched.

use sha2::{Digest, Sha256};
use url::Url;

/// Why a file path was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("malformed path: {0}")]
    Malformed(&'static str),
    #[error("path traversal or encoded separator refused")]
    Traversal,
    #[error("project name in the path is not a project name in normal form: {0:?}")]
    ProjectName(String),
    #[error("invalid or forged file token")]
    BadToken,
}

/// Decode `%XX` escapes; `None` on a broken escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode one path segment (keeps unreserved characters and a few safe ones).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~+!$&'()*,;=:@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Check one raw (still percent-encoded) path segment; returns it decoded.
pub fn check_segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::Malformed("empty path segment"));
    }
    let decoded = percent_decode(raw).ok_or(PathError::Malformed("bad percent escape"))?;
    if decoded == "."
        || decoded == ".."
        || decoded.contains(['/', '\\'])
        || decoded.chars().any(char::is_control)
        || raw.contains('\\')
    {
        return Err(PathError::Traversal);
    }
    Ok(decoded)
}

/// A parsed `/files/…` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTarget {
    pub project: String,
    /// The distribution's filename (without `.metadata`).
    pub filename: String,
    /// The upstream URL of the distribution file (not of `.metadata`).
    pub upstream: Url,
    /// The PEP 658 `.metadata` sibling was asked for.
    pub metadata: bool,
}

/// HMAC-SHA256 signer for token URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> UrlSigner {
        UrlSigner { key }
    }

    /// A random key (per process).
    pub fn random() -> UrlSigner {
        let mut h = Sha256::new();
        use std::hash::{BuildHasher, Hasher};
        for i in 0..4u64 {
            let mut x = std::collections::hash_map::RandomState::new().build_hasher();
            x.write_u64(i);
            h.update(x.finish().to_le_bytes());
        }
        h.update(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        h.update(std::process::id().to_le_bytes());
        UrlSigner::new(h.finalize().into())
    }

    /// The key from `path` (created with a random key when missing); a random per-process
    /// key when the file cannot be read or written.
    pub fn persistent(path: &std::path::Path) -> UrlSigner {
        if let Ok(b) = std::fs::read(path)
            && let Ok(k) = <[u8; 32]>::try_from(b.as_slice())
        {
            return UrlSigner::new(k);
        }
        let s = UrlSigner::random();
        if std::fs::write(path, s.key).is_err() {
            tracing::warn!(file = %path.display(), "cannot persist the PyPI URL key; off-host file URLs will not survive a restart");
        }
        s
    }

    fn mac(&self, project: &str, url: &str, filename: &str) -> String {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&self.key);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let mut inner = Sha256::new();
        inner.update(&ipad);
        for part in [project, url, filename] {
            inner.update((part.len() as u64).to_le_bytes());
            inner.update(part.as_bytes());
        }
        let mut outer = Sha256::new();
        outer.update(&opad);
        outer.update(inner.finalize());
        hex::encode(&outer.finalize()[..16])
    }
}

/// Rewrites upstream file URLs to pkggate and back.
#[derive(Clone)]
pub struct FileUrls {
    /// `PYPI_UPSTREAM_FILES`, with a trailing slash.
    pub files_base: Url,
    pub signer: UrlSigner,
}

/// Whether `rest` (a path relative to the files base) passes [`check_segment`] in every
/// segment and its last segment decodes to `filename`. Segments without `%` are checked
/// in place (they decode to themselves), so the common case allocates nothing.
fn plain_relative(rest: &str, filename: &str) -> bool {
    // The common case (every listed file of a page goes through here): printable ASCII
    // without `%` or a backslash, so every segment decodes to itself and only `.`, `..` and empty
    // segments remain to refuse. One pass over the bytes, no char decoding.
    if rest
        .bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'%' && c != b'\\')
    {
        let mut last = "";
        for seg in rest.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return false;
            }
            last = seg;
        }
        return last == filename;
    }
    let mut last = "";
    for seg in rest.split('/') {
        let ok = if seg.contains('%') {
            check_segment(seg).is_ok()
        } else {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && !seg.contains('\\')
                && !seg.chars().any(char::is_control)
        };
        if !ok {
            return false;
        }
        last = seg;
    }
    if last.contains('%') {
        percent_decode(last).is_some_and(|l| l == filename)
    } else {
        last == filename
    }
}

/// Bytes a plain relative path keeps as they are: printable ASCII except `%` and `\`
/// (decoding), `?` and `#` (a query or fragment: such URLs are signed instead).
const PLAIN_REST: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = !matches!(b as u8, b'%' | b'\\' | b'?' | b'#');
        b += 1;
    }
    t
};

/// Whether an upstream file URL below the files base (`rest`, relative to it) is served
/// under `/files/<project>/<rest>` instead of a signed `~u` path: no query or fragment, not
/// starting with `~u/`, and [`plain_relative`]. Every file of every rendered page comes
/// here, so the common case (only [`PLAIN_REST`] bytes) is decided in one pass over the
/// bytes; anything else takes the general checks.
fn stays_plain(rest: &str, filename: &str) -> bool {
    let b = rest.as_bytes();
    let mut seg = 0;
    let mut ok = true;
    for (i, &c) in b.iter().enumerate() {
        if !PLAIN_REST[usize::from(c)] {
            return !rest.bytes().any(|c| c == b'?' || c == b'#')
                && !rest.starts_with("~u/")
                && plain_relative(rest, filename);
        }
        if c == b'/' {
            ok &= !matches!(&b[seg..i], b"" | b"." | b"..");
            seg = i + 1;
        }
    }
    ok && !matches!(&b[seg..], b"" | b"." | b"..")
        && &b[seg..] == filename.as_bytes()
        && !rest.starts_with("~u/")
}

fn under_base<'u>(base: &Url, url: &'u str) -> Option<&'u str> {
    let b = base.as_str();
    url.strip_prefix(b)
}

impl FileUrls {
    pub fn new(files_base: &Url, signer: UrlSigner) -> FileUrls {
        // Without credentials: they are added per origin when upstream is asked, and must
        // never appear in a URL handed to a client.
        let mut b = crate::upstream::as_directory(&crate::upstream::without_userinfo(files_base));
        b.set_query(None);
        b.set_fragment(None);
        FileUrls {
            files_base: b,
            signer,
        }
    }

    /// The path (from `/files/`) for an upstream file URL.
    pub fn path_for(&self, project: &str, upstream: &str, filename: &str) -> String {
        let mut out = String::new();
        self.push_path(&mut out, project, upstream, filename);
        out
    }

    /// `base` followed by [`FileUrls::path_for`], built in one allocation (called for every
    /// file of every page rendered).
    pub fn url_for(&self, base: &str, project: &str, upstream: &str, filename: &str) -> String {
        let mut out = String::with_capacity(base.len() + project.len() + upstream.len() + 16);
        out.push_str(base);
        self.push_path(&mut out, project, upstream, filename);
        out
    }

    fn push_path(&self, out: &mut String, project: &str, upstream: &str, filename: &str) {
        if let Some(rest) = under_base(&self.files_base, upstream)
            && stays_plain(rest, filename)
        {
            out.push_str("/files/");
            out.push_str(project);
            out.push('/');
            out.push_str(rest);
            return;
        }
        let mac = self.signer.mac(project, upstream, filename);
        out.push_str("/files/");
        out.push_str(project);
        out.push_str("/~u/");
        out.push_str(&hex::encode(upstream.as_bytes()));
        out.push('.');
        out.push_str(&mac);
        out.push('/');
        out.push_str(&encode_segment(filename));
    }

    /// Parse a raw (percent-encoded) request path starting with `/files/`.
    pub fn parse(&self, raw_path: &str) -> Result<FileTarget, PathError> {
        let rest = raw_path
            .strip_prefix("/files/")
            .ok_or(PathError::Malformed("not a file path"))?;
        let segs: Vec<&str> = rest.split('/').collect();
        if segs.len() < 2 {
            return Err(PathError::Malformed("too few path segments"));
        }
        let mut decoded = Vec::with_capacity(segs.len());
        for s in &segs {
            decoded.push(check_segment(s)?);
        }
        let project = decoded[0].clone();
        if !super::valid_project_name(&project)
            || pkggate_formats::ecosystem::pep503_normalize(&project) != project
        {
            return Err(PathError::ProjectName(project.chars().take(80).collect()));
        }
        let last = decoded.last().cloned().unwrap_or_default();
        let (filename, metadata) = match last.strip_suffix(".metadata") {
            Some(f) if !f.is_empty() => (f.to_string(), true),
            _ => (last, false),
        };
        let upstream = if segs[1] == "~u" {
            if segs.len() != 4 {
                return Err(PathError::BadToken);
            }
            let (hexurl, mac) = segs[2].split_once('.').ok_or(PathError::BadToken)?;
            let bytes = hex::decode(hexurl).map_err(|_| PathError::BadToken)?;
            let url = String::from_utf8(bytes).map_err(|_| PathError::BadToken)?;
            let want = self.signer.mac(&project, &url, &filename);
            if !constant_eq(want.as_bytes(), mac.as_bytes()) {
                return Err(PathError::BadToken);
            }
            Url::parse(&url).map_err(|_| PathError::BadToken)?
        } else {
            let mut rel = segs[1..].join("/");
            if metadata {
                rel.truncate(rel.len() - ".metadata".len());
            }
            let url = Url::parse(&format!("{}{rel}", self.files_base.as_str()))
                .map_err(|_| PathError::Malformed("unusable upstream path"))?;
            if url.origin() != self.files_base.origin()
                || !url.path().starts_with(self.files_base.path())
                || url.query().is_some()
            {
                return Err(PathError::Traversal);
            }
            url
        };
        Ok(FileTarget {
            project,
            filename,
            upstream,
            metadata,
        })
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `<url>.metadata` sibling of a file URL.
pub fn metadata_url(file: &Url) -> Url {
    let mut u = file.clone();
    let p = format!("{}.metadata", u.path());
    u.set_path(&p);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> FileUrls {
        FileUrls::new(
            &Url::parse("https://files.example/").unwrap(),
            UrlSigner::new([7; 32]),
        )
    }

    #[test]
    fn on_host_round_trip() {
        let u = urls();
        let up = "https://files.example/packages/ab/cd/x-1.0-py3-none-any.whl";
        let p = u.path_for("x", up, "x-1.0-py3-none-any.whl");
        assert_eq!(p, "/files/x/packages/ab/cd/x-1.0-py3-none-any.whl");
        let t = u.parse(&p).unwrap();
        assert_eq!(t.upstream.as_str(), up);
        assert!(!t.metadata);
        let t = u.parse(&format!("{p}.metadata")).unwrap();
        assert!(t.metadata);
        assert_eq!(t.upstream.as_str(), up);
        assert_eq!(t.filename, "x-1.0-py3-none-any.whl");
    }

    #[test]
    fn off_host_is_signed() {
        let u = urls();
        let up = "https://evil.example/x-1.0.tar.gz";
        let p = u.path_for("x", up, "x-1.0.tar.gz");
        assert!(p.starts_with("/files/x/~u/"), "{p}");
        assert!(p.ends_with("/x-1.0.tar.gz"));
        assert_eq!(u.parse(&p).unwrap().upstream.as_str(), up);
        // Another project, another host or a changed MAC: refused.
        assert_eq!(
            u.parse(&p.replacen("/files/x/", "/files/y/", 1)),
            Err(PathError::BadToken)
        );
        let forged = format!(
            "/files/x/~u/{}.{}/x-1.0.tar.gz",
            hex::encode("https://other.example/x-1.0.tar.gz"),
            "0".repeat(32)
        );
        assert_eq!(u.parse(&forged), Err(PathError::BadToken));
    }

    #[test]
    fn hostile_paths_are_refused() {
        let u = urls();
        for p in [
            "/files/x/../etc/passwd",
            "/files/x/%2e%2e/y/x-1.0.tar.gz",
            "/files/x/a%2Fb/x-1.0.tar.gz",
            "/files/x/a%5cb/x-1.0.tar.gz",
            "/files/x//x-1.0.tar.gz",
            "/files/X/a/x-1.0.tar.gz",
            "/files/x/a/%ZZ",
            "/files/x",
        ] {
            assert!(u.parse(p).is_err(), "{p}");
        }
    }

    /// The general form of [`plain_relative`]: decode and check every segment.
    fn plain_relative_slow(rest: &str, filename: &str) -> bool {
        let segs: Vec<&str> = rest.split('/').collect();
        segs.iter().all(|s| check_segment(s).is_ok())
            && segs
                .last()
                .and_then(|s| percent_decode(s))
                .is_some_and(|last| last == filename)
    }

    #[test]
    fn off_base_or_odd_paths_are_signed_and_round_trip() {
        let u = urls();
        for (up, file) in [
            ("https://files.example/a/./x-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a/../x-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a//x-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a%2Fb/x-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a\\b/x-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a/y-1.0.tar.gz", "x-1.0.tar.gz"),
            ("https://files.example/a/x-1.0.tar.gz?x=1", "x-1.0.tar.gz"),
            ("https://files.example.evil/a/x-1.0.tar.gz", "x-1.0.tar.gz"),
        ] {
            let p = u.path_for("x", up, file);
            assert!(p.starts_with("/files/x/~u/"), "{up} -> {p}");
            assert_eq!(
                u.parse(&p).unwrap().upstream.as_str(),
                Url::parse(up).unwrap().as_str()
            );
        }
        // Escaped but harmless: stays a plain path.
        let up = "https://files.example/a/x%2B1-1.0.tar.gz";
        assert_eq!(
            u.path_for("x", up, "x+1-1.0.tar.gz"),
            "/files/x/a/x%2B1-1.0.tar.gz"
        );
        assert_eq!(
            u.url_for("http://gate:8080", "x", up, "x+1-1.0.tar.gz"),
            "http://gate:8080/files/x/a/x%2B1-1.0.tar.gz"
        );
    }

    proptest::proptest! {
        #[test]
        fn one_pass_plain_check_agrees_with_the_general_checks(
            segs in proptest::collection::vec("([a-z0-9._~+-]|%2[eEfF]|%41|\\?|#|\\\\|\\.|\\.\\.|\\x01|\\x7f|é|~u){0,6}", 1..5),
            same_name in proptest::bool::ANY,
        ) {
            let rest = segs.join("/");
            let filename = if same_name { segs.last().unwrap().clone() } else { "x-1.0.tar.gz".to_string() };
            let general = !rest.bytes().any(|c| c == b'?' || c == b'#')
                && !rest.starts_with("~u/")
                && plain_relative(&rest, &filename);
            proptest::prop_assert_eq!(stays_plain(&rest, &filename), general, "{:?} / {:?}", rest, filename);
        }

        #[test]
        fn fast_segment_check_agrees_with_decoding_every_segment(
            segs in proptest::collection::vec("([a-z0-9._~+-]|%2[eEfF]|%5[cC]|%41|%ZZ|\\\\|\\.|\\.\\.|\\x01){0,6}", 1..5),
            same_name in proptest::bool::ANY,
        ) {
            let rest = segs.join("/");
            let last = percent_decode(segs.last().unwrap()).unwrap_or_default();
            let filename = if same_name { last } else { "x-1.0.tar.gz".to_string() };
            proptest::prop_assert_eq!(
                plain_relative(&rest, &filename),
                plain_relative_slow(&rest, &filename),
                "{:?} / {:?}", rest, filename
            );
        }
    }
}
