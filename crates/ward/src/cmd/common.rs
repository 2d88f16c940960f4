//! Options shared by every command that talks to a registry.

use anyhow::{Context, Result};

use crate::client::{Credentials, Registry};

/// How to reach and authenticate to a registry.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// User or robot name (or set WARD_USERNAME).
    #[arg(long, env = "WARD_USERNAME")]
    pub username: Option<String>,
    /// Read the password or token from standard input (else WARD_PASSWORD).
    #[arg(long)]
    pub password_stdin: bool,
    /// Speak plain HTTP even to a non-loopback host (loopback hosts default to it).
    #[arg(long)]
    pub plain_http: bool,
}

impl RegistryArgs {
    /// A client for `host` with these options: explicit credentials win, then
    /// those saved by `ward login`.
    pub fn connect(&self, host: &str) -> Result<Registry> {
        Registry::new(
            host,
            self.plain_http.then_some(true),
            self.credentials(host)?,
        )
    }

    /// The credentials to use for `host`, if any.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        match &self.username {
            Some(username) => Ok(Some(Credentials {
                username: username.clone(),
                password: self.password()?,
            })),
            None => crate::creds::get(host),
        }
    }

    /// The base URL of `host`'s API.
    pub fn base_url(&self, host: &str) -> String {
        crate::client::base_url(host, self.plain_http.then_some(true))
    }

    fn password(&self) -> Result<String> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
        }
        std::env::var("WARD_PASSWORD")
            .context("--username needs a password: set WARD_PASSWORD or use --password-stdin")
    }
}
