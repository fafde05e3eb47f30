//! PyPI formats: filenames, `Accept` negotiation, simple-API pages (PEP 503 HTML and
//! PEP 691/700 JSON), the `/simple/` root, and the legacy JSON API. Pure: no IO, no clocks.
//!
//! # Public API (for the app)
//!
//! **Filenames** ([`filename`]):
//! * `parse_filename(project: &str, filename: &str) -> ParsedFile` — `{ kind: FileKind,
//!   version: Option<String> }`; kinds `Wheel`, `Sdist`, `BdistDumb`, `Egg`, `WinInst`
//!   (`.exe`), `Msi`, `Other`. The version is found by stripping a prefix that normalises
//!   to the project (never a guessed `-` split); `None` = unknown (wrong project, unknown
//!   layout), never a guess. Use it at the artifact gate on the requested filename.
//!
//! **Negotiation** ([`negotiate`]):
//! * `negotiate(accept: Option<&str>) -> SimpleFormat` — q-values, most specific range wins,
//!   ties: explicit > wildcard, then JSON > v1+html > text/html; nothing acceptable →
//!   `TextHtml` (PyPI parity, not 406).
//! * `SimpleFormat::{content_type(), is_html(), from_media_type(&str)}` — exact
//!   `Content-Type`s; `from_media_type` maps upstream `Content-Type` or `?format=`.
//!
//! **Project pages** ([`page`]):
//! * `parse_project_page<'a>(project, body: &'a [u8], format: Option<SimpleFormat>,
//!   page_url: &str) -> Result<ProjectPage<'a>, PypiError>` (also `parse_project_json`,
//!   `parse_project_html` on `&str`). `format` from upstream's `Content-Type`; `None`
//!   sniffs. `page_url` is the absolute upstream page URL (relative file URLs and
//!   `<base href>` resolve against it). The page borrows `body`.
//! * `ProjectPage { project, name, api_version, files: Vec<FileEntry>, versions:
//!   Option<Vec<String>>, source }`. `FileEntry { filename, url (absolute, no fragment;
//!   any scheme/host returned as is), hashes, requires_python, yanked: Yanked,
//!   core_metadata: Option<hashes>, gpg_sig, size, upload_time, kind, version }`.
//! * `ProjectPage::render(&self, SimpleFormat, &Rewrite) -> Result<RenderedPage, _>` with
//!   `Rewrite { keep_file: &dyn Fn(&FileEntry) -> bool, keep_version: &dyn Fn(&str) -> bool,
//!   file_url: &dyn Fn(&FileEntry) -> String }`. `keep_file` sees every file with its
//!   `version` (`None` = unknown: the caller's policy); `keep_version` filters PEP 700
//!   `versions` (incl. file-less versions). A listed version that had files and has none
//!   left is dropped too. `RenderedPage { body, format, files_kept, files_removed,
//!   versions_kept, removed_versions }` (use `removed_versions.len()` for headers, and
//!   `files_kept == 0` to decide a 404/403).
//! * `ProjectPage::facts() -> ProjectFacts` — per version (PEP 440-normalised lookup via
//!   `get(&str)`): `files`, `yanked_files`, `all_yanked()`, `earliest_upload:
//!   Option<UploadTime { raw, unix_seconds, nanos }>` (the publish time); versions listed
//!   without files have `files == 0`.
//!
//! Rendering rules:
//! * JSON → JSON: members stay raw and in order; each kept file object is copied byte for
//!   byte except its `url` value; `meta` (incl. `_last-serial`, unknown keys), `name`,
//!   unknown top-level members (`alternate-locations`, …) and unknown file keys
//!   (`provenance`, `_private`) are kept. Missing `meta` is added (`1.0`, or `1.1` when
//!   `versions` exists).
//! * HTML output (from either source): one `<a>` per kept file, attributes in the order
//!   `href` (caller URL + `#sha256=<hex>` unless it has a `#`), `data-requires-python`,
//!   `data-dist-info-metadata` + `data-core-metadata` (`sha256=<hex>` or `true`),
//!   `data-gpg-sig`, `data-yanked` (reason or empty), `data-upload-time`, `data-size`
//!   (non-standard, like the mirror's `data-upload-time`; ignored by clients, they let
//!   JSON → HTML → JSON lose nothing), then, from an HTML upstream, its other attributes.
//!   All values escaped (`&gt;=3.8`). `<meta name="pypi:repository-version">` carries
//!   upstream's version, else `1.1`. On the mirror's pages each kept line is identical to
//!   upstream's except for the href.
//! * HTML → JSON: PEP 691 objects (`filename, url, hashes, requires-python, yanked,
//!   core-metadata` + `dist-info-metadata` when known, `gpg-sig, size, upload-time` when
//!   known), `meta.api-version` = upstream's HTML version else `1.1`, `versions` = sorted
//!   distinct versions of kept files. `size` cannot be invented when HTML lacks it.
//! * API major version other than 1 (JSON `meta.api-version`, HTML meta) is
//!   `PypiError::UnsupportedApiVersion`.
//!
//! **JSON fast path** ([`scan`]): for the cold path of a PEP 691 JSON page, without building
//! the model, while the body arrives:
//! * `JsonPageScanner::new(project, page_url)`, `advance(&mut self, received: &[u8])` (the
//!   whole body so far; call as it grows; total work linear in the body), `finish(self,
//!   body) -> Option<JsonIndex>` — `None` = "use `parse_project_page`" (odd or invalid
//!   pages; the full parser gives the result or the precise error); never `Some` for a body
//!   the full parser refuses.
//! * `JsonIndex` (owned spans and facts, no borrow: cache it beside the body): `facts()`,
//!   `file_count()`, `approx_bytes()`, `render(body, format, keep_version: &dyn Fn(&str) ->
//!   bool, file_url: &dyn Fn(&str /*upstream url*/, &str /*filename*/) -> String) ->
//!   Result<RenderedPage, _>` — byte-identical to `ProjectPage::render` with `keep_file =
//!   |f| keep_version(f.version or "")`. `keep_version` must be pure (asked once per
//!   spelling).
//!
//! **Root index** ([`root`]):
//! * `RootFilter::new()`, `push(&mut self, chunk: &[u8], out: &mut Vec<u8>, blocked: impl
//!   Fn(&str) -> bool)`, `finish(&mut self, out, blocked)`, `removed()`,
//!   `dropped_malformed()` — streaming; `blocked` gets PEP 503 names (from href and text);
//!   removed links take their `<br/>` and line break with them; everything else
//!   byte-identical; at most 64 KiB held back (oversized elements are dropped).
//! * `filter_root_json(body: &[u8], blocked) -> Result<(String, usize), PypiError>`;
//!   `root_json_to_html` (same arguments) writes the result as PEP 503 HTML.
//!
//! **Legacy JSON** ([`legacy`]):
//! * `parse_legacy_json<'a>(project, body: &'a [u8], page_url) -> Result<LegacyDoc<'a>, _>`;
//!   `LegacyDoc { project, info_version, releases: Option<Vec<(String, Vec<FileEntry>)>>,
//!   urls }`, `repository_url() -> Option<&str>`, `facts() -> ProjectFacts` (release key =
//!   version; earliest `upload_time_iso_8601`), `render(&Rewrite) -> Result<LegacyRendered,
//!   _>` with `LegacyRendered { body, info_version, upstream_version_removed,
//!   removed_versions, files_removed, versions_kept }`. When `info.version` is removed it is
//!   retargeted to the highest remaining version; **other `info` fields still describe
//!   upstream's latest** (see [`legacy`]). For `/pypi/<p>/<v>/json`, answer 404 when
//!   `upstream_version_removed`.
//!
//! **Errors**: [`PypiError`] (thiserror), messages quote input briefly (≤ 60 chars).
//! Malformed JSON, duplicate keys, wrong member types, filenames with path separators,
//! unresolvable URLs, unterminated `<a>` are errors; nothing panics on input.

pub mod facts;
pub mod filename;
#[cfg(test)]
mod fixture_tests;
pub mod html;
mod json_util;
pub mod legacy;
pub mod negotiate;
pub mod page;
#[cfg(test)]
mod perf_tests;
pub mod root;
pub mod scan;
#[cfg(test)]
mod scan_tests;
pub mod time;

pub use facts::{ProjectFacts, VersionFacts};
pub use filename::{FileKind, ParsedFile, parse_filename};
pub use legacy::{LegacyDoc, LegacyRendered, parse_legacy_json};
pub use negotiate::{SimpleFormat, negotiate};
pub use page::{
    ApiVersion, FileEntry, ProjectPage, RenderedPage, Rewrite, SourceFormat, Yanked,
    parse_project_html, parse_project_json, parse_project_page,
};
pub use root::{RootFilter, filter_root_json, root_json_to_html};
pub use scan::{IndexedFile, JsonIndex, JsonPageScanner};
pub use time::UploadTime;

/// Why an upstream PyPI document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PypiError {
    #[error("upstream body is not UTF-8 (invalid from byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("upstream JSON is malformed: {0}")]
    Json(String),
    #[error("upstream JSON has an unexpected shape: {0}")]
    Shape(String),
    #[error("upstream file #{index} {filename}: {reason}")]
    File {
        index: usize,
        filename: String,
        reason: String,
    },
    #[error("upstream HTML is malformed at byte {offset}: {reason} (near {near})")]
    Html {
        offset: usize,
        reason: &'static str,
        near: String,
    },
    #[error("invalid repository API version {0}")]
    BadApiVersion(String),
    #[error("unsupported repository API version {0} (only major version 1 is understood)")]
    UnsupportedApiVersion(String),
    #[error("invalid page URL {url}: {reason}")]
    PageUrl { url: String, reason: String },
}
