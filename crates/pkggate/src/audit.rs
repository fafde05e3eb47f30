//! The audit log: one JSON line per decision, 0.1.x fields first, in their order.
//!
//! A dedicated writer thread owns the file. Requests hand it events through a bounded queue
//! (a full queue makes them wait: back-pressure, never a dropped decision); it writes in
//! batches (everything queued while the previous batch was written) and syncs per
//! `PKGGATE_AUDIT_FSYNC`:
//!
//! * `always`: the request waits until its lines are written and `fdatasync`ed;
//! * `batch`: the request returns once its lines are queued; the writer syncs after every
//!   batch (a crash loses at most the queued and in-flight batch);
//! * `never`: written per batch, synced by the OS.
//!
//! Size-based rotation keeps a number of files (`audit.log.1` newest … `audit.log.N`);
//! [`AuditSink::reopen`] reopens the path after external rotation (SIGHUP).
//! `PKGGATE_AUDIT_LOG=-` writes to stdout.
//!
//! Failures: a log that cannot be opened or written makes the sink unhealthy (readiness
//! fails; with `fail_closed` the gates refuse to serve unaudited, see
//! [`crate::gate::GateError::AuditUnavailable`]). Lines that could not be written are kept
//! (up to [`AuditOptions::max_pending_bytes`]) and retried every second, reopening the file,
//! so a full disk or a removed directory heals on its own; bytes are never written twice. A
//! file that does not end in a newline when opened (a crash tore its last line) gets one
//! first, so the torn line stays a line of its own that readers can skip.

use crate::config::AuditFsync;
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    /// Bytes of lines waiting for a retry after a write failure.
    pub pending_bytes: u64,
    /// Lines given up because the log stayed unwritable past `max_pending_bytes` (only
    /// possible with `fail_closed: false`, where requests are served anyway).
    pub dropped_lines: u64,
    /// Rotations done by pkggate.
    pub rotations: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditError(pub String);

/// Where decisions go; tests inject [`MemoryAudit`].
pub trait AuditSink: Send + Sync {
    /// Queue `events` (waits while the queue is full; with `fsync=always`, until written).
    /// `Err` means the log is not being written: the caller decides (fail closed or not).
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>>;
    fn status(&self) -> AuditStatus;
    /// Reopen the file (after external rotation).
    fn reopen(&self) {}
    /// Wait until everything queued so far is written.
    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>>;
    /// Visit the recent events this process kept in memory, newest first, until `visit`
    /// breaks. `false` when the sink keeps none (a file log: read the file instead). Used by
    /// the admin page when the log goes to stdout or the sink is in memory.
    fn visit_recent(&self, _visit: &mut dyn FnMut(&AuditEvent) -> ControlFlow<()>) -> bool {
        false
    }
}

/// The most recent events, bounded (the oldest fall off); for sinks without a readable file.
pub struct RecentEvents {
    cap: usize,
    events: Mutex<std::collections::VecDeque<AuditEvent>>,
}

/// Events kept by [`RecentEvents`] for a stdout log.
pub const RECENT_EVENTS: usize = 10_000;

impl RecentEvents {
    pub fn new(cap: usize) -> RecentEvents {
        RecentEvents {
            cap: cap.max(1),
            events: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    pub fn push(&self, events: &[AuditEvent]) {
        let mut q = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            if q.len() == self.cap {
                q.pop_front();
            }
            q.push_back(e.clone());
        }
    }

    /// Newest first, until `visit` breaks.
    pub fn visit(&self, visit: &mut dyn FnMut(&AuditEvent) -> ControlFlow<()>) {
        let q = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for e in q.iter().rev() {
            if visit(e).is_break() {
                break;
            }
        }
    }
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg {
    Events(Vec<AuditEvent>, Option<Ack>),
    /// Wakes the writer (the reopen itself is a flag, so a full queue cannot lose it).
    Wake,
    Flush(Ack),
}

/// Default queue capacity in messages (each message is one request's events).
pub const QUEUE: usize = 8192;

/// Settings of the file writer.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A path, or `-` for stdout.
    pub target: String,
    pub fsync: AuditFsync,
    /// Rotate before a write would take the file past this size (0: never).
    pub max_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `audit.log.<keep_files>`); 0 keeps none.
    pub keep_files: u32,
    /// Queue capacity in messages.
    pub queue: usize,
    /// Unwritten bytes kept for retry while the log fails.
    pub max_pending_bytes: usize,
}

impl AuditOptions {
    /// The defaults for `target` and `fsync`: rotate at 100 MiB keeping 10 files.
    pub fn new(target: &str, fsync: AuditFsync) -> AuditOptions {
        AuditOptions {
            target: target.to_string(),
            fsync,
            max_bytes: 100 * 1024 * 1024,
            keep_files: 10,
            queue: QUEUE,
            max_pending_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The production sink: a bounded queue in front of a dedicated writer thread.
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    status: Arc<Mutex<AuditStatus>>,
    reopen: Arc<AtomicBool>,
    fsync: AuditFsync,
    queue: usize,
    /// Recent events, kept only when the log goes to stdout (nothing to read back).
    recent: Option<Arc<RecentEvents>>,
}

/// The path of the i-th rotated file (`audit.log.3`).
pub fn rotated_path(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Open for appending; a file whose last byte is not a newline gets one (a torn line from a
/// crash must not swallow the next line).
fn open(path: &Path) -> std::io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let mut size = file.metadata()?.len();
    if size > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(size - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
            size += 1;
        }
    }
    Ok((file, size))
}

/// `audit.log` → `audit.log.1` → … → `audit.log.<keep>` (the oldest is removed).
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    match std::fs::remove_file(rotated_path(path, keep)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for i in (1..keep).rev() {
        let from = rotated_path(path, i);
        if from.exists() {
            std::fs::rename(from, rotated_path(path, i + 1))?;
        }
    }
    std::fs::rename(path, rotated_path(path, 1))
}

enum Target {
    Stdout,
    File {
        path: PathBuf,
        /// `None` after a failure or before the first successful open: (re)opened on the
        /// next write.
        file: Option<File>,
        size: u64,
    },
}

/// The writer thread's state.
struct Writer {
    target: Target,
    opts: AuditOptions,
    /// Serialized lines not yet written (a write failure keeps them here).
    pending: Vec<u8>,
    pending_lines: u64,
    status: Arc<Mutex<AuditStatus>>,
}

impl Writer {
    fn status(&self) -> std::sync::MutexGuard<'_, AuditStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&mut self, events: &[AuditEvent]) {
        for e in events {
            let mark = self.pending.len();
            match serde_json::to_writer(&mut self.pending, e) {
                Ok(()) => {
                    self.pending.push(b'\n');
                    self.pending_lines += 1;
                }
                Err(err) => {
                    // Only a non-string map key could fail; AuditEvent has none.
                    self.pending.truncate(mark);
                    tracing::error!(error = %err, "cannot serialize an audit event");
                }
            }
        }
    }

    /// Drop the newest lines while a failing log has kept more than the limit.
    fn bound_pending(&mut self) {
        if self.pending.len() <= self.opts.max_pending_bytes {
            return;
        }
        let mut cut = self.opts.max_pending_bytes;
        // Keep whole lines: cut after the last newline within the limit.
        while cut > 0 && self.pending[cut - 1] != b'\n' {
            cut -= 1;
        }
        let dropped = self.pending[cut..].iter().filter(|&&b| b == b'\n').count() as u64;
        self.pending.truncate(cut);
        self.pending_lines = self.pending_lines.saturating_sub(dropped);
        let mut s = self.status();
        s.dropped_lines += dropped;
        drop(s);
        tracing::error!(
            dropped,
            "audit log unwritable: dropped lines beyond the retry buffer"
        );
    }

    /// Write everything pending (rotating or reopening first when asked); keeps what was
    /// not written.
    fn write_pending(&mut self, reopen: bool) -> Result<(), String> {
        let result = self.try_write(reopen);
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(lines) => {
                s.lines_written += lines;
                if !s.healthy {
                    tracing::info!(log = %s.target, "audit log writable again");
                }
                s.healthy = true;
                s.last_error = None;
            }
            Err(e) => {
                if s.healthy || s.last_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "audit log write failed");
                }
                s.write_errors += 1;
                s.healthy = false;
                s.last_error = Some(e.clone());
            }
        }
        s.pending_bytes = self.pending.len() as u64;
        result.map(|_| ())
    }

    fn try_write(&mut self, reopen: bool) -> Result<u64, String> {
        let fsync = self.opts.fsync;
        match &mut self.target {
            Target::Stdout => {
                if self.pending.is_empty() {
                    return Ok(0);
                }
                let mut so = std::io::stdout().lock();
                let r = write_tracked(&mut so, &mut self.pending).and_then(|()| so.flush());
                r.map_err(|e| format!("stdout: {e}"))?;
                Ok(std::mem::take(&mut self.pending_lines))
            }
            Target::File { path, file, size } => {
                let err = |e: std::io::Error| format!("{}: {e}", path.display());
                if reopen && let Some(f) = file.take() {
                    let _ = f.sync_all();
                }
                if self.pending.is_empty() && file.is_some() {
                    return Ok(0);
                }
                if file.is_none() {
                    let (f, s) = open(path).map_err(err)?;
                    *file = Some(f);
                    *size = s;
                }
                let max = self.opts.max_bytes;
                let mut result = Ok(());
                while !self.pending.is_empty() {
                    // Whole lines that fit under `max_bytes`; rotate when none does; a
                    // line longer than the limit goes alone into a fresh file.
                    let take = if max == 0 {
                        self.pending.len()
                    } else {
                        let room = max.saturating_sub(*size).min(self.pending.len() as u64);
                        let fit = self.pending[..room as usize]
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |i| i + 1);
                        if fit > 0 {
                            fit
                        } else if *size > 0 {
                            if let Some(f) = file.take() {
                                let _ = f.sync_all();
                            }
                            rotate(path, self.opts.keep_files).map_err(err)?;
                            self.status
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .rotations += 1;
                            let (f, s) = open(path).map_err(err)?;
                            *file = Some(f);
                            *size = s;
                            continue;
                        } else {
                            self.pending
                                .iter()
                                .position(|&b| b == b'\n')
                                .map_or(self.pending.len(), |i| i + 1)
                        }
                    };
                    let Some(f) = file.as_mut() else {
                        return Err(format!("{}: not open", path.display()));
                    };
                    let (written, r) = write_prefix(f, &self.pending[..take]);
                    self.pending.drain(..written);
                    *size += written as u64;
                    if r.is_err() {
                        result = r;
                        break;
                    }
                }
                if result.is_ok()
                    && fsync != AuditFsync::Never
                    && let Some(f) = file.as_mut()
                {
                    result = f.sync_data();
                }
                if let Err(e) = result {
                    // Reopen on the next attempt (the directory may have been replaced).
                    *file = None;
                    return Err(err(e));
                }
                Ok(std::mem::take(&mut self.pending_lines))
            }
        }
    }
}

/// Write `buf`, removing from its front what was written, also on failure (so a retry never
/// writes a byte twice).
fn write_tracked(w: &mut impl Write, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let (done, result) = write_prefix(w, buf);
    buf.drain(..done);
    result
}

/// Write `buf`; how much was written, and the error that stopped it.
fn write_prefix(w: &mut impl Write, buf: &[u8]) -> (usize, std::io::Result<()>) {
    let mut done = 0;
    loop {
        if done == buf.len() {
            return (done, Ok(()));
        }
        match w.write(&buf[done..]) {
            Ok(0) => return (done, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
}

/// Most messages taken off the queue for one batch.
const MAX_BATCH: usize = 4096;
/// Retry interval while the log fails.
const RETRY: Duration = Duration::from_secs(1);

impl AuditLog {
    /// Start the writer thread. A log that cannot be opened does not stop start-up: the
    /// sink starts unhealthy (readiness fails, `fail_closed` refuses) and keeps retrying.
    pub fn start(opts: AuditOptions) -> std::io::Result<AuditLog> {
        let target = if opts.target == "-" {
            Target::Stdout
        } else {
            Target::File {
                path: PathBuf::from(&opts.target),
                file: None,
                size: 0,
            }
        };
        let queue = opts.queue.max(1);
        let (tx, rx) = mpsc::channel::<Msg>(queue);
        let status = Arc::new(Mutex::new(AuditStatus {
            target: opts.target.clone(),
            healthy: true,
            ..Default::default()
        }));
        let fsync = opts.fsync;
        let recent =
            matches!(target, Target::Stdout).then(|| Arc::new(RecentEvents::new(RECENT_EVENTS)));
        let mut writer = Writer {
            target,
            opts,
            pending: Vec::with_capacity(1 << 20),
            pending_lines: 0,
            status: status.clone(),
        };
        // Open now, so a bad path shows in readiness at once.
        let _ = writer.write_pending(false);
        let reopen = Arc::new(AtomicBool::new(false));
        let reopen_flag = reopen.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        std::thread::Builder::new()
            .name("pkggate-audit".into())
            .spawn(move || runtime.block_on(writer_loop(writer, rx, reopen_flag)))?;
        Ok(AuditLog {
            tx,
            status,
            reopen,
            fsync,
            queue,
            recent,
        })
    }
}

async fn writer_loop(mut w: Writer, mut rx: mpsc::Receiver<Msg>, reopen: Arc<AtomicBool>) {
    let mut batch: Vec<Msg> = Vec::new();
    // A batch holds at most a queue's worth, so acknowledged-but-unwritten lines are bounded
    // by twice the queue (the batch being written and the queue behind it).
    let max_batch = MAX_BATCH.min(w.opts.queue.max(1));
    loop {
        let failing = !w.pending.is_empty() || !w.status().healthy;
        let first = if failing {
            match tokio::time::timeout(RETRY, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    // Retry the failing log.
                    let _ = w.write_pending(reopen.swap(false, Ordering::AcqRel));
                    w.bound_pending();
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        for m in batch.drain(..) {
            match m {
                Msg::Events(events, ack) => {
                    w.add(&events);
                    acks.extend(ack);
                }
                Msg::Flush(a) => acks.push(a),
                Msg::Wake => {}
            }
        }
        let result = w.write_pending(reopen.swap(false, Ordering::AcqRel));
        w.bound_pending();
        for a in acks {
            let _ = a.send(result.clone());
        }
    }
    // Every sender is gone: last attempt, then sync.
    let _ = w.write_pending(false);
    if let Target::File {
        file: Some(file), ..
    } = &w.target
    {
        let _ = file.sync_all();
    }
}

impl AuditLog {
    async fn send(&self, msg: Msg) -> Result<(), AuditError> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| AuditError("audit writer stopped".into()))
    }

    fn health(&self) -> Result<(), AuditError> {
        let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if s.healthy {
            Ok(())
        } else {
            Err(AuditError(
                s.last_error
                    .clone()
                    .unwrap_or_else(|| "write failed".into()),
            ))
        }
    }
}

impl AuditSink for AuditLog {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async move {
            if events.is_empty() {
                return self.health();
            }
            if let Some(r) = &self.recent {
                r.push(&events);
            }
            if self.fsync == AuditFsync::Always {
                let (a, r) = oneshot::channel();
                self.send(Msg::Events(events, Some(a))).await?;
                r.await
                    .map_err(|_| AuditError("audit writer stopped".into()))?
                    .map_err(AuditError)
            } else {
                // Queued (kept and retried even when the log is failing); the answer is the
                // log's current health, so a failing log is reported to the gate.
                self.send(Msg::Events(events, None)).await?;
                self.health()
            }
        })
    }

    fn status(&self) -> AuditStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        s.queue_depth = self.queue.saturating_sub(self.tx.capacity());
        s
    }

    fn visit_recent(&self, visit: &mut dyn FnMut(&AuditEvent) -> ControlFlow<()>) -> bool {
        match &self.recent {
            Some(r) => {
                r.visit(visit);
                true
            }
            None => false,
        }
    }

    fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        // A full queue wakes the writer anyway; the flag is read on its next batch.
        let _ = self.tx.try_send(Msg::Wake);
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>> {
        Box::pin(async move {
            let (a, r) = oneshot::channel();
            self.send(Msg::Flush(a)).await?;
            r.await
                .map_err(|_| AuditError("audit writer stopped".into()))?
                .map_err(AuditError)
        })
    }
}

/// An in-memory sink for tests; [`MemoryAudit::fail`] makes it refuse like a broken log.
#[derive(Default, Clone)]
pub struct MemoryAudit {
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
    /// When set, `record` and `flush` fail with this message and `status` is unhealthy.
    pub failing: Arc<Mutex<Option<String>>>,
}

impl MemoryAudit {
    pub fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Make the sink fail (`Some(message)`) or work again (`None`).
    pub fn fail(&self, message: Option<&str>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = message.map(str::to_string);
    }

    fn failure(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        let result = match self.failure() {
            Some(m) => Err(AuditError(m)),
            None => {
                self.events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(events);
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn status(&self) -> AuditStatus {
        let failing = self.failure();
        AuditStatus {
            target: "memory".into(),
            healthy: failing.is_none(),
            last_error: failing,
            lines_written: self.events.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
            ..Default::default()
        }
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), AuditError>> {
        let result = self.failure().map_or(Ok(()), |m| Err(AuditError(m)));
        Box::pin(async move { result })
    }

    fn visit_recent(&self, visit: &mut dyn FnMut(&AuditEvent) -> ControlFlow<()>) -> bool {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for e in events.iter().rev() {
            if visit(e).is_break() {
                break;
            }
        }
        true
    }
}

/// Reading the log back (`pkggate audit tail|query`): the current file and its rotated
/// siblings, oldest first; torn and malformed lines are skipped and reported.
pub mod read {
    use super::rotated_path;
    use std::io::BufRead;
    use std::path::{Path, PathBuf};

    /// One well-formed line.
    #[derive(Debug, Clone)]
    pub struct LogLine {
        pub file: PathBuf,
        /// 1-based.
        pub line_no: usize,
        pub text: String,
        pub event: serde_json::Map<String, serde_json::Value>,
    }

    /// A line that was skipped.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Skipped {
        /// The file ends without a newline: a write torn by a crash (or still in progress).
        Torn {
            file: PathBuf,
            line_no: usize,
            bytes: usize,
        },
        /// Not a JSON object (e.g. a torn line that a restarted writer terminated).
        Malformed {
            file: PathBuf,
            line_no: usize,
            error: String,
        },
    }

    impl std::fmt::Display for Skipped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Skipped::Torn {
                    file,
                    line_no,
                    bytes,
                } => write!(
                    f,
                    "{}:{line_no}: skipped a torn last line ({bytes} bytes without a newline)",
                    file.display()
                ),
                Skipped::Malformed {
                    file,
                    line_no,
                    error,
                } => write!(
                    f,
                    "{}:{line_no}: skipped a malformed line: {error}",
                    file.display()
                ),
            }
        }
    }

    /// The log's files, oldest first: `path.N` … `path.1`, then `path` (those that exist).
    pub fn log_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rotated: Vec<u32> = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some(n) = name
                        .strip_prefix(base.as_str())
                        .and_then(|r| r.strip_prefix('.'))
                        .and_then(|r| r.parse::<u32>().ok())
                    {
                        rotated.push(n);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        rotated.sort_unstable_by(|a, b| b.cmp(a));
        let mut files: Vec<PathBuf> = rotated.into_iter().map(|n| rotated_path(path, n)).collect();
        if path.exists() {
            files.push(path.to_path_buf());
        }
        Ok(files)
    }

    /// Parse one complete line; `Ok(None)` for a blank line.
    pub fn parse_line(
        text: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
            Ok(_) => Err("not a JSON object".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Stream every well-formed line of one file to `visit`; returns what was skipped.
    pub fn read_file(file: &Path, visit: &mut dyn FnMut(LogLine)) -> std::io::Result<Vec<Skipped>> {
        let mut skipped = Vec::new();
        let f = match std::fs::File::open(file) {
            Ok(f) => f,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(skipped),
            Err(e) => return Err(e),
        };
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            line_no += 1;
            if buf.last() != Some(&b'\n') {
                skipped.push(Skipped::Torn {
                    file: file.to_path_buf(),
                    line_no,
                    bytes: buf.len(),
                });
                break;
            }
            buf.pop();
            let text = String::from_utf8_lossy(&buf);
            match parse_line(&text) {
                Ok(Some(event)) => visit(LogLine {
                    file: file.to_path_buf(),
                    line_no,
                    text: text.into_owned(),
                    event,
                }),
                Ok(None) => {}
                Err(error) => skipped.push(Skipped::Malformed {
                    file: file.to_path_buf(),
                    line_no,
                    error,
                }),
            }
        }
        Ok(skipped)
    }

    /// Every well-formed line of the log and its rotated files, oldest first.
    pub fn read_log(path: &Path, visit: &mut dyn FnMut(LogLine)) -> std::io::Result<Vec<Skipped>> {
        let mut skipped = Vec::new();
        for f in log_files(path)? {
            skipped.extend(read_file(&f, visit)?);
        }
        Ok(skipped)
    }

    /// `90s`, `30m`, `1h`, `2d`, `1w` or plain seconds, as seconds.
    pub fn parse_duration(s: &str) -> Option<f64> {
        let s = s.trim();
        let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, "s"),
        };
        let n: f64 = num.trim().parse().ok()?;
        let mult = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            _ => return None,
        };
        (n.is_finite() && n >= 0.0).then_some(n * mult)
    }

    /// A Unix time from an RFC 3339 timestamp.
    pub fn parse_ts(s: &str) -> Option<i64> {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    }
}

#[cfg(test)]
mod recent_tests {
    use super::*;

    fn ev(package: &str) -> AuditEvent {
        AuditEvent {
            ts: "2024-01-01T00:00:00Z".into(),
            action: "block".into(),
            ecosystem: "npm".into(),
            package: package.into(),
            version: "1.0.0".into(),
            rule: "denylist".into(),
            reason: "r".into(),
            source: None,
            request_kind: "tarball".into(),
            client_ip: "127.0.0.1".into(),
            request_id: "x".into(),
            user_agent: None,
            policy_revision: "p".into(),
            intel_revision: "i".into(),
            counts: None,
        }
    }

    #[test]
    fn recent_events_are_bounded_and_newest_first() {
        let r = RecentEvents::new(3);
        r.push(&[ev("a"), ev("b")]);
        r.push(&[ev("c"), ev("d")]);
        let mut seen = Vec::new();
        r.visit(&mut |e| {
            seen.push(e.package.clone());
            ControlFlow::Continue(())
        });
        assert_eq!(seen, ["d", "c", "b"]);
        let mut first = Vec::new();
        r.visit(&mut |e| {
            first.push(e.package.clone());
            ControlFlow::Break(())
        });
        assert_eq!(first, ["d"]);
    }
}
