//! Docker Registry v2 token authentication: access and refresh JWTs.
//!
//! Access tokens follow the Docker token spec: claims `iss`, `sub`, `aud`
//! (the registry `service`), `exp`, `nbf`, `iat`, `jti` and
//! `access: [{type, name, actions}]`, plus `ward_kind` (user, robot or
//! anonymous) so the server can evaluate policies again per request.
//! Refresh tokens (for `offline_token=true` and the OAuth2 `refresh_token`
//! grant) are a different kind: their header `typ` differs, their audience is
//! the issuer (the token endpoint) and their claims have no `access`, so
//! neither can pass for the other.
//!
//! Both are signed with ES256 by the server's [`SigningKey`]; verification
//! accepts exactly that algorithm, requires a `kid` naming a known key
//! (several are kept during rotation), and checks `iss`, `aud`, `exp`, `nbf`
//! and `iat` with a small configurable leeway.
//!
//! The compact serialisation is implemented here, over `p256` and `base64ct`,
//! rather than taken from a general JWT crate: a verifier that knows one
//! algorithm has no algorithm switch to confuse. `alg` is compared with
//! `ES256` as a string and never selects a key type, so `none`, and `HS256`
//! keyed with the public key, are just unknown values; there is no HMAC code
//! at all. Unknown header members (`jwk`, `jku`, `x5u`, `crit`, ...) are
//! refused, signatures must be the 64-byte low-S form, and claims are parsed
//! only after the signature over the exact received bytes has verified.

mod jws;
pub mod key;

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use key::{Jwk, KeyError, KeyOrigin, SigningKey, VerifyingKey};

use crate::echo::Echo;
use crate::identity::{Principal, PrincipalKind};
use crate::policy::Action;
use crate::scope::{ResourceActions, access_permits};
use crate::secret::SecretString;

/// Access or refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Presented to the registry on every request.
    Access,
    /// Presented to the token endpoint to get a new access token.
    Refresh,
}

impl TokenKind {
    /// The JWS header `typ`.
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => "JWT",
            TokenKind::Refresh => "ward-refresh+jwt",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Access => "an access token",
            TokenKind::Refresh => "a refresh token",
        })
    }
}

/// Why a token was not issued or not accepted. Messages never include the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Longer than the limit.
    #[error("token is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a well-formed compact JWS or claim set.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not ES256 (including `none` and `HS256`).
    #[error("token algorithm {0} is not accepted; only ES256 is")]
    UnsupportedAlgorithm(Echo),
    /// An access token where a refresh token was expected, or the reverse.
    #[error("wrong kind of token: expected {expected}")]
    WrongType {
        /// What was expected.
        expected: TokenKind,
    },
    /// `kid` names no key this server trusts.
    #[error("token signed by unknown key {0}")]
    UnknownKey(Echo),
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` is not this server.
    #[error("token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not this service.
    #[error("token is meant for another audience")]
    WrongAudience,
    /// Past `exp` (plus leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` or `iat` (minus leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// Refusing to issue: e.g. a refresh token for an anonymous caller.
    #[error("cannot issue {0}")]
    Refused(&'static str),
    /// Serialising or signing failed.
    #[error("could not encode token: {0}")]
    Encoding(String),
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Token settings shared by issuer and verifier.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// `iss` of every token, e.g. `https://registry.example.com` or `ward`.
    pub issuer: String,
    /// `aud` of access tokens: the `service` in the `WWW-Authenticate` challenge.
    pub service: String,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Largest token issued or accepted, in bytes.
    pub token_bytes_max: usize,
}

impl TokenConfig {
    /// Defaults for an issuer/service pair: 5-minute access tokens, 30-day
    /// refresh tokens, 30 s leeway, 8 KiB tokens.
    pub fn new(issuer: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            service: service.into(),
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            leeway: Duration::from_secs(30),
            token_bytes_max: 8 * 1024,
        }
    }
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user or robot name (empty for anonymous callers).
    pub sub: String,
    /// Audience: the registry service.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// What the token allows: what was asked, intersected with what was permitted.
    pub access: Vec<ResourceActions>,
    /// What kind of principal `sub` is.
    pub ward_kind: PrincipalKind,
}

impl AccessClaims {
    /// Whether the token covers `action` on `repository` (`None`: registry-wide).
    /// The request must still be authorized with its tag and labels.
    pub fn permits(&self, action: Action, repository: Option<&str>) -> bool {
        access_permits(&self.access, action, repository)
    }
}

/// The claims of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshClaims {
    /// Issuer.
    pub iss: String,
    /// The user or robot name.
    pub sub: String,
    /// Audience: the issuer itself (the token endpoint).
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique id: the server records it to revoke refresh tokens.
    pub jti: String,
    /// What kind of principal `sub` is.
    pub ward_kind: PrincipalKind,
    /// The credential the holder signed in with, as the server spells it: the
    /// token must stop working when that credential is revoked or changed.
    /// Empty in tokens issued before it was recorded.
    #[serde(default)]
    pub ward_cred: String,
}

/// A freshly signed token.
#[derive(Debug)]
pub struct IssuedToken {
    /// The compact JWS; a bearer credential.
    pub token: SecretString,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`.
    pub issued_at: SystemTime,
    /// Its `exp`.
    pub expires_at: SystemTime,
}

impl IssuedToken {
    /// Lifetime from issue to expiry.
    pub fn expires_in(&self) -> Duration {
        self.expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default()
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn new_jti() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}

/// Signs access and refresh tokens.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    config: TokenConfig,
}

impl TokenIssuer {
    /// An issuer signing with `key`.
    pub fn new(key: SigningKey, config: TokenConfig) -> Self {
        Self { key, config }
    }

    /// The settings.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// A verifier for this issuer's tokens, also trusting `retired` keys (rotation).
    pub fn verifier(&self, retired: impl IntoIterator<Item = VerifyingKey>) -> TokenVerifier {
        let current = std::iter::once(self.key.verifying_key().clone());
        TokenVerifier::new(&self.config, current.chain(retired))
    }

    /// An access token for `principal` carrying `access` (already intersected
    /// with what the principal may do).
    pub fn issue_access(
        &self,
        principal: &Principal,
        access: Vec<ResourceActions>,
        now: SystemTime,
    ) -> Result<IssuedToken, TokenError> {
        let (iat, exp) = self.window(now, self.config.access_ttl);
        let jti = new_jti()?;
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: principal.name.clone(),
            aud: self.config.service.clone(),
            exp,
            nbf: iat,
            iat,
            jti: jti.clone(),
            access,
            ward_kind: principal.kind,
        };
        self.sign(TokenKind::Access, &claims, jti, now, self.config.access_ttl)
    }

    /// A refresh token for an authenticated principal.
    pub fn issue_refresh(
        &self,
        principal: &Principal,
        credential: &str,
        now: SystemTime,
    ) -> Result<IssuedToken, TokenError> {
        if principal.kind == PrincipalKind::Anonymous {
            return Err(TokenError::Refused(
                "a refresh token to an anonymous caller",
            ));
        }
        let (iat, exp) = self.window(now, self.config.refresh_ttl);
        let jti = new_jti()?;
        let claims = RefreshClaims {
            iss: self.config.issuer.clone(),
            sub: principal.name.clone(),
            aud: self.config.issuer.clone(),
            exp,
            nbf: iat,
            iat,
            jti: jti.clone(),
            ward_kind: principal.kind,
            ward_cred: credential.to_owned(),
        };
        self.sign(
            TokenKind::Refresh,
            &claims,
            jti,
            now,
            self.config.refresh_ttl,
        )
    }

    fn window(&self, now: SystemTime, ttl: Duration) -> (i64, i64) {
        let iat = unix_seconds(now);
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        (iat, iat.saturating_add(ttl))
    }

    fn sign(
        &self,
        kind: TokenKind,
        claims: &impl Serialize,
        jti: String,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<IssuedToken, TokenError> {
        let payload =
            serde_json::to_vec(claims).map_err(|e| TokenError::Encoding(e.to_string()))?;
        let token = jws::sign(&self.key, kind, &payload)?;
        if token.len() > self.config.token_bytes_max {
            // Never hand out a token our own verifier would refuse.
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: self.config.token_bytes_max,
            });
        }
        let issued_at =
            UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_seconds(now)).unwrap_or(0));
        Ok(IssuedToken {
            token: SecretString::new(token),
            jti,
            issued_at,
            expires_at: issued_at + ttl,
        })
    }
}

/// Verifies tokens strictly. Build one at startup (and after key rotation)
/// and share it; it holds a small map of public keys by `kid`.
#[derive(Clone, Debug)]
pub struct TokenVerifier {
    keys: HashMap<String, VerifyingKey>,
    issuer: String,
    service: String,
    leeway_secs: i64,
    token_bytes_max: usize,
}

/// The time claims every token carries.
trait TimeClaims {
    fn times(&self) -> (i64, i64, i64);
}

impl TimeClaims for AccessClaims {
    fn times(&self) -> (i64, i64, i64) {
        (self.exp, self.nbf, self.iat)
    }
}

impl TimeClaims for RefreshClaims {
    fn times(&self) -> (i64, i64, i64) {
        (self.exp, self.nbf, self.iat)
    }
}

impl TokenVerifier {
    /// A verifier trusting `keys` (the current one and any retired ones).
    pub fn new(config: &TokenConfig, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.kid().to_owned(), k)).collect(),
            issuer: config.issuer.clone(),
            service: config.service.clone(),
            leeway_secs: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
            token_bytes_max: config.token_bytes_max,
        }
    }

    /// Verifies an access token presented as `Authorization: Bearer <token>`.
    pub fn verify_access(&self, token: &str, now: SystemTime) -> Result<AccessClaims, TokenError> {
        let claims: AccessClaims = self.verify(token, TokenKind::Access)?;
        self.check_claims(&claims.iss, &claims.aud, &self.service, &claims, now)?;
        Ok(claims)
    }

    /// Verifies a refresh token presented to the token endpoint. The caller
    /// must still check that its `jti` is not revoked and its subject is active.
    pub fn verify_refresh(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<RefreshClaims, TokenError> {
        let claims: RefreshClaims = self.verify(token, TokenKind::Refresh)?;
        self.check_claims(&claims.iss, &claims.aud, &self.issuer, &claims, now)?;
        Ok(claims)
    }

    fn verify<T: DeserializeOwned>(&self, token: &str, kind: TokenKind) -> Result<T, TokenError> {
        let payload = jws::verify(token, kind, &self.keys, self.token_bytes_max)?;
        serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("claims are not those of this token kind"))
    }

    fn check_claims(
        &self,
        iss: &str,
        aud: &str,
        expected_aud: &str,
        claims: &impl TimeClaims,
        now: SystemTime,
    ) -> Result<(), TokenError> {
        if iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if aud != expected_aud {
            return Err(TokenError::WrongAudience);
        }
        let (exp, nbf, iat) = claims.times();
        let now = unix_seconds(now);
        if exp <= nbf {
            return Err(TokenError::Malformed("exp is not after nbf"));
        }
        if now >= exp.saturating_add(self.leeway_secs) {
            return Err(TokenError::Expired);
        }
        let latest_start = now.saturating_add(self.leeway_secs);
        if nbf > latest_start || iat > latest_start {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// The JSON body of a token endpoint response (Docker token spec and its
/// OAuth2 variant). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub token: String,
    /// The same token, for OAuth2 clients.
    #[serde(default)]
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When it was issued, RFC 3339.
    pub issued_at: String,
    /// A refresh token, when `offline_token=true` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The response for an access token and an optional refresh token.
    pub fn new(access: &IssuedToken, refresh: Option<&IssuedToken>) -> Result<Self, TokenError> {
        let issued_at = OffsetDateTime::from(access.issued_at)
            .format(&Rfc3339)
            .map_err(|e| TokenError::Encoding(e.to_string()))?;
        Ok(Self {
            token: access.token.expose().to_owned(),
            access_token: access.token.expose().to_owned(),
            expires_in: access.expires_in().as_secs(),
            issued_at,
            refresh_token: refresh.map(|r| r.token.expose().to_owned()),
        })
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}
