//! Every SQL statement d1ns runs, side by side.
//!
//! The cost rules they follow: D1 bills rows read (rows scanned) and rows written, so every
//! statement reaches rows through the primary key `(namespace, key)` or the partial index on
//! expirations, never by scanning the table; prefixes are key ranges, not `LIKE`; the current time
//! is a bound parameter (`now`, in milliseconds), never `unixepoch()`. Table names are checked
//! identifiers (K33) and quoted; everything else is a parameter.
//!
//! The entries table is `WITHOUT ROWID` (one b-tree, one row written per put), so its rows must
//! stay small: SQLite reads a whole overflowing row to compare keys while it seeks. Values over
//! [`MAX_IN_ROW_VALUE_BYTES`](crate::limits::MAX_IN_ROW_VALUE_BYTES) therefore live in a second,
//! rowid table, `{table}$chunks`, as text chunks in order; the entry's row keeps an empty value of
//! the right kind (text or bytes), the number of chunks in `chunks` and the value's length in
//! bytes in `size`. Triggers remove the chunks when the entry gets a new value or is deleted, and
//! move them when a key is renamed by hand; they only fire for entries that have chunks.

/// The statements for one table. Every column a statement returns is named `c0`, `c1`, ... by
/// its position, which is how the D1 backend reads rows (D1 returns them as objects, whose
/// property order JavaScript may change).
#[derive(Debug)]
pub(crate) struct Sql {
    /// Creates the tables, index and triggers, in order; each is `IF NOT EXISTS`.
    pub schema: [String; SCHEMA_STATEMENTS],
    /// Runs after [`schema`](Self::schema) in the batch that creates it: fails on a table made by
    /// d1ns 0.1 (no `size` column), so that the whole batch, the new trigger included, rolls back
    /// and the table is upgraded first, whatever the operation.
    pub schema_check: String,
    /// Brings a table made by d1ns 0.1 (no `size` column, the first update trigger) to this
    /// schema, then [`schema`](Self::schema) completes it. One batch: all or nothing.
    pub upgrade: [String; UPGRADE_STATEMENTS],
    /// `?1` namespace, `?2` key, `?3` now -> `part, value, metadata, expiration, chunks, size`:
    /// the entry (part `NULL`) and its chunks below `chunks` (part 0, 1, ...), in one statement.
    /// Chunks come back only while the entry is live.
    /// The rows are put in order in Rust: an `ORDER BY` here makes SQLite prepare the statement
    /// again at every use.
    pub get: String,
    /// `?1` namespace, `?2` the keys as a JSON array, `?3` now, `?4` the largest value read in
    /// this statement -> `key, part, value, metadata, chunks, size, length`: each live entry
    /// (part `NULL`), with its value when it is at most `?4` bytes (`NULL` otherwise; `length` says
    /// how long it is), and the chunks (in any order) of entries whose `size` is at most `?4`.
    /// Larger values are read with [`get`](Self::get) afterwards, so each D1 result stays under its 50 MB limit.
    /// The keys travel as one JSON parameter so 100 keys stay within D1's 100 parameters.
    pub get_bulk: String,
    /// `?1` namespace, `?2` key, `?3` value, `?4` metadata, `?5` expiration, `?6` chunks,
    /// `?7` size.
    pub put: String,
    /// `?1` namespace, `?2` key: removes every chunk of the key, before a put writes new ones,
    /// so that chunks left by anything else can never mix with them.
    pub delete_chunks: String,
    /// `?1` namespace, `?2` key, `?3` chunk number (from 0), `?4` the chunk.
    pub put_chunk: String,
    /// `?1` namespace, `?2` key.
    pub delete: String,
    /// `?1` namespace, `?2` lowest key (inclusive), `?3` now, `?4` key bound (exclusive),
    /// `?5` limit -> `key, expiration, metadata`.
    pub list: String,
    /// `?1` now, `?2` most rows to remove -> one row per entry removed, so the count does not
    /// depend on the database reporting its changes.
    pub purge_expired: String,
}

/// How many statements create a table's schema.
pub(crate) const SCHEMA_STATEMENTS: usize = 6;
/// How many statements upgrade a table made by d1ns 0.1.
pub(crate) const UPGRADE_STATEMENTS: usize = 2;

/// The column every statement reads and d1ns 0.1's tables lack: seeing it missing means the table
/// needs [`Sql::upgrade`].
pub(crate) const UPGRADE_COLUMN: &str = "size";

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
        // d1ns 0.1's update trigger, replaced by `on_edit`.
        let on_update_v1 = quote(&format!("{table}$chunks_on_update"));
        let on_edit = quote(&format!("{table}$chunks_on_edit"));
        let on_delete = quote(&format!("{table}$chunks_on_delete"));
        // Every read binds the current time as ?3.
        let live = "(expiration IS NULL OR expiration > ?3)";
        // A chunk row `c` below its live entry's count. A subquery per chunk row, so that an
        // entry without chunks costs no second read of its row (a join or a subquery run once
        // would read it again, or make SQLite prepare the statement again at each use); no
        // `part >= 0` bound either, which D1 bills as a row read on every get. Stray rows with
        // negative numbers are dropped in Rust.
        let chunk_of_live = format!(
            "(SELECT {live} AND c.part < e.chunks FROM {t} AS e \
             WHERE e.namespace = c.namespace AND e.key = c.key)"
        );
        let chunk_of_live_within = format!(
            "(SELECT {live} AND c.part < e.chunks AND e.size <= ?4 FROM {t} AS e \
             WHERE e.namespace = c.namespace AND e.key = c.key)"
        );
        let old_chunks = format!("{chunks} WHERE namespace = OLD.namespace AND key = OLD.key");
        // A key renamed (by hand) with its value untouched.
        let renamed = "(NEW.namespace IS NOT OLD.namespace OR NEW.key IS NOT OLD.key) \
                       AND NEW.value IS OLD.value AND NEW.chunks IS OLD.chunks \
                       AND NEW.size IS OLD.size";
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
                     size INTEGER, \
                     PRIMARY KEY (namespace, key)\
                     ) WITHOUT ROWID"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {t} (expiration) \
                     WHERE expiration IS NOT NULL"
                ),
                // A rowid table with a separate index: chunks are up to 1.9 MB, and a seek in a
                // b-tree whose cells are that large reads them whole.
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
                // Fires only when the value, its chunks or the key really change (not for
                // `SET value = value`, nor for metadata or expiration): a renamed key takes its
                // chunks along, anything else drops them.
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {on_edit} \
                     AFTER UPDATE OF namespace, key, value, chunks, size ON {t} \
                     WHEN OLD.chunks > 0 AND (NEW.namespace IS NOT OLD.namespace \
                     OR NEW.key IS NOT OLD.key OR NEW.value IS NOT OLD.value \
                     OR NEW.chunks IS NOT OLD.chunks OR NEW.size IS NOT OLD.size) BEGIN \
                     DELETE FROM {chunks} WHERE namespace = NEW.namespace AND key = NEW.key \
                     AND {renamed}; \
                     UPDATE {chunks} SET namespace = NEW.namespace, key = NEW.key \
                     WHERE namespace = OLD.namespace AND key = OLD.key AND {renamed}; \
                     DELETE FROM {old_chunks}; END"
                ),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {on_delete} AFTER DELETE ON {t} \
                     WHEN OLD.chunks > 0 BEGIN DELETE FROM {old_chunks}; END"
                ),
            ],
            // Reads no row: a key search that stops before it starts.
            schema_check: format!(
                "SELECT {UPGRADE_COLUMN} AS c0 FROM {t} WHERE namespace = '' AND key = '' LIMIT 0"
            ),
            upgrade: [
                format!("ALTER TABLE {t} ADD COLUMN size INTEGER"),
                format!("DROP TRIGGER IF EXISTS {on_update_v1}"),
            ],
            get: format!(
                "SELECT NULL AS c0, value AS c1, metadata AS c2, expiration AS c3, chunks AS c4, \
                 size AS c5 FROM {t} \
                 WHERE namespace = ?1 AND key = ?2 AND {live} \
                 UNION ALL \
                 SELECT c.part, c.data, NULL, NULL, NULL, NULL FROM {chunks} AS c \
                 WHERE c.namespace = ?1 AND c.key = ?2 AND {chunk_of_live}"
            ),
            get_bulk: format!(
                "SELECT key AS c0, NULL AS c1, \
                 CASE WHEN octet_length(value) <= ?4 THEN value END AS c2, \
                 metadata AS c3, chunks AS c4, size AS c5, octet_length(value) AS c6 FROM {t} \
                 WHERE namespace = ?1 AND key IN (SELECT value FROM json_each(?2)) AND {live} \
                 UNION ALL \
                 SELECT c.key, c.part, c.data, NULL, NULL, NULL, NULL FROM {chunks} AS c \
                 WHERE c.namespace = ?1 AND c.key IN (SELECT value FROM json_each(?2)) \
                 AND {chunk_of_live_within}"
            ),
            put: format!(
                "INSERT INTO {t} (namespace, key, value, metadata, expiration, chunks, size) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (namespace, key) DO UPDATE SET \
                 value = excluded.value, metadata = excluded.metadata, \
                 expiration = excluded.expiration, chunks = excluded.chunks, \
                 size = excluded.size"
            ),
            delete_chunks: format!("DELETE FROM {chunks} WHERE namespace = ?1 AND key = ?2"),
            put_chunk: format!(
                "INSERT OR REPLACE INTO {chunks} (namespace, key, part, data) VALUES (?1, ?2, ?3, ?4)"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = ?1 AND key = ?2"),
            list: format!(
                "SELECT key AS c0, expiration AS c1, metadata AS c2 FROM {t} \
                 WHERE namespace = ?1 AND key >= ?2 AND key < ?4 AND {live} \
                 ORDER BY key LIMIT ?5"
            ),
            purge_expired: format!(
                "DELETE FROM {t} WHERE (namespace, key) IN (\
                 SELECT namespace, key FROM {t} \
                 WHERE expiration IS NOT NULL AND expiration <= ?1 LIMIT ?2) \
                 RETURNING 1 AS c0"
            ),
        }
    }

    /// The schema as a script, for `wrangler d1 migrations apply` when auto-create is off.
    pub fn schema_script(&self) -> String {
        script(&self.schema)
    }

    /// The upgrade of a table made by d1ns 0.1, as a script: the upgrade statements, then the
    /// schema (which adds the new trigger).
    pub fn upgrade_script(&self) -> String {
        script(&self.upgrade) + &self.schema_script()
    }
}

fn script(statements: &[String]) -> String {
    statements
        .iter()
        .map(|statement| format!("{statement};\n"))
        .collect()
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
