//! Roles (the mission's Read / Write / Delete / Admin table) and their bindings
//! to users, groups and robots on repository patterns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::action::{Action, ActionSet};
use crate::identity::{Principal, PrincipalKind};
use crate::pattern::RepoPattern;

/// A role: a fixed set of actions granted on the repositories a binding names.
///
/// | role | actions |
/// | --- | --- |
/// | `Read` | `registry:Pull`, `registry:ListTags`, `registry:Catalog` |
/// | `Write` | Read + `registry:Push` |
/// | `Delete` | Read + `registry:Delete` |
/// | `Admin` | every action, including managing roles and policies of the matched repositories |
///
/// Registry-wide actions (`registry:Catalog`, `admin:ManageUsers`, ...) are
/// only granted by bindings on the everything pattern `*`, so `Admin` on
/// `ml/**` administers the `ml/` repositories but not the registry's users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Pull artifacts: CI/CD pipelines, inference services.
    Read,
    /// Read and push: automated build systems.
    Write,
    /// Read and delete: cleanup automation.
    Delete,
    /// Everything: security team, registry admins.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Read, Role::Write, Role::Delete, Role::Admin];

    /// The actions this role grants.
    pub const fn actions(self) -> ActionSet {
        match self {
            Role::Read => Action::READ_ONLY,
            Role::Write => Action::READ_ONLY.with(Action::Push),
            Role::Delete => Action::READ_ONLY.with(Action::Delete),
            Role::Admin => ActionSet::ALL,
        }
    }

    /// The name: `Read`, `Write`, `Delete` or `Admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "Read",
            Role::Write => "Write",
            Role::Delete => "Delete",
            Role::Admin => "Admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; roles are Read, Write, Delete and Admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    /// Case-insensitive: `read` is `Read`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Who a role binding is for. Written `user:<name>`, `group:<name>`,
/// `robot:<name>` or `anonymous`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// One user.
    User(String),
    /// Every member of a group (users or robots).
    Group(String),
    /// One robot account.
    Robot(String),
    /// Callers without credentials; only the `Read` role may be bound to them.
    Anonymous,
}

impl Subject {
    /// Whether `principal` is this subject (or a member of this group).
    pub fn matches(&self, principal: &Principal) -> bool {
        match (self, principal.kind) {
            (Subject::User(n), PrincipalKind::User) | (Subject::Robot(n), PrincipalKind::Robot) => {
                *n == principal.name
            }
            (Subject::Group(g), _) => principal.effective_groups().iter().any(|x| x == g),
            (Subject::Anonymous, PrincipalKind::Anonymous) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(n) => write!(f, "user:{n}"),
            Subject::Group(n) => write!(f, "group:{n}"),
            Subject::Robot(n) => write!(f, "robot:{n}"),
            Subject::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Why a subject or binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// Not `user:`, `group:`, `robot:` or `anonymous`.
    #[error("invalid subject {0:?}; write user:<name>, group:<name>, robot:<name> or anonymous")]
    BadSubject(String),
    /// Anonymous callers may only read.
    #[error("anonymous callers can only be given the Read role, not {0}")]
    AnonymousBeyondRead(Role),
}

impl FromStr for Subject {
    type Err = BindingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "anonymous" {
            return Ok(Subject::Anonymous);
        }
        let bad = || BindingError::BadSubject(s.to_owned());
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(bad());
        }
        match kind {
            "user" => Ok(Subject::User(name.to_owned())),
            "group" => Ok(Subject::Group(name.to_owned())),
            "robot" => Ok(Subject::Robot(name.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A role granted to a subject on the repositories matching a pattern.
///
/// Stored as JSON: `{"subject":"robot:ci","role":"Write","repositories":"ml/**"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleBinding {
    subject: Subject,
    role: Role,
    repositories: RepoPattern,
}

impl RoleBinding {
    /// Validates a binding: anonymous callers may only get `Read`.
    pub fn new(
        subject: Subject,
        role: Role,
        repositories: RepoPattern,
    ) -> Result<Self, BindingError> {
        if subject == Subject::Anonymous && role != Role::Read {
            return Err(BindingError::AnonymousBeyondRead(role));
        }
        Ok(Self {
            subject,
            role,
            repositories,
        })
    }

    /// Who it is for.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// What it grants.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where it grants it.
    pub fn repositories(&self) -> &RepoPattern {
        &self.repositories
    }

    /// Whether this binding grants `action` on `repository` (`None`: registry-wide).
    pub fn grants(&self, action: Action, repository: Option<&str>) -> bool {
        self.role.actions().contains(action) && self.repositories.matches(repository)
    }
}

impl fmt::Display for RoleBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "role {} bound to {} on {}",
            self.role, self.subject, self.repositories
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBindingFields {
    subject: Subject,
    role: Role,
    repositories: RepoPattern,
}

impl<'de> Deserialize<'de> for RoleBinding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = RoleBindingFields::deserialize(d)?;
        RoleBinding::new(f.subject, f.role, f.repositories).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_is_the_missions() {
        use Action::*;
        // (role, action, granted)
        let cases = [
            (Role::Read, Pull, true),
            (Role::Read, ListTags, true),
            (Role::Read, Push, false),
            (Role::Read, Delete, false),
            (Role::Read, ManagePolicies, false),
            (Role::Write, Pull, true),
            (Role::Write, Push, true),
            (Role::Write, Delete, false),
            (Role::Write, ManageRoles, false),
            (Role::Delete, Pull, true),
            (Role::Delete, Delete, true),
            (Role::Delete, Push, false),
            (Role::Delete, DeleteRepository, false),
            (Role::Admin, Pull, true),
            (Role::Admin, Push, true),
            (Role::Admin, Delete, true),
            (Role::Admin, DeleteRepository, true),
            (Role::Admin, ManageRoles, true),
            (Role::Admin, ManagePolicies, true),
            (Role::Admin, ModelTransition, true),
        ];
        for (role, action, want) in cases {
            assert_eq!(role.actions().contains(action), want, "{role} {action}");
        }
    }

    #[test]
    fn subjects_parse_and_print() {
        let cases = [
            ("user:alice", Ok(Subject::User("alice".into()))),
            ("group:ml-team", Ok(Subject::Group("ml-team".into()))),
            ("robot:ci", Ok(Subject::Robot("ci".into()))),
            ("robot:a:b", Ok(Subject::Robot("a:b".into()))),
            ("anonymous", Ok(Subject::Anonymous)),
            ("user:", Err(())),
            ("admin:bob", Err(())),
            ("alice", Err(())),
            ("Anonymous", Err(())),
        ];
        for (text, want) in cases {
            let got = text.parse::<Subject>().map_err(|_| ());
            assert_eq!(got, want, "{text}");
            if let Ok(s) = got {
                assert_eq!(s.to_string(), text);
            }
        }
    }

    #[test]
    fn subject_matching_table() {
        let alice = Principal::user("alice", vec!["ml".into()]);
        let ci = Principal {
            groups: vec!["builders".into()],
            ..Principal::robot("ci")
        };
        let anon = Principal {
            groups: vec!["ml".into()],
            ..Principal::anonymous()
        };
        let cases = [
            (Subject::User("alice".into()), &alice, true),
            (Subject::User("alice".into()), &ci, false),
            (Subject::User("ci".into()), &ci, false),
            (Subject::Robot("ci".into()), &ci, true),
            (Subject::Robot("alice".into()), &alice, false),
            (Subject::Group("ml".into()), &alice, true),
            (Subject::Group("builders".into()), &ci, true),
            (Subject::Group("ml".into()), &anon, false),
            (Subject::Anonymous, &anon, true),
            (Subject::Anonymous, &alice, false),
        ];
        for (subject, principal, want) in cases {
            assert_eq!(subject.matches(principal), want, "{subject} vs {principal}");
        }
    }

    #[test]
    fn bindings_serde_and_validation() {
        let json = r#"{"subject":"robot:ci","role":"Write","repositories":"ml/**"}"#;
        let b: RoleBinding = serde_json::from_str(json).unwrap();
        assert_eq!(b.to_string(), "role Write bound to robot:ci on ml/**");
        assert_eq!(serde_json::to_string(&b).unwrap(), json);
        assert!(b.grants(Action::Push, Some("ml/fraud")));
        assert!(!b.grants(Action::Push, Some("web/app")));
        assert!(!b.grants(Action::Delete, Some("ml/fraud")));
        assert!(
            !b.grants(Action::Catalog, None),
            "registry-wide needs a * binding"
        );

        let cases = [
            (
                r#"{"subject":"anonymous","role":"Write","repositories":"*"}"#,
                "only be given the Read role",
            ),
            (
                r#"{"subject":"bob","role":"Read","repositories":"*"}"#,
                "invalid subject",
            ),
            (
                r#"{"subject":"user:bob","role":"Owner","repositories":"*"}"#,
                "unknown role",
            ),
            (
                r#"{"subject":"user:bob","role":"Read","repositories":"ml//x"}"#,
                "empty path segment",
            ),
            (
                r#"{"subject":"user:bob","role":"Read","repositories":"*","extra":1}"#,
                "unknown field",
            ),
            (r#"{"subject":"user:bob","role":"Read"}"#, "missing field"),
        ];
        for (json, want) in cases {
            let err = serde_json::from_str::<RoleBinding>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        let anon: RoleBinding = serde_json::from_str(
            r#"{"subject":"anonymous","role":"read","repositories":"public/**"}"#,
        )
        .unwrap();
        assert_eq!(anon.role(), Role::Read);
    }
}
