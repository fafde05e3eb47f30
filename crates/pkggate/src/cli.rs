//! The command line: `serve`, `config`, `mirror sync|status`, `check`.
//!
//! Every setting of [`crate::config::SETTINGS`] is also a global flag (`--mirror-db PATH`).
//! Exit status: 0 success (for `check`: allowed), 1 `check` found a block, 2 an error
//! (bad configuration, unreadable mirror, …).

use crate::config::{Config, RawInputs, SETTINGS};
use crate::intel::sync::{SyncOptions, SyncOutcome, SyncProgress, sync_ecosystem};
use crate::intel::{IntelStore, now_unix};
use crate::timefmt::{human_age, rfc3339};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use pkggate_formats::osv::AdvisoryKind;
use pkggate_formats::{EcoVersion, Ecosystem};
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
    /// Print the verdict for a package (every advisory) or one version.
    Check {
        /// npm, PyPI (pypi) or crates.io (cargo).
        ecosystem: String,
        /// `name` or `name@version` (scoped npm names: `@scope/name@1.0.0`).
        package: String,
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
        Command::Check { ecosystem, package } => check(&config, &ecosystem, &package),
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

fn check(config: &Config, ecosystem: &str, package: &str) -> anyhow::Result<ExitCode> {
    let eco = Ecosystem::parse_lenient(ecosystem)?;
    let (name, version) = split_spec(package);
    if name.is_empty() {
        anyhow::bail!("empty package name in {package:?}");
    }
    let store = open_store(config)?;
    let state = store.state(eco);
    if !state.loaded() {
        eprintln!(
            "warning: the {eco} mirror has never been loaded (run `pkggate mirror sync`); verdicts are incomplete"
        );
    }
    let rows = store.package_rows(eco, name)?;
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
    match version {
        Some(v) => {
            let parsed = EcoVersion::parse(eco, v);
            let hits: Vec<_> = rows
                .iter()
                .filter(|(_, m)| m.affects(eco, &parsed))
                .map(|(f, _)| f)
                .collect();
            let blocking = hits.iter().find(|f| f.kind == AdvisoryKind::Malicious);
            match blocking {
                Some(f) => println!("{eco} {name}@{v}: blocked (block_malicious {})", f.id),
                None => println!("{eco} {name}@{v}: allowed"),
            }
            for f in &hits {
                println!("  {}", describe(f));
            }
            Ok(if blocking.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        None => {
            let all_blocked = rows
                .iter()
                .any(|(f, m)| f.kind == AdvisoryKind::Malicious && m.covers_all_versions());
            if rows.is_empty() {
                println!("{eco} {name}: no advisories; every version allowed");
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
    }
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
