-- Version 2: SQLite gains secrets_by_kek here; PostgreSQL's version 1 made
-- it already, so this keeps the two catalogs at one version number with one
-- set of indexes.
CREATE INDEX IF NOT EXISTS secrets_by_kek ON secrets (kek_id);
