//! The OSV mirror in SQLite (bundled), schema versioned with `PRAGMA user_version`.
//!
//! Invariants:
//! * A refresh replaces one ecosystem's rows in one transaction: readers (WAL mode, one
//!   statement per lookup) see the old data or the new, never a mix. Any error rolls back
//!   and the previous data keeps serving.
//! * Withdrawn advisories are kept (for `mirror status`) but get no `affected` rows, so
//!   they affect nothing.
//! * Lookups read only the rows of one (ecosystem, normalised name): one query per
//!   package, whatever the number of versions.

use super::{Finding, PackageFindings};
use pkggate_formats::osv::{Advisory, AdvisoryKind, CompiledMatcher, VersionIndex, VersionMatcher};
use pkggate_formats::{EcoVersion, Ecosystem};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS eco_state (
    ecosystem TEXT PRIMARY KEY,
    records INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    revision TEXT,
    source TEXT,
    etag TEXT,
    last_modified TEXT,
    last_success INTEGER,
    last_attempt INTEGER,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS advisory (
    ecosystem TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT,
    modified TEXT,
    withdrawn TEXT,
    score REAL,
    cvss_v3 REAL,
    cvss_v4 REAL,
    severity_label TEXT,
    PRIMARY KEY (ecosystem, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
    ecosystem TEXT NOT NULL,
    name_key TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    name TEXT NOT NULL,
    all_versions INTEGER NOT NULL,
    matcher TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_by_name ON affected (ecosystem, name_key);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("mirror database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "mirror database {path} has schema version {found}, newer than this pkggate understands ({SCHEMA_VERSION}); use a newer pkggate or another PKGGATE_MIRROR_DB"
    )]
    NewerSchema { path: String, found: i64 },
    #[error(
        "bundle for {ecosystem} has no usable records ({skipped} skipped); keeping the previous data"
    )]
    EmptyBundle { ecosystem: Ecosystem, skipped: u64 },
    #[error("{0}")]
    Ingest(String),
}

/// What is known about one ecosystem's mirror.
#[derive(Debug, Clone, Serialize)]
pub struct EcoState {
    pub ecosystem: Ecosystem,
    pub records: u64,
    pub skipped: u64,
    pub withdrawn: u64,
    /// Changes whenever the data changes (the bundle's sha256).
    pub revision: Option<String>,
    pub source: Option<String>,
    #[serde(skip)]
    pub etag: Option<String>,
    #[serde(skip)]
    pub last_modified: Option<String>,
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

impl EcoState {
    /// The state of an ecosystem that has never been refreshed.
    pub fn empty(ecosystem: Ecosystem) -> Self {
        EcoState {
            ecosystem,
            records: 0,
            skipped: 0,
            withdrawn: 0,
            revision: None,
            source: None,
            etag: None,
            last_modified: None,
            last_success: None,
            last_attempt: None,
            last_error: None,
            consecutive_failures: 0,
        }
    }

    /// Data has been ingested at least once.
    pub fn loaded(&self) -> bool {
        self.last_success.is_some() && self.revision.is_some()
    }

    /// Seconds since the data was last confirmed current.
    pub fn age_seconds(&self, now: i64) -> Option<i64> {
        self.last_success.map(|t| (now - t).max(0))
    }
}

/// Counts of one replace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplaceStats {
    pub records: u64,
    pub skipped: u64,
    pub withdrawn: u64,
    pub affected_rows: u64,
}

/// One item read from a bundle.
pub enum BundleItem {
    Record(Box<Advisory>),
    /// A record that failed to parse: counted, never fatal.
    Skipped(String),
}

/// Where the bundle came from, stored with the data.
#[derive(Debug, Clone, Default)]
pub struct BundleMeta {
    pub revision: String,
    pub source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Compiled advisories of one package.
type CompiledRows = Vec<(Arc<Finding>, CompiledMatcher)>;

/// (ecosystem, normalised name) → (generation, compiled advisories).
type PackageCache = HashMap<(Ecosystem, String), (u64, Arc<CompiledRows>)>;

/// Packages whose compiled advisories are cached (the cache is cleared when full).
const CACHE_PACKAGES: usize = 8192;

pub struct IntelStore {
    path: PathBuf,
    /// Bumped after every committed replace; cached entries of older generations are stale.
    generation: std::sync::atomic::AtomicU64,
    cache: Mutex<PackageCache>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    states: RwLock<HashMap<Ecosystem, EcoState>>,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

impl IntelStore {
    /// Open (or create) the mirror. Existing data is kept and serves at once.
    pub fn open(path: &Path) -> Result<Arc<IntelStore>, StoreError> {
        let conn = Connection::open(path).map_err(sql(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql(path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(path))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql(path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.display().to_string(),
                found: version,
            });
        }
        conn.execute_batch(SCHEMA).map_err(sql(path))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql(path))?;
        let store = IntelStore {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            generation: std::sync::atomic::AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            readers: Mutex::new(Vec::new()),
            states: RwLock::new(HashMap::new()),
        };
        store.reload_states()?;
        Ok(Arc::new(store))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reload_states(&self) -> Result<(), StoreError> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut map: HashMap<Ecosystem, EcoState> = Ecosystem::ALL
            .iter()
            .map(|&e| (e, EcoState::empty(e)))
            .collect();
        let mut stmt = conn
            .prepare(
                "SELECT ecosystem, records, skipped, withdrawn, revision, source, etag, last_modified,
                        last_success, last_attempt, last_error, consecutive_failures FROM eco_state",
            )
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    EcoState {
                        ecosystem: Ecosystem::Npm,
                        records: r.get::<_, i64>(1)? as u64,
                        skipped: r.get::<_, i64>(2)? as u64,
                        withdrawn: r.get::<_, i64>(3)? as u64,
                        revision: r.get(4)?,
                        source: r.get(5)?,
                        etag: r.get(6)?,
                        last_modified: r.get(7)?,
                        last_success: r.get(8)?,
                        last_attempt: r.get(9)?,
                        last_error: r.get(10)?,
                        consecutive_failures: r.get::<_, i64>(11)? as u32,
                    },
                ))
            })
            .map_err(sql(&self.path))?;
        for row in rows {
            let (eco, mut state) = row.map_err(sql(&self.path))?;
            if let Some(e) = Ecosystem::from_osv_name(&eco) {
                state.ecosystem = e;
                map.insert(e, state);
            }
        }
        *self.states.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    pub fn state(&self, eco: Ecosystem) -> EcoState {
        self.states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&eco)
            .cloned()
            .unwrap_or_else(|| EcoState::empty(eco))
    }

    pub fn states(&self) -> Vec<EcoState> {
        Ecosystem::ALL.iter().map(|&e| self.state(e)).collect()
    }

    fn save_state(&self, conn: &Connection, s: &EcoState) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO eco_state (ecosystem, records, skipped, withdrawn, revision, source, etag, last_modified,
                                    last_success, last_attempt, last_error, consecutive_failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(ecosystem) DO UPDATE SET records=?2, skipped=?3, withdrawn=?4, revision=?5, source=?6,
                etag=?7, last_modified=?8, last_success=?9, last_attempt=?10, last_error=?11, consecutive_failures=?12",
            params![
                s.ecosystem.osv_name(),
                s.records as i64,
                s.skipped as i64,
                s.withdrawn as i64,
                s.revision,
                s.source,
                s.etag,
                s.last_modified,
                s.last_success,
                s.last_attempt,
                s.last_error,
                s.consecutive_failures as i64
            ],
        )
        .map_err(sql(&self.path))?;
        Ok(())
    }

    fn update_state(
        &self,
        eco: Ecosystem,
        f: impl FnOnce(&mut EcoState),
    ) -> Result<EcoState, StoreError> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.state(eco);
        f(&mut s);
        self.save_state(&conn, &s)?;
        self.states
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(eco, s.clone());
        Ok(s)
    }

    /// A refresh attempt failed: the data stays, the error is recorded.
    pub fn record_failure(
        &self,
        eco: Ecosystem,
        now: i64,
        error: &str,
    ) -> Result<EcoState, StoreError> {
        self.update_state(eco, |s| {
            s.last_attempt = Some(now);
            s.last_error = Some(error.to_string());
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        })
    }

    /// The source confirmed the data is current (HTTP 304 or the same bundle hash).
    pub fn record_unchanged(
        &self,
        eco: Ecosystem,
        now: i64,
        meta: &BundleMeta,
    ) -> Result<EcoState, StoreError> {
        self.update_state(eco, |s| {
            s.last_attempt = Some(now);
            s.last_success = Some(now);
            s.last_error = None;
            s.consecutive_failures = 0;
            if meta.etag.is_some() {
                s.etag = meta.etag.clone();
            }
            if meta.last_modified.is_some() {
                s.last_modified = meta.last_modified.clone();
            }
        })
    }

    /// Replace every record of `eco` with `items`, in one transaction. An `Err` item, an
    /// SQLite error, or a bundle without one usable record rolls back: the old data stays.
    pub fn replace(
        &self,
        eco: Ecosystem,
        now: i64,
        meta: &BundleMeta,
        items: &mut dyn Iterator<Item = Result<BundleItem, String>>,
    ) -> Result<(ReplaceStats, EcoState), StoreError> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(sql(&self.path))?;
        let eco_name = eco.osv_name();
        tx.execute("DELETE FROM affected WHERE ecosystem = ?1", [eco_name])
            .map_err(sql(&self.path))?;
        tx.execute("DELETE FROM advisory WHERE ecosystem = ?1", [eco_name])
            .map_err(sql(&self.path))?;
        let mut stats = ReplaceStats::default();
        {
            let mut ins_adv = tx
                .prepare(
                    "INSERT OR REPLACE INTO advisory (ecosystem, id, kind, aliases, summary, modified, withdrawn,
                        score, cvss_v3, cvss_v4, severity_label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql(&self.path))?;
            let mut ins_aff = tx
                .prepare(
                    "INSERT INTO affected (ecosystem, name_key, advisory_id, name, all_versions, matcher)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql(&self.path))?;
            let mut del_aff = tx
                .prepare("DELETE FROM affected WHERE ecosystem = ?1 AND advisory_id = ?2")
                .map_err(sql(&self.path))?;
            // An id that appears again in the same bundle: the last entry wins, whole (its
            // advisory row replaces the earlier one, so the earlier ranges go too).
            let mut seen: HashMap<String, bool> = HashMap::new();
            for item in items {
                let adv = match item.map_err(StoreError::Ingest)? {
                    BundleItem::Skipped(_) => {
                        stats.skipped += 1;
                        continue;
                    }
                    BundleItem::Record(adv) => adv,
                };
                let ours: Vec<_> = adv.affected.iter().filter(|a| a.ecosystem == eco).collect();
                if ours.is_empty() {
                    continue;
                }
                if let Some(was_withdrawn) = seen.insert(adv.id.clone(), adv.withdrawn.is_some()) {
                    let removed = del_aff
                        .execute(params![eco_name, adv.id])
                        .map_err(sql(&self.path))?;
                    stats.affected_rows = stats.affected_rows.saturating_sub(removed as u64);
                    stats.records = stats.records.saturating_sub(1);
                    if was_withdrawn {
                        stats.withdrawn = stats.withdrawn.saturating_sub(1);
                    }
                }
                stats.records += 1;
                let aliases = serde_json::to_string(&adv.aliases).unwrap_or_else(|_| "[]".into());
                ins_adv
                    .execute(params![
                        eco_name,
                        adv.id,
                        adv.kind.as_str(),
                        aliases,
                        adv.summary,
                        adv.modified,
                        adv.withdrawn,
                        adv.severity.effective_score(),
                        adv.severity.cvss_v3,
                        adv.severity.cvss_v4,
                        adv.severity.label
                    ])
                    .map_err(sql(&self.path))?;
                if adv.withdrawn.is_some() {
                    stats.withdrawn += 1;
                    continue;
                }
                for a in ours {
                    let matcher = serde_json::to_string(&a.matcher).map_err(|e| {
                        StoreError::Ingest(format!("{}: cannot store matcher: {e}", adv.id))
                    })?;
                    ins_aff
                        .execute(params![
                            eco_name,
                            a.name_key,
                            adv.id,
                            a.name,
                            a.matcher.covers_all_versions() as i64,
                            matcher
                        ])
                        .map_err(sql(&self.path))?;
                    stats.affected_rows += 1;
                }
            }
        }
        if stats.records == 0 {
            return Err(StoreError::EmptyBundle {
                ecosystem: eco,
                skipped: stats.skipped,
            });
        }
        let mut state = self.state(eco);
        state.records = stats.records;
        state.skipped = stats.skipped;
        state.withdrawn = stats.withdrawn;
        state.revision = Some(meta.revision.clone());
        state.source = Some(meta.source.clone());
        state.etag = meta.etag.clone();
        state.last_modified = meta.last_modified.clone();
        state.last_success = Some(now);
        state.last_attempt = Some(now);
        state.last_error = None;
        state.consecutive_failures = 0;
        self.save_state(&tx, &state)?;
        tx.commit().map_err(sql(&self.path))?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.states
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(eco, state.clone());
        Ok((stats, state))
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql(&self.path))?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(sql(&self.path))?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 16 {
            pool.push(conn);
        }
        result
    }

    /// Every advisory row of one package: (finding, matcher).
    pub fn package_rows(
        &self,
        eco: Ecosystem,
        name: &str,
    ) -> Result<Vec<(Finding, VersionMatcher)>, StoreError> {
        let key = eco.normalize_name(name);
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.id, a.kind, a.aliases, a.score, a.severity_label, a.summary, f.matcher
                     FROM affected f JOIN advisory a ON a.ecosystem = f.ecosystem AND a.id = f.advisory_id
                     WHERE f.ecosystem = ?1 AND f.name_key = ?2 ORDER BY a.id",
                )
                .map_err(sql(&self.path))?;
            let rows = stmt
                .query_map(params![eco.osv_name(), key.as_ref()], |r| {
                    let kind: String = r.get(1)?;
                    let aliases: String = r.get(2)?;
                    let matcher: String = r.get(6)?;
                    Ok((
                        Finding {
                            id: r.get(0)?,
                            kind: if kind == "malicious" { AdvisoryKind::Malicious } else { AdvisoryKind::Vulnerability },
                            aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                            score: r.get::<_, Option<f64>>(3)?.map(|s| s as f32),
                            severity: r.get(4)?,
                            summary: r.get(5)?,
                        },
                        matcher,
                    ))
                })
                .map_err(sql(&self.path))?;
            let mut out = Vec::new();
            for row in rows {
                let (finding, matcher) = row.map_err(sql(&self.path))?;
                // A matcher this version wrote always parses; a damaged row is skipped.
                if let Ok(m) = serde_json::from_str::<VersionMatcher>(&matcher) {
                    out.push((finding, m));
                }
            }
            Ok(out)
        })
    }

    /// Whether a lookup of the package would be answered from the compiled-package cache
    /// (no SQLite): callers on an async runtime run the other lookups on a blocking thread.
    pub fn is_cached(&self, eco: Ecosystem, name: &str) -> bool {
        let key = (eco, eco.normalize_name(name).into_owned());
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|(g, _)| *g == generation)
    }

    /// The package's advisories with their matchers compiled, from the cache when the data
    /// has not changed since (clean packages are cached too: most lookups touch no SQLite).
    fn compiled(&self, eco: Ecosystem, name: &str) -> Result<Arc<CompiledRows>, StoreError> {
        let key = (eco, eco.normalize_name(name).into_owned());
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((g, rows)) = cache.get(&key)
                && *g == generation
            {
                crate::metrics::cache_lookup("intel", true);
                return Ok(rows.clone());
            }
        }
        crate::metrics::cache_lookup("intel", false);
        let rows: CompiledRows = self
            .package_rows(eco, name)?
            .into_iter()
            .map(|(f, m)| (Arc::new(f), m.compile(eco)))
            .collect();
        let rows = Arc::new(rows);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_PACKAGES {
            cache.clear();
        }
        cache.insert(key, (generation, rows.clone()));
        Ok(rows)
    }

    /// Findings for every version of one package: one query (or a cache hit), the document's
    /// versions sorted once, a few binary searches per advisory.
    pub fn lookup_package(
        &self,
        eco: Ecosystem,
        name: &str,
        versions: &[&str],
    ) -> Result<PackageFindings, StoreError> {
        let rows = self.compiled(eco, name)?;
        let mut out = PackageFindings::empty(versions.len());
        if rows.is_empty() {
            return Ok(out);
        }
        out.covers_all_versions = rows.iter().any(|(_, c)| c.covers_all_versions());
        let index = VersionIndex::new(eco, versions);
        for (j, (finding, compiled)) in rows.iter().enumerate() {
            out.advisories.push(finding.clone());
            for i in index.affected(compiled) {
                if let Some(v) = out.per_version.get_mut(i as usize) {
                    v.push(j as u32);
                }
            }
        }
        Ok(out)
    }

    /// Findings for one version (the artifact gate).
    pub fn lookup_version(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Vec<Finding>, StoreError> {
        let rows = self.compiled(eco, name)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let parsed = EcoVersion::parse(eco, version);
        let key = parsed.is_parsed().then(|| parsed.key());
        Ok(rows
            .iter()
            .filter(|(_, c)| c.affects_keyed(&parsed, key.as_deref()))
            .map(|(f, _)| Finding::clone(f))
            .collect())
    }

    /// Every (normalised name, advisory) whose advisory covers every version.
    pub fn catch_all(&self, eco: Ecosystem) -> Result<Vec<(String, Finding)>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT f.name_key, a.id, a.kind, a.aliases, a.score, a.severity_label, a.summary
                     FROM affected f JOIN advisory a ON a.ecosystem = f.ecosystem AND a.id = f.advisory_id
                     WHERE f.ecosystem = ?1 AND f.all_versions = 1",
                )
                .map_err(sql(&self.path))?;
            let rows = stmt
                .query_map([eco.osv_name()], |r| {
                    let kind: String = r.get(2)?;
                    let aliases: String = r.get(3)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        Finding {
                            id: r.get(1)?,
                            kind: if kind == "malicious" { AdvisoryKind::Malicious } else { AdvisoryKind::Vulnerability },
                            aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                            score: r.get::<_, Option<f64>>(4)?.map(|s| s as f32),
                            severity: r.get(5)?,
                            summary: r.get(6)?,
                        },
                    ))
                })
                .map_err(sql(&self.path))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql(&self.path))
        })
    }

    /// Number of advisory and affected rows of an ecosystem (tests, `mirror status`).
    pub fn counts(&self, eco: Ecosystem) -> Result<(u64, u64), StoreError> {
        self.with_reader(|conn| {
            let adv: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM advisory WHERE ecosystem = ?1",
                    [eco.osv_name()],
                    |r| r.get(0),
                )
                .map_err(sql(&self.path))?;
            let aff: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM affected WHERE ecosystem = ?1",
                    [eco.osv_name()],
                    |r| r.get(0),
                )
                .map_err(sql(&self.path))?;
            Ok((adv as u64, aff as u64))
        })
    }

    /// One advisory by id (explanations).
    pub fn advisory(
        &self,
        eco: Ecosystem,
        id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.with_reader(|conn| {
            conn.query_row(
                "SELECT kind, withdrawn FROM advisory WHERE ecosystem = ?1 AND id = ?2",
                params![eco.osv_name(), id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql(&self.path))
        })
    }
}
