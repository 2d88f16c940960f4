//! `ward verify`: check a local model (directory or file) against a signature,
//! with keys or certificate identities given on the command line. Exit 0 when
//! verified, 1 when not, 2 on error. Registry references come with the OCI client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ward_core::Digest;
use ward_sign::model::{self, ModelDirectory, ModelFiles};
use ward_sign::policy::{
    Candidate, IdentityRule, Match, NamedTrustedRoot, Rule, TrustPolicy, TrustedKey, Verdict,
};
use ward_sign::trust_root::TrustedRoot;
use ward_sign::verify::{Context, Evidence, Subject};
use ward_sign::x509::Certificate;

/// Arguments of `ward verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model: a directory (model-signing bundle) or a file (bundle or rsa-pss).
    path: PathBuf,
    /// The signature file: a sigstore / model-signing bundle, or a raw RSA-PSS signature.
    #[arg(long)]
    signature: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// Who counts as a signer, from the command line (shared by `verify` and `gate`).
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A trusted public key (PEM); repeatable.
    #[arg(long)]
    pub key: Vec<PathBuf>,
    /// Accept certificates with this subject alternative name (email or URI).
    #[arg(long, conflicts_with = "cert_identity_regexp")]
    pub cert_identity: Option<String>,
    /// Accept certificates whose subject alternative name matches this regular expression.
    #[arg(long)]
    pub cert_identity_regexp: Option<String>,
    /// Require this OIDC issuer (Fulcio extension) on the certificate.
    #[arg(long, conflicts_with = "cert_oidc_issuer_regexp")]
    pub cert_oidc_issuer: Option<String>,
    /// Require an OIDC issuer matching this regular expression.
    #[arg(long)]
    pub cert_oidc_issuer_regexp: Option<String>,
    /// A sigstore trusted_root.json (Fulcio + Rekor keys); entries must be in its log.
    #[arg(long)]
    pub trusted_root: Vec<PathBuf>,
    /// PEM root certificates of a private CA (no transparency log; checked at the current time).
    #[arg(long)]
    pub ca_roots: Option<PathBuf>,
}

/// Runs `ward verify`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = command_line_policy(&args.trust)?
        .compile()
        .context("building the trust policy from the arguments")?;
    let signature = std::fs::read(&args.signature)
        .with_context(|| format!("reading {}", args.signature.display()))?;
    let candidates = [Candidate {
        source: args.signature.display().to_string(),
        evidence: evidence(signature),
    }];
    let verdict = if args.path.is_dir() {
        let model = ModelDirectory::new(&args.path).ignoring(&args.signature);
        let subject = Subject {
            model: Some(&model),
            ..Subject::default()
        };
        policy.evaluate(&subject, &candidates, &Context::now())
    } else {
        let digest = model::hash_file(&args.path)
            .with_context(|| format!("reading {}", args.path.display()))?;
        let files = single_file(&args.path, digest);
        let subject = Subject {
            digest: Some(digest),
            model: Some(&files),
            ..Subject::default()
        };
        policy.evaluate(&subject, &candidates, &Context::now())
    };
    report(&verdict, args.json)?;
    Ok(if verdict.satisfied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A JSON document with a sigstore media type is a bundle; anything else is
/// taken as a raw RSA-PSS signature.
fn evidence(signature: Vec<u8>) -> Evidence {
    let is_bundle = serde_json::from_slice::<serde_json::Value>(&signature).is_ok_and(|v| {
        v["mediaType"]
            .as_str()
            .is_some_and(|m| m.starts_with("application/vnd.dev.sigstore.bundle"))
    });
    if is_bundle {
        Evidence::SigstoreBundle { json: signature }
    } else {
        Evidence::RsaPss { signature }
    }
}

fn single_file(path: &Path, digest: Digest) -> ModelFiles {
    let mut files = ModelFiles::default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    files.files.insert(name, digest);
    files
}

/// A one-rule trust policy covering every repository: any of the given keys
/// or certificate identities, one signature.
pub fn command_line_policy(args: &TrustArgs) -> anyhow::Result<TrustPolicy> {
    let mut policy = TrustPolicy::default();
    for path in &args.key {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        policy.keys.push(TrustedKey {
            name: path.display().to_string(),
            public_key: pem,
            owner: None,
            revoked: false,
        });
    }
    // Sigstore roots come with a log, so require its entry; a private CA has none.
    let mut roots = Vec::new();
    for path in &args.trusted_root {
        let doc = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let root =
            TrustedRoot::from_json(&doc).with_context(|| format!("reading {}", path.display()))?;
        roots.push((path.display().to_string(), root, true));
    }
    if let Some(path) = &args.ca_roots {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let certificates = Certificate::from_pem_chain(&pem)
            .with_context(|| format!("reading {}", path.display()))?;
        let chains: Vec<Vec<Certificate>> = certificates.into_iter().map(|c| vec![c]).collect();
        roots.push((
            path.display().to_string(),
            TrustedRoot::from_ca_chains(&chains),
            false,
        ));
    }
    let subject = match (&args.cert_identity, &args.cert_identity_regexp) {
        (Some(exact), _) => Some(Match::Exact(exact.clone())),
        (None, Some(pattern)) => Some(Match::Regex(pattern.clone())),
        (None, None) => None,
    };
    let issuer = match (&args.cert_oidc_issuer, &args.cert_oidc_issuer_regexp) {
        (Some(exact), _) => Some(Match::Exact(exact.clone())),
        (None, Some(pattern)) => Some(Match::Regex(pattern.clone())),
        (None, None) => None,
    };
    let mut identities = Vec::new();
    if let Some(subject) = subject {
        if roots.is_empty() {
            bail!("--cert-identity needs --trusted-root or --ca-roots to say which CAs to trust");
        }
        for (name, _, require_tlog) in &roots {
            identities.push(IdentityRule {
                trust_root: name.clone(),
                subject: subject.clone(),
                issuer: issuer.clone(),
                require_tlog: *require_tlog,
            });
        }
    }
    if policy.keys.is_empty() && identities.is_empty() {
        bail!(
            "nothing to verify against: pass --key, or --cert-identity with --trusted-root / --ca-roots"
        );
    }
    policy.trust_roots = roots
        .into_iter()
        .map(|(name, trusted_root, _)| NamedTrustedRoot { name, trusted_root })
        .collect();
    policy.rules.push(Rule {
        name: "command line".into(),
        repositories: vec!["**".into()],
        artifact_types: Vec::new(),
        keys: policy.keys.iter().map(|k| k.name.clone()).collect(),
        identities,
        threshold: 1,
        docker_reference: Default::default(),
        require_tlog_for_keys: false,
        promote_tags: Vec::new(),
    });
    Ok(policy)
}

pub fn report(verdict: &Verdict, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(verdict)?);
        return Ok(());
    }
    if verdict.satisfied {
        for signer in &verdict.verified_signers {
            println!("Verified OK: {} ({})", signer.signer, signer.format);
        }
    } else {
        eprintln!("Verification FAILED:");
        for reason in &verdict.reasons {
            eprintln!("  - {}", reason.message);
        }
    }
    Ok(())
}
