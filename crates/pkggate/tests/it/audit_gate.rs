//! The gate's audit behaviour: volume (blocks and warnings one line each, allowed versions
//! summarised or one each), fields, fail_closed with a failing log (503), and readiness
//! with an unwritable log.

use crate::support::*;
use pkggate::audit::{AuditLog, AuditOptions, AuditSink, MemoryAudit};
use pkggate::config::{AuditFsync, Config, RawInputs};
use pkggate::env;
use pkggate::gate::{Gate, GateError, RequestInfo, RequestKind, VersionInput};
use pkggate::intel::{EcoState, IntelSource, IntelStatus, PackageFindings, PackageIntel};
use pkggate::policy_state::PolicyHandle;
use pkggate_formats::Ecosystem::{self, Npm};
use pkggate_policy::{Action, Policy};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Intelligence that knows nothing and says it is available.
pub struct CleanIntel;

impl IntelSource for CleanIntel {
    fn package<'a>(
        &'a self,
        _eco: Ecosystem,
        _name: &'a str,
        versions: &'a [&'a str],
    ) -> futures_util::future::BoxFuture<'a, PackageIntel> {
        Box::pin(async move {
            PackageIntel {
                findings: PackageFindings::empty(versions.len()),
                status: IntelStatus::Available {
                    age_seconds: Some(1),
                },
                revision: "intel-rev".into(),
            }
        })
    }

    fn states(&self) -> Vec<EcoState> {
        Vec::new()
    }
}

pub fn gate(policy: &str, audit: Arc<dyn AuditSink>, each: bool) -> Gate {
    Gate {
        intel: Arc::new(CleanIntel),
        policy: PolicyHandle::fixed(Policy::from_yaml(policy, "policy.yaml").unwrap()),
        audit,
        clock: Arc::new(|| 1_800_000_000),
        audit_allowed_each: each,
    }
}

pub fn req(kind: RequestKind) -> RequestInfo {
    RequestInfo {
        request_id: "req-1".into(),
        client_ip: "10.0.0.7".into(),
        user_agent: Some("npm/11".into()),
        kind,
    }
}

fn versions(n: usize) -> Vec<VersionInput> {
    (0..n)
        .map(|i| VersionInput::bare(&format!("1.0.{i}")))
        .collect()
}

const POLICY: &str = "denylist: [\"left-pad@1.0.1\", \"left-pad@1.0.2\"]\nmin_package_age_days: 1\nmissing_publish_time: block\nrule_modes: {min_package_age_days: monitor}\nallowlist: [\"left-pad@1.0.0\"]\n";

#[tokio::test]
async fn blocks_and_warnings_get_a_line_each_allowed_versions_a_summary() {
    let audit = MemoryAudit::default();
    let g = gate(POLICY, Arc::new(audit.clone()), false);
    let v = g
        .decide_package(Npm, "left-pad", &versions(6), &req(RequestKind::Metadata))
        .await
        .unwrap();
    // 1.0.0 allowlisted, 1.0.1-2 denied, 1.0.3-5 no publish time → monitored → warn.
    assert_eq!(v.removed.len(), 2);
    assert_eq!(v.warned, 3);
    let lines = audit.take();
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .map(|e| (e.action.as_str(), e.version.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("block", "1.0.1"),
            ("block", "1.0.2"),
            ("warn", "1.0.3"),
            ("warn", "1.0.4"),
            ("warn", "1.0.5"),
            ("allow", "*"),
        ]
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary.rule, "summary");
    assert_eq!(
        summary.counts,
        Some(serde_json::json!({"allowed": 1, "blocked": 2, "warned": 3}))
    );
    for e in &lines {
        assert_eq!(e.request_id, "req-1");
        assert_eq!(e.client_ip, "10.0.0.7");
        assert_eq!(e.user_agent.as_deref(), Some("npm/11"));
        assert_eq!(e.request_kind, "metadata");
        assert_eq!(e.policy_revision, v.policy_revision);
        assert_eq!(e.intel_revision, "intel-rev");
        assert!(e.ts.ends_with('Z'));
    }
    assert_eq!(lines[0].reason, "explicit denylist entry: left-pad@1.0.1");
    assert_eq!(lines[2].rule, "min_package_age_days");
}

#[tokio::test]
async fn allowed_each_gives_one_line_per_version() {
    let audit = MemoryAudit::default();
    let g = gate(POLICY, Arc::new(audit.clone()), true);
    g.decide_package(Npm, "left-pad", &versions(6), &req(RequestKind::Metadata))
        .await
        .unwrap();
    let lines = audit.take();
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|e| e.rule != "summary"));
    assert_eq!(lines[0].action, "allow");
    assert_eq!(lines[0].version, "1.0.0");
    // Artifact requests are always one line each, also in summary mode.
    let g = gate(POLICY, Arc::new(audit.clone()), false);
    let (d, _) = g
        .decide_one(
            Npm,
            "left-pad",
            &VersionInput::bare("1.0.0"),
            &req(RequestKind::Tarball),
        )
        .await
        .unwrap();
    assert_eq!(d.action, Action::Allow);
    let lines = audit.take();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].version.as_str(), lines[0].request_kind.as_str()),
        ("1.0.0", "tarball")
    );
}

#[tokio::test]
async fn fail_closed_refuses_when_the_log_fails() {
    let audit = MemoryAudit::default();
    audit.fail(Some("disk full"));
    let g = gate("fail_closed: true\n", Arc::new(audit.clone()), false);
    let err = g
        .decide_one(
            Npm,
            "x",
            &VersionInput::bare("1.0.0"),
            &req(RequestKind::Tarball),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, GateError::AuditUnavailable(m) if m.contains("disk full")));
    let resp = err.response();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // Per ecosystem: fail_closed off for npm serves unaudited (and logs the error).
    let g = gate(
        "fail_closed: true\necosystems: {npm: {fail_closed: false}}\n",
        Arc::new(audit.clone()),
        false,
    );
    let (d, _) = g
        .decide_one(
            Npm,
            "x",
            &VersionInput::bare("1.0.0"),
            &req(RequestKind::Tarball),
        )
        .await
        .unwrap();
    assert_eq!(d.action, Action::Allow);
    assert!(
        g.decide_one(
            Ecosystem::PyPI,
            "x",
            &VersionInput::bare("1.0"),
            &req(RequestKind::File)
        )
        .await
        .is_err()
    );
    // Healed: served and audited again.
    audit.fail(None);
    let g = gate("fail_closed: true\n", Arc::new(audit.clone()), false);
    g.decide_one(
        Npm,
        "x",
        &VersionInput::bare("1.0.0"),
        &req(RequestKind::Tarball),
    )
    .await
    .unwrap();
    assert_eq!(audit.take().len(), 1);
}

#[tokio::test]
async fn fail_closed_refuses_with_the_real_writer_on_an_unwritable_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "").unwrap();
    let target = dir.path().join("f/audit.log");
    for fsync in [AuditFsync::Batch, AuditFsync::Always, AuditFsync::Never] {
        let log = AuditLog::start(AuditOptions::new(target.to_str().unwrap(), fsync)).unwrap();
        let g = gate("{}\n", Arc::new(log), false);
        let r = g
            .decide_one(
                Npm,
                "x",
                &VersionInput::bare("1.0.0"),
                &req(RequestKind::Tarball),
            )
            .await;
        assert!(
            matches!(r, Err(GateError::AuditUnavailable(_))),
            "{fsync:?}"
        );
    }
}

fn config(dir: &std::path::Path, db: &std::path::Path, audit_log: &str) -> Arc<Config> {
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, "0".to_string()),
        (env::MIRROR_DB, db.display().to_string()),
        (
            env::OSV_BUNDLE_NPM,
            osv("npm", "sample.zip").display().to_string(),
        ),
        (env::PYPI_ENABLED, "false".into()),
        (env::CARGO_ENABLED, "false".into()),
        (env::UPSTREAM_NPM, "http://127.0.0.1:1/".into()),
        (env::AUDIT_LOG, audit_log.to_string()),
        (
            env::POLICY_FILE,
            dir.join("policy.yaml").display().to_string(),
        ),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    Arc::new(Config::load(&raw).unwrap())
}

async fn ready(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/-/pkggate/ready"))
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn readiness_reports_audit_and_policy_and_fails_on_an_unwritable_log() {
    let m = TempMirror::new();
    m.sync(Npm, osv("npm", "sample.zip").to_str().unwrap())
        .await
        .unwrap();
    let dir = m.dir.path();
    // Writable: ready, with the audit and policy detail.
    let good = dir.join("logs/audit.log");
    let running = pkggate::server::start(config(dir, &m.db_path(), good.to_str().unwrap()))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let (status, body) = ready(&base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["audit"]["healthy"], true);
    assert_eq!(body["audit"]["target"], good.to_str().unwrap());
    assert!(body["policy"]["revision"].is_string(), "{body}");
    assert_eq!(body["policy"]["defaults"], true);
    running.stop().await.unwrap();

    // Unwritable: the server starts (bind at once) but is not ready.
    std::fs::write(dir.join("blocker"), "").unwrap();
    let bad = dir.join("blocker/audit.log");
    let running = pkggate::server::start(config(dir, &m.db_path(), bad.to_str().unwrap()))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let (status, body) = ready(&base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["audit"]["healthy"], false);
    assert!(
        body["audit"]["last_error"]
            .as_str()
            .unwrap()
            .contains("blocker"),
        "{body}"
    );
    // It heals without a restart once the path is writable.
    std::fs::remove_file(dir.join("blocker")).unwrap();
    eventually(
        "readiness after the log heals",
        Duration::from_secs(10),
        async || (ready(&base).await.0 == 200).then_some(()),
    )
    .await;
    running.stop().await.unwrap();
}
