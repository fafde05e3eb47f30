//! Tests over recorded real pages (`shared/fixtures/registry/pypi/*.gz`) and page-level
//! behaviour (filtering, rendering, cross-format conversion, hostile input).

use super::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::io::Read;

pub(super) const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/registry/pypi"
);
const PROJECTS: &[&str] = &[
    "django",
    "numpy",
    "python-dateutil",
    "pytz",
    "requests",
    "six",
    "urllib3",
];

/// A recorded page, decompressed (shared with the scanner's tests).
pub(super) fn load(file: &str) -> Vec<u8> {
    let path = format!("{DIR}/{file}");
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn page_url(project: &str) -> String {
    format!("https://pypi.example/simple/{project}/")
}

fn proxy_url(f: &FileEntry) -> String {
    format!(
        "http://127.0.0.1:8080/files/{}/{}",
        f.sha256().unwrap_or("none"),
        f.filename
    )
}

fn render(
    page: &ProjectPage<'_>,
    format: SimpleFormat,
    keep_version: &dyn Fn(&str) -> bool,
) -> RenderedPage {
    let keep_file = |f: &FileEntry| f.version.as_deref().is_some_and(keep_version);
    page.render(
        format,
        &Rewrite {
            keep_file: &keep_file,
            keep_version,
            file_url: &proxy_url,
        },
    )
    .unwrap()
}

fn json_files(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["files"].as_array().unwrap().clone()
}

/// Every fixture parses in both representations, and both say the same about every file.
#[test]
fn all_fixtures_parse_and_agree() {
    for project in PROJECTS {
        let json = load(&format!("{project}.v1.json.gz"));
        let html = load(&format!("{project}.v1.html.gz"));
        let j = parse_project_page(
            project,
            &json,
            SimpleFormat::from_media_type("application/vnd.pypi.simple.v1+json"),
            &page_url(project),
        )
        .unwrap();
        let h = parse_project_page(project, &html, None, &page_url(project)).unwrap();
        assert_eq!(j.source, SourceFormat::Json);
        assert_eq!(h.source, SourceFormat::Html);
        assert_eq!(j.api_version.raw.as_deref(), Some("1.1"), "{project}");
        assert!(!j.files.is_empty());
        assert_eq!(j.files.len(), h.files.len(), "{project}");
        let mut jf: Vec<&FileEntry> = j.files.iter().collect();
        let mut hf: Vec<&FileEntry> = h.files.iter().collect();
        jf.sort_by(|a, b| (&a.filename, &a.url).cmp(&(&b.filename, &b.url)));
        hf.sort_by(|a, b| (&a.filename, &a.url).cmp(&(&b.filename, &b.url)));
        for (a, b) in jf.into_iter().zip(hf) {
            assert_eq!(a.filename, b.filename);
            assert_eq!(a.url, b.url);
            assert_eq!(a.sha256(), b.sha256());
            assert_eq!(a.sha256().map(str::len), Some(64), "{}", a.filename);
            assert_eq!(a.requires_python, b.requires_python, "{}", a.filename);
            assert_eq!(a.yanked, b.yanked, "{}", a.filename);
            assert_eq!(a.upload_time, b.upload_time);
            assert_eq!(a.version, b.version);
            assert!(a.size.is_some() && b.size.is_none());
            assert!(a.upload_time_parsed().is_some(), "{}", a.filename);
        }
        // Every real file's version is derived from its name.
        let unknown: Vec<&str> = j
            .files
            .iter()
            .filter(|f| f.version.is_none())
            .map(|f| f.filename.as_str())
            .collect();
        assert!(unknown.is_empty(), "{project}: {unknown:?}");
        // Facts cover every listed version.
        let facts = j.facts();
        for v in j.versions.iter().flatten() {
            assert!(facts.get(v).is_some(), "{project} {v}");
        }
        assert_eq!(facts.unknown_version_files, 0);
    }
}

#[test]
fn numpy_json_filtering_preserves_everything_else() {
    let body = load("numpy.v1.json.gz");
    let text = std::str::from_utf8(&body).unwrap();
    let page = parse_project_json("numpy", text, &page_url("numpy")).unwrap();
    let removed: HashSet<&str> = ["1.26.4", "2.0.0", "1.5.1"].into();
    let r = render(&page, SimpleFormat::Json, &|v| !removed.contains(v));
    assert_eq!(r.content_type(), "application/vnd.pypi.simple.v1+json");
    let out: Value = serde_json::from_str(&r.body).unwrap();
    let input: Value = serde_json::from_str(text).unwrap();
    // meta, name and unknown members unchanged.
    assert_eq!(out["meta"], input["meta"]);
    assert_eq!(out["meta"]["_last-serial"], "42069282");
    assert_eq!(out["name"], input["name"]);
    // versions: exactly the removed ones are gone.
    let in_versions: Vec<&Value> = input["versions"].as_array().unwrap().iter().collect();
    let out_versions: Vec<&Value> = out["versions"].as_array().unwrap().iter().collect();
    let want: Vec<&Value> = in_versions
        .iter()
        .copied()
        .filter(|v| !removed.contains(v.as_str().unwrap()))
        .collect();
    assert_eq!(out_versions, want);
    assert_eq!(in_versions.len() - out_versions.len(), 3);
    let mut rv = r.removed_versions.clone();
    rv.sort();
    assert_eq!(rv, ["1.26.4", "1.5.1", "2.0.0"]);
    // files: those of removed versions are gone, the others differ only in `url`.
    let removed_files = page
        .files
        .iter()
        .filter(|f| removed.contains(f.version.as_deref().unwrap()))
        .count();
    assert!(removed_files > 50, "{removed_files}");
    assert_eq!(r.files_removed, removed_files);
    let out_files = json_files(&r.body);
    assert_eq!(out_files.len(), page.files.len() - removed_files);
    let in_files: Vec<Value> = input["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let entry = page
                .files
                .iter()
                .find(|e| e.filename == f["filename"].as_str().unwrap())
                .unwrap();
            !removed.contains(entry.version.as_deref().unwrap())
        })
        .cloned()
        .collect();
    for (o, i) in out_files.iter().zip(&in_files) {
        let (mut o, mut i) = (o.clone(), i.clone());
        let url = o["url"].as_str().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:8080/files/"));
        assert!(url.ends_with(&format!("/{}", i["filename"].as_str().unwrap())));
        assert!(url.contains(i["hashes"]["sha256"].as_str().unwrap()));
        o.as_object_mut().unwrap().remove("url");
        i.as_object_mut().unwrap().remove("url");
        assert_eq!(o, i);
        assert!(o["upload-time"].is_string() && o["size"].is_u64());
    }
    // Byte preservation: a kept file object is copied verbatim apart from its URL.
    let f = page
        .files
        .iter()
        .find(|f| f.filename == "numpy-1.26.3.tar.gz")
        .unwrap();
    let start = text.find("{\"filename\": \"numpy-1.26.3.tar.gz\"").unwrap();
    let end = start + text[start..].find('}').unwrap();
    let end = end + text[end + 1..].find('}').unwrap() + 2; // hashes object, then the file
    let original = &text[start..end];
    let expected = original.replace(&f.url, &proxy_url(f));
    assert!(r.body.contains(&expected), "{expected}");
}

/// HTML → HTML on the mirror's pages: every kept line is the original with its href
/// rewritten (same attribute order and escaping).
#[test]
fn numpy_html_lines_survive_byte_for_byte() {
    let body = load("numpy.v1.html.gz");
    let text = std::str::from_utf8(&body).unwrap();
    let page = parse_project_html("numpy", text, &page_url("numpy")).unwrap();
    let removed: HashSet<&str> = ["1.26.4", "2.4.0"].into();
    let r = render(&page, SimpleFormat::TextHtml, &|v| !removed.contains(v));
    assert_eq!(r.content_type(), "text/html");
    assert!(
        r.body
            .contains("<meta name=\"pypi:repository-version\" content=\"1.1\">")
    );
    let out_lines: HashSet<&str> = r.body.lines().filter(|l| l.starts_with("<a ")).collect();
    let mut kept = 0;
    for (f, line) in page
        .files
        .iter()
        .zip(text.lines().filter(|l| l.starts_with("<a ")))
    {
        let expected = line.replace(&f.url, &proxy_url(f));
        if removed.contains(f.version.as_deref().unwrap()) {
            assert!(!out_lines.contains(expected.as_str()));
            assert!(!r.body.contains(&format!(">{}<", f.filename)));
        } else {
            assert!(out_lines.contains(expected.as_str()), "{expected}");
            kept += 1;
        }
    }
    assert_eq!(kept, r.files_kept);
    assert_eq!(out_lines.len(), kept);
    assert!(r.body.contains("data-requires-python=\"&gt;=3.9\""));
    // Only 2.4.0 was yanked with this reason, and it is removed.
    assert!(
        !r.body
            .contains("data-yanked=\"Backward compatibility bug\"")
    );
}

#[test]
fn python_dateutil_file_less_versions() {
    let body = load("python-dateutil.v1.json.gz");
    let page =
        parse_project_page("python_dateutil", &body, None, &page_url("python-dateutil")).unwrap();
    assert_eq!(page.project, "python-dateutil");
    let facts = page.facts();
    let file_less: Vec<&str> = facts
        .versions
        .iter()
        .filter(|v| v.files == 0)
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(
        file_less,
        ["0.1", "0.3", "0.4", "0.5", "1.0", "1.1", "1.2", "2.0"]
    );
    assert!(facts.get("2.0").unwrap().earliest_upload.is_none());
    // Legacy sdist names with a dash in the project name.
    let f = page
        .files
        .iter()
        .find(|f| f.filename == "python-dateutil-2.2.tar.gz")
        .unwrap();
    assert_eq!(f.version.as_deref(), Some("2.2"));

    // Allowed file-less versions stay listed; refused ones go.
    let r = render(&page, SimpleFormat::Json, &|v| v != "0.5" && v != "2.2");
    let out: Value = serde_json::from_str(&r.body).unwrap();
    let versions: Vec<&str> = out["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(versions.contains(&"0.1") && versions.contains(&"2.0"));
    assert!(!versions.contains(&"0.5") && !versions.contains(&"2.2"));
    assert_eq!(versions.len(), 34);

    // A version whose files are all refused (per file) leaves `versions` too, while a
    // file-less version stays.
    let keep_file = |f: &FileEntry| f.version.as_deref() != Some("2.8.2");
    let r = page
        .render(
            SimpleFormat::Json,
            &Rewrite {
                keep_file: &keep_file,
                keep_version: &|_| true,
                file_url: &proxy_url,
            },
        )
        .unwrap();
    let out: Value = serde_json::from_str(&r.body).unwrap();
    let versions: Vec<&str> = out["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!versions.contains(&"2.8.2"));
    assert!(versions.contains(&"1.0"));
    assert_eq!(r.removed_versions, ["2.8.2"]);
    // `2.4.1.post1` files belong to release 2.4.1 upstream but are 2.4.1.post1 to clients.
    assert!(
        page.files
            .iter()
            .any(|f| f.version.as_deref() == Some("2.4.1.post1"))
    );
}

#[test]
fn pytz_eggs_and_legacy_versions() {
    let body = load("pytz.v1.html.gz");
    let page = parse_project_page(
        "pytz",
        &body,
        Some(SimpleFormat::TextHtml),
        &page_url("pytz"),
    )
    .unwrap();
    let eggs: Vec<&FileEntry> = page
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Egg)
        .collect();
    assert_eq!(eggs.len(), 418);
    let egg = page
        .files
        .iter()
        .find(|f| f.filename == "pytz-2006g-py2.4.egg")
        .unwrap();
    assert_eq!(egg.version.as_deref(), Some("2006g"));
    let f = page
        .files
        .iter()
        .find(|f| f.filename == "pytz-2004b.2.tar.gz")
        .unwrap();
    assert_eq!(f.version.as_deref(), Some("2004b.2"));
    // Non-PEP 440 versions are filtered by exact string; `2005k` has three files.
    let r = render(&page, SimpleFormat::Json, &|v| v != "2005k");
    assert_eq!(r.files_removed, 3);
    assert_eq!(r.removed_versions, ["2005k"]);
    let names: BTreeSet<String> = json_files(&r.body)
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("pytz-2005k")));
    assert!(names.contains("pytz-2005m.zip"));
    let out: Value = serde_json::from_str(&r.body).unwrap();
    // From HTML, which has no sizes: API 1.0 (1.1 requires `size` on every file).
    assert_eq!(out["meta"]["api-version"], "1.0");
    assert!(json_files(&r.body).iter().all(|f| f.get("size").is_none()));
    assert_eq!(out["name"], "pytz");
    let versions = out["versions"].as_array().unwrap();
    assert!(versions.contains(&Value::from("2004b.2")));
    assert!(!versions.contains(&Value::from("2005k")));
}

/// requests: yanked reasons and escaped requires-python survive JSON → HTML → JSON.
#[test]
fn requests_round_trip_across_formats() {
    let body = load("requests.v1.json.gz");
    let page = parse_project_page(
        "requests",
        &body,
        Some(SimpleFormat::Json),
        &page_url("requests"),
    )
    .unwrap();
    assert_eq!(page.files.len(), 244);
    let yanked: Vec<&FileEntry> = page.files.iter().filter(|f| f.yanked.is_yanked()).collect();
    assert_eq!(yanked.len(), 4);
    let html = render(&page, SimpleFormat::V1Html, &|_| true);
    assert_eq!(html.content_type(), "application/vnd.pypi.simple.v1+html");
    assert!(html.body.contains("data-requires-python=\"&gt;=3.8\""));
    assert!(
        html.body
            .contains("data-yanked=\"Yanked due to conflicts with CVE-2024-35195 mitigation\"")
    );
    assert!(html.body.contains("#sha256="));
    assert!(
        html.body
            .contains("<meta name=\"pypi:repository-version\" content=\"1.1\">")
    );
    assert!(html.body.contains("data-size=\"62046\""));

    let again = parse_project_html(
        "requests",
        &html.body,
        "http://127.0.0.1:8080/simple/requests/",
    )
    .unwrap();
    assert_eq!(again.files.len(), 244);
    for (a, b) in page.files.iter().zip(&again.files) {
        assert_eq!(a.filename, b.filename);
        assert_eq!(proxy_url(a), b.url);
        assert_eq!(a.hashes, b.hashes);
        assert_eq!(a.requires_python, b.requires_python);
        assert_eq!(a.yanked, b.yanked);
        assert_eq!(a.upload_time, b.upload_time);
        assert_eq!(a.size, b.size);
        assert_eq!(a.version, b.version);
    }
    let json = render(&again, SimpleFormat::Json, &|_| true);
    let out: Value = serde_json::from_str(&json.body).unwrap();
    let input: Value = serde_json::from_slice(&body).unwrap();
    let files = out["files"].as_array().unwrap();
    for (o, i) in files.iter().zip(input["files"].as_array().unwrap()) {
        for key in [
            "filename",
            "hashes",
            "requires-python",
            "yanked",
            "size",
            "upload-time",
        ] {
            assert_eq!(o[key], i[key], "{key} of {}", i["filename"]);
        }
    }
    // Versions derived from the files (HTML has no `versions`) are those with files.
    let with_files: BTreeSet<&str> = page
        .files
        .iter()
        .filter_map(|f| f.version.as_deref())
        .collect();
    let derived: BTreeSet<&str> = out["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(derived, with_files);
}

#[test]
fn identity_rewrite_keeps_json_equal() {
    for project in PROJECTS {
        let body = load(&format!("{project}.v1.json.gz"));
        let page = parse_project_page(project, &body, None, &page_url(project)).unwrap();
        let r = page
            .render(
                SimpleFormat::Json,
                &Rewrite {
                    keep_file: &|_| true,
                    keep_version: &|_| true,
                    file_url: &|f| f.url.clone(),
                },
            )
            .unwrap();
        let a: Value = serde_json::from_str(&r.body).unwrap();
        let b: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(a, b, "{project}");
        assert!(r.removed_versions.is_empty());
    }
}

#[test]
fn root_index_filtering_removes_exactly_three() {
    let body = load("root.v1.html.gz");
    let blocked: HashSet<&str> = ["requests", "0-0", "zope-interface"].into();
    let mut f = RootFilter::new();
    let mut out = Vec::with_capacity(body.len());
    for chunk in body.chunks(64 * 1024 + 7) {
        f.push(chunk, &mut out, |n| blocked.contains(n));
    }
    f.finish(&mut out, |n| blocked.contains(n));
    assert_eq!(f.removed(), 3);
    assert_eq!(f.dropped_malformed(), 0);
    let text = std::str::from_utf8(&body).unwrap();
    let removed_lines: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| {
            l.starts_with("<a href=\"requests/\"")
                || l.starts_with("<a href=\"0-0/\"")
                || l.starts_with("<a href=\"zope-interface/\"")
        })
        .collect();
    assert_eq!(removed_lines.len(), 3);
    let expected: String = text
        .split_inclusive('\n')
        .filter(|l| !removed_lines.contains(l))
        .collect();
    assert!(out == expected.as_bytes());
    assert_eq!(
        body.len() - out.len(),
        removed_lines.iter().map(|l| l.len()).sum::<usize>()
    );
}

#[test]
fn relative_and_hostile_urls() {
    let html = concat!(
        "<html><body>",
        "<a href=\"../../packages/ab/x-1.0-py3-none-any.whl#sha256=00ff\" data-core-metadata=\"sha256=aa\">x-1.0-py3-none-any.whl</a>",
        "<a href=\"javascript:alert(1)\">x-2.0.tar.gz</a>",
        "<a href=\"data:text/plain,hi\">x-3.0.tar.gz</a>",
        "<a href=\"https://evil.example/x-4.0.tar.gz?download=1#md5=abc\" data-yanked=\"\" data-gpg-sig=\"true\" data-provenance=\"https://p/&quot;\">x-4.0.tar.gz</a>",
        "<a href=\"x-5.0%2Bcpu.tar.gz\">x-5.0+cpu.tar.gz</a>",
        "<a href=\"sub/x-6.0.tar.gz\" data-dist-info-metadata=\"true\">x-6.0.tar.gz</a>",
        "<a name=\"no-href\">ignored</a>",
        "</body></html>"
    );
    let page = parse_project_html("x", html, "https://pypi.example/simple/x/").unwrap();
    let urls: Vec<&str> = page.files.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://pypi.example/packages/ab/x-1.0-py3-none-any.whl",
            "javascript:alert(1)",
            "data:text/plain,hi",
            "https://evil.example/x-4.0.tar.gz?download=1",
            "https://pypi.example/simple/x/x-5.0%2Bcpu.tar.gz",
            "https://pypi.example/simple/x/sub/x-6.0.tar.gz",
        ]
    );
    assert_eq!(page.files[0].sha256(), Some("00ff"));
    assert_eq!(
        page.files[0].core_metadata.as_ref().unwrap()["sha256"],
        "aa"
    );
    assert_eq!(page.files[1].filename, "x-2.0.tar.gz");
    assert_eq!(page.files[3].hashes["md5"], "abc");
    assert_eq!(page.files[3].yanked, Yanked::Yes { reason: None });
    assert_eq!(page.files[3].gpg_sig, Some(true));
    assert_eq!(page.files[4].filename, "x-5.0+cpu.tar.gz");
    assert_eq!(page.files[4].version.as_deref(), Some("5.0+cpu"));
    assert!(page.files[5].core_metadata.as_ref().unwrap().is_empty());

    // HTML → HTML keeps unknown attributes (escaped) and emits both metadata names.
    let r = render(&page, SimpleFormat::TextHtml, &|_| true);
    assert!(
        r.body.contains("data-provenance=\"https://p/&quot;\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("data-dist-info-metadata=\"sha256=aa\" data-core-metadata=\"sha256=aa\"")
    );
    assert!(
        r.body
            .contains("data-dist-info-metadata=\"true\" data-core-metadata=\"true\"")
    );
    assert!(r.body.contains("data-gpg-sig=\"true\" data-yanked=\"\""));
    assert!(r.body.contains("#md5=abc\""));
    // HTML → JSON: valid PEP 691 with both metadata keys (API 1.0: HTML has no sizes).
    let r = render(&page, SimpleFormat::Json, &|_| true);
    let out: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(out["meta"]["api-version"], "1.0");
    let f0 = &out["files"][0];
    assert_eq!(f0["core-metadata"]["sha256"], "aa");
    assert_eq!(f0["dist-info-metadata"]["sha256"], "aa");
    assert_eq!(f0["hashes"]["sha256"], "00ff");
    assert_eq!(f0["requires-python"], Value::Null);
    assert_eq!(out["files"][3]["yanked"], true);
    assert_eq!(out["files"][3]["gpg-sig"], true);
    assert_eq!(out["files"][5]["core-metadata"], true);

    // JSON: relative URL, fragment folded into hashes, unknown keys kept.
    let json = r#"{"meta":{"api-version":"1.3","_x":[1]},"name":"x","files":[{"filename":"x-1.0.tar.gz","url":"../../files/x-1.0.tar.gz#sha256=beef","hashes":{},"provenance":"https://p","_private":{"a":1},"core-metadata":{"sha256":"cc"},"yanked":"why <not>"}],"versions":["1.0","0.9"],"alternate-locations":["https://a"]}"#;
    let page = parse_project_json("x", json, "https://pypi.example/simple/x/").unwrap();
    assert_eq!(page.files[0].url, "https://pypi.example/files/x-1.0.tar.gz");
    assert_eq!(page.files[0].sha256(), Some("beef"));
    let r = render(&page, SimpleFormat::Json, &|_| true);
    assert_eq!(
        r.body,
        r#"{"meta":{"api-version":"1.3","_x":[1]},"name":"x","files":[{"filename":"x-1.0.tar.gz","url":"http://127.0.0.1:8080/files/beef/x-1.0.tar.gz","hashes":{},"provenance":"https://p","_private":{"a":1},"core-metadata":{"sha256":"cc"},"yanked":"why <not>"}],"versions":["1.0","0.9"],"alternate-locations":["https://a"]}"#
    );
    let r = render(&page, SimpleFormat::TextHtml, &|_| true);
    assert!(r.body.contains("content=\"1.3\""));
    assert!(r.body.contains(
        "<a href=\"http://127.0.0.1:8080/files/beef/x-1.0.tar.gz#sha256=beef\" data-dist-info-metadata=\"sha256=cc\" data-core-metadata=\"sha256=cc\" data-yanked=\"why &lt;not&gt;\">x-1.0.tar.gz</a>"
    ));
}

#[test]
fn typed_errors_on_bad_input() {
    let url = "https://pypi.example/simple/x/";
    let cases: &[(&[u8], &str)] = &[
        (b"{", "malformed"),
        (b"{\"files\": {}}", "shape"),
        (
            b"{\"meta\": {\"api-version\": \"2.0\"}, \"files\": []}",
            "unsupported",
        ),
        (
            b"{\"meta\": {\"api-version\": \"one\"}, \"files\": []}",
            "invalid repository",
        ),
        (b"{\"name\": \"x\"}", "no `files`"),
        (
            b"{\"files\": [{\"url\": \"https://h/x-1.tar.gz\"}]}",
            "no `filename`",
        ),
        (b"{\"files\": [{\"filename\": \"x-1.tar.gz\"}]}", "no `url`"),
        (
            b"{\"files\": [{\"filename\": \"../x-1.tar.gz\", \"url\": \"u\"}]}",
            "path separator",
        ),
        (
            b"{\"files\": [{\"filename\": \"x-1.tar.gz\", \"url\": \"u\", \"size\": -1}]}",
            "`size`",
        ),
        (
            b"{\"files\": [{\"filename\": \"x-1.tar.gz\", \"url\": \"u\", \"yanked\": 3}]}",
            "`yanked`",
        ),
        (
            b"{\"files\": [{\"filename\": \"x-1.tar.gz\", \"url\": \"u\", \"url\": \"v\"}]}",
            "duplicate",
        ),
        (b"{\"files\": [], \"files\": []}", "duplicate"),
        (b"{\"files\": [], \"versions\": [1]}", "`versions`"),
        (
            b"{\"files\": [{\"filename\": \"x-1.tar.gz\", \"url\": \"http://[::1\"}]}",
            "`url`",
        ),
        (b"\xff\xfe", "UTF-8"),
        (b"<a href=\"x-1.tar.gz\">x-1.tar.gz", "without </a>"),
        (
            b"<meta name=\"pypi:repository-version\" content=\"2.0\">",
            "unsupported",
        ),
    ];
    for (body, want) in cases {
        let err = parse_project_page("x", body, None, url).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(want),
            "{:?}: {msg}",
            String::from_utf8_lossy(body)
        );
        assert!(msg.len() < 400, "{msg}");
    }
    assert!(matches!(
        parse_project_page("x", b"{\"files\":[]}", None, "not a url"),
        Err(PypiError::PageUrl { .. })
    ));
    // Minimal valid pages.
    let p = parse_project_page("x", b"{\"files\":[]}", None, url).unwrap();
    assert_eq!(p.api_version.raw, None);
    let r = render(&p, SimpleFormat::Json, &|_| true);
    assert_eq!(r.body, r#"{"meta":{"api-version":"1.0"},"files":[]}"#);
    let p = parse_project_page("x", b"", Some(SimpleFormat::TextHtml), url).unwrap();
    assert!(p.files.is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn html_pages_never_panic(body in "\\PC{0,400}") {
            if let Ok(page) = parse_project_html("x", &body, "https://h/simple/x/") {
                for format in SimpleFormat::ALL {
                    let _ = render(&page, format, &|_| true);
                }
            }
        }

        #[test]
        fn json_pages_never_panic(body in "\\PC{0,300}") {
            let _ = parse_project_json("x", &body, "https://h/simple/x/");
        }

        #[test]
        fn generated_pages_round_trip(
            files in prop::collection::vec(
                ("[0-9]{1,2}\\.[0-9]{1,2}", prop::option::of("[ -~]{0,12}"), any::<bool>(), prop::option::of("[<>=!., 0-9]{1,10}")),
                0..8,
            ),
        ) {
            let mut objs = Vec::new();
            for (i, (v, reason, yanked, rp)) in files.iter().enumerate() {
                let yanked = match (yanked, reason) {
                    (false, _) => Value::Bool(false),
                    (true, None) => Value::Bool(true),
                    (true, Some(r)) => Value::String(r.clone()),
                };
                objs.push(serde_json::json!({
                    "filename": format!("x-{v}-{i}.tar.gz"),
                    "url": format!("../../f/x-{v}-{i}.tar.gz"),
                    "hashes": {"sha256": format!("{i:064x}")},
                    "requires-python": rp,
                    "yanked": yanked,
                    "size": i,
                    "upload-time": "2020-01-01T00:00:00Z",
                }));
            }
            let body = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "x", "files": objs, "versions": []}).to_string();
            let page = parse_project_json("x", &body, "https://h/simple/x/").unwrap();
            let html = render(&page, SimpleFormat::TextHtml, &|_| true);
            let back = parse_project_html("x", &html.body, "https://proxy/simple/x/").unwrap();
            prop_assert_eq!(back.files.len(), page.files.len());
            for (a, b) in page.files.iter().zip(&back.files) {
                prop_assert_eq!(&a.yanked, &b.yanked);
                prop_assert_eq!(&a.requires_python, &b.requires_python);
                prop_assert_eq!(&a.hashes, &b.hashes);
                prop_assert_eq!(&a.filename, &b.filename);
                prop_assert_eq!(&a.upload_time, &b.upload_time);
                prop_assert_eq!(a.size, b.size);
            }
        }
    }
}

#[test]
fn html_to_json_claims_api_1_1_only_with_every_size() {
    let html = |size2: &str| {
        format!(
            "<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"></head><body>\
             <a href=\"/f/x-1.0.tar.gz#sha256=00\" data-size=\"10\">x-1.0.tar.gz</a>\
             <a href=\"/f/x-2.0.tar.gz#sha256=00\"{size2}>x-2.0.tar.gz</a></body></html>"
        )
    };
    for (size2, keep2, want) in [
        (" data-size=\"20\"", true, "1.1"),
        ("", true, "1.0"),
        // The unsized file is removed: every file left has its size.
        ("", false, "1.1"),
    ] {
        let body = html(size2);
        let page = parse_project_page(
            "x",
            body.as_bytes(),
            Some(SimpleFormat::TextHtml),
            &page_url("x"),
        )
        .unwrap();
        let r = render(&page, SimpleFormat::Json, &|v| keep2 || v != "2.0");
        let out: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(out["meta"]["api-version"], want, "{size2:?} {keep2}");
        assert_eq!(out["files"][0]["size"], 10);
    }
}
