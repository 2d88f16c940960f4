//! Identities and access control: users, groups, robot accounts, personal
//! access tokens, role bindings, policy documents, immutability rules and
//! repository settings (labels and public pull).
//!
//! The store keeps what `ward-auth` decides with, and knows nothing of its
//! types: policy documents, immutability rules and token scopes are opaque
//! JSON text the server validated before storing; role bindings are three
//! texts. Only what is queried has typed columns.
//!
//! Two things a caller must know:
//!
//! - **Every change bumps the authorization revision** ([`MetaStore::auth_revision`])
//!   in the same transaction, so servers sharing a database can cache users,
//!   bindings and decisions and drop the cache when the number moves. The bump
//!   is each transaction's first statement: its row lock serialises
//!   access-control writes across processes (PostgreSQL), and turns a SQLite
//!   transaction into a write transaction before it reads anything. That makes
//!   check-then-write steps, such as [`MetaStore::create_user_if_no_users`],
//!   race-free. A call that changes nothing rolls back and leaves the revision
//!   alone. Recording a robot's or token's last use is not a change.
//! - **Names are compared exactly**, byte for byte. The server normalises
//!   usernames (lowercase) before storing or looking them up, so `Alice` typed
//!   into `docker login` finds `alice`. Repository label keys are the
//!   exception: ward-auth matches them case-insensitively, so the store keeps
//!   one label per ASCII-lowercased key and remembers the spelling last written.

use std::fmt;

use sqlx::FromRow;
use ward_core::name::RepositoryName;

use super::{MetaStore, StoreError, now_ms, on_reader, on_writer};

/// How often, at most, the last use of a robot or token is written:
/// authentication is a hot path, and the time is shown to people, not used
/// to decide anything.
pub const LAST_USE_RESOLUTION_MS: i64 = 60_000;

/// Something the access-control tables hold, named in errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthObject {
    /// A local user.
    User(String),
    /// A group of users.
    Group(String),
    /// A robot account.
    Robot(String),
    /// A personal access token of a user.
    AccessToken {
        /// The owning user.
        user: String,
        /// The token's name.
        name: String,
    },
}

impl fmt::Display for AuthObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthObject::User(n) => write!(f, "user {n:?}"),
            AuthObject::Group(n) => write!(f, "group {n:?}"),
            AuthObject::Robot(n) => write!(f, "robot account {n:?}"),
            AuthObject::AccessToken { user, name } => {
                write!(f, "access token {name:?} of user {user:?}")
            }
        }
    }
}

/// Why a change to the access-control tables was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthStoreError {
    /// The name is taken.
    #[error("{0} already exists; choose another name or delete it first")]
    Conflict(AuthObject),
    /// The change names something that does not exist.
    #[error("{0} does not exist")]
    NotFound(AuthObject),
    /// The user holds as many access tokens as allowed.
    #[error(
        "user {user:?} already has {max} access tokens, the most allowed; delete unused ones first"
    )]
    AccessTokenLimit {
        /// The user.
        user: String,
        /// The limit.
        max: u32,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthStoreError {
    fn from(e: sqlx::Error) -> Self {
        AuthStoreError::Store(StoreError::Database(e))
    }
}

/// A page of a listing plus whether more follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The entries, in byte order of their names.
    pub items: Vec<T>,
    /// Whether further entries exist after the last one.
    pub more: bool,
}

/// Whether a put created or replaced its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// No entry had the name.
    Created,
    /// An entry with the name was replaced.
    Replaced,
}

/// A user to create.
pub struct NewUser<'a> {
    /// The name, normalised by the caller.
    pub name: &'a str,
    /// The argon2id hash in PHC string format.
    pub password_hash: &'a str,
}

impl fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// A local user. `Debug` leaves out the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Internal id.
    pub id: i64,
    /// The name.
    pub name: String,
    /// The argon2id hash in PHC string format.
    pub password_hash: String,
    /// Whether the user is disabled (may not authenticate, nor use tokens).
    pub disabled: bool,
    /// Names of the user's groups, in byte order.
    pub groups: Vec<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change of password or enabled state, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("groups", &self.groups)
            .field("created_at_ms", &self.created_at_ms)
            .field("updated_at_ms", &self.updated_at_ms)
            .finish()
    }
}

/// A group of users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The name.
    pub name: String,
    /// Names of its members, in byte order.
    pub members: Vec<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
}

/// A robot account to create.
#[derive(Clone, Debug)]
pub struct NewRobot<'a> {
    /// The name (`robot:<name>` in bindings and policies).
    pub name: &'a str,
    /// The secret's digest, `sha256:<hex>` as ward-auth's `SecretDigest` displays it.
    pub secret_digest: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// The repositories and actions it is limited to, JSON validated by the caller.
    pub scopes_json: &'a str,
    /// When it stops working, Unix milliseconds; `None` for never.
    pub expires_at_ms: Option<i64>,
    /// Who created it.
    pub created_by: &'a str,
}

/// A robot account.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Robot {
    /// Internal id, for [`MetaStore::record_robot_use`].
    pub id: i64,
    /// The name.
    pub name: String,
    /// The secret's digest, `sha256:<hex>`.
    pub secret_digest: String,
    /// What it is for.
    pub description: String,
    /// The repositories and actions it is limited to, as stored.
    #[sqlx(rename = "scopes")]
    pub scopes_json: String,
    /// When it stops working, Unix milliseconds.
    #[sqlx(rename = "expires_at")]
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, Unix milliseconds.
    #[sqlx(rename = "revoked_at")]
    pub revoked_at_ms: Option<i64>,
    /// When it last authenticated, to [`LAST_USE_RESOLUTION_MS`].
    #[sqlx(rename = "last_used_at")]
    pub last_used_at_ms: Option<i64>,
    /// Who created it.
    pub created_by: String,
    /// Creation time, Unix milliseconds.
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

impl Robot {
    /// Whether it may authenticate at `now_ms`: not revoked, not expired.
    pub fn is_active(&self, now_ms: i64) -> bool {
        is_active(self.revoked_at_ms, self.expires_at_ms, now_ms)
    }
}

/// A personal access token to create.
#[derive(Clone, Debug)]
pub struct NewAccessToken<'a> {
    /// The owning user.
    pub user: &'a str,
    /// Its name, unique among the user's tokens.
    pub name: &'a str,
    /// The secret's digest, `sha256:<hex>`.
    pub secret_digest: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// What it is limited to, JSON validated by the caller.
    pub scopes_json: &'a str,
    /// When it stops working, Unix milliseconds; `None` for never.
    pub expires_at_ms: Option<i64>,
}

/// A personal access token.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct AccessToken {
    /// Internal id, for [`MetaStore::record_access_token_use`].
    pub id: i64,
    /// The owning user's name.
    pub owner: String,
    /// Its name.
    pub name: String,
    /// The secret's digest, `sha256:<hex>`.
    pub secret_digest: String,
    /// What it is for.
    pub description: String,
    /// What it is limited to, as stored.
    #[sqlx(rename = "scopes")]
    pub scopes_json: String,
    /// When it stops working, Unix milliseconds.
    #[sqlx(rename = "expires_at")]
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, Unix milliseconds.
    #[sqlx(rename = "revoked_at")]
    pub revoked_at_ms: Option<i64>,
    /// When it last authenticated, to [`LAST_USE_RESOLUTION_MS`].
    #[sqlx(rename = "last_used_at")]
    pub last_used_at_ms: Option<i64>,
    /// Creation time, Unix milliseconds.
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

impl AccessToken {
    /// Whether the token itself may authenticate at `now_ms`: not revoked,
    /// not expired. The owner's `disabled` flag is checked separately.
    pub fn is_active(&self, now_ms: i64) -> bool {
        is_active(self.revoked_at_ms, self.expires_at_ms, now_ms)
    }
}

/// A role granted to a subject on repositories, as text ward-auth parses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, FromRow)]
pub struct StoredRoleBinding {
    /// `user:<name>`, `group:<name>`, `robot:<name>` or `anonymous`.
    pub subject: String,
    /// `Read`, `Write`, `Delete` or `Admin`.
    pub role: String,
    /// The repository pattern (`ml/**`, `*`).
    pub repositories: String,
}

impl StoredRoleBinding {
    /// A binding from its three texts.
    pub fn new(
        subject: impl Into<String>,
        role: impl Into<String>,
        repositories: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            role: role.into(),
            repositories: repositories.into(),
        }
    }
}

/// A policy document as written.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct StoredPolicy {
    /// Its name.
    pub name: String,
    /// The JSON document, byte for byte as put.
    #[sqlx(rename = "document")]
    pub document_json: String,
    /// Creation time, Unix milliseconds.
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
    /// Last replacement, Unix milliseconds.
    #[sqlx(rename = "updated_at")]
    pub updated_at_ms: i64,
}

/// A tag immutability rule as written.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct StoredImmutabilityRule {
    /// Its name.
    pub name: String,
    /// The JSON rule, byte for byte as put.
    #[sqlx(rename = "rule")]
    pub rule_json: String,
    /// Creation time, Unix milliseconds.
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
    /// Last replacement, Unix milliseconds.
    #[sqlx(rename = "updated_at")]
    pub updated_at_ms: i64,
}

/// One label of one repository.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct RepositoryLabel {
    /// The repository's name.
    pub repository: String,
    /// The key, spelled as last written.
    #[sqlx(rename = "label_key")]
    pub key: String,
    /// The value.
    #[sqlx(rename = "label_value")]
    pub value: String,
}

fn is_active(revoked_at_ms: Option<i64>, expires_at_ms: Option<i64>, now_ms: i64) -> bool {
    revoked_at_ms.is_none() && expires_at_ms.is_none_or(|e| now_ms < e)
}

/// A user joined with one of its groups (none: `group_name` is NULL).
#[derive(FromRow)]
struct UserGroupRow {
    id: i64,
    name: String,
    password_hash: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
    group_name: Option<String>,
}

/// A group joined with one of its members.
#[derive(FromRow)]
struct GroupMemberRow {
    name: String,
    created_at: i64,
    member: Option<String>,
}

/// Folds rows ordered by user into users with their groups.
fn users_from_rows(rows: Vec<UserGroupRow>) -> Vec<User> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let same = users.last().is_some_and(|u| u.id == row.id);
        if !same {
            users.push(User {
                id: row.id,
                name: row.name,
                password_hash: row.password_hash,
                disabled: row.disabled,
                groups: Vec::new(),
                created_at_ms: row.created_at,
                updated_at_ms: row.updated_at,
            });
        }
        if let (Some(user), Some(group)) = (users.last_mut(), row.group_name) {
            user.groups.push(group);
        }
    }
    users
}

/// Folds rows ordered by group into groups with their members.
fn groups_from_rows(rows: Vec<GroupMemberRow>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        let same = groups.last().is_some_and(|g| g.name == row.name);
        if !same {
            groups.push(Group {
                name: row.name,
                members: Vec::new(),
                created_at_ms: row.created_at,
            });
        }
        if let (Some(group), Some(member)) = (groups.last_mut(), row.member) {
            group.members.push(member);
        }
    }
    groups
}

fn page<T>(mut items: Vec<T>, limit: u32) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Page { items, more }
}

/// Users with their groups; append a `WHERE` on `u`, keep the order.
macro_rules! select_users {
    ($where:literal) => {
        concat!(
            "SELECT u.id, u.name, u.password_hash, u.disabled, u.created_at, u.updated_at, \
             g.name AS group_name FROM users u \
             LEFT JOIN group_members m ON m.user_id = u.id \
             LEFT JOIN user_groups g ON g.id = m.group_id ",
            $where,
            " ORDER BY u.name, g.name"
        )
    };
}

/// Groups with their members; append a `WHERE` on `g`, keep the order.
macro_rules! select_groups {
    ($where:literal) => {
        concat!(
            "SELECT g.name, g.created_at, u.name AS member FROM user_groups g \
             LEFT JOIN group_members m ON m.group_id = g.id \
             LEFT JOIN users u ON u.id = m.user_id ",
            $where,
            " ORDER BY g.name, u.name"
        )
    };
}

/// Robot accounts; append a `WHERE`.
macro_rules! select_robots {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, secret_digest, description, scopes, expires_at, revoked_at, \
             last_used_at, created_by, created_at FROM robots ",
            $rest
        )
    };
}

/// Access tokens with their owner's name as `owner`; append a `WHERE` on `t` or `u`.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT t.id, u.name AS owner, t.name, t.secret_digest, t.description, t.scopes, \
             t.expires_at, t.revoked_at, t.last_used_at, t.created_at \
             FROM access_tokens t JOIN users u ON u.id = t.user_id ",
            $rest
        )
    };
}

/// Runs `$body` in a write transaction `$tx` whose first statement bumps the
/// authorization revision. `$body` evaluates to `(changed, value)`: the
/// transaction commits if `changed`, otherwise rolls back; the macro
/// evaluates to `value`. An early `return` from `$body` rolls back too.
macro_rules! change {
    ($store:expr, |$tx:ident| $body:expr) => {
        on_writer!($store, |pool| {
            let mut $tx = pool.begin().await?;
            let bumped =
                sqlx::query("UPDATE auth_revision SET revision = revision + 1 WHERE id = 1")
                    .execute(&mut *$tx)
                    .await?;
            if bumped.rows_affected() != 1 {
                return Err(StoreError::Corrupt("the auth_revision row is missing".into()).into());
            }
            let (changed, value) = $body;
            if changed {
                $tx.commit().await?;
            } else {
                $tx.rollback().await?;
            }
            value
        })
    };
}
pub(super) use change;

/// Inside `change!`, the id of user `$name`, or a `NotFound` return.
macro_rules! user_id {
    ($tx:ident, $name:expr) => {{
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind($name)
            .fetch_optional(&mut *$tx)
            .await?;
        match id {
            Some(id) => id,
            None => return Err(AuthStoreError::NotFound(AuthObject::User($name.to_owned()))),
        }
    }};
}

/// Inside `change!`, the id of group `$name`, or a `NotFound` return.
macro_rules! group_id {
    ($tx:ident, $name:expr) => {{
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM user_groups WHERE name = $1")
            .bind($name)
            .fetch_optional(&mut *$tx)
            .await?;
        match id {
            Some(id) => id,
            None => {
                return Err(AuthStoreError::NotFound(AuthObject::Group(
                    $name.to_owned(),
                )));
            }
        }
    }};
}

/// Inside `change!`, whether a row with `$name` exists in `$table` (a literal).
macro_rules! exists {
    ($tx:ident, $table:literal, $name:expr) => {{
        let found = sqlx::query(concat!("SELECT 1 FROM ", $table, " WHERE name = $1"))
            .bind($name)
            .fetch_optional(&mut *$tx)
            .await?;
        found.is_some()
    }};
}

/// Inside `change!`, inserts `NewUser` `$user`; evaluates to its id or returns `Conflict`.
macro_rules! insert_user {
    ($tx:ident, $user:expr, $now:expr) => {{
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (name, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind($user.name)
        .bind($user.password_hash)
        .bind(false)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        match id {
            Some(id) => id,
            None => {
                return Err(AuthStoreError::Conflict(AuthObject::User(
                    $user.name.to_owned(),
                )));
            }
        }
    }};
}

/// Inside `change!`, inserts role binding `$b` unless present; evaluates to whether it was new.
macro_rules! insert_binding {
    ($tx:ident, $b:expr, $now:expr) => {{
        let done = sqlx::query(
            "INSERT INTO role_bindings (subject, role, repositories, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&$b.subject)
        .bind(&$b.role)
        .bind(&$b.repositories)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        done.rows_affected() > 0
    }};
}

// The revision counter.
impl MetaStore {
    /// The authorization revision: it moves with every change to users,
    /// groups, robots, tokens, bindings, policies, immutability rules and
    /// repository settings. One primary-key read.
    pub async fn auth_revision(&self) -> Result<i64, StoreError> {
        on_reader!(self, |pool| {
            let revision: i64 =
                sqlx::query_scalar("SELECT revision FROM auth_revision WHERE id = 1")
                    .fetch_one(pool)
                    .await?;
            Ok(revision)
        })
    }
}

// Users.
impl MetaStore {
    /// Creates a user; `Conflict` if the name is taken.
    pub async fn create_user(&self, user: &NewUser<'_>) -> Result<User, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let id = insert_user!(tx, user, now);
            (true, Ok(new_user(id, user, now)))
        })
    }

    /// Creates `user` and `role_bindings` in one transaction if no user
    /// exists yet; returns `None` (changing nothing) otherwise. Safe to call
    /// from several processes at once: exactly one creates the first user.
    pub async fn create_user_if_no_users(
        &self,
        user: &NewUser<'_>,
        role_bindings: &[StoredRoleBinding],
    ) -> Result<Option<User>, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            // The revision bump above holds the lock, so no other change can
            // insert a user between this read and the insert below.
            let any = sqlx::query("SELECT 1 FROM users LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
            if any.is_some() {
                (false, Ok(None))
            } else {
                let id = insert_user!(tx, user, now);
                for b in role_bindings {
                    // A binding already present (named before any user existed) is fine.
                    let _new = insert_binding!(tx, b, now);
                }
                (true, Ok(Some(new_user(id, user, now))))
            }
        })
    }

    /// The user `name` with its groups.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let rows: Vec<UserGroupRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_users!("WHERE u.name = $1"))
                .bind(name)
                .fetch_all(pool)
                .await?
        });
        Ok(users_from_rows(rows).pop())
    }

    /// Users whose names sort after `after`, at most `limit`, with their groups.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<User>, StoreError> {
        let rows: Vec<UserGroupRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_users!(
                "WHERE u.id IN (SELECT id FROM users WHERE name > $1 ORDER BY name LIMIT $2)"
            ))
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(page(users_from_rows(rows), limit))
    }

    /// Replaces the password hash of user `name`.
    pub async fn set_user_password_hash(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let done =
                sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1")
                    .bind(name)
                    .bind(password_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(AuthStoreError::NotFound(AuthObject::User(name.to_owned())));
            }
            (true, Ok(()))
        })
    }

    /// Disables (`true`) or enables (`false`) user `name`. A disabled user
    /// keeps everything but can neither log in nor use its tokens.
    pub async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<(), AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let done =
                sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE name = $1")
                    .bind(name)
                    .bind(disabled)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(AuthStoreError::NotFound(AuthObject::User(name.to_owned())));
            }
            (true, Ok(()))
        })
    }

    /// Deletes user `name` with its group memberships and access tokens;
    /// returns whether it existed. Role bindings naming it stay: they are
    /// text, like policy documents, and are removed on purpose.
    pub async fn delete_user(&self, name: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("DELETE FROM users WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }
}

fn new_user(id: i64, user: &NewUser<'_>, now: i64) -> User {
    User {
        id,
        name: user.name.to_owned(),
        password_hash: user.password_hash.to_owned(),
        disabled: false,
        groups: Vec::new(),
        created_at_ms: now,
        updated_at_ms: now,
    }
}

// Groups and memberships.
impl MetaStore {
    /// Creates an empty group; `Conflict` if the name is taken.
    pub async fn create_group(&self, name: &str) -> Result<Group, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let done = sqlx::query(
                "INSERT INTO user_groups (name, created_at) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(AuthStoreError::Conflict(AuthObject::Group(name.to_owned())));
            }
            let group = Group {
                name: name.to_owned(),
                members: Vec::new(),
                created_at_ms: now,
            };
            (true, Ok(group))
        })
    }

    /// Deletes group `name` and its memberships; returns whether it existed.
    /// Role bindings naming it stay.
    pub async fn delete_group(&self, name: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("DELETE FROM user_groups WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }

    /// Makes `user` a member of `group`; returns whether it was not one yet.
    /// `NotFound` names whichever of the two is missing.
    pub async fn add_group_member(&self, group: &str, user: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let group_id = group_id!(tx, group);
            let user_id = user_id!(tx, user);
            let done = sqlx::query(
                "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            let added = done.rows_affected() > 0;
            (added, Ok(added))
        })
    }

    /// Removes `user` from `group`; returns whether it was a member.
    /// `NotFound` names whichever of the two is missing.
    pub async fn remove_group_member(
        &self,
        group: &str,
        user: &str,
    ) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let group_id = group_id!(tx, group);
            let user_id = user_id!(tx, user);
            let done =
                sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            let removed = done.rows_affected() > 0;
            (removed, Ok(removed))
        })
    }

    /// The group `name` with its members.
    pub async fn group(&self, name: &str) -> Result<Option<Group>, StoreError> {
        let rows: Vec<GroupMemberRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_groups!("WHERE g.name = $1"))
                .bind(name)
                .fetch_all(pool)
                .await?
        });
        Ok(groups_from_rows(rows).pop())
    }

    /// Groups whose names sort after `after`, at most `limit`, with their members.
    pub async fn list_groups(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Group>, StoreError> {
        let rows: Vec<GroupMemberRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_groups!(
                "WHERE g.id IN (SELECT id FROM user_groups WHERE name > $1 ORDER BY name LIMIT $2)"
            ))
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(page(groups_from_rows(rows), limit))
    }

    /// Names of the groups `user` belongs to, in byte order; empty for an unknown user.
    pub async fn user_groups(&self, user: &str) -> Result<Vec<String>, StoreError> {
        on_reader!(self, |pool| {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT g.name FROM group_members m \
                 JOIN user_groups g ON g.id = m.group_id \
                 JOIN users u ON u.id = m.user_id \
                 WHERE u.name = $1 ORDER BY g.name",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            Ok(names)
        })
    }
}

// Robot accounts.
impl MetaStore {
    /// Creates a robot account; `Conflict` if the name is taken.
    pub async fn create_robot(&self, robot: &NewRobot<'_>) -> Result<Robot, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO robots (name, secret_digest, description, scopes, expires_at, \
                 created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(robot.name)
            .bind(robot.secret_digest)
            .bind(robot.description)
            .bind(robot.scopes_json)
            .bind(robot.expires_at_ms)
            .bind(robot.created_by)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Err(AuthStoreError::Conflict(AuthObject::Robot(
                    robot.name.to_owned(),
                )));
            };
            let created = Robot {
                id,
                name: robot.name.to_owned(),
                secret_digest: robot.secret_digest.to_owned(),
                description: robot.description.to_owned(),
                scopes_json: robot.scopes_json.to_owned(),
                expires_at_ms: robot.expires_at_ms,
                revoked_at_ms: None,
                last_used_at_ms: None,
                created_by: robot.created_by.to_owned(),
                created_at_ms: now,
            };
            (true, Ok(created))
        })
    }

    /// The robot whose secret has digest `secret_digest` (`sha256:<hex>`),
    /// revoked and expired ones included: check [`Robot::is_active`].
    /// One lookup on a unique index; this is the authentication hot path.
    pub async fn robot_by_secret_digest(
        &self,
        secret_digest: &str,
    ) -> Result<Option<Robot>, StoreError> {
        on_reader!(self, |pool| {
            let robot = sqlx::query_as(select_robots!("WHERE secret_digest = $1"))
                .bind(secret_digest)
                .fetch_optional(pool)
                .await?;
            Ok(robot)
        })
    }

    /// The robot account `name`.
    pub async fn robot(&self, name: &str) -> Result<Option<Robot>, StoreError> {
        on_reader!(self, |pool| {
            let robot = sqlx::query_as(select_robots!("WHERE name = $1"))
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(robot)
        })
    }

    /// Robot accounts whose names sort after `after`, at most `limit`.
    pub async fn list_robots(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Robot>, StoreError> {
        let robots: Vec<Robot> = on_reader!(self, |pool| {
            sqlx::query_as(select_robots!("WHERE name > $1 ORDER BY name LIMIT $2"))
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await?
        });
        Ok(page(robots, limit))
    }

    /// Replaces the secret of robot `name` (the old one stops working at
    /// once). Revocation and expiry are unchanged.
    pub async fn set_robot_secret_digest(
        &self,
        name: &str,
        secret_digest: &str,
    ) -> Result<(), AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("UPDATE robots SET secret_digest = $2 WHERE name = $1")
                .bind(name)
                .bind(secret_digest)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(AuthStoreError::NotFound(AuthObject::Robot(name.to_owned())));
            }
            (true, Ok(()))
        })
    }

    /// Revokes robot `name` at `now_ms`; returns false (changing nothing)
    /// if it was already revoked.
    pub async fn revoke_robot(&self, name: &str, now_ms: i64) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query(
                "UPDATE robots SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
            )
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 && !exists!(tx, "robots", name) {
                return Err(AuthStoreError::NotFound(AuthObject::Robot(name.to_owned())));
            }
            let revoked = done.rows_affected() > 0;
            (revoked, Ok(revoked))
        })
    }

    /// Deletes robot `name`; returns whether it existed. Role bindings naming it stay.
    pub async fn delete_robot(&self, name: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("DELETE FROM robots WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }

    /// Records that robot `id` authenticated at `now_ms`, unless its last
    /// recorded use is less than [`LAST_USE_RESOLUTION_MS`] old; returns
    /// whether it wrote. Not a change: the revision stays.
    pub async fn record_robot_use(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        on_writer!(self, |pool| {
            let done = sqlx::query(
                "UPDATE robots SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(id)
            .bind(now_ms)
            .bind(now_ms.saturating_sub(LAST_USE_RESOLUTION_MS))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// A personal access token found by its secret, with its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenLogin {
    /// The token.
    pub token: AccessToken,
    /// Its owner, with groups; check `disabled`.
    pub user: User,
}

// Personal access tokens.
impl MetaStore {
    /// Creates a personal access token for `token.user`. `NotFound` if the
    /// user does not exist, `Conflict` if it has a token of that name,
    /// `AccessTokenLimit` if it already holds `tokens_per_user_max` tokens
    /// (revoked and expired ones count until deleted).
    pub async fn create_access_token(
        &self,
        token: &NewAccessToken<'_>,
        tokens_per_user_max: u32,
    ) -> Result<AccessToken, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let user_id = user_id!(tx, token.user);
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM access_tokens WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if held >= i64::from(tokens_per_user_max) {
                return Err(AuthStoreError::AccessTokenLimit {
                    user: token.user.to_owned(),
                    max: tokens_per_user_max,
                });
            }
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO access_tokens (user_id, name, secret_digest, description, scopes, \
                 expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id, name) DO NOTHING RETURNING id",
            )
            .bind(user_id)
            .bind(token.name)
            .bind(token.secret_digest)
            .bind(token.description)
            .bind(token.scopes_json)
            .bind(token.expires_at_ms)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Err(AuthStoreError::Conflict(token_object(
                    token.user, token.name,
                )));
            };
            let created = AccessToken {
                id,
                owner: token.user.to_owned(),
                name: token.name.to_owned(),
                secret_digest: token.secret_digest.to_owned(),
                description: token.description.to_owned(),
                scopes_json: token.scopes_json.to_owned(),
                expires_at_ms: token.expires_at_ms,
                revoked_at_ms: None,
                last_used_at_ms: None,
                created_at_ms: now,
            };
            (true, Ok(created))
        })
    }

    /// The token whose secret has digest `secret_digest`, with its owner;
    /// revoked and expired tokens included: check [`AccessToken::is_active`]
    /// and the owner's `disabled` flag.
    pub async fn access_token_by_secret_digest(
        &self,
        secret_digest: &str,
    ) -> Result<Option<AccessTokenLogin>, StoreError> {
        let token: Option<AccessToken> = on_reader!(self, |pool| {
            sqlx::query_as(select_tokens!("WHERE t.secret_digest = $1"))
                .bind(secret_digest)
                .fetch_optional(pool)
                .await?
        });
        let Some(token) = token else {
            return Ok(None);
        };
        // The owner can be deleted between the two reads; the token went with it.
        let Some(user) = self.user(&token.owner).await? else {
            return Ok(None);
        };
        Ok(Some(AccessTokenLogin { token, user }))
    }

    /// The tokens of `user`, by name; empty for an unknown user.
    pub async fn access_tokens(&self, user: &str) -> Result<Vec<AccessToken>, StoreError> {
        on_reader!(self, |pool| {
            let tokens = sqlx::query_as(select_tokens!("WHERE u.name = $1 ORDER BY t.name"))
                .bind(user)
                .fetch_all(pool)
                .await?;
            Ok(tokens)
        })
    }

    /// Revokes token `name` of `user` at `now_ms`; returns false (changing
    /// nothing) if it was already revoked.
    pub async fn revoke_access_token(
        &self,
        user: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let user_id = user_id!(tx, user);
            let revoked_at: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT revoked_at FROM access_tokens WHERE user_id = $1 AND name = $2",
            )
            .bind(user_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            match revoked_at {
                None => return Err(AuthStoreError::NotFound(token_object(user, name))),
                Some(Some(_)) => (false, Ok(false)),
                Some(None) => {
                    sqlx::query(
                        "UPDATE access_tokens SET revoked_at = $3 WHERE user_id = $1 AND name = $2",
                    )
                    .bind(user_id)
                    .bind(name)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                    (true, Ok(true))
                }
            }
        })
    }

    /// Deletes token `name` of `user`; returns whether it existed.
    pub async fn delete_access_token(
        &self,
        user: &str,
        name: &str,
    ) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query(
                "DELETE FROM access_tokens WHERE name = $2 AND user_id = \
                 (SELECT id FROM users WHERE name = $1)",
            )
            .bind(user)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }

    /// Records that token `id` authenticated at `now_ms`, unless its last
    /// recorded use is less than [`LAST_USE_RESOLUTION_MS`] old; returns
    /// whether it wrote. Not a change: the revision stays.
    pub async fn record_access_token_use(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        on_writer!(self, |pool| {
            let done = sqlx::query(
                "UPDATE access_tokens SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(id)
            .bind(now_ms)
            .bind(now_ms.saturating_sub(LAST_USE_RESOLUTION_MS))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

fn token_object(user: &str, name: &str) -> AuthObject {
    AuthObject::AccessToken {
        user: user.to_owned(),
        name: name.to_owned(),
    }
}

// Role bindings.
impl MetaStore {
    /// Adds a role binding; returns whether it was new (adding twice is harmless).
    pub async fn add_role_binding(
        &self,
        binding: &StoredRoleBinding,
    ) -> Result<bool, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let added = insert_binding!(tx, binding, now);
            (added, Ok(added))
        })
    }

    /// Removes a role binding; returns whether it existed.
    pub async fn remove_role_binding(
        &self,
        binding: &StoredRoleBinding,
    ) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query(
                "DELETE FROM role_bindings WHERE subject = $1 AND role = $2 AND repositories = $3",
            )
            .bind(&binding.subject)
            .bind(&binding.role)
            .bind(&binding.repositories)
            .execute(&mut *tx)
            .await?;
            let removed = done.rows_affected() > 0;
            (removed, Ok(removed))
        })
    }

    /// Every role binding, ordered by subject, role and repositories.
    pub async fn role_bindings(&self) -> Result<Vec<StoredRoleBinding>, StoreError> {
        on_reader!(self, |pool| {
            let bindings = sqlx::query_as(
                "SELECT subject, role, repositories FROM role_bindings \
                 ORDER BY subject, role, repositories",
            )
            .fetch_all(pool)
            .await?;
            Ok(bindings)
        })
    }
}

// Policy documents.
impl MetaStore {
    /// Stores policy document `name` as written, replacing any of that name.
    pub async fn put_policy(
        &self,
        name: &str,
        document_json: &str,
    ) -> Result<PutOutcome, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let outcome = if exists!(tx, "policies", name) {
                PutOutcome::Replaced
            } else {
                PutOutcome::Created
            };
            sqlx::query(
                "INSERT INTO policies (name, document, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(document_json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (true, Ok(outcome))
        })
    }

    /// Policy document `name`.
    pub async fn policy(&self, name: &str) -> Result<Option<StoredPolicy>, StoreError> {
        on_reader!(self, |pool| {
            let policy = sqlx::query_as(
                "SELECT name, document, created_at, updated_at FROM policies WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?;
            Ok(policy)
        })
    }

    /// Deletes policy document `name`; returns whether it existed.
    pub async fn delete_policy(&self, name: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("DELETE FROM policies WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }

    /// Every policy document, by name.
    pub async fn policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        on_reader!(self, |pool| {
            let policies = sqlx::query_as(
                "SELECT name, document, created_at, updated_at FROM policies ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            Ok(policies)
        })
    }
}

// Tag immutability rules.
impl MetaStore {
    /// Stores immutability rule `name` as written, replacing any of that name.
    pub async fn put_immutability_rule(
        &self,
        name: &str,
        rule_json: &str,
    ) -> Result<PutOutcome, AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let outcome = if exists!(tx, "immutability_rules", name) {
                PutOutcome::Replaced
            } else {
                PutOutcome::Created
            };
            sqlx::query(
                "INSERT INTO immutability_rules (name, rule, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(rule_json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (true, Ok(outcome))
        })
    }

    /// Immutability rule `name`.
    pub async fn immutability_rule(
        &self,
        name: &str,
    ) -> Result<Option<StoredImmutabilityRule>, StoreError> {
        on_reader!(self, |pool| {
            let rule = sqlx::query_as(
                "SELECT name, rule, created_at, updated_at FROM immutability_rules WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?;
            Ok(rule)
        })
    }

    /// Deletes immutability rule `name`; returns whether it existed. Tags it
    /// protected stay bound to their first content (`tag_bindings`).
    pub async fn delete_immutability_rule(&self, name: &str) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query("DELETE FROM immutability_rules WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            (deleted, Ok(deleted))
        })
    }

    /// Every immutability rule, by name.
    pub async fn immutability_rules(&self) -> Result<Vec<StoredImmutabilityRule>, StoreError> {
        on_reader!(self, |pool| {
            let rules = sqlx::query_as(
                "SELECT name, rule, created_at, updated_at FROM immutability_rules ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            Ok(rules)
        })
    }
}

// The trust policy: one document for the registry.
impl MetaStore {
    /// Replaces the trust policy document (stored as written; the caller
    /// validates it). An empty document removes every signature requirement.
    pub async fn put_trust_policy(&self, document_json: &str) -> Result<(), AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            sqlx::query(
                "INSERT INTO trust_policy (id, document, updated_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            )
            .bind(document_json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (true, Ok(()))
        })
    }

    /// The trust policy document and when it was last replaced, if one was ever stored.
    pub async fn trust_policy(&self) -> Result<Option<(String, i64)>, StoreError> {
        on_reader!(self, |pool| {
            let row = sqlx::query_as("SELECT document, updated_at FROM trust_policy WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            Ok(row)
        })
    }
}

// Repository settings: labels and public pull, keyed by repository name.
impl MetaStore {
    /// Sets label `key` of `repository` to `value`. Keys are case-insensitive:
    /// setting `environment` replaces `Environment`, and the new spelling is kept.
    pub async fn set_repository_label(
        &self,
        repository: &RepositoryName,
        key: &str,
        value: &str,
    ) -> Result<(), AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            sqlx::query(
                "INSERT INTO repository_labels (repository, key_folded, label_key, label_value, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository, key_folded) DO UPDATE SET \
                 label_key = excluded.label_key, label_value = excluded.label_value, updated_at = excluded.updated_at",
            )
            .bind(repository.as_str())
            .bind(key.to_ascii_lowercase())
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (true, Ok(()))
        })
    }

    /// Removes label `key` (any case) of `repository`; returns whether it existed.
    pub async fn remove_repository_label(
        &self,
        repository: &RepositoryName,
        key: &str,
    ) -> Result<bool, AuthStoreError> {
        change!(self, |tx| {
            let done = sqlx::query(
                "DELETE FROM repository_labels WHERE repository = $1 AND key_folded = $2",
            )
            .bind(repository.as_str())
            .bind(key.to_ascii_lowercase())
            .execute(&mut *tx)
            .await?;
            let removed = done.rows_affected() > 0;
            (removed, Ok(removed))
        })
    }

    /// The labels of `repository` as `(key, value)`, ordered by lowercased key.
    pub async fn repository_labels(
        &self,
        repository: &RepositoryName,
    ) -> Result<Vec<(String, String)>, StoreError> {
        on_reader!(self, |pool| {
            let labels = sqlx::query_as(
                "SELECT label_key, label_value FROM repository_labels WHERE repository = $1 \
                 ORDER BY key_folded",
            )
            .bind(repository.as_str())
            .fetch_all(pool)
            .await?;
            Ok(labels)
        })
    }

    /// Every label of every repository, ordered by repository and lowercased key.
    pub async fn all_repository_labels(&self) -> Result<Vec<RepositoryLabel>, StoreError> {
        on_reader!(self, |pool| {
            let labels = sqlx::query_as(
                "SELECT repository, label_key, label_value FROM repository_labels \
                 ORDER BY repository, key_folded",
            )
            .fetch_all(pool)
            .await?;
            Ok(labels)
        })
    }

    /// Makes `repository` pullable without credentials (`true`) or not.
    pub async fn set_public_pull(
        &self,
        repository: &RepositoryName,
        public: bool,
    ) -> Result<(), AuthStoreError> {
        let now = now_ms();
        change!(self, |tx| {
            sqlx::query(
                "INSERT INTO repository_settings (repository, public_pull, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository) DO UPDATE SET public_pull = excluded.public_pull, \
                 updated_at = excluded.updated_at",
            )
            .bind(repository.as_str())
            .bind(public)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (true, Ok(()))
        })
    }

    /// Whether `repository` is pullable without credentials; false unless set.
    pub async fn public_pull(&self, repository: &RepositoryName) -> Result<bool, StoreError> {
        on_reader!(self, |pool| {
            let public: Option<bool> = sqlx::query_scalar(
                "SELECT public_pull FROM repository_settings WHERE repository = $1",
            )
            .bind(repository.as_str())
            .fetch_optional(pool)
            .await?;
            Ok(public.unwrap_or(false))
        })
    }

    /// Names of every publicly pullable repository, in byte order.
    pub async fn public_repositories(&self) -> Result<Vec<String>, StoreError> {
        on_reader!(self, |pool| {
            let names = sqlx::query_scalar(
                "SELECT repository FROM repository_settings WHERE public_pull ORDER BY repository",
            )
            .fetch_all(pool)
            .await?;
            Ok(names)
        })
    }
}
