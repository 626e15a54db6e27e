-- d1ns 0.3: the index of the sessions namespace on user_id (`index(user_id)` in src/lib.rs), built
-- over the rows already there. Generated with D1Namespace::schema_sql() of that namespace.
CREATE INDEX IF NOT EXISTS "sessions_kv_entries$index$sessions$user_id" ON "sessions_kv_entries" ((CASE WHEN typeof(value) = 'text' AND json_valid(value) THEN json_extract(value, '$."user_id"') END), key) WHERE namespace = 'sessions' AND (CASE WHEN typeof(value) = 'text' AND json_valid(value) THEN json_extract(value, '$."user_id"') END) IS NOT NULL;
