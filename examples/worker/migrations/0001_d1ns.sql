-- The tables of this Worker's namespaces, for `npx wrangler d1 migrations apply d1ns-example`.
-- d1ns creates them itself on first use too (auto-create); the migration makes it explicit.
-- Generated with D1Namespace::schema_sql().
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, chunks INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries$expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "_kv_entries$chunks" (namespace TEXT NOT NULL, key TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "_kv_entries$chunks_key" ON "_kv_entries$chunks" (namespace, key, part);
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_update" AFTER UPDATE OF value, chunks ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "_kv_entries$chunks_on_delete" AFTER DELETE ON "_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TABLE IF NOT EXISTS "sessions_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, chunks INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "sessions_kv_entries$expiration" ON "sessions_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "sessions_kv_entries$chunks" (namespace TEXT NOT NULL, key TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "sessions_kv_entries$chunks_key" ON "sessions_kv_entries$chunks" (namespace, key, part);
CREATE TRIGGER IF NOT EXISTS "sessions_kv_entries$chunks_on_update" AFTER UPDATE OF value, chunks ON "sessions_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "sessions_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
CREATE TRIGGER IF NOT EXISTS "sessions_kv_entries$chunks_on_delete" AFTER DELETE ON "sessions_kv_entries" WHEN OLD.chunks > 0 BEGIN DELETE FROM "sessions_kv_entries$chunks" WHERE namespace = OLD.namespace AND key = OLD.key; END;
