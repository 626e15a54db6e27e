-- The tables of this Worker's namespaces, for `npx wrangler d1 migrations apply d1ns-example`.
-- d1ns creates them itself on first use too (auto-create); the migration makes it explicit.
-- Generated with D1Namespace::schema_sql().
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries_expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS "sessions_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "sessions_kv_entries_expiration" ON "sessions_kv_entries" (expiration) WHERE expiration IS NOT NULL;
