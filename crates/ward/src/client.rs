//! A small OCI Distribution client: what `ward push`, `pull`, `sign` and
//! `gate` need, with Basic and Docker token authentication.

use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::Stream;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use ward_core::media;
use ward_core::name::{Reference, RepositoryName};
use ward_core::{Digest, digest::Hasher};

/// A user name and a secret (password, robot secret or access token).
#[derive(Clone)]
pub struct Credentials {
    /// User or robot name.
    pub username: String,
    /// The secret; never printed.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, [redacted])", self.username)
    }
}

/// One registry, reached over HTTP(S).
pub struct Registry {
    http: Client,
    base: String,
    credentials: Option<Credentials>,
    token: Mutex<Option<String>>,
}

/// A fetched manifest.
pub struct FetchedManifest {
    /// Its exact bytes.
    pub bytes: Bytes,
    /// Its media type.
    pub media_type: String,
    /// The digest of its bytes, verified locally.
    pub digest: Digest,
}

impl Registry {
    /// A client for `host` (`host[:port]`). Loopback hosts speak plain HTTP
    /// unless `plain_http` says otherwise; everything else uses HTTPS.
    pub fn new(
        host: &str,
        plain_http: Option<bool>,
        credentials: Option<Credentials>,
    ) -> Result<Self> {
        let http = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(Registry {
            http,
            base: base_url(host, plain_http),
            credentials,
            token: Mutex::new(None),
        })
    }

    /// GETs `/api/v1{path}` of the management API with Basic credentials.
    /// `None` when the call cannot be made or answered (no credentials, an
    /// older server without the route); an error for any other refusal.
    pub async fn api_get(&self, path: &str) -> Result<Option<serde_json::Value>> {
        let Some(creds) = &self.credentials else {
            return Ok(None);
        };
        let r = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(r.json().await?)),
            StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED => Ok(None),
            _ => bail!("GET /api/v1{path}: {}", describe(r).await),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        let token = self.token.lock().ok().and_then(|t| t.clone());
        match (token, &self.credentials) {
            (Some(t), _) => request.bearer_auth(t),
            (None, Some(c)) => request.basic_auth(&c.username, Some(&c.password)),
            (None, None) => request,
        }
    }

    /// Sends a request whose body can be rebuilt; on a Bearer challenge (a 401,
    /// or a 403 saying the token's scope is insufficient) it fetches a token
    /// for the challenge's scope with the credentials and tries once more.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let url = self.url(path);
        let first = self
            .authorize(build(self.http.request(method.clone(), &url)))
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let challenge = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let lower = challenge.to_ascii_lowercase();
        let retry = match first.status() {
            StatusCode::UNAUTHORIZED => lower.starts_with("bearer "),
            StatusCode::FORBIDDEN => {
                lower.starts_with("bearer ") && lower.contains("error=\"insufficient_scope\"")
            }
            _ => false,
        };
        if !retry {
            return Ok(first);
        }
        self.fetch_token(&challenge).await?;
        self.authorize(build(self.http.request(method.clone(), &url)))
            .send()
            .await
            .with_context(|| format!("{method} {url}"))
    }

    async fn fetch_token(&self, challenge: &str) -> Result<()> {
        let params = parse_challenge(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("the registry's Bearer challenge names no realm"))?;
        let query: Vec<(String, String)> = params
            .into_iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .collect();
        let mut request = self.http.get(&realm).query(&query);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {realm}"))?;
        if !response.status().is_success() {
            bail!("token request refused: {}", describe(response).await);
        }
        let body: serde_json::Value = response
            .json()
            .await
            .context("reading the token response")?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| anyhow!("the token response holds no token"))?;
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some(token.to_owned());
        }
        Ok(())
    }

    /// Checks the registry answers (and that credentials work).
    pub async fn ping(&self) -> Result<()> {
        let r = self.send(Method::GET, "/v2/", |r| r).await?;
        if r.status().is_success() {
            Ok(())
        } else {
            bail!("registry check failed: {}", describe(r).await)
        }
    }

    /// The size of `digest` in `repo`, if present.
    pub async fn blob_size(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let r = self
            .send(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"), |r| r)
            .await?;
        match r.status() {
            StatusCode::OK => Ok(r
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::FORBIDDEN => {
                // A HEAD refusal has no body: ask for one byte to learn why.
                let r = self
                    .send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), |r| {
                        r.header(reqwest::header::RANGE, "bytes=0-0")
                    })
                    .await?;
                bail!("checking blob {digest}: {}", describe(r).await)
            }
            _ => bail!("checking blob {digest}: {}", describe(r).await),
        }
    }

    /// Uploads a blob whose digest and size are known, streaming `body`.
    pub async fn upload_blob<S>(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static,
    {
        let r = self
            .send(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), |r| r)
            .await?;
        if r.status() != StatusCode::ACCEPTED && r.status() != StatusCode::CREATED {
            bail!("starting the upload of {digest}: {}", describe(r).await);
        }
        let location =
            header(&r, LOCATION).ok_or_else(|| anyhow!("the registry gave no upload location"))?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = self.url(&format!("{location}{sep}digest={digest}"));
        let r = self
            .authorize(self.http.put(url))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .with_context(|| format!("uploading {digest}"))?;
        if r.status() != StatusCode::CREATED {
            bail!("uploading {digest}: {}", describe(r).await);
        }
        Ok(())
    }

    /// Uploads small in-memory bytes as a blob unless already present.
    pub async fn push_bytes(&self, repo: &RepositoryName, bytes: Bytes) -> Result<Digest> {
        let digest = Digest::of(&bytes);
        if self.blob_size(repo, &digest).await?.is_none() {
            let size = bytes.len() as u64;
            let body = futures::stream::once(async move { Ok(bytes) });
            self.upload_blob(repo, &digest, size, body).await?;
        }
        Ok(digest)
    }

    /// Stores a manifest under `reference`; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let r = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                |r| r.header(CONTENT_TYPE, media_type).body(bytes.clone()),
            )
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!("pushing the manifest: {}", describe(r).await);
        }
        let local = Digest::of(&bytes);
        if let Some(reported) = header(&r, "docker-content-digest".parse()?)
            && reported != local.to_string()
        {
            bail!(
                "the registry reports manifest digest {reported}, but the bytes sent hash to {local}"
            );
        }
        Ok(local)
    }

    /// The descriptor (`mediaType`, `digest`, `size`) of manifest `digest`, from a HEAD.
    pub async fn manifest_descriptor(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<serde_json::Value> {
        let accept = media::MANIFEST_TYPES.join(", ");
        let r = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/manifests/{digest}"),
                |r| r.header(ACCEPT, &accept),
            )
            .await?;
        if r.status() != StatusCode::OK {
            bail!("looking up manifest {digest}: {}", describe(r).await);
        }
        let media_type = header(&r, CONTENT_TYPE).unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
        let size: u64 = header(&r, CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("the registry gave no size for manifest {digest}"))?;
        Ok(serde_json::json!({
            "mediaType": ward_core::manifest::bare_media_type(&media_type),
            "digest": digest,
            "size": size,
        }))
    }

    /// Fetches a manifest; a digest reference is verified against the bytes.
    pub async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<FetchedManifest> {
        let accept = media::MANIFEST_TYPES.join(", ");
        let r = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{reference}"),
                |r| r.header(ACCEPT, &accept),
            )
            .await?;
        if r.status() != StatusCode::OK {
            bail!(
                "fetching manifest {repo}:{reference}: {}",
                describe(r).await
            );
        }
        let media_type = header(&r, CONTENT_TYPE).unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
        let media_type = ward_core::manifest::bare_media_type(&media_type).to_owned();
        let reported = header(&r, "docker-content-digest".parse()?);
        let bytes = r.bytes().await?;
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => ward_core::digest::Algorithm::Sha256,
        };
        let digest = Digest::of_with(algorithm, &bytes);
        if let Reference::Digest(wanted) = reference
            && digest != *wanted
        {
            bail!("manifest bytes hash to {digest}, not the requested {wanted}: refusing them");
        }
        if let Some(reported) = reported.filter(|r| r.starts_with(algorithm.as_str()))
            && reported != digest.to_string()
        {
            bail!("the registry says the manifest is {reported}, but its bytes hash to {digest}");
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Like [`Registry::get_manifest`], but `None` when the registry has no
    /// such manifest (404).
    pub async fn get_manifest_if_any(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<FetchedManifest>> {
        let r = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/manifests/{reference}"),
                |r| r.header(ACCEPT, media::MANIFEST_TYPES.join(", ")),
            )
            .await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => self.get_manifest(repo, reference).await.map(Some),
            _ => bail!(
                "looking up manifest {repo}:{reference}: {}",
                describe(r).await
            ),
        }
    }

    /// The descriptors of every manifest whose `subject` is `digest` (the OCI
    /// 1.1 referrers API), following `Link` pages.
    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut next = Some(format!("/v2/{repo}/referrers/{digest}"));
        while let Some(path) = next.take() {
            let r = self
                .send(Method::GET, &path, |r| r.header(ACCEPT, media::OCI_INDEX))
                .await?;
            if r.status() != StatusCode::OK {
                bail!("listing referrers of {digest}: {}", describe(r).await);
            }
            next = header(&r, reqwest::header::LINK).and_then(|l| {
                l.split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(target, _)| target.to_owned())
            });
            let index: serde_json::Value = r.json().await.context("reading a referrers index")?;
            if let Some(manifests) = index["manifests"].as_array() {
                out.extend(manifests.iter().cloned());
            }
            if out.len() > REFERRERS_MAX {
                bail!(
                    "{digest} has over {REFERRERS_MAX} referrers (REFERRERS_MAX); refusing to read more"
                );
            }
        }
        Ok(out)
    }

    /// Reads a small blob whole, refusing one over `bytes_max`, and checks its digest.
    pub async fn get_small_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        bytes_max: u64,
    ) -> Result<Bytes> {
        let mut r = self.get_blob(repo, digest).await?;
        let mut out = Vec::new();
        let mut verifier = Verifier::new(*digest);
        while let Some(chunk) = r.chunk().await? {
            if (out.len() + chunk.len()) as u64 > bytes_max {
                bail!("blob {digest} is over {bytes_max} bytes; refusing to read it");
            }
            verifier.update(&chunk);
            out.extend_from_slice(&chunk);
        }
        verifier.finish()?;
        Ok(Bytes::from(out))
    }

    /// Streams blob `digest` of `repo`; the caller verifies what it reads with [`Verifier`].
    pub async fn get_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<Response> {
        let r = self
            .send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), |r| r)
            .await?;
        if r.status() != StatusCode::OK {
            bail!("fetching blob {digest}: {}", describe(r).await);
        }
        Ok(r)
    }
}

/// Most referrers read for one subject.
pub const REFERRERS_MAX: usize = 4096;

/// What the CLI calls itself in `User-Agent` (the audit log records it).
pub const USER_AGENT: &str = concat!("ward/", env!("CARGO_PKG_VERSION"));

/// An HTTP client for the management API, identified as the CLI.
pub fn api_http() -> Result<Client> {
    Ok(Client::builder().user_agent(USER_AGENT).build()?)
}

/// `http://host` for loopback hosts (unless `plain_http` says otherwise), else `https://host`.
pub fn base_url(host: &str, plain_http: Option<bool>) -> String {
    let loopback =
        host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    let scheme = if plain_http.unwrap_or(loopback) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// Hashes bytes as they stream and checks them against the expected digest.
pub struct Verifier {
    expected: Digest,
    hasher: Hasher,
}

impl Verifier {
    /// Expects `expected`.
    pub fn new(expected: Digest) -> Self {
        Verifier {
            expected,
            hasher: Hasher::new(expected.algorithm()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Fails unless the bytes fed hash to the expected digest.
    pub fn finish(&self) -> Result<()> {
        let actual = self.hasher.digest();
        if actual != self.expected {
            bail!(
                "received bytes hash to {actual}, not {}: refusing them",
                self.expected
            );
        }
        Ok(())
    }
}

fn header(r: &Response, name: reqwest::header::HeaderName) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A readable account of a failed response: status plus the OCI error messages.
pub async fn describe(r: Response) -> String {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let messages: Vec<String> = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"].as_array().cloned())
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", messages.join("; "))
    }
}

/// Splits a `WWW-Authenticate: Bearer k="v",k2="v2"` challenge into pairs.
pub fn parse_challenge(header: &str) -> Vec<(String, String)> {
    let rest = header.split_once(' ').map_or("", |(_, r)| r);
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let got = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:5000/token",service="ward",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            got,
            vec![
                ("realm".into(), "http://127.0.0.1:5000/token".into()),
                ("service".into(), "ward".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(parse_challenge("Bearer"), vec![]);
        assert_eq!(
            parse_challenge(r#"Basic realm="x\"y""#),
            vec![("realm".into(), "x\"y".into())]
        );
    }

    #[test]
    fn verifier_refuses_other_bytes() {
        let mut v = Verifier::new(Digest::of(b"abc"));
        v.update(b"ab");
        v.update(b"c");
        assert!(v.finish().is_ok());
        let mut v = Verifier::new(Digest::of(b"abc"));
        v.update(b"abd");
        assert!(v.finish().is_err());
    }
}
