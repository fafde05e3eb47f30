//! The active policy: loaded at start-up (a broken file stops start-up), hot-reloaded by
//! polling the file (content hash, so an unchanged rewrite is free), keeping the last good
//! policy when a change is invalid or the file is deleted, and reporting that state.

use pkggate_policy::Policy;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// What readiness and metrics show about the policy.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PolicyStatus {
    pub file: String,
    pub revision: String,
    /// The file did not exist at start-up: the 0.1.x defaults apply.
    pub defaults: bool,
    pub last_reload_error: Option<String>,
    pub reload_failures: u64,
    pub reloads: u64,
}

#[derive(Clone)]
pub struct PolicyHandle {
    inner: Arc<RwLock<(Arc<Policy>, PolicyStatus)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("{0}")]
    Invalid(#[from] pkggate_policy::PolicyError),
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Load a policy file. A missing file means the 0.1.x defaults (as 0.1.x did).
pub fn load_file(path: &Path) -> Result<Option<Policy>, PolicyLoadError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(Policy::from_yaml(&text, &path.display().to_string())?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PolicyLoadError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

impl PolicyHandle {
    pub fn new(policy: Policy, file: &Path, defaults: bool) -> PolicyHandle {
        let status = PolicyStatus {
            file: file.display().to_string(),
            revision: policy.revision().to_string(),
            defaults,
            ..Default::default()
        };
        PolicyHandle {
            inner: Arc::new(RwLock::new((Arc::new(policy), status))),
        }
    }

    /// Start-up: load `file` (missing → defaults) or fail with the file's error.
    pub fn load(file: &Path) -> Result<PolicyHandle, PolicyLoadError> {
        Ok(match load_file(file)? {
            Some(p) => PolicyHandle::new(p, file, false),
            None => PolicyHandle::new(Policy::default(), file, true),
        })
    }

    /// A fixed policy (tests).
    pub fn fixed(policy: Policy) -> PolicyHandle {
        PolicyHandle::new(policy, Path::new("(inline)"), false)
    }

    pub fn current(&self) -> Arc<Policy> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    pub fn status(&self) -> PolicyStatus {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Re-read the file once. Returns true when a new policy took effect.
    pub fn reload(&self, file: &Path) -> bool {
        let result = load_file(file);
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(Some(p)) => {
                guard.1.last_reload_error = None;
                if p.revision() == guard.1.revision {
                    return false;
                }
                guard.1.revision = p.revision().to_string();
                guard.1.defaults = false;
                guard.1.reloads += 1;
                tracing::info!(revision = %guard.1.revision, file = %file.display(), "policy reloaded");
                guard.0 = Arc::new(p);
                true
            }
            Ok(None) => {
                let msg = format!(
                    "{} was deleted; keeping the last good policy",
                    file.display()
                );
                if guard.1.last_reload_error.as_deref() != Some(msg.as_str()) && !guard.1.defaults {
                    tracing::warn!("{msg}");
                    guard.1.reload_failures += 1;
                    guard.1.last_reload_error = Some(msg);
                }
                false
            }
            Err(e) => {
                let msg = e.to_string();
                if guard.1.last_reload_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!(error = %msg, "policy change rejected; keeping the last good policy");
                    guard.1.reload_failures += 1;
                    guard.1.last_reload_error = Some(msg);
                }
                false
            }
        }
    }

    /// Poll `file` every `interval` until `shutdown`.
    pub fn spawn_reloader(
        &self,
        file: PathBuf,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        tokio::spawn(async move {
            let mut last_seen: Option<(std::time::SystemTime, u64)> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                // Cheap check first; the content hash decides (rapid edits within one mtime
                // tick are caught because an unchanged stamp still re-reads every 10 polls).
                let stamp = std::fs::metadata(&file)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                let force = rand_tick();
                if stamp.is_some() && stamp == last_seen && !force {
                    continue;
                }
                last_seen = stamp;
                let f = file.clone();
                let h = handle.clone();
                let _ = tokio::task::spawn_blocking(move || h.reload(&f)).await;
            }
        })
    }
}

/// True every tenth call (per process), so a same-size edit within one mtime tick is still
/// seen within ten intervals.
fn rand_tick() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).is_multiple_of(10)
}
