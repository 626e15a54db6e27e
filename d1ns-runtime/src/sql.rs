//! Every SQL statement d1ns runs, side by side.
//!
//! The cost rules they follow: D1 bills rows read (rows scanned) and rows written, so every
//! statement reaches rows through the primary key `(namespace, key)` or the partial index on
//! expirations, never by scanning the table; prefixes are key ranges, not `LIKE`; the current time
//! is a bound parameter (`now`, in milliseconds), never `unixepoch()`. Table names are checked
//! identifiers (K33) and quoted; everything else is a parameter.
//!
//! Values longer than a D1 row can hold (K9) live in a second table, `{table}$chunks`, as text
//! parts in order; the entry's row keeps an empty value of the right kind (text or bytes) and
//! the number of parts in `chunks`. Triggers remove the parts whenever the entry gets a new value
//! or is deleted (by `put`, `delete` or `purge_expired`), so no operation leaves orphans, and
//! small values never pay for the mechanism: the triggers only fire when `chunks` was set.

/// The statements for one table.
#[derive(Debug)]
pub(crate) struct Sql {
    /// Creates the tables, index and triggers, in order; each is `IF NOT EXISTS`.
    pub schema: [String; SCHEMA_STATEMENTS],
    /// `?1` namespace, `?2` key, `?3` now -> `part, value, metadata, expiration, chunks`: the
    /// entry (part -1) and its parts (0..), in one statement. Parts come back only while the
    /// entry is live; the check is a subquery per part, so an entry without parts costs no second
    /// read of its row (a join or `EXISTS` would read it first, or make SQLite prepare the
    /// statement again at each use). The rows are put in order in Rust: an `ORDER BY` here makes
    /// SQLite prepare the statement again at every use.
    pub get: String,
    /// `?1` namespace, `?2` the keys as a JSON array, `?3` now
    /// -> `key, value, metadata, chunks`. The keys travel as one JSON parameter so 100 keys stay
    /// within D1's 100 parameters.
    pub get_bulk: String,
    /// `?1` namespace, `?2` key, `?3` value, `?4` metadata, `?5` expiration, `?6` chunks.
    pub put: String,
    /// `?1` namespace, `?2` key, `?3` part number (from 0), `?4` the part.
    pub put_chunk: String,
    /// `?1` namespace, `?2` key.
    pub delete: String,
    /// `?1` namespace, `?2` lowest key (inclusive), `?3` now, `?4` key bound (exclusive),
    /// `?5` limit -> `key, expiration, metadata`.
    pub list: String,
    /// `?1` now, `?2` most rows to remove.
    pub purge_expired: String,
}

/// How many statements create a table's schema.
pub(crate) const SCHEMA_STATEMENTS: usize = 6;

impl Sql {
    /// The statements for `table`. Names are checked identifiers (K33); they are quoted anyway,
    /// so that no name can ever change a statement.
    pub fn for_table(table: &str) -> Sql {
        let t = quote(table);
        // Names of d1ns's own objects carry `$`, which table names cannot (K33): they never
        // collide with a table of another namespace (`sessions` and `sessions_chunks`, say).
        let chunks = quote(&format!("{table}$chunks"));
        let index = quote(&format!("{table}$expiration"));
        let chunks_key = quote(&format!("{table}$chunks_key"));
        let on_update = quote(&format!("{table}$chunks_on_update"));
        let on_delete = quote(&format!("{table}$chunks_on_delete"));
        // Every read binds the current time as ?3.
        let live = "(expiration IS NULL OR expiration > ?3)";
        // Runs in a trigger, for the entry row being replaced or removed.
        let drop_chunks =
            format!("DELETE FROM {chunks} WHERE namespace = OLD.namespace AND key = OLD.key");
        Sql {
            schema: [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     namespace TEXT NOT NULL, \
                     key TEXT NOT NULL, \
                     value BLOB NOT NULL, \
                     metadata TEXT, \
                     expiration INTEGER, \
                     chunks INTEGER, \
                     PRIMARY KEY (namespace, key)\
                     ) WITHOUT ROWID"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {t} (expiration) \
                     WHERE expiration IS NOT NULL"
                ),
                // A rowid table with a separate index, not WITHOUT ROWID: parts are up to 1.9 MB,
                // and SQLite reads a whole overflowing cell to compare keys in an index b-tree, so
                // every seek into a WITHOUT ROWID parts table (even for a key without parts) read
                // megabytes: gets of small values went 5x slower once large values were stored.
                // The index holds only the small key columns.
                format!(
                    "CREATE TABLE IF NOT EXISTS {chunks} (\
                     namespace TEXT NOT NULL, \
                     key TEXT NOT NULL, \
                     part INTEGER NOT NULL, \
                     data TEXT NOT NULL)"
                ),
                format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {chunks_key} ON {chunks} (namespace, key, part)"
                ),
                // Only a new value (a put) replaces the parts: an UPDATE of the metadata or the
                // expiration by hand keeps them.
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {on_update} AFTER UPDATE OF value, chunks ON {t} \
                     WHEN OLD.chunks > 0 BEGIN {drop_chunks}; END"
                ),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {on_delete} AFTER DELETE ON {t} \
                     WHEN OLD.chunks > 0 BEGIN {drop_chunks}; END"
                ),
            ],
            get: format!(
                "SELECT -1, value, metadata, expiration, chunks FROM {t} \
                 WHERE namespace = ?1 AND key = ?2 AND {live} \
                 UNION ALL \
                 SELECT c.part, c.data, NULL, NULL, NULL FROM {chunks} AS c \
                 WHERE c.namespace = ?1 AND c.key = ?2 \
                 AND (SELECT {live} FROM {t} AS e WHERE e.namespace = c.namespace AND e.key = c.key)"
            ),
            get_bulk: format!(
                "SELECT key, value, metadata, chunks FROM {t} \
                 WHERE namespace = ?1 AND key IN (SELECT value FROM json_each(?2)) AND {live}"
            ),
            put: format!(
                "INSERT INTO {t} (namespace, key, value, metadata, expiration, chunks) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (namespace, key) DO UPDATE SET \
                 value = excluded.value, metadata = excluded.metadata, \
                 expiration = excluded.expiration, chunks = excluded.chunks"
            ),
            put_chunk: format!(
                "INSERT OR REPLACE INTO {chunks} (namespace, key, part, data) VALUES (?1, ?2, ?3, ?4)"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = ?1 AND key = ?2"),
            list: format!(
                "SELECT key, expiration, metadata FROM {t} \
                 WHERE namespace = ?1 AND key >= ?2 AND key < ?4 AND {live} \
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
        self.schema
            .iter()
            .map(|statement| format!("{statement};\n"))
            .collect()
    }
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
