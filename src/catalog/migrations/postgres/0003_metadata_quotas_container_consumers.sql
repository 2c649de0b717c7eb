-- Version 3: what Barbican's REST API adds to the store: secrets' user
-- metadata, per-project quotas, and consumers registered on containers.
CREATE TABLE secret_metadata (
    secret_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT secret_metadata_secret_fk REFERENCES secrets (id) ON DELETE CASCADE,
    meta_key TEXT COLLATE "C" NOT NULL,
    meta_value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (secret_id, meta_key)
);
-- A NULL limit falls back to the store's configured default.
CREATE TABLE project_quotas (
    project_id TEXT COLLATE "C" PRIMARY KEY,
    secrets BIGINT,
    orders BIGINT,
    containers BIGINT,
    consumers BIGINT,
    cas BIGINT,
    created BIGINT NOT NULL
);
CREATE INDEX project_quotas_by_created ON project_quotas (created, project_id);
CREATE TABLE container_consumers (
    container_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT container_consumers_container_fk REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    url TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (container_id, name, url)
);
CREATE INDEX container_consumers_by_created ON container_consumers (container_id, created, name, url);
