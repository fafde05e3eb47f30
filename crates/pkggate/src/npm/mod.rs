//! The npm adapter (npm, pnpm, yarn 1/4, bun): packument and tarball gates.

use crate::ecosystems::Adapter;
use crate::gate::VersionInput;
use crate::server::{AppState, not_found};
use axum::Router;
use axum::response::Response;
use futures_util::future::BoxFuture;
use pkggate_formats::Ecosystem;

pub struct NpmAdapter;

impl Adapter for NpmAdapter {
    fn ecosystem(&self) -> Ecosystem {
        Ecosystem::Npm
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

/// Everything under `/` that no other route took.
pub async fn fallback() -> Response {
    not_found()
}
