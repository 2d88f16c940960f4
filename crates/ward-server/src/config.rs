//! `ward.toml`, with every key overridable by a `WARD_*` environment variable.
//!
//! Precedence, lowest first: built-in defaults, the config file, environment
//! variables (`WARD_LISTEN`, `WARD_LIMITS__MANIFEST_SIZE_BYTES_MAX`: nested keys
//! are joined by `__`), then command-line flags applied by the caller.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use ward_core::Limits;

/// Environment variables with the `WARD_` prefix that are not config keys.
const NON_CONFIG_ENV: [&str; 6] = [
    "CONFIG",
    "ADMIN_PASSWORD",
    "TEST_POSTGRES_URL",
    "LOG",
    "USERNAME",
    "PASSWORD",
];

/// The server's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Loopback by default: expose it on purpose.
    pub listen: SocketAddr,
    /// Where the embedded database and blobs live by default.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means SQLite under `data_dir`.
    pub database_url: String,
    /// Connections per database pool.
    pub database_connections_max: u32,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info` or `ward_server=debug`.
    pub log_level: String,
    /// Whether manifests, tags and blobs may be deleted at all.
    pub delete_enabled: bool,
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Blob storage.
    pub storage: StorageConfig,
    /// TLS; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Bounds on every input.
    pub limits: Limits,
    /// In-memory caches.
    pub cache: CacheConfig,
    /// Authentication and authorization.
    pub auth: crate::access::AuthConfig,
    /// The first administrator's password (else `WARD_ADMIN_PASSWORD`, else generated and printed once).
    pub admin_password: Option<Secret>,
    /// The audit log: checkpoints, sinks and alert rules.
    pub audit: ward_audit::AuditConfig,
    /// Scanning: workers, rescans, the default scan policy, alerts and the scanner's limits.
    pub scan: crate::scanning::ScanConfig,
    /// The signature gate: what it reads per decision and how long it reuses one.
    pub signatures: crate::gate::SignatureConfig,
}

/// A secret from configuration: never printed, never serialised back out.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where blobs are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Folder for the local filesystem backend; empty means `<data_dir>/blobs`.
    pub path: PathBuf,
    /// Whether finished blobs are fsynced before the push is acknowledged.
    pub fsync: bool,
    /// Whether SQLite syncs its log on every commit.
    pub sqlite_sync_every_commit: bool,
    /// Size of each part of a streamed write.
    pub part_size_bytes: usize,
    /// Parts written concurrently per upload.
    pub parts_in_flight_max: usize,
    /// With `fsync`, flush an upload to disk every this many bytes while it
    /// streams, so the fsync that publishes it is short; 0 flushes only at the end.
    pub sync_interval_bytes: u64,
    /// Write blobs larger than one part past the page cache (`O_DIRECT`) where
    /// the filesystem can: less CPU per pushed byte and no cache evicted by
    /// large models, but a pull soon after a push reads from the device.
    pub direct_io: bool,
}

/// TLS certificate and key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key.
    pub key_path: PathBuf,
}

/// Cache sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of manifest content kept in memory (manifests are immutable by digest).
    pub manifest_bytes_max: u64,
    /// Manifest resolutions (repository and tag or digest to manifest) kept in
    /// memory, dropped on every change to tags or manifests; 0 keeps none.
    /// SQLite only: with PostgreSQL other servers change tags too.
    pub manifest_resolutions_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("ward-data"),
            database_url: String::new(),
            database_connections_max: 8,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            delete_enabled: false,
            shutdown_grace_secs: 30,
            storage: StorageConfig::default(),
            tls: None,
            limits: Limits::default(),
            cache: CacheConfig::default(),
            auth: crate::access::AuthConfig::default(),
            admin_password: None,
            audit: ward_audit::AuditConfig {
                checkpoint_key_path: PathBuf::from("keys/audit-checkpoint.pem"),
                ..ward_audit::AuditConfig::default()
            },
            scan: crate::scanning::ScanConfig::default(),
            signatures: crate::gate::SignatureConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::new(),
            fsync: true,
            sqlite_sync_every_commit: true,
            part_size_bytes: 8 * 1024 * 1024,
            parts_in_flight_max: 2,
            sync_interval_bytes: 64 * 1024 * 1024,
            direct_io: false,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            manifest_bytes_max: 64 * 1024 * 1024,
            manifest_resolutions_max: 10_000,
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` if given (it must exist), then `WARD_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("WARD_").ignore(&NON_CONFIG_ENV).split("__");
        let config: Config = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.signatures.validate().map_err(ConfigError)?;
        Ok(config)
    }

    /// The database URL, defaulting to SQLite under `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("ward.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// `path` if absolute, else under `data_dir`.
    pub fn in_data_dir(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.data_dir.join(path)
        }
    }

    /// The token signing key's path.
    pub fn token_key_path(&self) -> PathBuf {
        if self.auth.signing_key_path.as_os_str().is_empty() {
            self.data_dir.join("keys/token-signing.pem")
        } else {
            self.in_data_dir(&self.auth.signing_key_path)
        }
    }

    /// The blob folder, defaulting to `<data_dir>/blobs`.
    pub fn storage_path(&self) -> PathBuf {
        if self.storage.path.as_os_str().is_empty() {
            self.data_dir.join("blobs")
        } else {
            self.storage.path.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\ndelete_enabled = true\n[limits]\nmanifest_size_bytes_max = 1000\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("WARD_LIMITS__PAGE_ENTRIES_MAX", "7");
            jail.set_env("WARD_DATA_DIR", "/tmp/elsewhere");
            jail.set_env("WARD_TEST_POSTGRES_URL", "ignored");
            let c = Config::load(Some(&file)).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 6000);
            assert!(c.delete_enabled);
            assert_eq!(c.limits.manifest_size_bytes_max, 1000);
            assert_eq!(c.limits.page_entries_max, 7);
            assert_eq!(c.data_dir, PathBuf::from("/tmp/elsewhere"));
            assert_eq!(c.database_url(), "sqlite:///tmp/elsewhere/ward.db");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn signature_gate_limits_are_keys_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ward.toml");
        std::fs::write(
            &file,
            "[signatures]\nblob_bytes_max = 4096\nrefusal_ttl_secs = 0\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.signatures.blob_bytes_max, 4096);
        assert_eq!(c.signatures.refusal_ttl_secs, 0);
        assert_eq!(c.signatures.manifests_max, 64);
        std::fs::write(&file, "[signatures]\nmanifests_max = 0\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("signatures.manifests_max"), "{err}");
    }

    #[test]
    fn defaults_are_hardened() {
        let c = Config::default();
        assert!(c.listen.ip().is_loopback());
        assert!(!c.delete_enabled);
        assert_eq!(c.limits.manifest_size_bytes_max, 4 * 1024 * 1024);
    }
}
