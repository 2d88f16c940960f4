//! OpenSSF model signing v1.0, as the `model_signing` tool (PyPI) writes it.
//!
//! The signature is a sigstore bundle whose DSSE payload is an in-toto statement
//! with predicate type [`PREDICATE_TYPE`]. The predicate lists every file of the
//! model directory (`resources`: relative path, `sha256`) and how it was
//! serialized (`method: files`, the paths ignored). The statement's single
//! subject carries the sha256 of all resource digests concatenated in listed
//! order. Verification recomputes every file's sha256, streaming, and fails on
//! any file missing, added or changed.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use ward_core::Digest;

use crate::bundle::{
    Bundle, CertificateChain, PublicKeyIdentifier, RawBytes, VerificationMaterial,
};
use crate::dsse::{Envelope, EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE, pae};
use crate::encoding::{b64_encode, hex};
use crate::keys::{KeyError, PrivateKey};
use crate::verify::{Limits, Rejection, Subject};
use crate::x509::Certificate;

/// The predicate type of an OpenSSF model-signing v1.0 statement.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// What `model_signing` ignores by default, and records as ignored.
pub const GIT_PATHS: [&str; 4] = [".gitignore", ".git", ".github", ".gitattributes"];
/// Deepest directory nesting walked.
pub const DIRECTORY_DEPTH_MAX: usize = 128;

const READ_CHUNK_BYTES: usize = 1 << 20;

/// The files of a model with their sha256, plus anything that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFiles {
    /// Relative path (`/`-separated) to sha256.
    pub files: BTreeMap<String, Digest>,
    /// Entries that could not be hashed, and why.
    pub problems: Vec<String>,
}

/// Where a model's files come from: a directory on disk, or an OCI manifest's
/// layers (title annotation to layer digest) listed by the registry.
pub trait ModelSource {
    /// Every file not under one of `ignore_paths`, hashed.
    fn files(&self, ignore_paths: &[String], allow_symlinks: bool, limits: &Limits) -> ModelFiles;
}

impl ModelSource for ModelFiles {
    fn files(
        &self,
        ignore_paths: &[String],
        _allow_symlinks: bool,
        _limits: &Limits,
    ) -> ModelFiles {
        ModelFiles {
            files: self
                .files
                .iter()
                .filter(|(name, _)| !is_ignored(name, ignore_paths))
                .map(|(name, digest)| (name.clone(), *digest))
                .collect(),
            problems: self.problems.clone(),
        }
    }
}

/// A model directory on disk.
#[derive(Debug, Clone)]
pub struct ModelDirectory {
    root: PathBuf,
    also_ignore: Vec<String>,
}

impl ModelDirectory {
    /// The model rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelDirectory {
            root: root.into(),
            also_ignore: Vec::new(),
        }
    }

    /// Also ignores `path` if it lies inside the model (the signature file, as
    /// `model_signing` does).
    pub fn ignoring(mut self, path: &Path) -> Self {
        if let Some(relative) = relative_inside(&self.root, path) {
            self.also_ignore.push(relative);
        }
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The model's name: its directory's final component.
    pub fn name(&self) -> String {
        let absolute = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        absolute
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let root = std::fs::canonicalize(root).ok()?;
    let parent = std::fs::canonicalize(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .ok()?;
    let full = parent.join(path.file_name()?);
    let relative = full.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

impl ModelSource for ModelDirectory {
    fn files(&self, ignore_paths: &[String], allow_symlinks: bool, limits: &Limits) -> ModelFiles {
        let mut ignore = ignore_paths.to_vec();
        ignore.extend(self.also_ignore.iter().cloned());
        let mut walk = Walk {
            ignore: &ignore,
            allow_symlinks,
            files_max: limits.model_files_max,
            out: ModelFiles::default(),
        };
        walk.directory(&self.root, "", 0);
        walk.out
    }
}

struct Walk<'a> {
    ignore: &'a [String],
    allow_symlinks: bool,
    files_max: usize,
    out: ModelFiles,
}

impl Walk<'_> {
    fn directory(&mut self, dir: &Path, prefix: &str, depth: usize) {
        if depth > DIRECTORY_DEPTH_MAX {
            self.out.problems.push(format!(
                "{prefix}: nested deeper than {DIRECTORY_DEPTH_MAX} directories"
            ));
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                return self
                    .out
                    .problems
                    .push(format!("{}: {e}", display_name(prefix)));
            }
        };
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for os_name in names {
            let Some(name) = os_name.to_str() else {
                self.out.problems.push(format!(
                    "{prefix}{}: file name is not UTF-8",
                    os_name.to_string_lossy()
                ));
                continue;
            };
            let relative = format!("{prefix}{name}");
            if !is_ignored(&relative, self.ignore) {
                self.entry(&dir.join(name), &relative, depth);
            }
        }
    }

    fn entry(&mut self, path: &Path, relative: &str, depth: usize) {
        let metadata = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return self.out.problems.push(format!("{relative}: {e}")),
        };
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            return self.directory(path, &format!("{relative}/"), depth + 1);
        }
        if file_type.is_symlink() {
            if !self.allow_symlinks {
                return self.out.problems.push(format!(
                    "{relative}: symbolic link, and the signature does not allow symlinks"
                ));
            }
            if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
                return self.out.problems.push(format!(
                    "{relative}: symbolic link to something other than a file"
                ));
            }
        } else if !file_type.is_file() {
            return self
                .out
                .problems
                .push(format!("{relative}: not a regular file"));
        }
        if self.out.files.len() >= self.files_max {
            return self
                .out
                .problems
                .push(format!("{relative}: more than {} files", self.files_max));
        }
        match hash_file(path) {
            Ok(digest) => {
                self.out.files.insert(relative.to_owned(), digest);
            }
            Err(e) => self.out.problems.push(format!("{relative}: {e}")),
        }
    }
}

fn display_name(prefix: &str) -> &str {
    if prefix.is_empty() {
        "."
    } else {
        prefix.trim_end_matches('/')
    }
}

/// The sha256 of a file, read in chunks so memory stays flat.
pub fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(Digest::from_bytes(hasher.finalize().into()))
}

/// Whether `path` is `ignore` or lies under it, compared component by component.
fn is_ignored(path: &str, ignore_paths: &[String]) -> bool {
    ignore_paths.iter().any(|ignore| {
        let ignore = ignore.trim_end_matches('/');
        path == ignore
            || path
                .strip_prefix(ignore)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// A relative, normalized `/`-separated path: no root, no `.`/`..`/empty parts.
fn valid_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// One signed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Relative path.
    pub name: String,
    /// Its sha256.
    pub digest: Digest,
}

/// A parsed, self-consistent model-signing statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatement {
    /// The model's name (informative).
    pub name: String,
    /// sha256 over the resource digests in order.
    pub root_digest: Digest,
    /// Paths excluded when hashing.
    pub ignore_paths: Vec<String>,
    /// Whether symlinked files were followed.
    pub allow_symlinks: bool,
    /// The signed files, in listed order.
    pub resources: Vec<Resource>,
}

impl ModelStatement {
    /// Builds the statement for a set of hashed files.
    pub fn new(name: &str, files: &ModelFiles, ignore_paths: Vec<String>) -> Self {
        let resources: Vec<Resource> = files
            .files
            .iter()
            .map(|(name, digest)| Resource {
                name: name.clone(),
                digest: *digest,
            })
            .collect();
        ModelStatement {
            name: name.to_owned(),
            root_digest: root_digest(&resources),
            ignore_paths,
            allow_symlinks: false,
            resources,
        }
    }

    /// Reads an in-toto statement with [`PREDICATE_TYPE`], checking its shape,
    /// paths and the subject digest.
    pub fn from_json(statement: &Value, limits: &Limits) -> Result<Self, Rejection> {
        let bad = |detail: &str| Rejection::Malformed {
            detail: format!("model-signing statement: {detail}"),
        };
        let [subject] = statement["subject"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        else {
            return Err(bad("expected exactly one subject"));
        };
        let predicate = &statement["predicate"];
        let serialization = &predicate["serialization"];
        let method = serialization["method"].as_str().unwrap_or_default();
        let hash_type = serialization["hash_type"].as_str().unwrap_or_default();
        if method != "files" || hash_type != "sha256" {
            return Err(Rejection::Unsupported {
                detail: format!(
                    "model serialization method {method:?} with hash {hash_type:?} (Ward verifies \"files\" with \"sha256\")"
                ),
            });
        }
        let allow_symlinks = match &serialization["allow_symlinks"] {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => false,
        };
        let ignore_paths = string_list(&serialization["ignore_paths"])
            .ok_or_else(|| bad("ignore_paths is not a list of strings"))?;
        if let Some(path) = ignore_paths
            .iter()
            .find(|p| !valid_relative_path(p.trim_end_matches('/')))
        {
            return Err(bad(&format!(
                "ignore path {path:?} is not a relative path inside the model"
            )));
        }
        let resources = resources(&predicate["resources"], limits).map_err(|e| bad(&e))?;
        let root = root_digest(&resources);
        let claimed = subject["digest"]["sha256"].as_str().unwrap_or_default();
        if root.hex() != claimed {
            return Err(bad(&format!(
                "subject digest {claimed:?} does not match its resources ({})",
                root.hex()
            )));
        }
        Ok(ModelStatement {
            name: subject["name"].as_str().unwrap_or_default().to_owned(),
            root_digest: root,
            ignore_paths,
            allow_symlinks,
            resources,
        })
    }

    /// The statement as JSON, the way `model_signing` lays it out.
    pub fn to_json(&self) -> Value {
        let mut serialization = json!({"method": "files", "hash_type": "sha256", "allow_symlinks": self.allow_symlinks});
        if !self.ignore_paths.is_empty() {
            serialization["ignore_paths"] = json!(self.ignore_paths);
        }
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| json!({"algorithm": "sha256", "name": r.name, "digest": r.digest.hex()}))
            .collect();
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": self.name, "digest": {"sha256": self.root_digest.hex()}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"serialization": serialization, "resources": resources},
        })
    }

    /// Checks the subject's model against this statement.
    pub fn check(&self, subject: &Subject<'_>, limits: &Limits) -> Result<(), Rejection> {
        let source = subject.model.ok_or_else(|| Rejection::Unsupported {
            detail: "a model-signing signature covers a model's files, and none were given".into(),
        })?;
        self.compare(&source.files(&self.ignore_paths, self.allow_symlinks, limits))
    }

    /// Compares hashed files with the signed resources.
    pub fn compare(&self, actual: &ModelFiles) -> Result<(), Rejection> {
        let signed: BTreeMap<&str, &Digest> = self
            .resources
            .iter()
            .map(|r| (r.name.as_str(), &r.digest))
            .collect();
        let missing: Vec<String> = signed
            .keys()
            .filter(|n| !actual.files.contains_key(**n))
            .map(|n| (*n).to_owned())
            .collect();
        let added: Vec<String> = actual
            .files
            .keys()
            .filter(|n| !signed.contains_key(n.as_str()))
            .cloned()
            .collect();
        let changed: Vec<String> = actual
            .files
            .iter()
            .filter(|(n, d)| signed.get(n.as_str()).is_some_and(|s| s != d))
            .map(|(n, _)| n.clone())
            .collect();
        if missing.is_empty()
            && added.is_empty()
            && changed.is_empty()
            && actual.problems.is_empty()
        {
            return Ok(());
        }
        Err(Rejection::ModelMismatch {
            missing,
            added,
            changed,
            problems: actual.problems.clone(),
        })
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn resources(value: &Value, limits: &Limits) -> Result<Vec<Resource>, String> {
    let items = value.as_array().ok_or("resources is not a list")?;
    if items.is_empty() {
        return Err("the statement signs no files".into());
    }
    if items.len() > limits.model_files_max {
        return Err(format!("more than {} resources", limits.model_files_max));
    }
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .map(|item| {
            let name = item["name"].as_str().ok_or("resource without a name")?;
            if !valid_relative_path(name) {
                return Err(format!(
                    "resource name {name:?} is not a relative path inside the model"
                ));
            }
            if !seen.insert(name) {
                return Err(format!("resource {name:?} is listed twice"));
            }
            if item["algorithm"].as_str() != Some("sha256") {
                return Err(format!("resource {name:?} is not hashed with sha256"));
            }
            let digest = item["digest"]
                .as_str()
                .and_then(|h| Digest::from_hex(h).ok())
                .ok_or_else(|| format!("resource {name:?} has no valid sha256 digest"))?;
            Ok(Resource {
                name: name.to_owned(),
                digest,
            })
        })
        .collect()
}

fn root_digest(resources: &[Resource]) -> Digest {
    let mut hasher = Sha256::new();
    for resource in resources {
        hasher.update(resource.digest.as_bytes());
    }
    Digest::from_bytes(hasher.finalize().into())
}

/// How to sign a model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Paths inside the model to leave out (relative to the model root).
    pub ignore_paths: Vec<String>,
    /// Also leave out (and record) `.git`, `.github`, `.gitignore`, `.gitattributes`.
    pub ignore_git_paths: bool,
    /// Certificate mode: the signing certificate first, then the chain to embed.
    /// Empty means key mode (the bundle names the key by a hint).
    pub certificate_chain: Vec<Certificate>,
    /// Input limits.
    pub limits: Limits,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            certificate_chain: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Why a model could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelSignError {
    /// The key could not sign.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Files could not be read; signing a partial model would be worse than failing.
    #[error("cannot sign the model, some files could not be read: {}", .0.join("; "))]
    Unreadable(Vec<String>),
    /// Nothing to sign.
    #[error("the model directory has no files to sign")]
    Empty,
    /// An ignore path is not a relative path inside the model.
    #[error("ignore path {0:?} is not a relative path inside the model")]
    BadIgnorePath(String),
    /// The signing certificate does not carry the signing key.
    #[error("the signing certificate is not for this private key")]
    CertificateKeyMismatch,
}

/// Signs a model directory with a key, producing the bundle JSON `model_signing
/// verify key` accepts (for ECDSA keys; Ward also verifies Ed25519 and RSA).
pub fn sign_directory(
    model: &ModelDirectory,
    key: &PrivateKey,
    options: &SignOptions,
) -> Result<Vec<u8>, ModelSignError> {
    let statement = directory_statement(model, options)?;
    sign_statement(&statement, key, &options.certificate_chain)
}

/// The statement [`sign_directory`] signs: every file of the model that is
/// not ignored, with its sha256.
pub fn directory_statement(
    model: &ModelDirectory,
    options: &SignOptions,
) -> Result<ModelStatement, ModelSignError> {
    let mut ignore_paths: Vec<String> = Vec::new();
    for path in &options.ignore_paths {
        let relative = path.trim_end_matches('/');
        if !valid_relative_path(relative) {
            return Err(ModelSignError::BadIgnorePath(path.clone()));
        }
        ignore_paths.push(relative.to_owned());
    }
    ignore_paths.extend(model.also_ignore.iter().cloned());
    if options.ignore_git_paths {
        ignore_paths.extend(GIT_PATHS.iter().map(|p| (*p).to_owned()));
    }
    ignore_paths.sort();
    ignore_paths.dedup();
    let files = model.files(&ignore_paths, false, &options.limits);
    if !files.problems.is_empty() {
        return Err(ModelSignError::Unreadable(files.problems));
    }
    if files.files.is_empty() {
        return Err(ModelSignError::Empty);
    }
    Ok(ModelStatement::new(&model.name(), &files, ignore_paths))
}

/// Wraps a statement in a signed DSSE envelope inside a v0.3 bundle. With a
/// certificate chain (leaf first) the bundle carries it as `x509CertificateChain`,
/// the field `model_signing`'s certificate verifier reads; otherwise it names the
/// key by the hint `model_signing` checks.
pub fn sign_statement(
    statement: &ModelStatement,
    key: &PrivateKey,
    certificate_chain: &[Certificate],
) -> Result<Vec<u8>, ModelSignError> {
    let verification_material = match certificate_chain.first() {
        Some(leaf) => {
            if leaf.public_key().ok().as_ref() != Some(key.public_key()) {
                return Err(ModelSignError::CertificateKeyMismatch);
            }
            VerificationMaterial {
                x509_certificate_chain: Some(CertificateChain {
                    certificates: certificate_chain
                        .iter()
                        .map(|c| RawBytes {
                            raw_bytes: b64_encode(c.der()),
                        })
                        .collect(),
                }),
                ..VerificationMaterial::default()
            }
        }
        None => VerificationMaterial {
            public_key: Some(PublicKeyIdentifier {
                // model_signing checks this hint: sha256 of the public key's PEM.
                hint: Some(hex(&Sha256::digest(key.public_key().to_pem().as_bytes()))),
            }),
            ..VerificationMaterial::default()
        },
    };
    let payload = serde_json::to_vec_pretty(&statement.to_json()).unwrap_or_default();
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload))?;
    let bundle = Bundle {
        media_type: crate::oci::SIGSTORE_BUNDLE_MEDIA_TYPE.into(),
        verification_material,
        message_signature: None,
        dsse_envelope: Some(Envelope {
            payload: b64_encode(&payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature {
                sig: b64_encode(&signature),
                keyid: String::new(),
            }],
        }),
    };
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_matching_is_by_whole_components() {
        let ignore = vec![".git".to_owned(), "docs/drafts/".to_owned()];
        let cases = [
            (".git", true),
            (".git/config", true),
            (".github/workflow.yml", false),
            (".gitignore", false),
            ("docs/drafts/a.md", true),
            ("docs/draftsman.md", false),
            ("model.bin", false),
        ];
        for (path, want) in cases {
            assert_eq!(is_ignored(path, &ignore), want, "{path}");
        }
    }

    #[test]
    fn only_relative_inside_paths_are_valid() {
        let cases = [
            ("a/b.bin", true),
            ("a", true),
            ("", false),
            ("/etc/passwd", false),
            ("a/../b", false),
            ("./a", false),
            ("a//b", false),
            ("..", false),
        ];
        for (path, want) in cases {
            assert_eq!(valid_relative_path(path), want, "{path:?}");
        }
    }
}
