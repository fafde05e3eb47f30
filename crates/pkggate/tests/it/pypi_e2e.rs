//! End to end with real clients (the machine's pip 23.2 and, from `.tools/venv` built by
//! `scripts/install-python-clients`, a current pip, uv, poetry and pdm) through pkggate
//! against the fake PyPI. A missing client skips with a notice, or fails when `CI` or
//! `PKGGATE_E2E` is set.

use crate::pypi_fake::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

fn tools() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.tools/venv/bin"
    ))
}

/// The client's command, or `None` (after the skip notice) when it is not installed.
fn client(name: &str) -> Option<Vec<String>> {
    let found: Option<Vec<String>> = match name {
        "pip23" => Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| vec!["python3".into(), "-m".into(), "pip".into()]),
        _ => {
            let bin = match name {
                "pip" => tools().join("pip"),
                other => tools().join(other),
            };
            bin.exists()
                .then(|| vec![bin.to_string_lossy().into_owned()])
        }
    };
    if found.is_none() {
        let msg = format!(
            "PyPI e2e: client `{name}` is not installed; run scripts/install-python-clients"
        );
        if std::env::var_os("CI").is_some() || std::env::var_os("PKGGATE_E2E").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIP {msg}");
    }
    found
}

struct Run {
    ok: bool,
    out: String,
}

/// Run a client with caches, config and home isolated in `home`.
async fn run(cmd: &[String], args: &[&str], home: &Path, cwd: &Path, index: &str) -> Run {
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]).args(args).current_dir(cwd);
    for var in [
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_INDEX",
        "UV_DEFAULT_INDEX",
        "VIRTUAL_ENV",
        "PYTHONPATH",
    ] {
        c.env_remove(var);
    }
    c.env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("PIP_CACHE_DIR", home.join("pip-cache"))
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        .env("POETRY_CACHE_DIR", home.join("poetry-cache"))
        .env("POETRY_CONFIG_DIR", home.join("poetry-config"))
        .env("POETRY_VIRTUALENVS_IN_PROJECT", "true")
        .env("PDM_CACHE_DIR", home.join("pdm-cache"))
        .env("PDM_CHECK_UPDATE", "false")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_INDEX_URL", index)
        .env("UV_NO_CONFIG", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("NO_COLOR", "1")
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring");
    let shown = format!("{} {}", cmd.join(" "), args.join(" "));
    let o = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    Run {
        ok: o.status.success(),
        out: format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn venv_python() -> String {
    tools().join("python").to_string_lossy().into_owned()
}

/// Installed version of `dist` in a `--target` directory.
fn installed(target: &Path, dist: &str) -> Option<String> {
    let prefix = format!("{}-", dist.replace('-', "_"));
    std::fs::read_dir(target).ok()?.flatten().find_map(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.strip_prefix(&prefix)?
            .strip_suffix(".dist-info")
            .map(str::to_string)
    })
}

struct Env {
    fake: FakePypi,
    gate: GateUnderTest,
    dir: tempfile::TempDir,
    n: std::sync::atomic::AtomicU32,
}

impl Env {
    async fn new(policy: &str) -> Env {
        let fake = FakePypi::start().await;
        standard_projects(&fake);
        let gate = start_gate(&fake, policy, standard_records(), &[]).await;
        Env {
            fake,
            gate,
            dir: tempfile::tempdir().unwrap(),
            n: Default::default(),
        }
    }

    fn index(&self) -> String {
        self.gate.url("/simple/")
    }

    fn fresh(&self) -> PathBuf {
        let i = self.n.fetch_add(1, Ordering::SeqCst);
        let d = self.dir.path().join(format!("run{i}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// `install --target` with a pip-like or uv client; returns (run, target).
    async fn install(&self, cmd: &[String], uv: bool, args: &[&str]) -> (Run, PathBuf) {
        let home = self.fresh();
        let target = home.join("target");
        let index = self.index();
        let t = target.to_string_lossy().into_owned();
        let py = venv_python();
        let mut a: Vec<&str> = Vec::new();
        if uv {
            a.extend(["pip", "install", "--python", &py]);
        } else {
            a.extend(["install", "--no-compile"]);
        }
        a.extend(["--target", &t, "--index-url", &index]);
        a.extend(args);
        let r = run(cmd, &a, &home, &home, &index).await;
        (r, target)
    }

    /// The pkggate URL of an upstream file of `project` (as a lockfile would pin it).
    fn file_url(&self, project: &str, filename: &str) -> String {
        let page: serde_json::Value =
            serde_json::from_str(&self.fake.json_page(project).unwrap()).unwrap();
        let f = page["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filename"] == filename)
            .unwrap();
        let rest = f["url"]
            .as_str()
            .unwrap()
            .strip_prefix(&self.fake.files_base())
            .unwrap()
            .to_string();
        self.gate.url(&format!("/files/{project}/{rest}"))
    }

    fn metadata_fetched(&self) -> bool {
        self.fake
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _)| p.ends_with(".whl.metadata"))
    }
}

/// The scenarios every pip-like client (and uv) must pass.
async fn pip_like(name: &str, uv: bool) {
    let Some(cmd) = client(name) else { return };
    let env = Env::new("{}").await;
    let file = |f: &str| env.file_url("demo-pkg", f);

    // The malicious newest version is skipped, the yanked one too: 1.0.0 installs.
    let (r, t) = env.install(&cmd, uv, &["demo-pkg"]).await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(
        installed(&t, "demo-pkg").as_deref(),
        Some("1.0.0"),
        "{}",
        r.out
    );
    if name != "pip23" {
        assert!(env.metadata_fetched(), "{name} did not fetch .metadata");
    }

    // A wheel listed without core-metadata: the client reads the wheel itself (uv probes
    // with HEAD / ranges first; pkggate advertises no ranges and answers in full).
    let mut bare = FakeFile::wheel("bare-pkg", "1.0.0", days_ago(100));
    bare.metadata = None;
    env.fake.add("bare-pkg", vec![bare]);
    let before = env.fake.file_requests();
    let (r, t) = env.install(&cmd, uv, &["bare-pkg"]).await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(
        installed(&t, "bare-pkg").as_deref(),
        Some("1.0.0"),
        "{}",
        r.out
    );
    assert!(
        env.fake.file_requests() > before,
        "{name}: the wheel came through pkggate"
    );

    // Pinned to the blocked version: no such version through the index …
    let (r, _) = env.install(&cmd, uv, &["demo-pkg==2.0.0"]).await;
    assert!(!r.ok, "{name}: {}", r.out);
    // … and 403 when the file URL is pinned (a lockfile install).
    let (r, _) = env
        .install(
            &cmd,
            uv,
            &[&file("demo_pkg-2.0.0-py3-none-any.whl"), "--no-deps"],
        )
        .await;
    assert!(!r.ok, "{name}: {}", r.out);
    assert!(r.out.contains("403"), "{name}: {}", r.out);

    // Yanked: a pinned yanked version installs with a warning.
    let (r, t) = env.install(&cmd, uv, &["demo-pkg==1.1.0"]).await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(installed(&t, "demo-pkg").as_deref(), Some("1.1.0"));
    assert!(r.out.to_lowercase().contains("yanked"), "{name}: {}", r.out);

    // --require-hashes with the index's hashes.
    let page: serde_json::Value =
        serde_json::from_str(&env.fake.json_page("demo-pkg").unwrap()).unwrap();
    let hashes: Vec<String> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["filename"].as_str().unwrap().contains("-1.0.0"))
        .map(|f| format!("--hash=sha256:{}", f["hashes"]["sha256"].as_str().unwrap()))
        .collect();
    let req = env.fresh().join("requirements.txt");
    std::fs::write(&req, format!("demo-pkg==1.0.0 {}\n", hashes.join(" "))).unwrap();
    let req_s = req.to_string_lossy().into_owned();
    let (r, t) = env
        .install(&cmd, uv, &["--require-hashes", "-r", &req_s])
        .await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(installed(&t, "demo-pkg").as_deref(), Some("1.0.0"));

    // A tampered file fails the install.
    let (r, t) = env.install(&cmd, uv, &["tamper-pkg"]).await;
    assert!(!r.ok, "{name}: {}", r.out);
    assert_eq!(installed(&t, "tamper-pkg"), None);

    // Upload-time filters still work through pkggate (young-pkg: 100 d and 1 d old).
    let cutoff = pkggate::timefmt::rfc3339(days_ago(50));
    let flag = if uv {
        Some("--exclude-newer")
    } else if name == "pip" {
        Some("--uploaded-prior-to")
    } else {
        None
    };
    if let Some(flag) = flag {
        let (r, t) = env.install(&cmd, uv, &[flag, &cutoff, "young-pkg"]).await;
        assert!(r.ok, "{name}: {}", r.out);
        assert_eq!(
            installed(&t, "young-pkg").as_deref(),
            Some("1.0.0"),
            "{}",
            r.out
        );
    }
    let (r, t) = env.install(&cmd, uv, &["young-pkg"]).await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(installed(&t, "young-pkg").as_deref(), Some("1.1.0"));
    env.gate.running.stop().await.unwrap();

    // Too young under min_package_age_days: skipped at the index, refused as a file.
    let env = Env::new("ecosystems:\n  PyPI:\n    min_package_age_days: 7\n").await;
    let (r, t) = env.install(&cmd, uv, &["young-pkg"]).await;
    assert!(r.ok, "{name}: {}", r.out);
    assert_eq!(installed(&t, "young-pkg").as_deref(), Some("1.0.0"));
    let url = env.file_url("young-pkg", "young_pkg-1.1.0-py3-none-any.whl");
    let (r, _) = env.install(&cmd, uv, &[&url, "--no-deps"]).await;
    assert!(!r.ok && r.out.contains("403"), "{name}: {}", r.out);
    env.gate.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_machine_pip_23() {
    pip_like("pip23", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_current_pip() {
    pip_like("pip", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_uv() {
    pip_like("uv", true).await;
}

fn project_file(index: &str, tool: &str) -> String {
    let source = match tool {
        "poetry" => format!(
            "[tool.poetry]\npackage-mode = false\n\n[[tool.poetry.source]]\nname = \"gate\"\nurl = \"{index}\"\npriority = \"primary\"\n"
        ),
        _ => format!(
            "[tool.pdm]\ndistribution = false\n\n[[tool.pdm.source]]\nname = \"pypi\"\nurl = \"{index}\"\nverify_ssl = false\n"
        ),
    };
    format!(
        "[project]\nname = \"e2e-app\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\ndependencies = [\"demo-pkg\"]\n\n{source}"
    )
}

/// poetry and pdm: lock (the malicious newest version is skipped) and install.
async fn locker(tool: &str) {
    let Some(cmd) = client(tool) else { return };
    let env = Env::new("{}").await;
    let home = env.fresh();
    let proj = home.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("pyproject.toml"),
        project_file(&env.index(), tool),
    )
    .unwrap();
    let index = env.index();
    let lock_args: Vec<&str> = match tool {
        "poetry" => vec!["lock", "--no-interaction"],
        _ => vec!["lock", "--python", ">=3.9"],
    };
    let r = run(&cmd, &lock_args, &home, &proj, &index).await;
    assert!(r.ok, "{tool} lock: {}", r.out);
    let lock = std::fs::read_to_string(proj.join(format!("{tool}.lock"))).unwrap();
    assert!(
        lock.contains("name = \"demo-pkg\"\nversion = \"1.0.0\""),
        "{tool}.lock: {lock}"
    );
    assert!(!lock.contains("2.0.0"), "{lock}");
    let install_args: Vec<&str> = match tool {
        "poetry" => vec!["install", "--no-root", "--no-interaction"],
        _ => vec!["install", "--no-self"],
    };
    let r = run(&cmd, &install_args, &home, &proj, &index).await;
    assert!(r.ok, "{tool} install: {}", r.out);
    assert!(
        env.fake.file_requests() >= 1,
        "{tool} downloaded nothing through pkggate"
    );
    env.gate.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_poetry() {
    locker("poetry").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_pdm() {
    locker("pdm").await;
}
