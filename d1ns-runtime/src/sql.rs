//! Every SQL statement d1ns runs, side by side.
//!
//! The cost rules they follow: D1 bills rows read (rows scanned) and rows written, so every
//! statement reaches rows through the primary key `(namespace, key)` or the partial index on
//! expirations, never by scanning the table; prefixes are key ranges, not `LIKE`; the current time
//! is a bound parameter (`now`, in milliseconds), never `unixepoch()`. Table names are checked
//! identifiers (K33) and quoted; everything else is a parameter.

/// The statements for one table.
#[derive(Debug)]
pub(crate) struct Sql {
    pub create_table: String,
    pub create_index: String,
    /// `?1` namespace, `?2` key, `?3` now -> `value, metadata, expiration`.
    pub get: String,
    /// `?1` namespace, `?2` the keys as a JSON array, `?3` now -> `key, value, metadata`.
    /// The keys travel as one JSON parameter so 100 keys stay within D1's 100 parameters.
    pub get_bulk: String,
    /// `?1` namespace, `?2` key, `?3` value, `?4` metadata, `?5` expiration.
    pub put: String,
    /// `?1` namespace, `?2` key.
    pub delete: String,
    /// `?1` namespace, `?2` lowest key (inclusive), `?3` key bound (exclusive), `?4` now,
    /// `?5` limit -> `key, expiration, metadata`.
    pub list: String,
    /// `?1` now, `?2` most rows to remove.
    pub purge_expired: String,
}

impl Sql {
    /// The statements for `table`. Names are checked identifiers (K33); they are quoted anyway,
    /// so that no name can ever change a statement.
    pub fn for_table(table: &str) -> Sql {
        let t = quote(table);
        let index = quote(&format!("{table}_expiration"));
        let live = "(expiration IS NULL OR expiration > ?3)";
        Sql {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 namespace TEXT NOT NULL, \
                 key TEXT NOT NULL, \
                 value BLOB NOT NULL, \
                 metadata TEXT, \
                 expiration INTEGER, \
                 PRIMARY KEY (namespace, key)\
                 ) WITHOUT ROWID"
            ),
            create_index: format!(
                "CREATE INDEX IF NOT EXISTS {index} ON {t} (expiration) \
                 WHERE expiration IS NOT NULL"
            ),
            get: format!(
                "SELECT value, metadata, expiration FROM {t} \
                 WHERE namespace = ?1 AND key = ?2 AND {live}"
            ),
            get_bulk: format!(
                "SELECT key, value, metadata FROM {t} \
                 WHERE namespace = ?1 AND key IN (SELECT value FROM json_each(?2)) AND {live}"
            ),
            put: format!(
                "INSERT INTO {t} (namespace, key, value, metadata, expiration) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (namespace, key) DO UPDATE SET \
                 value = excluded.value, metadata = excluded.metadata, \
                 expiration = excluded.expiration"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = ?1 AND key = ?2"),
            list: format!(
                "SELECT key, expiration, metadata FROM {t} \
                 WHERE namespace = ?1 AND key >= ?2 AND key < ?3 \
                 AND (expiration IS NULL OR expiration > ?4) \
                 ORDER BY key LIMIT ?5"
            ),
            purge_expired: format!(
                "DELETE FROM {t} WHERE (namespace, key) IN (\
                 SELECT namespace, key FROM {t} \
                 WHERE expiration IS NOT NULL AND expiration <= ?1 LIMIT ?2)"
            ),
        }
    }

    /// The schema as a script, for `wrangler d1 migrations apply` when auto-create is off.
    pub fn schema_script(&self) -> String {
        format!("{};\n{};\n", self.create_table, self.create_index)
    }
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
