//! Evaluation: one package's view of the policy, then one decision per version.

use crate::entry::{NamePattern, PVer, python_list_repr};
use crate::load::{CompiledEntry, EcoPolicy};
use crate::model::{
    Action, Decision, Fact, IntelStatus, Mode, OnUnknown, Outcome, Rule, TraceStep, VersionFacts,
};
use pkggate_formats::Ecosystem;
use std::borrow::Cow;

/// The policy as it applies to one package (ecosystem + name) at one instant and intel
/// state: name patterns, list entries and expiry are resolved once here, so deciding each of
/// a document's versions costs only version comparisons and fact checks.
#[derive(Debug)]
pub struct PackagePolicy<'a> {
    eco: Ecosystem,
    pol: &'a EcoPolicy,
    now_unix: i64,
    intel: &'a IntelStatus,
    internal: Option<&'a NamePattern>,
    exempt: Option<&'a NamePattern>,
    deny: Vec<&'a CompiledEntry>,
    allow: Vec<&'a CompiledEntry>,
    expired_deny: Vec<&'a CompiledEntry>,
    expired_allow: Vec<&'a CompiledEntry>,
    needs_version: bool,
}

/// Unknown-fact and monitor bookkeeping for one evaluation.
struct Run<'t> {
    trace: Option<&'t mut Vec<TraceStep>>,
    monitored: Option<(Rule, Cow<'static, str>, Option<String>)>,
}

impl Run<'_> {
    fn note(&mut self, rule: Rule, outcome: Outcome, detail: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(TraceStep {
                rule: rule.as_str(),
                outcome,
                detail: detail(),
            });
        }
    }

    /// A rule wants to block. Enforced: the decision. Monitored: remembered (the first one
    /// becomes the `warn` decision if nothing enforced blocks later) and `None`.
    fn block(
        &mut self,
        mode: Mode,
        rule: Rule,
        reason: Cow<'static, str>,
        source: Option<String>,
        detail: impl FnOnce() -> String,
    ) -> Option<Decision> {
        match mode {
            Mode::Enforce => {
                self.note(rule, Outcome::Matched, detail);
                Some(Decision {
                    action: Action::Block,
                    rule: rule.as_str(),
                    reason,
                    source,
                    trace: Vec::new(),
                })
            }
            Mode::Monitor => {
                self.note(rule, Outcome::Monitored, || {
                    format!(
                        "{} (monitor mode: not blocking; reason `{reason}`)",
                        detail()
                    )
                });
                if self.monitored.is_none() {
                    self.monitored = Some((rule, reason, source));
                }
                None
            }
        }
    }

    /// Evaluation ends in an allow (allowlist or default): `warn` if a monitored rule would
    /// have blocked.
    fn allow(
        &mut self,
        rule: Rule,
        reason: Cow<'static, str>,
        source: Option<String>,
        detail: impl FnOnce() -> String,
    ) -> Decision {
        self.note(rule, Outcome::Matched, detail);
        match self.monitored.take() {
            Some((rule, reason, source)) => Decision {
                action: Action::Warn,
                rule: rule.as_str(),
                reason,
                source,
                trace: Vec::new(),
            },
            None => Decision {
                action: Action::Allow,
                rule: rule.as_str(),
                reason,
                source,
                trace: Vec::new(),
            },
        }
    }
}

/// `7` → `7`, `0.5` → `0.5`.
fn fmt_days(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

/// f32 scores (one decimal in CVSS) compared with an f64 threshold: a tolerance below f32's
/// rounding error, so a score of 6.1 meets a threshold of 6.1.
const SCORE_EPSILON: f64 = 1e-4;

impl<'a> PackagePolicy<'a> {
    pub(crate) fn new(
        eco: Ecosystem,
        pol: &'a EcoPolicy,
        name: &str,
        now_unix: i64,
        intel: &'a IntelStatus,
    ) -> PackagePolicy<'a> {
        let norm = eco.normalize_name(name);
        let norm: &str = &norm;
        let mut pp = PackagePolicy {
            eco,
            pol,
            now_unix,
            intel,
            internal: pol.internal.iter().find(|p| p.matches(norm)),
            exempt: pol.exempt.iter().find(|p| p.matches(norm)),
            deny: Vec::new(),
            allow: Vec::new(),
            expired_deny: Vec::new(),
            expired_allow: Vec::new(),
            needs_version: false,
        };
        for (src, live, expired) in [
            (&pol.deny, &mut pp.deny, &mut pp.expired_deny),
            (&pol.allow, &mut pp.allow, &mut pp.expired_allow),
        ] {
            for e in src.iter().filter(|e| e.name.matches(norm)) {
                if e.expires_at.is_some_and(|at| now_unix >= at) {
                    expired.push(e);
                } else {
                    live.push(e);
                }
            }
        }
        pp.needs_version = pp
            .deny
            .iter()
            .chain(&pp.allow)
            .chain(&pp.expired_deny)
            .chain(&pp.expired_allow)
            .any(|e| e.version.needs_version());
        pp
    }

    /// Decide one version (no trace: the fast path).
    pub fn evaluate(&self, facts: &VersionFacts<'_>) -> Decision {
        self.run(facts, None)
    }

    /// Decide one version and record every rule consulted in `Decision::trace`.
    pub fn explain(&self, facts: &VersionFacts<'_>) -> Decision {
        let mut trace = Vec::with_capacity(10);
        let mut d = self.run(facts, Some(&mut trace));
        d.trace = trace;
        d
    }

    fn run(&self, f: &VersionFacts<'_>, trace: Option<&mut Vec<TraceStep>>) -> Decision {
        let s = &self.pol.settings;
        let mut r = Run {
            trace,
            monitored: None,
        };

        // 1. internal_namespace (dependency-confusion guard).
        match self.internal {
            Some(p) => {
                if let Some(d) = r.block(
                    self.pol.mode(Rule::InternalNamespace),
                    Rule::InternalNamespace,
                    Cow::Owned(format!("internal namespace: {}", p.text)),
                    Some(p.text.to_string()),
                    || format!("name matches internal namespace `{}`; never served from a public upstream", p.text),
                ) {
                    return d;
                }
            }
            None => r.note(Rule::InternalNamespace, Outcome::NotMatched, || {
                format!(
                    "no internal namespace matches ({} configured)",
                    self.pol.internal.len()
                )
            }),
        }

        let parsed = if self.needs_version {
            PVer::parse(self.eco, f.version)
        } else {
            PVer::Unparsed
        };
        let hit = |e: &CompiledEntry| e.version.matches(f.version, &parsed);
        let expired_note = |r: &mut Run<'_>, rule: Rule, list: &[&CompiledEntry]| {
            for e in list.iter().filter(|e| hit(e)) {
                r.note(rule, Outcome::Skipped, || {
                    format!(
                        "entry `{}` matches but expired ({})",
                        e.name.text,
                        e.expires_text.as_deref().unwrap_or("")
                    )
                });
            }
        };

        // 2. denylist.
        expired_note(&mut r, Rule::Denylist, &self.expired_deny);
        match self.deny.iter().find(|e| hit(e)) {
            Some(e) => {
                if let Some(d) = r.block(
                    self.pol.mode(Rule::Denylist),
                    Rule::Denylist,
                    Cow::Owned(format!("explicit denylist entry: {}", e.name.text)),
                    Some(e.name.text.to_string()),
                    || entry_detail(e),
                ) {
                    return d;
                }
            }
            None => r.note(Rule::Denylist, Outcome::NotMatched, || {
                "no denylist entry matches".into()
            }),
        }

        // 3. allowlist.
        expired_note(&mut r, Rule::Allowlist, &self.expired_allow);
        if let Some(e) = self.allow.iter().find(|e| hit(e)) {
            return r.allow(
                Rule::Allowlist,
                Cow::Owned(format!("explicit allowlist entry: {}", e.name.text)),
                Some(e.name.text.to_string()),
                || entry_detail(e),
            );
        }
        r.note(Rule::Allowlist, Outcome::NotMatched, || {
            "no allowlist entry matches".into()
        });

        // 4. intel availability (only when an intel rule is on).
        let intel_rules = s.block_malicious || s.max_cvss_score.is_some();
        let mut intel_ok = true;
        match self.intel {
            _ if !intel_rules => r.note(Rule::IntelUnavailable, Outcome::Skipped, || {
                "no intel rule enabled".into()
            }),
            IntelStatus::Available => r.note(Rule::IntelUnavailable, Outcome::NotMatched, || {
                "intel available".into()
            }),
            IntelStatus::Unavailable { why } => {
                intel_ok = false;
                if s.fail_closed {
                    if let Some(d) = r.block(
                        self.pol.mode(Rule::IntelUnavailable),
                        Rule::IntelUnavailable,
                        Cow::Borrowed("intel_unavailable"),
                        Some(why.clone()),
                        || format!("intel unavailable ({why}) and fail_closed: true"),
                    ) {
                        return d;
                    }
                } else {
                    r.note(Rule::IntelUnavailable, Outcome::Skipped, || {
                        format!(
                            "intel unavailable ({why}); fail_closed: false, intel rules skipped"
                        )
                    });
                }
            }
        }

        // 5. block_malicious.
        if !s.block_malicious {
            r.note(Rule::BlockMalicious, Outcome::Skipped, || "disabled".into());
        } else if !intel_ok {
            r.note(Rule::BlockMalicious, Outcome::Skipped, || {
                "intel unavailable".into()
            });
        } else {
            match f.findings.iter().find(|x| x.malicious) {
                Some(x) => {
                    if let Some(d) = r.block(
                        self.pol.mode(Rule::BlockMalicious),
                        Rule::BlockMalicious,
                        Cow::Borrowed("osv_malicious_advisory"),
                        Some(x.id.clone()),
                        || format!("malicious-package advisory {}", x.id),
                    ) {
                        return d;
                    }
                }
                None => r.note(Rule::BlockMalicious, Outcome::NotMatched, || {
                    format!(
                        "no malicious advisory among {} finding(s)",
                        f.findings.len()
                    )
                }),
            }
        }

        // 6. block_cvss_score: the highest score meeting the threshold (first on ties).
        match s.max_cvss_score {
            None => r.note(Rule::BlockCvssScore, Outcome::Skipped, || {
                "disabled (max_cvss_score: null)".into()
            }),
            Some(_) if !intel_ok => r.note(Rule::BlockCvssScore, Outcome::Skipped, || {
                "intel unavailable".into()
            }),
            Some(t) => {
                let mut best: Option<(f64, &crate::Finding)> = None;
                for x in f.findings {
                    if let Some(sc) = x.score.map(f64::from).filter(|v| v.is_finite())
                        && sc + SCORE_EPSILON >= t
                        && best.is_none_or(|(b, _)| sc > b)
                    {
                        best = Some((sc, x));
                    }
                }
                match best {
                    Some((sc, x)) => {
                        if let Some(d) = r.block(
                            self.pol.mode(Rule::BlockCvssScore),
                            Rule::BlockCvssScore,
                            Cow::Owned(format!(
                                "CVSS score {sc:.1} meets or exceeds threshold {t:.1}"
                            )),
                            Some(x.id.clone()),
                            || {
                                if x.aliases.is_empty() {
                                    format!("advisory {} scores {sc:.1}", x.id)
                                } else {
                                    format!(
                                        "advisory {} ({}) scores {sc:.1}",
                                        x.id,
                                        x.aliases.join(", ")
                                    )
                                }
                            },
                        ) {
                            return d;
                        }
                    }
                    None => r.note(Rule::BlockCvssScore, Outcome::NotMatched, || {
                        format!("no finding scores {t:.1} or more")
                    }),
                }
            }
        }

        // 6b. unknown_version: the caller could not tell which version this is.
        if !f.version.is_empty() {
            r.note(Rule::UnknownVersion, Outcome::NotMatched, || {
                "version known".into()
            });
        } else if s.unknown_version == OnUnknown::Allow {
            r.note(Rule::UnknownVersion, Outcome::Skipped, || {
                "version unknown; unknown_version: allow".into()
            });
        } else if let Some(d) = r.block(
            self.pol.mode(Rule::UnknownVersion),
            Rule::UnknownVersion,
            Cow::Borrowed("version unknown: the filename does not tell it"),
            None,
            || "version unknown; unknown_version: block".into(),
        ) {
            return d;
        }

        // 7. min_package_age_days.
        let min_days = s.min_package_age_days;
        if min_days <= 0.0 {
            r.note(Rule::MinPackageAgeDays, Outcome::Skipped, || {
                "disabled".into()
            });
        } else if let Some(p) = self.exempt {
            r.note(Rule::MinPackageAgeDays, Outcome::Skipped, || {
                format!("exempt by `{}`", p.text)
            });
        } else {
            match f.published_unix {
                None => match s.missing_publish_time {
                    OnUnknown::Allow => r.note(Rule::MinPackageAgeDays, Outcome::Skipped, || {
                        "publish time unknown; missing_publish_time: allow".into()
                    }),
                    OnUnknown::Block => {
                        if let Some(d) = r.block(
                            self.pol.mode(Rule::MinPackageAgeDays),
                            Rule::MinPackageAgeDays,
                            Cow::Owned(format!(
                                "publish time unknown, minimum is {}d",
                                fmt_days(min_days)
                            )),
                            None,
                            || "publish time unknown; missing_publish_time: block".into(),
                        ) {
                            return d;
                        }
                    }
                },
                Some(p) => {
                    let age = self.now_unix.saturating_sub(p);
                    if (age as f64) < min_days * 86_400.0 {
                        if let Some(d) = r.block(
                            self.pol.mode(Rule::MinPackageAgeDays),
                            Rule::MinPackageAgeDays,
                            Cow::Owned(format!(
                                "version published {}d ago, minimum is {}d",
                                age.div_euclid(86_400),
                                fmt_days(min_days)
                            )),
                            None,
                            || format!("published {age}s ago"),
                        ) {
                            return d;
                        }
                    } else {
                        r.note(Rule::MinPackageAgeDays, Outcome::NotMatched, || {
                            format!(
                                "published {}d ago, minimum is {}d",
                                age.div_euclid(86_400),
                                fmt_days(min_days)
                            )
                        });
                    }
                }
            }
        }

        // 8. require_repository_url.
        if !s.require_repository_url {
            r.note(Rule::RequireRepositoryUrl, Outcome::Skipped, || {
                "disabled".into()
            });
        } else {
            let (outcome, reason): (Option<&str>, &'static str) = match f.repository_url {
                Fact::Present(u) if !u.trim().is_empty() => (Some(u), ""),
                Fact::Present(_) | Fact::Absent => (None, "missing_repository_url"),
                Fact::Unknown => (None, "repository_url_unknown"),
            };
            match outcome {
                Some(u) => r.note(Rule::RequireRepositoryUrl, Outcome::NotMatched, || {
                    format!("repository {u}")
                }),
                None if reason == "repository_url_unknown"
                    && s.unknown_facts == OnUnknown::Allow =>
                {
                    r.note(Rule::RequireRepositoryUrl, Outcome::Skipped, || {
                        "repository URL unknown; unknown_facts: allow".into()
                    })
                }
                None => {
                    if let Some(d) = r.block(
                        self.pol.mode(Rule::RequireRepositoryUrl),
                        Rule::RequireRepositoryUrl,
                        Cow::Borrowed(reason),
                        None,
                        || reason.replace('_', " "),
                    ) {
                        return d;
                    }
                }
            }
        }

        // 9. deny_lifecycle_scripts.
        if !s.deny_lifecycle_scripts {
            r.note(Rule::DenyLifecycleScripts, Outcome::Skipped, || {
                "disabled".into()
            });
        } else {
            match f.lifecycle_scripts {
                Fact::Present(list) if !list.is_empty() => {
                    if let Some(d) = r.block(
                        self.pol.mode(Rule::DenyLifecycleScripts),
                        Rule::DenyLifecycleScripts,
                        Cow::Owned(format!(
                            "declares lifecycle scripts: {}",
                            python_list_repr(list)
                        )),
                        None,
                        || format!("declares {}", list.join(", ")),
                    ) {
                        return d;
                    }
                }
                Fact::Present(_) | Fact::Absent => {
                    r.note(Rule::DenyLifecycleScripts, Outcome::NotMatched, || {
                        "no lifecycle scripts".into()
                    })
                }
                Fact::Unknown => match s.unknown_facts {
                    OnUnknown::Allow => {
                        r.note(Rule::DenyLifecycleScripts, Outcome::Skipped, || {
                            "lifecycle scripts unknown; unknown_facts: allow".into()
                        })
                    }
                    OnUnknown::Block => {
                        if let Some(d) = r.block(
                            self.pol.mode(Rule::DenyLifecycleScripts),
                            Rule::DenyLifecycleScripts,
                            Cow::Borrowed("lifecycle_scripts_unknown"),
                            None,
                            || "lifecycle scripts unknown; unknown_facts: block".into(),
                        ) {
                            return d;
                        }
                    }
                },
            }
        }

        r.allow(
            Rule::Default,
            Cow::Borrowed("no_rule_matched"),
            None,
            || "no rule blocked".into(),
        )
    }
}

fn entry_detail(e: &CompiledEntry) -> String {
    let mut s = format!("entry `{}` matches", e.name.text);
    if let Some(r) = &e.reason {
        s.push_str(&format!("; reason: {r}"));
    }
    if let Some(x) = &e.expires_text {
        s.push_str(&format!("; expires {x}"));
    }
    s
}
