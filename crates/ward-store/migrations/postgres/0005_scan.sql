-- Model and content scanning: a durable queue of blob digests to scan, one
-- result per blob digest (whatever the number of repositories linking it),
-- quarantined digests, and per-repository scan policies. Quarantines and
-- policies are access decisions: changing them bumps auth_revision so every
-- server reloads them.
CREATE TABLE scan_queue (
    digest           TEXT PRIMARY KEY,
    reason           TEXT NOT NULL,
    enqueued_at      BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT
);
CREATE INDEX scan_queue_by_next_attempt ON scan_queue(next_attempt_at);

CREATE TABLE scan_results (
    digest        TEXT PRIMARY KEY,
    ruleset       TEXT NOT NULL,
    max_severity  TEXT,
    findings      BIGINT NOT NULL,
    report        TEXT NOT NULL,
    scanned_at    BIGINT NOT NULL
);

CREATE TABLE quarantines (
    digest      TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('policy', 'admin')),
    actor       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE scan_policies (
    repository  TEXT PRIMARY KEY,
    document    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
