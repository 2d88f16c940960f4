//! Who is calling, and may they? Decided here for every route.
//!
//! [`AccessControl::authenticate`] turns a request's credentials into a
//! [`Caller`]: HTTP Basic with a password, a robot secret or a personal access
//! token, or a Bearer token from the token endpoint. [`AccessControl::authorize`]
//! then asks `ward-auth`'s [`Authorizer`](ward_auth::Authorizer) about the
//! action, repository and tag, against the current [`snapshot::Snapshot`]. A
//! bearer token is a ceiling, never a decision: the request is evaluated again.
//!
//! Hot paths are cached: verified tokens until they expire, successful password
//! checks for a minute, and decisions that depend on nothing volatile, each
//! keyed by the snapshot revision so any change to users, roles or policies
//! takes effect at once.

pub mod snapshot;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ward_auth::SecretString;
use ward_auth::identity::{Principal, PrincipalKind};
use ward_auth::password::{PasswordHash, PasswordHasher, SecretDigest, SecretKind, parse_secret};
use ward_auth::policy::{Action, Decision, Request, TagContext};
use ward_auth::ratelimit::{FailureLimiter, RateLimitConfig};
use ward_auth::scope::{ResourceActions, parse_scopes};
use ward_auth::token::{
    AccessClaims, SigningKey, TokenConfig, TokenIssuer, TokenResponse, TokenVerifier,
};
use ward_core::ErrorCode;
use ward_store::{MetaStore, now_ms};

use crate::error::ApiError;
use snapshot::Snapshot;

/// `[auth]` in `ward.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The token service name (`service=` in challenges, `aud` in tokens).
    pub service: String,
    /// Token issuer (`iss`).
    pub issuer: String,
    /// The registry's external base URL, e.g. `https://registry.example.com`;
    /// empty means "from the request's Host header".
    pub public_url: String,
    /// Lifetime of access tokens.
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (`offline_token=true`).
    pub refresh_token_ttl_secs: u64,
    /// The token signing key (ES256, PKCS#8 PEM, 0600); empty means `<data_dir>/keys/token-signing.pem`.
    pub signing_key_path: std::path::PathBuf,
    /// Name of the first administrator, created on first start.
    pub admin_username: String,
    /// How long a verified password is remembered, to spare argon2 on repeated Basic auth.
    pub password_cache_secs: u64,
    /// Shortest password a person may choose, in characters (users created
    /// and passwords changed through the API; not the bootstrap administrator's).
    pub password_chars_min: usize,
    /// How often the authorization revision is checked for changes by other servers.
    pub revision_poll_millis: u64,
    /// Entries in each of the token, password and decision caches.
    pub cache_entries_max: usize,
    /// Failed-login limits.
    pub failed_logins: FailedLoginConfig,
}

/// `[auth.failed_logins]`: when repeated failures lock a user or an address out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailedLoginConfig {
    /// Failures of one user name within the window that lock it out.
    pub user_failures_max: u32,
    /// Failures from one address within the window that lock it out (looser: NATs).
    pub ip_failures_max: u32,
    /// How long failures are remembered.
    pub window_secs: u64,
    /// The first lockout; each further one doubles it.
    pub lockout_secs: u64,
    /// The longest lockout.
    pub lockout_max_secs: u64,
    /// Most user names and addresses remembered.
    pub entries_max: usize,
}

impl Default for FailedLoginConfig {
    fn default() -> Self {
        let d = RateLimitConfig::default();
        FailedLoginConfig {
            user_failures_max: d.per_user.failures_max,
            ip_failures_max: d.per_ip.failures_max,
            window_secs: d.per_user.window.as_secs(),
            lockout_secs: d.per_user.lockout.as_secs(),
            lockout_max_secs: d.per_user.lockout_max.as_secs(),
            entries_max: d.entries_max,
        }
    }
}

impl FailedLoginConfig {
    fn limiter_config(&self) -> RateLimitConfig {
        let limit = |failures_max| ward_auth::ratelimit::LimitConfig {
            failures_max,
            window: Duration::from_secs(self.window_secs),
            lockout: Duration::from_secs(self.lockout_secs),
            lockout_max: Duration::from_secs(self.lockout_max_secs),
        };
        RateLimitConfig {
            per_user: limit(self.user_failures_max),
            per_ip: limit(self.ip_failures_max),
            entries_max: self.entries_max,
            ..RateLimitConfig::default()
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "ward".into(),
            issuer: "ward".into(),
            public_url: String::new(),
            token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            signing_key_path: std::path::PathBuf::new(),
            admin_username: "admin".into(),
            password_cache_secs: 60,
            password_chars_min: ward_auth::password::PasswordConfig::default()
                .new_password_chars_min,
            revision_poll_millis: 1000,
            cache_entries_max: 100_000,
            failed_logins: FailedLoginConfig::default(),
        }
    }
}

/// How a caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Nothing presented.
    None,
    /// HTTP Basic with a user's password.
    Password,
    /// HTTP Basic with a robot secret.
    RobotSecret,
    /// HTTP Basic with a personal access token.
    AccessToken,
    /// A Bearer token from the token endpoint.
    Bearer,
    /// A refresh token at the token endpoint.
    RefreshToken,
}

impl AuthMethod {
    /// Its name in logs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Password => "password",
            AuthMethod::RobotSecret => "robot_secret",
            AuthMethod::AccessToken => "access_token",
            AuthMethod::Bearer => "bearer",
            AuthMethod::RefreshToken => "refresh_token",
        }
    }
}

/// An authenticated (or anonymous) caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// How they proved it.
    pub method: AuthMethod,
    /// The claims of the Bearer token presented, if any: a ceiling on what it may do.
    pub claims: Option<Arc<AccessClaims>>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The request's `User-Agent`, for the audit log.
    pub user_agent: Option<String>,
    /// The request id, for the audit log.
    pub request_id: Option<String>,
    /// Whether this request's credentials were checked against the store
    /// (not remembered from an earlier request): a sign-in worth recording.
    pub verified_now: bool,
    /// The credential behind this request, which a refresh token issued to it
    /// stays bound to; `None` for anonymous callers and registry tokens.
    pub credential: Option<Credential>,
}

/// A credential a caller signed in with, as far as a refresh token needs to
/// know it: a refresh token stops working when its credential is revoked,
/// expires or changes (a new password, a new robot secret, an account deleted
/// and created again under the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A user's password: the user's id and a fingerprint of its stored hash
    /// (a new password has a new salt, so a new hash).
    Password {
        /// The user's id.
        user_id: i64,
        /// `fingerprint` of the PHC hash string.
        fingerprint: String,
    },
    /// A personal access token, by id.
    AccessToken {
        /// The token's id.
        id: i64,
    },
    /// A robot's secret: the robot's id and a fingerprint of the secret's digest.
    Robot {
        /// The robot's id.
        id: i64,
        /// `fingerprint` of the secret digest.
        fingerprint: String,
    },
}

impl Credential {
    /// A short, one-way fingerprint of stored credential material.
    fn fingerprint(stored: &str) -> String {
        let digest = sha256(&[stored.as_bytes()]);
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `ward_cred` claim of a refresh token.
    fn claim(&self) -> String {
        match self {
            Credential::Password {
                user_id,
                fingerprint,
            } => format!("password:{user_id}:{fingerprint}"),
            Credential::AccessToken { id } => format!("token:{id}"),
            Credential::Robot { id, fingerprint } => format!("robot:{id}:{fingerprint}"),
        }
    }

    fn from_claim(claim: &str) -> Option<Self> {
        let mut parts = claim.split(':');
        let credential = match (parts.next()?, parts.next()?.parse().ok()?, parts.next()) {
            ("password", user_id, Some(fingerprint)) => Credential::Password {
                user_id,
                fingerprint: fingerprint.to_owned(),
            },
            ("token", id, None) => Credential::AccessToken { id },
            ("robot", id, Some(fingerprint)) => Credential::Robot {
                id,
                fingerprint: fingerprint.to_owned(),
            },
            _ => return None,
        };
        parts.next().is_none().then_some(credential)
    }

    /// Whether the credential still stands for principal `name` in the store.
    async fn still_valid(&self, meta: &MetaStore, name: &str) -> Result<bool, ApiError> {
        let same = |stored: &str, fingerprint: &str| {
            let stored = Credential::fingerprint(stored);
            bool::from(subtle::ConstantTimeEq::ct_eq(
                stored.as_bytes(),
                fingerprint.as_bytes(),
            ))
        };
        Ok(match self {
            Credential::Password {
                user_id,
                fingerprint,
            } => meta
                .user(name)
                .await?
                .is_some_and(|u| u.id == *user_id && same(&u.password_hash, fingerprint)),
            Credential::AccessToken { id } => meta
                .access_tokens(name)
                .await?
                .iter()
                .any(|t| t.id == *id && t.is_active(now_ms())),
            Credential::Robot { id, fingerprint } => meta
                .robot(name)
                .await?
                .is_some_and(|r| r.id == *id && same(&r.secret_digest, fingerprint)),
        })
    }
}

impl Caller {
    /// A caller with no request context (for decisions computed on request of an admin).
    pub fn detached(principal: Principal, ip: Option<IpAddr>) -> Self {
        Caller {
            principal,
            method: AuthMethod::None,
            claims: None,
            ip,
            secure: false,
            user_agent: None,
            request_id: None,
            verified_now: false,
            credential: None,
        }
    }

    fn over_tls(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether no credential of any kind was presented.
    pub fn presented_nothing(&self) -> bool {
        self.method == AuthMethod::None
    }

    /// A printable name for logs and audit events.
    pub fn name(&self) -> &str {
        if self.principal.kind == PrincipalKind::Anonymous {
            "anonymous"
        } else {
            &self.principal.name
        }
    }
}

/// What an authorization check concluded.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// 401 with a Bearer challenge: credentials, or a token with more scope, would help.
    Challenge {
        /// Why.
        message: String,
    },
    /// 403 with a Bearer challenge carrying `error="insufficient_scope"`
    /// (RFC 6750, section 3.1): the caller may do this, but the token it sent
    /// was issued for less; a new token with the challenge's scope will do.
    InsufficientScope {
        /// Why.
        message: String,
    },
    /// 403: the caller is known and policy says no.
    Deny {
        /// The decision, naming the statement or its absence.
        decision: Decision,
    },
}

/// An authentication failure, with what the audit log needs.
#[derive(Debug)]
pub struct AuthFailure {
    /// The answer to send.
    pub error: ApiError,
    /// The user name tried, if any.
    pub username: Option<String>,
    /// The method tried.
    pub method: AuthMethod,
}

#[derive(Clone)]
struct RememberedLogin {
    principal_kind: PrincipalKind,
    name: String,
    method: AuthMethod,
    credential: Credential,
    revision: i64,
    until: Instant,
}

/// Who a set of Basic credentials signs in: the principal, by kind and name,
/// the credential, and when it expires (Unix milliseconds), if it does.
struct Login {
    kind: PrincipalKind,
    name: String,
    credential: Credential,
    expires_at_ms: Option<i64>,
}

/// Authentication and authorization state of one server.
pub struct AccessControl {
    config: AuthConfig,
    issuer: TokenIssuer,
    verifier: TokenVerifier,
    hasher: Arc<PasswordHasher>,
    limiter: FailureLimiter,
    snapshot: RwLock<Arc<Snapshot>>,
    tokens: Cache<[u8; 32], Arc<AccessClaims>>,
    logins: Cache<[u8; 32], RememberedLogin>,
    decisions: Cache<DecisionKey, (i64, Decision)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    kind: PrincipalKind,
    name: String,
    action: Action,
    repository: Option<String>,
    tag: Option<String>,
}

/// Why access control could not start.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The signing key could not be loaded or created.
    #[error("token signing key: {0}")]
    Key(#[from] ward_auth::token::KeyError),
    /// Loading users, roles and policies failed.
    #[error("loading access control data: {0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    /// Password hashing could not be set up.
    #[error("password hashing: {0}")]
    Password(#[from] ward_auth::password::PasswordError),
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl AccessControl {
    /// Loads the signing key (creating it on first start) and the snapshot.
    pub async fn open(
        config: AuthConfig,
        key_path: &std::path::Path,
        meta: &MetaStore,
    ) -> Result<Self, AccessError> {
        let (key, origin) = SigningKey::load_or_generate(key_path)?;
        tracing::info!(kid = key.kid(), ?origin, path = %key_path.display(), "token signing key");
        let mut token_config = TokenConfig::new(config.issuer.clone(), config.service.clone());
        token_config.access_ttl = Duration::from_secs(config.token_ttl_secs);
        token_config.refresh_ttl = Duration::from_secs(config.refresh_token_ttl_secs);
        let issuer = TokenIssuer::new(key, token_config);
        let verifier = issuer.verifier([]);
        let snapshot = Snapshot::load(meta).await?;
        let n = config.cache_entries_max.max(16);
        Ok(AccessControl {
            hasher: Arc::new(PasswordHasher::new(ward_auth::password::PasswordConfig {
                new_password_chars_min: config.password_chars_min,
                ..Default::default()
            })?),
            limiter: FailureLimiter::new(config.failed_logins.limiter_config()),
            issuer,
            verifier,
            snapshot: RwLock::new(Arc::new(snapshot)),
            tokens: Cache::new(n),
            logins: Cache::new(n),
            decisions: Cache::new(n),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reloads the snapshot if the store's revision moved; returns whether it did.
    pub async fn refresh(&self, meta: &MetaStore) -> Result<bool, snapshot::SnapshotError> {
        let revision = meta.auth_revision().await?;
        if revision == self.snapshot().revision {
            return Ok(false);
        }
        let fresh = Arc::new(Snapshot::load(meta).await?);
        match self.snapshot.write() {
            Ok(mut s) => *s = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(true)
    }

    /// Hashes a password a person chose, after checking its length.
    pub fn new_password_hash(&self, password: &SecretString) -> Result<PasswordHash, ApiError> {
        self.hasher
            .check_new_password(password)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
        self.hash_password(password)
    }

    /// Hashes a password (the bootstrap administrator's, set by whoever runs
    /// the server), checking only its length maximum.
    pub fn hash_password(&self, password: &SecretString) -> Result<PasswordHash, ApiError> {
        self.hasher
            .hash(password)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))
    }

    /// Works out who is calling from the `Authorization` header.
    pub async fn authenticate(
        &self,
        meta: &MetaStore,
        headers: &HeaderMap,
        ip: Option<IpAddr>,
        secure: bool,
    ) -> Result<Caller, AuthFailure> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect::<String>())
        };
        let (user_agent, request_id) = (text("user-agent"), text("x-request-id"));
        let caller = |principal, method, claims| Caller {
            principal,
            method,
            claims,
            ip,
            secure,
            user_agent: user_agent.clone(),
            request_id: request_id.clone(),
            verified_now: false,
            credential: None,
        };
        let Some(value) = value else {
            return Ok(caller(Principal::anonymous(), AuthMethod::None, None));
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let claims = self.verify_bearer(rest.trim())?;
            let principal = self
                .active_principal(claims.ward_kind, &claims.sub)
                .ok_or_else(|| AuthFailure {
                    error: unauthorized(
                        "the token's account is disabled, revoked or gone; log in again",
                    ),
                    username: Some(claims.sub.clone()),
                    method: AuthMethod::Bearer,
                })?;
            return Ok(caller(principal, AuthMethod::Bearer, Some(claims)));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let (user, secret) = decode_basic(rest.trim()).ok_or_else(|| AuthFailure {
                error: unauthorized("malformed Basic credentials"),
                username: None,
                method: AuthMethod::Password,
            })?;
            let (principal, method, verified_now, credential) =
                self.basic(meta, &user, secret, ip).await?;
            return Ok(Caller {
                verified_now,
                credential: Some(credential),
                ..caller(principal, method, None)
            });
        }
        Err(AuthFailure {
            error: unauthorized("unsupported Authorization scheme: use Basic or Bearer"),
            username: None,
            method: AuthMethod::None,
        })
    }

    fn active_principal(&self, kind: PrincipalKind, name: &str) -> Option<Principal> {
        self.snapshot().principal(kind, name, now_ms())
    }

    fn verify_bearer(&self, token: &str) -> Result<Arc<AccessClaims>, AuthFailure> {
        let key = sha256(&[token.as_bytes()]);
        let now = SystemTime::now();
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Some(claims) = self.tokens.get(&key)
            && claims.exp > now_secs
        {
            return Ok(claims);
        }
        let claims = self
            .verifier
            .verify_access(token, now)
            .map_err(|e| AuthFailure {
                error: unauthorized(&format!(
                    "invalid token ({e}); fetch a new one from the token endpoint"
                )),
                username: None,
                method: AuthMethod::Bearer,
            })?;
        let claims = Arc::new(claims);
        self.tokens.insert(key, claims.clone());
        Ok(claims)
    }

    /// Basic credentials: a robot secret, a personal access token or a password.
    /// Also says whether they were checked against the store just now (true)
    /// or remembered from a recent check (false), and which credential it was.
    async fn basic(
        &self,
        meta: &MetaStore,
        user: &str,
        secret: SecretString,
        ip: Option<IpAddr>,
    ) -> Result<(Principal, AuthMethod, bool, Credential), AuthFailure> {
        // Names are stored lowercase; `Admin` and `admin` are one account.
        let user = &user.to_ascii_lowercase();
        let now = Instant::now();
        let locked = |l: ward_auth::ratelimit::Locked, method| AuthFailure {
            error: ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "too many failed logins; try again in {} seconds",
                    l.retry_after_secs()
                ),
            )
            .with_header(header::RETRY_AFTER, l.retry_after_secs().to_string()),
            username: Some(user.to_owned()),
            method,
        };
        let method = match parse_secret(secret.expose()) {
            Ok(SecretKind::Robot) => AuthMethod::RobotSecret,
            Ok(SecretKind::PersonalAccessToken) => AuthMethod::AccessToken,
            Err(_) => AuthMethod::Password,
        };
        self.limiter
            .check(Some(user), ip, now)
            .map_err(|l| locked(l, method))?;
        let remembered_key = sha256(&[user.as_bytes(), secret.expose().as_bytes()]);
        let revision = self.snapshot().revision;
        if let Some(r) = self.logins.get(&remembered_key)
            && r.revision == revision
            && r.until > now
            && let Some(p) = self.active_principal(r.principal_kind, &r.name)
        {
            return Ok((p, r.method, false, r.credential));
        }
        let found = match method {
            AuthMethod::RobotSecret => self.robot_login(meta, user, &secret).await,
            AuthMethod::AccessToken => self.token_login(meta, user, &secret).await,
            _ => self.password_login(meta, user, secret).await,
        };
        let login = match found {
            Ok(Some(login)) => login,
            Ok(None) => {
                let lock = self.limiter.record_failure(Some(user), ip, now);
                return Err(match lock {
                    Some(l) => locked(l, method),
                    None => AuthFailure {
                        error: unauthorized("invalid username or password"),
                        username: Some(user.to_owned()),
                        method,
                    },
                });
            }
            Err(e) => {
                return Err(AuthFailure {
                    error: e,
                    username: Some(user.to_owned()),
                    method,
                });
            }
        };
        let principal = self
            .active_principal(login.kind, &login.name)
            .ok_or_else(|| AuthFailure {
                error: unauthorized("the account is disabled, revoked or expired"),
                username: Some(user.to_owned()),
                method,
            })?;
        self.limiter.record_success(user);
        // Remembered no longer than the credential lives (an access token's expiry).
        let mut remembered_for = Duration::from_secs(self.config.password_cache_secs);
        if let Some(expires_at_ms) = login.expires_at_ms {
            let left_ms = u64::try_from(expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
            remembered_for = remembered_for.min(Duration::from_millis(left_ms));
        }
        self.logins.insert(
            remembered_key,
            RememberedLogin {
                principal_kind: login.kind,
                name: login.name,
                method,
                credential: login.credential.clone(),
                revision,
                until: now + remembered_for,
            },
        );
        Ok((principal, method, true, login.credential))
    }

    async fn password_login(
        &self,
        meta: &MetaStore,
        user: &str,
        password: SecretString,
    ) -> Result<Option<Login>, ApiError> {
        let stored = meta.user(user).await.map_err(ApiError::from)?;
        let hasher = self.hasher.clone();
        let hash = stored
            .as_ref()
            .map(|u| PasswordHash::from_phc(u.password_hash.clone()));
        // argon2 takes tens of milliseconds: off the async workers.
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(h) => hasher.verify(&password, &h).unwrap_or(false),
            None => {
                hasher.dummy_verify(&password);
                false
            }
        })
        .await
        .map_err(|e| ApiError::internal("verifying a password", &e))?;
        Ok(stored.filter(|_| ok).map(|u| Login {
            kind: PrincipalKind::User,
            name: user.to_owned(),
            credential: Credential::Password {
                user_id: u.id,
                fingerprint: Credential::fingerprint(&u.password_hash),
            },
            expires_at_ms: None,
        }))
    }

    async fn robot_login(
        &self,
        meta: &MetaStore,
        user: &str,
        secret: &SecretString,
    ) -> Result<Option<Login>, ApiError> {
        let digest = SecretDigest::of(secret).to_string();
        let robot = meta
            .robot_by_secret_digest(&digest)
            .await
            .map_err(ApiError::from)?;
        let Some(robot) = robot.filter(|r| r.name == user) else {
            return Ok(None);
        };
        record_use(meta, robot.last_used_at_ms, robot.id, true);
        Ok(Some(Login {
            kind: PrincipalKind::Robot,
            credential: Credential::Robot {
                id: robot.id,
                fingerprint: Credential::fingerprint(&robot.secret_digest),
            },
            expires_at_ms: robot.expires_at_ms,
            name: robot.name,
        }))
    }

    async fn token_login(
        &self,
        meta: &MetaStore,
        user: &str,
        secret: &SecretString,
    ) -> Result<Option<Login>, ApiError> {
        let digest = SecretDigest::of(secret).to_string();
        let login = meta
            .access_token_by_secret_digest(&digest)
            .await
            .map_err(ApiError::from)?;
        let Some(login) = login.filter(|l| l.user.name == user && l.token.is_active(now_ms()))
        else {
            return Ok(None);
        };
        record_use(meta, login.token.last_used_at_ms, login.token.id, false);
        Ok(Some(Login {
            kind: PrincipalKind::User,
            name: login.user.name,
            credential: Credential::AccessToken { id: login.token.id },
            expires_at_ms: login.token.expires_at_ms,
        }))
    }

    /// Decides whether `caller` may do `action` on `repository` (with `tag`).
    pub fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        repository: Option<&str>,
        tag: TagContext<'_>,
    ) -> Verdict {
        let snapshot = self.snapshot();
        if action == Action::Catalog {
            return self.authorize_for_token(&snapshot, caller, action, repository);
        }
        if caller.principal.kind == PrincipalKind::Anonymous {
            let public = matches!(action, Action::Pull | Action::ListTags)
                && repository.is_some_and(|r| snapshot.public.contains(r));
            return if public {
                Verdict::Allow
            } else {
                Verdict::Challenge {
                    message: "authentication required".into(),
                }
            };
        }
        let decision = self.decide(&snapshot, caller, action, repository, tag);
        if !decision.is_allowed() {
            return Verdict::Deny { decision };
        }
        if let Some(claims) = &caller.claims
            && !claims.permits(action, repository)
        {
            return Verdict::InsufficientScope {
                message: format!(
                    "the token does not cover {action}; request a token with the scope in the WWW-Authenticate header"
                ),
            };
        }
        Verdict::Allow
    }

    /// The decision itself, for `explain` and for tokens.
    pub fn decide(
        &self,
        snapshot: &Snapshot,
        caller: &Caller,
        action: Action,
        repository: Option<&str>,
        tag: TagContext<'_>,
    ) -> Decision {
        let inputs = snapshot.authorizer.inputs_used();
        let cacheable = !inputs.time && !inputs.source_ip && !inputs.secure_transport;
        let key = cacheable.then(|| DecisionKey {
            kind: caller.principal.kind,
            name: caller.principal.name.clone(),
            action,
            repository: repository.map(str::to_owned),
            tag: match tag {
                TagContext::Tag(t) if inputs.tag => Some(t.to_owned()),
                TagContext::Unknown => Some("\0unknown".to_owned()),
                _ => None,
            },
        });
        if let Some(key) = &key
            && let Some((rev, d)) = self.decisions.get(key)
            && rev == snapshot.revision
        {
            return d;
        }
        let labels = repository.map_or_else(|| snapshot.labels(""), |r| snapshot.labels(r));
        let mut request = Request::new(&caller.principal, action, repository, SystemTime::now())
            .with_tag_context(tag)
            .with_labels(labels)
            .with_secure_transport(caller.secure);
        if let Some(ip) = caller.ip {
            request = request.with_source_ip(ip);
        }
        let decision = snapshot.authorizer.evaluate(&request);
        if let Some(key) = key {
            self.decisions
                .insert(key, (snapshot.revision, decision.clone()));
        }
        decision
    }

    /// Issues a token for the requested scopes, each narrowed to what the caller may do.
    pub fn issue(
        &self,
        caller: &Caller,
        scope: &str,
        offline: bool,
    ) -> Result<TokenResponse, ApiError> {
        let parsed = parse_scopes(scope, &Default::default());
        let snapshot = self.snapshot();
        let mut access: Vec<ResourceActions> = Vec::new();
        for s in &parsed.scopes {
            let repo = s.repository_name();
            let granted = s.grant(|action| {
                matches!(
                    self.authorize_for_token(&snapshot, caller, action, repo),
                    Verdict::Allow
                )
            });
            access.extend(granted);
        }
        let now = SystemTime::now();
        let token = self
            .issuer
            .issue_access(&caller.principal, access, now)
            .map_err(|e| ApiError::internal("issuing a token", &e))?;
        // Only a caller who presented a credential gets a refresh token, bound to it.
        let refresh = match (&caller.credential, offline) {
            (Some(credential), true) => Some(
                self.issuer
                    .issue_refresh(&caller.principal, &credential.claim(), now)
                    .map_err(|e| ApiError::internal("issuing a refresh token", &e))?,
            ),
            _ => None,
        };
        TokenResponse::new(&token, refresh.as_ref())
            .map_err(|e| ApiError::internal("encoding a token", &e))
    }

    fn authorize_for_token(
        &self,
        snapshot: &Snapshot,
        caller: &Caller,
        action: Action,
        repo: Option<&str>,
    ) -> Verdict {
        if action == Action::Catalog {
            // Any signed-in caller may list; the listing shows only what they may pull.
            return if caller.principal.kind == PrincipalKind::Anonymous {
                Verdict::Challenge {
                    message: String::new(),
                }
            } else {
                Verdict::Allow
            };
        }
        if caller.principal.kind == PrincipalKind::Anonymous {
            let public = matches!(action, Action::Pull | Action::ListTags)
                && repo.is_some_and(|r| snapshot.public.contains(r));
            return if public {
                Verdict::Allow
            } else {
                Verdict::Challenge {
                    message: String::new(),
                }
            };
        }
        let decision = self.decide(snapshot, caller, action, repo, TagContext::Unknown);
        if decision.is_allowed() {
            Verdict::Allow
        } else {
            Verdict::Deny { decision }
        }
    }

    /// A caller from a refresh token (token endpoint, `grant_type=refresh_token`),
    /// whose principal is still active and whose credential still stands.
    pub async fn refresh_caller(
        &self,
        meta: &MetaStore,
        token: &str,
        ip: Option<IpAddr>,
        secure: bool,
    ) -> Result<Caller, AuthFailure> {
        let claims = self
            .verifier
            .verify_refresh(token, SystemTime::now())
            .map_err(|e| AuthFailure {
                error: unauthorized(&format!("invalid refresh token ({e}); log in again")),
                username: None,
                method: AuthMethod::RefreshToken,
            })?;
        let principal = self
            .active_principal(claims.ward_kind, &claims.sub)
            .ok_or_else(|| AuthFailure {
                error: unauthorized("the account is disabled, revoked or gone; log in again"),
                username: Some(claims.sub.clone()),
                method: AuthMethod::RefreshToken,
            })?;
        let revoked = || AuthFailure {
            error: unauthorized(
                "the credential this refresh token was issued for is revoked, expired or \
                 changed; log in again",
            ),
            username: Some(claims.sub.clone()),
            method: AuthMethod::RefreshToken,
        };
        let credential = Credential::from_claim(&claims.ward_cred).ok_or_else(revoked)?;
        let kind_matches = matches!(
            (&credential, claims.ward_kind),
            (Credential::Robot { .. }, PrincipalKind::Robot)
                | (
                    Credential::Password { .. } | Credential::AccessToken { .. },
                    PrincipalKind::User
                )
        );
        let valid = kind_matches
            && credential
                .still_valid(meta, &claims.sub)
                .await
                .map_err(|error| AuthFailure {
                    error,
                    username: Some(claims.sub.clone()),
                    method: AuthMethod::RefreshToken,
                })?;
        if !valid {
            return Err(revoked());
        }
        Ok(Caller {
            method: AuthMethod::RefreshToken,
            credential: Some(credential),
            ..Caller::detached(principal, ip)
        }
        .over_tls(secure))
    }

    /// The `WWW-Authenticate` challenge for a request needing `scope`.
    pub fn challenge(&self, headers: &HeaderMap, secure: bool, scope: Option<&str>) -> String {
        let realm = format!("{}/token", self.base_url(headers, secure));
        let mut value = format!(
            "Bearer realm=\"{realm}\",service=\"{}\"",
            self.config.service
        );
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        value
    }

    /// The challenge for a token that lacks the scope an endpoint needs.
    pub fn insufficient_scope_challenge(
        &self,
        headers: &HeaderMap,
        secure: bool,
        scope: &str,
    ) -> String {
        let mut value = self.challenge(headers, secure, Some(scope));
        value.push_str(",error=\"insufficient_scope\"");
        value
    }

    fn base_url(&self, headers: &HeaderMap, secure: bool) -> String {
        if !self.config.public_url.is_empty() {
            return self.config.public_url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{}://{host}", if secure { "https" } else { "http" })
    }
}

/// Notes when a robot secret or access token was last used, off the request
/// path and only when the stored time is stale (it is minute-grained anyway).
fn record_use(meta: &MetaStore, last_used_at_ms: Option<i64>, id: i64, robot: bool) {
    let now = now_ms();
    if last_used_at_ms.is_some_and(|t| now - t < ward_store::meta::LAST_USE_RESOLUTION_MS) {
        return;
    }
    let meta = meta.clone();
    tokio::spawn(async move {
        let result = if robot {
            meta.record_robot_use(id, now).await
        } else {
            meta.record_access_token_use(id, now).await
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "recording last use failed");
        }
    });
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The 403 for a valid token issued for less than the request needs; its
/// challenge names the scope to ask for.
pub fn insufficient_scope_error(
    access: &AccessControl,
    headers: &HeaderMap,
    secure: bool,
    scope: &str,
    message: &str,
) -> ApiError {
    ApiError::new(ErrorCode::Denied, message.to_owned()).with_header(
        header::WWW_AUTHENTICATE,
        access.insufficient_scope_challenge(headers, secure, scope),
    )
}

/// The 401 for a request that needs credentials.
pub fn challenge_error(
    access: &AccessControl,
    headers: &HeaderMap,
    secure: bool,
    scope: Option<&str>,
    message: &str,
) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message.to_owned())
        .with_status(StatusCode::UNAUTHORIZED)
        .with_header(
            header::WWW_AUTHENTICATE,
            access.challenge(headers, secure, scope),
        )
}

/// Decodes `base64(user:secret)`.
fn decode_basic(encoded: &str) -> Option<(String, SecretString)> {
    let bytes = base64_decode(encoded)?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, secret) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), SecretString::from(secret)))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}
