-- The audit log (ward-audit): hash-chained events, the chain head, signed
-- checkpoints and the delivery cursors of the sinks. Tables and triggers are
-- those specified in ward-audit's `store` module docs; the PostgreSQL twin is
-- migrations/postgres/0002_audit.sql.
--
-- event_json holds the event's canonical JSON, the exact bytes the chain hash
-- covers. occurred_at … repository are copies of event fields for filtering;
-- events are always rebuilt from event_json. Hashes are raw 32-byte blobs.
-- Times are "YYYY-MM-DDTHH:MM:SS.ffffffZ" text, which sorts in time order.

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 0),
    prev_hash   BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    occurred_at TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    user_name   TEXT,
    repository  TEXT,
    event_json  TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_user        ON audit_events (user_name, seq);
CREATE INDEX audit_events_repository  ON audit_events (repository, seq);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, seq);

-- Rows are appended at the end of the chain and never changed. Whoever can drop
-- these triggers can edit rows; the hash chain and signed checkpoints show it.
CREATE TRIGGER audit_events_extend_chain BEFORE INSERT ON audit_events
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq) + 1, 0) FROM audit_events)
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit_events WHERE seq = NEW.seq - 1), zeroblob(32))
BEGIN SELECT RAISE(ABORT, 'audit_events: a new event must extend the chain'); END;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;

-- The one row every append locks, reads and moves forward.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL CHECK (size >= 0),
    head_hash BLOB    NOT NULL CHECK (length(head_hash) = 32)
) STRICT;
INSERT INTO audit_head (id, size, head_hash) VALUES (1, 0, zeroblob(32));
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.size < OLD.size OR NEW.id IS NOT OLD.id
BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END;

-- Signed checkpoints, each with the Merkle frontier at its size.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    created_at TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    frontier   BLOB    NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;

-- Where each sink is in the log: the next seq it must deliver.
CREATE TABLE audit_sink_cursors (
    sink       TEXT    PRIMARY KEY,
    next_seq   INTEGER NOT NULL CHECK (next_seq >= 0),
    updated_at TEXT    NOT NULL
) STRICT;
