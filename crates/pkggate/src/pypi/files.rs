//! The file gate: `GET|HEAD /files/<project>/…/<filename>` and its `.metadata` sibling.
//!
//! Order of work, nothing reaches upstream's file host before the decision:
//! 1. the path is parsed and checked ([`super::paths`]): hostile paths are 400;
//! 2. a project blocked outright is refused (403) before upstream hears of it;
//! 3. the project's index page (cached per project, fetched once when missing, asked again
//!    once when a page older than a second does not list the file as asked or lists it
//!    without a sha256) must list the filename at exactly the requested upstream URL — else
//!    400 for a filename that cannot belong to the project (a wheel's name part normalises
//!    to it; other files start with a prefix that does), 404 otherwise. A listed file is
//!    served whatever its name: the index is the authority. The page gives the sha256, the
//!    size and the version's publish time (earliest `upload-time`): the same facts as the
//!    index gate, so lockfile installs that never fetched the index meet the same rules;
//! 4. the gate decides (project, version) → 403 with the SPEC §2.3 body when blocked;
//! 5. the file streams from upstream with back-pressure, no size cap. With
//!    `PKGGATE_PYPI_VERIFY_INTEGRITY` the sha256 (of the file, or of `.metadata` from
//!    `core-metadata`) is computed while streaming; the last chunk is held back until the
//!    digest is known, so on a mismatch the transfer is cut short (the client sees an
//!    incomplete body) and an audit line (`block`, rule `integrity_mismatch`) is written.
//!    A file listed without a sha256 follows the policy's `unknown_file_hash`: served
//!    unverified (default) or refused with 403 before upstream is asked; both are audited
//!    (rule `integrity_unknown`).
//!
//! `HEAD` asks upstream for `HEAD` and answers the same `Content-Length` as `GET`.
//! `Range` is not supported and `Accept-Ranges` is never advertised (full 200 answers).

use super::{
    FileMeta, Shared, bad_request, bad_upstream, context, not_found_because, page_inputs,
    upstream_status, version_key,
};
use crate::artifact::{Checks, Expected, Failure, from_hex, verified_checked};
use crate::gate::{ArtifactAudit, PackageVerdict, RequestKind, blocked_response};
use crate::server::{AppState, not_found};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use pkggate_formats::Ecosystem;
use pkggate_formats::ecosystem::pep503_normalize;
use pkggate_formats::pypi::{FileKind, parse_filename};
use pkggate_policy::Fact;
use std::sync::Arc;

/// A cached page that does not list a requested file as asked (or lists it without a
/// sha256) is asked for again once it is this old.
const FILE_REFETCH_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `filename` can belong to `project` (see the module doc).
pub fn belongs_to(project: &str, filename: &str, kind: FileKind, version: Option<&str>) -> bool {
    if kind == FileKind::Wheel {
        return filename
            .split('-')
            .next()
            .is_some_and(|n| pep503_normalize(n) == project);
    }
    if version.is_some() {
        return true;
    }
    pep503_normalize(filename).starts_with(&format!("{project}-"))
}

fn copy_header(from: &HeaderMap, to: &mut HeaderMap, name: header::HeaderName) {
    if let Some(v) = from.get(&name) {
        to.insert(name, v.clone());
    }
}

/// `GET|HEAD /files/…`.
pub async fn serve_file(state: AppState, shared: Arc<Shared>, req: Request) -> Response {
    if super::npm_owned(&req, "/files") {
        return super::to_npm(state, req).await;
    }
    let urls = shared.urls(&state.config);
    let target = match urls.parse(req.uri().path()) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let parsed = parse_filename(&target.project, &target.filename);
    let ctx = context(&req);
    // A project blocked outright is refused before upstream hears of it (an internal name
    // must never reach a public index, and a removed project would only give 404).
    if let Some(r) = super::refused_outright(
        &state,
        &shared,
        &target.project,
        parsed.version.as_deref(),
        &ctx,
        RequestKind::File,
    )
    .await
    {
        return r;
    }
    let mut page = match shared.project_page(&state, &target.project).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let mut meta = page.file(&target.filename);
    // Not listed (as asked), or listed without a sha256, in a page cached a while ago: the
    // page may predate the file (a release since, a lockfile made elsewhere), so upstream is
    // asked once more — at most once per project per `FILE_REFETCH_AFTER` (revalidated
    // with its ETag), however many such requests arrive.
    let incomplete = |m: &Option<FileMeta>| {
        m.as_ref()
            .is_none_or(|m| m.sha256.is_none() || m.url != target.upstream.as_str())
    };
    if incomplete(&meta) && page.fetched.elapsed() >= FILE_REFETCH_AFTER {
        // One request asks; concurrent ones wait for it and take its page.
        let cold = match shared
            .cold_guard_within(&state, &target.project, FILE_REFETCH_AFTER)
            .await
        {
            Ok(g) => g,
            Err(r) => return r,
        };
        match shared
            .project_page_within(&state, &target.project, FILE_REFETCH_AFTER)
            .await
        {
            Ok(Some(p)) => {
                page = p;
                meta = page.file(&target.filename);
            }
            Ok(None) => return not_found(),
            // Upstream cannot say more right now: a file the cached page lists (without a
            // sha256) is still served as before; an unlisted one gets upstream's error.
            Err(r) => {
                if let Some(g) = cold
                    && r.status().is_server_error()
                {
                    g.failed(r.status());
                }
                if meta.is_none() {
                    return r;
                }
            }
        }
    }
    let Some(meta) = meta else {
        if !belongs_to(
            &target.project,
            &target.filename,
            parsed.kind,
            parsed.version.as_deref(),
        ) {
            return bad_request(format!(
                "{} is not a file of project {}",
                target.filename, target.project
            ));
        }
        return not_found_because(format!(
            "{} is not listed in the index of {}",
            target.filename, target.project
        ));
    };
    if meta.url != target.upstream.as_str() {
        return not_found_because(format!(
            "{} is listed at another URL in the index of {}",
            target.filename, target.project
        ));
    }
    let version = meta
        .version
        .clone()
        .or(parsed.version.clone())
        .unwrap_or_default();
    let repo = if state.policy.current().needs(Ecosystem::PyPI).repository_url {
        shared.repository_url(&state, &target.project).await
    } else {
        Fact::Unknown
    };
    let mut input = page_inputs(&page.info, &repo)
        .into_iter()
        .find(|v| version_key(&v.version) == version_key(&version))
        .unwrap_or_default();
    input.version = version.clone();
    input.repository_url = repo;
    input.lifecycle_scripts = Fact::Absent;
    let info = ctx.info(RequestKind::File);
    let (decision, verdict): (_, PackageVerdict) = match state
        .gate
        .decide_one(Ecosystem::PyPI, &target.project, &input, &info)
        .await
    {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    if decision.is_blocked() {
        return blocked_response(
            Ecosystem::PyPI,
            &target.project,
            Some(version.as_str()).filter(|v| !v.is_empty()),
            &decision,
            &ctx.request_id,
        );
    }
    let audit = ArtifactAudit::new(
        &state.gate,
        Ecosystem::PyPI,
        &target.project,
        &version,
        info,
        &verdict,
    );
    let (upstream_url, expected, known_size) = if target.metadata {
        if meta.core_metadata.is_none() {
            return not_found_because(format!(
                "the index lists no metadata file for {}",
                target.filename
            ));
        }
        (
            super::paths::metadata_url(&target.upstream),
            meta.core_metadata.clone().flatten(),
            None,
        )
    } else {
        (target.upstream.clone(), meta.sha256.clone(), meta.size)
    };
    let what = format!(
        "{}{}",
        target.filename,
        if target.metadata { ".metadata" } else { "" }
    );
    let verify = state.config.pypi_verify_integrity;
    if verify && expected.is_none() {
        // The page was fetched (or revalidated) for this request or within max-age: the
        // index does not know the digest. The policy decides; both outcomes are audited.
        if let Some(refused) = audit
            .unknown_digest(&state.policy.current(), &what, &ctx.request_id)
            .await
        {
            return refused;
        }
    }
    // A digest that is not one is upstream's error: refused before its file host is asked.
    let digest = match expected.as_deref().filter(|_| verify) {
        None => Expected::None,
        Some(hex) => match from_hex("sha256", hex) {
            Expected::None => {
                return bad_upstream(
                    upstream_url.as_str(),
                    format!("the index lists a malformed sha256 for {what}: {hex:?}"),
                );
            }
            e => e,
        },
    };
    let is_head = req.method() == Method::HEAD;
    let method = if is_head {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let (resp, _final) = match state
        .upstream
        .send(method, upstream_url.clone(), &HeaderMap::new())
        .await
    {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    if !resp.status().is_success() {
        return upstream_status(upstream_url.as_str(), resp.status());
    }
    let mut out_headers = HeaderMap::new();
    copy_header(resp.headers(), &mut out_headers, header::CONTENT_TYPE);
    copy_header(resp.headers(), &mut out_headers, header::LAST_MODIFIED);
    if !out_headers.contains_key(header::CONTENT_TYPE) {
        out_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    let upstream_length = crate::artifact::declared_length(resp.headers());
    // The index's size is the authority (as its sha256 is): a body of another length is
    // refused before a byte is sent, and one that does not declare a length is held to it.
    let known_size = known_size.filter(|_| !resp.headers().contains_key(header::CONTENT_ENCODING));
    if let (Some(k), Some(u)) = (known_size, upstream_length)
        && k != u
    {
        let reason = format!(
            "{what} is {u} bytes upstream, the index of {} lists {k}",
            target.project
        );
        audit
            .record("block", "integrity_mismatch", reason.clone())
            .await;
        return bad_upstream(upstream_url.as_str(), reason);
    }
    let length = known_size.or(upstream_length);
    if let Some(l) = length
        && let Ok(v) = HeaderValue::from_str(&l.to_string())
    {
        out_headers.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "max-age={}",
        state.config.metadata_max_age.as_secs()
    )) {
        out_headers.insert(header::CACHE_CONTROL, v);
    }
    if let Some(sha) = &expected
        && let Ok(v) = HeaderValue::from_str(&format!("\"sha256-{sha}\""))
    {
        out_headers.insert(header::ETAG, v);
    }
    if is_head {
        let mut r = Response::new(crate::artifact::head_body(length));
        *r.headers_mut() = out_headers;
        return r;
    }
    let on_failure = move |f: Failure| match f {
        Failure::Mismatch {
            expected, actual, ..
        } => audit.record_detached(
            "block",
            "integrity_mismatch",
            format!("sha256 of {what} is {actual}, the index says {expected}; transfer aborted"),
        ),
        Failure::Upstream(m) => {
            tracing::warn!("upstream transfer of {what} failed: {m}");
            audit.record_detached(
                "block",
                crate::gate::TRANSFER_INCOMPLETE,
                format!("{what}: {m}; transfer aborted"),
            );
        }
    };
    let body = verified_checked(
        Ecosystem::PyPI.osv_name(),
        resp.bytes_stream(),
        digest,
        Checks { length },
        on_failure,
    );
    let mut r = Response::new(body);
    *r.headers_mut() = out_headers;
    r
}
