-- PostgreSQL twin of migrations/sqlite/0002_audit.sql: the audit log
-- (ward-audit): hash-chained events, the chain head, signed checkpoints and the
-- delivery cursors of the sinks, as specified in ward-audit's `store` module docs.
--
-- event_json is TEXT, never JSONB: the chain hash covers its exact bytes, and
-- JSONB reorders keys and drops whitespace. occurred_at … repository are copies
-- of event fields for filtering; events are always rebuilt from event_json.

CREATE TABLE audit_events (
    seq         BIGINT      PRIMARY KEY CHECK (seq >= 0),
    prev_hash   BYTEA       NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
    occurred_at TIMESTAMPTZ NOT NULL,
    event_type  TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    user_name   TEXT,
    repository  TEXT,
    event_json  TEXT        NOT NULL
);
CREATE INDEX audit_events_user        ON audit_events (user_name, seq);
CREATE INDEX audit_events_repository  ON audit_events (repository, seq);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, seq);

CREATE FUNCTION ward_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;

-- Row-level BEFORE triggers of a volatile function see the rows inserted earlier
-- by the same statement, so a multi-row insert is checked row by row, in order.
CREATE FUNCTION ward_audit_extend_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    want_seq  BIGINT := 0;
    want_prev BYTEA  := decode(repeat('00', 32), 'hex');
BEGIN
    SELECT seq + 1, hash INTO want_seq, want_prev FROM audit_events ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        want_seq := 0;
        want_prev := decode(repeat('00', 32), 'hex');
    END IF;
    IF NEW.seq <> want_seq OR NEW.prev_hash <> want_prev THEN
        RAISE EXCEPTION 'audit_events: event % does not extend the chain (next is %)', NEW.seq, want_seq;
    END IF;
    RETURN NEW;
END $$;

-- Rows are appended at the end of the chain and never changed. A DBA can still
-- disable these triggers; the hash chain and signed checkpoints show what was done.
CREATE TRIGGER audit_events_extend_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ward_audit_extend_chain();
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();

-- The one row every append locks (SELECT … FOR UPDATE), reads and moves forward.
CREATE TABLE audit_head (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    size      BIGINT   NOT NULL CHECK (size >= 0),
    head_hash BYTEA    NOT NULL CHECK (octet_length(head_hash) = 32)
);
INSERT INTO audit_head (id, size, head_hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION ward_audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.size < OLD.size OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'audit_head only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION ward_audit_head_forward_only();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();

-- Signed checkpoints, each with the Merkle frontier at its size.
CREATE TABLE audit_checkpoints (
    tree_size  BIGINT      PRIMARY KEY CHECK (tree_size >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    note       TEXT        NOT NULL,
    frontier   BYTEA       NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();

-- Where each sink is in the log: the next seq it must deliver.
CREATE TABLE audit_sink_cursors (
    sink       TEXT        PRIMARY KEY,
    next_seq   BIGINT      NOT NULL CHECK (next_seq >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);
