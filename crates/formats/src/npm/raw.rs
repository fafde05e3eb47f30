//! Borrowed, order-preserving views of JSON objects, and the small writers used to splice
//! output. Nothing here builds a `serde_json::Value`.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The members of one JSON object in document order: key (borrowed unless it contained
/// escapes) and the value's raw JSON text (borrowed from the input, which was checked to be
/// valid JSON: by `serde_json` or by the streaming scanner of [`super::scan`]).
pub(crate) type Entries<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// [`Entries`] as a slice.
pub(crate) type Members<'a> = [(Cow<'a, str>, &'a str)];

/// A string that borrows from the input when it has no escapes.
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object read as ordered `(key, raw value)` pairs (duplicates kept; see
/// [`first_duplicate`]).
pub(crate) struct RawMap<'a>(pub Entries<'a>);

impl<'de> Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some(CowStr(k)) = map.next_key::<CowStr<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k, v.get()));
                }
                Ok(RawMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A top-level value of a packument as read by [`TopMap`].
pub(crate) enum TopVal<'a> {
    /// Any member but `versions`: its raw text.
    Raw(&'a str),
    /// `versions`, already split into versions and each version into its members: `(key,
    /// text of the version object when known, members)`.
    Versions(Vec<(Cow<'a, str>, Option<&'a str>, Entries<'a>)>),
}

/// A packument's top level read in one pass: every member as raw text, except `versions`,
/// whose members are split while the document is read (instead of re-reading its raw text).
/// Fails when `versions` is not an object (callers then take the slower, exact path).
pub(crate) struct TopMap<'a>(pub Vec<(Cow<'a, str>, TopVal<'a>)>);

impl<'de> Deserialize<'de> for TopMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(16);
                while let Some(CowStr(k)) = map.next_key::<CowStr<'de>>()? {
                    let v = if k == "versions" {
                        let VersionsMap(versions) = map.next_value()?;
                        TopVal::Versions(versions.into_iter().map(|(k, m)| (k, None, m)).collect())
                    } else {
                        TopVal::Raw(map.next_value::<&'de RawValue>()?.get())
                    };
                    out.push((k, v));
                }
                Ok(TopMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `versions` read as `(version, members)` pairs in one pass.
struct VersionsMap<'a>(Vec<(Cow<'a, str>, Entries<'a>)>);

impl<'de> Deserialize<'de> for VersionsMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VersionsMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(CowStr(k)) = map.next_key::<CowStr<'de>>()? {
                    let RawMap(members) = map.next_value()?;
                    out.push((k, members));
                }
                Ok(VersionsMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of a JSON object whose text is known to be valid JSON (a value inside a
/// document that was read whole, by `serde_json` or by the streaming scanner), split without
/// validating it a second time. `None` when the text does not read as an object that way
/// (callers then read it with `serde_json`, which gives the exact result or error). For valid
/// JSON the result is what [`RawMap`] gives: keys borrowed unless escaped (then decoded by
/// `serde_json`), values as their exact text.
pub(crate) fn split_object(text: &str) -> Option<Entries<'_>> {
    use super::scan::{is_ws, string_end};
    let b = text.as_bytes();
    let ws = |mut i: usize| {
        while b.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b'}') {
        return (ws(i + 1) == b.len()).then_some(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let mut escaped = false;
        let key_end = string_end(b, i + 1, &mut escaped).ok()?.ok()?;
        let key_text = text.get(i..key_end)?;
        let key = if escaped {
            serde_json::from_str::<CowStr<'_>>(key_text).ok()?.0
        } else {
            Cow::Borrowed(key_text.get(1..key_text.len() - 1)?)
        };
        i = ws(key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        let value_end = skip_value(b, i)?;
        out.push((key, text.get(i..value_end)?));
        i = ws(value_end);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return (ws(i + 1) == b.len()).then_some(out),
            _ => return None,
        }
    }
}

/// The end of the (valid) JSON value that starts at `i`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    use super::scan::{is_ws, string_end};
    let mut escaped = false;
    match b.get(i)? {
        b'"' => string_end(b, i + 1, &mut escaped).ok()?.ok(),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = string_end(b, i + 1, &mut escaped).ok()?.ok()?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while b
                .get(i)
                .is_some_and(|&c| !is_ws(c) && !matches!(c, b',' | b'}' | b']'))
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The exact text of a non-empty JSON object from its members (borrowed from `src`, which
/// the members were read from and which is valid JSON): from the `{` before the first key
/// to the `}` after the last value. `None` for an empty object (or members not in `src`).
pub(crate) fn object_text<'a>(src: &'a str, members: &Members<'a>) -> Option<&'a str> {
    let b = src.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let back = |mut i: usize| {
        while i > 0 && ws(b[i - 1]) {
            i -= 1;
        }
        i
    };
    let first = members.first()?.1;
    let last = members.last()?.1;
    // Back from the first value: `:`, the key string, `{`.
    let mut i = back(offset_in(src, first)?);
    if i == 0 || b[i - 1] != b':' {
        return None;
    }
    i = back(i - 1);
    if i == 0 || b[i - 1] != b'"' {
        return None;
    }
    i -= 1;
    // The opening quote is the previous `"` not escaped by an odd run of backslashes.
    loop {
        let q = b[..i].iter().rposition(|&c| c == b'"')?;
        let slashes = b[..q].iter().rev().take_while(|&&c| c == b'\\').count();
        i = q;
        if slashes % 2 == 0 {
            break;
        }
    }
    i = back(i);
    if i == 0 || b[i - 1] != b'{' {
        return None;
    }
    let start = i - 1;
    let mut end = offset_in(src, last)? + last.len();
    while end < b.len() && ws(b[end]) {
        end += 1;
    }
    if b.get(end) != Some(&b'}') {
        return None;
    }
    src.get(start..=end)
}

/// The first key that occurs twice, if any.
pub(crate) fn first_duplicate<'e, V>(entries: &'e [(Cow<'_, str>, V)]) -> Option<&'e str> {
    first_duplicate_by(entries, |(k, _)| k.as_ref())
}

/// The first key (as `key` reads it from each item) that occurs twice, if any: the one whose
/// second occurrence comes first.
pub(crate) fn first_duplicate_by<'e, T>(
    items: &'e [T],
    key: impl Fn(&'e T) -> &'e str,
) -> Option<&'e str> {
    let n = items.len();
    if n <= 12 {
        for (i, item) in items.iter().enumerate() {
            let k = key(item);
            if items[..i].iter().any(|j| key(j) == k) {
                return Some(k);
            }
        }
        return None;
    }
    // Open addressing with a cheap hash; a slot holds an item index + 1. Keys are upstream's,
    // so a document made to collide gets a probe budget, past which the sort below decides.
    let cap = (n * 2).next_power_of_two();
    let mut stack = [0u32; 256];
    let mut heap = Vec::new();
    let table: &mut [u32] = if cap <= stack.len() {
        &mut stack[..cap]
    } else {
        heap.resize(cap, 0u32);
        &mut heap
    };
    let mut budget = 4 * n;
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        let mut h = (quick_hash(k.as_bytes()) as usize) & (cap - 1);
        loop {
            let slot = table[h];
            if slot == 0 {
                match u32::try_from(i + 1) {
                    Ok(v) => table[h] = v,
                    Err(_) => return first_duplicate_sorted(items, key),
                }
                break;
            }
            if items.get(slot as usize - 1).map(&key) == Some(k) {
                return Some(k);
            }
            budget = match budget.checked_sub(1) {
                Some(b) => b,
                None => return first_duplicate_sorted(items, key),
            };
            h = (h + 1) & (cap - 1);
        }
    }
    None
}

/// [`first_duplicate_by`] by sorting (same answer; `O(n log n)` whatever the keys).
fn first_duplicate_sorted<'e, T>(
    items: &'e [T],
    key: impl Fn(&'e T) -> &'e str,
) -> Option<&'e str> {
    let mut keys: Vec<(&str, usize)> = items.iter().map(&key).zip(0..).collect();
    keys.sort_unstable();
    keys.windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .min_by_key(|w| w[1].1)
        .map(|w| w[1].0)
}

/// A fast, unkeyed hash of a short byte string (eight bytes at a time).
fn quick_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// The value of `key` (the caller has rejected duplicates).
pub(crate) fn get<'a>(entries: &Members<'a>, key: &str) -> Option<&'a str> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// First non-whitespace byte of a JSON text.
pub(crate) fn first_byte(s: &str) -> Option<u8> {
    s.bytes().find(|b| !b.is_ascii_whitespace())
}

pub(crate) fn is_object(raw: &str) -> bool {
    first_byte(raw) == Some(b'{')
}

/// The string a raw value holds, if it is a JSON string.
pub(crate) fn as_str(raw: &str) -> Option<Cow<'_, str>> {
    if first_byte(raw) != Some(b'"') {
        return None;
    }
    // Most strings have no escapes: then the text between the quotes is the string.
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"'))
        && super::scan::string_special(inner.as_bytes(), 0) == inner.len()
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<CowStr<'_>>(raw).ok().map(|c| c.0)
}

/// `Some(b)` when the raw value is the literal `true` or `false`.
pub(crate) fn as_bool(raw: &str) -> Option<bool> {
    match raw.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// JavaScript truthiness of a raw JSON value (`null`, `false`, `0`, `""` are falsy).
pub(crate) fn is_truthy(raw: &str) -> bool {
    let t = raw.trim();
    !(t == "null" || t == "false" || t == "\"\"" || t.parse::<f64>().is_ok_and(|n| n == 0.0))
}

/// Byte offset of `child` inside `parent` when `child` is a sub-slice of it.
pub(crate) fn offset_in(parent: &str, child: &str) -> Option<usize> {
    let p = parent.as_ptr() as usize;
    let c = child.as_ptr() as usize;
    let end = c.checked_add(child.len())?;
    if c >= p && end <= p + parent.len() {
        Some(c - p)
    } else {
        None
    }
}

/// Append `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Shorten an input for an error message (at most about 80 characters).
pub(crate) fn brief(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_keys_are_owned_and_order_kept() {
        let json = r#"{"b":1,"1.0.0-\u00e9":{"x":[1,2]},"a\/b":"c\/d"}"#;
        let RawMap(m) = serde_json::from_str(json).unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "1.0.0-é", "a/b"]);
        assert!(matches!(m[0].0, Cow::Borrowed(_)));
        assert!(matches!(m[1].0, Cow::Owned(_)));
        assert_eq!(m[1].1, r#"{"x":[1,2]}"#);
        assert_eq!(m[2].1, r#""c\/d""#);
        assert_eq!(as_str(m[2].1).unwrap(), "c/d");
        for raw in [
            r#""""#,
            r#""a""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            " \"x\"",
            "\"\"\"",
            "\"",
            "x",
            "\"a\u{1}\"",
        ] {
            let want = serde_json::from_str::<CowStr<'_>>(raw).ok().map(|c| c.0);
            let want = want.filter(|_| first_byte(raw) == Some(b'"'));
            assert_eq!(as_str(raw), want, "{raw}");
        }
        assert_eq!(offset_in(json, m[1].1), Some(json.find("{\"x").unwrap()));
    }

    #[test]
    fn split_object_reads_as_serde_json() {
        for text in [
            r#"{}"#,
            " { } ",
            r#"{"a":1}"#,
            r#"{ "a" : 1 , "b\"c" : [1, {"x": "]}\""}] ,"\u00e9":{"y":[]},"n":-1.5e3,"t":true,"z":null,"s":"a\\"}"#,
            r#"{"a":"}","b":"{","c":"\\"}"#,
        ] {
            let RawMap(want) = serde_json::from_str(text).unwrap();
            let got = split_object(text).unwrap();
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{text}");
        }
        for text in [
            "",
            "[]",
            "1",
            "{",
            r#"{"a"}"#,
            r#"{"a":1"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
        ] {
            assert!(split_object(text).is_none(), "{text}");
        }
    }

    #[test]
    fn duplicates_found_small_and_large() {
        let small = r#"{"a":1,"b":2,"a":3}"#;
        let RawMap(m) = serde_json::from_str(small).unwrap();
        assert_eq!(first_duplicate(&m), Some("a"));
        let mut big = String::from("{");
        for i in 0..100 {
            big.push_str(&format!("\"k{i}\":{i},"));
        }
        big.push_str("\"k42\":0}");
        let RawMap(m) = serde_json::from_str(&big).unwrap();
        assert_eq!(first_duplicate(&m), Some("k42"));
        let RawMap(m) = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        assert_eq!(first_duplicate(&m), None);
        // The key whose second occurrence comes first, whatever the size and the path taken.
        for n in [3usize, 20, 100, 300, 5000] {
            let mut keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            keys.push("k2".into());
            keys.push("k1".into());
            let items: Vec<(Cow<'_, str>, ())> = keys
                .iter()
                .map(|k| (Cow::Borrowed(k.as_str()), ()))
                .collect();
            assert_eq!(first_duplicate(&items), Some("k2"), "{n}");
            assert_eq!(
                first_duplicate_sorted(&items, |(k, _)| k.as_ref()),
                Some("k2")
            );
            assert_eq!(first_duplicate(&items[..n]), None, "{n}");
            assert_eq!(
                first_duplicate_sorted(&items[..n], |(k, _)| k.as_ref()),
                None
            );
        }
    }

    #[test]
    fn json_strings_round_trip() {
        for s in ["plain", "q\"b\\s", "ctl\u{1}\n\t\u{1f}", "é/ü", ""] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn truthiness() {
        for (raw, want) in [
            ("null", false),
            ("false", false),
            ("\"\"", false),
            ("0", false),
            ("\"x\"", true),
            ("true", true),
            ("{}", true),
            ("1", true),
        ] {
            assert_eq!(is_truthy(raw), want, "{raw}");
        }
        assert_eq!(brief(&"x".repeat(200)).chars().count(), 81);
    }
}
