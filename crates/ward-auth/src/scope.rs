//! Docker token-auth scopes: `repository:ml/fraud:pull,push`, `registry:catalog:*`.
//!
//! Grammar (distribution's token spec): `type:name:action[,action]*`, several
//! scopes separated by spaces. The type is everything before the first `:`,
//! the actions everything after the last one, the name what lies between; the
//! name must then be a valid OCI repository name, so names with a `:` (a
//! `host:port/` prefix) are refused.
//!
//! Parsing reports rather than bails: [`parse_scopes`] returns every scope it
//! could read plus an error for each part it could not, so the token endpoint
//! can grant what is valid (the spec's "grant less, never fail") and log the rest.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::echo::Echo;
use crate::pattern::is_valid_repository_name;
use crate::policy::Action;

/// Limits on a scope request.
#[derive(Clone, Debug)]
pub struct ScopeLimits {
    /// Most scopes in one request; the rest are reported as errors.
    pub scopes_max: usize,
    /// Longest single scope, in bytes.
    pub scope_bytes_max: usize,
}

impl Default for ScopeLimits {
    fn default() -> Self {
        Self {
            scopes_max: 32,
            scope_bytes_max: 512,
        }
    }
}

/// An action in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeAction {
    /// `pull`.
    Pull,
    /// `push`.
    Push,
    /// `delete`.
    Delete,
    /// `*`: every action on the resource.
    Any,
}

impl ScopeAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeAction::Pull => "pull",
            ScopeAction::Push => "push",
            ScopeAction::Delete => "delete",
            ScopeAction::Any => "*",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(ScopeAction::Pull),
            "push" => Some(ScopeAction::Push),
            "delete" => Some(ScopeAction::Delete),
            "*" => Some(ScopeAction::Any),
            _ => None,
        }
    }
}

/// What a scope is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeResource {
    /// `repository:<name>`.
    Repository(String),
    /// `registry:catalog`.
    Catalog,
}

/// One parsed scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// What it is about.
    pub resource: ScopeResource,
    /// The actions asked for, sorted, without duplicates.
    pub actions: Vec<ScopeAction>,
}

/// Why (part of) a scope was not understood. Hostile input is echoed back
/// escaped and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not `type:name:actions`.
    #[error("scope {0} is not type:name:actions")]
    Malformed(Echo),
    /// A type other than `repository` or `registry`, or with a class (`repository(plugin)`).
    #[error("scope {0}: unsupported resource type; use repository or registry")]
    UnsupportedType(Echo),
    /// The name is not a valid repository name.
    #[error(
        "scope {0}: invalid repository name (lowercase letters, digits, separators '.', '_', '-', components joined by '/')"
    )]
    BadRepositoryName(Echo),
    /// `registry:` with a name other than `catalog`, or `catalog` with an action other than `*`.
    #[error("scope {0}: the only registry scope is registry:catalog:*")]
    BadRegistryScope(Echo),
    /// An action other than `pull`, `push`, `delete`, `*`.
    #[error("scope {scope}: unknown action {action}; use pull, push, delete or *")]
    UnknownAction {
        /// The scope.
        scope: Echo,
        /// The action.
        action: Echo,
    },
    /// No action at all.
    #[error("scope {0} names no action")]
    NoActions(Echo),
    /// Longer than [`ScopeLimits::scope_bytes_max`].
    #[error("a scope of {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`ScopeLimits::scopes_max`] scopes.
    #[error("more than {max} scopes requested; the rest were ignored")]
    TooMany {
        /// The limit.
        max: usize,
    },
}

/// Everything read from a scope request, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedScopes {
    /// Valid scopes; repeated resources are merged.
    pub scopes: Vec<Scope>,
    /// One entry per part that was not understood.
    pub errors: Vec<ScopeError>,
}

/// Parses space-separated scopes (join several `scope` query parameters with spaces).
pub fn parse_scopes(input: &str, limits: &ScopeLimits) -> ParsedScopes {
    let mut out = ParsedScopes::default();
    for (i, part) in input.split(' ').filter(|p| !p.is_empty()).enumerate() {
        if i == limits.scopes_max {
            out.errors.push(ScopeError::TooMany {
                max: limits.scopes_max,
            });
            break;
        }
        if part.len() > limits.scope_bytes_max {
            out.errors.push(ScopeError::TooLong {
                len: part.len(),
                max: limits.scope_bytes_max,
            });
            continue;
        }
        parse_one(part, &mut out);
    }
    out
}

fn parse_one(text: &str, out: &mut ParsedScopes) {
    let echo = || Echo::of(text);
    let (Some((kind, rest)), Some((_, actions))) = (text.split_once(':'), text.rsplit_once(':'))
    else {
        return out.errors.push(ScopeError::Malformed(echo()));
    };
    let Some((name, _)) = rest.rsplit_once(':') else {
        return out.errors.push(ScopeError::Malformed(echo()));
    };
    let resource = match kind {
        "repository" if is_valid_repository_name(name) => {
            ScopeResource::Repository(name.to_owned())
        }
        "repository" => return out.errors.push(ScopeError::BadRepositoryName(echo())),
        "registry" if name == "catalog" => ScopeResource::Catalog,
        "registry" => return out.errors.push(ScopeError::BadRegistryScope(echo())),
        _ => return out.errors.push(ScopeError::UnsupportedType(echo())),
    };
    let mut parsed = Vec::new();
    for action in actions.split(',').filter(|a| !a.is_empty()) {
        match (ScopeAction::parse(action), &resource) {
            (Some(ScopeAction::Any), ScopeResource::Catalog) => parsed.push(ScopeAction::Any),
            (_, ScopeResource::Catalog) => out.errors.push(ScopeError::BadRegistryScope(echo())),
            (Some(a), _) => parsed.push(a),
            (None, _) => out.errors.push(ScopeError::UnknownAction {
                scope: echo(),
                action: Echo::of(action),
            }),
        }
    }
    if parsed.is_empty() {
        if actions.split(',').all(str::is_empty) {
            out.errors.push(ScopeError::NoActions(echo()));
        }
        return;
    }
    merge(out, resource, parsed);
}

fn merge(out: &mut ParsedScopes, resource: ScopeResource, mut actions: Vec<ScopeAction>) {
    let scope = match out.scopes.iter().position(|s| s.resource == resource) {
        Some(i) => &mut out.scopes[i],
        None => {
            out.scopes.push(Scope {
                resource,
                actions: Vec::new(),
            });
            let last = out.scopes.len() - 1;
            &mut out.scopes[last]
        }
    };
    scope.actions.append(&mut actions);
    scope.actions.sort();
    scope.actions.dedup();
}

/// One entry of a token's `access` claim (the Docker token spec's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceActions {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Repository name, or `catalog`.
    pub name: String,
    /// Granted actions: `pull`, `push`, `delete`, or `*` for the catalog.
    pub actions: Vec<String>,
}

/// The Ward actions a scope action needs.
fn ward_actions(resource: &ScopeResource, action: ScopeAction) -> &'static [(Action, ScopeAction)] {
    const REPOSITORY_ALL: &[(Action, ScopeAction)] = &[
        (Action::Pull, ScopeAction::Pull),
        (Action::Push, ScopeAction::Push),
        (Action::Delete, ScopeAction::Delete),
    ];
    match (resource, action) {
        (ScopeResource::Catalog, _) => &[(Action::Catalog, ScopeAction::Any)],
        (_, ScopeAction::Pull) => &REPOSITORY_ALL[0..1],
        (_, ScopeAction::Push) => &REPOSITORY_ALL[1..2],
        (_, ScopeAction::Delete) => &REPOSITORY_ALL[2..3],
        (_, ScopeAction::Any) => REPOSITORY_ALL,
    }
}

impl Scope {
    /// A repository scope, for building a `WWW-Authenticate` challenge.
    pub fn repository(name: impl Into<String>, actions: &[ScopeAction]) -> Self {
        let mut actions = actions.to_vec();
        actions.sort();
        actions.dedup();
        Self {
            resource: ScopeResource::Repository(name.into()),
            actions,
        }
    }

    /// The repository this scope is about (`None` for the catalog).
    pub fn repository_name(&self) -> Option<&str> {
        match &self.resource {
            ScopeResource::Repository(n) => Some(n),
            ScopeResource::Catalog => None,
        }
    }

    /// The intersection of what was asked and what `allowed` permits, as an
    /// `access` entry; `None` when nothing is granted. `*` on a repository is
    /// granted as the individual actions that are allowed.
    pub fn grant(&self, mut allowed: impl FnMut(Action) -> bool) -> Option<ResourceActions> {
        let mut granted: Vec<ScopeAction> = Vec::new();
        for &asked in &self.actions {
            for &(action, wire) in ward_actions(&self.resource, asked) {
                if !granted.contains(&wire) && allowed(action) {
                    granted.push(wire);
                }
            }
        }
        if granted.is_empty() {
            return None;
        }
        granted.sort();
        let (resource_type, name) = match &self.resource {
            ScopeResource::Repository(n) => ("repository", n.as_str()),
            ScopeResource::Catalog => ("registry", "catalog"),
        };
        Some(ResourceActions {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions: granted.iter().map(|a| a.as_str().to_owned()).collect(),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            ScopeResource::Repository(n) => write!(f, "repository:{n}:")?,
            ScopeResource::Catalog => f.write_str("registry:catalog:")?,
        }
        for (i, a) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

/// Whether an `access` claim lets a request perform `action` on `repository`
/// (`None` for registry-wide actions). Actions without a scope form
/// (`admin:*`, `registry:DeleteRepository`) are never carried by tokens.
pub fn access_permits(
    access: &[ResourceActions],
    action: Action,
    repository: Option<&str>,
) -> bool {
    let (resource_type, name, wire) = match (action, repository) {
        (Action::Pull | Action::ListTags, Some(r)) => ("repository", r, "pull"),
        (Action::Push, Some(r)) => ("repository", r, "push"),
        (Action::Delete, Some(r)) => ("repository", r, "delete"),
        (Action::Catalog, None) => ("registry", "catalog", "*"),
        _ => return false,
    };
    access.iter().any(|entry| {
        entry.resource_type == resource_type
            && entry.name == name
            && entry.actions.iter().any(|a| a == wire || a == "*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScopeAction::*;

    fn repo(name: &str, actions: &[ScopeAction]) -> Scope {
        Scope::repository(name, actions)
    }

    #[test]
    fn parse_table() {
        let limits = ScopeLimits::default();
        let cases: Vec<(&str, Vec<Scope>, usize)> = vec![
            (
                "repository:ml/fraud:pull",
                vec![repo("ml/fraud", &[Pull])],
                0,
            ),
            (
                "repository:ml/fraud:pull,push",
                vec![repo("ml/fraud", &[Pull, Push])],
                0,
            ),
            (
                "repository:ml/fraud:push,pull,push",
                vec![repo("ml/fraud", &[Pull, Push])],
                0,
            ),
            ("repository:x:*", vec![repo("x", &[Any])], 0),
            ("repository:a/b/c:delete", vec![repo("a/b/c", &[Delete])], 0),
            (
                "registry:catalog:*",
                vec![Scope {
                    resource: ScopeResource::Catalog,
                    actions: vec![Any],
                }],
                0,
            ),
            (
                "repository:a:pull repository:b:push",
                vec![repo("a", &[Pull]), repo("b", &[Push])],
                0,
            ),
            (
                "repository:a:pull  repository:a:push",
                vec![repo("a", &[Pull, Push])],
                0,
            ),
            ("", vec![], 0),
            ("repository:a:pull,bogus", vec![repo("a", &[Pull])], 1),
            ("repository:a:bogus", vec![], 1),
            ("repository:a:", vec![], 1),
            ("repository:a", vec![], 1),
            ("repository", vec![], 1),
            ("repository:localhost:5000/a:pull", vec![], 1),
            ("repository:ML/a:pull", vec![], 1),
            ("repository::pull", vec![], 1),
            ("repository(plugin):a:pull", vec![], 1),
            ("registry:users:*", vec![], 1),
            ("registry:catalog:pull", vec![], 1),
            ("garbage repository:ok:pull", vec![repo("ok", &[Pull])], 1),
        ];
        for (input, want, errors) in cases {
            let got = parse_scopes(input, &limits);
            assert_eq!(got.scopes, want, "{input:?}");
            assert_eq!(got.errors.len(), errors, "{input:?}: {:?}", got.errors);
        }
    }

    #[test]
    fn error_messages_are_typed_and_escaped() {
        let limits = ScopeLimits::default();
        let cases = [
            (
                "repository:a",
                r#"scope "repository:a" is not type:name:actions"#,
            ),
            (
                "repository:a:fly",
                r#"scope "repository:a:fly": unknown action "fly"; use pull, push, delete or *"#,
            ),
            (
                "repo:a:pull",
                r#"scope "repo:a:pull": unsupported resource type"#,
            ),
            (
                "repository:a\u{1b}[31m:pull",
                r#"scope "repository:a\u{1b}[31m:pull": invalid repository name"#,
            ),
            (
                "repository:a:,",
                r#"scope "repository:a:," names no action"#,
            ),
        ];
        for (input, want) in cases {
            let got = parse_scopes(input, &limits);
            let message = got.errors[0].to_string();
            assert!(
                message.starts_with(want),
                "{input:?}\n got: {message}\nwant: {want}"
            );
        }
        let long = format!("repository:{}:pull", "a".repeat(600));
        assert!(matches!(
            parse_scopes(&long, &limits).errors[..],
            [ScopeError::TooLong { max: 512, .. }]
        ));
    }

    #[test]
    fn too_many_scopes_are_cut() {
        let limits = ScopeLimits {
            scopes_max: 2,
            ..ScopeLimits::default()
        };
        let got = parse_scopes(
            "repository:a:pull repository:b:pull repository:c:pull",
            &limits,
        );
        assert_eq!(got.scopes.len(), 2);
        assert_eq!(got.errors, vec![ScopeError::TooMany { max: 2 }]);
    }

    #[test]
    fn grant_intersects() {
        let only = |allowed: &'static [Action]| move |a: Action| allowed.contains(&a);
        let catalog = Scope {
            resource: ScopeResource::Catalog,
            actions: vec![Any],
        };
        type Case = (Scope, &'static [Action], Option<Vec<&'static str>>);
        let cases: Vec<Case> = vec![
            (
                repo("a", &[Pull, Push]),
                &[Action::Pull],
                Some(vec!["pull"]),
            ),
            (
                repo("a", &[Pull, Push]),
                &[Action::Pull, Action::Push, Action::Delete],
                Some(vec!["pull", "push"]),
            ),
            (
                repo("a", &[Any]),
                &[Action::Pull, Action::Delete],
                Some(vec!["pull", "delete"]),
            ),
            (repo("a", &[Any, Pull]), &[Action::Pull], Some(vec!["pull"])),
            (repo("a", &[Push]), &[Action::Pull], None),
            (repo("a", &[Delete]), &[Action::DeleteRepository], None),
            (catalog.clone(), &[Action::Catalog], Some(vec!["*"])),
            (catalog, &[Action::Pull], None),
        ];
        for (scope, allowed, want) in cases {
            let got = scope.grant(only(allowed));
            assert_eq!(
                got.as_ref().map(|g| g.actions.clone()),
                want.map(|w| w.iter().map(|s| s.to_string()).collect()),
                "{scope} with {allowed:?}"
            );
        }
        let g = repo("ml/fraud", &[Pull]).grant(|_| true).unwrap();
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            serde_json::json!({"type": "repository", "name": "ml/fraud", "actions": ["pull"]})
        );
    }

    #[test]
    fn display_is_the_wire_form() {
        assert_eq!(
            repo("ml/fraud", &[Push, Pull]).to_string(),
            "repository:ml/fraud:pull,push"
        );
        let catalog = parse_scopes("registry:catalog:*", &ScopeLimits::default()).scopes;
        assert_eq!(catalog[0].to_string(), "registry:catalog:*");
    }

    #[test]
    fn access_permits_table() {
        let access = vec![
            ResourceActions {
                resource_type: "repository".into(),
                name: "ml/fraud".into(),
                actions: vec!["pull".into()],
            },
            ResourceActions {
                resource_type: "repository".into(),
                name: "ml/all".into(),
                actions: vec!["*".into()],
            },
            ResourceActions {
                resource_type: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            },
        ];
        let cases: &[(Action, Option<&str>, bool)] = &[
            (Action::Pull, Some("ml/fraud"), true),
            (Action::ListTags, Some("ml/fraud"), true),
            (Action::Push, Some("ml/fraud"), false),
            (Action::Pull, Some("ml/fraud/x"), false),
            (Action::Pull, Some("ml"), false),
            (Action::Push, Some("ml/all"), true),
            (Action::Delete, Some("ml/all"), true),
            (Action::DeleteRepository, Some("ml/all"), false),
            (Action::ManagePolicies, Some("ml/all"), false),
            (Action::Catalog, None, true),
            (Action::Pull, None, false),
        ];
        for (action, repository, want) in cases {
            assert_eq!(
                access_permits(&access, *action, *repository),
                *want,
                "{action} {repository:?}"
            );
        }
        assert!(!access_permits(&[], Action::Catalog, None));
    }
}
