//! The cargo sparse registry protocol: index paths, index files, download paths.
//!
//! An index file has one JSON object per line, one line per version. pkggate parses each
//! line only to read `name`, `vers`, `cksum`, `yanked` and `pubtime`, and re-emits the
//! original bytes of every kept line (unknown fields and `v` values included), so a filtered
//! file is the upstream file minus some lines. A line that does not parse cannot be decided
//! and is dropped (counted), never passed through unchecked.

use crate::pypi::UploadTime;
use std::collections::HashSet;

/// Longest crate name crates.io accepts.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CargoPathError {
    #[error("not a cargo index path: {0:?}")]
    NotIndexPath(String),
    #[error("invalid crate name {0:?} (ASCII letters, digits, `-`, `_`; at most 64; starts with a letter)")]
    BadName(String),
    #[error("index path {0:?} must be lower case")]
    UpperCase(String),
}

/// A crate name as crates.io accepts it.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        return Err(CargoPathError::NotIndexPath(path.chars().take(80).collect()));
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
        self.pubtime.as_deref().and_then(UploadTime::parse).map(|t| t.unix_seconds)
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
        let end = body[start..].iter().position(|&b| b == b'\n').map_or(body.len(), |i| start + i + 1);
        let line = &body[start..end];
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            match serde_json::from_slice::<RawLine<'_>>(trimmed) {
                Ok(raw) if !raw.vers.trim().is_empty() => out.lines.push(IndexLine {
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
    let markers = ["{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"];
    if !markers.iter().any(|m| template.contains(m)) {
        return format!("{}/{name}/{version}/download", template.trim_end_matches('/'));
    }
    let prefix = {
        let p = index_path(name);
        p.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default()
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
        for (name, path) in [("a", "1/a"), ("cc", "2/cc"), ("syn", "3/s/syn"), ("serde", "se/rd/serde"), ("Inflector", "in/fl/inflector")] {
            assert_eq!(index_path(name), path);
            assert_eq!(parse_index_path(path).unwrap(), name.to_ascii_lowercase());
        }
        for bad in ["se/rd/Serde", "xx/rd/serde", "3/x/syn", "1/ab", "se/rd/../serde", "", "se/rd/ser%64e", "1/-"] {
            assert!(parse_index_path(bad).is_err(), "{bad}");
        }
        assert!(matches!(parse_index_path("se/rd/Serde"), Err(CargoPathError::BadName(_) | CargoPathError::UpperCase(_))));
    }

    #[test]
    fn filtering_keeps_other_lines_byte_identical() {
        let body = b"{\"name\":\"x\",\"vers\":\"0.1.0\",\"cksum\":\"aa\",\"pubtime\":\"2020-01-01T00:00:00Z\",\"zz\":1}\n{\"name\":\"x\", \"vers\": \"0.2.0\", \"yanked\": true, \"v\": 3}\nnot json\n{\"name\":\"x\",\"vers\":\"0.3.0\"}";
        let f = parse_index(body);
        assert_eq!(f.lines.len(), 3);
        assert_eq!(f.unreadable, 1);
        assert!(f.line("0.2.0").unwrap().yanked);
        assert_eq!(f.line("0.1.0").unwrap().published_unix(), Some(1_577_836_800));
        let removed: HashSet<String> = ["0.2.0".to_string()].into();
        let out = f.render(body, &removed);
        assert_eq!(out, b"{\"name\":\"x\",\"vers\":\"0.1.0\",\"cksum\":\"aa\",\"pubtime\":\"2020-01-01T00:00:00Z\",\"zz\":1}\n{\"name\":\"x\",\"vers\":\"0.3.0\"}".to_vec());
    }

    #[test]
    fn recorded_index_files_round_trip() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/registry/cargo");
        for name in ["a", "cc", "reqwest", "serde", "syn", "tokio"] {
            let gz = std::fs::read(format!("{dir}/{name}.idx.gz")).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body).unwrap();
            let f = parse_index(&body);
            assert_eq!(f.unreadable, 0, "{name}");
            assert!(f.lines.iter().all(|l| l.pubtime.is_some() && l.cksum.as_ref().is_some_and(|c| c.len() == 64)), "{name}");
            assert_eq!(f.render(&body, &HashSet::new()), body, "{name}: nothing removed must be identical");
            let every_other: HashSet<String> = f.lines.iter().step_by(2).map(|l| l.vers.clone()).collect();
            let out = f.render(&body, &every_other);
            let again = parse_index(&out);
            assert_eq!(again.lines.len(), f.lines.len() - every_other.len(), "{name}");
            for l in &again.lines {
                assert!(!every_other.contains(&l.vers));
                let orig = f.line(&l.vers).unwrap();
                assert_eq!(&out[l.start..l.end].trim_ascii_end(), &body[orig.start..orig.end].trim_ascii_end());
            }
        }
    }

    #[test]
    fn download_urls() {
        assert_eq!(download_url("https://dl.example/crates", "serde", "1.0.0", None), "https://dl.example/crates/serde/1.0.0/download");
        assert_eq!(download_url("https://dl.example/crates/", "serde", "1.0.0", None), "https://dl.example/crates/serde/1.0.0/download");
        assert_eq!(
            download_url("http://h/dl/{crate}/{version}/{lowerprefix}/{sha256-checksum}/download", "Demo-Crate", "0.1.0", Some("ab")),
            "http://h/dl/Demo-Crate/0.1.0/de/mo/ab/download"
        );
        assert_eq!(download_url("http://h/{prefix}/{crate}", "Syn", "1.0.0", None), "http://h/3/S/Syn");
    }

    proptest! {
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
