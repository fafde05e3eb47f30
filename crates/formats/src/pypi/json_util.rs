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

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero when some byte of `v` is zero (exact as a yes/no answer; which bits are set
/// above the first zero byte is not).
#[inline(always)]
pub(crate) fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(LO) & !v & HI
}

/// `0x80` in exactly the bytes of `x` that equal `b` (no false positives, unlike
/// [`zero_byte`]).
#[inline(always)]
pub(crate) fn eq_mask(x: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let v = x ^ (LO * u64::from(b));
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

/// Non-zero when some byte of `x` equals `b`.
#[inline(always)]
pub(crate) fn has_byte(x: u64, b: u8) -> u64 {
    zero_byte(x ^ (LO * u64::from(b)))
}

/// The first index at or after `from` whose byte satisfies `pred` (`None` when there is
/// none or `from` is past the end). Tests 8 bytes at a time with `word` (non-zero when the
/// word may hold a match: exact for "none", like [`zero_byte`]), then the word that has one
/// byte by byte: most strings this looks at have no byte to escape.
#[inline(always)]
pub(crate) fn first_match(
    bytes: &[u8],
    from: usize,
    word: impl Fn(u64) -> u64,
    pred: impl Fn(u8) -> bool,
) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut words = rest.chunks_exact(8);
    let mut base = from;
    for w in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(w);
        if word(u64::from_le_bytes(le)) != 0
            && let Some(p) = w.iter().position(|&b| pred(b))
        {
            return Some(base + p);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| pred(b))
        .map(|p| base + p)
}

/// Whether `b` must be escaped inside a JSON string.
#[inline(always)]
pub(crate) fn json_escaped(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// [`json_escaped`] for 8 bytes at once (see [`first_match`]).
#[inline(always)]
pub(crate) fn json_escaped_word(x: u64) -> u64 {
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit of a byte that had none.
    has_byte(x, b'"') | has_byte(x, b'\\') | (x.wrapping_sub(LO * 0x20) & !x & HI)
}

/// Append `s` as a JSON string literal (only `"`, `\` and control characters escaped).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = first_match(bytes, start, json_escaped_word, json_escaped) {
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

    proptest::proptest! {
        #[test]
        fn json_strings_are_unchanged(s in "\\PC{0,80}", t in "[\"\\\\\u{0}-\u{1f}a-z]{0,40}") {
            proptest::prop_assert_eq!(json_str(&s), json_str_naive(&s));
            proptest::prop_assert_eq!(json_str(&t), json_str_naive(&t));
        }
    }

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

    /// The encoding as it was written before it worked 8 bytes at a time.
    fn json_str_naive(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn strings_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é'] {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(at..at + 1, &special.to_string());
                    assert_eq!(json_str(&s), json_str_naive(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn byte_masks() {
        for at in 0..8 {
            for b in [0u8, 1, b'/', b'%', 0x7f, 0x80, 0xff] {
                let mut w = [b'a'; 8];
                w[at] = b;
                let x = u64::from_le_bytes(w);
                assert_eq!(eq_mask(x, b), 0x80 << (8 * at), "{w:?}");
                assert_ne!(has_byte(x, b), 0);
                assert_eq!(eq_mask(x, b'b'), 0);
                assert_eq!(has_byte(x, b'b'), 0);
            }
        }
        // Neighbours of a match are not reported (`zero_byte` may report them).
        let x = u64::from_le_bytes(*b"//./..//");
        assert_eq!(eq_mask(x, b'/').count_ones(), 5);
        assert_eq!(eq_mask(x, b'.').count_ones(), 3);
    }

    #[test]
    fn strings() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
        let back: String = serde_json::from_str(&json_str("x\u{7f}\u{1f}\"")).unwrap();
        assert_eq!(back, "x\u{7f}\u{1f}\"");
    }
}
