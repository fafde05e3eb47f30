//! The live OSV fallback: asks OSV's `querybatch` (≤ 1,000 queries per call) about versions
//! the mirror calls clean.
//!
//! * Identical lookups in flight at the same time share one request.
//! * Answers are cached for a TTL (`LIVE_FALLBACK_CACHE_SECONDS`).
//! * A circuit breaker opens after consecutive failures and fails fast while open.
//! * A failure is returned as an error, never as "clean": the caller marks the answer
//!   unavailable and the policy's `fail_closed` decides.
//!
//! Live answers carry advisory ids only (querybatch returns no severities): `MAL-*` ids are
//! malicious, others are vulnerabilities without a score (the CVSS rule uses the mirror).

use super::Finding;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use pkggate_formats::Ecosystem;
use pkggate_formats::osv::AdvisoryKind;
use reqwest::Url;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Queries per `querybatch` call (OSV's limit).
pub const MAX_BATCH: usize = 1000;
/// Consecutive failures that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 3;
/// How long the breaker stays open.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

type Key = (Ecosystem, String, String);
type Cache = HashMap<Key, (Instant, Arc<Vec<String>>)>;
type BatchResult = Result<Arc<Vec<Vec<String>>>, String>;
type BatchFuture = Shared<BoxFuture<'static, BatchResult>>;

pub struct LiveFallback {
    client: reqwest::Client,
    batch_url: Url,
    ttl: Duration,
    cache: Mutex<Cache>,
    inflight: Mutex<HashMap<Key, (BatchFuture, usize)>>,
    breaker: Mutex<Breaker>,
    /// Requests sent (tests assert coalescing with it).
    pub requests_sent: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    results: Vec<BatchEntry>,
}

#[derive(Deserialize)]
struct BatchEntry {
    #[serde(default)]
    vulns: Vec<VulnId>,
}

#[derive(Deserialize)]
struct VulnId {
    id: String,
}

/// `https://host/v1/query` → `https://host/v1/querybatch`.
pub fn batch_url(query_url: &Url) -> Url {
    let mut u = query_url.clone();
    let path = u.path().trim_end_matches('/');
    let new = match path.rsplit_once('/') {
        Some((head, "query")) => format!("{head}/querybatch"),
        Some((_, "querybatch")) => path.to_string(),
        _ => format!("{path}/querybatch"),
    };
    u.set_path(&new);
    u
}

fn finding(id: &str) -> Finding {
    Finding {
        id: id.to_string(),
        kind: if id.starts_with("MAL-") {
            AdvisoryKind::Malicious
        } else {
            AdvisoryKind::Vulnerability
        },
        aliases: Vec::new(),
        score: None,
        severity: None,
        summary: None,
    }
}

impl LiveFallback {
    pub fn new(query_url: &Url, timeout: Duration, ttl: Duration) -> LiveFallback {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(super::source::same_origin_redirects())
            .user_agent(concat!("pkggate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        LiveFallback {
            client,
            batch_url: batch_url(query_url),
            ttl,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            breaker: Mutex::new(Breaker::default()),
            requests_sent: Default::default(),
        }
    }

    /// Findings per version (same order as `versions`), or why the live source failed.
    pub async fn query(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[&str],
    ) -> Result<Vec<Vec<Finding>>, String> {
        let now = Instant::now();
        let mut ids: Vec<Option<Arc<Vec<String>>>> = vec![None; versions.len()];
        let mut waits: Vec<(usize, BatchFuture, usize)> = Vec::new();
        let mut fresh: Vec<usize> = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            for (i, v) in versions.iter().enumerate() {
                let key = (eco, name.to_string(), v.to_string());
                if let Some((at, found)) = cache.get(&key)
                    && now.duration_since(*at) < self.ttl
                {
                    ids[i] = Some(found.clone());
                } else if let Some((fut, idx)) = inflight.get(&key) {
                    waits.push((i, fut.clone(), *idx));
                } else {
                    fresh.push(i);
                }
            }
        }
        let mut own: Vec<(Vec<usize>, BatchFuture)> = Vec::new();
        if !fresh.is_empty() {
            self.check_breaker()?;
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            for chunk in fresh.chunks(MAX_BATCH) {
                let body = serde_json::json!({
                    "queries": chunk.iter().map(|&i| serde_json::json!({
                        "package": {"name": name, "ecosystem": eco.osv_name()},
                        "version": versions[i],
                    })).collect::<Vec<_>>()
                });
                let n = chunk.len();
                let req = self.client.post(self.batch_url.clone()).json(&body);
                self.requests_sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let fut: BatchFuture = async move {
                    let resp = req
                        .send()
                        .await
                        .map_err(|e| super::source::error_chain(&e))?;
                    if !resp.status().is_success() {
                        return Err(format!("HTTP status {}", resp.status().as_u16()));
                    }
                    let parsed: BatchResponse = resp
                        .json()
                        .await
                        .map_err(|e| format!("bad querybatch answer: {e}"))?;
                    if parsed.results.len() != n {
                        return Err(format!(
                            "querybatch answered {} results for {n} queries",
                            parsed.results.len()
                        ));
                    }
                    Ok(Arc::new(
                        parsed
                            .results
                            .into_iter()
                            .map(|r| r.vulns.into_iter().map(|v| v.id).collect())
                            .collect(),
                    ))
                }
                .boxed()
                .shared();
                for (idx, &i) in chunk.iter().enumerate() {
                    inflight.insert(
                        (eco, name.to_string(), versions[i].to_string()),
                        (fut.clone(), idx),
                    );
                }
                own.push((chunk.to_vec(), fut));
            }
        }
        let mut failure: Option<String> = None;
        for (chunk, fut) in own {
            let result = fut.await;
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (idx, &i) in chunk.iter().enumerate() {
                let key = (eco, name.to_string(), versions[i].to_string());
                inflight.remove(&key);
                if let Ok(all) = &result {
                    let found = Arc::new(all.get(idx).cloned().unwrap_or_default());
                    cache.insert(key, (Instant::now(), found.clone()));
                    ids[i] = Some(found);
                }
            }
            drop((inflight, cache));
            self.record(result.is_ok());
            if let Err(e) = result {
                failure = Some(e);
            }
        }
        for (i, fut, idx) in waits {
            match fut.await {
                Ok(all) => ids[i] = Some(Arc::new(all.get(idx).cloned().unwrap_or_default())),
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(ids
            .into_iter()
            .map(|found| {
                found
                    .map(|f| f.iter().map(|id| finding(id)).collect())
                    .unwrap_or_default()
            })
            .collect())
    }

    fn check_breaker(&self) -> Result<(), String> {
        let b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            Some(t) if Instant::now() < t => Err(format!(
                "circuit open after {} consecutive failures",
                b.failures
            )),
            _ => Ok(()),
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *b = Breaker::default();
        } else {
            b.failures += 1;
            if b.failures >= BREAKER_THRESHOLD {
                b.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_url_is_the_sibling() {
        let u = |s: &str| batch_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(
            u("https://osv.example/v1/query"),
            "https://osv.example/v1/querybatch"
        );
        assert_eq!(
            u("http://127.0.0.1:9/v1/querybatch"),
            "http://127.0.0.1:9/v1/querybatch"
        );
        assert_eq!(
            u("http://127.0.0.1:9/api"),
            "http://127.0.0.1:9/api/querybatch"
        );
    }
}
