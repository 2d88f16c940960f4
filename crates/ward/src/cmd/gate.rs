//! `ward gate <reference>`: the deployment gate. Resolves a reference to its
//! digest, fetches every signature the registry holds for it (cosign's
//! `sha256-<hex>.sig` tag and OCI 1.1 referrers), verifies them locally against
//! the keys, certificate identities or trust-policy file given, and prints one
//! decision with its reasons and the reference to pin. Exit 0 allows, 1
//! refuses, 2 is an error (the registry could not be read, bad arguments).
//! The registry's scan and quarantine status (`/api/v1/scan-status`, read with
//! the same credentials) joins the same decision: a quarantined artifact or one
//! its repository's scan policy refuses is refused here too.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use serde::Serialize;
use ward_core::Digest;
use ward_core::name::{ImageReference, Reference, RepositoryName, Tag};
use ward_sign::oci::{self, SignatureLayers};
use ward_sign::policy::{Candidate, TrustPolicy, Verdict};
use ward_sign::verify::{Context, Subject};

use super::common::RegistryArgs;
use super::verify::{TrustArgs, command_line_policy};
use crate::client::Registry;

/// What the gate reads from the registry for one decision (the server's
/// `[signatures]` limits, with the same defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct ReadLimits {
    /// Most signature manifests read for one subject (tag scheme plus referrers).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub signature_manifests_max: u32,
    /// Largest signature blob read, in bytes (payloads and bundles are a few KiB).
    #[arg(long, default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub signature_bytes_max: u64,
    /// Most model files read from one model manifest.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub model_files_max: u32,
}

/// Arguments of `ward gate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What is about to be deployed: `host[:port]/name[:tag][@digest]`.
    reference: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// A trust-policy file (JSON: keys, trust_roots, rules) instead of --key / --cert-identity.
    #[arg(long, conflicts_with_all = ["key", "cert_identity", "cert_identity_regexp"])]
    policy: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    limits: ReadLimits,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
}

/// The gate's one decision.
#[derive(Debug, Serialize)]
struct Decision {
    /// `allow` or `refuse`.
    decision: &'static str,
    /// What was asked for.
    reference: String,
    /// The digest it resolved to.
    digest: Digest,
    /// The reference to deploy: by digest, never by tag.
    pinned: String,
    /// Why, one sentence each.
    reasons: Vec<String>,
    /// The signature check in full (absent when the registry refused the
    /// manifest itself, e.g. because it is quarantined).
    signatures: Option<Verdict>,
    /// The registry's scan and quarantine status of the artifact, when it
    /// gives one (`/api/v1/scan-status`).
    scan: Option<serde_json::Value>,
}

/// Runs `ward gate`.
pub async fn run(args: Args) -> Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<TrustPolicy>(&text)
                .with_context(|| format!("reading the trust policy {}", path.display()))?
        }
        None => command_line_policy(&args.trust)?,
    }
    .compile()
    .context("compiling the trust policy")?;
    let target = ImageReference::parse(&args.reference)?;
    let registry = args.registry.connect(&target.registry)?;
    let scan = registry
        .api_get(&format!(
            "/scan-status/{}?reference={}",
            target.repository,
            target.reference()
        ))
        .await?;
    let scan_refusal = scan
        .as_ref()
        .filter(|s| s["allowed"] == false)
        .map(|s| format!("scan: {}", s["reason"].as_str().unwrap_or("refused")));
    let manifest = match registry
        .get_manifest(&target.repository, &target.reference())
        .await
    {
        Ok(m) => m,
        Err(e) => {
            let (Some(reason), Some(digest)) = (
                &scan_refusal,
                scan.as_ref()
                    .and_then(|s| s["digest"].as_str())
                    .and_then(|d| d.parse::<Digest>().ok()),
            ) else {
                return Err(e);
            };
            let decision = Decision {
                decision: "refuse",
                reference: args.reference.clone(),
                digest,
                pinned: target.pinned(&digest),
                reasons: vec![reason.clone()],
                signatures: None,
                scan,
            };
            return report(&decision, false, args.json);
        }
    };
    let digest = manifest.digest;
    let candidates = signatures_of(&registry, &target.repository, &digest, &args.limits).await?;
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
    let artifact_type = parsed["artifactType"]
        .as_str()
        .or_else(|| parsed["config"]["mediaType"].as_str())
        .map(str::to_owned);
    // Model-signing bundles list files; a model stored one file per layer
    // offers those files by their layer digests.
    let model = oci::model_files(&manifest.bytes, args.limits.model_files_max as usize).ok();
    let subject = Subject {
        repository: target.repository.as_str(),
        digest: Some(digest),
        artifact_type: artifact_type.as_deref(),
        model: model
            .as_ref()
            .map(|m| m as &dyn ward_sign::model::ModelSource),
    };
    let verdict = policy.evaluate(&subject, &candidates, &Context::now());
    let mut reasons = Vec::new();
    if !verdict.covered {
        reasons.push(format!(
            "no rule of the trust policy covers {}",
            target.repository
        ));
    } else if verdict.satisfied {
        reasons.push(verdict.summary());
    } else if candidates.is_empty() {
        reasons.push(format!("{} has no signatures in the registry", digest));
    } else {
        reasons.extend(verdict.reasons.iter().map(|r| r.message.clone()));
    }
    reasons.push(
        scan_refusal
            .clone()
            .unwrap_or_else(|| scan_summary(scan.as_ref())),
    );
    let allowed = verdict.covered && verdict.satisfied && scan_refusal.is_none();
    let decision = Decision {
        decision: if allowed { "allow" } else { "refuse" },
        reference: args.reference.clone(),
        digest,
        pinned: target.pinned(&digest),
        reasons,
        signatures: Some(verdict),
        scan,
    };
    report(&decision, allowed, args.json)
}

/// One line on the scan state when it does not refuse.
fn scan_summary(scan: Option<&serde_json::Value>) -> String {
    let Some(scan) = scan else {
        return "scan: the registry gives no scan status (sign in to see it)".to_owned();
    };
    let blobs = scan["blobs"].as_array().cloned().unwrap_or_default();
    let scanned = blobs.iter().filter(|b| b["state"] == "scanned").count();
    let worst = blobs
        .iter()
        .filter_map(|b| b["max_severity"].as_str())
        .filter_map(|s| s.parse::<ward_scan::Severity>().ok())
        .max();
    let mut pending = if scanned < blobs.len() {
        format!(", {} not scanned yet", blobs.len() - scanned)
    } else {
        String::new()
    };
    let incomplete = blobs
        .iter()
        .filter(|b| b["unread_parts"].as_u64().is_some_and(|n| n > 0))
        .count();
    if incomplete > 0 {
        pending.push_str(&format!(", {incomplete} only partly readable"));
    }
    format!(
        "scan: {scanned} of {} blob(s) scanned, worst finding {}{pending}; not quarantined",
        blobs.len(),
        worst.map_or("none", |s| s.as_str())
    )
}

fn report(decision: &Decision, allowed: bool, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else if allowed {
        println!("ALLOW {}", decision.pinned);
        for r in &decision.reasons {
            println!("  - {r}");
        }
    } else {
        eprintln!("REFUSE {}", decision.pinned);
        for r in &decision.reasons {
            eprintln!("  - {r}");
        }
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every signature the registry holds for `digest` in `repo`: the layers of
/// the cosign tag-scheme manifest and of each signature referrer.
pub async fn signatures_of(
    registry: &Registry,
    repo: &RepositoryName,
    digest: &Digest,
    limits: &ReadLimits,
) -> Result<Vec<Candidate>> {
    let bytes_max = limits.signature_bytes_max;
    let mut manifests: Vec<(String, Bytes)> = Vec::new();
    let tag = Tag::parse(&oci::signature_tag(digest))?;
    if let Some(m) = registry
        .get_manifest_if_any(repo, &Reference::Tag(tag.clone()))
        .await?
    {
        manifests.push((tag.to_string(), m.bytes));
    }
    for referrer in registry.referrers(repo, digest).await? {
        let kind = referrer["artifactType"].as_str().unwrap_or_default();
        if !oci::is_signature_artifact_type(kind) {
            continue;
        }
        if manifests.len() >= limits.signature_manifests_max as usize {
            break;
        }
        let Some(d) = referrer["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let m = registry.get_manifest(repo, &Reference::Digest(d)).await?;
        manifests.push((format!("referrer {d}"), m.bytes));
    }
    let mut candidates = Vec::new();
    for (source, bytes) in manifests {
        let SignatureLayers { layers, .. } = match oci::signature_layers(&bytes) {
            Ok(l) => l,
            Err(_) => continue,
        };
        for (i, layer) in layers.iter().enumerate() {
            if layer.descriptor.size > bytes_max {
                bail!(
                    "signature layer {} is {} bytes, over --signature-bytes-max ({bytes_max})",
                    layer.descriptor.digest,
                    layer.descriptor.size
                );
            }
            let blob = registry
                .get_small_blob(repo, &layer.descriptor.digest, bytes_max)
                .await?;
            if let Ok(evidence) = layer.evidence(blob.to_vec()) {
                candidates.push(Candidate {
                    source: format!("{source} layer {i}"),
                    evidence,
                });
            }
        }
    }
    Ok(candidates)
}
