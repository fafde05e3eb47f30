//! Threat intelligence: the offline OSV mirror (SQLite) and the optional live OSV fallback.
//!
//! * [`store`] keeps one ecosystem's advisories per refresh, replaced in one transaction.
//! * [`source`] fetches a bundle (http(s) with ETag/Last-Modified, a zip path, a `file://`
//!   URL or a directory of OSV JSON files) to a local file, never into memory.
//! * [`ingest`] reads records from a bundle one at a time.
//! * [`sync`] runs fetch + ingest for one ecosystem and the background refresh loop.
//! * [`live`] asks OSV's `querybatch` about versions the mirror calls clean.
//!
//! The rest of the program sees [`IntelSource`]: one call per package (every version at
//! once) or per version, answering the findings and whether intelligence was available.

pub mod ingest;
pub mod live;
pub mod source;
pub mod store;
pub mod sync;

use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;
use pkggate_formats::osv::AdvisoryKind;
use serde::Serialize;
use std::sync::Arc;

pub use store::{EcoState, IntelStore, StoreError};

/// One advisory as the decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    pub kind: AdvisoryKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// CVSS score (highest of v3/v4), or the label mapping when no vector exists.
    pub score: Option<f32>,
    /// `database_specific.severity`, when the record has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Findings for the versions of one package: `per_version[i]` indexes into `advisories`
/// for the i-th version asked about.
#[derive(Debug, Clone, Default)]
pub struct PackageFindings {
    pub advisories: Vec<Arc<Finding>>,
    pub per_version: Vec<Vec<u32>>,
    /// Some advisory covers every version of the package (a catch-all range).
    pub covers_all_versions: bool,
}

impl PackageFindings {
    pub fn empty(n: usize) -> Self {
        PackageFindings {
            advisories: Vec::new(),
            per_version: vec![Vec::new(); n],
            covers_all_versions: false,
        }
    }

    /// The findings of the i-th version.
    pub fn of(&self, i: usize) -> impl Iterator<Item = &Finding> {
        self.per_version
            .get(i)
            .into_iter()
            .flatten()
            .filter_map(|&j| self.advisories.get(j as usize).map(|a| a.as_ref()))
    }

    /// Add `finding` to the i-th version (deduplicated by id; linear in the advisories, for
    /// the few findings the live fallback adds).
    pub fn add(&mut self, i: usize, finding: Finding) {
        let j = match self.advisories.iter().position(|a| a.id == finding.id) {
            Some(j) => j,
            None => {
                self.advisories.push(Arc::new(finding));
                self.advisories.len() - 1
            }
        } as u32;
        if let Some(v) = self.per_version.get_mut(i)
            && !v.contains(&j)
        {
            v.push(j);
        }
    }
}

/// Whether the answer can be trusted as complete. Never a silent "clean": when a source
/// was needed and failed, the answer says so and the policy's fail mode decides.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IntelStatus {
    /// The mirror has data for the ecosystem; `age_seconds` since its last successful refresh.
    Available { age_seconds: Option<i64> },
    /// Intelligence is missing or failed: mirror never loaded, disabled with no live source,
    /// or the live fallback failed.
    Unavailable { reason: String },
}

/// The answer for one package.
#[derive(Debug, Clone)]
pub struct PackageIntel {
    pub findings: PackageFindings,
    pub status: IntelStatus,
    /// Changes whenever the data behind the answer changes (for validators and audit lines).
    pub revision: String,
}

/// What the gates need from intelligence; tests inject their own.
pub trait IntelSource: Send + Sync {
    /// Every version of one package in one call.
    fn package<'a>(
        &'a self,
        eco: Ecosystem,
        name: &'a str,
        versions: &'a [&'a str],
    ) -> BoxFuture<'a, PackageIntel>;
    /// State per ecosystem (readiness, metrics, `mirror status`).
    fn states(&self) -> Vec<EcoState>;
    /// Every (normalised name, advisory) whose advisory covers every version of the package
    /// (filtering whole projects out of an index). Blocking; a few thousand rows.
    fn catch_all(&self, _eco: Ecosystem) -> Vec<(String, Finding)> {
        Vec::new()
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The production [`IntelSource`]: the mirror, then (if enabled) the live fallback for
/// versions the mirror calls clean.
pub struct Intel {
    pub store: Option<Arc<IntelStore>>,
    pub live: Option<Arc<live::LiveFallback>>,
}

impl Intel {
    /// Answer from the mirror alone (blocking SQLite work, microseconds to a few ms).
    pub fn from_mirror(&self, eco: Ecosystem, name: &str, versions: &[&str]) -> PackageIntel {
        let Some(store) = &self.store else {
            let status = if self.live.is_some() {
                IntelStatus::Available { age_seconds: None }
            } else {
                IntelStatus::Unavailable {
                    reason: "intel_unavailable: mirror disabled and no live fallback".into(),
                }
            };
            return PackageIntel {
                findings: PackageFindings::empty(versions.len()),
                status,
                revision: "none".into(),
            };
        };
        let state = store.state(eco);
        let revision = state.revision.clone().unwrap_or_else(|| "empty".into());
        if !state.loaded() {
            return PackageIntel {
                findings: PackageFindings::empty(versions.len()),
                status: IntelStatus::Unavailable {
                    reason: format!("intel_unavailable: the {eco} mirror has never been loaded"),
                },
                revision,
            };
        }
        match store.lookup_package(eco, name, versions) {
            Ok(findings) => PackageIntel {
                findings,
                status: IntelStatus::Available {
                    age_seconds: state.age_seconds(now_unix()),
                },
                revision,
            },
            Err(e) => PackageIntel {
                findings: PackageFindings::empty(versions.len()),
                status: IntelStatus::Unavailable {
                    reason: format!("intel_unavailable: mirror lookup failed: {e}"),
                },
                revision,
            },
        }
    }
}

impl IntelSource for Intel {
    fn package<'a>(
        &'a self,
        eco: Ecosystem,
        name: &'a str,
        versions: &'a [&'a str],
    ) -> BoxFuture<'a, PackageIntel> {
        Box::pin(async move {
            // A package not in the compiled cache means SQLite reads and compiling its
            // ranges: on a blocking thread, not on the async worker serving other requests.
            let mut answer = match &self.store {
                Some(store) if !store.is_cached(eco, name) => {
                    let mirror = Intel {
                        store: Some(store.clone()),
                        live: self.live.clone(),
                    };
                    let owned: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
                    let name_owned = name.to_string();
                    tokio::task::spawn_blocking(move || {
                        let versions: Vec<&str> = owned.iter().map(String::as_str).collect();
                        mirror.from_mirror(eco, &name_owned, &versions)
                    })
                    .await
                    .unwrap_or_else(|e| PackageIntel {
                        findings: PackageFindings::empty(versions.len()),
                        status: IntelStatus::Unavailable {
                            reason: format!("intel_unavailable: mirror lookup failed: {e}"),
                        },
                        revision: "none".into(),
                    })
                }
                _ => self.from_mirror(eco, name, versions),
            };
            if let Some(live) = &self.live {
                let clean: Vec<usize> = (0..versions.len())
                    .filter(|&i| answer.findings.per_version[i].is_empty())
                    .collect();
                if !clean.is_empty() {
                    let asked: Vec<&str> = clean.iter().map(|&i| versions[i]).collect();
                    match live.query(eco, name, &asked).await {
                        Ok(per) => {
                            for (k, found) in per.into_iter().enumerate() {
                                for f in found {
                                    answer.findings.add(clean[k], f);
                                }
                            }
                        }
                        Err(e) => {
                            answer.status = IntelStatus::Unavailable {
                                reason: format!("intel_unavailable: live OSV failed: {e}"),
                            };
                        }
                    }
                }
            }
            answer
        })
    }

    fn states(&self) -> Vec<EcoState> {
        match &self.store {
            Some(s) => s.states(),
            None => Vec::new(),
        }
    }

    fn catch_all(&self, eco: Ecosystem) -> Vec<(String, Finding)> {
        match &self.store {
            Some(s) => s.catch_all(eco).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read catch-all advisories");
                Vec::new()
            }),
            None => Vec::new(),
        }
    }
}
