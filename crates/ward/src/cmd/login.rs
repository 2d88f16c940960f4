//! `ward login` / `ward logout`: save or forget credentials for a registry.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::client::{Credentials, Registry};
use crate::creds;

/// Arguments of `ward login`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry host[:port].
    registry: String,
    /// User or robot name (prompted for if absent).
    #[arg(short, long)]
    username: Option<String>,
    /// Read the password, robot secret or access token from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Speak plain HTTP to a non-loopback host.
    #[arg(long)]
    plain_http: bool,
}

/// Arguments of `ward logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    registry: String,
}

fn read_line(prompt: &str) -> Result<String> {
    if !prompt.is_empty() {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Checks the credentials against the registry, then saves them.
pub async fn run(args: Args) -> Result<ExitCode> {
    let username = match args.username {
        Some(u) => u,
        None => read_line("Username: ")?,
    };
    let password = if args.password_stdin {
        read_line("")?
    } else {
        rpassword_prompt()?
    };
    if username.is_empty() || password.is_empty() {
        bail!("a username and a password (or robot secret, or access token) are required");
    }
    let credentials = Credentials { username, password };
    let registry = Registry::new(
        &args.registry,
        args.plain_http.then_some(true),
        Some(credentials.clone()),
    )?;
    registry
        .ping()
        .await
        .context("the registry refused these credentials")?;
    creds::set(&args.registry, &credentials)?;
    println!(
        "logged in to {} as {} (saved in {})",
        args.registry,
        credentials.username,
        creds::path()?.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn rpassword_prompt() -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password("Password: ")?)
    } else {
        // Without a terminal there is no echo to hide: read a line.
        read_line("")
    }
}

/// Forgets saved credentials.
pub async fn logout(args: LogoutArgs) -> Result<ExitCode> {
    if creds::remove(&args.registry)? {
        println!("logged out of {}", args.registry);
    } else {
        println!("no saved credentials for {}", args.registry);
    }
    Ok(ExitCode::SUCCESS)
}
