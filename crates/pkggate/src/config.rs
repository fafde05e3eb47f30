//! Configuration: every `PKGGATE_*` setting of pkggate 0.1.x with the same names and
//! defaults, plus the new ones, each also a CLI flag.
//!
//! Precedence: CLI flag > process environment > `.env` in the working directory > default.
//! [`Config::load`] validates every value; a bad value is a [`ConfigError`] naming the
//! variable and the value (the CLI exits with status 2). [`Config::describe`] lists the
//! effective values and where each came from (`pkggate config`).

use crate::env;
use pkggate_formats::Ecosystem;
use reqwest::Url;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    DotEnv,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::DotEnv => ".env",
            Source::Default => "default",
        })
    }
}

/// One setting: its variable, flag, default and help.
pub struct Setting {
    pub var: &'static str,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Setting {
    /// `PKGGATE_MIRROR_DB` → `mirror-db`.
    pub fn flag(&self) -> String {
        self.var
            .trim_start_matches(env::PREFIX)
            .to_ascii_lowercase()
            .replace('_', "-")
    }
}

const NPM_REGISTRY: &str = "https://registry.npmjs.org";
const PYPI_SIMPLE: &str = "https://pypi.org/simple";
const PYPI_FILES: &str = "https://files.pythonhosted.org";
const CARGO_INDEX: &str = "https://index.crates.io/";
const CARGO_DL: &str = "https://static.crates.io/crates";
const OSV_NPM: &str = "https://storage.googleapis.com/osv-vulnerabilities/npm/all.zip";
const OSV_PYPI: &str = "https://storage.googleapis.com/osv-vulnerabilities/PyPI/all.zip";
const OSV_CRATES: &str = "https://storage.googleapis.com/osv-vulnerabilities/crates.io/all.zip";
const OSV_API: &str = "https://api.osv.dev/v1/query";

/// Every setting, in the order `pkggate config` prints them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        var: env::HOST,
        default: Some("127.0.0.1"),
        help: "listen address",
    },
    Setting {
        var: env::PORT,
        default: Some("8080"),
        help: "listen port",
    },
    Setting {
        var: env::UPSTREAM_NPM,
        default: Some(NPM_REGISTRY),
        help: "npm upstream base URL",
    },
    Setting {
        var: env::PYPI_ENABLED,
        default: Some("true"),
        help: "serve the PyPI routes",
    },
    Setting {
        var: env::PYPI_UPSTREAM_SIMPLE,
        default: Some(PYPI_SIMPLE),
        help: "PyPI simple index base URL",
    },
    Setting {
        var: env::PYPI_UPSTREAM_FILES,
        default: Some(PYPI_FILES),
        help: "PyPI file host base URL",
    },
    Setting {
        var: env::PUBLIC_BASE_URL,
        default: None,
        help: "absolute base URL written into every rewritten URL",
    },
    Setting {
        var: env::PYPI_PUBLIC_BASE_URL,
        default: Some("http://127.0.0.1:8080"),
        help: "0.1.x name of the PyPI public base URL (alias)",
    },
    Setting {
        var: env::PYPI_VERIFY_INTEGRITY,
        default: Some("true"),
        help: "verify sha256 of PyPI files while streaming",
    },
    Setting {
        var: env::PYPI_MAX_BUFFER_BYTES,
        default: Some("209715200"),
        help: "0.1.x file buffer cap; kept for compatibility, files stream and are not capped",
    },
    Setting {
        var: env::TRUST_FORWARDED_HEADERS,
        default: Some("false"),
        help: "honour X-Forwarded-Proto/Host from a front proxy",
    },
    Setting {
        var: env::MIRROR_ENABLED,
        default: Some("true"),
        help: "use the local OSV mirror",
    },
    Setting {
        var: env::MIRROR_DB,
        default: Some("mirror.db"),
        help: "SQLite file of the OSV mirror",
    },
    Setting {
        var: env::MIRROR_REFRESH_SECONDS,
        default: Some("3600"),
        help: "mirror refresh interval in seconds",
    },
    Setting {
        var: env::MIRROR_MAX_BUNDLE_BYTES,
        default: Some("2147483648"),
        help: "largest OSV bundle download accepted, in bytes",
    },
    Setting {
        var: env::OSV_BUNDLE_NPM,
        default: Some(OSV_NPM),
        help: "npm OSV bundle: URL, zip path, file:// URL or directory",
    },
    Setting {
        var: env::OSV_BUNDLE_PYPI,
        default: Some(OSV_PYPI),
        help: "PyPI OSV bundle: URL, zip path, file:// URL or directory",
    },
    Setting {
        var: env::OSV_BUNDLE_CRATES_IO,
        default: Some(OSV_CRATES),
        help: "crates.io OSV bundle: URL, zip path, file:// URL or directory",
    },
    Setting {
        var: env::LIVE_FALLBACK_ENABLED,
        default: Some("false"),
        help: "ask the live OSV API about versions the mirror calls clean",
    },
    Setting {
        var: env::LIVE_FALLBACK_CACHE_SECONDS,
        default: Some("600"),
        help: "how long live OSV answers are cached",
    },
    Setting {
        var: env::OSV_API,
        default: Some(OSV_API),
        help: "live OSV query endpoint (batching uses the sibling querybatch)",
    },
    Setting {
        var: env::POLICY_FILE,
        default: Some("config/policy.yaml"),
        help: "policy file",
    },
    Setting {
        var: env::POLICY_HOT_RELOAD_ENABLED,
        default: Some("true"),
        help: "reload the policy when the file changes",
    },
    Setting {
        var: env::POLICY_HOT_RELOAD_INTERVAL_SECONDS,
        default: Some("1.0"),
        help: "policy poll interval in seconds",
    },
    Setting {
        var: env::AUDIT_LOG,
        default: Some("audit.log"),
        help: "JSON Lines audit file (- for stdout)",
    },
    Setting {
        var: env::UPSTREAM_TIMEOUT_SECONDS,
        default: Some("30"),
        help: "upstream connect and idle-read timeout in seconds (not a total: big bodies stream)",
    },
    Setting {
        var: env::INTEL_TIMEOUT_SECONDS,
        default: Some("5"),
        help: "live OSV timeout in seconds",
    },
    Setting {
        var: env::CARGO_ENABLED,
        default: Some("true"),
        help: "serve the cargo sparse-registry routes",
    },
    Setting {
        var: env::UPSTREAM_CARGO_INDEX,
        default: Some(CARGO_INDEX),
        help: "cargo sparse index upstream",
    },
    Setting {
        var: env::UPSTREAM_CARGO_DL,
        default: Some(CARGO_DL),
        help: "cargo crate download base",
    },
    Setting {
        var: env::LOG,
        default: Some("info"),
        help: "log filter (tracing EnvFilter syntax)",
    },
    Setting {
        var: env::MAX_DOCUMENT_BYTES,
        default: Some("134217728"),
        help: "largest upstream metadata document accepted, in bytes (decoded)",
    },
    Setting {
        var: env::METADATA_MAX_AGE_SECONDS,
        default: Some("300"),
        help: "Cache-Control max-age on filtered metadata",
    },
    Setting {
        var: env::AUDIT_FSYNC,
        default: Some("batch"),
        help: "audit durability: always | batch | never",
    },
    Setting {
        var: env::AUDIT_ALLOWED,
        default: Some("summary"),
        help: "allowed versions inside a document: summary (one line per document) | each",
    },
    Setting {
        var: env::AUDIT_MAX_BYTES,
        default: Some("104857600"),
        help: "rotate the audit log past this size (0 = never)",
    },
    Setting {
        var: env::AUDIT_KEEP_FILES,
        default: Some("10"),
        help: "rotated audit files kept",
    },
    Setting {
        var: env::LOG_FORMAT,
        default: Some("text"),
        help: "log lines: text (human-readable) | json",
    },
    Setting {
        var: env::ADMIN_TOKEN,
        default: None,
        help: "bearer token for /metrics and /-/pkggate/why; without one they answer loopback clients only",
    },
];

/// A setting with a value that does not fit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} (from {origin}): {problem}")]
    Invalid {
        var: &'static str,
        value: String,
        origin: Source,
        problem: String,
    },
    #[error("cannot read {path}: {message}")]
    DotEnv { path: String, message: String },
}

/// When the audit log reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFsync {
    /// fsync after every batch before the request that produced it proceeds.
    Always,
    /// fsync after each batch, asynchronously (a crash loses at most the unflushed batch).
    Batch,
    /// Leave it to the OS.
    Never,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub upstream_npm: Url,
    pub pypi_enabled: bool,
    pub pypi_upstream_simple: Url,
    pub pypi_upstream_files: Url,
    pub public_base_url: Option<Url>,
    pub pypi_public_base_url: Url,
    pub pypi_verify_integrity: bool,
    pub pypi_max_buffer_bytes: u64,
    pub trust_forwarded_headers: bool,
    pub mirror_enabled: bool,
    pub mirror_db: PathBuf,
    pub mirror_refresh: Duration,
    pub mirror_max_bundle_bytes: u64,
    pub osv_bundle_npm: String,
    pub osv_bundle_pypi: String,
    pub osv_bundle_crates_io: String,
    pub live_fallback_enabled: bool,
    pub live_fallback_cache: Duration,
    pub osv_api: Url,
    pub policy_file: PathBuf,
    pub policy_hot_reload_enabled: bool,
    pub policy_hot_reload_interval: Duration,
    pub audit_log: String,
    pub upstream_timeout: Duration,
    pub intel_timeout: Duration,
    pub cargo_enabled: bool,
    pub upstream_cargo_index: Url,
    pub upstream_cargo_dl: Url,
    pub log: String,
    pub max_document_bytes: u64,
    pub metadata_max_age: Duration,
    pub audit_fsync: AuditFsync,
    pub audit_allowed_each: bool,
    pub audit_max_bytes: u64,
    pub audit_keep_files: u32,
    /// Log lines as JSON objects (`PKGGATE_LOG_FORMAT=json`) instead of text.
    pub log_json: bool,
    /// Bearer token for the admin endpoints (never printed by `pkggate config`).
    pub admin_token: Option<String>,
    /// Every setting's effective value and where it came from, in [`SETTINGS`] order.
    pub provenance: Vec<(&'static str, Option<String>, Source)>,
}

/// Raw inputs for [`Config::load`], kept apart from the process so tests can build them.
#[derive(Debug, Default, Clone)]
pub struct RawInputs {
    pub flags: BTreeMap<&'static str, String>,
    pub env: BTreeMap<String, String>,
    pub dotenv: BTreeMap<String, String>,
}

impl RawInputs {
    /// Read the process environment and `.env` in the working directory (if present).
    pub fn from_process(flags: BTreeMap<&'static str, String>) -> Result<RawInputs, ConfigError> {
        let env_vars = std::env::vars()
            .filter(|(k, _)| k.starts_with(env::PREFIX))
            .collect();
        let mut dotenv = BTreeMap::new();
        let path = std::path::Path::new(env::DOTENV_FILE);
        if path.exists() {
            let iter = dotenvy::from_path_iter(path).map_err(|e| ConfigError::DotEnv {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError::DotEnv {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                if k.starts_with(env::PREFIX) {
                    dotenv.insert(k, v);
                }
            }
        }
        Ok(RawInputs {
            flags,
            env: env_vars,
            dotenv,
        })
    }
}

struct Resolver<'a> {
    raw: &'a RawInputs,
    provenance: Vec<(&'static str, Option<String>, Source)>,
}

impl Resolver<'_> {
    fn get(&mut self, var: &'static str) -> (Option<String>, Source) {
        let setting = SETTINGS.iter().find(|s| s.var == var);
        let (value, source) = if let Some(v) = self.raw.flags.get(var) {
            (Some(v.clone()), Source::Flag)
        } else if let Some(v) = self.raw.env.get(var) {
            (Some(v.clone()), Source::Env)
        } else if let Some(v) = self.raw.dotenv.get(var) {
            (Some(v.clone()), Source::DotEnv)
        } else {
            (
                setting.and_then(|s| s.default).map(str::to_string),
                Source::Default,
            )
        };
        self.provenance.push((var, value.clone(), source));
        (value, source)
    }

    fn invalid(var: &'static str, value: &str, source: Source, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            var,
            value: value.to_string(),
            origin: source,
            problem: problem.to_string(),
        }
    }

    fn string(&mut self, var: &'static str) -> String {
        self.get(var).0.unwrap_or_default()
    }

    fn boolean(&mut self, var: &'static str) -> Result<bool, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(Self::invalid(var, &v, src, "expected true or false")),
        }
    }

    fn u64(&mut self, var: &'static str) -> Result<u64, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        v.trim()
            .parse()
            .map_err(|_| Self::invalid(var, &v, src, "expected a whole number"))
    }

    fn port(&mut self, var: &'static str) -> Result<u16, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        v.trim()
            .parse()
            .map_err(|_| Self::invalid(var, &v, src, "expected a port number 0-65535"))
    }

    fn seconds(&mut self, var: &'static str, allow_zero: bool) -> Result<Duration, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        let secs: f64 = v
            .trim()
            .parse()
            .map_err(|_| Self::invalid(var, &v, src, "expected a number of seconds"))?;
        if !secs.is_finite() || secs < 0.0 || (!allow_zero && secs == 0.0) || secs > 1e9 {
            let want = if allow_zero {
                "a number of seconds >= 0"
            } else {
                "a number of seconds > 0"
            };
            return Err(Self::invalid(var, &v, src, want));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    fn url(&mut self, var: &'static str) -> Result<Url, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        parse_http_url(&v).map_err(|p| Self::invalid(var, &v, src, &p))
    }

    fn opt_url(&mut self, var: &'static str) -> Result<Option<Url>, ConfigError> {
        let (v, src) = self.get(var);
        match v {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => parse_http_url(&v)
                .map(Some)
                .map_err(|p| Self::invalid(var, &v, src, &p)),
        }
    }

    fn choice<T: Copy>(
        &mut self,
        var: &'static str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        let lower = v.trim().to_ascii_lowercase();
        options
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                Self::invalid(
                    var,
                    &v,
                    src,
                    &format!("expected one of: {}", names.join(", ")),
                )
            })
    }

    fn non_empty(&mut self, var: &'static str) -> Result<String, ConfigError> {
        let (v, src) = self.get(var);
        let v = v.unwrap_or_default();
        if v.trim().is_empty() {
            return Err(Self::invalid(var, &v, src, "must not be empty"));
        }
        Ok(v)
    }
}

/// An absolute http(s) URL with a host.
fn parse_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host".to_string());
    }
    Ok(url)
}

impl Config {
    /// Resolve and validate every setting.
    pub fn load(raw: &RawInputs) -> Result<Config, ConfigError> {
        let mut r = Resolver {
            raw,
            provenance: Vec::new(),
        };
        let host = r.non_empty(env::HOST)?;
        let port = r.port(env::PORT)?;
        let config = Config {
            host,
            port,
            upstream_npm: r.url(env::UPSTREAM_NPM)?,
            pypi_enabled: r.boolean(env::PYPI_ENABLED)?,
            pypi_upstream_simple: r.url(env::PYPI_UPSTREAM_SIMPLE)?,
            pypi_upstream_files: r.url(env::PYPI_UPSTREAM_FILES)?,
            public_base_url: r.opt_url(env::PUBLIC_BASE_URL)?,
            pypi_public_base_url: r.url(env::PYPI_PUBLIC_BASE_URL)?,
            pypi_verify_integrity: r.boolean(env::PYPI_VERIFY_INTEGRITY)?,
            pypi_max_buffer_bytes: r.u64(env::PYPI_MAX_BUFFER_BYTES)?,
            trust_forwarded_headers: r.boolean(env::TRUST_FORWARDED_HEADERS)?,
            mirror_enabled: r.boolean(env::MIRROR_ENABLED)?,
            mirror_db: PathBuf::from(r.non_empty(env::MIRROR_DB)?),
            mirror_refresh: r.seconds(env::MIRROR_REFRESH_SECONDS, false)?,
            mirror_max_bundle_bytes: r.u64(env::MIRROR_MAX_BUNDLE_BYTES)?,
            osv_bundle_npm: r.non_empty(env::OSV_BUNDLE_NPM)?,
            osv_bundle_pypi: r.non_empty(env::OSV_BUNDLE_PYPI)?,
            osv_bundle_crates_io: r.non_empty(env::OSV_BUNDLE_CRATES_IO)?,
            live_fallback_enabled: r.boolean(env::LIVE_FALLBACK_ENABLED)?,
            live_fallback_cache: r.seconds(env::LIVE_FALLBACK_CACHE_SECONDS, true)?,
            osv_api: r.url(env::OSV_API)?,
            policy_file: PathBuf::from(r.non_empty(env::POLICY_FILE)?),
            policy_hot_reload_enabled: r.boolean(env::POLICY_HOT_RELOAD_ENABLED)?,
            policy_hot_reload_interval: r
                .seconds(env::POLICY_HOT_RELOAD_INTERVAL_SECONDS, false)?,
            audit_log: r.non_empty(env::AUDIT_LOG)?,
            upstream_timeout: r.seconds(env::UPSTREAM_TIMEOUT_SECONDS, false)?,
            intel_timeout: r.seconds(env::INTEL_TIMEOUT_SECONDS, false)?,
            cargo_enabled: r.boolean(env::CARGO_ENABLED)?,
            upstream_cargo_index: r.url(env::UPSTREAM_CARGO_INDEX)?,
            upstream_cargo_dl: r.url(env::UPSTREAM_CARGO_DL)?,
            log: r.string(env::LOG),
            max_document_bytes: r.u64(env::MAX_DOCUMENT_BYTES)?,
            metadata_max_age: r.seconds(env::METADATA_MAX_AGE_SECONDS, true)?,
            audit_fsync: r.choice(
                env::AUDIT_FSYNC,
                &[
                    ("always", AuditFsync::Always),
                    ("batch", AuditFsync::Batch),
                    ("never", AuditFsync::Never),
                ],
            )?,
            audit_allowed_each: r
                .choice(env::AUDIT_ALLOWED, &[("summary", false), ("each", true)])?,
            audit_max_bytes: r.u64(env::AUDIT_MAX_BYTES)?,
            audit_keep_files: r.u64(env::AUDIT_KEEP_FILES)?.min(1000) as u32,
            log_json: r.choice(env::LOG_FORMAT, &[("text", false), ("json", true)])?,
            admin_token: r.get(env::ADMIN_TOKEN).0.filter(|t| !t.trim().is_empty()),
            provenance: Vec::new(),
        };
        let provenance = r.provenance;
        Ok(Config {
            provenance,
            ..config
        })
    }

    /// Defaults only (tests, and the CLI before anything is read).
    pub fn defaults() -> Config {
        // The defaults are valid by construction; `load` on empty inputs cannot fail.
        match Config::load(&RawInputs::default()) {
            Ok(c) => c,
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }

    /// The OSV bundle source configured for an ecosystem.
    pub fn bundle_source(&self, eco: Ecosystem) -> &str {
        match eco {
            Ecosystem::Npm => &self.osv_bundle_npm,
            Ecosystem::PyPI => &self.osv_bundle_pypi,
            Ecosystem::CratesIo => &self.osv_bundle_crates_io,
        }
    }

    /// Whether an ecosystem's routes are served (and its intelligence refreshed).
    pub fn ecosystem_enabled(&self, eco: Ecosystem) -> bool {
        match eco {
            Ecosystem::Npm => true,
            Ecosystem::PyPI => self.pypi_enabled,
            Ecosystem::CratesIo => self.cargo_enabled,
        }
    }

    /// The base written into rewritten URLs for an ecosystem: `PUBLIC_BASE_URL`, else (PyPI)
    /// `PYPI_PUBLIC_BASE_URL` when it was set explicitly, else `http://HOST:PORT`.
    pub fn public_base(&self, eco: Ecosystem) -> String {
        if let Some(u) = &self.public_base_url {
            return u.as_str().trim_end_matches('/').to_string();
        }
        let pypi_set = self
            .provenance
            .iter()
            .any(|(v, _, s)| *v == env::PYPI_PUBLIC_BASE_URL && *s != Source::Default);
        if eco == Ecosystem::PyPI && pypi_set {
            return self
                .pypi_public_base_url
                .as_str()
                .trim_end_matches('/')
                .to_string();
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}", self.port)
    }

    /// Every configured upstream base (redirects may go to these origins only).
    pub fn upstream_bases(&self) -> Vec<Url> {
        vec![
            self.upstream_npm.clone(),
            self.pypi_upstream_simple.clone(),
            self.pypi_upstream_files.clone(),
            self.upstream_cargo_index.clone(),
            self.upstream_cargo_dl.clone(),
        ]
    }

    /// Lines for `pkggate config`: `VAR=value  (source)`.
    pub fn describe(&self) -> String {
        let width = self
            .provenance
            .iter()
            .map(|(v, val, _)| v.len() + val.as_deref().map_or(0, str::len))
            .max()
            .unwrap_or(0)
            + 2;
        let mut out = String::new();
        for (var, value, source) in &self.provenance {
            let line = match value {
                // Secrets are never printed.
                Some(_) if *var == env::ADMIN_TOKEN => format!("{var}=<set>"),
                Some(v) => format!("{var}={v}"),
                None => format!("{var}="),
            };
            out.push_str(&format!("{line:<width$}({source})\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(
        flags: &[(&'static str, &str)],
        env_: &[(&str, &str)],
        dotenv: &[(&str, &str)],
    ) -> RawInputs {
        RawInputs {
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            env: env_
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dotenv: dotenv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn defaults_match_0_1_x() {
        let c = Config::defaults();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
        assert!(c.pypi_enabled && c.mirror_enabled && c.cargo_enabled && c.pypi_verify_integrity);
        assert!(!c.live_fallback_enabled);
        assert_eq!(c.mirror_db, PathBuf::from("mirror.db"));
        assert_eq!(c.mirror_refresh, Duration::from_secs(3600));
        assert_eq!(c.policy_file, PathBuf::from("config/policy.yaml"));
        assert_eq!(c.policy_hot_reload_interval, Duration::from_secs(1));
        assert_eq!(c.audit_log, "audit.log");
        assert_eq!(c.upstream_timeout, Duration::from_secs(30));
        assert_eq!(c.intel_timeout, Duration::from_secs(5));
        assert_eq!(c.pypi_max_buffer_bytes, 209_715_200);
        assert!(c.osv_bundle_pypi.ends_with("/PyPI/all.zip"));
        assert_eq!(c.public_base(Ecosystem::Npm), "http://127.0.0.1:8080");
    }

    #[test]
    fn precedence_flag_env_dotenv_default() {
        let raw = inputs(
            &[(env::PORT, "1001")],
            &[(env::PORT, "1002"), (env::HOST, "0.0.0.0")],
            &[
                (env::PORT, "1003"),
                (env::HOST, "10.0.0.1"),
                (env::MIRROR_DB, "x.db"),
            ],
        );
        let c = Config::load(&raw).unwrap();
        assert_eq!(c.port, 1001);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.mirror_db, PathBuf::from("x.db"));
        let src = |var| c.provenance.iter().find(|(v, _, _)| *v == var).unwrap().2;
        assert_eq!(src(env::PORT), Source::Flag);
        assert_eq!(src(env::HOST), Source::Env);
        assert_eq!(src(env::MIRROR_DB), Source::DotEnv);
        assert_eq!(src(env::AUDIT_LOG), Source::Default);
        let text = c.describe();
        assert!(
            text.contains("PKGGATE_PORT=1001") && text.contains("(flag)"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_name_variable_and_value() {
        for (var, value) in [
            (env::PORT, "abc"),
            (env::PORT, "70000"),
            (env::PYPI_ENABLED, "maybe"),
            (env::MIRROR_REFRESH_SECONDS, "0"),
            (env::MIRROR_REFRESH_SECONDS, "-5"),
            (env::UPSTREAM_NPM, "ftp://x"),
            (env::UPSTREAM_NPM, "not a url"),
            (env::INTEL_TIMEOUT_SECONDS, "NaN"),
        ] {
            let err = Config::load(&inputs(&[], &[(var, value)], &[])).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(var) && msg.contains(value),
                "{var}={value}: {msg}"
            );
        }
    }

    #[test]
    fn public_base_precedence() {
        let c = Config::load(&inputs(
            &[],
            &[(env::PYPI_PUBLIC_BASE_URL, "https://py.example/")],
            &[],
        ))
        .unwrap();
        assert_eq!(c.public_base(Ecosystem::PyPI), "https://py.example");
        assert_eq!(c.public_base(Ecosystem::Npm), "http://127.0.0.1:8080");
        let c = Config::load(&inputs(
            &[],
            &[(env::PUBLIC_BASE_URL, "https://gate.example/")],
            &[],
        ))
        .unwrap();
        assert_eq!(c.public_base(Ecosystem::PyPI), "https://gate.example");
        assert_eq!(c.public_base(Ecosystem::CratesIo), "https://gate.example");
    }

    #[test]
    fn every_setting_has_a_distinct_flag() {
        let mut flags: Vec<String> = SETTINGS.iter().map(Setting::flag).collect();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), SETTINGS.len());
        assert!(flags.contains(&"mirror-db".to_string()));
    }
}
