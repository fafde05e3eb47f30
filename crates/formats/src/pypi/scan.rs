//! The fast path for PEP 691 JSON project pages: a hand-written, single-pass, validating
//! scanner that records byte spans instead of building values, and can run while the body
//! arrives.
//!
//! # What it computes
//!
//! [`JsonPageScanner`] reads the body and produces a [`JsonIndex`]: where each top-level
//! member, each file object (and its `url`, `filename`, `hashes`, … values) and each
//! `versions` entry lie in the body, the file versions (spans of the filenames) and the
//! project facts. The index owns no borrow: it is cached next to the body (`bytes::Bytes`)
//! and rendered against it ([`JsonIndex::render`]). JSON output is spliced from the body;
//! HTML output reads the kept files' fields from their spans.
//!
//! The results are by definition those of the full path in [`super::page`]
//! (`parse_project_page` + `ProjectPage::facts` + `ProjectPage::render` with
//! `keep_file = |f| keep_version(f.version or "")`); the differential tests and the
//! `pypi_scan` fuzz target pin that. The scanner handles the common shape and answers "use
//! the full parser" ([`JsonPageScanner::finish`] returns `None`) for everything else, so the
//! full parser stays the one place that decides on odd pages and words their errors.
//!
//! # The parser
//!
//! A recursive-descent reader over bytes, with a fixed outer shape and an explicit stack
//! (no recursion) for the values it only checks:
//!
//! ```text
//! page    = ws "{" ws [ member *( ws "," ws member ) ] ws "}" ws
//! member  = key ws ":" ws ( files | versions | meta | name | value )
//! files   = "[" ws [ object *( ws "," ws object ) ] ws "]"      ; one unit per object
//! versions= "[" ws [ string *( ws "," ws string ) ] ws "]"      ; one unit per entry
//! ```
//!
//! * Every byte passed over is validated as RFC 8259 JSON the way `serde_json` does: strings
//!   (no raw control characters, escapes `\" \\ \/ \b \f \n \r \t \uXXXX`, lone surrogates
//!   allowed in values that are never decoded, as in `serde_json`'s raw values), numbers
//!   (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`), `true`/`false`/`null`, nesting to any
//!   depth, commas, and nothing after the closing `}` but whitespace. UTF-8 is checked per
//!   unit as it completes (a top-level member, a file object, a `versions` entry): outside
//!   those, the grammar admits only ASCII, so the whole body is covered once.
//! * Strings: the first 72 bytes are tested 8 at a time (SWAR) for `"`, `\` and control
//!   bytes; longer ones continue with `memchr2` for `"` and `\` and a check of the run
//!   before the hit. A `url` value is found with `memchr2` alone: a control byte in it
//!   fails the URL check. Keys the scanner interprets are matched by prefix (`"filename"`
//!   and its closing quote), other keys scanned as strings.
//! * Members it interprets must have the plain form (see the list of fallbacks): then the
//!   value is the bytes between the quotes, and equal keys are equal bytes, so duplicate
//!   detection compares bytes (a bit set for known file keys, a list or set otherwise).
//!
//! # Incremental scanning
//!
//! [`JsonPageScanner::advance`] gets the whole body received so far. The scanner keeps only
//! an offset and a stage (before the page, between top-level members, inside `files` or
//! `versions`) and consumes whole *units*: a top-level member (for `files` and `versions`
//! only up to their `[`), one array element with the separator after it, or the closing
//! bracket. A unit that runs into the end of the received data is abandoned and retried
//! from its start, but only once the data has grown by at least as much as that attempt
//! read: each retry reads at least twice as much as the one before, so all attempts on a
//! unit cost at most twice its size and the total work stays linear in the body.
//! Per-file work (filename and URL checks, version derivation, PEP 440 keys of new versions,
//! upload times) happens as the file's unit completes, so `finish` only assembles the facts.
//! A unit commits nothing until it is complete (the few fields it sets earlier are set to the
//! same values again on a retry).
//!
//! # Fallbacks (`finish` returns `None`)
//!
//! * invalid JSON or UTF-8, trailing bytes, a body of 4 GiB or more, an invalid page URL;
//! * a key with a backslash escape in the top-level object, `meta` or a file object;
//!   duplicate keys there (the full parser refuses them);
//! * `meta` not an object, `meta.api-version` not a plain string or not a `1.x` version
//!   ([`ApiVersion::parse`]); `name` not a plain string;
//! * no `files`, `files` or `versions` not an array, a `files` entry that is not an object, a
//!   `versions` entry that is not a plain string;
//! * in a file object: no `filename` or `url`; `filename`, `url`, `requires-python`,
//!   `upload-time`, a string `yanked` not plain strings (escapes, other types); a filename
//!   the full parser refuses (`check_filename`); a URL that is not an absolute plain
//!   `http(s)` URL as `plain_absolute` defines it (relative URLs, other schemes, anything
//!   the `url` crate would rewrite) or that has a fragment; `hashes` not `null` or an object
//!   of plain strings; the `core-metadata` in effect (else `dist-info-metadata`) not `null`,
//!   a boolean or an object of plain strings; `gpg-sig` not `null` or a boolean; `size` not
//!   `null` or a plain non-negative integer that fits 64 bits; `yanked` of another type.
//!
//! "Plain" = a JSON string without backslash escapes. The recorded public pages have none of
//! these, and the fixture tests assert that they take the fast path.

use super::PypiError;
use super::facts::{ProjectFacts, version_key};
use super::filename::parse_filename_normalized;
use super::json_util::{has_byte, json_escaped, json_escaped_word, push_json_str};
use super::negotiate::SimpleFormat;
use super::page::{
    AnchorView, ApiVersion, RenderedPage, check_filename, lower_keys, plain_absolute, push_anchor,
    push_html_head, push_html_tail,
};
use super::time::UploadTime;
use crate::ecosystem::pep503_normalize;
use memchr::memchr2;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A byte range of the body (`start == NONE`: absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };

    /// Offsets are below `u32::MAX`: bodies of 4 GiB or more fall back.
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    fn is_some(self) -> bool {
        self.start != u32::MAX
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The text of a present span (`None` when absent or not in `text`).
    fn get(self, text: &str) -> Option<&str> {
        if self.is_some() {
            text.get(self.range())
        } else {
            None
        }
    }

    fn bytes(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or(&[])
    }
}

/// Why a unit stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The received data ends inside the unit.
    More,
    /// Invalid, or a shape the fast path leaves to the full parser.
    Bad,
}

type Scan<T> = Result<T, Stop>;

/// No version (the filename gives none).
const NO_VERSION: u32 = u32::MAX;

// `FileRec::flags`.
const YANKED: u8 = 1;
const GPG_SIG: u8 = 2;
const GPG_TRUE: u8 = 4;
const METADATA: u8 = 8;
const SIZE: u8 = 16;

/// One file object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileRec {
    /// The object, `{` to `}`.
    obj: Span,
    /// The `url` value with its quotes (the content is the resolved URL).
    url: Span,
    /// The `filename` content.
    filename: Span,
    /// Index into [`JsonIndex::spellings`], or [`NO_VERSION`].
    version: u32,
    requires_python: Span,
    upload_time: Span,
    /// `upload_time` parsed (`UploadTime::instant`), when valid.
    uploaded: Option<(i64, u32)>,
    /// The yank reason (content), when `yanked` is a string.
    yank_reason: Span,
    /// The `hashes` object, when not `null`.
    hashes: Span,
    /// The metadata hashes object in effect, when it is an object.
    metadata: Span,
    size: u64,
    flags: u8,
}

/// A distinct version spelling (from a filename or `versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spelling {
    span: Span,
    /// Index into the distinct PEP 440 keys.
    key: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    Files,
    Versions,
    Other,
}

/// A top-level member.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The key's content (no escapes).
    key: Span,
    /// The raw value (for `files` and `versions` only where it starts).
    value: Span,
    kind: MemberKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the opening `{`.
    Start,
    /// At a top-level member, after `{` (`first`) or `,`.
    Member { first: bool },
    /// At an element of `files` or `versions`, after `[` (`first`) or `,`.
    Array { files: bool, first: bool },
    /// After the closing `}`.
    Done,
    /// The page needs the full parser.
    Fallback,
}

/// Incremental scanner for a PEP 691 JSON project page (see the module doc).
#[derive(Debug)]
pub struct JsonPageScanner {
    project: String,
    /// `project` as `parse_filename` normalises it (again) for the full path.
    filename_project: String,
    stage: Stage,
    /// Everything before this offset is scanned.
    pos: usize,
    /// Do not try again before the data is this long.
    retry_at: usize,
    top: Vec<Member>,
    top_keys: HashSet<Vec<u8>>,
    api_version: ApiVersion,
    name: Span,
    files: Vec<FileRec>,
    /// `versions` entries: the raw string and its spelling.
    versions: Vec<(Span, u32)>,
    spellings: Vec<Spelling>,
    spelling_ids: HashMap<String, u32>,
    /// The spelling [`JsonPageScanner::intern`] returned last.
    last_spelling: u32,
    /// PEP 440 keys, by id.
    keys: Vec<String>,
    key_ids: HashMap<String, u32>,
    /// Reused by [`Cursor::skip_value`].
    stack: Vec<u8>,
    /// Bytes read by attempts that ran out of data (the linear-work bound is tested on it).
    retried: u64,
}

/// What [`JsonPageScanner::finish`] found: spans into the body and a few facts. Owns no
/// borrow of the body; render it against the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonIndex {
    project: String,
    body_len: usize,
    top: Vec<Member>,
    api_version: ApiVersion,
    name: Span,
    files: Vec<FileRec>,
    /// `Some` when the page has a `versions` member.
    versions: Option<Vec<(Span, u32)>>,
    spellings: Vec<Spelling>,
    key_count: usize,
    facts: ProjectFacts,
}

impl JsonPageScanner {
    /// A scanner for `project`'s page fetched from `page_url` (the arguments of
    /// `parse_project_page`).
    pub fn new(project: &str, page_url: &str) -> JsonPageScanner {
        let stage = if url::Url::parse(page_url).is_ok() {
            Stage::Start
        } else {
            Stage::Fallback
        };
        JsonPageScanner {
            filename_project: pep503_normalize(&pep503_normalize(project)).into_owned(),
            project: pep503_normalize(project).into_owned(),
            stage,
            pos: 0,
            retry_at: 0,
            top: Vec::new(),
            top_keys: HashSet::new(),
            api_version: ApiVersion::IMPLICIT,
            name: Span::NONE,
            files: Vec::new(),
            versions: Vec::new(),
            spellings: Vec::new(),
            spelling_ids: HashMap::new(),
            last_spelling: NO_VERSION,
            keys: Vec::new(),
            key_ids: HashMap::new(),
            stack: Vec::new(),
            retried: 0,
        }
    }

    /// Scan as far as `received` (the whole body received so far; it only grows between
    /// calls and bytes already passed never change) allows. Total work over all calls is
    /// linear in the body length.
    pub fn advance(&mut self, received: &[u8]) {
        if received.len() < self.retry_at {
            return;
        }
        self.run(received, false);
    }

    /// The index of the complete body (the same bytes `advance` saw, now complete), or
    /// `None` when the page needs the full parser: then `parse_project_page` gives the
    /// result or the precise error. Never `Some` for a body the full parser refuses.
    pub fn finish(mut self, body: &[u8]) -> Option<JsonIndex> {
        self.run(body, true);
        if self.stage != Stage::Done || !self.top.iter().any(|m| m.kind == MemberKind::Files) {
            return None;
        }
        // Every unit was checked for UTF-8 as it completed.
        let str_at = |s: Span| std::str::from_utf8(s.bytes(body)).ok();
        let has_versions = self.top.iter().any(|m| m.kind == MemberKind::Versions);
        // Facts, in the full path's order: listed versions first, then the files'.
        let mut facts = ProjectFacts::default();
        let mut slots: Vec<Option<usize>> = vec![None; self.spellings.len()];
        let mut slot_of = |facts: &mut ProjectFacts, id: u32| -> Option<usize> {
            let i = id as usize;
            if let Some(Some(s)) = slots.get(i) {
                return Some(*s);
            }
            let sp = self.spellings.get(i)?;
            let s = facts.slot_keyed(str_at(sp.span)?, self.keys.get(sp.key as usize)?);
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(s);
            }
            Some(s)
        };
        for &(_, id) in &self.versions {
            slot_of(&mut facts, id)?;
        }
        for f in &self.files {
            let slot = match f.version {
                NO_VERSION => None,
                id => Some(slot_of(&mut facts, id)?),
            };
            let upload = f.uploaded.map(|t| (t, f.upload_time));
            facts.add_file_instant(slot, f.flags & YANKED != 0, upload, |s| {
                str_at(s).map(str::to_string)
            });
        }
        Some(JsonIndex {
            project: self.project,
            body_len: body.len(),
            top: self.top,
            api_version: self.api_version,
            name: self.name,
            files: self.files,
            versions: has_versions.then_some(self.versions),
            spellings: self.spellings,
            key_count: self.keys.len(),
            facts,
        })
    }

    /// Bytes read so far by attempts that ran out of data and are retried.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn retried_bytes(&self) -> u64 {
        self.retried
    }

    fn run(&mut self, buf: &[u8], complete: bool) {
        if buf.len() >= u32::MAX as usize || buf.len() < self.pos {
            self.stage = Stage::Fallback;
        }
        let mut cur = Cursor {
            buf,
            pos: self.pos,
            stack: std::mem::take(&mut self.stack),
        };
        loop {
            let start = self.pos;
            cur.pos = start;
            cur.stack.clear();
            match self.step(&mut cur) {
                Ok(true) => self.pos = cur.pos,
                Ok(false) => break,
                Err(Stop::More) if !complete => {
                    self.retried += (buf.len() - start) as u64;
                    self.retry_at = buf.len() + (buf.len() - start).max(1);
                    break;
                }
                Err(_) => {
                    self.stage = Stage::Fallback;
                    break;
                }
            }
        }
        self.stack = cur.stack;
    }

    /// One unit from `cur.pos`; `Ok(false)` when there is nothing more to do.
    fn step(&mut self, cur: &mut Cursor<'_>) -> Scan<bool> {
        match self.stage {
            Stage::Fallback => Ok(false),
            Stage::Done => {
                cur.ws();
                if cur.pos < cur.buf.len() {
                    return Err(Stop::Bad);
                }
                Ok(false)
            }
            Stage::Start => {
                cur.ws();
                cur.eat(b'{')?;
                self.stage = Stage::Member { first: true };
                Ok(true)
            }
            Stage::Member { first } => {
                cur.ws();
                if first && cur.peek()? == b'}' {
                    cur.pos += 1;
                    self.stage = Stage::Done;
                    return Ok(true);
                }
                let start = cur.pos;
                self.member(cur)?;
                // Every byte of the body is in a unit checked like this, or is ASCII syntax.
                std::str::from_utf8(cur.buf.get(start..cur.pos).unwrap_or(&[]))
                    .map_err(|_| Stop::Bad)?;
                Ok(true)
            }
            Stage::Array { files, first } => {
                cur.ws();
                if cur.peek()? == b']' {
                    if !first {
                        return Err(Stop::Bad);
                    }
                    cur.pos += 1;
                    self.stage = after_member(cur)?;
                    return Ok(true);
                }
                if files {
                    let mut rec = scan_file(cur)?;
                    let next = after_element(cur, true)?;
                    let version = match check_file(cur.buf, &mut rec, &self.filename_project)? {
                        Some(v) => self.intern(cur.buf, v)?,
                        None => NO_VERSION,
                    };
                    self.files.push(FileRec { version, ..rec });
                    self.stage = next;
                } else {
                    let start = cur.pos;
                    let content = cur.plain_span()?;
                    let raw = Span::new(start, cur.pos);
                    let next = after_element(cur, false)?;
                    let id = self.intern(cur.buf, content)?;
                    self.versions.push((raw, id));
                    self.stage = next;
                }
                Ok(true)
            }
        }
    }

    /// A top-level member: key, `:` and value (for `files`/`versions` up to the `[`).
    fn member(&mut self, cur: &mut Cursor<'_>) -> Scan<()> {
        cur.eat(b'"')?;
        let (ka, kb, escaped) = cur.string_body()?;
        if escaped {
            return Err(Stop::Bad);
        }
        cur.ws();
        cur.eat(b':')?;
        cur.ws();
        let key = cur.buf.get(ka..kb).ok_or(Stop::Bad)?;
        let vstart = cur.pos;
        let (kind, vend) = match key {
            b"files" | b"versions" => {
                cur.eat(b'[')?;
                let files = key == b"files";
                self.stage = Stage::Array { files, first: true };
                let kind = if files {
                    MemberKind::Files
                } else {
                    MemberKind::Versions
                };
                (kind, cur.pos)
            }
            _ => {
                match key {
                    b"meta" => self.api_version = scan_meta(cur)?,
                    b"name" => self.name = cur.plain_span()?,
                    _ => cur.skip_value()?,
                }
                let vend = cur.pos;
                self.stage = after_member(cur)?;
                (MemberKind::Other, vend)
            }
        };
        if !self.top_keys.insert(key.to_vec()) {
            return Err(Stop::Bad);
        }
        self.top.push(Member {
            key: Span::new(ka, kb),
            value: Span::new(vstart, vend),
            kind,
        });
        Ok(())
    }

    /// The spelling id of the version at `span`, keying new spellings (PEP 440) once.
    fn intern(&mut self, buf: &[u8], span: Span) -> Scan<u32> {
        let bytes = span.bytes(buf);
        // Files come grouped by version: try the last one first.
        if let Some(sp) = self.spellings.get(self.last_spelling as usize)
            && short_eq(sp.span.bytes(buf), bytes)
        {
            return Ok(self.last_spelling);
        }
        let v = std::str::from_utf8(bytes).map_err(|_| Stop::Bad)?;
        if let Some(&id) = self.spelling_ids.get(v) {
            self.last_spelling = id;
            return Ok(id);
        }
        let key = version_key(v);
        let key_id = match self.key_ids.get(&key) {
            Some(&k) => k,
            None => {
                let k = u32::try_from(self.keys.len()).map_err(|_| Stop::Bad)?;
                self.key_ids.insert(key.clone(), k);
                self.keys.push(key);
                k
            }
        };
        let id = u32::try_from(self.spellings.len()).map_err(|_| Stop::Bad)?;
        self.spellings.push(Spelling { span, key: key_id });
        self.spelling_ids.insert(v.to_string(), id);
        self.last_spelling = id;
        Ok(id)
    }
}

/// After a top-level value: `,` (another member) or `}` (done).
fn after_member(cur: &mut Cursor<'_>) -> Scan<Stage> {
    cur.ws();
    match cur.peek()? {
        b',' => {
            cur.pos += 1;
            Ok(Stage::Member { first: false })
        }
        b'}' => {
            cur.pos += 1;
            Ok(Stage::Done)
        }
        _ => Err(Stop::Bad),
    }
}

/// After an element of `files` (or `versions`): `,` (another element) or `]` and what
/// follows the array.
fn after_element(cur: &mut Cursor<'_>, files: bool) -> Scan<Stage> {
    cur.ws();
    match cur.peek()? {
        b',' => {
            cur.pos += 1;
            Ok(Stage::Array {
                files,
                first: false,
            })
        }
        b']' => {
            cur.pos += 1;
            after_member(cur)
        }
        _ => Err(Stop::Bad),
    }
}

/// `meta`: an object with unique plain keys; `api-version`, when present, a plain string
/// that [`ApiVersion::parse`] accepts.
fn scan_meta(cur: &mut Cursor<'_>) -> Scan<ApiVersion> {
    cur.eat(b'{')?;
    let mut api = ApiVersion::IMPLICIT;
    let mut keys = KeySet::default();
    cur.ws();
    if cur.peek()? == b'}' {
        cur.pos += 1;
        return Ok(api);
    }
    loop {
        cur.eat(b'"')?;
        let (a, b, escaped) = cur.string_body()?;
        let key = cur.buf.get(a..b).ok_or(Stop::Bad)?;
        if escaped || !keys.insert(key) {
            return Err(Stop::Bad);
        }
        cur.ws();
        cur.eat(b':')?;
        cur.ws();
        if key == b"api-version" {
            let v = cur.plain_str()?;
            let v = std::str::from_utf8(v).map_err(|_| Stop::Bad)?;
            api = ApiVersion::parse(v).map_err(|_| Stop::Bad)?;
        } else {
            cur.skip_value()?;
        }
        if !cur.next_member()? {
            return Ok(api);
        }
    }
}

/// Keys seen in one object: a list, a set once it is long.
#[derive(Default)]
struct KeySet<'b> {
    list: Vec<&'b [u8]>,
    set: Option<HashSet<&'b [u8]>>,
}

impl<'b> KeySet<'b> {
    /// Whether `key` is new.
    fn insert(&mut self, key: &'b [u8]) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(key);
        }
        if self.list.contains(&key) {
            return false;
        }
        self.list.push(key);
        if self.list.len() > 16 {
            self.set = Some(self.list.drain(..).collect());
        }
        true
    }
}

/// A metadata member's value, judged once it is known which one is in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Absent,
    Null,
    True,
    False,
    /// An object of plain strings.
    Hashes(Span),
    /// Anything else (the full parser refuses it, or it has escapes).
    Other,
}

impl Meta {
    fn present(self) -> bool {
        !matches!(self, Meta::Absent | Meta::Null)
    }
}

// Bits of the known file keys, for duplicate detection.
const K_FILENAME: u16 = 1;
const K_URL: u16 = 2;
const K_HASHES: u16 = 4;
const K_REQUIRES_PYTHON: u16 = 8;
const K_YANKED: u16 = 16;
const K_CORE_METADATA: u16 = 32;
const K_DIST_INFO_METADATA: u16 = 64;
const K_GPG_SIG: u16 = 128;
const K_SIZE: u16 = 256;
const K_UPLOAD_TIME: u16 = 512;

/// Whether `rest` starts with `lit` (a comparison of constant length).
#[inline(always)]
fn starts<const N: usize>(rest: &[u8], lit: &[u8; N]) -> bool {
    rest.get(..N).is_some_and(|s| s == lit)
}

/// The known key starting at `rest` (after the opening quote), with its length including
/// the closing quote.
#[inline]
fn known_key(rest: &[u8]) -> Option<(u16, usize)> {
    let (bit, len) = match rest.first()? {
        b'f' if starts(rest, b"filename\"") => (K_FILENAME, 9),
        b'u' if starts(rest, b"url\"") => (K_URL, 4),
        b'u' if starts(rest, b"upload-time\"") => (K_UPLOAD_TIME, 12),
        b'h' if starts(rest, b"hashes\"") => (K_HASHES, 7),
        b'r' if starts(rest, b"requires-python\"") => (K_REQUIRES_PYTHON, 16),
        b'y' if starts(rest, b"yanked\"") => (K_YANKED, 7),
        b'c' if starts(rest, b"core-metadata\"") => (K_CORE_METADATA, 14),
        b'd' if starts(rest, b"dist-info-metadata\"") => (K_DIST_INFO_METADATA, 19),
        b'g' if starts(rest, b"gpg-sig\"") => (K_GPG_SIG, 8),
        b's' if starts(rest, b"size\"") => (K_SIZE, 5),
        _ => return None,
    };
    Some((bit, len))
}

/// One file object: its syntax, the types of the members `parse_json_file` reads, no
/// duplicate keys (strings are checked by [`check_file`]).
fn scan_file(cur: &mut Cursor<'_>) -> Scan<FileRec> {
    let obj_start = cur.pos;
    cur.eat(b'{')?;
    let mut rec = FileRec {
        obj: Span::NONE,
        url: Span::NONE,
        filename: Span::NONE,
        version: NO_VERSION,
        requires_python: Span::NONE,
        upload_time: Span::NONE,
        uploaded: None,
        yank_reason: Span::NONE,
        hashes: Span::NONE,
        metadata: Span::NONE,
        size: 0,
        flags: 0,
    };
    let mut seen: u16 = 0;
    let mut unknown = KeySet::default();
    let (mut core, mut dist) = (Meta::Absent, Meta::Absent);
    cur.ws();
    if cur.peek()? == b'}' {
        // No `filename`.
        return Err(Stop::Bad);
    }
    loop {
        cur.eat(b'"')?;
        let known = known_key(cur.buf.get(cur.pos..).unwrap_or(&[]));
        let bit = match known {
            Some((bit, len)) => {
                cur.pos += len;
                bit
            }
            None => {
                let (a, b, escaped) = cur.string_body()?;
                let key = cur.buf.get(a..b).ok_or(Stop::Bad)?;
                if escaped || !unknown.insert(key) {
                    return Err(Stop::Bad);
                }
                0
            }
        };
        if seen & bit != 0 {
            return Err(Stop::Bad);
        }
        seen |= bit;
        cur.ws();
        cur.eat(b':')?;
        cur.ws();
        match bit {
            0 => cur.skip_value()?,
            K_FILENAME => rec.filename = cur.plain_span()?,
            K_URL => rec.url = cur.url()?,
            K_HASHES => rec.hashes = cur.hashes()?,
            K_REQUIRES_PYTHON => rec.requires_python = cur.null_or_plain()?,
            K_UPLOAD_TIME => rec.upload_time = cur.null_or_plain()?,
            K_YANKED => match cur.peek()? {
                b't' => {
                    cur.literal(b"true")?;
                    rec.flags |= YANKED;
                }
                b'f' => cur.literal(b"false")?,
                b'n' => cur.literal(b"null")?,
                b'"' => {
                    rec.yank_reason = cur.plain_span()?;
                    rec.flags |= YANKED;
                }
                _ => return Err(Stop::Bad),
            },
            K_CORE_METADATA => core = cur.metadata()?,
            K_DIST_INFO_METADATA => dist = cur.metadata()?,
            K_GPG_SIG => match cur.peek()? {
                b't' => {
                    cur.literal(b"true")?;
                    rec.flags |= GPG_SIG | GPG_TRUE;
                }
                b'f' => {
                    cur.literal(b"false")?;
                    rec.flags |= GPG_SIG;
                }
                b'n' => cur.literal(b"null")?,
                _ => return Err(Stop::Bad),
            },
            K_SIZE => {
                if cur.peek()? == b'n' {
                    cur.literal(b"null")?;
                } else {
                    let (a, b) = cur.number()?;
                    rec.size = plain_u64(cur.buf.get(a..b).unwrap_or(&[])).ok_or(Stop::Bad)?;
                    rec.flags |= SIZE;
                }
            }
            _ => return Err(Stop::Bad),
        }
        if !cur.next_member()? {
            break;
        }
    }
    rec.obj = Span::new(obj_start, cur.pos);
    // `core-metadata` unless null or absent, else `dist-info-metadata`.
    match if core.present() { core } else { dist } {
        Meta::Absent | Meta::Null | Meta::False => {}
        Meta::True => rec.flags |= METADATA,
        Meta::Hashes(span) => {
            rec.flags |= METADATA;
            rec.metadata = span;
        }
        Meta::Other => return Err(Stop::Bad),
    }
    if !rec.filename.is_some() || !rec.url.is_some() {
        return Err(Stop::Bad);
    }
    Ok(rec)
}

/// What `parse_json_file` checks on the strings of a scanned file object (and UTF-8 of
/// the whole object); the version, a span of the filename.
fn check_file(buf: &[u8], rec: &mut FileRec, project: &str) -> Scan<Option<Span>> {
    let obj = std::str::from_utf8(rec.obj.bytes(buf)).map_err(|_| Stop::Bad)?;
    let base = rec.obj.start as usize;
    let sub = |start: u32, end: u32| {
        obj.get(start as usize - base..end as usize - base)
            .ok_or(Stop::Bad)
    };
    let filename = sub(rec.filename.start, rec.filename.end)?;
    if !plain_filename(filename.as_bytes()) && check_filename(filename).is_err() {
        return Err(Stop::Bad);
    }
    if rec.upload_time.is_some() {
        rec.uploaded = UploadTime::instant(sub(rec.upload_time.start, rec.upload_time.end)?);
    }
    let href = sub(rec.url.start + 1, rec.url.end - 1)?;
    match plain_absolute(href) {
        Some(p) if p.fragment.is_none() => {}
        _ => return Err(Stop::Bad),
    }
    Ok(parse_filename_normalized(project, filename).1.map(|v| {
        // The version is a part of the filename.
        let off = v.as_ptr() as usize - filename.as_ptr() as usize;
        let start = rec.filename.start as usize + off;
        Span::new(start, start + v.len())
    }))
}

/// Slice equality for short slices, without a `memcmp` call.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A filename `check_filename` accepts, decided on bytes for the common case (printable
/// ASCII, 8 bytes at a time); `false` = ask `check_filename`.
fn plain_filename(f: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    if f.is_empty() || f == b"." || f == b".." || f.len() > super::filename::MAX_FILENAME_LEN {
        return false;
    }
    let mut words = f.chunks_exact(8);
    for w in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(w);
        let x = u64::from_le_bytes(le);
        // Non-ASCII, control, DEL, `/`, `\`.
        let odd = (x & HI)
            | (x.wrapping_sub(LO * 0x20) & !x & HI)
            | has_byte(x, 0x7f)
            | has_byte(x, b'/')
            | has_byte(x, b'\\');
        if odd != 0 {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'/' && b != b'\\')
}

/// Digits only (a JSON integer ≥ 0), within `u64`.
fn plain_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether some byte is a control character (below 0x20), 8 bytes at a time.
#[inline]
fn has_control(bytes: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(w);
        let x = u64::from_le_bytes(le);
        if x.wrapping_sub(LO * 0x20) & !x & HI != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20)
}

/// A position in the received data, with the nesting stack of [`Cursor::skip_value`].
struct Cursor<'b> {
    buf: &'b [u8],
    pos: usize,
    stack: Vec<u8>,
}

impl<'b> Cursor<'b> {
    #[inline]
    fn peek(&self) -> Scan<u8> {
        self.buf.get(self.pos).copied().ok_or(Stop::More)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    /// After a member inside an object: `,` (`true`: another member follows; the whitespace
    /// after the comma is skipped) or `}` (`false`: the object is closed).
    #[inline]
    fn next_member(&mut self) -> Scan<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            b'}' => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Stop::Bad),
        }
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Scan<()> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }

    /// `lit` (`true`, `false`, `null`).
    fn literal(&mut self, lit: &[u8]) -> Scan<()> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(lit.len());
        if rest.get(..n) != lit.get(..n) {
            return Err(Stop::Bad);
        }
        if n < lit.len() {
            return Err(Stop::More);
        }
        self.pos += lit.len();
        Ok(())
    }

    /// After an opening quote: to after the closing quote. Returns the content's range and
    /// whether it has escapes.
    fn string_body(&mut self) -> Scan<(usize, usize, bool)> {
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        loop {
            let j = self.special(i).ok_or(Stop::More)?;
            match self.buf.get(j) {
                Some(b'"') => {
                    self.pos = j + 1;
                    return Ok((start, j, escaped));
                }
                Some(b'\\') => {}
                // A raw control character.
                _ => return Err(Stop::Bad),
            }
            escaped = true;
            match *self.buf.get(j + 1).ok_or(Stop::More)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i = j + 2,
                b'u' => {
                    for d in j + 2..j + 6 {
                        if !self.buf.get(d).ok_or(Stop::More)?.is_ascii_hexdigit() {
                            return Err(Stop::Bad);
                        }
                    }
                    i = j + 6;
                }
                _ => return Err(Stop::Bad),
            }
        }
    }

    /// The first `"`, `\` or control byte at or after `from` (`None`: not received yet).
    /// The first 72 bytes are tested 8 at a time (keys, digests, times and names end
    /// there), longer strings with `memchr2` and a check of the run before the hit.
    #[inline]
    fn special(&self, from: usize) -> Option<usize> {
        let mut i = from;
        for _ in 0..9 {
            let Some(w) = self.buf.get(i..i + 8) else {
                break;
            };
            let mut le = [0u8; 8];
            le.copy_from_slice(w);
            if json_escaped_word(u64::from_le_bytes(le)) != 0 {
                return w.iter().position(|&b| json_escaped(b)).map(|p| i + p);
            }
            i += 8;
        }
        let rest = self.buf.get(i..)?;
        let k = memchr2(b'"', b'\\', rest);
        let run = rest.get(..k.unwrap_or(rest.len()))?;
        if has_control(run) {
            return run.iter().position(|&b| b < 0x20).map(|p| i + p);
        }
        k.map(|k| i + k)
    }

    /// A string without escapes: its content.
    fn plain_str(&mut self) -> Scan<&'b [u8]> {
        let s = self.plain_span()?;
        self.buf.get(s.range()).ok_or(Stop::Bad)
    }

    /// A string without escapes: the span of its content.
    fn plain_span(&mut self) -> Scan<Span> {
        self.eat(b'"')?;
        let (a, b, escaped) = self.string_body()?;
        if escaped {
            return Err(Stop::Bad);
        }
        Ok(Span::new(a, b))
    }

    /// The `url` value: a plain string (its span with the quotes). Found with `memchr2`
    /// alone: a raw control character in it cannot pass `check_file`'s URL check, so the
    /// page falls back either way.
    fn url(&mut self) -> Scan<Span> {
        let start = self.pos;
        self.eat(b'"')?;
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        match memchr2(b'"', b'\\', rest) {
            Some(k) if rest.get(k) == Some(&b'"') => {
                self.pos += k + 1;
                Ok(Span::new(start, self.pos))
            }
            Some(_) => Err(Stop::Bad),
            None => Err(Stop::More),
        }
    }

    /// `null` (absent) or a plain string (its content).
    fn null_or_plain(&mut self) -> Scan<Span> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(Span::NONE);
        }
        self.plain_span()
    }

    /// `hashes`: `null` (absent) or an object of plain strings (its span).
    fn hashes(&mut self) -> Scan<Span> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(Span::NONE);
        }
        let start = self.pos;
        if self.peek()? != b'{' || !self.string_map()? {
            return Err(Stop::Bad);
        }
        Ok(Span::new(start, self.pos))
    }

    /// `core-metadata` / `dist-info-metadata`.
    fn metadata(&mut self) -> Scan<Meta> {
        let start = self.pos;
        Ok(match self.peek()? {
            b'n' => {
                self.literal(b"null")?;
                Meta::Null
            }
            b't' => {
                self.literal(b"true")?;
                Meta::True
            }
            b'f' => {
                self.literal(b"false")?;
                Meta::False
            }
            b'{' => {
                if self.string_map()? {
                    Meta::Hashes(Span::new(start, self.pos))
                } else {
                    Meta::Other
                }
            }
            _ => {
                self.skip_value()?;
                Meta::Other
            }
        })
    }

    /// An object at `{`, validated; whether all keys and values are plain strings.
    fn string_map(&mut self) -> Scan<bool> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(true);
        }
        let mut plain = true;
        loop {
            self.eat(b'"')?;
            let (_, _, escaped) = self.string_body()?;
            plain &= !escaped;
            self.ws();
            self.eat(b':')?;
            self.ws();
            if self.peek()? == b'"' {
                self.pos += 1;
                let (_, _, escaped) = self.string_body()?;
                plain &= !escaped;
            } else {
                plain = false;
                self.skip_value()?;
            }
            if !self.next_member()? {
                return Ok(plain);
            }
        }
    }

    /// A JSON number; its range.
    fn number(&mut self) -> Scan<(usize, usize)> {
        let start = self.pos;
        let mut i = start;
        let buf = self.buf;
        let at = |i: usize| buf.get(i).copied().ok_or(Stop::More);
        let digits = |mut i: usize| -> Scan<usize> {
            if !at(i)?.is_ascii_digit() {
                return Err(Stop::Bad);
            }
            while at(i)?.is_ascii_digit() {
                i += 1;
            }
            Ok(i)
        };
        if at(i)? == b'-' {
            i += 1;
        }
        match at(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = digits(i)?,
            _ => return Err(Stop::Bad),
        }
        if at(i)? == b'.' {
            i = digits(i + 1)?;
        }
        if matches!(at(i)?, b'e' | b'E') {
            i += 1;
            if matches!(at(i)?, b'+' | b'-') {
                i += 1;
            }
            i = digits(i)?;
        }
        self.pos = i;
        Ok((start, i))
    }

    /// `"` key `"` ws `:` (inside an object being skipped).
    fn object_key(&mut self) -> Scan<()> {
        self.ws();
        self.eat(b'"')?;
        self.string_body()?;
        self.ws();
        self.eat(b':')
    }

    /// Any JSON value, validated, at any depth (an explicit stack, no recursion).
    fn skip_value(&mut self) -> Scan<()> {
        let base = self.stack.len();
        loop {
            // A value.
            self.ws();
            match self.peek()? {
                b'{' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.pos += 1;
                    } else {
                        self.stack.push(b'}');
                        self.object_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.pos += 1;
                    } else {
                        self.stack.push(b']');
                        continue;
                    }
                }
                b'"' => {
                    self.pos += 1;
                    self.string_body()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                }
                _ => return Err(Stop::Bad),
            }
            // After a value: close containers until one continues.
            loop {
                if self.stack.len() <= base {
                    return Ok(());
                }
                let Some(&close) = self.stack.last() else {
                    return Ok(());
                };
                self.ws();
                let b = self.peek()?;
                if b == b',' {
                    self.pos += 1;
                    if close == b'}' {
                        self.object_key()?;
                    }
                    break;
                }
                if b != close {
                    return Err(Stop::Bad);
                }
                self.pos += 1;
                self.stack.pop();
            }
        }
    }
}

/// The filtering decided before rendering (mirrors `page::Plan`, on ids).
struct Plan {
    keep: Vec<bool>,
    /// Output `versions`: indices into the upstream list (pages with `versions`) …
    listed: Option<Vec<usize>>,
    /// … or how many distinct versions kept files have (pages without).
    derived: usize,
    removed_versions: Vec<String>,
}

/// An algorithm and its digest.
type Hash<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A hash object of plain strings: the algorithm and digest pkggate publishes (sha256 when
/// present, else the first algorithm), after lower-casing the algorithms like
/// `parse_json_file` does; `Ok(None)` for `{}`.
fn preferred(obj: &str) -> Result<Option<Hash<'_>>, PypiError> {
    // One member (the common case): `{ "alg" : "hex" }`, strings without escapes.
    let mut quotes = memchr::memchr_iter(b'"', obj.as_bytes());
    if let (Some(a), Some(b), Some(c), Some(d), None) = (
        quotes.next(),
        quotes.next(),
        quotes.next(),
        quotes.next(),
        quotes.next(),
    ) && let (Some(alg), Some(hex)) = (obj.get(a + 1..b), obj.get(c + 1..d))
    {
        let alg = if alg.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(alg.to_ascii_lowercase())
        } else {
            Cow::Borrowed(alg)
        };
        return Ok(Some((alg, Cow::Borrowed(hex))));
    }
    let map: BTreeMap<String, String> =
        serde_json::from_str(obj).map_err(|e| PypiError::Json(e.to_string()))?;
    let map = lower_keys(map);
    Ok(map
        .get_key_value("sha256")
        .or_else(|| map.iter().next())
        .map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone()))))
}

fn mismatch() -> PypiError {
    PypiError::Shape("the index does not belong to this body".into())
}

/// What the file gate needs of one listed file ([`JsonIndex::files`]); equal to the same
/// fields of the full parse's `FileEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile<'b> {
    pub filename: &'b str,
    /// The upstream URL (absolute, no fragment).
    pub url: &'b str,
    /// The version derived from the filename.
    pub version: Option<&'b str>,
    /// `hashes.sha256` as written (the caller normalises case).
    pub sha256: Option<Cow<'b, str>>,
    /// `Some` when a PEP 658 metadata file is listed, with its sha256 when given.
    pub core_metadata: Option<Option<Cow<'b, str>>>,
    pub size: Option<u64>,
}

/// The `sha256` member of a plain hash object.
fn sha256_of(obj: &str) -> Result<Option<Cow<'_, str>>, PypiError> {
    Ok(preferred(obj)?
        .filter(|(alg, _)| alg == "sha256")
        .map(|(_, hex)| hex))
}

impl JsonIndex {
    /// Every listed file with what the file gate needs, read from the spans (no parse).
    pub fn files<'b>(&self, body: &'b [u8]) -> Result<Vec<IndexedFile<'b>>, PypiError> {
        if body.len() != self.body_len {
            return Err(mismatch());
        }
        let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let get = |s: Span| s.get(text);
        self.files.iter().map(|f| self.entry(f, &get)).collect()
    }

    /// The file listed last under `filename` (as in a filename → file map built from
    /// [`JsonIndex::files`]), found by comparing the filename spans: no map, no
    /// validation of the whole body, a few microseconds for thousands of files.
    pub fn file<'b>(
        &self,
        body: &'b [u8],
        filename: &str,
    ) -> Result<Option<IndexedFile<'b>>, PypiError> {
        if body.len() != self.body_len {
            return Err(mismatch());
        }
        let want = filename.as_bytes();
        let Some(f) = self
            .files
            .iter()
            .rev()
            .find(|f| body.get(f.filename.range()) == Some(want))
        else {
            return Ok(None);
        };
        // Spans of an index lie on character boundaries of the body it was built from.
        let get = |s: Span| {
            if s.is_some() {
                body.get(s.range())
                    .and_then(|b| std::str::from_utf8(b).ok())
            } else {
                None
            }
        };
        self.entry(f, &get).map(Some)
    }

    /// One file's entry, its spans read through `get` (`None`: absent).
    fn entry<'b>(
        &self,
        f: &FileRec,
        get: &dyn Fn(Span) -> Option<&'b str>,
    ) -> Result<IndexedFile<'b>, PypiError> {
        let present = |s: Span| get(s).ok_or_else(mismatch);
        let url = Span::new(f.url.start as usize + 1, f.url.end as usize - 1);
        let version = match f.version {
            NO_VERSION => None,
            v => Some(present(
                self.spellings.get(v as usize).ok_or_else(mismatch)?.span,
            )?),
        };
        Ok(IndexedFile {
            filename: present(f.filename)?,
            url: present(url)?,
            version,
            sha256: match get(f.hashes) {
                Some(obj) => sha256_of(obj)?,
                None => None,
            },
            core_metadata: if f.flags & METADATA != 0 {
                Some(match get(f.metadata) {
                    Some(obj) => sha256_of(obj)?,
                    None => None,
                })
            } else {
                None
            },
            size: (f.flags & SIZE != 0).then_some(f.size),
        })
    }

    /// Per-version facts; equal to `parse_project_page(..)?.facts()`.
    pub fn facts(&self) -> ProjectFacts {
        self.facts.clone()
    }

    /// The number of file objects (`page.files.len()`).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Estimated heap size, for cache budgets.
    pub fn approx_bytes(&self) -> usize {
        let facts: usize = self
            .facts
            .versions
            .iter()
            .map(|v| {
                // Entry, its string, the index key, an upload time.
                std::mem::size_of_val(v)
                    + 2 * v.version.len()
                    + 48
                    + v.earliest_upload.as_ref().map_or(0, |u| u.raw.len())
            })
            .sum();
        std::mem::size_of::<JsonIndex>()
            + self.project.len()
            + self.top.capacity() * std::mem::size_of::<Member>()
            + self.files.capacity() * std::mem::size_of::<FileRec>()
            + self
                .versions
                .as_ref()
                .map_or(0, |v| v.capacity() * std::mem::size_of::<(Span, u32)>())
            + self.spellings.capacity() * std::mem::size_of::<Spelling>()
            + facts
    }

    /// Filter and render the page, like `ProjectPage::render(format, &Rewrite { keep_file:
    /// |f| keep_version(f.version or ""), keep_version, file_url: |f| file_url(&f.url,
    /// &f.filename) })` on the same body. `keep_version` must be a pure function of its
    /// argument: it is asked once per distinct spelling. `file_url` gets the upstream URL and
    /// the filename.
    pub fn render(
        &self,
        body: &[u8],
        format: SimpleFormat,
        keep_version: &dyn Fn(&str) -> bool,
        file_url: &dyn Fn(&str, &str) -> String,
    ) -> Result<RenderedPage, PypiError> {
        if body.len() != self.body_len {
            return Err(mismatch());
        }
        let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let plan = self.plan(text, keep_version)?;
        let body = match format {
            SimpleFormat::Json => self.render_json(text, &plan, file_url)?,
            SimpleFormat::V1Html | SimpleFormat::TextHtml => {
                self.render_html(text, &plan, file_url)?
            }
        };
        let files_kept = plan.keep.iter().filter(|&&k| k).count();
        Ok(RenderedPage {
            body,
            format,
            files_kept,
            files_removed: plan.keep.len() - files_kept,
            versions_kept: plan.listed.as_ref().map_or(plan.derived, Vec::len),
            removed_versions: plan.removed_versions,
        })
    }

    fn spelling<'t>(&self, text: &'t str, id: u32) -> Result<(&'t str, usize), PypiError> {
        let sp = self.spellings.get(id as usize).ok_or_else(mismatch)?;
        Ok((sp.span.get(text).ok_or_else(mismatch)?, sp.key as usize))
    }

    fn plan(&self, text: &str, keep_version: &dyn Fn(&str) -> bool) -> Result<Plan, PypiError> {
        // `keep_version` per spelling (and once for files without a version).
        let mut memo: Vec<Option<bool>> = vec![None; self.spellings.len()];
        let mut keep_spelling = |id: u32| -> Result<bool, PypiError> {
            if let Some(Some(k)) = memo.get(id as usize) {
                return Ok(*k);
            }
            let k = keep_version(self.spelling(text, id)?.0);
            if let Some(m) = memo.get_mut(id as usize) {
                *m = Some(k);
            }
            Ok(k)
        };
        let mut keep_unknown: Option<bool> = None;
        let mut keep = Vec::with_capacity(self.files.len());
        let mut had_files = vec![false; self.key_count];
        let mut kept_files = vec![false; self.key_count];
        for f in &self.files {
            let k = if f.version == NO_VERSION {
                *keep_unknown.get_or_insert_with(|| keep_version(""))
            } else {
                let key = self.spelling(text, f.version)?.1;
                let k = keep_spelling(f.version)?;
                if let (Some(h), Some(kf)) = (had_files.get_mut(key), kept_files.get_mut(key)) {
                    *h = true;
                    *kf |= k;
                }
                k
            };
            keep.push(k);
        }
        let mut out_keys = vec![false; self.key_count];
        let (listed, derived) = match &self.versions {
            Some(list) => {
                let mut idx = Vec::new();
                for (i, &(_, id)) in list.iter().enumerate() {
                    let key = self.spelling(text, id)?.1;
                    let lost_all_files = had_files.get(key).copied().unwrap_or(false)
                        && !kept_files.get(key).copied().unwrap_or(false);
                    if !lost_all_files && keep_spelling(id)? {
                        idx.push(i);
                        if let Some(o) = out_keys.get_mut(key) {
                            *o = true;
                        }
                    }
                }
                (Some(idx), 0)
            }
            None => {
                // The versions of kept files (the full path sorts them; only the count is
                // observable for a JSON page without `versions`).
                let mut derived = 0;
                for (f, &k) in self.files.iter().zip(&keep) {
                    if k && f.version != NO_VERSION {
                        let key = self.spelling(text, f.version)?.1;
                        if !out_keys.get(key).copied().unwrap_or(true) && keep_spelling(f.version)?
                        {
                            if let Some(o) = out_keys.get_mut(key) {
                                *o = true;
                            }
                            derived += 1;
                        }
                    }
                }
                (None, derived)
            }
        };
        // A version a kept file still carries is not removed, listed or not.
        for (o, &k) in out_keys.iter_mut().zip(&kept_files) {
            *o |= k;
        }
        let mut removed_versions = Vec::new();
        let mut seen = vec![false; self.key_count];
        let upstream = self
            .versions
            .iter()
            .flatten()
            .map(|&(_, id)| id)
            .chain(self.files.iter().map(|f| f.version))
            .filter(|&id| id != NO_VERSION);
        for id in upstream {
            let (v, key) = self.spelling(text, id)?;
            if !out_keys.get(key).copied().unwrap_or(true)
                && let Some(s) = seen.get_mut(key)
                && !std::mem::replace(s, true)
            {
                removed_versions.push(v.to_string());
            }
        }
        Ok(Plan {
            keep,
            listed,
            derived,
            removed_versions,
        })
    }

    fn kept<'s>(&'s self, plan: &'s Plan) -> impl Iterator<Item = &'s FileRec> {
        self.files
            .iter()
            .zip(&plan.keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| f)
    }

    fn render_json(
        &self,
        text: &str,
        plan: &Plan,
        file_url: &dyn Fn(&str, &str) -> String,
    ) -> Result<String, PypiError> {
        let get = |s: Span| s.get(text).ok_or_else(mismatch);
        let mut out = String::with_capacity(text.len() + 64);
        out.push('{');
        let mut first = true;
        if !self
            .top
            .iter()
            .any(|m| m.kind == MemberKind::Other && m.key.get(text) == Some("meta"))
        {
            out.push_str(if self.versions.is_some() {
                "\"meta\":{\"api-version\":\"1.1\"}"
            } else {
                "\"meta\":{\"api-version\":\"1.0\"}"
            });
            first = false;
        }
        for m in &self.top {
            if !first {
                out.push(',');
            }
            first = false;
            push_json_str(&mut out, get(m.key)?);
            out.push(':');
            match m.kind {
                MemberKind::Files => {
                    out.push('[');
                    for (n, f) in self.kept(plan).enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        let url = Span::new(f.url.start as usize + 1, f.url.end as usize - 1);
                        let new_url = file_url(get(url)?, get(f.filename)?);
                        out.push_str(get(Span {
                            start: f.obj.start,
                            end: f.url.start,
                        })?);
                        push_json_str(&mut out, &new_url);
                        out.push_str(get(Span {
                            start: f.url.end,
                            end: f.obj.end,
                        })?);
                    }
                    out.push(']');
                }
                MemberKind::Versions => {
                    out.push('[');
                    let list = self.versions.as_deref().unwrap_or(&[]);
                    for (n, &i) in plan.listed.iter().flatten().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        let (raw, _) = list.get(i).ok_or_else(mismatch)?;
                        out.push_str(get(*raw)?);
                    }
                    out.push(']');
                }
                MemberKind::Other => out.push_str(get(m.value)?),
            }
        }
        out.push('}');
        Ok(out)
    }

    fn render_html(
        &self,
        text: &str,
        plan: &Plan,
        file_url: &dyn Fn(&str, &str) -> String,
    ) -> Result<String, PypiError> {
        let get = |s: Span| s.get(text).ok_or_else(mismatch);
        let mut out = String::with_capacity(256 + self.files.len() * 300);
        let name = match self.name.get(text) {
            Some(n) => n,
            None => &self.project,
        };
        push_html_head(&mut out, self.api_version.declared(), name);
        for f in self.kept(plan) {
            let filename = get(f.filename)?;
            let url = Span::new(f.url.start as usize + 1, f.url.end as usize - 1);
            let new_url = file_url(get(url)?, filename);
            let hash = match f.hashes.get(text) {
                Some(obj) => preferred(obj)?,
                None => None,
            };
            let metadata = match f.metadata.get(text) {
                Some(obj) => preferred(obj)?,
                None => None,
            };
            let view = AnchorView {
                filename,
                hash: hash.as_ref().map(|(a, h)| (a.as_ref(), h.as_ref())),
                requires_python: f.requires_python.get(text),
                core_metadata: (f.flags & METADATA != 0)
                    .then(|| metadata.as_ref().map(|(a, h)| (a.as_ref(), h.as_ref()))),
                gpg_sig: (f.flags & GPG_SIG != 0).then_some(f.flags & GPG_TRUE != 0),
                yanked: (f.flags & YANKED != 0).then(|| f.yank_reason.get(text).unwrap_or("")),
                upload_time: f.upload_time.get(text),
                size: (f.flags & SIZE != 0).then_some(f.size),
            };
            push_anchor(&mut out, &view, &new_url, &[]);
        }
        push_html_tail(&mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_found_in_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for bad in [0u8, 0x1f, b'\n'] {
                    let mut v = vec![b'a'; len];
                    v[at] = bad;
                    assert!(has_control(&v), "{len} {at} {bad}");
                }
            }
            assert!(!has_control(&vec![0x20; len]));
            assert!(!has_control(&vec![0xff; len]));
        }
    }

    #[test]
    fn plain_integers() {
        assert_eq!(plain_u64(b"0"), Some(0));
        assert_eq!(plain_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(plain_u64(b"18446744073709551616"), None);
        assert_eq!(plain_u64(b"-1"), None);
        assert_eq!(plain_u64(b"1.0"), None);
        assert_eq!(plain_u64(b""), None);
    }
}
