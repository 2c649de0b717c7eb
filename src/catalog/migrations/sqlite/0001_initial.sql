-- Version 1: the first keywarden schema (SQLite).
CREATE TABLE secrets (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT,
    algorithm TEXT,
    bit_length INTEGER,
    mode TEXT,
    secret_type TEXT NOT NULL,
    expiration INTEGER,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    status TEXT NOT NULL,
    content_type TEXT,
    creator_id TEXT NOT NULL,
    backend_id TEXT NOT NULL,
    stored BLOB,
    -- The project KEK that encrypted `stored` (crypto backends): a secret
    -- can never be written under a KEK this catalog does not hold.
    kek_id TEXT REFERENCES project_keks (kek_id),
    read_project_access INTEGER NOT NULL DEFAULT 1,
    CHECK ((content_type IS NULL) = (stored IS NULL))
);
CREATE INDEX secrets_by_project_created ON secrets (project_id, created, id);
CREATE INDEX secrets_by_project_name ON secrets (project_id, name, created, id);
-- Lets the listing total count unexpired rows from the index alone.
CREATE INDEX secrets_by_project_expiration ON secrets (project_id, expiration);
CREATE TABLE secret_acl_users (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, user_id)
) WITHOUT ROWID;
CREATE INDEX secret_acl_users_by_user ON secret_acl_users (user_id);
CREATE TABLE secret_consumers (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, service, resource_type, resource_id)
) WITHOUT ROWID;
CREATE TABLE project_keks (
    backend_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    kek_id TEXT NOT NULL UNIQUE,
    master_fingerprint TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (backend_id, project_id)
);
CREATE TABLE project_backends (
    project_id TEXT PRIMARY KEY NOT NULL,
    backend_id TEXT NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    name TEXT,
    algorithm TEXT NOT NULL,
    bit_length INTEGER NOT NULL,
    mode TEXT,
    payload_content_type TEXT,
    expiration INTEGER,
    secret_id TEXT,
    container_id TEXT,
    error_code INTEGER,
    error_reason TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX orders_by_project ON orders (project_id, created, id);
CREATE TABLE containers (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX containers_by_project ON containers (project_id, created, id);
CREATE TABLE container_secrets (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    PRIMARY KEY (container_id, name)
) WITHOUT ROWID;
