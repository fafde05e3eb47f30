//! A small hand-written HTML reader for PEP 503 pages, and HTML escaping.
//!
//! PEP 503 pages are flat: one `<a>` per file (or per project on the root), optionally a
//! `<base href>` and a `<meta name="pypi:repository-version">`. This reader is a linear scan
//! for `<`, not a general HTML5 parser:
//!
//! * comments (`<!-- … -->`), doctypes and processing instructions are skipped; stray end
//!   tags are ignored; the contents of `<script>` and `<style>` are skipped as raw text (like
//!   Python's `html.parser`, which pip uses);
//! * a start tag's attributes follow HTML5 tokenisation: names up to whitespace, `/`, `>` or
//!   `=`, lower-cased; values double-quoted, single-quoted or unquoted; the first of duplicate
//!   attributes wins; character references in values are decoded;
//! * an `<a>` element's text runs to the next `</a>` (case-insensitive); nested tags in it are
//!   dropped and references decoded, then whitespace is trimmed;
//! * character references: the named ones PEP 503 pages use (`&amp; &lt; &gt; &quot; &apos;
//!   &nbsp;`) and all numeric ones (`&#62;`, `&#x3e;`; invalid code points become U+FFFD);
//!   unknown names stay literal.
//!
//! Robustness: every loop advances, each byte is looked at a bounded number of times (an
//! unterminated `<a>` or attribute quote is an error, found once, not rescanned), attributes
//! per tag are capped at [`MAX_ATTRIBUTES`], and slicing happens only at ASCII delimiters.
//! Anything the page says is still data: the caller re-renders pages from the parsed model,
//! so what a client sees is what pkggate decided on.

use super::json_util::{first_match, has_byte, zero_byte};

/// Attributes kept per tag; further ones are ignored.
pub const MAX_ATTRIBUTES: usize = 64;

/// Attributes in document order: lower-case name, decoded value.
pub type Attrs = Vec<(String, String)>;

/// One `<a>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Attributes in document order, names lower-case, values decoded.
    pub attrs: Attrs,
    /// The decoded text.
    pub text: String,
    /// Byte offset of the `<a` in the input.
    pub offset: usize,
}

impl Anchor {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a PEP 503 page says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlPage {
    pub anchors: Vec<Anchor>,
    /// The first `<base href>`.
    pub base_href: Option<String>,
    /// The first `<meta name="pypi:repository-version" content>`.
    pub repository_version: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlError {
    pub offset: usize,
    pub reason: &'static str,
}

/// Read a PEP 503 page.
pub fn parse_page(input: &str) -> Result<HtmlPage, HtmlError> {
    let bytes = input.as_bytes();
    let mut page = HtmlPage::default();
    let mut i = 0;
    while let Some(lt) = find_byte(bytes, i, b'<') {
        let rest = &bytes[lt..];
        if rest.starts_with(b"<!--") {
            i = find_seq(bytes, lt + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") || rest.starts_with(b"</") {
            i = find_byte(bytes, lt + 1, b'>').map_or(bytes.len(), |e| e + 1);
            continue;
        }
        if !rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
            i = lt + 1;
            continue;
        }
        let name_end = (lt + 1..bytes.len())
            .find(|&k| !bytes[k].is_ascii_alphanumeric())
            .unwrap_or(bytes.len());
        let name = input[lt + 1..name_end].to_ascii_lowercase();
        let (attrs, after) = match parse_attrs(input, name_end) {
            Ok(v) => v,
            Err(reason) => {
                if name == "a" {
                    return Err(HtmlError { offset: lt, reason });
                }
                // A broken tag that is not an anchor ends the useful part of the page.
                break;
            }
        };
        match name.as_str() {
            "a" => {
                let Some((close, close_end)) = find_end_tag(bytes, after, b"a") else {
                    return Err(HtmlError {
                        offset: lt,
                        reason: "<a> element without </a>",
                    });
                };
                page.anchors.push(Anchor {
                    attrs,
                    text: text_content(&input[after..close]),
                    offset: lt,
                });
                i = close_end;
            }
            "script" | "style" => {
                i = find_end_tag(bytes, after, name.as_bytes()).map_or(bytes.len(), |(_, e)| e);
            }
            "base" => {
                if page.base_href.is_none() {
                    page.base_href = attrs.into_iter().find(|(k, _)| k == "href").map(|(_, v)| v);
                }
                i = after;
            }
            "meta" => {
                let is_version = attrs
                    .iter()
                    .any(|(k, v)| k == "name" && v.eq_ignore_ascii_case("pypi:repository-version"));
                if is_version && page.repository_version.is_none() {
                    page.repository_version = attrs
                        .into_iter()
                        .find(|(k, _)| k == "content")
                        .map(|(_, v)| v.trim().to_string());
                }
                i = after;
            }
            _ => i = after,
        }
    }
    Ok(page)
}

/// Parse attributes from `start` (just after the tag name) to the closing `>`. Returns them
/// and the offset after `>`.
pub(crate) fn parse_attrs(input: &str, start: usize) -> Result<(Attrs, usize), &'static str> {
    let b = input.as_bytes();
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut i = start;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return Err("tag without closing '>'");
        }
        if b[i] == b'>' {
            return Ok((attrs, i + 1));
        }
        let name_start = i;
        i += 1; // the first character may even be '='
        while i < b.len() && !matches!(b[i], b'/' | b'>' | b'=') && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name = &input[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let quote = b[i];
                let Some(end) = find_byte(b, i + 1, quote) else {
                    return Err("attribute value without closing quote");
                };
                value = unescape(&input[i + 1..end]);
                i = end + 1;
            } else {
                let vstart = i;
                while i < b.len() && b[i] != b'>' && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&input[vstart..i]);
            }
        }
        let name = name.to_ascii_lowercase();
        if attrs.len() < MAX_ATTRIBUTES && !attrs.iter().any(|(k, _)| *k == name) {
            attrs.push((name, value));
        }
    }
}

/// `</name` followed by whitespace, `/` or `>`, case-insensitive; returns its start and the
/// offset after its `>`.
pub(crate) fn find_end_tag(b: &[u8], from: usize, name: &[u8]) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(k) = find_seq(b, i, b"</") {
        let n = k + 2;
        let matches_name =
            b.len() >= n + name.len() && b[n..n + name.len()].eq_ignore_ascii_case(name);
        let next = b.get(n + name.len()).copied();
        if matches_name
            && matches!(
                next,
                None | Some(b'>' | b'/') | Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
            )
        {
            let end = find_byte(b, n + name.len(), b'>').map_or(b.len(), |e| e + 1);
            return Some((k, end));
        }
        i = n;
    }
    None
}

fn text_content(raw: &str) -> String {
    if !raw.contains(['<', '&']) {
        return raw.trim().to_string();
    }
    let mut stripped = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(lt) = rest.find('<') {
        stripped.push_str(&rest[..lt]);
        match rest[lt..].find('>') {
            Some(gt) => rest = &rest[lt + gt + 1..],
            None => {
                rest = "";
            }
        }
    }
    stripped.push_str(rest);
    unescape(&stripped).trim().to_string()
}

pub(crate) fn find_byte(b: &[u8], from: usize, needle: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == needle)
        .map(|p| p + from)
}

pub(crate) fn find_seq(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = b.get(from..)?;
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while let Some(p) = hay[i..].iter().position(|&c| c == first) {
        let k = i + p;
        if hay.len() - k < needle.len() {
            return None;
        }
        if &hay[k..k + needle.len()] == needle {
            return Some(from + k);
        }
        i = k + 1;
    }
    None
}

/// Decode character references (see the module doc).
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // References are short; look for `;` within 32 bytes.
        let semi = after
            .bytes()
            .take(32)
            .position(|c| c == b';')
            .filter(|&p| p > 0);
        let decoded = semi.and_then(|p| decode_reference(&after[..p]).map(|c| (c, p)));
        match decoded {
            Some((c, p)) => {
                out.push(c);
                rest = &after[p + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_reference(body: &str) -> Option<char> {
    if let Some(num) = body.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (h, 16),
            None => (num, 10),
        };
        if digits.is_empty() || digits.len() > 8 || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let n = u32::from_str_radix(digits, radix).ok()?;
        return Some(match char::from_u32(n) {
            Some(c) if n != 0 => c,
            _ => '\u{FFFD}',
        });
    }
    Some(match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => return None,
    })
}

/// Escape for a double-quoted attribute value or text: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// Whether `b` is escaped by [`escape_into`].
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
}

/// [`needs_escape`] for 8 bytes at once (see [`first_match`]): `&` and `'` differ only in
/// bit 0, `<` and `>` only in bit 1.
#[inline(always)]
fn needs_escape_word(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    zero_byte((x | LO) ^ (LO * 0x27)) | zero_byte((x | (LO * 2)) ^ (LO * 0x3e)) | has_byte(x, b'"')
}

/// Append `s` escaped for a double-quoted attribute value or text. Copies the runs between
/// escapable bytes as slices (most values have none).
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = first_match(bytes, start, needs_escape_word, needs_escape) {
        // Only ASCII bytes are matched, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        out.push_str(match bytes[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_pep503_page() {
        let page = parse_page(concat!(
            "<!DOCTYPE html>\n<html><head>",
            "<meta name=\"pypi:repository-version\" content=\"1.1\">",
            "<title>Links for x</title></head><body>\n",
            "<!-- <a href=\"commented.whl\">no</a> -->",
            "<script>var s = '<a href=\"x\">';</script>",
            "<A HREF=\"../../x-1.0.tar.gz#sha256=ab\" data-requires-python=\"&gt;=3.8\" ",
            "data-yanked='bad &amp; broken' data-gpg-sig=false data-core-metadata>",
            "x-1.0.tar.gz</A><br/>\n",
            "<a href=x-2.0.tar.gz href=other>\n <b>x-2.0.tar.gz</b> </a>",
            "</body></html>"
        ))
        .unwrap();
        assert_eq!(page.repository_version.as_deref(), Some("1.1"));
        assert_eq!(page.anchors.len(), 2);
        let a = &page.anchors[0];
        assert_eq!(a.attr("href"), Some("../../x-1.0.tar.gz#sha256=ab"));
        assert_eq!(a.attr("data-requires-python"), Some(">=3.8"));
        assert_eq!(a.attr("data-yanked"), Some("bad & broken"));
        assert_eq!(a.attr("data-gpg-sig"), Some("false"));
        assert_eq!(a.attr("data-core-metadata"), Some(""));
        assert_eq!(a.text, "x-1.0.tar.gz");
        let b = &page.anchors[1];
        assert_eq!(b.attr("href"), Some("x-2.0.tar.gz"));
        assert_eq!(b.text, "x-2.0.tar.gz");
    }

    #[test]
    fn base_and_errors() {
        let page =
            parse_page("<base href=\"https://h/p/\"><base href=\"x\"><a href=\"f\">f</a>").unwrap();
        assert_eq!(page.base_href.as_deref(), Some("https://h/p/"));
        assert!(parse_page("<a href=\"x\">x").is_err());
        assert!(parse_page("<a href=\"x>x</a>").is_err());
        assert!(parse_page("<a href=x").is_err());
        assert_eq!(parse_page("").unwrap(), HtmlPage::default());
        assert_eq!(parse_page("plain text < > &").unwrap().anchors.len(), 0);
        // An </abbr> does not close an <a>.
        let page = parse_page("<a href=\"f\">f</abbr></a >").unwrap();
        assert_eq!(page.anchors[0].text, "f");
    }

    #[test]
    fn references() {
        assert_eq!(unescape("&gt;=3.8, &lt;4"), ">=3.8, <4");
        assert_eq!(unescape("&#62;&#x3E;&#X3e;"), ">>>");
        assert_eq!(unescape("&#0;&#x110000;"), "\u{FFFD}\u{FFFD}");
        assert_eq!(unescape("&unknown; & &; &amp"), "&unknown; & &; &amp");
        assert_eq!(unescape("a&amp;b"), "a&b");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    /// The escaping as it was written before it worked 8 bytes at a time.
    fn escape_naive(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn escapes_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in ['&', '<', '>', '"', '\'', 'é', '%', '=', '?', '\u{7f}'] {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(at..at + 1, &special.to_string());
                    assert_eq!(escape(&s), escape_naive(&s), "{s:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn escaping_is_unchanged(s in "\\PC{0,80}", t in "[&<>\"'a-z%=;]{0,40}") {
            prop_assert_eq!(escape(&s), escape_naive(&s));
            prop_assert_eq!(escape(&t), escape_naive(&t));
        }

        #[test]
        fn never_panics(input in "\\PC{0,300}") {
            let _ = parse_page(&input);
        }

        #[test]
        fn never_panics_on_tag_soup(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "<a", "<A ", "href=", "\"", "'", ">", "</a>", "</a", "<!--", "-->", "<script>",
                    "</script>", "&gt;", "&#x", ";", "é", " ", "<", "/", "=", "<meta name=pypi:repository-version content=", "<base href=",
                ]),
                0..60,
            )
        ) {
            let input: String = parts.concat();
            let _ = parse_page(&input);
        }

        #[test]
        fn escape_round_trips(s in "\\PC{0,100}") {
            prop_assert_eq!(unescape(&escape(&s)), s);
        }
    }
}
