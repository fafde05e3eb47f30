//! `pypi::parse_project_page` (PEP 691 JSON and PEP 503 HTML) + `facts()` + `render(...)`.
//! Input: `<selector><project>\n<page body>`. The selector picks the declared upstream
//! format (none = sniff, JSON, v1 HTML, text/html), the output format, the page URL and which
//! files and versions the caller keeps.
//!
//! Checks: no panic; facts count every file once; a rendered page parses again in its own
//! format and lists exactly the kept files in order, each with the caller's URL and the same
//! filename, kind, version, requires-python, yank state, GPG flag, size, upload time,
//! metadata availability and (well-formed) hash — JSON → HTML → JSON loses nothing pkggate
//! promises to keep; the reported counts match what the re-parsed page has.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::{FileEntry, Rewrite, SimpleFormat, SourceFormat, parse_project_page};
use pkggate_fuzz::{PAGE_URLS, framed, pick, proxy_file_url};
use std::collections::BTreeMap;

const DECLARED: [Option<SimpleFormat>; 4] = [
    None,
    Some(SimpleFormat::Json),
    Some(SimpleFormat::V1Html),
    Some(SimpleFormat::TextHtml),
];

/// Whether `#alg=hex` survives as an HTML fragment (the parser's rule for fragments).
fn wellformed(alg: &str, hex: &str) -> bool {
    !alg.is_empty()
        && alg.len() <= 16
        && alg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !hex.is_empty()
        && hex.len() <= 256
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `#alg=hex` pkggate publishes in HTML: sha256 when known, else the first algorithm.
fn published_hash(h: &BTreeMap<String, String>) -> Option<(&String, &String)> {
    h.get_key_value("sha256").or_else(|| h.iter().next())
}

fn check_file(orig: &FileEntry, again: &FileEntry, out: SimpleFormat, src: SourceFormat) {
    let ctx = format!("{:?} ({src:?} → {out:?})", orig.filename);
    assert_eq!(again.filename, orig.filename, "{ctx}: filename");
    assert_eq!(again.url, proxy_file_url(&orig.filename), "{ctx}: url");
    assert_eq!(again.kind, orig.kind, "{ctx}: kind");
    assert_eq!(again.version, orig.version, "{ctx}: version");
    assert_eq!(
        again.requires_python, orig.requires_python,
        "{ctx}: requires-python"
    );
    assert_eq!(again.yanked, orig.yanked, "{ctx}: yanked");
    assert_eq!(again.gpg_sig, orig.gpg_sig, "{ctx}: gpg-sig");
    assert_eq!(again.upload_time, orig.upload_time, "{ctx}: upload-time");
    assert_eq!(again.size, orig.size, "{ctx}: size");
    match out {
        SimpleFormat::Json => {
            // JSON output copies the file object (JSON source) or writes every known hash
            // (HTML source); hashes folded in from an upstream URL fragment go with the URL.
            for (k, v) in &again.hashes {
                assert_eq!(orig.hashes.get(k), Some(v), "{ctx}: hash {k}");
            }
            if src == SourceFormat::Html {
                assert_eq!(again.hashes, orig.hashes, "{ctx}: hashes");
                assert_eq!(
                    again.core_metadata, orig.core_metadata,
                    "{ctx}: core-metadata"
                );
            }
            assert_eq!(
                again.core_metadata.is_some(),
                orig.core_metadata.is_some(),
                "{ctx}: core-metadata availability"
            );
        }
        SimpleFormat::V1Html | SimpleFormat::TextHtml => {
            if let Some((alg, hex)) = published_hash(&orig.hashes)
                && wellformed(alg, hex)
            {
                assert_eq!(
                    again.hashes.get(alg),
                    Some(hex),
                    "{ctx}: published hash {alg}"
                );
            }
            let meta_ok = orig
                .core_metadata
                .as_ref()
                .is_none_or(|m| published_hash(m).is_none_or(|(a, h)| wellformed(a, h)));
            if meta_ok {
                assert_eq!(
                    again.core_metadata.is_some(),
                    orig.core_metadata.is_some(),
                    "{ctx}: core-metadata availability"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let Ok(project) = std::str::from_utf8(f.head) else {
        return;
    };
    let sel = f.sel;
    let declared = DECLARED[usize::from(sel & 3)];
    let out = SimpleFormat::ALL[usize::from((sel >> 2) & 3) % 3];
    let page_url = PAGE_URLS[usize::from((sel >> 4) & 1)];
    let seed = sel >> 5;
    let Ok(page) = parse_project_page(project, f.body, declared, page_url) else {
        return;
    };

    let facts = page.facts();
    let counted: usize = facts.versions.iter().map(|v| v.files).sum();
    assert_eq!(
        counted + facts.unknown_version_files,
        page.files.len(),
        "facts miscount"
    );
    for file in &page.files {
        assert!(!file.filename.is_empty() && !file.filename.contains(['/', '\\']));
        if let Some(v) = &file.version {
            assert!(facts.get(v).is_some(), "no facts for version {v:?}");
        }
        let _ = (file.sha256(), file.upload_time_parsed());
    }

    let keep_file = |e: &FileEntry| !pick(seed, &e.filename, 4);
    let keep_version = |v: &str| !pick(seed ^ 0x55, v, 5);
    let file_url = |e: &FileEntry| proxy_file_url(&e.filename);
    let rw = Rewrite {
        keep_file: &keep_file,
        keep_version: &keep_version,
        file_url: &file_url,
    };
    let rendered = match page.render(out, &rw) {
        Ok(r) => r,
        Err(e) => panic!("render to {out:?} failed: {e}"),
    };
    let kept: Vec<&FileEntry> = page.files.iter().filter(|e| keep_file(e)).collect();
    assert_eq!(rendered.files_kept, kept.len());
    assert_eq!(
        rendered.files_kept + rendered.files_removed,
        page.files.len()
    );

    let again = match parse_project_page(project, rendered.body.as_bytes(), Some(out), page_url) {
        Ok(p) => p,
        Err(e) => panic!(
            "rendered {out:?} page does not parse: {e}\n{}",
            rendered.body
        ),
    };
    assert_eq!(
        again.files.len(),
        kept.len(),
        "kept files\n{}",
        rendered.body
    );
    for (orig, new) in kept.iter().zip(&again.files) {
        check_file(orig, new, out, page.source);
    }
    // `versions_kept` counts the output's `versions` list when it has one (JSON output from
    // a page with `versions`, or from HTML), else the distinct versions of kept files.
    if let Some(listed) = &again.versions {
        assert_eq!(
            listed.len(),
            rendered.versions_kept,
            "versions_kept\n{}",
            rendered.body
        );
    }
    // Every kept file's version is still there: nothing the output serves is reported removed.
    for file in &kept {
        if let Some(v) = &file.version {
            assert!(
                !rendered.removed_versions.contains(v),
                "kept file's version {v:?} reported removed"
            );
        }
    }
});
