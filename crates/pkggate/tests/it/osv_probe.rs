//! Hostile OSV bundles (SPEC §3 items 1, 15, 16; §5): zips that lie or are not zips, bombs,
//! odd entry names, broken or enormous records, directory sources with symlinks, FIFOs and
//! huge files, and download answers that misbehave. After each: a clear error or a counted
//! skip, no panic, bounded time, and the previous data keeps serving.

use crate::raw_http::{RawUpstream, framed};
use crate::support::*;
use pkggate::intel::sync::SyncOutcome;
use pkggate_formats::Ecosystem::Npm;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// A mirror holding one good bundle: `evil-a@1.0.0` is malicious (MAL-1).
async fn loaded_mirror() -> (TempMirror, Option<String>) {
    let m = TempMirror::new();
    let good = make_zip(&[mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "")]);
    let p = write(m.dir.path(), "good.zip", &good);
    m.sync(Npm, &p).await.unwrap();
    let rev = m.store.state(Npm).revision.clone();
    (m, rev)
}

fn hits(m: &TempMirror, name: &str, version: &str) -> usize {
    m.store.lookup_version(Npm, name, version).unwrap().len()
}

/// The refresh failed with an error mentioning `needle`, it is recorded, and the previous
/// data still answers.
fn assert_failed_and_kept(
    m: &TempMirror,
    what: &str,
    r: anyhow::Result<SyncOutcome>,
    rev: &Option<String>,
    needle: &str,
) {
    let err = match r {
        Ok(o) => panic!("{what}: refresh succeeded: {o:?}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(needle),
        "{what}: error {err:?} lacks {needle:?}"
    );
    let s = m.store.state(Npm);
    assert_eq!(&s.revision, rev, "{what}: revision changed");
    assert!(s.last_error.is_some(), "{what}: error not recorded");
    assert!(s.consecutive_failures >= 1, "{what}: failure not counted");
    assert_eq!(hits(m, "evil-a", "1.0.0"), 1, "{what}: previous data lost");
}

/// A zip of raw `(name, bytes)` entries; names ending in `/` are directories.
fn raw_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(body).unwrap();
            }
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

#[tokio::test]
async fn bundles_without_usable_records_fail_and_keep_serving() {
    let (m, rev) = loaded_mirror().await;
    let inner = make_zip(&[mal_record("MAL-9", "npm", "nested", &["1.0.0"], "")]);
    let (_, go_rec) = mal_record("MAL-8", "Go", "example.com/x", &["v1.0.0"], "");
    let (_, py_rec) = mal_record("MAL-7", "PyPI", "evil-py", &["1.0"], "");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A zip inside the zip, a directory, non-JSON files: nothing to ingest.
        (
            "nested.zip",
            raw_zip(&[
                ("inner.zip", &inner),
                ("MAL-9.json/", b""),
                ("README.md", b"# hi"),
            ]),
        ),
        // A zip whose one `.json` entry is itself a zip.
        ("zip-as-json.zip", raw_zip(&[("MAL-9.json", &inner)])),
        // Valid records, all for ecosystems this bundle is not for.
        (
            "other-ecosystems.zip",
            raw_zip(&[
                ("MAL-8.json", go_rec.as_bytes()),
                ("MAL-7.json", py_rec.as_bytes()),
            ]),
        ),
        // A zip that is an HTML page, and one with its central directory cut off.
        (
            "html.zip",
            b"<html><body>maintenance</body></html>".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let p = write(m.dir.path(), name, &bytes);
        let r = m.sync(Npm, &p).await;
        let needle = if name == "html.zip" {
            "not a readable zip"
        } else {
            "no usable records"
        };
        assert_failed_and_kept(&m, name, r, &rev, needle);
    }
    assert_eq!(hits(&m, "nested", "1.0.0"), 0);
    assert_eq!(
        m.store
            .lookup_version(pkggate_formats::Ecosystem::PyPI, "evil-py", "1.0")
            .unwrap()
            .len(),
        0
    );
    // `mirror status` shows the last error to the operator.
    let out = pkggate(
        m.dir.path(),
        &["mirror", "status"],
        &[("PKGGATE_MIRROR_DB", m.db_path().to_str().unwrap())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let npm_line = stdout.lines().find(|l| l.starts_with("npm")).unwrap_or("");
    assert!(npm_line.contains("records=1"), "{stdout}");
    assert!(
        npm_line.contains("last_error=") && npm_line.contains("not a readable zip"),
        "{stdout}"
    );
}

#[tokio::test]
async fn odd_entry_names_are_only_names() {
    let (m, _) = loaded_mirror().await;
    let (_, a) = mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], "");
    let (_, b) = mal_record("MAL-3", "npm", "evil-c", &["1.0.0"], "");
    let (_, c) = mal_record("MAL-4", "npm", "evil-d", &["1.0.0"], "");
    let z = raw_zip(&[
        ("../../escape.json", a.as_bytes()),
        ("/abs/escape2.json", b.as_bytes()),
        ("dir/sub/\u{7}bell\u{202e}.json", c.as_bytes()),
    ]);
    let p = write(m.dir.path(), "names.zip", &z);
    let out = m.sync(Npm, &p).await.unwrap();
    assert!(matches!(out, SyncOutcome::Replaced(s, _) if s.records == 3 && s.skipped == 0));
    for n in ["evil-b", "evil-c", "evil-d"] {
        assert_eq!(hits(&m, n, "1.0.0"), 1, "{n}");
    }
    // Nothing was written where the names point.
    let up = m.dir.path().parent().unwrap();
    assert!(!up.join("escape.json").exists() && !Path::new("/abs/escape2.json").exists());
    assert_eq!(hits(&m, "evil-a", "1.0.0"), 0, "replaced, not merged");
}

/// Set the uncompressed size of the first entry, in its local header and in the central
/// directory, to `size` (a lying zip).
fn lie_about_first_size(z: &mut [u8], size: u32) {
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    z[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
}

#[tokio::test]
async fn zip_bombs_are_bounded() {
    let (m, rev) = loaded_mirror().await;
    // 40 MiB of spaces before a valid record: larger than the per-record limit.
    let (_, good) = mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], "");
    let mut bomb = vec![b' '; 40 << 20];
    bomb.extend_from_slice(good.as_bytes());
    let (_, ok) = mal_record("MAL-3", "npm", "evil-c", &["1.0.0"], "");
    let honest = raw_zip(&[("MAL-2.json", &bomb), ("MAL-3.json", ok.as_bytes())]);
    assert!(honest.len() < 1 << 20, "the bomb compresses");
    let p = write(m.dir.path(), "bomb.zip", &honest);
    let t = Instant::now();
    let out = m.sync(Npm, &p).await.unwrap();
    assert!(
        matches!(out, SyncOutcome::Replaced(s, _) if s.records == 1 && s.skipped == 1),
        "{out:?}"
    );
    assert_eq!(
        hits(&m, "evil-b", "1.0.0"),
        0,
        "the oversized record is skipped"
    );
    assert_eq!(hits(&m, "evil-c", "1.0.0"), 1);
    let rev2 = m.store.state(Npm).revision.clone();
    assert_ne!(rev2, rev);

    // The same bomb, its directory claiming 100 bytes: read at most up to the limit, then
    // either skipped or the bundle refused; never ingested as a record, never unbounded.
    let mut liar = honest.clone();
    lie_about_first_size(&mut liar, 100);
    let p = write(m.dir.path(), "liar.zip", &liar);
    match m.sync(Npm, &p).await {
        Ok(SyncOutcome::Replaced(s, _)) => assert_eq!((s.records, s.skipped), (1, 1)),
        Ok(o) => panic!("{o:?}"),
        Err(_) => assert_eq!(m.store.state(Npm).revision, rev2, "failed but changed"),
    }
    assert_eq!(hits(&m, "evil-b", "1.0.0"), 0);
    assert_eq!(hits(&m, "evil-c", "1.0.0"), 1);

    // Many tiny entries: a big central directory, each entry nothing.
    let names: Vec<String> = (0..20_000).map(|i| format!("n{i}.txt")).collect();
    let mut many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    many.push(("MAL-5.json", ok.as_bytes()));
    let p = write(m.dir.path(), "many.zip", &raw_zip(&many));
    let out = m.sync(Npm, &p).await.unwrap();
    assert!(
        matches!(out, SyncOutcome::Replaced(s, _) if s.records == 1),
        "{out:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[tokio::test]
async fn broken_and_enormous_records_are_skipped_or_bounded() {
    let (m, _) = loaded_mirror().await;
    let deep_unknown = format!(
        r#"{{"id":"MAL-20","x":{}{},"affected":[{{"package":{{"ecosystem":"npm","name":"deep-a"}},"versions":["1.0.0"]}}]}}"#,
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let deep_severity = format!(
        r#"{{"id":"MAL-21","database_specific":{{"severity":{}1{}}},"affected":[]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let versions: Vec<String> = (0..100_000).map(|i| format!("\"1.0.{i}\"")).collect();
    let huge_list = format!(
        r#"{{"id":"MAL-22","affected":[{{"package":{{"ecosystem":"npm","name":"many-v"}},"versions":[{}]}}]}}"#,
        versions.join(",")
    );
    let many_affected: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"package":{{"ecosystem":"npm","name":"p{i}"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}}]}}]}}"#))
        .collect();
    let many_affected = format!(
        r#"{{"id":"MAL-23","affected":[{}]}}"#,
        many_affected.join(",")
    );
    let future = r#"{"id":"MAL-24","modified":"9999-12-31T23:59:59Z","published":"9999-12-31T23:59:59Z","affected":[{"package":{"ecosystem":"npm","name":"future-pkg"},"versions":["1.0.0"]}]}"#;
    let (_, odd_id) = mal_record(r"../../MAL-25\u0000\r\n", "npm", "odd-id", &["1.0.0"], "");
    let bad: [&str; 7] = [
        "{",
        "null",
        r#"{"id":5,"affected":[]}"#,
        r#"{"id":"MAL-30","affected":"everything"}"#,
        r#"{"id":"MAL-31","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":[1,2]}]}"#,
        r#"{"id":"   ","affected":[]}"#,
        "\u{feff}\u{0}\u{1}",
    ];
    let mut entries: Vec<(String, &[u8])> = bad
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("bad{i}.json"), b.as_bytes()))
        .collect();
    entries.push(("deep-severity.json".into(), deep_severity.as_bytes()));
    let good: [(&str, &str); 5] = [
        ("deep-unknown.json", &deep_unknown),
        ("huge-list.json", &huge_list),
        ("many-affected.json", &many_affected),
        ("future.json", future),
        ("odd-id.json", &odd_id),
    ];
    entries.extend(good.iter().map(|(n, b)| (n.to_string(), b.as_bytes())));
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let p = write(m.dir.path(), "records.zip", &raw_zip(&refs));
    let t = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(9), m.sync(Npm, &p))
        .await
        .expect("ingest is bounded in time")
        .unwrap();
    let SyncOutcome::Replaced(stats, state) = out else {
        panic!("{out:?}")
    };
    assert_eq!((stats.records, stats.skipped), (5, 8), "{stats:?}");
    assert_eq!(state.records, 5);
    assert_eq!(hits(&m, "deep-a", "1.0.0"), 1);
    assert_eq!(hits(&m, "many-v", "1.0.99999"), 1);
    assert_eq!(hits(&m, "many-v", "1.1.0"), 0);
    assert_eq!(hits(&m, "p19999", "0.0.1"), 1);
    assert_eq!(hits(&m, "future-pkg", "1.0.0"), 1);
    let odd = m.store.lookup_version(Npm, "odd-id", "1.0.0").unwrap();
    assert_eq!(odd.len(), 1);
    assert_eq!(
        odd[0].id, "../../MAL-25\u{0}\r\n",
        "the id is data, kept verbatim"
    );
    assert!(t.elapsed() < Duration::from_secs(9), "{:?}", t.elapsed());
}

#[tokio::test]
async fn duplicate_ids_in_one_bundle_are_consistent() {
    let m = TempMirror::new();
    let z = make_zip(&[
        mal_record("MAL-1", "npm", "dup-a", &["1.0.0"], ""),
        mal_record("MAL-2", "npm", "other", &["1.0.0"], ""),
        (
            "again/MAL-1.json".into(),
            mal_record(
                "MAL-1",
                "npm",
                "dup-a",
                &["1.0.0"],
                r#","withdrawn":"2024-02-01T00:00:00Z""#,
            )
            .1,
        ),
    ]);
    let p = write(m.dir.path(), "dup.zip", &z);
    m.sync(Npm, &p).await.unwrap();
    let withdrawn = m.store.advisory(Npm, "MAL-1").unwrap().and_then(|a| a.1);
    let blocking = hits(&m, "dup-a", "1.0.0");
    assert!(
        withdrawn.is_none() == (blocking == 1),
        "advisory withdrawn={withdrawn:?} yet {blocking} finding(s) for dup-a@1.0.0"
    );
    let (advisories, _) = m.store.counts(Npm).unwrap();
    assert_eq!(
        m.store.state(Npm).records,
        advisories,
        "records counted twice"
    );
}

#[tokio::test]
async fn directory_sources_ignore_symlinks_fifos_and_other_files() {
    let (m, _) = loaded_mirror().await;
    let outside = tempfile::tempdir().unwrap();
    let (_, secret) = mal_record("MAL-40", "npm", "outside-pkg", &["1.0.0"], "");
    std::fs::write(outside.path().join("secret.json"), &secret).unwrap();
    let dir = m.dir.path().join("osv");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let (_, inside) = mal_record("MAL-41", "npm", "inside-pkg", &["1.0.0"], "");
    std::fs::write(dir.join("sub/MAL-41.json"), &inside).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a record").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.json"), dir.join("link.json")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo.json"))
        .status();
    let out = tokio::time::timeout(Duration::from_secs(9), m.sync(Npm, dir.to_str().unwrap()))
        .await
        .expect("a FIFO or symlink loop must not hang the refresh")
        .unwrap();
    assert!(
        matches!(out, SyncOutcome::Replaced(s, _) if s.records == 1),
        "{out:?}"
    );
    assert_eq!(hits(&m, "inside-pkg", "1.0.0"), 1);
    assert_eq!(
        hits(&m, "outside-pkg", "1.0.0"),
        0,
        "followed a symlink out"
    );
    assert!(fifo.is_ok_and(|s| s.success()), "mkfifo");
}

#[test]
fn a_huge_file_in_a_directory_source_is_not_read_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir(&osv).unwrap();
    let (_, good) = mal_record("MAL-1", "npm", "evil-a", &["1.0.0"], "");
    std::fs::write(osv.join("MAL-1.json"), good).unwrap();
    // 768 MiB, sparse: costs no disk, but memory if read whole.
    let f = std::fs::File::create(osv.join("huge.json")).unwrap();
    f.set_len(768 << 20).unwrap();
    let db = dir.path().join("m.db");
    // Private writable memory capped at 384 MiB: a streaming reader stays far below.
    let script = format!(
        "ulimit -d 393216 && exec '{}' mirror sync --ecosystem npm --source '{}'",
        env!("CARGO_BIN_EXE_pkggate"),
        osv.display()
    );
    let out = pkggate_sh(dir.path(), &script, &db);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 records (1 skipped"));
}

fn pkggate_sh(dir: &Path, script: &str, db: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(dir).arg("-c").arg(script);
    for (k, _) in std::env::vars() {
        if k.starts_with("PKGGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PKGGATE_LOG", "warn").env("PKGGATE_MIRROR_DB", db);
    cmd.output().unwrap()
}

#[tokio::test]
async fn hostile_download_answers_keep_the_previous_data() {
    let (m, rev) = loaded_mirror().await;
    let up = RawUpstream::start().await;
    let zip = make_zip(&[mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], "")]);
    // 200 with an HTML page.
    up.answer(
        "/html.zip",
        framed(
            200,
            &[("Content-Type", "text/html")],
            b"<html>sign in</html>",
        ),
    );
    // A Content-Length shorter than the zip: the body is cut where the length says.
    let mut short =
        crate::raw_http::head_bytes(200, &[("Content-Length", &(zip.len() / 2).to_string())]);
    short.extend_from_slice(&zip);
    up.answer("/short.zip", short.into());
    // A Content-Length longer than what is sent before the connection closes.
    up.answer(
        "/cut.zip",
        crate::raw_http::unframed(
            200,
            &[("Content-Length", &(zip.len() * 2).to_string())],
            &zip,
        ),
    );
    for (path, needle) in [
        ("/html.zip", "not a readable zip"),
        ("/short.zip", "not a readable zip"),
        ("/cut.zip", "bundle download"),
        ("/missing.zip", "404"),
    ] {
        let r = tokio::time::timeout(
            Duration::from_secs(9),
            m.sync(Npm, &format!("{}{path}", up.origin())),
        )
        .await
        .expect(path);
        assert_failed_and_kept(&m, path, r, &rev, needle);
    }
    assert_eq!(m.store.state(Npm).consecutive_failures, 4);
}

#[tokio::test]
async fn a_gzip_encoded_zip_is_decoded() {
    let (m, _) = loaded_mirror().await;
    let up = RawUpstream::start().await;
    let zip = make_zip(&[mal_record("MAL-2", "npm", "evil-b", &["1.0.0"], "")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&zip).unwrap();
    let gz = gz.finish().unwrap();
    up.answer(
        "/all.zip",
        framed(
            200,
            &[
                ("Content-Type", "application/zip"),
                ("Content-Encoding", "gzip"),
            ],
            &gz,
        ),
    );
    let out = m.sync(Npm, &format!("{}/all.zip", up.origin())).await;
    assert!(matches!(out, Ok(SyncOutcome::Replaced(..))), "{out:?}");
    assert_eq!(hits(&m, "evil-b", "1.0.0"), 1);
}

#[tokio::test]
async fn not_modified_without_validators_is_an_error() {
    let (m, rev) = loaded_mirror().await;
    let before = m.store.state(Npm);
    let up = RawUpstream::start().await;
    up.answer("/all.zip", framed(304, &[("ETag", "\"x\"")], b""));
    let r = m.sync(Npm, &format!("{}/all.zip", up.origin())).await;
    assert!(
        !up.heads()[0].to_ascii_lowercase().contains("if-none-match"),
        "no validators were sent"
    );
    assert_failed_and_kept(&m, "unsolicited 304", r, &rev, "304");
    assert_eq!(m.store.state(Npm).last_success, before.last_success);
}
