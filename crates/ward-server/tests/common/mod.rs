//! A real registry on 127.0.0.1:<ephemeral>, over real TCP, on a fresh SQLite
//! file or a fresh PostgreSQL schema, with blobs on a real filesystem.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use ward_core::{Digest, media};
use ward_server::config::Config;
use ward_server::{Running, start};
use ward_store::testing;

/// Which metadata backend a test server uses.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod $name { sqlite(); postgres(); }` running `$body(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(common::Backend::Postgres).await;
            }
        }
    };
}

/// The administrator password every test registry starts with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A client that sends Basic credentials with every request.
pub fn client_as(user: &str, secret: &str) -> Client {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {token}").parse().unwrap(),
    );
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A client with no credentials.
pub fn anonymous_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct TestRegistry {
    pub base: String,
    /// Signed in as the administrator.
    pub client: Client,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestRegistry {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            admin_password: Some(ward_server::config::Secret::new(ADMIN_PASSWORD)),
            ..Config::default()
        };
        // Decisions must follow API changes at once; other servers poll quickly in tests.
        config.auth.revision_poll_millis = 50;
        // The scan workers attach report referrers asynchronously; these tests of
        // the OCI and management APIs need deterministic listings. Scanning is
        // tested end to end in crates/ward/tests/scan.rs and the store suite.
        config.scan.enabled = false;
        config.database_url = match backend {
            Backend::Sqlite => testing::sqlite_url(dir.path()),
            Backend::Postgres => testing::fresh_postgres_url().await,
        };
        tweak(&mut config);
        Self::start_config(dir, config).await
    }

    /// Starts (again) on an existing data directory and database.
    pub async fn start_config(dir: tempfile::TempDir, config: Config) -> Self {
        let running = start(config.clone()).await.expect("start a test registry");
        let base = format!("http://{}", running.local_addr);
        TestRegistry {
            base,
            client: client_as("admin", ADMIN_PASSWORD),
            running: Some(running),
            dir,
            config,
        }
    }

    /// Stops the server, keeping its data for a restart.
    pub async fn restart(mut self) -> Self {
        self.running.take().unwrap().stop().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        Self::start_config(self.dir, config).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Follows a Location header, absolute or relative.
    pub fn location(&self, response: &Response) -> String {
        let loc = header(response, "location");
        if loc.starts_with("http") {
            loc
        } else {
            self.url(&loc)
        }
    }

    /// Opens an upload session in `repo`; returns its location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "start upload");
        self.location(&r)
    }

    /// Pushes `bytes` as a blob with POST then PUT; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let loc = self.start_upload(repo).await;
        let r = self.finish_upload(&loc, &digest, bytes.to_vec()).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "finish upload: {}",
            r.text().await.unwrap()
        );
        digest
    }

    /// The PUT that closes the upload session at `loc` as `digest`, with
    /// `body` as its last chunk (may be empty).
    pub async fn finish_upload(&self, loc: &str, digest: &Digest, body: Vec<u8>) -> Response {
        let sep = if loc.contains('?') { '&' } else { '?' };
        self.client
            .put(format!("{loc}{sep}digest={digest}"))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header(CONTENT_TYPE, media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes a config and one layer, then an image manifest under `tag`; returns the manifest bytes.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> Vec<u8> {
        let config_bytes = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}";
        let config = self.push_blob(repo, config_bytes).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let manifest = image_manifest(
            config,
            config_bytes.len(),
            &[(layer_digest, layer.len())],
            "",
        );
        let r = self
            .put_manifest(repo, tag, media::OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        manifest
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn head(&self, path: &str) -> Response {
        self.client.head(self.url(path)).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }
}

pub fn image_manifest(
    config: Digest,
    config_size: usize,
    layers: &[(Digest, usize)],
    extra: &str,
) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":{config_size}}},"layers":[{}]{extra}}}"#,
        media::OCI_MANIFEST,
        media::OCI_CONFIG,
        layers.join(",")
    )
    .into_bytes()
}

pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The first error code of an OCI error body.
pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("an OCI error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a response's status and OCI error code.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status, "status for expected {code}");
    let got = error_code(response).await;
    assert_eq!(got, code);
}

pub fn headers(response: &Response) -> HeaderMap {
    response.headers().clone()
}
