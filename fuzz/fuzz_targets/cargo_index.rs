//! `cargo::parse_index` + `IndexFile::render` on arbitrary sparse-index files. Input:
//! `<selector><index file>`; the selector picks which versions are removed.
//!
//! Checks: no panic; line ranges are in bounds, ordered and cover whole lines; every line is
//! either read or counted unreadable; the rendering is exactly the kept lines, byte for byte,
//! and parses again to the same lines with nothing unreadable; where a line is valid JSON the
//! fast scanner agrees with serde_json on `name`, `vers`, `cksum`, `yanked` and `pubtime`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::cargo::{IndexLine, parse_index};
use pkggate_fuzz::{pick, selector};
use serde_json::Value;
use std::collections::HashSet;

/// What serde_json says a line holds, when it is an object whose fields have the types the
/// index format uses (`None`: serde_json would not read it as an index line).
fn serde_view(line: &[u8]) -> Option<(String, String, Option<String>, bool, Option<String>)> {
    let Value::Object(map) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    // serde_json's map keeps the last of duplicate keys, serde's derive (cargo) refuses
    // them: leave such lines out of the comparison.
    if serde_json::from_slice::<UniqueKeys>(line).is_err() {
        return None;
    }
    let name = map.get("name")?.as_str()?.to_string();
    let vers = map.get("vers")?.as_str()?.to_string();
    let opt_str = |k: &str| match map.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let cksum = opt_str("cksum")?;
    let pubtime = opt_str("pubtime")?;
    let yanked = match map.get("yanked") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return None,
    };
    Some((name, vers, cksum, yanked, pubtime))
}

/// A JSON object whose top-level keys (after unescaping) are distinct.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut seen = HashSet::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    if !seen.insert(k) {
                        return Err(serde::de::Error::custom("duplicate key"));
                    }
                }
                Ok(UniqueKeys)
            }
        }
        d.deserialize_map(V)
    }
}

fn view(l: &IndexLine) -> (String, String, Option<String>, bool, Option<String>) {
    (
        l.name.clone(),
        l.vers.clone(),
        l.cksum.clone(),
        l.yanked,
        l.pubtime.clone(),
    )
}

fuzz_target!(|data: &[u8]| {
    let (sel, body) = selector(data);
    let file = parse_index(body);

    let nonblank = body
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count();
    assert_eq!(file.lines.len() + file.unreadable, nonblank, "lines lost");
    let mut prev_end = 0;
    for l in &file.lines {
        assert!(
            prev_end <= l.start && l.start < l.end && l.end <= body.len(),
            "bad range"
        );
        assert!(
            l.start == 0 || body[l.start - 1] == b'\n',
            "line does not start a line"
        );
        assert!(
            l.end == body.len() || body[l.end - 1] == b'\n',
            "line does not end a line"
        );
        prev_end = l.end;
        let _ = l.published_unix();
        let raw = &body[l.start..l.end];
        if let Some(expected) = serde_view(raw.trim_ascii()) {
            assert_eq!(
                view(l),
                expected,
                "scanner vs serde_json on {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
    // A line serde_json reads as an index line with a non-blank version is never dropped.
    for raw in body.split_inclusive(|&b| b == b'\n') {
        if let Some((_, vers, ..)) = serde_view(raw.trim_ascii())
            && !vers.trim().is_empty()
        {
            assert!(
                file.lines.iter().any(|l| l.vers == vers),
                "valid line dropped: {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    let removed: HashSet<String> = file
        .lines
        .iter()
        .filter(|l| pick(sel, &l.vers, 3))
        .map(|l| l.vers.clone())
        .collect();
    let out = file.render(body, &removed);
    let kept: Vec<&IndexLine> = file
        .lines
        .iter()
        .filter(|l| !removed.contains(&l.vers))
        .collect();
    let expected: Vec<u8> = kept
        .iter()
        .flat_map(|l| body[l.start..l.end].iter().copied())
        .collect();
    assert!(
        out == expected,
        "render is not the kept lines byte for byte"
    );

    let again = parse_index(&out);
    assert_eq!(again.unreadable, 0, "rendered file has unreadable lines");
    let a: Vec<_> = again.lines.iter().map(view).collect();
    let b: Vec<_> = kept.iter().map(|l| view(l)).collect();
    assert_eq!(a, b, "rendered file reads differently");
    for (new, old) in again.lines.iter().zip(&kept) {
        assert!(
            out[new.start..new.end] == body[old.start..old.end],
            "line bytes changed"
        );
    }
});
