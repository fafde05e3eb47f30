//! pkggate: a self-hosted package firewall. See ARCHITECTURE.md for the map.

pub mod artifact;
pub mod audit;
pub mod budget;
pub mod cargo;
pub mod cli;
pub mod config;
pub mod content_id;
pub mod ecosystems;
pub mod env;
pub mod flights;
pub mod gate;
pub mod intel;
pub mod metrics;
pub mod npm;
pub mod policy_state;
pub mod pypi;
pub mod server;
pub mod timefmt;
pub mod upstream;
