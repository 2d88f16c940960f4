//! `ward pull`: fetch an artifact's files, verifying every digest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use ward_core::Digest;
use ward_core::name::{ImageReference, RepositoryName};

use crate::client::{Registry, Verifier};
use crate::cmd::common::RegistryArgs;
use crate::cmd::push::TITLE_ANNOTATION;

/// Arguments of `ward pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to pull: host[:port]/repository[:tag][@digest].
    reference: String,
    /// Folder to write the files into.
    #[arg(short, long, default_value = ".")]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print a JSON result instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ward pull`.
pub async fn run(args: Args) -> Result<ExitCode> {
    let source = ImageReference::parse(&args.reference)?;
    let registry = args.registry.connect(&source.registry)?;
    let manifest = registry
        .get_manifest(&source.repository, &source.reference())
        .await?;
    if !matches!(
        manifest.media_type.as_str(),
        ward_core::media::OCI_MANIFEST | ward_core::media::DOCKER_MANIFEST
    ) {
        bail!(
            "{} is a {}, not a single artifact: pull one of its manifests by digest",
            args.reference,
            manifest.media_type
        );
    }
    let doc: Value = serde_json::from_slice(&manifest.bytes).context("the manifest is not JSON")?;
    let layers = doc["layers"].as_array().cloned().unwrap_or_default();
    tokio::fs::create_dir_all(&args.output).await?;
    let mut written = Vec::new();
    for layer in &layers {
        let digest: Digest = layer["digest"].as_str().unwrap_or_default().parse()?;
        let size = layer["size"].as_u64().unwrap_or(0);
        let name = match layer["annotations"][TITLE_ANNOTATION].as_str() {
            Some(title) => safe_file_name(title)?,
            None => format!("{}-{}", digest.algorithm(), digest.hex()),
        };
        let path = args.output.join(&name);
        download(
            &registry,
            &source.repository,
            &digest,
            size,
            &path,
            args.json,
        )
        .await?;
        written.push(json!({"file": name, "digest": digest, "size": size}));
    }
    let pinned = source.pinned(&manifest.digest);
    if args.json {
        println!(
            "{}",
            json!({"reference": args.reference, "digest": manifest.digest, "pinned": pinned, "files": written})
        );
    } else {
        println!(
            "pulled {} file(s) into {}",
            written.len(),
            args.output.display()
        );
        println!("pinned: {pinned}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A layer title becomes a file name only if it cannot escape the output folder.
fn safe_file_name(title: &str) -> Result<String> {
    let ok = !title.is_empty()
        && title != "."
        && title != ".."
        && !title.contains(['/', '\\', '\0'])
        && Path::new(title).file_name().is_some_and(|n| n == title);
    if ok {
        Ok(title.to_owned())
    } else {
        bail!(
            "refusing layer title {title:?}: it is not a plain file name and could write outside the output folder"
        )
    }
}

async fn download(
    registry: &Registry,
    repo: &RepositoryName,
    digest: &Digest,
    size: u64,
    path: &Path,
    quiet: bool,
) -> Result<()> {
    let response = registry.get_blob(repo, digest).await?;
    let partial = path.with_extension("ward-partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    let bar = ProgressBar::with_draw_target(
        Some(size),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{msg:30} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_message(format!(
        "pulling {}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    ));
    let mut verifier = Verifier::new(*digest);
    let mut received = 0u64;
    let mut stream = response.bytes_stream();
    let result: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if received > size {
                bail!("blob {digest} is longer than the {size} bytes its descriptor says");
            }
            verifier.update(&chunk);
            file.write_all(&chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        if received != size {
            bail!("blob {digest} is {received} bytes, not the {size} its descriptor says");
        }
        verifier.finish()?;
        file.sync_all().await?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, path).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_cannot_escape_the_output_folder() {
        for ok in ["model.safetensors", "config.json", ".hidden"] {
            assert!(safe_file_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "x\0y"] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
