//! Prometheus metrics (`GET /metrics`, OpenMetrics text), named by Prometheus conventions.
//!
//! Counters and histograms are updated where things happen (request middleware, the gate,
//! the upstream client); gauges that mirror state (intelligence age and records, policy
//! reload failures, audit queue and errors) are read from their owners at scrape time, so
//! they can never drift. One process-wide registry: several servers in one test process
//! share it, which only adds to counters.

use crate::server::AppState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<Labels, Counter>,
    pub request_seconds: Family<Labels, Histogram>,
    pub in_flight: Gauge,
    pub decisions: Family<Labels, Counter>,
    pub upstream_seconds: Family<Labels, Histogram>,
    pub upstream_errors: Family<Labels, Counter>,
    /// Artifact bytes sent to clients, by ecosystem (`pkggate_artifact_bytes_total`).
    pub artifact_bytes: Family<Labels, Counter>,
    /// Lookups of pkggate's caches by cache and result (`hit`/`miss`).
    pub cache: Family<Labels, Counter>,
    intel_age: Family<Labels, Gauge<f64, AtomicU64>>,
    intel_records: Family<Labels, Gauge>,
    intel_loaded: Family<Labels, Gauge>,
    intel_refresh_failures: Family<Labels, Gauge>,
    policy_reload_failures: Gauge,
    policy_info: Family<Labels, Gauge>,
    audit_queue: Gauge,
    audit_write_errors: Gauge,
    audit_lines: Gauge,
}

fn histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 14))
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(histogram),
            in_flight: Gauge::default(),
            decisions: Family::default(),
            upstream_seconds: Family::new_with_constructor(histogram),
            upstream_errors: Family::default(),
            artifact_bytes: Family::default(),
            cache: Family::default(),
            intel_age: Family::default(),
            intel_records: Family::default(),
            intel_loaded: Family::default(),
            intel_refresh_failures: Family::default(),
            policy_reload_failures: Gauge::default(),
            policy_info: Family::default(),
            audit_queue: Gauge::default(),
            audit_write_errors: Gauge::default(),
            audit_lines: Gauge::default(),
        };
        r.register(
            "pkggate_requests",
            "HTTP requests by ecosystem, kind and status",
            m.requests.clone(),
        );
        r.register(
            "pkggate_request_duration_seconds",
            "HTTP request latency by ecosystem and kind",
            m.request_seconds.clone(),
        );
        r.register(
            "pkggate_requests_in_flight",
            "HTTP requests being served",
            m.in_flight.clone(),
        );
        r.register(
            "pkggate_decisions",
            "Version decisions by ecosystem, rule and action",
            m.decisions.clone(),
        );
        r.register(
            "pkggate_upstream_request_duration_seconds",
            "Upstream request latency (to the response headers) by upstream",
            m.upstream_seconds.clone(),
        );
        r.register(
            "pkggate_upstream_errors",
            "Upstream requests that failed, by upstream and kind",
            m.upstream_errors.clone(),
        );
        r.register(
            "pkggate_artifact_bytes",
            "Artifact bytes streamed to clients, by ecosystem",
            m.artifact_bytes.clone(),
        );
        r.register(
            "pkggate_cache_lookups",
            "Cache lookups by cache and result (hit or miss)",
            m.cache.clone(),
        );
        r.register(
            "pkggate_intel_age_seconds",
            "Seconds since the mirror was last confirmed current, per ecosystem",
            m.intel_age.clone(),
        );
        r.register(
            "pkggate_intel_records",
            "Advisory records in the mirror, per ecosystem",
            m.intel_records.clone(),
        );
        r.register(
            "pkggate_intel_loaded",
            "1 when the ecosystem's mirror has data",
            m.intel_loaded.clone(),
        );
        r.register(
            "pkggate_intel_refresh_failures",
            "Mirror refreshes that failed in a row (0 after a success), per ecosystem",
            m.intel_refresh_failures.clone(),
        );
        r.register(
            "pkggate_policy_reload_failures",
            "Policy changes rejected since start",
            m.policy_reload_failures.clone(),
        );
        r.register(
            "pkggate_policy_info",
            "The active policy revision (value 1)",
            m.policy_info.clone(),
        );
        r.register(
            "pkggate_audit_queue_depth",
            "Audit events waiting for the writer",
            m.audit_queue.clone(),
        );
        r.register(
            "pkggate_audit_write_errors",
            "Audit writes that failed since start",
            m.audit_write_errors.clone(),
        );
        r.register(
            "pkggate_audit_lines_written",
            "Audit lines written since start",
            m.audit_lines.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    })
}

/// Count one lookup of the cache named `cache` (`pkggate_cache_lookups_total`).
pub fn cache_lookup(cache: &'static str, hit: bool) {
    metrics()
        .cache
        .get_or_create(&labels(&[
            ("cache", cache),
            ("result", if hit { "hit" } else { "miss" }),
        ]))
        .inc();
}

/// Label set helper.
pub fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// The ecosystem and kind of a request path, for request metrics (bounded label values).
pub fn classify(path: &str) -> (&'static str, &'static str) {
    if path == "/metrics" || path.starts_with("/-/pkggate/") {
        ("pkggate", "admin")
    } else if path.starts_with("/simple") {
        ("PyPI", "simple_index")
    } else if path.starts_with("/files/") {
        ("PyPI", "file")
    } else if path.starts_with("/pypi/") {
        ("PyPI", "legacy_json")
    } else if path.starts_with("/cargo/") {
        if path.ends_with("/download") {
            ("crates.io", "crate")
        } else {
            ("crates.io", "index")
        }
    } else if path.starts_with("/-/") {
        ("npm", "service")
    } else if path.contains("/-/") && path.ends_with(".tgz") {
        ("npm", "tarball")
    } else {
        ("npm", "metadata")
    }
}

/// Render the counters and histograms as they stand, without refreshing state gauges (tests).
pub fn render_registry() -> String {
    let mut out = String::new();
    let registry = metrics().registry.lock().unwrap_or_else(|p| p.into_inner());
    if encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// Render every metric, refreshing the state gauges first.
pub fn render(state: &AppState) -> String {
    let m = metrics();
    let now = crate::intel::now_unix();
    for s in state.intel.states() {
        let l = labels(&[("ecosystem", s.ecosystem.osv_name())]);
        m.intel_records.get_or_create(&l).set(s.records as i64);
        m.intel_loaded.get_or_create(&l).set(i64::from(s.loaded()));
        m.intel_refresh_failures
            .get_or_create(&l)
            .set(i64::from(s.consecutive_failures));
        m.intel_age
            .get_or_create(&l)
            .set(s.age_seconds(now).map_or(f64::NAN, |a| a as f64));
    }
    let policy = state.policy.status();
    m.policy_reload_failures.set(policy.reload_failures as i64);
    m.policy_info.clear();
    m.policy_info
        .get_or_create(&labels(&[("revision", &policy.revision)]))
        .set(1);
    let audit = state.audit.status();
    m.audit_queue.set(audit.queue_depth as i64);
    m.audit_write_errors.set(audit.write_errors as i64);
    m.audit_lines.set(audit.lines_written as i64);
    let mut out = String::new();
    let registry = m.registry.lock().unwrap_or_else(|p| p.into_inner());
    if encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_classify_into_bounded_labels() {
        for (path, want) in [
            ("/express", ("npm", "metadata")),
            ("/@s/n/-/n-1.0.0.tgz", ("npm", "tarball")),
            ("/-/ping", ("npm", "service")),
            ("/simple/requests/", ("PyPI", "simple_index")),
            ("/files/requests/x.whl", ("PyPI", "file")),
            ("/pypi/requests/json", ("PyPI", "legacy_json")),
            ("/cargo/se/rd/serde", ("crates.io", "index")),
            (
                "/cargo/api/v1/crates/serde/1.0.0/download",
                ("crates.io", "crate"),
            ),
            ("/metrics", ("pkggate", "admin")),
            ("/-/pkggate/ready", ("pkggate", "admin")),
        ] {
            assert_eq!(classify(path), want, "{path}");
        }
    }
}
