//! Refresh semantics: replace (never merge), atomic, failures keep the previous data,
//! conditional GET, size limits, redirects.

use crate::support::*;
use pkggate::intel::sync::SyncOutcome;
use pkggate_formats::Ecosystem::{Npm, PyPI};
use std::sync::atomic::Ordering;

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[tokio::test]
async fn refresh_replaces_instead_of_merging() {
    let m = TempMirror::new();
    let a = make_zip(&[
        mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], ""),
        mal_record("MAL-2", "npm", "evil-b", &["1.0.0", "2.0.0"], ""),
        mal_record("MAL-3", "npm", "evil-c", &["1.0.0"], ""),
    ]);
    let pa = write(m.dir.path(), "a.zip", &a);
    m.sync(Npm, &pa).await.unwrap();
    assert_eq!(m.store.counts(Npm).unwrap(), (3, 3));
    assert!(!m.store.is_cached(Npm, "evil-b"));
    assert_eq!(
        m.store
            .lookup_version(Npm, "evil-b", "2.0.0")
            .unwrap()
            .len(),
        1
    );
    // Looked up once: cached (later lookups touch no SQLite) until the data changes.
    assert!(m.store.is_cached(Npm, "evil-b"));
    assert!(!m.store.is_cached(Npm, "evil-a"));

    // The next bundle no longer has MAL-2, and MAL-3 was withdrawn.
    let b = make_zip(&[
        mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], ""),
        mal_record(
            "MAL-3",
            "npm",
            "evil-c",
            &["1.0.0"],
            r#","withdrawn":"2024-02-01T00:00:00Z""#,
        ),
    ]);
    let pb = write(m.dir.path(), "b.zip", &b);
    m.sync(Npm, &pb).await.unwrap();
    assert!(
        !m.store.is_cached(Npm, "evil-b"),
        "a refresh makes cached packages stale"
    );
    assert!(
        m.store
            .lookup_version(Npm, "evil-b", "2.0.0")
            .unwrap()
            .is_empty(),
        "removed advisory must disappear"
    );
    assert!(
        m.store
            .lookup_version(Npm, "evil-c", "1.0.0")
            .unwrap()
            .is_empty(),
        "withdrawn advisory must stop applying"
    );
    assert_eq!(m.store.counts(Npm).unwrap(), (2, 1));

    // Ten refreshes with changing bundles leave the row count unchanged.
    for i in 0..10 {
        let z = make_zip(&[
            mal_record(
                "MAL-1",
                "npm",
                "evil-a",
                &["1.0.0"],
                &format!(r#","summary":"round {i}""#),
            ),
            mal_record(
                "MAL-3",
                "npm",
                "evil-c",
                &["1.0.0"],
                r#","withdrawn":"2024-02-01T00:00:00Z""#,
            ),
        ]);
        let p = write(m.dir.path(), &format!("r{i}.zip"), &z);
        assert!(matches!(
            m.sync(Npm, &p).await.unwrap(),
            SyncOutcome::Replaced(..)
        ));
        assert_eq!(m.store.counts(Npm).unwrap(), (2, 1), "after refresh {i}");
    }
    // Other ecosystems are untouched by an npm refresh.
    let py = make_zip(&[mal_record("MAL-9", "PyPI", "Evil_Py", &["1.0"], "")]);
    let pp = write(m.dir.path(), "py.zip", &py);
    m.sync(PyPI, &pp).await.unwrap();
    m.sync(Npm, &pa).await.unwrap();
    assert_eq!(
        m.store
            .lookup_version(PyPI, "evil-py", "1.0.0")
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn failed_bundles_keep_the_previous_data() {
    let m = TempMirror::new();
    let good = make_zip(&[
        mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], ""),
        mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], ""),
    ]);
    let pg = write(m.dir.path(), "good.zip", &good);
    m.sync(Npm, &pg).await.unwrap();
    let revision = m.store.state(Npm).revision.clone();

    // Flip bytes inside the first entry's compressed data: a CRC or inflate error.
    let mut corrupt = good.clone();
    for b in corrupt.iter_mut().skip(40).take(24) {
        *b ^= 0x5a;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.zip", b"this is not a zip file".to_vec()),
        ("truncated.zip", good[..good.len() / 2].to_vec()),
        ("corrupt.zip", corrupt),
        ("empty.zip", make_zip(&[])),
        (
            "only-bad-records.zip",
            make_zip(&[("x.json".into(), "{".into())]),
        ),
    ];
    for (name, bytes) in cases {
        let p = write(m.dir.path(), name, &bytes);
        let err = m.sync(Npm, &p).await.expect_err(name);
        let state = m.store.state(Npm);
        assert_eq!(state.revision, revision, "{name}: revision changed");
        assert!(state.last_error.is_some(), "{name}: error not recorded");
        assert!(state.consecutive_failures >= 1);
        assert_eq!(
            m.store
                .lookup_version(Npm, "evil-b", "1.0.0")
                .unwrap()
                .len(),
            1,
            "{name}: data lost ({err:#})"
        );
    }
    let missing = m.dir.path().join("missing.zip");
    assert!(m.sync(Npm, missing.to_str().unwrap()).await.is_err());
    assert_eq!(m.store.counts(Npm).unwrap(), (2, 2));
    // A good bundle afterwards clears the error.
    let good2 = make_zip(&[mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "")]);
    let p2 = write(m.dir.path(), "good2.zip", &good2);
    m.sync(Npm, &p2).await.unwrap();
    let state = m.store.state(Npm);
    assert!(state.last_error.is_none() && state.consecutive_failures == 0);
}

#[tokio::test]
async fn conditional_get_downloads_an_unchanged_bundle_once() {
    let body = make_zip(&[mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "")]);
    let (server, addr) = BundleServer::start(body.clone()).await;
    let url = format!("http://{addr}/osv/all.zip");
    let m = TempMirror::new();
    assert!(matches!(
        m.sync(Npm, &url).await.unwrap(),
        SyncOutcome::Replaced(..)
    ));
    assert!(matches!(
        m.sync(Npm, &url).await.unwrap(),
        SyncOutcome::Unchanged(..)
    ));
    assert_eq!(server.full_responses.load(Ordering::SeqCst), 1);
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(server.bytes_sent.load(Ordering::SeqCst), body.len() as u64);
    // A changed bundle is downloaded and replaces the data.
    *server.body.lock().unwrap() =
        make_zip(&[mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], "")]);
    assert!(matches!(
        m.sync(Npm, &url).await.unwrap(),
        SyncOutcome::Replaced(..)
    ));
    assert!(
        m.store
            .lookup_version(Npm, "evil-a", "1.0.0")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        m.store
            .lookup_version(Npm, "evil-b", "1.0.0")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.full_responses.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn download_limits_and_redirects() {
    let body = make_zip(&[mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "")]);
    let (_server, addr) = BundleServer::start(body.clone()).await;
    let m = TempMirror::new();
    let url = format!("http://{addr}/osv/all.zip");
    let err = m
        .sync_limited(Npm, &url, (body.len() - 1) as u64)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("exceeds the limit"), "{err:#}");
    let err = m
        .sync(Npm, &format!("http://{addr}/redirect-away"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("another origin"), "{err:#}");
    let err = m
        .sync(Npm, &format!("http://{addr}/nope.zip"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("404"), "{err:#}");
    assert!(!m.store.state(Npm).loaded());
    // No temporary download is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(m.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".osv-bundle-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn reopening_keeps_data_and_state() {
    let m = TempMirror::new();
    let z = make_zip(&[mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "")]);
    let p = write(m.dir.path(), "z.zip", &z);
    m.sync(Npm, &p).await.unwrap();
    let before = m.store.state(Npm);
    let again = pkggate::intel::IntelStore::open(&m.db_path()).unwrap();
    let after = again.state(Npm);
    assert_eq!(before.revision, after.revision);
    assert_eq!(before.last_success, after.last_success);
    assert_eq!(
        again.lookup_version(Npm, "evil-a", "1.0.0").unwrap().len(),
        1
    );
}
