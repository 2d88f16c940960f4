//! ward-server: the registry as an HTTP service.
//!
//! Provides the OCI Distribution API under `/v2/` ([`oci`]), health and
//! metrics endpoints, the accept loop ([`serve`]) and background workers
//! ([`workers`]). [`start`] runs a registry from a [`config::Config`];
//! [`router`] builds the axum app over an [`state::AppState`].
//!
//! The design decision a reader must know: **all of `/v2/` goes through one
//! dispatcher**, which resolves each request to an [`oci::route::Endpoint`]
//! whose required access is declared in one exhaustive match. A new endpoint
//! cannot be added without saying what it requires.
//!
//! Layering: handlers call `ward-store` and the libraries; they never write
//! SQL and hold no rule that belongs in a library. **Only this crate knows the
//! OCI wire format.**
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ward_server::config::Config::load(None)?;
//! let running = ward_server::start(config).await?;
//! println!("listening on {}", running.local_addr);
//! running.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod api;
pub mod audit;
pub mod config;
pub mod error;
pub mod gate;
pub mod http;
pub mod oci;
pub mod scanning;
pub mod serve;
pub mod state;
pub mod token_endpoint;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use ward_core::ErrorCode;
use ward_store::{BlobStore, BlobStoreOptions, MetaStore, MetaStoreOptions};

use config::Config;
use error::ApiError;
use oci::route::Endpoint;
use state::{AppState, EndpointLabels, ManifestCache, Metrics, RequestLabels};

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Opening the metadata database failed.
    #[error("opening the metadata database: {0}")]
    Meta(#[from] ward_store::StoreError),
    /// Opening blob storage failed.
    #[error("opening blob storage: {0}")]
    Blobs(#[from] ward_store::BlobStoreError),
    /// Binding the listen address failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] serve::TlsError),
    /// Access control could not start.
    #[error(transparent)]
    Access(#[from] access::AccessError),
    /// The audit log could not start.
    #[error("starting the audit log: {0}")]
    Audit(String),
    /// Another server holds the SQLite database.
    #[error(
        "another ward serve is using the database {database} (its lock {lock} is held): one \
         server per SQLite database, which it caches; use PostgreSQL to run several"
    )]
    DatabaseInUse {
        /// The database file.
        database: std::path::PathBuf,
        /// The lock file.
        lock: std::path::PathBuf,
    },
    /// The first administrator could not be created.
    #[error("creating the first administrator: {0}")]
    Bootstrap(String),
    /// The data directory could not be created.
    #[error("creating the directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Opens the stores a configuration names, applying database migrations.
/// Private: the SQLite store it builds remembers manifest resolutions, which
/// is only safe under the database lock that [`start`] takes first.
async fn open(config: Config) -> Result<AppState, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let meta = MetaStore::connect(
        &config.database_url(),
        &MetaStoreOptions {
            connections_max: config.database_connections_max,
            sqlite_sync_every_commit: config.storage.sqlite_sync_every_commit,
            resolution_cache_entries: config.cache.manifest_resolutions_max,
            ..MetaStoreOptions::default()
        },
    )
    .await?;
    let blobs = BlobStore::local(
        config.storage_path(),
        config.storage.fsync,
        BlobStoreOptions {
            part_size_bytes: config.storage.part_size_bytes,
            parts_in_flight_max: config.storage.parts_in_flight_max,
            sync_interval_bytes: config.storage.sync_interval_bytes,
            direct_io: config.storage.direct_io,
            ..BlobStoreOptions::default()
        },
    )?;
    let token_key_path = config.token_key_path();
    private_parent_dir(&token_key_path)?;
    private_parent_dir(&config.in_data_dir(&config.audit.checkpoint_key_path))?;
    let access = access::AccessControl::open(config.auth.clone(), &token_key_path, &meta).await?;
    bootstrap_admin(&config, &meta, &access).await?;
    let (audit, audit_public_key) = start_audit(&config, &meta).await?;
    if !config.audit.enabled {
        tracing::warn!(
            "the audit log is DISABLED (audit.enabled = false): nothing is recorded; never run a production registry like this"
        );
    }
    let signatures = Arc::new(gate::SignatureGate::new(config.signatures.clone()));
    Ok(AppState::new(state::Shared {
        manifests: ManifestCache::new(config.cache.manifest_bytes_max),
        config: Arc::new(config),
        meta,
        blobs,
        metrics: Arc::new(Metrics::new()),
        access: Arc::new(access),
        audit: Arc::new(audit),
        audit_public_key: Arc::new(audit_public_key),
        signatures,
        scan_wake: Arc::new(scanning::ScanWake::default()),
        streaming_uploads: state::StreamingUploads::default(),
    }))
}

/// Creates the directory a key file lives in, readable by its owner only,
/// when it does not exist yet (a directory that exists is left as it is).
fn private_parent_dir(key_path: &std::path::Path) -> Result<(), StartError> {
    let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StartError::DataDir {
        path: dir.to_owned(),
        source,
    })
}

async fn start_audit(
    config: &Config,
    meta: &MetaStore,
) -> Result<(ward_audit::Audit, String), StartError> {
    let mut audit_config = config.audit.clone();
    audit_config.checkpoint_key_path = config.in_data_dir(&audit_config.checkpoint_key_path);
    let signer = ward_audit::CheckpointSigner::load_or_generate(
        &audit_config.checkpoint_key_path,
        &audit_config.origin,
    )
    .map_err(|e| StartError::Audit(e.to_string()))?;
    let public_key = signer
        .verifier()
        .to_public_pem()
        .map_err(|e| StartError::Audit(e.to_string()))?;
    let audit = ward_audit::Audit::start(Arc::new(meta.clone()), &audit_config, signer)
        .await
        .map_err(|e| StartError::Audit(e.to_string()))?;
    Ok((audit, public_key))
}

/// Creates the first administrator when there are no users at all. The
/// password comes from the config file, else `WARD_ADMIN_PASSWORD`, else it is
/// generated and printed once on standard error (never into the log).
async fn bootstrap_admin(
    config: &Config,
    meta: &MetaStore,
    access: &access::AccessControl,
) -> Result<(), StartError> {
    let fail = |e: &dyn std::fmt::Display| StartError::Bootstrap(e.to_string());
    let name = config.auth.admin_username.as_str();
    let (password, generated) = match (&config.admin_password, std::env::var("WARD_ADMIN_PASSWORD"))
    {
        (Some(p), _) => (ward_auth::SecretString::from(p.expose()), false),
        (None, Ok(p)) if !p.is_empty() => (ward_auth::SecretString::from(p), false),
        _ => (
            ward_auth::password::generate_password().map_err(|e| fail(&e))?,
            true,
        ),
    };
    let hash = access
        .hash_password(&password)
        .map_err(|e| fail(&e.message))?;
    let new = ward_store::meta::NewUser {
        name,
        password_hash: hash.as_phc(),
    };
    let binding = ward_store::meta::StoredRoleBinding {
        subject: format!("user:{name}"),
        role: "admin".into(),
        repositories: "*".into(),
    };
    // The user and its Admin binding are created together, and only if there are no users.
    let created = meta
        .create_user_if_no_users(&new, &[binding])
        .await
        .map_err(|e| fail(&e))?;
    if created.is_none() {
        return Ok(());
    }
    access.refresh(meta).await.map_err(|e| fail(&e))?;
    tracing::info!(user = name, "created the first administrator");
    if generated {
        eprintln!(
            "\n  Ward created the administrator {name:?} with this generated password,\n  shown only now: {}\n  Set WARD_ADMIN_PASSWORD before the first start to choose it.\n",
            password.expose()
        );
    }
    Ok(())
}

/// The HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v2", any(oci::dispatch))
        .route("/v2/", any(oci::dispatch))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route(
            "/token",
            get(token_endpoint::token).post(token_endpoint::token),
        )
        .merge(api::router(&state))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers. The body also reports each audit sink's
/// lag and whether its last delivery failed (an outage delays delivery, it
/// does not make the registry unready); error texts stay behind
/// `GET /api/v1/audit/status`, which needs a sign-in.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.meta.ping().await {
        Ok(()) => {
            let audit = state.audit.status();
            if let Some(reason) = audit
                .log
                .broken
                .as_deref()
                .filter(|_| state.config.audit.enabled)
            {
                // Every request that must be recorded would fail: take this
                // server out of rotation until it is restarted.
                tracing::error!(reason, "not ready: the audit log records nothing more");
                let body = format!("audit log cannot record, restart the server: {reason}\n");
                return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
            }
            let sinks: Vec<serde_json::Value> = audit
                .sinks
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "name": s.name,
                        "feed": s.feed,
                        "lag_events": s.lag_events,
                        "consecutive_failures": s.consecutive_failures,
                        "healthy": s.consecutive_failures == 0,
                    })
                })
                .collect();
            let body = serde_json::json!({
                "status": "ready",
                "database": "ok",
                "audit": {
                    "enabled": state.config.audit.enabled,
                    "events_recorded": audit.log.events_recorded_total,
                    "write_failures": audit.log.store_failures_total,
                    "checkpoint_tree_size": audit.checkpoints.tree_size,
                    "sinks": sinks,
                },
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata database unavailable\n",
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.audit.update(&state.audit.status());
    if let Ok(n) = state.meta.open_uploads_total().await {
        state
            .metrics
            .uploads_open
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Whether `path` is a blob upload (`/v2/<name>/blobs/uploads/[<session>]`),
/// whose body streams for as long as it is.
fn streams_upload(path: &str) -> bool {
    let Some((before, after)) = path.rsplit_once("/blobs/uploads") else {
        return false;
    };
    before.len() > "/v2".len()
        && before.starts_with("/v2/")
        && (after.is_empty() || after.strip_prefix('/').is_some_and(|s| !s.contains('/')))
}

/// Request ids, metrics and logs for every request, and the request timeout.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert("x-request-id", v);
    }
    let path = request.uri().path().to_owned();
    let mut response = if streams_upload(&path) {
        // Uploads take as long as their bytes take; body_idle_timeout_secs
        // bounds each pause instead.
        next.run(request).await
    } else {
        let limit = Duration::from_secs(state.config.limits.request_timeout_secs);
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the request did not finish within {} seconds (request_timeout_secs); retry it",
                    limit.as_secs()
                ),
            )
            .into_response(),
        }
    };
    let endpoint = response
        .extensions()
        .get::<Endpoint>()
        .map_or("other", |e| e.label());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            method: method_label(&method),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&EndpointLabels { endpoint })
        .observe(elapsed.as_secs_f64());
    if status >= 500 {
        tracing::warn!(%method, %path, status, request_id, "request failed");
    } else {
        tracing::debug!(%method, %path, status, request_id, micros = elapsed.as_micros() as u64, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The metric label of a request method.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// A registry running in the background.
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub local_addr: SocketAddr,
    /// Its state, for tests and embedding.
    pub state: AppState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    refresher: JoinHandle<()>,
    scanner: JoinHandle<()>,
    /// Held while serving a SQLite database (`lock_sqlite`).
    database_lock: Option<std::fs::File>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and closes the stores.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        self.sweeper.abort();
        self.refresher.abort();
        self.scanner.abort();
        self.state.meta.close().await;
        drop(self.database_lock);
    }

    /// Waits until the server stops by itself (it does not, short of a panic).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Opens the stores, binds the listener and serves in the background.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let tls = config.tls.as_ref().map(serve::tls_acceptor).transpose()?;
    let listen = config.listen;
    if tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "serving plain HTTP on a non-loopback address: credentials and content cross the \
             network unencrypted; configure [tls] or put a TLS proxy in front"
        );
    }
    let database_lock = lock_sqlite(&config)?;
    let state = open(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let (shutdown, on_shutdown) = oneshot::channel::<()>();
    let app = router(state.clone());
    let limits = state.config.limits.clone();
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let task = tokio::spawn(async move {
        serve::run(listener, app, tls, &limits, grace, async {
            let _ = on_shutdown.await;
        })
        .await;
    });
    let sweeper = tokio::spawn(workers::run_upload_sweeper(state.clone()));
    let refresher = tokio::spawn(workers::run_access_refresher(state.clone()));
    let scanner = tokio::spawn(scanning::run(state.clone()));
    tracing::info!(%local_addr, database = state.meta.backend_name(), "ward is serving");
    Ok(Running {
        local_addr,
        state,
        shutdown,
        task,
        sweeper,
        refresher,
        scanner,
        database_lock,
    })
}

/// Takes `<database>.lock` for as long as the server runs. One process owns a
/// SQLite database: it keeps manifest resolutions in memory and drops them on
/// its own writes, which another process's writes would leave stale. The
/// kernel releases the lock when the process ends, however it ends.
///
/// The lock sits beside the file SQLite opens, symbolic links resolved, so
/// that servers naming one database through different links share it.
fn lock_sqlite(config: &Config) -> Result<Option<std::fs::File>, StartError> {
    let Some(database) = MetaStore::sqlite_file(&config.database_url())? else {
        return Ok(None);
    };
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut lock = resolve_links(&database)
        .map_err(|source| StartError::DataDir {
            path: database.clone(),
            source,
        })?
        .into_os_string();
    lock.push(".lock");
    let lock = std::path::PathBuf::from(lock);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| StartError::DataDir {
            path: lock.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::DatabaseInUse { database, lock }),
        Err(std::fs::TryLockError::Error(source)) => {
            Err(StartError::DataDir { path: lock, source })
        }
    }
}

/// The file a path names once every symbolic link on the way is followed,
/// like `canonicalize` but also for a file not created yet, where the path
/// may end in a link that points to nothing so far (SQLite creates the
/// target through it).
fn resolve_links(path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    // The kernel's own limit on links followed in one lookup.
    const LINKS_MAX: usize = 40;
    let mut path = path.to_owned();
    for _ in 0..LINKS_MAX {
        match std::fs::read_link(&path) {
            Ok(target) => {
                let dir = path.parent().unwrap_or(std::path::Path::new(""));
                path = dir.join(target);
            }
            // Not a link (EINVAL), or nothing there yet.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotFound
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let Some(name) = path.file_name().map(std::ffi::OsStr::to_owned) else {
        return std::fs::canonicalize(&path);
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    Ok(std::fs::canonicalize(dir)?.join(name))
}

#[cfg(test)]
mod tests {
    use super::{resolve_links, streams_upload};

    #[test]
    fn links_resolve_for_a_file_not_created_yet() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        let links = root.path().join("links");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(&links).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        // A dangling link, relative, through a linked directory and a second link.
        std::os::unix::fs::symlink("../real/ward.db", links.join("a.db")).unwrap();
        std::os::unix::fs::symlink(links.join("a.db"), links.join("b.db")).unwrap();
        std::os::unix::fs::symlink(&links, root.path().join("via")).unwrap();
        let want = real.join("ward.db");
        assert_eq!(resolve_links(&links.join("a.db")).unwrap(), want);
        assert_eq!(resolve_links(&root.path().join("via/b.db")).unwrap(), want);
        assert_eq!(resolve_links(&want).unwrap(), want);
        std::fs::write(&want, b"").unwrap();
        assert_eq!(
            resolve_links(&root.path().join("via/b.db")).unwrap(),
            std::fs::canonicalize(root.path().join("via/b.db")).unwrap()
        );
        // A loop stops after the kernel's limit instead of spinning.
        std::os::unix::fs::symlink("loop.db", links.join("loop.db")).unwrap();
        assert_eq!(
            resolve_links(&links.join("loop.db")).unwrap(),
            std::fs::canonicalize(&links).unwrap().join("loop.db")
        );
    }

    #[test]
    fn only_blob_uploads_stream_past_the_request_timeout() {
        for path in [
            "/v2/app/blobs/uploads/",
            "/v2/app/blobs/uploads",
            "/v2/team/app/blobs/uploads/0b6c2e6e-4f0e-4c4e-9d7a-1d2f3e4a5b6c",
            "/v2/blobs/uploads/blobs/uploads/",
        ] {
            assert!(streams_upload(path), "{path}");
        }
        for path in [
            "/v2/app/manifests/v1",
            "/v2/app/blobs/sha256:00",
            "/v2/blobs/uploads/",
            "/v2/a/blobs/uploads/manifests/v1",
            "/api/v1/blobs/uploads/",
        ] {
            assert!(!streams_upload(path), "{path}");
        }
    }
}
