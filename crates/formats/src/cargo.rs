//! The cargo sparse registry protocol: index paths, index files, download paths.
//!
//! An index file has one JSON object per line, one line per version. pkggate reads each
//! line only for `name`, `vers`, `cksum`, `yanked` and `pubtime`, and re-emits the original
//! bytes of every kept line (unknown fields and `v` values included), so a filtered file is
//! the upstream file minus some lines. A line that does not parse cannot be decided and is
//! dropped (counted), never passed through unchecked.
//!
//! Reading a line ([`parse_index`], every field): a small hand-written scanner
//! ([`top_level_fields`]) walks the object's top-level members, skipping nested values
//! (`deps`, `features`) by counting brackets outside strings (64 bytes at a time with bit
//! masks), and hands only the five values of interest to serde_json. Skipping with
//! serde_json itself tokenises every nested value and made the whole filter ~5× slower than
//! the transfer it guards; a property test checks the scanner against serde_json.
//!
//! The index gate needs less: `name`, `vers` and `pubtime` ([`IndexScanner`], fed the body
//! chunk by chunk as it arrives, or [`summarize_index`]). Those sit before the first nested
//! value (`name`, `vers`) or after the last one (`yanked`, `pubtime`, `v`) in every line
//! crates.io writes, so [`IndexScanner`] reads the members at both ends of a line (the end
//! ones backwards) and does not walk the nested values in between (~95% of the bytes).
//! That reading is exact for any line that is valid JSON: a member found at either end is
//! a top-level member, and a line naming a field twice is refused by serde's derive, hence
//! by cargo, which skips lines it cannot read. Whenever a needed field is not found at the
//! ends (it may be in the middle), a key is written with escapes, a field appears twice or
//! has the wrong type, the line is read in full like [`parse_index`] does.

use crate::pypi::UploadTime;
use std::collections::HashSet;

/// Longest crate name crates.io accepts.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CargoPathError {
    #[error("not a cargo index path: {0:?}")]
    NotIndexPath(String),
    #[error(
        "invalid crate name {0:?} (ASCII letters, digits, `-`, `_`; at most 64; starts with a letter)"
    )]
    BadName(String),
    #[error("index path {0:?} must be lower case")]
    UpperCase(String),
}

/// A crate name as crates.io accepts it.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The sparse index path of a crate: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…` (lower case).
/// Meant for [`valid_name`]s; any other string gives some path, never a panic (callers
/// that build URLs check the name first).
pub fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    let (p1, p2) = prefix_parts(&n);
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{p1}/{n}"),
        _ => format!("{p1}/{p2}/{n}"),
    }
}

/// The directory parts of an index path: the first byte (three-byte names) or the first two
/// and the next two bytes, cut on character boundaries.
fn prefix_parts(n: &str) -> (&str, &str) {
    let cut = |from: usize, to: usize| n.get(from..to).unwrap_or("");
    if n.len() == 3 {
        (cut(0, 1), "")
    } else {
        (cut(0, 2), cut(2, 4))
    }
}

/// The crate name of an index path (without the registry prefix), checking that the
/// directories match the name. Upper-case paths are refused (cargo always asks lower case).
pub fn parse_index_path(path: &str) -> Result<String, CargoPathError> {
    let name = path.rsplit('/').next().unwrap_or("");
    if !valid_name(name) {
        return Err(CargoPathError::BadName(name.chars().take(80).collect()));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(CargoPathError::UpperCase(path.chars().take(80).collect()));
    }
    if index_path(name) != path {
        return Err(CargoPathError::NotIndexPath(
            path.chars().take(80).collect(),
        ));
    }
    Ok(name.to_string())
}

/// One line of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexLine {
    /// Byte range of the line in the file, including its `\n` if any.
    pub start: usize,
    pub end: usize,
    pub name: String,
    pub vers: String,
    pub cksum: Option<String>,
    pub yanked: bool,
    /// `pubtime` as written.
    pub pubtime: Option<String>,
}

impl IndexLine {
    /// `pubtime` in seconds since the epoch, when present and valid RFC 3339.
    pub fn published_unix(&self) -> Option<i64> {
        self.pubtime
            .as_deref()
            .and_then(UploadTime::parse)
            .map(|t| t.unix_seconds)
    }
}

#[derive(serde::Deserialize)]
struct RawLine<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    vers: std::borrow::Cow<'a, str>,
    #[serde(default)]
    cksum: Option<String>,
    #[serde(default)]
    yanked: Option<bool>,
    #[serde(default)]
    pubtime: Option<String>,
}

/// A parsed index file: its lines and how many could not be read.
#[derive(Debug, Clone, Default)]
pub struct IndexFile {
    pub lines: Vec<IndexLine>,
    /// Lines that did not parse (dropped from any rendering).
    pub unreadable: usize,
}

/// Parse an index file. Never fails: unreadable lines are counted.
pub fn parse_index(body: &[u8]) -> IndexFile {
    let mut out = IndexFile::default();
    let mut start = 0;
    while start < body.len() {
        let end = find_newline(body, start).map_or(body.len(), |i| i + 1);
        let trimmed = body[start..end].trim_ascii();
        if !trimmed.is_empty() {
            match read_line(trimmed) {
                Some(raw) if !raw.vers.trim().is_empty() => out.lines.push(IndexLine {
                    start,
                    end,
                    name: raw.name.into_owned(),
                    vers: raw.vers.into_owned(),
                    cksum: raw.cksum,
                    yanked: raw.yanked.unwrap_or(false),
                    pubtime: raw.pubtime,
                }),
                _ => out.unreadable += 1,
            }
        }
        start = end;
    }
    out
}

/// The fields of one line: the fast scanner, or serde_json when the scanner gives up.
fn read_line(line: &[u8]) -> Option<RawLine<'_>> {
    scan_line(line).or_else(|| serde_json::from_slice::<RawLine<'_>>(line).ok())
}

fn scan_line(line: &[u8]) -> Option<RawLine<'_>> {
    let mut name = None;
    let mut vers = None;
    let mut cksum = None;
    let mut yanked = None;
    let mut pubtime = None;
    let string = |v: &[u8]| serde_json::from_slice::<std::borrow::Cow<'_, str>>(v).ok();
    let mut ok = true;
    top_level_fields(line, |key, value| {
        // A key written with escapes may name a field serde_json would see: let it decide.
        let slot_ok = !key.contains(&b'\\')
            && match key {
                b"name" => string(value).map(|s| name = Some(s)).is_some(),
                b"vers" => string(value).map(|s| vers = Some(s)).is_some(),
                b"cksum" => match value {
                    b"null" => true,
                    _ => string(value)
                        .map(|s| cksum = Some(s.into_owned()))
                        .is_some(),
                },
                b"pubtime" => match value {
                    b"null" => true,
                    _ => string(value)
                        .map(|s| pubtime = Some(s.into_owned()))
                        .is_some(),
                },
                b"yanked" => match value {
                    b"true" => {
                        yanked = Some(true);
                        true
                    }
                    b"false" => {
                        yanked = Some(false);
                        true
                    }
                    b"null" => true,
                    _ => false,
                },
                _ => true,
            };
        ok &= slot_ok;
    })?;
    if !ok {
        return None;
    }
    Some(RawLine {
        name: name?,
        vers: vers?,
        cksum,
        yanked,
        pubtime,
    })
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Index just past the string starting at `i` (which is `"`).
fn end_of_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index just past the JSON value starting at `i`.
fn end_of_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => end_of_string(b, i),
        b'{' | b'[' => end_of_nested(b, i),
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Bytes per block of [`end_of_nested`] (one bit of a `u64` mask each).
const BLOCK: usize = 64;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;

/// Transpose the 8×8 bit matrix in `x` (bit `8r + c` ↔ bit `8c + r`; Hacker's Delight 7-3).
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

/// Where a 64-byte block holds `"`, `\\`, an opening and a closing bracket (bit `k`: byte
/// `k`). One flag byte per input byte (a plain map the compiler vectorises), then each
/// flag's bits of the eight 8-byte words stacked into one `u64` (bit `8k + j`: byte `8j + k`)
/// and put in byte order with a bit-matrix transpose.
fn classify(block: &[u8; BLOCK]) -> (u64, u64, u64, u64) {
    let mut flags = [0u8; BLOCK];
    for (f, &c) in flags.iter_mut().zip(block) {
        // `[` 0x5B, `{` 0x7B; `]` 0x5D, `}` 0x7D: equal once bit 0x20 is set.
        *f = u8::from(c == b'"')
            | u8::from((c | 0x20) == b'{') << 1
            | u8::from((c | 0x20) == b'}') << 2
            | u8::from(c == b'\\') << 3;
    }
    let (mut quote, mut open, mut close, mut backslash) = (0u64, 0u64, 0u64, 0u64);
    for (j, word) in flags.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        quote |= (w & LOW_BITS) << j;
        open |= (w >> 1 & LOW_BITS) << j;
        close |= (w >> 2 & LOW_BITS) << j;
        backslash |= (w >> 3 & LOW_BITS) << j;
    }
    (
        transpose8(quote),
        transpose8(backslash),
        transpose8(open),
        transpose8(close),
    )
}

/// Bit `k` set when an odd number of bits at positions `0..=k` of `x` are set.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Index just past the object or array starting at `i` (`b[i]` is `{` or `[`): brackets are
/// counted outside strings, a `\\` inside a string escapes the next byte (outside strings it
/// is ignored), contents are not validated. `None` when the value does not close within `b`.
///
/// Nested values are most of an index line (`deps`, `features`), so this works on 64-byte
/// blocks: a bit mask per byte class, strings found with a prefix XOR of the quote mask, and
/// a block whose brackets cannot close the value is passed with two popcounts. Blocks with a
/// backslash (rare) take the byte-by-byte path, which is the definition.
fn end_of_nested(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    // The first byte of the next block is escaped (a `\\` ended the previous one).
    let mut escaped = false;
    let mut j = i;
    while j < b.len() {
        let n = (b.len() - j).min(BLOCK);
        // The last block is padded with spaces (no byte of interest).
        let mut padded = [b' '; BLOCK];
        let block = match b[j..].first_chunk::<BLOCK>() {
            Some(full) => full,
            None => {
                padded[..n].copy_from_slice(&b[j..]);
                &padded
            }
        };
        let (mut quote, backslash, mut open, mut close) = classify(block);
        if backslash != 0 {
            for (k, &c) in block[..n].iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_string {
                    match c {
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                } else {
                    match c {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some(j + k + 1);
                            }
                        }
                        _ => {}
                    }
                }
            }
            j += n;
            continue;
        }
        if escaped {
            // Only ever set inside a string: the escaped byte is string content.
            escaped = false;
            quote &= !1;
            open &= !1;
            close &= !1;
        }
        let strings = prefix_xor(quote) ^ if in_string { u64::MAX } else { 0 };
        in_string = strings >> 63 == 1;
        open &= !strings;
        close &= !strings;
        if (close.count_ones() as usize) < depth {
            depth += open.count_ones() as usize;
            depth -= close.count_ones() as usize;
        } else {
            let mut structural = open | close;
            while structural != 0 {
                let k = structural.trailing_zeros();
                structural &= structural - 1;
                if open >> k & 1 == 1 {
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j + k as usize + 1);
                    }
                }
            }
        }
        j += n;
    }
    None
}

/// Call `f(key, value)` for each top-level member of the JSON object `b` (key without
/// quotes, escapes left as written; value as its raw bytes). `None` when `b` is not an
/// object of that shape; nested values are skipped, not validated.
pub fn top_level_fields<'a>(b: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> Option<()> {
    match walk_forward(b, false, &mut f)? {
        Walk::Complete => Some(()),
        Walk::Nested(_) => None,
    }
}

/// How far [`walk_forward`] got.
enum Walk {
    /// Every member was read.
    Complete,
    /// Stopped at the first member whose value is an object or array (its value's start).
    Nested(usize),
}

/// [`top_level_fields`], optionally stopping at the first nested value.
fn walk_forward<'a>(
    b: &'a [u8],
    stop_at_nested: bool,
    f: &mut impl FnMut(&'a [u8], &'a [u8]),
) -> Option<Walk> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(Walk::Complete);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = end_of_string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if stop_at_nested && matches!(b.get(i), Some(b'{' | b'[')) {
            return Some(Walk::Nested(i));
        }
        let value_end = end_of_value(b, i)?;
        f(key, &b[i..value_end]);
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return (skip_ws(b, i + 1) == b.len()).then_some(Walk::Complete),
            _ => return None,
        }
    }
}

fn skip_ws_back(b: &[u8], mut i: usize) -> usize {
    while i > 0 && matches!(b[i - 1], b' ' | b'\t' | b'\r' | b'\n') {
        i -= 1;
    }
    i
}

/// The opening quote of the string whose closing quote is at `close`: the nearest `"`
/// before it that is not escaped (not preceded by an odd number of backslashes).
fn string_start_back(b: &[u8], close: usize) -> Option<usize> {
    let mut i = close;
    while i > 0 {
        i -= 1;
        if b[i] == b'"' {
            let mut k = i;
            while k > 0 && b[k - 1] == b'\\' {
                k -= 1;
            }
            if (i - k).is_multiple_of(2) {
                return Some(i);
            }
        }
    }
    None
}

/// Call `f(key, value)` for the top-level members after the last nested value of the JSON
/// object `b`, last member first, and answer where that nested value ends. `None` when `b`
/// has no nested value or does not end like an object. Exact when `b` is valid JSON: read
/// backwards, a string ends at the nearest unescaped `"`, and a member whose value is
/// followed by the object's closing `}` (or by a later top-level member) is top-level.
fn walk_backward<'a>(b: &'a [u8], f: &mut impl FnMut(&'a [u8], &'a [u8])) -> Option<usize> {
    let mut i = skip_ws_back(b, b.len()).checked_sub(1)?;
    if b[i] != b'}' {
        return None;
    }
    loop {
        // The value ends at `end` (exclusive), `i` is the `}` or `,` after it.
        let end = skip_ws_back(b, i);
        let start = match *b.get(end.checked_sub(1)?)? {
            b'}' | b']' => return Some(end),
            b'"' => string_start_back(b, end - 1)?,
            _ => {
                let mut s = end;
                while s > 0
                    && !matches!(
                        b[s - 1],
                        b',' | b':' | b'{' | b'[' | b'"' | b' ' | b'\t' | b'\r' | b'\n'
                    )
                {
                    s -= 1;
                }
                if s == end {
                    return None;
                }
                s
            }
        };
        let colon = skip_ws_back(b, start).checked_sub(1)?;
        if b[colon] != b':' {
            return None;
        }
        let key_close = skip_ws_back(b, colon).checked_sub(1)?;
        if b[key_close] != b'"' {
            return None;
        }
        let key_open = string_start_back(b, key_close)?;
        f(&b[key_open + 1..key_close], &b[start..end]);
        i = skip_ws_back(b, key_open).checked_sub(1)?;
        if b[i] != b',' {
            // The object's `{`: no nested value at all (the forward walk reads such lines).
            return None;
        }
    }
}

/// The first `\n` at or after `from`, 64 bytes at a time.
fn find_newline(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    let mut blocks = rest.chunks_exact(BLOCK);
    let mut base = from;
    for block in &mut blocks {
        if block.iter().fold(0u8, |a, &c| a | u8::from(c == b'\n')) != 0 {
            return block.iter().position(|&c| c == b'\n').map(|k| base + k);
        }
        base += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(|&c| c == b'\n')
        .map(|k| base + k)
}

impl IndexFile {
    /// The file without the lines of `removed` versions (and without unreadable lines);
    /// every kept line byte-identical. A kept last line without `\n` stays without.
    pub fn render(&self, body: &[u8], removed: &HashSet<String>) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        for l in &self.lines {
            if !removed.contains(&l.vers) {
                out.extend_from_slice(&body[l.start..l.end]);
            }
        }
        out
    }

    /// The line of one version.
    pub fn line(&self, vers: &str) -> Option<&IndexLine> {
        self.lines.iter().find(|l| l.vers == vers)
    }
}

/// One readable line as the index gate needs it: where it is, its version and `pubtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Byte range of the line in the file, including its `\n` if any.
    pub start: usize,
    pub end: usize,
    pub vers: String,
    /// `pubtime` as written.
    pub pubtime: Option<String>,
}

impl IndexEntry {
    /// `pubtime` in seconds since the epoch, when present and valid RFC 3339.
    pub fn published_unix(&self) -> Option<i64> {
        self.pubtime
            .as_deref()
            .and_then(UploadTime::parse)
            .map(|t| t.unix_seconds)
    }
}

/// An index file as the index gate reads it ([`IndexScanner`], [`summarize_index`]): the
/// same lines, ranges, `vers` and `pubtime` as [`parse_index`] for every valid line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSummary {
    /// `name` of the first readable line.
    pub name: Option<String>,
    pub entries: Vec<IndexEntry>,
    /// Lines that could not be read (dropped from any rendering).
    pub unreadable: usize,
}

impl IndexSummary {
    /// The file without the lines of `removed` versions (and without unreadable or blank
    /// lines); every kept line byte-identical. A kept last line without `\n` stays without.
    pub fn render(&self, body: &[u8], removed: &HashSet<String>) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        for e in &self.entries {
            if !removed.contains(&e.vers) {
                out.extend_from_slice(&body[e.start..e.end]);
            }
        }
        out
    }

    /// The byte ranges of `body` that [`IndexSummary::render`] keeps, adjacent lines merged:
    /// the rendering is their concatenation (one range `0..body.len()` when nothing changes,
    /// so the rendering can reuse `body` instead of copying it).
    pub fn kept_runs(&self, removed: &HashSet<String>) -> Vec<std::ops::Range<usize>> {
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        for e in &self.entries {
            if removed.contains(&e.vers) {
                continue;
            }
            match runs.last_mut() {
                Some(last) if last.end == e.start => last.end = e.end,
                _ => runs.push(e.start..e.end),
            }
        }
        runs
    }

    /// Whether [`IndexSummary::render`] would answer `body` itself: nothing removed and the
    /// entries cover the whole body (no unreadable or blank line).
    pub fn renders_unchanged(&self, body: &[u8], removed: &HashSet<String>) -> bool {
        let runs = self.kept_runs(removed);
        runs.len() == 1 && runs[0] == (0..body.len())
    }

    /// The entry of one version.
    pub fn line(&self, vers: &str) -> Option<&IndexEntry> {
        self.entries.iter().find(|e| e.vers == vers)
    }

    /// Every field of an entry's line (its `cksum`, `yanked`), read in full.
    pub fn fields(&self, body: &[u8], entry: &IndexEntry) -> Option<IndexLine> {
        let raw = read_line(body.get(entry.start..entry.end)?.trim_ascii())?;
        Some(IndexLine {
            start: entry.start,
            end: entry.end,
            name: raw.name.into_owned(),
            vers: raw.vers.into_owned(),
            cksum: raw.cksum,
            yanked: raw.yanked.unwrap_or(false),
            pubtime: raw.pubtime,
        })
    }
}

/// Reads an index file as it arrives: [`IndexScanner::push`] each chunk (any split, even
/// inside a line or a UTF-8 character), then [`IndexScanner::finish`]. Each line is read as
/// soon as its `\n` arrives, so the reading overlaps the transfer.
#[derive(Debug, Default)]
pub struct IndexScanner {
    body: Vec<u8>,
    summary: IndexSummary,
    /// Start of the line not complete yet.
    line_start: usize,
}

impl IndexScanner {
    /// A scanner whose buffer holds `capacity` bytes before growing.
    pub fn with_capacity(capacity: usize) -> IndexScanner {
        IndexScanner {
            body: Vec::with_capacity(capacity),
            ..IndexScanner::default()
        }
    }

    /// Append `chunk` and read every line it completes.
    pub fn push(&mut self, chunk: &[u8]) {
        let from = self.body.len();
        self.body.extend_from_slice(chunk);
        // No `\n` before `from` after `line_start`: search only the new bytes.
        self.line_start = read_lines(&mut self.summary, &self.body, self.line_start, from);
    }

    /// The bytes received so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The lines read so far (the last one, if its `\n` has not arrived, is not).
    pub fn summary(&self) -> &IndexSummary {
        &self.summary
    }

    /// The whole body and its summary (the last line read even without its `\n`).
    pub fn finish(mut self) -> (Vec<u8>, IndexSummary) {
        if self.line_start < self.body.len() {
            read_entry(
                &mut self.summary,
                &self.body,
                self.line_start,
                self.body.len(),
            );
        }
        (self.body, self.summary)
    }
}

/// [`IndexScanner`] on a whole body at once.
pub fn summarize_index(body: &[u8]) -> IndexSummary {
    let mut summary = IndexSummary::default();
    let start = read_lines(&mut summary, body, 0, 0);
    if start < body.len() {
        read_entry(&mut summary, body, start, body.len());
    }
    summary
}

/// Read each complete line from `line_start` (searching for `\n` from `from`); answers the
/// start of the incomplete rest.
fn read_lines(
    summary: &mut IndexSummary,
    body: &[u8],
    mut line_start: usize,
    from: usize,
) -> usize {
    let mut from = from.max(line_start);
    while let Some(nl) = find_newline(body, from) {
        read_entry(summary, body, line_start, nl + 1);
        line_start = nl + 1;
        from = line_start;
    }
    line_start
}

fn read_entry(summary: &mut IndexSummary, body: &[u8], start: usize, end: usize) {
    let line = body[start..end].trim_ascii();
    if line.is_empty() {
        return;
    }
    let keys = read_ends(line)
        .or_else(|| read_line(line).map(|r| (r.name.into_owned(), r.vers.into_owned(), r.pubtime)));
    match keys {
        Some((name, vers, pubtime)) if !vers.trim().is_empty() => {
            if summary.name.is_none() {
                summary.name = Some(name);
            }
            summary.entries.push(IndexEntry {
                start,
                end,
                vers,
                pubtime,
            });
        }
        _ => summary.unreadable += 1,
    }
}

/// The raw values of the fields read at the ends of a line.
#[derive(Default)]
struct Ends<'a> {
    name: Option<&'a [u8]>,
    vers: Option<&'a [u8]>,
    pubtime: Option<&'a [u8]>,
    /// No escaped key, no field twice, `cksum` and `yanked` of the right type.
    ok: bool,
}

impl<'a> Ends<'a> {
    fn take(&mut self, key: &'a [u8], value: &'a [u8]) {
        let slot = match key {
            b"name" => &mut self.name,
            b"vers" => &mut self.vers,
            b"pubtime" => &mut self.pubtime,
            b"cksum" => {
                self.ok &= value == b"null" || json_str(value).is_some();
                return;
            }
            b"yanked" => {
                self.ok &= matches!(value, b"true" | b"false" | b"null");
                return;
            }
            _ => {
                self.ok &= !key.contains(&b'\\');
                return;
            }
        };
        self.ok &= slot.replace(value).is_none();
    }
}

fn json_str(v: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    serde_json::from_slice(v).ok()
}

/// `(name, vers, pubtime)` from the members at both ends of `line`, or `None` when the full
/// reading is needed (see the module documentation).
fn read_ends(line: &[u8]) -> Option<(String, String, Option<String>)> {
    let mut ends = Ends {
        ok: true,
        ..Ends::default()
    };
    let mut take = |k, v| ends.take(k, v);
    let complete = match walk_forward(line, true, &mut take)? {
        Walk::Complete => true,
        Walk::Nested(first) => {
            if walk_backward(line, &mut take)? <= first {
                return None;
            }
            false
        }
    };
    if !ends.ok || (ends.pubtime.is_none() && !complete) {
        return None;
    }
    let pubtime = match ends.pubtime {
        None | Some(b"null") => None,
        Some(v) => Some(json_str(v)?.into_owned()),
    };
    Some((
        json_str(ends.name?)?.into_owned(),
        json_str(ends.vers?)?.into_owned(),
        pubtime,
    ))
}

/// The URL of a `.crate` download on an upstream whose `dl` setting is `template`: markers
/// `{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}` are replaced;
/// without markers `/{crate}/{version}/download` is appended (the Cargo book's rule).
pub fn download_url(template: &str, name: &str, version: &str, cksum: Option<&str>) -> String {
    let markers = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !markers.iter().any(|m| template.contains(m)) {
        return format!(
            "{}/{name}/{version}/download",
            template.trim_end_matches('/')
        );
    }
    let prefix = {
        let p = index_path(name);
        p.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    };
    let prefix_cased = match (name.len(), prefix_parts(name)) {
        (1, _) => "1".to_string(),
        (2, _) => "2".to_string(),
        (3, (p1, _)) => format!("3/{p1}"),
        (_, (p1, p2)) => format!("{p1}/{p2}"),
    };
    template
        .replace("{crate}", name)
        .replace("{version}", version)
        .replace("{lowerprefix}", &prefix)
        .replace("{prefix}", &prefix_cased)
        .replace("{sha256-checksum}", cksum.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn non_ascii_names_give_a_path_not_a_panic() {
        for name in ["aébc", "é", "éé", "aé", "ééé", "日本語", "ab日本"] {
            let _ = index_path(name);
            let _ = download_url("https://dl.example/{prefix}/{crate}", name, "1.0.0", None);
            assert!(!valid_name(name));
        }
    }

    #[test]
    fn index_paths() {
        for (name, path) in [
            ("a", "1/a"),
            ("cc", "2/cc"),
            ("syn", "3/s/syn"),
            ("serde", "se/rd/serde"),
            ("Inflector", "in/fl/inflector"),
        ] {
            assert_eq!(index_path(name), path);
            assert_eq!(parse_index_path(path).unwrap(), name.to_ascii_lowercase());
        }
        for bad in [
            "se/rd/Serde",
            "xx/rd/serde",
            "3/x/syn",
            "1/ab",
            "se/rd/../serde",
            "",
            "se/rd/ser%64e",
            "1/-",
        ] {
            assert!(parse_index_path(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_index_path("se/rd/Serde"),
            Err(CargoPathError::BadName(_) | CargoPathError::UpperCase(_))
        ));
    }

    #[test]
    fn filtering_keeps_other_lines_byte_identical() {
        let body = b"{\"name\":\"x\",\"vers\":\"0.1.0\",\"cksum\":\"aa\",\"pubtime\":\"2020-01-01T00:00:00Z\",\"zz\":1}\n{\"name\":\"x\", \"vers\": \"0.2.0\", \"yanked\": true, \"v\": 3}\nnot json\n{\"name\":\"x\",\"vers\":\"0.3.0\"}";
        let f = parse_index(body);
        assert_eq!(f.lines.len(), 3);
        assert_eq!(f.unreadable, 1);
        assert!(f.line("0.2.0").unwrap().yanked);
        assert_eq!(
            f.line("0.1.0").unwrap().published_unix(),
            Some(1_577_836_800)
        );
        let removed: HashSet<String> = ["0.2.0".to_string()].into();
        let out = f.render(body, &removed);
        assert_eq!(out, b"{\"name\":\"x\",\"vers\":\"0.1.0\",\"cksum\":\"aa\",\"pubtime\":\"2020-01-01T00:00:00Z\",\"zz\":1}\n{\"name\":\"x\",\"vers\":\"0.3.0\"}".to_vec());
    }

    #[test]
    fn recorded_index_files_round_trip() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/registry/cargo"
        );
        for name in ["a", "cc", "reqwest", "serde", "syn", "tokio"] {
            let gz = std::fs::read(format!("{dir}/{name}.idx.gz")).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body)
                .unwrap();
            let f = parse_index(&body);
            assert_eq!(f.unreadable, 0, "{name}");
            assert!(f.lines.iter().all(|l| l.pubtime.is_some() && l.cksum.as_ref().is_some_and(|c| c.len() == 64)), "{name}");
            assert_eq!(
                f.render(&body, &HashSet::new()),
                body,
                "{name}: nothing removed must be identical"
            );
            let every_other: HashSet<String> =
                f.lines.iter().step_by(2).map(|l| l.vers.clone()).collect();
            let out = f.render(&body, &every_other);
            let again = parse_index(&out);
            assert_eq!(
                again.lines.len(),
                f.lines.len() - every_other.len(),
                "{name}"
            );
            for l in &again.lines {
                assert!(!every_other.contains(&l.vers));
                let orig = f.line(&l.vers).unwrap();
                assert_eq!(
                    &out[l.start..l.end].trim_ascii_end(),
                    &body[orig.start..orig.end].trim_ascii_end()
                );
            }
        }
    }

    #[test]
    fn download_urls() {
        assert_eq!(
            download_url("https://dl.example/crates", "serde", "1.0.0", None),
            "https://dl.example/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url("https://dl.example/crates/", "serde", "1.0.0", None),
            "https://dl.example/crates/serde/1.0.0/download"
        );
        assert_eq!(
            download_url(
                "http://h/dl/{crate}/{version}/{lowerprefix}/{sha256-checksum}/download",
                "Demo-Crate",
                "0.1.0",
                Some("ab")
            ),
            "http://h/dl/Demo-Crate/0.1.0/de/mo/ab/download"
        );
        assert_eq!(
            download_url("http://h/{prefix}/{crate}", "Syn", "1.0.0", None),
            "http://h/3/S/Syn"
        );
    }

    /// (name, vers, cksum, yanked, pubtime)
    type Fields = (String, String, Option<String>, bool, Option<String>);

    fn serde_fields(line: &[u8]) -> Option<Fields> {
        let r: RawLine<'_> = serde_json::from_slice(line).ok()?;
        Some((
            r.name.into_owned(),
            r.vers.into_owned(),
            r.cksum,
            r.yanked.unwrap_or(false),
            r.pubtime,
        ))
    }

    fn scanned_fields(line: &[u8]) -> Option<Fields> {
        let r = scan_line(line)?;
        Some((
            r.name.into_owned(),
            r.vers.into_owned(),
            r.cksum,
            r.yanked.unwrap_or(false),
            r.pubtime,
        ))
    }

    #[test]
    fn scanner_agrees_with_serde_on_recorded_lines() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/registry/cargo"
        );
        for name in ["a", "cc", "reqwest", "serde", "syn", "tokio"] {
            let gz = std::fs::read(format!("{dir}/{name}.idx.gz")).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body)
                .unwrap();
            for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let scanned = scanned_fields(line);
                assert!(
                    scanned.is_some(),
                    "{name}: the scanner gave up on a real line"
                );
                assert_eq!(scanned, serde_fields(line), "{name}");
            }
        }
        // Escapes and odd spacing.
        for line in [
            &br#"{"name":"xA","vers":"1.0.0","deps":[{"name":"n"}]{","req":"^1"}],"yanked":true}"#[..],
            br#" { "vers" : "2.0.0" , "name" : "y" , "cksum" : null , "pubtime" : "2020-01-01T00:00:00Z" } "#,
            br#"{"name":"z","vers":"3.0.0","yanked":"no"}"#,
        ] {
            assert_eq!(read_line(line).map(|r| (r.name.into_owned(), r.vers.into_owned())), serde_json::from_slice::<RawLine<'_>>(line).ok().map(|r| (r.name.into_owned(), r.vers.into_owned())));
        }
    }

    /// The byte-by-byte definition [`end_of_nested`] must match (the scanner before blocks).
    fn end_of_nested_reference(b: &[u8], i: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut j = i;
        while j < b.len() {
            match b[j] {
                b'"' => {
                    j = end_of_string(b, j)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j + 1);
                    }
                }
                _ => {}
            }
            j += 1;
        }
        None
    }

    fn recorded(name: &str) -> Vec<u8> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/registry/cargo"
        );
        let gz = std::fs::read(format!("{dir}/{name}.idx.gz")).unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body).unwrap();
        body
    }

    /// The summary as `(start, end, vers, pubtime)` rows, to compare with [`parse_index`].
    fn rows(s: &IndexSummary) -> Vec<(usize, usize, String, Option<String>)> {
        s.entries
            .iter()
            .map(|e| (e.start, e.end, e.vers.clone(), e.pubtime.clone()))
            .collect()
    }

    fn full_rows(f: &IndexFile) -> Vec<(usize, usize, String, Option<String>)> {
        f.lines
            .iter()
            .map(|l| (l.start, l.end, l.vers.clone(), l.pubtime.clone()))
            .collect()
    }

    #[test]
    fn summary_agrees_with_full_parse_on_recorded_files() {
        for name in ["a", "cc", "reqwest", "serde", "syn", "tokio"] {
            let body = recorded(name);
            let full = parse_index(&body);
            let summary = summarize_index(&body);
            assert_eq!(rows(&summary), full_rows(&full), "{name}");
            assert_eq!(summary.unreadable, 0, "{name}");
            assert_eq!(summary.name.as_deref(), Some(name));
            for e in &summary.entries {
                let line = body[e.start..e.end].trim_ascii();
                assert!(
                    read_ends(line).is_some(),
                    "{name} {}: a recorded line needed the full reading",
                    e.vers
                );
                let fields = summary.fields(&body, e).unwrap();
                assert_eq!(Some(&fields), full.line(&e.vers), "{name}");
            }
            assert!(summary.renders_unchanged(&body, &HashSet::new()));
            let every_other: HashSet<String> = summary
                .entries
                .iter()
                .step_by(2)
                .map(|e| e.vers.clone())
                .collect();
            assert!(!summary.renders_unchanged(&body, &every_other));
            assert_eq!(
                summary.render(&body, &every_other),
                full.render(&body, &every_other),
                "{name}"
            );
            for removed in [HashSet::new(), every_other.clone()] {
                let runs = summary.kept_runs(&removed);
                let joined: Vec<u8> = runs.iter().flat_map(|r| body[r.clone()].to_vec()).collect();
                assert_eq!(joined, summary.render(&body, &removed), "{name}");
                assert!(
                    runs.windows(2).all(|w| w[0].end < w[1].start),
                    "{name}: runs merged"
                );
            }
            assert_eq!(summary.kept_runs(&HashSet::new()), vec![(0..body.len())]);
            // Fed in chunks of every awkward size: the same summary and bytes.
            for size in [1, 7, 64, 4096, 65_536] {
                let mut s = IndexScanner::with_capacity(body.len());
                for c in body.chunks(size) {
                    s.push(c);
                }
                let (bytes, again) = s.finish();
                assert_eq!(bytes, body);
                assert_eq!(again, summary, "{name} in chunks of {size}");
            }
        }
    }

    #[test]
    fn scanner_edge_cases() {
        let line = |vers: &str, extra: &str| {
            format!(
                r#"{{"name":"x","vers":"{vers}","deps":[{{"name":"y","req":"^1","features":["a]}}\"["]}}],"features":{{"ü":[]}}{extra},"yanked":false,"pubtime":"2020-01-01T00:00:00Z","v":2}}"#
            )
        };
        // CRLF line ends, a blank line, a last line without `\n`, a multi-byte character.
        let body = format!(
            "{}\r\n\r\n{}\n  \n{}",
            line("1.0.0", ""),
            line("1.0.1-é", r#","cksum":"ab""#),
            line("2.0.0", "")
        );
        let s = summarize_index(body.as_bytes());
        let vers: Vec<&str> = s.entries.iter().map(|e| e.vers.as_str()).collect();
        assert_eq!(vers, ["1.0.0", "1.0.1-é", "2.0.0"]);
        assert_eq!(s.unreadable, 0);
        assert_eq!(s.entries[2].end, body.len());
        assert!(
            s.entries
                .iter()
                .all(|e| e.published_unix() == Some(1_577_836_800))
        );
        assert!(
            !s.renders_unchanged(body.as_bytes(), &HashSet::new()),
            "blank lines are dropped"
        );
        // Every split point, including inside `é` and `ü` and between `\r` and `\n`.
        for cut in 0..=body.len() {
            let mut sc = IndexScanner::default();
            sc.push(&body.as_bytes()[..cut]);
            sc.push(&body.as_bytes()[cut..]);
            let (bytes, again) = sc.finish();
            assert_eq!(bytes, body.as_bytes());
            assert_eq!(again, s, "split at {cut}");
        }
        // A huge line (a 4 MB `deps` array) is read, in full or in chunks.
        let deps = vec![r#"{"name":"d","req":"^1","features":["}]"]}"#; 100_000].join(",");
        let huge = format!(
            r#"{{"name":"x","vers":"3.0.0","deps":[{deps}],"cksum":"cc","pubtime":"2021-01-01T00:00:00Z"}}"#
        );
        let mut sc = IndexScanner::default();
        for c in huge.as_bytes().chunks(8192) {
            sc.push(c);
        }
        let (_, h) = sc.finish();
        assert_eq!(rows(&h), full_rows(&parse_index(huge.as_bytes())));
        assert_eq!(h.entries[0].vers, "3.0.0");
        assert_eq!(
            h.fields(huge.as_bytes(), &h.entries[0])
                .unwrap()
                .cksum
                .as_deref(),
            Some("cc")
        );
        // A truncated line (the transfer stopped mid-line) is unreadable, never half-read.
        let cut = &huge.as_bytes()[..huge.len() / 2];
        let t = summarize_index(cut);
        assert!(t.entries.is_empty());
        assert_eq!(t.unreadable, 1);
    }

    #[test]
    fn fields_in_the_middle_or_twice_take_the_full_reading() {
        for (line, want) in [
            // `pubtime` before the nested values: found by the forward walk.
            (&br#"{"pubtime":"2020-01-01T00:00:00Z","name":"x","vers":"1.0.0","deps":[]}"#[..], Some(Some("2020-01-01T00:00:00Z"))),
            // `pubtime` between two nested values: only the full reading sees it.
            (br#"{"name":"x","vers":"1.0.0","deps":[],"pubtime":"2020-01-01T00:00:00Z","features":{}}"#, Some(Some("2020-01-01T00:00:00Z"))),
            // No `pubtime` at all.
            (br#"{"name":"x","vers":"1.0.0","deps":[],"features":{}}"#, Some(None)),
            (br#"{"name":"x","vers":"1.0.0"}"#, Some(None)),
            // `vers` after the nested values.
            (br#"{"name":"x","deps":[],"vers":"1.0.0","pubtime":null}"#, Some(None)),
            // An escaped key serde_json reads as `pubtime`.
            (br#"{"name":"x","vers":"1.0.0","deps":[],"pubtim\u0065":"2020-01-01T00:00:00Z"}"#, Some(Some("2020-01-01T00:00:00Z"))),
            // Wrong types are unreadable, wherever they are.
            (br#"{"name":"x","vers":"1.0.0","deps":[],"yanked":"no","pubtime":null}"#, None),
            (br#"{"name":"x","vers":"1.0.0","deps":[],"cksum":1,"pubtime":null}"#, None),
            (br#"{"name":"x","vers":1,"deps":[],"pubtime":null}"#, None),
        ] {
            let s = summarize_index(line);
            let got = s.entries.first().map(|e| e.pubtime.as_deref());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
            assert_eq!(
                rows(&s),
                full_rows(&parse_index(line)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // A field twice: serde's derive (cargo) refuses the line; the full reading decides.
        let twice = br#"{"name":"x","vers":"1.0.0","deps":[],"vers":"6.6.6","pubtime":null}"#;
        assert!(read_ends(twice).is_none());
        assert_eq!(
            rows(&summarize_index(twice)),
            full_rows(&parse_index(twice))
        );
    }

    /// A valid index line with the fields in the given order, nested values holding strings
    /// that look like structure, and the given spacing.
    fn index_line(
        order: &[usize],
        vers: &str,
        pubtime: Option<Option<&str>>,
        tricky: &str,
        space: &str,
    ) -> String {
        let s = |v: &str| serde_json::to_string(v).unwrap();
        let mut members = Vec::new();
        for &k in order {
            let m = match k {
                0 => format!("\"name\":{space}{}", s("crate")),
                1 => format!("\"vers\":{space}{}", s(vers)),
                2 => format!(
                    "\"deps\":{space}[{{\"name\":{},\"features\":[{}]}}]",
                    s(tricky),
                    s(tricky)
                ),
                3 => format!("\"cksum\":{space}{}", s("ab")),
                4 => format!("\"features\":{space}{{{}:[{}]}}", s(tricky), s(tricky)),
                5 => match pubtime {
                    None => continue,
                    Some(None) => format!("\"pubtime\":{space}null"),
                    Some(Some(t)) => format!("\"pubtime\":{space}{}", s(t)),
                },
                6 => format!("\"yanked\":{space}true"),
                _ => format!("\"v\":{space}2"),
            };
            members.push(m);
        }
        format!("{{{space}{}{space}}}", members.join(&format!(",{space}")))
    }

    proptest! {
        /// On valid lines the scanner answers exactly what serde_json answers (it may also read
        /// lines whose skipped values are not valid JSON: those reach cargo unchanged).
        #[test]
        fn scanner_never_disagrees_with_serde(
            name in "[a-z\\\\\"{}\\[\\]]{1,6}",
            vers in "[0-9.]{1,6}|\\\\u0031",
            extra in proptest::collection::vec(("[a-z]{1,4}", "\\{\\}|\\[1,\\[2\\]\\]|\"[}{\\]\\[,:]*\"|true|null|[1-9][0-9]{0,2}|0"), 0..4),
            yanked in proptest::option::of(proptest::bool::ANY),
        ) {
            let mut fields = vec![
                format!("\"name\":{}", serde_json::to_string(&name).unwrap()),
                format!("\"vers\":{}", serde_json::to_string(&vers).unwrap()),
            ];
            for (k, v) in &extra {
                fields.push(format!("\"x{k}\":{v}"));
            }
            if let Some(y) = yanked {
                fields.push(format!("\"yanked\":{y}"));
            }
            let line = format!("{{{}}}", fields.join(","));
            let scanned = scanned_fields(line.as_bytes());
            prop_assert!(scanned.is_some(), "{}", line);
            prop_assert_eq!(scanned, serde_fields(line.as_bytes()), "{}", line);
        }

        #[test]
        fn scanner_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = scan_line(&body);
            let _ = top_level_fields(&body, |_, _| {});
        }

        #[test]
        fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let f = parse_index(&body);
            let _ = f.render(&body, &HashSet::new());
        }

        /// The block-wise bracket matcher is the byte-by-byte one, on any bytes.
        #[test]
        fn nested_skip_matches_reference(
            body in proptest::collection::vec(
                proptest::sample::select(b"{}[]\" a,:".to_vec()), 0..400),
            backslashes in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
            open in proptest::sample::select(b"{[".to_vec()),
            depth in 1..24usize,
        ) {
            // Deep enough that the value often spans several 64-byte blocks; a few
            // backslashes (escapes inside strings, ignored outside), sometimes at a block's
            // last byte.
            let mut b = vec![open; depth];
            b.extend(body);
            for i in &backslashes {
                let k = i.index(b.len());
                b[k] = b'\\';
            }
            prop_assert_eq!(end_of_nested(&b, 0), end_of_nested_reference(&b, 0));
            if !backslashes.is_empty() {
                let mut c = b.clone();
                c.insert(63.min(c.len()), b'\\');
                c.insert(64.min(c.len()), b'"');
                prop_assert_eq!(end_of_nested(&c, 0), end_of_nested_reference(&c, 0));
            }
        }

        /// Whatever the field order, the spacing and the strings in nested values, the gate's
        /// reading of a valid line is serde_json's.
        #[test]
        fn summary_agrees_with_serde(
            order in Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
            vers in "[0-9]\\.[0-9]{1,2}\\.[0-9](-[a-zé\"\\\\]{1,3})?",
            pubtime in proptest::option::of(proptest::option::of("2020-0[1-9]-1[0-9]T00:00:00Z")),
            tricky in "[\\]\\[}{\"\\\\,:ü a]{0,12}",
            space in "( |\t)?",
        ) {
            let line = index_line(&order, &vers, pubtime.as_ref().map(|p| p.as_deref()), &tricky, &space);
            let expected = serde_json::from_slice::<RawLine<'_>>(line.as_bytes()).unwrap();
            let s = summarize_index(line.as_bytes());
            prop_assert_eq!(s.entries.len(), 1, "{}", line);
            prop_assert_eq!(&s.entries[0].vers, &expected.vers, "{}", line);
            prop_assert_eq!(&s.entries[0].pubtime, &expected.pubtime, "{}", line);
            prop_assert_eq!(s.name.as_deref(), Some(&*expected.name), "{}", line);
            prop_assert_eq!(rows(&s), full_rows(&parse_index(line.as_bytes())), "{}", line);
            // Fields before or after both nested values are read at the ends, not in full.
            let pos = |k: usize| order.iter().position(|&x| x == k).unwrap_or(0);
            let (first, last) = (pos(2).min(pos(4)), pos(2).max(pos(4)));
            let at_ends = |k: usize| pos(k) < first || pos(k) > last;
            if at_ends(0) && at_ends(1) && pubtime.is_some() && at_ends(5) {
                prop_assert!(read_ends(line.as_bytes()).is_some(), "{}", line);
            }
        }

        /// Any chunking of any body reads the same as the whole body at once.
        #[test]
        fn chunking_never_changes_the_summary(
            parts in proptest::collection::vec(prop_oneof![
                Just(r#"{"name":"x","vers":"1.0.0","deps":[{"n":"]"}],"pubtime":"2020-01-01T00:00:00Z"}"#.to_string()),
                Just(r#"{"name":"é","vers":"2.0.0-ü","features":{"a":["}"]}}"#.to_string()),
                Just("\n".to_string()),
                Just("\r\n".to_string()),
                "[ -~éü\n]{0,20}",
            ], 0..12),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        ) {
            let body = parts.concat().into_bytes();
            let whole = summarize_index(&body);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            points.sort_unstable();
            let mut sc = IndexScanner::default();
            let mut at = 0;
            for p in points {
                sc.push(&body[at..p]);
                at = p;
            }
            sc.push(&body[at..]);
            let (bytes, summary) = sc.finish();
            prop_assert_eq!(bytes, body.clone());
            prop_assert_eq!(&summary, &whole);
            let full = parse_index(&body);
            prop_assert_eq!(summary.entries.len() + summary.unreadable, full.lines.len() + full.unreadable);
        }

        #[test]
        fn summary_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = summarize_index(&body);
            let _ = s.render(&body, &HashSet::new());
            let _ = s.renders_unchanged(&body, &HashSet::new());
            for e in &s.entries {
                let _ = s.fields(&body, e);
            }
        }

        #[test]
        fn path_round_trip(name in "[a-z][a-z0-9_-]{0,20}") {
            prop_assert_eq!(parse_index_path(&index_path(&name)).unwrap(), name);
        }

        #[test]
        fn path_parser_never_panics(path in "\\PC{0,80}") {
            let _ = parse_index_path(&path);
        }
    }
}
