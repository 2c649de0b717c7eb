-- Version 5: master-KEK rotation across instances sharing the catalog.
-- Per SimpleCrypto backend, the master KEK new project KEKs are wrapped
-- under (the rollout's active key), and the instances that use it: which
-- master KEKs each knows, which one its config makes active, when it last
-- said so. Both are state of the running deployment, not of the secrets:
-- exports and copies leave them out.
CREATE TABLE master_kek_rollout (
    backend_id TEXT PRIMARY KEY,
    active_fingerprint TEXT NOT NULL,
    updated INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE kek_instances (
    instance_id TEXT PRIMARY KEY,
    backend_id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    known_fingerprints TEXT NOT NULL,
    active_fingerprint TEXT NOT NULL,
    heartbeat INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX kek_instances_by_backend ON kek_instances (backend_id, heartbeat);
