//! `ward admin`: users, groups, robots, tokens, roles, policies, repository
//! settings and immutability rules, through the management API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Credentials, describe};
use crate::cmd::common::RegistryArgs;

/// Arguments of `ward admin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry host[:port] (or WARD_REGISTRY).
    #[arg(long, env = "WARD_REGISTRY")]
    registry: String,
    #[command(flatten)]
    auth: RegistryArgs,
    /// Print the API's JSON answer.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Local users.
    #[command(subcommand)]
    User(UserCmd),
    /// Groups of users.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Robot accounts for CI/CD and services.
    #[command(subcommand)]
    Robot(RobotCmd),
    /// Your personal access tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Role bindings (read, write, delete, admin on repository patterns).
    #[command(subcommand)]
    Role(RoleCmd),
    /// IAM-style policy documents.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Repository labels and public pull.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Tag immutability rules.
    #[command(subcommand)]
    Immutability(ImmutabilityCmd),
    /// The signature trust policy the pull and promotion gates enforce.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Scan results and rescans.
    #[command(subcommand)]
    Scan(ScanCmd),
    /// Quarantined artifacts: list, quarantine, release.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
}

#[derive(Debug, Subcommand)]
enum ScanCmd {
    /// Show a blob's stored scan result (or that it is queued).
    Show { digest: String },
    /// Queue a rescan of a blob now.
    Rescan { digest: String },
    /// Show the scan and quarantine state of an artifact (tag or digest).
    Status { name: String, reference: String },
}

#[derive(Debug, Subcommand)]
enum QuarantineCmd {
    /// List quarantined digests.
    List,
    /// Quarantine a manifest or blob digest in every repository.
    Add {
        digest: String,
        #[arg(long)]
        reason: String,
    },
    /// Release a digest (needs the Admin role and a reason, kept in the audit log).
    Release {
        digest: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum TrustCmd {
    /// Show the trust policy and its revision.
    Get,
    /// Replace the trust policy with a JSON file (keys, trust_roots, rules).
    Put { file: std::path::PathBuf },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// List users.
    List,
    /// Create a user; the password is read from standard input.
    Create { name: String },
    /// Set a user's password, read from standard input.
    Password { name: String },
    /// Disable a user (their tokens stop working at once).
    Disable { name: String },
    /// Enable a user.
    Enable { name: String },
    /// Delete a user.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum GroupCmd {
    /// List groups.
    List,
    /// Create a group.
    Create { name: String },
    /// Delete a group.
    Delete { name: String },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
}

#[derive(Debug, Subcommand)]
enum RobotCmd {
    /// List robots.
    List,
    /// Create a robot; its secret is printed once.
    Create {
        name: String,
        /// ROLE=PATTERN, e.g. write=ci/** or read=prod/* (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a robot: its secret and tokens stop working at once.
    Revoke { name: String },
    /// Delete a robot and its role bindings.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// List your access tokens.
    List,
    /// Create an access token; printed once.
    Create {
        name: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke an access token.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
enum RoleCmd {
    /// List role bindings.
    List,
    /// Bind ROLE to SUBJECT (user:NAME, group:NAME, robot:NAME) on REPOSITORIES (a pattern like ml/*).
    Add {
        subject: String,
        role: String,
        repositories: String,
    },
    /// Remove a role binding.
    Remove {
        subject: String,
        role: String,
        repositories: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// List policies.
    List,
    /// Show a policy document.
    Get { name: String },
    /// Create or replace a policy from a JSON file.
    Put { name: String, file: PathBuf },
    /// Delete a policy.
    Delete { name: String },
    /// Explain the decision for PRINCIPAL (user:NAME, robot:NAME, anonymous) doing ACTION on REPO[:TAG].
    Explain {
        principal: String,
        action: String,
        target: String,
        #[arg(long)]
        source_ip: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RepoCmd {
    /// Show a repository's settings.
    Get { name: String },
    /// Replace a repository's labels: KEY=VALUE ... (none clears them).
    Labels { name: String, labels: Vec<String> },
    /// Make a repository publicly pullable (true) or not (false).
    Public {
        name: String,
        #[arg(action = clap::ArgAction::Set)]
        public: bool,
    },
    /// Set a repository's scan policy (or `--default` to use the registry's).
    ScanPolicy {
        name: String,
        /// Refuse pulls of content with a finding at or above this severity.
        #[arg(long)]
        block_at: Option<String>,
        /// Quarantine content with a finding at or above this severity
        /// (default: the registry's, CRITICAL unless configured).
        #[arg(long)]
        quarantine_at: Option<String>,
        /// Never quarantine this repository's content automatically.
        #[arg(long, conflicts_with = "quarantine_at")]
        no_quarantine: bool,
        /// Refuse pulls of content not scanned yet.
        #[arg(long)]
        block_unscanned: bool,
        /// The severity a scan that left part of a blob unread (past a scanner
        /// limit, or encrypted) counts as (default: CRITICAL).
        #[arg(long)]
        incomplete_as: Option<String>,
        /// Judge incompletely scanned content by its findings alone.
        #[arg(long, conflicts_with = "incomplete_as")]
        ignore_incomplete: bool,
        /// Remove the repository's own policy.
        #[arg(long, conflicts_with_all = ["block_at", "quarantine_at", "no_quarantine", "block_unscanned", "incomplete_as", "ignore_incomplete"])]
        default: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ImmutabilityCmd {
    /// List rules.
    List,
    /// Protect tags of repositories matching a pattern.
    Protect {
        name: String,
        /// Repository patterns (e.g. prod/**; repeatable; default every repository).
        #[arg(long = "repositories", default_value = "*")]
        repositories: Vec<String>,
        /// Only repositories with all these labels, KEY=VALUE (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Tag prefixes that become immutable (e.g. prod- v1.).
        #[arg(long = "prefix")]
        prefixes: Vec<String>,
        /// Tag globs that become immutable.
        #[arg(long = "glob")]
        globs: Vec<String>,
        /// Make every tag immutable.
        #[arg(long)]
        all_tags: bool,
        /// Tags exempt from the rule.
        #[arg(long = "exclude")]
        excludes: Vec<String>,
        /// Tags that may not be pushed at all (e.g. latest).
        #[arg(long = "forbid")]
        forbid: Vec<String>,
    },
    /// Create or replace a rule from a JSON file.
    Put { name: String, file: PathBuf },
    /// Delete a rule.
    Delete { name: String },
}

struct Api {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.credentials.username, Some(&self.credentials.password));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        if !response.status().is_success() {
            bail!("{}", describe(response).await);
        }
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(response.json().await.unwrap_or(Value::Null))
    }
}

fn stdin_secret(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    let s = line.trim_end_matches(['\n', '\r']).to_owned();
    if s.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(s)
}

fn read_json(file: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// Encodes a repository name for the path, keeping its slashes.
fn repo_path(name: &str) -> String {
    name.split('/')
        .map(|s| s.replace('%', "%25"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs `ward admin`.
pub async fn run(args: Args) -> Result<ExitCode> {
    let credentials = args
        .auth
        .credentials(&args.registry)?
        .context("no credentials: run `ward login` first, or pass --username with WARD_PASSWORD")?;
    let api = Api {
        http: crate::client::api_http()?,
        base: args.auth.base_url(&args.registry),
        credentials,
    };
    let (result, secret_field) = dispatch(&api, args.what).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if let Some(field) = secret_field {
        println!("{}", result[field].as_str().unwrap_or_default());
        if let Some(note) = result["note"].as_str() {
            eprintln!("{note}");
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    if result.get("allowed") == Some(&Value::Bool(false)) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Performs the call; returns the answer and, for commands that create a
/// secret, the field holding it (printed alone so scripts can capture it).
async fn dispatch(api: &Api, what: What) -> Result<(Value, Option<&'static str>)> {
    use Method as M;
    let plain = |v| Ok((v, None));
    match what {
        What::User(c) => match c {
            UserCmd::List => plain(api.call(M::GET, "/users", None).await?),
            UserCmd::Create { name } => {
                let password = stdin_secret("password")?;
                plain(
                    api.call(
                        M::POST,
                        "/users",
                        Some(json!({"name": name, "password": password})),
                    )
                    .await?,
                )
            }
            UserCmd::Password { name } => {
                let password = stdin_secret("password")?;
                plain(
                    api.call(
                        M::PATCH,
                        &format!("/users/{name}"),
                        Some(json!({"password": password})),
                    )
                    .await?,
                )
            }
            UserCmd::Disable { name } => plain(
                api.call(
                    M::PATCH,
                    &format!("/users/{name}"),
                    Some(json!({"disabled": true})),
                )
                .await?,
            ),
            UserCmd::Enable { name } => plain(
                api.call(
                    M::PATCH,
                    &format!("/users/{name}"),
                    Some(json!({"disabled": false})),
                )
                .await?,
            ),
            UserCmd::Delete { name } => {
                plain(api.call(M::DELETE, &format!("/users/{name}"), None).await?)
            }
        },
        What::Group(c) => match c {
            GroupCmd::List => plain(api.call(M::GET, "/groups", None).await?),
            GroupCmd::Create { name } => plain(
                api.call(M::POST, "/groups", Some(json!({"name": name})))
                    .await?,
            ),
            GroupCmd::Delete { name } => plain(
                api.call(M::DELETE, &format!("/groups/{name}"), None)
                    .await?,
            ),
            GroupCmd::AddMember { group, user } => plain(
                api.call(M::PUT, &format!("/groups/{group}/members/{user}"), None)
                    .await?,
            ),
            GroupCmd::RemoveMember { group, user } => plain(
                api.call(M::DELETE, &format!("/groups/{group}/members/{user}"), None)
                    .await?,
            ),
        },
        What::Robot(c) => match c {
            RobotCmd::List => plain(api.call(M::GET, "/robots", None).await?),
            RobotCmd::Create {
                name,
                grants,
                description,
                expires_in_days,
            } => {
                let grants = grants
                    .iter()
                    .map(|g| {
                        let (role, repositories) = g
                            .split_once('=')
                            .with_context(|| format!("grant {g:?} is not ROLE=PATTERN"))?;
                        Ok(json!({"role": role, "repositories": repositories}))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let body = json!({"name": name, "description": description, "grants": grants, "expires_in_days": expires_in_days});
                Ok((
                    api.call(M::POST, "/robots", Some(body)).await?,
                    Some("secret"),
                ))
            }
            RobotCmd::Revoke { name } => plain(
                api.call(M::POST, &format!("/robots/{name}/revoke"), None)
                    .await?,
            ),
            RobotCmd::Delete { name } => plain(
                api.call(M::DELETE, &format!("/robots/{name}"), None)
                    .await?,
            ),
        },
        What::Token(c) => match c {
            TokenCmd::List => plain(api.call(M::GET, "/tokens", None).await?),
            TokenCmd::Create {
                name,
                expires_in_days,
            } => {
                let body = json!({"name": name, "expires_in_days": expires_in_days});
                Ok((
                    api.call(M::POST, "/tokens", Some(body)).await?,
                    Some("secret"),
                ))
            }
            TokenCmd::Revoke { name } => plain(
                api.call(M::DELETE, &format!("/tokens/{name}"), None)
                    .await?,
            ),
        },
        What::Role(c) => match c {
            RoleCmd::List => plain(api.call(M::GET, "/role-bindings", None).await?),
            RoleCmd::Add {
                subject,
                role,
                repositories,
            } => plain(
                api.call(
                    M::POST,
                    "/role-bindings",
                    Some(json!({"subject": subject, "role": role, "repositories": repositories})),
                )
                .await?,
            ),
            RoleCmd::Remove {
                subject,
                role,
                repositories,
            } => plain(
                api.call(
                    M::DELETE,
                    "/role-bindings",
                    Some(json!({"subject": subject, "role": role, "repositories": repositories})),
                )
                .await?,
            ),
        },
        What::Policy(c) => match c {
            PolicyCmd::List => plain(api.call(M::GET, "/policies", None).await?),
            PolicyCmd::Get { name } => {
                plain(api.call(M::GET, &format!("/policies/{name}"), None).await?)
            }
            PolicyCmd::Put { name, file } => plain(
                api.call(
                    M::PUT,
                    &format!("/policies/{name}"),
                    Some(read_json(&file)?),
                )
                .await?,
            ),
            PolicyCmd::Delete { name } => plain(
                api.call(M::DELETE, &format!("/policies/{name}"), None)
                    .await?,
            ),
            PolicyCmd::Explain {
                principal,
                action,
                target,
                source_ip,
            } => {
                let (repository, tag) = match target.rsplit_once(':') {
                    Some((r, t)) if !t.contains('/') => (r.to_owned(), Some(t.to_owned())),
                    _ => (target.clone(), None),
                };
                let body = json!({"principal": principal, "action": action, "repository": repository, "tag": tag, "source_ip": source_ip});
                plain(api.call(M::POST, "/policy/explain", Some(body)).await?)
            }
        },
        What::Repo(c) => match c {
            RepoCmd::Get { name } => plain(
                api.call(M::GET, &format!("/repositories/{}", repo_path(&name)), None)
                    .await?,
            ),
            RepoCmd::Labels { name, labels } => {
                let mut map = serde_json::Map::new();
                for l in &labels {
                    let (k, v) = l
                        .split_once('=')
                        .with_context(|| format!("label {l:?} is not KEY=VALUE"))?;
                    map.insert(k.to_owned(), Value::String(v.to_owned()));
                }
                plain(
                    api.call(
                        M::PUT,
                        &format!("/repositories/{}", repo_path(&name)),
                        Some(json!({"labels": map})),
                    )
                    .await?,
                )
            }
            RepoCmd::ScanPolicy {
                name,
                block_at,
                quarantine_at,
                no_quarantine,
                block_unscanned,
                incomplete_as,
                ignore_incomplete,
                default,
            } => {
                let policy = if default {
                    Value::Null
                } else {
                    let mut p = json!({"block_severity": block_at.map(|s| s.to_uppercase()),
                                       "block_unscanned": block_unscanned});
                    if let Some(q) = quarantine_at {
                        p["quarantine_severity"] = json!(q.to_uppercase());
                    } else if no_quarantine {
                        p["quarantine_severity"] = Value::Null;
                    }
                    if let Some(s) = incomplete_as {
                        p["incomplete_severity"] = json!(s.to_uppercase());
                    } else if ignore_incomplete {
                        p["incomplete_severity"] = Value::Null;
                    }
                    p
                };
                plain(
                    api.call(
                        M::PUT,
                        &format!("/repositories/{}", repo_path(&name)),
                        Some(json!({"scan_policy": policy})),
                    )
                    .await?,
                )
            }
            RepoCmd::Public { name, public } => plain(
                api.call(
                    M::PUT,
                    &format!("/repositories/{}", repo_path(&name)),
                    Some(json!({"public": public})),
                )
                .await?,
            ),
        },
        What::Scan(c) => match c {
            ScanCmd::Show { digest } => {
                plain(api.call(M::GET, &format!("/scans/{digest}"), None).await?)
            }
            ScanCmd::Rescan { digest } => {
                plain(api.call(M::POST, &format!("/scans/{digest}"), None).await?)
            }
            ScanCmd::Status { name, reference } => plain(
                api.call(
                    M::GET,
                    &format!("/scan-status/{}?reference={reference}", repo_path(&name)),
                    None,
                )
                .await?,
            ),
        },
        What::Quarantine(c) => match c {
            QuarantineCmd::List => plain(api.call(M::GET, "/quarantines", None).await?),
            QuarantineCmd::Add { digest, reason } => plain(
                api.call(
                    M::PUT,
                    &format!("/quarantines/{digest}"),
                    Some(json!({"reason": reason})),
                )
                .await?,
            ),
            QuarantineCmd::Release { digest, reason } => plain(
                api.call(
                    M::POST,
                    &format!("/quarantines/{digest}/release"),
                    Some(json!({"reason": reason})),
                )
                .await?,
            ),
        },
        What::Trust(c) => match c {
            TrustCmd::Get => plain(api.call(M::GET, "/trust-policy", None).await?),
            TrustCmd::Put { file } => plain(
                api.call(M::PUT, "/trust-policy", Some(read_json(&file)?))
                    .await?,
            ),
        },
        What::Immutability(c) => match c {
            ImmutabilityCmd::List => plain(api.call(M::GET, "/immutability-rules", None).await?),
            ImmutabilityCmd::Protect {
                name,
                repositories,
                labels,
                prefixes,
                globs,
                all_tags,
                excludes,
                forbid,
            } => {
                let mut label_map = serde_json::Map::new();
                for l in &labels {
                    let (k, v) = l
                        .split_once('=')
                        .with_context(|| format!("label {l:?} is not KEY=VALUE"))?;
                    label_map.insert(k.to_owned(), Value::String(v.to_owned()));
                }
                let body = json!({"repositories": repositories, "labels": label_map, "tag_prefixes": prefixes,
                                  "tag_globs": globs, "all_tags": all_tags, "exclude": excludes, "forbid_tags": forbid});
                plain(
                    api.call(M::PUT, &format!("/immutability-rules/{name}"), Some(body))
                        .await?,
                )
            }
            ImmutabilityCmd::Put { name, file } => plain(
                api.call(
                    M::PUT,
                    &format!("/immutability-rules/{name}"),
                    Some(read_json(&file)?),
                )
                .await?,
            ),
            ImmutabilityCmd::Delete { name } => plain(
                api.call(M::DELETE, &format!("/immutability-rules/{name}"), None)
                    .await?,
            ),
        },
    }
}
