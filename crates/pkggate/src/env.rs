//! Every environment variable pkggate reads, in one place.
//!
//! Settings are `PKGGATE_<NAME>`; the same names are read from `.env` in the working
//! directory and each has a CLI flag `--<name-in-kebab-case>` (see [`crate::config`]).

/// The prefix of every pkggate environment variable.
pub const PREFIX: &str = "PKGGATE_";

pub const HOST: &str = "PKGGATE_HOST";
pub const PORT: &str = "PKGGATE_PORT";
pub const UPSTREAM_NPM: &str = "PKGGATE_UPSTREAM_NPM";
pub const PYPI_ENABLED: &str = "PKGGATE_PYPI_ENABLED";
pub const PYPI_UPSTREAM_SIMPLE: &str = "PKGGATE_PYPI_UPSTREAM_SIMPLE";
pub const PYPI_UPSTREAM_FILES: &str = "PKGGATE_PYPI_UPSTREAM_FILES";
pub const PUBLIC_BASE_URL: &str = "PKGGATE_PUBLIC_BASE_URL";
pub const PYPI_PUBLIC_BASE_URL: &str = "PKGGATE_PYPI_PUBLIC_BASE_URL";
pub const PYPI_VERIFY_INTEGRITY: &str = "PKGGATE_PYPI_VERIFY_INTEGRITY";
pub const PYPI_MAX_BUFFER_BYTES: &str = "PKGGATE_PYPI_MAX_BUFFER_BYTES";
pub const TRUST_FORWARDED_HEADERS: &str = "PKGGATE_TRUST_FORWARDED_HEADERS";
pub const MIRROR_ENABLED: &str = "PKGGATE_MIRROR_ENABLED";
pub const MIRROR_DB: &str = "PKGGATE_MIRROR_DB";
pub const MIRROR_REFRESH_SECONDS: &str = "PKGGATE_MIRROR_REFRESH_SECONDS";
pub const MIRROR_MAX_BUNDLE_BYTES: &str = "PKGGATE_MIRROR_MAX_BUNDLE_BYTES";
pub const OSV_BUNDLE_NPM: &str = "PKGGATE_OSV_BUNDLE_NPM";
pub const OSV_BUNDLE_PYPI: &str = "PKGGATE_OSV_BUNDLE_PYPI";
pub const OSV_BUNDLE_CRATES_IO: &str = "PKGGATE_OSV_BUNDLE_CRATES_IO";
pub const LIVE_FALLBACK_ENABLED: &str = "PKGGATE_LIVE_FALLBACK_ENABLED";
pub const LIVE_FALLBACK_CACHE_SECONDS: &str = "PKGGATE_LIVE_FALLBACK_CACHE_SECONDS";
pub const OSV_API: &str = "PKGGATE_OSV_API";
pub const POLICY_FILE: &str = "PKGGATE_POLICY_FILE";
pub const POLICY_HOT_RELOAD_ENABLED: &str = "PKGGATE_POLICY_HOT_RELOAD_ENABLED";
pub const POLICY_HOT_RELOAD_INTERVAL_SECONDS: &str = "PKGGATE_POLICY_HOT_RELOAD_INTERVAL_SECONDS";
pub const AUDIT_LOG: &str = "PKGGATE_AUDIT_LOG";
pub const UPSTREAM_TIMEOUT_SECONDS: &str = "PKGGATE_UPSTREAM_TIMEOUT_SECONDS";
pub const INTEL_TIMEOUT_SECONDS: &str = "PKGGATE_INTEL_TIMEOUT_SECONDS";
pub const CARGO_ENABLED: &str = "PKGGATE_CARGO_ENABLED";
pub const UPSTREAM_CARGO_INDEX: &str = "PKGGATE_UPSTREAM_CARGO_INDEX";
pub const UPSTREAM_CARGO_DL: &str = "PKGGATE_UPSTREAM_CARGO_DL";
pub const LOG: &str = "PKGGATE_LOG";
pub const MAX_DOCUMENT_BYTES: &str = "PKGGATE_MAX_DOCUMENT_BYTES";
pub const METADATA_MAX_AGE_SECONDS: &str = "PKGGATE_METADATA_MAX_AGE_SECONDS";
pub const AUDIT_FSYNC: &str = "PKGGATE_AUDIT_FSYNC";
pub const AUDIT_ALLOWED: &str = "PKGGATE_AUDIT_ALLOWED";
pub const AUDIT_MAX_BYTES: &str = "PKGGATE_AUDIT_MAX_BYTES";
pub const AUDIT_KEEP_FILES: &str = "PKGGATE_AUDIT_KEEP_FILES";

/// `.env` file read from the working directory.
pub const DOTENV_FILE: &str = ".env";
pub const ADMIN_TOKEN: &str = "PKGGATE_ADMIN_TOKEN";
pub const LOG_FORMAT: &str = "PKGGATE_LOG_FORMAT";
