//! The PyPI adapter (pip, uv, poetry, pdm): simple index, legacy JSON and file gates.
//!
//! Routes (merged into the main router):
//! * `GET|HEAD /simple/` — the root index, streamed through [`pkggate_formats::pypi::RootFilter`]
//!   (bounded memory); projects blocked outright are removed (see [`root`]).
//! * `GET|HEAD /simple/<project>/` — PEP 691 JSON or PEP 503 HTML by `Accept` (or
//!   `?format=`), exact `Content-Type`, `Vary: Accept`; non-normalised names and a missing
//!   trailing slash answer 301 to the normal form. A project blocked outright (see [`root`])
//!   is refused with 403 before upstream is asked. Upstream is asked for JSON first and may
//!   answer either. Every version is decided (publish time = earliest `upload-time`);
//!   forbidden versions leave `files` and `versions`; every file URL is rewritten (see
//!   [`paths`]).
//! * `GET /pypi/<project>/json`, `GET /pypi/<project>/<version>/json` — the legacy JSON API,
//!   filtered the same way; a forbidden `<version>` is 404; upstream's 404 passes through.
//! * `GET|HEAD /files/<project>/…/<filename>[.metadata]` — the file gate (see [`files`]).
//!
//! Files whose version cannot be derived from their filename are decided as version `""`:
//! denylist entries for the whole project, internal namespaces and advisories that cover
//! every version apply; otherwise the policy's `unknown_version` decides (default `allow`;
//! every file download is audited).
//!
//! Caches (per server, bounded): the upstream project page per project (fresh for
//! `PKGGATE_METADATA_MAX_AGE_SECONDS`, then revalidated with upstream's ETag), the rendered
//! page per (project, representation) keyed by everything it depends on, the repository URL
//! per project (only fetched when the policy's `require_repository_url` needs it), and the
//! root block list per intelligence revision.
//!
//! Cold pages are single-flight per project: the first request fetches, parses, renders and
//! caches; concurrent ones wait for it and then serve from the caches, deciding and auditing
//! for themselves (a server error of the first is answered to those already waiting).

pub mod files;
pub mod paths;
pub mod root;

use crate::content_id::content_id;
use crate::ecosystems::Adapter;
use crate::gate::{RequestKind, VersionInput, blocked_response};
use crate::server::{AppState, RequestContext, json_response};
use crate::upstream::UpstreamError;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use pkggate_formats::ecosystem::pep503_normalize;
use pkggate_formats::pypi::{
    FileEntry, JsonIndex, JsonPageScanner, ProjectFacts, Rewrite, SimpleFormat, negotiate,
    parse_legacy_json, parse_project_page,
};
use pkggate_formats::{EcoVersion, Ecosystem};
use pkggate_policy::{Action, Decision, Fact};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use url::Url;

pub use paths::{FileUrls, UrlSigner};

/// Accept header pkggate sends for project pages: JSON first (PEP 833: HTML is frozen).
pub const UPSTREAM_PAGE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Projects kept in each cache before it is cleared.
const CACHE_PROJECTS: usize = 2048;
/// Bytes of bodies kept in each of the page caches before it is cleared.
const CACHE_BYTES: usize = 256 << 20;

pub struct PypiAdapter;

impl Adapter for PypiAdapter {
    fn ecosystem(&self) -> Ecosystem {
        Ecosystem::PyPI
    }

    fn routes(&self) -> Router<AppState> {
        let shared = Arc::new(Shared::new(None));
        let s1 = shared.clone();
        let s2 = shared.clone();
        let s3 = shared.clone();
        let s4 = shared;
        Router::new()
            .route(
                "/simple",
                get(|State(st): State<AppState>, req: Request| async move {
                    if npm_owned(&req, "/simple") {
                        return to_npm(st, req).await;
                    }
                    redirect(&simple_target(&req, "/simple/"))
                }),
            )
            .route(
                "/simple/",
                get(move |State(st): State<AppState>, req: Request| {
                    let sh = s1.clone();
                    async move { root::serve_root(st, sh, req).await }
                }),
            )
            .route(
                "/simple/{*rest}",
                get(move |State(st): State<AppState>, req: Request| {
                    let sh = s2.clone();
                    async move { serve_project(st, sh, req).await }
                }),
            )
            .route(
                "/pypi/{*rest}",
                get(move |State(st): State<AppState>, req: Request| {
                    let sh = s3.clone();
                    async move { serve_legacy(st, sh, req).await }
                }),
            )
            .route(
                "/files/{*rest}",
                get(move |State(st): State<AppState>, req: Request| {
                    let sh = s4.clone();
                    async move { files::serve_file(st, sh, req).await }
                }),
            )
    }

    fn version_facts<'a>(
        &'a self,
        state: &'a AppState,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<VersionInput, Response>> {
        Box::pin(async move {
            let shared = Shared::new(Some(&state.config));
            let project = pep503_normalize(name).into_owned();
            let mut input = VersionInput::bare(version);
            input.lifecycle_scripts = Fact::Absent;
            if let Some(page) = shared.project_page(state, &project).await? {
                input.published_unix = page.info.published(version);
            }
            if state.policy.current().needs(Ecosystem::PyPI).repository_url {
                input.repository_url = shared.repository_url(state, &project).await;
            }
            Ok(input)
        })
    }
}

/// What the file gate needs to know about one listed file.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub url: String,
    pub version: Option<String>,
    pub sha256: Option<String>,
    /// `Some(sha256 or None)` when a PEP 658 metadata file is listed.
    pub core_metadata: Option<Option<String>>,
    pub size: Option<u64>,
}

/// Filename → what the file gate needs, for one project page.
pub type FileMap = HashMap<String, FileMeta>;

/// Facts of one project page, kept with the cached page.
#[derive(Debug, Clone, Default)]
pub struct ProjectInfo {
    /// Versions (as first spelled) with their publish time.
    pub versions: Vec<(String, Option<i64>)>,
    /// Version key → publish time.
    pub published: HashMap<String, Option<i64>>,
    pub unknown_version_files: bool,
    /// The publish time of the files of unknown version (decided as one pseudo-version):
    /// the latest upload among them.
    pub unknown_version_published: Option<i64>,
    pub file_count: usize,
}

impl ProjectInfo {
    pub fn published(&self, version: &str) -> Option<i64> {
        self.published.get(&version_key(version)).copied().flatten()
    }
}

/// An upstream project page (raw) and its facts.
pub struct CachedPage {
    /// The project (PEP 503 normal form).
    pub project: String,
    pub fetched: Instant,
    pub etag: Option<String>,
    pub body: Bytes,
    pub format: Option<SimpleFormat>,
    pub url: String,
    /// [`content_id`] of the body (a validator component).
    pub body_id: String,
    pub info: ProjectInfo,
    /// The one-pass index of a JSON body (renders without a full parse); `None` when the
    /// page needs the full parser (HTML, or a JSON shape the scanner leaves to it).
    pub index: Option<Arc<JsonIndex>>,
    /// The listed files. Filled by moving them out of the parse that served the page (after
    /// rendering, so the cold page does not wait for it), or by a parse of `body` on first
    /// use when that did not happen; shared by revalidated copies of the page.
    files: Arc<OnceLock<FileMap>>,
}

impl CachedPage {
    /// Bytes this page holds, for the cache budget.
    fn weight(&self) -> usize {
        self.body.len() + self.index.as_ref().map_or(0, |i| i.approx_bytes())
    }

    /// The listed files (read from the index, else from a parse of the body, once, if no
    /// parse handed them over).
    pub fn files(&self) -> &FileMap {
        self.files.get_or_init(|| {
            if let Some(files) = self.index.as_ref().and_then(|i| i.files(&self.body).ok()) {
                return indexed_file_map(files);
            }
            match parse_project_page(&self.project, &self.body, self.format, &self.url) {
                Ok(p) => file_map(p.files),
                Err(_) => FileMap::new(),
            }
        })
    }

    /// What the file gate needs of the file listed (last) as `filename`: looked up in the
    /// index when the page has one (no map to build), else in [`CachedPage::files`].
    pub fn file(&self, filename: &str) -> Option<FileMeta> {
        if let Some(index) = &self.index
            && let Ok(found) = index.file(&self.body, filename)
        {
            return found.map(file_meta);
        }
        self.files().get(filename).cloned()
    }

    /// Hand over the files of the parse of this page's body.
    pub(crate) fn set_files(&self, files: Vec<FileEntry>) {
        if self.files.get().is_none() {
            let _ = self.files.set(file_map(files));
        }
    }
}

/// A new upstream body, not parsed yet (but indexed while it arrived when it is JSON the
/// scanner takes).
pub struct FreshPage {
    pub body: Bytes,
    pub index: Option<Arc<JsonIndex>>,
    pub format: Option<SimpleFormat>,
    pub etag: Option<String>,
    pub url: String,
}

/// What [`Shared::fetch_page`] found.
pub enum PageFetch {
    Cached(Arc<CachedPage>),
    Fresh(FreshPage),
    NotFound,
}

/// A rendered page, ready to serve.
pub struct Rendered {
    key: String,
    body: Bytes,
    blocked_versions: usize,
}

/// Per-server state of the adapter (caches and the URL scheme).
pub struct Shared {
    urls: Mutex<Option<FileUrls>>,
    pages: Mutex<HashMap<String, Arc<CachedPage>>>,
    rendered: Mutex<HashMap<(String, SimpleFormat), Arc<Rendered>>>,
    repo: Mutex<HashMap<String, (Instant, Fact<String>)>>,
    /// One legacy JSON fetch per project at a time (the document can be megabytes).
    repo_flights: crate::flights::Flights<String, Fact<String>>,
    /// Memory budget for the upstream documents being read and rendered at once.
    docs: crate::budget::DocBudget,
    pub(crate) root_set: Mutex<Option<root::BlockSet>>,
    /// Held while the block set is read, so that requests arriving after a new intelligence
    /// revision read it once between them.
    pub(crate) root_set_load: tokio::sync::Mutex<()>,
    /// Per project while its page is cold: the lock the first request holds while it fetches,
    /// parses and renders; the failure it ended with, for the requests that waited.
    cold: Mutex<HashMap<String, ColdLock>>,
}

type ColdLock = Arc<tokio::sync::Mutex<Option<(Instant, StatusCode)>>>;

/// Held by the one request doing a project's cold work (see [`Shared::cold_guard`]).
pub(crate) struct ColdGuard {
    shared: Arc<Shared>,
    project: String,
    lock: ColdLock,
    guard: Option<tokio::sync::OwnedMutexGuard<Option<(Instant, StatusCode)>>>,
}

impl ColdGuard {
    /// The cold work ended with this server error: requests already waiting answer it too
    /// instead of each asking upstream again in turn.
    pub(crate) fn failed(mut self, status: StatusCode) {
        if let Some(g) = self.guard.as_mut() {
            **g = Some((Instant::now(), status));
        }
    }
}

impl Drop for ColdGuard {
    fn drop(&mut self) {
        // Release the lock first (the guard holds a reference to it too).
        self.guard.take();
        let mut m = lock(&self.shared.cold);
        // Left: the map's reference and ours. Nobody else holds or waits for the lock, so
        // the entry can go (the map never outgrows the projects being fetched right now).
        if Arc::strong_count(&self.lock) <= 2
            && m.get(&self.project)
                .is_some_and(|l| Arc::ptr_eq(l, &self.lock))
        {
            m.remove(&self.project);
        }
    }
}

/// PEP 440 lookup key of a version (non-PEP 440 versions: the string itself).
pub fn version_key(v: &str) -> String {
    if v.is_empty() {
        return String::new();
    }
    EcoVersion::parse(Ecosystem::PyPI, v).key()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The request context set by the server middleware (a fallback when absent).
pub(crate) fn context(req: &Request) -> RequestContext {
    req.extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext {
            request_id: "-".into(),
            client_ip: "unknown".into(),
            user_agent: None,
        })
}

/// Whether a request under `/simple`, `/pypi` or `/files` is really npm's: npm owns the root
/// namespace, and packages named `simple`, `pypi` or `files` exist there. Tarball paths
/// (`/<name>/-/…`) always are; `/<name>` and `/<name>/<version-or-tag>` are when the client
/// asks for JSON the npm way (PyPI clients ask for `vnd.pypi` types, or call `/pypi/…/json`).
pub(crate) fn npm_owned(req: &Request, prefix: &str) -> bool {
    let rest = req
        .uri()
        .path()
        .strip_prefix(prefix)
        .unwrap_or("")
        .trim_start_matches('/');
    if rest == "-" || rest.starts_with("-/") {
        return true;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let npm_accept = !accept.contains("vnd.pypi")
        && (accept.contains("vnd.npm") || accept.contains("application/json"));
    match prefix {
        "/simple" => npm_accept && !rest.contains('/'),
        "/files" => npm_accept && !rest.contains('/'),
        _ => false,
    }
}

/// Hand a request to the npm adapter (see [`npm_owned`]).
pub(crate) async fn to_npm(state: AppState, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ctx = parts.extensions.get::<RequestContext>().cloned();
    crate::npm::fallback(
        State(state),
        ctx.map(axum::Extension),
        parts.method,
        parts.uri,
        parts.headers,
        body,
    )
    .await
}

/// 400 with a JSON reason.
pub(crate) fn bad_request(why: impl std::fmt::Display) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("bad_request: {why}")}),
    )
}

pub(crate) fn not_found_because(why: impl std::fmt::Display) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": "Not found", "reason": why.to_string()}),
    )
}

/// 502 for an upstream document pkggate cannot use.
pub(crate) fn bad_upstream(url: &str, e: impl std::fmt::Display) -> Response {
    UpstreamError::Other {
        url: url.to_string(),
        message: format!("unusable document: {e}"),
    }
    .response()
}

/// Upstream status → our answer (404 passes through, the rest is a 502).
pub(crate) fn upstream_status(url: &str, status: StatusCode) -> Response {
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        return crate::server::not_found();
    }
    UpstreamError::Other {
        url: url.to_string(),
        message: format!("answered HTTP {}", status.as_u16()),
    }
    .response()
}

fn redirect(location: &str) -> Response {
    let mut r = (StatusCode::MOVED_PERMANENTLY, "").into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn simple_target(req: &Request, path: &str) -> String {
    match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

/// A project name as a client may write it (before normalisation).
pub(crate) fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.bytes().any(|b| b.is_ascii_alphanumeric())
}

/// The public base for PyPI's rewritten URLs (see [`crate::server::public_base`]).
pub(crate) fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    crate::server::public_base(state, Ecosystem::PyPI, headers)
}

fn sha_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Build the facts of a parsed page (all but the file map: see [`CachedPage::files`]).
fn project_info(page: &pkggate_formats::pypi::ProjectPage<'_>) -> ProjectInfo {
    info_from_facts(&page.facts(), page.files.len())
}

fn info_from_facts(facts: &ProjectFacts, file_count: usize) -> ProjectInfo {
    let mut info = ProjectInfo {
        unknown_version_files: facts.unknown_version_files > 0,
        unknown_version_published: facts
            .unknown_version_latest_upload
            .as_ref()
            .map(|u| u.unix_seconds),
        file_count,
        ..Default::default()
    };
    for v in &facts.versions {
        let t = v.earliest_upload.as_ref().map(|u| u.unix_seconds);
        info.versions.push((v.version.clone(), t));
        info.published.insert(version_key(&v.version), t);
    }
    info
}

/// What the file gate needs of one indexed file.
fn file_meta(f: pkggate_formats::pypi::IndexedFile<'_>) -> FileMeta {
    let lower = |h: std::borrow::Cow<'_, str>| h.to_ascii_lowercase();
    FileMeta {
        url: f.url.to_string(),
        version: f.version.map(str::to_string),
        sha256: f.sha256.map(lower),
        core_metadata: f.core_metadata.map(|h| h.map(lower)),
        size: f.size,
    }
}

/// The file map of an indexed page.
fn indexed_file_map(files: Vec<pkggate_formats::pypi::IndexedFile<'_>>) -> FileMap {
    let mut map = FileMap::with_capacity(files.len());
    for f in files {
        map.insert(f.filename.to_string(), file_meta(f));
    }
    map
}

/// The file map, moving the parsed strings instead of copying them.
fn file_map(files: Vec<FileEntry>) -> FileMap {
    let lower = |mut s: String| {
        s.make_ascii_lowercase();
        s
    };
    let mut map = FileMap::with_capacity(files.len());
    for mut f in files {
        let meta = FileMeta {
            sha256: f.hashes.remove("sha256").map(lower),
            core_metadata: f
                .core_metadata
                .as_mut()
                .map(|h| h.remove("sha256").map(lower)),
            size: f.size,
            url: f.url,
            version: f.version,
        };
        map.insert(f.filename, meta);
    }
    map
}

impl Shared {
    pub fn new(config: Option<&crate::config::Config>) -> Shared {
        let s = Shared {
            urls: Mutex::new(None),
            pages: Mutex::new(HashMap::new()),
            rendered: Mutex::new(HashMap::new()),
            repo: Mutex::new(HashMap::new()),
            repo_flights: crate::flights::Flights::new(),
            docs: crate::budget::DocBudget::new(crate::budget::DEFAULT_MIB),
            root_set: Mutex::new(None),
            root_set_load: tokio::sync::Mutex::new(()),
            cold: Mutex::new(HashMap::new()),
        };
        if let Some(c) = config {
            s.urls(c);
        }
        s
    }

    /// The URL scheme (built on first use from the configuration).
    pub fn urls(&self, config: &crate::config::Config) -> FileUrls {
        let mut g = lock(&self.urls);
        if let Some(u) = g.as_ref() {
            return u.clone();
        }
        let signer = if config.mirror_enabled {
            let dir = config
                .mirror_db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| std::path::PathBuf::from("."));
            UrlSigner::persistent(&dir.join("pypi-url.key"))
        } else {
            UrlSigner::random()
        };
        let u = FileUrls::new(&config.pypi_upstream_files, signer);
        *g = Some(u.clone());
        u
    }

    /// `None` when the project's page is cached and fresh. Otherwise waits until no other
    /// request is doing the project's cold work and returns the guard for doing it (the
    /// page and rendering may be cached by then: the work is then the warm path). A request
    /// that waited for one that failed with a server error answers the same status.
    pub(crate) async fn cold_guard(
        self: &Arc<Self>,
        state: &AppState,
        project: &str,
    ) -> Result<Option<ColdGuard>, Response> {
        self.cold_guard_within(state, project, state.config.metadata_max_age)
            .await
    }

    /// [`Shared::cold_guard`] for a page that counts as fresh only while younger than
    /// `max_age` (and the configured `max-age`).
    pub(crate) async fn cold_guard_within(
        self: &Arc<Self>,
        state: &AppState,
        project: &str,
        max_age: Duration,
    ) -> Result<Option<ColdGuard>, Response> {
        let max_age = max_age.min(state.config.metadata_max_age);
        if lock(&self.pages)
            .get(project)
            .is_some_and(|c| c.fetched.elapsed() < max_age)
        {
            return Ok(None);
        }
        let arrived = Instant::now();
        let guard = self.lock_cold(project).await;
        if let Some((at, status)) = guard.guard.as_deref().copied().flatten()
            && at >= arrived
        {
            return Err(json_response(
                status,
                json!({"error": format!(
                    "upstream_error: a concurrent request for the page of {project} failed with HTTP {}; retry",
                    status.as_u16()
                )}),
            ));
        }
        Ok(Some(guard))
    }

    /// Wait for and take the cold-work lock of `project` (created on first use, removed when
    /// its last holder or waiter is done).
    async fn lock_cold(self: &Arc<Self>, project: &str) -> ColdGuard {
        let l = lock(&self.cold)
            .entry(project.to_string())
            .or_default()
            .clone();
        let guard = l.clone().lock_owned().await;
        ColdGuard {
            shared: self.clone(),
            project: project.to_string(),
            lock: l,
            guard: Some(guard),
        }
    }

    fn page_url(state: &AppState, project: &str) -> Result<Url, String> {
        // Never a name that could steer the URL (a scheme, a host, a query): callers check
        // it already, this is the last line.
        if !valid_project_name(project) {
            return Err(format!("{project:?} is not a project name"));
        }
        crate::upstream::as_directory(&state.config.pypi_upstream_simple)
            .join(&format!("{project}/"))
            .map(|u| crate::upstream::without_userinfo(&u))
            .map_err(|e| e.to_string())
    }

    /// The upstream project page: cached while fresh, revalidated with upstream's ETag, else
    /// fetched. `Ok(None)`: upstream has no such project (404).
    pub async fn project_page(
        &self,
        state: &AppState,
        project: &str,
    ) -> Result<Option<Arc<CachedPage>>, Response> {
        self.project_page_within(state, project, state.config.metadata_max_age)
            .await
    }

    /// [`Shared::project_page`], taking a cached page only when it is younger than
    /// `max_age` (and younger than the configured `max-age`).
    pub async fn project_page_within(
        &self,
        state: &AppState,
        project: &str,
        max_age: Duration,
    ) -> Result<Option<Arc<CachedPage>>, Response> {
        match self.fetch_page_within(state, project, max_age).await? {
            PageFetch::Cached(c) => Ok(Some(c)),
            PageFetch::NotFound => Ok(None),
            PageFetch::Fresh(mut f) => {
                if let Some(index) = f.index.take() {
                    return Ok(Some(self.store_indexed(project, &f, index)));
                }
                let parsed = parse_project_page(project, &f.body, f.format, &f.url)
                    .map_err(|e| bad_upstream(&f.url, e))?;
                let page = self.store_fresh(project, &f, &parsed);
                page.set_files(parsed.files);
                Ok(Some(page))
            }
        }
    }

    /// The cached page while fresh (or revalidated), else upstream's new body (unparsed:
    /// the caller parses it once and stores it with [`Shared::store_fresh`]).
    pub(crate) async fn fetch_page(
        &self,
        state: &AppState,
        project: &str,
    ) -> Result<PageFetch, Response> {
        self.fetch_page_within(state, project, state.config.metadata_max_age)
            .await
    }

    async fn fetch_page_within(
        &self,
        state: &AppState,
        project: &str,
        max_age: Duration,
    ) -> Result<PageFetch, Response> {
        let max_age = max_age.min(state.config.metadata_max_age);
        let cached = lock(&self.pages).get(project).cloned();
        let fresh = cached
            .as_ref()
            .is_some_and(|c| c.fetched.elapsed() < max_age);
        crate::metrics::cache_lookup("pypi_pages", fresh);
        if let Some(c) = &cached
            && fresh
        {
            return Ok(PageFetch::Cached(c.clone()));
        }
        let url = Self::page_url(state, project)
            .map_err(|e| bad_request(format!("cannot build the upstream URL: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(UPSTREAM_PAGE_ACCEPT),
        );
        if let Some(etag) = cached
            .as_ref()
            .and_then(|c| c.etag.as_deref())
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            headers.insert(header::IF_NONE_MATCH, etag);
        }
        // A JSON page is indexed while it arrives, so little is left when the last byte is in.
        let mut scanner = JsonPageScanner::new(project, url.as_str());
        let doc = state
            .upstream
            .get_document_observed(url.clone(), &headers, |status, received| {
                if status == StatusCode::OK {
                    scanner.advance(received);
                }
            })
            .await
            .map_err(|e| e.response())?;
        if doc.status == StatusCode::NOT_MODIFIED
            && let Some(c) = cached
        {
            let fresh = Arc::new(CachedPage {
                project: c.project.clone(),
                fetched: Instant::now(),
                etag: c.etag.clone(),
                body: c.body.clone(),
                format: c.format,
                url: c.url.clone(),
                body_id: c.body_id.clone(),
                info: c.info.clone(),
                index: c.index.clone(),
                files: c.files.clone(),
            });
            self.store_page(project, fresh.clone());
            return Ok(PageFetch::Cached(fresh));
        }
        if doc.status == StatusCode::NOT_FOUND || doc.status == StatusCode::GONE {
            lock(&self.pages).remove(project);
            return Ok(PageFetch::NotFound);
        }
        if !doc.status.is_success() {
            return Err(upstream_status(url.as_str(), doc.status));
        }
        let format = doc
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(SimpleFormat::from_media_type);
        // The index stands for the body only when the full parser would read it as JSON
        // against the same page URL (a redirect changes the base of relative URLs).
        let is_json = match format {
            Some(f) => !f.is_html(),
            None => doc.body.trim_ascii_start().starts_with(b"{"),
        };
        let index = (doc.status == StatusCode::OK && is_json && doc.url == url)
            .then(|| scanner.finish(&doc.body))
            .flatten()
            .map(Arc::new);
        crate::metrics::cache_lookup("pypi_page_fast_index", index.is_some());
        Ok(PageFetch::Fresh(FreshPage {
            index,
            format,
            etag: doc
                .headers
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            url: doc.url.to_string(),
            body: doc.body,
        }))
    }

    /// Cache a freshly fetched page with the facts of its parse; the caller hands the parsed
    /// files over with [`CachedPage::set_files`] when it is done with them.
    pub(crate) fn store_fresh(
        &self,
        project: &str,
        f: &FreshPage,
        parsed: &pkggate_formats::pypi::ProjectPage<'_>,
    ) -> Arc<CachedPage> {
        self.store_page_with(project, f, project_info(parsed), None)
    }

    /// Cache a freshly fetched page whose body the scanner indexed (no full parse: the file
    /// map is built from the body on first use).
    pub(crate) fn store_indexed(
        &self,
        project: &str,
        f: &FreshPage,
        index: Arc<JsonIndex>,
    ) -> Arc<CachedPage> {
        let info = info_from_facts(&index.facts(), index.file_count());
        self.store_page_with(project, f, info, Some(index))
    }

    fn store_page_with(
        &self,
        project: &str,
        f: &FreshPage,
        info: ProjectInfo,
        index: Option<Arc<JsonIndex>>,
    ) -> Arc<CachedPage> {
        let page = Arc::new(CachedPage {
            project: project.to_string(),
            fetched: Instant::now(),
            etag: f.etag.clone(),
            body_id: content_id(&f.body),
            body: f.body.clone(),
            format: f.format,
            url: f.url.clone(),
            info,
            index,
            files: Arc::new(OnceLock::new()),
        });
        self.store_page(project, page.clone());
        page
    }

    fn store_page(&self, project: &str, page: Arc<CachedPage>) {
        let mut g = lock(&self.pages);
        let bytes: usize = g.values().map(|p| p.weight()).sum();
        if (g.len() >= CACHE_PROJECTS && !g.contains_key(project))
            || bytes + page.weight() > CACHE_BYTES
        {
            g.clear();
        }
        g.insert(project.to_string(), page);
    }

    /// The repository URL of a project (legacy JSON `info`), cached; `Unknown` when the
    /// legacy document cannot be had.
    pub async fn repository_url(&self, state: &AppState, project: &str) -> Fact<String> {
        if let Some((at, f)) = lock(&self.repo).get(project)
            && at.elapsed() < state.config.metadata_max_age
        {
            return f.clone();
        }
        let Ok(url) = legacy_url(state, project, None) else {
            return Fact::Unknown;
        };
        self.repo_flights
            .run(project.to_string(), || async {
                let mut headers = HeaderMap::new();
                headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
                let fact = match state.upstream.get_document(url.clone(), &headers).await {
                    Ok(doc) if doc.status.is_success() => {
                        match parse_legacy_json(project, &doc.body, doc.url.as_str()) {
                            Ok(d) => match d.repository_url() {
                                Some(u) => Fact::Present(u.to_string()),
                                None => Fact::Absent,
                            },
                            Err(_) => Fact::Unknown,
                        }
                    }
                    _ => Fact::Unknown,
                };
                self.store_repo(project, fact.clone());
                fact
            })
            .await
    }

    fn store_repo(&self, project: &str, fact: Fact<String>) {
        let mut g = lock(&self.repo);
        if g.len() >= CACHE_PROJECTS {
            g.clear();
        }
        g.insert(project.to_string(), (Instant::now(), fact));
    }
}

/// The inputs for every version of a page (plus `""` for files of unknown version).
pub(crate) fn page_inputs(info: &ProjectInfo, repo: &Fact<String>) -> Vec<VersionInput> {
    let mut inputs: Vec<VersionInput> = info
        .versions
        .iter()
        .map(|(v, t)| VersionInput {
            version: v.clone(),
            published_unix: *t,
            repository_url: repo.clone(),
            lifecycle_scripts: Fact::Absent,
        })
        .collect();
    if info.unknown_version_files {
        inputs.push(VersionInput {
            version: String::new(),
            published_unix: info.unknown_version_published,
            repository_url: repo.clone(),
            lifecycle_scripts: Fact::Absent,
        });
    }
    inputs
}

fn removed_keys(inputs: &[VersionInput], decisions: &[Decision]) -> HashSet<String> {
    inputs
        .iter()
        .zip(decisions)
        .filter(|(_, d)| d.action == Action::Block)
        .map(|(v, _)| version_key(&v.version))
        .collect()
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn page_headers(r: &mut Response, content_type: &str, etag: &str, max_age: u64) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
}

/// Blocked outright (denylist, internal namespace, an advisory covering every version):
/// the refusal, decided and audited without asking upstream — which may not even have the
/// project any more, and must never learn an internal name. `version`: the one asked for,
/// when the request names one (decided and reported as that version). `None`: ask upstream.
pub(crate) async fn refused_outright(
    state: &AppState,
    shared: &Shared,
    project: &str,
    version: Option<&str>,
    ctx: &RequestContext,
    kind: RequestKind,
) -> Option<Response> {
    let set = root::block_set(&state.intel, shared).await;
    if !root::blocked_outright(
        &state.policy.current(),
        &set.catch_all,
        project,
        (state.gate.clock)(),
    ) {
        return None;
    }
    let input = VersionInput {
        version: version.unwrap_or_default().to_string(),
        published_unix: None,
        repository_url: Fact::Unknown,
        lifecycle_scripts: Fact::Absent,
    };
    match state
        .gate
        .decide_one(Ecosystem::PyPI, project, &input, &ctx.info(kind))
        .await
    {
        Ok((d, _)) if d.is_blocked() => Some(blocked_response(
            Ecosystem::PyPI,
            project,
            version.filter(|v| !v.is_empty()),
            &d,
            &ctx.request_id,
        )),
        Ok(_) => None,
        Err(e) => Some(e.response()),
    }
}

/// `GET|HEAD /simple/<project>/`.
async fn serve_project(state: AppState, shared: Arc<Shared>, req: Request) -> Response {
    if npm_owned(&req, "/simple") {
        return to_npm(state, req).await;
    }
    let raw = req.uri().path().strip_prefix("/simple/").unwrap_or("");
    let (seg, slash) = match raw.split_once('/') {
        Some((s, "")) => (s, true),
        Some(_) => return not_found_because("no such index page"),
        None => (raw, false),
    };
    let name = match paths::check_segment(seg) {
        Ok(n) => n,
        Err(e) => return bad_request(e),
    };
    if !valid_project_name(&name) {
        return bad_request("invalid project name");
    }
    let project = pep503_normalize(&name).into_owned();
    if project != name || !slash {
        return redirect(&simple_target(&req, &format!("/simple/{project}/")));
    }
    let format = query_format(&req).unwrap_or_else(|| {
        negotiate(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )
    });
    let ctx = context(&req);
    if let Some(r) = refused_outright(
        &state,
        &shared,
        &project,
        None,
        &ctx,
        RequestKind::SimpleIndex,
    )
    .await
    {
        return r;
    }
    // One cold request per project does the work; concurrent ones wait for it, then take
    // the cached page and rendering (deciding and auditing for themselves).
    let cold = match shared.cold_guard(&state, &project).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let r = serve_page(&state, &shared, req.headers(), &ctx, project, format).await;
    if let Some(g) = cold
        && r.status().is_server_error()
    {
        g.failed(r.status());
    }
    r
}

/// The page of a valid, normalised project not blocked outright: upstream (or the cache),
/// decisions, rendering (or the cached rendering).
async fn serve_page(
    state: &AppState,
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    ctx: &RequestContext,
    project: String,
    format: SimpleFormat,
) -> Response {
    let (state, shared) = (state.clone(), shared.clone());
    // The repository URL (legacy JSON, only when a rule needs it) is fetched alongside the
    // page, not after it.
    let policy = state.policy.current();
    let needs_repo = policy.needs(Ecosystem::PyPI).repository_url;
    let (fetched, repo) = tokio::join!(shared.fetch_page(&state, &project), async {
        if needs_repo {
            shared.repository_url(&state, &project).await
        } else {
            Fact::Unknown
        }
    });
    // A fresh upstream body is indexed while it arrives (JSON the scanner takes), else
    // parsed once: for its facts and for rendering.
    let (cached, mut fresh) = match fetched {
        Ok(PageFetch::Cached(c)) => (Some(c), None),
        Ok(PageFetch::Fresh(f)) => (None, Some(f)),
        Ok(PageFetch::NotFound) => return crate::server::not_found(),
        Err(r) => return r,
    };
    // A fresh body is read (unless indexed already) and rendered here: within the budget.
    let _permit = match &fresh {
        Some(f) => shared.docs.permit(f.body.len()).await,
        None => None,
    };
    let fresh_index = fresh.as_mut().and_then(|f| f.index.take());
    let fresh_parsed = match &fresh {
        Some(f) if fresh_index.is_none() => {
            match parse_project_page(&project, &f.body, f.format, &f.url) {
                Ok(p) => Some(p),
                Err(e) => return bad_upstream(&f.url, e),
            }
        }
        _ => None,
    };
    let page = match (cached, &fresh, &fresh_parsed, fresh_index) {
        (Some(c), _, _, _) => c,
        (None, Some(f), _, Some(ix)) => shared.store_indexed(&project, f, ix),
        (None, Some(f), Some(p), None) => shared.store_fresh(&project, f, p),
        _ => return bad_upstream(&project, "no page"),
    };
    let inputs = page_inputs(&page.info, &repo);
    let verdict = match state
        .gate
        .decide_package(
            Ecosystem::PyPI,
            &project,
            &inputs,
            &ctx.info(RequestKind::SimpleIndex),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return e.response(),
    };
    let removed = removed_keys(&inputs, &verdict.decisions);
    let base = public_base(&state, headers);
    let mut sorted: Vec<&String> = removed.iter().collect();
    sorted.sort();
    let removed_list = sorted
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let key = sha_hex(&[
        page.body_id.as_bytes(),
        format.content_type().as_bytes(),
        removed_list.as_bytes(),
        base.as_bytes(),
    ]);
    let etag = format!(
        "\"{}\"",
        &sha_hex(&[key.as_bytes(), verdict.revisions().as_bytes()])[..32]
    );
    let max_age = state.config.metadata_max_age.as_secs();

    // Every version blocked while upstream had files: say why instead of an empty page.
    if page.info.file_count > 0 {
        let all_blocked = !inputs.is_empty() && inputs.len() == verdict.removed.len();
        if all_blocked
            && let Some((v, d)) = inputs
                .iter()
                .zip(&verdict.decisions)
                .find(|(_, d)| d.is_blocked())
        {
            return blocked_response(
                Ecosystem::PyPI,
                &project,
                Some(v.version.as_str()).filter(|s| !s.is_empty()),
                d,
                &ctx.request_id,
            );
        }
    }
    if etag_matches(headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        page_headers(&mut r, format.content_type(), &etag, max_age);
        return r;
    }
    let cached = lock(&shared.rendered)
        .get(&(project.clone(), format))
        .filter(|r| r.key == key)
        .cloned();
    crate::metrics::cache_lookup("pypi_rendered", cached.is_some());
    let rendered = match cached {
        Some(r) => r,
        None => {
            let urls = shared.urls(&state.config);
            // Nothing removed is the common case: no version keys at all. Otherwise each
            // distinct version spelling is keyed once (a page lists ~30 files a version).
            let memo: RefCell<HashMap<String, bool>> = RefCell::default();
            let keep_version = |v: &str| {
                if removed.is_empty() {
                    return true;
                }
                if let Some(&k) = memo.borrow().get(v) {
                    return k;
                }
                let k = !removed.contains(&version_key(v));
                memo.borrow_mut().insert(v.to_string(), k);
                k
            };
            let rendered = match (&page.index, &fresh_parsed) {
                (Some(index), _) => {
                    index.render(&page.body, format, &keep_version, &|url, name| {
                        urls.url_for(&base, &project, url, name)
                    })
                }
                (None, parsed) => {
                    let reparsed;
                    let parsed = match parsed {
                        Some(p) => p,
                        None => {
                            reparsed = match parse_project_page(
                                &project,
                                &page.body,
                                page.format,
                                &page.url,
                            ) {
                                Ok(p) => p,
                                Err(e) => return bad_upstream(&page.url, e),
                            };
                            &reparsed
                        }
                    };
                    let keep_file =
                        |f: &FileEntry| keep_version(f.version.as_deref().unwrap_or(""));
                    let file_url =
                        |f: &FileEntry| urls.url_for(&base, &project, &f.url, &f.filename);
                    parsed.render(
                        format,
                        &Rewrite {
                            keep_file: &keep_file,
                            keep_version: &keep_version,
                            file_url: &file_url,
                        },
                    )
                }
            };
            let out = match rendered {
                Ok(o) => o,
                Err(e) => return bad_upstream(&page.url, e),
            };
            let r = Arc::new(Rendered {
                key: key.clone(),
                body: Bytes::from(out.body),
                blocked_versions: out.removed_versions.len(),
            });
            let mut g = lock(&shared.rendered);
            let bytes: usize = g.values().map(|r| r.body.len()).sum();
            if g.len() >= CACHE_PROJECTS || bytes + r.body.len() > CACHE_BYTES {
                g.clear();
            }
            g.insert((project.clone(), format), r.clone());
            r
        }
    };
    // The file map is built after the response is on its way (the page is usable without
    // it: a file request in between builds it from the body).
    if let Some(p) = fresh_parsed {
        let (page, files) = (page.clone(), p.files);
        tokio::spawn(async move { page.set_files(files) });
    }
    // Indexed, not parsed: no file map at all, [`CachedPage::file`] reads the index.
    let mut r = Response::new(Body::from(rendered.body.clone()));
    page_headers(&mut r, format.content_type(), &etag, max_age);
    if let Ok(v) = HeaderValue::from_str(&rendered.blocked_versions.to_string()) {
        r.headers_mut().insert("x-pkggate-blocked-versions", v);
    }
    r
}

/// `?format=<media type>` (PEP 691's optional URL parameter).
fn query_format(req: &Request) -> Option<SimpleFormat> {
    let q = req.uri().query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "format")
            .then(|| paths::percent_decode(v))
            .flatten()
            .and_then(|v| SimpleFormat::from_media_type(&v))
    })
}

fn legacy_url(state: &AppState, project: &str, version: Option<&str>) -> Result<Url, String> {
    if !valid_project_name(project) {
        return Err(format!("{project:?} is not a project name"));
    }
    let base = crate::upstream::as_directory(&state.config.pypi_upstream_simple);
    let rel = match version {
        Some(v) => format!("../pypi/{project}/{}/json", paths::encode_segment(v)),
        None => format!("../pypi/{project}/json"),
    };
    base.join(&rel)
        .map(|u| crate::upstream::without_userinfo(&u))
        .map_err(|e| e.to_string())
}

/// `GET /pypi/<project>/json` and `/pypi/<project>/<version>/json`.
async fn serve_legacy(state: AppState, shared: Arc<Shared>, req: Request) -> Response {
    if npm_owned(&req, "/pypi") {
        return to_npm(state, req).await;
    }
    let raw = req.uri().path().strip_prefix("/pypi/").unwrap_or("");
    let segs: Vec<&str> = raw.split('/').collect();
    let (name_raw, version_raw) = match segs.as_slice() {
        [n, "json"] => (*n, None),
        [n, v, "json"] => (*n, Some(*v)),
        _ => return not_found_because("no such legacy JSON document"),
    };
    let name = match paths::check_segment(name_raw) {
        Ok(n) => n,
        Err(e) => return bad_request(e),
    };
    if !valid_project_name(&name) {
        return bad_request("invalid project name");
    }
    let version = match version_raw.map(paths::check_segment).transpose() {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    if version
        .as_deref()
        .is_some_and(|v| v.len() > 128 || v.chars().any(char::is_whitespace))
    {
        return bad_request("invalid version");
    }
    let project = pep503_normalize(&name).into_owned();
    if project != name {
        let loc = match &version {
            Some(v) => format!("/pypi/{project}/{}/json", paths::encode_segment(v)),
            None => format!("/pypi/{project}/json"),
        };
        return redirect(&loc);
    }
    let ctx = context(&req);
    if let Some(r) = refused_outright(
        &state,
        &shared,
        &project,
        version.as_deref(),
        &ctx,
        RequestKind::LegacyJson,
    )
    .await
    {
        return r;
    }
    let url = match legacy_url(&state, &project, version.as_deref()) {
        Ok(u) => u,
        Err(e) => return bad_request(format!("cannot build the upstream URL: {e}")),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let doc = match state.upstream.get_document(url.clone(), &headers).await {
        Ok(d) => d,
        Err(e) => return e.response(),
    };
    if !doc.status.is_success() {
        return upstream_status(url.as_str(), doc.status);
    }
    let _permit = shared.docs.permit(doc.body.len()).await;
    let parsed = match parse_legacy_json(&project, &doc.body, doc.url.as_str()) {
        Ok(p) => p,
        Err(e) => return bad_upstream(url.as_str(), e),
    };
    let repo = match parsed.repository_url() {
        Some(u) => Fact::Present(u.to_string()),
        None => Fact::Absent,
    };
    if version.is_none() {
        shared.store_repo(&project, repo.clone());
    }
    let facts = parsed.facts();
    let mut inputs: Vec<VersionInput> = facts
        .versions
        .iter()
        .map(|v| VersionInput {
            version: v.version.clone(),
            published_unix: v.earliest_upload.as_ref().map(|u| u.unix_seconds),
            repository_url: repo.clone(),
            lifecycle_scripts: Fact::Absent,
        })
        .collect();
    if let (Some(v), true) = (&parsed.info_version, inputs.is_empty()) {
        inputs.push(VersionInput {
            version: v.clone(),
            repository_url: repo.clone(),
            lifecycle_scripts: Fact::Absent,
            ..Default::default()
        });
    }
    let verdict = match state
        .gate
        .decide_package(
            Ecosystem::PyPI,
            &project,
            &inputs,
            &ctx.info(RequestKind::LegacyJson),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return e.response(),
    };
    let removed = removed_keys(&inputs, &verdict.decisions);
    let base = public_base(&state, req.headers());
    let urls = shared.urls(&state.config);
    let keep_file = |f: &FileEntry| {
        f.version
            .as_deref()
            .is_none_or(|v| !removed.contains(&version_key(v)))
    };
    let keep_version = |v: &str| !removed.contains(&version_key(v));
    let file_url = |f: &FileEntry| urls.url_for(&base, &project, &f.url, &f.filename);
    let rw = Rewrite {
        keep_file: &keep_file,
        keep_version: &keep_version,
        file_url: &file_url,
    };
    let out = match parsed.render(&rw) {
        Ok(o) => o,
        Err(e) => return bad_upstream(url.as_str(), e),
    };
    let nothing_left = version.is_none() && out.versions_kept == 0 && !removed.is_empty();
    if nothing_left || (version.is_some() && out.upstream_version_removed) {
        let why = inputs
            .iter()
            .zip(&verdict.decisions)
            .find(|(_, d)| d.is_blocked())
            .map(|(_, d)| format!("blocked_by_pkggate: {} {}", d.rule, d.reason))
            .unwrap_or_else(|| "blocked_by_pkggate".into());
        return not_found_because(why);
    }
    let etag = format!(
        "\"{}\"",
        &sha_hex(&[
            out.body.as_bytes(),
            verdict.revisions().as_bytes(),
            b"legacy"
        ])[..32]
    );
    let max_age = state.config.metadata_max_age.as_secs();
    if etag_matches(req.headers(), &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        page_headers(&mut r, "application/json", &etag, max_age);
        return r;
    }
    let mut r = Response::new(Body::from(out.body));
    page_headers(&mut r, "application/json", &etag, max_age);
    if let Ok(v) = HeaderValue::from_str(&out.removed_versions.len().to_string()) {
        r.headers_mut().insert("x-pkggate-blocked-versions", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"meta":{"api-version":"1.1"},"name":"demo","files":[
        {"filename":"demo-1.0-py3-none-any.whl","url":"https://files.example/p/demo-1.0-py3-none-any.whl",
         "hashes":{"sha256":"ABCDEF"},"core-metadata":{"sha256":"0A"},"size":12},
        {"filename":"demo-1.1.tar.gz","url":"https://files.example/p/demo-1.1.tar.gz","hashes":{}}
    ],"versions":["1.0","1.1"]}"#;

    fn page(files: Option<Vec<FileEntry>>) -> CachedPage {
        page_with(files, None)
    }

    fn page_with(files: Option<Vec<FileEntry>>, index: Option<Arc<JsonIndex>>) -> CachedPage {
        let body = Bytes::from_static(PAGE.as_bytes());
        let url = "https://simple.example/simple/demo/";
        let parsed = parse_project_page("demo", &body, Some(SimpleFormat::Json), url).unwrap();
        let p = CachedPage {
            project: "demo".into(),
            fetched: Instant::now(),
            etag: None,
            body_id: content_id(&body),
            format: Some(SimpleFormat::Json),
            url: url.into(),
            info: project_info(&parsed),
            index,
            files: Arc::new(OnceLock::new()),
            body,
        };
        if let Some(f) = files {
            p.set_files(f);
        }
        p
    }

    fn check(files: &FileMap) {
        assert_eq!(files.len(), 2);
        let w = &files["demo-1.0-py3-none-any.whl"];
        assert_eq!(w.url, "https://files.example/p/demo-1.0-py3-none-any.whl");
        assert_eq!(w.version.as_deref(), Some("1.0"));
        assert_eq!(w.sha256.as_deref(), Some("abcdef"));
        assert_eq!(w.core_metadata, Some(Some("0a".to_string())));
        assert_eq!(w.size, Some(12));
        let s = &files["demo-1.1.tar.gz"];
        assert_eq!((s.sha256.as_deref(), s.core_metadata.clone()), (None, None));
    }

    #[tokio::test]
    async fn cold_locks_are_shared_while_used_and_then_removed() {
        let shared = Arc::new(Shared::new(None));
        let cold_entries = || lock(&shared.cold).len();
        // One at a time, for many projects: nothing stays behind.
        for i in 0..50 {
            let g = shared.lock_cold(&format!("p{i}")).await;
            assert_eq!(cold_entries(), 1);
            if i % 2 == 0 {
                g.failed(StatusCode::BAD_GATEWAY);
            }
        }
        assert_eq!(cold_entries(), 0);
        // A holder and a waiter share one lock; the entry goes with the last of them.
        let first = shared.lock_cold("p").await;
        let waiter = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let g = shared.lock_cold("p").await;
                g.guard.as_deref().copied().flatten().map(|(_, s)| s)
            })
        };
        // Map, holder, holder's guard, waiter.
        while Arc::strong_count(&first.lock) < 4 {
            tokio::task::yield_now().await;
        }
        first.failed(StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(waiter.await.unwrap(), Some(StatusCode::GATEWAY_TIMEOUT));
        assert_eq!(cold_entries(), 0);
    }

    #[test]
    fn file_map_is_the_same_handed_over_or_rebuilt_from_the_body() {
        let url = "https://simple.example/simple/demo/";
        let parsed = parse_project_page("demo", PAGE.as_bytes(), Some(SimpleFormat::Json), url);
        check(page(Some(parsed.unwrap().files)).files());
        check(page(None).files());
        let mut scanner = JsonPageScanner::new("demo", url);
        scanner.advance(PAGE.as_bytes());
        let index = scanner.finish(PAGE.as_bytes()).map(Arc::new);
        assert!(index.is_some(), "the scanner takes the test page");
        let indexed = page_with(None, index);
        check(indexed.files());
        // One file at a time, from the index or from the map: the same answers.
        for p in [&indexed, &page(None)] {
            let one: FileMap = ["demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz"]
                .into_iter()
                .map(|f| (f.to_string(), p.file(f).expect(f)))
                .collect();
            check(&one);
            assert!(p.file("demo-9.9.tar.gz").is_none());
        }
        // Versions and publish facts do not wait for the file map.
        let p = page(None);
        assert_eq!(p.info.file_count, 2);
        assert_eq!(p.info.versions.len(), 2);
    }
}
