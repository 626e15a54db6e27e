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
//!
//! Each entry's `version` column holds its [`Versionstamp`](crate::Versionstamp) as 32 hex
//! digits, in the entry's own row (no row written more per put, A4). Every write by d1ns sets a
//! new one; two triggers give a new random one to any other write (by hand, or by d1ns 0.1 and
//! 0.2, which know nothing of versions), so that a check never passes over a change it did not
//! see. They fire only for writes that leave the version as it was, which d1ns never does.
//!
//! An atomic commit ([`Sql::check`], [`Sql::counter`]) stops the whole batch by raising an
//! error whose text carries a marker ([`ABORT_MARKER`]): SQLite's JSON path error quotes the
//! path, and D1 passes SQLite's text on. The batch is one transaction, so nothing is written.

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
    /// Reads no row, and fails when the table lacks a column every d1ns table has had since
    /// 0.1: a table of another program (d1-namespace's, say), which d1ns must never change.
    pub own_columns: String,
    /// The steps that bring a table made by an earlier version to this schema, oldest first;
    /// [`schema`](Self::schema) completes them. Each adds one column, so a step whose column
    /// exists is done. Run as one batch: all or nothing.
    pub upgrades: [Upgrade; UPGRADES],
    /// `?1` namespace, `?2` key, `?3` now -> `part, value, metadata, expiration, chunks, size,
    /// version`: the entry (part `NULL`) and its chunks below `chunks` (part 0, 1, ...), in one
    /// statement.
    /// Chunks come back only while the entry is live.
    /// The rows are put in order in Rust: an `ORDER BY` here makes SQLite prepare the statement
    /// again at every use.
    pub get: String,
    /// One key of a bulk read, sent once per key in one batch. `?1` namespace, `?2` key, `?3`
    /// now, `?4` the largest value read in this statement -> `part, value, metadata, chunks,
    /// size, length, expiration, version, stand-in`: a live entry as one row (part `NULL`) with
    /// its value when it is at most `?4` bytes (`NULL` otherwise; `length` says how long it is),
    /// or, for a value in chunks of at most `?4` bytes, its chunks (in any order) each with the
    /// entry's columns and the empty stand-in of the value. Larger values are read with
    /// [`get`](Self::get) afterwards, so each D1 result stays under its 50 MB limit.
    ///
    /// The entry is a subquery joined to its chunks only when it has some to read (the chunks'
    /// key is `NULL` otherwise, so SQLite does not even seek them): D1 counts 1 row per entry
    /// found, none per key missing, 2 per chunk. Its `LIMIT 1` keeps SQLite from flattening it
    /// into the join, where the parameters shared by both sides made SQLite prepare the
    /// statement again at every use. (One statement over the keys as a JSON list
    /// also counted reading the list, twice: 4.5 rows per key found.)
    pub get_bulk: String,
    /// `?1` namespace, `?2` key, `?3` value, `?4` metadata, `?5` expiration, `?6` chunks,
    /// `?7` size, `?8` version.
    pub put: String,
    /// `?1` namespace, `?2` key: removes every chunk of the key, before a put writes new ones,
    /// so that chunks left by anything else can never mix with them.
    pub delete_chunks: String,
    /// `?1` namespace, `?2` key, `?3` chunk number (from 0), `?4` the chunk.
    pub put_chunk: String,
    /// `?1` namespace, `?2` key.
    pub delete: String,
    /// `?1` namespace, `?2` key: clears the version of an entry this commit wrote already, so
    /// that its next write in the same commit (which sets the same stamp again) does not look
    /// like a write that kept the version (see the `version_on_edit` trigger).
    pub clear_version: String,
    /// `?1` namespace, `?2` lowest key (inclusive), `?3` now, `?4` key bound (exclusive),
    /// `?5` limit -> `key, expiration, metadata`.
    pub list: String,
    /// `?1` now, `?2` most rows to remove, `?3` the namespace -> one row per entry removed, so
    /// the count does not depend on the database reporting its changes. Expired entries of
    /// every namespace in the table go, but tombstones (expiration 0) only of `?3`'s own: another
    /// namespace may be moving in, where a tombstone is all that says a key was deleted (M4).
    pub purge_expired: String,
    /// `?1` namespace, `?2` the checks as a JSON array of `[key, version or null]`, `?3` now:
    /// fails with the marker `check` when any check does not hold (A6, A7); otherwise returns
    /// no row.
    pub check: String,
    /// Sum, min and max, in [`Counter`] order. `?1` namespace, `?2` key, `?3` the operand as
    /// decimal text (exact beyond 2^53, A5), `?4` metadata, `?5` expiration, `?6` version,
    /// `?7` now, `?8` the mutation's number (for the error) -> the new value, as text (A12-A14).
    pub counter: [String; 3],
    /// The statements of a namespace that has a previous home (M1-M9).
    pub moving: MoveSql,
}

/// What a namespace moving in from a previous home runs besides the rest: reads that tell a key
/// this home has never seen (read it from the previous home) from one it has seen die (expired,
/// or deleted: a tombstone), tombstones, and the mover's copies.
///
/// A tombstone is an entry whose expiration is 0: expired since 1970, so every read, list,
/// look-up and check already treats it as missing, and `purge_expired` removes it once the
/// namespace has no previous home left.
#[derive(Debug)]
pub(crate) struct MoveSql {
    /// As [`Sql::get`], but the entry's row comes back when it is not live too, with part `-1`
    /// and no value.
    pub get: String,
    /// As [`Sql::get_bulk`], but an entry that is not live comes back too, as one row with part
    /// `-1` and no value.
    pub get_bulk: String,
    /// As [`Sql::list`], with a fourth column: 1 when the entry is live, 0 when not (expired,
    /// a tombstone), which hides the key from the previous home.
    pub list: String,
    /// `?1` namespace, `?2` key: the key's entry becomes a tombstone.
    pub tombstone: String,
    /// `?1` namespace, `?2` key: fails with the marker `check` when the key has any row here
    /// (live or not), so that a copy never overwrites what this home has seen (M6).
    pub check_absent: String,
    /// `?1` namespace, `?2` key, `?3` version: removes the entry if its version is still `?3`
    /// (M8) -> one row when it did.
    pub delete_if_unchanged: String,
}

/// One step of [`Sql::upgrades`].
#[derive(Debug)]
pub(crate) struct Upgrade {
    /// The column the step adds: the step is done when the table has it.
    pub column: &'static str,
    /// The migration file that holds the step, for the default table.
    pub migration: &'static str,
    pub statements: Vec<String>,
    /// Reads no row, and fails when the table lacks the column.
    pub probe: String,
}

/// The arithmetic mutations of a commit, in the order of [`Sql::counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Sum,
    Min,
    Max,
}

impl Counter {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Counter::Sum => "sum",
            Counter::Min => "min",
            Counter::Max => "max",
        }
    }
}

/// How many rows the statement before it in its batch inserted, changed or removed (not counting
/// what triggers did): a count that does not depend on the database reporting it. Reads no row.
pub(crate) const CHANGES: &str = "SELECT changes() AS c0";

/// What the error of an aborted commit carries: `d1ns-abort:{reason}:{mutation}`.
pub(crate) const ABORT_MARKER: &str = "d1ns-abort:";

/// A SQL expression that fails the statement with `d1ns-abort:{reason}:` followed by
/// `suffix_sql` (the mutation's number), evaluated only where it stands. `column` makes the
/// expression depend on the row (through its type name, never `NULL`), so SQLite cannot compute
/// it once up front. The marker is put together at run time: an error that quotes the
/// statement's text (rusqlite's "no such column" does) must not read as an abort.
fn abort(reason: &str, suffix_sql: &str, column: &str) -> String {
    let (head, tail) = ABORT_MARKER.split_at(4);
    format!(
        "json_extract('{{}}', '{head}' || '{tail}{reason}:' || {suffix_sql} \
         || substr(typeof({column}), 1, 0))"
    )
}

/// The columns of every table d1ns has made, from 0.1 on.
pub(crate) const OWN_COLUMNS: &str = "namespace, key, value, metadata, expiration, chunks";

/// How many statements create a table's schema.
pub(crate) const SCHEMA_STATEMENTS: usize = 8;
/// How many steps [`Sql::upgrades`] has.
pub(crate) const UPGRADES: usize = 2;

/// The hex digits of the all-zero versionstamp: what a `NULL` version reads as.
const ZERO_VERSION: &str = "00000000000000000000000000000000";

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
        let version_on_edit = quote(&format!("{table}$version_on_edit"));
        let version_on_insert = quote(&format!("{table}$version_on_insert"));
        let probe = |column: &str| {
            format!("SELECT {column} AS c0 FROM {t} WHERE namespace = '' AND key = '' LIMIT 0")
        };
        let new_version = format!(
            "UPDATE {t} SET version = lower(hex(randomblob(16))) \
             WHERE namespace = NEW.namespace AND key = NEW.key"
        );
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
        // The entry's columns in a row of a bulk read; the last is the empty stand-in of a
        // value in chunks (of the value's kind), on the rows that carry its chunks.
        let bulk_columns = "p.metadata AS c2, p.chunks AS c3, p.size AS c4, \
                            octet_length(p.value) AS c5, p.expiration AS c6, p.version AS c7, \
                            CASE WHEN c.part IS NOT NULL THEN substr(p.value, 1, 0) END AS c8";
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
                     version TEXT, \
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
                // A write that kept the version (by hand, or by d1ns 0.1 or 0.2) gets a new one.
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {version_on_edit} \
                     AFTER UPDATE OF namespace, key, value, metadata, expiration, chunks, size \
                     ON {t} WHEN NEW.version IS OLD.version BEGIN {new_version}; END"
                ),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {version_on_insert} AFTER INSERT ON {t} \
                     WHEN NEW.version IS NULL BEGIN {new_version}; END"
                ),
            ],
            // Reads no row: a key search that stops before it starts. Names every column an
            // upgrade adds.
            schema_check: format!(
                "SELECT size AS c0, version AS c1 FROM {t} \
                 WHERE namespace = '' AND key = '' LIMIT 0"
            ),
            own_columns: format!(
                "SELECT {OWN_COLUMNS} FROM {t} WHERE namespace = '' AND key = '' LIMIT 0"
            ),
            upgrades: [
                Upgrade {
                    column: "size",
                    probe: probe("size"),
                    migration: "migrations/0002_d1ns_size.sql",
                    statements: vec![
                        format!("ALTER TABLE {t} ADD COLUMN size INTEGER"),
                        format!("DROP TRIGGER IF EXISTS {on_update_v1}"),
                    ],
                },
                Upgrade {
                    column: "version",
                    probe: probe("version"),
                    migration: "migrations/0003_d1ns_version.sql",
                    statements: vec![format!("ALTER TABLE {t} ADD COLUMN version TEXT")],
                },
            ],
            get: format!(
                "SELECT NULL AS c0, value AS c1, metadata AS c2, expiration AS c3, chunks AS c4, \
                 size AS c5, version AS c6 FROM {t} \
                 WHERE namespace = ?1 AND key = ?2 AND {live} \
                 UNION ALL \
                 SELECT c.part, c.data, NULL, NULL, NULL, NULL, NULL FROM {chunks} AS c \
                 WHERE c.namespace = ?1 AND c.key = ?2 AND {chunk_of_live}"
            ),
            get_bulk: format!(
                "SELECT c.part AS c0, \
                 CASE WHEN c.part IS NULL THEN {inline_value} ELSE c.data END AS c1, \
                 {bulk_columns} \
                 FROM (SELECT namespace, key, value, metadata, chunks, size, expiration, \
                 version FROM {t} WHERE namespace = ?1 AND key = ?2 AND {live} LIMIT 1) AS p \
                 LEFT JOIN {chunks} AS c ON c.namespace = p.namespace \
                 AND c.key = CASE WHEN p.chunks > 0 AND p.size <= ?4 THEN p.key END \
                 AND c.part < p.chunks",
                inline_value = "CASE WHEN octet_length(p.value) <= ?4 THEN p.value END",
            ),
            put: format!(
                "INSERT INTO {t} (namespace, key, value, metadata, expiration, chunks, size, \
                 version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (namespace, key) DO UPDATE SET \
                 value = excluded.value, metadata = excluded.metadata, \
                 expiration = excluded.expiration, chunks = excluded.chunks, \
                 size = excluded.size, version = excluded.version"
            ),
            delete_chunks: format!("DELETE FROM {chunks} WHERE namespace = ?1 AND key = ?2"),
            put_chunk: format!(
                "INSERT OR REPLACE INTO {chunks} (namespace, key, part, data) VALUES (?1, ?2, ?3, ?4)"
            ),
            delete: format!("DELETE FROM {t} WHERE namespace = ?1 AND key = ?2"),
            clear_version: format!(
                "UPDATE {t} SET version = NULL WHERE namespace = ?1 AND key = ?2"
            ),
            list: format!(
                "SELECT key AS c0, expiration AS c1, metadata AS c2 FROM {t} \
                 WHERE namespace = ?1 AND key >= ?2 AND key < ?4 AND {live} \
                 ORDER BY key LIMIT ?5"
            ),
            purge_expired: format!(
                "DELETE FROM {t} WHERE (namespace, key) IN (\
                 SELECT namespace, key FROM {t} \
                 WHERE expiration IS NOT NULL AND expiration <= ?1 \
                 AND (expiration > 0 OR namespace = ?3) LIMIT ?2) \
                 RETURNING 1 AS c0"
            ),
            check: format!(
                "SELECT {fail} AS c0 FROM json_each(?2) AS c \
                 WHERE (SELECT coalesce(e.version, '{ZERO_VERSION}') FROM {t} AS e \
                 WHERE e.namespace = ?1 AND e.key = json_extract(c.value, '$[0]') \
                 AND (e.expiration IS NULL OR e.expiration > ?3)) \
                 IS NOT json_extract(c.value, '$[1]')",
                fail = abort("check", "''", "c.key"),
            ),
            counter: [Counter::Sum, Counter::Min, Counter::Max].map(|op| counter(&t, op)),
            moving: MoveSql {
                get: format!(
                    "SELECT CASE WHEN {live} THEN NULL ELSE -1 END AS c0, \
                     CASE WHEN {live} THEN value END AS c1, metadata AS c2, expiration AS c3, \
                     chunks AS c4, size AS c5, version AS c6 FROM {t} \
                     WHERE namespace = ?1 AND key = ?2 \
                     UNION ALL \
                     SELECT c.part, c.data, NULL, NULL, NULL, NULL, NULL FROM {chunks} AS c \
                     WHERE c.namespace = ?1 AND c.key = ?2 AND {chunk_of_live}"
                ),
                get_bulk: format!(
                    "SELECT CASE WHEN p.live THEN c.part ELSE -1 END AS c0, \
                     CASE WHEN c.part IS NULL THEN {inline_value} ELSE c.data END AS c1, \
                     {bulk_columns} \
                     FROM (SELECT namespace, key, value, metadata, chunks, size, expiration, \
                     version, {live} AS live FROM {t} WHERE namespace = ?1 AND key = ?2 \
                     LIMIT 1) AS p \
                     LEFT JOIN {chunks} AS c ON c.namespace = p.namespace \
                     AND c.key = CASE WHEN p.live AND p.chunks > 0 AND p.size <= ?4 \
                     THEN p.key END AND c.part < p.chunks",
                    inline_value = "CASE WHEN p.live AND octet_length(p.value) <= ?4 \
                                    THEN p.value END",
                ),
                list: format!(
                    "SELECT key AS c0, expiration AS c1, metadata AS c2, {live} AS c3 FROM {t} \
                     WHERE namespace = ?1 AND key >= ?2 AND key < ?4 \
                     ORDER BY key LIMIT ?5"
                ),
                tombstone: format!(
                    "INSERT INTO {t} (namespace, key, value, expiration) VALUES (?1, ?2, '', 0) \
                     ON CONFLICT (namespace, key) DO UPDATE SET value = '', metadata = NULL, \
                     expiration = 0, chunks = NULL, size = NULL"
                ),
                check_absent: format!(
                    "SELECT {fail} AS c0 FROM {t} WHERE namespace = ?1 AND key = ?2",
                    fail = abort("check", "''", "key"),
                ),
                delete_if_unchanged: format!(
                    "DELETE FROM {t} WHERE namespace = ?1 AND key = ?2 AND version IS ?3 \
                     RETURNING 1 AS c0"
                ),
            },
        }
    }

    /// The schema as a script, for `wrangler d1 migrations apply` when auto-create is off.
    pub fn schema_script(&self) -> String {
        script(&self.schema)
    }

    /// The upgrade of a table made by d1ns 0.1, as a script: every step, then the schema (which
    /// adds the new triggers).
    pub fn upgrade_script(&self) -> String {
        self.upgrade_script_from(0)
    }

    /// The upgrade from step `first` on (a table that has the columns of the steps before).
    pub fn upgrade_script_from(&self, first: usize) -> String {
        let steps: String = self.upgrades[first..]
            .iter()
            .map(|step| script(&step.statements))
            .collect();
        steps + &self.schema_script()
    }
}

/// The statement of a sum, min or max (see [`Sql::counter`]). On a live entry, its value must be
/// the decimal text of an `i64` (text or bytes; anything else, a value in chunks included, fails
/// with the marker `not-integer`), and the result must fit (else `overflow`); metadata and
/// expiration stay. A missing or expired entry starts from the operand, with the mutation's
/// metadata and expiration (A13).
fn counter(t: &str, op: Counter) -> String {
    let live = "(expiration IS NULL OR expiration > ?7)";
    let old = "CAST(value AS INTEGER)";
    let operand = "CAST(?3 AS INTEGER)";
    // The text of the integer SQLite reads must be the stored text itself: no sign, spaces,
    // leading zeros, fraction or digits beyond i64.
    let not_integer =
        format!("chunks IS NOT NULL OR CAST({old} AS TEXT) IS NOT CAST(value AS TEXT)");
    let (overflow, result) = match op {
        Counter::Sum => (
            format!(
                "({operand} > 0 AND {old} > 9223372036854775807 - {operand}) \
                 OR ({operand} < 0 AND {old} < (-9223372036854775807 - 1) - {operand})"
            ),
            format!("{old} + {operand}"),
        ),
        Counter::Min => ("0".to_owned(), format!("min({old}, {operand})")),
        Counter::Max => ("0".to_owned(), format!("max({old}, {operand})")),
    };
    let not_integer_abort = abort("not-integer", "?8", "value");
    let overflow_abort = abort("overflow", "?8", "value");
    format!(
        "INSERT INTO {t} (namespace, key, value, metadata, expiration, chunks, size, version) \
         VALUES (?1, ?2, CAST({operand} AS TEXT), ?4, ?5, NULL, NULL, ?6) \
         ON CONFLICT (namespace, key) DO UPDATE SET \
         value = CASE WHEN NOT {live} THEN excluded.value \
         WHEN {not_integer} THEN {not_integer_abort} \
         WHEN {overflow} THEN {overflow_abort} \
         ELSE CAST({result} AS TEXT) END, \
         metadata = CASE WHEN {live} THEN metadata ELSE excluded.metadata END, \
         expiration = CASE WHEN {live} THEN expiration ELSE excluded.expiration END, \
         chunks = NULL, size = NULL, version = excluded.version \
         RETURNING value AS c0"
    )
}

fn script(statements: &[String]) -> String {
    statements
        .iter()
        .map(|statement| format!("{statement};\n"))
        .collect()
}

/// The statements of one typed index (I1-I12): a partial expression index over the JSON field
/// `field` of one namespace's values, and the look-ups through it.
#[derive(Debug)]
pub(crate) struct IndexSql {
    /// Creates the index (`IF NOT EXISTS`); over existing rows too (I9). The look-ups name it
    /// (`INDEXED BY`): without statistics, SQLite would rather walk the namespace's keys in order.
    pub create: String,
    /// `?1` the field's value, `?2` the key to continue after (`''` for the first page), `?3`
    /// now, `?4` the most entries, `?5` the longest value whose chunks come along -> `key, part,
    /// value, metadata, expiration, chunks, size, version`: one row (part `NULL`) per live entry
    /// of the page stored in its row or longer than `?5`, and one row per chunk (its part and
    /// data as `value`, any order) of each other entry stored in chunks, every row with its
    /// entry's other columns, in one statement. Values longer than `?5` are read afterwards, so
    /// that each D1 result stays within 50 MB.
    ///
    /// The page is a subquery that SQLite runs once, as a co-routine, joined to the chunks: D1
    /// counts the index entries it reads (about one per entry, I5) and the chunks. (A CTE used
    /// twice, by a `UNION ALL` of entries and chunks, is materialized, and D1 counts reading it
    /// back in each arm: three rows per entry.) The chunks' key is `NULL` for an entry without
    /// chunks to read, so SQLite does not even seek them.
    pub find: String,
    /// `?1` the field's value, `?2` now: removes the live entries (I6), followed in its batch by
    /// [`CHANGES`], which counts them. D1 counts 2 rows read per entry removed (the index entry
    /// and the row) and 1 more.
    pub delete_where: String,
    /// As [`delete_where`](Self::delete_where) -> `key`: one row per entry removed, for the
    /// edge cache to forget (R8). `RETURNING` costs a row read more per entry.
    pub delete_where_returning: String,
}

/// What the row of a JSON value stored in chunks holds in front of a copy of its indexed fields
/// (see `put.rs`): the copy is then not JSON itself, so an `UPDATE ... SET value =
/// json_set(value, ...)` by hand fails on it, as it always did on such rows, instead of
/// replacing the value by the copy.
pub(crate) const INDEXED_FIELDS_MARK: char = '#';

/// The indexed expression for the JSON field `field` of a value: `NULL` for a value that is not
/// JSON text (bytes, or text that is not JSON), so that no put ever fails because of an index
/// (I10). A value in chunks is read from the copy of its indexed fields that its row keeps
/// behind [`INDEXED_FIELDS_MARK`] (I11).
fn index_expr(field: &str) -> String {
    // A JSON path member in double quotes may hold any character but `"` (refused by the macro)
    // and the SQL string escapes its quotes.
    let path = format!("$.\"{field}\"").replace('\'', "''");
    format!(
        "(CASE WHEN typeof(value) != 'text' THEN NULL \
         WHEN chunks IS NULL THEN CASE WHEN json_valid(value) THEN json_extract(value, '{path}') END \
         WHEN substr(value, 1, 1) = '{INDEXED_FIELDS_MARK}' AND json_valid(substr(value, 2)) \
         THEN json_extract(substr(value, 2), '{path}') END)"
    )
}

/// A short hash of `text` as 8 hex digits (FNV-1a): index names carry one of the exact
/// namespace and field, because SQLite compares names without regard to case (`Users` and
/// `users` would otherwise share an index).
fn name_hash(text: &str) -> String {
    let hash = text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

impl IndexSql {
    /// The statements for the index on `field` of `namespace` in `table`. The namespace is
    /// written into the SQL (a checked identifier, K33, quoted anyway) so that SQLite can tell
    /// that a look-up fits the partial index, which holds only this namespace's rows: other
    /// namespaces in the table pay nothing (I8).
    pub fn new(table: &str, namespace: &str, field: &str) -> IndexSql {
        let t = quote(table);
        let chunks = quote(&format!("{table}$chunks"));
        let hash = name_hash(&format!("{namespace}\0{field}"));
        let index = quote(&format!("{table}$index${namespace}${field}${hash}"));
        let ns = format!("'{}'", namespace.replace('\'', "''"));
        let expr = index_expr(field);
        let live = "(expiration IS NULL OR expiration > ?3)";
        IndexSql {
            create: format!(
                "CREATE INDEX IF NOT EXISTS {index} ON {t} ({expr}, key) \
                 WHERE namespace = {ns} AND {expr} IS NOT NULL"
            ),
            find: format!(
                "SELECT p.key AS c0, c.part AS c1, \
                 CASE WHEN c.part IS NULL THEN p.value ELSE c.data END AS c2, \
                 p.metadata AS c3, p.expiration AS c4, p.chunks AS c5, p.size AS c6, \
                 p.version AS c7 \
                 FROM (SELECT key, value, metadata, expiration, chunks, size, version \
                 FROM {t} INDEXED BY {index} \
                 WHERE namespace = {ns} AND {expr} = ?1 AND key > ?2 AND {live} \
                 ORDER BY key LIMIT ?4) AS p \
                 LEFT JOIN {chunks} AS c ON c.namespace = {ns} \
                 AND c.key = CASE WHEN p.chunks > 0 AND p.size <= ?5 THEN p.key END \
                 AND c.part < p.chunks"
            ),
            delete_where: format!(
                "DELETE FROM {t} INDEXED BY {index} WHERE namespace = {ns} AND {expr} = ?1 \
                 AND (expiration IS NULL OR expiration > ?2)"
            ),
            delete_where_returning: format!(
                "DELETE FROM {t} INDEXED BY {index} WHERE namespace = {ns} AND {expr} = ?1 \
                 AND (expiration IS NULL OR expiration > ?2) RETURNING key AS c0"
            ),
        }
    }
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
