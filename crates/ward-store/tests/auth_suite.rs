//! Identity and access-control storage, one suite on two backends: every
//! scenario runs on a fresh SQLite file and on a fresh PostgreSQL schema (the
//! server named by WARD_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_core::Digest;
use ward_core::name::RepositoryName;
use ward_store::meta::{
    AccessToken, AuthObject, AuthStoreError, LAST_USE_RESOLUTION_MS, NewAccessToken, NewRobot,
    NewUser, PutOutcome, RepositoryLabel, Robot, StoredRoleBinding,
};
use ward_store::{MetaStore, testing};

/// Generates `mod $name { sqlite(); postgres(); }` running `$body(store)`.
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = testing::sqlite_store(dir.path()).await;
                ($body)(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let store = testing::postgres_store().await;
                ($body)(store).await;
            }
        }
    };
}

/// Runs `$op`, asserts the authorization revision moved by exactly `$delta`,
/// and evaluates to the result of `$op`.
macro_rules! bumps {
    ($store:expr, $delta:expr, $op:expr) => {{
        let before = $store.auth_revision().await.unwrap();
        let out = $op;
        let after = $store.auth_revision().await.unwrap();
        assert_eq!(
            after - before,
            $delta,
            "revision change of {}",
            stringify!($op)
        );
        out
    }};
}

/// A secret digest in the `sha256:<hex>` form ward-auth's `SecretDigest` displays.
fn digest(secret: &str) -> String {
    Digest::of(secret.as_bytes()).to_string()
}

fn repo(s: &str) -> RepositoryName {
    RepositoryName::parse(s, 255).unwrap()
}

fn new_user<'a>(name: &'a str, hash: &'a str) -> NewUser<'a> {
    NewUser {
        name,
        password_hash: hash,
    }
}

const HASH_A: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const HASH_B: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXM";

fn robot_spec<'a>(name: &'a str, secret_digest: &'a str, expires: Option<i64>) -> NewRobot<'a> {
    NewRobot {
        name,
        secret_digest,
        description: "pushes from CI",
        scopes_json: r#"[{"repositories":"ml/**","actions":["pull","push"]}]"#,
        expires_at_ms: expires,
        created_by: "admin",
    }
}

fn token_spec<'a>(user: &'a str, name: &'a str, secret_digest: &'a str) -> NewAccessToken<'a> {
    NewAccessToken {
        user,
        name,
        secret_digest,
        description: "laptop",
        scopes_json: r#"{"actions":["pull"]}"#,
        expires_at_ms: Some(4_000_000_000_000),
    }
}

fn conflict(e: AuthStoreError) -> AuthObject {
    match e {
        AuthStoreError::Conflict(o) => o,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn not_found(e: AuthStoreError) -> AuthObject {
    match e {
        AuthStoreError::NotFound(o) => o,
        other => panic!("expected not found, got {other:?}"),
    }
}

both_backends!(users_lifecycle, |store: MetaStore| async move {
    let created = bumps!(
        store,
        1,
        store.create_user(&new_user("alice", HASH_A)).await.unwrap()
    );
    assert_eq!(created.name, "alice");
    assert!(!created.disabled);
    assert!(created.groups.is_empty());
    assert_eq!(store.user("alice").await.unwrap(), Some(created.clone()));
    assert_eq!(store.user("nobody").await.unwrap(), None);

    // A taken name is a conflict, not a database error, and changes nothing.
    let err = bumps!(
        store,
        0,
        store
            .create_user(&new_user("alice", HASH_B))
            .await
            .unwrap_err()
    );
    assert_eq!(
        err.to_string(),
        r#"user "alice" already exists; choose another name or delete it first"#
    );
    assert_eq!(conflict(err), AuthObject::User("alice".into()));
    assert_eq!(
        store.user("alice").await.unwrap().unwrap().password_hash,
        HASH_A
    );

    // Names are exact: the server lowercases usernames, the store compares bytes.
    store.create_user(&new_user("Alice", HASH_B)).await.unwrap();
    assert_eq!(
        store.user("Alice").await.unwrap().unwrap().password_hash,
        HASH_B
    );
    assert!(store.delete_user("Alice").await.unwrap());

    bumps!(
        store,
        1,
        store.set_user_password_hash("alice", HASH_B).await.unwrap()
    );
    assert_eq!(
        store.user("alice").await.unwrap().unwrap().password_hash,
        HASH_B
    );
    bumps!(
        store,
        1,
        store.set_user_disabled("alice", true).await.unwrap()
    );
    assert!(store.user("alice").await.unwrap().unwrap().disabled);
    bumps!(
        store,
        1,
        store.set_user_disabled("alice", false).await.unwrap()
    );
    assert!(!store.user("alice").await.unwrap().unwrap().disabled);

    let missing = AuthObject::User("nobody".into());
    let err = bumps!(
        store,
        0,
        store
            .set_user_password_hash("nobody", HASH_A)
            .await
            .unwrap_err()
    );
    assert_eq!(not_found(err), missing);
    let err = bumps!(
        store,
        0,
        store.set_user_disabled("nobody", true).await.unwrap_err()
    );
    assert_eq!(not_found(err), missing);

    assert!(bumps!(store, 1, store.delete_user("alice").await.unwrap()));
    assert!(!bumps!(store, 0, store.delete_user("alice").await.unwrap()));
    assert_eq!(store.user("alice").await.unwrap(), None);
});

both_backends!(
    user_debug_hides_the_password_hash,
    |store: MetaStore| async move {
        let user = store.create_user(&new_user("alice", HASH_A)).await.unwrap();
        let shown = format!("{user:?} {:?}", new_user("alice", HASH_A));
        assert!(!shown.contains("argon2id"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
);

both_backends!(users_are_listed_in_pages, |store: MetaStore| async move {
    for name in ["dave", "alice", "carol", "bob", "erin"] {
        store.create_user(&new_user(name, HASH_A)).await.unwrap();
    }
    store.create_group("ml").await.unwrap();
    store.create_group("ops").await.unwrap();
    for (group, user) in [("ml", "bob"), ("ops", "bob"), ("ml", "carol")] {
        store.add_group_member(group, user).await.unwrap();
    }

    let first = store.list_users(None, 2).await.unwrap();
    let names: Vec<_> = first.items.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(first.more);
    assert_eq!(first.items[1].groups, ["ml", "ops"]);

    let second = store.list_users(Some("bob"), 2).await.unwrap();
    let names: Vec<_> = second.items.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["carol", "dave"]);
    assert!(second.more);
    assert_eq!(second.items[0].groups, ["ml"]);
    assert!(second.items[1].groups.is_empty());

    let last = store.list_users(Some("dave"), 2).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert!(!last.more);
    assert_eq!(store.list_users(None, 10).await.unwrap().items.len(), 5);
});

both_backends!(groups_and_memberships, |store: MetaStore| async move {
    for name in ["alice", "bob"] {
        store.create_user(&new_user(name, HASH_A)).await.unwrap();
    }
    let ml = bumps!(store, 1, store.create_group("ml").await.unwrap());
    assert_eq!(ml.name, "ml");
    assert!(ml.members.is_empty());
    let err = bumps!(store, 0, store.create_group("ml").await.unwrap_err());
    assert_eq!(conflict(err), AuthObject::Group("ml".into()));
    store.create_group("ops").await.unwrap();

    assert!(bumps!(
        store,
        1,
        store.add_group_member("ml", "bob").await.unwrap()
    ));
    assert!(!bumps!(
        store,
        0,
        store.add_group_member("ml", "bob").await.unwrap()
    ));
    store.add_group_member("ml", "alice").await.unwrap();
    store.add_group_member("ops", "bob").await.unwrap();

    // NotFound names whichever side is missing.
    let cases = [
        ("nogroup", "bob", AuthObject::Group("nogroup".into())),
        ("ml", "nobody", AuthObject::User("nobody".into())),
    ];
    for (group, user, missing) in cases {
        let err = bumps!(
            store,
            0,
            store.add_group_member(group, user).await.unwrap_err()
        );
        assert_eq!(not_found(err), missing, "add {user} to {group}");
        let err = bumps!(
            store,
            0,
            store.remove_group_member(group, user).await.unwrap_err()
        );
        assert_eq!(not_found(err), missing, "remove {user} from {group}");
    }

    let got = store.group("ml").await.unwrap().unwrap();
    assert_eq!(got.members, ["alice", "bob"]);
    assert_eq!(store.group("nogroup").await.unwrap(), None);
    assert_eq!(store.user_groups("bob").await.unwrap(), ["ml", "ops"]);
    assert!(store.user_groups("nobody").await.unwrap().is_empty());
    assert_eq!(
        store.user("bob").await.unwrap().unwrap().groups,
        ["ml", "ops"]
    );

    let page = store.list_groups(None, 1).await.unwrap();
    assert!(page.more);
    assert_eq!(page.items[0].name, "ml");
    assert_eq!(page.items[0].members, ["alice", "bob"]);
    let page = store.list_groups(Some("ml"), 1).await.unwrap();
    assert!(!page.more);
    assert_eq!(page.items[0].name, "ops");
    assert_eq!(page.items[0].members, ["bob"]);

    assert!(bumps!(
        store,
        1,
        store.remove_group_member("ml", "bob").await.unwrap()
    ));
    assert!(!bumps!(
        store,
        0,
        store.remove_group_member("ml", "bob").await.unwrap()
    ));
    assert_eq!(store.user_groups("bob").await.unwrap(), ["ops"]);

    // Deleting a group removes its memberships; deleting a user removes its own.
    assert!(bumps!(store, 1, store.delete_group("ops").await.unwrap()));
    assert!(!bumps!(store, 0, store.delete_group("ops").await.unwrap()));
    assert!(store.user_groups("bob").await.unwrap().is_empty());
    store.delete_user("alice").await.unwrap();
    assert!(store.group("ml").await.unwrap().unwrap().members.is_empty());

    // A group re-created under the same name starts empty.
    store.add_group_member("ml", "bob").await.unwrap();
    store.delete_group("ml").await.unwrap();
    store.create_group("ml").await.unwrap();
    assert!(store.group("ml").await.unwrap().unwrap().members.is_empty());
});

both_backends!(robot_accounts, |store: MetaStore| async move {
    let ci_secret = digest("ward_rbt_ci-secret");
    let ci = bumps!(
        store,
        1,
        store
            .create_robot(&robot_spec("ci", &ci_secret, Some(2_000)))
            .await
            .unwrap()
    );
    assert_eq!(ci.secret_digest, ci_secret);
    assert_eq!(ci.expires_at_ms, Some(2_000));
    assert_eq!(ci.created_by, "admin");
    assert_eq!(ci.revoked_at_ms, None);
    assert_eq!(store.robot("ci").await.unwrap(), Some(ci.clone()));
    assert_eq!(
        store.robot_by_secret_digest(&ci_secret).await.unwrap(),
        Some(ci.clone())
    );
    assert_eq!(
        store
            .robot_by_secret_digest(&digest("ward_rbt_guess"))
            .await
            .unwrap(),
        None
    );

    let err = bumps!(
        store,
        0,
        store
            .create_robot(&robot_spec("ci", &digest("other"), None))
            .await
            .unwrap_err()
    );
    assert_eq!(conflict(err), AuthObject::Robot("ci".into()));
    store
        .create_robot(&robot_spec("prod", &digest("ward_rbt_prod"), None))
        .await
        .unwrap();
    store
        .create_robot(&robot_spec("batch", &digest("ward_rbt_batch"), None))
        .await
        .unwrap();
    let page = store.list_robots(None, 2).await.unwrap();
    let names: Vec<_> = page.items.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["batch", "ci"]);
    assert!(page.more);
    let page = store.list_robots(Some("ci"), 2).await.unwrap();
    assert_eq!(page.items[0].name, "prod");
    assert!(!page.more);

    // Rotating the secret: the old digest finds nothing, the new one finds the robot.
    let rotated = digest("ward_rbt_ci-rotated");
    bumps!(
        store,
        1,
        store.set_robot_secret_digest("ci", &rotated).await.unwrap()
    );
    assert_eq!(
        store.robot_by_secret_digest(&ci_secret).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .robot_by_secret_digest(&rotated)
            .await
            .unwrap()
            .unwrap()
            .name,
        "ci"
    );
    let err = store
        .set_robot_secret_digest("nobody", &rotated)
        .await
        .unwrap_err();
    assert_eq!(not_found(err), AuthObject::Robot("nobody".into()));

    // Revocation is recorded once, and the lookup still finds the robot so
    // the server can tell "revoked" from "unknown".
    assert!(bumps!(
        store,
        1,
        store.revoke_robot("ci", 1_500).await.unwrap()
    ));
    assert!(!bumps!(
        store,
        0,
        store.revoke_robot("ci", 1_700).await.unwrap()
    ));
    let revoked = store
        .robot_by_secret_digest(&rotated)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(1_500));
    assert!(!revoked.is_active(1_600));
    let err = bumps!(store, 0, store.revoke_robot("nobody", 1).await.unwrap_err());
    assert_eq!(not_found(err), AuthObject::Robot("nobody".into()));

    assert!(bumps!(store, 1, store.delete_robot("ci").await.unwrap()));
    assert!(!bumps!(store, 0, store.delete_robot("ci").await.unwrap()));
    assert_eq!(store.robot_by_secret_digest(&rotated).await.unwrap(), None);
});

both_backends!(
    last_use_is_written_at_most_once_a_minute,
    |store: MetaStore| async move {
        let robot = store
            .create_robot(&robot_spec("ci", &digest("r"), None))
            .await
            .unwrap();
        store.create_user(&new_user("alice", HASH_A)).await.unwrap();
        let token = store
            .create_access_token(&token_spec("alice", "laptop", &digest("t")), 10)
            .await
            .unwrap();
        let t0 = 10_000_000;
        // (time, whether it is written)
        let cases = [
            (t0, true),
            (t0 + 1, false),
            (t0 + LAST_USE_RESOLUTION_MS - 1, false),
            (t0 + LAST_USE_RESOLUTION_MS, true),
            (t0 + LAST_USE_RESOLUTION_MS + 5, false),
        ];
        let mut last = None;
        for (now, written) in cases {
            let wrote = bumps!(
                store,
                0,
                store.record_robot_use(robot.id, now).await.unwrap()
            );
            assert_eq!(wrote, written, "robot at {now}");
            let wrote = bumps!(
                store,
                0,
                store.record_access_token_use(token.id, now).await.unwrap()
            );
            assert_eq!(wrote, written, "token at {now}");
            if written {
                last = Some(now);
            }
            let robot = store.robot("ci").await.unwrap().unwrap();
            assert_eq!(robot.last_used_at_ms, last);
            let token = &store.access_tokens("alice").await.unwrap()[0];
            assert_eq!(token.last_used_at_ms, last);
        }
        assert!(!store.record_robot_use(robot.id + 100, t0).await.unwrap());
    }
);

#[test]
fn activity_follows_revocation_and_expiry() {
    // (revoked_at, expires_at, now, active)
    let cases = [
        (None, None, 5, true),
        (None, Some(10), 9, true),
        (None, Some(10), 10, false),
        (None, Some(10), 11, false),
        (Some(3), None, 5, false),
        (Some(3), Some(10), 2, false),
    ];
    for (revoked, expires, now, active) in cases {
        let robot = Robot {
            id: 1,
            name: "ci".into(),
            secret_digest: digest("x"),
            description: String::new(),
            scopes_json: "[]".into(),
            expires_at_ms: expires,
            revoked_at_ms: revoked,
            last_used_at_ms: None,
            created_by: "admin".into(),
            created_at_ms: 0,
        };
        let token = AccessToken {
            id: 1,
            owner: "alice".into(),
            name: "laptop".into(),
            secret_digest: digest("x"),
            description: String::new(),
            scopes_json: "{}".into(),
            expires_at_ms: expires,
            revoked_at_ms: revoked,
            last_used_at_ms: None,
            created_at_ms: 0,
        };
        let case = format!("revoked {revoked:?}, expires {expires:?}, now {now}");
        assert_eq!(robot.is_active(now), active, "robot: {case}");
        assert_eq!(token.is_active(now), active, "token: {case}");
    }
}

both_backends!(personal_access_tokens, |store: MetaStore| async move {
    store.create_user(&new_user("alice", HASH_A)).await.unwrap();
    store.create_user(&new_user("bob", HASH_A)).await.unwrap();
    store.create_group("ml").await.unwrap();
    store.add_group_member("ml", "alice").await.unwrap();

    let laptop = digest("ward_pat_laptop");
    let created = bumps!(
        store,
        1,
        store
            .create_access_token(&token_spec("alice", "laptop", &laptop), 10)
            .await
            .unwrap()
    );
    assert_eq!(created.owner, "alice");
    assert_eq!(created.scopes_json, r#"{"actions":["pull"]}"#);
    assert_eq!(created.expires_at_ms, Some(4_000_000_000_000));

    let err = bumps!(
        store,
        0,
        store
            .create_access_token(&token_spec("alice", "laptop", &digest("again")), 10)
            .await
            .unwrap_err()
    );
    assert_eq!(
        conflict(err),
        AuthObject::AccessToken {
            user: "alice".into(),
            name: "laptop".into()
        }
    );
    let err = bumps!(
        store,
        0,
        store
            .create_access_token(&token_spec("nobody", "laptop", &digest("n")), 10)
            .await
            .unwrap_err()
    );
    assert_eq!(not_found(err), AuthObject::User("nobody".into()));
    // Token names are per user.
    store
        .create_access_token(&token_spec("bob", "laptop", &digest("ward_pat_bob")), 10)
        .await
        .unwrap();
    store
        .create_access_token(&token_spec("alice", "ci", &digest("ward_pat_ci")), 10)
        .await
        .unwrap();

    // The secret lookup brings the owner, its groups and its disabled flag.
    let login = store
        .access_token_by_secret_digest(&laptop)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.token, created);
    assert_eq!(login.user.name, "alice");
    assert_eq!(login.user.groups, ["ml"]);
    assert!(!login.user.disabled);
    store.set_user_disabled("alice", true).await.unwrap();
    let login = store
        .access_token_by_secret_digest(&laptop)
        .await
        .unwrap()
        .unwrap();
    assert!(login.user.disabled);
    assert_eq!(
        store
            .access_token_by_secret_digest(&digest("ward_pat_guess"))
            .await
            .unwrap(),
        None
    );

    let names: Vec<_> = store
        .access_tokens("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["ci", "laptop"]);
    assert!(store.access_tokens("nobody").await.unwrap().is_empty());

    assert!(bumps!(
        store,
        1,
        store
            .revoke_access_token("alice", "laptop", 77)
            .await
            .unwrap()
    ));
    assert!(!bumps!(
        store,
        0,
        store
            .revoke_access_token("alice", "laptop", 99)
            .await
            .unwrap()
    ));
    let login = store
        .access_token_by_secret_digest(&laptop)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.token.revoked_at_ms, Some(77));
    assert!(!login.token.is_active(78));
    let bob_laptop = &store.access_tokens("bob").await.unwrap()[0];
    assert_eq!(
        bob_laptop.revoked_at_ms, None,
        "only alice's token is revoked"
    );
    let cases = [
        ("alice", "nothing", token_object("alice", "nothing")),
        ("nobody", "laptop", AuthObject::User("nobody".into())),
    ];
    for (user, name, missing) in cases {
        let err = bumps!(
            store,
            0,
            store.revoke_access_token(user, name, 1).await.unwrap_err()
        );
        assert_eq!(not_found(err), missing, "{user}/{name}");
    }

    assert!(bumps!(
        store,
        1,
        store.delete_access_token("alice", "ci").await.unwrap()
    ));
    assert!(!bumps!(
        store,
        0,
        store.delete_access_token("alice", "ci").await.unwrap()
    ));
    assert!(!store.delete_access_token("nobody", "ci").await.unwrap());

    // Deleting the user deletes its tokens.
    store.delete_user("alice").await.unwrap();
    assert_eq!(
        store.access_token_by_secret_digest(&laptop).await.unwrap(),
        None
    );
    store.create_user(&new_user("alice", HASH_A)).await.unwrap();
    assert!(store.access_tokens("alice").await.unwrap().is_empty());
    assert_eq!(store.access_tokens("bob").await.unwrap().len(), 1);
});

fn token_object(user: &str, name: &str) -> AuthObject {
    AuthObject::AccessToken {
        user: user.into(),
        name: name.into(),
    }
}

both_backends!(
    access_tokens_per_user_are_limited,
    |store: MetaStore| async move {
        store.create_user(&new_user("alice", HASH_A)).await.unwrap();
        store.create_user(&new_user("bob", HASH_A)).await.unwrap();
        for i in 0..3 {
            let (name, secret) = (format!("t{i}"), digest(&format!("alice-{i}")));
            store
                .create_access_token(&token_spec("alice", &name, &secret), 3)
                .await
                .unwrap();
        }
        let err = bumps!(
            store,
            0,
            store
                .create_access_token(&token_spec("alice", "t3", &digest("alice-3")), 3)
                .await
                .unwrap_err()
        );
        assert!(
            matches!(&err, AuthStoreError::AccessTokenLimit { user, max: 3 } if user == "alice"),
            "{err:?}"
        );
        // Revoked tokens count until deleted; other users are not affected.
        store.revoke_access_token("alice", "t0", 1).await.unwrap();
        assert!(
            store
                .create_access_token(&token_spec("alice", "t3", &digest("alice-3")), 3)
                .await
                .is_err()
        );
        store
            .create_access_token(&token_spec("bob", "t0", &digest("bob-0")), 3)
            .await
            .unwrap();
        store.delete_access_token("alice", "t0").await.unwrap();
        store
            .create_access_token(&token_spec("alice", "t3", &digest("alice-3")), 3)
            .await
            .unwrap();
    }
);

both_backends!(
    role_bindings_are_text_and_outlive_identities,
    |store: MetaStore| async move {
        let bindings = [
            StoredRoleBinding::new("user:alice", "Admin", "*"),
            StoredRoleBinding::new("group:ml", "Read", "ml/**"),
            StoredRoleBinding::new("robot:ci", "Write", "ml/**"),
            StoredRoleBinding::new("robot:ci", "Read", "ml/**"),
            StoredRoleBinding::new("anonymous", "Read", "public/**"),
        ];
        for b in &bindings {
            assert!(bumps!(store, 1, store.add_role_binding(b).await.unwrap()));
            assert!(
                !bumps!(store, 0, store.add_role_binding(b).await.unwrap()),
                "adding twice is harmless: {b:?}"
            );
        }
        let mut sorted = bindings.to_vec();
        sorted.sort_by(|a, b| {
            (&a.subject, &a.role, &a.repositories).cmp(&(&b.subject, &b.role, &b.repositories))
        });
        assert_eq!(store.role_bindings().await.unwrap(), sorted);

        // Deleting the identities leaves bindings naming them.
        store.create_user(&new_user("alice", HASH_A)).await.unwrap();
        store.create_group("ml").await.unwrap();
        store
            .create_robot(&robot_spec("ci", &digest("r"), None))
            .await
            .unwrap();
        store.delete_user("alice").await.unwrap();
        store.delete_group("ml").await.unwrap();
        store.delete_robot("ci").await.unwrap();
        assert_eq!(store.role_bindings().await.unwrap(), sorted);

        assert!(bumps!(
            store,
            1,
            store.remove_role_binding(&bindings[2]).await.unwrap()
        ));
        assert!(!bumps!(
            store,
            0,
            store.remove_role_binding(&bindings[2]).await.unwrap()
        ));
        let left = store.role_bindings().await.unwrap();
        assert_eq!(left.len(), 4);
        assert!(!left.contains(&bindings[2]));
        assert!(
            left.contains(&bindings[3]),
            "same subject, other role stays"
        );
    }
);

both_backends!(
    policies_and_immutability_rules_keep_their_text,
    |store: MetaStore| async move {
        // Whitespace and key order survive: the document is stored as written.
        let v1 = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}";
        let v2 = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"registry:Delete*"}],"Version":"2012-10-17"}"#;
        let created = bumps!(store, 1, store.put_policy("guard", v1).await.unwrap());
        assert_eq!(created, PutOutcome::Created);
        let first = store.policy("guard").await.unwrap().unwrap();
        assert_eq!(first.document_json, v1);
        let replaced = bumps!(store, 1, store.put_policy("guard", v2).await.unwrap());
        assert_eq!(replaced, PutOutcome::Replaced);
        let second = store.policy("guard").await.unwrap().unwrap();
        assert_eq!(second.document_json, v2);
        assert_eq!(second.created_at_ms, first.created_at_ms);
        assert!(second.updated_at_ms >= first.updated_at_ms);
        store.put_policy("allow-ci", v1).await.unwrap();
        let names: Vec<_> = store
            .policies()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["allow-ci", "guard"]);
        assert!(bumps!(
            store,
            1,
            store.delete_policy("guard").await.unwrap()
        ));
        assert!(!bumps!(
            store,
            0,
            store.delete_policy("guard").await.unwrap()
        ));
        assert_eq!(store.policy("guard").await.unwrap(), None);

        let r1 = r#"{"name":"prod","repositories":["**"],"tag_prefixes":["prod-"]}"#;
        let r2 = r#"{"name":"prod","repositories":["**"],"tag_prefixes":["prod-","v1."]}"#;
        let outcome = bumps!(
            store,
            1,
            store.put_immutability_rule("prod", r1).await.unwrap()
        );
        assert_eq!(outcome, PutOutcome::Created);
        let outcome = bumps!(
            store,
            1,
            store.put_immutability_rule("prod", r2).await.unwrap()
        );
        assert_eq!(outcome, PutOutcome::Replaced);
        assert_eq!(
            store
                .immutability_rule("prod")
                .await
                .unwrap()
                .unwrap()
                .rule_json,
            r2
        );
        store.put_immutability_rule("all", r1).await.unwrap();
        let names: Vec<_> = store
            .immutability_rules()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["all", "prod"]);
        assert!(bumps!(
            store,
            1,
            store.delete_immutability_rule("prod").await.unwrap()
        ));
        assert!(!bumps!(
            store,
            0,
            store.delete_immutability_rule("prod").await.unwrap()
        ));
        assert_eq!(store.immutability_rule("prod").await.unwrap(), None);
    }
);

both_backends!(
    repository_labels_and_public_pull,
    |store: MetaStore| async move {
        // Configured before the repository has any content.
        let (fraud, web) = (repo("ml/fraud"), repo("web"));
        assert!(!store.repository_exists(&fraud).await.unwrap());
        bumps!(
            store,
            1,
            store
                .set_repository_label(&fraud, "Environment", "staging")
                .await
                .unwrap()
        );
        store
            .set_repository_label(&fraud, "team", "risk")
            .await
            .unwrap();
        // Keys are case-insensitive: this replaces `Environment`, spelled anew.
        bumps!(
            store,
            1,
            store
                .set_repository_label(&fraud, "environment", "production")
                .await
                .unwrap()
        );
        store
            .set_repository_label(&web, "Environment", "dev")
            .await
            .unwrap();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            store.repository_labels(&fraud).await.unwrap(),
            pairs(&[("environment", "production"), ("team", "risk")])
        );
        assert!(
            store
                .repository_labels(&repo("none"))
                .await
                .unwrap()
                .is_empty()
        );
        let label = |r: &str, k: &str, v: &str| RepositoryLabel {
            repository: r.into(),
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(
            store.all_repository_labels().await.unwrap(),
            [
                label("ml/fraud", "environment", "production"),
                label("ml/fraud", "team", "risk"),
                label("web", "Environment", "dev"),
            ]
        );
        assert!(bumps!(
            store,
            1,
            store.remove_repository_label(&fraud, "TEAM").await.unwrap()
        ));
        assert!(!bumps!(
            store,
            0,
            store.remove_repository_label(&fraud, "team").await.unwrap()
        ));
        assert_eq!(
            store.repository_labels(&fraud).await.unwrap(),
            pairs(&[("environment", "production")])
        );

        assert!(
            !store.public_pull(&web).await.unwrap(),
            "private by default"
        );
        bumps!(store, 1, store.set_public_pull(&web, true).await.unwrap());
        store.set_public_pull(&repo("docs"), true).await.unwrap();
        store.set_public_pull(&fraud, false).await.unwrap();
        assert!(store.public_pull(&web).await.unwrap());
        assert!(!store.public_pull(&fraud).await.unwrap());
        assert_eq!(store.public_repositories().await.unwrap(), ["docs", "web"]);
        bumps!(store, 1, store.set_public_pull(&web, false).await.unwrap());
        assert!(!store.public_pull(&web).await.unwrap());
        assert_eq!(store.public_repositories().await.unwrap(), ["docs"]);
    }
);

both_backends!(first_user_bootstrap, |store: MetaStore| async move {
    assert_eq!(store.auth_revision().await.unwrap(), 0);
    let admin_binding = StoredRoleBinding::new("user:admin", "Admin", "*");
    let created = bumps!(
        store,
        1,
        store
            .create_user_if_no_users(
                &new_user("admin", HASH_A),
                std::slice::from_ref(&admin_binding)
            )
            .await
            .unwrap()
    );
    assert_eq!(created.unwrap().name, "admin");
    let expected = std::slice::from_ref(&admin_binding);
    assert_eq!(store.role_bindings().await.unwrap(), expected);

    // Any user present: nothing happens, not even a revision bump.
    let again = bumps!(
        store,
        0,
        store
            .create_user_if_no_users(
                &new_user("other", HASH_B),
                &[StoredRoleBinding::new("user:other", "Admin", "*")]
            )
            .await
            .unwrap()
    );
    assert_eq!(again, None);
    assert_eq!(store.user("other").await.unwrap(), None);
    assert_eq!(store.role_bindings().await.unwrap(), expected);
    assert_eq!(
        store.user("admin").await.unwrap().unwrap().password_hash,
        HASH_A
    );
});

both_backends!(
    revision_is_shared_by_every_connection,
    |store: MetaStore| async move {
        // Reads go through the reader pool on SQLite; they must see each commit.
        for expected in 1..=5 {
            store
                .put_policy("p", &format!("{{\"n\":{expected}}}"))
                .await
                .unwrap();
            assert_eq!(store.auth_revision().await.unwrap(), expected);
        }
    }
);
