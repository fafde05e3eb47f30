//! The legacy JSON API: `/pypi/<project>/json` and `/pypi/<project>/<version>/json`.
//!
//! Filtering ([`LegacyDoc::render`]):
//! * `releases`: a version the caller's `keep_version` refuses is removed; inside a kept
//!   version, files `keep_file` refuses are removed, and a version that had files and has
//!   none left is removed too. Versions listed without files stay unless refused.
//! * every kept file object is copied byte for byte except its `url`, which becomes the
//!   caller's URL.
//! * `info.version`: when upstream's is removed, it becomes the highest remaining version
//!   (PEP 440 order; preferring versions with a non-yanked file, then final releases; only
//!   versions with a kept file count). **Only `info.version` is changed**: the other `info`
//!   fields (`summary`, `requires_dist`, `requires_python`, `release_url`, `yanked`, …)
//!   still describe upstream's latest release, because they cannot be recomputed from this
//!   document; `info` is marked with [`INFO_MARK`] naming that release. `urls` then lists the
//!   kept files of the new version. When nothing remains, `info.version` is `null` and `urls`
//!   is empty.
//! * the per-version document has no `releases`: its `urls` are filtered, and
//!   [`LegacyRendered::upstream_version_removed`] tells the caller to answer 404 when the
//!   version itself is refused.
//! * all other members (`last_serial`, `vulnerabilities`, `ownership`, unknown keys) stay raw.
//!
//! Facts ([`LegacyDoc::facts`]): the release keys are the authoritative version of their
//! files here, so per-version publish time is the earliest `upload_time_iso_8601` (or naive
//! UTC `upload_time`) in `releases[v]`; [`LegacyDoc::repository_url`] comes from `info`.

use super::PypiError;
use super::facts::ProjectFacts;

/// Added to `info` when its `version` was retargeted: the upstream release the other `info`
/// fields still describe.
pub const INFO_MARK: &str = "pkggate_fields_describe_version";
use super::filename::parse_filename;
use super::json_util::{self, Entries, brief, is_null, json_str, push_json_str, splice};
use super::page::{
    FileEntry, Resolved, Rewrite, Yanked, check_filename, file_error, json_metadata, lower_keys,
    parse_base, resolve,
};
use crate::ecosystem::pep503_normalize;
use crate::{EcoVersion, Ecosystem};
use serde_json::value::RawValue;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use url::Url;

#[derive(Debug)]
struct RawFile<'a> {
    obj: &'a RawValue,
    url: &'a RawValue,
}

/// A parsed legacy JSON document (borrows the body).
#[derive(Debug)]
pub struct LegacyDoc<'a> {
    /// The project in PEP 503 normal form.
    pub project: String,
    /// `info.version`.
    pub info_version: Option<String>,
    /// `releases` in document order (`None` for the per-version document).
    pub releases: Option<Vec<(String, Vec<FileEntry>)>>,
    /// `urls`: the files of `info.version`.
    pub urls: Vec<FileEntry>,
    top: Vec<(String, &'a RawValue)>,
    info: Vec<(String, &'a RawValue)>,
    raw_releases: Vec<Vec<RawFile<'a>>>,
    raw_urls: Vec<RawFile<'a>>,
    repository_url: Option<String>,
}

/// A rendered legacy document and what filtering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRendered {
    pub body: String,
    /// `info.version` in the output.
    pub info_version: Option<String>,
    /// Upstream's `info.version` was removed (the per-version endpoint should answer 404).
    pub upstream_version_removed: bool,
    /// Release versions removed from `releases`.
    pub removed_versions: Vec<String>,
    pub files_removed: usize,
    /// Versions left in `releases` (0 for the per-version document).
    pub versions_kept: usize,
}

/// Parse `/pypi/<project>/json` or `/pypi/<project>/<version>/json`. `page_url` resolves
/// relative file URLs.
pub fn parse_legacy_json<'a>(
    project: &str,
    body: &'a [u8],
    page_url: &str,
) -> Result<LegacyDoc<'a>, PypiError> {
    let text = std::str::from_utf8(body).map_err(|e| PypiError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let base = parse_base(page_url)?;
    let project = pep503_normalize(project).into_owned();
    let top = Entries::parse(text).map_err(|e| PypiError::Json(e.to_string()))?;
    let info = match top.get("info") {
        Some(raw) if !is_null(raw) => {
            Entries::parse(raw.get()).map_err(|e| PypiError::Shape(format!("`info`: {e}")))?
        }
        _ => Entries(Vec::new()),
    };
    let info_version = opt_string(&info, "version")
        .map_err(|e| PypiError::Shape(format!("`info.version`: {e}")))?;
    let repository_url = repository_url_from_info(&info);

    let mut index = 0usize;
    let mut parse_list =
        |raw: &'a RawValue| -> Result<(Vec<FileEntry>, Vec<RawFile<'a>>), PypiError> {
            let items = json_util::array(raw).map_err(|e| PypiError::Shape(e.to_string()))?;
            let mut files = Vec::with_capacity(items.len());
            let mut raws = Vec::with_capacity(items.len());
            for item in items {
                let (f, url) = parse_legacy_file(&project, &base, index, item)?;
                index += 1;
                files.push(f);
                raws.push(RawFile { obj: item, url });
            }
            Ok((files, raws))
        };

    let (releases, raw_releases) = match top.get("releases") {
        Some(raw) if !is_null(raw) => {
            let map = Entries::parse(raw.get())
                .map_err(|e| PypiError::Shape(format!("`releases`: {e}")))?;
            let mut releases = Vec::with_capacity(map.0.len());
            let mut raws = Vec::with_capacity(map.0.len());
            for (version, list) in map.0 {
                let (files, raw) = parse_list(list).map_err(|e| {
                    PypiError::Shape(format!("`releases` {}: {e}", brief(&version)))
                })?;
                releases.push((version.into_owned(), files));
                raws.push(raw);
            }
            (Some(releases), raws)
        }
        _ => (None, Vec::new()),
    };
    let (urls, raw_urls) = match top.get("urls") {
        Some(raw) if !is_null(raw) => {
            parse_list(raw).map_err(|e| PypiError::Shape(format!("`urls`: {e}")))?
        }
        _ => (Vec::new(), Vec::new()),
    };
    Ok(LegacyDoc {
        project,
        info_version,
        releases,
        urls,
        top: owned_keys(top),
        info: owned_keys(info),
        raw_releases,
        raw_urls,
        repository_url,
    })
}

fn owned_keys(e: Entries<'_>) -> Vec<(String, &RawValue)> {
    e.0.into_iter().map(|(k, v)| (k.into_owned(), v)).collect()
}

fn opt_string(e: &Entries<'_>, key: &str) -> Result<Option<String>, serde_json::Error> {
    match e.get(key) {
        Some(raw) if !is_null(raw) => serde_json::from_str(raw.get()).map(Some),
        _ => Ok(None),
    }
}

fn parse_legacy_file<'a>(
    project: &str,
    base: &Url,
    index: usize,
    item: &'a RawValue,
) -> Result<(FileEntry, &'a RawValue), PypiError> {
    let e = Entries::parse(item.get()).map_err(|err| file_error(index, "", err.to_string()))?;
    let filename = opt_string(&e, "filename")
        .map_err(|err| file_error(index, "", format!("`filename`: {err}")))?
        .ok_or_else(|| file_error(index, "", "no `filename`"))?;
    check_filename(&filename).map_err(|r| file_error(index, &filename, r))?;
    let err = |r: String| file_error(index, &filename, r);
    let url_raw = e.get("url").ok_or_else(|| err("no `url`".into()))?;
    let href: String =
        serde_json::from_str(url_raw.get()).map_err(|x| err(format!("`url`: {x}")))?;
    let Resolved {
        url,
        hash: fragment_hash,
        ..
    } = resolve(base, &href).map_err(|x| err(format!("`url` {}: {x}", brief(&href))))?;
    let mut hashes = match e.get("digests") {
        Some(raw) if !is_null(raw) => serde_json::from_str::<BTreeMap<String, String>>(raw.get())
            .map(lower_keys)
            .map_err(|x| err(format!("`digests`: {x}")))?,
        _ => BTreeMap::new(),
    };
    if let Some((alg, hex)) = fragment_hash {
        hashes.entry(alg).or_insert(hex);
    }
    let yanked_flag = match e.get("yanked") {
        Some(raw) if !is_null(raw) => {
            serde_json::from_str::<bool>(raw.get()).map_err(|x| err(format!("`yanked`: {x}")))?
        }
        _ => false,
    };
    let reason =
        opt_string(&e, "yanked_reason").map_err(|x| err(format!("`yanked_reason`: {x}")))?;
    let yanked = if yanked_flag {
        Yanked::Yes {
            reason: reason.filter(|r| !r.is_empty()),
        }
    } else {
        Yanked::No
    };
    let size = match e.get("size") {
        Some(raw) if !is_null(raw) => {
            Some(serde_json::from_str::<u64>(raw.get()).map_err(|x| err(format!("`size`: {x}")))?)
        }
        _ => None,
    };
    let upload_time = match opt_string(&e, "upload_time_iso_8601")
        .map_err(|x| err(format!("`upload_time_iso_8601`: {x}")))?
    {
        Some(t) => Some(t),
        None => opt_string(&e, "upload_time").map_err(|x| err(format!("`upload_time`: {x}")))?,
    };
    let requires_python =
        opt_string(&e, "requires_python").map_err(|x| err(format!("`requires_python`: {x}")))?;
    let core_metadata = match e
        .get("core-metadata")
        .or_else(|| e.get("dist-info-metadata"))
    {
        Some(raw) => json_metadata(raw).map_err(|r| err(format!("`core-metadata`: {r}")))?,
        None => None,
    };
    let gpg_sig = match e.get("has_sig") {
        Some(raw) if !is_null(raw) => serde_json::from_str::<bool>(raw.get()).ok(),
        _ => None,
    };
    let parsed = parse_filename(project, &filename);
    Ok((
        FileEntry {
            filename,
            url,
            hashes,
            requires_python,
            yanked,
            core_metadata,
            gpg_sig,
            size,
            upload_time,
            kind: parsed.kind,
            version: parsed.version,
        },
        url_raw,
    ))
}

/// `project_urls` keys naming the source repository, in normal form (lower-case, letters
/// and digits only), best first.
const SOURCE_KEYS: &[&str] = &[
    "source",
    "sourcecode",
    "repository",
    "repo",
    "code",
    "github",
    "gitlab",
    "git",
];
const HOME_KEYS: &[&str] = &["homepage", "home"];
const FORGE_HOSTS: &[&str] = &[
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "sr.ht",
    "git.sr.ht",
];

fn http_url(v: &str) -> Option<String> {
    let t = v.trim();
    let lower = t.get(..8).unwrap_or(t).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then(|| t.to_string())
}

/// The repository URL an `info` object names: `project_urls` Source/Repository/Code-like
/// keys, then any `project_urls` value on a known forge, then Homepage-like keys, then
/// `home_page`. Only `http(s)://` values count (`UNKNOWN` and empty values are skipped).
fn repository_url_from_info(info: &Entries<'_>) -> Option<String> {
    let urls: Vec<(String, String)> = match info.get("project_urls") {
        Some(raw) if !is_null(raw) => Entries::parse(raw.get())
            .map(|e| {
                e.0.into_iter()
                    .filter_map(|(k, v)| {
                        let v: String = serde_json::from_str(v.get()).ok()?;
                        let key: String = k
                            .chars()
                            .filter(char::is_ascii_alphanumeric)
                            .map(|c| c.to_ascii_lowercase())
                            .collect();
                        Some((key, http_url(&v)?))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let by_keys = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            urls.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        })
    };
    by_keys(SOURCE_KEYS)
        .or_else(|| {
            urls.iter()
                .find(|(_, v)| {
                    Url::parse(v)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                        .is_some_and(|h| {
                            FORGE_HOSTS
                                .iter()
                                .any(|f| h == *f || h.ends_with(&format!(".{f}")))
                        })
                })
                .map(|(_, v)| v.clone())
        })
        .or_else(|| by_keys(HOME_KEYS))
        .or_else(|| {
            opt_string(info, "home_page")
                .ok()
                .flatten()
                .and_then(|v| http_url(&v))
        })
}

impl<'a> LegacyDoc<'a> {
    /// The repository URL `info` names (see the module doc), for `require_repository_url`.
    pub fn repository_url(&self) -> Option<&str> {
        self.repository_url.as_deref()
    }

    /// Per-version facts: releases (authoritative version of their files), or for the
    /// per-version document the `urls` under `info.version`.
    pub fn facts(&self) -> ProjectFacts {
        let mut facts = ProjectFacts::default();
        match &self.releases {
            Some(releases) => {
                for (v, files) in releases {
                    facts.add_listed(v);
                    for f in files {
                        facts.add_file(Some(v), f.yanked.is_yanked(), f.upload_time.as_deref());
                    }
                }
            }
            None => {
                for f in &self.urls {
                    facts.add_file(
                        self.info_version.as_deref(),
                        f.yanked.is_yanked(),
                        f.upload_time.as_deref(),
                    );
                }
            }
        }
        facts
    }

    /// Filter and rewrite (see the module doc).
    pub fn render(&self, rw: &Rewrite<'_>) -> Result<LegacyRendered, PypiError> {
        let mut files_removed = 0usize;
        // Per release: kept file indices, or None when the release is removed.
        let mut kept_releases: Vec<Option<Vec<usize>>> = Vec::new();
        let mut removed_versions = Vec::new();
        for (v, files) in self.releases.iter().flatten() {
            let keep: Vec<usize> = files
                .iter()
                .enumerate()
                .filter(|(_, f)| (rw.keep_file)(f))
                .map(|(i, _)| i)
                .collect();
            let stays = (rw.keep_version)(v) && (files.is_empty() || !keep.is_empty());
            if stays {
                files_removed += files.len() - keep.len();
                kept_releases.push(Some(keep));
            } else {
                files_removed += files.len();
                removed_versions.push(v.clone());
                kept_releases.push(None);
            }
        }
        let url_keep: Vec<usize> = self
            .urls
            .iter()
            .enumerate()
            .filter(|(_, f)| (rw.keep_file)(f))
            .map(|(i, _)| i)
            .collect();

        let upstream_kept = match (&self.info_version, &self.releases) {
            (None, _) => true,
            (Some(v), Some(releases)) => releases
                .iter()
                .zip(&kept_releases)
                .any(|((rv, _), k)| rv == v && k.is_some()),
            (Some(v), None) => {
                (rw.keep_version)(v) && (self.urls.is_empty() || !url_keep.is_empty())
            }
        };
        if self.releases.is_none() {
            files_removed += self.urls.len() - url_keep.len();
        }
        // The new info.version and where its files come from.
        let (info_version, urls_from): (Option<String>, UrlsFrom) = if upstream_kept {
            (self.info_version.clone(), UrlsFrom::Urls)
        } else {
            match self.pick_latest(&kept_releases) {
                Some(i) => (
                    self.releases
                        .as_ref()
                        .and_then(|r| r.get(i))
                        .map(|(v, _)| v.clone()),
                    UrlsFrom::Release(i),
                ),
                None => (None, UrlsFrom::Nothing),
            }
        };

        let mut out =
            String::with_capacity(self.top.iter().map(|(_, v)| v.get().len()).sum::<usize>() + 64);
        out.push('{');
        for (n, (k, raw)) in self.top.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_json_str(&mut out, k);
            out.push(':');
            match k.as_str() {
                "info" if !upstream_kept => {
                    let version_json = info_version.as_deref().map_or("null".to_string(), json_str);
                    // The mark: which release the other fields describe.
                    let from_json = self.info_version.as_deref().map(json_str);
                    json_util::push_object(
                        &mut out,
                        self.info
                            .iter()
                            .filter(|(ik, _)| ik != INFO_MARK)
                            .map(|(ik, iv)| {
                                (
                                    ik.as_str(),
                                    if ik == "version" {
                                        version_json.as_str()
                                    } else {
                                        iv.get()
                                    },
                                )
                            })
                            .chain(from_json.as_deref().map(|f| (INFO_MARK, f))),
                    );
                }
                "releases" if self.releases.is_some() => {
                    out.push('{');
                    let mut first = true;
                    for (ri, ((v, files), keep)) in self
                        .releases
                        .iter()
                        .flatten()
                        .zip(&kept_releases)
                        .enumerate()
                    {
                        let Some(keep) = keep else { continue };
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        push_json_str(&mut out, v);
                        out.push(':');
                        let raws = self.raw_releases.get(ri).map(Vec::as_slice).unwrap_or(&[]);
                        push_files(&mut out, files, raws, keep, rw)?;
                    }
                    out.push('}');
                }
                "urls" => match urls_from {
                    UrlsFrom::Urls => {
                        push_files(&mut out, &self.urls, &self.raw_urls, &url_keep, rw)?
                    }
                    UrlsFrom::Release(i) => {
                        let files = self
                            .releases
                            .as_ref()
                            .and_then(|r| r.get(i))
                            .map(|(_, f)| f.as_slice())
                            .unwrap_or(&[]);
                        let raws = self.raw_releases.get(i).map(Vec::as_slice).unwrap_or(&[]);
                        let keep = kept_releases.get(i).cloned().flatten().unwrap_or_default();
                        push_files(&mut out, files, raws, &keep, rw)?;
                    }
                    UrlsFrom::Nothing => out.push_str("[]"),
                },
                _ => out.push_str(raw.get()),
            }
        }
        out.push('}');
        Ok(LegacyRendered {
            body: out,
            info_version,
            upstream_version_removed: !upstream_kept,
            removed_versions,
            files_removed,
            versions_kept: kept_releases.iter().filter(|k| k.is_some()).count(),
        })
    }

    /// The release to promote: highest PEP 440 version with a kept file, preferring one
    /// with a non-yanked kept file, then a final release.
    fn pick_latest(&self, kept: &[Option<Vec<usize>>]) -> Option<usize> {
        let releases = self.releases.as_ref()?;
        let mut best: Option<(usize, (bool, bool), EcoVersion)> = None;
        for (i, ((v, files), keep)) in releases.iter().zip(kept).enumerate() {
            let Some(keep) = keep else { continue };
            if keep.is_empty() {
                continue;
            }
            let ev = EcoVersion::parse(Ecosystem::PyPI, v);
            if !ev.is_parsed() {
                continue;
            }
            let any_live = keep
                .iter()
                .filter_map(|&k| files.get(k))
                .any(|f| !f.yanked.is_yanked());
            let rank = (any_live, !ev.is_prerelease());
            let better = match &best {
                None => true,
                Some((_, brank, bv)) => {
                    rank > *brank || (rank == *brank && ev.compare(bv) == Some(Ordering::Greater))
                }
            };
            if better {
                best = Some((i, rank, ev));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[derive(Debug, Clone, Copy)]
enum UrlsFrom {
    Urls,
    Release(usize),
    Nothing,
}

fn push_files(
    out: &mut String,
    files: &[FileEntry],
    raws: &[RawFile<'_>],
    keep: &[usize],
    rw: &Rewrite<'_>,
) -> Result<(), PypiError> {
    out.push('[');
    for (n, &i) in keep.iter().enumerate() {
        let (Some(f), Some(raw)) = (files.get(i), raws.get(i)) else {
            return Err(PypiError::Shape("file index out of range".into()));
        };
        if n > 0 {
            out.push(',');
        }
        let url = json_str(&(rw.file_url)(f));
        match splice(raw.obj.get(), raw.url.get(), &url) {
            Some(s) => out.push_str(&s),
            None => {
                let e =
                    Entries::parse(raw.obj.get()).map_err(|x| PypiError::Json(x.to_string()))?;
                json_util::push_object(
                    out,
                    e.0.iter().map(|(k, v)| {
                        (k.as_ref(), if k == "url" { url.as_str() } else { v.get() })
                    }),
                );
            }
        }
    }
    out.push(']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, time: &str, yanked: bool) -> String {
        format!(
            r#"{{"comment_text": "", "digests": {{"md5": "aa", "sha256": "{h}"}}, "filename": "{name}", "packagetype": "sdist", "requires_python": ">=3.8", "size": 10, "upload_time": "{t}", "upload_time_iso_8601": "{t}.5Z", "url": "https://files.example/packages/ab/{name}", "yanked": {yanked}, "yanked_reason": {reason}}}"#,
            h = "0".repeat(64),
            t = time,
            reason = if yanked { "\"bad\"" } else { "null" },
        )
    }

    fn doc() -> String {
        format!(
            r#"{{"info": {{"home_page": "UNKNOWN", "name": "Demo-Pkg", "project_urls": {{"Documentation": "https://docs.example", "Source Code": "https://github.com/o/demo"}}, "requires_dist": ["x>=1"], "summary": "s", "version": "2.0.0"}}, "last_serial": 7, "releases": {{"0.9": [], "1.0.0": [{a}], "1.1.0": [{b}], "2.0.0": [{c}, {d}], "2.1.0rc1": [{e}]}}, "urls": [{c}, {d}], "vulnerabilities": []}}"#,
            a = file("demo_pkg-1.0.0.tar.gz", "2020-01-01T00:00:00", false),
            b = file("demo_pkg-1.1.0.tar.gz", "2021-01-01T00:00:00", true),
            c = file("demo_pkg-2.0.0.tar.gz", "2022-01-02T00:00:00", false),
            d = file(
                "demo_pkg-2.0.0-py3-none-any.whl",
                "2022-01-01T00:00:00",
                false
            ),
            e = file("demo_pkg-2.1.0rc1.tar.gz", "2023-01-01T00:00:00", false),
        )
    }

    fn rewrite<'f>(
        keep_version: &'f dyn Fn(&str) -> bool,
        keep_file: &'f dyn Fn(&FileEntry) -> bool,
        url: &'f dyn Fn(&FileEntry) -> String,
    ) -> Rewrite<'f> {
        Rewrite {
            keep_file,
            keep_version,
            file_url: url,
        }
    }

    #[test]
    fn facts_and_repository() {
        let body = doc();
        let d = parse_legacy_json(
            "demo_pkg",
            body.as_bytes(),
            "https://pypi.example/pypi/demo-pkg/json",
        )
        .unwrap();
        assert_eq!(d.repository_url(), Some("https://github.com/o/demo"));
        assert_eq!(d.info_version.as_deref(), Some("2.0.0"));
        let facts = d.facts();
        let v2 = facts.get("2.0").unwrap();
        assert_eq!(v2.files, 2);
        assert_eq!(
            v2.earliest_upload.as_ref().unwrap().raw,
            "2022-01-01T00:00:00.5Z"
        );
        assert!(facts.get("1.1.0").unwrap().all_yanked());
        assert_eq!(facts.get("0.9").unwrap().files, 0);
        assert!(!facts.get("0.9").unwrap().all_yanked());
    }

    #[test]
    fn removing_latest_retargets_info_version() {
        let body = doc();
        let d = parse_legacy_json(
            "demo-pkg",
            body.as_bytes(),
            "https://pypi.example/pypi/demo-pkg/json",
        )
        .unwrap();
        let url = |f: &FileEntry| format!("http://proxy/files/{}", f.filename);
        let keep_version = |v: &str| v != "2.0.0";
        let keep_file = |f: &FileEntry| f.version.as_deref() != Some("2.0.0");
        let r = d.render(&rewrite(&keep_version, &keep_file, &url)).unwrap();
        assert!(r.upstream_version_removed);
        // 2.1.0rc1 is a prerelease, 1.1.0 is yanked: 1.0.0 is promoted.
        assert_eq!(r.info_version.as_deref(), Some("1.0.0"));
        assert_eq!(r.removed_versions, ["2.0.0"]);
        assert_eq!(r.files_removed, 2);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["info"]["version"], "1.0.0");
        assert_eq!(v["info"]["requires_dist"][0], "x>=1");
        assert_eq!(
            v["info"][INFO_MARK], "2.0.0",
            "marked: the fields describe 2.0.0"
        );
        let releases = v["releases"].as_object().unwrap();
        assert!(!releases.contains_key("2.0.0"));
        assert!(releases.contains_key("0.9"));
        assert_eq!(v["urls"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["urls"][0]["url"],
            "http://proxy/files/demo_pkg-1.0.0.tar.gz"
        );
        assert_eq!(v["urls"][0]["yanked_reason"], serde_json::Value::Null);
        assert_eq!(v["last_serial"], 7);
        // Other bytes of file objects are unchanged.
        assert!(r.body.contains(r#""upload_time_iso_8601": "2020-01-01T00:00:00.5Z", "url": "http://proxy/files/demo_pkg-1.0.0.tar.gz", "yanked": false"#));
    }

    #[test]
    fn keeping_everything_changes_only_urls() {
        let body = doc();
        let d = parse_legacy_json(
            "demo-pkg",
            body.as_bytes(),
            "https://pypi.example/pypi/demo-pkg/json",
        )
        .unwrap();
        let url = |f: &FileEntry| f.url.clone();
        let r = d.render(&rewrite(&|_| true, &|_| true, &url)).unwrap();
        assert!(!r.upstream_version_removed);
        let a: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let b: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(a, b);
        assert_eq!(r.versions_kept, 5);
    }

    #[test]
    fn per_version_document() {
        let body = format!(
            r#"{{"info": {{"version": "2.0.0", "home_page": "https://example.org"}}, "urls": [{}]}}"#,
            file("demo_pkg-2.0.0.tar.gz", "2022-01-02T00:00:00", false)
        );
        let d = parse_legacy_json(
            "demo-pkg",
            body.as_bytes(),
            "https://pypi.example/pypi/demo-pkg/2.0.0/json",
        )
        .unwrap();
        assert_eq!(d.repository_url(), Some("https://example.org"));
        let url = |f: &FileEntry| format!("/f/{}", f.filename);
        let r = d.render(&rewrite(&|_| true, &|_| true, &url)).unwrap();
        assert!(!r.upstream_version_removed);
        assert!(r.body.contains(r#""url": "/f/demo_pkg-2.0.0.tar.gz""#));
        let r = d
            .render(&rewrite(&|v| v != "2.0.0", &|_| true, &url))
            .unwrap();
        assert!(r.upstream_version_removed);
        assert_eq!(r.info_version, None);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["urls"], serde_json::json!([]));
    }

    #[test]
    fn malformed() {
        let url = "https://pypi.example/pypi/x/json";
        for body in [
            "",
            "[]",
            r#"{"info": 3}"#,
            r#"{"info": {"version": 3}}"#,
            r#"{"releases": {"1.0": [{"url": "https://x/y"}]}}"#,
            r#"{"releases": {"1.0": [{"filename": "a/b", "url": "https://x/y"}]}}"#,
            r#"{"urls": [{"filename": "x-1.tar.gz", "url": 5}]}"#,
            r#"{"releases": {"1.0": [], "1.0": []}}"#,
        ] {
            assert!(
                parse_legacy_json("x", body.as_bytes(), url).is_err(),
                "{body}"
            );
        }
    }
}
