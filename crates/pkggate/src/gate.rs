//! The decision pipeline every gate shares: intelligence for every version of a package in
//! one call, the policy's pure evaluation, audit lines, operator log lines, and the 403
//! answer. Adapters extract facts and rewrite documents; they never decide themselves.

use crate::audit::{AuditEvent, AuditSink};
use crate::intel::{IntelSource, IntelStatus as IntelAnswer};
use crate::policy_state::PolicyHandle;
use crate::server::json_response;
use crate::timefmt::rfc3339;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use pkggate_formats::Ecosystem;
use pkggate_formats::osv::AdvisoryKind;
use pkggate_policy::{Action, Decision, Fact, Finding, IntelStatus, VersionFacts};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// What kind of request a decision was made for (the audit `request_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Metadata,
    Tarball,
    SimpleIndex,
    File,
    LegacyJson,
    Index,
    Crate,
    Explain,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Metadata => "metadata",
            RequestKind::Tarball => "tarball",
            RequestKind::SimpleIndex => "simple_index",
            RequestKind::File => "file",
            RequestKind::LegacyJson => "legacy_json",
            RequestKind::Index => "index",
            RequestKind::Crate => "crate",
            RequestKind::Explain => "explain",
        }
    }

    /// Artifact requests get an audit line (and an `ALLOW` log line) even when allowed.
    pub fn is_artifact(self) -> bool {
        matches!(
            self,
            RequestKind::Tarball | RequestKind::File | RequestKind::Crate
        )
    }
}

/// Who asked.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: String,
    pub client_ip: String,
    pub user_agent: Option<String>,
    pub kind: RequestKind,
}

/// Facts an adapter found for one version.
#[derive(Debug, Clone, Default)]
pub struct VersionInput {
    pub version: String,
    pub published_unix: Option<i64>,
    pub repository_url: Fact<String>,
    pub lifecycle_scripts: Fact<Vec<String>>,
}

impl VersionInput {
    pub fn bare(version: &str) -> VersionInput {
        VersionInput {
            version: version.to_string(),
            ..Default::default()
        }
    }
}

fn fact_str(f: &Fact<String>) -> Fact<&str> {
    match f {
        Fact::Unknown => Fact::Unknown,
        Fact::Absent => Fact::Absent,
        Fact::Present(s) => Fact::Present(s.as_str()),
    }
}

fn fact_slice(f: &Fact<Vec<String>>) -> Fact<&[String]> {
    match f {
        Fact::Unknown => Fact::Unknown,
        Fact::Absent => Fact::Absent,
        Fact::Present(s) => Fact::Present(s.as_slice()),
    }
}

/// The decisions for a document.
#[derive(Debug, Clone)]
pub struct PackageVerdict {
    /// One per input version, same order.
    pub decisions: Vec<Decision>,
    /// Versions to remove from the document.
    pub removed: HashSet<String>,
    pub warned: usize,
    pub policy_revision: String,
    pub intel_revision: String,
    /// The audit lines written for this decision, when the caller asked to keep them
    /// ([`Gate::decide_package_kept`]; empty otherwise).
    pub audit: Arc<[AuditEvent]>,
}

impl PackageVerdict {
    /// A validator component: changes when the policy or the intelligence changes.
    pub fn revisions(&self) -> String {
        format!("{}:{}", self.policy_revision, self.intel_revision)
    }
}

/// The gate could not decide safely.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("audit log unavailable and fail_closed is set: {0}")]
    AuditUnavailable(String),
}

impl GateError {
    pub fn response(&self) -> Response {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": format!("pkggate_unavailable: {self}")}),
        )
    }
}

pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The audit context of one artifact download once it was allowed: what the integrity check
/// finds while streaming (`integrity_mismatch`, `integrity_unknown`) is written with the
/// request, package and revisions of the decision. One type for every ecosystem.
#[derive(Clone)]
pub struct ArtifactAudit {
    sink: Arc<dyn AuditSink>,
    clock: Clock,
    eco: Ecosystem,
    package: String,
    version: String,
    info: RequestInfo,
    policy_revision: String,
    intel_revision: String,
}

impl ArtifactAudit {
    pub fn new(
        gate: &Gate,
        eco: Ecosystem,
        package: &str,
        version: &str,
        info: RequestInfo,
        verdict: &PackageVerdict,
    ) -> ArtifactAudit {
        ArtifactAudit {
            sink: gate.audit.clone(),
            clock: gate.clock.clone(),
            eco,
            package: package.to_string(),
            version: version.to_string(),
            info,
            policy_revision: verdict.policy_revision.clone(),
            intel_revision: verdict.intel_revision.clone(),
        }
    }

    pub fn event(&self, action: &str, rule: &str, reason: String) -> AuditEvent {
        AuditEvent {
            ts: rfc3339((self.clock)()),
            action: action.into(),
            ecosystem: self.eco.osv_name().into(),
            package: self.package.clone(),
            version: self.version.clone(),
            rule: rule.into(),
            reason,
            source: None,
            request_kind: self.info.kind.as_str().into(),
            client_ip: self.info.client_ip.clone(),
            request_id: self.info.request_id.clone(),
            user_agent: self.info.user_agent.clone(),
            policy_revision: self.policy_revision.clone(),
            intel_revision: self.intel_revision.clone(),
            counts: None,
        }
    }

    /// Write one line (with the log line operators grep for when it is a block).
    pub async fn record(&self, action: &str, rule: &str, reason: String) {
        if action == "block" {
            tracing::warn!(
                "BLOCK  [{}] {}@{} rule={rule} reason={reason} source=",
                self.eco.osv_name(),
                self.package,
                self.version
            );
        }
        let e = self.event(action, rule, reason);
        if let Err(err) = self.sink.record(vec![e]).await {
            tracing::error!(error = %err, "audit write failed");
        }
    }

    /// [`ArtifactAudit::record`] from a synchronous callback (a stream's failure hook).
    pub fn record_detached(self, action: &'static str, rule: &'static str, reason: String) {
        tokio::spawn(async move { self.record(action, rule, reason).await });
    }

    /// The artifact `what` has no digest in its index: the policy's `unknown_file_hash`
    /// decides, the outcome is audited either way, and a refusal is the 403 to answer
    /// before upstream is contacted (`None`: serve it unverified).
    pub async fn unknown_digest(
        &self,
        policy: &pkggate_policy::Policy,
        what: &str,
        request_id: &str,
    ) -> Option<Response> {
        let d = unknown_digest(policy, self.eco, what);
        self.record(d.action.as_str(), d.rule, d.reason.to_string())
            .await;
        d.is_blocked().then(|| {
            let version = Some(self.version.as_str()).filter(|v| !v.is_empty());
            blocked_response(self.eco, &self.package, version, &d, request_id)
        })
    }
}

/// Rule of the audit line for an artifact transfer cut because upstream's body failed or
/// did not have the declared length (the client never receives a complete body).
pub const TRANSFER_INCOMPLETE: &str = "transfer_incomplete";

/// Rule of the audit lines and refusals for an artifact the index gives no digest for.
pub const INTEGRITY_UNKNOWN: &str = "integrity_unknown";

/// An allowed artifact whose digest the index does not give, under the policy's
/// `unknown_file_hash` for `eco`: a `block` decision (refuse before contacting upstream) or
/// an `allow` one (serve it unverified). Either way it is audited
/// ([`ArtifactAudit::unknown_digest`]).
fn unknown_digest(policy: &pkggate_policy::Policy, eco: Ecosystem, what: &str) -> Decision {
    let block = policy.settings(eco).unknown_file_hash == pkggate_policy::OnUnknown::Block;
    Decision {
        action: if block { Action::Block } else { Action::Allow },
        rule: INTEGRITY_UNKNOWN,
        reason: if block {
            format!("the index gives no digest for {what}; unknown_file_hash: block").into()
        } else {
            format!("the index gives no digest for {what}; served unverified").into()
        },
        source: None,
        trace: Vec::new(),
    }
}

pub struct Gate {
    pub intel: Arc<dyn IntelSource>,
    pub policy: PolicyHandle,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Clock,
    /// One audit line per allowed version inside documents (default: one summary line).
    pub audit_allowed_each: bool,
}

fn policy_intel(eco: Ecosystem, answer: &IntelAnswer, max_age: Option<u64>) -> IntelStatus {
    match answer {
        IntelAnswer::Available { age_seconds } => match (age_seconds, max_age) {
            (Some(age), Some(max)) if *age as u64 > max => IntelStatus::Unavailable {
                why: format!("the {eco} mirror is {age}s old, older than max_intel_age {max}s"),
            },
            _ => IntelStatus::Available,
        },
        IntelAnswer::Unavailable { reason } => IntelStatus::Unavailable {
            why: reason.clone(),
        },
    }
}

fn to_policy_finding(f: &crate::intel::Finding) -> Finding {
    Finding {
        id: f.id.clone(),
        aliases: f.aliases.clone(),
        malicious: f.kind == AdvisoryKind::Malicious,
        score: f.score,
    }
}

impl Gate {
    /// Decide every version of one package (one intelligence call, one policy compile).
    /// Blocks and warnings get an audit line each; allowed versions a summary line (or one
    /// each when configured; artifact requests always one each).
    pub async fn decide_package(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[VersionInput],
        req: &RequestInfo,
    ) -> Result<PackageVerdict, GateError> {
        self.decide(eco, name, versions, req, false).await
    }

    /// [`Gate::decide_package`], also keeping the audit lines it wrote in
    /// [`PackageVerdict::audit`], for a caller that serves the decision to later requests
    /// ([`Gate::replay_audit`]).
    pub async fn decide_package_kept(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[VersionInput],
        req: &RequestInfo,
    ) -> Result<PackageVerdict, GateError> {
        self.decide(eco, name, versions, req, true).await
    }

    async fn decide(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[VersionInput],
        req: &RequestInfo,
        keep_audit: bool,
    ) -> Result<PackageVerdict, GateError> {
        let policy = self.policy.current();
        let refs: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        let answer = self.intel.package(eco, name, &refs).await;
        let settings = policy.settings(eco);
        let status = policy_intel(eco, &answer.status, settings.max_intel_age_secs);
        let now = (self.clock)();
        let pkg = policy.package(eco, name, now, &status);
        let mut decisions = Vec::with_capacity(versions.len());
        let mut findings_buf: Vec<Finding> = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            findings_buf.clear();
            findings_buf.extend(answer.findings.of(i).map(to_policy_finding));
            let facts = VersionFacts {
                version: &v.version,
                published_unix: v.published_unix,
                repository_url: fact_str(&v.repository_url),
                lifecycle_scripts: fact_slice(&v.lifecycle_scripts),
                findings: &findings_buf,
            };
            decisions.push(pkg.evaluate(&facts));
        }
        let m = crate::metrics::metrics();
        let mut tally: std::collections::HashMap<(&'static str, &'static str), u64> =
            std::collections::HashMap::new();
        for d in &decisions {
            *tally.entry((d.rule, d.action.as_str())).or_default() += 1;
        }
        for ((rule, action), n) in tally {
            m.decisions
                .get_or_create(&crate::metrics::labels(&[
                    ("ecosystem", eco.osv_name()),
                    ("rule", rule),
                    ("action", action),
                ]))
                .inc_by(n);
        }
        let removed: HashSet<String> = versions
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| d.is_blocked())
            .map(|(v, _)| v.version.clone())
            .collect();
        let warned = decisions
            .iter()
            .filter(|d| d.action == Action::Warn)
            .count();
        let verdict = PackageVerdict {
            decisions,
            removed,
            warned,
            policy_revision: policy.revision().to_string(),
            intel_revision: answer.revision.clone(),
            audit: Arc::from(Vec::new()),
        };
        let events = self.package_events(eco, name, versions, &verdict, req);
        if !keep_audit {
            self.write(events, settings.fail_closed).await?;
            return Ok(verdict);
        }
        self.write(events.clone(), settings.fail_closed).await?;
        Ok(PackageVerdict {
            audit: events.into(),
            ..verdict
        })
    }

    /// Write the audit lines of an earlier decision again, for another request served from
    /// it (a cached or shared rendering): same decisions, this request's time, id, client
    /// and user agent. Every request that gets a document has its lines.
    pub async fn replay_audit(
        &self,
        eco: Ecosystem,
        events: &[AuditEvent],
        req: &RequestInfo,
    ) -> Result<(), GateError> {
        if events.is_empty() {
            return Ok(());
        }
        let ts = rfc3339((self.clock)());
        let again = events
            .iter()
            .map(|e| AuditEvent {
                ts: ts.clone(),
                request_kind: req.kind.as_str().to_string(),
                client_ip: req.client_ip.clone(),
                request_id: req.request_id.clone(),
                user_agent: req.user_agent.clone(),
                ..e.clone()
            })
            .collect();
        let fail_closed = self.policy.current().settings(eco).fail_closed;
        self.write(again, fail_closed).await
    }

    /// Decide one version (the artifact gate).
    pub async fn decide_one(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &VersionInput,
        req: &RequestInfo,
    ) -> Result<(Decision, PackageVerdict), GateError> {
        let verdict = self
            .decide_package(eco, name, std::slice::from_ref(version), req)
            .await?;
        let d = verdict
            .decisions
            .first()
            .cloned()
            .unwrap_or_else(|| Decision {
                action: Action::Allow,
                rule: "default",
                reason: "no_rule_matched".into(),
                source: None,
                trace: Vec::new(),
            });
        Ok((d, verdict))
    }

    /// The decision with its trace, the intelligence status and the findings (explanations).
    pub async fn explain(
        &self,
        eco: Ecosystem,
        name: &str,
        v: &VersionInput,
    ) -> (Decision, IntelStatus, Vec<crate::intel::Finding>, String) {
        let policy = self.policy.current();
        let answer = self.intel.package(eco, name, &[v.version.as_str()]).await;
        let status = policy_intel(eco, &answer.status, policy.settings(eco).max_intel_age_secs);
        let found: Vec<crate::intel::Finding> = answer.findings.of(0).cloned().collect();
        let findings: Vec<Finding> = found.iter().map(to_policy_finding).collect();
        let facts = VersionFacts {
            version: &v.version,
            published_unix: v.published_unix,
            repository_url: fact_str(&v.repository_url),
            lifecycle_scripts: fact_slice(&v.lifecycle_scripts),
            findings: &findings,
        };
        let d = policy
            .package(eco, name, (self.clock)(), &status)
            .explain(&facts);
        (d, status, found, policy.revision().to_string())
    }

    fn event(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &str,
        d: &Decision,
        req: &RequestInfo,
        verdict: &PackageVerdict,
    ) -> AuditEvent {
        AuditEvent {
            ts: rfc3339((self.clock)()),
            action: d.action.as_str().to_string(),
            ecosystem: eco.osv_name().to_string(),
            package: name.to_string(),
            version: version.to_string(),
            rule: d.rule.to_string(),
            reason: d.reason.to_string(),
            source: d.source.clone(),
            request_kind: req.kind.as_str().to_string(),
            client_ip: req.client_ip.clone(),
            request_id: req.request_id.clone(),
            user_agent: req.user_agent.clone(),
            policy_revision: verdict.policy_revision.clone(),
            intel_revision: verdict.intel_revision.clone(),
            counts: None,
        }
    }

    /// The audit lines of one decided document (and the log lines operators grep).
    fn package_events(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[VersionInput],
        verdict: &PackageVerdict,
        req: &RequestInfo,
    ) -> Vec<AuditEvent> {
        let mut events = Vec::new();
        let each = self.audit_allowed_each || req.kind.is_artifact();
        for (v, d) in versions.iter().zip(&verdict.decisions) {
            match d.action {
                Action::Block | Action::Warn => {
                    tracing::warn!(
                        "{}  [{}] {}@{} rule={} reason={} source={}",
                        if d.action == Action::Block {
                            "BLOCK"
                        } else {
                            "WARN "
                        },
                        eco.osv_name(),
                        name,
                        v.version,
                        d.rule,
                        d.reason,
                        d.source.as_deref().unwrap_or("")
                    );
                    events.push(self.event(eco, name, &v.version, d, req, verdict));
                }
                Action::Allow if each => {
                    if req.kind.is_artifact() {
                        tracing::info!(
                            "ALLOW  [{}] {} {}@{}",
                            eco.osv_name(),
                            req.kind.as_str(),
                            name,
                            v.version
                        );
                    }
                    events.push(self.event(eco, name, &v.version, d, req, verdict));
                }
                Action::Allow => {}
            }
        }
        if !each {
            let blocked = verdict.removed.len();
            let allowed = versions.len() - blocked - verdict.warned;
            let summary = Decision {
                action: Action::Allow,
                rule: "summary",
                reason: format!(
                    "{allowed} versions allowed, {blocked} blocked, {} warned",
                    verdict.warned
                )
                .into(),
                source: None,
                trace: Vec::new(),
            };
            let mut e = self.event(eco, name, "*", &summary, req, verdict);
            e.counts =
                Some(json!({"allowed": allowed, "blocked": blocked, "warned": verdict.warned}));
            events.push(e);
        }
        events
    }

    async fn write(&self, events: Vec<AuditEvent>, fail_closed: bool) -> Result<(), GateError> {
        match self.audit.record(events).await {
            Ok(()) => Ok(()),
            Err(e) if fail_closed => Err(GateError::AuditUnavailable(e.0)),
            Err(e) => {
                tracing::error!(error = %e, "audit write failed; serving anyway (fail_closed is off)");
                Ok(())
            }
        }
    }
}

/// The SPEC §2.3 answer for a blocked artifact or package: 403, JSON, `no-store`, the
/// reason readable in `error` (npm and yarn 1 print it) and machine-readable fields beside.
pub fn blocked_response(
    eco: Ecosystem,
    name: &str,
    version: Option<&str>,
    d: &Decision,
    request_id: &str,
) -> Response {
    let shown = d.source.as_deref().unwrap_or(&d.reason);
    let body = json!({
        "error": format!("blocked_by_pkggate: {} {}", d.rule, shown),
        "package": name,
        "version": version,
        "ecosystem": eco.osv_name(),
        "rule": d.rule,
        "reason": d.reason,
        "source": d.source,
        "request_id": request_id,
    });
    let mut r = json_response(StatusCode::FORBIDDEN, body);
    if let Ok(v) =
        HeaderValue::from_str(&format!("{} {}", d.rule, shown).replace(['\r', '\n'], " "))
    {
        r.headers_mut().insert("x-pkggate-reason", v);
    }
    r
}
