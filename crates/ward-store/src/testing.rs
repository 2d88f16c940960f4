//! Fresh databases for tests: a SQLite file in a temporary folder, or a new
//! PostgreSQL schema on the server named by `WARD_TEST_POSTGRES_URL`.
//!
//! A missing PostgreSQL URL is a loud failure, never a silent skip.

use std::path::Path;

use sqlx::Connection;

use crate::{MetaStore, MetaStoreOptions};

/// The environment variable naming the PostgreSQL server tests use.
pub const POSTGRES_URL_ENV: &str = "WARD_TEST_POSTGRES_URL";

/// The PostgreSQL URL tests must use; panics with instructions when unset.
#[allow(clippy::expect_used)]
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).expect(
        "WARD_TEST_POSTGRES_URL is not set: the PostgreSQL backend tests need a server, for \
         example WARD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test (scripts/test sets it)",
    )
}

/// A store on a new SQLite file inside `dir`.
#[allow(clippy::expect_used)]
pub async fn sqlite_store(dir: &Path) -> MetaStore {
    let url = sqlite_url(dir);
    MetaStore::connect(&url, &MetaStoreOptions::default())
        .await
        .expect("open a fresh SQLite store")
}

/// The URL of the SQLite file `sqlite_store` uses inside `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("ward.db").display())
}

/// Creates a new, uniquely named schema and returns a URL whose connections use it.
#[allow(clippy::expect_used)]
pub async fn fresh_postgres_url() -> String {
    let base = postgres_url();
    let schema = format!("ward_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to the test PostgreSQL server named by WARD_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create a test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A store on a new PostgreSQL schema.
#[allow(clippy::expect_used)]
pub async fn postgres_store() -> MetaStore {
    MetaStore::connect(&fresh_postgres_url().await, &MetaStoreOptions::default())
        .await
        .expect("open a fresh PostgreSQL store")
}

/// Applies the migrations up to and including `version` to the database at
/// `url` (created if missing), as a store of that schema version would have.
#[allow(clippy::expect_used)]
pub async fn migrate_to(url: &str, version: i64) {
    if url.starts_with("sqlite:") {
        let options = sqlite_options(url);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("open the SQLite file");
        crate::meta::SQLITE_MIGRATIONS
            .run_to(version, &mut conn)
            .await
            .expect("apply the SQLite migrations");
    } else {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to PostgreSQL");
        crate::meta::POSTGRES_MIGRATIONS
            .run_to(version, &mut conn)
            .await
            .expect("apply the PostgreSQL migrations");
    }
}

/// Runs one SQL statement on the database at `url`, outside any store.
#[allow(clippy::expect_used)]
pub async fn execute(url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect_with(&sqlite_options(url))
            .await
            .expect("open the SQLite file");
        sqlx::query(sql).execute(&mut conn).await.expect("run SQL");
    } else {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sql).execute(&mut conn).await.expect("run SQL");
    }
}

#[allow(clippy::expect_used)]
fn sqlite_options(url: &str) -> sqlx::sqlite::SqliteConnectOptions {
    use std::str::FromStr as _;
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .expect("a SQLite URL")
        .create_if_missing(true)
}
