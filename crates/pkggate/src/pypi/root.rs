//! `GET|HEAD /simple/`: upstream's root index streamed through
//! [`RootFilter`] (at most 64 KiB held back; the 40 MB page is never buffered), without the
//! projects that are blocked outright.
//!
//! "Blocked outright" is decided per project name with the policy on the pseudo-version `*`
//! and counts only when the deciding rule concerns the whole project: `internal_namespace`,
//! `denylist` (an entry for every version), `block_malicious` / `block_cvss_score` with the
//! advisories that cover every version. Those advisories come from the mirror: once per
//! intelligence revision, the names with a catch-all advisory are read through
//! [`crate::intel::IntelSource::catch_all`] into a map (a few thousand names). Per link the
//! cost is one hash lookup and [`Policy::lists_may_name`]; the policy is evaluated only for
//! names that have a catch-all finding or that a list names.
//!
//! Links to upstream's own root URL (absolute, or root-relative when upstream's path is not
//! `/simple/`) are made relative to the root, so they lead to pkggate's project pages;
//! PyPI's own `/simple/<name>/` links pass unchanged.
//!
//! Upstream is asked for HTML (streamable). If it answers JSON anyway (an upstream that
//! serves only PEP 691 JSON), the JSON root is buffered (up to `PKGGATE_MAX_DOCUMENT_BYTES`),
//! filtered and answered in the representation the client asked for: JSON as is
//! (`filter_root_json`), HTML written from it (`root_json_to_html`).

use super::{Shared, context, lock, upstream_status};
use crate::intel::IntelSource;
use crate::server::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use pkggate_formats::Ecosystem;
use pkggate_formats::pypi::{
    RootFilter, SimpleFormat, filter_root_json, negotiate, root_json_to_html,
};
use pkggate_policy::{Action, Fact, Finding, IntelStatus, Policy, VersionFacts};
use std::collections::HashMap;
use std::sync::Arc;

/// Names with an advisory covering every version, per intelligence revision.
#[derive(Clone)]
pub struct BlockSet {
    revision: String,
    pub(crate) catch_all: Arc<HashMap<String, Vec<Finding>>>,
}

/// The catch-all advisories of PyPI, by normalised name, from the intelligence seam.
pub fn read_catch_all(intel: &dyn crate::intel::IntelSource) -> HashMap<String, Vec<Finding>> {
    let mut out: HashMap<String, Vec<Finding>> = HashMap::new();
    for (name, f) in intel.catch_all(Ecosystem::PyPI) {
        out.entry(name).or_default().push(Finding {
            malicious: f.kind == pkggate_formats::osv::AdvisoryKind::Malicious,
            id: f.id,
            aliases: f.aliases,
            score: f.score,
        });
    }
    out
}

pub(crate) async fn block_set(intel: &Arc<dyn IntelSource>, shared: &Shared) -> BlockSet {
    let revision = intel
        .states()
        .into_iter()
        .find(|s| s.ecosystem == Ecosystem::PyPI)
        .and_then(|s| s.revision)
        .unwrap_or_default();
    let current = |shared: &Shared| {
        lock(&shared.root_set)
            .as_ref()
            .filter(|b| b.revision == revision)
            .cloned()
    };
    if let Some(b) = current(shared) {
        return b;
    }
    // Single-flight: a read of the mirror takes ~10 ms (6,500 rows with the full PyPI data),
    // and every request after a new revision would otherwise make its own.
    let _loading = shared.root_set_load.lock().await;
    if let Some(b) = current(shared) {
        return b;
    }
    let catch_all = if revision.is_empty() {
        HashMap::new()
    } else {
        let intel = intel.clone();
        tokio::task::spawn_blocking(move || read_catch_all(intel.as_ref()))
            .await
            .unwrap_or_default()
    };
    let b = BlockSet {
        revision,
        catch_all: Arc::new(catch_all),
    };
    *lock(&shared.root_set) = Some(b.clone());
    b
}

/// Whether the whole project is blocked (see the module doc).
pub fn blocked_outright(
    policy: &Policy,
    catch_all: &HashMap<String, Vec<Finding>>,
    name: &str,
    now: i64,
) -> bool {
    let findings = catch_all.get(name).map(Vec::as_slice).unwrap_or(&[]);
    // Most names: no finding and no list naming them, so no rule can block them whole.
    if findings.is_empty() && !policy.lists_may_name(Ecosystem::PyPI, name) {
        return false;
    }
    decides_whole_project(policy, findings, name, now)
}

/// The policy's decision on the pseudo-version `*`, and whether its rule concerns the whole
/// project.
fn decides_whole_project(policy: &Policy, findings: &[Finding], name: &str, now: i64) -> bool {
    static AVAILABLE: IntelStatus = IntelStatus::Available;
    let d = policy
        .package(Ecosystem::PyPI, name, now, &AVAILABLE)
        .evaluate(&VersionFacts {
            version: "*",
            published_unix: Some(0),
            repository_url: Fact::Unknown,
            lifecycle_scripts: Fact::Absent,
            findings,
        });
    d.action == Action::Block
        && matches!(
            d.rule,
            "internal_namespace" | "denylist" | "block_malicious" | "block_cvss_score"
        )
}

/// `GET|HEAD /simple/`.
pub async fn serve_root(state: AppState, shared: Arc<Shared>, req: Request) -> Response {
    let _ctx = context(&req);
    let format = negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let url = crate::upstream::as_directory(&state.config.pypi_upstream_simple);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/vnd.pypi.simple.v1+html, text/html;q=0.9"),
    );
    let set = block_set(&state.intel, &shared).await;
    let policy = state.policy.current();
    let now = (state.gate.clock)();
    let (resp, _) = match state
        .upstream
        .send(reqwest::Method::GET, url.clone(), &headers)
        .await
    {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    if !resp.status().is_success() {
        return upstream_status(url.as_str(), resp.status());
    }
    let upstream_format = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(SimpleFormat::from_media_type);
    let max_age = format!("max-age={}", state.config.metadata_max_age.as_secs());
    let blocked = {
        let policy = policy.clone();
        let catch_all = set.catch_all.clone();
        move |name: &str| blocked_outright(&policy, &catch_all, name, now)
    };
    if upstream_format == Some(SimpleFormat::Json) {
        let limit = state.config.max_document_bytes;
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return super::bad_upstream(url.as_str(), "the root index transfer failed");
            };
            if (body.len() + chunk.len()) as u64 > limit {
                return super::bad_upstream(url.as_str(), "the JSON root index is too large");
            }
            body.extend_from_slice(&chunk);
        }
        // Answered in the representation the client asked for.
        let out = if format.is_html() {
            root_json_to_html(&body, blocked)
        } else {
            filter_root_json(&body, blocked)
        };
        return match out {
            Ok((out, _removed)) => {
                let mut r = Response::new(Body::from(out));
                set_headers(&mut r, format.content_type(), &max_age);
                r
            }
            Err(e) => super::bad_upstream(url.as_str(), e),
        };
    }
    let out_format = if format.is_html() {
        format
    } else {
        SimpleFormat::V1Html
    };
    struct St<F> {
        inner: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
        filter: RootFilter,
        blocked: F,
        done: bool,
    }
    // Links to upstream's own root (absolute, or root-relative under a path other than
    // ours) are made relative, so they lead to pkggate's project pages.
    let mut prefixes = vec![crate::upstream::without_userinfo(&url).to_string()];
    if url.path() != "/simple/" {
        prefixes.push(url.path().to_string());
    }
    let st = St {
        inner: resp.bytes_stream().boxed(),
        filter: RootFilter::new().rewriting(prefixes),
        blocked,
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let mut out = Vec::new();
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    st.filter.push(&chunk, &mut out, &st.blocked);
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((
                        Err(std::io::Error::other(format!(
                            "upstream root index transfer failed: {e}"
                        ))),
                        st,
                    ));
                }
                None => {
                    st.done = true;
                    st.filter.finish(&mut out, &st.blocked);
                    if st.filter.removed() > 0 {
                        tracing::debug!(removed = st.filter.removed(), "root index filtered");
                    }
                }
            }
            if !out.is_empty() {
                return Some((Ok::<_, std::io::Error>(Bytes::from(out)), st));
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    set_headers(&mut r, out_format.content_type(), &max_age);
    *r.status_mut() = StatusCode::OK;
    r
}

fn set_headers(r: &mut Response, content_type: &str, cache: &str) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_check_never_changes_the_answer() {
        let policy = Policy::from_yaml(
            "internal_namespaces: [\"corp-*\", \"secret-thing\"]\n\
             denylist: [\"evil\", \"bad-*@<2\", {package: \"old-bad\", expires: \"2001-01-01\"}]\n\
             allowlist: [\"corp-public\"]\n\
             max_cvss_score: 9\n",
            "p.yaml",
        )
        .unwrap();
        let mut catch_all = HashMap::new();
        catch_all.insert(
            "mal-pkg".to_string(),
            vec![Finding {
                id: "MAL-1".into(),
                malicious: true,
                ..Default::default()
            }],
        );
        catch_all.insert(
            "vuln-pkg".to_string(),
            vec![Finding {
                id: "GHSA-1".into(),
                score: Some(9.8),
                ..Default::default()
            }],
        );
        let now = 1_800_000_000;
        let mut blocked = Vec::new();
        for name in [
            "requests",
            "corp-tool",
            "corp-public",
            "secret-thing",
            "secret-thing2",
            "evil",
            "evil2",
            "bad-lib",
            "old-bad",
            "mal-pkg",
            "vuln-pkg",
            "django",
        ] {
            let findings = catch_all.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let full = decides_whole_project(&policy, findings, name, now);
            assert_eq!(
                blocked_outright(&policy, &catch_all, name, now),
                full,
                "{name}"
            );
            if full {
                blocked.push(name);
            }
        }
        // A range entry (`bad-*@<2`) and an expired one block no whole project; an internal
        // namespace comes before the allowlist.
        assert_eq!(
            blocked,
            [
                "corp-tool",
                "corp-public",
                "secret-thing",
                "evil",
                "mal-pkg",
                "vuln-pkg"
            ]
        );
    }

    /// Intelligence whose catch-all read counts its calls and waits at a gate the test holds.
    struct SlowIntel {
        revision: std::sync::Mutex<String>,
        reads: std::sync::atomic::AtomicUsize,
        gate: Arc<std::sync::Mutex<()>>,
    }

    impl IntelSource for SlowIntel {
        fn package<'a>(
            &'a self,
            _eco: Ecosystem,
            _name: &'a str,
            versions: &'a [&'a str],
        ) -> futures_util::future::BoxFuture<'a, crate::intel::PackageIntel> {
            Box::pin(async move {
                crate::intel::PackageIntel {
                    findings: crate::intel::PackageFindings::empty(versions.len()),
                    status: crate::intel::IntelStatus::Available { age_seconds: None },
                    revision: String::new(),
                }
            })
        }

        fn states(&self) -> Vec<crate::intel::EcoState> {
            let mut s = crate::intel::EcoState::empty(Ecosystem::PyPI);
            s.revision = Some(lock(&self.revision).clone());
            vec![s]
        }

        fn catch_all(&self, _eco: Ecosystem) -> Vec<(String, crate::intel::Finding)> {
            let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(lock(&self.gate));
            vec![(
                format!("mal-{n}"),
                crate::intel::Finding {
                    id: format!("MAL-{n}"),
                    kind: pkggate_formats::osv::AdvisoryKind::Malicious,
                    aliases: Vec::new(),
                    score: None,
                    severity: None,
                    summary: None,
                },
            )]
        }
    }

    /// Requests that arrive while the block set of a new revision is read wait for that one
    /// read instead of making their own (it is ~10 ms of SQLite with the full PyPI data).
    #[tokio::test(flavor = "current_thread")]
    // The test holds the gate across awaits on purpose: the reads (on blocking threads) wait
    // at it while every task gets to where it waits.
    #[allow(clippy::await_holding_lock)]
    async fn the_block_set_is_read_once_per_revision_however_many_ask() {
        let gate = Arc::new(std::sync::Mutex::new(()));
        let slow = Arc::new(SlowIntel {
            revision: std::sync::Mutex::new("r1".into()),
            reads: Default::default(),
            gate: gate.clone(),
        });
        let intel: Arc<dyn IntelSource> = slow.clone();
        let shared = Arc::new(Shared::new(None));
        for (revision, expect) in [("r1", "mal-0"), ("r2", "mal-1")] {
            *lock(&slow.revision) = revision.into();
            let held = lock(&gate);
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (intel, shared) = (intel.clone(), shared.clone());
                    tokio::spawn(async move { block_set(&intel, &shared).await })
                })
                .collect();
            // On one thread, yielding lets every task run up to where it waits.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            drop(held);
            for t in tasks {
                let set = t.await.unwrap();
                assert_eq!(set.revision, revision);
                assert!(set.catch_all.contains_key(expect), "{revision}");
            }
        }
        assert_eq!(slow.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
