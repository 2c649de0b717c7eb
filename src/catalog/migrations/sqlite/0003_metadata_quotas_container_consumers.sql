-- Version 3: what Barbican's REST API adds to the store: secrets' user
-- metadata, per-project quotas, and consumers registered on containers.
CREATE TABLE secret_metadata (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    meta_key TEXT NOT NULL,
    meta_value TEXT NOT NULL,
    PRIMARY KEY (secret_id, meta_key)
) WITHOUT ROWID;
-- A NULL limit falls back to the store's configured default.
CREATE TABLE project_quotas (
    project_id TEXT PRIMARY KEY NOT NULL,
    secrets INTEGER,
    orders INTEGER,
    containers INTEGER,
    consumers INTEGER,
    cas INTEGER,
    created INTEGER NOT NULL
);
CREATE INDEX project_quotas_by_created ON project_quotas (created, project_id);
CREATE TABLE container_consumers (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (container_id, name, url)
) WITHOUT ROWID;
CREATE INDEX container_consumers_by_created ON container_consumers (container_id, created, name, url);
