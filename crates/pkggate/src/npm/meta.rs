//! The metadata gate: upstream packuments fetched once per document (single-flight),
//! decided per version, rendered filtered, and kept as cached views that stay valid while
//! the upstream content, the policy revision, the intelligence revision and time-dependent
//! decisions stay the same. Also the per-package fact cache the artifact gate reads.
//!
//! Cold path of a big document: it is scanned while it arrives ([`PackumentScanner`], fed
//! after every chunk), read without a second pass ([`Packument::parse_scanned`]; the
//! reference [`Packument::parse`] when the scanner did not take it, which also gives the exact
//! error of a malformed document), its facts read on two threads, the fact cache entry built
//! and the output buffer prepared while the decision is made, then rendered.

use super::cache::{Flights, Lru, Weigh};
use crate::budget::DocBudget;
use crate::gate::{GateError, RequestInfo, VersionInput};
use crate::server::{AppState, json_response, not_found};
use crate::upstream::UpstreamError;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use pkggate_formats::Ecosystem;
use pkggate_formats::npm::{
    NpmDocError, Packument, PackumentScan, PackumentScanner, RenderOptions, Representation,
    VersionFacts, escaped_name,
};
use pkggate_policy::{Action, Decision, Fact, FactNeeds, Policy};
use serde_json::json;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, oneshot};

const NPM: Ecosystem = Ecosystem::Npm;

/// `Accept` pkggate sends upstream for each form.
pub(crate) fn upstream_accept(u: Representation) -> &'static str {
    match u {
        Representation::Full => "application/json",
        Representation::Abbreviated => {
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
        }
    }
}

/// Why a document could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("upstream answered HTTP {status} for {url}")]
    UpstreamStatus { status: u16, url: String },
    #[error("package not found upstream")]
    NotFound,
    #[error("upstream sent an invalid npm document for {name}: {source}")]
    BadDocument {
        name: String,
        #[source]
        source: NpmDocError,
    },
    #[error("upstream sent the document of {found:?} when asked for {asked:?}")]
    WrongName { asked: String, found: String },
    /// A [`MetaError::BadDocument`] or [`MetaError::WrongName`] passed on to another waiter
    /// (its message).
    #[error("{0}")]
    Unusable(String),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl MetaError {
    pub fn response(&self) -> Response {
        match self {
            MetaError::Upstream(e) => e.response(),
            MetaError::NotFound => not_found(),
            MetaError::Gate(e) => e.response(),
            MetaError::Internal(_) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": format!("pkggate_error: {self}")}),
            ),
            MetaError::UpstreamStatus { .. }
            | MetaError::BadDocument { .. }
            | MetaError::WrongName { .. }
            | MetaError::Unusable(_) => {
                let mut r = json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({"error": crate::upstream::redact_userinfo(&format!("upstream_error: {self}"))}),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                r
            }
        }
    }
}

pub(crate) type Shared<T> = Result<T, Arc<MetaError>>;

/// An upstream document as fetched.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Bytes,
    pub etag: Option<HeaderValue>,
    /// The structure of `body`, learnt while it arrived (`None`: the scanner did not take
    /// it; [`Packument::parse_scanned`] then reads it the reference way, errors included).
    pub scan: Option<PackumentScan>,
}

impl Fetched {
    /// The document, read with the structure learnt while it arrived.
    fn parse(&self) -> Result<Packument<'_>, NpmDocError> {
        Packument::parse_scanned(&self.body, self.scan.as_ref())
    }
}

enum Fetch {
    NotModified,
    Doc(Arc<Fetched>),
}

/// What the artifact gate keeps per version.
#[derive(Debug, Clone, Default)]
pub(crate) struct VerFacts {
    pub published_unix: Option<i64>,
    pub repository: Fact<String>,
    pub scripts: Fact<Vec<String>>,
    pub tarball: Option<String>,
    pub integrity: Option<String>,
    pub shasum: Option<String>,
}

impl VerFacts {
    pub fn input(&self, version: &str) -> VersionInput {
        VersionInput {
            version: version.to_string(),
            published_unix: self.published_unix,
            repository_url: self.repository.clone(),
            lifecycle_scripts: self.scripts.clone(),
        }
    }
}

/// The facts of one package, from its last parsed document.
#[derive(Debug)]
pub(crate) struct PkgFacts {
    /// From an abbreviated document: publish time, repository and scripts are unknown.
    pub abbreviated: bool,
    pub versions: HashMap<String, VerFacts>,
    weight: usize,
}

impl Weigh for Arc<PkgFacts> {
    fn weight(&self) -> usize {
        self.weight
    }
}

/// Parse npm's `time` values: RFC 3339 with `Z` or an offset and any number of fraction
/// digits (`2011-03-15T23:03:37.402Z`, `2024-01-01T00:00:00+00:00`).
pub fn parse_time(s: &str) -> Option<i64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    // Drop the fraction (more digits than `time` takes, or an odd count) and retry.
    let dot = s.find('.')?;
    let rest = &s[dot + 1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let trimmed = format!("{}{}", &s[..dot], &rest[digits..]);
    OffsetDateTime::parse(&trimmed, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The policy inputs of one version as a document tells them.
pub(crate) fn ver_facts(f: &VersionFacts, abbreviated: bool) -> VerFacts {
    VerFacts {
        published_unix: f.published.as_deref().and_then(parse_time),
        repository: match (&f.repository, abbreviated) {
            (Some(r), _) => Fact::Present(r.clone()),
            (None, true) => Fact::Unknown,
            (None, false) => Fact::Absent,
        },
        scripts: match f.has_install_script {
            Some(true) if f.install_scripts.is_empty() => {
                Fact::Present(vec!["hasInstallScript".to_string()])
            }
            Some(true) => Fact::Present(f.install_scripts.clone()),
            Some(false) => Fact::Absent,
            None => Fact::Unknown,
        },
        tarball: f.tarball_url.clone(),
        integrity: f.integrity.clone(),
        shasum: f.shasum.clone(),
    }
}

fn pkg_facts(facts: Vec<VersionFacts>, abbreviated: bool) -> PkgFacts {
    let vers = facts.iter().map(|f| ver_facts(f, abbreviated)).collect();
    pkg_facts_of(facts, vers, abbreviated)
}

/// The fact cache entry from a document's facts and their [`ver_facts`] (same order).
fn pkg_facts_of(facts: Vec<VersionFacts>, vers: Vec<VerFacts>, abbreviated: bool) -> PkgFacts {
    let mut weight = 128;
    let versions = facts
        .into_iter()
        .zip(vers)
        .map(|(f, v)| {
            weight += 160
                + f.version.len() * 2
                + f.repository.as_ref().map_or(0, String::len)
                + f.tarball_url.as_ref().map_or(0, String::len)
                + f.integrity.as_ref().map_or(0, String::len)
                + f.shasum.as_ref().map_or(0, String::len);
            (f.version, v)
        })
        .collect();
    PkgFacts {
        abbreviated,
        versions,
        weight,
    }
}

/// A rendered answer for one (package, representation).
pub enum Outcome {
    Doc {
        bytes: Bytes,
        gz: OnceCell<Bytes>,
        /// Strong validator of the identity body (the gzip ETag derives from it).
        etag_base: String,
        blocked: usize,
        repr: Representation,
    },
    /// No version is left: 403 with the first blocking decision.
    Blocked { version: String, decision: Decision },
}

/// A cached view and what it is valid for.
pub struct View {
    upstream_repr: Representation,
    content_key: String,
    upstream_etag: Option<HeaderValue>,
    policy_rev: String,
    intel_sig: String,
    valid_until: i64,
    created: Instant,
    pub outcome: Outcome,
    /// The audit lines of the decision this view was rendered from, and the request that
    /// wrote them: every other request served from the view writes them again as its own.
    pub audit: Arc<[crate::audit::AuditEvent]>,
    pub built_by: String,
}

impl Weigh for Arc<View> {
    fn weight(&self) -> usize {
        // The kept audit lines: ~0.5 KB each (one per blocked or warned version, a summary).
        512 + self.audit.len() * 512
            + match &self.outcome {
                // The gzip form is usually 5% of the identity body or less.
                Outcome::Doc { bytes, .. } => bytes.len() + bytes.len() / 16,
                Outcome::Blocked { .. } => 0,
            }
    }
}

impl View {
    pub async fn gzip(&self) -> Option<Bytes> {
        let Outcome::Doc { bytes, gz, .. } = &self.outcome else {
            return None;
        };
        let bytes = bytes.clone();
        gz.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(bytes.len() / 10 + 64),
                    flate2::Compression::new(4),
                );
                e.write_all(&bytes)?;
                e.finish().map(Bytes::from)
            })
            .await
            .map_err(std::io::Error::other)?
        })
        .await
        .ok()
        .cloned()
    }
}

/// The revisions a view must match to be served.
struct Revs {
    policy: Arc<Policy>,
    intel_sig: String,
    now: i64,
}

/// A view's identity: package name, representation, public base.
type ViewKey = (String, Representation, String);

/// Adapter state shared by every request of one server.
pub struct NpmState {
    /// By (name, representation, public base).
    views: Lru<ViewKey, Arc<View>>,
    facts: Lru<String, Arc<PkgFacts>>,
    view_flights: Flights<ViewKey, Shared<Arc<View>>>,
    doc_flights: Flights<(String, Representation), Shared<Arc<Fetched>>>,
    fact_flights: Flights<String, Shared<()>>,
    /// Memory budget for documents being parsed and rendered at once.
    big_docs: DocBudget,
}

/// Default byte budget of cached views.
pub const VIEW_CACHE_BYTES: usize = 192 << 20;
/// Default byte budget of the per-package fact cache.
pub const FACT_CACHE_BYTES: usize = 64 << 20;
/// MiB of documents (weighted 3× their size) processed at once.
pub const BIG_DOC_BUDGET_MIB: u32 = crate::budget::DEFAULT_MIB;

impl Default for NpmState {
    fn default() -> Self {
        NpmState {
            views: Lru::new("npm_views", VIEW_CACHE_BYTES),
            facts: Lru::new("npm_facts", FACT_CACHE_BYTES),
            view_flights: Flights::new(),
            doc_flights: Flights::new(),
            fact_flights: Flights::new(),
            big_docs: DocBudget::new(BIG_DOC_BUDGET_MIB),
        }
    }
}

fn needs_facts(n: FactNeeds) -> bool {
    n.publish_time || n.repository_url || n.lifecycle_scripts
}

/// The form asked from upstream: the full document when the client wants it or the rules
/// need facts only the full document has.
pub(crate) fn upstream_repr(client: Representation, needs: FactNeeds) -> Representation {
    if client == Representation::Full || needs_facts(needs) {
        Representation::Full
    } else {
        Representation::Abbreviated
    }
}

/// Without the configured credentials (`Upstream` attaches them per origin).
fn upstream_url(state: &AppState, name: &str) -> Result<url::Url, MetaError> {
    let base = state.config.upstream_npm.as_str().trim_end_matches('/');
    url::Url::parse(&format!("{base}/{}", escaped_name(name)))
        .map(|u| crate::upstream::without_userinfo(&u))
        .map_err(|e| MetaError::Internal(format!("bad upstream URL for {name}: {e}")))
}

fn upstream_headers(client: &HeaderMap, u: Representation) -> HeaderMap {
    let mut h = crate::upstream::forwardable(client);
    // The client's validators are for pkggate's answers, not upstream's.
    h.remove(header::IF_NONE_MATCH);
    h.remove(header::IF_MODIFIED_SINCE);
    h.insert(header::ACCEPT, HeaderValue::from_static(upstream_accept(u)));
    h
}

async fn fetch(state: &AppState, name: &str, headers: &HeaderMap) -> Result<Fetch, MetaError> {
    let url = upstream_url(state, name)?;
    // Scan the document while it arrives (in this task, right after each chunk is appended:
    // the bytes are still in cache and nothing is copied), so that once the last byte is in
    // only the small objects are left to read.
    let mut scanner = PackumentScanner::new();
    let doc = state
        .upstream
        .get_document_observed(url.clone(), headers, |status, received| {
            if status.is_success() {
                scanner.feed(received);
            }
        })
        .await?;
    match doc.status.as_u16() {
        200..=299 => Ok(Fetch::Doc(Arc::new(Fetched {
            etag: doc.headers.get(header::ETAG).cloned(),
            scan: scanner.finish(&doc.body),
            body: doc.body,
        }))),
        304 => Ok(Fetch::NotModified),
        404 | 410 => Err(MetaError::NotFound),
        status => Err(MetaError::UpstreamStatus {
            status,
            url: url.to_string(),
        }),
    }
}

/// Versions from which a document's facts are read on two threads.
const TWO_THREAD_FACTS: usize = 512;

/// [`Packument::facts`], on two threads for documents with many versions (the other core is
/// otherwise idle while a document is read). `Err(None)`: a facts thread failed.
fn facts_of(doc: &Packument<'_>) -> Result<Vec<VersionFacts>, Option<NpmDocError>> {
    let n = doc.version_count();
    if n < TWO_THREAD_FACTS {
        return doc.facts().map_err(Some);
    }
    let mid = n / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| doc.facts_part(mid..n));
        let first = doc.facts_part(0..mid);
        let second = second.join().map_err(|_| None)?;
        doc.join_facts(vec![first, second]).map_err(Some)
    })
}

fn intel_sig(policy: &Policy, answer: &crate::intel::PackageIntel) -> String {
    use crate::intel::IntelStatus;
    let status = match &answer.status {
        IntelStatus::Available { age_seconds } => {
            match (age_seconds, policy.settings(NPM).max_intel_age_secs) {
                (Some(a), Some(m)) if *a as u64 > m => "stale".to_string(),
                _ => "ok".to_string(),
            }
        }
        IntelStatus::Unavailable { reason } => format!("unavailable:{reason}"),
    };
    format!("{}|{status}", answer.revision)
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..12])
}

impl NpmState {
    async fn revs(&self, state: &AppState, name: &str) -> Revs {
        let policy = state.policy.current();
        let answer = state.intel.package(NPM, name, &[]).await;
        Revs {
            intel_sig: intel_sig(&policy, &answer),
            policy,
            now: (state.gate.clock)(),
        }
    }

    fn view_valid(&self, state: &AppState, v: &View, revs: &Revs, u: Representation) -> bool {
        v.upstream_repr == u
            && v.policy_rev == revs.policy.revision()
            && v.intel_sig == revs.intel_sig
            && revs.now < v.valid_until
            && (!state.config.live_fallback_enabled
                || v.created.elapsed() < state.config.live_fallback_cache)
    }

    /// One unconditional upstream fetch per (package, form) at a time.
    async fn fetch_doc(
        &self,
        state: &AppState,
        name: &str,
        u: Representation,
        client: &HeaderMap,
    ) -> Shared<Arc<Fetched>> {
        let headers = upstream_headers(client, u);
        self.doc_flights
            .run((name.to_string(), u), || async {
                match fetch(state, name, &headers).await {
                    Ok(Fetch::Doc(d)) => Ok(d),
                    Ok(Fetch::NotModified) => Err(Arc::new(MetaError::UpstreamStatus {
                        status: 304,
                        url: name.to_string(),
                    })),
                    Err(e) => Err(Arc::new(e)),
                }
            })
            .await
    }

    /// The filtered view of `name` in the client's form (single-flight per view).
    pub async fn view(
        self: &Arc<Self>,
        state: &AppState,
        req: &RequestInfo,
        client: &HeaderMap,
        name: &str,
        repr: Representation,
    ) -> Shared<Arc<View>> {
        // The base written into tarball URLs can differ per request (trusted
        // `X-Forwarded-*`): it is part of the view's identity.
        let base = crate::server::public_base(state, NPM, client);
        self.view_flights
            .run((name.to_string(), repr, base.clone()), || async {
                self.build_view(state, req, client, name, repr, base)
                    .await
                    .map_err(Arc::new)
            })
            .await
    }

    async fn build_view(
        &self,
        state: &AppState,
        req: &RequestInfo,
        client: &HeaderMap,
        name: &str,
        repr: Representation,
        base: String,
    ) -> Result<Arc<View>, MetaError> {
        let revs = self.revs(state, name).await;
        let u = upstream_repr(repr, revs.policy.needs(NPM));
        let key = (name.to_string(), repr, base.clone());
        let cached = self
            .views
            .get(&key)
            .filter(|v| self.view_valid(state, v, &revs, u));
        let fetched = match cached.as_ref().and_then(|v| v.upstream_etag.clone()) {
            Some(etag) => {
                let mut h = upstream_headers(client, u);
                h.insert(header::IF_NONE_MATCH, etag);
                match fetch(state, name, &h).await {
                    Ok(Fetch::NotModified) => {
                        if let Some(v) = cached {
                            return Ok(v);
                        }
                        return Err(MetaError::Internal("304 without a cached view".into()));
                    }
                    Ok(Fetch::Doc(d)) => d,
                    Err(e) => {
                        if matches!(e, MetaError::NotFound) {
                            self.views.remove(&key);
                        }
                        return Err(e);
                    }
                }
            }
            None => {
                self.fetch_doc(state, name, u, client).await.map_err(|e| {
                    match Arc::try_unwrap(e) {
                        Ok(e) => e,
                        Err(shared) => clone_error(&shared),
                    }
                })?
            }
        };
        let content_key = match &fetched.etag {
            Some(e) => format!(
                "{}:etag:{}",
                u.as_str(),
                String::from_utf8_lossy(e.as_bytes())
            ),
            None => format!(
                "{}:sha256:{}",
                u.as_str(),
                hex::encode(sha2::Sha256::digest(&fetched.body))
            ),
        };
        if let Some(v) = cached
            && v.content_key == content_key
        {
            return Ok(v);
        }
        let view = self
            .process(state, req, name, repr, u, fetched, content_key, revs, base)
            .await?;
        let view = Arc::new(view);
        self.views.insert(key, view.clone());
        Ok(view)
    }

    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        state: &AppState,
        req: &RequestInfo,
        name: &str,
        repr: Representation,
        u: Representation,
        fetched: Arc<Fetched>,
        content_key: String,
        revs: Revs,
        base: String,
    ) -> Result<View, MetaError> {
        let _permit = self.big_docs.permit(fetched.body.len()).await;
        let (inputs_tx, inputs_rx) = oneshot::channel::<Result<Vec<VersionInput>, MetaError>>();
        let (pkg_tx, pkg_rx) = oneshot::channel::<PkgFacts>();
        let (removed_tx, removed_rx) = oneshot::channel::<HashSet<String>>();
        let doc_src = fetched.clone();
        let asked = name.to_string();
        let render_base = base.clone();
        // One parse: the blocking thread keeps the borrowed document while the decision is
        // made (building the fact cache entry meanwhile), then renders.
        let task = tokio::task::spawn_blocking(move || {
            let bad = |source| MetaError::BadDocument {
                name: asked.clone(),
                source,
            };
            let doc = match doc_src.parse() {
                Ok(d) => d,
                Err(e) => {
                    let _ = inputs_tx.send(Err(bad(e)));
                    return None;
                }
            };
            if let Some(found) = doc.name()
                && found != asked
            {
                let _ = inputs_tx.send(Err(MetaError::WrongName {
                    asked: asked.clone(),
                    found: found.to_string(),
                }));
                return None;
            }
            let facts = match facts_of(&doc) {
                Ok(f) => f,
                Err(e) => {
                    let _ = inputs_tx.send(Err(
                        e.map_or_else(|| MetaError::Internal("a facts thread failed".into()), bad)
                    ));
                    return None;
                }
            };
            let abbreviated = doc.is_abbreviated();
            let vers: Vec<VerFacts> = facts.iter().map(|f| ver_facts(f, abbreviated)).collect();
            let inputs = facts
                .iter()
                .zip(&vers)
                .map(|(f, v)| v.input(&f.version))
                .collect();
            let _ = inputs_tx.send(Ok(inputs));
            let _ = pkg_tx.send(pkg_facts_of(facts, vers, abbreviated));
            // While the decision is made: the output buffer, its pages touched (faulting in
            // a fresh buffer of a big document costs about as much as filling it).
            // (Not `vec![0; n]`: a zeroed allocation is mapped lazily.)
            let mut buf = Vec::new();
            buf.resize(doc.render_capacity(&render_base, repr), b' ');
            buf.clear();
            let removed = removed_rx.blocking_recv().ok()?;
            Some(doc.render_into(
                &RenderOptions {
                    removed: &removed,
                    tarball_base: &render_base,
                    representation: repr,
                },
                buf,
            ))
        });
        let inputs = inputs_rx
            .await
            .map_err(|_| MetaError::Internal("document parser stopped".into()))??;
        if inputs.is_empty() {
            return Err(MetaError::NotFound);
        }
        let verdict = state
            .gate
            .decide_package_kept(NPM, name, &inputs, req)
            .await;
        if let Ok(v) = &verdict {
            let _ = removed_tx.send(v.removed.clone());
        }
        // Built while the decision was made; kept whatever the decision.
        if let Ok(pkg) = pkg_rx.await {
            self.store_facts(name, pkg);
        }
        let verdict = verdict?;
        let valid_until = valid_until(&revs, &inputs, &verdict.decisions);
        let removed_sorted = {
            let mut r: Vec<&str> = verdict.removed.iter().map(String::as_str).collect();
            r.sort_unstable();
            r.join("\n")
        };
        let rendered = task
            .await
            .map_err(|e| MetaError::Internal(format!("render task failed: {e}")))?
            .ok_or_else(|| MetaError::Internal("renderer stopped".into()))?;
        let outcome = match rendered {
            Ok(r) => Outcome::Doc {
                etag_base: short_hash(&[
                    content_key.as_bytes(),
                    revs.policy.revision().as_bytes(),
                    revs.intel_sig.as_bytes(),
                    r.representation.as_str().as_bytes(),
                    removed_sorted.as_bytes(),
                    base.as_bytes(),
                ]),
                bytes: Bytes::from(r.bytes),
                gz: OnceCell::new(),
                blocked: r.removed,
                repr: r.representation,
            },
            Err(NpmDocError::NoVersionsLeft { total: 0, .. }) => return Err(MetaError::NotFound),
            Err(NpmDocError::NoVersionsLeft { .. }) => {
                let (version, decision) = inputs
                    .iter()
                    .zip(&verdict.decisions)
                    .find(|(_, d)| d.is_blocked())
                    .map(|(v, d)| (v.version.clone(), d.clone()))
                    .ok_or_else(|| MetaError::Internal("no blocking decision".into()))?;
                Outcome::Blocked { version, decision }
            }
            Err(source) => {
                return Err(MetaError::BadDocument {
                    name: name.to_string(),
                    source,
                });
            }
        };
        Ok(View {
            upstream_repr: u,
            content_key,
            upstream_etag: fetched.etag.clone(),
            policy_rev: revs.policy.revision().to_string(),
            intel_sig: revs.intel_sig,
            valid_until,
            created: Instant::now(),
            outcome,
            audit: verdict.audit.clone(),
            built_by: req.request_id.clone(),
        })
    }

    /// Bytes held by the view and fact caches (metrics, tests).
    pub fn cached_bytes(&self) -> (usize, usize) {
        (self.views.total(), self.facts.total())
    }

    fn store_facts(&self, name: &str, pkg: PkgFacts) {
        // An abbreviated document never replaces what a full one taught.
        if pkg.abbreviated
            && self
                .facts
                .get(&name.to_string())
                .is_some_and(|f| !f.abbreviated)
        {
            return;
        }
        self.facts.insert(name.to_string(), Arc::new(pkg));
    }

    /// Cached facts of one version: `(facts, from an abbreviated document)`.
    pub(crate) fn cached_facts(&self, name: &str, version: &str) -> Option<(VerFacts, bool)> {
        let p = self.facts.get(&name.to_string())?;
        p.versions.get(version).map(|v| (v.clone(), p.abbreviated))
    }

    /// Fetch and parse the document of `name` in form `u` into the fact cache (one at a
    /// time per package).
    pub(crate) async fn load_facts(
        &self,
        state: &AppState,
        client: &HeaderMap,
        name: &str,
        u: Representation,
    ) -> Shared<()> {
        self.fact_flights
            .run(name.to_string(), || async {
                let fetched = self.fetch_doc(state, name, u, client).await?;
                let _permit = self.big_docs.permit(fetched.body.len()).await;
                let asked = name.to_string();
                let pkg = tokio::task::spawn_blocking(move || {
                    let doc = fetched.parse().map_err(|source| MetaError::BadDocument {
                        name: asked.clone(),
                        source,
                    })?;
                    if let Some(found) = doc.name()
                        && found != asked
                    {
                        return Err(MetaError::WrongName {
                            asked,
                            found: found.to_string(),
                        });
                    }
                    let facts = doc.facts().map_err(|source| MetaError::BadDocument {
                        name: asked,
                        source,
                    })?;
                    Ok(pkg_facts(facts, doc.is_abbreviated()))
                })
                .await
                .map_err(|e| Arc::new(MetaError::Internal(e.to_string())))?
                .map_err(Arc::new)?;
                self.store_facts(name, pkg);
                Ok(())
            })
            .await
    }
}

/// A view stays valid until a time-dependent decision could change: a version held back by
/// the age rule comes of age, or a time-limited list entry expires.
fn valid_until(revs: &Revs, inputs: &[VersionInput], decisions: &[Decision]) -> i64 {
    let days = revs.policy.settings(NPM).min_package_age_days;
    let mut until = revs
        .policy
        .expiring_entries()
        .iter()
        .map(|e| e.expires_unix)
        .filter(|&t| t > revs.now)
        .min()
        .unwrap_or(i64::MAX);
    for (v, d) in inputs.iter().zip(decisions) {
        if d.rule == "min_package_age_days"
            && matches!(d.action, Action::Block | Action::Warn)
            && let Some(p) = v.published_unix
        {
            until = until.min(p.saturating_add((days * 86400.0).ceil() as i64));
        }
    }
    until
}

/// Errors are shared between the waiters of a flight; each gets its own copy.
pub(crate) fn clone_error(e: &MetaError) -> MetaError {
    match e {
        MetaError::Upstream(u) => MetaError::Upstream(u.clone()),
        MetaError::UpstreamStatus { status, url } => MetaError::UpstreamStatus {
            status: *status,
            url: url.clone(),
        },
        MetaError::NotFound => MetaError::NotFound,
        // Still upstream's fault (502), not pkggate's.
        e @ (MetaError::BadDocument { .. }
        | MetaError::WrongName { .. }
        | MetaError::Unusable(_)) => MetaError::Unusable(e.to_string()),
        other => MetaError::Internal(other.to_string()),
    }
}

/// How long a freshly built view may be reused without revalidation by a client.
pub(crate) fn max_age(state: &AppState) -> Duration {
    state.config.metadata_max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_times_parse() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1));
        assert_eq!(parse_time("2011-03-15T23:03:37.402Z"), Some(1300230217));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_time("1970-01-01T00:00:02.1234567890123Z"), Some(2));
        assert_eq!(parse_time("not a time"), None);
        assert_eq!(parse_time(""), None);
    }

    /// A body scanned as `fetch` does: growing prefixes, in chunks of `chunk`.
    fn scanned(body: &[u8], chunk: usize) -> Option<PackumentScan> {
        let mut scan = PackumentScanner::new();
        let mut end = 0;
        while end < body.len() {
            end = (end + chunk).min(body.len());
            scan.feed(&body[..end]);
        }
        scan.finish(body)
    }

    fn big_doc(n: usize) -> String {
        let mut s = String::from(r#"{"name":"big","dist-tags":{"latest":"1.0.0"},"versions":{"#);
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#""1.0.{i}":{{"name":"big","version":"1.0.{i}","readme":"{}","scripts":{{"postinstall":"x"}},"dist":{{"tarball":"http://u/big/-/big-1.0.{i}.tgz","integrity":"sha512-A"}}}}"#,
                "r".repeat(100)
            ));
        }
        s.push_str(r#"},"time":{"1.0.0":"2020-01-01T00:00:00.000Z"}}"#);
        s
    }

    #[test]
    fn documents_are_scanned_while_they_arrive() {
        let doc = big_doc(3000);
        for chunk in [1000, 16 << 10, 200_000] {
            let scan = scanned(doc.as_bytes(), chunk);
            assert!(scan.is_some(), "{chunk}");
            let fetched = Fetched {
                body: Bytes::from(doc.clone()),
                etag: None,
                scan,
            };
            let reference = Packument::parse(doc.as_bytes()).unwrap();
            let got = fetched.parse().unwrap();
            assert_eq!(got.facts().unwrap(), reference.facts().unwrap());
            let removed: HashSet<String> = ["1.0.7".to_string()].into();
            let opts = RenderOptions {
                removed: &removed,
                tarball_base: "http://127.0.0.1:1",
                representation: Representation::Full,
            };
            assert_eq!(got.render(&opts).unwrap(), reference.render(&opts).unwrap());
        }
    }

    #[test]
    fn malformed_documents_get_the_reference_error() {
        let doc = big_doc(3000);
        for broken in [
            doc[..doc.len() - 1].to_string(),
            doc.replacen("\"readme\":\"r", "\"readme\":\"\u{1}", 1),
            doc.replacen("1.0.2000\":{", "1.0.2000\":[", 1),
            format!("{doc} x"),
        ] {
            let scan = scanned(broken.as_bytes(), 16 << 10);
            assert!(scan.is_none());
            let fetched = Fetched {
                body: Bytes::from(broken.clone()),
                etag: None,
                scan,
            };
            let want = Packument::parse(broken.as_bytes()).unwrap_err().to_string();
            assert_eq!(fetched.parse().unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn abbreviated_facts_are_unknown() {
        let f = VersionFacts {
            version: "1.0.0".into(),
            published: None,
            install_scripts: vec![],
            has_install_script: None,
            repository: None,
            deprecated: false,
            tarball_url: None,
            integrity: None,
            shasum: None,
        };
        let v = ver_facts(&f, true);
        assert_eq!(v.repository, Fact::Unknown);
        assert_eq!(v.scripts, Fact::Unknown);
        let v = ver_facts(&f, false);
        assert_eq!(v.repository, Fact::Absent);
        let f = VersionFacts {
            has_install_script: Some(true),
            ..f
        };
        assert_eq!(
            ver_facts(&f, true).scripts,
            Fact::Present(vec!["hasInstallScript".into()])
        );
    }
}
