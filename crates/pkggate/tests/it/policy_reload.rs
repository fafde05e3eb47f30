//! Hot reload: a valid change takes effect for the next decision, an invalid change and a
//! deletion keep the last good policy (reported in status and readiness), rapid successive
//! edits end with the final state.

use crate::audit_gate::{CleanIntel, req};
use crate::support::eventually;
use pkggate::audit::MemoryAudit;
use pkggate::gate::{Gate, RequestKind, VersionInput};
use pkggate::policy_state::PolicyHandle;
use pkggate_formats::Ecosystem::Npm;
use pkggate_policy::{Action, Policy};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

fn rev(text: &str) -> String {
    Policy::from_yaml(text, "x").unwrap().revision().to_string()
}

struct Reloading {
    handle: PolicyHandle,
    _stop: watch::Sender<bool>,
}

fn start(file: &Path) -> Reloading {
    let handle = PolicyHandle::load(file).unwrap();
    let (tx, rx) = watch::channel(false);
    handle.spawn_reloader(file.to_path_buf(), Duration::from_millis(20), rx);
    Reloading { handle, _stop: tx }
}

async fn wait_revision(h: &PolicyHandle, want: &str) {
    eventually(&format!("revision {want}"), WAIT, async || {
        (h.status().revision == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn valid_change_takes_effect_for_the_next_decision() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let v1 = "denylist: []\n";
    std::fs::write(&file, v1).unwrap();
    let r = start(&file);
    let audit = MemoryAudit::default();
    let gate = Gate {
        intel: Arc::new(CleanIntel),
        policy: r.handle.clone(),
        audit: Arc::new(audit.clone()),
        clock: Arc::new(|| 1_800_000_000),
        audit_allowed_each: false,
    };
    let decide = async || {
        gate.decide_one(
            Npm,
            "evil",
            &VersionInput::bare("1.0.0"),
            &req(RequestKind::Tarball),
        )
        .await
        .unwrap()
        .0
    };
    assert_eq!(decide().await.action, Action::Allow);
    assert_eq!(audit.take()[0].policy_revision, rev(v1));

    let v2 = "denylist: [evil]\n";
    std::fs::write(&file, v2).unwrap();
    wait_revision(&r.handle, &rev(v2)).await;
    let d = decide().await;
    assert_eq!((d.action, d.rule), (Action::Block, "denylist"));
    assert_eq!(audit.take()[0].policy_revision, rev(v2));
    let s = r.handle.status();
    assert_eq!(s.reloads, 1);
    assert!(s.last_reload_error.is_none());
}

#[tokio::test]
async fn invalid_change_keeps_the_last_good_policy_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let good = "block_malicious: true\ndenylist: [evil]\n";
    std::fs::write(&file, good).unwrap();
    let r = start(&file);
    std::fs::write(&file, "block_malicious: true\necosystems:\n  pypi: {}\n").unwrap();
    let err = eventually("the rejection to be reported", WAIT, async || {
        r.handle.status().last_reload_error
    })
    .await;
    let prefix = format!("{}:3:3: ", file.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains("PyPI"), "{err}");
    let s = r.handle.status();
    assert_eq!(s.revision, rev(good));
    assert_eq!(s.reload_failures, 1);
    assert_eq!(s.reloads, 0);
    assert_eq!(r.handle.current().revision(), rev(good));
    // A wrong type too; then fixing the file clears the error and applies the fix.
    std::fs::write(&file, "block_malicious: maybe\n").unwrap();
    eventually("the second rejection", WAIT, async || {
        (r.handle.status().reload_failures == 2).then_some(())
    })
    .await;
    assert_eq!(r.handle.status().revision, rev(good));
    let fixed = "block_malicious: false\n";
    std::fs::write(&file, fixed).unwrap();
    wait_revision(&r.handle, &rev(fixed)).await;
    assert!(r.handle.status().last_reload_error.is_none());
    assert!(!r.handle.current().settings(Npm).block_malicious);
}

#[tokio::test]
async fn deletion_keeps_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let good = "denylist: [evil]\nfail_closed: false\n";
    std::fs::write(&file, good).unwrap();
    let r = start(&file);
    std::fs::remove_file(&file).unwrap();
    let err = eventually("the deletion to be reported", WAIT, async || {
        r.handle.status().last_reload_error
    })
    .await;
    assert!(err.contains("deleted"), "{err}");
    let s = r.handle.status();
    assert_eq!(s.revision, rev(good));
    assert!(!s.defaults);
    assert!(
        !r.handle.current().settings(Npm).fail_closed,
        "not reset to defaults"
    );
    // Restored: takes effect again.
    let back = "denylist: [other]\n";
    std::fs::write(&file, back).unwrap();
    wait_revision(&r.handle, &rev(back)).await;
    assert!(r.handle.status().last_reload_error.is_none());
}

#[tokio::test]
async fn rapid_successive_edits_end_in_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "min_package_age_days: 0\n").unwrap();
    let r = start(&file);
    // Same size, back to back (within one mtime tick on coarse file systems), some invalid.
    let mut last = String::new();
    for i in 0..50 {
        last = if i % 5 == 4 {
            format!("min_package_age_days: x{}\n", i % 10)
        } else {
            format!("min_package_age_days: {}\n", i % 10)
        };
        std::fs::write(&file, &last).unwrap();
    }
    // The last write was invalid (i = 49): the last good is one of the earlier ones, and
    // an error is reported. Then one final valid edit wins.
    assert!(last.contains('x'));
    let fin = "min_package_age_days: 7\n";
    std::fs::write(&file, fin).unwrap();
    wait_revision(&r.handle, &rev(fin)).await;
    assert_eq!(r.handle.current().settings(Npm).min_package_age_days, 7.0);
    assert!(r.handle.status().last_reload_error.is_none());
}

#[tokio::test]
async fn readiness_shows_a_rejected_policy_change() {
    use pkggate::config::{Config, RawInputs};
    use pkggate::env;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "denylist: [evil]\n").unwrap();
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, "0".to_string()),
        (env::MIRROR_ENABLED, "false".into()),
        (env::PYPI_ENABLED, "false".into()),
        (env::CARGO_ENABLED, "false".into()),
        (
            env::AUDIT_LOG,
            dir.path().join("audit.log").display().to_string(),
        ),
        (env::POLICY_FILE, file.display().to_string()),
        (env::POLICY_HOT_RELOAD_INTERVAL_SECONDS, "0.02".into()),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    let running = pkggate::server::start(Arc::new(Config::load(&raw).unwrap()))
        .await
        .unwrap();
    let url = format!("http://{}/-/pkggate/ready", running.addr);
    std::fs::write(&file, "denylist: 5\n").unwrap();
    let body = eventually("readiness to show the error", WAIT, async || {
        let body: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        body["policy"]["last_reload_error"]
            .is_string()
            .then_some(body)
    })
    .await;
    assert_eq!(body["policy"]["revision"], rev("denylist: [evil]\n"));
    assert_eq!(body["policy"]["reload_failures"], 1);
    assert!(
        body["policy"]["last_reload_error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:1:", file.display())),
        "{body}"
    );
    running.stop().await.unwrap();
}

/// File watching: with a poll interval far longer than the wait, a change (written in place
/// or replaced by rename, as editors and ConfigMaps do) still takes effect at once.
#[tokio::test]
async fn file_watching_applies_changes_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "denylist: []\n").unwrap();
    let handle = PolicyHandle::load(&file).unwrap();
    let (tx, rx) = watch::channel(false);
    handle.spawn_reloader(file.clone(), Duration::from_secs(3600), rx);
    // Give the watcher its first look; then edit in place.
    let v2 = "denylist: ['evil']\n";
    eventually("the in-place edit to apply", WAIT, async || {
        std::fs::write(&file, v2).unwrap();
        (handle.status().revision == rev(v2)).then_some(())
    })
    .await;
    // Replace by rename.
    let v3 = "denylist: ['evil', 'worse']\n";
    let tmp = dir.path().join(".policy.yaml.tmp");
    std::fs::write(&tmp, v3).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    wait_revision(&handle, &rev(v3)).await;
    drop(tx);
}

/// Reading the policy file (as the reloader itself does) and writing other files in its
/// directory (an audit log beside it) do not wake the reloader: an idle pkggate does not
/// re-read its policy in a loop. A real change still applies at once.
#[tokio::test]
async fn reads_and_unrelated_writes_do_not_wake_the_reloader() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let v1 = "denylist: []\n";
    std::fs::write(&file, v1).unwrap();
    let handle = PolicyHandle::load(&file).unwrap();
    let (tx, rx) = watch::channel(false);
    handle.spawn_reloader(file.clone(), Duration::from_secs(3600), rx);
    let v2 = "denylist: ['first']\n";
    eventually("the first edit to apply", WAIT, async || {
        std::fs::write(&file, v2).unwrap();
        (handle.status().revision == rev(v2)).then_some(())
    })
    .await;
    // Let the events of that edit drain: the check count stops moving.
    let mut settled = handle.status().checks;
    eventually("the reloader to go quiet", WAIT, async || {
        tokio::task::yield_now().await;
        let now = handle.status().checks;
        let quiet = now == settled;
        settled = now;
        // Several rounds of reading: each one would wake a spinning reloader.
        for _ in 0..20 {
            let _ = std::fs::read(&file).unwrap();
        }
        quiet.then_some(())
    })
    .await;
    let before = handle.status().checks;
    let log = dir.path().join("audit.log");
    for i in 0..200 {
        let _ = std::fs::read(&file).unwrap();
        std::fs::write(&log, format!("line {i}\n")).unwrap();
        if i % 20 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // A real change is the next thing the reloader sees…
    let v3 = "denylist: ['second']\n";
    std::fs::write(&file, v3).unwrap();
    wait_revision(&handle, &rev(v3)).await;
    // …and the 200 reads and 200 writes of another file before it cost at most the
    // creation of that file (one wake) plus the change itself.
    let spent = handle.status().checks - before;
    assert!(spent <= 4, "{spent} checks for one change");
    drop(tx);
}
