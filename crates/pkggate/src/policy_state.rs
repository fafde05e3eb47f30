//! The active policy: loaded at start-up (a broken file stops start-up), hot-reloaded by
//! polling the file, keeping the last good policy when a change is invalid or the file is
//! deleted, and reporting that state (log line, readiness detail, counters for metrics).
//!
//! The poller reads the file's bytes every interval and compares them with the bytes it saw
//! last (policy files are small), so edits within one mtime tick, same-size rewrites and
//! rapid successive edits are all seen; only changed bytes are parsed. The final state of a
//! burst of edits wins because every poll looks at the current content.

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
    /// Revision (content hash) of the policy in effect.
    pub revision: String,
    /// The file did not exist at start-up: the 0.1.x defaults apply.
    pub defaults: bool,
    /// Why the file on disk is not the policy in effect (invalid, unreadable, deleted);
    /// `None` once the file is good again.
    pub last_reload_error: Option<String>,
    /// Rejected changes (each distinct failure counts once).
    pub reload_failures: u64,
    /// Changes that took effect.
    pub reloads: u64,
    /// Times the reloader read the file (each poll or file-system event); a check that finds
    /// the same bytes costs one read and nothing else.
    pub checks: u64,
    /// Non-fatal notes of the policy in effect (`file:line:col: …`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone)]
pub struct PolicyHandle {
    inner: Arc<RwLock<(Arc<Policy>, PolicyStatus)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// `file:line:col: message`.
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
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PolicyLoadError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Policy, PolicyLoadError> {
    let name = path.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| {
        PolicyLoadError::Invalid(pkggate_policy::PolicyError {
            file: name.clone(),
            line: None,
            column: None,
            message: format!("not UTF-8: {e}"),
        })
    })?;
    Ok(Policy::from_yaml(text, &name)?)
}

fn log_warnings(p: &Policy) {
    for w in p.warnings() {
        tracing::warn!("policy: {w}");
    }
}

impl PolicyHandle {
    pub fn new(policy: Policy, file: &Path, defaults: bool) -> PolicyHandle {
        let status = PolicyStatus {
            file: file.display().to_string(),
            revision: policy.revision().to_string(),
            defaults,
            warnings: policy.warnings().to_vec(),
            ..Default::default()
        };
        PolicyHandle {
            inner: Arc::new(RwLock::new((Arc::new(policy), status))),
        }
    }

    /// Start-up: load `file` (missing → defaults) or fail with the file's error.
    pub fn load(file: &Path) -> Result<PolicyHandle, PolicyLoadError> {
        Ok(match load_file(file)? {
            Some(p) => {
                log_warnings(&p);
                PolicyHandle::new(p, file, false)
            }
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
        let result = match std::fs::read(file) {
            Ok(bytes) => Some(Ok(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e)),
        };
        self.apply(file, result)
    }

    /// Apply what reading `file` gave: `None` = the file does not exist.
    fn apply(&self, file: &Path, read: Option<std::io::Result<Vec<u8>>>) -> bool {
        let loaded = match read {
            None => Ok(None),
            Some(Ok(bytes)) => parse(file, &bytes).map(Some),
            Some(Err(source)) => Err(PolicyLoadError::Io {
                path: file.display().to_string(),
                source,
            }),
        };
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let (current, status) = &mut *guard;
        match loaded {
            Ok(Some(p)) => {
                if status.last_reload_error.take().is_some() {
                    tracing::info!(file = %file.display(), "policy file is valid again");
                }
                if p.revision() == status.revision && !status.defaults {
                    return false;
                }
                log_warnings(&p);
                status.revision = p.revision().to_string();
                status.defaults = false;
                status.reloads += 1;
                status.warnings = p.warnings().to_vec();
                tracing::info!(revision = %status.revision, file = %file.display(), "policy reloaded");
                *current = Arc::new(p);
                true
            }
            Ok(None) => {
                if status.defaults {
                    // Never had a file: the defaults stay, nothing to report.
                    return false;
                }
                let msg = format!(
                    "{} was deleted; keeping the last good policy (revision {})",
                    file.display(),
                    status.revision
                );
                if status.last_reload_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("{msg}");
                    status.reload_failures += 1;
                    status.last_reload_error = Some(msg);
                }
                false
            }
            Err(e) => {
                let msg = e.to_string();
                if status.last_reload_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!(error = %msg, revision = %status.revision, "policy change rejected; keeping the last good policy");
                    status.reload_failures += 1;
                    status.last_reload_error = Some(msg);
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
        // File watching wakes the loop at once; the interval poll stays as the fallback (a
        // watcher that cannot start, network file systems, missed events).
        let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<()>(1);
        let watcher = watch_dir(&file, wake_tx);
        tokio::spawn(async move {
            let _watcher = watcher;
            // What the last poll saw: `Some(None)` = missing, `Some(Some(bytes))` = content.
            // Starts unknown so the first poll compares with the policy in effect.
            let mut last: Option<Option<Vec<u8>>> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    Some(()) = wake_rx.recv() => {}
                    _ = shutdown.changed() => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                handle
                    .inner
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .1
                    .checks += 1;
                let f = file.clone();
                let Ok(read) = tokio::task::spawn_blocking(move || std::fs::read(&f)).await else {
                    continue;
                };
                let seen = match &read {
                    Ok(bytes) => Some(bytes.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    // Unreadable: report every poll's error kind change via apply (deduped).
                    Err(_) => {
                        last = None;
                        handle.apply(&file, Some(read));
                        continue;
                    }
                };
                if last.as_ref() == Some(&seen) {
                    continue;
                }
                last = Some(seen.clone());
                handle.apply(&file, seen.map(Ok));
            }
        })
    }
}

/// Whether a file-system event in the policy's directory can have changed the policy:
/// never a mere access (the reloader's own read of the file produces those: waking on them
/// made it read in a loop); a write to another file (an audit log beside the policy) neither;
/// any creation, removal or rename (editors and Kubernetes ConfigMaps replace the file by
/// renaming another one, e.g. `..data`) and any write to the policy file itself do.
fn may_change_policy(event: &notify::Event, name: &std::ffi::OsStr) -> bool {
    use notify::EventKind;
    use notify::event::ModifyKind;
    match &event.kind {
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Name(_)) => true,
        EventKind::Modify(_) => {
            event.paths.is_empty() || event.paths.iter().any(|p| p.file_name() == Some(name))
        }
        _ => true,
    }
}

/// Watch the policy file's directory (so replacing the file by rename, as editors and
/// Kubernetes ConfigMaps do, is seen). Events that may change the policy
/// ([`may_change_policy`]) wake the reload loop, which re-reads and compares the bytes;
/// `None` when no watcher could start (polling still works).
fn watch_dir(
    file: &Path,
    wake: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| may_change_policy(&e, &name)) {
            // A full channel already holds a wake-up: coalesce.
            let _ = wake.try_send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "policy file watching unavailable; polling only"))
    .ok()?;
    match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the policy directory; polling only");
            None
        }
    }
}
