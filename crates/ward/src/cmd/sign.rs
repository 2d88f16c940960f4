//! `ward sign`: sign an artifact in a registry as cosign does (a simple-signing
//! payload stored under the `sha256-<hex>.sig` tag and as an OCI 1.1
//! referrer), a model directory (OpenSSF model signing) or a model file (the
//! mission's RSA-PSS scheme).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ward_sign::model::{self, ModelDirectory, SignOptions};
use ward_sign::x509::Certificate;

/// Arguments of `ward sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A registry reference to sign: `host[:port]/name[:tag][@digest]`.
    #[arg(conflicts_with = "model")]
    reference: Option<String>,
    /// Registry sign-in (for a reference).
    #[command(flatten)]
    registry: super::common::RegistryArgs,
    /// Write only the cosign tag-scheme signature, not the OCI 1.1 referrer.
    #[arg(long)]
    no_referrer: bool,
    /// The model to sign: a directory (model-signing) or a file (rsa-pss).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Private key: cosign's encrypted PEM (password from $COSIGN_PASSWORD or a
    /// prompt), or an unencrypted PKCS#8 / SEC1 / PKCS#1 PEM.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the signature [default: model.sig, or <file>.sig for rsa-pss].
    #[arg(long)]
    output: Option<PathBuf>,
    /// model-signing (OpenSSF v1.0 bundle) or rsa-pss (the mission's scheme).
    #[arg(long, default_value = "model-signing")]
    format: Format,
    /// Certificate mode: the signing certificate (PEM) for the key.
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// Certificate mode: further chain certificates (PEM) to embed.
    #[arg(long)]
    certificate_chain: Vec<PathBuf>,
    /// Paths inside the model to leave unsigned (repeatable).
    #[arg(long = "ignore-path")]
    ignore_paths: Vec<String>,
    /// Sign .git, .github, .gitignore and .gitattributes too.
    #[arg(long)]
    no_ignore_git_paths: bool,
    /// With --model: also store the signature in a registry, as an OCI 1.1
    /// referrer of the model artifact at this reference (its layers must be
    /// exactly the signed files, named by their title annotations).
    #[arg(long, requires = "model", value_name = "REFERENCE")]
    attach: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    ModelSigning,
    RsaPss,
}

/// Runs `ward sign`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = ward_sign::password::load_private_key(&args.key)?;
    if let Some(reference) = &args.reference {
        return sign_reference(&args, reference, &key).await;
    }
    let Some(model_path) = args.model.clone() else {
        bail!("nothing to sign: pass a registry reference, or --model <directory or file>");
    };
    // The artifact to attach to is checked against the model before anything
    // is signed: a signature that cannot verify there is no use.
    let target = match &args.attach {
        Some(reference) => Some(AttachTarget::fetch(&args, reference).await?),
        None => None,
    };
    let (signed, format, media_type) = match args.format {
        Format::ModelSigning => (
            sign_directory(&args, &model_path, &key, target.as_ref())?,
            "model-signing",
            ward_sign::oci::SIGSTORE_BUNDLE_MEDIA_TYPE,
        ),
        Format::RsaPss => (
            sign_file(&args, &model_path, &key, target.as_ref())?,
            "rsa-pss",
            ward_sign::pss::RSA_PSS_SIGNATURE_MEDIA_TYPE,
        ),
    };
    let attached = match &target {
        Some(t) => Some(t.attach(media_type, signed.bytes).await?),
        None => None,
    };
    if args.json {
        let out = serde_json::json!({
            "signature": signed.path,
            "format": format,
            "key_id": key.public_key().key_id(),
            "attached": attached.as_ref().map(|(pinned, referrer)| {
                serde_json::json!({"subject": pinned, "referrer": referrer})
            }),
        });
        println!("{out}");
    } else {
        println!("Signature written to {}", signed.path.display());
        if let Some((pinned, referrer)) = attached {
            println!("Attached to {pinned} as referrer {referrer}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A signature written to disk.
struct Signed {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The registry artifact a model signature is attached to.
struct AttachTarget {
    registry: crate::client::Registry,
    target: ward_core::name::ImageReference,
    subject: ward_sign::oci::Descriptor,
    files: ward_sign::model::ModelFiles,
}

impl AttachTarget {
    async fn fetch(args: &Args, reference: &str) -> anyhow::Result<Self> {
        let target = ward_core::name::ImageReference::parse(reference)?;
        let registry = args.registry.connect(&target.registry)?;
        let manifest = registry
            .get_manifest(&target.repository, &target.reference())
            .await?;
        let files = ward_sign::oci::model_files(&manifest.bytes, MODEL_FILES_MAX)
            .map_err(|r| anyhow::anyhow!("{reference} is not a model artifact: {r}"))?;
        if !files.problems.is_empty() {
            bail!(
                "{reference} cannot carry a model signature: {}",
                files.problems.join("; ")
            );
        }
        Ok(AttachTarget {
            subject: ward_sign::oci::Descriptor {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest,
                size: manifest.bytes.len() as u64,
                annotations: Default::default(),
                artifact_type: None,
            },
            registry,
            target,
            files,
        })
    }

    /// Stores `signature` as a referrer; returns the pinned subject and the
    /// referrer's digest.
    async fn attach(
        &self,
        media_type: &str,
        signature: Vec<u8>,
    ) -> anyhow::Result<(String, ward_core::Digest)> {
        use bytes::Bytes;
        let referrer = ward_sign::oci::signature_referrer(media_type, signature, &self.subject);
        let repo = &self.target.repository;
        for blob in [referrer.signature, referrer.config] {
            self.registry
                .push_bytes(repo, Bytes::from(blob.bytes))
                .await?;
        }
        let digest = referrer.manifest.descriptor.digest;
        self.registry
            .put_manifest(
                repo,
                &digest.to_string(),
                ward_sign::oci::OCI_MANIFEST_MEDIA_TYPE,
                Bytes::from(referrer.manifest.bytes),
            )
            .await?;
        Ok((self.target.pinned(&self.subject.digest), digest))
    }
}

/// Most layers read from the artifact a signature is attached to.
const MODEL_FILES_MAX: usize = 100_000;

/// Signs the manifest `reference` resolves to and stores the signature in
/// the same repository, in both places cosign and OCI 1.1 clients look.
async fn sign_reference(
    args: &Args,
    reference: &str,
    key: &ward_sign::keys::PrivateKey,
) -> anyhow::Result<ExitCode> {
    use bytes::Bytes;
    use ward_core::name::{ImageReference, Reference, Tag};
    use ward_sign::oci::{Descriptor, OCI_MANIFEST_MEDIA_TYPE};

    let target = ImageReference::parse(reference)?;
    let registry = args.registry.connect(&target.registry)?;
    let repo = &target.repository;
    let manifest = registry.get_manifest(repo, &target.reference()).await?;
    let subject = Descriptor {
        media_type: manifest.media_type.clone(),
        digest: manifest.digest,
        size: manifest.bytes.len() as u64,
        annotations: Default::default(),
        artifact_type: None,
    };
    let docker_reference = format!("{}/{}", target.registry, repo);
    let signature = ward_sign::cosign::sign(&subject, &docker_reference, key)?;
    for blob in [
        &signature.payload,
        &signature.tag_config,
        &signature.referrer_config,
    ] {
        registry
            .push_bytes(repo, Bytes::from(blob.bytes.clone()))
            .await?;
    }
    // cosign keeps every signature of a digest under one tag: add ours.
    let tag = Tag::parse(&signature.tag)?;
    let existing = registry
        .get_manifest_if_any(repo, &Reference::Tag(tag.clone()))
        .await?;
    let tag_manifest = ward_sign::cosign::tag_manifest_with(
        existing.as_ref().map(|m| m.bytes.as_ref()),
        &signature.layer,
    )
    .map_err(|r| anyhow::anyhow!("the existing signature manifest {tag} is unusable: {r}"))?;
    registry
        .put_manifest(
            repo,
            tag.as_str(),
            OCI_MANIFEST_MEDIA_TYPE,
            Bytes::from(tag_manifest.bytes),
        )
        .await?;
    let referrer = if args.no_referrer {
        None
    } else {
        let bytes = Bytes::from(signature.referrer_manifest.bytes.clone());
        let digest = signature.referrer_manifest.descriptor.digest;
        registry
            .put_manifest(repo, &digest.to_string(), OCI_MANIFEST_MEDIA_TYPE, bytes)
            .await?;
        Some(digest)
    };
    let pinned = target.pinned(&manifest.digest);
    if args.json {
        let out = serde_json::json!({
            "signed": pinned,
            "digest": manifest.digest,
            "tag": signature.tag,
            "referrer": referrer,
            "key_id": key.public_key().key_id(),
        });
        println!("{out}");
    } else {
        println!("Signed {pinned}");
        println!("  signature tag: {}", signature.tag);
        if let Some(r) = referrer {
            println!("  referrer:      {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign_directory(
    args: &Args,
    dir: &std::path::Path,
    key: &ward_sign::keys::PrivateKey,
    target: Option<&AttachTarget>,
) -> anyhow::Result<Signed> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; use --format rsa-pss to sign a single file",
            dir.display()
        );
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("model.sig"));
    let mut certificate_chain = Vec::new();
    for path in args.certificate.iter().chain(&args.certificate_chain) {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        certificate_chain.extend(
            Certificate::from_pem_chain(&text)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    if certificate_chain.is_empty() && !args.certificate_chain.is_empty() {
        bail!("--certificate-chain needs --certificate");
    }
    let options = SignOptions {
        ignore_paths: args.ignore_paths.clone(),
        ignore_git_paths: !args.no_ignore_git_paths,
        certificate_chain,
        ..SignOptions::default()
    };
    let model = ModelDirectory::new(dir).ignoring(&output);
    let statement = model::directory_statement(&model, &options)?;
    if let Some(t) = target {
        statement.compare(&t.files).map_err(|r| {
            anyhow::anyhow!(
                "{} does not hold the files of {}: {r}",
                t.target,
                dir.display()
            )
        })?;
    }
    let bundle = model::sign_statement(&statement, key, &options.certificate_chain)?;
    std::fs::write(&output, &bundle).with_context(|| format!("writing {}", output.display()))?;
    Ok(Signed {
        path: output,
        bytes: bundle,
    })
}

fn sign_file(
    args: &Args,
    file: &std::path::Path,
    key: &ward_sign::keys::PrivateKey,
    target: Option<&AttachTarget>,
) -> anyhow::Result<Signed> {
    if !file.is_file() {
        bail!(
            "{} is not a file: the rsa-pss scheme signs one model file",
            file.display()
        );
    }
    let digest = model::hash_file(file).with_context(|| format!("reading {}", file.display()))?;
    if let Some(t) = target {
        let layers: Vec<&ward_core::Digest> = t.files.files.values().collect();
        if layers != [&digest] {
            bail!(
                "{} is not the single file {} (sha256 {digest}): an RSA-PSS signature covers one file",
                t.target,
                file.display()
            );
        }
    }
    let signature = ward_sign::pss::sign(key, &digest)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let mut name = file.as_os_str().to_owned();
        name.push(".sig");
        PathBuf::from(name)
    });
    std::fs::write(&output, &signature).with_context(|| format!("writing {}", output.display()))?;
    Ok(Signed {
        path: output,
        bytes: signature,
    })
}
