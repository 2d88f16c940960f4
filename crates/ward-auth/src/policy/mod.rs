//! The authorization engine: role bindings and IAM-style policy documents,
//! decided in one place.
//!
//! # Evaluation
//!
//! For a [`Request`] (who, which action, which repository and tag, the
//! repository's labels, source address, time):
//!
//! 1. If any policy statement with `Effect: Deny` applies, the answer is
//!    **Deny**, whatever else grants.
//! 2. Otherwise, if a [`RoleBinding`] of the principal (directly, or through
//!    one of its groups) covers the action and repository, or an `Allow`
//!    statement applies, the answer is **Allow**.
//! 3. Otherwise **Deny**: "no statement or role allows X on Y".
//!
//! The [`Decision`] names what produced it (policy and `Sid`, or role binding)
//! so `ward admin policy explain` and 403 messages can say why.
//!
//! # Tokens are a ceiling, requests decide
//!
//! When a token is issued the tag is not known yet ([`TagContext::Unknown`]).
//! Conditions on `ward:Tag` are then *unknown*: an Allow that depends on them
//! counts as a (conditional) grant and a Deny that depends on them is held
//! back. The server must evaluate every request again with the real tag;
//! [`Decision::conditional`] says when that second evaluation can differ.
//!
//! # Policy documents
//!
//! ```json
//! {
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Sid": "DenyDeleteProduction",
//!     "Effect": "Deny",
//!     "Principal": "*",
//!     "Action": ["registry:Delete*"],
//!     "Resource": ["ml/**"],
//!     "Condition": {"StringEquals": {"ward:ResourceTag/Environment": "production"}}
//!   }]
//! }
//! ```
//!
//! - `Principal`: `"*"` or `{"User": [..], "Group": [..], "Robot": [..], "Anonymous": true}`;
//!   `"*"` inside a list means any principal of that kind. `"*"` as the whole
//!   principal covers everyone *including anonymous callers* in a Deny, but
//!   only *authenticated* callers in an Allow: anonymous access must be named.
//!   An Allow naming `Anonymous` may only grant read actions.
//! - `Action` / `NotAction`: names or wildcards (see [`Action`]), case-insensitive.
//! - `Resource`: repository patterns ([`RepoPattern`](crate::pattern::RepoPattern)), optionally prefixed
//!   `repository:`; omitted means every repository and the registry-wide resources.
//! - `Condition`: see [`condition`] for operators, keys and
//!   the missing-key rules.

pub mod action;
mod compile;
pub mod condition;
pub mod document;
pub mod role;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

pub use action::{Action, ActionScope, ActionSet, UnknownAction};
pub use compile::{POLICY_VERSION, Policy, PolicyError, PolicyLimits, PolicyProblem, ProblemKind};
pub use condition::InputsUsed;
pub use document::{Effect, PolicyDocument};
pub use role::{BindingError, Role, RoleBinding, Subject, UnknownRole};

use crate::identity::{Labels, NO_LABELS, Principal, PrincipalKind};
use compile::Statement;
use condition::Truth;

/// What the request says about tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagContext<'a> {
    /// The request names this tag (push/pull/delete by tag).
    Tag(&'a str),
    /// The request has no tag: by digest, or an action without tags.
    Absent,
    /// Not known yet: deciding what a token may contain before the request.
    Unknown,
}

/// Everything a decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// What they want to do.
    pub action: Action,
    /// The repository, or `None` for registry-wide actions (catalog, users, audit).
    pub repository: Option<&'a str>,
    /// The tag involved, if any.
    pub tag: TagContext<'a>,
    /// The repository's labels (empty for registry-wide actions).
    pub labels: &'a Labels,
    /// The client's address, if known.
    pub source_ip: Option<IpAddr>,
    /// When the request happens.
    pub now: SystemTime,
    /// Whether the request arrived over TLS.
    pub secure_transport: bool,
}

impl<'a> Request<'a> {
    /// A request with no tag, no labels, no source address, plain transport.
    pub fn new(
        principal: &'a Principal,
        action: Action,
        repository: Option<&'a str>,
        now: SystemTime,
    ) -> Self {
        Self {
            principal,
            action,
            repository,
            tag: TagContext::Absent,
            labels: &NO_LABELS,
            source_ip: None,
            now,
            secure_transport: false,
        }
    }

    /// The request is about `tag`.
    pub fn with_tag(self, tag: &'a str) -> Self {
        self.with_tag_context(TagContext::Tag(tag))
    }

    /// Sets what is known about the tag.
    pub fn with_tag_context(mut self, tag: TagContext<'a>) -> Self {
        self.tag = tag;
        self
    }

    /// The repository's labels.
    pub fn with_labels(mut self, labels: &'a Labels) -> Self {
        self.labels = labels;
        self
    }

    /// The client's address.
    pub fn with_source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Whether the request came over TLS.
    pub fn with_secure_transport(mut self, secure: bool) -> Self {
        self.secure_transport = secure;
        self
    }
}

/// What produced a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A policy statement (an Allow, or the Deny that overrode everything).
    Statement {
        /// The policy's name.
        policy: Arc<str>,
        /// The statement's `Sid`, if it has one.
        sid: Option<Arc<str>>,
        /// The statement's position in the document.
        index: usize,
    },
    /// A role binding.
    Role {
        /// The binding that granted.
        binding: Arc<RoleBinding>,
    },
    /// Nothing granted.
    NoGrant {
        /// The repository, or `None` for a registry-wide action.
        repository: Option<Box<str>>,
    },
}

/// The answer to a [`Request`], with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allow or Deny.
    pub effect: Effect,
    /// The action decided about.
    pub action: Action,
    /// What produced the decision.
    pub reason: Reason,
    /// The decision relied on a tag not known yet ([`TagContext::Unknown`]):
    /// evaluating again with the tag may give another answer.
    pub conditional: bool,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.effect {
            Effect::Allow => "allowed",
            Effect::Deny => "denied",
        };
        match &self.reason {
            Reason::Statement { policy, sid, index } => {
                write!(f, "{verdict} by policy {policy:?} statement ")?;
                match sid {
                    Some(sid) => write!(f, "{sid:?}")?,
                    None => write!(f, "#{index}")?,
                }
            }
            Reason::Role { binding } => write!(f, "{verdict} by {binding}")?,
            Reason::NoGrant { repository } => {
                write!(
                    f,
                    "{verdict}: no statement or role allows {} on ",
                    self.action
                )?;
                match repository {
                    Some(r) => write!(f, "repository {r}")?,
                    None => f.write_str("the registry")?,
                }
            }
        }
        if self.conditional {
            f.write_str(" (depends on the tag; decided again once it is known)")?;
        }
        Ok(())
    }
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            effect: Effect,
            action: Action,
            reason: &'a Reason,
            conditional: bool,
            message: String,
        }
        Json {
            effect: self.effect,
            action: self.action,
            reason: &self.reason,
            conditional: self.conditional,
            message: self.to_string(),
        }
        .serialize(s)
    }
}

type Bindings = HashMap<String, Vec<Arc<RoleBinding>>>;

/// Decides requests from role bindings and policies. Immutable: build a new
/// one when bindings or policies change and swap it in.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    users: Bindings,
    groups: Bindings,
    robots: Bindings,
    anonymous: Vec<Arc<RoleBinding>>,
    policies: Vec<Policy>,
    inputs: InputsUsed,
}

impl Authorizer {
    /// Indexes bindings by subject and keeps the policies in the given order
    /// (which only affects which of several matching statements is named).
    pub fn new(
        bindings: impl IntoIterator<Item = RoleBinding>,
        policies: impl IntoIterator<Item = Policy>,
    ) -> Self {
        let mut a = Authorizer::default();
        for b in bindings {
            let name = match b.subject() {
                Subject::User(n) | Subject::Group(n) | Subject::Robot(n) => n.clone(),
                Subject::Anonymous => String::new(),
            };
            let slot = match b.subject() {
                Subject::User(_) => a.users.entry(name).or_default(),
                Subject::Group(_) => a.groups.entry(name).or_default(),
                Subject::Robot(_) => a.robots.entry(name).or_default(),
                Subject::Anonymous => &mut a.anonymous,
            };
            slot.push(Arc::new(b));
        }
        a.policies = policies.into_iter().collect();
        a.inputs = a
            .policies
            .iter()
            .fold(InputsUsed::default(), |acc, p| acc.union(p.inputs_used()));
        a
    }

    /// Which request inputs any policy condition reads. A decision cache can
    /// leave the others out of its key (principal, action and repository
    /// always belong in it).
    pub fn inputs_used(&self) -> InputsUsed {
        self.inputs
    }

    /// Decides a request. Explicit Deny beats any Allow; otherwise a role
    /// binding or an Allow statement grants; otherwise deny.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut allow: Option<(&Policy, &Statement, bool)> = None;
        let mut deny_pending = false;
        for policy in &self.policies {
            for st in policy.statements() {
                match (st.applies(req), st.effect) {
                    (Truth::False, _) => {}
                    (Truth::True, Effect::Deny) => {
                        return statement_decision(Effect::Deny, req.action, policy, st, false);
                    }
                    // A Deny that depends on the tag waits for the request that names it.
                    (Truth::Unknown, Effect::Deny) => deny_pending = true,
                    (Truth::True, Effect::Allow) => {
                        if allow.is_none_or(|(_, _, conditional)| conditional) {
                            allow = Some((policy, st, false));
                        }
                    }
                    (Truth::Unknown, Effect::Allow) => {
                        if allow.is_none() {
                            allow = Some((policy, st, true));
                        }
                    }
                }
            }
        }
        if let Some(binding) = self.granting_binding(req) {
            return Decision {
                effect: Effect::Allow,
                action: req.action,
                reason: Reason::Role {
                    binding: Arc::clone(binding),
                },
                conditional: deny_pending,
            };
        }
        match allow {
            Some((policy, st, conditional)) => statement_decision(
                Effect::Allow,
                req.action,
                policy,
                st,
                conditional || deny_pending,
            ),
            None => Decision {
                effect: Effect::Deny,
                action: req.action,
                reason: Reason::NoGrant {
                    repository: req.repository.map(Box::from),
                },
                conditional: false,
            },
        }
    }

    /// Of `candidates`, the actions `req` (with its action replaced) is allowed.
    /// Used to fill a token's `access` claim and to show what a caller may do.
    pub fn allowed_actions(&self, req: &Request<'_>, candidates: ActionSet) -> ActionSet {
        candidates
            .iter()
            .filter(|&action| self.evaluate(&Request { action, ..*req }).is_allowed())
            .collect()
    }

    fn granting_binding(&self, req: &Request<'_>) -> Option<&Arc<RoleBinding>> {
        let p = req.principal;
        let grants = |b: &&Arc<RoleBinding>| b.grants(req.action, req.repository);
        let direct = match p.kind {
            PrincipalKind::User => self.users.get(&p.name).map(Vec::as_slice),
            PrincipalKind::Robot => self.robots.get(&p.name).map(Vec::as_slice),
            PrincipalKind::Anonymous => Some(self.anonymous.as_slice()),
        };
        direct.unwrap_or_default().iter().find(grants).or_else(|| {
            p.effective_groups()
                .iter()
                .filter_map(|g| self.groups.get(g))
                .flatten()
                .find(grants)
        })
    }

    /// The role bindings, for listing.
    pub fn bindings(&self) -> impl Iterator<Item = &RoleBinding> {
        self.users
            .values()
            .chain(self.groups.values())
            .chain(self.robots.values())
            .flatten()
            .chain(self.anonymous.iter())
            .map(Arc::as_ref)
    }

    /// The policies, in evaluation order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }
}

fn statement_decision(
    effect: Effect,
    action: Action,
    policy: &Policy,
    st: &Statement,
    conditional: bool,
) -> Decision {
    Decision {
        effect,
        action,
        reason: Reason::Statement {
            policy: Arc::clone(policy.shared_name()),
            sid: st.sid.clone(),
            index: st.index,
        },
        conditional,
    }
}

#[cfg(test)]
mod tests;
