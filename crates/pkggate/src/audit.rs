//! The audit log: one JSON line per decision, 0.1.x fields first, in their order.
//!
//! A dedicated writer thread owns the file. Requests hand it events through a bounded queue
//! (a full queue makes them wait: back-pressure, never a dropped decision); it writes in
//! batches and syncs per `PKGGATE_AUDIT_FSYNC` (`always`: the request waits until its line
//! is on disk; `batch`: fsync after each batch; `never`). Size-based rotation keeps a number
//! of files; [`AuditSink::reopen`] reopens the path after external rotation (SIGHUP).
//! `PKGGATE_AUDIT_LOG=-` writes to stdout. A write failure makes the sink unhealthy
//! (readiness fails; with `fail_closed` the gates refuse to serve unaudited).

use crate::config::AuditFsync;
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// One decision. Field order is the wire order.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AuditEvent {
    pub ts: String,
    /// `allow`, `block` or `warn`.
    pub action: String,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub rule: String,
    pub reason: String,
    pub source: Option<String>,
    /// `metadata`, `tarball`, `simple_index`, `file`, `legacy_json`, `index`, `crate`, …
    pub request_kind: String,
    pub client_ip: String,
    pub request_id: String,
    pub user_agent: Option<String>,
    pub policy_revision: String,
    pub intel_revision: String,
    /// Counts of a document summary line (`allowed`, `blocked`, `warned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<serde_json::Value>,
}

/// Health of the sink, for readiness and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditStatus {
    pub target: String,
    pub healthy: bool,
    pub last_error: Option<String>,
    pub lines_written: u64,
    pub write_errors: u64,
    pub queue_depth: usize,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditError(pub String);

/// Where decisions go; tests inject [`MemoryAudit`].
pub trait AuditSink: Send + Sync {
    /// Queue `events` (waits while the queue is full; with `fsync=always`, until written).
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>>;
    fn status(&self) -> AuditStatus;
    /// Reopen the file (after external rotation).
    fn reopen(&self) {}
    /// Wait until everything queued so far is written.
    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>>;
}

enum Msg {
    Events(Vec<AuditEvent>, Option<oneshot::Sender<Result<(), String>>>),
    Reopen,
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Queue capacity in messages (each message is one request's events).
pub const QUEUE: usize = 8192;

pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    status: Arc<Mutex<AuditStatus>>,
    fsync: AuditFsync,
}

/// Settings of the file writer.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A path, or `-` for stdout.
    pub target: String,
    pub fsync: AuditFsync,
    /// Rotate past this size (0: never).
    pub max_bytes: u64,
    pub keep_files: u32,
}

enum Out {
    Stdout,
    File {
        path: PathBuf,
        file: File,
        size: u64,
    },
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// `audit.log` → `audit.log.1` → … → `audit.log.<keep>` (the oldest is removed).
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let name = |i: u32| PathBuf::from(format!("{}.{i}", path.display()));
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(name(keep));
    for i in (1..keep).rev() {
        if name(i).exists() {
            std::fs::rename(name(i), name(i + 1))?;
        }
    }
    std::fs::rename(path, name(1))
}

impl AuditLog {
    /// Open the target and start the writer thread. An unopenable file is an error here
    /// (start-up stops with it).
    pub fn start(opts: AuditOptions) -> std::io::Result<AuditLog> {
        let mut out = if opts.target == "-" {
            Out::Stdout
        } else {
            let path = PathBuf::from(&opts.target);
            let (file, size) = open(&path)?;
            Out::File { path, file, size }
        };
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let status = Arc::new(Mutex::new(AuditStatus {
            target: opts.target.clone(),
            healthy: true,
            ..Default::default()
        }));
        let st = status.clone();
        let fsync = opts.fsync;
        std::thread::Builder::new()
            .name("pkggate-audit".into())
            .spawn(move || {
                let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    buf.clear();
                    let mut acks = Vec::new();
                    let mut lines = 0u64;
                    let mut reopen = false;
                    for m in batch {
                        match m {
                            Msg::Events(events, ack) => {
                                for e in &events {
                                    if serde_json::to_writer(&mut buf, e).is_ok() {
                                        buf.push(b'\n');
                                        lines += 1;
                                    }
                                }
                                if let Some(a) = ack {
                                    acks.push(a);
                                }
                            }
                            Msg::Flush(a) => acks.push(a),
                            Msg::Reopen => reopen = true,
                        }
                    }
                    let result = write_batch(&mut out, &buf, fsync, &opts, reopen);
                    {
                        let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
                        s.queue_depth = QUEUE.saturating_sub(rx.capacity());
                        match &result {
                            Ok(()) => {
                                s.lines_written += lines;
                                s.healthy = true;
                                s.last_error = None;
                            }
                            Err(e) => {
                                s.write_errors += 1;
                                s.healthy = false;
                                s.last_error = Some(e.clone());
                            }
                        }
                    }
                    for a in acks {
                        let _ = a.send(result.clone());
                    }
                }
                if let Out::File { file, .. } = &out {
                    let _ = file.sync_all();
                }
            })?;
        Ok(AuditLog { tx, status, fsync })
    }
}

fn write_batch(
    out: &mut Out,
    buf: &[u8],
    fsync: AuditFsync,
    opts: &AuditOptions,
    reopen: bool,
) -> Result<(), String> {
    match out {
        Out::Stdout => {
            let mut so = std::io::stdout().lock();
            so.write_all(buf)
                .and_then(|_| so.flush())
                .map_err(|e| format!("stdout: {e}"))
        }
        Out::File { path, file, size } => {
            let err = |e: std::io::Error| format!("{}: {e}", path.display());
            if reopen
                || (opts.max_bytes > 0 && *size > 0 && *size + buf.len() as u64 > opts.max_bytes)
            {
                if !reopen {
                    let _ = file.sync_all();
                    rotate(path, opts.keep_files).map_err(err)?;
                }
                let (f, s) = open(path).map_err(err)?;
                *file = f;
                *size = s;
            }
            if buf.is_empty() {
                return Ok(());
            }
            file.write_all(buf).map_err(err)?;
            *size += buf.len() as u64;
            if fsync != AuditFsync::Never {
                file.sync_data().map_err(err)?;
            }
            Ok(())
        }
    }
}

impl AuditSink for AuditLog {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            if self.fsync == AuditFsync::Always {
                let (a, r) = oneshot::channel();
                self.tx
                    .send(Msg::Events(events, Some(a)))
                    .await
                    .map_err(|_| AuditError("writer stopped".into()))?;
                r.await
                    .map_err(|_| AuditError("writer stopped".into()))?
                    .map_err(AuditError)
            } else {
                self.tx
                    .send(Msg::Events(events, None))
                    .await
                    .map_err(|_| AuditError("writer stopped".into()))?;
                let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
                if s.healthy {
                    Ok(())
                } else {
                    Err(AuditError(s.last_error.clone().unwrap_or_default()))
                }
            }
        })
    }

    fn status(&self) -> AuditStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        s.queue_depth = QUEUE.saturating_sub(self.tx.capacity());
        s
    }

    fn reopen(&self) {
        let _ = self.tx.try_send(Msg::Reopen);
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async move {
            let (a, r) = oneshot::channel();
            self.tx
                .send(Msg::Flush(a))
                .await
                .map_err(|_| AuditError("writer stopped".into()))?;
            r.await
                .map_err(|_| AuditError("writer stopped".into()))?
                .map_err(AuditError)
        })
    }
}

/// An in-memory sink for tests.
#[derive(Default, Clone)]
pub struct MemoryAudit {
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
}

impl MemoryAudit {
    pub fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(events);
        Box::pin(async { Ok(()) })
    }

    fn status(&self) -> AuditStatus {
        AuditStatus {
            target: "memory".into(),
            healthy: true,
            ..Default::default()
        }
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async { Ok(()) })
    }
}
