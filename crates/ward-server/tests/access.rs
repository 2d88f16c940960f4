//! Who may do what, through the real router over TCP: the mission's test 1 as
//! a role × action matrix (Basic and token flow), test 4 (immutability, also
//! under a race), policies and their conditions, token attacks, abuse limits,
//! and a walk over every route proving none lacks an access check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::{
    Backend, TestRegistry, anonymous_client, client_as, expect_error, header, image_manifest,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use ward_core::{Digest, media};

async fn api(
    reg: &TestRegistry,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = reg
        .client
        .request(method, reg.url(&format!("/api/v1{path}")));
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn api_ok(
    reg: &TestRegistry,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let r = api(reg, method.clone(), path, body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn create_user(reg: &TestRegistry, name: &str, password: &str) {
    api_ok(
        reg,
        reqwest::Method::POST,
        "/users",
        Some(json!({"name": name, "password": password})),
    )
    .await;
}

async fn bind(reg: &TestRegistry, subject: &str, role: &str, repositories: &str) {
    let body = json!({"subject": subject, "role": role, "repositories": repositories});
    api_ok(reg, reqwest::Method::POST, "/role-bindings", Some(body)).await;
}

async fn token_for(reg: &TestRegistry, client: &Client, scope: &str) -> (String, Value) {
    let r = client
        .get(reg.url("/token"))
        .query(&[("service", "ward"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "token request");
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    (token, claims)
}

fn bearer(token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    Client::builder().default_headers(headers).build().unwrap()
}

/// What a caller got for one action: allowed, or refused with a status and code.
#[derive(Debug, PartialEq)]
enum Got {
    Allowed,
    Refused(StatusCode, String),
}

async fn got(r: reqwest::Response, allowed: &[StatusCode]) -> Got {
    let status = r.status();
    if allowed.contains(&status) {
        return Got::Allowed;
    }
    let code = common::error_code(r).await;
    Got::Refused(status, code)
}

/// Performs one matrix action as `client`, on a fresh tag per call where needed.
async fn act(reg: &TestRegistry, client: &Client, action: &str, repo: &str, tag: &str) -> Got {
    match action {
        "pull" => {
            got(
                client
                    .get(reg.url(&format!("/v2/{repo}/manifests/base")))
                    .send()
                    .await
                    .unwrap(),
                &[StatusCode::OK],
            )
            .await
        }
        "push" => {
            got(
                client
                    .post(reg.url(&format!("/v2/{repo}/blobs/uploads/")))
                    .send()
                    .await
                    .unwrap(),
                &[StatusCode::ACCEPTED],
            )
            .await
        }
        "delete" => {
            got(
                client
                    .delete(reg.url(&format!("/v2/{repo}/manifests/{tag}")))
                    .send()
                    .await
                    .unwrap(),
                &[StatusCode::ACCEPTED],
            )
            .await
        }
        "list" => {
            got(
                client
                    .get(reg.url(&format!("/v2/{repo}/tags/list")))
                    .send()
                    .await
                    .unwrap(),
                &[StatusCode::OK],
            )
            .await
        }
        "manage" => {
            got(
                client
                    .put(reg.url(&format!("/api/v1/repositories/{repo}")))
                    .json(&json!({"labels": {"team": "x"}}))
                    .send()
                    .await
                    .unwrap(),
                &[StatusCode::OK],
            )
            .await
        }
        other => panic!("unknown action {other}"),
    }
}

const ROLES: [&str; 5] = ["none", "read", "write", "delete", "admin"];
const ACTIONS: [&str; 5] = ["pull", "push", "delete", "list", "manage"];

fn expected(role: &str, action: &str) -> bool {
    matches!(
        (role, action),
        ("read" | "write" | "delete" | "admin", "pull" | "list")
            | ("write" | "admin", "push")
            | ("delete" | "admin", "delete")
            | ("admin", "manage")
    )
}

both_backends!(
    the_role_matrix_holds_over_basic_and_tokens,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| c.delete_enabled = true).await;
        let repo = "team/app";
        let manifest = reg.push_image(repo, "base", b"layer").await;
        for role in ROLES {
            create_user(&reg, &format!("u-{role}"), "pw-of-this-user").await;
            if role != "none" {
                bind(&reg, &format!("user:u-{role}"), role, "team/*").await;
            }
        }
        for (mode, i) in [("basic", 0), ("token", 1)] {
            for role in ROLES {
                let basic = client_as(&format!("u-{role}"), "pw-of-this-user");
                let client = if mode == "basic" {
                    basic
                } else {
                    let (token, claims) =
                        token_for(&reg, &basic, &format!("repository:{repo}:pull,push,delete"))
                            .await;
                    // The token holds only what the role permits.
                    let granted: Vec<String> = claims["access"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|a| {
                            a["actions"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_str().unwrap().to_owned())
                        })
                        .collect();
                    for (action, wire) in [("pull", "pull"), ("push", "push"), ("delete", "delete")]
                    {
                        assert_eq!(
                            granted.contains(&wire.to_owned()),
                            expected(role, action),
                            "{role} token {wire}: {claims}"
                        );
                    }
                    bearer(&token)
                };
                for action in ACTIONS {
                    let tag = format!("del-{role}-{i}");
                    assert_eq!(
                        reg.put_manifest(repo, &tag, media::OCI_MANIFEST, &manifest)
                            .await
                            .status(),
                        StatusCode::CREATED
                    );
                    let action_client = if action == "manage" {
                        client_as(&format!("u-{role}"), "pw-of-this-user")
                    } else {
                        client.clone()
                    };
                    let outcome = act(&reg, &action_client, action, repo, &tag).await;
                    if expected(role, action) {
                        assert_eq!(outcome, Got::Allowed, "{mode}: {role} may {action}");
                    } else {
                        assert_eq!(
                            outcome,
                            Got::Refused(StatusCode::FORBIDDEN, "DENIED".into()),
                            "{mode}: {role} may not {action}"
                        );
                    }
                }
            }
        }
        // Denials are audited with their reason.
        let events = api_ok(
            &reg,
            reqwest::Method::GET,
            "/audit?outcome=denied&user=u-read",
            None,
        )
        .await;
        let denied = events["events"].as_array().unwrap();
        assert!(!denied.is_empty());
        assert!(
            denied
                .iter()
                .all(|e| e["event"]["reason"].as_str().is_some_and(|r| !r.is_empty()))
        );
        reg.stop().await;
    }
);

both_backends!(anonymous_callers_are_challenged, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    reg.push_image("private/app", "v1", b"x").await;
    let anon = anonymous_client();
    let r = anon.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&r, "www-authenticate");
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"{}/token\",service=\"ward\"",
            reg.base
        )),
        "{challenge}"
    );
    let r = anon
        .get(reg.url("/v2/private/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").contains("scope=\"repository:private/app:pull\""));
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = anon
        .post(reg.url("/v2/private/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "www-authenticate").contains("scope=\"repository:private/app:pull,push\""));
    // An anonymous token grants nothing on a private repository.
    let (_, claims) = token_for(&reg, &anon, "repository:private/app:pull").await;
    assert_eq!(claims["access"], json!([]));
    // Wrong credentials are refused and audited.
    let r = client_as("admin", "wrong")
        .get(reg.url("/v2/"))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let failures = api_ok(
        &reg,
        reqwest::Method::GET,
        "/audit?action=login&outcome=failure",
        None,
    )
    .await;
    assert!(
        failures["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"]["user"] == "admin"),
        "{failures}"
    );
    reg.stop().await;
});

both_backends!(
    a_mount_challenge_asks_for_the_source_too,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        let blob = reg.push_blob("team-a/base", b"shared layer").await;
        create_user(&reg, "builder", "pw-of-the-builder").await;
        bind(&reg, "user:builder", "read", "team-a/*").await;
        bind(&reg, "user:builder", "write", "team-b/*").await;
        let mount = format!("/v2/team-b/app/blobs/uploads/?mount={blob}&from=team-a/base");
        let r = anonymous_client()
            .post(reg.url(&mount))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&r, "www-authenticate");
        let scope = "repository:team-b/app:pull,push repository:team-a/base:pull";
        assert!(
            challenge.contains(&format!("scope=\"{scope}\"")),
            "{challenge}"
        );

        // A token for the challenged scope mounts; one for the target alone
        // falls back to an upload session, revealing nothing of the source.
        let builder = client_as("builder", "pw-of-the-builder");
        let (token, _) = token_for(&reg, &builder, scope).await;
        let r = bearer(&token).post(reg.url(&mount)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let (token, _) = token_for(&reg, &builder, "repository:team-b/other:pull,push").await;
        let other = mount.replace("team-b/app", "team-b/other");
        let r = bearer(&token).post(reg.url(&other)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        reg.stop().await;
    }
);

both_backends!(
    public_repositories_are_pullable_on_purpose,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("pub/app", "v1", b"x").await;
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/repositories/pub/app",
            Some(json!({"public": true})),
        )
        .await;
        let anon = anonymous_client();
        let (token, claims) = token_for(&reg, &anon, "repository:pub/app:pull,push").await;
        assert_eq!(claims["access"][0]["actions"], json!(["pull"]));
        let client = bearer(&token);
        assert_eq!(
            client
                .get(reg.url("/v2/pub/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let r = client
            .post(reg.url("/v2/pub/app/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            anon.get(reg.url("/v2/pub/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        reg.stop().await;
    }
);

/// The mission's ECR policy, in Ward's action names.
const ECR_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowPushFromCICD", "Effect": "Allow", "Principal": {"Robot": ["github-actions"]},
     "Action": ["registry:Push", "registry:Pull"], "Resource": "*"},
    {"Sid": "AllowPullFromProduction", "Effect": "Allow", "Principal": {"Robot": ["production-ecs"]},
     "Action": ["registry:Pull"], "Resource": "*"},
    {"Sid": "DenyDeleteProduction", "Effect": "Deny", "Principal": "*",
     "Action": ["registry:Delete*"],
     "Condition": {"StringEquals": {"ward:ResourceTag/Environment": "production"}}}
  ]
}"#;

async fn create_robot(reg: &TestRegistry, name: &str, grants: Value) -> String {
    let body = api_ok(
        reg,
        reqwest::Method::POST,
        "/robots",
        Some(json!({"name": name, "grants": grants})),
    )
    .await;
    body["secret"].as_str().unwrap().to_owned()
}

both_backends!(
    the_mission_ecr_policy_behaves_as_written,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| c.delete_enabled = true).await;
        let policy: Value = serde_json::from_str(ECR_POLICY).unwrap();
        api_ok(&reg, reqwest::Method::PUT, "/policies/ecr", Some(policy)).await;
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/repositories/prod/model",
            Some(json!({"labels": {"Environment": "production"}})),
        )
        .await;
        let ci = client_as(
            "github-actions",
            &create_robot(&reg, "github-actions", json!([])).await,
        );
        let prod = client_as(
            "production-ecs",
            &create_robot(&reg, "production-ecs", json!([])).await,
        );

        // CI may push.
        let config = Digest::of(b"{}");
        let r = ci
            .post(reg.url(&format!("/v2/prod/model/blobs/uploads/?digest={config}")))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let m = image_manifest(config, 2, &[], "");
        let r = ci
            .put(reg.url("/v2/prod/model/manifests/v1"))
            .header("content-type", media::OCI_MANIFEST)
            .body(m.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        // Production may pull, not push.
        assert_eq!(
            prod.get(reg.url("/v2/prod/model/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        expect_error(
            prod.post(reg.url("/v2/prod/model/blobs/uploads/"))
                .send()
                .await
                .unwrap(),
            StatusCode::FORBIDDEN,
            "DENIED",
        )
        .await;
        // Nobody may delete in production, not even the administrator (deny beats allow).
        let r = reg.delete("/v2/prod/model/manifests/v1").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("DenyDeleteProduction"),
            "{body}"
        );
        // Elsewhere the administrator may.
        reg.push_image("dev/model", "v1", b"y").await;
        assert_eq!(
            reg.delete("/v2/dev/model/manifests/v1").await.status(),
            StatusCode::ACCEPTED
        );
        // explain names the statement.
        let explained = api_ok(&reg, reqwest::Method::POST, "/policy/explain",
        Some(json!({"principal": "user:admin", "action": "registry:Delete", "repository": "prod/model"}))).await;
        assert_eq!(explained["allowed"], false);
        assert!(
            explained["explanation"]
                .as_str()
                .unwrap()
                .contains("DenyDeleteProduction")
        );
        let explained = api_ok(&reg, reqwest::Method::POST, "/policy/explain",
        Some(json!({"principal": "robot:github-actions", "action": "registry:Push", "repository": "prod/model"}))).await;
        assert_eq!(explained["allowed"], true);
        assert!(
            explained["explanation"]
                .as_str()
                .unwrap()
                .contains("AllowPushFromCICD"),
            "{explained}"
        );
        reg.stop().await;
    }
);

both_backends!(
    condition_operators_decide_as_written,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        create_user(&reg, "carol", "carol-password").await;
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/repositories/lab/a",
            Some(json!({"labels": {"Tier": "gold"}})),
        )
        .await;
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            (
                "StringEquals",
                json!({"StringEquals": {"ward:ResourceTag/Tier": "gold"}}),
                json!({}),
                true,
            ),
            (
                "StringEquals-miss",
                json!({"StringEquals": {"ward:ResourceTag/Tier": "silver"}}),
                json!({}),
                false,
            ),
            (
                "StringNotEquals",
                json!({"StringNotEquals": {"ward:ResourceTag/Tier": "silver"}}),
                json!({}),
                true,
            ),
            (
                "StringLike-tag",
                json!({"StringLike": {"ward:Tag": "release-*"}}),
                json!({"tag": "release-1"}),
                true,
            ),
            (
                "StringLike-tag-miss",
                json!({"StringLike": {"ward:Tag": "release-*"}}),
                json!({"tag": "dev-1"}),
                false,
            ),
            (
                "IpAddress",
                json!({"IpAddress": {"ward:SourceIp": "10.0.0.0/8"}}),
                json!({"source_ip": "10.1.2.3"}),
                true,
            ),
            (
                "IpAddress-miss",
                json!({"IpAddress": {"ward:SourceIp": "10.0.0.0/8"}}),
                json!({"source_ip": "192.168.1.1"}),
                false,
            ),
            (
                "NotIpAddress",
                json!({"NotIpAddress": {"ward:SourceIp": "10.0.0.0/8"}}),
                json!({"source_ip": "192.168.1.1"}),
                true,
            ),
            (
                "DateLessThan",
                json!({"DateLessThan": {"ward:CurrentTime": "2999-01-01T00:00:00Z"}}),
                json!({}),
                true,
            ),
            (
                "DateGreaterThan",
                json!({"DateGreaterThan": {"ward:CurrentTime": "2999-01-01T00:00:00Z"}}),
                json!({}),
                false,
            ),
        ];
        for (name, condition, extra, allowed) in cases {
            let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "S", "Effect": "Allow",
            "Principal": {"User": ["carol"]}, "Action": "registry:Pull", "Resource": "lab/*", "Condition": condition}]});
            api_ok(&reg, reqwest::Method::PUT, "/policies/cond", Some(policy)).await;
            let mut req = json!({"principal": "user:carol", "action": "registry:Pull", "repository": "lab/a"});
            for (k, v) in extra.as_object().unwrap() {
                req[k] = v.clone();
            }
            let got = api_ok(&reg, reqwest::Method::POST, "/policy/explain", Some(req)).await;
            assert_eq!(got["allowed"], allowed, "{name}: {got}");
        }
        // A policy naming an unknown action or operator is refused with the reason.
        let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "registry:Fly",
        "Condition": {"StringSortOf": {"ward:Tag": "x"}}}]});
        let r = api(&reg, reqwest::Method::PUT, "/policies/bad", Some(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("registry:Fly") && text.contains("StringSortOf"),
            "{text}"
        );
        reg.stop().await;
    }
);

both_backends!(
    forged_and_tampered_tokens_are_refused,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("sec/app", "v1", b"x").await;
        let (token, _) = token_for(&reg, &reg.client, "repository:sec/app:pull").await;
        assert_eq!(
            bearer(&token)
                .get(reg.url("/v2/sec/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let parts: Vec<&str> = token.split('.').collect();
        let enc = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        let dec = |s: &str| -> Value {
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap(),
            )
            .unwrap()
        };
        let mut header_none = dec(parts[0]);
        header_none["alg"] = json!("none");
        let mut claims_more = dec(parts[1]);
        claims_more["access"] = json!([{"type": "repository", "name": "sec/app", "actions": ["pull", "push", "delete"]}]);
        let mut header_hs = dec(parts[0]);
        header_hs["alg"] = json!("HS256");
        let forged = [
            format!("{}.{}.", enc(&header_none), parts[1]),
            format!("{}.{}.{}", parts[0], enc(&claims_more), parts[2]),
            format!("{}.{}.{}", enc(&header_hs), parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], parts[1], "AAAA"),
            "not-a-token".to_owned(),
        ];
        for t in forged {
            let r = bearer(&t)
                .get(reg.url("/v2/sec/app/manifests/v1"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{t}");
        }
        reg.stop().await;
    }
);

both_backends!(immutable_tags_cannot_move, |b: Backend| async move {
    let reg = TestRegistry::start_with(b, |c| c.delete_enabled = true).await;
    api_ok(
        &reg,
        reqwest::Method::PUT,
        "/immutability-rules/releases",
        Some(json!({"repositories": ["*"], "tag_prefixes": ["prod-", "v1."]})),
    )
    .await;
    let first = reg.push_image("app", "prod-1", b"good").await;
    let first_digest = Digest::of(&first);
    let other = reg.push_image("app", "dev", b"evil").await;
    // Overwrite, retag by digest, delete tag, delete manifest: all refused, naming the rule.
    let refused = [
        reg.put_manifest("app", "prod-1", media::OCI_MANIFEST, &other)
            .await,
        reg.client
            .put(reg.url(&format!(
                "/v2/app/manifests/{}?tag=prod-1",
                Digest::of(&other)
            )))
            .header("content-type", media::OCI_MANIFEST)
            .body(other.clone())
            .send()
            .await
            .unwrap(),
        reg.delete("/v2/app/manifests/prod-1").await,
        reg.delete(&format!("/v2/app/manifests/{first_digest}"))
            .await,
    ];
    for (i, r) in refused.into_iter().enumerate() {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "refusal #{i}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("releases"),
            "{body}"
        );
    }
    assert_eq!(
        header(
            &reg.head("/v2/app/manifests/prod-1").await,
            "docker-content-digest"
        ),
        first_digest.to_string()
    );
    // Even after the rule is lifted, the tag deleted and the rule restored, other
    // content cannot take the tag: the binding outlives all of that.
    api_ok(
        &reg,
        reqwest::Method::DELETE,
        "/immutability-rules/releases",
        None,
    )
    .await;
    assert_eq!(
        reg.delete("/v2/app/manifests/prod-1").await.status(),
        StatusCode::ACCEPTED
    );
    api_ok(
        &reg,
        reqwest::Method::PUT,
        "/immutability-rules/releases",
        Some(json!({"repositories": ["*"], "tag_prefixes": ["prod-", "v1."]})),
    )
    .await;
    let r = reg
        .put_manifest("app", "prod-1", media::OCI_MANIFEST, &other)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The original content may come back under its own tag.
    assert_eq!(
        reg.put_manifest("app", "prod-1", media::OCI_MANIFEST, &first)
            .await
            .status(),
        StatusCode::CREATED
    );
    // Signature tags of the referrers fallback scheme stay writable.
    let sig_tag = format!("sha256-{}.sig", first_digest.hex());
    assert_eq!(
        reg.put_manifest("app", &sig_tag, media::OCI_MANIFEST, &first)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        reg.put_manifest("app", &sig_tag, media::OCI_MANIFEST, &other)
            .await
            .status(),
        StatusCode::CREATED
    );
    // Refusals are audited.
    let events = api_ok(
        &reg,
        reqwest::Method::GET,
        "/audit?outcome=denied&repository=app",
        None,
    )
    .await;
    assert!(events["events"].as_array().unwrap().len() >= 5);
    reg.stop().await;
});

both_backends!(
    fifty_racing_pushes_to_a_new_immutable_tag_have_one_winner,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/immutability-rules/prod",
            Some(json!({"repositories": ["*"], "tag_prefixes": ["prod-"]})),
        )
        .await;
        let mut manifests = Vec::new();
        for i in 0..50u32 {
            let config = reg
                .push_blob("race", format!("{{\"n\":{i}}}").as_bytes())
                .await;
            manifests.push(image_manifest(
                config,
                format!("{{\"n\":{i}}}").len(),
                &[],
                "",
            ));
        }
        let mut tasks = Vec::new();
        for m in manifests.clone() {
            let (client, url) = (reg.client.clone(), reg.url("/v2/race/manifests/prod-race"));
            tasks.push(tokio::spawn(async move {
                client
                    .put(url)
                    .header("content-type", media::OCI_MANIFEST)
                    .body(m.clone())
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::CREATED => winners += 1,
                StatusCode::FORBIDDEN => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(winners, 1, "exactly one push wins");
        let now = header(
            &reg.head("/v2/race/manifests/prod-race").await,
            "docker-content-digest",
        );
        assert!(manifests.iter().any(|m| Digest::of(m).to_string() == now));
        reg.stop().await;
    }
);

both_backends!(
    forbidden_tags_are_refused_in_production,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        api_ok(&reg, reqwest::Method::PUT, "/immutability-rules/no-latest",
        Some(json!({"repositories": ["*"], "labels": {"Environment": "production"}, "forbid_tags": ["latest"]}))).await;
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/repositories/prod/web",
            Some(json!({"labels": {"Environment": "production"}})),
        )
        .await;
        let m = reg.push_image("prod/web", "v1.0.0", b"x").await;
        let r = reg
            .put_manifest("prod/web", "latest", media::OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("no-latest"));
        reg.push_image("dev/web", "latest", b"x").await;
        reg.stop().await;
    }
);

both_backends!(failed_logins_are_rate_limited, |b: Backend| async move {
    let reg = TestRegistry::start(b).await;
    let mut limited = None;
    for _ in 0..30 {
        let r = client_as("admin", "guess")
            .get(reg.url("/v2/"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = limited.expect("repeated failures are rate-limited");
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(common::error_code(r).await, "TOOMANYREQUESTS");
    // The right password is refused too while locked: no oracle for the attacker.
    let r = client_as("admin", common::ADMIN_PASSWORD)
        .get(reg.url("/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    reg.stop().await;
});

both_backends!(
    robots_and_access_tokens_are_scoped_and_revocable,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("ci/app", "v1", b"x").await;
        reg.push_image("other/app", "v1", b"x").await;
        let secret = create_robot(
            &reg,
            "builder",
            json!([{"role": "write", "repositories": "ci/*"}]),
        )
        .await;
        assert!(secret.starts_with("ward_rbt_"));
        let robot = client_as("builder", &secret);
        assert_eq!(
            robot
                .get(reg.url("/v2/ci/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            robot
                .get(reg.url("/v2/other/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        let (token, _) = token_for(&reg, &robot, "repository:ci/app:pull").await;
        // The list never shows the secret again.
        let list = api_ok(&reg, reqwest::Method::GET, "/robots", None).await;
        assert!(!list.to_string().contains(&secret));
        api_ok(&reg, reqwest::Method::POST, "/robots/builder/revoke", None).await;
        assert_eq!(
            robot
                .get(reg.url("/v2/ci/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            bearer(&token)
                .get(reg.url("/v2/ci/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED,
            "tokens die with the robot"
        );

        create_user(&reg, "dana", "dana-password").await;
        bind(&reg, "user:dana", "read", "ci/*").await;
        let dana = client_as("dana", "dana-password");
        let created: Value = dana
            .post(reg.url("/api/v1/tokens"))
            .json(&json!({"name": "laptop"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pat = created["secret"].as_str().unwrap().to_owned();
        let via_pat = client_as("dana", &pat);
        assert_eq!(
            via_pat
                .get(reg.url("/v2/ci/app/manifests/v1"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            client_as("eve", &pat)
                .get(reg.url("/v2/"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED,
            "a token belongs to its user"
        );
        assert_eq!(
            dana.delete(reg.url("/api/v1/tokens/laptop"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            via_pat.get(reg.url("/v2/")).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        // Disabling a user ends their access at once.
        api_ok(
            &reg,
            reqwest::Method::PATCH,
            "/users/dana",
            Some(json!({"disabled": true})),
        )
        .await;
        assert_eq!(
            dana.get(reg.url("/v2/")).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        reg.stop().await;
    }
);

both_backends!(
    listings_show_only_what_the_caller_may_pull,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        for repo in ["a/one", "a/two", "b/one", "c/x"] {
            reg.push_image(repo, "v1", b"x").await;
        }
        create_user(&reg, "frank", "frank-password").await;
        bind(&reg, "user:frank", "read", "a/*").await;
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoSecretTags", "Effect": "Deny", "Principal": "*",
        "Action": "registry:Pull", "Resource": "a/*", "Condition": {"StringLike": {"ward:Tag": "secret-*"}}}]});
        api_ok(&reg, reqwest::Method::PUT, "/policies/tags", Some(policy)).await;
        let m = reg.push_image("a/one", "v2", b"y").await;
        reg.put_manifest("a/one", "secret-1", media::OCI_MANIFEST, &m)
            .await;
        let frank = client_as("frank", "frank-password");
        let catalog: Value = frank
            .get(reg.url("/v2/_catalog"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(catalog["repositories"], json!(["a/one", "a/two"]));
        let page: Value = frank
            .get(reg.url("/v2/_catalog?n=1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["repositories"], json!(["a/one"]));
        let tags: Value = frank
            .get(reg.url("/v2/a/one/tags/list"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tags["tags"], json!(["v1", "v2"]));
        // The Deny names every principal, so it binds the administrator too: deny beats allow.
        let all: Value = reg.get("/v2/a/one/tags/list").await.json().await.unwrap();
        assert_eq!(all["tags"], json!(["v1", "v2"]));
        assert_eq!(
            reg.get("/v2/a/one/manifests/secret-1").await.status(),
            StatusCode::FORBIDDEN
        );
        reg.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_declares_its_access_and_enforces_it() {
    let reg = TestRegistry::start(Backend::Sqlite).await;
    let openapi: Value = serde_json::from_str(ward_server::api::OPENAPI).unwrap();
    let documented: BTreeMap<String, Vec<String>> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, ops)| {
            (
                p.clone(),
                ops.as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    let anon = anonymous_client();
    for route in ward_server::api::ROUTES.iter() {
        let doc_path = route.path.replace("{*name}", "{name}");
        let methods = documented
            .get(&doc_path)
            .unwrap_or_else(|| panic!("{} is not in openapi.json", route.path));
        assert!(
            methods.contains(&route.method.as_str().to_lowercase()),
            "{} {} undocumented",
            route.method,
            route.path
        );
        let concrete = route
            .path
            .replace("{*name}", "x/y")
            .replace("{name}", "x")
            .replace("{user}", "y");
        let r = anon
            .request(route.method.clone(), reg.url(&concrete))
            .send()
            .await
            .unwrap();
        if route.access == ward_server::api::ApiAccess::Public {
            assert_eq!(
                route.path, "/api/v1/openapi.json",
                "only the API description is public"
            );
            assert_eq!(r.status(), StatusCode::OK);
        } else {
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{} {} must refuse anonymous callers",
                route.method,
                route.path
            );
        }
    }
    let documented_count: usize = documented.values().map(Vec::len).sum();
    assert_eq!(
        documented_count,
        ward_server::api::ROUTES.len(),
        "openapi.json lists no route the server lacks"
    );
    // Every OCI endpoint declares an access; none lets an anonymous caller through.
    use ward_server::oci::route::{Access, Endpoint};
    for e in Endpoint::ALL {
        let _declared: Access = e.access();
    }
    for (method, path) in [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/r/tags/list"),
        ("GET", "/v2/r/manifests/v1"),
        ("HEAD", "/v2/r/manifests/v1"),
        ("PUT", "/v2/r/manifests/v1"),
        ("DELETE", "/v2/r/manifests/v1"),
        (
            "GET",
            "/v2/r/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "DELETE",
            "/v2/r/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("POST", "/v2/r/blobs/uploads/"),
        ("GET", "/v2/r/blobs/uploads/u"),
        ("PATCH", "/v2/r/blobs/uploads/u"),
        ("PUT", "/v2/r/blobs/uploads/u"),
        ("DELETE", "/v2/r/blobs/uploads/u"),
        (
            "GET",
            "/v2/r/referrers/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
    ] {
        let r = anon
            .request(method.parse().unwrap(), reg.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    reg.stop().await;
}

both_backends!(
    refresh_tokens_work_as_docker_login_uses_them,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("sec/app", "v1", b"x").await;
        // docker login: GET /token with Basic credentials and offline_token=true.
        let r = reg
            .client
            .get(reg.url("/token"))
            .query(&[
                ("service", "ward"),
                ("offline_token", "true"),
                ("client_id", "docker"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        let refresh = body["refresh_token"]
            .as_str()
            .expect("offline_token=true adds a refresh token")
            .to_owned();
        // Later: the OAuth2 form with the refresh token alone, no password.
        let token_url = reg.url("/token");
        let manifest_url = reg.url("/v2/sec/app/manifests/v1");
        let exchange = |refresh: String| {
            Client::new()
                .post(token_url.clone())
                .form(&[
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh),
                    ("service", "ward".to_owned()),
                    ("scope", "repository:sec/app:pull".to_owned()),
                    ("client_id", "docker".to_owned()),
                ])
                .send()
        };
        let r = exchange(refresh.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"]
            .as_str()
            .or(body["token"].as_str())
            .unwrap()
            .to_owned();
        let pulled = bearer(&token).get(&manifest_url).send().await.unwrap();
        assert_eq!(pulled.status(), StatusCode::OK);
        // A refresh token is no access token, and a forged one gets nothing.
        let misused = bearer(&refresh).get(&manifest_url).send().await.unwrap();
        assert_eq!(misused.status(), StatusCode::UNAUTHORIZED);
        let mut forged = refresh.clone();
        forged.push('A');
        let r = exchange(forged).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        reg.stop().await;
    }
);

/// A `PUT` of a manifest to `app` as `client` (with any `?tag=` in `reference`).
async fn put_as(
    reg: &TestRegistry,
    client: &Client,
    reference: &str,
    manifest: &[u8],
) -> reqwest::Response {
    client
        .put(reg.url(&format!("/v2/app/manifests/{reference}")))
        .header("content-type", media::OCI_MANIFEST)
        .body(manifest.to_vec())
        .send()
        .await
        .unwrap()
}

both_backends!(
    every_tag_a_change_touches_needs_the_right_for_it,
    |b: Backend| async move {
        let reg = TestRegistry::start_with(b, |c| c.delete_enabled = true).await;
        let manifest = reg.push_image("app", "base", b"layer").await;
        let digest = Digest::of(&manifest);
        create_user(&reg, "dana", "dana-password").await;
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadApp", "Effect": "Allow", "Principal": {"User": "dana"},
             "Action": "registry:Pull", "Resource": "app"},
            {"Sid": "DevTagsOnly", "Effect": "Allow", "Principal": {"User": "dana"},
             "Action": "registry:Push", "Resource": "app",
             "Condition": {"StringLike": {"ward:Tag": "dev-*"}}},
            {"Sid": "KeepProd", "Effect": "Deny", "Principal": "*",
             "Action": "registry:Delete", "Resource": "app",
             "Condition": {"StringLike": {"ward:Tag": "prod-*"}}}]});
        api_ok(&reg, reqwest::Method::PUT, "/policies/tags", Some(policy)).await;
        let dana = client_as("dana", "dana-password");

        // A tag the policy allows in the path does not carry one it forbids.
        let r = put_as(&reg, &dana, "dev-1?tag=prod", &manifest).await;
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let r = put_as(&reg, &dana, &format!("{digest}?tag=prod"), &manifest).await;
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let r = put_as(&reg, &dana, "dev-1?tag=dev-2", &manifest).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let tags: Value = reg.get("/v2/app/tags/list").await.json().await.unwrap();
        assert_eq!(tags["tags"], json!(["base", "dev-1", "dev-2"]));

        // Deleting the manifest deletes its tags: a Deny on one of them holds.
        let r = reg
            .put_manifest("app", "prod-1", media::OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = reg.delete(&format!("/v2/app/manifests/{digest}")).await;
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let tags: Value = reg.get("/v2/app/tags/list").await.json().await.unwrap();
        assert_eq!(tags["tags"], json!(["base", "dev-1", "dev-2", "prod-1"]));
        // Without that tag on it, the manifest may go.
        let other = reg.push_image("app", "tmp", b"other layer").await;
        let r = reg
            .delete(&format!("/v2/app/manifests/{}", Digest::of(&other)))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        reg.stop().await;
    }
);

both_backends!(
    a_mount_does_not_get_around_the_source_pull_gates,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        // Scanning is off in these tests: new content stays unscanned.
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/repositories/src/gated",
            Some(json!({"scan_policy": {"block_unscanned": true}})),
        )
        .await;
        let layer = reg.push_blob("src/gated", b"unscanned bytes").await;
        let refused = reg.get(&format!("/v2/src/gated/blobs/{layer}")).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        let r = reg
            .client
            .post(reg.url(&format!(
                "/v2/scratch/blobs/uploads/?mount={layer}&from=src/gated"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "an upload, not a mount");
        let r = reg.get(&format!("/v2/scratch/blobs/{layer}")).await;
        expect_error(r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;

        // What the source serves may be mounted.
        let open = reg.push_blob("src/open", b"open bytes").await;
        let r = reg
            .client
            .post(reg.url(&format!(
                "/v2/scratch/blobs/uploads/?mount={open}&from=src/open"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        reg.stop().await;
    }
);

/// `GET /token` as `client`, for `scope`, asking for a refresh token.
async fn offline_token(reg: &TestRegistry, client: &Client, scope: &str) -> reqwest::Response {
    client
        .get(reg.url("/token"))
        .query(&[
            ("service", "ward"),
            ("scope", scope),
            ("offline_token", "true"),
        ])
        .send()
        .await
        .unwrap()
}

/// A refresh token from `GET /token` as `client`.
async fn refresh_token(reg: &TestRegistry, client: &Client) -> String {
    let r = offline_token(reg, client, "repository:app:pull").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// The status of exchanging `refresh` for an access token.
async fn exchange(reg: &TestRegistry, refresh: &str) -> StatusCode {
    Client::new()
        .post(reg.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("service", "ward"),
            ("scope", "repository:app:pull"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

both_backends!(
    a_registry_token_buys_no_other_token,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("app", "v1", b"x").await;
        create_user(&reg, "dana", "dana-password").await;
        bind(&reg, "user:dana", "write", "*").await;
        let (token, _) = token_for(
            &reg,
            &client_as("dana", "dana-password"),
            "repository:app:pull",
        )
        .await;
        let r = offline_token(&reg, &bearer(&token), "repository:other:pull,push").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body = r.text().await.unwrap();
        assert!(!body.contains("refresh_token"), "{body}");
        assert!(body.contains("cannot be exchanged"), "{body}");
        reg.stop().await;
    }
);

both_backends!(
    refresh_tokens_end_with_the_credential_that_got_them,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        reg.push_image("app", "v1", b"x").await;
        create_user(&reg, "dana", "dana-password").await;
        bind(&reg, "user:dana", "read", "app").await;
        let dana = client_as("dana", "dana-password");
        let created: Value = dana
            .post(reg.url("/api/v1/tokens"))
            .json(&json!({"name": "laptop"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pat = created["secret"].as_str().unwrap().to_owned();
        let via_pat = refresh_token(&reg, &client_as("dana", &pat)).await;
        let via_password = refresh_token(&reg, &dana).await;
        assert_eq!(exchange(&reg, &via_pat).await, StatusCode::OK);
        assert_eq!(exchange(&reg, &via_password).await, StatusCode::OK);

        // The access token revoked: what it got goes with it, not the rest.
        let r = dana
            .delete(reg.url("/api/v1/tokens/laptop"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(exchange(&reg, &via_pat).await, StatusCode::UNAUTHORIZED);
        assert_eq!(exchange(&reg, &via_password).await, StatusCode::OK);

        // A new password ends what the old one got.
        let r = dana
            .put(reg.url("/api/v1/me/password"))
            .json(&json!({"password": "dana-new-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            exchange(&reg, &via_password).await,
            StatusCode::UNAUTHORIZED
        );

        // An account deleted and made again under the same name and password
        // does not inherit the old one's refresh tokens.
        let dana = client_as("dana", "dana-new-password");
        let before = refresh_token(&reg, &dana).await;
        assert_eq!(exchange(&reg, &before).await, StatusCode::OK);
        api_ok(&reg, reqwest::Method::DELETE, "/users/dana", None).await;
        create_user(&reg, "dana", "dana-new-password").await;
        bind(&reg, "user:dana", "read", "app").await;
        assert_eq!(exchange(&reg, &before).await, StatusCode::UNAUTHORIZED);

        // Nor does a robot made again under the same name.
        let secret =
            create_robot(&reg, "ci", json!([{"role": "read", "repositories": "app"}])).await;
        let robot = refresh_token(&reg, &client_as("ci", &secret)).await;
        assert_eq!(exchange(&reg, &robot).await, StatusCode::OK);
        api_ok(&reg, reqwest::Method::DELETE, "/robots/ci", None).await;
        create_robot(&reg, "ci", json!([{"role": "read", "repositories": "app"}])).await;
        assert_eq!(exchange(&reg, &robot).await, StatusCode::UNAUTHORIZED);
        reg.stop().await;
    }
);

both_backends!(
    an_access_token_cannot_take_over_its_account,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        create_user(&reg, "dana", "dana-password").await;
        let dana = client_as("dana", "dana-password");
        let created: Value = dana
            .post(reg.url("/api/v1/tokens"))
            .json(&json!({"name": "laptop", "expires_in_days": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let via_pat = client_as("dana", created["secret"].as_str().unwrap());
        let r = via_pat
            .post(reg.url("/api/v1/tokens"))
            .json(&json!({"name": "forever"}))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let r = via_pat
            .put(reg.url("/api/v1/me/password"))
            .json(&json!({"password": "taken-over-password"}))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        // The password still works, and the token may still be listed and revoked.
        let r = via_pat.get(reg.url("/api/v1/tokens")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = dana.get(reg.url("/api/v1/tokens")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // New passwords are long enough, wherever they are set.
        let r = dana
            .put(reg.url("/api/v1/me/password"))
            .json(&json!({"password": "short"}))
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(body.contains("too short"), "{body}");
        let r = api(
            &reg,
            reqwest::Method::POST,
            "/users",
            Some(json!({"name": "erin", "password": ""})),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = api(
            &reg,
            reqwest::Method::PATCH,
            "/users/dana",
            Some(json!({"password": "eleven char"})),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            dana.get(reg.url("/v2/")).send().await.unwrap().status(),
            StatusCode::OK,
            "nothing changed"
        );
        reg.stop().await;
    }
);

both_backends!(
    managing_robots_hands_out_no_roles,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        create_user(&reg, "rob", "rob-the-robot-keeper").await;
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Robots", "Effect": "Allow",
            "Principal": {"User": "rob"}, "Action": "admin:ManageRobots", "Resource": "*"}]});
        api_ok(&reg, reqwest::Method::PUT, "/policies/robots", Some(policy)).await;
        let rob = client_as("rob", "rob-the-robot-keeper");
        let create = |body: Value| rob.post(reg.url("/api/v1/robots")).json(&body).send();
        let r = create(json!({"name": "root", "grants": [{"role": "admin", "repositories": "*"}]}))
            .await
            .unwrap();
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let robots = api_ok(&reg, reqwest::Method::GET, "/robots", None).await;
        assert_eq!(robots["robots"], json!([]), "nothing created");
        // A robot without grants is still theirs to make.
        let r = create(json!({"name": "bare"})).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        reg.stop().await;
    }
);

/// An access token's login is remembered no longer than the token lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_not_remembered_past_its_expiry() {
    use sqlx::Connection as _;
    let reg = TestRegistry::start(Backend::Sqlite).await;
    create_user(&reg, "dana", "dana-password").await;
    let created: Value = client_as("dana", "dana-password")
        .post(reg.url("/api/v1/tokens"))
        .json(&json!({"name": "brief", "expires_in_days": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let via_pat = client_as("dana", created["secret"].as_str().unwrap());
    // Its expiry brought forward to a moment from now, in the database.
    let expires_at = std::time::SystemTime::now() + std::time::Duration::from_millis(1500);
    let expires_at_ms = expires_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut db = sqlx::SqliteConnection::connect(&reg.config.database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE access_tokens SET expires_at = ? WHERE name = 'brief'")
        .bind(expires_at_ms)
        .execute(&mut db)
        .await
        .unwrap();
    let r = via_pat.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "remembered from here on");
    // The expiry is the thing under test: wait for the clock to pass it.
    let left = expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(50)).await;
    let r = via_pat.get(reg.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    reg.stop().await;
}

both_backends!(
    scan_policies_need_the_right_to_manage_scans,
    |b: Backend| async move {
        let reg = TestRegistry::start(b).await;
        create_user(&reg, "ops", "ops-long-password").await;
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Repos", "Effect": "Allow",
            "Principal": {"User": "ops"}, "Action": "admin:ManageRepositories", "Resource": "prod/*"}]});
        api_ok(&reg, reqwest::Method::PUT, "/policies/ops", Some(policy)).await;
        let ops = client_as("ops", "ops-long-password");
        let put = |body: Value| {
            ops.put(reg.url("/api/v1/repositories/prod/app"))
                .json(&body)
                .send()
        };
        let r = put(json!({"labels": {"Environment": "production"}}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let lax = json!({"scan_policy": {"quarantine_severity": null}});
        let r = put(lax.clone()).await.unwrap();
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let settings = api_ok(&reg, reqwest::Method::GET, "/repositories/prod/app", None).await;
        assert!(settings["scan_policy"].is_null(), "{settings}");
        assert_eq!(settings["labels"], json!({"Environment": "production"}));

        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Scans", "Effect": "Allow",
            "Principal": {"User": "ops"}, "Action": "admin:ManageScans", "Resource": "prod/*"}]});
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/policies/ops-scans",
            Some(policy),
        )
        .await;
        let r = put(lax).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let settings = api_ok(&reg, reqwest::Method::GET, "/repositories/prod/app", None).await;
        assert!(settings["scan_policy"].is_object(), "{settings}");
        // Blocking more in its own repository is its own business...
        let r = put(json!({"scan_policy": {"block_severity": "LOW"}}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // ...but quarantining below the registry default quarantines in
        // every repository that links the content: that needs ManageScans
        // registry-wide.
        let r = put(json!({"scan_policy": {"quarantine_severity": "LOW"}}))
            .await
            .unwrap();
        expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
        let settings = api_ok(&reg, reqwest::Method::GET, "/repositories/prod/app", None).await;
        assert_eq!(
            settings["scan_policy"]["block_severity"], "LOW",
            "{settings}"
        );
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "AllScans", "Effect": "Allow",
            "Principal": {"User": "ops"}, "Action": "admin:ManageScans", "Resource": "*"}]});
        api_ok(
            &reg,
            reqwest::Method::PUT,
            "/policies/ops-all-scans",
            Some(policy),
        )
        .await;
        let r = put(json!({"scan_policy": {"quarantine_severity": "LOW"}}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        reg.stop().await;
    }
);
