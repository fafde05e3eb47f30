//! End to end with the real clients (npm from the machine; pnpm, yarn 1, yarn 4 and bun from
//! `.tools/npm-clients/`, installed by `scripts/install-npm-clients`) through pkggate against
//! the fake upstream. Each run has its own HOME, caches and config.
//!
//! A missing client is skipped with a notice, unless `CI` or `PKGGATE_E2E` is set: then the
//! test fails and names the install script.

use crate::npm_fake::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Npm,
    Pnpm,
    Yarn1,
    Yarn4,
    Bun,
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// The client's executable, or `None` (skip) when absent and not required.
fn tool(c: Client) -> Option<PathBuf> {
    let found = match c {
        Client::Npm => which("npm"),
        other => {
            let name = match other {
                Client::Pnpm => "pnpm",
                Client::Yarn1 => "yarn1",
                Client::Yarn4 => "yarn4",
                _ => "bun",
            };
            let p = workspace().join(".tools/npm-clients/bin").join(name);
            p.is_file().then_some(p)
        }
    };
    if found.is_none() {
        let required =
            std::env::var_os("CI").is_some() || std::env::var_os("PKGGATE_E2E").is_some();
        assert!(
            !required,
            "{c:?} is not installed: run scripts/install-npm-clients (CI/PKGGATE_E2E is set, so this is a failure)"
        );
        eprintln!(
            "SKIP: {c:?} is not installed; run scripts/install-npm-clients to enable this test"
        );
    }
    found
}

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    proj: PathBuf,
    registry: String,
}

impl Project {
    fn new(c: Client, registry: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let proj = root.join("proj");
        let registry = format!("{registry}/");
        write(
            &proj.join("package.json"),
            r#"{"name":"e2e-proj","version":"1.0.0","private":true}"#,
        );
        write(
            &proj.join(".npmrc"),
            &format!(
                "registry={registry}\nfetch-retries=0\nfetch-retry-mintimeout=100\nfetch-retry-maxtimeout=200\n"
            ),
        );
        write(&root.join("home/.npmrc"), &format!("registry={registry}\n"));
        if c == Client::Yarn4 {
            write(
                &proj.join(".yarnrc.yml"),
                &format!(
                    "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\nnodeLinker: node-modules\nenableTelemetry: false\nenableGlobalCache: false\nenableImmutableInstalls: false\nenableScripts: true\n",
                    registry.trim_end_matches('/')
                ),
            );
            write(&proj.join("yarn.lock"), "");
        }
        if c == Client::Bun {
            write(
                &proj.join("bunfig.toml"),
                &format!("[install]\nregistry = \"{registry}\"\n"),
            );
        }
        Project {
            _dir: dir,
            root,
            proj,
            registry,
        }
    }

    fn command(&self, c: Client, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        let home = self.root.join("home");
        cmd.current_dir(&self.proj)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("USERPROFILE", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("npm_config_userconfig", home.join(".npmrc"))
            .env("npm_config_cache", self.root.join("npm-cache"))
            .env("npm_config_registry", &self.registry)
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            // Failures are expected here: no retries with back-off.
            .env("npm_config_fetch_retries", "0")
            .env("npm_config_fetch_retry_mintimeout", "100")
            .env("npm_config_fetch_retry_maxtimeout", "200")
            .env("NO_UPDATE_NOTIFIER", "1")
            .env("YARN_CACHE_FOLDER", self.root.join("yarn-cache"))
            .env("YARN_GLOBAL_FOLDER", self.root.join("yarn-global"))
            .env("YARN_ENABLE_IMMUTABLE_INSTALLS", "false")
            .env("YARN_ENABLE_TELEMETRY", "0")
            .env("BUN_INSTALL_CACHE_DIR", self.root.join("bun-cache"))
            .env("BUN_INSTALL", self.root.join("bun-home"))
            .env("DO_NOT_TRACK", "1")
            .env("COREPACK_ENABLE_STRICT", "0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if c == Client::Pnpm {
            cmd.env("npm_config_store_dir", self.root.join("pnpm-store"));
        }
        cmd
    }

    /// The tail of npm's debug logs (for failure messages).
    fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.root.join("npm-cache/_logs")) {
            for e in rd.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&lines[lines.len().saturating_sub(40)..].join("\n"));
            }
        }
        out
    }

    fn installed(&self, name: &str) -> Option<String> {
        let p = self
            .proj
            .join("node_modules")
            .join(name)
            .join("package.json");
        let text = std::fs::read_to_string(p).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["version"].as_str().map(str::to_string)
    }
}

/// Run a client command to completion (killed after `limit`); (success, stdout+stderr).
async fn run(cmd: Command, limit: Duration) -> (bool, String) {
    let started = Instant::now();
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let r = run_inner(cmd, limit).await;
    eprintln!("e2e: {what} took {:?} (ok={})", started.elapsed(), r.0);
    r
}

async fn run_inner(mut cmd: Command, limit: Duration) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("spawn client");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out_t = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let err_t = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = format!(
            "{}\n{}",
            out_t.join().unwrap_or_default(),
            err_t.join().unwrap_or_default()
        );
        match status {
            Some(s) => (s.success(), text),
            None => (false, format!("TIMED OUT after {limit:?}\n{text}")),
        }
    })
    .await
    .unwrap()
}

fn add_args(c: Client, pkgs: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = match c {
        Client::Npm => vec!["install".into(), "--no-fund".into()],
        Client::Pnpm => vec![
            "add".into(),
            "--config.update-notifier=false".into(),
            "--config.fetch-retries=0".into(),
            "--config.fetch-retry-mintimeout=100".into(),
            "--config.fetch-retry-maxtimeout=200".into(),
        ],
        Client::Yarn1 => vec![
            "add".into(),
            "--non-interactive".into(),
            "--no-progress".into(),
        ],
        Client::Yarn4 => vec!["add".into()],
        Client::Bun => vec!["add".into()],
    };
    a.extend(pkgs.iter().map(|s| s.to_string()));
    a
}

const POLICY: &str = "fail_closed: true\nblock_malicious: true\nmin_package_age_days: 7\ndeny_lifecycle_scripts: true\n";

/// The packages every client installs.
fn populate(h: &Harness) {
    let old = NOW - 100 * DAY;
    h.add(
        "alpha",
        &[
            Ver::new("1.0.0", old),
            Ver::new("1.1.0", old + DAY),
            Ver::new("2.0.0", old + 2 * DAY),
        ],
        &[("latest", "2.0.0")],
    );
    h.add(
        "@sc/gamma",
        &[Ver::new("1.0.0", old), Ver::new("1.1.0", old + DAY)],
        &[("latest", "1.1.0")],
    );
    h.add(
        "young",
        &[Ver::new("1.0.0", old), Ver::new("1.1.0", NOW - 2 * DAY)],
        &[("latest", "1.1.0")],
    );
    h.add(
        "scripty",
        &[
            Ver::new("1.0.0", old),
            Ver::new("1.1.0", old + DAY).script(
                "postinstall",
                "node -e \"require('fs').writeFileSync('ran','')\"",
            ),
        ],
        &[("latest", "1.1.0")],
    );
    h.add(
        "tampered",
        &[Ver::new("1.0.0", old).tampered()],
        &[("latest", "1.0.0")],
    );
    h.add(
        "evil",
        &[Ver::new("1.0.0", old), Ver::new("1.0.1", old + DAY)],
        &[("latest", "1.0.1")],
    );
}

const MAL: &[(&str, &[&str])] = &[
    ("alpha", &["2.0.0"]),
    ("@sc/gamma", &["1.1.0"]),
    ("evil", &["1.0.0", "1.0.1"]),
];

async fn client_scenario(c: Client) {
    let Some(bin) = tool(c) else { return };
    let h = Harness::start(POLICY, MAL).await;
    populate(&h);
    let limit = Duration::from_secs(120);

    // Malicious latest stripped (also with an explicit @latest), scoped names, a too-young
    // latest skipped, an install-script version skipped (full doc for npm and yarn 4,
    // abbreviated for pnpm, yarn 1 and bun).
    let p = Project::new(c, &h.base);
    let args = add_args(c, &["alpha@latest", "@sc/gamma", "young", "scripty"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(p.command(c, &bin, &args), limit).await;
    assert!(ok, "{c:?} install failed:\n{out}\n{}", p.logs());
    assert_eq!(
        p.installed("alpha").as_deref(),
        Some("1.1.0"),
        "{c:?}\n{out}"
    );
    assert_eq!(p.installed("@sc/gamma").as_deref(), Some("1.0.0"), "{c:?}");
    assert_eq!(p.installed("young").as_deref(), Some("1.0.0"), "{c:?}");
    assert_eq!(p.installed("scripty").as_deref(), Some("1.0.0"), "{c:?}");
    assert!(!p.proj.join("node_modules/scripty/ran").exists());

    // Every version blocked: 403 (npm and yarn 1 show the reason).
    let p = Project::new(c, &h.base);
    let args = add_args(c, &["evil"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(p.command(c, &bin, &args), limit).await;
    assert!(!ok, "{c:?} installed a blocked package:\n{out}");
    if matches!(c, Client::Npm | Client::Yarn1) {
        // npm and yarn 1 print the body's `error`.
        assert!(
            out.contains("blocked_by_pkggate: block_malicious MAL-2026-"),
            "{c:?} hides the reason:\n{out}"
        );
    }
    if c != Client::Yarn1 {
        assert!(out.contains("403"), "{c:?} does not report 403:\n{out}");
    }
    assert!(p.installed("evil").is_none());

    // A tampered tarball makes the install fail.
    let p = Project::new(c, &h.base);
    let args = add_args(c, &["tampered"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(p.command(c, &bin, &args), limit).await;
    assert!(!ok, "{c:?} accepted a tampered tarball:\n{out}");
    assert!(p.installed("tampered").is_none(), "{c:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_npm() {
    client_scenario(Client::Npm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_pnpm() {
    client_scenario(Client::Pnpm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_yarn1() {
    client_scenario(Client::Yarn1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_yarn4() {
    client_scenario(Client::Yarn4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_bun() {
    client_scenario(Client::Bun).await;
}

/// `npm ci` from a lockfile never asks for the document: the artifact gate decides, with
/// the intelligence and with the age rule (facts fetched by pkggate itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_npm_ci_lockfile_pinned_to_blocked_versions() {
    let Some(bin) = tool(Client::Npm) else { return };
    let h = Harness::start(POLICY, MAL).await;
    populate(&h);
    let lock = |name: &str, version: &str| {
        let s = synthetic(&h.upstream_base, name, &[Ver::new(version, 0)], &[]);
        let tgz = &s.tarballs[0].1;
        let p = Project::new(Client::Npm, &h.base);
        write(
            &p.proj.join("package.json"),
            &format!(
                r#"{{"name":"e2e-proj","version":"1.0.0","private":true,"dependencies":{{"{name}":"{version}"}}}}"#
            ),
        );
        write(
            &p.proj.join("package-lock.json"),
            &serde_json::to_string_pretty(&serde_json::json!({
                "name": "e2e-proj", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
                "packages": {
                    "": {"name": "e2e-proj", "version": "1.0.0", "dependencies": {name: version}},
                    format!("node_modules/{name}"): {
                        "version": version,
                        "resolved": format!("{}/{name}/-/{name}-{version}.tgz", h.base),
                        "integrity": sri512(tgz),
                    }
                }
            }))
            .unwrap(),
        );
        p
    };
    for (name, version, reason) in [
        ("alpha", "2.0.0", "blocked_by_pkggate: block_malicious"),
        ("young", "1.1.0", "blocked_by_pkggate: min_package_age_days"),
    ] {
        let p = lock(name, version);
        let (ok, out) = run(
            p.command(Client::Npm, &bin, &["ci", "--no-audit", "--no-fund"]),
            Duration::from_secs(120),
        )
        .await;
        assert!(!ok, "npm ci installed {name}@{version}:\n{out}");
        assert!(out.contains("403"), "{out}");
        assert!(
            out.contains(reason),
            "npm does not print the reason:\n{out}"
        );
        assert!(p.installed(name).is_none());
        // The tarball never left upstream.
        assert_eq!(
            h.upstream.hits(&format!("/{name}/-/{name}-{version}.tgz")),
            0
        );
    }
    // And an allowed pinned version installs.
    let p = lock("young", "1.0.0");
    let (ok, out) = run(
        p.command(Client::Npm, &bin, &["ci", "--no-audit", "--no-fund"]),
        Duration::from_secs(120),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(p.installed("young").as_deref(), Some("1.0.0"));
    h.stop().await;
}

/// Live smoke test against the real npm registry (address from `PKGGATE_UPSTREAM_NPM` or
/// the configured default), with the whole OSV npm bundle loaded. Runs only with
/// `PKGGATE_LIVE=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_npm_install_through_pkggate() {
    if std::env::var("PKGGATE_LIVE").as_deref() != Ok("1") {
        eprintln!(
            "SKIP: live npm smoke test; set PKGGATE_LIVE=1 to run it against the real registry"
        );
        return;
    }
    let Some(bin) = tool(Client::Npm) else { return };
    let upstream = std::env::var("PKGGATE_UPSTREAM_NPM").unwrap_or_else(|_| {
        pkggate::config::Config::defaults()
            .upstream_npm
            .as_str()
            .trim_end_matches('/')
            .to_string()
    });
    let bundle = crate::support::osv("npm", "all.zip");
    let h = Harness::start_bundle(
        FakeNpm::default(),
        upstream,
        DEFAULT_POLICY,
        &bundle,
        &[],
        tempfile::tempdir().unwrap(),
    )
    .await;
    let p = Project::new(Client::Npm, &h.base);
    let (ok, out) = run(
        p.command(Client::Npm, &bin, &["install", "express", "--no-fund"]),
        Duration::from_secs(300),
    )
    .await;
    assert!(
        ok,
        "npm install express through pkggate failed:\n{out}\n{}",
        p.logs()
    );
    assert!(p.installed("express").is_some());
    // A known malicious package's tarball: refused by a pkggate whose upstream is
    // unreachable, so the answer cannot have needed an upstream request.
    let offline = Harness::start_bundle(
        FakeNpm::default(),
        "http://127.0.0.1:1".into(),
        DEFAULT_POLICY,
        &bundle,
        &[],
        tempfile::tempdir().unwrap(),
    )
    .await;
    for base in [&h.base, &offline.base] {
        let (status, _, body) = get(
            &format!("{base}/wlwz-2312-3902/-/wlwz-2312-3902-1.0.0.tgz"),
            &[],
        )
        .await;
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json_of(&body)["source"], "MAL-2024-523");
    }
    offline.stop().await;
    h.stop().await;
}
