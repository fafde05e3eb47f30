//! Where an OSV bundle comes from, and getting it onto the local disk.
//!
//! A source is an http(s) URL, a `file://` URL, a local zip path, or a directory of OSV JSON
//! files (read recursively). Downloads stream to a temporary file beside the mirror database
//! (never the whole zip in memory), stop at a size limit, and send `If-None-Match` /
//! `If-Modified-Since` so an unchanged bundle is neither downloaded nor ingested again.

use futures_util::StreamExt;
use reqwest::{StatusCode, Url, header};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed source setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    Http(Url),
    /// A zip file or a directory on the local disk.
    Local(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("bundle source {0:?} is not an http(s) URL, a file:// URL or a path")]
    BadSpec(String),
    #[error("bundle source {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle download {url}: {message}")]
    Http { url: String, message: String },
    #[error("bundle download {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error(
        "bundle download {url} exceeds the limit of {limit} bytes (PKGGATE_MIRROR_MAX_BUNDLE_BYTES)"
    )]
    TooLarge { url: String, limit: u64 },
}

impl BundleSource {
    pub fn parse(spec: &str) -> Result<BundleSource, SourceError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(SourceError::BadSpec(spec.to_string()));
        }
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = Url::parse(spec).map_err(|_| SourceError::BadSpec(spec.to_string()))?;
            return Ok(BundleSource::Http(url));
        }
        if lower.starts_with("file:") {
            let url = Url::parse(spec).map_err(|_| SourceError::BadSpec(spec.to_string()))?;
            let path = url
                .to_file_path()
                .map_err(|_| SourceError::BadSpec(spec.to_string()))?;
            return Ok(BundleSource::Local(path));
        }
        if spec.contains("://") {
            return Err(SourceError::BadSpec(spec.to_string()));
        }
        Ok(BundleSource::Local(PathBuf::from(spec)))
    }

    pub fn describe(&self) -> String {
        match self {
            // Never the credentials a configured URL may carry: this is shown and stored.
            BundleSource::Http(u) => crate::upstream::without_userinfo(u).to_string(),
            BundleSource::Local(p) => p.display().to_string(),
        }
    }
}

/// A bundle on the local disk, ready to ingest.
#[derive(Debug)]
pub enum LocalBundle {
    /// A downloaded zip in a temporary file (removed on drop).
    TempZip(tempfile::NamedTempFile),
    Zip(PathBuf),
    Dir(PathBuf),
}

impl LocalBundle {
    pub fn path(&self) -> &Path {
        match self {
            LocalBundle::TempZip(t) => t.path(),
            LocalBundle::Zip(p) | LocalBundle::Dir(p) => p,
        }
    }
}

/// What a fetch found.
#[derive(Debug)]
pub enum Fetched {
    /// The source said the bundle has not changed since `etag`/`last_modified`.
    NotModified,
    Bundle {
        bundle: LocalBundle,
        /// sha256 of the zip bytes (for directories: computed during ingest).
        sha256: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// Conditional request state remembered from the last successful fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Progress callback: (bytes so far, total if known).
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// Fetch `source` to the local disk. `tmp_dir` holds downloads (the mirror's directory, so
/// nothing large lands in a small /tmp).
pub async fn fetch(
    client: &reqwest::Client,
    source: &BundleSource,
    validators: &Validators,
    tmp_dir: &Path,
    max_bytes: u64,
    progress: Progress<'_>,
) -> Result<Fetched, SourceError> {
    match source {
        BundleSource::Local(path) => {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|source| SourceError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            if meta.is_dir() {
                return Ok(Fetched::Bundle {
                    bundle: LocalBundle::Dir(path.clone()),
                    sha256: None,
                    etag: None,
                    last_modified: None,
                });
            }
            let p = path.clone();
            let sha = tokio::task::spawn_blocking(move || sha256_file(&p))
                .await
                .map_err(|e| SourceError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e),
                })??;
            Ok(Fetched::Bundle {
                bundle: LocalBundle::Zip(path.clone()),
                sha256: Some(sha),
                etag: None,
                last_modified: None,
            })
        }
        BundleSource::Http(url) => {
            download(client, url, validators, tmp_dir, max_bytes, progress).await
        }
    }
}

/// An error with its causes: `a: b: c` (reqwest hides the interesting part in the sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

fn sha256_file(path: &Path) -> Result<String, SourceError> {
    let io = |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

async fn download(
    client: &reqwest::Client,
    url: &Url,
    validators: &Validators,
    tmp_dir: &Path,
    max_bytes: u64,
    progress: Progress<'_>,
) -> Result<Fetched, SourceError> {
    // What errors show: the URL without the credentials it may carry.
    let shown = crate::upstream::without_userinfo(url).to_string();
    let http = |e: reqwest::Error| SourceError::Http {
        url: shown.clone(),
        message: crate::upstream::redact_userinfo(&e.to_string()),
    };
    // Redirects are followed here, not by the client, so that each hop is checked against
    // the configured origin (SPEC §3 item 12).
    let mut current = url.clone();
    let mut hops = 0;
    let resp = loop {
        let mut req = client.get(current.clone());
        if let Some(etag) = &validators.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
        let resp = req.send().await.map_err(http)?;
        if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
            break resp;
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let next = current.join(location).map_err(|_| SourceError::Http {
            url: shown.clone(),
            message: crate::upstream::redact_userinfo(&format!(
                "redirect with an invalid Location {location:?}"
            )),
        })?;
        hops += 1;
        if next.origin() != url.origin() || hops > 5 {
            let why = if hops > 5 {
                "too many redirects"
            } else {
                "redirect to another origin refused"
            };
            return Err(SourceError::Http {
                url: shown.clone(),
                message: crate::upstream::redact_userinfo(&format!("{why}: {next}")),
            });
        }
        current = next;
    };
    // "Not modified" means something only as the answer to our validators; without them
    // (another source, or no data yet) it would declare data from elsewhere current.
    if resp.status() == StatusCode::NOT_MODIFIED
        && (validators.etag.is_some() || validators.last_modified.is_some())
    {
        return Ok(Fetched::NotModified);
    }
    if !resp.status().is_success() {
        return Err(SourceError::Status {
            url: shown.clone(),
            status: resp.status().as_u16(),
        });
    }
    let total = resp.content_length();
    if total.is_some_and(|t| t > max_bytes) {
        return Err(SourceError::TooLarge {
            url: shown.clone(),
            limit: max_bytes,
        });
    }
    let header_str = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header_str(header::ETAG);
    let last_modified = header_str(header::LAST_MODIFIED);
    let io = |source| SourceError::Io {
        path: tmp_dir.display().to_string(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".osv-bundle-")
        .suffix(".zip")
        .tempfile_in(tmp_dir)
        .map_err(io)?;
    let mut file = tmp.reopen().map_err(io)?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http)?;
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err(SourceError::TooLarge {
                url: shown.clone(),
                limit: max_bytes,
            });
        }
        hasher.update(&chunk);
        // Small blocking writes to a local file; the stream yields between them.
        file.write_all(&chunk).map_err(io)?;
        progress(written, total);
    }
    file.flush().map_err(io)?;
    if total.is_some_and(|t| t != written) {
        return Err(SourceError::Http {
            url: shown.clone(),
            message: format!("truncated body: {written} of {} bytes", total.unwrap_or(0)),
        });
    }
    Ok(Fetched::Bundle {
        bundle: LocalBundle::TempZip(tmp),
        sha256: Some(hex::encode(hasher.finalize())),
        etag,
        last_modified,
    })
}

/// Timeouts for bundle downloads: connect and idle-read, never a total (bundles are large).
pub fn bundle_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout.max(Duration::from_secs(30)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pkggate/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Follow at most 5 redirects, and only within the origin that was asked (SPEC §3 item 12).
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if same {
            attempt.follow()
        } else {
            let msg = format!("redirect to another origin refused: {}", attempt.url());
            attempt.error(msg)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs() {
        assert!(matches!(
            BundleSource::parse("https://x.example/npm/all.zip"),
            Ok(BundleSource::Http(_))
        ));
        assert_eq!(
            BundleSource::parse("file:///data/all.zip").unwrap(),
            BundleSource::Local("/data/all.zip".into())
        );
        assert_eq!(
            BundleSource::parse("osv/npm").unwrap(),
            BundleSource::Local("osv/npm".into())
        );
        for bad in ["", "  ", "ftp://x/y.zip", "file://remote-host/x.zip"] {
            assert!(BundleSource::parse(bad).is_err(), "{bad:?}");
        }
    }
}
