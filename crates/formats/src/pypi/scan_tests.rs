//! The JSON fast path ([`super::scan`]) against the full path ([`super::page`]): on the
//! recorded pages, on hand-written pages, incrementally, and on generated and mutated pages.

use super::fixture_tests::{DIR, load};
use super::*;
use std::collections::BTreeSet;

const URL: &str = "https://pypi.example/simple/x/";

/// Every `*.json.gz` page in the fixture directory, as (project, body).
fn recorded_pages() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json.gz"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    names
        .into_iter()
        .map(|n| {
            let project = n.split(".v1.").next().unwrap().to_string();
            let body = load(&n);
            (project, body)
        })
        .collect()
}

fn scan_once(project: &str, url: &str, body: &[u8]) -> Option<JsonIndex> {
    let mut s = JsonPageScanner::new(project, url);
    s.advance(body);
    s.finish(body)
}

/// Feed `body` in prefixes ending at `cuts` (ascending), then finish.
fn scan_in_steps(project: &str, url: &str, body: &[u8], cuts: &[usize]) -> Option<JsonIndex> {
    let mut s = JsonPageScanner::new(project, url);
    for &c in cuts {
        s.advance(&body[..c.min(body.len())]);
    }
    s.finish(body)
}

type Keep = fn(&str) -> bool;

/// Keep patterns: everything, every other version (by a hash of the spelling), nothing,
/// only versions starting with a digit other than 1, everything but unknown versions, and
/// one spelling of 1.0 (its files go, `1.0.0` in `versions` loses them).
const PATTERNS: [(&str, Keep); 6] = [
    ("all", |_| true),
    ("every other", |v| {
        v.bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b))
            % 2
            == 0
    }),
    ("none", |_| false),
    ("not 1.x", |v| !v.starts_with('1')),
    ("known", |v| !v.is_empty()),
    ("spelling", |v| v != "1.0"),
];

type FileUrl = fn(&str, &str) -> String;

const URLS: [FileUrl; 3] = [
    |_, f| format!("http://127.0.0.1:8080/files/ab/{f}"),
    // A `#` (no hash appended in HTML) and bytes both renderers escape.
    |u, f| format!("http://proxy.example/x?u={u}&q=\"<'>\"#{f}"),
    // Control characters must be escaped in JSON.
    |u, _| format!("{u}\t\u{1}é"),
];

/// The full path's render with the same decisions.
fn full_render(
    page: &ProjectPage<'_>,
    format: SimpleFormat,
    keep: Keep,
    url: FileUrl,
) -> Result<RenderedPage, PypiError> {
    let keep_file = |f: &FileEntry| keep(f.version.as_deref().unwrap_or(""));
    let keep_version = |v: &str| keep(v);
    let file_url = |f: &FileEntry| url(&f.url, &f.filename);
    page.render(
        format,
        &Rewrite {
            keep_file: &keep_file,
            keep_version: &keep_version,
            file_url: &file_url,
        },
    )
}

/// Both paths agree on `body`: when the fast path answers, the full parser accepts the page
/// and facts, file count and every rendering are equal; when the full parser refuses it,
/// the fast path has no answer. Returns whether the fast path answered.
fn agree(project: &str, url: &str, body: &[u8], renders: bool) -> bool {
    let fast = scan_once(project, url, body);
    let full = parse_project_page(project, body, Some(SimpleFormat::Json), url);
    let (idx, page) = match (fast, full) {
        (None, _) => return false,
        (Some(_), Err(e)) => panic!(
            "fast path accepted a page the full parser refuses ({e}):\n{}",
            String::from_utf8_lossy(body)
        ),
        (Some(idx), Ok(page)) => (idx, page),
    };
    let sniffed = parse_project_page(project, body, None, url).unwrap();
    assert_eq!(sniffed.source, SourceFormat::Json);
    assert_eq!(
        idx.facts(),
        page.facts(),
        "{}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(idx.file_count(), page.files.len());
    assert!(idx.approx_bytes() >= idx.file_count() * 32);
    // What the file gate reads: the same fields as the full parse's entries.
    let files = idx.files(body).unwrap();
    assert_eq!(files.len(), page.files.len());
    for (got, want) in files.iter().zip(&page.files) {
        let lower = |h: Option<&String>| h.map(|v| v.to_ascii_lowercase());
        assert_eq!(got.filename, want.filename);
        assert_eq!(got.url, want.url);
        assert_eq!(got.version, want.version.as_deref());
        assert_eq!(
            got.sha256.as_deref().map(str::to_ascii_lowercase),
            lower(want.hashes.get("sha256")),
            "{}",
            want.filename
        );
        assert_eq!(
            got.core_metadata
                .as_ref()
                .map(|h| h.as_deref().map(str::to_ascii_lowercase)),
            want.core_metadata.as_ref().map(|h| lower(h.get("sha256"))),
            "{}",
            want.filename
        );
        assert_eq!(got.size, want.size);
    }
    // One file by name: the last one listed under it, as a filename → file map keeps.
    for want in &page.files {
        let last = files.iter().rfind(|f| f.filename == want.filename);
        assert_eq!(
            idx.file(body, &want.filename).unwrap().as_ref(),
            last,
            "{}",
            want.filename
        );
    }
    assert_eq!(idx.file(body, "not-listed-1.0.tar.gz").unwrap(), None);
    assert!(
        idx.file(&body[1..], "x").is_err(),
        "another body is refused"
    );
    if renders {
        for (name, keep) in PATTERNS {
            for file_url in URLS {
                for format in SimpleFormat::ALL {
                    let want = full_render(&page, format, keep, file_url).unwrap();
                    let got = idx.render(body, format, &keep, &file_url).unwrap();
                    assert_eq!(
                        got,
                        want,
                        "{project} {format:?} keep {name}:\n{}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
        }
    }
    true
}

#[test]
fn recorded_pages_take_the_fast_path_and_agree() {
    for (project, body) in recorded_pages() {
        assert!(
            agree(&project, URL, &body, true),
            "{project} fell back to the full parser"
        );
        let idx = scan_once(&project, URL, &body).unwrap();
        // Spot checks beside the differential ones.
        let r = idx
            .render(&body, SimpleFormat::Json, &|_| true, &|u, _| u.to_string())
            .unwrap();
        let a: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(a, b, "{project}: identity render");
        assert!(r.removed_versions.is_empty());
        let all_removed = idx
            .render(&body, SimpleFormat::TextHtml, &|_| false, &URLS[0])
            .unwrap();
        assert_eq!(all_removed.files_kept, 0);
        assert_eq!(all_removed.files_removed, idx.file_count());
        assert!(!all_removed.body.contains("<a "));
    }
}

#[test]
fn recorded_pages_scan_the_same_in_any_steps() {
    for (project, body) in recorded_pages() {
        let one = scan_once(&project, URL, &body).unwrap();
        // 64 KiB steps, prime-sized steps, and growing steps.
        let steps: Vec<Vec<usize>> = vec![
            (1..=body.len() / 65536 + 1).map(|i| i * 65536).collect(),
            (1..=body.len() / 997 + 1).map(|i| i * 997).collect(),
            (0..24).map(|i| 1usize << i).collect(),
        ];
        for cuts in steps {
            assert_eq!(
                scan_in_steps(&project, URL, &body, &cuts).as_ref(),
                Some(&one),
                "{project}"
            );
        }
    }
}

/// Retried attempts read less than twice the body, however small the steps.
#[test]
fn work_stays_linear() {
    for (file, step) in [("django.v1.json.gz", 1), ("numpy.v1.json.gz", 13)] {
        let body = load(file);
        let mut s = JsonPageScanner::new("x", URL);
        let mut end = 0;
        while end < body.len() {
            end = (end + step).min(body.len());
            s.advance(&body[..end]);
        }
        let retried = s.retried_bytes();
        assert!(retried <= 2 * body.len() as u64, "{file}: {retried}");
        // Something was retried (the steps are smaller than a file object).
        assert!(retried > 0, "{file}");
        assert!(s.finish(&body).is_some(), "{file}");
    }
}

#[test]
fn small_page_in_one_byte_steps() {
    let body = load("six.v1.json.gz");
    let one = scan_once("six", URL, &body).unwrap();
    let cuts: Vec<usize> = (0..=body.len()).collect();
    assert_eq!(scan_in_steps("six", URL, &body, &cuts), Some(one));
    // A page with escapes in values it does not interpret, numbers and literals, fed
    // byte by byte: every split inside a string, an escape, a number or a literal.
    let body = SYNTHETIC[1].1.as_bytes();
    let one = scan_once("x", URL, body).unwrap();
    let cuts: Vec<usize> = (0..=body.len()).collect();
    assert_eq!(scan_in_steps("x", URL, body, &cuts), Some(one));
}

/// Pages the fast path must take (and agree on).
const SYNTHETIC: &[(&str, &str)] = &[
    ("minimal", r#"{"files":[]}"#),
    (
        "everything",
        r#" {
  "meta" : { "_last-serial" : 7 , "api-version" : " 1.3 " , "x" : [ {"a\u0041": "\ud800"} ] },
  "name" : "X" ,
  "files" : [
    { "filename" : "x-1.0.tar.gz" , "url" : "https://files.example/p/x-1.0.tar.gz" ,
      "hashes" : { "SHA256" : "AbCd" , "md5" : "00" } , "requires-python" : ">=3.8, <4 & '" ,
      "yanked" : "bad <release> & 'more'" , "core-metadata" : { "sha256" : "ef" } ,
      "dist-info-metadata" : { "sha256" : "ef" } , "gpg-sig" : true , "size" : 0 ,
      "upload-time" : "2020-01-01T00:00:00.5Z" , "provenance" : "https://p\n\t\/\\" ,
      "_private" : { "a" : [ 1 , -2.5e+3 , 0.0 , true , false , null , [ ] , { } ] } } ,
    {"filename":"x-1.0-py3-none-any.whl","url":"http://files.example:8080/p/x-1.0-py3-none-any.whl?a=b","hashes":{},"yanked":true,"core-metadata":true,"gpg-sig":false,"size":18446744073709551615,"upload-time":"2019-01-01T00:00:00Z"},
    {"filename":"x-2.0rc1.zip","url":"https://files.example/p/x-2.0rc1.zip","hashes":null,"requires-python":null,"yanked":null,"core-metadata":null,"dist-info-metadata":{"md5":"aa","sha1":"bb"},"gpg-sig":null,"size":null,"upload-time":null},
    {"filename":"x-2.0rc1-py3-none-any.whl","url":"https://files.example/p/b.whl","yanked":"","core-metadata":false,"dist-info-metadata":[1,"\u00e9"],"upload-time":"not a time"},
    {"filename":"other-9.0.tar.gz","url":"https://files.example/other-9.0.tar.gz","yanked":false},
    {"filename":"x-1.0.0.tar.gz","url":"https://files.example/x-1.0.0.tar.gz","hashes":{"md5":"11","sha512":"22"},"upload-time":"2018-06-01T00:00:00+02:00"},
    {"filename":"x-3.tar.gz","url":"https://files.example/e/x-3.tar.gz","core-metadata":{}}
  ] ,
  "versions" : [ "0.1" , "1.0" , "1.0.0" , "2.0rc1" , "4" ] ,
  "alternate-locations" : [ "https://a.example/" ] ,
  "z" : -0
}
"#,
    ),
    (
        "no meta, no name, files last",
        r#"{"versions":["1.0"],"files":[{"url":"https://f.example/x-1.0.tar.gz","filename":"x-1.0.tar.gz"}]}"#,
    ),
    (
        "no meta, no versions",
        r#"{"files":[{"filename":"x-1.0.tar.gz","url":"https://f.example/x-1.0.tar.gz"},{"filename":"x_1.0.tar.gz","url":"https://f.example/y.tar.gz"},{"filename":"x-2.0.tar.gz","url":"https://f.example/x-2.0.tar.gz"},{"filename":"x.rpm","url":"https://f.example/x.rpm"}]}"#,
    ),
    (
        "empty meta, name with markup",
        "{\"meta\":{},\"name\":\"<x & 'y'>\",\"files\":[{\"filename\":\"x-1.0.tar.gz\",\"url\":\"https://f.example/x-1.0.tar.gz\",\"requires-python\":\"\"}],\"versions\":[]}\r\n\t ",
    ),
    (
        "listed spelling without files of its own",
        r#"{"files":[{"filename":"x-1.0.tar.gz","url":"https://f.example/a"},{"filename":"x-2.tar.gz","url":"https://f.example/b"}],"versions":["1.0.0","2","2.0"]}"#,
    ),
    (
        "non-ASCII filename",
        r#"{"files":[{"filename":"x-1.0-é.tar.gz","url":"https://f.example/a.tar.gz"}]}"#,
    ),
];

/// Pages the fast path leaves to the full parser (valid or not).
const FALLBACK: &[(&str, &str)] = &[
    ("empty", ""),
    ("not an object", "[]"),
    ("no files", r#"{"name":"x"}"#),
    ("files not an array", r#"{"files":{}}"#),
    ("files null", r#"{"files":null}"#),
    ("entry not an object", r#"{"files":[1]}"#),
    ("trailing comma", r#"{"files":[],}"#),
    (
        "trailing comma in files",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x"},]}"#,
    ),
    ("trailing garbage", r#"{"files":[]} x"#),
    ("two objects", r#"{"files":[]}{}"#),
    ("duplicate top key", r#"{"files":[],"files":[]}"#),
    ("duplicate name", r#"{"name":"a","name":"b","files":[]}"#),
    ("duplicate meta key", r#"{"meta":{"a":1,"a":2},"files":[]}"#),
    ("escaped top key", r#"{"fil\u0065s":[]}"#),
    (
        "escaped meta key",
        r#"{"meta":{"api\u002dversion":"2.0"},"files":[]}"#,
    ),
    (
        "api version 2",
        r#"{"meta":{"api-version":"2.0"},"files":[]}"#,
    ),
    (
        "api version bad",
        r#"{"meta":{"api-version":"one"},"files":[]}"#,
    ),
    (
        "api version number",
        r#"{"meta":{"api-version":1},"files":[]}"#,
    ),
    (
        "api version escaped",
        r#"{"meta":{"api-version":"1.\u0031"},"files":[]}"#,
    ),
    ("meta not an object", r#"{"meta":[],"files":[]}"#),
    ("name escaped", r#"{"name":"\u0078","files":[]}"#),
    ("name not a string", r#"{"name":1,"files":[]}"#),
    (
        "versions entry not a string",
        r#"{"files":[],"versions":[1]}"#,
    ),
    (
        "versions entry escaped",
        r#"{"files":[],"versions":["1.\u0030"]}"#,
    ),
    ("versions not an array", r#"{"files":[],"versions":"1.0"}"#),
    (
        "no filename",
        r#"{"files":[{"url":"https://f.example/x-1.tar.gz"}]}"#,
    ),
    ("no url", r#"{"files":[{"filename":"x-1.tar.gz"}]}"#),
    ("empty file object", r#"{"files":[{}]}"#),
    (
        "escaped filename",
        r#"{"files":[{"filename":"x-1.tar.g\u007a","url":"https://f.example/x"}]}"#,
    ),
    (
        "escaped url",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https:\/\/f.example\/x"}]}"#,
    ),
    (
        "escaped file key",
        r#"{"files":[{"filename":"x-1.tar.gz","ur\u006c":"https://f.example/x"}]}"#,
    ),
    (
        "relative url",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"../../x-1.tar.gz"}]}"#,
    ),
    (
        "url with fragment",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x-1.tar.gz#sha256=00"}]}"#,
    ),
    (
        "url upper-case scheme",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"HTTPS://f.example/x"}]}"#,
    ),
    (
        "url dot segment",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/a/../x"}]}"#,
    ),
    (
        "url not a string",
        r#"{"files":[{"filename":"x-1.tar.gz","url":1}]}"#,
    ),
    (
        "filename with slash",
        r#"{"files":[{"filename":"a/x-1.tar.gz","url":"https://f.example/x"}]}"#,
    ),
    (
        "filename dot-dot",
        r#"{"files":[{"filename":"..","url":"https://f.example/x"}]}"#,
    ),
    (
        "filename empty",
        r#"{"files":[{"filename":"","url":"https://f.example/x"}]}"#,
    ),
    (
        "filename C1 control",
        "{\"files\":[{\"filename\":\"x-1\u{85}.tar.gz\",\"url\":\"https://f.example/x\"}]}",
    ),
    (
        "duplicate file key",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","url":"https://f.example/y"}]}"#,
    ),
    (
        "duplicate unknown key",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","a":1,"a":1}]}"#,
    ),
    (
        "hashes not an object",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","hashes":[]}]}"#,
    ),
    (
        "hashes number value",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","hashes":{"sha256":1}}]}"#,
    ),
    (
        "hashes escaped",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","hashes":{"sha256":"\u0030"}}]}"#,
    ),
    (
        "size negative",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","size":-1}]}"#,
    ),
    (
        "size float",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","size":1.0}]}"#,
    ),
    (
        "size exponent",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","size":1e3}]}"#,
    ),
    (
        "size too big",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","size":18446744073709551616}]}"#,
    ),
    (
        "size string",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","size":"1"}]}"#,
    ),
    (
        "yanked number",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","yanked":3}]}"#,
    ),
    (
        "yanked escaped",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","yanked":"\""}]}"#,
    ),
    (
        "gpg-sig string",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","gpg-sig":"true"}]}"#,
    ),
    (
        "requires-python number",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","requires-python":3}]}"#,
    ),
    (
        "requires-python escaped",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","requires-python":"\u003e=3"}]}"#,
    ),
    (
        "upload-time escaped",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","upload-time":"2020\u002d01-01T00:00:00Z"}]}"#,
    ),
    (
        "core-metadata string",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","core-metadata":"yes"}]}"#,
    ),
    (
        "dist-info-metadata in effect, bad",
        r#"{"files":[{"filename":"x-1.tar.gz","url":"https://f.example/x","core-metadata":null,"dist-info-metadata":[]}]}"#,
    ),
    ("raw control character", "{\"files\":[],\"x\":\"a\u{1}b\"}"),
    ("bad escape", r#"{"files":[],"x":"\x"}"#),
    ("short unicode escape", r#"{"files":[],"x":"\u12"}"#),
    ("leading zero", r#"{"files":[],"x":01}"#),
    ("bare minus", r#"{"files":[],"x":-}"#),
    ("dot without digits", r#"{"files":[],"x":1.}"#),
    ("exponent without digits", r#"{"files":[],"x":1e}"#),
    ("bad literal", r#"{"files":[],"x":tru}"#),
    ("unclosed nested", r#"{"files":[],"x":[{"a":1]}"#),
    ("missing colon", r#"{"files":[],"x" 1}"#),
    ("nested trailing comma", r#"{"files":[],"x":[1,]}"#),
    ("non-string nested key", r#"{"files":[],"x":{1:2}}"#),
    ("byte order mark", "\u{feff}{\"files\":[]}"),
];

#[test]
fn synthetic_pages_take_the_fast_path_and_agree() {
    for (name, body) in SYNTHETIC {
        assert!(agree("x", URL, body.as_bytes(), true), "{name}");
    }
    // Deep nesting in a member the fast path only checks (no recursion limit, as for the
    // full parser's raw values).
    let deep = format!(
        "{{\"files\":[],\"x\":{}1{}}}",
        "[{\"a\":".repeat(5000),
        "}]".repeat(5000)
    );
    assert!(agree("x", URL, deep.as_bytes(), true));
    // Many unknown keys in a file object (duplicate detection switches to a set).
    let keys: String = (0..40).map(|i| format!(",\"k{i}\":{i}")).collect();
    let many = format!(
        "{{\"files\":[{{\"filename\":\"x-1.tar.gz\",\"url\":\"https://f.example/x\"{keys}}}]}}"
    );
    assert!(agree("x", URL, many.as_bytes(), true));
    let dup = format!(
        "{{\"files\":[{{\"filename\":\"x-1.tar.gz\",\"url\":\"https://f.example/x\"{keys},\"k3\":0}}]}}"
    );
    assert!(!agree("x", URL, dup.as_bytes(), true));
}

#[test]
fn unusual_pages_fall_back() {
    for (name, body) in FALLBACK {
        assert!(!agree("x", URL, body.as_bytes(), true), "{name}");
    }
    // Not UTF-8, inside a value the fast path only checks.
    let mut body = br#"{"files":[],"x":"#.to_vec();
    body.extend_from_slice(b"\"\xff\"}");
    assert!(scan_once("x", URL, &body).is_none());
    // The page URL is checked like the full parser does.
    assert!(scan_once("x", "not a url", b"{\"files\":[]}").is_none());
    // A body that stops early.
    assert!(scan_once("x", URL, br#"{"files":[{"filename":"x-1.tar.gz""#).is_none());
    // The existing tests' pages: relative URLs and fragments go to the full parser.
    let hostile = r#"{"meta":{"api-version":"1.3","_x":[1]},"name":"x","files":[{"filename":"x-1.0.tar.gz","url":"../../files/x-1.0.tar.gz#sha256=beef","hashes":{}}]}"#;
    assert!(!agree("x", URL, hostile.as_bytes(), true));
}

#[test]
fn index_and_body_must_match() {
    let body = SYNTHETIC[1].1.as_bytes();
    let idx = scan_once("x", URL, body).unwrap();
    let err = idx
        .render(&body[1..], SimpleFormat::Json, &|_| true, &URLS[0])
        .unwrap_err();
    assert!(matches!(err, PypiError::Shape(_)), "{err}");
    // A caller that feeds different bytes gets no panic.
    let mut s = JsonPageScanner::new("x", URL);
    s.advance(body);
    assert!(s.finish(b"{}").is_none());
}

#[test]
fn facts_of_the_synthetic_page() {
    let body = SYNTHETIC[1].1.as_bytes();
    let idx = scan_once("x", URL, body).unwrap();
    let facts = idx.facts();
    let versions: Vec<&str> = facts.versions.iter().map(|v| v.version.as_str()).collect();
    // Listed first (1.0.0 is 1.0), then the files' versions.
    assert_eq!(versions, ["0.1", "1.0", "2.0rc1", "4", "3"]);
    let one = facts.get("1.0").unwrap();
    assert_eq!((one.files, one.yanked_files), (3, 2));
    assert_eq!(
        one.earliest_upload.as_ref().unwrap().raw,
        "2018-06-01T00:00:00+02:00"
    );
    assert_eq!(facts.unknown_version_files, 1);
    assert_eq!(idx.file_count(), 7);
    let kept: BTreeSet<String> = idx
        .render(body, SimpleFormat::Json, &|v| v != "2.0rc1", &URLS[0])
        .unwrap()
        .removed_versions
        .into_iter()
        .collect();
    assert_eq!(kept, BTreeSet::from(["2.0rc1".to_string()]));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Spellings of a few versions (two spellings of 1.0, a pre-release, a non-PEP 440 one).
    const VERSIONS: [&str; 6] = ["1.0", "1.0.0", "2.0rc1", "2.0", "3", "2004b"];

    /// One generated file object: members as (key, raw value).
    fn file_object() -> impl Strategy<Value = Vec<(String, String)>> {
        (
            (
                0..VERSIONS.len(),
                prop_oneof![
                    Just("tar.gz"),
                    Just("zip"),
                    Just("-py3-none-any.whl"),
                    Just("rpm")
                ],
                prop_oneof![
                    Just("https://f.example/p/F"),
                    Just("http://f.example:8080/F?x=1"),
                    Just("../F"),
                    Just("https://f.example/F#sha256=00"),
                ],
                prop_oneof![
                    Just(None),
                    Just(Some("null")),
                    Just(Some(r#"{"sha256":"ab"}"#)),
                    Just(Some(r#"{ "SHA256" : "Ab" , "md5" : "00" }"#)),
                    Just(Some("{}")),
                ],
                prop::option::of(prop_oneof![
                    Just("false"),
                    Just("true"),
                    Just("null"),
                    Just(r#""why <not> & 'so'""#),
                    Just(r#""""#),
                ]),
            ),
            (
                prop::option::of(prop_oneof![Just("null"), Just(r#"">=3.8""#), Just(r#""""#)]),
                prop::option::of(prop_oneof![
                    Just("true"),
                    Just("false"),
                    Just("null"),
                    Just(r#"{"sha256":"cd"}"#),
                ]),
                prop::option::of(prop_oneof![
                    Just("true"),
                    Just(r#"{"md5":"ef"}"#),
                    Just("null")
                ]),
                prop::option::of(prop_oneof![Just("true"), Just("false"), Just("null")]),
                prop::option::of(prop_oneof![Just("0"), Just("12345"), Just("null")]),
                prop::option::of(prop_oneof![
                    Just(r#""2020-01-02T03:04:05Z""#),
                    Just(r#""2019-12-31T23:59:59.999+01:00""#),
                    Just(r#""bogus""#),
                    Just("null"),
                ]),
                prop::option::of(prop_oneof![
                    Just(r#""https://p.example""#),
                    Just(r#"{"a":[1,2.5,-3e2,null],"b\n":"\u00e9"}"#),
                ]),
            ),
        )
            .prop_map(
                |((v, ext, url, hashes, yanked), (rp, core, dist, gpg, size, time, extra))| {
                    let version = VERSIONS[v];
                    let filename = if ext.starts_with('-') {
                        format!("x-{version}{ext}")
                    } else {
                        format!("x-{version}.{ext}")
                    };
                    let mut m = vec![
                        ("filename".to_string(), format!("\"{filename}\"")),
                        (
                            "url".to_string(),
                            format!("\"{}\"", url.replace('F', &filename)),
                        ),
                    ];
                    let opt = [
                        ("hashes", hashes),
                        ("yanked", yanked),
                        ("requires-python", rp),
                        ("core-metadata", core),
                        ("dist-info-metadata", dist),
                        ("gpg-sig", gpg),
                        ("size", size),
                        ("upload-time", time),
                        ("provenance", extra),
                    ];
                    for (k, v) in opt {
                        if let Some(v) = v {
                            m.push((k.to_string(), v.to_string()));
                        }
                    }
                    m
                },
            )
    }

    /// A page as text: members in a permuted order, with the chosen whitespace.
    fn page() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((file_object(), any::<u32>()), 0..6),
            prop::option::of(prop_oneof![
                Just(r#"{"api-version":"1.1","_last-serial":"5"}"#),
                Just(r#"{"api-version":" 1.0 "}"#),
                Just(r#"{"api-version":"2.0"}"#),
                Just("{}"),
            ]),
            prop::option::of(prop_oneof![Just(r#""x""#), Just(r#""X <y>""#)]),
            prop::option::of(prop::collection::vec(0..VERSIONS.len() + 1, 0..5)),
            any::<u32>(),
            prop_oneof![Just(""), Just(" "), Just("\n  ")],
        )
            .prop_map(|(files, meta, name, versions, order, ws)| {
                let obj = |members: Vec<(String, String)>, seed: u32| {
                    let mut members = members;
                    let n = members.len();
                    if n > 1 {
                        members.rotate_left(seed as usize % n);
                        if seed & 1 == 1 {
                            members.swap(0, n - 1);
                        }
                    }
                    let inner: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
                        .collect();
                    format!("{{{}{ws}}}", inner.join(","))
                };
                let files: Vec<String> = files.into_iter().map(|(m, s)| obj(m, s)).collect();
                let mut top = vec![(
                    "files".to_string(),
                    format!("[{}{ws}]", files.join(&format!(",{ws}"))),
                )];
                if let Some(m) = meta {
                    top.push(("meta".to_string(), m.to_string()));
                }
                if let Some(n) = name {
                    top.push(("name".to_string(), n.to_string()));
                }
                if let Some(vs) = versions {
                    let list: Vec<String> = vs
                        .iter()
                        .map(|&i| format!("\"{}\"", VERSIONS.get(i).unwrap_or(&"9.9")))
                        .collect();
                    top.push(("versions".to_string(), format!("[{}]", list.join(","))));
                }
                obj(top, order)
            })
    }

    /// A mutation of a page's bytes.
    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        Truncate(usize),
        Flip(usize, u8),
        /// An escape right after the n-th quote (inside a string, or breaking the syntax).
        Escape(usize, &'static str),
        /// A member repeated in its object.
        Duplicate(usize),
        Insert(usize, &'static str),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            3 => Just(Mutation::None),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
            1 => (any::<usize>(), prop_oneof![Just("\\u0041"), Just("\\n"), Just("\\/"), Just("\\ud800"), Just("\\x")])
                .prop_map(|(i, e)| Mutation::Escape(i, e)),
            1 => any::<usize>().prop_map(Mutation::Duplicate),
            1 => (any::<usize>(), prop_oneof![Just(","), Just("}"), Just("\u{1}"), Just(" "), Just("\"a\":1,"), Just("\u{e9}")])
                .prop_map(|(i, s)| Mutation::Insert(i, s)),
        ]
    }

    fn apply(page: &str, m: &Mutation) -> Vec<u8> {
        let mut b = page.as_bytes().to_vec();
        let at = |i: usize| if b.is_empty() { 0 } else { i % (b.len() + 1) };
        match m {
            Mutation::None => {}
            Mutation::Truncate(i) => {
                let i = at(*i);
                b.truncate(i);
            }
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    let i = i % b.len();
                    b[i] ^= x | 1;
                }
            }
            Mutation::Escape(n, e) => {
                let quotes: Vec<usize> = b
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == b'"')
                    .map(|(i, _)| i)
                    .collect();
                if !quotes.is_empty() {
                    let q = quotes[n % quotes.len()];
                    b.splice(q + 1..q + 1, e.bytes());
                }
            }
            Mutation::Duplicate(n) => {
                // Repeat the member that starts at the n-th `"key":`.
                let text = String::from_utf8_lossy(&b).into_owned();
                let starts: Vec<usize> = text
                    .match_indices('"')
                    .map(|(i, _)| i)
                    .filter(|&i| {
                        text[i + 1..]
                            .find('"')
                            .is_some_and(|e| text[i + 1 + e + 1..].trim_start().starts_with(':'))
                    })
                    .collect();
                if !starts.is_empty() {
                    let s = starts[n % starts.len()];
                    let key_end = s + 1 + text[s + 1..].find('"').unwrap_or(0) + 1;
                    let key = &text[s..key_end];
                    b.splice(s..s, format!("{key}:null,").bytes());
                }
            }
            Mutation::Insert(i, s) => {
                let i = at(*i);
                b.splice(i..i, s.bytes());
            }
        }
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fast_path_never_disagrees(page in page(), m in mutation()) {
            let body = apply(&page, &m);
            let fast = agree("x", URL, &body, true);
            let full = parse_project_page("x", &body, Some(SimpleFormat::Json), URL);
            if full.is_err() {
                prop_assert!(!fast);
            }
        }

        #[test]
        fn steps_do_not_change_the_index(
            page in page(),
            m in mutation(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let body = apply(&page, &m);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(
                scan_in_steps("x", URL, &body, &cuts),
                scan_once("x", URL, &body)
            );
        }

        #[test]
        fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut with_files = br#"{"files":[],"x":"#.to_vec();
            with_files.extend_from_slice(&body);
            with_files.push(b'}');
            for b in [&body, &with_files] {
                agree("x", URL, b, true);
                let full = parse_project_page("x", b, Some(SimpleFormat::Json), URL);
                if full.is_err() {
                    prop_assert!(scan_once("x", URL, b).is_none());
                }
            }
        }
    }

    /// The generator does produce pages on both paths (so the properties test something).
    #[test]
    fn generated_pages_reach_both_paths() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut fast, mut slow) = (0, 0);
        for _ in 0..200 {
            let p = page().new_tree(&mut runner).unwrap().current();
            if agree("x", URL, p.as_bytes(), false) {
                fast += 1;
            } else {
                slow += 1;
            }
        }
        assert!(fast > 20 && slow > 20, "fast {fast}, slow {slow}");
    }
}
