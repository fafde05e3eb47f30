//! The `/simple/` root index: removing blocked projects.
//!
//! [`RootFilter`] streams the PEP 503 HTML root (40 MB, ~927k links on PyPI) chunk by chunk.
//! Bytes outside `<a …>…</a>` elements pass through unchanged and at once. Each complete
//! `<a>` element is looked at: its project name is taken both from the `href` (last non-empty
//! path segment, percent-decoded) and from its text; if the caller's `blocked` says yes for
//! either (called with the PEP 503 normal form), the element is removed together with a
//! directly following `<br>`/`<br/>`/`<br />` and one line break, so a one-link-per-line page
//! loses exactly that line. Everything else is byte-identical.
//!
//! Memory is bounded: at most [`MAX_PENDING`] bytes are held back while an element is
//! incomplete. An element that grows beyond that (no project link is that long) is dropped,
//! up to and including its `</a>`; so is an unterminated element at the end of the input.
//! Both are counted in [`RootFilter::dropped_malformed`].
//!
//! [`filter_root_json`] does the same for the PEP 691 JSON root without building a value tree;
//! [`root_json_to_html`] writes the filtered JSON root as PEP 503 HTML.

use super::PypiError;
use super::html::{escape_into, find_byte, find_end_tag, parse_attrs, unescape};
use super::json_util::{self, Entries, brief, push_json_str};
use crate::ecosystem::pep503_normalize;

/// Bytes an incomplete element may hold back.
pub const MAX_PENDING: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    /// An element was removed: swallow a following `<br>` and line break.
    AfterDrop,
    /// Inside an oversized element: discard up to its `</a>`.
    Skipping,
}

/// Streaming filter for the HTML root index (see the module doc).
#[derive(Debug)]
pub struct RootFilter {
    buf: Vec<u8>,
    state: State,
    removed: usize,
    dropped_malformed: usize,
    /// Upstream forms of the root's own URL (see [`RootFilter::rewriting`]).
    prefixes: Vec<String>,
    rewritten: usize,
}

impl Default for RootFilter {
    fn default() -> Self {
        RootFilter::new()
    }
}

impl RootFilter {
    pub fn new() -> RootFilter {
        RootFilter {
            buf: Vec::new(),
            state: State::Normal,
            removed: 0,
            dropped_malformed: 0,
            prefixes: Vec::new(),
            rewritten: 0,
        }
    }

    /// Also rewrite the `href` of every kept link that is one of `prefixes` (the upstream
    /// root's own URL: absolute, and root-relative when its path is not the proxy's)
    /// followed by one plain path segment and an optional `/`: the prefix is cut, leaving
    /// an href relative to the root, so the link leads to the proxy's page of the project
    /// instead of upstream's. Compared on the raw attribute text; empty prefixes are
    /// ignored; other links stay as they are.
    pub fn rewriting(mut self, prefixes: Vec<String>) -> RootFilter {
        self.prefixes = prefixes.into_iter().filter(|p| !p.is_empty()).collect();
        self
    }

    /// Links whose `href` was rewritten.
    pub fn rewritten(&self) -> usize {
        self.rewritten
    }

    /// Feed a chunk; filtered bytes are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>, blocked: impl Fn(&str) -> bool) {
        self.buf.extend_from_slice(chunk);
        self.process(out, &blocked, false);
    }

    /// End of input: flush what is held back.
    pub fn finish(&mut self, out: &mut Vec<u8>, blocked: impl Fn(&str) -> bool) {
        self.process(out, &blocked, true);
        if self.state == State::Skipping {
            self.dropped_malformed += 1;
        }
        self.buf.clear();
        self.state = State::Normal;
    }

    /// Project links removed because `blocked` said so.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Oversized or unterminated elements dropped.
    pub fn dropped_malformed(&self) -> usize {
        self.dropped_malformed
    }

    fn process(&mut self, out: &mut Vec<u8>, blocked: &dyn Fn(&str) -> bool, last: bool) {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        loop {
            match self.state {
                State::Skipping => match complete_end_tag(&buf, pos) {
                    Some(end) => {
                        pos = end;
                        self.state = State::AfterDrop;
                    }
                    None => {
                        // Keep a short tail in case `</a>` straddles chunks.
                        pos = if last {
                            buf.len()
                        } else {
                            pos.max(buf.len().saturating_sub(8))
                        };
                        break;
                    }
                },
                State::AfterDrop => match after_drop_len(&buf[pos..], last) {
                    Some(n) => {
                        pos += n;
                        self.state = State::Normal;
                    }
                    None => break,
                },
                State::Normal => {
                    let Some(lt) = find_byte(&buf, pos, b'<') else {
                        out.extend_from_slice(&buf[pos..]);
                        pos = buf.len();
                        break;
                    };
                    out.extend_from_slice(&buf[pos..lt]);
                    pos = lt;
                    let rest = &buf[pos..];
                    if rest.len() < 3 && !last {
                        break;
                    }
                    let is_anchor = rest.len() >= 3
                        && rest[1].eq_ignore_ascii_case(&b'a')
                        && (rest[2].is_ascii_whitespace() || rest[2] == b'>');
                    if !is_anchor {
                        // Another tag (`<br/>`, `</a>`, `<meta …>`): pass it through whole. A
                        // `<` inside it means malformed markup (`<a<a href=…>`): drop the
                        // fragment up to that `<`, or removing the inner link could splice
                        // the fragment and the text after it into a new link.
                        let next_gt = find_byte(&buf, pos + 1, b'>');
                        let next_lt = find_byte(&buf, pos + 1, b'<');
                        match (next_gt, next_lt) {
                            (Some(gt), None) => {
                                out.extend_from_slice(&buf[pos..=gt]);
                                pos = gt + 1;
                            }
                            (Some(gt), Some(lt)) if gt < lt => {
                                out.extend_from_slice(&buf[pos..=gt]);
                                pos = gt + 1;
                            }
                            (_, Some(lt)) => {
                                self.dropped_malformed += 1;
                                pos = lt;
                            }
                            (None, None) if last || buf.len() - pos > MAX_PENDING => {
                                out.extend_from_slice(&buf[pos..]);
                                pos = buf.len();
                            }
                            (None, None) => break,
                        }
                        continue;
                    }
                    match complete_end_tag(&buf, pos + 2) {
                        Some(end) => {
                            let element = &buf[pos..end];
                            if element_blocked(element, blocked) {
                                self.removed += 1;
                                self.state = State::AfterDrop;
                            } else if let Some((start, cut)) = self.rewrite_at(element) {
                                self.rewritten += 1;
                                out.extend_from_slice(&element[..start]);
                                out.extend_from_slice(&element[start + cut..]);
                            } else {
                                out.extend_from_slice(element);
                            }
                            pos = end;
                        }
                        None if buf.len() - pos > MAX_PENDING => {
                            self.dropped_malformed += 1;
                            self.state = State::Skipping;
                            pos = buf.len().saturating_sub(8).max(pos + 1);
                        }
                        None if last => {
                            self.dropped_malformed += 1;
                            pos = buf.len();
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        self.buf = buf;
        self.buf.drain(..pos.min(self.buf.len()));
    }
}

impl RootFilter {
    /// Where a kept element's `href` value starts and how many of its bytes (a prefix) go.
    fn rewrite_at(&self, element: &[u8]) -> Option<(usize, usize)> {
        if self.prefixes.is_empty() {
            return None;
        }
        let (start, end) = href_span(element)?;
        let value = &element[start..end];
        let cut = self
            .prefixes
            .iter()
            .find(|p| value.len() > p.len() && value.starts_with(p.as_bytes()))?
            .len();
        // Only a project link: one plain segment (and a slash) after the prefix. Then the
        // link names the same project before and after, and the attribute reads the same
        // way (an unquoted value cannot come to start with a quote).
        let rest = &value[cut..];
        let seg = rest.strip_suffix(b"/").unwrap_or(rest);
        let plain = |b: &u8| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'&' | b'=' | b'`'
                )
        };
        (!seg.is_empty() && seg.iter().all(plain)).then_some((start, cut))
    }
}

/// The raw value span of the `href` attribute of an `<a …>` element (without quotes), found
/// the way [`parse_attrs`] reads attributes (names case-insensitive, the first wins).
fn href_span(element: &[u8]) -> Option<(usize, usize)> {
    // PyPI's form first: `<a href="…">`.
    if let Some(rest) = element.strip_prefix(b"<a href=\"") {
        let q = rest.iter().position(|&b| b == b'"')?;
        return Some((9, 9 + q));
    }
    let b = element;
    let mut i = 2;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' {
            return None;
        }
        let name_start = i;
        i += 1;
        while i < b.len() && !matches!(b[i], b'/' | b'>' | b'=') && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let is_href = b[name_start..i].eq_ignore_ascii_case(b"href");
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            if is_href {
                return None;
            }
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (vstart, vend) = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let end = find_byte(b, i + 1, b[i])?;
            (i + 1, end)
        } else {
            let vstart = i;
            while i < b.len() && b[i] != b'>' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            (vstart, i)
        };
        if is_href {
            return Some((vstart, vend));
        }
        i = vend + usize::from(vend < b.len() && matches!(b[vend], b'"' | b'\''));
    }
}

/// The offset after a complete `</a …>` at or after `from`.
fn complete_end_tag(buf: &[u8], from: usize) -> Option<usize> {
    let (_, end) = find_end_tag(buf, from, b"a")?;
    (end > 0 && buf.get(end - 1) == Some(&b'>')).then_some(end)
}

/// How many bytes of `<br>` and line break follow a removed element; `None` = need more.
fn after_drop_len(rest: &[u8], last: bool) -> Option<usize> {
    let mut n = 0;
    for br in [b"<br/>".as_slice(), b"<br />", b"<br>"] {
        if rest.len() >= br.len() && rest[..br.len()].eq_ignore_ascii_case(br) {
            n = br.len();
            break;
        }
        if !last && rest.len() < br.len() && br[..rest.len()].eq_ignore_ascii_case(rest) {
            return None;
        }
    }
    let r = &rest[n..];
    if r.starts_with(b"\r\n") {
        Some(n + 2)
    } else if r.starts_with(b"\n") {
        Some(n + 1)
    } else if !last && (r.is_empty() || r == b"\r") {
        None
    } else {
        Some(n)
    }
}

/// The project a root link names, from its `href`.
fn name_from_href(href: &str) -> Option<String> {
    let path = href.split(['?', '#']).next().unwrap_or("");
    let seg = path.trim_end_matches('/').rsplit('/').next()?;
    if seg.is_empty() {
        return None;
    }
    Some(percent_decode_lossy(seg))
}

fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn element_blocked(element: &[u8], blocked: &dyn Fn(&str) -> bool) -> bool {
    match plain_anchor(element) {
        Some((href_name, text)) => plain_anchor_blocked(href_name, text, blocked),
        None => element_blocked_general(element, blocked),
    }
}

/// Name characters that need no decoding, unescaping or trimming anywhere.
fn plain_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// The element exactly as PyPI writes root links, `<a href="…/NAME/">TEXT</a>` with a plain
/// href (name characters and `/`) and a plain, non-empty text: `(NAME, TEXT)`. Anything else
/// (other attributes, quotes, entities, `%`, tags or spaces in the text) is `None` and goes
/// the general way. About a million of these per root index, so no allocation here.
fn plain_anchor(element: &[u8]) -> Option<(&str, &str)> {
    let rest = element.strip_prefix(b"<a href=\"")?;
    let q = rest.iter().position(|&b| b == b'"')?;
    let href = &rest[..q];
    let rest = rest[q + 1..].strip_prefix(b">")?;
    let lt = rest.iter().position(|&b| b == b'<')?;
    let (text, end) = rest.split_at(lt);
    if end != b"</a>"
        || text.is_empty()
        || !text.iter().all(|&b| plain_name_byte(b))
        || !href.iter().all(|&b| plain_name_byte(b) || b == b'/')
    {
        return None;
    }
    let seg = href.strip_suffix(b"/").unwrap_or(href);
    let name = &seg[seg.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    if name.is_empty() {
        return None;
    }
    // Only ASCII name bytes: both are valid UTF-8.
    Some((
        std::str::from_utf8(name).ok()?,
        std::str::from_utf8(text).ok()?,
    ))
}

/// Whether two plain (ASCII name-byte) names have the same PEP 503 normal form.
fn same_normal_form(a: &str, b: &str) -> bool {
    fn normal(s: &str) -> impl Iterator<Item = u8> + '_ {
        let mut prev_sep = false;
        s.bytes().filter_map(move |c| {
            let sep = matches!(c, b'-' | b'_' | b'.');
            let out = match (sep, prev_sep) {
                (true, true) => None,
                (true, false) => Some(b'-'),
                (false, _) => Some(c.to_ascii_lowercase()),
            };
            prev_sep = sep;
            out
        })
    }
    normal(a).eq(normal(b))
}

fn plain_anchor_blocked(href_name: &str, text: &str, blocked: &dyn Fn(&str) -> bool) -> bool {
    if blocked(&pep503_normalize(href_name)) {
        return true;
    }
    !same_normal_form(href_name, text) && blocked(&pep503_normalize(text))
}

fn element_blocked_general(element: &[u8], blocked: &dyn Fn(&str) -> bool) -> bool {
    let text = String::from_utf8_lossy(element);
    let Ok((attrs, after)) = parse_attrs(&text, 2) else {
        return false;
    };
    let href_name = attrs
        .iter()
        .find(|(k, _)| k == "href")
        .and_then(|(_, v)| name_from_href(v));
    if let Some(name) = href_name
        && blocked(&pep503_normalize(&name))
    {
        return true;
    }
    let inner_end = find_end_tag(text.as_bytes(), after, b"a").map_or(text.len(), |(s, _)| s);
    let inner = text.get(after..inner_end).unwrap_or("");
    let mut stripped = String::new();
    let mut rest = inner;
    while let Some(lt) = rest.find('<') {
        stripped.push_str(&rest[..lt]);
        rest = rest[lt..].find('>').map_or("", |gt| &rest[lt + gt + 1..]);
    }
    stripped.push_str(rest);
    let name = unescape(&stripped);
    let name = name.trim();
    !name.is_empty() && blocked(&pep503_normalize(name))
}

/// Filter the PEP 691 JSON root (`{"meta":…,"projects":[{"name":…},…]}`): remove projects
/// whose normalised `name` is blocked; other members and project objects stay raw. Returns
/// the body and the number removed.
pub fn filter_root_json(
    body: &[u8],
    blocked: impl Fn(&str) -> bool,
) -> Result<(String, usize), PypiError> {
    let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let top = root_members(text)?;
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    out.push('{');
    for (n, (k, raw)) in top.0.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_json_str(&mut out, k);
        out.push(':');
        if k != "projects" {
            out.push_str(raw.get());
            continue;
        }
        out.push('[');
        let mut first = true;
        removed += each_project(raw, &blocked, |item, _| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(item);
        })?;
        out.push(']');
    }
    out.push('}');
    Ok((out, removed))
}

/// The PEP 691 JSON root as a PEP 503 HTML root (for clients that take only HTML from an
/// upstream that answers only JSON): one `<a href="<normalised name>/">name</a>` line per
/// project not blocked, hrefs relative to the root; names that are not valid project names
/// are left out. Returns the page and the number removed as blocked.
pub fn root_json_to_html(
    body: &[u8],
    blocked: impl Fn(&str) -> bool,
) -> Result<(String, usize), PypiError> {
    let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let top = root_members(text)?;
    let mut out = String::with_capacity(text.len());
    out.push_str(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    let mut removed = 0;
    if let Some(raw) = top.get("projects") {
        removed = each_project(raw, &blocked, |_, name| {
            // A link must lead to the project's page: a name that is not a valid project
            // name (PEP 508: letters, digits, `-`, `_`, `.`) has none and is left out.
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return;
            }
            out.push_str("    <a href=\"");
            escape_into(&mut out, &pep503_normalize(name));
            out.push_str("/\">");
            escape_into(&mut out, name);
            out.push_str("</a>\n");
        })?;
    }
    out.push_str("  </body>\n</html>\n");
    Ok((out, removed))
}

/// The members of a JSON root, its `meta.api-version` checked.
fn root_members(text: &str) -> Result<Entries<'_>, PypiError> {
    let top = Entries::parse(text).map_err(|e| PypiError::Json(e.to_string()))?;
    if let Some(meta) = top.get("meta") {
        let meta =
            Entries::parse(meta.get()).map_err(|e| PypiError::Shape(format!("`meta`: {e}")))?;
        if let Some(v) = meta.get("api-version") {
            let s: String = serde_json::from_str(v.get())
                .map_err(|_| PypiError::BadApiVersion(brief(v.get())))?;
            super::ApiVersion::parse(&s)?;
        }
    }
    Ok(top)
}

/// Calls `keep(raw entry, name)` for every entry of a `projects` array whose normalised
/// name is not blocked; returns how many were.
fn each_project(
    raw: &serde_json::value::RawValue,
    blocked: &impl Fn(&str) -> bool,
    mut keep: impl FnMut(&str, &str),
) -> Result<usize, PypiError> {
    let items = json_util::array(raw).map_err(|e| PypiError::Shape(format!("`projects`: {e}")))?;
    let mut removed = 0;
    for item in items {
        #[derive(serde::Deserialize)]
        struct P<'s> {
            #[serde(borrow)]
            name: std::borrow::Cow<'s, str>,
        }
        let p: P = serde_json::from_str(item.get()).map_err(|e| {
            PypiError::Shape(format!("`projects` entry {}: {e}", brief(item.get())))
        })?;
        if blocked(&pep503_normalize(&p.name)) {
            removed += 1;
            continue;
        }
        keep(item.get(), &p.name);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(input: &[u8], chunk: usize, blocked: &[&str]) -> (Vec<u8>, RootFilter) {
        let mut f = RootFilter::new();
        let mut out = Vec::new();
        let is_blocked = |n: &str| blocked.contains(&n);
        for c in input.chunks(chunk.max(1)) {
            f.push(c, &mut out, is_blocked);
        }
        f.finish(&mut out, is_blocked);
        (out, f)
    }

    const PAGE: &str = "<!DOCTYPE html><html><body>\n<a href=\"0/\">0</a>\n<a href=\"foo-bar/\">Foo_Bar</a>\n<a href=\"/simple/requests/\">requests</a><br/>\n<a href=\"zz/\">zz</a>\n</body></html>";

    #[test]
    fn only_exact_plain_anchors_take_the_fast_path() {
        for (e, plain) in [
            ("<a href=\"/simple/foo/\">Foo</a>", Some(("foo", "Foo"))),
            ("<a href=\"foo\">foo</a>", Some(("foo", "foo"))),
            ("<a href=\"/simple/foo/\" data-x=\"1\">foo</a>", None),
            ("<a href=\"/simple/f%6Fo/\">foo</a>", None),
            ("<a href=\"/simple/foo/\">f&amp;o</a>", None),
            ("<a href=\"/simple/foo/\"> foo</a>", None),
            ("<a href=\"/simple/foo/\"><b>foo</b></a>", None),
            ("<a href=\"/simple/foo/\">foo</A>", None),
            ("<a href='/simple/foo/'>foo</a>", None),
            ("<a href=\"/\">foo</a>", None),
        ] {
            assert_eq!(plain_anchor(e.as_bytes()), plain, "{e}");
        }
        assert!(same_normal_form("Foo__Bar", "foo.bar"));
        assert!(!same_normal_form("foo", "foo2"));
    }

    #[test]
    fn links_to_the_upstream_root_become_relative() {
        let page = concat!(
            "<a href=\"https://up.example/repo/simple/foo/\">foo</a>\n",
            "<a href=\"/repo/simple/bar/\">bar</a>\n",
            "<a class=x HREF='https://up.example/repo/simple/Baz_Q/' data-y=\"1\">Baz_Q</a>\n",
            "<a data-href=\"https://up.example/repo/simple/x/\" href=https://up.example/repo/simple/qux/>qux</a>\n",
            "<a href=\"https://other.example/repo/simple/far/\">far</a>\n",
            "<a href=\"near/\">near</a>\n",
            "<a href=\"/simple/kept/\">kept</a>\n",
            "<a href=\"https://up.example/repo/simple/\">self</a>\n",
            "<a href=\"https://up.example/repo/simple/evil/\">evil</a>\n",
            "<a href=https://up.example/repo/simple/\"q/>q</a>\n",
            "<a href=\"https://up.example/repo/simple/a/b/\">b</a>\n",
            "<a href=\"https://up.example/repo/simple/?c\">c</a>\n",
        );
        let want = concat!(
            "<a href=\"foo/\">foo</a>\n",
            "<a href=\"bar/\">bar</a>\n",
            "<a class=x HREF='Baz_Q/' data-y=\"1\">Baz_Q</a>\n",
            "<a data-href=\"https://up.example/repo/simple/x/\" href=qux/>qux</a>\n",
            "<a href=\"https://other.example/repo/simple/far/\">far</a>\n",
            "<a href=\"near/\">near</a>\n",
            "<a href=\"/simple/kept/\">kept</a>\n",
            "<a href=\"https://up.example/repo/simple/\">self</a>\n",
            "<a href=https://up.example/repo/simple/\"q/>q</a>\n",
            "<a href=\"https://up.example/repo/simple/a/b/\">b</a>\n",
            "<a href=\"https://up.example/repo/simple/?c\">c</a>\n",
        );
        let prefixes = vec![
            "https://up.example/repo/simple/".to_string(),
            "/repo/simple/".to_string(),
            String::new(),
        ];
        for chunk in [1, 3, 7, 10_000] {
            let mut f = RootFilter::new().rewriting(prefixes.clone());
            let mut out = Vec::new();
            let blocked = |n: &str| n == "evil";
            for c in page.as_bytes().chunks(chunk) {
                f.push(c, &mut out, blocked);
            }
            f.finish(&mut out, blocked);
            assert_eq!(String::from_utf8(out).unwrap(), want, "chunk {chunk}");
            assert_eq!((f.rewritten(), f.removed()), (4, 1));
        }
        // Without prefixes nothing is rewritten.
        let (out, f) = run(page.as_bytes(), 5, &[]);
        assert_eq!(out, page.as_bytes());
        assert_eq!(f.rewritten(), 0);
        for (e, span) in [
            ("<a href=\"x\">", Some((9, 10))),
            ("<a  href = 'x'>", Some((12, 13))),
            ("<a href>", None),
            ("<a title=\"a>b\" href=x>", Some((20, 21))),
            ("<a title=\"unterminated>", None),
        ] {
            assert_eq!(href_span(e.as_bytes()), span, "{e}");
        }
    }

    #[test]
    fn removes_lines_of_blocked_projects() {
        for chunk in [1, 2, 3, 5, 7, 64, 10_000] {
            let (out, f) = run(PAGE.as_bytes(), chunk, &["foo-bar", "requests"]);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "<!DOCTYPE html><html><body>\n<a href=\"0/\">0</a>\n<a href=\"zz/\">zz</a>\n</body></html>",
                "chunk {chunk}"
            );
            assert_eq!(f.removed(), 2);
            let (out, f) = run(PAGE.as_bytes(), chunk, &[]);
            assert_eq!(out, PAGE.as_bytes());
            assert_eq!(f.removed(), 0);
        }
    }

    #[test]
    fn text_or_href_names_block() {
        // A link whose text and href disagree is removed when either is blocked.
        let page = "<a href=\"/simple/good/\">Evil.Pkg</a>\n<a href=\"/simple/evil-pkg/\">good</a>\n<a href='/simple/ok/'>ok</a>\n";
        let (out, f) = run(page.as_bytes(), 4, &["evil-pkg"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<a href='/simple/ok/'>ok</a>\n"
        );
        assert_eq!(f.removed(), 2);
    }

    #[test]
    fn several_links_per_line() {
        let page = "<a href=\"a/\">a</a><a href=\"b/\">b</a><a href=\"c/\">c</a>";
        let (out, _) = run(page.as_bytes(), 3, &["b"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<a href=\"a/\">a</a><a href=\"c/\">c</a>"
        );
    }

    /// Found by the `pypi_root` fuzz target: removing the inner link of `<a<a …>` must not
    /// splice the fragment before it and the text after it into a new link.
    #[test]
    fn removal_never_creates_a_link() {
        let input = b"<a href=\"/simple/safe/\">safe</a>\n<a<a href=\"/simple/evil/\">evil</a> href=\"/simple/evil/\">evil</a>\n";
        for chunk in [1, 3, 7, input.len()] {
            let (out, f) = run(input, chunk, &["evil"]);
            let text = String::from_utf8_lossy(&out);
            assert!(
                !text.contains("<a href=\"/simple/evil/\""),
                "chunk {chunk}: {text}"
            );
            assert!(
                text.contains("<a href=\"/simple/safe/\">safe</a>"),
                "{text}"
            );
            assert_eq!(f.removed(), 1);
            // Filtering the output again removes nothing more.
            let (again, g) = run(&out, chunk, &["evil"]);
            assert_eq!(g.removed(), 0);
            assert_eq!(again, out);
        }
    }

    #[test]
    fn pathological_elements_are_bounded_and_dropped() {
        let mut page = b"<p>x</p><a href=\"a/\">".to_vec();
        page.extend(std::iter::repeat_n(b'x', 3 * MAX_PENDING));
        page.extend_from_slice(b"</a>\n<a href=\"b/\">b</a>\n");
        let mut f = RootFilter::new();
        let mut out = Vec::new();
        for c in page.chunks(4096) {
            f.push(c, &mut out, |_| false);
            assert!(f.buf.len() <= MAX_PENDING + 4096, "held {}", f.buf.len());
        }
        f.finish(&mut out, |_| false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<p>x</p><a href=\"b/\">b</a>\n"
        );
        assert_eq!(f.dropped_malformed(), 1);

        // Unterminated at the end.
        let (out, f) = run(b"<a href=\"a/\">a</a>\n<a href=\"b/\">b", 2, &[]);
        assert_eq!(out, b"<a href=\"a/\">a</a>\n");
        assert_eq!(f.dropped_malformed(), 1);
        // Text with `<`: a `<` closed by `>` passes; one followed by another `<` first is a
        // malformed fragment and is dropped (it could splice into a link, see
        // `removal_never_creates_a_link`); a trailing one passes.
        let (out, f) = run(b"a < b > c", 1, &[]);
        assert_eq!(out, b"a < b > c");
        assert_eq!(f.dropped_malformed(), 0);
        let (out, f) = run(b"a < b <", 1, &[]);
        assert_eq!(out, b"a <");
        assert_eq!(f.dropped_malformed(), 1);
        // `<<a …>` is the same splice with a bare `<`.
        let (out, _) = run(
            b"<<a href=\"/simple/evil/\">evil</a>a href=\"/simple/evil/\">evil</a>",
            3,
            &["evil"],
        );
        assert!(
            !String::from_utf8_lossy(&out).contains("<a href"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn json_root() {
        let body = br#"{"meta": {"api-version": "1.0", "_x": 1}, "projects": [{"name": "Foo_Bar"}, {"name": "requests", "k": [1]}, {"name": "zz"}]}"#;
        let (out, removed) = filter_root_json(body, |n| n == "foo-bar").unwrap();
        assert_eq!(removed, 1);
        assert_eq!(
            out,
            r#"{"meta":{"api-version": "1.0", "_x": 1},"projects":[{"name": "requests", "k": [1]},{"name": "zz"}]}"#
        );
        assert!(
            filter_root_json(br#"{"meta":{"api-version":"2.0"},"projects":[]}"#, |_| {
                false
            })
            .is_err()
        );
        assert!(filter_root_json(br#"{"projects":[{"nom":"x"}]}"#, |_| false).is_err());
        assert!(filter_root_json(b"[", |_| false).is_err());
    }

    #[test]
    fn json_root_as_html() {
        let body = br#"{"meta": {"api-version": "1.1"}, "projects": [{"name": "Foo_Bar"}, {"name": "requests"}, {"name": "a<b&\"c"}, {"name": "x/y"}, {"name": ""}, {"name": "zope.Interface"}]}"#;
        let (out, removed) = root_json_to_html(body, |n| n == "foo-bar").unwrap();
        assert_eq!(removed, 1);
        assert!(out.starts_with("<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">"), "{out}");
        let links: Vec<&str> = out.lines().filter(|l| l.contains("<a ")).collect();
        assert_eq!(
            links,
            [
                r#"    <a href="requests/">requests</a>"#,
                r#"    <a href="zope-interface/">zope.Interface</a>"#,
            ]
        );
        // The HTML filter reads the names back (and can remove them in turn).
        let mut f = RootFilter::new();
        let mut again = Vec::new();
        f.push(out.as_bytes(), &mut again, |n: &str| n == "requests");
        f.finish(&mut again, |n: &str| n == "requests");
        assert_eq!(f.removed(), 1);
        assert!(!String::from_utf8_lossy(&again).contains("requests"));
        assert!(
            root_json_to_html(br#"{"meta":{"api-version":"2.0"},"projects":[]}"#, |_| {
                false
            })
            .is_err()
        );
        assert!(root_json_to_html(br#"{"projects":[{"nom":"x"}]}"#, |_| false).is_err());
        let (empty, _) =
            root_json_to_html(br#"{"meta":{"api-version":"1.0"}}"#, |_| false).unwrap();
        assert!(!empty.contains("<a "), "{empty}");
    }

    proptest! {
        #[test]
        fn plain_anchor_fast_path_agrees_with_the_general_one(
            prefix in prop::sample::select(vec!["", "/simple/", "../", "/a/b/"]),
            href in "[A-Za-z0-9._-]{1,12}",
            slash in any::<bool>(),
            text in "[A-Za-z0-9._-]{1,12}",
            same in any::<bool>(),
            blocked_pick in 0usize..3,
        ) {
            let text = if same { href.to_uppercase() } else { text };
            let element = format!(
                "<a href=\"{prefix}{href}{}\">{text}</a>",
                if slash { "/" } else { "" }
            );
            prop_assert!(plain_anchor(element.as_bytes()).is_some(), "{}", element);
            let candidates = [
                pep503_normalize(&href).into_owned(),
                pep503_normalize(&text).into_owned(),
                "unrelated".to_string(),
            ];
            let target = &candidates[blocked_pick];
            let is_blocked = |n: &str| n == target;
            prop_assert_eq!(
                element_blocked(element.as_bytes(), &is_blocked),
                element_blocked_general(element.as_bytes(), &is_blocked),
                "{}", element
            );
        }

        #[test]
        fn chunking_never_changes_output(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "<a href=\"x/\">x</a>", "<a href=\"y/\">Y</a>", "\n", "<br/>", "<", "<a", "</a>",
                    "<a href='/simple/x/'>", "text", ">", "\r\n", "<A HREF=x>x</A>",
                ]),
                0..40,
            ),
            chunk in 1usize..20,
        ) {
            let input: String = parts.concat();
            let (whole, _) = run(input.as_bytes(), usize::MAX, &["x"]);
            let (chunked, _) = run(input.as_bytes(), chunk, &["x"]);
            prop_assert_eq!(whole, chunked);
            let (unfiltered, _) = run(input.as_bytes(), chunk, &[]);
            // Without blocking, only unterminated elements can be lost.
            prop_assert!(unfiltered.len() <= input.len());
        }
    }
}
