//! The command line: `serve`, `config`, `mirror sync|status`, `check`, `policy check`,
//! `audit tail|query`.
//!
//! Every setting of [`crate::config::SETTINGS`] is also a global flag (`--mirror-db PATH`).
//! Exit status: 0 success (for `check`: allowed), 1 `check` found a block or `policy check`
//! found the file invalid, 2 an error (bad configuration, unreadable mirror or policy, …).

use crate::audit::MemoryAudit;
use crate::config::{Config, RawInputs, SETTINGS};
use crate::gate::{Gate, VersionInput};
use crate::intel::sync::{SyncOptions, SyncOutcome, SyncProgress, sync_ecosystem};
use crate::intel::{IntelStore, now_unix};
use crate::policy_state::PolicyHandle;
use crate::timefmt::{human_age, rfc3339};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use pkggate_formats::Ecosystem;
use pkggate_formats::osv::AdvisoryKind;
use pkggate_policy::{Action, IntelStatus, Mode, Outcome, Rule};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "pkggate",
    version,
    about = "A self-hosted package firewall for npm, PyPI and cargo"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the registry proxy.
    Serve,
    /// Print the effective configuration and where each value came from.
    Config,
    /// The offline OSV mirror.
    Mirror {
        #[command(subcommand)]
        command: MirrorCommand,
    },
    /// Print the verdict for a package (every advisory) or one version (the policy's
    /// decision with the trace of every rule; exit 1 when blocked).
    Check {
        /// npm, PyPI (pypi) or crates.io (cargo).
        ecosystem: String,
        /// `name` or `name@version` (scoped npm names: `@scope/name@1.0.0`).
        package: String,
    },
    /// The policy file.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Read the audit log (with its rotated files).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file: prints `file:line:col: message` and exits 1 when invalid.
    Check {
        /// The policy file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the last lines of the audit log (PKGGATE_AUDIT_LOG / --audit-log).
    Tail {
        /// How many lines.
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
        /// Keep printing lines as they are written (follows rotation).
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print the lines that match every filter given.
    Query {
        /// Package name (compared in the ecosystem's normal form).
        #[arg(long)]
        package: Option<String>,
        /// allow, block or warn.
        #[arg(long)]
        action: Option<String>,
        /// Only lines newer than this: `90s`, `30m`, `1h`, `2d`, `1w`, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// npm, PyPI (pypi) or crates.io (cargo).
        #[arg(long)]
        ecosystem: Option<String>,
        /// The deciding rule (`block_malicious`, `denylist`, …).
        #[arg(long)]
        rule: Option<String>,
        /// One request (the `x-request-id` a client saw).
        #[arg(long)]
        request_id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MirrorCommand {
    /// Refresh the mirror now.
    Sync {
        /// Only this ecosystem.
        #[arg(long)]
        ecosystem: Option<String>,
        /// Use this source instead of the configured one (URL, zip path, file:// or directory).
        #[arg(long)]
        source: Option<String>,
    },
    /// Show what the mirror holds.
    Status,
}

fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for s in SETTINGS {
        let flag: &'static str = Box::leak(s.flag().into_boxed_str());
        cmd = cmd.arg(
            clap::Arg::new(s.var)
                .long(flag)
                .global(true)
                .value_name("VALUE")
                .help(format!("{} [{}]", s.help, s.var))
                .help_heading("Settings (flag > env > .env > default)"),
        );
    }
    cmd
}

fn flags_of(matches: &ArgMatches) -> BTreeMap<&'static str, String> {
    let mut flags = BTreeMap::new();
    for s in SETTINGS {
        if let Ok(Some(v)) = matches.try_get_one::<String>(s.var) {
            flags.insert(s.var, v.clone());
        }
    }
    flags
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let config =
        match RawInputs::from_process(flags_of(&matches)).and_then(|raw| Config::load(&raw)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pkggate: configuration error: {e}");
                return ExitCode::from(2);
            }
        };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pkggate: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pkggate: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Every line of a request carries its id (the `request` span the server opens).
    // Colour only on a terminal: operators grep files and journald (as 0.1.x wrote them).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if config.log_json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            crate::server::serve(Arc::new(config)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config => {
            print!("{}", config.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Mirror {
            command: MirrorCommand::Status,
        } => mirror_status(&config),
        Command::Mirror {
            command: MirrorCommand::Sync { ecosystem, source },
        } => mirror_sync(&config, ecosystem, source).await,
        Command::Check { ecosystem, package } => check(&config, &ecosystem, &package).await,
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => Ok(policy_check(&file)),
        Command::Audit {
            command: AuditCommand::Tail { lines, follow },
        } => audit_tail(&config, lines, follow).await,
        Command::Audit {
            command:
                AuditCommand::Query {
                    package,
                    action,
                    since,
                    ecosystem,
                    rule,
                    request_id,
                },
        } => audit_query(
            &config,
            &AuditFilter {
                package,
                action,
                since,
                ecosystem,
                rule,
                request_id,
            },
        ),
    }
}

fn open_store(config: &Config) -> anyhow::Result<Arc<IntelStore>> {
    if let Some(dir) = config
        .mirror_db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(IntelStore::open(&config.mirror_db)?)
}

fn mirror_status(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let now = now_unix();
    println!("mirror {}", config.mirror_db.display());
    for s in store.states() {
        let age = s
            .age_seconds(now)
            .map(human_age)
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<10} records={:<6} skipped={:<4} withdrawn={:<4} age={:<6} last_success={} revision={}{}",
            s.ecosystem.osv_name(),
            s.records,
            s.skipped,
            s.withdrawn,
            age,
            s.last_success.map(rfc3339).unwrap_or_else(|| "-".into()),
            s.revision
                .as_deref()
                .map(|r| &r[..r.len().min(12)])
                .unwrap_or("-"),
            s.last_error
                .as_deref()
                .map(|e| format!(" last_error={e:?}"))
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn mirror_sync(
    config: &Config,
    ecosystem: Option<String>,
    source: Option<String>,
) -> anyhow::Result<ExitCode> {
    let ecosystems: Vec<Ecosystem> = match &ecosystem {
        Some(e) => vec![Ecosystem::parse_lenient(e)?],
        None => Ecosystem::ALL
            .into_iter()
            .filter(|&e| config.ecosystem_enabled(e))
            .collect(),
    };
    if source.is_some() && ecosystems.len() != 1 {
        anyhow::bail!("--source needs --ecosystem");
    }
    let store = open_store(config)?;
    let client = crate::intel::source::bundle_client(config.upstream_timeout);
    let mut failed = false;
    for eco in ecosystems {
        let spec = source
            .clone()
            .unwrap_or_else(|| config.bundle_source(eco).to_string());
        let started = std::time::Instant::now();
        let (progress, bar) = progress_for(eco);
        let opts = SyncOptions {
            max_bundle_bytes: config.mirror_max_bundle_bytes,
            progress: Some(progress),
        };
        let result = sync_ecosystem(&store, &client, eco, &spec, &opts).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(SyncOutcome::Replaced(stats, state)) => println!(
                "{}: {} records ({} skipped, {} withdrawn) from {} in {secs:.2}s, revision {}",
                eco,
                stats.records,
                stats.skipped,
                stats.withdrawn,
                spec,
                state
                    .revision
                    .as_deref()
                    .map(|r| &r[..r.len().min(12)])
                    .unwrap_or("-")
            ),
            Ok(SyncOutcome::Unchanged(state)) => {
                println!(
                    "{}: unchanged ({} records) from {} in {secs:.2}s",
                    eco, state.records, spec
                )
            }
            Err(e) => {
                failed = true;
                eprintln!("{eco}: sync failed, previous data kept: {e:#}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

type ProgressPair = (
    crate::intel::sync::ProgressFn,
    Option<indicatif::ProgressBar>,
);

/// A progress bar on a terminal, plain lines (every ~10%) otherwise.
fn progress_for(eco: Ecosystem) -> ProgressPair {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>10} {msg:<11} [{bar:30}] {pos}/{len}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(eco.osv_name());
        let b = bar.clone();
        let f = move |p: SyncProgress| match p {
            SyncProgress::Downloading { bytes, total } => {
                b.set_message("downloading");
                b.set_length(total.unwrap_or(bytes));
                b.set_position(bytes);
            }
            SyncProgress::Ingesting { done, total } => {
                b.set_message("ingesting");
                b.set_length(total);
                b.set_position(done);
            }
        };
        (Arc::new(f), Some(bar))
    } else {
        let last = std::sync::Mutex::new((0u8, 0u64));
        let f = move |p: SyncProgress| {
            let (phase, done, total) = match p {
                SyncProgress::Downloading { bytes, total } => (1u8, bytes, total.unwrap_or(0)),
                SyncProgress::Ingesting { done, total } => (2u8, done, total),
            };
            if total == 0 {
                return;
            }
            let tenth = done.saturating_mul(10) / total;
            let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
            if *l != (phase, tenth) {
                *l = (phase, tenth);
                let what = if phase == 1 { "downloaded" } else { "ingested" };
                eprintln!("{eco}: {what} {done}/{total}");
            }
        };
        (Arc::new(f), None)
    }
}

/// Split `name@version`, keeping the leading `@` of scoped npm names.
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(spec.starts_with('@'));
    match spec[search_from..].find('@') {
        Some(i) => {
            let at = search_from + i;
            let version = &spec[at + 1..];
            (&spec[..at], (!version.is_empty()).then_some(version))
        }
        None => (spec, None),
    }
}

/// `pkggate check`: the real policy (PKGGATE_POLICY_FILE) with the mirror's intelligence,
/// through the same gate path as `serve` and the `why` endpoint. Exit 0 allowed (or warned),
/// 1 blocked, 2 error (bad policy, unreadable mirror).
async fn check(config: &Config, ecosystem: &str, package: &str) -> anyhow::Result<ExitCode> {
    let eco = Ecosystem::parse_lenient(ecosystem)?;
    let (name, version) = split_spec(package);
    if name.is_empty() {
        anyhow::bail!("empty package name in {package:?}");
    }
    let policy = match PolicyHandle::load(&config.policy_file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pkggate: invalid policy: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let pstatus = policy.status();
    let store = if config.mirror_enabled {
        let store = open_store(config)?;
        if !store.state(eco).loaded() {
            eprintln!(
                "warning: the {eco} mirror has never been loaded (run `pkggate mirror sync`); verdicts are incomplete"
            );
        }
        Some(store)
    } else {
        None
    };
    let describe = |f: &crate::intel::Finding| {
        let score = f
            .score
            .map(|s| format!(" score {s:.1}"))
            .unwrap_or_default();
        let sev = f
            .severity
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        format!("{} {}{score}{sev}", f.id, f.kind.as_str())
    };
    let Some(v) = version else {
        return check_package(&policy, store.as_deref(), eco, name, &describe);
    };
    // The live fallback is not consulted: `check` answers offline from the mirror.
    let gate = Gate {
        intel: Arc::new(crate::intel::Intel { store, live: None }),
        policy: policy.clone(),
        audit: Arc::new(MemoryAudit::default()),
        clock: Arc::new(now_unix),
        audit_allowed_each: false,
    };
    let (d, intel, findings, revision) = gate.explain(eco, name, &VersionInput::bare(v)).await;
    let verdict = match d.action {
        Action::Block => "blocked",
        Action::Warn => "allowed with a warning (monitor mode)",
        Action::Allow => "allowed",
    };
    let source = d
        .source
        .as_deref()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    println!(
        "{eco} {name}@{v}: {verdict} ({} {}{source})",
        d.rule, d.reason
    );
    let file = if pstatus.defaults {
        format!("{} (not found: 0.1.x defaults)", pstatus.file)
    } else {
        pstatus.file.clone()
    };
    println!("policy: {file}, revision {revision}");
    match &intel {
        IntelStatus::Available => println!("intel: available"),
        IntelStatus::Unavailable { why } => println!("intel: unavailable ({why})"),
    }
    println!("trace:");
    for step in &d.trace {
        let outcome = match step.outcome {
            Outcome::Matched => "matched",
            Outcome::NotMatched => "not matched",
            Outcome::Skipped => "skipped",
            Outcome::Monitored => "monitored",
        };
        println!("  {:<24} {:<12} {}", step.rule, outcome, step.detail);
    }
    if !findings.is_empty() {
        println!("findings:");
        for f in &findings {
            println!("  {}", describe(f));
        }
    }
    println!(
        "facts: publish time, repository and scripts unknown (`check` does not ask the upstream; \
         GET /-/pkggate/why/{}/{name}/{v} on a running pkggate does)",
        eco.key()
    );
    Ok(if d.is_blocked() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `check` without a version: every advisory of the package, and whether the policy blocks
/// every version (a catch-all malicious report with `block_malicious` on).
fn check_package(
    policy: &PolicyHandle,
    store: Option<&IntelStore>,
    eco: Ecosystem,
    name: &str,
    describe: &dyn Fn(&crate::intel::Finding) -> String,
) -> anyhow::Result<ExitCode> {
    let Some(store) = store else {
        anyhow::bail!(
            "the mirror is disabled ({}=false): nothing to list; give a version to see the policy's decision",
            crate::env::MIRROR_ENABLED
        );
    };
    let p = policy.current();
    let rows = store.package_rows(eco, name)?;
    let all_blocked = p.settings(eco).block_malicious
        && p.rule_mode(eco, Rule::BlockMalicious) == Mode::Enforce
        && rows
            .iter()
            .any(|(f, m)| f.kind == AdvisoryKind::Malicious && m.covers_all_versions());
    if rows.is_empty() {
        println!("{eco} {name}: no advisories; every version allowed by intelligence");
    } else if all_blocked {
        println!("{eco} {name}: every version blocked");
    } else {
        println!("{eco} {name}: some versions affected");
    }
    for (f, m) in &rows {
        let which = if m.covers_all_versions() {
            "all versions".to_string()
        } else {
            let mut parts: Vec<String> = m.versions.iter().take(8).cloned().collect();
            if m.versions.len() > 8 {
                parts.push(format!("… {} more", m.versions.len() - 8));
            }
            for r in &m.ranges {
                for i in &r.intervals {
                    let lo = i
                        .introduced
                        .as_deref()
                        .map(|x| format!(">={x}"))
                        .unwrap_or_default();
                    let hi = match (&i.fixed, &i.last_affected) {
                        (Some(f), _) => format!(" <{f}"),
                        (None, Some(l)) => format!(" <={l}"),
                        _ => String::new(),
                    };
                    parts.push(format!("{lo}{hi}").trim().to_string());
                }
            }
            parts.join(", ")
        };
        println!("  {}: {which}", describe(f));
    }
    Ok(if all_blocked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `pkggate policy check FILE`.
fn policy_check(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let name = file.display().to_string();
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: not UTF-8: {e}");
            return ExitCode::from(1);
        }
    };
    match pkggate_policy::Policy::from_yaml(&text, &name) {
        Ok(p) => {
            for w in p.warnings() {
                eprintln!("warning: {w}");
            }
            for e in p.expired_entries(now_unix()) {
                eprintln!("warning: {name}: expired list entry {e:?}");
            }
            println!("{name}: ok (revision {})", p.revision());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn audit_path(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    if config.audit_log == "-" {
        anyhow::bail!(
            "the audit log goes to stdout ({}=-): nothing to read; pass --audit-log PATH",
            crate::env::AUDIT_LOG
        );
    }
    Ok(std::path::PathBuf::from(&config.audit_log))
}

fn report_skipped(skipped: &[crate::audit::read::Skipped]) {
    for s in skipped {
        eprintln!("warning: {s}");
    }
}

/// `pkggate audit tail [-n N] [--follow]`.
async fn audit_tail(config: &Config, lines: usize, follow: bool) -> anyhow::Result<ExitCode> {
    use crate::audit::read;
    use std::io::Write as _;
    let path = audit_path(config)?;
    let mut last: std::collections::VecDeque<String> =
        std::collections::VecDeque::with_capacity(lines.min(100_000));
    let mut push = |l: read::LogLine| {
        if lines == 0 {
            return;
        }
        if last.len() == lines {
            last.pop_front();
        }
        last.push_back(l.text);
    };
    let files = read::log_files(&path)?;
    if files.is_empty() && !follow {
        anyhow::bail!("{}: no audit log", path.display());
    }
    let mut skipped = Vec::new();
    for f in &files {
        skipped.extend(read::read_file(f, &mut push)?);
    }
    // In follow mode a torn last line of the current file may be a write in progress.
    let (torn_current, skipped): (Vec<_>, Vec<_>) = skipped
        .into_iter()
        .partition(|s| follow && matches!(s, read::Skipped::Torn { file, .. } if *file == path));
    report_skipped(&skipped);
    {
        let mut out = std::io::stdout().lock();
        for l in &last {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: start after the last complete line of the current file.
    let torn_bytes = torn_current
        .iter()
        .map(|s| match s {
            read::Skipped::Torn { bytes, .. } => *bytes as u64,
            _ => 0,
        })
        .sum::<u64>();
    let mut follower = Follower::open(&path, torn_bytes)?;
    loop {
        follower.poll(&mut |text| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        })?;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Reads what is appended to the log, across rotations.
struct Follower {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    ino: Option<u64>,
    partial: Vec<u8>,
}

fn ino_of(m: &std::fs::Metadata) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

impl Follower {
    /// Open `path` positioned `back` bytes before its end (a partial line to complete).
    fn open(path: &std::path::Path, back: u64) -> std::io::Result<Follower> {
        use std::io::Seek;
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            ino: None,
            partial: Vec::new(),
        };
        if let Ok(mut file) = std::fs::File::open(path) {
            let m = file.metadata()?;
            file.seek(std::io::SeekFrom::Start(m.len().saturating_sub(back)))?;
            f.ino = ino_of(&m);
            f.file = Some(file);
        }
        Ok(f)
    }

    fn drain(&mut self, emit: &mut dyn FnMut(&str)) -> std::io::Result<()> {
        use std::io::Read;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        self.partial.extend_from_slice(&chunk);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            match crate::audit::read::parse_line(&text) {
                Ok(Some(_)) => emit(&text),
                Ok(None) => {}
                Err(e) => eprintln!(
                    "warning: {}: skipped a malformed line: {e}",
                    self.path.display()
                ),
            }
        }
        Ok(())
    }

    fn poll(&mut self, emit: &mut dyn FnMut(&str)) -> std::io::Result<()> {
        self.drain(emit)?;
        // Rotated or recreated: finish the old file (done above), then read the new one.
        let now = std::fs::metadata(&self.path).ok();
        let replaced = match (&now, self.ino) {
            (Some(m), Some(ino)) => ino_of(m) != Some(ino),
            (Some(_), None) => true,
            _ => false,
        };
        let truncated = match (&now, self.file.as_mut()) {
            (Some(m), Some(f)) => {
                use std::io::Seek;
                m.len() < f.stream_position()?
            }
            _ => false,
        };
        if replaced || truncated {
            if !self.partial.is_empty() {
                eprintln!(
                    "warning: {}: skipped a torn last line ({} bytes without a newline)",
                    self.path.display(),
                    self.partial.len()
                );
                self.partial.clear();
            }
            self.file = std::fs::File::open(&self.path).ok();
            self.ino = now.as_ref().and_then(ino_of);
            self.drain(emit)?;
        }
        Ok(())
    }
}

/// Filters of `pkggate audit query`.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub package: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub ecosystem: Option<String>,
    pub rule: Option<String>,
    pub request_id: Option<String>,
}

/// `pkggate audit query …`: matching lines, oldest first, on stdout.
fn audit_query(config: &Config, filter: &AuditFilter) -> anyhow::Result<ExitCode> {
    use crate::audit::read;
    use std::io::Write as _;
    let path = audit_path(config)?;
    let since = match &filter.since {
        None => None,
        Some(s) => Some(match read::parse_duration(s) {
            Some(secs) => now_unix() - secs as i64,
            None => read::parse_ts(s).ok_or_else(|| {
                anyhow::anyhow!("--since {s:?}: expected 90s, 30m, 1h, 2d, 1w or an RFC 3339 time")
            })?,
        }),
    };
    let eco = filter
        .ecosystem
        .as_deref()
        .map(Ecosystem::parse_lenient)
        .transpose()?;
    if let Some(a) = &filter.action
        && !matches!(a.as_str(), "allow" | "block" | "warn")
    {
        anyhow::bail!("--action {a:?}: expected allow, block or warn");
    }
    if read::log_files(&path)?.is_empty() {
        anyhow::bail!("{}: no audit log", path.display());
    }
    let field = |l: &read::LogLine, k: &str| -> Option<String> {
        l.event.get(k).and_then(|v| v.as_str()).map(str::to_string)
    };
    let mut out = std::io::stdout().lock();
    let mut matched = 0u64;
    let mut write_error = None;
    let skipped = read::read_log(&path, &mut |l| {
        let line_eco = field(&l, "ecosystem").and_then(|e| Ecosystem::from_osv_name(&e));
        if let Some(e) = eco
            && line_eco != Some(e)
        {
            return;
        }
        if let Some(p) = &filter.package {
            let got = field(&l, "package").unwrap_or_default();
            let same = match line_eco {
                Some(e) => e.normalize_name(&got) == e.normalize_name(p),
                None => got == *p,
            };
            if !same {
                return;
            }
        }
        for (want, key) in [
            (&filter.action, "action"),
            (&filter.rule, "rule"),
            (&filter.request_id, "request_id"),
        ] {
            if let Some(w) = want
                && field(&l, key).as_deref() != Some(w.as_str())
            {
                return;
            }
        }
        if let Some(since) = since {
            match field(&l, "ts").as_deref().and_then(read::parse_ts) {
                Some(t) if t >= since => {}
                _ => return,
            }
        }
        matched += 1;
        if write_error.is_none()
            && let Err(e) = writeln!(out, "{}", l.text)
        {
            write_error = Some(e);
        }
    })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    out.flush()?;
    report_skipped(&skipped);
    eprintln!("{matched} matching lines");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_splitting() {
        assert_eq!(split_spec("lodash@4.17.20"), ("lodash", Some("4.17.20")));
        assert_eq!(
            split_spec("@scope/pkg@1.0.0"),
            ("@scope/pkg", Some("1.0.0"))
        );
        assert_eq!(split_spec("@scope/pkg"), ("@scope/pkg", None));
        assert_eq!(split_spec("requests"), ("requests", None));
        assert_eq!(split_spec("x@"), ("x", None));
    }

    #[test]
    fn every_setting_is_a_flag() {
        let m = command()
            .try_get_matches_from(["pkggate", "config", "--mirror-db", "x.db", "--port", "9"])
            .unwrap();
        let flags = flags_of(&m);
        assert_eq!(
            flags.get(crate::env::MIRROR_DB).map(String::as_str),
            Some("x.db")
        );
        assert_eq!(flags.get(crate::env::PORT).map(String::as_str), Some("9"));
    }
}
