//! `pypi::JsonPageScanner` (the PEP 691 JSON fast path) against `parse_project_page` (the full
//! path). Input: `<selector><project>\n<page body>`. The selector picks the page URL, how
//! the body is cut into arriving chunks, and which versions the caller keeps.
//!
//! Checks: no panic; feeding the body in chunks gives the same index as one call; whenever
//! the fast path answers, the full parser accepts the page and facts, file count and the
//! renderings in every format are equal byte for byte; whenever the full parser refuses the
//! page, the fast path does not answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::pypi::{
    FileEntry, JsonIndex, JsonPageScanner, Rewrite, SimpleFormat, parse_project_page,
};
use pkggate_fuzz::{PAGE_URLS, Rng, fnv, framed, pick, proxy_file_url};

fn scan(project: &str, url: &str, body: &[u8], chunks: Option<&mut Rng>) -> Option<JsonIndex> {
    let mut s = JsonPageScanner::new(project, url);
    match chunks {
        Some(rng) => {
            let mut end = 0;
            while end < body.len() {
                end = (end + rng.size(64)).min(body.len());
                s.advance(&body[..end]);
            }
        }
        None => s.advance(body),
    }
    s.finish(body)
}

fuzz_target!(|data: &[u8]| {
    let f = framed(data);
    let Ok(project) = std::str::from_utf8(f.head) else {
        return;
    };
    let sel = f.sel;
    let page_url = PAGE_URLS[usize::from(sel & 1)];
    let seed = sel >> 1;
    let one = scan(project, page_url, f.body, None);
    let mut rng = Rng::new(fnv(f.body) ^ u64::from(sel));
    let stepped = scan(project, page_url, f.body, Some(&mut rng));
    assert_eq!(one, stepped, "chunked scanning changed the index");

    let full = parse_project_page(project, f.body, Some(SimpleFormat::Json), page_url);
    let (idx, page) = match (one, full) {
        (None, _) => return,
        (Some(_), Err(e)) => panic!("fast path accepted a page the full parser refuses: {e}"),
        (Some(idx), Ok(page)) => (idx, page),
    };
    assert_eq!(idx.facts(), page.facts(), "facts");
    assert_eq!(idx.file_count(), page.files.len(), "file count");

    let keep_version = |v: &str| !pick(seed, v, 3);
    let keep_file = |e: &FileEntry| keep_version(e.version.as_deref().unwrap_or(""));
    let entry_url = |e: &FileEntry| proxy_file_url(&e.filename);
    let rw = Rewrite {
        keep_file: &keep_file,
        keep_version: &keep_version,
        file_url: &entry_url,
    };
    let file_url = |_: &str, filename: &str| proxy_file_url(filename);
    for format in SimpleFormat::ALL {
        let want = page.render(format, &rw);
        let got = idx.render(f.body, format, &keep_version, &file_url);
        assert_eq!(got, want, "render to {format:?}");
    }
});
