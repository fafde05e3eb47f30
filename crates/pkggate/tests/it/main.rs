//! The one integration test binary: fake upstreams on 127.0.0.1:0, real bundles and
//! recorded documents from `../shared/`.

mod cli;
mod intel_refresh;
mod intel_sample;
mod live;
mod serve;
mod support;
