//! The artifact gate: decide a tarball before any upstream contact (with the cached facts of
//! the package, fetched once when the rules need them), then stream it from upstream while
//! verifying `dist.integrity` (or `shasum`); a mismatch cuts the transfer before its last
//! bytes and writes an audit line.

use super::meta::{MetaError, NpmState, VerFacts, clone_error};
use crate::artifact::{Checks, Expected, Failure, verified_checked};
use crate::gate::{ArtifactAudit, RequestKind, blocked_response};
use crate::server::{AppState, RequestContext, json_response, not_found};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use pkggate_formats::Ecosystem;
use pkggate_formats::npm::Representation;
use serde_json::json;

use std::sync::Arc;

const NPM: Ecosystem = Ecosystem::Npm;

/// The strongest digest pkggate can check among `integrity` (SRI, possibly several
/// space-separated entries) and `shasum` (sha1 hex).
pub fn expected(integrity: Option<&str>, shasum: Option<&str>) -> Expected {
    use base64::Engine;
    let mut best: Option<(usize, &'static str, Vec<u8>)> = None;
    for item in integrity.unwrap_or("").split_whitespace() {
        let Some((alg, rest)) = item.split_once('-') else {
            continue;
        };
        // SRI options after `?` are ignored.
        let b64 = rest.split('?').next().unwrap_or("");
        let (rank, name, len) = match alg {
            "sha512" => (4, "sha512", 64),
            "sha384" => (3, "sha384", 48),
            "sha256" => (2, "sha256", 32),
            "sha1" => (1, "sha1", 20),
            _ => continue,
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        if raw.len() != len || best.as_ref().is_some_and(|(r, _, _)| *r >= rank) {
            continue;
        }
        best = Some((rank, name, raw));
    }
    if let Some((_, name, raw)) = best {
        return Expected::Digest(name, raw);
    }
    match shasum.and_then(|s| hex::decode(s.trim()).ok()) {
        Some(raw) if raw.len() == 20 => Expected::Digest("sha1", raw),
        _ => Expected::None,
    }
}

fn needs_facts(state: &AppState) -> bool {
    let n = state.policy.current().needs(NPM);
    n.publish_time || n.repository_url || n.lifecycle_scripts
}

/// Only URLs on configured upstream origins are fetched.
fn allowed_url(state: &AppState, u: &str) -> Option<url::Url> {
    let url = url::Url::parse(u).ok()?;
    let origin = url.origin();
    state
        .config
        .upstream_bases()
        .iter()
        .any(|b| b.origin() == origin)
        .then_some(url)
}

fn conventional_url(state: &AppState, name: &str, filename: &str) -> Option<url::Url> {
    let base = state.config.upstream_npm.as_str().trim_end_matches('/');
    url::Url::parse(&format!("{base}/{name}/-/{filename}"))
        .ok()
        .map(|u| crate::upstream::without_userinfo(&u))
}

/// `GET|HEAD` of a tarball.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    st: Arc<NpmState>,
    state: AppState,
    ctx: RequestContext,
    method: Method,
    client: HeaderMap,
    name: String,
    filename: String,
    version: String,
) -> Response {
    let mut known = st.cached_facts(&name, &version);
    if needs_facts(&state) && known.as_ref().is_none_or(|(_, abbreviated)| *abbreviated) {
        // A lockfile install may never have asked for the document: learn the facts once.
        match st
            .load_facts(&state, &client, &name, Representation::Full)
            .await
        {
            Ok(()) => known = st.cached_facts(&name, &version),
            Err(e) if matches!(*e, MetaError::NotFound) => known = None,
            // Without the facts the rules need, refuse rather than guess.
            Err(e) => return clone_error(&e).response(),
        }
    }
    let input = match &known {
        Some((f, _)) => f.input(&version),
        None => crate::gate::VersionInput::bare(&version),
    };
    let info = ctx.info(RequestKind::Tarball);
    let (decision, verdict) = match state.gate.decide_one(NPM, &name, &input, &info).await {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    if decision.is_blocked() {
        return blocked_response(NPM, &name, Some(&version), &decision, &ctx.request_id);
    }
    // Allowed: the digest and the upstream location come from the document.
    if known.is_none() {
        match st
            .load_facts(&state, &client, &name, Representation::Abbreviated)
            .await
        {
            Ok(()) => known = st.cached_facts(&name, &version),
            Err(e) if matches!(*e, MetaError::NotFound) => {}
            Err(e) => {
                tracing::warn!(package = %name, version = %version, error = %e, "npm tarball: document unavailable; streaming without integrity check");
            }
        }
    }
    let facts = known.map(|(f, _)| f).unwrap_or_default();
    let audit = ArtifactAudit::new(&state.gate, NPM, &name, &version, info, &verdict);
    stream(
        state, ctx, audit, method, client, name, filename, version, facts,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    state: AppState,
    ctx: RequestContext,
    audit: ArtifactAudit,
    method: Method,
    client: HeaderMap,
    name: String,
    filename: String,
    version: String,
    facts: VerFacts,
) -> Response {
    let url = facts
        .tarball
        .as_deref()
        .and_then(|u| allowed_url(&state, u))
        .or_else(|| conventional_url(&state, &name, &filename));
    let Some(url) = url else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("bad_request: cannot build a tarball URL for {name}/{filename}")}),
        );
    };
    let exp = expected(facts.integrity.as_deref(), facts.shasum.as_deref());
    if exp == Expected::None
        && let Some(refused) = audit
            .unknown_digest(&state.policy.current(), &filename, &ctx.request_id)
            .await
    {
        return refused;
    }
    let mut h = HeaderMap::new();
    for k in [
        header::USER_AGENT,
        header::HeaderName::from_static("npm-command"),
    ] {
        if let Some(v) = client.get(&k) {
            h.insert(k, v.clone());
        }
    }
    let upstream_method = if method == Method::HEAD {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let (resp, _) = match state.upstream.send(upstream_method, url.clone(), &h).await {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let status = resp.status();
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        return not_found();
    }
    if !status.is_success() {
        let mut r = json_response(
            StatusCode::BAD_GATEWAY,
            json!({"error": crate::upstream::redact_userinfo(&format!("upstream_error: upstream answered HTTP {} for {url}", status.as_u16()))}),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    }
    let length = crate::artifact::declared_length(resp.headers());
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CACHE_CONTROL,
            format!(
                "public, max-age={}",
                state.config.metadata_max_age.as_secs()
            ),
        );
    if let Some(l) = length {
        builder = builder.header(header::CONTENT_LENGTH, l);
    }
    if method == Method::HEAD {
        return builder
            .body(crate::artifact::head_body(length))
            .unwrap_or_else(|_| not_found());
    }
    let on_failure = move |f: Failure| {
        match f {
        Failure::Mismatch {
            algorithm,
            expected,
            actual,
        } => audit.record_detached(
            "block",
            "integrity_mismatch",
            format!(
                "tarball {algorithm} digest {actual} does not match the document's {expected}; transfer aborted"
            ),
        ),
        Failure::Upstream(m) => {
            tracing::warn!(package = %name, version = %version, error = %m, "npm tarball: upstream failed mid-transfer");
            audit.record_detached(
                "block",
                crate::gate::TRANSFER_INCOMPLETE,
                format!("tarball: {m}; transfer aborted"),
            );
        }
    }
    };
    let body = verified_checked(
        NPM.osv_name(),
        resp.bytes_stream(),
        exp,
        Checks { length },
        on_failure,
    );
    builder.body(body).unwrap_or_else(|_| not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::verified;
    use axum::body::Body;
    use base64::Engine;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use sha2::Digest;

    #[test]
    fn strongest_digest_wins() {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let s512 = sha2::Sha512::digest(b"x").to_vec();
        let s1 = sha1::Sha1::digest(b"x").to_vec();
        let sri = format!("sha1-{} sha512-{}", b64(&s1), b64(&s512));
        assert_eq!(
            expected(Some(&sri), None),
            Expected::Digest("sha512", s512.clone())
        );
        assert_eq!(
            expected(None, Some(&hex::encode(&s1))),
            Expected::Digest("sha1", s1.clone())
        );
        assert_eq!(
            expected(Some("sha512-!!!"), Some(&hex::encode(&s1))),
            Expected::Digest("sha1", s1)
        );
        assert_eq!(expected(Some("md5-abc"), Some("zz")), Expected::None);
    }

    async fn collect(body: Body) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut b = body;
        loop {
            match b.frame().await {
                None => return Ok(out),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Err(format!("{e} after {} bytes", out.len())),
            }
        }
    }

    #[tokio::test]
    async fn verification_passes_good_and_cuts_bad_bodies() {
        let chunks = || {
            futures_util::stream::iter(vec![
                Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
                Ok(Bytes::from_static(b"world")),
            ])
        };
        let good = Expected::Digest("sha1", sha1::Sha1::digest(b"hello world").to_vec());
        let out = collect(verified(chunks(), good, |_| panic!("no failure"))).await;
        assert_eq!(out.unwrap(), b"hello world");
        let bad = Expected::Digest("sha512", sha2::Sha512::digest(b"other").to_vec());
        let seen = Arc::new(std::sync::Mutex::new(None));
        let s2 = seen.clone();
        let out = collect(verified(chunks(), bad, move |f| {
            *s2.lock().unwrap() = Some(f)
        }))
        .await;
        let err = out.unwrap_err();
        assert!(err.ends_with("after 6 bytes"), "{err}");
        assert!(matches!(
            seen.lock().unwrap().as_ref(),
            Some(Failure::Mismatch { .. })
        ));
    }
}
