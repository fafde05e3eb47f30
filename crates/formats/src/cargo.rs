//! The cargo sparse registry protocol: index paths, index files, download paths.
//!
//! An index file has one JSON object per line, one line per version. pkggate reads each
//! line only for `name`, `vers`, `cksum`, `yanked` and `pubtime`, and re-emits the original
//! bytes of every kept line (unknown fields and `v` values included), so a filtered file is
//! the upstream file minus some lines. A line that does not parse cannot be decided and is
//! dropped (counted), never passed through unchecked.
//!
//! Reading a line: a small hand-written scanner ([`top_level_fields`]) walks the object's
//! top-level members, skipping nested values (`deps`, `features`) by counting brackets
//! outside strings, and hands only the five values of interest to serde_json. Skipping with
//! serde_json itself tokenises every nested value and made the whole filter ~5× slower than
//! the transfer it guards; a property test checks the scanner against serde_json.

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
pub fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
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
        let end = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| start + i + 1);
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
        let slot_ok = match key {
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
        b'{' | b'[' => {
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

/// Call `f(key, value)` for each top-level member of the JSON object `b` (key without
/// quotes, escapes left as written; value as its raw bytes). `None` when `b` is not an
/// object of that shape; nested values are skipped, not validated.
pub fn top_level_fields<'a>(b: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> Option<()> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
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
        let value_end = end_of_value(b, i)?;
        f(key, &b[i..value_end]);
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
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
    let prefix_cased = match name.len() {
        1 => "1".to_string(),
        2 => "2".to_string(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
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
