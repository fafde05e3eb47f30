//! Packuments (full and abbreviated): borrowed parsing, per-version facts, filtered rendering
//! and single-version extraction.

use super::path::{InvalidName, tarball_url, validate_name};
use super::raw::{
    Entries, Members, RawMap, TopMap, TopVal, as_bool, as_str, brief, first_duplicate,
    first_duplicate_by, get, is_object, is_truthy, object_text, offset_in, push_json_str,
    split_object,
};
use super::scan::PackumentScan;
use super::tags::retarget_dist_tags;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Which packument form a client wants (and pkggate serves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Representation {
    /// The full document (`Accept: application/json` or none): `time`, `scripts`,
    /// `repository`, readme…
    Full,
    /// The abbreviated "corgi" document (`application/vnd.npm.install-v1+json`).
    Abbreviated,
}

impl Representation {
    /// Media type of the abbreviated form.
    pub const ABBREVIATED_MEDIA_TYPE: &'static str = "application/vnd.npm.install-v1+json";

    /// The form an `Accept` header asks for: abbreviated when it lists
    /// `application/vnd.npm.install-v1+json` with a non-zero q, full otherwise (also when
    /// absent, as yarn 4 sends none).
    pub fn from_accept(accept: Option<&str>) -> Representation {
        let Some(accept) = accept else {
            return Representation::Full;
        };
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            if !media.eq_ignore_ascii_case(Self::ABBREVIATED_MEDIA_TYPE) {
                continue;
            }
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok());
            if q.is_some_and(|q| q > 0.0) {
                return Representation::Abbreviated;
            }
        }
        Representation::Full
    }

    /// `Content-Type` to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Full => "application/json",
            Representation::Abbreviated => Self::ABBREVIATED_MEDIA_TYPE,
        }
    }

    /// `full` or `abbreviated` (for cache keys, ETags and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Representation::Full => "full",
            Representation::Abbreviated => "abbreviated",
        }
    }
}

/// A packument that cannot be used, or a filter that leaves nothing.
#[derive(Debug, thiserror::Error)]
pub enum NpmDocError {
    #[error("npm document is not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("npm document is not valid JSON: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("npm document is not a JSON object: {found:?}")]
    NotAnObject { found: String },
    #[error("npm document field `{field}` is not {expected}: {found:?}")]
    BadField {
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("npm document field `{at}` cannot be read: {source}")]
    Nested {
        at: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("npm document has the key {key:?} twice in `{at}`")]
    DuplicateKey { at: String, key: String },
    #[error("npm document has no `name`")]
    MissingName,
    #[error("npm document: {0}")]
    BadName(#[from] InvalidName),
    /// Filtering removed every version (or upstream listed none: `total == 0`). Answer 403
    /// with the reason (404 when `total == 0`), never an empty document.
    #[error("no version of {name:?} is left after filtering ({removed} of {total} removed)")]
    NoVersionsLeft {
        name: String,
        removed: usize,
        total: usize,
    },
    #[error("internal error while rendering an npm document: {0}")]
    Internal(&'static str),
}

/// The facts of some consecutive versions ([`Packument::facts_part`]).
#[derive(Debug)]
pub struct FactsPart {
    start: usize,
    result: Result<(Vec<VersionFacts>, Vec<DistPlan>), NpmDocError>,
}

/// What the policy needs to know about one version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionFacts {
    /// The key in `versions`.
    pub version: String,
    /// `time[version]` exactly as upstream wrote it (RFC 3339); `None` in abbreviated docs.
    pub published: Option<String>,
    /// `preinstall`/`install`/`postinstall` present (truthy) in `scripts`, in that order, then
    /// `binding.gyp (gypfile)` when `gypfile: true`.
    pub install_scripts: Vec<String>,
    /// `Some(true)` when an install script is known (from `scripts`, `gypfile` or
    /// `hasInstallScript: true`); `Some(false)` when known absent (full document, or an
    /// explicit `hasInstallScript: false`); `None` in an abbreviated document that does not
    /// say (registries only write `hasInstallScript` when true, and some never do).
    pub has_install_script: Option<bool>,
    /// Version `repository` (its `url`, or the string form), else the top-level one; blank
    /// values count as absent. Always `None` in abbreviated documents.
    pub repository: Option<String>,
    /// `deprecated` is a non-empty string (or `true`).
    pub deprecated: bool,
    /// Upstream `dist.tarball`.
    pub tarball_url: Option<String>,
    /// `dist.integrity` (SRI).
    pub integrity: Option<String>,
    /// `dist.shasum` (sha1 hex).
    pub shasum: Option<String>,
}

/// Owned facts of a whole packument (see [`facts_only`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageFacts {
    pub name: Option<String>,
    /// The upstream document was abbreviated (no `time`, top-level `modified`).
    pub abbreviated: bool,
    /// `time.created`.
    pub created: Option<String>,
    /// `time.modified`, else top-level `modified`.
    pub modified: Option<String>,
    /// Upstream dist-tags in document order.
    pub dist_tags: Vec<(String, String)>,
    /// Every version in document order.
    pub versions: Vec<VersionFacts>,
}

/// How to render a filtered packument.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions<'o> {
    /// Versions (keys of `versions`) to drop.
    pub removed: &'o HashSet<String>,
    /// Proxy origin (and optional path prefix) for rewritten tarball URLs, e.g.
    /// `http://127.0.0.1:8080`; a trailing `/` is ignored.
    pub tarball_base: &'o str,
    pub representation: Representation,
}

/// A rendered packument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The JSON document.
    pub bytes: Vec<u8>,
    /// Upstream versions dropped (for `x-pkggate-blocked-versions`).
    pub removed: usize,
    /// Versions left.
    pub kept: usize,
    /// The dist-tags as served, in order.
    pub dist_tags: Vec<(String, String)>,
    /// The form of `bytes` (an abbreviated upstream always renders abbreviated).
    pub representation: Representation,
}

/// Per-version fields of the abbreviated form (besides the derived `hasInstallScript`).
pub const CORGI_VERSION_FIELDS: &[&str] = &[
    "name",
    "version",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bundledDependencies",
    "bin",
    "directories",
    "engines",
    "dist",
    "deprecated",
    "os",
    "cpu",
    "libc",
    "funding",
    "acceptDependencies",
    "_hasShrinkwrap",
];

/// Whether `key` is one of [`CORGI_VERSION_FIELDS`] (as a `match`: no list walk per member).
fn is_corgi_field(key: &str) -> bool {
    matches!(
        key,
        "name"
            | "version"
            | "dependencies"
            | "optionalDependencies"
            | "devDependencies"
            | "peerDependencies"
            | "peerDependenciesMeta"
            | "bundleDependencies"
            | "bundledDependencies"
            | "bin"
            | "directories"
            | "engines"
            | "dist"
            | "deprecated"
            | "os"
            | "cpu"
            | "libc"
            | "funding"
            | "acceptDependencies"
            | "_hasShrinkwrap"
    )
}

/// The members of one version object the facts are read from, found in one walk over its
/// members (duplicate keys were refused before).
#[derive(Debug, Default, Clone, Copy)]
struct Fields<'a> {
    scripts: Option<&'a str>,
    gypfile: Option<&'a str>,
    has_install_script: Option<&'a str>,
    repository: Option<&'a str>,
    dist: Option<&'a str>,
    deprecated: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn of(entries: &Members<'a>) -> Fields<'a> {
        let mut f = Fields::default();
        for (k, v) in entries {
            let slot = match k.as_ref() {
                "scripts" => &mut f.scripts,
                "gypfile" => &mut f.gypfile,
                "hasInstallScript" => &mut f.has_install_script,
                "repository" => &mut f.repository,
                "dist" => &mut f.dist,
                "deprecated" => &mut f.deprecated,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(*v);
            }
        }
        f
    }
}

const INSTALL_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// The label used in [`VersionFacts::install_scripts`] for `gypfile: true`.
pub const GYPFILE_LABEL: &str = "binding.gyp (gypfile)";

/// A packument parsed without building a JSON tree: every value borrows the input.
#[derive(Debug)]
pub struct Packument<'a> {
    src: &'a str,
    /// Top-level members in order (`None`: `versions`, read into `versions`).
    top: Vec<(Cow<'a, str>, Option<&'a str>)>,
    name: Option<Cow<'a, str>>,
    /// `(version, raw text of its object)` in document order.
    versions: Vec<(Cow<'a, str>, &'a str)>,
    /// Members of each version object, when they were split while parsing (else empty and
    /// read on demand).
    members: Vec<Entries<'a>>,
    index: HashMap<Cow<'a, str>, usize>,
    time: Entries<'a>,
    time_index: HashMap<Cow<'a, str>, usize>,
    dist_tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    top_modified: Option<&'a str>,
    repository: Option<String>,
    abbreviated: bool,
    /// Where each version's `dist.tarball` is, learnt by [`Packument::facts`] so that
    /// [`Packument::render`] does not read every version object a second time.
    plans: OnceLock<Vec<DistPlan>>,
}

/// Where the rewritten `dist.tarball` goes in one version object (offsets into the
/// document).
#[derive(Debug, Clone, Copy)]
enum DistPlan {
    /// No `dist` object: the version is copied as is.
    Keep,
    /// Replace the bytes `start..end` (the upstream `tarball` value).
    Replace { start: usize, end: usize },
    /// `dist` has no `tarball`: add one before its closing brace at `close` (after a comma
    /// unless `dist` is empty).
    Insert { close: usize, comma: bool },
}

fn field_in(parent: &str, key: &str) -> String {
    format!("{parent}[{:?}]", brief(key))
}

/// Read a raw value as an object's ordered members, refusing duplicate keys.
fn parse_object<'a>(raw: &'a str, at: impl Fn() -> String) -> Result<Entries<'a>, NpmDocError> {
    parse_object_text(raw, at)
}

/// [`parse_object`] of a value's raw text.
fn parse_object_text<'a>(
    text: &'a str,
    at: impl Fn() -> String,
) -> Result<Entries<'a>, NpmDocError> {
    if super::raw::first_byte(text) != Some(b'{') {
        return Err(NpmDocError::BadField {
            field: at(),
            expected: "a JSON object",
            found: brief(text),
        });
    }
    // The text is part of a document already read whole (so valid JSON): split it without a
    // second validation; anything unexpected is read by `serde_json`, which says what is wrong.
    let entries = match split_object(text) {
        Some(entries) => entries,
        None => {
            let RawMap(entries) = serde_json::from_str(text)
                .map_err(|source| NpmDocError::Nested { at: at(), source })?;
            entries
        }
    };
    if let Some(key) = first_duplicate(&entries) {
        return Err(NpmDocError::DuplicateKey {
            at: at(),
            key: brief(key),
        });
    }
    Ok(entries)
}

/// `repository` as a URL string: the string form, or the object's `url`; blank → `None`.
fn repository_url(
    raw: Option<&str>,
    at: impl Fn() -> String,
) -> Result<Option<String>, NpmDocError> {
    let Some(raw) = raw else { return Ok(None) };
    let url = if is_object(raw) {
        let entries = parse_object(raw, at)?;
        get(&entries, "url").and_then(as_str)
    } else {
        as_str(raw)
    };
    Ok(url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()))
}

fn index_of<'a, V>(entries: &[(Cow<'a, str>, V)]) -> HashMap<Cow<'a, str>, usize> {
    entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect()
}

/// Push `"key":` preceded by a comma unless first.
fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    push_json_str(out, key);
    out.push(b':');
}

fn push_tags(out: &mut Vec<u8>, tags: &[(String, String)]) {
    out.push(b'{');
    let mut first = true;
    for (tag, target) in tags {
        push_key(out, &mut first, tag);
        push_json_str(out, target);
    }
    out.push(b'}');
}

/// `dist` with `tarball` replaced by `url` (or added when missing); every other byte kept.
fn push_dist(
    out: &mut Vec<u8>,
    dist: &str,
    url: &str,
    at: impl Fn() -> String,
) -> Result<(), NpmDocError> {
    let src = dist;
    if !is_object(dist) {
        out.extend_from_slice(src.as_bytes());
        return Ok(());
    }
    let entries = parse_object(dist, at)?;
    let bytes = src.as_bytes();
    match get(&entries, "tarball") {
        Some(t) => {
            let start = offset_in(src, t).ok_or(NpmDocError::Internal("tarball offset"))?;
            let end = start + t.len();
            out.extend_from_slice(bytes.get(..start).ok_or(NpmDocError::Internal("dist"))?);
            push_json_str(out, url);
            out.extend_from_slice(bytes.get(end..).ok_or(NpmDocError::Internal("dist"))?);
        }
        None => {
            let close = src.rfind('}').ok_or(NpmDocError::Internal("dist close"))?;
            out.extend_from_slice(bytes.get(..close).ok_or(NpmDocError::Internal("dist"))?);
            if !entries.is_empty() {
                out.push(b',');
            }
            push_json_str(out, "tarball");
            out.push(b':');
            push_json_str(out, url);
            out.extend_from_slice(bytes.get(close..).ok_or(NpmDocError::Internal("dist"))?);
        }
    }
    Ok(())
}

impl<'a> Packument<'a> {
    /// Parse a full or abbreviated packument. Checks the shape pkggate relies on: a top-level
    /// object without duplicate keys; `name` a string; `versions` an object of objects;
    /// `time` an object; `dist-tags` an object of strings; `repository` a string or object;
    /// no duplicate keys in any of these. `versions`, `time` and `dist-tags` may be absent or
    /// empty (a removed package has zero versions).
    pub fn parse(bytes: &'a [u8]) -> Result<Packument<'a>, NpmDocError> {
        let src = std::str::from_utf8(bytes).map_err(|e| NpmDocError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        if super::raw::first_byte(src) != Some(b'{') {
            // Distinguish "not JSON" from "JSON but not an object".
            return match serde_json::from_str::<serde::de::IgnoredAny>(src) {
                Err(source) => Err(NpmDocError::Json { source }),
                Ok(_) => Err(NpmDocError::NotAnObject { found: brief(src) }),
            };
        }
        // One pass over the document that also splits `versions` into its members; when
        // that fails (invalid JSON, `versions` not an object), the plain raw read below
        // reports the exact error.
        match serde_json::from_str(src) {
            Ok(TopMap(top)) => Self::from_top(src, top),
            Err(_) => Self::parse_plain(src),
        }
    }

    /// [`Packument::parse`] of a document whose structure a
    /// [`PackumentScanner`](super::PackumentScanner) learnt while it arrived (`scan`: its
    /// [`finish`](super::PackumentScanner::finish) on these same `bytes`): the same result
    /// (document or error), without reading the document again; only UTF-8 is checked and the
    /// small objects (`time`, `dist-tags`, `repository`) are read. Without a scan, or with
    /// one that does not fit `bytes`, this is [`Packument::parse`].
    pub fn parse_scanned(
        bytes: &'a [u8],
        scan: Option<&PackumentScan>,
    ) -> Result<Packument<'a>, NpmDocError> {
        if let Some(scan) = scan
            && let Ok(src) = std::str::from_utf8(bytes)
            && let Some(top) = scan.top_map(src)
        {
            return Self::from_top(src, top);
        }
        Self::parse(bytes)
    }

    /// Parse with every member of the top level kept as raw text (the exact errors).
    fn parse_plain(src: &'a str) -> Result<Packument<'a>, NpmDocError> {
        let RawMap(top) =
            serde_json::from_str(src).map_err(|source| NpmDocError::Json { source })?;
        let top = top.into_iter().map(|(k, v)| (k, TopVal::Raw(v))).collect();
        Self::from_top(src, top)
    }

    fn from_top(
        src: &'a str,
        top: Vec<(Cow<'a, str>, TopVal<'a>)>,
    ) -> Result<Packument<'a>, NpmDocError> {
        if let Some(key) = first_duplicate(&top) {
            return Err(NpmDocError::DuplicateKey {
                at: "(top level)".into(),
                key: brief(key),
            });
        }
        let mut doc = Packument {
            src,
            name: None,
            versions: Vec::new(),
            members: Vec::new(),
            index: HashMap::new(),
            time: Vec::new(),
            time_index: HashMap::new(),
            dist_tags: Vec::new(),
            top_modified: None,
            repository: None,
            abbreviated: false,
            top: Vec::with_capacity(top.len()),
            plans: OnceLock::new(),
        };
        let mut has_time = false;
        for (key, val) in top {
            let raw = match val {
                TopVal::Raw(raw) => raw,
                TopVal::Versions(versions) => {
                    if let Some(key) = first_duplicate_by(&versions, |(k, _, _)| k.as_ref()) {
                        return Err(NpmDocError::DuplicateKey {
                            at: "versions".into(),
                            key: brief(key),
                        });
                    }
                    let mut texts = Vec::with_capacity(versions.len());
                    for (v, text, members) in &versions {
                        match text.or_else(|| object_text(src, members)) {
                            Some(text) => texts.push((v.clone(), text)),
                            // An empty version object: read everything the plain way.
                            None => return Self::parse_plain(src),
                        }
                    }
                    doc.index = index_of(&texts);
                    doc.versions = texts;
                    doc.members = versions.into_iter().map(|(_, _, m)| m).collect();
                    doc.top.push((key, None));
                    continue;
                }
            };
            match key.as_ref() {
                "name" => {
                    doc.name = Some(as_str(raw).ok_or_else(|| NpmDocError::BadField {
                        field: "name".into(),
                        expected: "a string",
                        found: brief(raw),
                    })?);
                }
                "versions" => {
                    let versions = parse_object(raw, || "versions".into())?;
                    doc.set_versions(versions)?;
                }
                "time" => {
                    has_time = true;
                    doc.time = parse_object(raw, || "time".into())?;
                    doc.time_index = index_of(&doc.time);
                }
                "dist-tags" => {
                    for (tag, target) in parse_object(raw, || "dist-tags".into())? {
                        let target = as_str(target).ok_or_else(|| NpmDocError::BadField {
                            field: field_in("dist-tags", &tag),
                            expected: "a string",
                            found: brief(target),
                        })?;
                        doc.dist_tags.push((tag, target));
                    }
                }
                "modified" => {
                    doc.top_modified = as_str(raw).is_some().then_some(raw);
                }
                "repository" => {
                    doc.repository = repository_url(Some(raw), || "repository".into())?;
                }
                _ => {}
            }
            doc.top.push((key, Some(raw)));
        }
        doc.abbreviated = !has_time && doc.top_modified.is_some();
        Ok(doc)
    }

    fn set_versions(&mut self, versions: Entries<'a>) -> Result<(), NpmDocError> {
        if let Some((k, v)) = versions.iter().find(|(_, v)| !is_object(v)) {
            return Err(NpmDocError::BadField {
                field: field_in("versions", k),
                expected: "a JSON object",
                found: brief(v),
            });
        }
        self.index = index_of(&versions);
        self.versions = versions;
        Ok(())
    }

    /// Top-level `name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The upstream document is abbreviated (no `time`, a top-level `modified`).
    pub fn is_abbreviated(&self) -> bool {
        self.abbreviated
    }

    /// Number of versions upstream lists.
    pub fn version_count(&self) -> usize {
        self.versions.len()
    }

    /// Version keys in document order.
    pub fn versions(&self) -> impl Iterator<Item = &str> + '_ {
        self.versions.iter().map(|(k, _)| k.as_ref())
    }

    /// Whether `versions` has this exact key.
    pub fn has_version(&self, version: &str) -> bool {
        self.index.contains_key(version)
    }

    /// Upstream dist-tags in document order.
    pub fn dist_tags(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.dist_tags.iter().map(|(t, v)| (t.as_ref(), v.as_ref()))
    }

    /// Upstream target of one dist-tag.
    pub fn dist_tag(&self, tag: &str) -> Option<&str> {
        self.dist_tags
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_ref())
    }

    fn time_raw(&self, key: &str) -> Option<&'a str> {
        self.time_index.get(key).map(|&i| self.time[i].1)
    }

    /// `time[key]` when it is a string (a version, `created` or `modified`).
    pub fn time(&self, key: &str) -> Option<Cow<'a, str>> {
        self.time_raw(key).and_then(as_str)
    }

    /// `time.created`.
    pub fn created(&self) -> Option<Cow<'a, str>> {
        self.time("created")
    }

    fn modified_raw(&self) -> Option<&'a str> {
        self.time_raw("modified")
            .filter(|r| as_str(r).is_some())
            .or(self.top_modified)
    }

    /// `time.modified`, else top-level `modified` (abbreviated documents).
    pub fn modified(&self) -> Option<Cow<'a, str>> {
        self.modified_raw().and_then(as_str)
    }

    /// The upstream object of one version, exactly as upstream wrote it.
    pub fn version_raw(&self, version: &str) -> Option<&'a RawValue> {
        self.index
            .get(version)
            .and_then(|&i| serde_json::from_str(self.versions[i].1).ok())
    }

    /// Resolve an exact version key, else a dist-tag, to `(version, upstream object)`.
    /// Nothing is filtered here; see [`Packument::render_version`].
    pub fn resolve(&self, spec: &str) -> Option<(&str, &'a RawValue)> {
        let i = match self.index.get(spec) {
            Some(&i) => i,
            None => *self.index.get(self.dist_tag(spec)?)?,
        };
        let (k, v) = &self.versions[i];
        Some((k.as_ref(), serde_json::from_str(v).ok()?))
    }

    /// The members of version `i` (duplicate keys refused).
    fn version_entries(&self, i: usize) -> Result<Cow<'_, Members<'a>>, NpmDocError> {
        let (key, text) = &self.versions[i];
        let at = || field_in("versions", key);
        match self.members.get(i) {
            Some(members) => match first_duplicate(members) {
                Some(dup) => Err(NpmDocError::DuplicateKey {
                    at: at(),
                    key: brief(dup),
                }),
                None => Ok(Cow::Borrowed(members.as_slice())),
            },
            None => parse_object_text(text, at).map(Cow::Owned),
        }
    }

    /// Install-script facts of one version's members.
    fn install_facts(
        &self,
        key: &str,
        fields: &Fields<'a>,
    ) -> Result<(Vec<String>, Option<bool>), NpmDocError> {
        let mut scripts = Vec::new();
        let scripts_raw = fields.scripts;
        if let Some(raw) = scripts_raw.filter(|r| is_object(r)) {
            let members = parse_object(raw, || format!("{}.scripts", field_in("versions", key)))?;
            // One walk over the scripts (keys are unique), reported in INSTALL_SCRIPTS order.
            let mut found = [false; INSTALL_SCRIPTS.len()];
            for (k, v) in &members {
                if let Some(at) = INSTALL_SCRIPTS.iter().position(|n| n == k) {
                    found[at] = is_truthy(v);
                }
            }
            for (name, _) in INSTALL_SCRIPTS.iter().zip(found).filter(|(_, f)| *f) {
                scripts.push(name.to_string());
            }
        }
        if fields.gypfile.and_then(as_bool) == Some(true) {
            scripts.push(GYPFILE_LABEL.to_string());
        }
        let flag = fields.has_install_script.and_then(as_bool);
        let has = if !scripts.is_empty() || flag == Some(true) {
            Some(true)
        } else if scripts_raw.is_some() || flag == Some(false) || !self.abbreviated {
            Some(false)
        } else {
            None
        };
        Ok((scripts, has))
    }

    /// Facts of version `i` and where its `dist.tarball` is, from one read of its object.
    fn scan_at(&self, i: usize) -> Result<(VersionFacts, DistPlan), NpmDocError> {
        let key = self.versions[i].0.as_ref();
        let at = || field_in("versions", key);
        let entries = self.version_entries(i)?;
        let fields = Fields::of(&entries);
        let (install_scripts, has_install_script) = self.install_facts(key, &fields)?;
        let repository = match repository_url(fields.repository, || format!("{}.repository", at()))?
        {
            Some(r) => Some(r),
            None => self.repository.clone(),
        };
        let (mut tarball_url, mut integrity, mut shasum) = (None, None, None);
        let mut plan = DistPlan::Keep;
        if let Some(dist) = fields.dist.filter(|d| is_object(d)) {
            let d = parse_object(dist, || format!("{}.dist", at()))?;
            let s = |k| get(&d, k).and_then(as_str).map(Cow::into_owned);
            (tarball_url, integrity, shasum) = (s("tarball"), s("integrity"), s("shasum"));
            plan = match get(&d, "tarball") {
                Some(t) => {
                    let start =
                        offset_in(self.src, t).ok_or(NpmDocError::Internal("tarball offset"))?;
                    DistPlan::Replace {
                        start,
                        end: start + t.len(),
                    }
                }
                None => {
                    let start =
                        offset_in(self.src, dist).ok_or(NpmDocError::Internal("dist offset"))?;
                    let close = dist.rfind('}').ok_or(NpmDocError::Internal("dist"))?;
                    DistPlan::Insert {
                        close: start + close,
                        comma: !d.is_empty(),
                    }
                }
            };
        }
        let facts = VersionFacts {
            version: key.to_string(),
            published: self.time(key).map(Cow::into_owned),
            install_scripts,
            has_install_script,
            repository,
            deprecated: fields.deprecated.is_some_and(is_truthy),
            tarball_url,
            integrity,
            shasum,
        };
        Ok((facts, plan))
    }

    /// Facts of one version (`None` when `versions` lacks it).
    pub fn version_facts(&self, version: &str) -> Result<Option<VersionFacts>, NpmDocError> {
        self.index
            .get(version)
            .map(|&i| self.scan_at(i).map(|(f, _)| f))
            .transpose()
    }

    /// Facts of every version, in document order. Also remembers where each version's
    /// `dist.tarball` is, so a later [`Packument::render`] of the full form copies the
    /// version objects without reading them again.
    pub fn facts(&self) -> Result<Vec<VersionFacts>, NpmDocError> {
        self.join_facts(vec![self.facts_part(0..self.versions.len())])
    }

    /// [`Packument::facts`] of the versions at `range` (document order, clamped to
    /// [`Packument::version_count`]), to compute the facts in parts (on several threads, say:
    /// a `Packument` is `Sync`); [`Packument::join_facts`] puts the parts together.
    pub fn facts_part(&self, range: std::ops::Range<usize>) -> FactsPart {
        let end = range.end.min(self.versions.len());
        let start = range.start.min(end);
        let mut facts = Vec::with_capacity(end - start);
        let mut plans = Vec::with_capacity(end - start);
        for i in start..end {
            match self.scan_at(i) {
                Ok((f, p)) => {
                    facts.push(f);
                    plans.push(p);
                }
                Err(e) => {
                    return FactsPart {
                        start,
                        result: Err(e),
                    };
                }
            }
        }
        FactsPart {
            start,
            result: Ok((facts, plans)),
        }
    }

    /// The parts of [`Packument::facts_part`] put together: the same result as
    /// [`Packument::facts`] (the first error in document order) when they cover every version
    /// in order; an [`NpmDocError::Internal`] error when they do not.
    pub fn join_facts(&self, parts: Vec<FactsPart>) -> Result<Vec<VersionFacts>, NpmDocError> {
        let mut facts = Vec::with_capacity(self.versions.len());
        let mut plans = Vec::with_capacity(self.versions.len());
        for part in parts {
            if part.start != facts.len() {
                return Err(NpmDocError::Internal("facts parts out of order"));
            }
            let (f, p) = part.result?;
            facts.extend(f);
            plans.extend(p);
        }
        if facts.len() != self.versions.len() {
            return Err(NpmDocError::Internal("facts parts missing versions"));
        }
        let _ = self.plans.set(plans);
        Ok(facts)
    }

    /// Owned summary of the whole document (for a per-package facts cache).
    pub fn summary(&self) -> Result<PackageFacts, NpmDocError> {
        Ok(PackageFacts {
            name: self.name.as_ref().map(|n| n.to_string()),
            abbreviated: self.abbreviated,
            created: self.created().map(Cow::into_owned),
            modified: self.modified().map(Cow::into_owned),
            dist_tags: self
                .dist_tags()
                .map(|(t, v)| (t.to_string(), v.to_string()))
                .collect(),
            versions: self.facts()?,
        })
    }

    fn checked_name(&self) -> Result<&str, NpmDocError> {
        let name = self.name.as_deref().ok_or(NpmDocError::MissingName)?;
        validate_name(name)?;
        Ok(name)
    }

    fn kept_indices(&self, removed: &HashSet<String>) -> Vec<usize> {
        (0..self.versions.len())
            .filter(|&i| !removed.contains(self.versions[i].0.as_ref()))
            .collect()
    }

    /// One version object with its `dist.tarball` rewritten; all other bytes as upstream.
    fn push_version_full(
        &self,
        out: &mut Vec<u8>,
        i: usize,
        name: &str,
        base: &str,
    ) -> Result<(), NpmDocError> {
        let (key, src) = &self.versions[i];
        if let Some(plan) = self.plans.get().and_then(|p| p.get(i)) {
            return self.push_planned(out, src, *plan, &tarball_url(base, name, key));
        }
        let entries = self.version_entries(i)?;
        match get(&entries, "dist").filter(|d| is_object(d)) {
            Some(dist) => {
                let start = offset_in(src, dist).ok_or(NpmDocError::Internal("dist offset"))?;
                let end = start + dist.len();
                let bytes = src.as_bytes();
                out.extend_from_slice(bytes.get(..start).ok_or(NpmDocError::Internal("v"))?);
                push_dist(out, dist, &tarball_url(base, name, key), || {
                    format!("{}.dist", field_in("versions", key))
                })?;
                out.extend_from_slice(bytes.get(end..).ok_or(NpmDocError::Internal("v"))?);
            }
            None => out.extend_from_slice(src.as_bytes()),
        }
        Ok(())
    }

    /// One version object copied with the tarball URL spliced in where `plan` says.
    fn push_planned(
        &self,
        out: &mut Vec<u8>,
        text: &str,
        plan: DistPlan,
        url: &str,
    ) -> Result<(), NpmDocError> {
        let start = offset_in(self.src, text).ok_or(NpmDocError::Internal("v offset"))?;
        let end = start + text.len();
        let doc = self.src.as_bytes();
        let part = |a: usize, b: usize| doc.get(a..b).ok_or(NpmDocError::Internal("v"));
        match plan {
            DistPlan::Keep => out.extend_from_slice(part(start, end)?),
            DistPlan::Replace { start: s, end: e } => {
                out.extend_from_slice(part(start, s)?);
                push_json_str(out, url);
                out.extend_from_slice(part(e, end)?);
            }
            DistPlan::Insert { close, comma } => {
                out.extend_from_slice(part(start, close)?);
                if comma {
                    out.push(b',');
                }
                push_json_str(out, "tarball");
                out.push(b':');
                push_json_str(out, url);
                out.extend_from_slice(part(close, end)?);
            }
        }
        Ok(())
    }

    /// One version in the abbreviated form derived from a full object.
    fn push_version_corgi(
        &self,
        out: &mut Vec<u8>,
        i: usize,
        name: &str,
        base: &str,
    ) -> Result<(), NpmDocError> {
        let key = self.versions[i].0.as_ref();
        let entries = self.version_entries(i)?;
        let (_, has_install) = self.install_facts(key, &Fields::of(&entries))?;
        out.push(b'{');
        let mut first = true;
        for (k, v) in entries.iter() {
            if !is_corgi_field(k) {
                continue;
            }
            push_key(out, &mut first, k);
            if k == "dist" {
                push_dist(out, v, &tarball_url(base, name, key), || {
                    format!("{}.dist", field_in("versions", key))
                })?;
            } else {
                out.extend_from_slice(v.as_bytes());
            }
        }
        if has_install == Some(true) {
            push_key(out, &mut first, "hasInstallScript");
            out.extend_from_slice(b"true");
        }
        out.push(b'}');
        Ok(())
    }

    fn push_versions(
        &self,
        out: &mut Vec<u8>,
        kept: &[usize],
        name: &str,
        base: &str,
        corgi: bool,
    ) -> Result<(), NpmDocError> {
        out.push(b'{');
        let mut first = true;
        for &i in kept {
            push_key(out, &mut first, &self.versions[i].0);
            if corgi {
                self.push_version_corgi(out, i, name, base)?;
            } else {
                self.push_version_full(out, i, name, base)?;
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Render the filtered document.
    ///
    /// Removed versions leave `versions` and `time` (other `time` keys stay); dist-tags are
    /// fixed up by [`retarget_dist_tags`]; each kept `dist.tarball` becomes
    /// [`tarball_url`]`(tarball_base, name, version)`; every other byte of kept values is
    /// upstream's, and top-level keys keep their order. `Abbreviated` from a full upstream
    /// derives the corgi form (`name`, `dist-tags`, `versions` with
    /// [`CORGI_VERSION_FIELDS`] plus `hasInstallScript: true` when known, `modified` from
    /// upstream when it has one); an abbreviated upstream is passed through filtered
    /// whatever `representation` asks. Errors with [`NpmDocError::NoVersionsLeft`] when no
    /// version remains.
    pub fn render(&self, opts: &RenderOptions<'_>) -> Result<Rendered, NpmDocError> {
        self.render_into(opts, Vec::new())
    }

    /// The size [`Packument::render`] reserves for its output when nothing is removed
    /// (usually enough: the output grows otherwise), so that a caller can prepare the buffer
    /// of [`Packument::render_into`] ahead of time.
    pub fn render_capacity(&self, tarball_base: &str, representation: Representation) -> usize {
        self.output_capacity(
            self.versions.len(),
            tarball_base,
            representation == Representation::Abbreviated && !self.abbreviated,
        )
    }

    fn output_capacity(&self, kept: usize, base: &str, corgi: bool) -> usize {
        // Room for the whole document plus each rewritten tarball URL (usually no longer than
        // upstream's), so the output is never reallocated and copied.
        let name = self.name.as_deref().map_or(0, str::len);
        let url_room = base.len() + 2 * name + 32;
        if corgi {
            self.src.len() / 2
        } else {
            self.src.len() + 64 + kept * url_room
        }
    }

    /// [`Packument::render`] into `buf` (cleared first; its allocation is used when large
    /// enough, e.g. one made and touched while the decision was being made).
    pub fn render_into(
        &self,
        opts: &RenderOptions<'_>,
        buf: Vec<u8>,
    ) -> Result<Rendered, NpmDocError> {
        let kept = self.kept_indices(opts.removed);
        let removed = self.versions.len() - kept.len();
        if kept.is_empty() {
            return Err(NpmDocError::NoVersionsLeft {
                name: self.name.as_deref().unwrap_or_default().to_string(),
                removed,
                total: self.versions.len(),
            });
        }
        let name = self.checked_name()?;
        let kept_keys: Vec<&str> = kept.iter().map(|&i| self.versions[i].0.as_ref()).collect();
        let tags = retarget_dist_tags(&self.dist_tags, &kept_keys);
        let corgi = opts.representation == Representation::Abbreviated && !self.abbreviated;
        let base = opts.tarball_base;
        let mut out = buf;
        out.clear();
        out.reserve(self.output_capacity(kept.len(), base, corgi));
        out.push(b'{');
        let mut first = true;
        if corgi {
            if let Some(raw) = self.top.iter().find(|(k, _)| k == "name").and_then(|e| e.1) {
                push_key(&mut out, &mut first, "name");
                out.extend_from_slice(raw.as_bytes());
            }
            push_key(&mut out, &mut first, "dist-tags");
            push_tags(&mut out, &tags);
            push_key(&mut out, &mut first, "versions");
            self.push_versions(&mut out, &kept, name, base, true)?;
            if let Some(m) = self.modified_raw() {
                push_key(&mut out, &mut first, "modified");
                out.extend_from_slice(m.as_bytes());
            }
        } else {
            for (key, raw) in &self.top {
                push_key(&mut out, &mut first, key);
                match key.as_ref() {
                    "versions" => self.push_versions(&mut out, &kept, name, base, false)?,
                    "dist-tags" => push_tags(&mut out, &tags),
                    "time" => {
                        out.push(b'{');
                        let mut first_t = true;
                        for (k, v) in &self.time {
                            if opts.removed.contains(k.as_ref()) && self.index.contains_key(k) {
                                continue;
                            }
                            push_key(&mut out, &mut first_t, k);
                            out.extend_from_slice(v.as_bytes());
                        }
                        out.push(b'}');
                    }
                    _ => out.extend_from_slice(
                        raw.ok_or(NpmDocError::Internal("top value"))?.as_bytes(),
                    ),
                }
            }
        }
        out.push(b'}');
        Ok(Rendered {
            bytes: out,
            removed,
            kept: kept.len(),
            dist_tags: tags,
            representation: if self.abbreviated {
                Representation::Abbreviated
            } else {
                opts.representation
            },
        })
    }

    /// `GET /<name>/<version-or-tag>` without rendering the whole document: resolve `spec`
    /// as a kept version key, else as a dist-tag after retargeting, and return that version's
    /// object with `dist.tarball` rewritten (`opts.representation` is ignored: this endpoint
    /// serves the version object as upstream has it). `Ok(None)` → 404 (the version is
    /// removed, unknown, or the tag points nowhere once filtered).
    pub fn render_version(
        &self,
        opts: &RenderOptions<'_>,
        spec: &str,
    ) -> Result<Option<Vec<u8>>, NpmDocError> {
        let i = match self.index.get(spec) {
            Some(_) if opts.removed.contains(spec) => return Ok(None),
            Some(&i) => i,
            None => {
                let kept = self.kept_indices(opts.removed);
                let kept_keys: Vec<&str> =
                    kept.iter().map(|&i| self.versions[i].0.as_ref()).collect();
                let tags = retarget_dist_tags(&self.dist_tags, &kept_keys);
                let Some((_, target)) = tags.iter().find(|(t, _)| t == spec) else {
                    return Ok(None);
                };
                match self.index.get(target.as_str()) {
                    Some(&i) => i,
                    None => return Ok(None),
                }
            }
        };
        let name = self.checked_name()?;
        let mut out = Vec::with_capacity(self.versions[i].1.len() + 64);
        self.push_version_full(&mut out, i, name, opts.tarball_base)?;
        Ok(Some(out))
    }
}

/// Parse a document and return owned facts of every version (for a facts cache).
pub fn facts_only(bytes: &[u8]) -> Result<PackageFacts, NpmDocError> {
    Packument::parse(bytes)?.summary()
}

/// Parse `bytes` and render it in one call.
pub fn filter_document(bytes: &[u8], opts: &RenderOptions<'_>) -> Result<Rendered, NpmDocError> {
    Packument::parse(bytes)?.render(opts)
}

/// From an already rendered (filtered) packument, the object of the version named by `spec`
/// (exact version key, else dist-tag), byte for byte; `Ok(None)` → 404.
pub fn extract_version(rendered: &[u8], spec: &str) -> Result<Option<Vec<u8>>, NpmDocError> {
    let doc = Packument::parse(rendered)?;
    Ok(doc
        .resolve(spec)
        .map(|(_, raw)| raw.get().as_bytes().to_vec()))
}

#[cfg(test)]
#[test]
fn corgi_fields_match_the_list() {
    for k in CORGI_VERSION_FIELDS {
        assert!(is_corgi_field(k), "{k}");
    }
    for k in ["readme", "scripts", "Name", "dist ", "hasInstallScript", ""] {
        assert!(!is_corgi_field(k), "{k}");
    }
}

#[cfg(test)]
impl Packument<'_> {
    /// Everything a parse decides (not the lazily learnt tarball positions, nor whether the
    /// version members were kept), for comparing two ways of reading a document.
    pub(crate) fn shape(&self) -> String {
        // `versions` is kept as raw text by the plain read only.
        let top: Vec<_> = self
            .top
            .iter()
            .map(|(k, v)| (k, v.filter(|_| k != "versions")))
            .collect();
        format!(
            "{:?}",
            (
                top,
                &self.name,
                &self.versions,
                &self.time,
                &self.dist_tags,
                &self.top_modified,
                &self.repository,
                self.abbreviated,
            )
        )
    }
}

#[cfg(test)]
pub(super) mod tests;
