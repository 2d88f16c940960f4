//! `ward push`: files as an OCI artifact, the way ORAS does it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use ward_core::name::{ImageReference, Reference};
use ward_core::{Digest, digest::Hasher, media};

use crate::client::Registry;
use crate::cmd::common::RegistryArgs;

/// The annotation naming a layer's file, as ORAS writes it.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Arguments of `ward push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to push: host[:port]/repository[:tag].
    reference: String,
    /// Files to push, each `path` or `path:media/type`.
    #[arg(required = true)]
    files: Vec<String>,
    /// The artifact type (e.g. application/vnd.example.model.v1).
    #[arg(long)]
    artifact_type: Option<String>,
    /// Media type of files given without one.
    #[arg(long, default_value = media::OCTET_STREAM)]
    media_type: String,
    /// Manifest annotation key=value (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Digest of the manifest this artifact refers to (signature, SBOM...).
    #[arg(long)]
    subject: Option<Digest>,
    /// Uploads at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON result instead of text.
    #[arg(long)]
    json: bool,
}

struct Layer {
    path: PathBuf,
    title: String,
    media_type: String,
    digest: Digest,
    size: u64,
}

/// Runs `ward push`.
pub async fn run(args: Args) -> Result<ExitCode> {
    let target = ImageReference::parse(&args.reference)?;
    if target.digest.is_some() {
        bail!(
            "push to a tag (or a bare repository), not a digest: the digest is computed from what is pushed"
        );
    }
    let registry = Arc::new(args.registry.connect(&target.registry)?);
    registry.ping().await?;
    let bars = MultiProgress::with_draw_target(if args.json {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    });
    let mut layers = Vec::new();
    for spec in &args.files {
        layers.push(hash_file(spec, &args.media_type, &bars).await?);
    }
    let uploads = futures::stream::iter(layers.iter().map(|layer| {
        let registry = registry.clone();
        let bars = bars.clone();
        let repo = target.repository.clone();
        async move { upload(&registry, &repo, layer, &bars).await }
    }))
    .buffer_unordered(args.concurrency.max(1))
    .try_collect::<Vec<()>>();
    uploads.await?;

    let config = registry
        .push_bytes(
            &target.repository,
            Bytes::from_static(media::OCI_EMPTY_BYTES),
        )
        .await?;
    let subject = match &args.subject {
        Some(d) => Some(registry.manifest_descriptor(&target.repository, d).await?),
        None => None,
    };
    let manifest = manifest_json(&args, &layers, config, subject)?;
    let tag = match target.reference() {
        Reference::Tag(t) => t.to_string(),
        Reference::Digest(d) => d.to_string(),
    };
    let digest = registry
        .put_manifest(
            &target.repository,
            &tag,
            media::OCI_MANIFEST,
            Bytes::from(manifest),
        )
        .await?;
    let pinned = target.pinned(&digest);
    if args.json {
        let files: Vec<Value> = layers
            .iter()
            .map(|l| json!({"file": l.title, "digest": l.digest, "size": l.size, "mediaType": l.media_type}))
            .collect();
        println!(
            "{}",
            json!({"reference": args.reference, "digest": digest, "pinned": pinned, "layers": files})
        );
    } else {
        println!("pushed {} file(s) to {}", layers.len(), args.reference);
        println!("pinned: {pinned}");
    }
    Ok(ExitCode::SUCCESS)
}

fn split_spec<'a>(spec: &'a str, default_type: &'a str) -> (&'a str, &'a str) {
    match spec.rsplit_once(':') {
        Some((path, t)) if t.contains('/') && !path.is_empty() => (path, t),
        _ => (spec, default_type),
    }
}

fn progress(bars: &MultiProgress, len: u64, what: String) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(len));
    if let Ok(style) =
        ProgressStyle::with_template("{msg:30} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

async fn hash_file(spec: &str, default_type: &str, bars: &MultiProgress) -> Result<Layer> {
    let (path, media_type) = split_spec(spec, default_type);
    let path = PathBuf::from(path);
    let title = file_title(&path)?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().await?.len();
    let bar = progress(bars, size, format!("hashing {title}"));
    let mut hasher = Hasher::new(ward_core::digest::Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if hasher.len_bytes() != size {
        bail!("{} changed while it was being read", path.display());
    }
    Ok(Layer {
        path,
        title,
        media_type: media_type.to_owned(),
        digest: hasher.digest(),
        size,
    })
}

fn file_title(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no usable file name", path.display()))
}

async fn upload(
    registry: &Registry,
    repo: &ward_core::name::RepositoryName,
    layer: &Layer,
    bars: &MultiProgress,
) -> Result<()> {
    if registry.blob_size(repo, &layer.digest).await? == Some(layer.size) {
        return Ok(());
    }
    let bar = progress(bars, layer.size, format!("pushing {}", layer.title));
    let file = tokio::fs::File::open(&layer.path).await?;
    let counting = bar.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
        .inspect_ok(move |b| counting.inc(b.len() as u64));
    registry
        .upload_blob(repo, &layer.digest, layer.size, stream)
        .await?;
    bar.finish_and_clear();
    Ok(())
}

fn manifest_json(
    args: &Args,
    layers: &[Layer],
    config: Digest,
    subject: Option<Value>,
) -> Result<Vec<u8>> {
    let mut annotations = Map::new();
    for a in &args.annotations {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("annotation {a:?} is not KEY=VALUE"))?;
        annotations.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
                "annotations": { TITLE_ANNOTATION: l.title },
            })
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": args.artifact_type.as_deref().unwrap_or("application/vnd.unknown.artifact.v1"),
        "config": { "mediaType": media::OCI_EMPTY, "digest": config, "size": 2, "data": "e30=" },
        "layers": layers,
    });
    if let Some(subject) = subject {
        manifest["subject"] = subject;
    }
    if !annotations.is_empty() {
        manifest["annotations"] = Value::Object(annotations);
    }
    Ok(serde_json::to_vec(&manifest)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs() {
        assert_eq!(split_spec("model.bin", "a/b"), ("model.bin", "a/b"));
        assert_eq!(
            split_spec("model.bin:application/x", "a/b"),
            ("model.bin", "application/x")
        );
        assert_eq!(split_spec("c:\\odd", "a/b"), ("c:\\odd", "a/b"));
    }
}
