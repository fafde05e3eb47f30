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
//! The last index file of each crate is cached with its facts (cksum, pubtime) and the
//! upstream's ETag: later fetches revalidate (a 304 reuses the bytes), and a
//! `cargo fetch --locked` that skips the index is still decided with `pubtime`.

use crate::artifact::{Expected, Failure, from_hex, verified_counted};
use crate::audit::AuditEvent;
use crate::ecosystems::Adapter;
use crate::gate::{RequestKind, VersionInput, blocked_response};
use crate::server::{AppState, RequestContext, json_response, not_found};
use crate::timefmt::rfc3339;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;
use pkggate_formats::cargo::{
    IndexFile, download_url, index_path, parse_index, parse_index_path, valid_name,
};
use pkggate_policy::Fact;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub struct CargoAdapter;

/// Versions of one crate: version → (cksum, pubtime in seconds).
type CrateFacts = HashMap<String, (Option<String>, Option<i64>)>;

/// The last upstream index file of a crate: its validator, bytes, parsed lines and facts,
/// and the last filtered rendering (reused while the decisions are the same).
struct CachedIndex {
    etag: Option<String>,
    body: bytes::Bytes,
    parsed: IndexFile,
    /// A content id of `body` (part of the ETag pkggate sends; see [`crate::content_id::content_id`]).
    hash: String,
    facts: Arc<CrateFacts>,
    rendered: Mutex<Option<Rendered>>,
}

struct Rendered {
    removed: std::collections::HashSet<String>,
    revisions: String,
    bytes: bytes::Bytes,
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
    let mut guard = index_cache().lock().unwrap_or_else(|p| p.into_inner());
    let (map, bytes) = &mut *guard;
    if map.len() >= CACHE_CRATES || *bytes + entry.body.len() > CACHE_BYTES {
        map.clear();
        *bytes = 0;
    }
    *bytes += entry.body.len();
    if let Some(old) = map.insert(cache_key(state, name), entry.clone()) {
        *bytes = bytes.saturating_sub(old.body.len());
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
            Ok(version_input(
                version,
                entry.facts.get(version).and_then(|f| f.1),
            ))
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

async fn config_json(State(state): State<AppState>) -> Response {
    let base = state.config.public_base(Ecosystem::CratesIo);
    let body = json!({"dl": format!("{base}/cargo/api/v1/crates")});
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// The upstream index file of `name` (revalidated with the upstream's ETag when cached), or
/// the response to send.
async fn load_index(state: &AppState, name: &str) -> Result<Arc<CachedIndex>, Response> {
    let path = index_path(name);
    let url =
        state.config.upstream_cargo_index.join(&path).map_err(|_| {
            json_response(StatusCode::BAD_REQUEST, json!({"error": "bad crate name"}))
        })?;
    let previous = cached(state, name);
    let mut headers = HeaderMap::new();
    if let Some(etag) = previous.as_ref().and_then(|p| p.etag.as_deref())
        && let Ok(v) = HeaderValue::from_str(etag)
    {
        headers.insert(header::IF_NONE_MATCH, v);
    }
    let doc = state
        .upstream
        .get_document(url, &headers)
        .await
        .map_err(|e| e.response())?;
    match doc.status {
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
    if doc.status != StatusCode::OK {
        return Err(json_response(
            StatusCode::BAD_GATEWAY,
            json!({"error": format!("upstream_error: the cargo index answered {} for {path}", doc.status.as_u16())}),
        ));
    }
    let parsed = parse_index(&doc.body);
    let facts: CrateFacts = parsed
        .lines
        .iter()
        .map(|l| (l.vers.clone(), (l.cksum.clone(), l.published_unix())))
        .collect();
    let etag = doc
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(remember(
        state,
        name,
        CachedIndex {
            etag,
            hash: crate::content_id::content_id(&doc.body),
            body: doc.body,
            parsed,
            facts: Arc::new(facts),
            rendered: Mutex::new(None),
        },
    ))
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
    let body = &entry.body;
    let parsed = &entry.parsed;
    let display = parsed
        .lines
        .first()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| name.clone());
    let inputs: Vec<VersionInput> = parsed
        .lines
        .iter()
        .map(|l| version_input(&l.vers, l.published_unix()))
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
    if !parsed.lines.is_empty() && verdict.removed.len() == parsed.lines.len() {
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
            Some(r) if r.revisions == revisions && r.removed == verdict.removed => r.bytes.clone(),
            _ => {
                let bytes = bytes::Bytes::from(parsed.render(body, &verdict.removed));
                *slot = Some(Rendered {
                    removed: verdict.removed.clone(),
                    revisions: revisions.clone(),
                    bytes: bytes.clone(),
                });
                bytes
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
            .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        r
    } else {
        (StatusCode::OK, out).into_response()
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
    let facts = match cached(&state, &krate).filter(|e| e.facts.contains_key(&version)) {
        Some(e) => e.facts.clone(),
        None => match load_index(&state, &krate).await {
            Ok(e) => e.facts.clone(),
            Err(r) => return r,
        },
    };
    let Some((cksum, published)) = facts.get(&version).cloned() else {
        return not_found();
    };
    let info = ctx.info(RequestKind::Crate);
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
    let url = download_url(
        state.config.upstream_cargo_dl.as_str(),
        &krate,
        &version,
        cksum.as_deref(),
    );
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
    let len = resp.content_length();
    let mut out = if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        let audit = state.audit.clone();
        let (name, ver) = (krate.clone(), version.clone());
        let revisions = (
            verdict.policy_revision.clone(),
            verdict.intel_revision.clone(),
        );
        let on_failure = move |f: Failure| {
            let reason = match f {
                Failure::Mismatch {
                    expected, actual, ..
                } => {
                    format!("sha256 mismatch: index cksum {expected}, received {actual}")
                }
                Failure::Upstream(e) => format!("upstream failed mid-transfer: {e}"),
            };
            tracing::warn!(
                "BLOCK  [crates.io] {name}@{ver} rule=integrity_mismatch reason={reason} source="
            );
            let event = AuditEvent {
                ts: rfc3339(crate::intel::now_unix()),
                action: "block".into(),
                ecosystem: "crates.io".into(),
                package: name,
                version: ver,
                rule: "integrity_mismatch".into(),
                reason,
                source: None,
                request_kind: info.kind.as_str().into(),
                client_ip: info.client_ip,
                request_id: info.request_id,
                user_agent: info.user_agent,
                policy_revision: revisions.0,
                intel_revision: revisions.1,
                counts: None,
            };
            tokio::spawn(async move {
                let _ = audit.record(vec![event]).await;
            });
        };
        let expected = cksum
            .as_deref()
            .map_or(Expected::None, |c| from_hex("sha256", c));
        (
            StatusCode::OK,
            verified_counted(
                Ecosystem::CratesIo.osv_name(),
                resp.bytes_stream(),
                expected,
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
