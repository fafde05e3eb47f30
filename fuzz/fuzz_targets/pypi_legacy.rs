//! `pypi::parse_legacy_json` (`/pypi/<project>/json`, `/pypi/<project>/<version>/json`) +
//! `facts()` + `repository_url()` + `render(...)`. Input: `<selector><project>\n<JSON body>`;
//! the selector picks the page URL and which files and versions the caller keeps.
//!
//! Checks: no panic; facts count every release file once; a rendered document parses again;
//! its `releases` are upstream's in order minus `removed_versions`, each with exactly the kept
//! files (same filenames, the caller's URL); `files_removed`, `versions_kept` and
//! `info_version` match the re-parsed document; a retargeted `info.version` names a release
//! that is still there; nothing refused by the caller is served.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::{FileEntry, Rewrite, parse_legacy_json};
use pkggate_fuzz::{PAGE_URLS, framed, pick, proxy_file_url};

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let Ok(project) = std::str::from_utf8(f.head) else {
        return;
    };
    let sel = f.sel;
    let page_url = PAGE_URLS[usize::from(sel & 1)];
    let seed = sel >> 1;
    let Ok(doc) = parse_legacy_json(project, f.body, page_url) else {
        return;
    };
    let _ = doc.repository_url();
    let facts = doc.facts();
    let counted: usize = facts.versions.iter().map(|v| v.files).sum();
    match &doc.releases {
        Some(r) => {
            let total: usize = r.iter().map(|(_, files)| files.len()).sum();
            assert_eq!(
                counted + facts.unknown_version_files,
                total,
                "facts miscount"
            );
            for (v, _) in r {
                assert!(facts.get(v).is_some(), "no facts for release {v:?}");
            }
        }
        None => assert_eq!(counted + facts.unknown_version_files, doc.urls.len()),
    }

    let keep_file = |e: &FileEntry| !pick(seed, &e.filename, 4);
    let keep_version = |v: &str| !pick(seed ^ 0x2a, v, 4);
    let file_url = |e: &FileEntry| proxy_file_url(&e.filename);
    let rw = Rewrite {
        keep_file: &keep_file,
        keep_version: &keep_version,
        file_url: &file_url,
    };
    let rendered = match doc.render(&rw) {
        Ok(r) => r,
        Err(e) => panic!("render failed: {e}"),
    };
    let again = match parse_legacy_json(project, rendered.body.as_bytes(), page_url) {
        Ok(d) => d,
        Err(e) => panic!("rendered document does not parse: {e}\n{}", rendered.body),
    };
    assert_eq!(again.info_version, rendered.info_version, "info.version");
    for file in &again.urls {
        assert!(
            keep_file(file),
            "refused file {:?} served in urls",
            file.filename
        );
        assert_eq!(file.url, proxy_file_url(&file.filename));
    }
    let (Some(before), Some(after)) = (&doc.releases, &again.releases) else {
        assert_eq!(
            doc.releases.is_some(),
            again.releases.is_some(),
            "releases appeared/vanished"
        );
        assert_eq!(rendered.versions_kept, 0);
        return;
    };
    let expected: Vec<(&String, Vec<&FileEntry>)> = before
        .iter()
        .filter(|(v, _)| !rendered.removed_versions.contains(v))
        .map(|(v, files)| (v, files.iter().filter(|e| keep_file(e)).collect()))
        .collect();
    let got: Vec<&String> = after.iter().map(|(v, _)| v).collect();
    let want: Vec<&String> = expected.iter().map(|(v, _)| *v).collect();
    assert_eq!(got, want, "release keys\n{}", rendered.body);
    assert_eq!(rendered.versions_kept, after.len());
    let mut kept_files = 0;
    for ((v, files), (_, want_files)) in after.iter().zip(&expected) {
        assert!(keep_version(v), "refused version {v:?} kept");
        let names: Vec<&str> = files.iter().map(|e| e.filename.as_str()).collect();
        let want_names: Vec<&str> = want_files.iter().map(|e| e.filename.as_str()).collect();
        assert_eq!(names, want_names, "files of {v:?}");
        for (new, old) in files.iter().zip(want_files) {
            assert_eq!(new.url, proxy_file_url(&new.filename));
            assert_eq!(new.yanked, old.yanked, "yank state of {:?}", new.filename);
            assert_eq!(new.upload_time, old.upload_time);
            assert_eq!(new.size, old.size);
        }
        kept_files += files.len();
    }
    let total: usize = before.iter().map(|(_, files)| files.len()).sum();
    assert_eq!(kept_files + rendered.files_removed, total, "files_removed");
    if let Some(v) = &rendered.info_version {
        assert!(
            after.iter().any(|(rv, _)| rv == v),
            "info.version {v:?} is not a kept release"
        );
    }
});
