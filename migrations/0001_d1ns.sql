-- d1ns: the tables of the default namespace ("" -> _kv_entries), for `wrangler d1 migrations apply`
-- when auto-create is off. For another namespace or table, print its schema with
-- `D1Namespace::schema_sql()` (the names below all derive from the table's name).
-- "_kv_entries$chunks" holds the parts of values longer than a D1 row; the triggers remove them
-- when their entry is overwritten or deleted.
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, chunks INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries$expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "_kv_entries$chunks" (namespace TEXT NOT NULL, key TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "_kv_entries$chunks_key" ON "_kv_entries$chunks" (namespace, key, part);
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_update" AFTER UPDATE OF value, chunks ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_delete" AFTER DELETE ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
