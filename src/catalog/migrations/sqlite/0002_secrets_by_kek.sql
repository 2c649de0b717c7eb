-- Version 2: the index PostgreSQL's version 1 already had. Deleting or
-- replacing a project KEK checks that no secret still references it; without
-- this index that check reads every secret.
CREATE INDEX secrets_by_kek ON secrets (kek_id);
