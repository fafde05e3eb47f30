//! Order-preserving, borrowed JSON objects (`RawValue` per member) and output helpers.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// A JSON object's members in document order, values left raw (borrowed from the input).
/// Duplicate keys are refused: clients disagree on which one wins, so the proxy must not
/// filter one and forward another. Keys are borrowed unless they contain escapes.
pub(crate) struct Entries<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

/// A string borrowed from the input when it has no escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Objects up to this many members check duplicates by linear scan.
const LINEAR_DUP_CHECK: usize = 16;

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(12);
                let mut seen: Option<HashSet<String>> = None;
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    let dup = match &mut seen {
                        Some(set) => !set.insert(key.to_string()),
                        None => {
                            let dup = out.iter().any(|(k, _)| *k == key);
                            if !dup && out.len() >= LINEAR_DUP_CHECK {
                                let mut set: HashSet<String> =
                                    out.iter().map(|(k, _)| k.to_string()).collect();
                                set.insert(key.to_string());
                                seen = Some(set);
                            }
                            dup
                        }
                    };
                    if dup {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate key {}",
                            brief(&key)
                        )));
                    }
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Entries<'a> {
    pub fn parse(raw: &'a str) -> Result<Entries<'a>, serde_json::Error> {
        serde_json::from_str(raw)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// The content of a raw JSON string without escapes, borrowed; `None` when the value is not
/// a string or has escapes (then deserialize it).
pub(crate) fn plain_str(raw: &RawValue) -> Option<&str> {
    let s = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    (!s.contains('\\')).then_some(s)
}

/// A raw JSON string's content, borrowed when it has no escapes.
pub(crate) fn raw_str(raw: &RawValue) -> Result<Cow<'_, str>, serde_json::Error> {
    match plain_str(raw) {
        Some(s) => Ok(Cow::Borrowed(s)),
        None => serde_json::from_str::<String>(raw.get()).map(Cow::Owned),
    }
}

/// A JSON object of strings (`hashes`); a repeated key keeps the last value.
pub(crate) fn string_map(
    raw: &RawValue,
) -> Result<std::collections::BTreeMap<String, String>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// The items of a JSON array, raw.
pub(crate) fn array(raw: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// Whether a raw value is `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// Append `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(p) = bytes[start..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        let i = start + p;
        // Only ASCII bytes are matched, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// Byte offset of `inner` inside `outer` when `inner` is a sub-slice of it (as values
/// borrowed from one input are).
pub(crate) fn subslice_offset(outer: &str, inner: &str) -> Option<usize> {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    (i >= o && i + inner.len() <= o + outer.len()).then(|| i - o)
}

/// `outer` with the sub-slice `inner` replaced by `replacement`; `None` if `inner` does not
/// lie inside `outer`.
pub(crate) fn splice(outer: &str, inner: &str, replacement: &str) -> Option<String> {
    let off = subslice_offset(outer, inner)?;
    let end = off + inner.len();
    let mut out = String::with_capacity(outer.len() + replacement.len());
    out.push_str(outer.get(..off)?);
    out.push_str(replacement);
    out.push_str(outer.get(end..)?);
    Some(out)
}

/// Append `outer` with the sub-slice `inner` replaced by `replacement`; `false` (nothing
/// written) if `inner` does not lie inside `outer`.
pub(crate) fn splice_into(out: &mut String, outer: &str, inner: &str, replacement: &str) -> bool {
    let Some(off) = subslice_offset(outer, inner) else {
        return false;
    };
    let end = off + inner.len();
    match (outer.get(..off), outer.get(end..)) {
        (Some(a), Some(b)) => {
            out.reserve(a.len() + replacement.len() + b.len());
            out.push_str(a);
            out.push_str(replacement);
            out.push_str(b);
            true
        }
        _ => false,
    }
}

/// Write an object from members (keys re-encoded, values raw).
pub(crate) fn push_object<'v>(
    out: &mut String,
    members: impl IntoIterator<Item = (&'v str, &'v str)>,
) {
    out.push('{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
}

/// At most 60 characters of `s`, for error messages.
pub(crate) fn brief(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_order_and_refuse_duplicates() {
        let e = Entries::parse(r#"{"b": 1, "a": {"x": [1, 2]}, "c": "s"}"#).unwrap();
        let keys: Vec<&str> = e.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(e.get("a").unwrap().get(), r#"{"x": [1, 2]}"#);
        assert!(Entries::parse(r#"{"a": 1, "a": 2}"#).is_err());
        assert!(Entries::parse("[1]").is_err());
    }

    #[test]
    fn splicing() {
        let doc = r#"{"url": "a", "k": 1}"#;
        let e = Entries::parse(doc).unwrap();
        let url = e.get("url").unwrap();
        assert_eq!(
            splice(doc, url.get(), "\"b\"").unwrap(),
            r#"{"url": "b", "k": 1}"#
        );
        assert_eq!(splice("abc", "other", "x"), None);
    }

    #[test]
    fn strings() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
        let back: String = serde_json::from_str(&json_str("x\u{7f}\u{1f}\"")).unwrap();
        assert_eq!(back, "x\u{7f}\u{1f}\"");
    }
}
