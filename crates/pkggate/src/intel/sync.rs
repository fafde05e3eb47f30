//! One refresh of one ecosystem (fetch + ingest + atomic replace), and the background loop
//! that repeats it every `MIRROR_REFRESH_SECONDS`, each ecosystem independently, with
//! exponential backoff after failures.

use super::ingest::{Records, dir_revision};
use super::now_unix;
use super::source::{self, BundleSource, Fetched, LocalBundle, Validators};
use super::store::{BundleMeta, EcoState, IntelStore, ReplaceStats};
use pkggate_formats::Ecosystem;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Progress of a sync, for the CLI's progress bar or log lines.
#[derive(Debug, Clone, Copy)]
pub enum SyncProgress {
    Downloading { bytes: u64, total: Option<u64> },
    Ingesting { done: u64, total: u64 },
}

pub type ProgressFn = Arc<dyn Fn(SyncProgress) + Send + Sync>;

/// What a sync did.
#[derive(Debug, Clone)]
pub enum SyncOutcome {
    /// The source confirmed nothing changed (HTTP 304 or the same bundle hash).
    Unchanged(EcoState),
    Replaced(ReplaceStats, EcoState),
}

/// Settings of a sync.
#[derive(Clone)]
pub struct SyncOptions {
    pub max_bundle_bytes: u64,
    pub progress: Option<ProgressFn>,
}

/// Refresh `eco` from `spec` once. Any failure is recorded in the state (last error,
/// consecutive failures) and the previous data keeps serving.
pub async fn sync_ecosystem(
    store: &Arc<IntelStore>,
    client: &reqwest::Client,
    eco: Ecosystem,
    spec: &str,
    opts: &SyncOptions,
) -> anyhow::Result<SyncOutcome> {
    let result = sync_inner(store, client, eco, spec, opts).await;
    if let Err(e) = &result {
        let msg = format!("{e:#}");
        store.record_failure(eco, now_unix(), &msg)?;
    }
    result
}

async fn sync_inner(
    store: &Arc<IntelStore>,
    client: &reqwest::Client,
    eco: Ecosystem,
    spec: &str,
    opts: &SyncOptions,
) -> anyhow::Result<SyncOutcome> {
    let source = BundleSource::parse(spec)?;
    let state = store.state(eco);
    // Validators only make sense for the same source and when data is present.
    let validators =
        if state.loaded() && state.source.as_deref() == Some(source.describe().as_str()) {
            Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            }
        } else {
            Validators::default()
        };
    let tmp_dir = store
        .path()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let progress = opts.progress.clone();
    let on_bytes = move |bytes: u64, total: Option<u64>| {
        if let Some(p) = &progress {
            p(SyncProgress::Downloading { bytes, total });
        }
    };
    let fetched = source::fetch(
        client,
        &source,
        &validators,
        &tmp_dir,
        opts.max_bundle_bytes,
        &on_bytes,
    )
    .await?;
    let now = now_unix();
    let (bundle, sha256, etag, last_modified) = match fetched {
        Fetched::NotModified => {
            let meta = BundleMeta {
                etag: validators.etag,
                last_modified: validators.last_modified,
                ..Default::default()
            };
            return Ok(SyncOutcome::Unchanged(
                store.record_unchanged(eco, now, &meta)?,
            ));
        }
        Fetched::Bundle {
            bundle,
            sha256,
            etag,
            last_modified,
        } => (bundle, sha256, etag, last_modified),
    };
    let store = store.clone();
    let progress = opts.progress.clone();
    let describe = source.describe();
    tokio::task::spawn_blocking(move || -> anyhow::Result<SyncOutcome> {
        let revision = match (&sha256, &bundle) {
            (Some(s), _) => s.clone(),
            (None, LocalBundle::Dir(d)) => dir_revision(d)?,
            (None, _) => anyhow::bail!("internal: bundle without a revision"),
        };
        let meta = BundleMeta {
            revision: revision.clone(),
            source: describe,
            etag,
            last_modified,
        };
        let state = store.state(eco);
        if state.loaded() && state.revision.as_deref() == Some(revision.as_str()) {
            return Ok(SyncOutcome::Unchanged(
                store.record_unchanged(eco, now, &meta)?,
            ));
        }
        let mut records = Records::open(&bundle)?;
        let total = records.len_hint() as u64;
        let mut done = 0u64;
        let mut iter = std::iter::from_fn(|| {
            let item = records.next()?;
            done += 1;
            if let Some(p) = &progress
                && (done.is_multiple_of(512) || done == total)
            {
                p(SyncProgress::Ingesting { done, total });
            }
            Some(item)
        });
        let (stats, state) = store.replace(eco, now, &meta, &mut iter)?;
        drop(bundle);
        Ok(SyncOutcome::Replaced(stats, state))
    })
    .await?
}

/// Delay before the next attempt after `failures` consecutive failures: 30 s doubling,
/// never more than the refresh interval.
pub fn backoff(failures: u32, refresh: Duration) -> Duration {
    let base = Duration::from_secs(30);
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(refresh)
}

/// The background refresh of every enabled ecosystem. Stops when `shutdown` turns true.
pub fn spawn_refresh(
    store: Arc<IntelStore>,
    client: reqwest::Client,
    sources: Vec<(Ecosystem, String)>,
    refresh: Duration,
    max_bundle_bytes: u64,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    sources
        .into_iter()
        .map(|(eco, spec)| {
            let store = store.clone();
            let client = client.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                // Data that is still fresh and came from the configured source waits out the
                // rest of its interval first; anything else refreshes at once.
                let state = store.state(eco);
                let same_source = BundleSource::parse(&spec).ok().map(|s| s.describe()) == state.source;
                let mut delay = match state.age_seconds(now_unix()) {
                    Some(age) if same_source && state.loaded() && (age as u64) < refresh.as_secs() => {
                        refresh - Duration::from_secs(age as u64)
                    }
                    _ => Duration::ZERO,
                };
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                    if *shutdown.borrow() {
                        return;
                    }
                    let opts = SyncOptions { max_bundle_bytes, progress: None };
                    let sync = sync_ecosystem(&store, &client, eco, &spec, &opts);
                    let result = tokio::select! {
                        r = sync => r,
                        _ = shutdown.changed() => return,
                    };
                    delay = match result {
                        Ok(SyncOutcome::Replaced(stats, _)) => {
                            tracing::info!(ecosystem = %eco, records = stats.records, skipped = stats.skipped, withdrawn = stats.withdrawn, "mirror refreshed");
                            refresh
                        }
                        Ok(SyncOutcome::Unchanged(_)) => {
                            tracing::info!(ecosystem = %eco, "mirror unchanged");
                            refresh
                        }
                        Err(e) => {
                            let failures = store.state(eco).consecutive_failures;
                            let d = backoff(failures, refresh);
                            tracing::warn!(ecosystem = %eco, error = %format!("{e:#}"), retry_in_s = d.as_secs(), "mirror refresh failed; previous data keeps serving");
                            d
                        }
                    };
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let h = Duration::from_secs(3600);
        assert_eq!(backoff(1, h), Duration::from_secs(30));
        assert_eq!(backoff(2, h), Duration::from_secs(60));
        assert_eq!(backoff(5, h), Duration::from_secs(480));
        assert_eq!(backoff(40, h), h);
        assert_eq!(backoff(3, Duration::from_secs(45)), Duration::from_secs(45));
    }
}
