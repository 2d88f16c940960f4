//! `ward sign`: sign a model directory (OpenSSF model signing) or a model file
//! (the RSA-PSS scheme). Registry references come with the OCI client.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ward_sign::model::{self, ModelDirectory, SignOptions};
use ward_sign::x509::Certificate;

/// Arguments of `ward sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A registry reference to sign (not available yet: use --model).
    reference: Option<String>,
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
    if let Some(reference) = &args.reference {
        bail!(
            "signing registry reference {reference:?} is not available yet; use --model <path> for local models"
        );
    }
    let Some(model_path) = args.model.clone() else {
        bail!("nothing to sign: pass --model <directory or file>");
    };
    let key = ward_sign::password::load_private_key(&args.key)?;
    let (output, format) = match args.format {
        Format::ModelSigning => (sign_directory(&args, &model_path, &key)?, "model-signing"),
        Format::RsaPss => (sign_file(&args, &model_path, &key)?, "rsa-pss"),
    };
    if args.json {
        let out = serde_json::json!({"signature": output, "format": format, "key_id": key.public_key().key_id()});
        println!("{out}");
    } else {
        println!("Signature written to {}", output.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn sign_directory(
    args: &Args,
    dir: &std::path::Path,
    key: &ward_sign::keys::PrivateKey,
) -> anyhow::Result<PathBuf> {
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
    let bundle = model::sign_directory(&model, key, &options)?;
    std::fs::write(&output, bundle).with_context(|| format!("writing {}", output.display()))?;
    Ok(output)
}

fn sign_file(
    args: &Args,
    file: &std::path::Path,
    key: &ward_sign::keys::PrivateKey,
) -> anyhow::Result<PathBuf> {
    if !file.is_file() {
        bail!(
            "{} is not a file: the rsa-pss scheme signs one model file",
            file.display()
        );
    }
    let digest = model::hash_file(file).with_context(|| format!("reading {}", file.display()))?;
    let signature = ward_sign::pss::sign(key, &digest)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let mut name = file.as_os_str().to_owned();
        name.push(".sig");
        PathBuf::from(name)
    });
    std::fs::write(&output, signature).with_context(|| format!("writing {}", output.display()))?;
    Ok(output)
}
