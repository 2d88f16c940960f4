//! Credentials saved by `ward login`, per registry host, in a file only the
//! user can read (`$XDG_CONFIG_HOME/ward/credentials.json`, mode 0600).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::client::Credentials;

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    registries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    username: String,
    secret: String,
}

/// Where credentials are kept.
pub fn path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("WARD_CREDENTIALS_FILE") {
        return Ok(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set; set WARD_CREDENTIALS_FILE")?;
    Ok(base.join("ward/credentials.json"))
}

fn load() -> Result<Stored> {
    let p = path()?;
    match std::fs::read(&p) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("reading {}", p.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn save(stored: &Stored) -> Result<()> {
    let p = path()?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = p.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(stored)?;
    write_private(&tmp, &bytes)?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)?;
    Ok(())
}

/// The saved credentials for `registry`, if any.
pub fn get(registry: &str) -> Result<Option<Credentials>> {
    Ok(load()?.registries.remove(registry).map(|e| Credentials {
        username: e.username,
        password: e.secret,
    }))
}

/// Saves credentials for `registry`.
pub fn set(registry: &str, credentials: &Credentials) -> Result<()> {
    let mut stored = load()?;
    stored.registries.insert(
        registry.to_owned(),
        Entry {
            username: credentials.username.clone(),
            secret: credentials.password.clone(),
        },
    );
    save(&stored)
}

/// Forgets `registry`; returns whether anything was saved.
pub fn remove(registry: &str) -> Result<bool> {
    let mut stored = load()?;
    let had = stored.registries.remove(registry).is_some();
    save(&stored)?;
    Ok(had)
}
