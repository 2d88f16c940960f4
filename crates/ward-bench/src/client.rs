//! A small OCI Distribution client with Docker token authentication.
//!
//! Authentication follows what docker and containerd do: a request answered `401` with
//! `WWW-Authenticate: Bearer realm=..,service=..,scope=..` is followed by a `GET` of the
//! realm (with HTTP Basic credentials, when given) for a bearer token, and the request is
//! sent again with it. `Basic` challenges are answered with the credentials directly.
//! The resulting `Authorization` header is cached and reused by every request, and
//! refreshed once, by whichever request meets the next `401` first.

use std::fmt;
use std::sync::Mutex;

use base64ct::{Base64, Encoding as _};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::blobgen::{ReqBody, Sha256Digest};
use crate::challenge::{self, Challenge};
use crate::error::BenchError;

/// Bytes of an error or token response kept; registries answer errors in a few hundred.
pub const SMALL_BODY_BYTES_MAX: usize = 64 * 1024;
/// Bytes of a response body quoted in an error message.
const ERROR_BODY_QUOTED_BYTES_MAX: usize = 512;

/// A user name and password; the password never appears in `Debug` output.
#[derive(Clone)]
pub struct Credentials {
    /// The user (or robot) name.
    pub user: String,
    password: String,
}

impl Credentials {
    /// Credentials for `user`.
    pub fn new(user: String, password: String) -> Self {
        Self { user, password }
    }

    fn basic_header(&self) -> Result<HeaderValue, BenchError> {
        let encoded = Base64::encode_string(format!("{}:{}", self.user, self.password).as_bytes());
        sensitive_header(&format!("Basic {encoded}"))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How the registry wanted to be authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No challenge: the registry is open.
    None,
    /// HTTP Basic on every request.
    Basic,
    /// Bearer tokens from the registry's token endpoint.
    Bearer,
}

struct CachedAuth {
    header: Option<HeaderValue>,
    generation: u64,
    mode: AuthMode,
}

/// A registry at one origin, with its connection pool and cached credentials.
pub struct Registry {
    origin: String,
    authority: http::uri::Authority,
    http: Client<HttpConnector, ReqBody>,
    credentials: Option<Credentials>,
    auth: Mutex<CachedAuth>,
    refresh: tokio::sync::Mutex<()>,
}

impl Registry {
    /// A client of the registry at `url` (`http://host:port`), keeping up to
    /// `idle_connections_max` keep-alive connections.
    pub fn new(
        url: &str,
        credentials: Option<Credentials>,
        idle_connections_max: usize,
    ) -> Result<Self, BenchError> {
        let uri: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| BenchError::Invalid(format!("registry URL {url:?}: {e}")))?;
        check_plain_http(&uri, "registry URL")?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| BenchError::Invalid(format!("registry URL {url:?} has no host:port")))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle_connections_max)
            .build(connector);
        Ok(Self {
            origin: format!("http://{authority}"),
            authority,
            http,
            credentials,
            auth: Mutex::new(CachedAuth {
                header: None,
                generation: 0,
                mode: AuthMode::None,
            }),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// `http://host:port`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `host:port`.
    pub fn authority(&self) -> &http::uri::Authority {
        &self.authority
    }

    /// How the registry authenticated the last challenge.
    pub fn auth_mode(&self) -> AuthMode {
        self.auth.lock().map_or(AuthMode::None, |a| a.mode)
    }

    /// Answers the challenge of a `401` met outside [`Registry::send`] (by the raw
    /// manifest-GET connections), unless the credentials changed since `seen_generation`.
    pub async fn reauthenticate(
        &self,
        challenge_headers: &HeaderMap,
        seen_generation: u64,
    ) -> Result<(), BenchError> {
        self.answer_challenge(challenge_headers, seen_generation, None)
            .await
    }

    /// The current `Authorization` header and its generation (bumped on each refresh).
    pub fn cached(&self) -> (Option<HeaderValue>, u64) {
        self.auth
            .lock()
            .map_or((None, 0), |a| (a.header.clone(), a.generation))
    }

    /// Authenticates up front for `scope` (`repository:<name>:pull,push`), so that the
    /// timed requests carry a token already: `GET /v2/`, and if it is challenged,
    /// answers the challenge asking for `scope` (the version check's challenge has none).
    pub async fn login(&self, scope: &str) -> Result<AuthMode, BenchError> {
        let url = format!("{}/v2/", self.origin);
        let response = self
            .send_once(Method::GET, &url, &[], ReqBody::Empty, None)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            self.answer_challenge(response.headers(), self.cached().1, Some(scope))
                .await?;
            let retry = self.send(Method::GET, &url, &[], || ReqBody::Empty).await?;
            expect(
                retry,
                StatusCode::OK,
                &format!("GET {url} after authenticating"),
            )
            .await?;
        } else {
            expect(response, StatusCode::OK, &format!("GET {url}")).await?;
        }
        Ok(self.auth_mode())
    }

    /// `GET /v2/` without credentials; any status means the registry is up.
    pub async fn probe(&self) -> Result<StatusCode, BenchError> {
        let url = format!("{}/v2/", self.origin);
        let response = self
            .send_once(Method::GET, &url, &[], ReqBody::Empty, None)
            .await?;
        Ok(response.status())
    }

    /// Sends a request with the cached credentials; on `401`, answers the challenge and
    /// sends it once more with a fresh `body()`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, &str)],
        body: impl Fn() -> ReqBody,
    ) -> Result<Response<Incoming>, BenchError> {
        // Credentials go to the registry's origin only, never to a redirect target.
        if !is_same_origin(url, &self.origin) {
            return self.send_once(method, url, headers, body(), None).await;
        }
        let (auth, generation) = self.cached();
        let response = self
            .send_once(method.clone(), url, headers, body(), auth)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.answer_challenge(response.headers(), generation, None)
            .await?;
        self.send_once(method, url, headers, body(), self.cached().0)
            .await
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, &str)],
        body: ReqBody,
        auth: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, BenchError> {
        let what = format!("{method} {url}");
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = request
            .body(body)
            .map_err(|e| BenchError::Invalid(format!("{what}: cannot build the request: {e}")))?;
        self.http
            .request(request)
            .await
            .map_err(|e| BenchError::transport(&what, &e))
    }

    /// Answers the challenges of a `401`, unless another request already refreshed the
    /// credentials since `seen_generation` (then those are used).
    async fn answer_challenge(
        &self,
        headers: &HeaderMap,
        seen_generation: u64,
        scope: Option<&str>,
    ) -> Result<(), BenchError> {
        let _single_flight = self.refresh.lock().await;
        if self.cached().1 != seen_generation {
            return Ok(());
        }
        let challenges = read_challenges(headers)?;
        let (header, mode) = if let Some(bearer) = challenges.iter().find(|c| c.is("Bearer")) {
            (self.fetch_token(bearer, scope).await?, AuthMode::Bearer)
        } else if challenges.iter().any(|c| c.is("Basic")) {
            let credentials = self.credentials.as_ref().ok_or_else(|| {
                BenchError::Auth(
                    "the registry asks for HTTP Basic credentials; pass --user and --password"
                        .into(),
                )
            })?;
            (credentials.basic_header()?, AuthMode::Basic)
        } else {
            return Err(BenchError::Auth(format!(
                "the registry answered 401 without a Bearer or Basic challenge (got {challenges:?})"
            )));
        };
        if let Ok(mut cached) = self.auth.lock() {
            *cached = CachedAuth {
                header: Some(header),
                generation: cached.generation + 1,
                mode,
            };
        }
        Ok(())
    }

    /// Gets a bearer token from the challenge's realm for `scope` (or the challenge's own).
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: Option<&str>,
    ) -> Result<HeaderValue, BenchError> {
        let url = token_url(challenge, scope)?;
        let auth = self
            .credentials
            .as_ref()
            .map(Credentials::basic_header)
            .transpose()?;
        let response = self
            .send_once(Method::GET, &url, &[], ReqBody::Empty, auth)
            .await?;
        let status = response.status();
        let body = read_limited(response.into_body(), SMALL_BODY_BYTES_MAX).await?;
        if status != StatusCode::OK {
            let hint = if self.credentials.is_none() {
                " (no --user/--password given)"
            } else {
                ""
            };
            return Err(BenchError::Auth(format!(
                "token endpoint {} answered {status}{hint}: {}",
                url.split('?').next().unwrap_or(&url),
                quote_body(&body)
            )));
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            BenchError::Auth(format!("token endpoint answered unreadable JSON: {e}"))
        })?;
        let token = token.token.or(token.access_token).ok_or_else(|| {
            BenchError::Auth("token endpoint answered neither `token` nor `access_token`".into())
        })?;
        sensitive_header(&format!("Bearer {token}"))
    }

    /// `POST /v2/<repo>/blobs/uploads/`; returns the absolute upload URL.
    pub async fn start_upload(&self, repo: &str) -> Result<String, BenchError> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.origin);
        let response = self
            .send(Method::POST, &url, &[], || ReqBody::Empty)
            .await?;
        let response = expect(response, StatusCode::ACCEPTED, &format!("POST {url}")).await?;
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                BenchError::Invalid(format!("POST {url}: 202 without a usable Location header"))
            })?;
        resolve_location(&self.origin, location)
    }

    /// Pushes a blob monolithically: `POST` to open the upload, then one `PUT ?digest=`
    /// carrying the whole body, which `body()` produces (again, if authentication retries).
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Sha256Digest,
        size_bytes: u64,
        body: impl Fn() -> ReqBody,
    ) -> Result<(), BenchError> {
        let location = self.start_upload(repo).await?;
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{separator}digest={}",
            query_escape(&digest.to_string())
        );
        let length = size_bytes.to_string();
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_LENGTH, length.as_str()),
        ];
        let response = self.send(Method::PUT, &url, &headers, body).await?;
        let response = expect(response, StatusCode::CREATED, &format!("PUT {location}")).await?;
        check_digest_header(response.headers(), digest, "blob upload")
    }

    /// Pulls a blob, hashing it as it streams in; returns the length and digest received.
    pub async fn pull_blob(
        &self,
        repo: &str,
        digest: &Sha256Digest,
    ) -> Result<(u64, Sha256Digest), BenchError> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.origin);
        let mut response = self.send(Method::GET, &url, &[], || ReqBody::Empty).await?;
        if response.status().is_redirection() {
            // Registries on object storage redirect to a presigned URL: follow one hop.
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let target = resolve_location(&self.origin, location.unwrap_or_default())?;
            response = self
                .send(Method::GET, &target, &[], || ReqBody::Empty)
                .await?;
        }
        let response = expect(response, StatusCode::OK, &format!("GET {url}")).await?;
        let mut body = response.into_body();
        let mut hasher = Sha256::new();
        let mut received_bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| BenchError::transport(format!("GET {url} (body)"), &e))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                received_bytes += data.len() as u64;
            }
        }
        Ok((received_bytes, Sha256Digest::from_hasher(hasher)))
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the given media type.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &Bytes,
    ) -> Result<(), BenchError> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.origin);
        let headers = [(header::CONTENT_TYPE, media_type)];
        let response = self
            .send(Method::PUT, &url, &headers, || {
                ReqBody::full(manifest.clone())
            })
            .await?;
        let response = expect(response, StatusCode::CREATED, &format!("PUT {url}")).await?;
        check_digest_header(
            response.headers(),
            &Sha256Digest::of(manifest),
            "manifest upload",
        )
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

fn read_challenges(headers: &HeaderMap) -> Result<Vec<Challenge>, BenchError> {
    let mut challenges = Vec::new();
    let mut problems = Vec::new();
    for value in headers.get_all(header::WWW_AUTHENTICATE) {
        let parsed = challenge::parse(&String::from_utf8_lossy(value.as_bytes()));
        challenges.extend(parsed.challenges);
        problems.extend(parsed.problems);
    }
    if challenges.is_empty() {
        return Err(BenchError::Auth(format!(
            "the registry answered 401 without a readable WWW-Authenticate header ({problems:?})"
        )));
    }
    Ok(challenges)
}

/// The token request URL: the realm with `service` and `scope` added to its query.
pub fn token_url(challenge: &Challenge, scope: Option<&str>) -> Result<String, BenchError> {
    let realm = challenge.param("realm").ok_or_else(|| {
        BenchError::Auth(format!("Bearer challenge without a realm: {challenge:?}"))
    })?;
    let uri: Uri = realm
        .parse()
        .map_err(|e| BenchError::Auth(format!("token realm {realm:?} is not a URL: {e}")))?;
    check_plain_http(&uri, "token realm")?;
    let mut url = realm.to_owned();
    let mut separator = if realm.contains('?') { '&' } else { '?' };
    let params = [
        ("service", challenge.param("service")),
        ("scope", scope.or(challenge.param("scope"))),
    ];
    for (name, value) in params {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            url.push(separator);
            url.push_str(name);
            url.push('=');
            url.push_str(&query_escape(value));
            separator = '&';
        }
    }
    Ok(url)
}

fn check_plain_http(uri: &Uri, what: &str) -> Result<(), BenchError> {
    match uri.scheme_str() {
        Some("http") => Ok(()),
        other => Err(BenchError::Invalid(format!(
            "{what} {uri} uses scheme {other:?}; ward-bench speaks plain http only (benchmark on loopback)"
        ))),
    }
}

fn is_same_origin(url: &str, origin: &str) -> bool {
    url.strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An absolute URL for a `Location` header, which may be absolute or origin-relative.
pub fn resolve_location(origin: &str, location: &str) -> Result<String, BenchError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_owned());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        return Ok(format!("{origin}{location}"));
    }
    Err(BenchError::Invalid(format!(
        "cannot follow Location {location:?}: expected an absolute URL or a path"
    )))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn sensitive_header(value: &str) -> Result<HeaderValue, BenchError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        BenchError::Auth("credentials or token contain characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn check_digest_header(
    headers: &HeaderMap,
    digest: &Sha256Digest,
    what: &str,
) -> Result<(), BenchError> {
    let Some(announced) = headers.get("docker-content-digest") else {
        return Ok(());
    };
    let expected = digest.to_string();
    if announced.as_bytes() == expected.as_bytes() {
        return Ok(());
    }
    Err(BenchError::DigestMismatch {
        what: format!("{what} (Docker-Content-Digest)"),
        expected,
        actual: String::from_utf8_lossy(announced.as_bytes()).into_owned(),
    })
}

/// Passes the response through if its status is `expected`, else reads the start of the
/// body into an error.
pub async fn expect(
    response: Response<Incoming>,
    expected: StatusCode,
    what: &str,
) -> Result<Response<Incoming>, BenchError> {
    if response.status() == expected {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = read_limited(response.into_body(), ERROR_BODY_QUOTED_BYTES_MAX)
        .await
        .unwrap_or_default();
    Err(BenchError::Status {
        what: what.to_owned(),
        expected: expected.as_u16(),
        status,
        body: quote_body(&body),
    })
}

/// Reads a body, keeping at most `bytes_max` bytes (the rest is read and dropped so the
/// connection can be reused).
pub async fn read_limited(mut body: Incoming, bytes_max: usize) -> Result<Bytes, BenchError> {
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BenchError::transport("reading a response body", &e))?;
        if let Ok(data) = frame.into_data() {
            let room = bytes_max.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Bytes::from(kept))
}

fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_QUOTED_BYTES_MAX)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty)".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: "Bearer".into(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            token68: None,
        }
    }

    #[test]
    fn token_urls_carry_service_and_the_requested_scope() {
        let challenge = bearer(&[
            ("realm", "http://127.0.0.1:5001/token"),
            ("service", "ward registry"),
            ("scope", "repository:a/b:pull"),
        ]);
        let cases = [
            (
                None,
                "http://127.0.0.1:5001/token?service=ward%20registry&scope=repository%3Aa%2Fb%3Apull",
            ),
            (
                Some("repository:x:pull,push"),
                "http://127.0.0.1:5001/token?service=ward%20registry&scope=repository%3Ax%3Apull%2Cpush",
            ),
        ];
        for (scope, expected) in cases {
            assert_eq!(token_url(&challenge, scope).unwrap(), expected);
        }
        let with_query = bearer(&[("realm", "http://h:1/auth?account=x")]);
        assert_eq!(
            token_url(&with_query, Some("s")).unwrap(),
            "http://h:1/auth?account=x&scope=s"
        );
    }

    #[test]
    fn token_urls_refuse_what_cannot_be_fetched() {
        for params in [
            vec![],
            vec![("realm", "https://auth.example/token")],
            vec![("realm", "not a url")],
        ] {
            assert!(token_url(&bearer(&params), None).is_err(), "{params:?}");
        }
    }

    #[test]
    fn locations_resolve_against_the_origin() {
        let origin = "http://127.0.0.1:5000";
        let cases = [
            (
                "/v2/a/blobs/uploads/u?_state=x",
                Ok("http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x"),
            ),
            ("http://other:1/v2/a", Ok("http://other:1/v2/a")),
            ("//evil/x", Err(())),
            ("v2/relative", Err(())),
            ("", Err(())),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve_location(origin, location).map_err(|_| ()),
                expected.map(str::to_owned),
                "{location}"
            );
        }
    }

    #[test]
    fn same_origin_requires_a_path_boundary() {
        assert!(is_same_origin(
            "http://127.0.0.1:5000/v2/",
            "http://127.0.0.1:5000"
        ));
        assert!(!is_same_origin(
            "http://127.0.0.1:50001/v2/",
            "http://127.0.0.1:5000"
        ));
    }

    #[test]
    fn basic_credentials_are_encoded_and_hidden() {
        let credentials = Credentials::new("ci".into(), "s3cret:x".into());
        let header = credentials.basic_header().unwrap();
        assert_eq!(header.to_str().unwrap(), "Basic Y2k6czNjcmV0Ong=");
        assert!(header.is_sensitive());
        assert!(!format!("{credentials:?}").contains("s3cret"));
    }
}
