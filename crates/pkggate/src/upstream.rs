//! Access to upstream registries: one pooled client, connect and idle-read timeouts (never a
//! total timeout: big bodies stream), retries with backoff for idempotent requests on
//! connection errors, redirects followed here and only to configured origins, a size limit
//! on documents, and no client credentials ever forwarded.
//!
//! Errors map to the responses clients need: 502 (bad gateway) or 504 (timeout) with a JSON
//! reason and `Retry-After`; never a cached empty document.

use crate::server::json_response;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Url;
use serde_json::json;
use std::time::Duration;

/// `url` without `user:password@` (what pkggate stores, compares, signs and shows; the
/// credentials of a configured upstream are added per origin when a request is sent).
pub fn without_userinfo(url: &Url) -> Url {
    let mut u = url.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    u
}

/// `url` as a directory: its path ends in `/`, so relative paths join below it (joining
/// onto `…/simple` would replace `simple`). Configured bases are directories whether or not
/// they were written with the slash.
pub fn as_directory(url: &Url) -> Url {
    let mut u = url.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// `text` with the `user:password@` part of every `scheme://…` URL in it removed (error
/// reasons quote upstream URLs and the HTTP client's messages).
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#`, whitespace, quote or bracket.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | ')' | '>' | '<') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Redirects followed per request (within the configured origins) before giving up.
pub const MAX_REDIRECTS: u32 = 5;

/// What went wrong talking to an upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {url} timed out: {message}")]
    Timeout { url: String, message: String },
    #[error("upstream {url} unreachable: {message}")]
    Connect { url: String, message: String },
    #[error("upstream {url} sent a document larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("upstream {url} redirected to {location}, outside the configured upstreams")]
    Redirect { url: String, location: String },
    #[error("upstream {url} redirected more than {MAX_REDIRECTS} times (the last to {location})")]
    TooManyRedirects { url: String, location: String },
    #[error("upstream {url} redirected to an invalid location {location:?}")]
    BadRedirect { url: String, location: String },
    #[error("upstream {url} failed: {message}")]
    Other { url: String, message: String },
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// 502/504 JSON with `Retry-After` and `no-store`; credentials in URLs are not shown.
    pub fn response(&self) -> Response {
        let mut r = json_response(
            self.status(),
            json!({"error": redact_userinfo(&format!("upstream_error: {self}"))}),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        r
    }
}

/// A buffered upstream answer (metadata documents).
#[derive(Debug, Clone)]
pub struct Document {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Decoded body (gzip is undone by the client).
    pub body: Bytes,
    /// The final URL after redirects (to resolve relative links against).
    pub url: Url,
}

/// Headers a client sends that may reach an upstream. Everything else (Authorization,
/// cookies, npm-otp, hop-by-hop headers) is dropped.
pub const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "user-agent",
    "npm-command",
    "if-none-match",
    "if-modified-since",
];

pub struct Upstream {
    client: reqwest::Client,
    allowed: Vec<url::Origin>,
    /// Credentials written into configured upstream URLs (`user:password@`, as written:
    /// percent-encoded), by origin: sent with every request to that origin, and nowhere else.
    credentials: Vec<(url::Origin, String, Option<String>)>,
    max_document_bytes: u64,
    retries: u32,
}

fn chain(e: &reqwest::Error) -> String {
    crate::intel::source::error_chain(e)
}

impl Upstream {
    /// `allowed_bases`: the configured upstream URLs; redirects may go to their origins only.
    pub fn new(timeout: Duration, max_document_bytes: u64, allowed_bases: &[Url]) -> Upstream {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pkggate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Upstream {
            client,
            allowed: allowed_bases.iter().map(Url::origin).collect(),
            credentials: allowed_bases
                .iter()
                .filter(|u| !u.username().is_empty() || u.password().is_some())
                .map(|u| {
                    (
                        u.origin(),
                        u.username().to_string(),
                        u.password().map(str::to_string),
                    )
                })
                .collect(),
            max_document_bytes,
            retries: 2,
        }
    }

    /// `url` with the configured credentials of its origin, whatever it carries itself (the
    /// HTTP client sends a URL's userinfo as basic authentication).
    fn target(&self, url: &Url) -> Url {
        let mut target = without_userinfo(url);
        let origin = url.origin();
        if let Some((_, user, password)) = self.credentials.iter().find(|(o, _, _)| *o == origin) {
            let _ = target.set_username(user);
            let _ = target.set_password(password.as_deref());
        }
        target
    }

    fn classify(url: &Url, e: &reqwest::Error) -> UpstreamError {
        let message = chain(e);
        if e.is_timeout() {
            UpstreamError::Timeout {
                url: url.to_string(),
                message,
            }
        } else if e.is_connect() {
            UpstreamError::Connect {
                url: url.to_string(),
                message,
            }
        } else {
            UpstreamError::Other {
                url: url.to_string(),
                message,
            }
        }
    }

    /// Send a GET (or HEAD), retrying connection errors, following redirects within the
    /// configured origins. `headers` are sent as given (callers pass only safe ones).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        headers: &HeaderMap,
    ) -> Result<(reqwest::Response, Url), UpstreamError> {
        let mut current = url.clone();
        let mut hops = 0;
        loop {
            let mut attempt = 0;
            let resp = loop {
                let req = self
                    .client
                    .request(method.clone(), self.target(&current))
                    .headers(headers.clone());
                let started = std::time::Instant::now();
                let host = current.host_str().unwrap_or("").to_string();
                let m = crate::metrics::metrics();
                match req.send().await {
                    Ok(r) => {
                        m.upstream_seconds
                            .get_or_create(&crate::metrics::labels(&[("upstream", &host)]))
                            .observe(started.elapsed().as_secs_f64());
                        break r;
                    }
                    Err(e) if e.is_connect() && attempt < self.retries => {
                        m.upstream_errors
                            .get_or_create(&crate::metrics::labels(&[
                                ("upstream", &host),
                                ("kind", "connect_retry"),
                            ]))
                            .inc();
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1)))
                            .await;
                    }
                    Err(e) => {
                        let err = Self::classify(&current, &e);
                        let kind = match err {
                            UpstreamError::Timeout { .. } => "timeout",
                            UpstreamError::Connect { .. } => "connect",
                            _ => "other",
                        };
                        m.upstream_errors
                            .get_or_create(&crate::metrics::labels(&[
                                ("upstream", &host),
                                ("kind", kind),
                            ]))
                            .inc();
                        return Err(err);
                    }
                }
            };
            let status = resp.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok((resp, without_userinfo(&current)));
            }
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let next = current
                .join(&location)
                .map_err(|_| UpstreamError::BadRedirect {
                    url: url.to_string(),
                    location: location.chars().take(200).collect(),
                })?;
            if !self.allowed.contains(&next.origin()) {
                return Err(UpstreamError::Redirect {
                    url: url.to_string(),
                    location: next.to_string(),
                });
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(UpstreamError::TooManyRedirects {
                    url: url.to_string(),
                    location: next.to_string(),
                });
            }
            current = next;
        }
    }

    /// GET a metadata document, buffered up to the size limit.
    pub async fn get_document(
        &self,
        url: Url,
        headers: &HeaderMap,
    ) -> Result<Document, UpstreamError> {
        self.get_document_observed(url, headers, |_, _| {}).await
    }

    /// [`Upstream::get_document`], calling `observe(status, received)` with the body received
    /// so far after every chunk, so a caller can scan a document while it arrives (the
    /// buffer only grows: bytes already seen never change).
    pub async fn get_document_observed(
        &self,
        url: Url,
        headers: &HeaderMap,
        mut observe: impl FnMut(StatusCode, &[u8]),
    ) -> Result<Document, UpstreamError> {
        let (resp, final_url) = self
            .send(reqwest::Method::GET, url.clone(), headers)
            .await?;
        let status = resp.status();
        let resp_headers = resp.headers().clone();
        if resp
            .content_length()
            .is_some_and(|l| l > self.max_document_bytes)
        {
            return Err(UpstreamError::TooLarge {
                url: url.to_string(),
                limit: self.max_document_bytes,
            });
        }
        let mut body = Vec::with_capacity(
            resp.content_length()
                .unwrap_or(0)
                .min(self.max_document_bytes) as usize,
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Self::classify(&url, &e))?;
            if (body.len() + chunk.len()) as u64 > self.max_document_bytes {
                return Err(UpstreamError::TooLarge {
                    url: url.to_string(),
                    limit: self.max_document_bytes,
                });
            }
            body.extend_from_slice(&chunk);
            observe(status, &body);
        }
        Ok(Document {
            status,
            headers: resp_headers,
            body: Bytes::from(body),
            url: final_url,
        })
    }

    /// POST a small body (npm audit pass-through); no retries (not idempotent).
    pub async fn post(
        &self,
        url: Url,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Document, UpstreamError> {
        let url = without_userinfo(&url);
        let resp = self
            .client
            .post(self.target(&url))
            .headers(headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| Self::classify(&url, &e))?;
        let status = resp.status();
        let resp_headers = resp.headers().clone();
        let too_large = || UpstreamError::TooLarge {
            url: url.to_string(),
            limit: self.max_document_bytes,
        };
        // Held to the size limit while it arrives, as documents are.
        if resp
            .content_length()
            .is_some_and(|l| l > self.max_document_bytes)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Self::classify(&url, &e))?;
            if (body.len() + chunk.len()) as u64 > self.max_document_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Document {
            status,
            headers: resp_headers,
            body: Bytes::from(body),
            url,
        })
    }
}

/// Copy the allowed request headers of a client request.
pub fn forwardable(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(v) = client.get(*name) {
            out.insert(*name, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_forwarded() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.insert("cookie", HeaderValue::from_static("a=b"));
        h.insert("npm-otp", HeaderValue::from_static("123456"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let f = forwardable(&h);
        assert_eq!(f.len(), 1);
        assert!(f.get("authorization").is_none());
    }

    #[test]
    fn errors_map_to_gateway_statuses() {
        let t = UpstreamError::Timeout {
            url: "u".into(),
            message: "m".into(),
        };
        assert_eq!(t.status(), StatusCode::GATEWAY_TIMEOUT);
        let r = UpstreamError::Connect {
            url: "u".into(),
            message: "m".into(),
        }
        .response();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(r.headers().get("retry-after").unwrap(), "10");
        assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    }
}
