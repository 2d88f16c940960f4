//! An immutable picture of everything authorization reads, loaded from the
//! store and replaced whenever the store's authorization revision moves.
//!
//! Requests never touch the database to decide: they read the current
//! snapshot. Every change through the API bumps the revision in the same
//! transaction, and each server polls it, so several servers sharing one
//! PostgreSQL converge within one poll interval.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use ward_auth::identity::{Labels, Principal, PrincipalKind};
use ward_auth::pattern::RepoPattern;
use ward_auth::policy::{Authorizer, Policy, Role, RoleBinding, Subject};
use ward_auth::{ImmutabilityRule, ImmutabilityRules};
use ward_store::MetaStore;

/// What a loaded snapshot found wrong in stored data.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ward_store::StoreError),
    /// A stored row does not validate; Ward refuses to run on a policy it cannot read.
    #[error("stored {what} {name:?} is invalid: {reason}")]
    Invalid {
        /// Kind of object.
        what: &'static str,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A user as authorization sees it.
#[derive(Clone, Debug)]
pub struct UserInfo {
    /// Disabled users cannot authenticate, and their tokens stop working.
    pub disabled: bool,
    /// Group names.
    pub groups: Vec<String>,
}

/// A robot as authorization sees it.
#[derive(Clone, Debug)]
pub struct RobotInfo {
    /// Revoked robots' secrets and tokens stop working at once.
    pub revoked: bool,
    /// Unix milliseconds after which the robot stops working.
    pub expires_at_ms: Option<i64>,
}

/// Everything authorization reads.
pub struct Snapshot {
    /// The store revision it was loaded at.
    pub revision: i64,
    /// Role bindings and policy documents.
    pub authorizer: Authorizer,
    /// Tag immutability rules.
    pub immutability: ImmutabilityRules,
    /// Repository labels.
    pub labels: HashMap<String, Labels>,
    /// Repositories anyone may pull.
    pub public: HashSet<String>,
    /// Users by name.
    pub users: HashMap<String, UserInfo>,
    /// Robots by name.
    pub robots: HashMap<String, RobotInfo>,
    /// The trust policy the signature gates enforce (None: no requirement).
    pub trust: Option<Arc<ward_sign::policy::CompiledPolicy>>,
    /// Quarantined digests and why: refused to everyone, everywhere.
    pub quarantined: HashMap<ward_core::Digest, String>,
    /// Per-repository scan policies (others use `[scan] default_policy`).
    pub scan_policies: HashMap<String, crate::scanning::ScanPolicy>,
}

static NO_LABELS: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(Labels::default);

impl Snapshot {
    /// An empty snapshot: nobody may do anything.
    pub fn empty() -> Self {
        Snapshot {
            revision: -1,
            authorizer: Authorizer::new([], []),
            immutability: ImmutabilityRules::default(),
            labels: HashMap::new(),
            public: HashSet::new(),
            users: HashMap::new(),
            robots: HashMap::new(),
            trust: None,
            quarantined: HashMap::new(),
            scan_policies: HashMap::new(),
        }
    }

    /// The labels of `repository` (empty if none).
    pub fn labels(&self, repository: &str) -> &Labels {
        self.labels.get(repository).unwrap_or(&NO_LABELS)
    }

    /// A principal as of this snapshot, if it may still act: users must exist
    /// and be enabled, robots must exist, be unrevoked and unexpired.
    pub fn principal(&self, kind: PrincipalKind, name: &str, now_ms: i64) -> Option<Principal> {
        match kind {
            PrincipalKind::Anonymous => Some(Principal::anonymous()),
            PrincipalKind::User => self
                .users
                .get(name)
                .filter(|u| !u.disabled)
                .map(|u| Principal::user(name, u.groups.clone())),
            PrincipalKind::Robot => self
                .robots
                .get(name)
                .filter(|r| !r.revoked && r.expires_at_ms.is_none_or(|e| e > now_ms))
                .map(|_| Principal::robot(name)),
        }
    }

    /// Loads everything at the store's current revision.
    pub async fn load(meta: &MetaStore) -> Result<Snapshot, SnapshotError> {
        let revision = meta.auth_revision().await?;
        let bindings = meta
            .role_bindings()
            .await?
            .into_iter()
            .map(|b| {
                let invalid = |reason: String| SnapshotError::Invalid {
                    what: "role binding",
                    name: format!("{} {} {}", b.subject, b.role, b.repositories),
                    reason,
                };
                let subject = Subject::from_str(&b.subject).map_err(|e| invalid(e.to_string()))?;
                let role = Role::from_str(&b.role).map_err(|e| invalid(e.to_string()))?;
                let pattern =
                    RepoPattern::new(&b.repositories).map_err(|e| invalid(e.to_string()))?;
                RoleBinding::new(subject, role, pattern).map_err(|e| invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policies = meta
            .policies()
            .await?
            .into_iter()
            .map(|p| {
                Policy::from_json(&p.name, &p.document_json).map_err(|e| SnapshotError::Invalid {
                    what: "policy",
                    name: p.name.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rules = meta
            .immutability_rules()
            .await?
            .into_iter()
            .map(|r| {
                serde_json::from_str::<ImmutabilityRule>(&r.rule_json).map_err(|e| {
                    SnapshotError::Invalid {
                        what: "immutability rule",
                        name: r.name.clone(),
                        reason: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let immutability = ImmutabilityRules::new(rules).map_err(|e| SnapshotError::Invalid {
            what: "immutability rules",
            name: String::new(),
            reason: e.to_string(),
        })?;
        let mut raw_labels: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for l in meta.all_repository_labels().await? {
            raw_labels
                .entry(l.repository)
                .or_default()
                .push((l.key, l.value));
        }
        let labels = raw_labels
            .into_iter()
            .map(|(repo, pairs)| {
                Labels::new(pairs)
                    .map(|l| (repo.clone(), l))
                    .map_err(|e| SnapshotError::Invalid {
                        what: "repository labels",
                        name: repo,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let public = meta.public_repositories().await?.into_iter().collect();
        let mut users = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = meta.list_users(after.as_deref(), 1000).await?;
            after = page.items.last().map(|u| u.name.clone());
            for u in page.items {
                users.insert(
                    u.name,
                    UserInfo {
                        disabled: u.disabled,
                        groups: u.groups,
                    },
                );
            }
            if !page.more {
                break;
            }
        }
        let mut robots = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = meta.list_robots(after.as_deref(), 1000).await?;
            after = page.items.last().map(|r| r.name.clone());
            for r in page.items {
                let info = RobotInfo {
                    revoked: r.revoked_at_ms.is_some(),
                    expires_at_ms: r.expires_at_ms,
                };
                robots.insert(r.name, info);
            }
            if !page.more {
                break;
            }
        }
        let trust = match meta.trust_policy().await? {
            None => None,
            Some((document, _)) => {
                let invalid = |reason: String| SnapshotError::Invalid {
                    what: "trust policy",
                    name: String::new(),
                    reason,
                };
                let policy: ward_sign::policy::TrustPolicy =
                    serde_json::from_str(&document).map_err(|e| invalid(e.to_string()))?;
                let compiled = policy.compile().map_err(|e| invalid(e.to_string()))?;
                Some(Arc::new(compiled))
            }
        };
        let quarantined = meta
            .quarantines()
            .await?
            .into_iter()
            .map(|q| (q.digest, q.reason))
            .collect();
        let scan_policies =
            crate::scanning::parse_policies(meta.scan_policies().await?).map_err(|reason| {
                SnapshotError::Invalid {
                    what: "scan policy",
                    name: String::new(),
                    reason,
                }
            })?;
        Ok(Snapshot {
            revision,
            trust,
            quarantined,
            scan_policies,
            authorizer: Authorizer::new(bindings, policies),
            immutability,
            labels,
            public,
            users,
            robots,
        })
    }
}
