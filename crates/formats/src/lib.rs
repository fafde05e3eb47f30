//! Pure ecosystem formats for pkggate.
//!
//! Everything in this crate is deterministic and free of IO and async: names, versions,
//! OSV advisory records and their matching rules, artifact filenames and registry document
//! rewriting. The app crate does the IO and calls into here; tests, property tests and fuzz
//! targets exercise this crate directly.

pub mod cargo;
pub mod ecosystem;
pub mod npm;
pub mod osv;
pub mod pypi;
pub mod severity;
pub mod version;

pub use ecosystem::{Ecosystem, UnknownEcosystem};
pub use version::EcoVersion;
