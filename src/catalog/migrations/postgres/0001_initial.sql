-- Version 1: the first keywarden schema (PostgreSQL). Text columns use the
-- "C" collation so ordering and comparison match SQLite's byte order.
CREATE TABLE project_keks (
    backend_id TEXT COLLATE "C" NOT NULL,
    project_id TEXT COLLATE "C" NOT NULL,
    kek_id TEXT COLLATE "C" NOT NULL CONSTRAINT project_keks_kek_id_key UNIQUE,
    master_fingerprint TEXT COLLATE "C" NOT NULL,
    wrapped BYTEA NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (backend_id, project_id)
);
CREATE TABLE secrets (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    algorithm TEXT COLLATE "C",
    bit_length BIGINT,
    mode TEXT COLLATE "C",
    secret_type TEXT COLLATE "C" NOT NULL,
    expiration BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    content_type TEXT COLLATE "C",
    creator_id TEXT COLLATE "C" NOT NULL,
    backend_id TEXT COLLATE "C" NOT NULL,
    stored BYTEA,
    -- The project KEK that encrypted `stored` (crypto backends): a secret
    -- can never be written under a KEK this catalog does not hold.
    kek_id TEXT COLLATE "C" CONSTRAINT secrets_kek_fk REFERENCES project_keks (kek_id),
    read_project_access BOOLEAN NOT NULL DEFAULT TRUE,
    CHECK ((content_type IS NULL) = (stored IS NULL))
);
CREATE INDEX secrets_by_project_created ON secrets (project_id, created, id);
CREATE INDEX secrets_by_project_name ON secrets (project_id, name, created, id);
CREATE INDEX secrets_by_project_expiration ON secrets (project_id, expiration);
CREATE INDEX secrets_by_kek ON secrets (kek_id);
CREATE TABLE secret_acl_users (
    secret_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT secret_acl_users_secret_fk REFERENCES secrets (id) ON DELETE CASCADE,
    user_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (secret_id, user_id)
);
CREATE INDEX secret_acl_users_by_user ON secret_acl_users (user_id);
CREATE TABLE secret_consumers (
    secret_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT secret_consumers_secret_fk REFERENCES secrets (id) ON DELETE CASCADE,
    service TEXT COLLATE "C" NOT NULL,
    resource_type TEXT COLLATE "C" NOT NULL,
    resource_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (secret_id, service, resource_type, resource_id)
);
CREATE TABLE project_backends (
    project_id TEXT COLLATE "C" PRIMARY KEY,
    backend_id TEXT COLLATE "C" NOT NULL
);
CREATE TABLE orders (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    creator_id TEXT COLLATE "C" NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    algorithm TEXT COLLATE "C" NOT NULL,
    bit_length BIGINT NOT NULL,
    mode TEXT COLLATE "C",
    payload_content_type TEXT COLLATE "C",
    expiration BIGINT,
    secret_id TEXT COLLATE "C",
    container_id TEXT COLLATE "C",
    error_code BIGINT,
    error_reason TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX orders_by_project ON orders (project_id, created, id);
CREATE TABLE containers (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    creator_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    type TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX containers_by_project ON containers (project_id, created, id);
CREATE TABLE container_secrets (
    container_id TEXT COLLATE "C" NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    secret_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (container_id, name)
);
