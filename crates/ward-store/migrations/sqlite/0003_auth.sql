-- Identities and access control: users, groups, robot accounts, personal
-- access tokens, role bindings, policy documents, immutability rules and
-- repository settings (labels, public pull).
--
-- Policy documents, immutability rules and token scopes are JSON text the
-- server validated with ward-auth before storing; only what is queried has
-- typed columns. Names are compared exactly; the server normalises them.
-- Times are Unix milliseconds. Secret digests are "sha256:<hex>" text.

-- One row. Every change to the tables below bumps it in the same transaction,
-- and bumps it first: the row lock then serialises access-control writes, so
-- check-then-insert (the first-admin bootstrap) is race-free across servers.
CREATE TABLE auth_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO auth_revision (id, revision) VALUES (1, 0);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    -- argon2id in PHC string format.
    password_hash  TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE user_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members(user_id);

-- Robot accounts authenticate with a generated secret, found by its digest.
CREATE TABLE robots (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    secret_digest  TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    expires_at     INTEGER,
    revoked_at     INTEGER,
    last_used_at   INTEGER,
    -- Who created it, as text: the creator may be deleted later.
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

-- Personal access tokens die with their user.
CREATE TABLE access_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_digest  TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    expires_at     INTEGER,
    revoked_at     INTEGER,
    last_used_at   INTEGER,
    created_at     INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

-- Subjects are text ("user:alice", "group:ml", "robot:ci"), not foreign keys:
-- a binding outlives the identity it names, as in policy documents.
CREATE TABLE role_bindings (
    subject       TEXT NOT NULL,
    role          TEXT NOT NULL,
    repositories  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (subject, role, repositories)
);

CREATE TABLE policies (
    name        TEXT PRIMARY KEY,
    document    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE immutability_rules (
    name        TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Keyed by repository name, not id: a repository may be configured before it
-- has content. Label keys are case-insensitive (as ward-auth matches them), so
-- the key is unique in its ASCII-lowercased form and kept as last written.
CREATE TABLE repository_labels (
    repository   TEXT NOT NULL,
    key_folded   TEXT NOT NULL,
    label_key    TEXT NOT NULL,
    label_value  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (repository, key_folded)
);

CREATE TABLE repository_settings (
    repository   TEXT PRIMARY KEY,
    public_pull  BOOLEAN NOT NULL,
    updated_at   INTEGER NOT NULL
);
