//! Tag immutability rules: which tags, once written, may never move or be deleted.
//!
//! A rule names repositories (patterns, optionally narrowed by labels such as
//! `Environment=production`) and tags (every tag, prefixes like ECR's `prod-`
//! and `v1.`, or globs), minus exclusions. It can also forbid mutable
//! convenience tags such as `latest` outright in the repositories it covers.
//!
//! Stored as JSON:
//!
//! ```json
//! {"name": "prod-releases", "repositories": ["**"], "labels": {"Environment": "production"},
//!  "tag_prefixes": ["prod-", "v1.", "v2."], "exclude": ["*-rc*"], "forbid_tags": ["latest"]}
//! ```
//!
//! **Signature and attestation tags are always exempt**: the OCI referrers
//! fallback tag `sha256-<64 hex>` and cosign's `sha256-<64 hex>.sig`, `.att`
//! and `.sbom` are moved every time a signature is added, so protecting them
//! would break signing. The exemption is deliberately narrow: a tag like
//! `v1.0.att` is not a cosign tag, and exempting every `*.att` would hand
//! attackers a mutable tag inside a protected namespace.
//!
//! This module only says which rule matches; keeping the first tag→digest
//! binding (and refusing delete-then-push) is the store's job.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::identity::Labels;
use crate::pattern::{RepoPattern, TAG_BYTES_MAX, glob_match};

/// Limits on immutability rules.
#[derive(Clone, Debug)]
pub struct RuleLimits {
    /// Most rules.
    pub rules_max: usize,
    /// Most entries in one list of a rule (repositories, prefixes, globs, exclusions, forbidden tags).
    pub list_entries_max: usize,
    /// Longest rule name, in bytes.
    pub name_bytes_max: usize,
}

impl Default for RuleLimits {
    fn default() -> Self {
        Self {
            rules_max: 256,
            list_entries_max: 64,
            name_bytes_max: 64,
        }
    }
}

/// One immutability rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImmutabilityRule {
    /// Unique name, shown in refusals (`[A-Za-z0-9._-]`).
    pub name: String,
    /// What the rule is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Repositories covered.
    pub repositories: Vec<RepoPattern>,
    /// Labels a repository must all have (keys case-insensitive) to be covered.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Every tag is immutable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_tags: bool,
    /// Tags starting with one of these are immutable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_prefixes: Vec<String>,
    /// Tags matching one of these globs (`*`, `?`) are immutable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_globs: Vec<String>,
    /// Tags matching one of these globs stay mutable even if selected above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Tags matching one of these globs may not be pushed at all (e.g. `latest`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbid_tags: Vec<String>,
}

/// What is wrong with a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblemKind {
    /// Empty, too long, or characters outside `[A-Za-z0-9._-]`.
    #[error("name must be 1 to {0} letters, digits, '.', '_' or '-'")]
    BadName(usize),
    /// Two rules with one name.
    #[error("another rule has the same name")]
    DuplicateName,
    /// `repositories` is empty.
    #[error("repositories is empty; use [\"**\"] for every repository")]
    NoRepositories,
    /// Selects no tag and forbids none.
    #[error("the rule selects no tags: set all_tags, tag_prefixes, tag_globs or forbid_tags")]
    SelectsNothing,
    /// `all_tags` together with prefixes or globs.
    #[error("all_tags already covers every tag; remove tag_prefixes and tag_globs")]
    AllTagsAndSelectors,
    /// A prefix that no tag can start with.
    #[error(
        "tag prefix {0:?} is invalid: tags use letters, digits, '_', '.', '-' and start with a letter, digit or '_'"
    )]
    BadPrefix(String),
    /// A glob that no tag can match.
    #[error("tag glob {0:?} is invalid: use tag characters and the wildcards '*' and '?'")]
    BadGlob(String),
    /// A list longer than the limit.
    #[error("{field} has {count} entries, more than the limit of {max}")]
    TooManyEntries {
        /// Which list.
        field: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// A problem and the rule it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The rule's name, or `#<index>` when the name itself is the problem.
    pub rule: String,
    /// What is wrong.
    pub kind: RuleProblemKind,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}: {}", self.rule, self.kind)
    }
}

/// Why a set of rules was refused: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid immutability rules:{}", .problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
pub struct RuleError {
    /// Everything wrong.
    pub problems: Vec<RuleProblem>,
}

/// Whether `tag` belongs to the signing machinery and is always exempt:
/// `sha256-<64 lowercase hex>`, optionally followed by `.sig`, `.att` or `.sbom`.
pub fn is_exempt_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    // `get` rather than slicing: the tag is untrusted and may split a UTF-8 character here.
    let (Some(hex), Some(suffix)) = (rest.get(..64), rest.get(64..)) else {
        return false;
    };
    hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && matches!(suffix, "" | ".sig" | ".att" | ".sbom")
}

fn is_tag_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn valid_prefix(p: &str) -> bool {
    let bytes = p.as_bytes();
    !bytes.is_empty()
        && bytes.len() < TAG_BYTES_MAX
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|&b| is_tag_char(b))
}

fn valid_glob(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= TAG_BYTES_MAX
        && g.bytes()
            .all(|b| is_tag_char(b) || matches!(b, b'*' | b'?'))
}

impl ImmutabilityRule {
    /// Every problem with this rule on its own (names are checked across rules by [`ImmutabilityRules::new`]).
    pub fn problems(&self, limits: &RuleLimits) -> Vec<RuleProblemKind> {
        let mut out = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= limits.name_bytes_max
            && self.name.bytes().all(is_tag_char);
        if !name_ok {
            out.push(RuleProblemKind::BadName(limits.name_bytes_max));
        }
        if self.repositories.is_empty() {
            out.push(RuleProblemKind::NoRepositories);
        }
        let selects = self.all_tags || !self.tag_prefixes.is_empty() || !self.tag_globs.is_empty();
        if !selects && self.forbid_tags.is_empty() {
            out.push(RuleProblemKind::SelectsNothing);
        }
        if self.all_tags && (!self.tag_prefixes.is_empty() || !self.tag_globs.is_empty()) {
            out.push(RuleProblemKind::AllTagsAndSelectors);
        }
        let lists: [(&'static str, usize); 5] = [
            ("repositories", self.repositories.len()),
            ("tag_prefixes", self.tag_prefixes.len()),
            ("tag_globs", self.tag_globs.len()),
            ("exclude", self.exclude.len()),
            ("forbid_tags", self.forbid_tags.len()),
        ];
        for (field, count) in lists {
            if count > limits.list_entries_max {
                out.push(RuleProblemKind::TooManyEntries {
                    field,
                    count,
                    max: limits.list_entries_max,
                });
            }
        }
        out.extend(
            self.tag_prefixes
                .iter()
                .filter(|p| !valid_prefix(p))
                .map(|p| RuleProblemKind::BadPrefix(p.clone())),
        );
        out.extend(
            self.tag_globs
                .iter()
                .chain(&self.exclude)
                .chain(&self.forbid_tags)
                .filter(|g| !valid_glob(g))
                .map(|g| RuleProblemKind::BadGlob(g.clone())),
        );
        out
    }

    /// Whether the rule covers this repository (pattern and labels).
    pub fn covers(&self, repository: &str, labels: &Labels) -> bool {
        self.repositories
            .iter()
            .any(|p| p.matches(Some(repository)))
            && labels.contains_all(self.labels.iter())
    }

    /// Whether the rule makes `tag` immutable (in a repository it covers).
    pub fn protects(&self, tag: &str) -> bool {
        let selected = self.all_tags
            || self
                .tag_prefixes
                .iter()
                .any(|p| tag.starts_with(p.as_str()))
            || self.tag_globs.iter().any(|g| glob_match(g, tag));
        selected && !is_exempt_tag(tag) && !self.exclude.iter().any(|g| glob_match(g, tag))
    }

    /// Whether the rule forbids pushing `tag` at all (in a repository it covers).
    pub fn forbids(&self, tag: &str) -> bool {
        !is_exempt_tag(tag) && self.forbid_tags.iter().any(|g| glob_match(g, tag))
    }
}

impl fmt::Display for ImmutabilityRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "immutability rule {:?}", self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    name: String,
    #[serde(default)]
    description: String,
    repositories: Vec<RepoPattern>,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    all_tags: bool,
    #[serde(default)]
    tag_prefixes: Vec<String>,
    #[serde(default)]
    tag_globs: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    forbid_tags: Vec<String>,
}

impl<'de> Deserialize<'de> for ImmutabilityRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = RuleFields::deserialize(d)?;
        let rule = ImmutabilityRule {
            name: f.name,
            description: f.description,
            repositories: f.repositories,
            labels: f.labels,
            all_tags: f.all_tags,
            tag_prefixes: f.tag_prefixes,
            tag_globs: f.tag_globs,
            exclude: f.exclude,
            forbid_tags: f.forbid_tags,
        };
        let problems = rule.problems(&RuleLimits::default());
        if problems.is_empty() {
            return Ok(rule);
        }
        let problems = problems
            .into_iter()
            .map(|kind| RuleProblem {
                rule: format!("{:?}", rule.name),
                kind,
            })
            .collect();
        Err(serde::de::Error::custom(RuleError { problems }))
    }
}

/// A validated set of rules, consulted in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ImmutabilityRules(Vec<ImmutabilityRule>);

impl ImmutabilityRules {
    /// Validates rules with the default limits.
    pub fn new(rules: Vec<ImmutabilityRule>) -> Result<Self, RuleError> {
        Self::with_limits(rules, &RuleLimits::default())
    }

    /// Validates every rule and the uniqueness of names, reporting all problems.
    pub fn with_limits(
        rules: Vec<ImmutabilityRule>,
        limits: &RuleLimits,
    ) -> Result<Self, RuleError> {
        let mut problems = Vec::new();
        if rules.len() > limits.rules_max {
            problems.push(RuleProblem {
                rule: "set".into(),
                kind: RuleProblemKind::TooManyEntries {
                    field: "rules",
                    count: rules.len(),
                    max: limits.rules_max,
                },
            });
        }
        for (i, rule) in rules.iter().enumerate() {
            let label = if rule.name.is_empty() {
                format!("#{i}")
            } else {
                format!("{:?}", rule.name)
            };
            let mut kinds = rule.problems(limits);
            if rules[..i].iter().any(|r| r.name == rule.name) {
                kinds.push(RuleProblemKind::DuplicateName);
            }
            problems.extend(kinds.into_iter().map(|kind| RuleProblem {
                rule: label.clone(),
                kind,
            }));
        }
        if !problems.is_empty() {
            return Err(RuleError { problems });
        }
        Ok(Self(rules))
    }

    /// The first rule that makes `tag` immutable in `repository`, if any.
    pub fn matching_rule(
        &self,
        repository: &str,
        labels: &Labels,
        tag: &str,
    ) -> Option<&ImmutabilityRule> {
        self.0
            .iter()
            .find(|r| r.protects(tag) && r.covers(repository, labels))
    }

    /// The first rule that forbids pushing `tag` to `repository`, if any.
    pub fn forbidding_rule(
        &self,
        repository: &str,
        labels: &Labels,
        tag: &str,
    ) -> Option<&ImmutabilityRule> {
        self.0
            .iter()
            .find(|r| r.forbids(tag) && r.covers(repository, labels))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[ImmutabilityRule] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ImmutabilityRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rules = Vec::<ImmutabilityRule>::deserialize(d)?;
        Self::new(rules).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn rules(json: &str) -> ImmutabilityRules {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exempt_tags_table() {
        let cases = [
            (SHA.to_owned(), true),
            (format!("{SHA}.sig"), true),
            (format!("{SHA}.att"), true),
            (format!("{SHA}.sbom"), true),
            (format!("{SHA}.sig2"), false),
            (format!("{SHA}x"), false),
            (SHA.to_uppercase().replace("SHA256-", "sha256-"), false),
            (SHA[..70].to_owned(), false),
            ("sha512-abc".to_owned(), false),
            ("v1.0.att".to_owned(), false),
            ("release.sbom".to_owned(), false),
            ("latest".to_owned(), false),
            (format!("sha256-{}é", "a".repeat(63)), false),
            (format!("sha256-{}é.sig", "a".repeat(63)), false),
            ("sha256-".to_owned(), false),
        ];
        for (tag, want) in cases {
            assert_eq!(is_exempt_tag(&tag), want, "{tag}");
        }
    }

    #[test]
    fn matching_rule_table() {
        let set = rules(
            r#"[
              {"name": "ecr-style", "repositories": ["ml/**"], "tag_prefixes": ["prod-", "v1.", "v2."], "exclude": ["*-rc*"]},
              {"name": "glob", "repositories": ["apps/*"], "tag_globs": ["release-*-final", "r?"]},
              {"name": "prod-all", "repositories": ["**"], "labels": {"Environment": "production"}, "all_tags": true, "exclude": ["dev-*"]}
            ]"#,
        );
        let none = Labels::default();
        let prod = Labels::new([("environment", "production")]).unwrap();
        let sig = format!("{SHA}.sig");
        let cases: Vec<(&str, &Labels, &str, Option<&str>)> = vec![
            ("ml/fraud", &none, "prod-1", Some("ecr-style")),
            ("ml/fraud", &none, "v1.2.3", Some("ecr-style")),
            ("ml/fraud", &none, "v2.0", Some("ecr-style")),
            ("ml/fraud", &none, "v3.0", None),
            ("ml/fraud", &none, "v1.0-rc1", None),
            ("ml/fraud", &none, "latest", None),
            ("ml/fraud", &none, "xprod-1", None),
            ("ml/fraud", &none, SHA, None),
            ("ml", &none, "prod-1", None),
            ("apps/web", &none, "release-3-final", Some("glob")),
            ("apps/web", &none, "release-3-draft", None),
            ("apps/web", &none, "r1", Some("glob")),
            ("apps/web", &none, "r10", None),
            ("web/x", &prod, "anything", Some("prod-all")),
            ("web/x", &prod, "dev-1", None),
            ("web/x", &prod, &sig, None),
            ("web/x", &none, "anything", None),
            // First rule in order wins.
            ("ml/fraud", &prod, "prod-1", Some("ecr-style")),
            ("ml/fraud", &prod, "v1.0-rc1", Some("prod-all")),
        ];
        for (repo, labels, tag, want) in cases {
            let got = set
                .matching_rule(repo, labels, tag)
                .map(|r| r.name.as_str());
            assert_eq!(got, want, "{repo} {labels:?} {tag}");
        }
    }

    #[test]
    fn forbidden_convenience_tags() {
        let set = rules(
            r#"[{"name": "no-latest-in-prod", "repositories": ["**"], "labels": {"Environment": "production"},
                 "forbid_tags": ["latest", "stable", "main-*"]}]"#,
        );
        let prod = Labels::new([("Environment", "production")]).unwrap();
        let dev = Labels::new([("Environment", "dev")]).unwrap();
        let cases: Vec<(&Labels, &str, bool)> = vec![
            (&prod, "latest", true),
            (&prod, "stable", true),
            (&prod, "main-abc", true),
            (&prod, "v1.0", false),
            (&prod, SHA, false),
            (&dev, "latest", false),
        ];
        for (labels, tag, want) in cases {
            let got = set
                .forbidding_rule("any/repo", labels, tag)
                .map(|r| r.name.as_str());
            assert_eq!(got.is_some(), want, "{labels:?} {tag}");
            // A forbid-only rule makes nothing immutable.
            assert!(set.matching_rule("any/repo", labels, tag).is_none());
        }
        assert_eq!(
            set.rules()[0].to_string(),
            r#"immutability rule "no-latest-in-prod""#
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let bad = r#"[
          {"name": "", "repositories": []},
          {"name": "dup", "repositories": ["*"], "all_tags": true, "tag_prefixes": ["v"]},
          {"name": "dup", "repositories": ["*"], "tag_prefixes": ["", "-x", "a/b"], "tag_globs": ["ok-*", "bad glob"], "exclude": ["x:y"]}
        ]"#;
        let raw: Vec<RuleFields> = serde_json::from_str(bad).unwrap();
        let rules: Vec<ImmutabilityRule> = raw
            .into_iter()
            .map(|f| ImmutabilityRule {
                name: f.name,
                description: f.description,
                repositories: f.repositories,
                labels: f.labels,
                all_tags: f.all_tags,
                tag_prefixes: f.tag_prefixes,
                tag_globs: f.tag_globs,
                exclude: f.exclude,
                forbid_tags: f.forbid_tags,
            })
            .collect();
        let err = ImmutabilityRules::new(rules).unwrap_err();
        let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        let want = [
            "rule #0: name must be 1 to 64",
            "rule #0: repositories is empty",
            "rule #0: the rule selects no tags",
            r#"rule "dup": all_tags already covers every tag"#,
            r#"rule "dup": tag prefix "" is invalid"#,
            r#"rule "dup": tag prefix "-x" is invalid"#,
            r#"rule "dup": tag prefix "a/b" is invalid"#,
            r#"rule "dup": tag glob "bad glob" is invalid"#,
            r#"rule "dup": tag glob "x:y" is invalid"#,
            r#"rule "dup": another rule has the same name"#,
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "\n got: {g}\nwant: {w}");
        }
    }

    #[test]
    fn serde_validates_and_round_trips() {
        let json = r#"{"name":"r","repositories":["ml/**"],"labels":{"Environment":"production"},"tag_prefixes":["v1."],"exclude":["*-rc*"],"forbid_tags":["latest"]}"#;
        let rule: ImmutabilityRule = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&rule).unwrap(), json);
        let cases = [
            (
                r#"{"name":"r","repositories":["ml/**"]}"#,
                "selects no tags",
            ),
            (
                r#"{"name":"r","repositories":["ml//x"],"all_tags":true}"#,
                "empty path segment",
            ),
            (
                r#"{"name":"r","repositories":["*"],"all_tags":true,"priority":1}"#,
                "unknown field `priority`",
            ),
            (
                r#"{"name":"r","repositories":["*"],"all_tags":true,"labels":{"a":"1","A":"2"}}"#,
                "differ only in case",
            ),
        ];
        for (json, want) in cases {
            let err = serde_json::from_str::<ImmutabilityRule>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        let dup = r#"[{"name":"a","repositories":["*"],"all_tags":true},{"name":"a","repositories":["*"],"all_tags":true}]"#;
        let err = serde_json::from_str::<ImmutabilityRules>(dup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("same name"), "{err}");
    }

    #[test]
    fn limits() {
        let limits = RuleLimits {
            rules_max: 1,
            list_entries_max: 2,
            name_bytes_max: 3,
        };
        let rule = ImmutabilityRule {
            name: "long".into(),
            description: String::new(),
            repositories: vec![RepoPattern::new("*").unwrap()],
            labels: Labels::default(),
            all_tags: false,
            tag_prefixes: vec!["a".into(), "b".into(), "c".into()],
            tag_globs: vec![],
            exclude: vec![],
            forbid_tags: vec![],
        };
        let err = ImmutabilityRules::with_limits(vec![rule.clone(), rule], &limits).unwrap_err();
        let text = err.to_string();
        for want in [
            "2 entries, more than the limit of 1",
            "name must be 1 to 3",
            "tag_prefixes has 3 entries, more than the limit of 2",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
