//! pkggate: a self-hosted package firewall. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod config;
pub mod env;
pub mod intel;
pub mod server;
pub mod timefmt;
