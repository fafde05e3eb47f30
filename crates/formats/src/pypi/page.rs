//! Project pages (`/simple/<project>/`): the file model, parsing both representations,
//! filtering and rendering in either representation.

use super::PypiError;
use super::facts::{ProjectFacts, version_key};
use super::filename::{FileKind, MAX_FILENAME_LEN, parse_filename};
use super::html::{self, escape_into};
use super::json_util::{self, Entries, brief, is_null, push_json_str, splice_into};
use super::negotiate::SimpleFormat;
use super::time::UploadTime;
use crate::ecosystem::pep503_normalize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use url::Url;

/// A file's yank state (PEP 592).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Yanked {
    #[default]
    No,
    /// Yanked, with the reason when upstream gave a non-empty one.
    Yes { reason: Option<String> },
}

impl Yanked {
    pub fn is_yanked(&self) -> bool {
        matches!(self, Yanked::Yes { .. })
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Yanked::Yes { reason } => reason.as_deref(),
            Yanked::No => None,
        }
    }

    fn from_reason(reason: &str) -> Yanked {
        Yanked::Yes {
            reason: (!reason.is_empty()).then(|| reason.to_string()),
        }
    }
}

/// One distribution file as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// The filename (JSON `filename`; HTML: the last path segment of the URL, percent-decoded,
    /// else the anchor text). Never empty, never contains `/`, `\` or control characters.
    pub filename: String,
    /// The upstream URL, resolved against the page URL, without fragment. Any scheme or host
    /// (`javascript:`, `data:`, another host) is returned as is: the caller decides.
    pub url: String,
    /// Hash algorithm (lower-case) → hex digest: JSON `hashes`, or the HTML `#alg=hex`
    /// fragment (also folded in when a JSON URL carries one).
    pub hashes: BTreeMap<String, String>,
    pub requires_python: Option<String>,
    pub yanked: Yanked,
    /// PEP 658/714 metadata file: `None` = not available; `Some(hashes)` = available at
    /// `<url>.metadata` (hashes may be empty: `true` without a digest).
    pub core_metadata: Option<BTreeMap<String, String>>,
    pub gpg_sig: Option<bool>,
    pub size: Option<u64>,
    /// PEP 700 `upload-time` (HTML: the mirror's `data-upload-time`), as written.
    pub upload_time: Option<String>,
    pub kind: FileKind,
    /// The version derived from the filename ([`parse_filename`]); `None` = unknown.
    pub version: Option<String>,
}

impl FileEntry {
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }

    pub fn upload_time_parsed(&self) -> Option<UploadTime> {
        self.upload_time.as_deref().and_then(UploadTime::parse)
    }
}

/// A repository API version (PEP 629).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
    /// As upstream wrote it; `None` when upstream did not say (then it is 1.0).
    pub raw: Option<String>,
}

impl ApiVersion {
    pub(crate) const IMPLICIT: ApiVersion = ApiVersion {
        major: 1,
        minor: 0,
        raw: None,
    };

    /// Parse `major.minor` (or `major`); a major version other than 1 is refused.
    pub fn parse(raw: &str) -> Result<ApiVersion, PypiError> {
        let t = raw.trim();
        let (maj, min) = t.split_once('.').unwrap_or((t, "0"));
        let num = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (Some(major), Some(minor)) = (num(maj), num(min)) else {
            return Err(PypiError::BadApiVersion(brief(raw)));
        };
        if major != 1 {
            return Err(PypiError::UnsupportedApiVersion(brief(raw)));
        }
        Ok(ApiVersion {
            major,
            minor,
            raw: Some(t.to_string()),
        })
    }

    /// The version to declare in output: upstream's, else `1.1`.
    pub fn declared(&self) -> &str {
        self.raw.as_deref().unwrap_or("1.1")
    }
}

/// Which representation a page was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Json,
    Html,
}

/// A parsed upstream project page. Borrows the upstream body (JSON members stay raw).
#[derive(Debug)]
pub struct ProjectPage<'a> {
    /// The project in PEP 503 normal form (as the caller named it).
    pub project: String,
    /// JSON `name` when upstream gave one, else [`ProjectPage::project`].
    pub name: String,
    pub api_version: ApiVersion,
    pub files: Vec<FileEntry>,
    /// PEP 700 `versions` as upstream listed them (JSON only).
    pub versions: Option<Vec<String>>,
    pub source: SourceFormat,
    raw: RawPage<'a>,
}

#[derive(Debug)]
enum RawPage<'a> {
    Json {
        top: Vec<(Cow<'a, str>, &'a RawValue)>,
        files: Vec<RawFile<'a>>,
        versions: Vec<&'a RawValue>,
    },
    Html {
        /// Per file, attributes pkggate does not interpret, in document order.
        extras: Vec<Vec<(String, String)>>,
    },
}

#[derive(Debug)]
struct RawFile<'a> {
    obj: &'a RawValue,
    url: &'a RawValue,
}

/// What the caller decides while rendering.
pub struct Rewrite<'f> {
    /// Whether a file stays. Gets every file, with its `version` (possibly `None`).
    pub keep_file: &'f dyn Fn(&FileEntry) -> bool,
    /// Whether a listed version stays (PEP 700 `versions` entries, including versions
    /// without files, and the versions of kept files).
    pub keep_version: &'f dyn Fn(&str) -> bool,
    /// The URL to publish for a kept file. It should end with the original filename
    /// (percent-encoded as needed); in HTML pkggate appends `#<alg>=<hex>` unless it has a `#`.
    pub file_url: &'f dyn Fn(&FileEntry) -> String,
}

/// A rendered page and what filtering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPage {
    pub body: String,
    pub format: SimpleFormat,
    pub files_kept: usize,
    pub files_removed: usize,
    /// Versions in the output's version list (JSON `versions`, or the distinct versions of
    /// kept files).
    pub versions_kept: usize,
    /// Versions upstream had (listed or by files) that the output no longer has.
    pub removed_versions: Vec<String>,
}

impl RenderedPage {
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

/// Parse an upstream project page. `format` is what upstream's `Content-Type` says
/// ([`SimpleFormat::from_media_type`]); `None` sniffs (a body starting with `{` is JSON).
/// `page_url` is the absolute URL the page was fetched from (relative file URLs resolve
/// against it).
pub fn parse_project_page<'a>(
    project: &str,
    body: &'a [u8],
    format: Option<SimpleFormat>,
    page_url: &str,
) -> Result<ProjectPage<'a>, PypiError> {
    let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let is_json = match format {
        Some(f) => !f.is_html(),
        None => text.trim_start().starts_with('{'),
    };
    if is_json {
        parse_project_json(project, text, page_url)
    } else {
        parse_project_html(project, text, page_url)
    }
}

pub(crate) fn parse_base(page_url: &str) -> Result<Url, PypiError> {
    Url::parse(page_url).map_err(|e| PypiError::PageUrl {
        url: brief(page_url),
        reason: e.to_string(),
    })
}

/// Parse a PEP 691 JSON project page.
pub fn parse_project_json<'a>(
    project: &str,
    body: &'a str,
    page_url: &str,
) -> Result<ProjectPage<'a>, PypiError> {
    let base = parse_base(page_url)?;
    let project = pep503_normalize(project).into_owned();
    let top = Entries::parse(body).map_err(|e| PypiError::Json(e.to_string()))?;
    let api_version = match top.get("meta") {
        Some(meta) => meta_api_version(meta)?,
        None => ApiVersion::IMPLICIT,
    };
    let name = match top.get("name") {
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|e| PypiError::Shape(format!("`name`: {e}")))?,
        None => project.clone(),
    };
    let files_raw = top
        .get("files")
        .ok_or_else(|| PypiError::Shape("no `files` member".into()))?;
    let items =
        json_util::array(files_raw).map_err(|e| PypiError::Shape(format!("`files`: {e}")))?;
    let mut files = Vec::with_capacity(items.len());
    let mut raws = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let (entry, url) = parse_json_file(&project, &base, index, item)?;
        files.push(entry);
        raws.push(RawFile { obj: item, url });
    }
    let (versions, versions_raw) = match top.get("versions") {
        Some(raw) => {
            let items =
                json_util::array(raw).map_err(|e| PypiError::Shape(format!("`versions`: {e}")))?;
            let mut list = Vec::with_capacity(items.len());
            for item in &items {
                let v: String = serde_json::from_str(item.get()).map_err(|e| {
                    PypiError::Shape(format!("`versions` entry {}: {e}", brief(item.get())))
                })?;
                list.push(v);
            }
            (Some(list), items)
        }
        None => (None, Vec::new()),
    };
    Ok(ProjectPage {
        project,
        name,
        api_version,
        files,
        versions,
        source: SourceFormat::Json,
        raw: RawPage::Json {
            top: top.0,
            files: raws,
            versions: versions_raw,
        },
    })
}

fn meta_api_version(meta: &RawValue) -> Result<ApiVersion, PypiError> {
    let entries =
        Entries::parse(meta.get()).map_err(|e| PypiError::Shape(format!("`meta`: {e}")))?;
    match entries.get("api-version") {
        None => Ok(ApiVersion::IMPLICIT),
        Some(raw) => {
            let s: String = serde_json::from_str(raw.get())
                .map_err(|_| PypiError::BadApiVersion(brief(raw.get())))?;
            ApiVersion::parse(&s)
        }
    }
}

pub(crate) fn file_error(index: usize, filename: &str, reason: impl Into<String>) -> PypiError {
    PypiError::File {
        index,
        filename: brief(filename),
        reason: reason.into(),
    }
}

/// `true`/`false`/`{alg: hex}` as PEP 691 `core-metadata` / `dist-info-metadata`.
pub(crate) fn json_metadata(raw: &RawValue) -> Result<Option<BTreeMap<String, String>>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum M {
        Flag(bool),
        Hashes(BTreeMap<String, String>),
    }
    match raw.get() {
        "true" => return Ok(Some(BTreeMap::new())),
        "false" => return Ok(None),
        _ if is_null(raw) => return Ok(None),
        _ => {}
    }
    if raw.get().starts_with('{') {
        return json_util::string_map(raw)
            .map(|h| Some(lower_keys(h)))
            .map_err(|_| {
                format!(
                    "expected true, false or a hash object, got {}",
                    brief(raw.get())
                )
            });
    }
    match serde_json::from_str::<M>(raw.get()) {
        Ok(M::Flag(true)) => Ok(Some(BTreeMap::new())),
        Ok(M::Flag(false)) => Ok(None),
        Ok(M::Hashes(h)) => Ok(Some(lower_keys(h))),
        Err(_) => Err(format!(
            "expected true, false or a hash object, got {}",
            brief(raw.get())
        )),
    }
}

pub(crate) fn lower_keys(h: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if !h.keys().any(|k| k.bytes().any(|b| b.is_ascii_uppercase())) {
        return h;
    }
    h.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

fn parse_json_file<'a>(
    project: &str,
    base: &Url,
    index: usize,
    item: &'a RawValue,
) -> Result<(FileEntry, &'a RawValue), PypiError> {
    let entries = Entries::parse(item.get()).map_err(|e| file_error(index, "", e.to_string()))?;
    let filename_raw = entries
        .get("filename")
        .ok_or_else(|| file_error(index, "", "no `filename`"))?;
    let filename: String = json_util::raw_str(filename_raw)
        .map_err(|e| file_error(index, filename_raw.get(), format!("`filename`: {e}")))?
        .into_owned();
    check_filename(&filename).map_err(|r| file_error(index, &filename, r))?;
    let err = |r: String| file_error(index, &filename, r);
    let url_raw = entries.get("url").ok_or_else(|| err("no `url`".into()))?;
    let href = json_util::raw_str(url_raw).map_err(|e| err(format!("`url`: {e}")))?;
    let Resolved {
        url,
        hash: fragment_hash,
        ..
    } = resolve(base, &href).map_err(|e| err(format!("`url` {}: {e}", brief(&href))))?;
    let typed = |key: &str| -> Option<&'a RawValue> { entries.get(key).filter(|r| !is_null(r)) };
    let mut hashes: BTreeMap<String, String> = match typed("hashes") {
        Some(raw) => json_util::string_map(raw)
            .map(lower_keys)
            .map_err(|e| err(format!("`hashes`: {e}")))?,
        None => BTreeMap::new(),
    };
    if let Some((alg, hex)) = fragment_hash {
        hashes.entry(alg).or_insert(hex);
    }
    let requires_python = match typed("requires-python") {
        Some(raw) => Some(
            json_util::raw_str(raw)
                .map_err(|e| err(format!("`requires-python`: {e}")))?
                .into_owned(),
        ),
        None => None,
    };
    let yanked = match typed("yanked") {
        None => Yanked::No,
        Some(raw) if raw.get() == "false" => Yanked::No,
        Some(raw) if raw.get() == "true" => Yanked::Yes { reason: None },
        Some(raw) if json_util::plain_str(raw).is_some() => {
            Yanked::from_reason(json_util::plain_str(raw).unwrap_or(""))
        }
        Some(raw) => {
            #[derive(serde::Deserialize)]
            #[serde(untagged)]
            enum Y {
                Flag(bool),
                Reason(String),
            }
            match serde_json::from_str::<Y>(raw.get()) {
                Ok(Y::Flag(false)) => Yanked::No,
                Ok(Y::Flag(true)) => Yanked::Yes { reason: None },
                Ok(Y::Reason(r)) => Yanked::from_reason(&r),
                Err(_) => return Err(err(format!("`yanked`: got {}", brief(raw.get())))),
            }
        }
    };
    let core_metadata = match typed("core-metadata").or_else(|| typed("dist-info-metadata")) {
        Some(raw) => json_metadata(raw).map_err(|r| err(format!("`core-metadata`: {r}")))?,
        None => None,
    };
    let gpg_sig = match typed("gpg-sig") {
        Some(raw) => Some(
            serde_json::from_str::<bool>(raw.get()).map_err(|e| err(format!("`gpg-sig`: {e}")))?,
        ),
        None => None,
    };
    let size = match typed("size") {
        Some(raw) => {
            Some(serde_json::from_str::<u64>(raw.get()).map_err(|e| err(format!("`size`: {e}")))?)
        }
        None => None,
    };
    let upload_time = match typed("upload-time") {
        Some(raw) => Some(
            json_util::raw_str(raw)
                .map_err(|e| err(format!("`upload-time`: {e}")))?
                .into_owned(),
        ),
        None => None,
    };
    let parsed = parse_filename(project, &filename);
    Ok((
        FileEntry {
            filename,
            url,
            hashes,
            requires_python,
            yanked,
            core_metadata,
            gpg_sig,
            size,
            upload_time,
            kind: parsed.kind,
            version: parsed.version,
        },
        url_raw,
    ))
}

/// Filenames are single path segments.
pub(crate) fn check_filename(f: &str) -> Result<(), &'static str> {
    if f.is_empty() || f == "." || f == ".." {
        return Err("empty filename");
    }
    if f.len() > MAX_FILENAME_LEN {
        return Err("filename too long");
    }
    if f.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err("filename contains a path separator or control character");
    }
    Ok(())
}

/// A resolved file URL: without fragment, plus a `#alg=hex` hash and the percent-decoded
/// last path segment (for hierarchical URLs only).
pub(crate) struct Resolved {
    pub url: String,
    pub hash: Option<(String, String)>,
    /// Where the last path segment lies in `url` (when non-empty).
    pub last_segment: Option<std::ops::Range<usize>>,
}

impl Resolved {
    /// The percent-decoded last path segment (`None` when empty or not UTF-8).
    pub fn decoded_last_segment(&self) -> Option<String> {
        self.last_segment
            .clone()
            .and_then(|r| self.url.get(r))
            .and_then(percent_decode)
    }
}

/// Resolve `href` against `base`.
pub(crate) fn resolve(base: &Url, href: &str) -> Result<Resolved, url::ParseError> {
    if let Some(r) = resolve_plain_absolute(href) {
        return Ok(r);
    }
    resolve_with_url(base, href)
}

/// The `url` crate's resolution (the general case).
fn resolve_with_url(base: &Url, href: &str) -> Result<Resolved, url::ParseError> {
    let mut url = base.join(href)?;
    let hash = url.fragment().and_then(fragment_hash_of);
    url.set_fragment(None);
    let last_segment = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let off = json_util::subslice_offset(url.as_str(), s)?;
            Some(off..off + s.len())
        });
    Ok(Resolved {
        url: url.into(),
        hash,
        last_segment,
    })
}

/// A `#alg=hex` fragment.
fn fragment_hash_of(frag: &str) -> Option<(String, String)> {
    let (alg, hex) = frag.split_once('=')?;
    let alg_ok = !alg.is_empty()
        && alg.len() <= 16
        && alg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let hex_ok = !hex.is_empty() && hex.len() <= 256 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (alg_ok && hex_ok).then(|| (alg.to_ascii_lowercase(), hex.to_string()))
}

/// Path and query bytes the `url` crate leaves as they are in `http(s)` URLs.
const PLAIN_URL_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            );
        i += 1;
    }
    t
};

/// A path the `url` crate serialises unchanged: `/`-led plain bytes, no empty or dot
/// segments (not even percent-encoded ones).
fn plain_path(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    // The bytes: a table, four lanes, no early exit.
    let mut lanes = [true; 4];
    let mut quads = path.chunks_exact(4);
    for q in &mut quads {
        for (lane, &b) in lanes.iter_mut().zip(q) {
            *lane &= PLAIN_URL_BYTES[usize::from(b)];
        }
    }
    let tail = quads
        .remainder()
        .iter()
        .all(|&b| PLAIN_URL_BYTES[usize::from(b)]);
    if !(tail && lanes.iter().all(|&l| l)) {
        return false;
    }
    // An empty or dot segment needs `//` or `/.`, and `%2e` a `%`: look for those 8 bytes
    // at a time, and decide byte by byte only when one is there.
    let load = |i: usize| -> u64 {
        let mut le = [0u8; 8];
        if let Some(w) = path.get(i..i + 8) {
            le.copy_from_slice(w);
        } else if let Some(rest) = path.get(i..) {
            le[..rest.len()].copy_from_slice(rest);
        }
        u64::from_le_bytes(le)
    };
    let mut i = 0;
    while i < path.len() {
        let (x, next) = (load(i), load(i + 1));
        let suspect = (json_util::eq_mask(x, b'/')
            & (json_util::eq_mask(next, b'/') | json_util::eq_mask(next, b'.')))
            | json_util::eq_mask(x, b'%');
        if suspect != 0 {
            return plain_segments(path);
        }
        i += 8;
    }
    true
}

/// The segment and `%2e` rules of [`plain_path`], byte by byte.
fn plain_segments(path: &[u8]) -> bool {
    let mut seg_start = 1;
    for (i, &b) in path.iter().enumerate().skip(1) {
        match b {
            b'/' => {
                if !plain_segment(&path[seg_start..i]) {
                    return false;
                }
                seg_start = i + 1;
            }
            b'%' if path.get(i + 1) == Some(&b'2')
                && matches!(path.get(i + 2), Some(b'e' | b'E')) =>
            {
                return false;
            }
            _ => {}
        }
    }
    // The last segment may be empty (`/dir/`).
    let last = &path[seg_start..];
    last.is_empty() || plain_segment(last)
}

fn plain_segment(seg: &[u8]) -> bool {
    !matches!(seg, b"" | b"." | b"..")
}

/// A host the `url` crate serialises unchanged: lower-case ASCII DNS labels (no IDNA
/// `xn--`, the last label not numeric-looking) or a canonical dotted-quad IPv4 address.
fn plain_host(host: &str) -> bool {
    let h = host.as_bytes();
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    if h.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        let canonical_octet = |l: &str| {
            !l.is_empty()
                && l.len() <= 3
                && (l == "0" || !l.starts_with('0'))
                && l.parse::<u16>().is_ok_and(|n| n <= 255)
        };
        return host.split('.').count() == 4 && host.split('.').all(canonical_octet);
    }
    let mut label_start = 0;
    for i in 0..=h.len() {
        let b = h.get(i).copied();
        if b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            continue;
        }
        if b.is_some() && b != Some(b'.') {
            return false;
        }
        let label = &h[label_start..i];
        if label.is_empty() || label.len() > 63 || label.starts_with(b"xn--") {
            return false;
        }
        if b.is_none() && !label[0].is_ascii_lowercase() {
            return false;
        }
        label_start = i + 1;
    }
    true
}

/// An absolute `http(s)` URL that the `url` crate would serialise unchanged, split up
/// (see [`plain_absolute`]).
pub(crate) struct PlainUrl<'h> {
    /// The URL without its fragment (what resolution returns).
    pub url: &'h str,
    /// The fragment, without `#`.
    pub fragment: Option<&'h str>,
    /// The path (without query).
    path: &'h str,
}

/// The common case of resolution, without the `url` crate and without allocating: an
/// absolute `http(s)` URL that the `url` crate would serialise unchanged (plain host,
/// optional non-default port, a path of plain bytes without dot segments, an optional plain
/// query). `None` = not that case (resolve the general way).
pub(crate) fn plain_absolute(href: &str) -> Option<PlainUrl<'_>> {
    let (rest, default_port) = if let Some(r) = href.strip_prefix("https://") {
        (r, "443")
    } else if let Some(r) = href.strip_prefix("http://") {
        (r, "80")
    } else {
        return None;
    };
    // Delimiters are ASCII, so the byte offsets found below are char boundaries. One pass
    // finds the first `#` or `?`; a `#` after a `?` needs a second.
    let (no_frag, frag) = match memchr::memchr2(b'#', b'?', rest.as_bytes()) {
        Some(i) if rest.as_bytes().get(i) == Some(&b'#') => {
            (rest.get(..i)?, Some(rest.get(i + 1..)?))
        }
        Some(i) => match memchr::memchr(b'#', rest.as_bytes().get(i..)?) {
            Some(h) => (rest.get(..i + h)?, Some(rest.get(i + h + 1..)?)),
            None => (rest, None),
        },
        None => (rest, None),
    };
    if let Some(f) = frag
        && !f.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    // The authority is short: plain loops.
    let slash = no_frag.bytes().position(|b| b == b'/')?;
    let (authority, path_query) = no_frag.split_at(slash);
    let host = match authority.bytes().position(|b| b == b':') {
        Some(i) => {
            let (h, port) = (authority.get(..i)?, authority.get(i + 1..)?);
            let ok = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && !port.starts_with('0')
                && port.parse::<u16>().is_ok()
                && port != default_port;
            if !ok {
                return None;
            }
            h
        }
        None => authority,
    };
    if !plain_host(host) {
        return None;
    }
    let (path, query) = match memchr::memchr(b'?', path_query.as_bytes()) {
        Some(i) => (path_query.get(..i)?, Some(path_query.get(i + 1..)?)),
        None => (path_query, None),
    };
    if !plain_path(path.as_bytes()) {
        return None;
    }
    if let Some(q) = query
        && !q
            .bytes()
            .all(|b| (PLAIN_URL_BYTES[usize::from(b)] && b != b'\'') || b == b'?')
    {
        return None;
    }
    // The first `#` of `href` is the first of `rest` (the scheme has none).
    let url = href.get(..href.len() - rest.len() + no_frag.len())?;
    Some(PlainUrl {
        url,
        fragment: frag,
        path,
    })
}

/// [`plain_absolute`] as a [`Resolved`]. The `fast_resolution_agrees` test pins the
/// equivalence with the `url` crate.
fn resolve_plain_absolute(href: &str) -> Option<Resolved> {
    let plain = plain_absolute(href)?;
    let last_segment = plain
        .path
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let off = json_util::subslice_offset(href, s)?;
            Some(off..off + s.len())
        });
    Some(Resolved {
        url: plain.url.to_string(),
        hash: plain.fragment.and_then(fragment_hash_of),
        last_segment,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

const KNOWN_ATTRS: [&str; 8] = [
    "href",
    "data-requires-python",
    "data-dist-info-metadata",
    "data-core-metadata",
    "data-gpg-sig",
    "data-yanked",
    "data-upload-time",
    "data-size",
];

fn html_metadata(v: &str) -> Option<BTreeMap<String, String>> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        return Some(BTreeMap::new());
    }
    let (alg, hex) = v.split_once('=')?;
    let alg = alg.trim();
    if alg.is_empty() || hex.is_empty() {
        return None;
    }
    Some(BTreeMap::from([(
        alg.to_ascii_lowercase(),
        hex.trim().to_string(),
    )]))
}

/// Parse a PEP 503 HTML project page (see [`super::html`] for the reader).
pub fn parse_project_html<'a>(
    project: &str,
    body: &'a str,
    page_url: &str,
) -> Result<ProjectPage<'a>, PypiError> {
    let page_base = parse_base(page_url)?;
    let project = pep503_normalize(project).into_owned();
    let page = html::parse_page(body).map_err(|e| PypiError::Html {
        offset: e.offset,
        reason: e.reason,
        near: brief(body.get(e.offset..).unwrap_or("")),
    })?;
    let api_version = match &page.repository_version {
        Some(v) => ApiVersion::parse(v)?,
        None => ApiVersion::IMPLICIT,
    };
    let base = match &page.base_href {
        Some(b) => page_base.join(b).map_err(|e| PypiError::PageUrl {
            url: brief(b),
            reason: format!("<base href>: {e}"),
        })?,
        None => page_base,
    };
    let mut files = Vec::with_capacity(page.anchors.len());
    let mut extras = Vec::with_capacity(page.anchors.len());
    for (index, a) in page.anchors.into_iter().enumerate() {
        // Known attributes by position in `KNOWN_ATTRS`; names are unique per anchor.
        let mut known: [Option<String>; KNOWN_ATTRS.len()] = Default::default();
        let mut extra = Vec::new();
        for (k, v) in a.attrs {
            match KNOWN_ATTRS.iter().position(|n| *n == k) {
                Some(i) => known[i] = Some(v),
                None => extra.push((k, v)),
            }
        }
        let [
            href,
            requires_python,
            dist_info_metadata,
            core_metadata,
            gpg_sig,
            yanked,
            upload_time,
            size,
        ] = known;
        let Some(href) = href else {
            continue;
        };
        let resolved = resolve(&base, &href)
            .map_err(|e| file_error(index, &a.text, format!("href {}: {e}", brief(&href))))?;
        let last_segment = resolved.decoded_last_segment();
        let Resolved {
            url,
            hash: fragment_hash,
            ..
        } = resolved;
        let filename = match last_segment.filter(|f| check_filename(f).is_ok()) {
            Some(f) => f,
            None => a.text,
        };
        check_filename(&filename).map_err(|r| file_error(index, &filename, r))?;
        let hashes: BTreeMap<String, String> = fragment_hash.into_iter().collect();
        let yanked = yanked.as_deref().map_or(Yanked::No, Yanked::from_reason);
        let core_metadata = core_metadata
            .as_deref()
            .or(dist_info_metadata.as_deref())
            .and_then(html_metadata);
        let gpg_sig = gpg_sig.as_deref().and_then(|v| match v.trim() {
            v if v.eq_ignore_ascii_case("true") => Some(true),
            v if v.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        });
        let size = size.and_then(|v| v.trim().parse::<u64>().ok());
        let parsed = parse_filename(&project, &filename);
        files.push(FileEntry {
            requires_python,
            upload_time,
            filename,
            url,
            hashes,
            yanked,
            core_metadata,
            gpg_sig,
            size,
            kind: parsed.kind,
            version: parsed.version,
        });
        extras.push(extra);
    }
    Ok(ProjectPage {
        name: project.clone(),
        project,
        api_version,
        files,
        versions: None,
        source: SourceFormat::Html,
        raw: RawPage::Html { extras },
    })
}

/// Dense ids for PEP 440 keys, so each distinct spelling is parsed once per render.
#[derive(Default)]
struct KeyIds<'p> {
    by_spelling: HashMap<&'p str, usize>,
    by_key: HashMap<String, usize>,
}

impl<'p> KeyIds<'p> {
    fn id(&mut self, v: &'p str) -> usize {
        if let Some(&i) = self.by_spelling.get(v) {
            return i;
        }
        let next = self.by_key.len();
        let i = *self.by_key.entry(version_key(v)).or_insert(next);
        self.by_spelling.insert(v, i);
        i
    }
}

/// A set of [`KeyIds`] ids.
#[derive(Default)]
struct IdSet(Vec<bool>);

impl IdSet {
    /// Whether `i` was newly inserted.
    fn insert(&mut self, i: usize) -> bool {
        if self.0.len() <= i {
            self.0.resize(i + 1, false);
        }
        !std::mem::replace(&mut self.0[i], true)
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i).copied().unwrap_or(false)
    }

    fn union_with(&mut self, other: &IdSet) {
        for (i, &b) in other.0.iter().enumerate() {
            if b {
                self.insert(i);
            }
        }
    }
}

/// The filtering decided before rendering.
struct Plan {
    keep: Vec<bool>,
    /// Output version list: indices into the upstream list (JSON with `versions`) …
    listed: Option<Vec<usize>>,
    /// … or versions derived from kept files.
    derived: Vec<String>,
    removed_versions: Vec<String>,
}

impl<'a> ProjectPage<'a> {
    /// Per-version facts (publish time = earliest upload, yank state) over all upstream
    /// files, plus versions listed without files.
    pub fn facts(&self) -> ProjectFacts {
        let mut facts = ProjectFacts::default();
        // Slots by spelling: each distinct spelling is PEP 440-keyed once.
        let mut slots: HashMap<&str, usize> = HashMap::new();
        for v in self.versions.iter().flatten() {
            let slot = facts.slot(v);
            slots.entry(v).or_insert(slot);
        }
        for f in &self.files {
            let slot = f
                .version
                .as_deref()
                .map(|v| *slots.entry(v).or_insert_with(|| facts.slot(v)));
            facts.add_file_at(slot, f.yanked.is_yanked(), f.upload_time.as_deref());
        }
        facts
    }

    fn plan(&self, rw: &Rewrite<'_>) -> Plan {
        let keep: Vec<bool> = self.files.iter().map(|f| (rw.keep_file)(f)).collect();
        let mut keys = KeyIds::default();
        let mut had_files = IdSet::default();
        let mut kept_files = IdSet::default();
        for (f, &k) in self.files.iter().zip(&keep) {
            if let Some(v) = &f.version {
                let key = keys.id(v);
                if k {
                    kept_files.insert(key);
                }
                had_files.insert(key);
            }
        }
        let mut out_keys = IdSet::default();
        let (listed, derived) = match &self.versions {
            Some(list) => {
                let mut idx = Vec::new();
                for (i, v) in list.iter().enumerate() {
                    let key = keys.id(v);
                    let lost_all_files = had_files.contains(key) && !kept_files.contains(key);
                    if !lost_all_files && (rw.keep_version)(v) {
                        idx.push(i);
                        out_keys.insert(key);
                    }
                }
                (Some(idx), Vec::new())
            }
            None => {
                let mut derived = Vec::new();
                for (f, &k) in self.files.iter().zip(&keep) {
                    if let (true, Some(v)) = (k, &f.version) {
                        let key = keys.id(v);
                        if !out_keys.contains(key) && (rw.keep_version)(v) {
                            out_keys.insert(key);
                            derived.push(v.clone());
                        }
                    }
                }
                derived.sort();
                (None, derived)
            }
        };
        // A version a kept file still carries is not removed, listed or not.
        out_keys.union_with(&kept_files);
        let mut removed_versions = Vec::new();
        let mut seen = IdSet::default();
        let upstream = self
            .versions
            .iter()
            .flatten()
            .chain(self.files.iter().filter_map(|f| f.version.as_ref()));
        for v in upstream {
            let key = keys.id(v);
            if !out_keys.contains(key) && seen.insert(key) {
                removed_versions.push(v.clone());
            }
        }
        Plan {
            keep,
            listed,
            derived,
            removed_versions,
        }
    }

    /// Filter and render the page in `format` (see the module doc of [`super`]).
    pub fn render(
        &self,
        format: SimpleFormat,
        rw: &Rewrite<'_>,
    ) -> Result<RenderedPage, PypiError> {
        let plan = self.plan(rw);
        let body = match format {
            SimpleFormat::Json => self.render_json(&plan, rw)?,
            SimpleFormat::V1Html | SimpleFormat::TextHtml => self.render_html(&plan, rw),
        };
        let files_kept = plan.keep.iter().filter(|&&k| k).count();
        Ok(RenderedPage {
            body,
            format,
            files_kept,
            files_removed: plan.keep.len() - files_kept,
            versions_kept: plan.listed.as_ref().map_or(plan.derived.len(), Vec::len),
            removed_versions: plan.removed_versions,
        })
    }

    fn kept(&self, plan: &Plan) -> impl Iterator<Item = (usize, &FileEntry)> {
        self.files
            .iter()
            .enumerate()
            .filter(move |(i, _)| plan.keep.get(*i).copied().unwrap_or(false))
    }

    fn render_json(&self, plan: &Plan, rw: &Rewrite<'_>) -> Result<String, PypiError> {
        let mut out = String::new();
        match &self.raw {
            RawPage::Json {
                top,
                files,
                versions,
            } => {
                out.reserve(top.iter().map(|(_, v)| v.get().len()).sum::<usize>() + 64);
                let mut url_buf = String::with_capacity(256);
                out.push('{');
                let mut first = true;
                if !top.iter().any(|(k, _)| k == "meta") {
                    out.push_str("\"meta\":{\"api-version\":");
                    let implicit = if self.versions.is_some() {
                        "1.1"
                    } else {
                        "1.0"
                    };
                    push_json_str(&mut out, implicit);
                    out.push('}');
                    first = false;
                }
                for (k, raw) in top {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_json_str(&mut out, k);
                    out.push(':');
                    match k.as_ref() {
                        "files" => {
                            out.push('[');
                            for (n, (i, entry)) in self.kept(plan).enumerate() {
                                if n > 0 {
                                    out.push(',');
                                }
                                url_buf.clear();
                                push_json_str(&mut url_buf, &(rw.file_url)(entry));
                                let rf = files.get(i).ok_or_else(|| {
                                    PypiError::Shape("file index out of range".into())
                                })?;
                                if !splice_into(&mut out, rf.obj.get(), rf.url.get(), &url_buf) {
                                    push_rebuilt_object(&mut out, rf.obj, &url_buf)?;
                                }
                            }
                            out.push(']');
                        }
                        "versions" => {
                            out.push('[');
                            for (n, &i) in plan.listed.iter().flatten().enumerate() {
                                if n > 0 {
                                    out.push(',');
                                }
                                if let Some(v) = versions.get(i) {
                                    out.push_str(v.get());
                                }
                            }
                            out.push(']');
                        }
                        _ => out.push_str(raw.get()),
                    }
                }
                out.push('}');
            }
            RawPage::Html { .. } => {
                // HTML carries no file sizes, which PEP 700 (API 1.1) makes mandatory in
                // JSON: without them the page claims 1.0.
                let sized = self.kept(plan).all(|(_, f)| f.size.is_some());
                out.push_str("{\"meta\":{\"api-version\":");
                push_json_str(
                    &mut out,
                    if sized {
                        self.api_version.declared()
                    } else {
                        "1.0"
                    },
                );
                out.push_str("},\"name\":");
                push_json_str(&mut out, &self.name);
                out.push_str(",\"files\":[");
                for (n, (_, entry)) in self.kept(plan).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    push_synth_file(&mut out, entry, &(rw.file_url)(entry));
                }
                out.push_str("],\"versions\":[");
                for (n, v) in plan.derived.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    push_json_str(&mut out, v);
                }
                out.push_str("]}");
            }
        }
        Ok(out)
    }

    fn render_html(&self, plan: &Plan, rw: &Rewrite<'_>) -> String {
        let mut out = String::with_capacity(256 + self.files.len() * 300);
        push_html_head(&mut out, self.api_version.declared(), &self.name);
        let extras = match &self.raw {
            RawPage::Html { extras } => Some(extras),
            RawPage::Json { .. } => None,
        };
        for (i, entry) in self.kept(plan) {
            let extra = extras
                .and_then(|e| e.get(i))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            push_anchor(
                &mut out,
                &AnchorView::of(entry),
                &(rw.file_url)(entry),
                extra,
            );
        }
        push_html_tail(&mut out);
        out
    }
}

/// The HTML page up to the first anchor.
pub(crate) fn push_html_head(out: &mut String, api_version: &str, name: &str) {
    out.push_str(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"",
    );
    escape_into(out, api_version);
    out.push_str("\">\n<title>Links for ");
    escape_into(out, name);
    out.push_str("</title>\n</head>\n<body>\n<h1>Links for ");
    escape_into(out, name);
    out.push_str("</h1>\n");
}

/// The HTML page after the last anchor.
pub(crate) fn push_html_tail(out: &mut String) {
    out.push_str("</body>\n</html>\n");
}

/// What one anchor line says about a file, borrowed from a [`FileEntry`] or (on the
/// [`super::scan`] fast path) from the upstream body.
pub(crate) struct AnchorView<'s> {
    pub filename: &'s str,
    /// The `#alg=hex` appended to the href unless the URL already has a `#`.
    pub hash: Option<(&'s str, &'s str)>,
    pub requires_python: Option<&'s str>,
    /// `None`: no metadata file; `Some(None)`: available without a digest (`true`);
    /// `Some(Some((alg, hex)))`: `alg=hex`.
    pub core_metadata: Option<Option<(&'s str, &'s str)>>,
    pub gpg_sig: Option<bool>,
    /// `Some(reason)` when yanked (`""` without a reason).
    pub yanked: Option<&'s str>,
    pub upload_time: Option<&'s str>,
    pub size: Option<u64>,
}

/// sha256 when known, else the first algorithm.
fn preferred_hash(h: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    h.get_key_value("sha256")
        .or_else(|| h.iter().next())
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

impl<'s> AnchorView<'s> {
    fn of(f: &'s FileEntry) -> AnchorView<'s> {
        AnchorView {
            filename: &f.filename,
            hash: preferred_hash(&f.hashes),
            requires_python: f.requires_python.as_deref(),
            core_metadata: f.core_metadata.as_ref().map(preferred_hash),
            gpg_sig: f.gpg_sig,
            yanked: match &f.yanked {
                Yanked::Yes { reason } => Some(reason.as_deref().unwrap_or("")),
                Yanked::No => None,
            },
            upload_time: f.upload_time.as_deref(),
            size: f.size,
        }
    }
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Append `n` in decimal without allocating.
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if let Ok(digits) = std::str::from_utf8(&buf[i..]) {
        out.push_str(digits);
    }
}

/// One `<a …>filename</a><br/>` line (attribute order: see the module doc of [`super`]).
/// Writes straight into `out`: no temporary strings.
pub(crate) fn push_anchor(
    out: &mut String,
    f: &AnchorView<'_>,
    url: &str,
    extra: &[(String, String)],
) {
    out.push_str("<a href=\"");
    escape_into(out, url);
    if !url.contains('#')
        && let Some((alg, hex)) = f.hash
    {
        out.push('#');
        escape_into(out, alg);
        out.push('=');
        escape_into(out, hex);
    }
    out.push('"');
    if let Some(rp) = f.requires_python {
        push_attr(out, "data-requires-python", rp);
    }
    if let Some(m) = f.core_metadata {
        for name in [" data-dist-info-metadata=\"", " data-core-metadata=\""] {
            out.push_str(name);
            match m {
                Some((alg, hex)) => {
                    escape_into(out, alg);
                    out.push('=');
                    escape_into(out, hex);
                }
                None => out.push_str("true"),
            }
            out.push('"');
        }
    }
    if let Some(sig) = f.gpg_sig {
        out.push_str(if sig {
            " data-gpg-sig=\"true\""
        } else {
            " data-gpg-sig=\"false\""
        });
    }
    if let Some(reason) = f.yanked {
        push_attr(out, "data-yanked", reason);
    }
    if let Some(t) = f.upload_time {
        push_attr(out, "data-upload-time", t);
    }
    if let Some(size) = f.size {
        out.push_str(" data-size=\"");
        push_u64(out, size);
        out.push('"');
    }
    for (k, v) in extra {
        // Names come from our own attribute reader: no whitespace, quotes, `>`, `/` or `=`
        // after the first character. Refuse anything else rather than emit broken markup.
        if k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        {
            push_attr(out, k, v);
        }
    }
    out.push('>');
    escape_into(out, f.filename);
    out.push_str("</a><br/>\n");
}

fn push_hashes(out: &mut String, h: &BTreeMap<String, String>) {
    out.push('{');
    for (n, (k, v)) in h.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        push_json_str(out, v);
    }
    out.push('}');
}

/// A PEP 691 file object built from the model (HTML upstream).
fn push_synth_file(out: &mut String, f: &FileEntry, url: &str) {
    out.push_str("{\"filename\":");
    push_json_str(out, &f.filename);
    out.push_str(",\"url\":");
    push_json_str(out, url);
    out.push_str(",\"hashes\":");
    push_hashes(out, &f.hashes);
    out.push_str(",\"requires-python\":");
    match &f.requires_python {
        Some(rp) => push_json_str(out, rp),
        None => out.push_str("null"),
    }
    out.push_str(",\"yanked\":");
    match &f.yanked {
        Yanked::No => out.push_str("false"),
        Yanked::Yes { reason: None } => out.push_str("true"),
        Yanked::Yes { reason: Some(r) } => push_json_str(out, r),
    }
    if let Some(m) = &f.core_metadata {
        for key in ["core-metadata", "dist-info-metadata"] {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            if m.is_empty() {
                out.push_str("true");
            } else {
                push_hashes(out, m);
            }
        }
    }
    if let Some(sig) = f.gpg_sig {
        out.push_str(if sig {
            ",\"gpg-sig\":true"
        } else {
            ",\"gpg-sig\":false"
        });
    }
    if let Some(size) = f.size {
        out.push_str(",\"size\":");
        out.push_str(&size.to_string());
    }
    if let Some(t) = &f.upload_time {
        out.push_str(",\"upload-time\":");
        push_json_str(out, t);
    }
    out.push('}');
}

/// Re-encode a JSON file object with a new `url` (used only if splicing is impossible).
fn push_rebuilt_object(out: &mut String, obj: &RawValue, url_json: &str) -> Result<(), PypiError> {
    let entries = Entries::parse(obj.get()).map_err(|e| PypiError::Json(e.to_string()))?;
    json_util::push_object(
        out,
        entries
            .0
            .iter()
            .map(|(k, v)| (k.as_ref(), if k == "url" { url_json } else { v.get() })),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whenever the fast path answers, it answers exactly what the `url` crate does.
    fn agrees(href: &str) -> bool {
        let base = Url::parse("https://pypi.example/simple/x/").unwrap();
        let Some(fast) = resolve_plain_absolute(href) else {
            return false;
        };
        let slow = resolve_with_url(&base, href).unwrap();
        assert_eq!(fast.url, slow.url, "{href}");
        assert_eq!(fast.hash, slow.hash, "{href}");
        assert_eq!(
            fast.decoded_last_segment(),
            slow.decoded_last_segment(),
            "{href}"
        );
        true
    }

    #[test]
    fn fast_resolution_agrees() {
        for href in [
            "https://files.example/packages/a/b/numpy-1.0.tar.gz#sha256=AbC0",
            "http://127.0.0.1:8080/files/x-1.0.whl",
            "https://h.example/p/x%2Fy-1.0.whl#md5=00",
            "https://h.example/p/x-1.0.whl?a=b&c=d?e#frag",
            "https://h.example/p/x%20y-1.0.whl#sha256=zz",
            "https://h.example/p/x-1.0.whl#",
            "https://h.example/p/x-1.0.whl?",
            "https://h.example/p/",
            "https://h.example/p/x-1.0.whl#a=b#c",
            "https://h.example/p/x-1.0.whl#sha256=ab\"cd",
            "http://0.0.0.0/x",
            "http://255.255.255.255:65535/x",
            "https://a-b.c-d.example:1/x:y@z;w=v,u+t*s$r!q~p",
        ] {
            assert!(agrees(href), "{href} should take the fast path");
        }
        for href in [
            "HTTPS://h.example/x",
            "https://H.example/x",
            "https://h.example",
            "https://h.example:443/x",
            "http://h.example:80/x",
            "https://h.example:0443/x",
            "https://h.example:/x",
            "https://h.example:99999/x",
            "https://u@h.example/x",
            "https://xn--nxasmq6b.example/x",
            "https://h.123/x",
            "https://h.0x1f/x",
            "http://127.0.0.01/x",
            "http://1.2.3/x",
            "https://h..example/x",
            "https://h.example./x",
            "https://h.example/a/../x",
            "https://h.example/a/./x",
            "https://h.example/a/%2e%2E/x",
            "https://h.example/a//x",
            "https://h.example/a\\x",
            "https://h.example/a b",
            "https://h.example/a\tb",
            "https://h.example/é",
            "https://h.example/a?q='x'",
            "https://h.example/a{b}",
            " https://h.example/a",
            "https://h.example/a#b c",
            "//h.example/x",
            "../x-1.0.whl",
        ] {
            let base = Url::parse("https://pypi.example/simple/x/").unwrap();
            assert!(resolve_plain_absolute(href).is_none(), "{href}");
            let _ = resolve_with_url(&base, href);
        }
    }

    proptest! {
        #[test]
        fn fast_resolution_agrees_on_generated(
            scheme in "https?://",
            host in "[a-z0-9.\\-]{1,12}(:[0-9]{1,6})?",
            rest in "/[a-zA-Z0-9%./_~!$&()*+,;=:@?#'\\-]{0,30}",
        ) {
            let _ = agrees(&format!("{scheme}{host}{rest}"));
        }
    }
}
