//! Trust policies: per repository pattern, which keys, certificate identities
//! and trust roots count, how many distinct signers are required, and which
//! artifact types a rule covers.
//!
//! A [`TrustPolicy`] is the stored document (serde; unknown fields are refused so
//! a misspelt `threshold` cannot silently weaken a rule). [`TrustPolicy::compile`]
//! checks it and parses keys, roots and patterns once into a [`CompiledPolicy`],
//! whose [`evaluate`](CompiledPolicy::evaluate) is a pure function of
//! (policy, subject, evidence, time): the server may cache a [`Verdict`] under
//! (subject digest, [`revision`](TrustPolicy::revision)), must drop a digest's
//! entries when its signatures change, and must not keep one past
//! [`Verdict::valid_until`]. The revision is a hash of the whole policy, so
//! revoking a key changes it and invalidates every cached verdict at once.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use ward_core::Digest;

use crate::cosign::reference_repository;
use crate::keys::{KeyId, PublicKey};
use crate::time::UnixSeconds;
use crate::trust_root::{TrustRoot, TrustRootError, TrustedRoot};
use crate::verify::{
    Context, Evidence, KnownKey, Rejection, SignatureFormat, Signer, Subject, TrustMaterial,
    Verified,
};

/// The stored trust policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// Public keys, by name. Revoked keys stay listed (with `revoked: true`).
    #[serde(default)]
    pub keys: Vec<TrustedKey>,
    /// Trust roots (CAs and transparency logs), by name.
    #[serde(default)]
    pub trust_roots: Vec<NamedTrustedRoot>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A public key an administrator trusts (or trusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// Unique name rules refer to.
    pub name: String,
    /// `PUBLIC KEY` PEM.
    pub public_key: String,
    /// Who holds the key: keys with the same owner count as one signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A revoked key's signatures stop counting.
    #[serde(default)]
    pub revoked: bool,
}

/// A trust root under a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTrustedRoot {
    /// Unique name identity rules refer to.
    pub name: String,
    /// The `trusted_root.json` document.
    pub trusted_root: TrustedRoot,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, used in reasons.
    pub name: String,
    /// Repository patterns: `*` matches within one path segment, `**` across segments.
    pub repositories: Vec<String>,
    /// Artifact-type patterns the rule covers; empty covers every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<String>,
    /// Names of keys whose signatures count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Certificate identities whose signatures count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<IdentityRule>,
    /// Distinct signers required (at least 1).
    #[serde(default = "one")]
    pub threshold: u32,
    /// Whether a cosign payload's `docker-reference` must name the repository.
    #[serde(default)]
    pub docker_reference: ReferenceCheck,
    /// Whether key signatures also need a verified transparency-log entry.
    #[serde(default)]
    pub require_tlog_for_keys: bool,
    /// Tag globs (e.g. `prod-*`) that may be created or moved only onto a
    /// digest satisfying this rule: the registry's promotion gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promote_tags: Vec<String>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// A certificate identity that counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRule {
    /// The trust root the certificate must chain to.
    pub trust_root: String,
    /// A subject alternative name (email, URI...) the certificate must carry.
    pub subject: Match,
    /// The OIDC issuer Fulcio recorded, if constrained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Match>,
    /// Require a verified transparency-log entry with a signing time (default:
    /// yes; private CAs without a log set this to false and are checked at the
    /// current time).
    #[serde(default = "yes")]
    pub require_tlog: bool,
}

/// How a string is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Match {
    /// Equal, byte for byte.
    Exact(String),
    /// A regular expression matched against the whole string.
    Regex(String),
}

/// The `docker-reference` check for cosign payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceCheck {
    /// Not checked: signers spell the reference differently, and the digest binds.
    #[default]
    Ignore,
    /// The reference's repository path (host, tag and digest removed) must equal the subject's.
    Repository,
}

/// Why a policy could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Two keys, roots or rules share a name.
    #[error("duplicate {what} name {name:?}")]
    Duplicate {
        /// Keys, trust roots or rules.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A key's PEM is unreadable.
    #[error("key {name:?}: {detail}")]
    Key {
        /// The key.
        name: String,
        /// Why.
        detail: String,
    },
    /// A trust root is unusable.
    #[error("trust root {name:?}: {source}")]
    TrustRoot {
        /// The root.
        name: String,
        /// Why.
        source: TrustRootError,
    },
    /// A rule is inconsistent.
    #[error("rule {rule:?}: {detail}")]
    Rule {
        /// The rule.
        rule: String,
        /// Why.
        detail: String,
    },
}

impl TrustPolicy {
    /// A content hash of the whole policy: any change, including a revocation,
    /// yields a new revision.
    pub fn revision(&self) -> Digest {
        Digest::of(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Checks the policy and parses everything in it once.
    pub fn compile(&self) -> Result<CompiledPolicy, PolicyError> {
        unique("key", self.keys.iter().map(|k| &k.name))?;
        unique("trust root", self.trust_roots.iter().map(|r| &r.name))?;
        unique("rule", self.rules.iter().map(|r| &r.name))?;
        let mut material = TrustMaterial::default();
        let mut keys = Vec::new();
        for key in &self.keys {
            let public = PublicKey::from_pem(&key.public_key).map_err(|e| PolicyError::Key {
                name: key.name.clone(),
                detail: e.to_string(),
            })?;
            keys.push(KeyEntry {
                id: public.key_id(),
                owner: key.owner.clone(),
                revoked: key.revoked,
            });
            material.keys.push(KnownKey {
                name: key.name.clone(),
                key: public,
            });
        }
        for root in &self.trust_roots {
            let compiled = TrustRoot::new(&root.name, &root.trusted_root).map_err(|source| {
                PolicyError::TrustRoot {
                    name: root.name.clone(),
                    source,
                }
            })?;
            material.roots.push(compiled);
        }
        let rules = self
            .rules
            .iter()
            .map(|rule| compile_rule(rule, &self.keys, &keys, &self.trust_roots))
            .collect::<Result<_, _>>()?;
        Ok(CompiledPolicy {
            revision: self.revision(),
            material,
            keys,
            rules,
        })
    }
}

fn unique<'a>(
    what: &'static str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), PolicyError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(PolicyError::Duplicate {
                what,
                name: name.clone(),
            });
        }
    }
    Ok(())
}

fn compile_rule(
    rule: &Rule,
    key_docs: &[TrustedKey],
    keys: &[KeyEntry],
    roots: &[NamedTrustedRoot],
) -> Result<CompiledRule, PolicyError> {
    let bad = |detail: String| PolicyError::Rule {
        rule: rule.name.clone(),
        detail,
    };
    if rule.threshold == 0 {
        return Err(bad("threshold must be at least 1".into()));
    }
    if rule.repositories.is_empty() {
        return Err(bad("no repository patterns".into()));
    }
    if rule.keys.is_empty() && rule.identities.is_empty() {
        return Err(bad(
            "no keys or identities: nothing could ever satisfy it".into()
        ));
    }
    let key_ids = rule
        .keys
        .iter()
        .map(|name| {
            key_docs
                .iter()
                .position(|k| &k.name == name)
                .map(|i| keys[i].id)
                .ok_or_else(|| bad(format!("unknown key {name:?}")))
        })
        .collect::<Result<_, _>>()?;
    let identities = rule
        .identities
        .iter()
        .map(|identity| {
            if !roots.iter().any(|r| r.name == identity.trust_root) {
                return Err(bad(format!("unknown trust root {:?}", identity.trust_root)));
            }
            Ok(CompiledIdentity {
                trust_root: identity.trust_root.clone(),
                subject: Matcher::new(&identity.subject).map_err(&bad)?,
                issuer: identity
                    .issuer
                    .as_ref()
                    .map(Matcher::new)
                    .transpose()
                    .map_err(&bad)?,
                require_tlog: identity.require_tlog,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CompiledRule {
        rule: rule.clone(),
        key_ids,
        identities,
    })
}

#[derive(Debug, Clone)]
struct KeyEntry {
    id: KeyId,
    owner: Option<String>,
    revoked: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    fn new(m: &Match) -> Result<Self, String> {
        match m {
            Match::Exact(s) => Ok(Matcher::Exact(s.clone())),
            Match::Regex(pattern) => regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(Matcher::Regex)
                .map_err(|e| format!("bad regular expression {pattern:?}: {e}")),
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == text,
            Matcher::Regex(re) => re.is_match(text),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledIdentity {
    trust_root: String,
    subject: Matcher,
    issuer: Option<Matcher>,
    require_tlog: bool,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    key_ids: Vec<KeyId>,
    identities: Vec<CompiledIdentity>,
}

impl CompiledRule {
    fn covers(&self, repository: &str, artifact_type: Option<&str>) -> bool {
        let repo_ok = self
            .rule
            .repositories
            .iter()
            .any(|p| glob_match(p, repository));
        let type_ok = self.rule.artifact_types.is_empty()
            || artifact_type
                .is_some_and(|t| self.rule.artifact_types.iter().any(|p| glob_match(p, t)));
        repo_ok && type_ok
    }
}

/// A signature artifact and where it came from (for reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where it was found, e.g. `sha256-….sig layer 0` or `referrer sha256:…`.
    pub source: String,
    /// The signature.
    pub evidence: Evidence,
}

/// The outcome of evaluating a subject against a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether every covering rule is satisfied (true when no rule covers).
    pub satisfied: bool,
    /// Whether any rule covers the subject at all.
    pub covered: bool,
    /// The policy revision evaluated.
    pub policy_revision: Digest,
    /// The subject's digest, if it has one.
    pub subject: Option<Digest>,
    /// Per covering rule: what it needed and which signers counted.
    pub rules: Vec<RuleVerdict>,
    /// Every signature that counted for at least one rule.
    pub verified_signers: Vec<VerifiedSigner>,
    /// Why each other signature did not count, and why unsatisfied rules failed.
    pub reasons: Vec<Reason>,
    /// Do not reuse this verdict after this time (a certificate checked against
    /// the current time expires then).
    pub valid_until: Option<UnixSeconds>,
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleVerdict {
    /// The rule.
    pub rule: String,
    /// Distinct signers it requires.
    pub threshold: u32,
    /// The distinct signers that counted.
    pub signers: Vec<String>,
    /// Whether it is satisfied.
    pub satisfied: bool,
}

/// A signature that counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSigner {
    /// Where the signature came from.
    pub source: String,
    /// Its format.
    pub format: SignatureFormat,
    /// Who signed.
    pub signer: Signer,
    /// The distinct-signer identity it counted as.
    pub signer_id: String,
    /// Trusted signing time, if any.
    pub signed_at: Option<UnixSeconds>,
    /// Rules it counted for.
    pub rules: Vec<String>,
}

/// Why something did not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The signature concerned, if the reason is about one.
    pub source: Option<String>,
    /// The rule concerned, if the reason is rule-specific.
    pub rule: Option<String>,
    /// A sentence for people.
    pub message: String,
    /// The structured rejection, if the reason is about one signature.
    pub rejection: Option<Rejection>,
}

impl Verdict {
    /// One line summing up a refusal, for an HTTP error body or a CLI.
    pub fn summary(&self) -> String {
        if self.satisfied {
            let signers: Vec<String> = self
                .verified_signers
                .iter()
                .map(|s| s.signer.to_string())
                .collect();
            return format!("verified: signed by {}", signers.join(", "));
        }
        let reasons: Vec<&str> = self.reasons.iter().map(|r| r.message.as_str()).collect();
        format!("not verified: {}", reasons.join("; "))
    }
}

/// A compiled policy, ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    revision: Digest,
    material: TrustMaterial,
    keys: Vec<KeyEntry>,
    rules: Vec<CompiledRule>,
}

impl CompiledPolicy {
    /// The revision of the policy this was compiled from.
    pub fn revision(&self) -> Digest {
        self.revision
    }

    /// The keys and trust roots signatures are verified against.
    pub fn trust_material(&self) -> &TrustMaterial {
        &self.material
    }

    /// Whether any rule covers this repository and artifact type (a protected
    /// repository, for the pull and promotion gates).
    pub fn covers(&self, repository: &str, artifact_type: Option<&str>) -> bool {
        self.rules
            .iter()
            .any(|r| r.covers(repository, artifact_type))
    }

    /// Whether a rule naming this repository protects `tag` from being set
    /// on an unverified digest.
    pub fn promotion_protects(&self, repository: &str, tag: &str) -> bool {
        self.rules.iter().any(|r| {
            r.rule
                .repositories
                .iter()
                .any(|p| glob_match(p, repository))
                && r.rule.promote_tags.iter().any(|p| glob_match(p, tag))
        })
    }

    /// Whether any rule names this repository, whatever artifact types it
    /// covers: the blob gate protects the layers of every covered artifact.
    pub fn protects_repository(&self, repository: &str) -> bool {
        self.rules.iter().any(|r| {
            r.rule
                .repositories
                .iter()
                .any(|p| glob_match(p, repository))
        })
    }

    /// Evaluates `subject` with the signatures found for it.
    pub fn evaluate(
        &self,
        subject: &Subject<'_>,
        candidates: &[Candidate],
        ctx: &Context,
    ) -> Verdict {
        let mut verdict = Verdict {
            satisfied: true,
            covered: false,
            policy_revision: self.revision,
            subject: subject.digest,
            rules: Vec::new(),
            verified_signers: Vec::new(),
            reasons: Vec::new(),
            valid_until: None,
        };
        let covering: Vec<&CompiledRule> = self
            .rules
            .iter()
            .filter(|r| r.covers(subject.repository, subject.artifact_type))
            .collect();
        if covering.is_empty() {
            verdict.reasons.push(Reason {
                source: None,
                rule: None,
                message: format!(
                    "no trust rule covers repository {:?} with artifact type {:?}",
                    subject.repository,
                    subject.artifact_type.unwrap_or("<none>")
                ),
                rejection: None,
            });
            return verdict;
        }
        verdict.covered = true;
        let results: Vec<Result<Verified, Rejection>> = candidates
            .iter()
            .map(|c| c.evidence.verify(subject, &self.material, ctx))
            .collect();
        for (candidate, result) in candidates.iter().zip(&results) {
            if let Err(rejection) = result {
                verdict
                    .reasons
                    .push(reason(Some(&candidate.source), None, rejection.clone()));
            }
        }
        if candidates.is_empty() {
            verdict.reasons.push(Reason {
                source: None,
                rule: None,
                message: "no signatures were found".into(),
                rejection: None,
            });
        }
        for rule in covering {
            self.apply_rule(rule, subject, candidates, &results, &mut verdict);
        }
        verdict.satisfied = verdict.rules.iter().all(|r| r.satisfied);
        verdict
    }

    fn apply_rule(
        &self,
        rule: &CompiledRule,
        subject: &Subject<'_>,
        candidates: &[Candidate],
        results: &[Result<Verified, Rejection>],
        verdict: &mut Verdict,
    ) {
        let name = &rule.rule.name;
        let mut signers = BTreeSet::new();
        for (candidate, result) in candidates.iter().zip(results) {
            let Ok(verified) = result else { continue };
            match self.accept(rule, verified, subject) {
                Ok(signer_id) => {
                    signers.insert(signer_id.clone());
                    record_signer(verdict, candidate, verified, signer_id, name);
                }
                Err(rejection) => {
                    verdict
                        .reasons
                        .push(reason(Some(&candidate.source), Some(name), rejection))
                }
            }
        }
        let threshold = rule.rule.threshold;
        let satisfied = signers.len() >= threshold as usize;
        if !satisfied {
            verdict.reasons.push(Reason {
                source: None,
                rule: Some(name.clone()),
                message: format!(
                    "rule {name:?} requires {threshold} distinct trusted signer(s), {} verified",
                    signers.len()
                ),
                rejection: None,
            });
        }
        verdict.rules.push(RuleVerdict {
            rule: name.clone(),
            threshold,
            signers: signers.into_iter().collect(),
            satisfied,
        });
    }

    /// Whether a verified signature counts for `rule`; returns the signer identity.
    fn accept(
        &self,
        rule: &CompiledRule,
        verified: &Verified,
        subject: &Subject<'_>,
    ) -> Result<String, Rejection> {
        if rule.rule.docker_reference == ReferenceCheck::Repository
            && let Some(reference) = &verified.docker_reference
            && reference_repository(reference) != subject.repository
        {
            return Err(Rejection::ReferenceMismatch {
                expected: subject.repository.to_owned(),
                found: reference.clone(),
            });
        }
        match &verified.signer {
            Signer::Key { key_id, name } => {
                let entry = self.keys.iter().find(|k| k.id == *key_id);
                if entry.is_none_or(|k| k.revoked) {
                    return Err(Rejection::RevokedKey {
                        key_id: *key_id,
                        name: name.clone(),
                    });
                }
                if !rule.key_ids.contains(key_id) {
                    return Err(Rejection::KeyNotAccepted {
                        key_id: *key_id,
                        name: name.clone(),
                    });
                }
                if rule.rule.require_tlog_for_keys && verified.tlog.is_none() {
                    return Err(Rejection::TlogRequired);
                }
                Ok(match entry.and_then(|k| k.owner.as_ref()) {
                    Some(owner) => format!("owner:{owner}"),
                    None => format!("key:{key_id}"),
                })
            }
            Signer::Certificate {
                trust_root,
                subject_alt_names,
                issuer,
                ..
            } => accept_certificate(
                rule,
                verified,
                trust_root,
                subject_alt_names,
                issuer.as_deref(),
            ),
        }
    }
}

fn accept_certificate(
    rule: &CompiledRule,
    verified: &Verified,
    trust_root: &str,
    sans: &[String],
    issuer: Option<&str>,
) -> Result<String, Rejection> {
    let from_root: Vec<&CompiledIdentity> = rule
        .identities
        .iter()
        .filter(|i| i.trust_root == trust_root)
        .collect();
    if from_root.is_empty() {
        return Err(Rejection::UntrustedCertificate {
            detail: format!("it chains to trust root {trust_root:?}, which this rule does not use"),
        });
    }
    for identity in from_root {
        let Some(san) = sans.iter().find(|s| identity.subject.matches(s)) else {
            continue;
        };
        if let Some(expected) = &identity.issuer
            && !issuer.is_some_and(|i| expected.matches(i))
        {
            continue;
        }
        if identity.require_tlog && verified.signed_at.is_none() {
            return Err(Rejection::TlogRequired);
        }
        return Ok(format!("identity:{}|{san}", issuer.unwrap_or("")));
    }
    Err(Rejection::IdentityMismatch {
        subject_alt_names: sans.to_vec(),
        issuer: issuer.map(str::to_owned),
    })
}

fn reason(source: Option<&str>, rule: Option<&str>, rejection: Rejection) -> Reason {
    let message = match (source, rule) {
        (Some(s), Some(r)) => format!("{s}: {rejection} (rule {r:?})"),
        (Some(s), None) => format!("{s}: {rejection}"),
        (None, Some(r)) => format!("{rejection} (rule {r:?})"),
        (None, None) => rejection.to_string(),
    };
    Reason {
        source: source.map(str::to_owned),
        rule: rule.map(str::to_owned),
        message,
        rejection: Some(rejection),
    }
}

fn record_signer(
    verdict: &mut Verdict,
    candidate: &Candidate,
    verified: &Verified,
    signer_id: String,
    rule: &str,
) {
    if let Some(until) = verified.valid_until {
        verdict.valid_until = Some(verdict.valid_until.map_or(until, |v| v.min(until)));
    }
    if let Some(existing) = verdict
        .verified_signers
        .iter_mut()
        .find(|s| s.source == candidate.source)
    {
        existing.rules.push(rule.to_owned());
        return;
    }
    verdict.verified_signers.push(VerifiedSigner {
        source: candidate.source.clone(),
        format: verified.format,
        signer: verified.signer.clone(),
        signer_id,
        signed_at: verified.signed_at,
        rules: vec![rule.to_owned()],
    });
}

/// Glob match: `**` matches anything, `*` anything but `/`, `?` one non-`/` character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p {
            [] => t.is_empty(),
            // `**/` spans zero or more whole segments.
            [b'*', b'*', b'/', rest @ ..] => {
                go(rest, t)
                    || t.iter()
                        .enumerate()
                        .any(|(i, &c)| c == b'/' && go(rest, &t[i + 1..]))
            }
            [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| go(rest, &t[i..])),
            [b'*', rest @ ..] => {
                let stop = t.iter().position(|&c| c == b'/').unwrap_or(t.len());
                (0..=stop).any(|i| go(rest, &t[i..]))
            }
            [b'?', rest @ ..] => t.first().is_some_and(|&c| c != b'/') && go(rest, &t[1..]),
            [c, rest @ ..] => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_repository_paths() {
        let cases = [
            ("prod/*", "prod/api", true),
            ("prod/*", "prod/team/api", false),
            ("prod/**", "prod/team/api", true),
            ("prod/**", "prod", false),
            ("**", "", true),
            ("**", "a/b/c", true),
            ("models/**/weights", "models/weights", true),
            ("models/**/weights", "models/a/b/weights", true),
            ("models/**/weights", "models/a/b/weights2", false),
            ("models/**/weights", "models/a/bweights", false),
            ("team-?", "team-a", true),
            ("team-?", "team-ab", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            (
                "application/vnd.*",
                "application/vnd.oci.image.manifest.v1+json",
                true,
            ),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern} vs {text}");
        }
    }
}
