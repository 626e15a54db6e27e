-- d1ns: the table of the default namespace ("" -> _kv_entries), for `wrangler d1 migrations apply`
-- when auto-create is off. For another namespace or table, print its schema with
-- `D1Namespace::schema_sql()` (every name below is the table's name).
CREATE TABLE IF NOT EXISTS "_kv_entries" (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, metadata TEXT, expiration INTEGER, PRIMARY KEY (namespace, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "_kv_entries_expiration" ON "_kv_entries" (expiration) WHERE expiration IS NOT NULL;
