//! A scripted raw HTTP upstream for the probe modules: it answers byte for byte what a test
//! sets (lying `Content-Length`, truncated or endless bodies, cookies) and keeps every
//! request head; and a [`Tripwire`] that counts every connection made to it. All on
//! 127.0.0.1.

use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a [`RawUpstream`] answers on a path.
#[derive(Clone)]
pub enum Answer {
    /// These bytes, then the connection closes.
    Raw(Bytes),
    /// `head`, then `total` bytes of `x` (in 64 KiB writes, counting what was written) until
    /// done or the peer goes away.
    Stream { head: Bytes, total: usize },
}

/// A scripted upstream: request path (without query) → the answer, after which the
/// connection is closed. Unscripted paths answer 404. Every request head is kept.
#[derive(Clone)]
pub struct RawUpstream {
    pub addr: SocketAddr,
    pub answers: Arc<Mutex<HashMap<String, Answer>>>,
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Body bytes written by [`Answer::Stream`] answers.
    pub streamed: Arc<AtomicU64>,
}

impl RawUpstream {
    pub async fn start() -> RawUpstream {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = RawUpstream {
            addr: l.local_addr().unwrap(),
            answers: Default::default(),
            seen: Default::default(),
            streamed: Default::default(),
        };
        let u = up.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                let u = u.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut words = head.split_whitespace();
                    let method = words.next().unwrap_or("").to_string();
                    let path = words
                        .next()
                        .unwrap_or("")
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    u.seen.lock().unwrap().push(head);
                    let answer = u.answers.lock().unwrap().get(&path).cloned();
                    match answer.unwrap_or_else(|| Answer::Raw(framed(404, &[], b"{}"))) {
                        Answer::Raw(answer) => {
                            let answer = if method == "HEAD" {
                                let end = answer.windows(4).position(|w| w == b"\r\n\r\n");
                                answer.slice(..end.map_or(answer.len(), |e| e + 4))
                            } else {
                                answer
                            };
                            let _ = sock.write_all(&answer).await;
                        }
                        Answer::Stream { head, total } => {
                            if sock.write_all(&head).await.is_err() {
                                return;
                            }
                            let chunk = vec![b'x'; 64 << 10];
                            let mut left = total;
                            while left > 0 {
                                let n = left.min(chunk.len());
                                if sock.write_all(&chunk[..n]).await.is_err() {
                                    return;
                                }
                                u.streamed.fetch_add(n as u64, Ordering::SeqCst);
                                left -= n;
                            }
                        }
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        up
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn answer(&self, path: &str, raw: Bytes) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.into(), Answer::Raw(raw));
    }

    pub fn heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The request targets seen so far (path and query).
    pub fn targets(&self) -> Vec<String> {
        self.heads()
            .iter()
            .map(|h| h.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect()
    }
}

pub fn head_bytes(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A response framed by a correct `Content-Length`.
pub fn framed(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    let len = body.len().to_string();
    let mut h = headers.to_vec();
    h.push(("Content-Length", &len));
    let mut out = head_bytes(status, &h);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// A response written exactly as given: `headers` then `body`, then the connection closes.
pub fn unframed(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    let mut out = head_bytes(status, headers);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// A listener that only counts the connections made to it (and drops them at once).
pub struct Tripwire {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
}

impl Tripwire {
    pub async fn start() -> Tripwire {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        Tripwire { addr, hits }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// One raw request to `addr` (the target is sent as is: no client library normalises it),
/// with `Connection: close` and `Host: 127.0.0.1` unless `headers` name a host; the status
/// (0 when the connection closed without an answer) and the whole answer.
pub async fn raw_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "{target}: no end of the answer within 10 s");
    let status = std::str::from_utf8(out.get(9..12).unwrap_or(b""))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}
