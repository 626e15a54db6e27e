-- d1ns 0.2: upgrades the default table made by 0001_d1ns.sql (d1ns 0.1), in place. Apply it once,
-- after 0001, when auto-create is off (with auto-create, d1ns runs these statements itself the first
-- time it meets a 0.1 table). For another table, D1Namespace::upgrade_sql() prints its version.
-- It adds the size column (the byte length of a value stored in chunks, so that a damaged value is
-- detected) and replaces the update trigger by one that ignores updates that change nothing and
-- moves the chunks of a key renamed by hand. Existing rows stay as they are and read as before.
ALTER TABLE "_kv_entries" ADD COLUMN size INTEGER;
DROP TRIGGER IF EXISTS "_kv_entries$chunks_on_update";
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, chunks INTEGER, size INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries$expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "_kv_entries$chunks" (namespace TEXT NOT NULL, key TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "_kv_entries$chunks_key" ON "_kv_entries$chunks" (namespace, key, part);
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_edit" AFTER UPDATE OF namespace, key, value, chunks, size ON "_kv_entries" WHEN OLD.chunks > 0 AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key OR NEW.value IS NOT OLD.value OR NEW.chunks IS NOT OLD.chunks OR NEW.size IS NOT OLD.size) BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = NEW.namespace AND key = NEW.key AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key) AND NEW.value IS OLD.value AND NEW.chunks IS OLD.chunks AND NEW.size IS OLD.size; UPDATE "_kv_entries$chunks" SET namespace = NEW.namespace, key = NEW.key WHERE namespace = OLD.namespace AND key = OLD.key AND (NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key) AND NEW.value IS OLD.value AND NEW.chunks IS OLD.chunks AND NEW.size IS OLD.size; DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_delete" AFTER DELETE ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
