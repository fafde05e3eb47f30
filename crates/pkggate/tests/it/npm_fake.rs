//! A fake npm upstream on 127.0.0.1:0 serving synthetic packages with real tarballs and the
//! recorded documents of `../shared/fixtures/registry/npm/`, counting requests per path and
//! recording request headers; and a harness that runs pkggate in front of it.

#![allow(dead_code, clippy::type_complexity)]

use crate::support::*;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::gate::Gate;
use pkggate::intel::{Intel, IntelSource};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::{AppState, Running};
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem::Npm;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The fixed "now" of the gate: 2026-06-01T00:00:00Z.
pub const NOW: i64 = 1_780_272_000;
pub const DAY: i64 = 86_400;

pub fn iso(unix: i64) -> String {
    pkggate::timefmt::rfc3339(unix).replace('Z', ".000Z")
}

/// A gzipped tar with `package/package.json` (and `package/index.js`).
pub fn tarball(name: &str, version: &str, scripts: &[(&str, &str)]) -> Vec<u8> {
    let mut pj = json!({"name": name, "version": version, "main": "index.js"});
    if !scripts.is_empty() {
        let s: serde_json::Map<String, Value> = scripts
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        pj["scripts"] = Value::Object(s);
    }
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "package/package.json",
            serde_json::to_vec_pretty(&pj).unwrap(),
        ),
        (
            "package/index.js",
            format!("module.exports = {:?};\n", format!("{name}@{version}")).into_bytes(),
        ),
    ];
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        t.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

pub fn sri512(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

/// One synthetic version.
#[derive(Clone)]
pub struct Ver {
    pub version: String,
    pub published: i64,
    pub scripts: Vec<(String, String)>,
    pub repository: Option<String>,
    /// Serve these bytes instead of the real tarball (integrity stays the real one's).
    pub tampered: bool,
    /// Publish no `dist.integrity` and no `dist.shasum`.
    pub no_digest: bool,
}

impl Ver {
    pub fn new(version: &str, published: i64) -> Ver {
        Ver {
            version: version.into(),
            published,
            scripts: Vec::new(),
            repository: Some("git+https://example.invalid/repo.git".into()),
            tampered: false,
            no_digest: false,
        }
    }
    pub fn no_digest(mut self) -> Ver {
        self.no_digest = true;
        self
    }
    pub fn script(mut self, k: &str, v: &str) -> Ver {
        self.scripts.push((k.into(), v.into()));
        self
    }
    pub fn no_repo(mut self) -> Ver {
        self.repository = None;
        self
    }
    pub fn tampered(mut self) -> Ver {
        self.tampered = true;
        self
    }
}

/// A synthetic package: its full document, its abbreviated document, its tarballs.
pub struct Synthetic {
    pub name: String,
    pub full: Vec<u8>,
    pub corgi: Vec<u8>,
    /// Tarball path (as published: `/@s/n/-/n-1.0.0.tgz`) → bytes served.
    pub tarballs: Vec<(String, Vec<u8>)>,
}

pub fn synthetic(upstream: &str, name: &str, vers: &[Ver], tags: &[(&str, &str)]) -> Synthetic {
    let base = name.rsplit('/').next().unwrap();
    let mut versions = serde_json::Map::new();
    let mut corgi_versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    let mut tarballs = Vec::new();
    let created = vers.iter().map(|v| v.published).min().unwrap_or(NOW);
    let modified = vers.iter().map(|v| v.published).max().unwrap_or(NOW);
    time.insert("created".into(), json!(iso(created)));
    time.insert("modified".into(), json!(iso(modified)));
    for v in vers {
        let scripts: Vec<(&str, &str)> = v
            .scripts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let tgz = tarball(name, &v.version, &scripts);
        let path = format!("/{name}/-/{base}-{}.tgz", v.version);
        let mut dist = json!({
            "tarball": format!("{upstream}{path}"),
            "integrity": sri512(&tgz),
            "shasum": sha1_hex(&tgz),
            "fileCount": 2,
            "signatures": [{"keyid": "SHA256:fake", "sig": format!("sig-{}", v.version)}],
        });
        if v.no_digest {
            let d = dist.as_object_mut().unwrap();
            d.remove("integrity");
            d.remove("shasum");
        }
        let served = if v.tampered {
            let mut t = tgz.clone();
            let n = t.len();
            t[n / 2] ^= 0xff;
            t
        } else {
            tgz
        };
        tarballs.push((path, served));
        let mut full = json!({
            "name": name, "version": v.version, "description": "synthetic",
            "main": "index.js", "dependencies": {}, "dist": dist,
            "_npmUser": {"name": "tester"},
        });
        if !v.scripts.is_empty() {
            full["scripts"] = Value::Object(
                v.scripts
                    .iter()
                    .map(|(k, s)| (k.clone(), json!(s)))
                    .collect(),
            );
        }
        if let Some(r) = &v.repository {
            full["repository"] = json!({"type": "git", "url": r});
        }
        let mut corgi =
            json!({"name": name, "version": v.version, "dependencies": {}, "dist": dist});
        if v.scripts
            .iter()
            .any(|(k, _)| ["preinstall", "install", "postinstall"].contains(&k.as_str()))
        {
            corgi["hasInstallScript"] = json!(true);
        }
        versions.insert(v.version.clone(), full);
        corgi_versions.insert(v.version.clone(), corgi);
        time.insert(v.version.clone(), json!(iso(v.published)));
    }
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(t, v)| (t.to_string(), json!(v)))
        .collect();
    let full = json!({
        "_id": name, "_rev": "1-abc", "name": name, "description": "synthetic",
        "dist-tags": tags, "versions": versions, "time": time,
        "readme": "# synthetic", "unknownTopLevel": {"kept": true},
    });
    let corgi = json!({
        "name": name, "dist-tags": tags, "versions": corgi_versions, "modified": iso(modified),
    });
    Synthetic {
        name: name.into(),
        full: serde_json::to_vec(&full).unwrap(),
        corgi: serde_json::to_vec(&corgi).unwrap(),
        tarballs,
    }
}

/// Read a recorded fixture (`next`, `express`…).
pub fn fixture(file: &str) -> Vec<u8> {
    let p = shared()
        .join("fixtures/registry/npm")
        .join(format!("{file}.full.json.gz"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A gate the fake upstream waits on (no permits until the test adds some).
pub struct Hold(pub tokio::sync::Semaphore);

impl Default for Hold {
    fn default() -> Self {
        Hold(tokio::sync::Semaphore::new(0))
    }
}

#[derive(Clone, Default)]
pub struct FakeNpm {
    /// name → (full, abbreviated or none).
    pub docs: Arc<Mutex<HashMap<String, (Bytes, Option<Bytes>)>>>,
    /// Tarball path → bytes.
    pub files: Arc<Mutex<HashMap<String, Bytes>>>,
    /// Path (as requested) → count.
    pub hits: Arc<Mutex<HashMap<String, u64>>>,
    /// Every request's method, path and headers.
    pub log: Arc<Mutex<Vec<(String, String, HeaderMap)>>>,
    /// Behave like a caching mirror: ignore the abbreviated Accept, send no ETag.
    pub mirror: Arc<AtomicBool>,
    /// Hold packument answers until released (single-flight test).
    pub hold: Arc<Hold>,
    pub holding: Arc<AtomicBool>,
    /// Answer the audit endpoints with this status (0: a canned report).
    pub audit_status: Arc<Mutex<u16>>,
    pub audit_bodies: Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>,
}

impl FakeNpm {
    pub fn add(&self, s: &Synthetic) {
        self.docs.lock().unwrap().insert(
            s.name.clone(),
            (
                Bytes::from(s.full.clone()),
                Some(Bytes::from(s.corgi.clone())),
            ),
        );
        let mut f = self.files.lock().unwrap();
        for (p, b) in &s.tarballs {
            f.insert(p.clone(), Bytes::from(b.clone()));
        }
    }

    pub fn add_raw(&self, name: &str, full: Vec<u8>) {
        self.docs
            .lock()
            .unwrap()
            .insert(name.into(), (Bytes::from(full), None));
    }

    pub fn hits(&self, path: &str) -> u64 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> u64 {
        self.hits.lock().unwrap().values().sum()
    }

    pub fn tarball_hits(&self) -> u64 {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(".tgz"))
            .map(|(_, n)| n)
            .sum()
    }

    pub async fn start() -> (FakeNpm, String) {
        let s = FakeNpm::default();
        let app = Router::new().fallback(fake_handler).with_state(s.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (s, format!("http://{addr}"))
    }
}

fn decode_name(p: &str) -> String {
    p.trim_start_matches('/')
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%40", "@")
}

async fn fake_handler(
    State(s): State<FakeNpm>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    s.log
        .lock()
        .unwrap()
        .push((method.to_string(), path.clone(), headers.clone()));
    let resp = |status: u16, ct: &str, body: Bytes| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    };
    if method == Method::POST {
        let b = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        s.audit_bodies.lock().unwrap().push((headers, b.to_vec()));
        let st = *s.audit_status.lock().unwrap();
        if st != 0 {
            return resp(
                st,
                "application/json",
                Bytes::from_static(b"{\"error\":\"gone\"}"),
            );
        }
        return resp(
            200,
            "application/json",
            Bytes::from_static(b"{\"fake-audited\":[]}"),
        );
    }
    if path == "/-/v1/search" {
        return resp(
            200,
            "application/json",
            Bytes::from_static(b"{\"objects\":[{\"package\":{\"name\":\"x\"}}],\"total\":1}"),
        );
    }
    if path.contains("/-/") && path.ends_with(".tgz") {
        let key = decode_name(&path);
        let f = s.files.lock().unwrap().get(&format!("/{key}")).cloned();
        return match f {
            Some(b) => resp(200, "application/octet-stream", b),
            None => resp(404, "application/json", Bytes::from_static(b"{}")),
        };
    }
    if s.holding.load(Ordering::SeqCst) {
        let _permit = s.hold.0.acquire().await.unwrap();
    }
    let name = decode_name(&path);
    let doc = s.docs.lock().unwrap().get(&name).cloned();
    let Some((full, corgi)) = doc else {
        return resp(
            404,
            "application/json",
            Bytes::from_static(b"{\"error\":\"Not found\"}"),
        );
    };
    let mirror = s.mirror.load(Ordering::SeqCst);
    let wants_corgi = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.npm.install-v1+json"));
    let (body, ct) = match (wants_corgi && !mirror, corgi) {
        (true, Some(c)) => (c, "application/vnd.npm.install-v1+json"),
        _ => (full, "application/json"),
    };
    let mut b = Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, ct);
    if !mirror {
        let etag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&body))[..16]);
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, etag)
                .body(Body::empty())
                .unwrap();
        }
        b = b.header(header::ETAG, etag);
    }
    b.body(Body::from(body)).unwrap()
}

/// pkggate in front of a fake upstream.
pub struct Harness {
    pub base: String,
    pub upstream: FakeNpm,
    pub upstream_base: String,
    pub audit: MemoryAudit,
    pub policy: PolicyHandle,
    pub policy_file: std::path::PathBuf,
    pub running: Option<Running>,
    pub state: AppState,
    _mirror: TempMirror,
    _dir: tempfile::TempDir,
}

pub const DEFAULT_POLICY: &str = "fail_closed: true\nblock_malicious: true\n";

impl Harness {
    /// `mal`: (name, versions) marked malicious in the mirror.
    pub async fn start(policy: &str, mal: &[(&str, &[&str])]) -> Harness {
        let (upstream, upstream_base) = FakeNpm::start().await;
        Self::start_with(upstream, upstream_base, policy, mal, &[]).await
    }

    pub async fn start_with(
        upstream: FakeNpm,
        upstream_base: String,
        policy: &str,
        mal: &[(&str, &[&str])],
        extra_env: &[(&str, &str)],
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut records: Vec<(String, String)> = mal
            .iter()
            .enumerate()
            .map(|(i, (n, vs))| mal_record(&format!("MAL-2026-{}", 100 + i), "npm", n, vs, ""))
            .collect();
        records.push(mal_record(
            "MAL-2026-9999",
            "npm",
            "unrelated-pkg",
            &["1.0.0"],
            "",
        ));
        let zip = dir.path().join("npm.zip");
        std::fs::write(&zip, make_zip(&records)).unwrap();
        Self::start_bundle(upstream, upstream_base, policy, &zip, extra_env, dir).await
    }

    /// pkggate with the mirror loaded from `bundle` (a zip path).
    pub async fn start_bundle(
        upstream: FakeNpm,
        upstream_base: String,
        policy: &str,
        bundle: &Path,
        extra_env: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> Harness {
        let mirror = TempMirror::new();
        mirror.sync(Npm, bundle.to_str().unwrap()).await.unwrap();
        let policy_file = dir.path().join("policy.yaml");
        std::fs::write(&policy_file, policy).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = RawInputs::default();
        let mut set = |k: &str, v: &str| {
            raw.env.insert(k.to_string(), v.to_string());
        };
        set(env::PORT, &addr.port().to_string());
        set(env::UPSTREAM_NPM, &upstream_base);
        set(env::PUBLIC_BASE_URL, &format!("http://{addr}"));
        set(env::PYPI_ENABLED, "false");
        set(env::CARGO_ENABLED, "false");
        set(env::POLICY_FILE, policy_file.to_str().unwrap());
        set(env::MIRROR_DB, mirror.db_path().to_str().unwrap());
        set(env::UPSTREAM_TIMEOUT_SECONDS, "10");
        for (k, v) in extra_env {
            set(k, v);
        }
        let config = Arc::new(Config::load(&raw).unwrap());
        let audit = MemoryAudit::default();
        let policy = PolicyHandle::load(&policy_file).unwrap();
        let intel: Arc<dyn IntelSource> = Arc::new(Intel {
            store: Some(mirror.store.clone()),
            live: None,
        });
        let audit_sink: Arc<dyn pkggate::audit::AuditSink> = Arc::new(audit.clone());
        let gate = Arc::new(Gate {
            intel: intel.clone(),
            policy: policy.clone(),
            audit: audit_sink.clone(),
            clock: Arc::new(|| NOW),
            audit_allowed_each: false,
        });
        let up = Arc::new(Upstream::new(
            config.upstream_timeout,
            config.max_document_bytes,
            &config.upstream_bases(),
        ));
        let state = AppState {
            config,
            intel,
            gate,
            upstream: up,
            policy: policy.clone(),
            audit: audit_sink,
        };
        // No store: the test's mirror is loaded already and must not be refreshed.
        let running = pkggate::server::start_with(listener, state.clone(), None)
            .await
            .unwrap();
        Harness {
            base: format!("http://{addr}"),
            upstream,
            upstream_base,
            audit,
            policy,
            policy_file,
            running: Some(running),
            state,
            _mirror: mirror,
            _dir: dir,
        }
    }

    pub fn add(&self, name: &str, vers: &[Ver], tags: &[(&str, &str)]) -> Synthetic {
        let s = synthetic(&self.upstream_base, name, vers, tags);
        self.upstream.add(&s);
        s
    }

    pub fn set_policy(&self, text: &str) {
        std::fs::write(&self.policy_file, text).unwrap();
        assert!(self.policy.reload(&self.policy_file), "policy reloaded");
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

pub const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// GET with headers; returns status, headers and body bytes.
pub async fn get(url: &str, hdrs: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut r = client().get(url);
    for (k, v) in hdrs {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.bytes().await.unwrap_or_default().to_vec())
}

pub fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&b[..b.len().min(300)])
        )
    })
}

/// Every dist-tag of a served document points at a served version.
pub fn assert_tags_consistent(doc: &Value) {
    let versions = doc["versions"].as_object().unwrap();
    for (tag, v) in doc["dist-tags"].as_object().unwrap() {
        assert!(
            versions.contains_key(v.as_str().unwrap()),
            "dist-tag {tag} -> {v} points at a missing version"
        );
    }
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

pub fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut f = std::fs::File::create(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// A GET with the request target sent exactly as given; returns status and body.
pub async fn raw_get(base: &str, target: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body.into_bytes())
}
