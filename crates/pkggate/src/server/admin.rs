//! The admin page (`GET /-/pkggate/ui`) and the JSON it reads (`/-/pkggate/api/…`), all
//! behind the admin guard.
//!
//! * `api/decisions?ecosystem=&package=&action=&rule=&since=&until=&limit=`: matching audit
//!   lines, newest first. The log is read backwards from the end of the current file (then
//!   `audit.log.1`, `.2`, …) in blocks, stopping as soon as `limit` lines matched or `since`
//!   is passed; a scan never reads more than [`SCAN_BUDGET`] bytes (`scan.complete: false`).
//! * `api/stats?hours=24`: blocked/warned/allowed per hour. Per-file hourly counts are kept
//!   in memory keyed by the file's identity (device, inode) and the size already counted, so
//!   a page view only reads what was appended since the last one (and a rotated file, being
//!   the same inode, is not read again).
//!
//! With `PKGGATE_AUDIT_LOG=-` or an in-memory sink the answers come from the sink's bounded
//! ring of recent events ([`crate::audit::AuditSink::visit_recent`]).
//!
//! Every answer carries `scan.bytes_read` so tests can check that reads stop early.

use crate::audit::read::{log_files, parse_ts};
use crate::server::{AppState, json_response};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkggate_formats::Ecosystem;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The page's Content-Security-Policy: only its own script, style and API.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Block size of the backwards reader.
const BLOCK: u64 = 64 * 1024;
/// Most bytes one `decisions` answer reads.
pub const SCAN_BUDGET: u64 = 256 * 1024 * 1024;
/// Lines may be out of order by this much (concurrent requests): a backwards scan stops only
/// once it is this far past `since`.
const GRACE_SECS: i64 = 120;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The page, its assets and the API (the caller adds the admin guard).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/pkggate/ui", get(page))
        .route("/-/pkggate/ui/app.js", get(app_js))
        .route("/-/pkggate/ui/app.css", get(app_css))
        .route("/-/pkggate/api/decisions", get(decisions))
        .route("/-/pkggate/api/stats", get(stats))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn bad_request(msg: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": msg}))
}

/// How much a scan read.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ScanStats {
    /// `file` or `memory`.
    pub source: &'static str,
    pub bytes_read: u64,
    pub lines: u64,
    pub files: u32,
    /// False when the byte budget stopped the scan before the log's start or `since`.
    pub complete: bool,
}

/// A time bound: RFC 3339, Unix seconds, or a duration back from now (`90m`, `24h`, `7d`).
pub fn parse_time(s: &str, now: i64) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_ts(s) {
        return Some(t);
    }
    if s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return crate::audit::read::parse_duration(s).map(|d| now - d as i64);
    }
    s.parse::<i64>().ok()
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct DecisionsQuery {
    ecosystem: Option<String>,
    package: Option<String>,
    action: Option<String>,
    rule: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

/// The filters of `api/decisions`.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub ecosystem: Option<String>,
    /// Case-insensitive substring of the package name.
    pub package: Option<String>,
    pub action: Option<String>,
    pub rule: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: usize,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Filter {
    fn from_query(q: &DecisionsQuery, now: i64) -> Result<Filter, String> {
        let time = |v: &Option<String>, name: &str| -> Result<Option<i64>, String> {
            match non_empty(v) {
                None => Ok(None),
                Some(s) => parse_time(&s, now).map(Some).ok_or_else(|| {
                    format!("{name}: expected RFC 3339, Unix seconds or a duration like 24h")
                }),
            }
        };
        let limit = match non_empty(&q.limit) {
            None => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| "limit: expected a number".to_string())?
                .clamp(1, MAX_LIMIT),
        };
        let ecosystem = non_empty(&q.ecosystem).map(|e| match Ecosystem::parse_lenient(&e) {
            Ok(eco) => eco.osv_name().to_string(),
            Err(_) => e,
        });
        Ok(Filter {
            ecosystem,
            package: non_empty(&q.package).map(|p| p.to_lowercase()),
            action: non_empty(&q.action).map(|a| a.to_lowercase()),
            rule: non_empty(&q.rule),
            since: time(&q.since, "since")?,
            until: time(&q.until, "until")?,
            limit,
        })
    }

    /// Whether the event matches everything but the time bounds.
    fn matches_fields(&self, e: &Map<String, Value>) -> bool {
        let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        if let Some(eco) = &self.ecosystem
            && !field("ecosystem").eq_ignore_ascii_case(eco)
        {
            return false;
        }
        if let Some(p) = &self.package
            && !field("package").to_lowercase().contains(p.as_str())
        {
            return false;
        }
        if let Some(a) = &self.action
            && !field("action").eq_ignore_ascii_case(a)
        {
            return false;
        }
        if let Some(r) = &self.rule
            && field("rule") != r
        {
            return false;
        }
        true
    }
}

/// Visit the complete lines of `path` newest first (a torn last line is skipped), reading
/// backwards in blocks; stops when `visit` breaks or `budget` bytes were read.
pub fn scan_file_backwards(
    path: &Path,
    stats: &mut ScanStats,
    budget: u64,
    visit: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> std::io::Result<ControlFlow<()>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ControlFlow::Continue(())),
        Err(e) => return Err(e),
    };
    stats.files += 1;
    let mut pos = f.metadata()?.len();
    // Unprocessed bytes [pos, pos + buf.len()).
    let mut buf: Vec<u8> = Vec::new();
    let mut torn_dropped = false;
    loop {
        if pos > 0 {
            if stats.bytes_read >= budget {
                stats.complete = false;
                return Ok(ControlFlow::Break(()));
            }
            let start = pos.saturating_sub(BLOCK);
            let mut block = vec![0u8; (pos - start) as usize];
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut block)?;
            stats.bytes_read += block.len() as u64;
            block.extend_from_slice(&buf);
            buf = block;
            pos = start;
        }
        if !torn_dropped {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    buf.truncate(i + 1);
                    torn_dropped = true;
                }
                None if pos == 0 => return Ok(ControlFlow::Continue(())),
                None => continue,
            }
        }
        // `buf` ends with a newline (or is empty): emit the lines that start inside it.
        while let Some(body_end) = buf.len().checked_sub(1) {
            match buf[..body_end].iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    stats.lines += 1;
                    if visit(&buf[i + 1..body_end]).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                    buf.truncate(i + 1);
                }
                None if pos == 0 => {
                    stats.lines += 1;
                    if visit(&buf[..body_end]).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                    buf.clear();
                }
                None => break,
            }
        }
        if pos == 0 {
            return Ok(ControlFlow::Continue(()));
        }
    }
}

/// The log's files, newest first.
fn files_newest_first(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = log_files(path)?;
    files.reverse();
    Ok(files)
}

fn parse_object(line: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn event_ts(e: &Map<String, Value>) -> Option<i64> {
    e.get("ts").and_then(Value::as_str).and_then(parse_ts)
}

/// What to do with one event while collecting `filter` matches (newest first).
fn consider(
    filter: &Filter,
    e: Map<String, Value>,
    out: &mut Vec<Map<String, Value>>,
) -> ControlFlow<()> {
    if filter.since.is_some() || filter.until.is_some() {
        let ts = event_ts(&e);
        if let (Some(since), Some(ts)) = (filter.since, ts) {
            if ts < since.saturating_sub(GRACE_SECS) {
                return ControlFlow::Break(());
            }
            if ts < since {
                return ControlFlow::Continue(());
            }
        }
        if let (Some(until), Some(ts)) = (filter.until, ts)
            && ts > until
        {
            return ControlFlow::Continue(());
        }
    }
    if filter.matches_fields(&e) {
        out.push(e);
        if out.len() >= filter.limit {
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

/// Matching events, newest first, and what the scan read.
pub fn find_decisions(
    state: &AppState,
    filter: &Filter,
    budget: u64,
) -> std::io::Result<(Vec<Map<String, Value>>, ScanStats)> {
    let mut out = Vec::new();
    let mut stats = ScanStats {
        complete: true,
        ..Default::default()
    };
    let in_memory = state.audit.visit_recent(&mut |e| {
        stats.lines += 1;
        match serde_json::to_value(e) {
            Ok(Value::Object(m)) => consider(filter, m, &mut out),
            _ => ControlFlow::Continue(()),
        }
    });
    if in_memory {
        stats.source = "memory";
        return Ok((out, stats));
    }
    stats.source = "file";
    for file in files_newest_first(Path::new(&state.config.audit_log))? {
        let flow = scan_file_backwards(&file, &mut stats, budget, &mut |line| match parse_object(
            line,
        ) {
            Some(m) => consider(filter, m, &mut out),
            None => ControlFlow::Continue(()),
        })?;
        if flow.is_break() {
            break;
        }
    }
    Ok((out, stats))
}

async fn decisions(State(state): State<AppState>, Query(q): Query<DecisionsQuery>) -> Response {
    let now = crate::intel::now_unix();
    let filter = match Filter::from_query(&q, now) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    if state.config.audit_log == "-" && !state.audit.visit_recent(&mut |_| ControlFlow::Break(())) {
        return bad_request("the audit log goes to stdout and no events are kept".into());
    }
    let st = state.clone();
    let f = filter.clone();
    let result = tokio::task::spawn_blocking(move || find_decisions(&st, &f, SCAN_BUDGET)).await;
    match result {
        Ok(Ok((events, scan))) => json_response(
            StatusCode::OK,
            json!({
                "decisions": events,
                "limit": filter.limit,
                "scan": scan,
            }),
        ),
        Ok(Err(e)) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": format!("cannot read the audit log: {e}")}),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": format!("audit reader failed: {e}")}),
        ),
    }
}

/// Counts of one hour.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct HourCounts {
    pub blocked: u64,
    pub warned: u64,
    pub allowed: u64,
    /// Blocks by rule.
    pub rules: BTreeMap<String, u64>,
}

impl HourCounts {
    fn add(&mut self, other: &HourCounts) {
        self.blocked += other.blocked;
        self.warned += other.warned;
        self.allowed += other.allowed;
        for (r, n) in &other.rules {
            *self.rules.entry(r.clone()).or_default() += n;
        }
    }
}

type Buckets = BTreeMap<i64, HourCounts>;

fn count_event(buckets: &mut Buckets, e: &Map<String, Value>) {
    let Some(ts) = event_ts(e) else { return };
    let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let h = buckets.entry(ts.div_euclid(3600) * 3600).or_default();
    match field("action") {
        "block" => {
            h.blocked += 1;
            *h.rules.entry(field("rule").to_string()).or_default() += 1;
        }
        "warn" => h.warned += 1,
        "allow" => {
            // A document's summary line stands for its allowed versions.
            let summary = e
                .get("counts")
                .and_then(|c| c.get("allowed"))
                .and_then(Value::as_u64);
            h.allowed += summary.unwrap_or(1);
        }
        _ => {}
    }
}

/// Hourly counts of one file, as far as it has been read.
#[derive(Debug, Default)]
struct FileAgg {
    /// Bytes counted: everything before this offset that is at or after `from_ts`.
    size: u64,
    /// Events older than this were not counted (`i64::MIN`: the whole file was).
    from_ts: i64,
    /// The file's first event, once the scan reached its start.
    first_ts: Option<i64>,
    buckets: Buckets,
    /// The file's first bytes when counted: an appended file keeps them, a new file that
    /// got a deleted one's inode (rotation) does not, so its counts are never reused.
    head: Vec<u8>,
}

/// Bytes of a file's start that identify it with its inode.
const HEAD_BYTES: usize = 256;

/// The first `HEAD_BYTES` bytes of `path` (fewer when it is shorter).
fn file_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    std::fs::File::open(path)?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// (device, inode) of a file; the path where these are unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FileKey {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(PathBuf),
}

fn file_key(_path: &Path, meta: &std::fs::Metadata) -> FileKey {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileKey::Inode(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileKey::Path(_path.to_path_buf())
    }
}

fn stats_cache() -> &'static Mutex<HashMap<FileKey, FileAgg>> {
    static C: OnceLock<Mutex<HashMap<FileKey, FileAgg>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Count the lines appended to `path` since `agg.size` (complete lines only).
fn extend_forward(path: &Path, agg: &mut FileAgg, stats: &mut ScanStats) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len <= agg.size {
        return Ok(());
    }
    f.seek(SeekFrom::Start(agg.size))?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, f.take(len - agg.size));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_until(&mut r, b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // A line still being written is counted next time.
            stats.bytes_read += n as u64;
            break;
        }
        stats.bytes_read += n as u64;
        stats.lines += 1;
        agg.size += n as u64;
        if let Some(e) = parse_object(&line[..n - 1]) {
            count_event(&mut agg.buckets, &e);
        }
    }
    Ok(())
}

/// Count `path` from its end back to `from_ts`.
fn build_backwards(path: &Path, from_ts: i64, stats: &mut ScanStats) -> std::io::Result<FileAgg> {
    let mut agg = FileAgg {
        from_ts,
        ..Default::default()
    };
    let mut first_ts = None;
    let flow = scan_file_backwards(path, stats, u64::MAX, &mut |line| {
        let Some(e) = parse_object(line) else {
            return ControlFlow::Continue(());
        };
        let ts = event_ts(&e);
        if let Some(ts) = ts {
            first_ts = Some(ts);
            if ts < from_ts.saturating_sub(GRACE_SECS) {
                return ControlFlow::Break(());
            }
        }
        count_event(&mut agg.buckets, &e);
        ControlFlow::Continue(())
    })?;
    if flow.is_continue() {
        // Reached the start: the whole file is counted.
        agg.from_ts = i64::MIN;
        agg.first_ts = first_ts;
    }
    // Counted up to the end of the last complete line.
    agg.size = complete_len(path)?;
    agg.head = file_head(path)?;
    Ok(agg)
}

/// The file's length up to and including its last newline.
fn complete_len(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut block = vec![0u8; BLOCK as usize];
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let n = (pos - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// Hourly counts from `from_ts` on, newest file first, with the per-file cache.
pub fn hourly_counts(state: &AppState, from_ts: i64) -> std::io::Result<(Buckets, ScanStats)> {
    let mut stats = ScanStats {
        complete: true,
        ..Default::default()
    };
    let mut buckets = Buckets::new();
    let in_memory = state.audit.visit_recent(&mut |e| {
        stats.lines += 1;
        if let Ok(Value::Object(m)) = serde_json::to_value(e) {
            if event_ts(&m).is_some_and(|ts| ts < from_ts.saturating_sub(GRACE_SECS)) {
                return ControlFlow::Break(());
            }
            count_event(&mut buckets, &m);
        }
        ControlFlow::Continue(())
    });
    if in_memory {
        stats.source = "memory";
        buckets.retain(|h, _| *h >= from_ts);
        return Ok((buckets, stats));
    }
    stats.source = "file";
    let mut cache = stats_cache().lock().unwrap_or_else(|p| p.into_inner());
    let mut seen = Vec::new();
    for file in files_newest_first(Path::new(&state.config.audit_log))? {
        let meta = match std::fs::metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let key = file_key(&file, &meta);
        seen.push(key.clone());
        let head = file_head(&file)?;
        // Files only grow: the start counted before is still the start (else another file
        // has this inode now).
        let reuse = cache.get(&key).is_some_and(|a| {
            a.size <= meta.len() && a.from_ts <= from_ts && head.starts_with(&a.head)
        });
        if reuse {
            if let Some(agg) = cache.get_mut(&key) {
                stats.files += 1;
                extend_forward(&file, agg, &mut stats)?;
                // What is counted now starts with this (longer, if the file was short).
                agg.head.clone_from(&head);
            }
        } else {
            let agg = build_backwards(&file, from_ts, &mut stats)?;
            cache.insert(key.clone(), agg);
        }
        let Some(agg) = cache.get(&key) else { break };
        for (h, c) in agg.buckets.range(from_ts..) {
            buckets.entry(*h).or_default().add(c);
        }
        // Older files matter only when this one starts after `from_ts`.
        let continues = agg.from_ts == i64::MIN && agg.first_ts.is_none_or(|t| t >= from_ts);
        if !continues {
            break;
        }
    }
    // Forget files that are gone (rotated away past keep_files).
    if let Ok(all) = log_files(Path::new(&state.config.audit_log)) {
        let live: Vec<FileKey> = all
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| file_key(p, &m)))
            .collect();
        cache.retain(|k, _| live.contains(k) || seen.contains(k));
    }
    Ok((buckets, stats))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct StatsQuery {
    hours: Option<String>,
}

async fn stats(State(state): State<AppState>, Query(q): Query<StatsQuery>) -> Response {
    let hours = match non_empty(&q.hours) {
        None => 24,
        Some(h) => match h.parse::<i64>() {
            Ok(h) if (1..=24 * 31).contains(&h) => h,
            _ => return bad_request("hours: expected 1 to 744".into()),
        },
    };
    if state.config.audit_log == "-" && !state.audit.visit_recent(&mut |_| ControlFlow::Break(())) {
        return bad_request("the audit log goes to stdout and no events are kept".into());
    }
    let now = crate::intel::now_unix();
    let current_hour = now.div_euclid(3600) * 3600;
    let from = current_hour - (hours - 1) * 3600;
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || hourly_counts(&st, from)).await;
    let (buckets, scan) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": format!("cannot read the audit log: {e}")}),
            );
        }
        Err(e) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": format!("audit reader failed: {e}")}),
            );
        }
    };
    let mut total = HourCounts::default();
    let series: Vec<Value> = (0..hours)
        .map(|i| {
            let h = from + i * 3600;
            let c = buckets.get(&h).cloned().unwrap_or_default();
            total.add(&c);
            json!({
                "hour": crate::timefmt::rfc3339(h),
                "blocked": c.blocked,
                "warned": c.warned,
                "allowed": c.allowed,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "hours": hours,
            "from": crate::timefmt::rfc3339(from),
            "series": series,
            "total": total,
            "scan": scan,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(content: &[u8]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, content).unwrap();
        let mut out = Vec::new();
        let mut stats = ScanStats::default();
        let _ = scan_file_backwards(&p, &mut stats, u64::MAX, &mut |l| {
            out.push(String::from_utf8_lossy(l).into_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn backwards_reader_yields_complete_lines_newest_first() {
        assert_eq!(lines_of(b"a\nbb\nccc\n"), ["ccc", "bb", "a"]);
        assert_eq!(lines_of(b"a\nbb\ntorn"), ["bb", "a"]);
        assert_eq!(lines_of(b"torn"), Vec::<String>::new());
        assert_eq!(lines_of(b""), Vec::<String>::new());
        assert_eq!(lines_of(b"\n\nx\n"), ["x", "", ""]);
        // Lines longer than a block, across block boundaries.
        let long = "y".repeat(BLOCK as usize * 2 + 17);
        let content = format!("first\n{long}\nlast\n");
        assert_eq!(
            lines_of(content.as_bytes()),
            ["last", long.as_str(), "first"]
        );
    }

    #[test]
    fn time_bounds_parse() {
        assert_eq!(parse_time("2024-01-01T00:00:00Z", 0), Some(1_704_067_200));
        assert_eq!(
            parse_time("2024-01-01T00:00:00.000Z", 0),
            Some(1_704_067_200)
        );
        assert_eq!(parse_time("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_time("2h", 10_000), Some(10_000 - 7200));
        assert_eq!(parse_time("soon", 0), None);
    }
}
