//! Borrowed, order-preserving views of JSON objects, and the small writers used to splice
//! output. Nothing here builds a `serde_json::Value`.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The members of one JSON object in document order: key (borrowed unless it contained
/// escapes) and the value's raw text (borrowed from the input).
pub(crate) type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// [`Entries`] as a slice.
pub(crate) type Members<'a> = [(Cow<'a, str>, &'a RawValue)];

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
                    out.push((k, v));
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
    Raw(&'a RawValue),
    /// `versions`, already split into versions and each version into its members.
    Versions(Vec<(Cow<'a, str>, Entries<'a>)>),
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
                        TopVal::Versions(versions)
                    } else {
                        TopVal::Raw(map.next_value()?)
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
    let first = members.first()?.1.get();
    let last = members.last()?.1.get();
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
    if entries.len() <= 24 {
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(j, _)| j == k) {
                return Some(k);
            }
        }
        None
    } else {
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    }
}

/// The value of `key` (the caller has rejected duplicates).
pub(crate) fn get<'a>(entries: &Members<'a>, key: &str) -> Option<&'a RawValue> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// First non-whitespace byte of a JSON text.
pub(crate) fn first_byte(s: &str) -> Option<u8> {
    s.bytes().find(|b| !b.is_ascii_whitespace())
}

pub(crate) fn is_object(raw: &RawValue) -> bool {
    first_byte(raw.get()) == Some(b'{')
}

/// The string a raw value holds, if it is a JSON string.
pub(crate) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if first_byte(raw.get()) != Some(b'"') {
        return None;
    }
    serde_json::from_str::<CowStr<'_>>(raw.get())
        .ok()
        .map(|c| c.0)
}

/// `Some(b)` when the raw value is the literal `true` or `false`.
pub(crate) fn as_bool(raw: &RawValue) -> Option<bool> {
    match raw.get().trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// JavaScript truthiness of a raw JSON value (`null`, `false`, `0`, `""` are falsy).
pub(crate) fn is_truthy(raw: &RawValue) -> bool {
    let t = raw.get().trim();
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
        assert_eq!(m[1].1.get(), r#"{"x":[1,2]}"#);
        assert_eq!(m[2].1.get(), r#""c\/d""#);
        assert_eq!(as_str(m[2].1).unwrap(), "c/d");
        assert_eq!(
            offset_in(json, m[1].1.get()),
            Some(json.find("{\"x").unwrap())
        );
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
            let v: Box<RawValue> = serde_json::from_str(raw).unwrap();
            assert_eq!(is_truthy(&v), want, "{raw}");
        }
        assert_eq!(brief(&"x".repeat(200)).chars().count(), 81);
    }
}
