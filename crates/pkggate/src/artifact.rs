//! Streaming an allowed artifact to the client while verifying its digest.
//!
//! The body is passed through chunk by chunk (back-pressure: the next upstream chunk is read
//! only when the client took the previous one), always holding back the most recent chunk:
//! it is released only once the digest of the whole body matched. On a mismatch, an
//! upstream error or a short body the stream ends with an error instead, so the connection
//! is cut before the last bytes and no client can accept a tampered artifact.
//!
//! One implementation for every ecosystem (npm tarballs, PyPI files, crates). A declared
//! length ([`Checks::length`]) is enforced both ways; bodies of 4 MiB or more (or of unknown
//! length) are hashed on a blocking thread fed through a bounded channel, so hashing a
//! large wheel overlaps forwarding it.

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

/// Bodies at least this large (or of unknown length) are hashed on a blocking thread, so
/// hashing overlaps forwarding instead of adding to it.
const OFFLOAD_HASH_BYTES: u64 = 4 << 20;

/// Where the digest is computed: inline, or on a thread fed through a bounded channel.
enum Digester {
    Inline(Box<Hasher>),
    Thread {
        tx: tokio::sync::mpsc::Sender<Bytes>,
        done: tokio::sync::oneshot::Receiver<Option<Vec<u8>>>,
    },
}

impl Digester {
    fn new(expected: &Expected, length: Option<u64>) -> Digester {
        let hasher = Hasher::new(expected);
        let big = length.is_none_or(|l| l >= OFFLOAD_HASH_BYTES);
        if matches!(hasher, Hasher::None) || !big {
            return Digester::Inline(Box::new(hasher));
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut h = hasher;
            while let Some(chunk) = rx.blocking_recv() {
                h.update(&chunk);
            }
            let _ = done_tx.send(h.finish());
        });
        Digester::Thread { tx, done }
    }

    async fn update(&mut self, chunk: &Bytes) -> Result<(), String> {
        match self {
            Digester::Inline(h) => {
                h.update(chunk);
                Ok(())
            }
            Digester::Thread { tx, .. } => tx
                .send(chunk.clone())
                .await
                .map_err(|_| "the hashing thread stopped".to_string()),
        }
    }

    async fn finish(self) -> Option<Vec<u8>> {
        match self {
            Digester::Inline(h) => h.finish(),
            Digester::Thread { tx, done } => {
                drop(tx);
                done.await.ok().flatten()
            }
        }
    }
}

/// What else a transfer must satisfy besides its digest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// The length upstream declared (or the index listed): a body of another size is cut
    /// like a digest mismatch ([`Failure::Upstream`] says the sizes).
    pub length: Option<u64>,
}

struct VerifyState<S> {
    inner: S,
    digester: Option<Digester>,
    pending: Option<Bytes>,
    expected: Expected,
    length: Option<u64>,
    received: u64,
    on_failure: Option<Box<dyn FnOnce(Failure) + Send>>,
    done: bool,
}

impl<S> VerifyState<S> {
    fn fail(&mut self, f: Failure, message: String) -> std::io::Error {
        self.done = true;
        if let Some(cb) = self.on_failure.take() {
            cb(f);
        }
        std::io::Error::other(message)
    }
}

/// Pass `upstream` through chunk by chunk (the next chunk is read only when the client took
/// the previous one), always holding back the latest chunk until the digest of the whole
/// body is known. On a mismatch, a wrong length or an upstream error the body ends with an
/// error: the connection is cut before the last bytes, so no client can accept the artifact.
fn verified_plain<S, E>(
    upstream: S,
    expected: Expected,
    checks: Checks,
    on_failure: impl FnOnce(Failure) + Send + 'static,
) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let st = VerifyState {
        inner: upstream,
        digester: Some(Digester::new(&expected, checks.length)),
        pending: None,
        expected,
        length: checks.length,
        received: 0,
        on_failure: Some(Box::new(on_failure)),
        done: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            // Upstream's error type need not be `Send`: keep only its text across awaits.
            let item = st.inner.next().await.map(|r| r.map_err(|e| e.to_string()));
            match item {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    st.received += chunk.len() as u64;
                    if let Some(l) = st.length
                        && st.received > l
                    {
                        let msg = format!("upstream sent more than the {l} bytes it declared");
                        let err = st.fail(Failure::Upstream(msg.clone()), msg);
                        return Some((Err(err), st));
                    }
                    if let Some(d) = st.digester.as_mut()
                        && let Err(m) = d.update(&chunk).await
                    {
                        let err = st.fail(Failure::Upstream(m.clone()), m);
                        return Some((Err(err), st));
                    }
                    if let Some(prev) = st.pending.replace(chunk) {
                        return Some((Ok::<Bytes, std::io::Error>(prev), st));
                    }
                }
                Some(Err(msg)) => {
                    let err = st.fail(
                        Failure::Upstream(msg.clone()),
                        format!("upstream failed mid-transfer: {msg}"),
                    );
                    return Some((Err(err), st));
                }
                None => {
                    st.done = true;
                    if let Some(l) = st.length
                        && st.received != l
                    {
                        let msg =
                            format!("upstream sent {} of the {l} bytes it declared", st.received);
                        let err = st.fail(Failure::Upstream(msg.clone()), msg);
                        return Some((Err(err), st));
                    }
                    let actual = match st.digester.take() {
                        Some(d) => d.finish().await,
                        None => None,
                    };
                    if let Expected::Digest(alg, want) = &st.expected {
                        let alg: &'static str = alg;
                        match actual {
                            Some(got) if got == *want => {}
                            got => {
                                let f = Failure::Mismatch {
                                    algorithm: alg,
                                    expected: hex::encode(want),
                                    actual: got.map(hex::encode).unwrap_or_default(),
                                };
                                let err = st.fail(
                                    f,
                                    "artifact integrity mismatch: transfer aborted by pkggate"
                                        .into(),
                                );
                                return Some((Err(err), st));
                            }
                        }
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
    verified_plain(upstream, expected, Checks::default(), on_failure)
}

/// [`verified`] with further [`Checks`], counting the bytes released to the client in
/// `pkggate_artifact_bytes_total{ecosystem}`. What the adapters use.
pub fn verified_checked<S, E>(
    ecosystem: &'static str,
    upstream: S,
    expected: Expected,
    checks: Checks,
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
    let body = verified_plain(upstream, expected, checks, on_failure);
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

/// The length an upstream declares for an artifact's body: its `Content-Length`, unless the
/// transfer is content-encoded (the HTTP client decodes it, so the length changes). The
/// header, not the body's size: a `HEAD` answer has no body.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    use axum::http::header;
    if headers.contains_key(header::CONTENT_ENCODING) {
        return None;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body of a `HEAD` answer for an artifact of `length` bytes: empty, with the size the
/// `GET` would have (`None`: unknown, so no `Content-Length` is sent, as for the streamed
/// `GET`; an empty body would claim 0).
pub fn head_body(length: Option<u64>) -> Body {
    Body::new(HeadBody(length))
}

struct HeadBody(Option<u64>);

impl http_body::Body for HeadBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(None)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.0 {
            Some(l) => http_body::SizeHint::with_exact(l),
            None => http_body::SizeHint::default(),
        }
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

    async fn collect(body: Body) -> Result<Vec<u8>, String> {
        let mut body = body;
        let mut out = Vec::new();
        loop {
            match body.frame().await {
                None => return Ok(out),
                Some(Ok(frame)) => {
                    if let Ok(d) = frame.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Err(format!("{e} after {} bytes", out.len())),
            }
        }
    }

    fn chunks(data: &[u8], size: usize) -> Vec<Result<Bytes, String>> {
        data.chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[tokio::test]
    async fn declared_length_is_enforced_both_ways() {
        let data = b"0123456789".repeat(10);
        for (declared, ok) in [(100, true), (99, false), (101, false)] {
            let failure = Arc::new(Mutex::new(None));
            let f = failure.clone();
            let body = verified_plain(
                futures_util::stream::iter(chunks(&data, 30)),
                Expected::None,
                Checks {
                    length: Some(declared),
                },
                move |x| *f.lock().unwrap() = Some(x),
            );
            let r = collect(body).await;
            assert_eq!(r.is_ok(), ok, "declared {declared}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().contains(&declared.to_string()));
                assert!(matches!(
                    failure.lock().unwrap().clone(),
                    Some(Failure::Upstream(_))
                ));
            }
        }
    }

    #[tokio::test]
    async fn big_bodies_are_hashed_off_thread_with_the_same_verdict() {
        let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
        let good = from_hex("sha256", &hex::encode(sha2::Sha256::digest(&data)));
        for length in [None, Some(data.len() as u64)] {
            let body = verified_plain(
                futures_util::stream::iter(chunks(&data, 64 << 10)),
                good.clone(),
                Checks { length },
                |_| panic!("no failure"),
            );
            assert_eq!(collect(body).await.unwrap().len(), data.len());
        }
        let mut bad = data.clone();
        bad[3 << 20] ^= 1;
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        let body = verified_plain(
            futures_util::stream::iter(chunks(&bad, 64 << 10)),
            good,
            Checks::default(),
            move |x| *f.lock().unwrap() = Some(x),
        );
        let err = collect(body).await.unwrap_err();
        // Everything but the last chunk went out; the last never does.
        assert!(
            err.ends_with(&format!("after {} bytes", data.len() - (64 << 10))),
            "{err}"
        );
        assert!(matches!(
            failure.lock().unwrap().clone(),
            Some(Failure::Mismatch {
                algorithm: "sha256",
                ..
            })
        ));
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
