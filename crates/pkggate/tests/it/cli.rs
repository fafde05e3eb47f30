//! The `pkggate` binary as a user runs it.

use crate::support::*;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bad_value_exits_2_naming_variable_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = pkggate(dir.path(), &["config"], &[("PKGGATE_PORT", "abc")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("PKGGATE_PORT") && t.contains("abc"), "{t}");
    let out = pkggate(
        dir.path(),
        &["--mirror-refresh-seconds", "soon", "config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("PKGGATE_MIRROR_REFRESH_SECONDS"));
}

#[test]
fn config_shows_values_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "PKGGATE_MIRROR_DB=from-dotenv.db\nPKGGATE_PORT=7000\nPKGGATE_HOST=10.1.1.1\n",
    )
    .unwrap();
    let out = pkggate(
        dir.path(),
        &["config", "--port", "9000"],
        &[("PKGGATE_HOST", "0.0.0.0"), ("PKGGATE_PORT", "8000")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    let line = |var: &str| {
        t.lines()
            .find(|l| l.starts_with(&format!("{var}=")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("PKGGATE_PORT").contains("9000") && line("PKGGATE_PORT").ends_with("(flag)"),
        "{t}"
    );
    assert!(
        line("PKGGATE_HOST").contains("0.0.0.0") && line("PKGGATE_HOST").ends_with("(env)"),
        "{t}"
    );
    assert!(
        line("PKGGATE_MIRROR_DB").contains("from-dotenv.db")
            && line("PKGGATE_MIRROR_DB").ends_with("(.env)"),
        "{t}"
    );
    assert!(
        line("PKGGATE_AUDIT_LOG").contains("audit.log")
            && line("PKGGATE_AUDIT_LOG").ends_with("(default)"),
        "{t}"
    );
}

#[test]
fn mirror_sync_status_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let env = [("PKGGATE_MIRROR_DB", db.to_str().unwrap())];
    let npm = osv("npm", "sample.zip");
    let out = pkggate(
        dir.path(),
        &[
            "mirror",
            "sync",
            "--ecosystem",
            "npm",
            "--source",
            npm.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("npm: "),
        "{}",
        text(&out)
    );
    let pypi = osv("PyPI", "sample.zip");
    let out = pkggate(
        dir.path(),
        &[
            "mirror",
            "sync",
            "--ecosystem",
            "pypi",
            "--source",
            pypi.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Not a terminal: plain progress lines, no bar escapes.
    assert!(!text(&out).contains('\u{1b}'));

    let out = pkggate(dir.path(), &["mirror", "status"], &env);
    let t = text(&out);
    assert!(
        t.lines()
            .any(|l| l.starts_with("npm") && !l.contains("records=0 ")),
        "{t}"
    );

    let out = pkggate(dir.path(), &["check", "npm", "fsevents@1.2.10"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("MAL-2023-462"));
    let out = pkggate(dir.path(), &["check", "npm", "fsevents@1.2.11"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = pkggate(dir.path(), &["check", "pypi", "Nasrtox@8.0"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = pkggate(dir.path(), &["check", "npm", "@ctrl/tinycolor"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("every version blocked"),
        "{}",
        text(&out)
    );
    let out = pkggate(dir.path(), &["check", "npm", "react@18.2.0"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = pkggate(dir.path(), &["check", "maven", "x@1"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A failing sync keeps the data and says so.
    let bad = dir.path().join("bad.zip");
    std::fs::write(&bad, "nope").unwrap();
    let out = pkggate(
        dir.path(),
        &[
            "mirror",
            "sync",
            "--ecosystem",
            "npm",
            "--source",
            bad.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("previous data kept"), "{}", text(&out));
    let out = pkggate(dir.path(), &["check", "npm", "fsevents@1.2.10"], &env);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkggate"))
        .current_dir(dir.path())
        .args(["serve", "--port", "0", "--mirror-enabled", "false"])
        .env("PKGGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the "listening" line (the port is bound before anything slow).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no listening line");
        if line.contains("pkggate listening") {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pkggate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkggate"))
        .current_dir(dir.path())
        .args([
            "serve",
            "--port",
            "0",
            "--mirror-enabled",
            "false",
            "--log-format",
            "json",
        ])
        .env("PKGGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no listening line");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        seen.push(v.clone());
        if v["fields"]["message"] == "pkggate listening" {
            break;
        }
    }
    assert!(
        seen.iter()
            .all(|v| v["level"].is_string() && v["timestamp"].is_string()),
        "{seen:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
}
