//! Ward's action names (`registry:Pull`, `admin:ManageUsers`, ...) and sets of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::pattern::glob_match_ignore_ascii_case;

/// What a request's resource is: one repository, or the registry as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionScope {
    /// Asked about a repository; matched by repository patterns.
    Repository,
    /// Asked about the whole registry (catalog, users, audit log); matched
    /// only by the everything pattern `*`.
    Registry,
}

macro_rules! actions {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $scope:ident; )*) => {
        /// An operation that authorization decides about.
        ///
        /// Names are `<service>:<Verb>`, matched case-insensitively as in AWS IAM.
        /// Each variant documents what it guards and whether it is about a
        /// repository or the registry as a whole ([`ActionScope`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Action {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )* ];

            /// The canonical name, e.g. `registry:Pull`.
            pub fn name(self) -> &'static str {
                match self { $( Action::$variant => $name, )* }
            }

            /// Whether the action is about a repository or the whole registry.
            pub fn scope(self) -> ActionScope {
                match self { $( Action::$variant => ActionScope::$scope, )* }
            }
        }
    };
}

actions! {
    /// Read manifests, blobs and referrers of a repository (`docker pull`).
    Pull = "registry:Pull", Repository;
    /// Upload blobs, put manifests, create or move tags, mount blobs from another repository.
    Push = "registry:Push", Repository;
    /// Delete manifests, tags and blobs of a repository (still subject to immutability).
    Delete = "registry:Delete", Repository;
    /// Delete a whole repository with everything in it.
    DeleteRepository = "registry:DeleteRepository", Repository;
    /// List a repository's tags.
    ListTags = "registry:ListTags", Repository;
    /// List repositories (`/v2/_catalog`); the server still filters by `registry:Pull`.
    Catalog = "registry:Catalog", Registry;
    /// Create, disable and delete users; reset their passwords.
    ManageUsers = "admin:ManageUsers", Registry;
    /// Create groups and change their members.
    ManageGroups = "admin:ManageGroups", Registry;
    /// Create, rotate and revoke robot accounts.
    ManageRobots = "admin:ManageRobots", Registry;
    /// Grant and revoke role bindings on a repository.
    ManageRoles = "admin:ManageRoles", Repository;
    /// Create, change and delete policy documents covering a repository.
    ManagePolicies = "admin:ManagePolicies", Repository;
    /// Create repositories and change their settings and labels (including public pull).
    ManageRepositories = "admin:ManageRepositories", Repository;
    /// Change tag immutability rules covering a repository.
    ManageImmutability = "admin:ManageImmutability", Repository;
    /// Change signature trust policies and trusted keys for a repository.
    ManageTrust = "admin:ManageTrust", Repository;
    /// Read the audit log.
    ReadAudit = "admin:ReadAudit", Registry;
    /// Start rescans and change scan policies of a repository.
    ManageScans = "admin:ManageScans", Repository;
    /// Quarantine artifacts of a repository or release them from quarantine.
    Quarantine = "admin:Quarantine", Repository;
    /// Change registry-wide settings (enable deletion, anonymous access, limits).
    ManageRegistry = "admin:ManageRegistry", Registry;
    /// Move a model version between stages (e.g. Staging to Production).
    ModelTransition = "model:Transition", Repository;
    /// Approve a pending stage transition requested by someone else.
    ModelApprove = "model:Approve", Repository;
}

impl Action {
    /// Actions an anonymous caller can ever be granted: reading, nothing else.
    pub const READ_ONLY: ActionSet = ActionSet::EMPTY
        .with(Action::Pull)
        .with(Action::ListTags)
        .with(Action::Catalog);

    const fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}; actions look like registry:Pull or admin:ManageUsers")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;
    /// Parses a name case-insensitively (`registry:pull` is `registry:Pull`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of actions, one bit each: membership is a single AND.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ActionSet(u32);

const _: () = assert!(
    Action::ALL.len() <= 32,
    "ActionSet holds at most 32 actions"
);

impl ActionSet {
    /// No actions.
    pub const EMPTY: Self = Self(0);

    /// Every action.
    pub const ALL: Self = {
        let mut bits = 0;
        let mut i = 0;
        while i < Action::ALL.len() {
            bits |= Action::ALL[i].bit();
            i += 1;
        }
        Self(bits)
    };

    /// This set plus `action`.
    pub const fn with(self, action: Action) -> Self {
        Self(self.0 | action.bit())
    }

    /// Whether `action` is in the set.
    pub const fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Actions in either set.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Actions in this set but not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Every action not in this set.
    pub const fn complement(self) -> Self {
        Self(Self::ALL.0 & !self.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL
            .iter()
            .copied()
            .filter(move |a| self.contains(*a))
    }

    /// The actions a pattern names: an exact name, or a glob with `*`/`?`
    /// (`registry:*`, `registry:Delete*`, `admin:Manage*`, `*`), matched
    /// case-insensitively. Empty when nothing matches.
    pub fn from_pattern(pattern: &str) -> Self {
        Action::ALL
            .iter()
            .filter(|a| glob_match_ignore_ascii_case(pattern, a.name()))
            .fold(Self::EMPTY, |set, a| set.with(*a))
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Action::name))
            .finish()
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for &a in Action::ALL {
            assert_eq!(a.name().parse::<Action>().unwrap(), a);
            assert_eq!(a.name().to_lowercase().parse::<Action>().unwrap(), a);
            assert_eq!(a.to_string(), a.name());
        }
        assert!("registry:Pul".parse::<Action>().is_err());
        assert!("Pull".parse::<Action>().is_err());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        for (i, a) in Action::ALL.iter().enumerate() {
            let (service, verb) = a.name().split_once(':').unwrap();
            assert!(["registry", "admin", "model"].contains(&service), "{a}");
            assert!(verb.starts_with(|c: char| c.is_ascii_uppercase()), "{a}");
            assert!(
                Action::ALL[i + 1..].iter().all(|b| b.name() != a.name()),
                "{a}"
            );
        }
    }

    #[test]
    fn patterns_table() {
        use Action::*;
        let set = |v: &[Action]| v.iter().copied().collect::<ActionSet>();
        let cases: Vec<(&str, ActionSet)> = vec![
            ("registry:Pull", set(&[Pull])),
            ("REGISTRY:PULL", set(&[Pull])),
            ("registry:Delete*", set(&[Delete, DeleteRepository])),
            (
                "registry:*",
                set(&[Pull, Push, Delete, DeleteRepository, ListTags, Catalog]),
            ),
            ("model:*", set(&[ModelTransition, ModelApprove])),
            (
                "admin:*",
                set(&[
                    ManageUsers,
                    ManageGroups,
                    ManageRobots,
                    ManageRoles,
                    ManagePolicies,
                    ManageRepositories,
                    ManageImmutability,
                    ManageTrust,
                    ReadAudit,
                    ManageScans,
                    Quarantine,
                    ManageRegistry,
                ]),
            ),
            ("*", ActionSet::ALL),
            ("*:Pull", set(&[Pull])),
            ("registry:P*", set(&[Pull, Push])),
            ("registry:Pul", ActionSet::EMPTY),
            ("ecr:PutImage", ActionSet::EMPTY),
            ("", ActionSet::EMPTY),
        ];
        for (pattern, want) in cases {
            assert_eq!(ActionSet::from_pattern(pattern), want, "{pattern}");
        }
    }

    #[test]
    fn set_algebra() {
        let pull = ActionSet::EMPTY.with(Action::Pull);
        assert!(pull.contains(Action::Pull));
        assert!(!pull.contains(Action::Push));
        assert!(!pull.complement().contains(Action::Pull));
        assert_eq!(pull.complement().union(pull), ActionSet::ALL);
        assert!(ActionSet::ALL.difference(ActionSet::ALL).is_empty());
        assert_eq!(ActionSet::ALL.iter().count(), Action::ALL.len());
        assert_eq!(format!("{pull:?}"), "{\"registry:Pull\"}");
    }

    #[test]
    fn scopes() {
        assert_eq!(Action::Pull.scope(), ActionScope::Repository);
        assert_eq!(Action::Catalog.scope(), ActionScope::Registry);
        assert_eq!(Action::ManageUsers.scope(), ActionScope::Registry);
        assert_eq!(Action::ManagePolicies.scope(), ActionScope::Repository);
    }
}
