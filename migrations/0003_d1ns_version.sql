-- d1ns 0.3: upgrades the default table made by 0002_d1ns_size.sql (d1ns 0.2), in place, for
-- versionstamps and atomic commits. Apply it once, after 0002, when auto-create is off (with
-- auto-create, d1ns runs these statements itself the first time it meets such a table). For another
-- table, D1Namespace::upgrade_sql_from_0_2() prints its version.
-- It adds the version column (each entry's versionstamp) and two triggers that give a new one to
-- any write that keeps the old (by hand, or by d1ns 0.1 or 0.2). Existing rows stay as they are
-- and read with the all-zero versionstamp until they are written again.
ALTER TABLE "_kv_entries" ADD COLUMN version TEXT;
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, chunks INTEGER, size INTEGER, version TEXT, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries$expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "_kv_entries$chunks" (namespace TEXT NOT NULL, key TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "_kv_entries$chunks_key" ON "_kv_entries$chunks" (namespace, key, part);
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_edit" AFTER UPDATE OF namespace, key, value, chunks, size ON "_kv_entries" WHEN OLD.chunks > 0 AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key OR NEW.value IS NOT OLD.value OR NEW.chunks IS NOT OLD.chunks OR NEW.size IS NOT OLD.size) BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = NEW.namespace AND key = NEW.key AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key) AND NEW.value IS OLD.value AND NEW.chunks IS OLD.chunks AND NEW.size IS OLD.size; UPDATE "_kv_entries$chunks" SET namespace = NEW.namespace, key = NEW.key WHERE namespace = OLD.namespace AND key = OLD.key AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key) AND NEW.value IS OLD.value AND NEW.chunks IS OLD.chunks AND NEW.size IS OLD.size; DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_delete" AFTER DELETE ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$version_on_edit" AFTER UPDATE OF namespace, key, value, metadata, expiration, chunks, size ON "_kv_entries" WHEN NEW.version IS OLD.version BEGIN UPDATE "_kv_entries" SET version = lower(hex(randomblob(16))) WHERE namespace = NEW.namespace AND key = NEW.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$version_on_insert" AFTER INSERT ON "_kv_entries" WHEN NEW.version IS NULL BEGIN UPDATE "_kv_entries" SET version = lower(hex(randomblob(16))) WHERE namespace = NEW.namespace AND key = NEW.key; END;
