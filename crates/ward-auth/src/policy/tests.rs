//! Engine tests: validation errors, evaluation order, principals, wildcards,
//! NotAction, role bindings, and token-time (unknown tag) evaluation.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::pattern::RepoPattern;

fn policy(json: &str) -> Policy {
    Policy::from_json("test", json).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(json: &str) -> Vec<String> {
    match Policy::from_json("test", json) {
        Err(PolicyError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#)
}

fn binding(subject: &str, role: &str, repos: &str) -> RoleBinding {
    RoleBinding::new(
        subject.parse().unwrap(),
        role.parse().unwrap(),
        RepoPattern::new(repos).unwrap(),
    )
    .unwrap()
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

#[test]
fn validation_reports_every_problem_with_its_statement() {
    let json = r#"{
        "Version": "2008-10-17",
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "registry:Pul"},
            {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "registry:Pull"},
            {"Effect": "Deny", "Principal": "*", "Action": "registry:Pull", "NotAction": "registry:Push"},
            {"Sid": "Cidr", "Effect": "Deny", "Principal": "*", "Action": "*",
             "Condition": {"IpAddress": {"ward:SourceIp": "10.0.0.0/40"}}}
        ]
    }"#;
    let got = problems(json);
    let want = [
        r#"unsupported Version "2008-10-17"; use "2012-10-17""#,
        r#"Statement[0] (Sid "A"): "registry:Pul" matches no Ward action"#,
        r#"Statement[1] (Sid "A"): Sid "A" is used by more than one statement"#,
        "Statement[2]: a statement has either Action or NotAction, not both",
        r#"Statement[3] (Sid "Cidr"): invalid CIDR "10.0.0.0/40": prefix length"#,
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "\n got: {g}\nwant: {w}");
    }
}

#[test]
fn validation_table() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            "Statement is empty",
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":"*"}"#),
            "needs Action or NotAction",
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":"*","Action":[]}"#),
            "Action is empty",
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"}"#),
            r#""ecr:PutImage" matches no Ward action"#,
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":{},"Action":"registry:Pull"}"#),
            "Principal names nobody",
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":{"User":[]},"Action":"registry:Pull"}"#),
            "Principal.User is empty",
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":{"User":""},"Action":"registry:Pull"}"#),
            r#"Principal User name """#,
        ),
        (
            &stmt(r#"{"Effect":"Allow","Principal":{"Anonymous":true},"Action":"registry:Push"}"#),
            "would grant anonymous callers registry:Push",
        ),
        (
            &stmt(
                r#"{"Effect":"Allow","Principal":{"Anonymous":true},"NotAction":"registry:Push"}"#,
            ),
            "would grant anonymous callers registry:Delete",
        ),
        (
            &stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"registry:Pull","Resource":"ml//x"}"#,
            ),
            r#"Resource "ml//x": pattern "ml//x" has an empty path segment"#,
        ),
        (
            &stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"registry:Pull","Resource":"repository/ML"}"#,
            ),
            r#"Resource "repository/ML""#,
        ),
        (
            &stmt(
                r#"{"Sid":"has space","Effect":"Allow","Principal":"*","Action":"registry:Pull"}"#,
            ),
            r#"Sid "has space" is invalid"#,
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringEqual":{"ward:Tag":"x"}}}"#,
            ),
            r#"unknown condition operator "StringEqual""#,
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringEquals":{"ecr:ResourceTag/Environment":"x"}}}"#,
            ),
            r#"unknown condition key "ecr:ResourceTag/Environment""#,
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"IpAddress":{"ward:Tag":"10.0.0.0/8"}}}"#,
            ),
            "IpAddress cannot test ward:Tag; it works with ward:SourceIp",
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"DateLessThan":{"ward:CurrentTime":"tomorrow"}}}"#,
            ),
            r#"invalid date "tomorrow""#,
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Bool":{"ward:SecureTransport":"maybe"}}}"#,
            ),
            r#"Bool: value "maybe" is not true or false"#,
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringEquals":{"ward:Tag":[]}}}"#,
            ),
            "values of StringEquals ward:Tag is empty",
        ),
        (
            &stmt(
                r#"{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringEquals":{}}}"#,
            ),
            "Condition StringEquals is empty",
        ),
    ];
    for (json, want) in cases {
        let got = problems(json);
        assert!(
            got.iter().any(|g| g.contains(want)),
            "{json}\n got: {got:#?}\nwant: {want}"
        );
    }
}

#[test]
fn limits_are_enforced() {
    let limits = PolicyLimits {
        document_bytes_max: 200,
        statements_max: 2,
        list_entries_max: 2,
        conditions_max: 1,
        sid_bytes_max: 4,
    };
    let big = "x".repeat(201);
    assert!(matches!(
        Policy::from_json_with_limits("p", &big, &limits),
        Err(PolicyError::TooLarge { len: 201, max: 200 })
    ));
    let cases = [
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":"*","Action":"*"}]}"#,
            "3 statements, more than the limit of 2",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":["a:*","b:*","*"]}}"#,
            "Action has 3 entries, more than the limit of 2",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Sid":"Toolong","Effect":"Deny","Principal":"*","Action":"*"}}"#,
            r#"Sid "Toolong" is invalid"#,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Bool":{"ward:SecureTransport":true,"ward:Tag":true}}}}"#,
            "2 conditions, more than the limit of 1",
        ),
    ];
    for (json, want) in cases {
        let limits = PolicyLimits {
            document_bytes_max: 64 * 1024,
            ..limits.clone()
        };
        let err = Policy::from_json_with_limits("p", json, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{json}\n got: {err}\nwant: {want}");
    }
}

#[test]
fn malformed_json_is_a_syntax_error_with_position() {
    let err = Policy::from_json(
        "p",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",}]}"#,
    )
    .unwrap_err();
    assert!(matches!(err, PolicyError::Syntax(_)));
    assert!(err.to_string().contains("line 1 column"), "{err}");
}

#[test]
fn explicit_deny_beats_every_allow() {
    let allow_and_deny = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"AllowAll","Effect":"Allow","Principal":"*","Action":"*"},
            {"Sid":"NoPushToProd","Effect":"Deny","Principal":{"User":"alice"},"Action":"registry:Push","Resource":"prod/**"}
        ]}"#,
    );
    let authz = Authorizer::new([binding("user:alice", "Admin", "*")], [allow_and_deny]);
    let alice = Principal::user("alice", vec![]);
    let bob = Principal::user("bob", vec![]);
    let cases = [
        (
            &alice,
            Action::Push,
            "prod/api",
            false,
            "denied by policy \"test\" statement \"NoPushToProd\"",
        ),
        (
            &alice,
            Action::Push,
            "dev/api",
            true,
            "allowed by role Admin bound to user:alice on *",
        ),
        (
            &alice,
            Action::Pull,
            "prod/api",
            true,
            "allowed by role Admin bound to user:alice on *",
        ),
        (
            &bob,
            Action::Push,
            "prod/api",
            true,
            "allowed by policy \"test\" statement \"AllowAll\"",
        ),
    ];
    for (who, action, repo, allowed, message) in cases {
        let d = authz.evaluate(&Request::new(who, action, Some(repo), t0()));
        assert_eq!(d.is_allowed(), allowed, "{who} {action} {repo}: {d}");
        assert_eq!(d.to_string(), message);
        assert!(!d.conditional);
    }
}

#[test]
fn deny_in_a_later_policy_still_wins() {
    let allow = Policy::from_json(
        "allow",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"registry:*"}}"#,
    )
    .unwrap();
    let deny = Policy::from_json(
        "deny",
        r#"{"Version":"2012-10-17","Statement":{"Sid":"Freeze","Effect":"Deny","Principal":"*","Action":"registry:Push"}}"#,
    )
    .unwrap();
    let authz = Authorizer::new([], [allow, deny]);
    let alice = Principal::user("alice", vec![]);
    let d = authz.evaluate(&Request::new(&alice, Action::Push, Some("x"), t0()));
    assert!(!d.is_allowed());
    assert_eq!(
        d.reason,
        Reason::Statement {
            policy: "deny".into(),
            sid: Some("Freeze".into()),
            index: 0
        }
    );
}

#[test]
fn nothing_granted_is_denied_with_a_reason() {
    let authz = Authorizer::new([binding("user:alice", "Read", "ml/**")], []);
    let alice = Principal::user("alice", vec![]);
    let cases = [
        (
            Action::Push,
            Some("ml/fraud"),
            "denied: no statement or role allows registry:Push on repository ml/fraud",
        ),
        (
            Action::Pull,
            Some("web/app"),
            "denied: no statement or role allows registry:Pull on repository web/app",
        ),
        (
            Action::ManageUsers,
            None,
            "denied: no statement or role allows admin:ManageUsers on the registry",
        ),
    ];
    for (action, repo, message) in cases {
        let d = authz.evaluate(&Request::new(&alice, action, repo, t0()));
        assert!(!d.is_allowed());
        assert_eq!(d.to_string(), message);
    }
}

/// The role matrix: each role × each action, on a matched and an unmatched repository.
#[test]
fn role_binding_matrix() {
    use Action::*;
    let actions = [
        Pull,
        ListTags,
        Push,
        Delete,
        DeleteRepository,
        ManageRoles,
        ManagePolicies,
    ];
    // Which of `actions` each role grants, in order.
    let table: [(Option<&str>, [bool; 7]); 5] = [
        (None, [false; 7]),
        (
            Some("Read"),
            [true, true, false, false, false, false, false],
        ),
        (
            Some("Write"),
            [true, true, true, false, false, false, false],
        ),
        (
            Some("Delete"),
            [true, true, false, true, false, false, false],
        ),
        (Some("Admin"), [true; 7]),
    ];
    let user = Principal::user("u", vec![]);
    for (role, expected) in table {
        let bindings: Vec<RoleBinding> = role
            .map(|r| binding("user:u", r, "ml/*"))
            .into_iter()
            .collect();
        let authz = Authorizer::new(bindings, []);
        for (action, want) in actions.iter().zip(expected) {
            let inside = authz.evaluate(&Request::new(&user, *action, Some("ml/fraud"), t0()));
            assert_eq!(inside.is_allowed(), want, "{role:?} {action} on ml/fraud");
            let outside = authz.evaluate(&Request::new(&user, *action, Some("ml/fraud/v2"), t0()));
            assert!(
                !outside.is_allowed(),
                "{role:?} {action} on ml/fraud/v2 (ml/* is one level)"
            );
        }
    }
}

#[test]
fn registry_wide_actions_need_a_global_binding() {
    let repo_admin = Authorizer::new([binding("user:a", "Admin", "ml/**")], []);
    let global_admin = Authorizer::new([binding("user:a", "Admin", "*")], []);
    let global_read = Authorizer::new([binding("user:a", "Read", "**")], []);
    let a = Principal::user("a", vec![]);
    let cases = [
        (&repo_admin, Action::ManageUsers, false),
        (&repo_admin, Action::Catalog, false),
        (&repo_admin, Action::ReadAudit, false),
        (&global_admin, Action::ManageUsers, true),
        (&global_admin, Action::ManageRegistry, true),
        (&global_read, Action::Catalog, true),
        (&global_read, Action::ManageUsers, false),
    ];
    for (authz, action, want) in cases {
        assert_eq!(
            authz
                .evaluate(&Request::new(&a, action, None, t0()))
                .is_allowed(),
            want,
            "{action}"
        );
    }
}

#[test]
fn group_robot_and_anonymous_bindings() {
    let authz = Authorizer::new(
        [
            binding("group:ml-team", "Write", "ml/**"),
            binding("robot:ci", "Write", "apps/*"),
            binding("anonymous", "Read", "public/**"),
            binding("user:ci", "Admin", "*"),
        ],
        [],
    );
    let alice = Principal::user("alice", vec!["ml-team".into()]);
    let ci = Principal::robot("ci");
    let anon = Principal::anonymous();
    let cases = [
        (&alice, Action::Push, "ml/fraud", true),
        (&alice, Action::Push, "apps/web", false),
        (&ci, Action::Push, "apps/web", true),
        // A robot named like an admin user gets nothing from the user binding.
        (&ci, Action::Push, "ml/fraud", false),
        (&ci, Action::ManagePolicies, "apps/web", false),
        (&anon, Action::Pull, "public/base", true),
        (&anon, Action::Pull, "ml/fraud", false),
        (&anon, Action::Push, "public/base", false),
    ];
    for (who, action, repo, want) in cases {
        let d = authz.evaluate(&Request::new(who, action, Some(repo), t0()));
        assert_eq!(d.is_allowed(), want, "{who} {action} {repo}: {d}");
    }
}

#[test]
fn star_principal_excludes_anonymous_in_allow_but_not_in_deny() {
    let allow = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"registry:Pull"}"#,
    ));
    let authz = Authorizer::new([], [allow]);
    let anon = Principal::anonymous();
    let alice = Principal::user("alice", vec![]);
    assert!(
        !authz
            .evaluate(&Request::new(&anon, Action::Pull, Some("x"), t0()))
            .is_allowed()
    );
    assert!(
        authz
            .evaluate(&Request::new(&alice, Action::Pull, Some("x"), t0()))
            .is_allowed()
    );

    let deny = policy(&stmt(
        r#"{"Effect":"Deny","Principal":"*","Action":"registry:Pull","Resource":"secret/**"}"#,
    ));
    let authz = Authorizer::new([binding("anonymous", "Read", "**")], [deny]);
    assert!(
        !authz
            .evaluate(&Request::new(&anon, Action::Pull, Some("secret/x"), t0()))
            .is_allowed()
    );
    assert!(
        authz
            .evaluate(&Request::new(&anon, Action::Pull, Some("public/x"), t0()))
            .is_allowed()
    );

    let public = policy(&stmt(
        r#"{"Effect":"Allow","Principal":{"Anonymous":true},"Action":["registry:Pull","registry:ListTags"],"Resource":"public/**"}"#,
    ));
    let authz = Authorizer::new([], [public]);
    assert!(
        authz
            .evaluate(&Request::new(&anon, Action::Pull, Some("public/x"), t0()))
            .is_allowed()
    );
    assert!(
        !authz
            .evaluate(&Request::new(&alice, Action::Pull, Some("public/x"), t0()))
            .is_allowed()
    );
}

#[test]
fn named_principals_table() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":{"User":["alice","bob"],"Group":"ml","Robot":"*"},"Action":"registry:Pull"}"#,
    ));
    let authz = Authorizer::new([], [p]);
    let cases = [
        (Principal::user("alice", vec![]), true),
        (Principal::user("bob", vec![]), true),
        (Principal::user("carol", vec![]), false),
        (Principal::user("carol", vec!["ml".into()]), true),
        (Principal::robot("anything"), true),
        (Principal::robot("alice"), true),
        (Principal::anonymous(), false),
    ];
    for (who, want) in cases {
        let d = authz.evaluate(&Request::new(&who, Action::Pull, Some("x"), t0()));
        assert_eq!(d.is_allowed(), want, "{who}");
    }
    let only_users = policy(&stmt(
        r#"{"Effect":"Allow","Principal":{"User":"alice"},"Action":"registry:Pull"}"#,
    ));
    let authz = Authorizer::new([], [only_users]);
    let robot_alice = Principal::robot("alice");
    assert!(
        !authz
            .evaluate(&Request::new(&robot_alice, Action::Pull, Some("x"), t0()))
            .is_allowed()
    );
}

#[test]
fn principal_names_match_whatever_their_case() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"All","Effect":"Allow","Principal":"*","Action":"registry:Pull"},
            {"Sid":"NotMallory","Effect":"Deny","Principal":{"User":"Mallory","Group":["Interns"],"Robot":"Old-Bot"},"Action":"registry:Pull"}
        ]}"#,
    );
    let authz = Authorizer::new([], [p]);
    let cases = [
        (Principal::user("mallory", vec![]), false),
        (Principal::user("carol", vec!["interns".into()]), false),
        (Principal::robot("old-bot"), false),
        (Principal::user("alice", vec![]), true),
    ];
    for (who, want) in cases {
        let d = authz.evaluate(&Request::new(&who, Action::Pull, Some("x"), t0()));
        assert_eq!(d.is_allowed(), want, "{who}: {d}");
    }
}

#[test]
fn action_wildcards_and_not_action() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"RegistryAll","Effect":"Allow","Principal":{"User":"a"},"Action":"registry:*"},
            {"Sid":"DeleteStar","Effect":"Allow","Principal":{"User":"b"},"Action":"registry:delete*"},
            {"Sid":"AdminAll","Effect":"Allow","Principal":{"User":"c"},"Action":"admin:*"},
            {"Sid":"Everything","Effect":"Allow","Principal":{"User":"d"},"Action":"*"},
            {"Sid":"AllButDelete","Effect":"Allow","Principal":{"User":"e"},"NotAction":["registry:Delete*","admin:*"]}
        ]}"#,
    );
    let authz = Authorizer::new([], [p]);
    use Action::*;
    let cases = [
        ("a", Pull, true),
        ("a", DeleteRepository, true),
        ("a", ManageUsers, false),
        ("a", ModelTransition, false),
        ("b", Delete, true),
        ("b", DeleteRepository, true),
        ("b", Pull, false),
        ("c", ManagePolicies, true),
        ("c", Pull, false),
        ("d", ModelApprove, true),
        ("d", ManageTrust, true),
        ("e", Pull, true),
        ("e", Push, true),
        ("e", ModelTransition, true),
        ("e", Delete, false),
        ("e", DeleteRepository, false),
        ("e", Quarantine, false),
    ];
    for (user, action, want) in cases {
        let who = Principal::user(user, vec![]);
        let d = authz.evaluate(&Request::new(&who, action, Some("r"), t0()));
        assert_eq!(d.is_allowed(), want, "{user} {action}: {d}");
    }
}

#[test]
fn resources_plain_prefixed_and_omitted() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"Plain","Effect":"Allow","Principal":{"User":"a"},"Action":"registry:Pull","Resource":"ml/*"},
            {"Sid":"Prefixed","Effect":"Allow","Principal":{"User":"b"},"Action":"registry:Pull","Resource":["repository:ml/**","web"]},
            {"Sid":"Omitted","Effect":"Allow","Principal":{"User":"c"},"Action":["registry:Pull","registry:Catalog"]}
        ]}"#,
    );
    let authz = Authorizer::new([], [p]);
    let cases: &[(&str, Action, Option<&str>, bool)] = &[
        ("a", Action::Pull, Some("ml/x"), true),
        ("a", Action::Pull, Some("ml/x/y"), false),
        ("b", Action::Pull, Some("ml/x/y"), true),
        ("b", Action::Pull, Some("web"), true),
        ("b", Action::Pull, Some("web/x"), false),
        ("c", Action::Pull, Some("any/thing"), true),
        ("c", Action::Catalog, None, true),
        ("a", Action::Catalog, None, false),
    ];
    for (user, action, repo, want) in cases {
        let who = Principal::user(*user, vec![]);
        let d = authz.evaluate(&Request::new(&who, *action, *repo, t0()));
        assert_eq!(d.is_allowed(), *want, "{user} {action} {repo:?}: {d}");
    }
}

#[test]
fn conditions_combine_with_and_across_keys_and_operators() {
    let p = policy(&stmt(
        r#"{"Sid":"OfficeProdDeploy","Effect":"Allow","Principal":{"Robot":"deploy"},"Action":"registry:Pull",
            "Condition":{
              "StringEquals":{"ward:ResourceTag/Environment":"production","ward:ResourceTag/team":["fraud","risk"]},
              "IpAddress":{"ward:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}
            }}"#,
    ));
    let authz = Authorizer::new([], [p]);
    let deploy = Principal::robot("deploy");
    let prod_fraud = Labels::new([("environment", "production"), ("Team", "fraud")]).unwrap();
    let prod_web = Labels::new([("environment", "production"), ("Team", "web")]).unwrap();
    let dev_fraud = Labels::new([("environment", "dev"), ("Team", "fraud")]).unwrap();
    let cases = [
        (&prod_fraud, "10.2.3.4", true),
        (&prod_fraud, "192.168.1.1", true),
        (&prod_fraud, "203.0.113.1", false),
        (&prod_web, "10.2.3.4", false),
        (&dev_fraud, "10.2.3.4", false),
        (&NO_LABELS, "10.2.3.4", false),
    ];
    for (labels, ip, want) in cases {
        let req = Request::new(&deploy, Action::Pull, Some("m"), t0())
            .with_labels(labels)
            .with_source_ip(ip.parse().unwrap());
        assert_eq!(authz.evaluate(&req).is_allowed(), want, "{labels:?} {ip}");
    }
}

#[test]
fn time_window_conditions() {
    let p = policy(&stmt(
        r#"{"Sid":"Window","Effect":"Allow","Principal":"*","Action":"registry:Push",
            "Condition":{"DateGreaterThan":{"ward:CurrentTime":"2026-01-01T00:00:00Z"},
                         "DateLessThan":{"ward:CurrentTime":"2026-02-01T00:00:00Z"}}}"#,
    ));
    let authz = Authorizer::new([], [p]);
    let alice = Principal::user("alice", vec![]);
    let cases = [
        ("2025-12-31T23:59:59Z", false),
        ("2026-01-01T00:00:00Z", false),
        ("2026-01-15T12:00:00Z", true),
        ("2026-02-01T00:00:00Z", false),
    ];
    for (when, want) in cases {
        let at = time::OffsetDateTime::parse(when, &time::format_description::well_known::Rfc3339)
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).unwrap());
        let d = authz.evaluate(&Request::new(&alice, Action::Push, Some("x"), now));
        assert_eq!(d.is_allowed(), want, "{when}");
    }
}

#[test]
fn token_time_evaluation_with_unknown_tag() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"PushDevTags","Effect":"Allow","Principal":{"User":"dev"},"Action":"registry:Push",
             "Condition":{"StringLike":{"ward:Tag":"dev-*"}}},
            {"Sid":"NoLatestInProd","Effect":"Deny","Principal":"*","Action":"registry:Push",
             "Condition":{"StringEquals":{"ward:Tag":"latest","ward:ResourceTag/Environment":"production"}}}
        ]}"#,
    );
    let authz = Authorizer::new([binding("user:ops", "Write", "*")], [p]);
    let dev = Principal::user("dev", vec![]);
    let ops = Principal::user("ops", vec![]);
    let prod = Labels::new([("Environment", "production")]).unwrap();
    let at_token = |who| {
        Request::new(who, Action::Push, Some("app"), t0())
            .with_labels(&prod)
            .with_tag_context(TagContext::Unknown)
    };

    // Token time: dev may push some tags, so the token allows push, conditionally.
    let d = authz.evaluate(&at_token(&dev));
    assert!(d.is_allowed() && d.conditional, "{d}");
    assert!(
        d.to_string()
            .ends_with("(depends on the tag; decided again once it is known)")
    );
    // ops is allowed by its role, but a tag-dependent Deny is pending.
    let d = authz.evaluate(&at_token(&ops));
    assert!(d.is_allowed() && d.conditional, "{d}");

    // Request time decides.
    let cases = [
        (&dev, TagContext::Tag("dev-1"), true),
        (&dev, TagContext::Tag("v1"), false),
        (&dev, TagContext::Absent, false),
        (&ops, TagContext::Tag("v1"), true),
        (&ops, TagContext::Tag("latest"), false),
        (&ops, TagContext::Absent, true),
    ];
    for (who, tag, want) in cases {
        let req = at_token(who).with_tag_context(tag);
        let d = authz.evaluate(&req);
        assert_eq!(d.is_allowed(), want, "{who} {tag:?}: {d}");
        assert!(!d.conditional);
    }
}

#[test]
fn allowed_actions_and_inputs_used() {
    let p = policy(&stmt(
        r#"{"Effect":"Deny","Principal":"*","Action":"registry:Delete","Condition":{"NotIpAddress":{"ward:SourceIp":"10.0.0.0/8"}}}"#,
    ));
    let authz = Authorizer::new([binding("user:a", "Admin", "*")], [p]);
    let a = Principal::user("a", vec![]);
    let wanted: ActionSet = [Action::Pull, Action::Push, Action::Delete]
        .into_iter()
        .collect();
    let outside =
        Request::new(&a, Action::Pull, Some("x"), t0()).with_source_ip("8.8.8.8".parse().unwrap());
    let inside = outside.with_source_ip("10.0.0.1".parse().unwrap());
    assert_eq!(
        authz.allowed_actions(&outside, wanted),
        [Action::Pull, Action::Push].into_iter().collect()
    );
    assert_eq!(authz.allowed_actions(&inside, wanted), wanted);
    assert_eq!(
        authz.inputs_used(),
        InputsUsed {
            source_ip: true,
            ..InputsUsed::default()
        }
    );
    assert_eq!(authz.bindings().count(), 1);
}

#[test]
fn decisions_serialise_for_the_explain_api() {
    let authz = Authorizer::new([binding("robot:ci", "Write", "ml/**")], []);
    let ci = Principal::robot("ci");
    let d = authz.evaluate(&Request::new(&ci, Action::Push, Some("ml/a"), t0()));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "effect": "Allow",
            "action": "registry:Push",
            "reason": {"kind": "role", "binding": {"subject": "robot:ci", "role": "Write", "repositories": "ml/**"}},
            "conditional": false,
            "message": "allowed by role Write bound to robot:ci on ml/**"
        })
    );
    let d = authz.evaluate(&Request::new(&ci, Action::Delete, Some("ml/a"), t0()));
    assert_eq!(
        serde_json::to_value(&d).unwrap()["reason"],
        serde_json::json!({"kind": "no_grant", "repository": "ml/a"})
    );
}

#[test]
fn policies_round_trip_through_storage_json() {
    let p = policy(&stmt(
        r#"{"Sid":"A","Effect":"Deny","Principal":{"Group":["g"]},"Action":"registry:Delete*","Resource":"ml/**","Condition":{"StringEquals":{"ward:ResourceTag/Environment":"production"}}}"#,
    ));
    let stored = serde_json::to_string(&p).unwrap();
    let back: Policy = serde_json::from_str(&stored).unwrap();
    assert_eq!(back.name(), "test");
    assert_eq!(back.document(), p.document());
    let invalid = r#"{"name":"x","document":{"Version":"2012-10-17","Statement":[]}}"#;
    let err = serde_json::from_str::<Policy>(invalid)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Statement is empty"), "{err}");
}
