//! Key passwords for the CLI: from an environment variable (cosign's
//! `COSIGN_PASSWORD`, so scripts work with both tools) or a no-echo prompt.

use std::io::IsTerminal as _;

use zeroize::Zeroizing;

/// The variable cosign reads, which Ward reads too.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Why no password could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Neither the variable nor a terminal is available.
    #[error("no password: set {0} or run in a terminal to be prompted")]
    Unavailable(String),
    /// The two prompted passwords differ.
    #[error("the passwords do not match")]
    Mismatch,
    /// The terminal could not be read.
    #[error("reading the password from the terminal failed: {0}")]
    Terminal(#[from] std::io::Error),
}

/// The password from `env_var` if set (even empty, as cosign allows), else
/// prompted on the terminal; with `confirm`, prompted twice.
pub fn read_password(
    env_var: &str,
    prompt: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, PasswordError> {
    if let Some(value) = std::env::var_os(env_var) {
        return Ok(Zeroizing::new(value.to_string_lossy().into_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(PasswordError::Unavailable(env_var.to_owned()));
    }
    let first = Zeroizing::new(rpassword::prompt_password(prompt)?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("Confirm password: ")?);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            first.as_bytes(),
            second.as_bytes(),
        )) {
            return Err(PasswordError::Mismatch);
        }
    }
    Ok(first)
}

/// Why a private key file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("reading {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// No password for an encrypted key.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The key itself is unreadable (or the password is wrong).
    #[error("key {path}: {cause}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        cause: crate::keys::KeyError,
    },
}

/// Loads a private key file, asking for the password (see [`read_password`])
/// only if it is one of cosign's encrypted keys.
pub fn load_private_key(path: &std::path::Path) -> Result<crate::keys::PrivateKey, KeyFileError> {
    let shown = path.display().to_string();
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|cause| KeyFileError::Read {
                path: shown.clone(),
                cause,
            })?,
        );
    let password = if crate::keys::PrivateKey::pem_is_encrypted(&text) {
        Some(read_password(
            PASSWORD_ENV,
            &format!("Password for {shown}: "),
            false,
        )?)
    } else {
        None
    };
    crate::keys::PrivateKey::from_pem(&text, password.as_ref().map(|p| p.as_bytes()))
        .map_err(|cause| KeyFileError::Key { path: shown, cause })
}
