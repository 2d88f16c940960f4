-- The registry's trust policy: one JSON document (keys, trust roots, rules;
-- see ward_sign::policy::TrustPolicy), replaced as a whole. Changing it bumps
-- auth_revision like every other access-control change, so every server
-- reloads it and cached signature verdicts of the old revision stop counting.
CREATE TABLE trust_policy (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    document    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
