//! The cargo adapter: the sparse registry protocol under `/cargo/`.
//!
//! * `GET /cargo/config.json` → `{"dl": "<public base>/cargo/api/v1/crates"}` (no `api`:
//!   publishing is not proxied). Without markers cargo appends `/{crate}/{version}/download`.
//! * `GET /cargo/<index path>` (`1/a`, `2/ab`, `3/a/abc`, `ab/cd/name`): the upstream index
//!   file minus the lines of forbidden versions, every other line byte-identical; a crate
//!   with no allowed version answers 404 (cargo: "no matching package"); ETag over the
//!   upstream bytes and the policy and intelligence revisions.
//! * `GET /cargo/api/v1/crates/<crate>/<version>/download`: decided before upstream is
//!   contacted (403 when blocked); allowed crates stream with their sha256 checked against
//!   the index `cksum`.
//!
//! The last index file of each crate is cached with its facts (pubtime; the cksum is read
//! from the version's line when a download asks) and the upstream's ETag: later fetches
//! revalidate (a 304 reuses the bytes), and a `cargo fetch --locked` that skips the index is
//! still decided with `pubtime`.
//!
//! Cold path: the upstream body is read as it arrives ([`IndexScanner`]: each line read as
//! soon as its `\n` is in, only its first and last members) and hashed in 64 KiB blocks, so
//! that work overlaps the transfer; what follows the last byte is the decision (one
//! intelligence call for every version), one copy of the kept lines (none when nothing is
//! removed) and the response. The response is sent whole, not streamed: its ETag covers
//! the versions removed, a crate with every version blocked answers 404, and
//! `x-pkggate-blocked-versions` counts the removed lines — all known only at the end.

use crate::artifact::{Checks, Expected, Failure, from_hex, verified_checked};
use crate::ecosystems::Adapter;
use crate::flights::Flights;
use crate::gate::{ArtifactAudit, RequestKind, VersionInput, blocked_response};
use crate::server::{AppState, RequestContext, json_response, not_found};
use crate::upstream::UpstreamError;
use crate::upstream::without_userinfo;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;
use pkggate_formats::cargo::{
    IndexScanner, IndexSummary, download_url, index_path, parse_index_path, valid_name,
};
use pkggate_policy::Fact;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub struct CargoAdapter;

/// The last upstream index file of a crate: its validator, bytes, read lines and facts,
/// and the last filtered rendering (reused while the decisions are the same).
struct CachedIndex {
    etag: Option<String>,
    body: bytes::Bytes,
    summary: IndexSummary,
    /// `pubtime` of each entry of `summary`, in seconds.
    published: Vec<Option<i64>>,
    /// version → index in `summary.entries`.
    by_version: HashMap<String, usize>,
    /// A content id of `body` (part of the ETag pkggate sends; see [`BlockHasher`]).
    hash: String,
    rendered: Mutex<Option<Rendered>>,
}

impl CachedIndex {
    /// The publish times of every line of `version` (an upstream may list a version twice;
    /// the index gate removes it when any of its lines is refused).
    fn published_of(&self, version: &str) -> Vec<Option<i64>> {
        let mut out: Vec<Option<i64>> = self
            .summary
            .entries
            .iter()
            .zip(&self.published)
            .filter(|(e, _)| e.vers == version)
            .map(|(_, &p)| p)
            .collect();
        out.dedup();
        out
    }

    /// `(cksum, pubtime)` of a version; `None` when the file has no line for it that reads
    /// in full to the same version and `pubtime` (cargo could not read it either).
    fn facts(&self, version: &str) -> Option<(Option<String>, Option<i64>)> {
        let &i = self.by_version.get(version)?;
        let entry = self.summary.entries.get(i)?;
        // Read in full only now: the index gate read only the ends of the line.
        let line = self
            .summary
            .fields(&self.body, entry)
            .filter(|l| l.vers == entry.vers && l.pubtime == entry.pubtime)?;
        Some((line.cksum, self.published.get(i).copied().flatten()))
    }
}

/// A content id of a body hashed as it arrives: each 64 KiB block (the blocks depend on the
/// bytes only, not on how they arrived) gets a 256-bit non-cryptographic id, and the ids
/// and the length are combined with SHA-256. Like [`crate::content_id::content_id`] it only
/// tells whether upstream's bytes changed (it authenticates nothing), with four
/// independent multiply-rotate lanes instead of two: about twice as fast, which matters
/// because it runs on every byte of the cold path.
#[derive(Default)]
struct BlockHasher {
    done: usize,
    ids: Sha256,
}

impl BlockHasher {
    const BLOCK: usize = 64 * 1024;

    /// Hash the complete blocks of `body` (the bytes received so far) not hashed yet.
    fn update(&mut self, body: &[u8]) {
        while body.len() - self.done >= Self::BLOCK {
            self.ids
                .update(block_id(&body[self.done..self.done + Self::BLOCK]));
            self.done += Self::BLOCK;
        }
    }

    fn finish(mut self, body: &[u8]) -> String {
        self.update(body);
        self.ids.update(block_id(&body[self.done..]));
        self.ids.update((body.len() as u64).to_le_bytes());
        hex::encode(&self.ids.finalize()[..16])
    }
}

/// Four multiply-rotate lanes over 32-byte stripes, then the tail byte by byte, then the
/// length (so a block and the same block with trailing zeros differ).
fn block_id(block: &[u8]) -> [u8; 32] {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let mut lanes = [K2, K1, K2 ^ 1, K1 ^ 1];
    let mut stripes = block.chunks_exact(32);
    for stripe in &mut stripes {
        for (lane, word) in lanes.iter_mut().zip(stripe.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *lane = (*lane ^ u64::from_le_bytes(w))
                .wrapping_mul(K1)
                .rotate_left(31);
        }
    }
    for (i, &x) in stripes.remainder().iter().enumerate() {
        let lane = &mut lanes[i % 4];
        *lane = (*lane ^ u64::from(x)).wrapping_mul(K2).rotate_left(27);
    }
    let mut out = [0u8; 32];
    for (o, lane) in out.chunks_exact_mut(8).zip(lanes) {
        let lane = (lane ^ block.len() as u64).wrapping_mul(K2);
        o.copy_from_slice(&(lane ^ (lane >> 29)).to_le_bytes());
    }
    out
}

struct Rendered {
    removed: std::collections::HashSet<String>,
    revisions: String,
    parts: KeptLines,
}

/// A filtered index file as slices of the upstream body (no copy): the runs of kept lines.
#[derive(Clone)]
struct KeptLines {
    parts: std::collections::VecDeque<bytes::Bytes>,
    len: u64,
}

impl KeptLines {
    /// Past this many runs (many removed lines spread out) one copy beats many writes.
    const MAX_PARTS: usize = 16;

    fn new(entry: &CachedIndex, removed: &std::collections::HashSet<String>) -> KeptLines {
        let runs = entry.summary.kept_runs(removed);
        let parts: std::collections::VecDeque<bytes::Bytes> = if runs.len() <= Self::MAX_PARTS {
            runs.into_iter().map(|r| entry.body.slice(r)).collect()
        } else {
            std::iter::once(bytes::Bytes::from(
                entry.summary.render(&entry.body, removed),
            ))
            .collect()
        };
        let len = parts.iter().map(|p| p.len() as u64).sum();
        KeptLines { parts, len }
    }
}

/// The response body: the parts in order, with an exact length (hyper sends
/// `Content-Length`, not chunks).
impl http_body::Body for KeptLines {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let next = self.parts.pop_front();
        if let Some(part) = &next {
            self.len -= part.len() as u64;
        }
        std::task::Poll::Ready(next.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

/// Bounds of the index cache (cleared when either is exceeded).
const CACHE_CRATES: usize = 10_000;
const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Keyed by (upstream index base, crate): one process may serve several upstreams (tests).
type IndexCache = HashMap<(String, String), Arc<CachedIndex>>;

fn index_cache() -> &'static Mutex<(IndexCache, usize)> {
    static CACHE: OnceLock<Mutex<(IndexCache, usize)>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new((HashMap::new(), 0)))
}

fn cache_key(state: &AppState, name: &str) -> (String, String) {
    (
        state.config.upstream_cargo_index.to_string(),
        name.to_ascii_lowercase(),
    )
}

fn remember(state: &AppState, name: &str, entry: CachedIndex) -> Arc<CachedIndex> {
    let entry = Arc::new(entry);
    let mut dropped: Vec<Arc<CachedIndex>> = Vec::new();
    {
        let mut guard = index_cache().lock().unwrap_or_else(|p| p.into_inner());
        let (map, bytes) = &mut *guard;
        if map.len() >= CACHE_CRATES || *bytes + entry.body.len() > CACHE_BYTES {
            dropped.extend(map.drain().map(|(_, e)| e));
            *bytes = 0;
        }
        *bytes += entry.body.len();
        if let Some(old) = map.insert(cache_key(state, name), entry.clone()) {
            *bytes = bytes.saturating_sub(old.body.len());
            dropped.push(old);
        }
    }
    // Freeing a replaced file (a megabyte or more, given back to the system) costs more
    // than reading one: not on the request's path, and not under the lock.
    if !dropped.is_empty() {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || drop(dropped));
            }
            Err(_) => drop(dropped),
        }
    }
    entry
}

fn cached(state: &AppState, name: &str) -> Option<Arc<CachedIndex>> {
    index_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .0
        .get(&cache_key(state, name))
        .cloned()
}

impl Adapter for CargoAdapter {
    fn ecosystem(&self) -> Ecosystem {
        Ecosystem::CratesIo
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route("/cargo/config.json", get(config_json))
            .route(
                "/cargo/api/v1/crates/{krate}/{version}/download",
                get(download),
            )
            .route("/cargo/{*path}", get(index))
    }

    fn version_facts<'a>(
        &'a self,
        state: &'a AppState,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<VersionInput, Response>> {
        Box::pin(async move {
            let entry = match cached(state, name) {
                Some(e) => e,
                None => load_index(state, name).await?,
            };
            let published = entry
                .by_version
                .get(version)
                .and_then(|&i| entry.published.get(i).copied().flatten());
            Ok(version_input(version, published))
        })
    }
}

fn version_input(version: &str, published: Option<i64>) -> VersionInput {
    VersionInput {
        version: version.to_string(),
        published_unix: published,
        // The index carries neither; the policy's `unknown_facts` decides those rules.
        repository_url: Fact::Unknown,
        lifecycle_scripts: Fact::Unknown,
    }
}

async fn config_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = crate::server::public_base(&state, Ecosystem::CratesIo, &headers);
    let body = json!({"dl": format!("{base}/cargo/api/v1/crates")});
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// Index loads in flight, by [`cache_key`].
type IndexFlights = Flights<(String, String), Option<Arc<CachedIndex>>>;

/// The upstream index file of `name` (revalidated with the upstream's ETag when cached), or
/// the response to send.
async fn load_index(state: &AppState, name: &str) -> Result<Arc<CachedIndex>, Response> {
    // Never an index URL from something that is not a crate name (the explanation endpoint
    // passes names through unparsed).
    if !valid_name(name) {
        return Err(json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("not a crate name: {:?}", name.chars().take(80).collect::<String>())}),
        ));
    }
    // Concurrent loads of one crate share one upstream fetch; when it fails, its caller
    // answers the failure and each waiter asks for itself.
    static FLIGHTS: OnceLock<IndexFlights> = OnceLock::new();
    let mut failed = None;
    let shared = FLIGHTS
        .get_or_init(Flights::new)
        .run(cache_key(state, name), || async {
            match fetch_index(state, name).await {
                Ok(e) => Some(e),
                Err(r) => {
                    failed = Some(r);
                    None
                }
            }
        })
        .await;
    match (shared, failed) {
        (Some(e), _) => Ok(e),
        (None, Some(r)) => Err(r),
        (None, None) => fetch_index(state, name).await,
    }
}

/// The upstream index file of a crate (the configured index is a directory, with or
/// without its trailing slash).
fn index_url(state: &AppState, name: &str) -> Result<url::Url, url::ParseError> {
    crate::upstream::as_directory(&state.config.upstream_cargo_index).join(&index_path(name))
}

/// [`load_index`] without the sharing.
async fn fetch_index(state: &AppState, name: &str) -> Result<Arc<CachedIndex>, Response> {
    let path = index_path(name);
    let url = index_url(state, name)
        .map_err(|_| json_response(StatusCode::BAD_REQUEST, json!({"error": "bad crate name"})))?;
    let previous = cached(state, name);
    let mut headers = HeaderMap::new();
    if let Some(etag) = previous.as_ref().and_then(|p| p.etag.as_deref())
        && let Ok(v) = HeaderValue::from_str(etag)
    {
        headers.insert(header::IF_NONE_MATCH, v);
    }
    let (resp, _) = state
        .upstream
        .send(reqwest::Method::GET, url.clone(), &headers)
        .await
        .map_err(|e| e.response())?;
    match resp.status() {
        StatusCode::OK => {}
        StatusCode::NOT_MODIFIED => {
            if let Some(p) = previous {
                return Ok(p);
            }
        }
        StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => {
            return Err(not_found());
        }
        _ => {}
    }
    if resp.status() != StatusCode::OK {
        return Err(json_response(
            StatusCode::BAD_GATEWAY,
            json!({"error": format!("upstream_error: the cargo index answered {} for {path}", resp.status().as_u16())}),
        ));
    }
    let etag = resp
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limit = state.config.max_document_bytes;
    let too_large = || {
        UpstreamError::TooLarge {
            url: url.to_string(),
            limit,
        }
        .response()
    };
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(too_large());
    }
    // Read and hash each chunk as it arrives (bounded by the document size limit).
    let mut scanner =
        IndexScanner::with_capacity(resp.content_length().unwrap_or(0).min(limit) as usize);
    let mut hasher = BlockHasher::default();
    let mut published: Vec<Option<i64>> = Vec::new();
    let mut by_version: HashMap<String, usize> = HashMap::new();
    // The facts of the lines read so far.
    let mut index_entries = |summary: &IndexSummary| {
        for (i, e) in summary.entries.iter().enumerate().skip(published.len()) {
            published.push(e.published_unix());
            by_version.insert(e.vers.clone(), i);
        }
    };
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transfer_error(&url, &e).response())?;
        if (scanner.body().len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        scanner.push(&chunk);
        hasher.update(scanner.body());
        index_entries(scanner.summary());
    }
    let (body, summary) = scanner.finish();
    index_entries(&summary);
    let hash = hasher.finish(&body);
    Ok(remember(
        state,
        name,
        CachedIndex {
            etag,
            hash,
            body: bytes::Bytes::from(body),
            summary,
            published,
            by_version,
            rendered: Mutex::new(None),
        },
    ))
}

/// An upstream body that failed mid-transfer (a timeout answers 504, anything else 502).
fn transfer_error(url: &reqwest::Url, e: &reqwest::Error) -> UpstreamError {
    let message = crate::intel::source::error_chain(e);
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_string(),
            message,
        }
    } else {
        UpstreamError::Other {
            url: url.to_string(),
            message: format!("the index transfer failed: {message}"),
        }
    }
}

async fn index(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(name) = parse_index_path(&path) else {
        return not_found();
    };
    let entry = match load_index(&state, &name).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let summary = &entry.summary;
    // Nothing readable in what upstream sent (an error page, binary): upstream's fault, and
    // never an empty index cargo would cache as "no such crate".
    if summary.entries.is_empty() && summary.unreadable > 0 {
        return crate::upstream::UpstreamError::Other {
            url: index_url(&state, &name)
                .map(|u| crate::upstream::without_userinfo(&u).to_string())
                .unwrap_or_default(),
            message: format!(
                "none of the {} lines of the index file is readable",
                summary.unreadable
            ),
        }
        .response();
    }
    let display = summary.name.clone().unwrap_or_else(|| name.clone());
    let inputs: Vec<VersionInput> = summary
        .entries
        .iter()
        .zip(&entry.published)
        .map(|(e, &published)| version_input(&e.vers, published))
        .collect();
    let verdict = match state
        .gate
        .decide_package(
            Ecosystem::CratesIo,
            &display,
            &inputs,
            &ctx.info(RequestKind::Index),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return e.response(),
    };
    if !summary.entries.is_empty() && verdict.removed.len() == summary.entries.len() {
        // cargo treats 403 as fatal; 404 reads "no matching package" (PROTOCOLS §3.4).
        let reason = verdict
            .decisions
            .first()
            .map(|d| format!("{} {}", d.rule, d.source.as_deref().unwrap_or(&d.reason)));
        let mut r = json_response(
            StatusCode::NOT_FOUND,
            json!({"errors": [{"detail": format!("blocked_by_pkggate: {}", reason.unwrap_or_default())}]}),
        );
        r.headers_mut().insert(
            "x-pkggate-blocked-versions",
            HeaderValue::from(verdict.removed.len()),
        );
        return r;
    }
    let revisions = verdict.revisions();
    let out = {
        let mut slot = entry.rendered.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(r) if r.revisions == revisions && r.removed == verdict.removed => r.parts.clone(),
            _ => {
                let parts = KeptLines::new(&entry, &verdict.removed);
                *slot = Some(Rendered {
                    removed: verdict.removed.clone(),
                    revisions: revisions.clone(),
                    parts: parts.clone(),
                });
                parts
            }
        }
    };
    // The ETag covers the upstream bytes, the versions removed and the revisions.
    let mut removed: Vec<&String> = verdict.removed.iter().collect();
    removed.sort();
    let mut h = Sha256::new()
        .chain_update(entry.hash.as_bytes())
        .chain_update(revisions.as_bytes());
    for r in removed {
        h.update(r.as_bytes());
        h.update([0]);
    }
    let etag = format!("\"{}\"", &hex::encode(h.finalize())[..32]);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len));
        r
    } else {
        (StatusCode::OK, axum::body::Body::new(out)).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let max_age = state.config.metadata_max_age.as_secs();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        "x-pkggate-blocked-versions",
        HeaderValue::from(verdict.removed.len()),
    );
    resp
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

async fn download(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    method: Method,
    Path((krate, version)): Path<(String, String)>,
) -> Response {
    if !valid_name(&krate) || !valid_version(&version) {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("invalid crate or version: {krate:?} {version:?}")}),
        );
    }
    // Facts (cksum, pubtime) from the cache, else from the index once.
    let entry = match cached(&state, &krate).filter(|e| e.by_version.contains_key(&version)) {
        Some(e) => e,
        None => match load_index(&state, &krate).await {
            Ok(e) => e,
            Err(r) => return r,
        },
    };
    // No line, or a line that does not read in full (cargo cannot read it either).
    let Some((cksum, published)) = entry.facts(&version) else {
        return not_found();
    };
    let info = ctx.info(RequestKind::Crate);
    // Every line of the version decides, as at the index gate: one refused line refuses it.
    for other in entry
        .published_of(&version)
        .into_iter()
        .filter(|&p| p != published)
    {
        match state
            .gate
            .decide_one(
                Ecosystem::CratesIo,
                &krate,
                &version_input(&version, other),
                &info,
            )
            .await
        {
            Ok((d, _)) if d.is_blocked() => {
                return blocked_response(
                    Ecosystem::CratesIo,
                    &krate,
                    Some(&version),
                    &d,
                    &ctx.request_id,
                );
            }
            Ok(_) => {}
            Err(e) => return e.response(),
        }
    }
    let (decision, verdict) = match state
        .gate
        .decide_one(
            Ecosystem::CratesIo,
            &krate,
            &version_input(&version, published),
            &info,
        )
        .await
    {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    if decision.is_blocked() {
        return blocked_response(
            Ecosystem::CratesIo,
            &krate,
            Some(&version),
            &decision,
            &ctx.request_id,
        );
    }
    let audit = ArtifactAudit::new(
        &state.gate,
        Ecosystem::CratesIo,
        &krate,
        &version,
        info,
        &verdict,
    );
    // The digest before upstream is asked: a malformed one is upstream's error, a missing one
    // follows the policy's `unknown_file_hash` (audited either way).
    let expected = match cksum.as_deref() {
        Some(c) => match from_hex("sha256", c) {
            Expected::None => {
                return json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({"error": format!("upstream_error: the index lists a malformed cksum for {krate}@{version}: {c:?}")}),
                );
            }
            e => e,
        },
        None => {
            let what = format!("{krate}-{version}.crate");
            if let Some(refused) = audit
                .unknown_digest(&state.policy.current(), &what, &ctx.request_id)
                .await
            {
                return refused;
            }
            Expected::None
        }
    };
    // The configured template is kept as a parsed URL, which writes `{`/`}` in its path as
    // `%7B`/`%7D`: the markers are the braces.
    let template = without_userinfo(&state.config.upstream_cargo_dl)
        .as_str()
        .replace("%7B", "{")
        .replace("%7D", "}");
    let url = download_url(&template, &krate, &version, cksum.as_deref());
    let Ok(url) = reqwest::Url::parse(&url) else {
        return json_response(
            StatusCode::BAD_GATEWAY,
            json!({"error": "upstream_error: bad download URL"}),
        );
    };
    let m = if method == Method::HEAD {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let (resp, _) = match state.upstream.send(m, url, &HeaderMap::new()).await {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    match resp.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => return not_found(),
        s => {
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("upstream_error: crate download answered {}", s.as_u16())}),
            );
        }
    }
    // Upstream's declared length (for a HEAD, the client library reports the empty body's 0).
    let len = crate::artifact::declared_length(resp.headers());
    let mut out = if method == Method::HEAD {
        (StatusCode::OK, crate::artifact::head_body(len)).into_response()
    } else {
        let (name, ver) = (krate.clone(), version.clone());
        let on_failure = move |f: Failure| match f {
            Failure::Mismatch {
                expected, actual, ..
            } => audit.record_detached(
                "block",
                "integrity_mismatch",
                format!("sha256 mismatch: index cksum {expected}, received {actual}"),
            ),
            Failure::Upstream(e) => {
                tracing::warn!(krate = %name, version = %ver, error = %e, "crate download: upstream failed mid-transfer");
                audit.record_detached(
                    "block",
                    crate::gate::TRANSFER_INCOMPLETE,
                    format!("crate: {e}; transfer aborted"),
                );
            }
        };
        (
            StatusCode::OK,
            verified_checked(
                Ecosystem::CratesIo.osv_name(),
                resp.bytes_stream(),
                expected,
                Checks { length: len },
                on_failure,
            ),
        )
            .into_response()
    };
    let h = out.headers_mut();
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use pkggate_formats::cargo::summarize_index;

    fn hash_in_pieces(body: &[u8], piece: usize) -> String {
        let mut h = BlockHasher::default();
        let mut at = 0;
        while at < body.len() {
            at = (at + piece).min(body.len());
            h.update(&body[..at]);
        }
        h.finish(body)
    }

    #[test]
    fn block_hash_depends_on_the_bytes_only() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let id = hash_in_pieces(&body, body.len());
        for piece in [1000, 65_536, 65_537, 100_000] {
            assert_eq!(hash_in_pieces(&body, piece), id, "pieces of {piece}");
        }
        for at in [0, 65_535, 65_536, 200_000, body.len() - 1] {
            let mut b = body.clone();
            b[at] ^= 1;
            assert_ne!(hash_in_pieces(&b, 4096), id, "flip at {at}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_ne!(hash_in_pieces(&longer, 4096), id);
        assert_ne!(hash_in_pieces(b"", 1), hash_in_pieces(b"\0", 1));
    }

    #[tokio::test]
    async fn kept_lines_are_the_rendering_with_its_length() {
        let mut body = String::new();
        for i in 0..40 {
            body.push_str(&format!(
                "{{\"name\":\"k\",\"vers\":\"1.0.{i}\",\"deps\":[],\"pubtime\":null}}\n"
            ));
        }
        let summary = summarize_index(body.as_bytes());
        let entry = CachedIndex {
            etag: None,
            body: bytes::Bytes::from(body.clone()),
            summary,
            published: Vec::new(),
            by_version: HashMap::new(),
            hash: String::new(),
            rendered: Mutex::new(None),
        };
        // Nothing removed (one slice), a few runs, and many runs (one copy).
        for removed in [vec![], vec![0, 1, 7, 39], (0..40).step_by(2).collect()] {
            let removed: std::collections::HashSet<String> =
                removed.iter().map(|i| format!("1.0.{i}")).collect();
            let kept = KeptLines::new(&entry, &removed);
            assert!(kept.parts.len() <= KeptLines::MAX_PARTS);
            assert_eq!(kept.size_hint().exact(), Some(kept.len));
            let want = entry.summary.render(&entry.body, &removed);
            let got = kept.collect().await.unwrap().to_bytes();
            assert_eq!(got.as_ref(), want.as_slice());
        }
    }
}
