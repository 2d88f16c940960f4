//! Races between servers sharing one database: several `MetaStore`s (each
//! with its own pools, as separate processes would have) on one SQLite file
//! or one PostgreSQL schema, and many callers at once on each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_store::meta::{AuthStoreError, NewAccessToken, NewUser, StoredRoleBinding};
use ward_store::{MetaStore, MetaStoreOptions, testing};

/// How many stores share the database, and how many callers each runs.
const STORES: usize = 4;
const CALLERS_PER_STORE: usize = 8;

/// Generates `mod $name { sqlite(); postgres(); }` running `$body(stores)`
/// with `STORES` stores on one fresh database.
macro_rules! both_backends_shared {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let stores = connect_all(&testing::sqlite_url(dir.path())).await;
                ($body)(stores).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let stores = connect_all(&testing::fresh_postgres_url().await).await;
                ($body)(stores).await;
            }
        }
    };
}

/// Opens the stores one after the other, so only the first applies migrations.
async fn connect_all(url: &str) -> Vec<MetaStore> {
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(
            MetaStore::connect(url, &MetaStoreOptions::default())
                .await
                .unwrap(),
        );
    }
    stores
}

/// Runs `call(store, i)` for every caller at once; returns the results by caller.
async fn race<T, F, Fut>(stores: &[MetaStore], call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(MetaStore, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(STORES * CALLERS_PER_STORE));
    let mut tasks = Vec::new();
    for i in 0..STORES * CALLERS_PER_STORE {
        let work = call(stores[i % STORES].clone(), i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            work.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

both_backends_shared!(bootstrap_creates_exactly_one_first_admin, |stores: Vec<
    MetaStore,
>| async move {
    let results = race(&stores, |store, i| async move {
        let name = format!("admin-{i}");
        let binding = StoredRoleBinding::new(format!("user:{name}"), "Admin", "*");
        store
            .create_user_if_no_users(
                &NewUser {
                    name: &name,
                    password_hash: HASH,
                },
                &[binding],
            )
            .await
            .unwrap()
    })
    .await;
    let winners: Vec<_> = results.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = &winners[0].name;

    let store = &stores[0];
    let users = store.list_users(None, 100).await.unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(&users.items[0].name, winner);
    assert_eq!(
        store.role_bindings().await.unwrap(),
        [StoredRoleBinding::new(
            format!("user:{winner}"),
            "Admin",
            "*"
        )]
    );
    assert_eq!(
        store.auth_revision().await.unwrap(),
        1,
        "only the winner bumped"
    );
});

both_backends_shared!(one_name_one_user_the_rest_conflict, |stores: Vec<
    MetaStore,
>| async move {
    let results = race(&stores, |store, _| async move {
        store
            .create_user(&NewUser {
                name: "alice",
                password_hash: HASH,
            })
            .await
    })
    .await;
    let mut created = 0;
    for r in results {
        match r {
            Ok(_) => created += 1,
            Err(AuthStoreError::Conflict(_)) => {}
            Err(other) => panic!("a duplicate must be a conflict, got {other:?}"),
        }
    }
    assert_eq!(created, 1);
});

both_backends_shared!(the_token_limit_holds_under_concurrency, |stores: Vec<
    MetaStore,
>| async move {
    const MAX: u32 = 5;
    stores[0]
        .create_user(&NewUser {
            name: "alice",
            password_hash: HASH,
        })
        .await
        .unwrap();
    let results = race(&stores, |store, i| async move {
        let name = format!("t{i}");
        let secret = ward_core::Digest::of(name.as_bytes()).to_string();
        store
            .create_access_token(
                &NewAccessToken {
                    user: "alice",
                    name: &name,
                    secret_digest: &secret,
                    description: "",
                    scopes_json: "{}",
                    expires_at_ms: None,
                },
                MAX,
            )
            .await
    })
    .await;
    let mut created = 0;
    for r in results {
        match r {
            Ok(_) => created += 1,
            Err(AuthStoreError::AccessTokenLimit { max: MAX, .. }) => {}
            Err(other) => panic!("over the limit must be refused as such, got {other:?}"),
        }
    }
    assert_eq!(created, MAX);
    assert_eq!(
        stores[1].access_tokens("alice").await.unwrap().len(),
        MAX as usize
    );
});
