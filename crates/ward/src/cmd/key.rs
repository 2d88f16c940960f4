//! `ward key`: generate cosign-compatible key pairs and show key ids.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ward_sign::keys::{KeyAlgorithm, PrivateKey, PublicKey};
use ward_sign::password::{PASSWORD_ENV, load_private_key, read_password};

/// Arguments of `ward key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write `<prefix>.key` (cosign's encrypted format) and `<prefix>.pub`.
    ///
    /// The password comes from $COSIGN_PASSWORD (as for cosign), else a prompt.
    Generate {
        /// Where to write: `<prefix>.key` and `<prefix>.pub`.
        #[arg(long, default_value = "cosign")]
        output_key_prefix: PathBuf,
        /// ecdsa-p256 (cosign's default), ecdsa-p384, ed25519, rsa-3072 or rsa-4096.
        #[arg(long, default_value = "ecdsa-p256")]
        algorithm: KeyAlgorithm,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the key id (sha256 of the DER public key) of a public or private key file.
    Id {
        /// A `PUBLIC KEY` PEM, or a private key (encrypted ones need the password).
        path: PathBuf,
    },
}

/// Runs `ward key`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Generate {
            output_key_prefix,
            algorithm,
            force,
            json,
        } => generate(&output_key_prefix, algorithm, force, json),
        Command::Id { path } => {
            let key = load_public(&path)?;
            println!("{}", key.key_id());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn generate(
    prefix: &Path,
    algorithm: KeyAlgorithm,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Appended, as cosign does: `--output-key-prefix release.2024` gives `release.2024.key`.
    let with_suffix = |suffix: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let private_path = with_suffix(".key");
    let public_path = with_suffix(".pub");
    for path in [&private_path, &public_path] {
        if path.exists() && !force {
            bail!("{} exists; pass --force to replace it", path.display());
        }
    }
    let password = read_password(PASSWORD_ENV, "Password for the new private key: ", true)?;
    let key = PrivateKey::generate(algorithm)?;
    let encrypted = key.to_encrypted_pem(password.as_bytes())?;
    write_private(&private_path, encrypted.as_bytes())?;
    std::fs::write(&public_path, key.public_key().to_pem())
        .with_context(|| format!("writing {}", public_path.display()))?;
    let key_id = key.public_key().key_id();
    if json {
        let out = serde_json::json!({
            "private_key": private_path,
            "public_key": public_path,
            "key_id": key_id,
            "algorithm": algorithm,
        });
        println!("{out}");
    } else {
        println!("Private key written to {}", private_path.display());
        println!("Public key written to {}", public_path.display());
        println!("Key id: {key_id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the private key file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a public key, or derives it from a private key file.
fn load_public(path: &Path) -> anyhow::Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(key) = PublicKey::from_pem(&text) {
        return Ok(key);
    }
    Ok(load_private_key(path)?.public_key().clone())
}
