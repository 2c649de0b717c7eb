-- Version 4: containers' read ACLs, as secrets have them.
ALTER TABLE containers ADD COLUMN read_project_access BOOLEAN NOT NULL DEFAULT TRUE;
CREATE TABLE container_acl_users (
    container_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT container_acl_users_container_fk REFERENCES containers (id) ON DELETE CASCADE,
    user_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (container_id, user_id)
);
CREATE INDEX container_acl_users_by_user ON container_acl_users (user_id);
