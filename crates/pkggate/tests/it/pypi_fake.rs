//! A fake PyPI for the PyPI tests: a simple index (JSON or HTML by `Accept`, or forced), a
//! legacy JSON API and a separate files host, with request counters and recorded request
//! headers; synthetic projects with real wheels and sdists built here; the recorded pages of
//! `../shared/fixtures/registry/pypi/`. Plus a helper that starts pkggate in front of it.

#![allow(dead_code)]

use crate::support::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use pkggate::audit::MemoryAudit;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate::gate::Gate;
use pkggate::intel::{Intel, IntelSource};
use pkggate::policy_state::PolicyHandle;
use pkggate::server::{AppState, Running};
use pkggate::upstream::Upstream;
use pkggate_formats::Ecosystem;
use pkggate_policy::Policy;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The gate's fixed clock: 2026-06-01T00:00:00Z.
pub const NOW: i64 = 1_780_272_000;

pub fn iso(unix: i64) -> String {
    pkggate::timefmt::rfc3339(unix).replace('Z', ".000000Z")
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn b64url_nopad(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        let chars = c.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Core metadata (`METADATA` / the PEP 658 file).
pub fn core_metadata(name: &str, version: &str) -> String {
    format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: synthetic test package\n\n"
    )
}

/// A real, installable pure-Python wheel.
pub fn build_wheel(name: &str, version: &str) -> Vec<u8> {
    let dist = name.replace('-', "_");
    let info = format!("{dist}-{version}.dist-info");
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            format!("{dist}/__init__.py"),
            format!("__version__ = {version:?}\n").into_bytes(),
        ),
        (
            format!("{info}/METADATA"),
            core_metadata(name, version).into_bytes(),
        ),
        (
            format!("{info}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: pkggate-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
                .to_vec(),
        ),
    ];
    let mut record = String::new();
    for (path, body) in &files {
        record.push_str(&format!(
            "{path},sha256={},{}\n",
            b64url_nopad(&Sha256::digest(body)),
            body.len()
        ));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (path, body) in &files {
            w.start_file(path.as_str(), opts).unwrap();
            w.write_all(body).unwrap();
        }
        w.start_file(format!("{info}/RECORD"), opts).unwrap();
        w.write_all(record.as_bytes()).unwrap();
        w.finish().unwrap();
    }
    buf.into_inner()
}

fn tar_entry(out: &mut Vec<u8>, path: &str, body: &[u8]) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A PEP 625 sdist (tar.gz with `PKG-INFO`).
pub fn build_sdist(name: &str, version: &str) -> Vec<u8> {
    let root = format!("{}-{version}", name.replace('-', "_"));
    let mut tar = Vec::new();
    tar_entry(
        &mut tar,
        &format!("{root}/PKG-INFO"),
        core_metadata(name, version).as_bytes(),
    );
    tar_entry(
        &mut tar,
        &format!("{root}/pyproject.toml"),
        format!("[project]\nname = {name:?}\nversion = {version:?}\n").as_bytes(),
    );
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// One file of a synthetic project.
#[derive(Clone, Debug)]
pub struct FakeFile {
    pub filename: String,
    pub version: String,
    /// What the index hashes.
    pub body: Bytes,
    /// What the files host serves (differs from `body` for a tampered file).
    pub served: Bytes,
    pub metadata: Option<Bytes>,
    pub upload_time: Option<String>,
    pub yanked: Option<String>,
    pub requires_python: Option<String>,
    /// Listed with a relative URL on the simple host (`../../rel/<file>`).
    pub relative: bool,
    pub with_hash: bool,
}

impl FakeFile {
    pub fn wheel(name: &str, version: &str, uploaded: i64) -> FakeFile {
        let body = Bytes::from(build_wheel(name, version));
        FakeFile {
            filename: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
            version: version.into(),
            served: body.clone(),
            body,
            metadata: Some(Bytes::from(core_metadata(name, version))),
            upload_time: Some(iso(uploaded)),
            yanked: None,
            requires_python: Some(">=3.8".into()),
            relative: false,
            with_hash: true,
        }
    }

    pub fn sdist(name: &str, version: &str, uploaded: i64) -> FakeFile {
        let body = Bytes::from(build_sdist(name, version));
        FakeFile {
            filename: format!("{}-{version}.tar.gz", name.replace('-', "_")),
            version: version.into(),
            served: body.clone(),
            body,
            metadata: None,
            upload_time: Some(iso(uploaded)),
            yanked: None,
            requires_python: None,
            relative: false,
            with_hash: true,
        }
    }

    pub fn named(mut self, filename: &str) -> FakeFile {
        self.filename = filename.into();
        self
    }

    pub fn yanked(mut self, reason: &str) -> FakeFile {
        self.yanked = Some(reason.into());
        self
    }

    pub fn tampered(mut self) -> FakeFile {
        let mut b = self.body.to_vec();
        let n = b.len();
        b[n / 2] ^= 0xff;
        self.served = Bytes::from(b);
        self
    }

    pub fn relative(mut self) -> FakeFile {
        self.relative = true;
        self
    }

    pub fn no_hash(mut self) -> FakeFile {
        self.with_hash = false;
        self
    }
}

/// How the simple index answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// JSON or HTML by `Accept`.
    Negotiate,
    JsonOnly,
    HtmlOnly,
}

#[derive(Default)]
pub struct Counters {
    pub simple: AtomicU64,
    pub files: AtomicU64,
    pub legacy: AtomicU64,
    pub root: AtomicU64,
    /// Requests answered with a redirect from [`FakePypi::redirect`].
    pub redirects: AtomicU64,
}

#[derive(Clone)]
pub struct FakePypi {
    pub simple: SocketAddr,
    pub files: SocketAddr,
    pub projects: Arc<Mutex<BTreeMap<String, Vec<FakeFile>>>>,
    /// Raw pages served as is: project → (content type, body).
    pub raw: Arc<Mutex<HashMap<String, (String, Bytes)>>>,
    pub mode: Arc<Mutex<Mode>>,
    pub counters: Arc<Counters>,
    /// (path, request headers) of every request.
    pub seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    pub root_body: Arc<Mutex<Option<Bytes>>>,
    /// Request path → (status, `Location`): answered instead of the page or file.
    pub redirects: Arc<Mutex<HashMap<String, (StatusCode, String)>>>,
    /// Legacy JSON answers wait while a test holds this for writing (after being counted).
    pub legacy_gate: Arc<tokio::sync::RwLock<()>>,
}

impl FakePypi {
    pub fn simple_base(&self) -> String {
        format!("http://{}/simple/", self.simple)
    }

    pub fn files_base(&self) -> String {
        format!("http://{}/", self.files)
    }

    pub fn add(&self, project: &str, files: Vec<FakeFile>) {
        self.projects
            .lock()
            .unwrap()
            .insert(project.to_string(), files);
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn file_requests(&self) -> u64 {
        self.counters.files.load(Ordering::SeqCst)
    }

    pub fn simple_requests(&self) -> u64 {
        self.counters.simple.load(Ordering::SeqCst)
    }

    /// A recorded fixture page (`<project>.v1.json.gz` / `.html.gz`), with its file host
    /// pointed at this fake.
    pub fn add_fixture(&self, project: &str, json: bool) {
        let file = format!("{project}.v1.{}.gz", if json { "json" } else { "html" });
        let body = gunzip(&shared().join("fixtures/registry/pypi").join(file));
        let body = String::from_utf8(body)
            .unwrap()
            .replace("https://files.example/", &self.files_base());
        let ct = if json {
            "application/vnd.pypi.simple.v1+json"
        } else {
            "application/vnd.pypi.simple.v1+html"
        };
        self.raw
            .lock()
            .unwrap()
            .insert(project.into(), (ct.into(), Bytes::from(body)));
    }

    /// Answer requests for `path` (on either host) with `status` and `Location: location`.
    /// The pages and files are also served under `/moved/…` (same routes, same counters),
    /// a same-origin target for such a redirect.
    pub fn redirect(&self, path: &str, status: u16, location: &str) {
        self.redirects.lock().unwrap().insert(
            path.into(),
            (StatusCode::from_u16(status).unwrap(), location.into()),
        );
    }

    pub fn redirect_requests(&self) -> u64 {
        self.counters.redirects.load(Ordering::SeqCst)
    }

    fn redirected(&self, uri: &Uri) -> Option<Response> {
        let (status, location) = self.redirects.lock().unwrap().get(uri.path()).cloned()?;
        self.counters.redirects.fetch_add(1, Ordering::SeqCst);
        Some(
            Response::builder()
                .status(status)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .unwrap(),
        )
    }

    pub fn set_raw(&self, project: &str, content_type: &str, body: &str) {
        self.raw.lock().unwrap().insert(
            project.into(),
            (content_type.into(), Bytes::from(body.to_string())),
        );
    }

    /// The upstream URL this fake lists for `f` (absolute, or relative to the page).
    pub fn file_url(&self, f: &FakeFile) -> String {
        if f.relative {
            format!("../../rel/{}", f.filename)
        } else {
            format!(
                "{}packages/{}/{}",
                self.files_base(),
                &sha256_hex(&f.body)[..8],
                f.filename
            )
        }
    }

    pub fn json_page(&self, project: &str) -> Option<String> {
        let projects = self.projects.lock().unwrap();
        let files = projects.get(project)?;
        let mut versions: Vec<String> = files.iter().map(|f| f.version.clone()).collect();
        versions.dedup();
        let files: Vec<_> = files
            .iter()
            .map(|f| {
                let mut o = json!({
                    "filename": f.filename,
                    "url": self.file_url(f),
                    "hashes": if f.with_hash { json!({"sha256": sha256_hex(&f.body)}) } else { json!({}) },
                    "requires-python": f.requires_python,
                    "yanked": f.yanked.clone().map(serde_json::Value::String).unwrap_or(json!(false)),
                    "size": f.body.len(),
                    "_private": {"kept": true},
                });
                if let Some(t) = &f.upload_time {
                    o["upload-time"] = json!(t);
                }
                if let Some(m) = &f.metadata {
                    o["core-metadata"] = json!({"sha256": sha256_hex(m)});
                    o["dist-info-metadata"] = json!({"sha256": sha256_hex(m)});
                }
                o
            })
            .collect();
        Some(
            json!({
                "meta": {"api-version": "1.1", "_last-serial": "42"},
                "name": project,
                "files": files,
                "versions": versions,
                "alternate-locations": [],
            })
            .to_string(),
        )
    }

    pub fn html_page(&self, project: &str) -> Option<String> {
        let projects = self.projects.lock().unwrap();
        let files = projects.get(project)?;
        let mut out = format!(
            "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {project}</title></head><body>\n"
        );
        for f in files {
            let mut a = format!("<a href=\"{}", self.file_url(f));
            if f.with_hash {
                a.push_str(&format!("#sha256={}", sha256_hex(&f.body)));
            }
            a.push('"');
            if let Some(rp) = &f.requires_python {
                a.push_str(&format!(
                    " data-requires-python=\"{}\"",
                    rp.replace('>', "&gt;").replace('<', "&lt;")
                ));
            }
            if let Some(m) = &f.metadata {
                a.push_str(&format!(" data-core-metadata=\"sha256={}\"", sha256_hex(m)));
            }
            if let Some(y) = &f.yanked {
                a.push_str(&format!(" data-yanked=\"{y}\""));
            }
            if let Some(t) = &f.upload_time {
                a.push_str(&format!(" data-upload-time=\"{t}\""));
            }
            a.push_str(&format!(">{}</a><br/>\n", f.filename));
            out.push_str(&a);
        }
        out.push_str("</body></html>\n");
        Some(out)
    }

    fn find_file(&self, filename: &str) -> Option<FakeFile> {
        let projects = self.projects.lock().unwrap();
        projects
            .values()
            .flatten()
            .find(|f| f.filename == filename)
            .cloned()
    }

    pub async fn start() -> FakePypi {
        let simple_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let files_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakePypi {
            simple: simple_l.local_addr().unwrap(),
            files: files_l.local_addr().unwrap(),
            projects: Default::default(),
            raw: Default::default(),
            mode: Arc::new(Mutex::new(Mode::Negotiate)),
            counters: Default::default(),
            seen: Default::default(),
            root_body: Default::default(),
            redirects: Default::default(),
            legacy_gate: Default::default(),
        };
        let simple = Router::new()
            .route("/simple/", get(root_page))
            .route("/simple/{project}/", get(project_page))
            .route("/pypi/{project}/json", get(legacy_page))
            .route("/pypi/{project}/{version}/json", get(legacy_version))
            .route("/rel/{file}", get(serve_file_route))
            .route("/moved/simple/{project}/", get(project_page))
            .route("/moved/pypi/{project}/json", get(legacy_page))
            .route("/moved/rel/{file}", get(serve_file_route))
            .with_state(fake.clone());
        let files = Router::new()
            .route("/packages/{hash}/{file}", get(serve_file_hashed))
            .route("/gen/{size}/{file}", get(serve_generated))
            .route("/gen-flip/{size}/{file}", get(serve_generated_flipped))
            .route("/moved/packages/{hash}/{file}", get(serve_file_hashed))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(simple_l, simple).await.unwrap() });
        tokio::spawn(async move { axum::serve(files_l, files).await.unwrap() });
        fake
    }

    fn record(&self, uri: &Uri, headers: &HeaderMap) {
        self.seen
            .lock()
            .unwrap()
            .push((uri.path().to_string(), headers.clone()));
    }
}

pub fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn resp(status: StatusCode, ct: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ct)
        .body(body.into())
        .unwrap()
}

async fn root_page(State(f): State<FakePypi>, uri: Uri, headers: HeaderMap) -> Response {
    f.record(&uri, &headers);
    f.counters.root.fetch_add(1, Ordering::SeqCst);
    let body = f.root_body.lock().unwrap().clone();
    match body {
        Some(b) => resp(StatusCode::OK, "text/html", b),
        None => {
            let names: Vec<String> = f.projects.lock().unwrap().keys().cloned().collect();
            if matches!(*f.mode.lock().unwrap(), Mode::JsonOnly) {
                let projects: Vec<_> = names
                    .iter()
                    .map(|n| serde_json::json!({"name": n}))
                    .collect();
                let doc = serde_json::json!({"meta": {"api-version": "1.1"}, "projects": projects});
                return resp(
                    StatusCode::OK,
                    "application/vnd.pypi.simple.v1+json",
                    doc.to_string(),
                );
            }
            let mut out = String::from("<!DOCTYPE html><html><body>\n");
            for n in names {
                out.push_str(&format!("<a href=\"/simple/{n}/\">{n}</a><br/>\n"));
            }
            out.push_str("</body></html>\n");
            resp(StatusCode::OK, "text/html", out)
        }
    }
}

async fn project_page(
    State(f): State<FakePypi>,
    Path(project): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    f.record(&uri, &headers);
    if let Some(r) = f.redirected(&uri) {
        return r;
    }
    f.counters.simple.fetch_add(1, Ordering::SeqCst);
    if let Some((ct, body)) = f.raw.lock().unwrap().get(&project).cloned() {
        return resp(StatusCode::OK, &ct, body);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = match *f.mode.lock().unwrap() {
        Mode::JsonOnly => true,
        Mode::HtmlOnly => false,
        Mode::Negotiate => accept.starts_with("application/vnd.pypi.simple.v1+json"),
    };
    let page = if json {
        f.json_page(&project)
    } else {
        f.html_page(&project)
    };
    match page {
        Some(p) if json => resp(StatusCode::OK, "application/vnd.pypi.simple.v1+json", p),
        Some(p) => resp(StatusCode::OK, "text/html", p),
        None => resp(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

fn legacy_doc(f: &FakePypi, project: &str, only: Option<&str>) -> Option<String> {
    let projects = f.projects.lock().unwrap();
    let files = projects.get(project)?;
    let mut releases = serde_json::Map::new();
    for file in files {
        let o = json!({
            "filename": file.filename,
            "url": f.file_url(file),
            "digests": {"sha256": sha256_hex(&file.body)},
            "size": file.body.len(),
            "upload_time_iso_8601": file.upload_time,
            "yanked": file.yanked.is_some(),
            "yanked_reason": file.yanked,
            "packagetype": if file.filename.ends_with(".whl") { "bdist_wheel" } else { "sdist" },
        });
        releases
            .entry(file.version.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(o);
    }
    let latest = files.last()?.version.clone();
    let version = only.map(str::to_string).unwrap_or(latest);
    let urls = releases.get(&version)?.clone();
    let mut doc = json!({
        "info": {"name": project, "version": version, "summary": "x",
                 "project_urls": {"Source": format!("https://github.com/example/{project}")}},
        "last_serial": 42,
        "urls": urls,
        "vulnerabilities": [],
    });
    if only.is_none() {
        doc["releases"] = serde_json::Value::Object(releases);
    }
    Some(doc.to_string())
}

async fn legacy_page(
    State(f): State<FakePypi>,
    Path(project): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    f.record(&uri, &headers);
    if let Some(r) = f.redirected(&uri) {
        return r;
    }
    f.counters.legacy.fetch_add(1, Ordering::SeqCst);
    let _open = f.legacy_gate.read().await;
    match legacy_doc(&f, &project, None) {
        Some(d) => resp(StatusCode::OK, "application/json", d),
        None => resp(StatusCode::NOT_FOUND, "application/json", "{}"),
    }
}

async fn legacy_version(
    State(f): State<FakePypi>,
    Path((project, version)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    f.record(&uri, &headers);
    f.counters.legacy.fetch_add(1, Ordering::SeqCst);
    match legacy_doc(&f, &project, Some(&version)) {
        Some(d) => resp(StatusCode::OK, "application/json", d),
        None => resp(StatusCode::NOT_FOUND, "application/json", "{}"),
    }
}

fn serve_fake(f: &FakePypi, file: &str, method: &Method) -> Response {
    f.counters.files.fetch_add(1, Ordering::SeqCst);
    let (name, meta) = match file.strip_suffix(".metadata") {
        Some(n) => (n, true),
        None => (file, false),
    };
    let Some(ff) = f.find_file(name) else {
        return resp(StatusCode::NOT_FOUND, "text/plain", "no such file");
    };
    let body = if meta {
        match ff.metadata {
            Some(m) => m,
            None => return resp(StatusCode::NOT_FOUND, "text/plain", "no metadata"),
        }
    } else {
        ff.served
    };
    let len = body.len();
    let mut r = resp(
        StatusCode::OK,
        "application/octet-stream",
        if *method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body)
        },
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, len.to_string().parse().unwrap());
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    r
}

async fn serve_file_hashed(
    State(f): State<FakePypi>,
    Path((_hash, file)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    f.record(&uri, &headers);
    if let Some(r) = f.redirected(&uri) {
        return r;
    }
    serve_fake(&f, &file, &method)
}

async fn serve_file_route(
    State(f): State<FakePypi>,
    Path(file): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    f.record(&uri, &headers);
    serve_fake(&f, &file, &method)
}

/// `size` bytes generated on the fly (never stored): a repeating 64 KiB block.
pub fn generated_body(size: u64) -> Body {
    generated_body_flipped(size, None)
}

/// [`generated_body`] with the byte at offset `flip` inverted (same length, other digest).
pub fn generated_body_flipped(size: u64, flip: Option<u64>) -> Body {
    const BLOCK: u64 = 65536;
    let block = Bytes::from(
        (0..BLOCK as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect::<Vec<u8>>(),
    );
    let chunks = size / BLOCK;
    let rest = (size % BLOCK) as usize;
    let flip_chunk = move |i: u64, b: Bytes| match flip {
        Some(at) if at / BLOCK == i => {
            let mut v = b.to_vec();
            v[(at % BLOCK) as usize] ^= 0xff;
            Bytes::from(v)
        }
        _ => b,
    };
    let s = futures_util::stream::iter(
        (0..chunks)
            .map(move |i| flip_chunk(i, block.clone()))
            .chain((rest > 0).then(|| flip_chunk(chunks, Bytes::from(vec![7u8; rest]))))
            .map(Ok::<_, std::io::Error>),
    );
    Body::from_stream(s)
}

/// The sha256 of [`generated_body`] (computed by streaming the same blocks).
pub fn generated_sha256(size: u64) -> String {
    let block: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut h = Sha256::new();
    for _ in 0..size / block.len() as u64 {
        h.update(&block);
    }
    let rest = (size % block.len() as u64) as usize;
    h.update(vec![7u8; rest]);
    hex::encode(h.finalize())
}

async fn serve_generated(
    State(f): State<FakePypi>,
    Path((size, _file)): Path<(u64, String)>,
    method: Method,
) -> Response {
    f.counters.files.fetch_add(1, Ordering::SeqCst);
    let mut r = resp(
        StatusCode::OK,
        "application/octet-stream",
        if method == Method::HEAD {
            Body::empty()
        } else {
            generated_body(size)
        },
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, size.to_string().parse().unwrap());
    r
}

/// `/gen-flip/{size}/{file}`: [`generated_body`] with its middle byte inverted, so it has
/// the length but not the sha256 of `/gen/{size}/…` (a tampered file of the same size).
async fn serve_generated_flipped(
    State(f): State<FakePypi>,
    Path((size, _file)): Path<(u64, String)>,
    method: Method,
) -> Response {
    f.counters.files.fetch_add(1, Ordering::SeqCst);
    let mut r = resp(
        StatusCode::OK,
        "application/octet-stream",
        if method == Method::HEAD {
            Body::empty()
        } else {
            generated_body_flipped(size, Some(size / 2))
        },
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, size.to_string().parse().unwrap());
    r
}

/// A catch-all malicious record (every version).
pub fn mal_all(id: &str, name: &str) -> (String, String) {
    (
        format!("{id}.json"),
        format!(
            r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"PyPI","name":"{name}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}}]}}]}}]}}"#
        ),
    )
}

/// pkggate in front of a [`FakePypi`].
pub struct GateUnderTest {
    pub running: Running,
    pub base: String,
    pub audit: MemoryAudit,
    pub mirror: TempMirror,
    pub config: Arc<Config>,
}

impl GateUnderTest {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn audit_has(&self, rule: &str) -> bool {
        self.audit
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.rule == rule)
    }
}

/// Start pkggate with `policy` (YAML) and the advisories `records` (a dummy one is always
/// added so the mirror counts as loaded), in front of `fake`.
pub async fn start_gate(
    fake: &FakePypi,
    policy: &str,
    records: Vec<(String, String)>,
    extra: &[(&str, &str)],
) -> GateUnderTest {
    let mirror = TempMirror::new();
    let mut records = records;
    records.push(mal_record(
        "MAL-0000-DUMMY",
        "PyPI",
        "some-unrelated-project",
        &["1.0"],
        "",
    ));
    let zip = make_zip(&records);
    let zip_path = mirror.dir.path().join("pypi.zip");
    std::fs::write(&zip_path, zip).unwrap();
    mirror
        .sync(Ecosystem::PyPI, zip_path.to_str().unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut raw = RawInputs::default();
    let mut set = |k: &str, v: &str| {
        raw.env.insert(k.to_string(), v.to_string());
    };
    set(env::PORT, &addr.port().to_string());
    set(env::PUBLIC_BASE_URL, &base);
    set(env::PYPI_UPSTREAM_SIMPLE, &fake.simple_base());
    set(env::PYPI_UPSTREAM_FILES, &fake.files_base());
    set(env::MIRROR_DB, mirror.db_path().to_str().unwrap());
    set(env::CARGO_ENABLED, "false");
    set(env::POLICY_HOT_RELOAD_ENABLED, "false");
    set(env::UPSTREAM_TIMEOUT_SECONDS, "10");
    set(
        env::AUDIT_LOG,
        mirror.dir.path().join("audit.log").to_str().unwrap(),
    );
    for (k, v) in extra {
        set(k, v);
    }
    let config = Arc::new(Config::load(&raw).unwrap());
    let audit = MemoryAudit::default();
    let intel: Arc<dyn IntelSource> = Arc::new(Intel {
        store: Some(mirror.store.clone()),
        live: None,
    });
    let policy = PolicyHandle::fixed(Policy::from_yaml(policy, "policy.yaml").unwrap());
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: Arc::new(audit.clone()),
        clock: Arc::new(|| NOW),
        audit_allowed_each: false,
    });
    let upstream = Arc::new(Upstream::new(
        Duration::from_secs(10),
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    let state = AppState {
        config: config.clone(),
        intel,
        gate,
        upstream,
        policy,
        audit: Arc::new(audit.clone()),
    };
    let running = pkggate::server::start_with(listener, state, None)
        .await
        .unwrap();
    GateUnderTest {
        running,
        base,
        audit,
        mirror,
        config,
    }
}

/// Days before [`NOW`].
pub fn days_ago(d: i64) -> i64 {
    NOW - d * 86_400
}

/// The standard synthetic projects.
pub fn standard_projects(fake: &FakePypi) {
    fake.add(
        "demo-pkg",
        vec![
            FakeFile::wheel("demo-pkg", "1.0.0", days_ago(400)),
            FakeFile::sdist("demo-pkg", "1.0.0", days_ago(400)),
            FakeFile::wheel("demo-pkg", "1.1.0", days_ago(300)).yanked("broken build"),
            FakeFile::wheel("demo-pkg", "2.0.0", days_ago(200)),
            FakeFile::sdist("demo-pkg", "2.0.0", days_ago(200)),
        ],
    );
    fake.add(
        "young-pkg",
        vec![
            FakeFile::wheel("young-pkg", "1.0.0", days_ago(100)),
            FakeFile::wheel("young-pkg", "1.1.0", days_ago(1)),
        ],
    );
    fake.add(
        "tamper-pkg",
        vec![FakeFile::wheel("tamper-pkg", "1.0.0", days_ago(100)).tampered()],
    );
    fake.add(
        "rel-pkg",
        vec![FakeFile::wheel("rel-pkg", "1.0.0", days_ago(100)).relative()],
    );
    fake.add(
        "nohash-pkg",
        vec![FakeFile::wheel("nohash-pkg", "1.0.0", days_ago(100)).no_hash()],
    );
    fake.add(
        "evil-pkg",
        vec![FakeFile::wheel("evil-pkg", "0.1.0", days_ago(100))],
    );
}

/// The advisories of [`standard_projects`].
pub fn standard_records() -> Vec<(String, String)> {
    vec![
        mal_record("MAL-2026-0001", "PyPI", "demo-pkg", &["2.0.0"], ""),
        mal_all("MAL-2026-0002", "evil-pkg"),
    ]
}
