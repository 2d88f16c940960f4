//! ward-auth: who may do what in Ward, decided in one place.
//!
//! What it provides:
//!
//! - [`identity`]: [`Principal`] (user, robot or anonymous, with groups) and
//!   repository [`Labels`].
//! - [`password`]: argon2id password hashing in PHC format with timing-safe
//!   "user not found" handling, and generated robot secrets / personal access
//!   tokens (`ward_rbt_…`, `ward_pat_…`) stored as SHA-256 digests.
//! - [`token`]: Docker Registry v2 token authentication — a persisted ES256
//!   signing key, access and refresh JWTs, and a strict verifier.
//! - [`scope`]: Docker scopes (`repository:ml/fraud:pull,push`) and their
//!   intersection with what a principal may do.
//! - [`policy`]: the authorization engine — roles (Read, Write, Delete, Admin)
//!   bound to users, groups and robots on repository patterns, and IAM-shaped
//!   policy documents with conditions. [`Authorizer::evaluate`] returns a
//!   [`Decision`] that names the statement or binding behind it.
//! - [`immutability`]: tag immutability rules and forbidden mutable tags.
//! - [`ratelimit`]: failed-login limiting per username and per address.
//!
//! The design decision a reader must know: **this crate is pure**. It reads no
//! database, serves no HTTP and reads no clock (time is always a parameter);
//! its only file access is the signing key at a path the caller gives. The
//! server loads users, bindings, policies and rules from `ward-store`, builds
//! an immutable [`Authorizer`] from them and asks it about every request, so
//! authorization is decided here and only here. Token contents are a ceiling,
//! not a decision: every request is evaluated again with its tag and labels.
//!
//! Everything stored as JSON by the store ([`Policy`], [`RoleBinding`],
//! [`ImmutabilityRule`], [`Labels`], [`password::PasswordHash`],
//! [`password::SecretDigest`]) is validated when deserialised, so an invalid
//! row fails loudly instead of silently granting or protecting less.
//!
//! ```
//! use std::time::SystemTime;
//! use ward_auth::identity::{Labels, Principal};
//! use ward_auth::pattern::RepoPattern;
//! use ward_auth::policy::{Action, Authorizer, Policy, Request, Role, RoleBinding, Subject};
//!
//! let ci = RoleBinding::new(Subject::Robot("ci".into()), Role::Write, RepoPattern::new("ml/**")?)?;
//! let guard = Policy::from_json("guard", r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{"Sid": "DenyDeleteProduction", "Effect": "Deny", "Principal": "*",
//!                    "Action": "registry:Delete*",
//!                    "Condition": {"StringEquals": {"ward:ResourceTag/Environment": "production"}}}]
//! }"#)?;
//! let authz = Authorizer::new([ci], [guard]);
//!
//! let robot = Principal::robot("ci");
//! let prod = Labels::new([("Environment", "production")])?;
//! let push = Request::new(&robot, Action::Push, Some("ml/fraud"), SystemTime::now()).with_labels(&prod);
//! assert!(authz.evaluate(&push).is_allowed());
//!
//! let delete = Request { action: Action::Delete, ..push };
//! let decision = authz.evaluate(&delete);
//! assert!(!decision.is_allowed());
//! assert_eq!(decision.to_string(), r#"denied by policy "guard" statement "DenyDeleteProduction""#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod echo;
pub mod identity;
pub mod immutability;
pub mod password;
pub mod pattern;
pub mod policy;
pub mod ratelimit;
pub mod scope;
pub mod secret;
pub mod token;

pub use identity::{Labels, Principal, PrincipalKind};
pub use immutability::{ImmutabilityRule, ImmutabilityRules};
pub use policy::{Action, Authorizer, Decision, Policy, Request, Role, RoleBinding};
pub use secret::SecretString;
