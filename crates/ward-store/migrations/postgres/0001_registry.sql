-- PostgreSQL twin of migrations/sqlite/0001_registry.sql: same tables and columns.
-- Text that is listed in order (repository names, tags, digests) uses the "C"
-- collation so pages come back in byte order, as the OCI spec requires.
-- Registry content: repositories, blobs and their per-repository links,
-- manifests (byte-exact), what they reference, tags and upload sessions.
-- Times are Unix milliseconds. Digests are "algorithm:hex" text.

CREATE TABLE repositories (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Content present in the blob store, whatever repositories link it.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A blob is readable in a repository only through this link.
CREATE TABLE repository_blobs (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id),
    digest         TEXT NOT NULL REFERENCES blobs(digest),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id),
    digest         TEXT COLLATE "C" NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    size           BIGINT NOT NULL,
    content        BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repository_id, subject, digest) WHERE subject IS NOT NULL;

-- What each manifest references, so garbage collection can be done online.
CREATE TABLE manifest_references (
    repository_id    BIGINT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    target_digest    TEXT NOT NULL,
    target_kind      TEXT NOT NULL CHECK (target_kind IN ('blob', 'manifest', 'external')),
    PRIMARY KEY (repository_id, manifest_digest, target_digest, target_kind),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_by_target ON manifest_references(repository_id, target_digest);

CREATE TABLE tags (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id),
    name           TEXT COLLATE "C" NOT NULL,
    digest         TEXT COLLATE "C" NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_by_digest ON tags(repository_id, digest);

-- The first digest a tag was ever bound to. Never deleted with the tag or the
-- manifest, so immutability survives "delete, then push other content".
CREATE TABLE tag_bindings (
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    bound_at    BIGINT NOT NULL,
    PRIMARY KEY (repository, tag)
);

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    repository  TEXT NOT NULL,
    size        BIGINT NOT NULL,
    hash_state  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX uploads_by_repository ON uploads(repository);
CREATE INDEX uploads_by_updated ON uploads(updated_at);

-- Each accepted chunk of an upload is its own object, in order.
CREATE TABLE upload_chunks (
    upload_id  TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    object_key TEXT NOT NULL,
    size       BIGINT NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
