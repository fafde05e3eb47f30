//! The HTTP server: routing, shared state, lifecycle (bind at once, serve from the existing
//! mirror while it refreshes in the background, drain on SIGTERM/SIGINT).
//!
//! Handlers are thin: they read [`AppState`], whose services (intelligence, later policy,
//! audit and upstreams) are injected so tests can swap them.

use crate::config::Config;
use crate::intel::{self, EcoState, IntelSource, IntelStore, now_unix};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pkggate_formats::Ecosystem;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub intel: Arc<dyn IntelSource>,
}

/// The router with every route pkggate serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/-/pkggate/health", get(health))
        .route("/-/pkggate/ready", get(ready))
        .fallback(not_found)
        .with_state(state)
}

/// JSON body with an explicit status and `Cache-Control: no-store`.
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

async fn not_found() -> Response {
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

/// Bind and serve in the background. The listener is bound before anything slow happens.
pub async fn start(config: Arc<Config>) -> anyhow::Result<Running> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let (intel, store) = build_intel(&config)?;
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
    let app = router(AppState {
        config: config.clone(),
        intel,
    });
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
            // Refresh jobs watch the same signal; give them a moment to finish a transaction.
            let _ = tokio::time::timeout(Duration::from_secs(10), j).await;
        }
        Ok(())
    });
    Ok(Running {
        addr: local,
        shutdown: tx,
        handle,
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
