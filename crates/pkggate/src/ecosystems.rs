//! The adapter seam: each ecosystem is one [`Adapter`] (its routes and how it learns the
//! facts of a version). Adding an ecosystem means a new module and one line in
//! [`adapters`]; the core (gate, intelligence, policy, audit, server) does not change.

use crate::config::Config;
use crate::gate::VersionInput;
use crate::server::AppState;
use axum::Router;
use axum::response::Response;
use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;
use std::sync::Arc;

pub trait Adapter: Send + Sync {
    fn ecosystem(&self) -> Ecosystem;
    /// The adapter's routes (npm additionally owns the root fallback, see `server::router`).
    fn routes(&self) -> Router<AppState>;
    /// What the adapter can learn about one version from its upstream (publish time,
    /// repository, scripts), for explanations. `Err` is the response to send instead.
    fn version_facts<'a>(
        &'a self,
        state: &'a AppState,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<VersionInput, Response>>;
}

/// The enabled adapters.
pub fn adapters(config: &Config) -> Vec<Arc<dyn Adapter>> {
    let mut out: Vec<Arc<dyn Adapter>> = vec![Arc::new(crate::npm::NpmAdapter)];
    if config.pypi_enabled {
        out.push(Arc::new(crate::pypi::PypiAdapter));
    }
    if config.cargo_enabled {
        out.push(Arc::new(crate::cargo::CargoAdapter));
    }
    out
}

/// The adapter of `eco`, when enabled.
pub fn adapter(config: &Config, eco: Ecosystem) -> Option<Arc<dyn Adapter>> {
    adapters(config).into_iter().find(|a| a.ecosystem() == eco)
}
