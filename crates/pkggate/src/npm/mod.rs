//! The npm adapter (npm, pnpm, yarn 1/4, bun): the metadata gate (packuments, full and
//! abbreviated, and `/<name>/<version-or-tag>`), the artifact gate (tarballs in every
//! spelling), and the registry's service endpoints (`/-/ping`, audit, search, refused
//! writes). npm owns the root namespace, so everything arrives through [`fallback`].
//!
//! * Paths are routed by `pkggate_formats::npm::parse_path` (decoded once; hostile paths are
//!   400 and never reach upstream).
//! * Metadata: see [`meta`]: single-flight per (package, form), one parse per document,
//!   cached filtered views validated by upstream ETag (or content hash), policy revision,
//!   intelligence revision and time-dependent decisions; the ETag pkggate sends covers the
//!   upstream content, both revisions, the form, the removed versions and the encoding.
//! * Tarballs: see [`tarball`]: decided before any upstream contact, verified while
//!   streamed.

mod cache;
pub mod meta;
pub mod tarball;

use crate::ecosystems::Adapter;
use crate::gate::{RequestKind, VersionInput, blocked_response};
use crate::server::{AppState, RequestContext, json_response, not_found};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use cache::Registry;
use futures_util::future::BoxFuture;
use meta::{MetaError, NpmState, Outcome, View, clone_error};
use pkggate_formats::Ecosystem;
use pkggate_formats::npm::{NpmPathError, NpmRoute, Representation, extract_version, parse_path};
use serde_json::json;
use std::sync::Arc;

const NPM: Ecosystem = Ecosystem::Npm;

static STATES: Registry<NpmState> = Registry::new();

/// The npm state of the server `state` belongs to.
pub fn npm_state(state: &AppState) -> Arc<NpmState> {
    STATES.get_or_init(&state.gate, NpmState::default)
}

pub struct NpmAdapter;

impl Adapter for NpmAdapter {
    fn ecosystem(&self) -> Ecosystem {
        Ecosystem::Npm
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
    }

    fn version_facts<'a>(
        &'a self,
        state: &'a AppState,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<VersionInput, Response>> {
        Box::pin(async move {
            let st = npm_state(state);
            if let Err(e) = st
                .load_facts(state, &HeaderMap::new(), name, Representation::Full)
                .await
            {
                return Err(clone_error(&e).response());
            }
            Ok(st
                .cached_facts(name, version)
                .map(|(f, _)| f.input(version))
                .unwrap_or_else(|| VersionInput::bare(version)))
        })
    }
}

fn bad_request(e: &NpmPathError) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("bad_request: {e}")}),
    )
}

fn method_not_allowed(method: &Method, path: &str) -> Response {
    let mut r = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"error": format!(
            "method_not_allowed: pkggate is a read-only registry firewall; {method} {path} (publish, unpublish, dist-tag, login and other writes) is refused"
        )}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

const AUDIT_PATHS: [&str; 3] = [
    "npm/v1/security/advisories/bulk",
    "npm/v1/security/audits",
    "npm/v1/security/audits/quick",
];

/// Everything under `/` that no other route took.
pub async fn fallback(
    State(state): State<AppState>,
    ctx: Option<axum::Extension<RequestContext>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctx = ctx.map(|c| c.0).unwrap_or_else(|| RequestContext {
        request_id: "-".into(),
        client_ip: "unknown".into(),
        user_agent: None,
    });
    let path = uri.path();
    let read = method == Method::GET || method == Method::HEAD;
    if !read {
        if method == Method::POST
            && let Some(rest) = path.strip_prefix("/-/")
            && AUDIT_PATHS.contains(&rest)
        {
            return audit(&state, rest, &headers, body).await;
        }
        return method_not_allowed(&method, path);
    }
    let route = match parse_path(path) {
        Ok(r) => r,
        Err(NpmPathError::UnknownRoute { .. }) => return not_found(),
        // No npm name contains `%`: such a name is not found (and never decoded twice).
        Err(e @ NpmPathError::DoubleEncoded { .. }) => {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"error": format!("Not found: {e}")}),
            );
        }
        Err(e) => return bad_request(&e),
    };
    let st = npm_state(&state);
    match route {
        NpmRoute::Special(rest) => special(&state, &rest, uri.query(), &headers).await,
        NpmRoute::Packument { name } => packument(&st, &state, &ctx, &headers, &name).await,
        NpmRoute::VersionOrTag { name, spec } => {
            version_or_tag(&st, &state, &ctx, &headers, &name, &spec).await
        }
        NpmRoute::Tarball {
            name,
            filename,
            version,
        } => tarball::serve(st, state, ctx, method, headers, name, filename, version).await,
    }
}

/// Does `If-None-Match` match `etag`?
fn matches_inm(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// The client lists gzip with a non-zero q.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && q > 0.0
        })
}

fn cache_control(state: &AppState) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "public, max-age={}",
        meta::max_age(state).as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
}

async fn get_view(
    st: &Arc<NpmState>,
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    name: &str,
    repr: Representation,
) -> Result<Arc<View>, Response> {
    let info = ctx.info(RequestKind::Metadata);
    let view = st
        .view(state, &info, headers, name, repr)
        .await
        .map_err(|e| {
            if !matches!(*e, MetaError::NotFound) {
                tracing::warn!(package = %name, error = %e, "npm metadata failed");
            }
            e.response()
        })?;
    // Served from a view another request decided (cached, or shared while in flight): this
    // request's audit lines are that decision's, written again under its own id.
    if view.built_by != info.request_id {
        state
            .gate
            .replay_audit(NPM, &view.audit, &info)
            .await
            .map_err(|e| e.response())?;
    }
    Ok(view)
}

async fn packument(
    st: &Arc<NpmState>,
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    name: &str,
) -> Response {
    let repr =
        Representation::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let view = match get_view(st, state, ctx, headers, name, repr).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (bytes, etag_base, blocked, repr) = match &view.outcome {
        Outcome::Blocked { version, decision } => {
            return blocked_response(NPM, name, Some(version), decision, &ctx.request_id);
        }
        Outcome::Doc {
            bytes,
            etag_base,
            blocked,
            repr,
            ..
        } => (bytes.clone(), etag_base, *blocked, *repr),
    };
    let gz = if accepts_gzip(headers) {
        view.gzip().await
    } else {
        None
    };
    let etag = format!("\"{etag_base}-{}\"", if gz.is_some() { "gz" } else { "id" });
    let mut b = Response::builder()
        .header(header::CACHE_CONTROL, cache_control(state))
        .header(header::VARY, "Accept, Accept-Encoding")
        .header(header::ETAG, &etag)
        .header("x-pkggate-blocked-versions", blocked);
    if matches_inm(headers, &etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| not_found());
    }
    b = b
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, repr.content_type());
    let body = match gz {
        Some(gz) => {
            b = b.header(header::CONTENT_ENCODING, "gzip");
            gz
        }
        None => bytes,
    };
    b.header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_else(|_| not_found())
}

async fn version_or_tag(
    st: &Arc<NpmState>,
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    name: &str,
    spec: &str,
) -> Response {
    let view = match get_view(st, state, ctx, headers, name, Representation::Full).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (bytes, etag_base) = match &view.outcome {
        Outcome::Blocked { version, decision } => {
            return blocked_response(NPM, name, Some(version), decision, &ctx.request_id);
        }
        Outcome::Doc {
            bytes, etag_base, ..
        } => (bytes.clone(), etag_base.clone()),
    };
    let spec_owned = spec.to_string();
    let found = tokio::task::spawn_blocking(move || extract_version(&bytes, &spec_owned)).await;
    let doc = match found {
        Ok(Ok(Some(doc))) => doc,
        Ok(Ok(None)) => return not_found(),
        Ok(Err(e)) => return MetaError::Internal(e.to_string()).response(),
        Err(e) => return MetaError::Internal(e.to_string()).response(),
    };
    let etag = format!(
        "\"{etag_base}-v{}\"",
        hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(spec.as_bytes())[..6])
    );
    let b = Response::builder()
        .header(header::CACHE_CONTROL, cache_control(state))
        .header(header::VARY, "Accept, Accept-Encoding")
        .header(header::ETAG, &etag);
    if matches_inm(headers, &etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| not_found());
    }
    b.status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, doc.len())
        .body(Body::from(doc))
        .unwrap_or_else(|_| not_found())
}

fn upstream_special_url(state: &AppState, rest: &str, query: Option<&str>) -> Option<url::Url> {
    let base = state.config.upstream_npm.as_str().trim_end_matches('/');
    let mut s = format!("{base}/-/{rest}");
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    url::Url::parse(&s)
        .ok()
        .map(|u| crate::upstream::without_userinfo(&u))
}

/// Upstream's answer to a search, keys or audit request, as JSON whatever upstream called it:
/// these answers are served on the same origin as the admin page, so an upstream that says
/// `text/html` must not get a browser to run it.
fn passthrough(doc: crate::upstream::Document) -> Response {
    Response::builder()
        .status(doc.status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-content-type-options", "nosniff")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(doc.body))
        .unwrap_or_else(|_| not_found())
}

async fn special(
    state: &AppState,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    match rest {
        "ping" => json_response(StatusCode::OK, json!({})),
        "whoami" => json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized: pkggate does not log users in; whoami is not available through the firewall"}),
        ),
        "v1/search" | "npm/v1/keys" => {
            let Some(url) = upstream_special_url(state, rest, query) else {
                return not_found();
            };
            let mut h = crate::upstream::forwardable(headers);
            h.remove(header::IF_NONE_MATCH);
            h.remove(header::IF_MODIFIED_SINCE);
            match state.upstream.get_document(url, &h).await {
                Ok(doc) if doc.status.is_success() => passthrough(doc),
                _ if rest == "v1/search" => json_response(
                    StatusCode::OK,
                    json!({"objects": [], "total": 0, "time": crate::timefmt::rfc3339((state.gate.clock)())}),
                ),
                _ => not_found(),
            }
        }
        _ if AUDIT_PATHS.contains(&rest) => method_not_allowed(&Method::GET, rest),
        _ => not_found(),
    }
}

/// Audit endpoints: forwarded as sent (gzip bodies keep their `Content-Encoding`); an empty
/// report when upstream refuses or fails, so an install never fails on audit.
async fn audit(state: &AppState, rest: &str, headers: &HeaderMap, body: Body) -> Response {
    let empty = || json_response(StatusCode::OK, json!({}));
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return empty();
    };
    let Some(url) = upstream_special_url(state, rest, None) else {
        return empty();
    };
    let mut h = crate::upstream::forwardable(headers);
    h.remove(header::IF_NONE_MATCH);
    h.remove(header::IF_MODIFIED_SINCE);
    for k in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
        if let Some(v) = headers.get(&k) {
            h.insert(k, v.clone());
        }
    }
    match state.upstream.post(url, &h, bytes).await {
        Ok(doc) if doc.status.is_success() => passthrough(doc),
        Ok(doc) => {
            tracing::info!(
                status = doc.status.as_u16(),
                path = rest,
                "npm audit refused upstream; answering an empty report"
            );
            empty()
        }
        Err(e) => {
            tracing::info!(error = %e, path = rest, "npm audit failed upstream; answering an empty report");
            empty()
        }
    }
}
