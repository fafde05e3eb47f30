//! The one integration test binary: fake upstreams on 127.0.0.1:0, real bundles and
//! recorded documents from `../shared/`.

mod admin_probe;
mod admin_ui;
mod audit_gate;
mod audit_writer;
mod cargo_gate;
mod cargo_probe;
mod cli;
mod compat;
mod defects;
mod intel_refresh;
mod intel_sample;
mod live;
mod metrics;
mod npm_conformance;
mod npm_e2e;
mod npm_fake;
mod npm_gate;
mod npm_probe;
mod osv_probe;
mod policy_cli;
mod policy_reload;
mod policy_why;
mod pypi_conformance;
mod pypi_e2e;
mod pypi_fake;
mod pypi_gate;
mod pypi_http;
mod pypi_live;
mod pypi_probe;
mod raw_http;
mod serve;
mod support;

/// RFC 3339 for `now - secs` (fresh publish times in tests).
pub fn timefmt_now_minus(secs: i64) -> String {
    pkggate::timefmt::rfc3339(pkggate::intel::now_unix() - secs)
}
