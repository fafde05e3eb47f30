//! Streaming an allowed artifact to the client while verifying its digest.
//!
//! The body is passed through chunk by chunk (back-pressure: the next upstream chunk is read
//! only when the client took the previous one), always holding back the most recent chunk:
//! it is released only once the digest of the whole body matched. On a mismatch, an
//! upstream error or a short body the stream ends with an error instead, so the connection
//! is cut before the last bytes and no client can accept a tampered artifact.

use axum::body::Body;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::Digest;

/// A digest to check: its algorithm and the expected value (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Sha256(String),
    Sha512(String),
    /// Nothing known: pass through unverified (the caller audits that).
    None,
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    None,
}

impl Hasher {
    fn new(e: &Expected) -> Hasher {
        match e {
            Expected::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
            Expected::Sha512(_) => Hasher::Sha512(sha2::Sha512::new()),
            Expected::None => Hasher::None,
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
            Hasher::None => {}
        }
    }

    fn finish(self) -> Option<String> {
        match self {
            Hasher::Sha256(h) => Some(hex::encode(h.finalize())),
            Hasher::Sha512(h) => Some(hex::encode(h.finalize())),
            Hasher::None => None,
        }
    }
}

/// Why a transfer was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFailure {
    Mismatch { expected: String, actual: String },
    Upstream(String),
}

/// Wrap an upstream byte stream. `on_failure` runs once, when the transfer is cut (to write
/// the audit line).
pub fn verified<S, E>(
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(StreamFailure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    verified_inner(upstream, expected, on_failure, None)
}

/// [`verified`], counting the bytes released to the client in
/// `pkggate_artifact_bytes_total{ecosystem}`.
pub fn verified_counted<S, E>(
    ecosystem: &'static str,
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(StreamFailure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let counter = crate::metrics::metrics()
        .artifact_bytes
        .get_or_create(&crate::metrics::labels(&[("ecosystem", ecosystem)]))
        .clone();
    verified_inner(upstream, expected, on_failure, Some(counter))
}

fn verified_inner<S, E>(
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(StreamFailure) + Send + 'static,
    counter: Option<prometheus_client::metrics::counter::Counter>,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    struct State<S> {
        inner: S,
        hasher: Option<Hasher>,
        pending: Option<Bytes>,
        expected: Expected,
        on_failure: Option<Box<dyn FnOnce(StreamFailure) + Send>>,
        done: bool,
        counter: Option<prometheus_client::metrics::counter::Counter>,
    }
    let state = State {
        inner: upstream,
        hasher: Some(Hasher::new(&expected)),
        pending: None,
        expected,
        on_failure: Some(Box::new(on_failure)),
        done: false,
        counter,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(h) = st.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    if let Some(prev) = st.pending.replace(chunk) {
                        if let Some(c) = &st.counter {
                            c.inc_by(prev.len() as u64);
                        }
                        return Some((Ok::<Bytes, std::io::Error>(prev), st));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    let msg = e.to_string();
                    if let Some(f) = st.on_failure.take() {
                        f(StreamFailure::Upstream(msg.clone()));
                    }
                    return Some((
                        Err(std::io::Error::other(format!(
                            "upstream failed mid-transfer: {msg}"
                        ))),
                        st,
                    ));
                }
                None => {
                    st.done = true;
                    let actual = st.hasher.take().and_then(Hasher::finish);
                    let expected = match &st.expected {
                        Expected::Sha256(x) | Expected::Sha512(x) => Some(x.to_ascii_lowercase()),
                        Expected::None => None,
                    };
                    if let (Some(want), Some(got)) = (expected, actual)
                        && want != got
                    {
                        if let Some(f) = st.on_failure.take() {
                            f(StreamFailure::Mismatch {
                                expected: want,
                                actual: got,
                            });
                        }
                        return Some((
                            Err(std::io::Error::other(
                                "artifact digest mismatch: transfer aborted",
                            )),
                            st,
                        ));
                    }
                    let last = st.pending.take()?;
                    if let Some(c) = &st.counter {
                        c.inc_by(last.len() as u64);
                    }
                    return Some((Ok(last), st));
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// Decode an npm SRI string (`sha512-<base64>`) to the expected digest.
pub fn from_sri(sri: &str) -> Option<Expected> {
    use base64::Engine;
    let best = sri
        .split_whitespace()
        .find(|s| s.starts_with("sha512-"))
        .or_else(|| sri.split_whitespace().find(|s| s.starts_with("sha256-")))?;
    let (alg, b64) = best.split_once('-')?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let hex = hex::encode(raw);
    match alg {
        "sha512" if hex.len() == 128 => Some(Expected::Sha512(hex)),
        "sha256" if hex.len() == 64 => Some(Expected::Sha256(hex)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex};

    async fn run(
        chunks: Vec<Result<&'static str, &'static str>>,
        expected: Expected,
    ) -> (Result<Vec<u8>, String>, Option<StreamFailure>) {
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        let s = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| c.map(|s| Bytes::from_static(s.as_bytes()))),
        );
        let body = verified(s, expected, move |x| *f.lock().unwrap() = Some(x));
        let mut out = Vec::new();
        let mut b = body;
        let result = loop {
            match b.frame().await {
                None => break Ok(out),
                Some(Ok(frame)) => {
                    if let Ok(d) = frame.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => break Err(format!("{e} after {} bytes", out.len())),
            }
        };
        let fail = failure.lock().unwrap().clone();
        (result, fail)
    }

    fn sha256(s: &str) -> String {
        hex::encode(sha2::Sha256::digest(s.as_bytes()))
    }

    #[tokio::test]
    async fn good_digest_passes_every_byte() {
        let (r, f) = run(
            vec![Ok("hello "), Ok("world")],
            Expected::Sha256(sha256("hello world")),
        )
        .await;
        assert_eq!(r.unwrap(), b"hello world");
        assert!(f.is_none());
    }

    #[tokio::test]
    async fn mismatch_withholds_the_last_chunk_and_reports() {
        let (r, f) = run(
            vec![Ok("hello "), Ok("world")],
            Expected::Sha256(sha256("hello there")),
        )
        .await;
        let err = r.unwrap_err();
        assert!(
            err.contains("mismatch") && err.ends_with("after 6 bytes"),
            "{err}"
        );
        assert!(matches!(f, Some(StreamFailure::Mismatch { .. })));
        // A single-chunk body delivers nothing at all.
        let (r, _) = run(vec![Ok("tampered")], Expected::Sha256(sha256("original"))).await;
        assert!(r.unwrap_err().ends_with("after 0 bytes"));
    }

    #[tokio::test]
    async fn upstream_error_cuts_the_transfer() {
        let (r, f) = run(vec![Ok("a"), Err("reset")], Expected::None).await;
        assert!(r.is_err());
        assert!(matches!(f, Some(StreamFailure::Upstream(_))));
        let (r, f) = run(vec![Ok("a"), Ok("b")], Expected::None).await;
        assert_eq!(r.unwrap(), b"ab");
        assert!(f.is_none());
    }

    #[test]
    fn sri_decoding() {
        use base64::Engine;
        let digest = sha2::Sha512::digest(b"x");
        let sri = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(from_sri(&sri), Some(Expected::Sha512(hex::encode(digest))));
        assert_eq!(from_sri("sha1-abc"), None);
        assert_eq!(from_sri("sha512-!!!"), None);
    }
}
