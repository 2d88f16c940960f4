#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The mission's ECR policy, written with Ward's names, behaves as written:
//! CI may push, production may pull, and nobody may delete in repositories
//! labelled `Environment=production`. Fixtures: see `tests/fixtures/README.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ward_auth::identity::{Labels, Principal};
use ward_auth::pattern::RepoPattern;
use ward_auth::policy::{
    Action, Authorizer, Policy, PolicyError, Request, Role, RoleBinding, Subject,
};

const WARD_POLICY: &str = include_str!("fixtures/ecr-policy-ward.json");
const AWS_POLICY: &str = include_str!("fixtures/ecr-policy-aws.json");

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn authorizer() -> Authorizer {
    let policy = Policy::from_json("ecr-example", WARD_POLICY).unwrap();
    // A registry admin, to show the Deny also binds the most privileged role.
    let admin = RoleBinding::new(
        Subject::User("root".into()),
        Role::Admin,
        RepoPattern::new("*").unwrap(),
    )
    .unwrap();
    Authorizer::new([admin], [policy])
}

#[test]
fn behaves_as_written() {
    let authz = authorizer();
    let ci = Principal::robot("github-actions");
    let prod = Principal::robot("production-ecs");
    let root = Principal::user("root", vec![]);
    let stranger = Principal::user("mallory", vec![]);
    let production = Labels::new([("Environment", "production")]).unwrap();
    let staging = Labels::new([("environment", "staging")]).unwrap();
    let none = Labels::default();

    use Action::*;
    // (who, action, labels, allowed, message)
    let cases: Vec<(&Principal, Action, &Labels, bool, &str)> = vec![
        (
            &ci,
            Push,
            &production,
            true,
            r#"allowed by policy "ecr-example" statement "AllowPushFromCICD""#,
        ),
        (
            &ci,
            Push,
            &none,
            true,
            r#"allowed by policy "ecr-example" statement "AllowPushFromCICD""#,
        ),
        (
            &ci,
            Pull,
            &production,
            false,
            "denied: no statement or role allows registry:Pull on repository ml/fraud",
        ),
        (
            &ci,
            Delete,
            &staging,
            false,
            "denied: no statement or role allows registry:Delete on repository ml/fraud",
        ),
        (
            &prod,
            Pull,
            &production,
            true,
            r#"allowed by policy "ecr-example" statement "AllowPullFromProduction""#,
        ),
        (
            &prod,
            Push,
            &production,
            false,
            "denied: no statement or role allows registry:Push on repository ml/fraud",
        ),
        (
            &root,
            Delete,
            &production,
            false,
            r#"denied by policy "ecr-example" statement "DenyDeleteProduction""#,
        ),
        (
            &root,
            DeleteRepository,
            &production,
            false,
            r#"denied by policy "ecr-example" statement "DenyDeleteProduction""#,
        ),
        (
            &root,
            Delete,
            &staging,
            true,
            "allowed by role Admin bound to user:root on *",
        ),
        (
            &root,
            Delete,
            &none,
            true,
            "allowed by role Admin bound to user:root on *",
        ),
        (
            &root,
            Push,
            &production,
            true,
            "allowed by role Admin bound to user:root on *",
        ),
        (
            &stranger,
            Pull,
            &production,
            false,
            "denied: no statement or role allows registry:Pull on repository ml/fraud",
        ),
        (
            &stranger,
            Delete,
            &production,
            false,
            r#"denied by policy "ecr-example" statement "DenyDeleteProduction""#,
        ),
    ];
    for (who, action, labels, allowed, message) in cases {
        let req = Request::new(who, action, Some("ml/fraud"), now()).with_labels(labels);
        let d = authz.evaluate(&req);
        assert_eq!(d.is_allowed(), allowed, "{who} {action} {labels:?}: {d}");
        assert_eq!(d.to_string(), message, "{who} {action} {labels:?}");
    }
}

#[test]
fn anonymous_callers_are_denied_delete_too() {
    let authz = authorizer();
    let anon = Principal::anonymous();
    let production = Labels::new([("Environment", "production")]).unwrap();
    let d = authz.evaluate(
        &Request::new(&anon, Action::Delete, Some("ml/fraud"), now()).with_labels(&production),
    );
    assert!(!d.is_allowed());
    assert_eq!(
        d.to_string(),
        r#"denied by policy "ecr-example" statement "DenyDeleteProduction""#
    );
}

#[test]
fn the_aws_original_is_refused_with_every_reason() {
    let err = Policy::from_json("aws", AWS_POLICY).unwrap_err();
    let PolicyError::Syntax(e) = &err else {
        panic!("expected a syntax error for the AWS principal, got {err}");
    };
    // `Principal: {"AWS": ...}` is not Ward's shape; the error says where.
    assert!(e.to_string().contains("unknown field `AWS`"), "{e}");
    assert!(e.to_string().contains("line 8"), "{e}");

    // With the principals fixed, every AWS action name and key is reported at once.
    let principals_fixed = AWS_POLICY
        .replace(
            r#""AWS": "arn:aws:iam::123456789:role/GitHubActions""#,
            r#""Robot": "ci""#,
        )
        .replace(
            r#""AWS": "arn:aws:iam::123456789:role/ProductionECS""#,
            r#""Robot": "prod""#,
        );
    let err = Policy::from_json("aws", &principals_fixed)
        .unwrap_err()
        .to_string();
    for name in [
        "ecr:PutImage",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "ecr:BatchDeleteImage",
        "ecr:DeleteRepository",
    ] {
        assert!(
            err.contains(&format!("{name:?} matches no Ward action")),
            "{name} in {err}"
        );
    }
    assert!(
        err.contains(r#"unknown condition key "ecr:ResourceTag/Environment""#),
        "{err}"
    );
}
