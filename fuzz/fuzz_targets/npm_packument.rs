//! `npm::Packument::parse` + accessors + `facts()`/`summary()` + `render(...)` on arbitrary
//! documents. Input: `<selector><tarball base index>\n<packument JSON>`; the selector picks
//! the representation and which versions are removed.
//!
//! Checks: no panic; a rendered document parses again, lists exactly the kept versions in
//! order with the dist-tags `Rendered` reports; removed + kept = versions; every tarball URL
//! in the output is the proxy's (`tarball_url(base, name, version)`); `NoVersionsLeft` only
//! when nothing is kept; for a full rendering, `render_version(v)` equals
//! `extract_version(rendered, v)` (the two ways the app serves `GET /<name>/<version>`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::npm::{
    NpmDocError, Packument, RenderOptions, Representation, extract_version, tarball_url,
};
use pkggate_fuzz::{framed, pick};
use std::collections::HashSet;

const BASES: [&str; 3] = ["http://127.0.0.1:8080", "https://proxy.example/npm/", ""];

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let Ok(doc) = Packument::parse(f.body) else {
        return;
    };
    // Accessors and facts must not panic on anything that parsed.
    let _ = (
        doc.name(),
        doc.is_abbreviated(),
        doc.created(),
        doc.modified(),
    );
    let _ = doc.dist_tags().count();
    let versions: Vec<String> = doc.versions().map(str::to_string).collect();
    assert_eq!(versions.len(), doc.version_count());
    let _ = doc.facts();
    let _ = doc.summary();
    for v in versions.iter().take(4) {
        assert!(doc.has_version(v));
        assert!(doc.version_raw(v).is_some());
        let _ = doc.version_facts(v);
        let _ = doc.resolve(v);
    }
    for (tag, _) in doc.dist_tags().take(2) {
        let _ = doc.resolve(tag);
    }

    let sel = f.sel;
    let representation = if sel & 1 == 0 {
        Representation::Full
    } else {
        Representation::Abbreviated
    };
    let base = BASES[f.head.first().map_or(0, |&b| usize::from(b) % BASES.len())];
    let removed: HashSet<String> = versions
        .iter()
        .filter(|v| pick(sel >> 1, v, 3))
        .cloned()
        .collect();
    let opts = RenderOptions {
        removed: &removed,
        tarball_base: base,
        representation,
    };
    let kept: Vec<&String> = versions.iter().filter(|v| !removed.contains(*v)).collect();
    let rendered = match doc.render(&opts) {
        Ok(r) => r,
        Err(NpmDocError::NoVersionsLeft {
            removed: r, total, ..
        }) => {
            assert!(kept.is_empty(), "NoVersionsLeft with {} kept", kept.len());
            assert_eq!((r, total), (removed.len(), versions.len()));
            return;
        }
        // Documents that parse but cannot be rendered (no name, bad `dist`, …) are refused
        // with an error, which is fine; an internal error is not.
        Err(NpmDocError::Internal(what)) => panic!("internal render error: {what}"),
        Err(_) => return,
    };
    assert!(!kept.is_empty());
    assert_eq!(rendered.kept, kept.len());
    assert_eq!(rendered.removed + rendered.kept, versions.len());

    let again = match Packument::parse(&rendered.bytes) {
        Ok(d) => d,
        Err(e) => panic!(
            "rendered document does not parse: {e}\n{}",
            String::from_utf8_lossy(&rendered.bytes)
        ),
    };
    let again_versions: Vec<&str> = again.versions().collect();
    let kept_strs: Vec<&str> = kept.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        again_versions, kept_strs,
        "kept versions differ after rendering"
    );
    let again_tags: Vec<(String, String)> = again
        .dist_tags()
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        again_tags, rendered.dist_tags,
        "dist-tags differ from Rendered::dist_tags"
    );
    assert_eq!(again.name(), doc.name());

    let name = doc.name().expect("rendered without a name").to_string();
    if let Ok(facts) = again.facts() {
        for vf in facts {
            if let Some(url) = &vf.tarball_url {
                assert_eq!(
                    url,
                    &tarball_url(base, &name, &vf.version),
                    "tarball of {:?} not rewritten",
                    vf.version
                );
            }
        }
    }

    if representation == Representation::Full && !doc.is_abbreviated() {
        for v in kept.iter().take(3) {
            let direct = doc.render_version(&opts, v).expect("render_version");
            let extracted = extract_version(&rendered.bytes, v).expect("extract_version");
            assert_eq!(
                direct, extracted,
                "render_version vs extract_version for {v:?}"
            );
        }
        for (tag, _) in doc.dist_tags().take(2) {
            let direct = doc.render_version(&opts, tag).expect("render_version");
            let extracted = extract_version(&rendered.bytes, tag).expect("extract_version");
            assert_eq!(
                direct, extracted,
                "render_version vs extract_version for tag {tag:?}"
            );
        }
    }
});
