//! The streaming scanner against the reference reader ([`Packument::parse`]): whatever the
//! document and however it arrives in chunks, [`Packument::parse_scanned`] gives exactly what
//! [`Packument::parse`] gives (the same document, facts and renderings, or the same error), the
//! scanner takes every document the reference reads, and it never takes JSON `serde_json`
//! refuses.

use super::*;
use crate::npm::packument::tests::{BASE, CORGI, FULL, build_doc, dedup, gen_version};
use crate::npm::{NpmDocError, Packument, RenderOptions, Representation};
use proptest::prelude::*;
use serde::de::IgnoredAny;
use std::collections::HashSet;

/// Feed `bytes` in pieces of the given sizes (cycled), then finish.
fn scan_chunked(bytes: &[u8], sizes: &[usize]) -> Option<PackumentScan> {
    let mut s = PackumentScanner::new();
    let mut end = 0;
    let mut k = 0;
    while end < bytes.len() {
        end = (end + sizes[k % sizes.len()].max(1)).min(bytes.len());
        k += 1;
        s.feed(&bytes[..end]);
    }
    s.finish(bytes)
}

fn outcome(r: &Result<Packument<'_>, NpmDocError>, removed: &HashSet<String>) -> String {
    match r {
        Err(e) => format!("error: {e}"),
        Ok(p) => {
            let mut out = p.shape();
            let facts = p.facts().map_err(|e| e.to_string());
            // In parts (as the app computes them on two threads): the same, errors included.
            let n = p.version_count();
            for cut in [0, n / 3, n] {
                let parts = vec![p.facts_part(0..cut), p.facts_part(cut..n)];
                assert_eq!(p.join_facts(parts).map_err(|e| e.to_string()), facts);
            }
            out.push_str(&format!("\nfacts: {facts:?}"));
            for representation in [Representation::Full, Representation::Abbreviated] {
                let opts = RenderOptions {
                    removed,
                    tarball_base: BASE,
                    representation,
                };
                let r = p.render(&opts).map_err(|e| e.to_string());
                // Into a used buffer, prepared as the app does.
                let mut buf = vec![7u8; p.render_capacity(BASE, representation)];
                buf.truncate(3);
                let again = p.render_into(&opts, buf).map_err(|e| e.to_string());
                assert_eq!(again, r);
                out.push_str(&format!("\nrender: {r:?}"));
            }
            out
        }
    }
}

/// The whole contract for one document.
fn check(bytes: &[u8]) {
    let reference = Packument::parse(bytes);
    let whole = PackumentScanner::scan(bytes);
    if reference.is_ok() {
        assert!(
            whole.is_some(),
            "the scanner refused a document the reference reads: {}",
            String::from_utf8_lossy(bytes)
        );
    }
    if whole.is_some() {
        assert!(
            serde_json::from_slice::<IgnoredAny>(bytes).is_ok(),
            "the scanner took invalid JSON: {}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Remove every other version (so renderings differ from the input).
    let removed: HashSet<String> = reference
        .as_ref()
        .map(|p| p.versions().step_by(2).map(str::to_string).collect())
        .unwrap_or_default();
    let want = outcome(&reference, &removed);
    let got = outcome(&Packument::parse_scanned(bytes, whole.as_ref()), &removed);
    assert_eq!(got, want, "{}", String::from_utf8_lossy(bytes));
    for sizes in [&[1usize][..], &[3, 1, 7], &[64], &[4096, 1]] {
        let chunked = scan_chunked(bytes, sizes);
        assert_eq!(
            format!("{chunked:?}"),
            format!("{whole:?}"),
            "chunks {sizes:?}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn special_bytes_found_exactly() {
    // Every position and every byte value, in long and short buffers.
    for len in [1usize, 7, 8, 9, 31, 32, 33, 40, 64, 70] {
        for at in 0..len {
            for c in 0..=255u8 {
                let mut buf = vec![b'a'; len];
                buf[at] = c;
                // Bytes after the first special one may be anything.
                if at + 1 < len {
                    buf[at + 1] = 0;
                }
                let special = matches!(c, b'"' | b'\\' | 0..=0x1f);
                let want = if special {
                    at
                } else if at + 1 < len {
                    at + 1
                } else {
                    len
                };
                assert_eq!(string_special(&buf, 0), want, "len {len} at {at} byte {c}");
                if at > 0 {
                    assert_eq!(string_special(&buf, 1), want.max(1), "from 1");
                }
            }
        }
    }
}

#[test]
fn hand_written_documents() {
    let pretty = build_doc(
        &dedup(vec![
            crate::npm::packument::tests::GenVersion {
                key: "1.0.0".into(),
                scripts: Some(1),
                dist: 0,
                extra: "é\\/".into(),
                removed: false,
            },
            crate::npm::packument::tests::GenVersion {
                key: "2.0.0".into(),
                scripts: None,
                dist: 2,
                extra: String::new(),
                removed: false,
            },
        ]),
        &[("latest".into(), 1)],
        " \n\t\r",
    );
    for doc in [
        FULL,
        CORGI,
        &pretty,
        // removed package, no versions at all, empty document object
        r#"{"name":"gone","dist-tags":{},"versions":{},"time":{}}"#,
        r#"{"name":"x"}"#,
        "{}",
        " \r\n\t{ } \n",
        // an empty version object (the reference reads these the slow way)
        r#"{"name":"x","versions":{"1.0.0":{},"2.0.0":{"dist":{"tarball":"t"}}}}"#,
        // escaped keys, `versions` spelled with an escape, keys equal once decoded
        r#"{"n\u0061me":"x","version\u0073":{"1.0.0-\u00e9":{"dist":{"tarball":"t"},"a\"b":1}}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"a":1,"\u0061":2}}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"a":1}},"version\u0073":{}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"a":1}},"versions":{"2.0.0":{"a":1}}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"a":1},"1.0.\u0030":{"a":1}}}"#,
        // lone surrogates: fine in values, refused in the keys the reference decodes
        r#"{"name":"x","versions":{"1.0.0":{"a":"\ud800","b":{"\udc00":1}}}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"\ud800":1}}}"#,
        r#"{"\ud800":1,"name":"x"}"#,
        r#"{"name":"x","versions":{"\udc00x":{"a":1}}}"#,
        // shapes the reference refuses
        r#"{"name":"x","versions":null}"#,
        r#"{"name":"x","versions":[]}"#,
        r#"{"name":"x","versions":{"1.0.0":"s"}}"#,
        r#"{"name":"x","versions":{"1.0.0":[1]}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"a":1}},"time":[]}"#,
        r#"{"name":1,"versions":{"1.0.0":{"a":1}}}"#,
        r#"{"name":"x","dist-tags":{"latest":1},"versions":{"1.0.0":{"a":1}}}"#,
        r#"{"name":"x","versions":{"1.0.0":{"dist":{"tarball":"a","tarball":"b"}}}}"#,
        r#"{"name":"x","name":"y"}"#,
        // not objects, not JSON
        "",
        "   ",
        "[]",
        "\"x\"",
        "1",
        "null",
        "{",
        "{\"name\":\"x\"",
        "{\"name\":\"x\"}}",
        "{\"name\":\"x\"} x",
        "{\"name\":\"x\",}",
        "\u{feff}{\"name\":\"x\"}",
    ] {
        check(doc.as_bytes());
    }
}

/// Values placed inside a version and at the top level: the scanner takes exactly what
/// `serde_json` takes there.
#[test]
fn values_accepted_exactly_as_serde_json() {
    let values: Vec<String> = [
        "0",
        "-0",
        "1",
        "-1",
        "10",
        "01",
        "-01",
        "00",
        "1.",
        "1.5",
        "-1.5e3",
        "1e",
        "1e+",
        "1e-",
        "1E+2",
        "1e2.5",
        ".5",
        "-",
        "+1",
        "0x10",
        "1.0e+00",
        "123456789012345678901234567890",
        "1.2.3",
        "--1",
        "0e0",
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "True",
        "nulll",
        "truefalse",
        "\"\"",
        "\"a\"",
        "\"\\\"\"",
        "\"\\\\\"",
        "\"\\/\"",
        "\"\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\"",
        "\"\\u00E9\"",
        "\"\\u00g9\"",
        "\"\\u00\"",
        "\"\\x\"",
        "\"\\'\"",
        "\"\\\"",
        "\"a\tb\"",
        "\"a\u{1}b\"",
        "\"a\u{7f}b\"",
        "\"é\"",
        "\"a",
        "[]",
        "[1,2]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[[[]]]",
        "{}",
        "{\"a\":1}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":}",
        "{,}",
        "[1}",
        "{\"a\":1]",
        "[\"a\":1]",
        " [ 1 , { \"b\" : [ ] } ] ",
        "{\"k\":\"\\ud83d\\ude00\"}",
        "1 2",
        "\"a\" \"b\"",
        "",
        "\u{0}",
        "\u{b}1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "[".repeat(5000) + &"]".repeat(5000),
        "[".repeat(5000) + &"]".repeat(4999),
        "{\"a\":".repeat(3000) + "1" + &"}".repeat(3000),
        format!("\"{}\"", "x".repeat(100_000)),
        format!("\"{}\\u12\"", "é".repeat(50)),
    ])
    .collect();
    for v in &values {
        for doc in [
            format!(r#"{{"name":"x","versions":{{"1.0.0":{{"a":{v},"dist":{{}}}}}}}}"#),
            format!(r#"{{"name":"x","other":{v},"versions":{{"1.0.0":{{"a":1}}}}}}"#),
            format!(r#"{{"name":"x","versions":{{"1.0.0":{{"dist":{{"tarball":{v}}}}}}}}}"#),
        ] {
            let serde_ok = serde_json::from_str::<IgnoredAny>(&doc).is_ok();
            let scanned = PackumentScanner::scan(doc.as_bytes()).is_some();
            assert_eq!(scanned, serde_ok, "{doc}");
            check(doc.as_bytes());
        }
    }
    // Invalid UTF-8 inside a string: JSON-wise fine, refused by both as a document.
    let mut doc = br#"{"name":"x","versions":{"1.0.0":{"a":"#.to_vec();
    doc.extend_from_slice(b"\"\xff\xfe\"}}}");
    check(&doc);
    // Non-ASCII outside strings.
    check("{\"name\":\"x\",é:1}".as_bytes());
}

#[test]
fn facts_parts_must_cover_the_versions_in_order() {
    let p = Packument::parse(FULL.as_bytes()).unwrap();
    let n = p.version_count();
    assert!(p.join_facts(vec![p.facts_part(0..2)]).is_err());
    assert!(
        p.join_facts(vec![p.facts_part(2..n), p.facts_part(0..2)])
            .is_err()
    );
    assert!(
        p.join_facts(vec![p.facts_part(0..3), p.facts_part(2..n)])
            .is_err()
    );
    assert_eq!(
        p.join_facts(vec![p.facts_part(0..2), p.facts_part(2..n + 5)])
            .unwrap(),
        p.facts().unwrap()
    );
}

#[test]
fn incomplete_or_extra_input_is_not_taken() {
    let doc = FULL.as_bytes();
    // Fed a prefix, finished with a different body.
    let mut s = PackumentScanner::new();
    s.feed(&doc[..100]);
    assert!(s.finish(b"{}").is_none());
    // A document cut short, or with more after it.
    let mut s = PackumentScanner::new();
    s.feed(&doc[..doc.len() - 1]);
    assert!(s.finish(&doc[..doc.len() - 1]).is_none());
    let mut more = doc.to_vec();
    more.extend_from_slice(b" {}");
    let mut s = PackumentScanner::new();
    s.feed(doc);
    assert!(s.finish(&more).is_none());
    // Whitespace after it is fine.
    more.truncate(doc.len() + 1);
    assert!(PackumentScanner::scan(&more).is_some());
    // Once refused, always refused.
    let mut s = PackumentScanner::new();
    s.feed(b"[");
    assert!(s.failed());
    s.feed(b"[{}");
    assert!(s.finish(b"[{}").is_none());
}

#[test]
fn recorded_fixtures() {
    for (file, bytes) in crate::npm::fixture_tests::fixtures() {
        let reference = Packument::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let removed: HashSet<String> = reference
            .versions()
            .step_by(3)
            .map(str::to_string)
            .collect();
        let want = outcome(&Ok(reference), &removed);
        for sizes in [&[65536usize][..], &[8191, 100_003, 17]] {
            let scan = scan_chunked(&bytes, sizes);
            assert!(scan.is_some(), "{file}: scanner refused it");
            let got = outcome(&Packument::parse_scanned(&bytes, scan.as_ref()), &removed);
            assert!(got == want, "{file}: scanned parse differs");
        }
    }
}

/// Bytes that matter to JSON, for mutations.
const ALPHABET: &[u8] = b"{}[]:,\"\\ \t\n0123456789-+.eEtrufalsn\x01\x1f\x7fxu/";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_documents_in_any_chunks(
        versions in prop::collection::vec(gen_version(), 0..8),
        tags in prop::collection::vec(("latest|next|[a-z]{1,4}", 0usize..9), 0..4),
        spaced in any::<bool>(),
        sizes in prop::collection::vec(1usize..40, 1..6),
    ) {
        let versions = dedup(versions);
        let doc = build_doc(&versions, &tags, if spaced { " \n" } else { "" });
        check(doc.as_bytes());
        let whole = format!("{:?}", PackumentScanner::scan(doc.as_bytes()));
        let chunked = scan_chunked(doc.as_bytes(), &sizes);
        prop_assert_eq!(format!("{chunked:?}"), whole);
    }

    #[test]
    fn mutated_documents(
        versions in prop::collection::vec(gen_version(), 1..5),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let base = if versions.len() % 2 == 0 {
            FULL.to_string()
        } else {
            build_doc(&dedup(versions), &[("latest".into(), 0)], "")
        };
        let mut bytes = base.into_bytes();
        for (at, kind, pick, raw) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            let c = if raw % 4 == 0 { raw } else { ALPHABET[pick.index(ALPHABET.len())] };
            match kind {
                0 => bytes[i] = c,
                1 => bytes.insert(i, c),
                2 => {
                    bytes.remove(i);
                }
                _ => bytes.truncate(i),
            }
        }
        check(&bytes);
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), 0..60)) {
        let mut doc = b"{\"name\":\"x\",\"versions\":{\"1.0.0\":{\"a\":".to_vec();
        doc.extend_from_slice(&bytes);
        check(&bytes);
        check(&doc);
        doc.extend_from_slice(b"}}}");
        check(&doc);
    }
}
