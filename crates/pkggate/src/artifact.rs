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

/// The digest an artifact must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Algorithm name (`sha512`, `sha384`, `sha256`, `sha1`) and raw digest bytes.
    Digest(&'static str, Vec<u8>),
    None,
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    None,
}

impl Hasher {
    fn new(e: &Expected) -> Hasher {
        match e {
            Expected::Digest("sha1", _) => Hasher::Sha1(sha1::Sha1::new()),
            Expected::Digest("sha256", _) => Hasher::Sha256(sha2::Sha256::new()),
            Expected::Digest("sha384", _) => Hasher::Sha384(sha2::Sha384::new()),
            Expected::Digest(_, _) => Hasher::Sha512(sha2::Sha512::new()),
            Expected::None => Hasher::None,
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
            Hasher::None => {}
        }
    }

    fn finish(self) -> Option<Vec<u8>> {
        Some(match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::None => return None,
        })
    }
}

/// Why a transfer was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Mismatch {
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    Upstream(String),
}

struct VerifyState<S> {
    inner: S,
    hasher: Option<Hasher>,
    pending: Option<Bytes>,
    expected: Expected,
    on_failure: Option<Box<dyn FnOnce(Failure) + Send>>,
    done: bool,
}

/// Pass `upstream` through chunk by chunk (the next chunk is read only when the client took
/// the previous one), always holding back the latest chunk until the digest of the whole
/// body is known. On a mismatch or an upstream error the body ends with an error: the
/// connection is cut before the last bytes, so no client can accept the artifact.
fn verified_plain<S, E>(
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(Failure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let st = VerifyState {
        inner: upstream,
        hasher: Some(Hasher::new(&expected)),
        pending: None,
        expected,
        on_failure: Some(Box::new(on_failure)),
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
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
                        return Some((Ok::<Bytes, std::io::Error>(prev), st));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    let msg = e.to_string();
                    if let Some(f) = st.on_failure.take() {
                        f(Failure::Upstream(msg.clone()));
                    }
                    let err = std::io::Error::other(format!("upstream failed mid-transfer: {msg}"));
                    return Some((Err(err), st));
                }
                None => {
                    st.done = true;
                    let actual = st.hasher.take().and_then(Hasher::finish);
                    if let (Expected::Digest(alg, want), Some(got)) = (&st.expected, actual)
                        && *want != got
                    {
                        if let Some(f) = st.on_failure.take() {
                            f(Failure::Mismatch {
                                algorithm: alg,
                                expected: hex::encode(want),
                                actual: hex::encode(&got),
                            });
                        }
                        let err = std::io::Error::other(
                            "tarball integrity mismatch: transfer aborted by pkggate",
                        );
                        return Some((Err(err), st));
                    }
                    return st.pending.take().map(|last| (Ok(last), st));
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// Pass `upstream` through while verifying `expected`; see the module doc. `on_failure` runs
/// once, when the transfer is cut (to write the audit line).
pub fn verified<S, E>(
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(Failure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    verified_plain(upstream, expected, on_failure)
}

/// [`verified`], counting the bytes released to the client in
/// `pkggate_artifact_bytes_total{ecosystem}`.
pub fn verified_counted<S, E>(
    ecosystem: &'static str,
    upstream: S,
    expected: Expected,
    on_failure: impl FnOnce(Failure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let sent = crate::metrics::metrics()
        .artifact_bytes
        .get_or_create(&crate::metrics::labels(&[("ecosystem", ecosystem)]))
        .clone();
    let body = verified_plain(upstream, expected, on_failure);
    Body::from_stream(body.into_data_stream().inspect(move |r| {
        if let Ok(b) = r {
            sent.inc_by(b.len() as u64);
        }
    }))
}

/// The expected digest from a hex string (`cksum`, `sha256` in an index), or `None` when it
/// is not valid hex of the algorithm's length.
pub fn from_hex(algorithm: &'static str, hex_digest: &str) -> Expected {
    let len = match algorithm {
        "sha1" => 20,
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => return Expected::None,
    };
    match hex::decode(hex_digest.trim()) {
        Ok(raw) if raw.len() == len => Expected::Digest(algorithm, raw),
        _ => Expected::None,
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
    ) -> (Result<Vec<u8>, String>, Option<Failure>) {
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        let s = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| c.map(|s| Bytes::from_static(s.as_bytes()))),
        );
        let mut body = verified(s, expected, move |x| *f.lock().unwrap() = Some(x));
        let mut out = Vec::new();
        let result = loop {
            match body.frame().await {
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

    fn sha256(s: &str) -> Expected {
        from_hex("sha256", &hex::encode(sha2::Sha256::digest(s.as_bytes())))
    }

    #[tokio::test]
    async fn good_digest_passes_every_byte() {
        let (r, f) = run(vec![Ok("hello "), Ok("world")], sha256("hello world")).await;
        assert_eq!(r.unwrap(), b"hello world");
        assert!(f.is_none());
    }

    #[tokio::test]
    async fn mismatch_withholds_the_last_chunk_and_reports() {
        let (r, f) = run(vec![Ok("hello "), Ok("world")], sha256("hello there")).await;
        let err = r.unwrap_err();
        assert!(err.ends_with("after 6 bytes"), "{err}");
        assert!(matches!(f, Some(Failure::Mismatch { .. })));
        // A single-chunk body delivers nothing at all.
        let (r, _) = run(vec![Ok("tampered")], sha256("original")).await;
        assert!(r.unwrap_err().ends_with("after 0 bytes"));
    }

    #[tokio::test]
    async fn upstream_error_cuts_the_transfer() {
        let (r, f) = run(vec![Ok("a"), Err("reset")], Expected::None).await;
        assert!(r.is_err());
        assert!(matches!(f, Some(Failure::Upstream(_))));
        let (r, f) = run(vec![Ok("a"), Ok("b")], Expected::None).await;
        assert_eq!(r.unwrap(), b"ab");
        assert!(f.is_none());
    }

    #[test]
    fn hex_digests() {
        assert!(matches!(
            from_hex("sha256", &"ab".repeat(32)),
            Expected::Digest("sha256", _)
        ));
        assert_eq!(from_hex("sha256", "abc"), Expected::None);
        assert_eq!(from_hex("sha256", &"zz".repeat(32)), Expected::None);
        assert_eq!(from_hex("md5", &"ab".repeat(16)), Expected::None);
    }
}
