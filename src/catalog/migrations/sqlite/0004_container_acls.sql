-- Version 4: containers' read ACLs, as secrets have them.
ALTER TABLE containers ADD COLUMN read_project_access INTEGER NOT NULL DEFAULT 1;
CREATE TABLE container_acl_users (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (container_id, user_id)
) WITHOUT ROWID;
CREATE INDEX container_acl_users_by_user ON container_acl_users (user_id);
