//! The binary: `policy check`, start-up with a broken policy, `check` with the real policy,
//! `audit tail` / `audit query` (rotated files, torn last line).

use crate::support::*;

use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn policy_check_exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "fail_closed: true\ndenylist: [\"lodash@<4.17.21\"]\n",
    )
    .unwrap();
    let out = pkggate(
        dir.path(),
        &["policy", "check", good.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok (revision "), "{}", stdout(&out));

    for (text, line_col, needle) in [
        (
            "fail_closed: true\necosystems:\n  pypi: {}\n",
            "3:3",
            "did you mean `PyPI`?",
        ),
        ("block_malicious: yes please\n", "1:18", "block_malicious"),
        (
            "denylist: []\nblock_malicous: true\n",
            "2:1",
            "block_malicous",
        ),
    ] {
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, text).unwrap();
        let out = pkggate(dir.path(), &["policy", "check", bad.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "{text}: {}", stderr(&out));
        let err = stderr(&out);
        let want = format!("{}:{line_col}: ", bad.display());
        assert!(err.starts_with(&want), "{text}: want {want}, got {err}");
        assert!(err.contains(needle), "{text}: {err}");
    }
    let out = pkggate(dir.path(), &["policy", "check", "missing.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.yaml"));
}

#[test]
fn serve_with_a_broken_policy_exits_2_naming_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "denylist:\n  - {package: x, reason: 5, bogus: 1}\n",
    )
    .unwrap();
    let out = pkggate(
        dir.path(),
        &["serve", "--port", "0", "--mirror-enabled", "false"],
        &[("PKGGATE_POLICY_FILE", policy.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let prefix = format!("{}:2:", policy.display());
    assert!(err.contains(&prefix), "{err}");
    // file:line:col: message
    let at = err.find(&prefix).unwrap() + prefix.len();
    assert!(
        err[at..].split(':').next().unwrap().parse::<u32>().is_ok(),
        "{err}"
    );
}

#[test]
fn check_uses_the_policy_and_prints_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "denylist: [\"react@18.2.0\"]\nallowlist: [\"fsevents@1.2.11\"]\n",
    )
    .unwrap();
    let env = [
        ("PKGGATE_MIRROR_DB", db.to_str().unwrap()),
        ("PKGGATE_POLICY_FILE", policy.to_str().unwrap()),
    ];
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = pkggate(dir.path(), &["check", "npm", "react@18.2.0"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let t = stdout(&out);
    assert!(
        t.contains("blocked (denylist explicit denylist entry: react@18.2.0"),
        "{t}"
    );
    assert!(t.contains("trace:") && t.contains("denylist"), "{t}");

    let out = pkggate(dir.path(), &["check", "npm", "fsevents@1.2.10"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let t = stdout(&out);
    assert!(
        t.contains("block_malicious") && t.contains("MAL-2023-462"),
        "{t}"
    );
    assert!(t.contains("intel: available"), "{t}");

    let out = pkggate(dir.path(), &["check", "npm", "lodash@4.17.21"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("allowed (default no_rule_matched"),
        "{}",
        stdout(&out)
    );

    // Intelligence unavailable (PyPI never synced) and fail_closed (the default) → blocked.
    let out = pkggate(dir.path(), &["check", "pypi", "requests@2.0.0"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("intel_unavailable"),
        "{}",
        stdout(&out)
    );

    // A broken policy is an error (2), naming the place.
    std::fs::write(&policy, "max_cvss_score: eleven\n").unwrap();
    let out = pkggate(dir.path(), &["check", "npm", "react@18.2.0"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{}:1:", policy.display())),
        "{}",
        stderr(&out)
    );
}

fn line(ts: &str, action: &str, eco: &str, package: &str, rule: &str, id: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","action":"{action}","ecosystem":"{eco}","package":"{package}","version":"1.0.0","rule":"{rule}","reason":"r","source":null,"request_kind":"tarball","client_ip":"127.0.0.1","request_id":"{id}","user_agent":null,"policy_revision":"p","intel_revision":"i"}}"#
    )
}

#[test]
fn audit_tail_and_query_read_rotated_files_and_skip_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let now = crate::timefmt_now_minus(60);
    let old = crate::timefmt_now_minus(3 * 3600);
    // Oldest file first: .2, .1, then the current one whose last line is torn.
    std::fs::write(
        dir.path().join("audit.log.2"),
        format!(
            "{}\n",
            line(&old, "block", "npm", "evil", "block_malicious", "a1")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("audit.log.1"),
        format!(
            "{}\n{}\n",
            line(&now, "allow", "npm", "evil", "default", "b1"),
            line(&now, "block", "PyPI", "Django_Utils", "denylist", "b2"),
        ),
    )
    .unwrap();
    let last = line(&now, "block", "npm", "evil", "denylist", "c2");
    std::fs::write(
        &log,
        format!(
            "{}\n{}\n{}",
            line(&now, "block", "npm", "evil", "block_malicious", "c1"),
            last,
            &last[..40]
        ),
    )
    .unwrap();
    let env = [("PKGGATE_AUDIT_LOG", log.to_str().unwrap())];

    let out = pkggate(dir.path(), &["audit", "tail", "-n", "2"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(stderr(&out).contains("torn"), "{}", stderr(&out));
    assert!(stderr(&out).contains("audit.log:3"), "{}", stderr(&out));

    let out = pkggate(dir.path(), &["audit", "tail", "-n", "100"], &env);
    assert_eq!(stdout(&out).lines().count(), 5);

    let query = |args: &[&str]| {
        let mut a = vec!["audit", "query"];
        a.extend_from_slice(args);
        let out = pkggate(dir.path(), &a, &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).contains("torn"), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        query(&["--package", "evil", "--action", "block", "--since", "1h"]),
        ["c1", "c2"]
    );
    assert_eq!(
        query(&["--package", "evil", "--action", "block"]),
        ["a1", "c1", "c2"]
    );
    assert_eq!(
        query(&[
            "--package",
            "evil",
            "--action",
            "block",
            "--rule",
            "denylist"
        ]),
        ["c2"]
    );
    // PyPI names compare in normal form.
    assert_eq!(
        query(&["--package", "django-utils", "--ecosystem", "pypi"]),
        ["b2"]
    );
    assert_eq!(query(&["--since", "1d", "--action", "allow"]), ["b1"]);
    assert_eq!(query(&["--request-id", "a1"]), ["a1"]);

    let out = pkggate(dir.path(), &["audit", "query", "--since", "soon"], &env);
    assert_eq!(out.status.code(), Some(2));
    let out = pkggate(
        dir.path(),
        &["audit", "tail"],
        &[("PKGGATE_AUDIT_LOG", "-")],
    );
    assert_eq!(out.status.code(), Some(2));
}
