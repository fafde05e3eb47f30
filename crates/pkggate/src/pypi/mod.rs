//! The PyPI adapter (pip, uv, poetry, pdm): simple index, legacy JSON and file gates.

use crate::ecosystems::Adapter;
use crate::gate::VersionInput;
use crate::server::AppState;
use axum::Router;
use axum::response::Response;
use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;

pub struct PypiAdapter;

impl Adapter for PypiAdapter {
    fn ecosystem(&self) -> Ecosystem {
        Ecosystem::PyPI
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
    }

    fn version_facts<'a>(
        &'a self,
        _state: &'a AppState,
        _name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<VersionInput, Response>> {
        Box::pin(async move { Ok(VersionInput::bare(version)) })
    }
}
