//! Turning a [`PolicyDocument`] into a checked, fast-to-evaluate [`Policy`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use super::Request;
use super::action::{Action, ActionSet};
use super::condition::{Condition, InputsUsed, Truth};
use super::document::{
    ConditionBlock, Effect, OneOrMany, PolicyDocument, PrincipalDocument, PrincipalNames,
    StatementDocument,
};
use crate::identity::{Principal, PrincipalKind};
use crate::pattern::{PatternError, RepoPattern};

/// The only policy language version accepted.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Limits on policy documents.
#[derive(Clone, Debug)]
pub struct PolicyLimits {
    /// Largest document, in bytes of JSON.
    pub document_bytes_max: usize,
    /// Most statements in one document.
    pub statements_max: usize,
    /// Most entries in one list (actions, resources, principal names, condition values).
    pub list_entries_max: usize,
    /// Most operator/key pairs in one statement's `Condition`.
    pub conditions_max: usize,
    /// Longest `Sid`, in bytes.
    pub sid_bytes_max: usize,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            document_bytes_max: 64 * 1024,
            statements_max: 100,
            list_entries_max: 100,
            conditions_max: 20,
            sid_bytes_max: 128,
        }
    }
}

/// One thing wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// `Version` is not `2012-10-17`.
    #[error("unsupported Version {0:?}; use \"2012-10-17\"")]
    UnsupportedVersion(String),
    /// `Statement` is an empty list.
    #[error("Statement is empty; a policy needs at least one statement")]
    NoStatements,
    /// Too many statements.
    #[error("{count} statements, more than the limit of {max}")]
    TooManyStatements {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two statements share a `Sid`.
    #[error("Sid {0:?} is used by more than one statement")]
    DuplicateSid(String),
    /// `Sid` with characters outside `[A-Za-z0-9_.-]`, empty or too long.
    #[error("Sid {0:?} is invalid: use 1 to {1} letters, digits, '_', '.', '-'")]
    BadSid(String, usize),
    /// Both `Action` and `NotAction`.
    #[error("a statement has either Action or NotAction, not both")]
    ActionAndNotAction,
    /// Neither `Action` nor `NotAction`.
    #[error("a statement needs Action or NotAction")]
    NoAction,
    /// An empty list where at least one entry is needed.
    #[error("{0} is empty")]
    EmptyList(String),
    /// A list longer than the limit.
    #[error("{field} has {count} entries, more than the limit of {max}")]
    TooManyEntries {
        /// Which list.
        field: String,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An action name or pattern that matches no Ward action.
    #[error(
        "{0:?} matches no Ward action (actions look like registry:Pull, registry:Delete*, admin:*)"
    )]
    UnknownAction(String),
    /// A `Resource` that is not a repository pattern.
    #[error("Resource {resource:?}: {error}")]
    BadResource {
        /// As written.
        resource: String,
        /// Why.
        error: PatternError,
    },
    /// `Principal: {}` or one naming nobody.
    #[error("Principal names nobody; use \"*\" or list User, Group, Robot or Anonymous")]
    EmptyPrincipal,
    /// A principal name that is empty or has control characters.
    #[error("Principal {kind} name {name:?} is invalid")]
    BadPrincipalName {
        /// User, Group or Robot.
        kind: &'static str,
        /// As written.
        name: String,
    },
    /// An Allow that would give anonymous callers more than reading.
    #[error(
        "this Allow would grant anonymous callers {0}; anonymous callers may only get registry:Pull, registry:ListTags, registry:Catalog"
    )]
    AnonymousBeyondRead(String),
    /// An operator name Ward does not know.
    #[error(
        "unknown condition operator {0:?}; Ward supports String(Not)Equals(IgnoreCase), String(Not)Like, (Not)IpAddress, Date*, Bool, Null, each (but Null) with an IfExists suffix"
    )]
    UnknownOperator(String),
    /// `ForAnyValue:`/`ForAllValues:` prefixes.
    #[error("{0:?}: set operators are not supported; Ward's condition keys hold one value each")]
    SetOperator(String),
    /// A condition key Ward does not know.
    #[error(
        "unknown condition key {0:?}; Ward's keys are ward:ResourceTag/<label>, ward:Tag, ward:Repository, ward:SourceIp, ward:CurrentTime, ward:PrincipalType, ward:Username, ward:SecureTransport"
    )]
    UnknownConditionKey(String),
    /// An operator used with a key of the wrong type.
    #[error("{operator} cannot test {key}; it works with {expected}")]
    OperatorNotForKey {
        /// As written.
        operator: String,
        /// The key.
        key: String,
        /// What it works with.
        expected: &'static str,
    },
    /// A value of the wrong JSON type or shape.
    #[error("{operator}: value {value} is not {expected}")]
    BadConditionValue {
        /// As written.
        operator: String,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An address or network that does not parse.
    #[error("invalid CIDR {value:?}: {reason}")]
    BadCidr {
        /// As written.
        value: String,
        /// Why.
        reason: String,
    },
    /// A date that does not parse.
    #[error("invalid date {0}; use RFC 3339 like \"2026-01-01T00:00:00Z\" or Unix seconds")]
    BadDate(String),
    /// Too many conditions in one statement.
    #[error("{count} conditions, more than the limit of {max}")]
    TooManyConditions {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// A problem and where it is: which statement (by position and `Sid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Index in `Statement`, or `None` for the document itself.
    pub statement: Option<usize>,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.statement, &self.sid) {
            (Some(i), Some(sid)) => write!(f, "Statement[{i}] (Sid {sid:?}): {}", self.kind),
            (Some(i), None) => write!(f, "Statement[{i}]: {}", self.kind),
            (None, _) => write!(f, "{}", self.kind),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The JSON text is larger than the limit.
    #[error("policy document is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or not the shape of a policy document (unknown field, wrong type, duplicate key).
    #[error("policy document is malformed: {0}")]
    Syntax(#[from] serde_json::Error),
    /// Well-formed, but wrong: every problem found is listed.
    #[error("policy {name:?} is invalid:{}", list(.problems))]
    Invalid {
        /// The policy's name.
        name: String,
        /// Everything wrong with it.
        problems: Vec<PolicyProblem>,
    },
}

fn list(problems: &[PolicyProblem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// A set of names, where `*` stands for all of them.
#[derive(Clone, Debug, Default)]
struct Names {
    any: bool,
    names: Box<[Box<str>]>,
}

impl Names {
    fn contains(&self, name: &str) -> bool {
        self.any || self.names.iter().any(|n| **n == *name)
    }

    fn is_empty(&self) -> bool {
        !self.any && self.names.is_empty()
    }
}

#[derive(Clone, Debug)]
enum PrincipalMatch {
    Everyone,
    Named {
        users: Names,
        groups: Names,
        robots: Names,
        anonymous: bool,
    },
}

impl PrincipalMatch {
    fn matches(&self, p: &Principal, effect: Effect) -> bool {
        match self {
            // `*` in an Allow means every authenticated caller; a Deny covers everyone.
            PrincipalMatch::Everyone => {
                effect == Effect::Deny || p.kind != PrincipalKind::Anonymous
            }
            PrincipalMatch::Named {
                users,
                groups,
                robots,
                anonymous,
            } => match p.kind {
                PrincipalKind::Anonymous => *anonymous,
                PrincipalKind::User => users.contains(&p.name) || any_group(groups, p),
                PrincipalKind::Robot => robots.contains(&p.name) || any_group(groups, p),
            },
        }
    }

    fn may_match_anonymous(&self) -> bool {
        matches!(
            self,
            PrincipalMatch::Named {
                anonymous: true,
                ..
            }
        )
    }
}

fn any_group(groups: &Names, p: &Principal) -> bool {
    !groups.is_empty() && p.effective_groups().iter().any(|g| groups.contains(g))
}

/// A compiled statement.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) index: usize,
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) effect: Effect,
    principal: PrincipalMatch,
    actions: ActionSet,
    /// `None`: every resource.
    resources: Option<Box<[RepoPattern]>>,
    conditions: Box<[Condition]>,
}

impl Statement {
    /// Whether the statement applies to the request. Cheap tests first.
    pub(crate) fn applies(&self, req: &Request<'_>) -> Truth {
        if !self.actions.contains(req.action)
            || !self.principal.matches(req.principal, self.effect)
            || !self.resource_matches(req.repository)
        {
            return Truth::False;
        }
        let mut truth = Truth::True;
        for c in self.conditions.iter() {
            truth = truth.and(c.evaluate(req));
            if truth == Truth::False {
                break;
            }
        }
        truth
    }

    fn resource_matches(&self, repository: Option<&str>) -> bool {
        self.resources
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r.matches(repository)))
    }

    fn inputs(&self) -> InputsUsed {
        self.conditions
            .iter()
            .fold(InputsUsed::default(), |acc, c| acc.union(c.inputs()))
    }
}

/// A validated policy, ready to evaluate.
///
/// Stored as JSON `{"name": "...", "document": {...}}`; the document keeps
/// the shape it was written in.
#[derive(Clone, Debug)]
pub struct Policy {
    name: Arc<str>,
    document: PolicyDocument,
    statements: Box<[Statement]>,
    inputs: InputsUsed,
}

impl Policy {
    /// Parses and validates a JSON policy document with the default limits.
    pub fn from_json(name: &str, json: &str) -> Result<Self, PolicyError> {
        Self::from_json_with_limits(name, json, &PolicyLimits::default())
    }

    /// Parses and validates a JSON policy document.
    pub fn from_json_with_limits(
        name: &str,
        json: &str,
        limits: &PolicyLimits,
    ) -> Result<Self, PolicyError> {
        if json.len() > limits.document_bytes_max {
            return Err(PolicyError::TooLarge {
                len: json.len(),
                max: limits.document_bytes_max,
            });
        }
        let document: PolicyDocument = serde_json::from_str(json)?;
        Self::new(name, document, limits)
    }

    /// Validates a parsed document, reporting every problem found.
    pub fn new(
        name: &str,
        document: PolicyDocument,
        limits: &PolicyLimits,
    ) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();
        let mut doc_problem = |kind| {
            problems.push(PolicyProblem {
                statement: None,
                sid: None,
                kind,
            })
        };
        if document.version != POLICY_VERSION {
            doc_problem(ProblemKind::UnsupportedVersion(document.version.clone()));
        }
        let docs = document.statement.as_slice();
        if docs.is_empty() {
            doc_problem(ProblemKind::NoStatements);
        }
        if docs.len() > limits.statements_max {
            doc_problem(ProblemKind::TooManyStatements {
                count: docs.len(),
                max: limits.statements_max,
            });
        }
        let mut statements = Vec::with_capacity(docs.len());
        for (index, doc) in docs.iter().enumerate() {
            let mut errors = Vec::new();
            if let Some(sid) = &doc.sid
                && docs[..index].iter().any(|d| d.sid.as_ref() == Some(sid))
            {
                errors.push(ProblemKind::DuplicateSid(sid.clone()));
            }
            match compile_statement(index, doc, limits) {
                Ok(st) if errors.is_empty() => statements.push(st),
                Ok(_) => {}
                Err(mut e) => errors.append(&mut e),
            }
            problems.extend(errors.into_iter().map(|kind| PolicyProblem {
                statement: Some(index),
                sid: doc.sid.clone(),
                kind,
            }));
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid {
                name: name.to_owned(),
                problems,
            });
        }
        let inputs = statements
            .iter()
            .fold(InputsUsed::default(), |acc, s| acc.union(s.inputs()));
        Ok(Self {
            name: name.into(),
            document,
            statements: statements.into(),
            inputs,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The document as written.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    pub(crate) fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Which request inputs the policy's conditions read.
    pub fn inputs_used(&self) -> InputsUsed {
        self.inputs
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            name: &'a str,
            document: &'a PolicyDocument,
        }
        Stored {
            name: &self.name,
            document: &self.document,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stored {
            name: String,
            document: PolicyDocument,
        }
        let stored = Stored::deserialize(d)?;
        Policy::new(&stored.name, stored.document, &PolicyLimits::default())
            .map_err(serde::de::Error::custom)
    }
}

fn compile_statement(
    index: usize,
    doc: &StatementDocument,
    limits: &PolicyLimits,
) -> Result<Statement, Vec<ProblemKind>> {
    let mut errors = Vec::new();
    let sid = doc.sid.as_deref().map(|sid| {
        let ok = !sid.is_empty()
            && sid.len() <= limits.sid_bytes_max
            && sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            errors.push(ProblemKind::BadSid(sid.to_owned(), limits.sid_bytes_max));
        }
        Arc::<str>::from(sid)
    });
    let actions = compile_actions(doc, limits).map_err(|e| errors.extend(e));
    let principal = compile_principal(&doc.principal, limits).map_err(|e| errors.extend(e));
    let resources = compile_resources(doc.resource.as_ref(), limits).map_err(|e| errors.extend(e));
    let conditions =
        compile_conditions(doc.condition.as_ref(), limits).map_err(|e| errors.extend(e));
    let (Ok(actions), Ok(principal), Ok(resources), Ok(conditions)) =
        (actions, principal, resources, conditions)
    else {
        return Err(errors);
    };
    if doc.effect == Effect::Allow && principal.may_match_anonymous() {
        let beyond = actions.difference(Action::READ_ONLY);
        if !beyond.is_empty() {
            let names: Vec<&str> = beyond.iter().map(Action::name).collect();
            errors.push(ProblemKind::AnonymousBeyondRead(names.join(", ")));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Statement {
        index,
        sid,
        effect: doc.effect,
        principal,
        actions,
        resources,
        conditions,
    })
}

fn check_list<T>(
    field: &str,
    list: &OneOrMany<T>,
    limits: &PolicyLimits,
) -> Result<(), ProblemKind> {
    let count = list.as_slice().len();
    if count == 0 {
        return Err(ProblemKind::EmptyList(field.to_owned()));
    }
    if count > limits.list_entries_max {
        return Err(ProblemKind::TooManyEntries {
            field: field.to_owned(),
            count,
            max: limits.list_entries_max,
        });
    }
    Ok(())
}

fn compile_actions(
    doc: &StatementDocument,
    limits: &PolicyLimits,
) -> Result<ActionSet, Vec<ProblemKind>> {
    let (field, list, negate) = match (&doc.action, &doc.not_action) {
        (Some(_), Some(_)) => return Err(vec![ProblemKind::ActionAndNotAction]),
        (None, None) => return Err(vec![ProblemKind::NoAction]),
        (Some(list), None) => ("Action", list, false),
        (None, Some(list)) => ("NotAction", list, true),
    };
    check_list(field, list, limits).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut set = ActionSet::EMPTY;
    for pattern in list.as_slice() {
        let matched = ActionSet::from_pattern(pattern);
        if matched.is_empty() {
            errors.push(ProblemKind::UnknownAction(pattern.clone()));
        }
        set = set.union(matched);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(if negate { set.complement() } else { set })
}

fn compile_principal(
    doc: &PrincipalDocument,
    limits: &PolicyLimits,
) -> Result<PrincipalMatch, Vec<ProblemKind>> {
    let PrincipalDocument::Named(PrincipalNames {
        user,
        group,
        robot,
        anonymous,
    }) = doc
    else {
        return Ok(PrincipalMatch::Everyone);
    };
    let mut errors = Vec::new();
    let mut names = |kind: &'static str, list: &Option<OneOrMany<String>>| -> Names {
        let Some(list) = list else {
            return Names::default();
        };
        if let Err(e) = check_list(&format!("Principal.{kind}"), list, limits) {
            errors.push(e);
        }
        let mut out = Names::default();
        let mut kept = Vec::new();
        for name in list.as_slice() {
            if name == "*" {
                out.any = true;
            } else if name.is_empty() || name.chars().any(char::is_control) {
                errors.push(ProblemKind::BadPrincipalName {
                    kind,
                    name: name.clone(),
                });
            } else {
                // Account, group and robot names are lowercase; a Deny
                // naming `Mallory` must still bind `mallory`.
                kept.push(Box::<str>::from(name.to_ascii_lowercase()));
            }
        }
        out.names = kept.into();
        out
    };
    let users = names("User", user);
    let groups = names("Group", group);
    let robots = names("Robot", robot);
    let anonymous = anonymous.unwrap_or(false);
    if errors.is_empty() && users.is_empty() && groups.is_empty() && robots.is_empty() && !anonymous
    {
        errors.push(ProblemKind::EmptyPrincipal);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PrincipalMatch::Named {
        users,
        groups,
        robots,
        anonymous,
    })
}

/// `Resource` entries are repository patterns, optionally written with the
/// `repository:` prefix familiar from Docker scopes. (`repository/` would be
/// ambiguous: `repository/ml` is also a valid repository name, while `:`
/// never appears in one.)
fn compile_resources(
    doc: Option<&OneOrMany<String>>,
    limits: &PolicyLimits,
) -> Result<Option<Box<[RepoPattern]>>, Vec<ProblemKind>> {
    let Some(list) = doc else {
        return Ok(None);
    };
    check_list("Resource", list, limits).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut patterns = Vec::new();
    for resource in list.as_slice() {
        let text = resource.strip_prefix("repository:").unwrap_or(resource);
        match RepoPattern::new(text) {
            Ok(p) => patterns.push(p),
            Err(error) => errors.push(ProblemKind::BadResource {
                resource: resource.clone(),
                error,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(patterns.into()))
}

fn compile_conditions(
    doc: Option<&ConditionBlock>,
    limits: &PolicyLimits,
) -> Result<Box<[Condition]>, Vec<ProblemKind>> {
    let Some(block) = doc else {
        return Ok(Box::default());
    };
    let count: usize = block.0.iter().map(|(_, keys)| keys.0.len()).sum();
    if count > limits.conditions_max {
        return Err(vec![ProblemKind::TooManyConditions {
            count,
            max: limits.conditions_max,
        }]);
    }
    let mut errors = Vec::new();
    let mut conditions = Vec::with_capacity(count);
    for (operator, keys) in &block.0 {
        if keys.0.is_empty() {
            errors.push(ProblemKind::EmptyList(format!("Condition {operator}")));
        }
        for (key, values) in &keys.0 {
            if let Err(e) = check_list(&format!("values of {operator} {key}"), values, limits) {
                errors.push(e);
                continue;
            }
            match Condition::compile(operator, key, values.as_slice()) {
                Ok(c) => conditions.push(c),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(conditions.into())
}
