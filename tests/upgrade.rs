//! Tables made by d1ns 0.1 (migrations/0001_d1ns.sql) keep working: upgraded in place on first use
//! with auto-create, or refused with the migration to apply without it.

mod common;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{T0, scratch_db};
use d1ns::{
    Backend, D1Namespace, DatabaseError, ManualClock, QueryResult, SqliteBackend, Statement,
    Versionstamp,
};

/// A database file with the 0.1 schema and rows as 0.1 wrote them: a small value, a 20 KB value
/// in its row, a value in two chunks (no size recorded) with metadata and an expiration.
fn made_by_0_1(name: &str) -> std::path::PathBuf {
    let path = scratch_db(name);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../migrations/0001_d1ns.sql"))
        .unwrap();
    let insert = "INSERT INTO \"_kv_entries\" (namespace, key, value, metadata, expiration, chunks) \
                  VALUES ('', ?1, ?2, ?3, ?4, ?5)";
    conn.execute(
        insert,
        ("small", "s", None::<String>, None::<i64>, None::<i64>),
    )
    .unwrap();
    conn.execute(
        insert,
        (
            "medium",
            "m".repeat(20_000),
            None::<String>,
            None::<i64>,
            None::<i64>,
        ),
    )
    .unwrap();
    conn.execute(
        insert,
        (
            "long",
            "",
            Some("{\"v\":1}"),
            Some(T0 as i64 + 60_000),
            Some(2),
        ),
    )
    .unwrap();
    let chunk = "INSERT INTO \"_kv_entries$chunks\" (namespace, key, part, data) VALUES ('', 'long', ?1, ?2)";
    conn.execute(chunk, (0, "first-")).unwrap();
    conn.execute(chunk, (1, "second")).unwrap();
    path
}

/// The first column of every row `query` returns.
fn strings(path: &Path, query: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn.prepare(query).unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn columns(path: &Path) -> Vec<String> {
    strings(path, "SELECT name FROM pragma_table_info('_kv_entries')")
}

/// The triggers of this version's schema.
const ALL_TRIGGERS: [&str; 4] = [
    "_kv_entries$chunks_on_delete",
    "_kv_entries$chunks_on_edit",
    "_kv_entries$version_on_edit",
    "_kv_entries$version_on_insert",
];

fn triggers(path: &Path) -> Vec<String> {
    strings(
        path,
        "SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
    )
}

async fn reads_as_0_1_wrote_it<B: Backend + Send + Sync + 'static>(kv: &D1Namespace<B>) {
    assert_eq!(kv.get("small").text().await.unwrap().as_deref(), Some("s"));
    assert_eq!(
        kv.get("medium").text().await.unwrap(),
        Some("m".repeat(20_000))
    );
    let (long, meta) = kv
        .get("long")
        .text_with_metadata::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(long.as_deref(), Some("first-second"));
    assert_eq!(meta, Some(serde_json::json!({"v": 1})));
    let bulk = kv
        .get_bulk(&["small", "medium", "long"])
        .text()
        .await
        .unwrap();
    assert_eq!(bulk["long"].as_deref(), Some("first-second"));
    assert_eq!(bulk["medium"], Some("m".repeat(20_000)));
    let names: Vec<String> = kv
        .list()
        .await
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.name)
        .collect();
    // (A 0.2 table has one more row, `sized`.)
    let names: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| *name != "sized")
        .collect();
    assert_eq!(names, ["long", "medium", "small"]);
}

#[tokio::test]
async fn a_0_1_table_is_upgraded_in_place_on_first_use_and_keeps_its_entries() {
    let path = made_by_0_1("upgrade_auto");
    assert!(!columns(&path).contains(&"size".to_string()));
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    reads_as_0_1_wrote_it(&kv).await;
    assert!(columns(&path).contains(&"size".to_string()));
    assert_eq!(triggers(&path), ALL_TRIGGERS);
    // Writes of every kind work on the upgraded table, over the old rows too.
    kv.put("long", "x".repeat(5_000).as_str())
        .unwrap()
        .await
        .unwrap();
    kv.put("small", "y".repeat(5_000).as_str())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        kv.get("long").text().await.unwrap(),
        Some("x".repeat(5_000))
    );
    assert_eq!(
        kv.get("small").text().await.unwrap(),
        Some("y".repeat(5_000))
    );
    kv.delete("long").await.unwrap();
    kv.delete("small").await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let chunks: i64 = conn
        .query_row("SELECT count(*) FROM \"_kv_entries$chunks\"", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(chunks, 0, "no chunks left behind");
}

#[tokio::test]
async fn a_second_process_meeting_an_upgraded_table_goes_on() {
    let path = made_by_0_1("upgrade_twice");
    for _ in 0..2 {
        // Each backend is a process that has not seen the table yet.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let kv = D1Namespace::builder(SqliteBackend::from_connection(conn).unwrap())
            .clock(ManualClock::new(T0))
            .build()
            .unwrap();
        reads_as_0_1_wrote_it(&kv).await;
    }
}

/// A backend whose first statement fails as on a 0.1 table, although another process has
/// upgraded it already: the upgrade then meets the column it would add.
struct LateUpgrade {
    inner: SqliteBackend,
    failed_once: AtomicBool,
    /// The column the first statement says is missing.
    column: &'static str,
}

impl Backend for LateUpgrade {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let fail = !self.failed_once.swap(true, Ordering::SeqCst);
        let result = if fail {
            Err(DatabaseError::new(format!(
                "no such column: {}",
                self.column
            )))
        } else {
            futures_lite(self.inner.batch(statements))
        };
        std::future::ready(result)
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

/// SqliteBackend's futures are ready at once.
fn futures_lite<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("SqliteBackend answers at once"),
    }
}

/// Opens `path`, which another process has upgraded first, through a backend whose first
/// statement fails as if the table still lacked `column`: the upgrade meets that column and goes on.
async fn upgrade_after_another_process(path: &Path, column: &'static str) {
    let first = D1Namespace::builder(SqliteBackend::open(path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    reads_as_0_1_wrote_it(&first).await;
    let late = LateUpgrade {
        inner: SqliteBackend::from_connection(rusqlite::Connection::open(path).unwrap()).unwrap(),
        failed_once: AtomicBool::new(false),
        column,
    };
    let kv = D1Namespace::builder(late)
        .table("_kv_entries")
        .build()
        .unwrap();
    kv.put("k", "v").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn an_upgrade_that_another_process_did_first_is_success() {
    upgrade_after_another_process(&made_by_0_1("upgrade_race"), "size").await;
}

#[tokio::test]
async fn without_auto_create_a_0_1_table_is_refused_naming_the_migration_until_it_is_applied() {
    let path = made_by_0_1("upgrade_manual");
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .auto_create(false)
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    let error = kv.put("k", "v").unwrap().await.unwrap_err().to_string();
    assert!(
        error.contains("migrations/0002_d1ns_size.sql then migrations/0003_d1ns_version.sql"),
        "{error}"
    );
    assert!(error.contains("upgrade_sql()"), "{error}");
    assert!(
        !columns(&path).contains(&"size".to_string()),
        "nothing changed"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../migrations/0002_d1ns_size.sql"))
        .unwrap();
    // Half way: a 0.2 table, which needs 0003 only.
    let error = kv.put("k", "v").unwrap().await.unwrap_err().to_string();
    assert!(error.contains("made by d1ns 0.2"), "{error}");
    assert!(!error.contains("0002"), "{error}");
    assert!(
        error.contains("migrations/0003_d1ns_version.sql"),
        "{error}"
    );
    assert!(error.contains("upgrade_sql_from_0_2()"), "{error}");
    // A commit with a check says so too, rather than "a check failed".
    let commit = kv
        .atomic()
        .check("absent", None)
        .put("absent", 1)
        .commit()
        .await;
    assert!(
        matches!(&commit, Err(e) if e.to_string().contains("0003_d1ns_version.sql")),
        "{commit:?}"
    );
    conn.execute_batch(include_str!("../migrations/0003_d1ns_version.sql"))
        .unwrap();
    reads_as_0_1_wrote_it(&kv).await;
    kv.put("k", "v").unwrap().await.unwrap();
}

#[tokio::test]
async fn any_first_operation_upgrades_a_0_1_table_whole_never_half() {
    for first in ["list", "delete", "purge"] {
        let path = made_by_0_1(&format!("upgrade_first_{first}"));
        let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
            .clock(ManualClock::new(T0))
            .build()
            .unwrap();
        match first {
            "list" => drop(kv.list().await.unwrap()),
            "delete" => kv.delete("absent").await.unwrap(),
            _ => drop(kv.purge_expired(10).await.unwrap()),
        }
        assert!(columns(&path).contains(&"size".to_string()), "{first}");
        assert_eq!(triggers(&path), ALL_TRIGGERS, "{first}");
        // Writes by hand that name the new trigger's columns work at once.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "UPDATE _kv_entries SET value = 'hand', chunks = NULL, size = NULL WHERE key = 'long'",
            )
            .unwrap();
        assert_eq!(
            kv.get("long").text().await.unwrap().as_deref(),
            Some("hand")
        );
    }
}

// ---- Tables made before versionstamps (A16) ------------------------------------------------

/// A database file with the 0.2 schema (0001 then 0002), with 0.1's rows, and one row as 0.2
/// writes a value in chunks (with its size).
fn made_by_0_2(name: &str) -> std::path::PathBuf {
    let path = made_by_0_1(name);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../migrations/0002_d1ns_size.sql"))
        .unwrap();
    conn.execute_batch(
        "INSERT INTO \"_kv_entries\" (namespace, key, value, chunks, size) \
         VALUES ('', 'sized', '', 2, 4); \
         INSERT INTO \"_kv_entries$chunks\" (namespace, key, part, data) \
         VALUES ('', 'sized', 0, 'ab'), ('', 'sized', 1, 'cd');",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a16_a_0_2_table_is_upgraded_in_place_and_its_entries_read_with_the_zero_stamp() {
    let path = made_by_0_2("a16_auto");
    assert!(!columns(&path).contains(&"version".to_string()));
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    reads_as_0_1_wrote_it(&kv).await;
    assert_eq!(
        kv.get("sized").text().await.unwrap().as_deref(),
        Some("abcd")
    );
    assert!(columns(&path).contains(&"version".to_string()));
    assert_eq!(triggers(&path), ALL_TRIGGERS);
    // Old entries carry the zero stamp until written, and it works in a check.
    let entry = kv
        .get("long")
        .text_entry::<serde_json::Value>()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.version, Versionstamp::ZERO);
    let committed = kv
        .atomic()
        .check("long", Some(Versionstamp::ZERO))
        .put("long", "new")
        .commit()
        .await
        .unwrap()
        .unwrap();
    assert_ne!(committed, Versionstamp::ZERO);
    let entry = kv.get("long").text_entry::<()>().await.unwrap().unwrap();
    assert_eq!((entry.value.as_str(), entry.version), ("new", committed));
    assert_eq!(
        kv.atomic()
            .check("long", Some(Versionstamp::ZERO))
            .put("long", "stale")
            .commit()
            .await
            .unwrap(),
        None
    );
    // Counters work over old rows too.
    kv.put("n", 1).unwrap().await.unwrap();
    assert_eq!(kv.increment("n", 1).await.unwrap(), 2);
}

#[tokio::test]
async fn a16_a_0_1_table_is_upgraded_through_both_steps_at_once() {
    let path = made_by_0_1("a16_from_0_1");
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    let entry = kv.get("small").text_entry::<()>().await.unwrap().unwrap();
    assert_eq!(entry.version, Versionstamp::ZERO);
    let cols = columns(&path);
    assert!(cols.contains(&"size".to_string()) && cols.contains(&"version".to_string()));
    assert_eq!(triggers(&path), ALL_TRIGGERS);
}

#[tokio::test]
async fn a16_an_upgrade_from_0_2_that_another_process_did_first_is_success() {
    upgrade_after_another_process(&made_by_0_2("a16_race"), "version").await;
}

#[tokio::test]
async fn a16_writes_that_know_nothing_of_versions_still_change_the_stamp() {
    // A process still on 0.2 (or a hand edit) writes after the upgrade: the triggers give the
    // entry a new stamp, so a check made before it fails.
    let path = made_by_0_2("a16_old_writer");
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    kv.put("k", "mine").unwrap().await.unwrap();
    let seen = kv
        .get("k")
        .text_entry::<()>()
        .await
        .unwrap()
        .unwrap()
        .version;
    let old_writer = rusqlite::Connection::open(&path).unwrap();
    // d1ns 0.2's put, word for word: it does not name the version column.
    old_writer
        .execute(
            "INSERT INTO \"_kv_entries\" (namespace, key, value, metadata, expiration, chunks, size) \
             VALUES ('', 'k', 'theirs', NULL, NULL, NULL, NULL) \
             ON CONFLICT (namespace, key) DO UPDATE SET \
             value = excluded.value, metadata = excluded.metadata, \
             expiration = excluded.expiration, chunks = excluded.chunks, size = excluded.size",
            [],
        )
        .unwrap();
    let now = kv.get("k").text_entry::<()>().await.unwrap().unwrap();
    assert_eq!(now.value, "theirs");
    assert_ne!(now.version, seen);
    assert_ne!(now.version, Versionstamp::ZERO);
    assert_eq!(
        kv.atomic()
            .check("k", Some(seen))
            .put("k", "lost update")
            .commit()
            .await
            .unwrap(),
        None
    );
    // A row inserted by hand without a version gets one, and so does a hand edit of metadata.
    old_writer
        .execute(
            "INSERT INTO \"_kv_entries\" (namespace, key, value) VALUES ('', 'hand', 'v')",
            [],
        )
        .unwrap();
    let hand = kv
        .get("hand")
        .text_entry::<()>()
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_ne!(hand, Versionstamp::ZERO);
    old_writer
        .execute(
            "UPDATE \"_kv_entries\" SET metadata = '1' WHERE key = 'hand'",
            [],
        )
        .unwrap();
    assert_ne!(
        kv.get("hand")
            .text_entry::<d1ns::NoMetadata>()
            .await
            .unwrap()
            .unwrap()
            .version,
        hand
    );
    // A version set to something d1ns did not write is a clear error, not a panic.
    old_writer
        .execute(
            "UPDATE \"_kv_entries\" SET version = 'oops' WHERE key = 'hand'",
            [],
        )
        .unwrap();
    let error = kv
        .get("hand")
        .text_entry::<d1ns::NoMetadata>()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"hand\"") && error.contains("NULL"),
        "{error}"
    );
    // Plain reads are unaffected.
    assert_eq!(kv.get("hand").text().await.unwrap().as_deref(), Some("v"));
}

// ---- Tables d1ns did not make --------------------------------------------------------------

/// d1-namespace 1.1.x: one table per namespace, `{namespace}_kv_entries` (so `_kv_entries` for
/// the namespace ""), expirations in seconds, metadata as the JSON text's bytes.
const D1_NAMESPACE_1_1: &str = "CREATE TABLE IF NOT EXISTS _kv_entries (\
    key TEXT NOT NULL COLLATE BINARY PRIMARY KEY, value BLOB NOT NULL, expiration INTEGER, \
    metadata BLOB) WITHOUT ROWID; \
    CREATE INDEX IF NOT EXISTS _kv_entries_expiration ON _kv_entries (expiration);";

/// d1-namespace 1.0.x: every namespace in one table `kv`, with a generated `expires_at`.
const D1_NAMESPACE_1_0: &str = "CREATE TABLE IF NOT EXISTS kv (\
    namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, ttl_seconds INTEGER, \
    created_at INTEGER NOT NULL, metadata BLOB, \
    expires_at INTEGER GENERATED ALWAYS AS (created_at + ttl_seconds) VIRTUAL, \
    PRIMARY KEY (namespace, key)); \
    CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at);";

/// The whole schema of a database file, as SQLite keeps it.
fn schema_of(path: &Path) -> Vec<String> {
    strings(
        path,
        "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name",
    )
}

#[tokio::test]
async fn another_programs_table_is_never_changed_and_the_error_says_what_to_do() {
    for (layout, ddl, table, insert) in [
        (
            "d1-namespace 1.1",
            D1_NAMESPACE_1_1,
            "_kv_entries",
            "INSERT INTO _kv_entries (key, value, expiration, metadata) VALUES ('k', 'v', NULL, NULL)",
        ),
        (
            "d1-namespace 1.0",
            D1_NAMESPACE_1_0,
            "kv",
            "INSERT INTO kv (namespace, key, value, ttl_seconds, created_at) VALUES ('', 'k', 'v', NULL, 1)",
        ),
    ] {
        let path = scratch_db(&format!("foreign-{table}"));
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(ddl).unwrap();
        conn.execute(insert, ()).unwrap();
        let before = schema_of(&path);
        for auto_create in [true, false] {
            let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
                .table(table)
                .auto_create(auto_create)
                .clock(ManualClock::new(T0))
                .build()
                .unwrap();
            let get = kv.get("k").text().await.unwrap_err().to_string();
            let put = kv.put("k2", "v").unwrap().await.unwrap_err().to_string();
            let list = kv.list().await.unwrap_err().to_string();
            // Statements that name only columns the other table happens to have too.
            let delete = kv.delete("k").await.unwrap_err().to_string();
            let purge = kv.purge_expired(100).await.unwrap_err().to_string();
            let commit = kv
                .atomic()
                .delete("k")
                .commit()
                .await
                .unwrap_err()
                .to_string();
            for (what, text) in [
                ("get", &get),
                ("put", &put),
                ("list", &list),
                ("delete", &delete),
                ("purge_expired", &purge),
                ("commit", &commit),
            ] {
                assert!(
                    text.contains(&format!("table {table:?} is not a d1ns table"))
                        && text.contains(".table("),
                    "{layout}, auto_create {auto_create}, {what}: {text}"
                );
            }
            assert_eq!(
                schema_of(&path),
                before,
                "{layout}: the schema is untouched"
            );
            let rows = strings(
                &path,
                &format!("SELECT CAST(count(*) AS TEXT) FROM {table}"),
            );
            assert_eq!(
                rows,
                ["1"],
                "{layout}: the other program's rows are untouched"
            );
        }
        // The other program goes on writing its table as before.
        conn.execute(&insert.replace("'k'", "'k3'"), ()).unwrap();
    }
}
