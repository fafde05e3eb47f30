//! The HTTP server: routing, shared state, lifecycle (bind at once, serve from the existing
//! mirror while it refreshes in the background, drain on SIGTERM/SIGINT).
//!
//! Handlers are thin: they read [`AppState`], whose services (intelligence, later policy,
//! audit and upstreams) are injected so tests can swap them.

use crate::audit::{AuditLog, AuditOptions, AuditSink};
use crate::config::Config;
use crate::gate::{Gate, RequestInfo, RequestKind};
use crate::intel::{self, EcoState, IntelSource, IntelStore, now_unix};
use crate::policy_state::PolicyHandle;
use crate::upstream::Upstream;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkggate_formats::Ecosystem;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod admin;
pub mod auth;
pub mod why;

/// Everything a handler may use. Services are injected: tests build an `AppState` with fake
/// upstreams, an in-memory audit sink, a fixed clock or policy.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub intel: Arc<dyn IntelSource>,
    pub gate: Arc<Gate>,
    pub upstream: Arc<Upstream>,
    pub policy: PolicyHandle,
    pub audit: Arc<dyn AuditSink>,
}

/// Per-request context set by the middleware: request id (also sent back as
/// `x-request-id`), client address, user agent.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: String,
    pub user_agent: Option<String>,
}

impl RequestContext {
    pub fn info(&self, kind: RequestKind) -> RequestInfo {
        RequestInfo {
            request_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
            user_agent: self.user_agent.clone(),
            kind,
        }
    }
}

fn new_request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = SEED
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// The last `X-Forwarded-For` entry: the client as the nearest proxy saw it (earlier entries
/// are whatever the client sent). Meaningful only when forwarded headers are trusted.
pub(crate) fn last_forwarded_for(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

async fn request_context(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // The audit's `client_ip`: the forwarded client when a front proxy is trusted.
    let forwarded = state
        .config
        .trust_forwarded_headers
        .then(|| last_forwarded_for(req.headers()))
        .flatten()
        .and_then(|v| v.parse::<std::net::IpAddr>().ok());
    let client_ip = forwarded
        .or_else(|| {
            req.extensions()
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .map(|ip| ip.to_canonical().to_string())
        .unwrap_or_else(|| "unknown".into());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    let ctx = RequestContext {
        request_id: new_request_id(),
        client_ip,
        user_agent,
    };
    let id = ctx.request_id.clone();
    req.extensions_mut().insert(ctx);
    let (eco, kind) = crate::metrics::classify(req.uri().path());
    let m = crate::metrics::metrics();
    m.in_flight.inc();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", id = %id);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    m.in_flight.dec();
    let status = resp.status().as_u16().to_string();
    m.requests
        .get_or_create(&crate::metrics::labels(&[
            ("ecosystem", eco),
            ("kind", kind),
            ("status", &status),
        ]))
        .inc();
    m.request_seconds
        .get_or_create(&crate::metrics::labels(&[
            ("ecosystem", eco),
            ("kind", kind),
        ]))
        .observe(started.elapsed().as_secs_f64());
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The router: pkggate's own routes, then each enabled ecosystem adapter's routes; npm owns
/// the root namespace (`/<name>`), so it is the fallback.
pub fn router(state: AppState) -> Router {
    let mut app: Router<AppState> = Router::new()
        .route("/-/pkggate/health", get(health))
        .route("/-/pkggate/ready", get(ready))
        .route("/-/pkggate/login", axum::routing::post(auth::login))
        .route("/-/pkggate/logout", axum::routing::post(auth::logout))
        .route(
            "/-/pkggate/why/{ecosystem}/{*rest}",
            get(why::why).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::admin_only,
            )),
        )
        .route(
            "/metrics",
            get(metrics_endpoint).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::admin_only,
            )),
        )
        .merge(
            admin::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::admin_only,
            )),
        );
    for adapter in crate::ecosystems::adapters(&state.config) {
        app = app.merge(adapter.routes());
    }
    app.fallback(crate::npm::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let body = crate::metrics::render(&state);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// JSON body with an explicit status and `Cache-Control: no-store`.
/// The public base written into rewritten URLs (npm tarballs, PyPI files, cargo `dl`):
/// `X-Forwarded-Host` / `X-Forwarded-Proto` when `TRUST_FORWARDED_HEADERS` is on and the host
/// is plain, else the configured base ([`crate::config::Config::public_base`]).
pub fn public_base(state: &AppState, eco: Ecosystem, headers: &HeaderMap) -> String {
    if state.config.trust_forwarded_headers
        && let Some(host) = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            })
    {
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .map(|p| p.split(',').next().unwrap_or("").trim())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        return format!("{proto}://{host}");
    }
    state.config.public_base(eco)
}

pub fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

/// 404 with npm's body.
pub fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"error": "Not found"}))
}

/// Readiness of the intelligence of one ecosystem.
fn intel_detail(config: &Config, s: &EcoState, now: i64) -> (bool, serde_json::Value) {
    let enabled = config.ecosystem_enabled(s.ecosystem);
    let loaded = s.loaded();
    let ok = !enabled || !config.mirror_enabled || loaded;
    let detail = json!({
        "enabled": enabled,
        "loaded": loaded,
        "records": s.records,
        "age_seconds": s.age_seconds(now),
        "last_success": s.last_success,
        "last_attempt": s.last_attempt,
        "last_error": s.last_error,
        "revision": s.revision,
        "ready": ok,
    });
    (ok, detail)
}

async fn ready(State(state): State<AppState>) -> Response {
    let now = now_unix();
    let mut all_ok = true;
    let mut eco = serde_json::Map::new();
    let states = state.intel.states();
    for e in Ecosystem::ALL {
        // No store (mirror disabled): reported as not loaded.
        let s = states
            .iter()
            .find(|s| s.ecosystem == e)
            .cloned()
            .unwrap_or_else(|| EcoState::empty(e));
        let (ok, detail) = intel_detail(&state.config, &s, now);
        all_ok &= ok;
        eco.insert(e.osv_name().to_string(), detail);
    }
    if !state.config.mirror_enabled && !state.config.live_fallback_enabled {
        all_ok = false;
    }
    // An unwritable audit log fails readiness; a rejected policy change is reported (the
    // last good policy keeps serving, so it does not take the instance out of rotation).
    let audit = state.audit.status();
    all_ok &= audit.healthy;
    let policy = state.policy.status();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        json!({
            "status": if all_ok { "ready" } else { "not_ready" },
            "mirror_enabled": state.config.mirror_enabled,
            "live_fallback_enabled": state.config.live_fallback_enabled,
            "intel": eco,
            "policy": policy,
            "audit": audit,
        }),
    )
}

/// Build the production intelligence from the configuration.
pub fn build_intel(
    config: &Config,
) -> anyhow::Result<(Arc<intel::Intel>, Option<Arc<IntelStore>>)> {
    let store = if config.mirror_enabled {
        if let Some(dir) = config
            .mirror_db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        Some(IntelStore::open(&config.mirror_db)?)
    } else {
        None
    };
    let live = config.live_fallback_enabled.then(|| {
        Arc::new(intel::live::LiveFallback::new(
            &config.osv_api,
            config.intel_timeout,
            config.live_fallback_cache,
        ))
    });
    Ok((
        Arc::new(intel::Intel {
            store: store.clone(),
            live,
        }),
        store,
    ))
}

/// A running server (tests start one on `127.0.0.1:0`).
pub struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stop accepting, drain in-flight requests, stop background jobs.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.handle.await?
    }
}

/// Build the production services for `config` (policy and audit errors stop start-up).
pub fn build_state(config: Arc<Config>) -> anyhow::Result<(AppState, Option<Arc<IntelStore>>)> {
    let (intel, store) = build_intel(&config)?;
    let policy = PolicyHandle::load(&config.policy_file)?;
    if policy.status().defaults {
        tracing::warn!(file = %config.policy_file.display(), "policy file not found; using the 0.1.x defaults");
    }
    // An unwritable log does not stop start-up: readiness fails and, with fail_closed,
    // the gates refuse until it heals (the writer retries).
    let audit: Arc<dyn AuditSink> = Arc::new(
        AuditLog::start(AuditOptions {
            max_bytes: config.audit_max_bytes,
            keep_files: config.audit_keep_files,
            ..AuditOptions::new(&config.audit_log, config.audit_fsync)
        })
        .map_err(|e| anyhow::anyhow!("cannot start the audit writer: {e}"))?,
    );
    let audit_status = audit.status();
    if !audit_status.healthy {
        tracing::error!(
            error = audit_status.last_error.as_deref().unwrap_or(""),
            "audit log unwritable; not ready until it can be written"
        );
    }
    let intel: Arc<dyn IntelSource> = intel;
    let gate = Arc::new(Gate {
        intel: intel.clone(),
        policy: policy.clone(),
        audit: audit.clone(),
        clock: Arc::new(now_unix),
        audit_allowed_each: config.audit_allowed_each,
    });
    let upstream = Arc::new(Upstream::new(
        config.upstream_timeout,
        config.max_document_bytes,
        &config.upstream_bases(),
    ));
    Ok((
        AppState {
            config,
            intel,
            gate,
            upstream,
            policy,
            audit,
        },
        store,
    ))
}

/// Bind and serve in the background. The listener is bound before anything slow happens.
pub async fn start(config: Arc<Config>) -> anyhow::Result<Running> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let (state, store) = build_state(config.clone())?;
    start_with(listener, state, store).await
}

/// Serve `state` on `listener`; background jobs (mirror refresh, policy reload, SIGHUP
/// audit reopen) run until [`Running::stop`].
pub async fn start_with(
    listener: TcpListener,
    state: AppState,
    store: Option<Arc<IntelStore>>,
) -> anyhow::Result<Running> {
    let config = state.config.clone();
    let local = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let mut jobs = Vec::new();
    if let Some(store) = store {
        let sources: Vec<(Ecosystem, String)> = Ecosystem::ALL
            .into_iter()
            .filter(|&e| config.ecosystem_enabled(e))
            .map(|e| (e, config.bundle_source(e).to_string()))
            .collect();
        let client = intel::source::bundle_client(config.upstream_timeout);
        jobs = intel::sync::spawn_refresh(
            store,
            client,
            sources,
            config.mirror_refresh,
            config.mirror_max_bundle_bytes,
            rx.clone(),
        );
    }
    if config.policy_hot_reload_enabled {
        jobs.push(state.policy.spawn_reloader(
            config.policy_file.clone(),
            config.policy_hot_reload_interval,
            rx.clone(),
        ));
    }
    jobs.push(spawn_sighup(state.audit.clone(), rx.clone()));
    let audit = state.audit.clone();
    let app = router(state);
    let mut shutdown_rx = rx;
    let handle = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            while !*shutdown_rx.borrow() {
                if shutdown_rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await?;
        for j in jobs {
            // Background jobs watch the same signal; give them a moment to finish.
            let _ = tokio::time::timeout(Duration::from_secs(10), j).await;
        }
        let _ = audit.flush().await;
        Ok(())
    });
    Ok(Running {
        addr: local,
        shutdown: tx,
        handle,
    })
}

/// Reopen the audit log on SIGHUP (external rotation).
fn spawn_sighup(
    audit: Arc<dyn AuditSink>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reopening the audit log");
                        audit.reopen();
                    }
                    _ = shutdown.changed() => return,
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (audit, shutdown.changed().await);
        }
    })
}

/// `pkggate serve`: run until SIGTERM or SIGINT, then drain and return.
pub async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives right after the listening line must drain.
    let signals = shutdown_signal();
    let running = start(config).await?;
    tracing::info!(addr = %running.addr, "pkggate listening");
    signals.await;
    tracing::info!("shutting down: draining in-flight requests");
    running.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Install SIGTERM/SIGINT handlers now; the returned future resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
