//! Audit and policy benchmarks (issue 5). Run:
//!
//! ```text
//! cargo bench -p pkggate --bench audit
//! ```
//!
//! * audit throughput (lines/s) under `batch`, `never` and `always`, many producers, one
//!   event per `record` call as the gates send them;
//! * request latency with audit on vs off: `Gate::decide_one` (the artifact gate's decision
//!   with a stub intelligence source) with the real writer vs a sink that discards;
//! * policy evaluation of a 3,000-version document with every rule on, through
//!   `Gate::decide_package` (intel stub, policy, audit summary) and the bare
//!   `PackagePolicy::evaluate` loop.
//!
//! Plain timing loops with percentiles on a shared machine: read ratios to the targets.

use futures_util::future::BoxFuture;
use pkggate::audit::{AuditError, AuditEvent, AuditLog, AuditOptions, AuditSink, AuditStatus};
use pkggate::config::AuditFsync;
use pkggate::gate::{Gate, RequestInfo, RequestKind, VersionInput};
use pkggate::intel::{EcoState, Finding, IntelSource, IntelStatus, PackageFindings, PackageIntel};
use pkggate::policy_state::PolicyHandle;
use pkggate_formats::Ecosystem::{self, Npm};
use pkggate_formats::osv::AdvisoryKind;
use pkggate_policy::{Fact, Policy};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn event(task: usize, seq: usize) -> AuditEvent {
    AuditEvent {
        ts: "2026-01-01T00:00:00Z".into(),
        action: "allow".into(),
        ecosystem: "npm".into(),
        package: format!("package-{task}"),
        version: format!("1.0.{seq}"),
        rule: "default".into(),
        reason: "no_rule_matched".into(),
        source: None,
        request_kind: "tarball".into(),
        client_ip: "10.1.2.3".into(),
        request_id: format!("{task:08x}{seq:08x}"),
        user_agent: Some("npm/11.0.0 node/v22.0.0 linux x64 workspaces/false".into()),
        policy_revision: "0123456789abcdef".into(),
        intel_revision: "fedcba9876543210".into(),
        counts: None,
    }
}

async fn throughput(fsync: AuditFsync, producers: usize, per: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = Arc::new(
        AuditLog::start(AuditOptions {
            max_bytes: 0,
            ..AuditOptions::new(path.to_str().unwrap(), fsync)
        })
        .unwrap(),
    );
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..producers {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            for s in 0..per {
                log.record(vec![event(t, s)]).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    log.flush().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let lines = producers * per;
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(log.status().lines_written as usize, lines);
    println!(
        "audit throughput fsync={fsync:?} producers={producers}: {lines} lines in {secs:.3}s = {:.0} lines/s ({:.1} MB/s)",
        lines as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

/// Discards everything (audit "off").
struct NullAudit;

impl AuditSink for NullAudit {
    fn record(&self, _events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async { Ok(()) })
    }
    fn status(&self) -> AuditStatus {
        AuditStatus::default()
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A stub intelligence source: `every`-th version has a finding (every 3rd of those
/// malicious, the rest with a CVSS score).
struct StubIntel {
    every: usize,
}

impl IntelSource for StubIntel {
    fn package<'a>(
        &'a self,
        _eco: Ecosystem,
        _name: &'a str,
        versions: &'a [&'a str],
    ) -> BoxFuture<'a, PackageIntel> {
        Box::pin(async move {
            let mut f = PackageFindings::empty(versions.len());
            for i in (0..versions.len()).filter(|i| i % self.every == 0) {
                let malicious = (i / self.every).is_multiple_of(3);
                f.add(
                    i,
                    Finding {
                        id: format!("GHSA-{i:04}"),
                        kind: if malicious {
                            AdvisoryKind::Malicious
                        } else {
                            AdvisoryKind::Vulnerability
                        },
                        aliases: vec![format!("CVE-2024-{i:05}")],
                        score: (!malicious).then_some(5.0 + (i % 50) as f32 / 10.0),
                        severity: None,
                        summary: None,
                    },
                );
            }
            PackageIntel {
                findings: f,
                status: IntelStatus::Available {
                    age_seconds: Some(60),
                },
                revision: "bench".into(),
            }
        })
    }
    fn states(&self) -> Vec<EcoState> {
        Vec::new()
    }
}

const NOW: i64 = 1_800_000_000;

/// Every rule on, with globs, ranges, exemptions, expiring entries and monitor modes.
const EVERY_RULE: &str = r#"
fail_closed: true
block_malicious: true
max_cvss_score: 7.0
min_package_age_days: 3
min_package_age_exempt: ["@corp/*", "left-*"]
missing_publish_time: block
require_repository_url: true
deny_lifecycle_scripts: true
unknown_facts: block
internal_namespaces: ["@corp/*", "corp-*"]
mode: enforce
rule_modes: {deny_lifecycle_scripts: monitor}
max_intel_age: 48h
allowlist:
  - "bigpkg@<0.0.5"
  - {package: "bigpkg@2.7.1", reason: "vetted", expires: "2099-01-01"}
  - "other-*"
denylist:
  - "bigpkg@>=9.0.0 <9.0.3"
  - "bigpkg@1.2.3"
  - {package: "evil-*", reason: "typosquats"}
  - "bigpkg@^11.5.0"
ecosystems:
  npm: {min_package_age_days: 1.5, denylist: ["bigpkg@7.7.7"]}
"#;

fn document(n: usize) -> Vec<VersionInput> {
    (0..n)
        .map(|i| VersionInput {
            version: format!("{}.{}.{}", i / 250, (i / 10) % 25, i % 10),
            published_unix: Some(NOW - 86400 * (n - i) as i64 / 10),
            repository_url: if i % 11 == 0 {
                Fact::Absent
            } else {
                Fact::Present("git+https://github.com/x/bigpkg.git".into())
            },
            lifecycle_scripts: if i % 13 == 0 {
                Fact::Present(vec!["postinstall".into()])
            } else {
                Fact::Absent
            },
        })
        .collect()
}

fn req(kind: RequestKind) -> RequestInfo {
    RequestInfo {
        request_id: "0123456789abcdef".into(),
        client_ip: "10.1.2.3".into(),
        user_agent: Some("npm/11".into()),
        kind,
    }
}

fn gate(audit: Arc<dyn AuditSink>) -> Gate {
    Gate {
        intel: Arc::new(StubIntel { every: 60 }),
        policy: PolicyHandle::fixed(Policy::from_yaml(EVERY_RULE, "bench.yaml").unwrap()),
        audit,
        clock: Arc::new(|| NOW),
        audit_allowed_each: false,
    }
}

async fn latency(label: &str, g: &Gate, iters: usize) -> (Duration, Duration) {
    let v = VersionInput {
        version: "3.4.5".into(),
        published_unix: Some(NOW - 30 * 86400),
        repository_url: Fact::Present("https://github.com/x/y".into()),
        lifecycle_scripts: Fact::Absent,
    };
    let r = req(RequestKind::Tarball);
    for _ in 0..1000 {
        g.decide_one(Npm, "bigpkg", &v, &r).await.unwrap();
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        g.decide_one(Npm, "bigpkg", &v, &r).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "decide_one latency, audit {label}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        us(p50),
        us(p99),
        us(*times.last().unwrap())
    );
    (p50, p99)
}

async fn policy_document(g: &Gate) {
    let doc = document(3000);
    let r = req(RequestKind::Metadata);
    let mut times = Vec::new();
    let mut blocked = 0;
    let mut warned = 0;
    for i in 0..230 {
        let t = Instant::now();
        let v = g.decide_package(Npm, "bigpkg", &doc, &r).await.unwrap();
        let e = t.elapsed();
        if i >= 30 {
            times.push(e);
        }
        blocked = v.removed.len();
        warned = v.warned;
    }
    times.sort();
    println!(
        "policy, 3,000-version document, every rule on, through Gate::decide_package: p50 {:.0} µs, p99 {:.0} µs ({blocked} blocked, {warned} warned)",
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
    );
    // The pure evaluation alone (no intel stub, no audit).
    let policy = Policy::from_yaml(EVERY_RULE, "bench.yaml").unwrap();
    let intel = pkggate_policy::IntelStatus::Available;
    let facts: Vec<pkggate_policy::VersionFacts<'_>> = doc
        .iter()
        .map(|v| pkggate_policy::VersionFacts {
            version: &v.version,
            published_unix: v.published_unix,
            repository_url: match &v.repository_url {
                Fact::Present(s) => Fact::Present(s.as_str()),
                Fact::Absent => Fact::Absent,
                Fact::Unknown => Fact::Unknown,
            },
            lifecycle_scripts: match &v.lifecycle_scripts {
                Fact::Present(s) => Fact::Present(s.as_slice()),
                Fact::Absent => Fact::Absent,
                Fact::Unknown => Fact::Unknown,
            },
            findings: &[],
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..230 {
        let t = Instant::now();
        let d = policy.evaluate_many(Npm, "bigpkg", NOW, &intel, &facts);
        times.push(t.elapsed());
        std::hint::black_box(d);
    }
    times.sort();
    println!(
        "policy, 3,000-version document, every rule on, Policy::evaluate_many alone: p50 {:.0} µs, p99 {:.0} µs",
        us(percentile(&times[30..], 0.5)),
        us(percentile(&times[30..], 0.99))
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        throughput(AuditFsync::Batch, 8, 62_500).await;
        throughput(AuditFsync::Batch, 64, 7_813).await;
        throughput(AuditFsync::Never, 8, 62_500).await;
        throughput(AuditFsync::Always, 64, 300).await;

        let off = gate(Arc::new(NullAudit));
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn AuditSink> = Arc::new(
            AuditLog::start(AuditOptions::new(
                dir.path().join("audit.log").to_str().unwrap(),
                AuditFsync::Batch,
            ))
            .unwrap(),
        );
        let on = gate(log.clone());
        latency("off (discarding sink)", &off, 50_000).await;
        latency("on (batch)", &on, 50_000).await;
        let dir2 = tempfile::tempdir().unwrap();
        let always = gate(Arc::new(
            AuditLog::start(AuditOptions::new(
                dir2.path().join("audit.log").to_str().unwrap(),
                AuditFsync::Always,
            ))
            .unwrap(),
        ));
        latency("on (always)", &always, 2_000).await;
        log.flush().await.unwrap();

        policy_document(&off).await;
        policy_document(&on).await;
    });
}
