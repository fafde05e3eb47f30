//! Order-preserving, borrowed JSON objects (`RawValue` per member) and output helpers.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::fmt;

/// A JSON object's members in document order, values left raw (borrowed from the input).
/// Duplicate keys are refused: clients disagree on which one wins, so the proxy must not
/// filter one and forward another.
pub(crate) struct Entries<'a>(pub Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
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
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
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
        let keys: Vec<&str> = e.0.iter().map(|(k, _)| k.as_str()).collect();
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
