//! A resumable, validating JSON scanner for packuments: it reads a document while it arrives
//! (fed the bytes received so far after every chunk) and learns the structure
//! [`super::Packument`] is built from (top-level members, `versions` split into versions and
//! each version into its members), so that once the last byte is in only the small objects
//! (`time`, `dist-tags`, `repository`) are left to read.
//!
//! The scanner accepts exactly the JSON `serde_json` accepts (grammar, string escapes, no
//! control characters in strings, nothing but whitespace after the document); UTF-8 is checked
//! when the scan is used ([`super::Packument::parse_scanned`]). Anything it does not take
//! (invalid JSON, a top level that is not an object, `versions` not an object of objects, a
//! document larger than 4 GiB) only means the scan is not used: the reference reader
//! ([`super::Packument::parse`]) then reads the document and gives the exact result or error.
//!
//! Memory: a few machine words per member of the top level, of `versions` and of each version
//! (the same members the reference reader lists), none for deeper values.

use super::raw::{CowStr, Entries, TopVal};
use std::borrow::Cow;

/// A byte range of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// One member of a recorded object: its key (with the quotes) and its value's text.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: Span,
    /// The key has a backslash (decoded when used).
    escaped: bool,
    value: Span,
}

/// One member of `versions`: key, object text and the range of its members in
/// [`PackumentScanner::members`].
#[derive(Debug, Clone, Copy)]
struct VersionRec {
    key: Span,
    escaped: bool,
    value: Span,
    members: (u32, u32),
}

/// What is recorded about the members of an open object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    /// Nothing (validated only).
    None,
    /// The top level.
    Top,
    /// `versions`.
    Versions,
    /// One version object.
    Version,
}

/// An open object or array.
#[derive(Debug, Clone, Copy)]
struct Frame {
    obj: bool,
    rec: Rec,
    /// Offset of the opening bracket.
    start: u32,
    /// For a version object: index of its first member in `members`.
    first: u32,
    /// The key of the member being read (recorded objects only).
    key: Span,
    escaped: bool,
    /// That key is `versions` (top level only).
    key_is_versions: bool,
}

/// Where a number is in JSON's number grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

/// What the scanner expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// A value (the document, after `:` or after `,` in an array).
    Value,
    /// A value or `]` (after `[`).
    ValueOrEnd,
    /// A key or `}` (after `{`).
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    Colon,
    CommaOrEnd,
    /// After the document: whitespace only.
    Done,
    /// Inside a string (a key or a value) that started at `tok`.
    Str {
        key: bool,
    },
    /// Inside a number that started at `tok`.
    Num(Num),
    /// Inside `true`, `false` or `null` (`LITERALS[word]`): `at` bytes matched.
    Lit {
        word: u8,
        at: u8,
    },
    /// The scan gave up: the reference reader will read the document.
    Failed,
}

/// Reads a packument while it arrives: a resumable, validating JSON scanner that accepts exactly
/// what `serde_json` accepts and learns the structure [`super::Packument::parse_scanned`] needs
/// (see the `npm` module docs).
#[derive(Debug)]
pub struct PackumentScanner {
    /// Next byte to read.
    pos: usize,
    st: St,
    /// Start of the token being read (string, number or literal).
    tok: usize,
    /// The string being read has a backslash.
    escaped: bool,
    stack: Vec<Frame>,
    top: Vec<Member>,
    /// Index in `top` of the `versions` member that was split.
    versions_at: Option<usize>,
    versions: Vec<VersionRec>,
    members: Vec<Member>,
}

/// The structure of a whole document, learnt by [`PackumentScanner`]; used by
/// [`super::Packument::parse_scanned`] with the same bytes.
#[derive(Debug)]
pub struct PackumentScan {
    len: usize,
    top: Vec<Member>,
    versions_at: Option<usize>,
    versions: Vec<VersionRec>,
    members: Vec<Member>,
}

/// Not taken by the scanner (the reference reader decides).
#[derive(Debug, Clone, Copy)]
pub(super) struct Refused;

type Step = Result<(), Refused>;

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first `"`, `\` or control character (below 0x20) at or after `i`, else
/// `b.len()`. Eight bytes at a time: the lowest flagged byte of each word is exact. (Most
/// strings of a packument are short: wider steps measured slower.)
#[inline(always)]
pub(super) fn string_special(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i..i + 8) {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let q = w ^ (LO * u64::from(b'"'));
        let s = w ^ (LO * u64::from(b'\\'));
        let m = ((q.wrapping_sub(LO) & !q)
            | (s.wrapping_sub(LO) & !s)
            | (w.wrapping_sub(LO * 0x20) & !w))
            & HI;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if matches!(c, b'"' | b'\\' | 0..=0x1f) {
            return i;
        }
        i += 1;
    }
    i
}

/// The end (past the closing quote) of the string whose content starts at `i`, checking its
/// escapes; `Ok(Err(at))`: the input ends first, read again from `at` when more arrives.
#[inline(always)]
pub(super) fn string_end(
    b: &[u8],
    mut i: usize,
    escaped: &mut bool,
) -> Result<Result<usize, usize>, Refused> {
    loop {
        i = string_special(b, i);
        match b.get(i) {
            None => return Ok(Err(i)),
            Some(b'"') => return Ok(Ok(i + 1)),
            Some(b'\\') => {
                let Some(&e) = b.get(i + 1) else {
                    return Ok(Err(i));
                };
                match e {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let Some(hex) = b.get(i + 2..i + 6) else {
                            return Ok(Err(i));
                        };
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Refused);
                        }
                        i += 6;
                    }
                    _ => return Err(Refused),
                }
                *escaped = true;
            }
            // A control character.
            Some(_) => return Err(Refused),
        }
    }
}

#[inline]
pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

impl Default for PackumentScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl PackumentScanner {
    pub fn new() -> PackumentScanner {
        PackumentScanner {
            pos: 0,
            st: St::Value,
            tok: 0,
            escaped: false,
            stack: Vec::with_capacity(16),
            top: Vec::with_capacity(16),
            versions_at: None,
            versions: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Read what arrived: `received` is the whole body so far (it only grows; bytes already
    /// fed never change). Cheap to call after every chunk.
    pub fn feed(&mut self, received: &[u8]) {
        if self.st == St::Failed {
            return;
        }
        if u32::try_from(received.len()).is_err() || self.run(received, false).is_err() {
            self.fail();
        }
    }

    /// The scan gave up (the document will be read the reference way).
    pub fn failed(&self) -> bool {
        self.st == St::Failed
    }

    fn fail(&mut self) {
        self.st = St::Failed;
        // Nothing recorded is used any more.
        self.stack = Vec::new();
        self.top = Vec::new();
        self.versions = Vec::new();
        self.members = Vec::new();
    }

    /// The structure of the complete document `body` (the bytes fed so far, then the rest:
    /// the caller passes the same body), or `None` when the scanner did not take it (the
    /// reference reader then decides).
    pub fn finish(mut self, body: &[u8]) -> Option<PackumentScan> {
        if self.st == St::Failed
            || u32::try_from(body.len()).is_err()
            || self.run(body, true).is_err()
            || self.st != St::Done
        {
            return None;
        }
        Some(self.into_scan(body.len()))
    }

    fn into_scan(self, len: usize) -> PackumentScan {
        PackumentScan {
            len,
            top: self.top,
            versions_at: self.versions_at,
            versions: self.versions,
            members: self.members,
        }
    }

    /// [`PackumentScanner::new`] + [`PackumentScanner::finish`] of a whole document.
    pub fn scan(body: &[u8]) -> Option<PackumentScan> {
        PackumentScanner::new().finish(body)
    }

    /// The span of the bytes `start..end`.
    fn span(&self, start: usize, end: usize) -> Result<Span, Refused> {
        Ok(Span {
            start: u32::try_from(start).map_err(|_| Refused)?,
            end: u32::try_from(end).map_err(|_| Refused)?,
        })
    }

    /// Read `b` from `self.pos` on. The state lives in locals while reading (written back
    /// when the input runs out), and the members of an object are read in one loop as long
    /// as their values are strings (most of a packument), which keeps the loop in registers
    /// and its branches predictable.
    fn run(&mut self, b: &[u8], eof: bool) -> Step {
        let mut i = self.pos;
        let mut st = self.st;
        // Out of input in the middle of a token: wait for more, unless this is the end.
        macro_rules! wait {
            () => {{
                self.pos = i;
                self.st = st;
                return if eof { Err(Refused) } else { Ok(()) };
            }};
        }
        macro_rules! skip_ws {
            () => {
                while let Some(&c) = b.get(i) {
                    if !is_ws(c) {
                        break;
                    }
                    i += 1;
                }
            };
        }
        'main: loop {
            match st {
                St::Str { key } => {
                    match string_end(b, i, &mut self.escaped)? {
                        Err(at) => {
                            i = at;
                            wait!()
                        }
                        Ok(end) => i = end,
                    }
                    st = if key {
                        self.key_done(b, self.tok, i)?;
                        St::Colon
                    } else {
                        self.value_done(self.span(self.tok, i)?, None)?
                    };
                }
                St::Num(mut n) => {
                    loop {
                        let Some(&c) = b.get(i) else {
                            if eof {
                                break;
                            }
                            st = St::Num(n);
                            wait!()
                        };
                        n = match (n, c) {
                            (Num::Minus, b'0') => Num::Zero,
                            (Num::Minus, b'1'..=b'9') => Num::Int,
                            (Num::Zero, b'0'..=b'9') => return Err(Refused),
                            (Num::Int, b'0'..=b'9') => Num::Int,
                            (Num::Zero | Num::Int, b'.') => Num::Dot,
                            (Num::Dot | Num::Frac, b'0'..=b'9') => Num::Frac,
                            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
                            (Num::Exp, b'+' | b'-') => Num::ExpSign,
                            (Num::Exp | Num::ExpSign | Num::ExpDigits, b'0'..=b'9') => {
                                Num::ExpDigits
                            }
                            (Num::Zero | Num::Int | Num::Frac | Num::ExpDigits, _) => break,
                            (Num::Minus | Num::Dot | Num::Exp | Num::ExpSign, _) => {
                                return Err(Refused);
                            }
                        };
                        i += 1;
                    }
                    if !matches!(n, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits) {
                        return Err(Refused);
                    }
                    let span = self.span(self.tok, i)?;
                    st = self.value_done(span, None)?;
                }
                St::Lit { word, mut at } => {
                    let text = LITERALS.get(usize::from(word)).ok_or(Refused)?;
                    while let Some(&want) = text.get(usize::from(at)) {
                        let Some(&c) = b.get(i) else {
                            st = St::Lit { word, at };
                            wait!()
                        };
                        if c != want {
                            return Err(Refused);
                        }
                        at += 1;
                        i += 1;
                    }
                    let span = self.span(self.tok, i)?;
                    st = self.value_done(span, None)?;
                }
                St::Failed => return Err(Refused),
                St::Done => {
                    skip_ws!();
                    if i < b.len() {
                        return Err(Refused);
                    }
                    self.pos = i;
                    self.st = st;
                    return Ok(());
                }
                St::Colon => {
                    skip_ws!();
                    let Some(&c) = b.get(i) else { wait!() };
                    if c != b':' {
                        return Err(Refused);
                    }
                    i += 1;
                    st = St::Value;
                }
                St::CommaOrEnd => {
                    skip_ws!();
                    let Some(&c) = b.get(i) else { wait!() };
                    let obj = self.stack.last().ok_or(Refused)?.obj;
                    i += 1;
                    st = match c {
                        b',' if obj => St::Key,
                        b',' => St::Value,
                        b'}' if obj => self.close(i)?,
                        b']' if !obj => self.close(i)?,
                        _ => return Err(Refused),
                    };
                }
                St::Value | St::ValueOrEnd => {
                    skip_ws!();
                    let Some(&c) = b.get(i) else { wait!() };
                    if c == b']' && st == St::ValueOrEnd {
                        i += 1;
                        st = self.close(i)?;
                        continue;
                    }
                    st = self.begin_value(&mut i, c)?;
                }
                St::Key | St::KeyOrEnd => loop {
                    // One member per round while values are strings; the innermost object
                    // records nothing in most rounds, which skips the bookkeeping calls.
                    let plain = self.stack.last().is_some_and(|f| f.rec == Rec::None);
                    skip_ws!();
                    let Some(&c) = b.get(i) else { wait!() };
                    if c != b'"' {
                        if c == b'}' && st == St::KeyOrEnd {
                            i += 1;
                            st = self.close(i)?;
                            continue 'main;
                        }
                        return Err(Refused);
                    }
                    self.tok = i;
                    self.escaped = false;
                    i += 1;
                    match string_end(b, i, &mut self.escaped)? {
                        Err(at) => {
                            i = at;
                            st = St::Str { key: true };
                            wait!()
                        }
                        Ok(end) => i = end,
                    }
                    if !plain {
                        self.key_done(b, self.tok, i)?;
                    }
                    skip_ws!();
                    let Some(&c) = b.get(i) else {
                        st = St::Colon;
                        wait!()
                    };
                    if c != b':' {
                        return Err(Refused);
                    }
                    i += 1;
                    skip_ws!();
                    let Some(&c) = b.get(i) else {
                        st = St::Value;
                        wait!()
                    };
                    if c != b'"' {
                        st = self.begin_value(&mut i, c)?;
                        if st == St::KeyOrEnd {
                            // An object value: its members, in this same loop.
                            continue;
                        }
                        continue 'main;
                    }
                    if !plain {
                        self.scalar_allowed()?;
                    }
                    self.tok = i;
                    self.escaped = false;
                    i += 1;
                    match string_end(b, i, &mut self.escaped)? {
                        Err(at) => {
                            i = at;
                            st = St::Str { key: false };
                            wait!()
                        }
                        Ok(end) => i = end,
                    }
                    st = if plain {
                        St::CommaOrEnd
                    } else {
                        self.value_done(self.span(self.tok, i)?, None)?
                    };
                    skip_ws!();
                    let Some(&c) = b.get(i) else { wait!() };
                    i += 1;
                    match c {
                        b',' => st = St::Key,
                        b'}' => {
                            st = self.close(i)?;
                            continue 'main;
                        }
                        _ => return Err(Refused),
                    }
                },
            }
        }
    }

    /// A value starts with `c` at `*i`: open it, or start reading a scalar (`*i` then points
    /// past `c`). The state that follows.
    #[inline]
    fn begin_value(&mut self, i: &mut usize, c: u8) -> Result<St, Refused> {
        if self.stack.is_empty() && c != b'{' {
            return Err(Refused);
        }
        self.tok = *i;
        *i += 1;
        Ok(match c {
            b'{' => {
                self.open(true, self.tok)?;
                St::KeyOrEnd
            }
            b'[' => {
                self.open(false, self.tok)?;
                St::ValueOrEnd
            }
            _ => {
                self.scalar_allowed()?;
                match c {
                    b'"' => {
                        self.escaped = false;
                        St::Str { key: false }
                    }
                    b'-' => St::Num(Num::Minus),
                    b'0' => St::Num(Num::Zero),
                    b'1'..=b'9' => St::Num(Num::Int),
                    b't' => St::Lit { word: 0, at: 1 },
                    b'f' => St::Lit { word: 1, at: 1 },
                    b'n' => St::Lit { word: 2, at: 1 },
                    _ => return Err(Refused),
                }
            }
        })
    }

    /// A scalar value may start here: not as `versions` nor as a version (the reference
    /// reader refuses those; it gives the error).
    fn scalar_allowed(&self) -> Step {
        match self.stack.last() {
            Some(f) if f.rec == Rec::Top && f.key_is_versions => Err(Refused),
            Some(f) if f.rec == Rec::Versions => Err(Refused),
            _ => Ok(()),
        }
    }

    /// An object or array opens at input byte `at`.
    fn open(&mut self, obj: bool, at: usize) -> Step {
        let rec = match self.stack.last() {
            None => Rec::Top,
            Some(p) => match p.rec {
                Rec::Top if p.key_is_versions => {
                    // A second `versions` (a duplicate key: refused by the reference reader)
                    // or `versions` not an object.
                    if !obj || self.versions_at.is_some() {
                        return Err(Refused);
                    }
                    Rec::Versions
                }
                Rec::Versions if obj => Rec::Version,
                Rec::Versions => return Err(Refused),
                _ => Rec::None,
            },
        };
        let first = u32::try_from(self.members.len()).map_err(|_| Refused)?;
        let start = u32::try_from(at).map_err(|_| Refused)?;
        self.stack.push(Frame {
            obj,
            rec,
            start,
            first,
            key: Span { start: 0, end: 0 },
            escaped: false,
            key_is_versions: false,
        });
        Ok(())
    }

    /// The innermost object or array closes before input byte `end`.
    fn close(&mut self, end: usize) -> Result<St, Refused> {
        let f = self.stack.pop().ok_or(Refused)?;
        let span = Span {
            start: f.start,
            end: u32::try_from(end).map_err(|_| Refused)?,
        };
        self.value_done(span, Some(f))
    }

    /// A key of the innermost object is complete: input bytes `start..end`.
    #[inline]
    fn key_done(&mut self, b: &[u8], start: usize, end: usize) -> Step {
        let escaped = self.escaped;
        let span = self.span(start, end)?;
        let Some(f) = self.stack.last_mut() else {
            return Err(Refused);
        };
        if f.rec == Rec::None {
            return Ok(());
        }
        f.key = span;
        f.escaped = escaped;
        if f.rec == Rec::Top {
            let text = b.get(start..end).ok_or(Refused)?;
            f.key_is_versions = if escaped {
                let text = std::str::from_utf8(text).map_err(|_| Refused)?;
                let CowStr(k) = serde_json::from_str(text).map_err(|_| Refused)?;
                k == "versions"
            } else {
                text == b"\"versions\""
            };
        }
        Ok(())
    }

    /// A value is complete (`child`: the object or array it was); what comes next.
    #[inline]
    fn value_done(&mut self, span: Span, child: Option<Frame>) -> Result<St, Refused> {
        let Some(p) = self.stack.last() else {
            return Ok(St::Done);
        };
        let member = Member {
            key: p.key,
            escaped: p.escaped,
            value: span,
        };
        match p.rec {
            Rec::None => {}
            Rec::Top => {
                if child.is_some_and(|c| c.rec == Rec::Versions) {
                    self.versions_at = Some(self.top.len());
                }
                self.top.push(member);
            }
            Rec::Versions => {
                let c = child.ok_or(Refused)?;
                let end = u32::try_from(self.members.len()).map_err(|_| Refused)?;
                self.versions.push(VersionRec {
                    key: member.key,
                    escaped: member.escaped,
                    value: span,
                    members: (c.first, end),
                });
            }
            Rec::Version => self.members.push(member),
        }
        Ok(St::CommaOrEnd)
    }
}

fn text(src: &str, s: Span) -> Option<&str> {
    src.get(s.start as usize..s.end as usize)
}

/// A recorded key, decoded as `serde_json` decodes it (`None`: it does not decode, e.g. a
/// lone surrogate escape).
fn key<'a>(src: &'a str, s: Span, escaped: bool) -> Option<Cow<'a, str>> {
    let t = text(src, s)?;
    if escaped {
        serde_json::from_str::<CowStr<'a>>(t).ok().map(|c| c.0)
    } else {
        t.get(1..t.len().checked_sub(1)?).map(Cow::Borrowed)
    }
}

impl PackumentScan {
    /// The top level as the reference reader's one-pass read gives it (`TopMap`), from the
    /// same document `src`; `None` when this scan is not of `src` or a recorded key does not
    /// decode (the reference reader then decides).
    pub(crate) fn top_map<'a>(&self, src: &'a str) -> Option<Vec<(Cow<'a, str>, TopVal<'a>)>> {
        if src.len() != self.len {
            return None;
        }
        let mut out = Vec::with_capacity(self.top.len());
        for (i, m) in self.top.iter().enumerate() {
            let k = key(src, m.key, m.escaped)?;
            let v = if self.versions_at == Some(i) {
                let mut versions = Vec::with_capacity(self.versions.len());
                for v in &self.versions {
                    let members = self
                        .members
                        .get(v.members.0 as usize..v.members.1 as usize)?;
                    let mut entries: Entries<'a> = Vec::with_capacity(members.len());
                    for m in members {
                        entries.push((key(src, m.key, m.escaped)?, text(src, m.value)?));
                    }
                    versions.push((
                        key(src, v.key, v.escaped)?,
                        Some(text(src, v.value)?),
                        entries,
                    ));
                }
                TopVal::Versions(versions)
            } else {
                TopVal::Raw(text(src, m.value)?)
            };
            out.push((k, v));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests;
