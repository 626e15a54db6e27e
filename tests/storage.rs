//! Namespaces and tables (K32-K34), the cost rules (one round trip per operation, no table
//! scans), persistence, purging and use from multi-threaded runtimes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, T0, kv, scratch_db};
use d1ns::{D1Namespace, Error, ManualClock, NameKind, NameProblem, SqliteBackend};
use serde_json::{Value, json};

fn namespace<B: d1ns::Backend>(backend: B, name: &str, table: Option<&str>) -> D1Namespace<B> {
    let mut builder = D1Namespace::builder(backend)
        .namespace(name)
        .clock(ManualClock::new(T0));
    if let Some(table) = table {
        builder = builder.table(table);
    }
    builder.build().unwrap()
}

fn table_names(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The statements of a first operation: six that create the schema, one that checks it is this
/// version's, then the operation's.
const WITH_SCHEMA: usize = 10;

// ---- K32: namespaces and tables ------------------------------------------------------------

#[tokio::test]
async fn k32_default_tables_are_named_after_the_namespace() {
    let path = scratch_db("k32_default_tables");
    let backend = Arc::new(SqliteBackend::open(&path).unwrap());
    let default = D1Namespace::new(backend.clone());
    let sessions = namespace(backend.clone(), "sessions", None);
    assert_eq!((default.namespace(), default.table()), ("", "_kv_entries"));
    assert_eq!(sessions.table(), "sessions_kv_entries");
    default.put("k", "v").unwrap().await.unwrap();
    sessions.put("k", "v").unwrap().await.unwrap();
    assert_eq!(
        table_names(&path),
        [
            "_kv_entries",
            "_kv_entries$chunks",
            "sessions_kv_entries",
            "sessions_kv_entries$chunks"
        ]
    );
}

#[tokio::test]
async fn k32_namespaces_sharing_a_table_never_see_each_other() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let a = namespace(backend.clone(), "alpha", Some("shared_kv"));
    let b = namespace(backend.clone(), "beta", Some("shared_kv"));
    a.put("k", "from a")
        .unwrap()
        .metadata(1)
        .unwrap()
        .await
        .unwrap();
    b.put("k", "from b").unwrap().await.unwrap();
    a.put("only-a", "x").unwrap().await.unwrap();

    assert_eq!(a.get("k").text().await.unwrap().as_deref(), Some("from a"));
    assert_eq!(
        b.get("k").text_with_metadata::<u8>().await.unwrap(),
        (Some("from b".into()), None)
    );
    assert_eq!(b.get("only-a").text().await.unwrap(), None);
    assert_eq!(
        b.get_bulk(&["k", "only-a"]).text().await.unwrap()["only-a"],
        None
    );
    let b_keys = common::names(&b, "").await;
    assert_eq!(b_keys, ["k"]);

    b.delete("k").await.unwrap();
    assert_eq!(a.get("k").text().await.unwrap().as_deref(), Some("from a"));
    assert_eq!(a.list().await.unwrap().keys.len(), 2);
}

#[tokio::test]
async fn k32_one_namespace_in_two_tables_is_two_stores() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let one = namespace(backend.clone(), "ns", Some("table_one"));
    let two = namespace(backend.clone(), "ns", Some("table_two"));
    one.put("k", "1").unwrap().await.unwrap();
    assert_eq!(two.get("k").text().await.unwrap(), None);
}

// ---- K33: names ----------------------------------------------------------------------------

fn build(namespace: &str, table: Option<&str>) -> Result<D1Namespace<SqliteBackend>, Error> {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let mut builder = D1Namespace::builder(backend).namespace(namespace);
    if let Some(table) = table {
        builder = builder.table(table);
    }
    builder.build()
}

#[test]
fn k33_names_must_be_plain_identifiers_and_not_reserved() {
    for bad in [
        "1abc",
        "a-b",
        "a b",
        "é",
        "x\"; DROP TABLE t; --",
        "_cf_kv",
        "_CFx",
        "sqlite_x",
        "SQLITE_t",
    ] {
        match build(bad, Some("t")) {
            Err(Error::InvalidName {
                kind: NameKind::Namespace,
                name,
                ..
            }) => assert_eq!(name, bad),
            other => panic!("namespace {bad:?} was accepted: {other:?}"),
        }
        match build("ns", Some(bad)) {
            Err(Error::InvalidName {
                kind: NameKind::Table,
                name,
                ..
            }) => assert_eq!(name, bad),
            other => panic!("table {bad:?} was accepted: {other:?}"),
        }
    }
    assert!(matches!(
        build("ns", Some("")),
        Err(Error::InvalidName {
            kind: NameKind::Table,
            ..
        })
    ));
    let at_limit = "t".repeat(64);
    assert!(build("ns", Some(&at_limit)).is_ok());
    assert!(build("ns", Some(&"t".repeat(65))).is_err());
    assert!(build("_private", None).is_ok());
    assert!(build("Sessions2", None).is_ok());
}

#[test]
fn k33_namespaces_are_at_most_53_characters_so_their_default_table_fits_in_64() {
    let longest = "n".repeat(53);
    let kv = build(&longest, None).unwrap();
    assert_eq!(kv.table().len(), 64);
    for table in [None, Some("t")] {
        let error = build(&"n".repeat(54), table).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::InvalidName {
                    kind: NameKind::Namespace,
                    problem: NameProblem::TooLong(NameKind::Namespace),
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().ends_with(
                "it is longer than 53 characters, so its default table \
                 `{namespace}_kv_entries` would be longer than 64"
            ),
            "{error}"
        );
    }
}

// ---- K34: auto-create ----------------------------------------------------------------------

#[tokio::test]
async fn k34_table_is_created_in_the_same_round_trip_as_the_first_operation() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = namespace(recorder.clone(), "first", None);
    kv.put("k", "v").unwrap().await.unwrap();
    let batches = recorder.batches();
    assert_eq!(batches.len(), 1, "one round trip");
    let sql: Vec<&str> = batches[0].iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sql.len(), WITH_SCHEMA);
    assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS \"first_kv_entries\""));
    assert!(sql[1].starts_with("CREATE INDEX IF NOT EXISTS"));
    assert!(sql[2].starts_with("CREATE TABLE IF NOT EXISTS \"first_kv_entries$chunks\""));
    assert!(sql[3].starts_with("CREATE UNIQUE INDEX IF NOT EXISTS"));
    assert!(sql[4].starts_with("CREATE TRIGGER IF NOT EXISTS"));
    assert!(sql[5].starts_with("CREATE TRIGGER IF NOT EXISTS"));
    assert!(sql[6].starts_with("CREATE TRIGGER IF NOT EXISTS"));
    assert!(sql[7].starts_with("CREATE TRIGGER IF NOT EXISTS"));
    assert!(sql[8].starts_with("SELECT size"));
    assert!(sql[9].starts_with("INSERT INTO"));

    recorder.clear();
    kv.get("k").text().await.unwrap();
    assert_eq!(recorder.batches().len(), 1);
    assert_eq!(
        recorder.batches()[0].len(),
        1,
        "no schema statements once the table exists"
    );
}

#[tokio::test]
async fn k34_a_fresh_namespace_per_request_sends_no_schema_after_the_first() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    for request in 0..5 {
        // The workers-rs pattern: a new D1Namespace in every request.
        let kv = namespace(recorder.clone(), "per_request", None);
        kv.put(&format!("k{request}"), "v").unwrap().await.unwrap();
    }
    let sizes: Vec<usize> = recorder.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, [WITH_SCHEMA, 1, 1, 1, 1]);
}

#[tokio::test]
async fn k34_the_same_table_name_in_two_databases_is_two_tables() {
    let one = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let two = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    namespace(one.clone(), "twin", None)
        .put("k", "1")
        .unwrap()
        .await
        .unwrap();
    let kv_two = namespace(two.clone(), "twin", None);
    kv_two.put("k", "2").unwrap().await.unwrap();
    assert_eq!(
        two.batches()[0].len(),
        WITH_SCHEMA,
        "the second database gets its own table"
    );
    assert_eq!(kv_two.get("k").text().await.unwrap().as_deref(), Some("2"));
}

#[tokio::test]
async fn k34_a_table_dropped_by_hand_is_created_again_and_the_operation_retried() {
    let path = scratch_db("k34_dropped");
    let recorder = Recorder::new(SqliteBackend::open(&path).unwrap());
    let kv = namespace(recorder.clone(), "dropped", None);
    kv.put("k", "v").unwrap().await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE dropped_kv_entries")
        .unwrap();

    recorder.clear();
    kv.put("k", "again").unwrap().await.unwrap();
    let sizes: Vec<usize> = recorder.batches().iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [1, WITH_SCHEMA],
        "one failed attempt, then schema + operation"
    );
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("again"));
    // Other namespaces on the same table learn it exists again.
    recorder.clear();
    namespace(recorder.clone(), "dropped", None)
        .get("k")
        .text()
        .await
        .unwrap();
    assert_eq!(recorder.batches()[0].len(), 1);
}

#[tokio::test]
async fn k34_a_failed_creation_is_retried_never_cached() {
    let path = scratch_db("k34_failed_creation");
    // A table of the same name without the `expiration` column: creating the index fails.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE broken_kv_entries (namespace TEXT, key TEXT)")
        .unwrap();
    let recorder = Recorder::new(SqliteBackend::open(&path).unwrap());
    let kv = namespace(recorder.clone(), "broken", None);
    for _ in 0..2 {
        let error = kv.put("k", "v").unwrap().execute().await.unwrap_err();
        assert!(matches!(error, Error::Database(_)), "{error:?}");
        // A table without d1ns's columns is another program's: said so, and never changed.
        assert!(error.to_string().contains("is not a d1ns table"), "{error}");
    }
    let sizes: Vec<usize> = recorder.batches().iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [WITH_SCHEMA, 1, WITH_SCHEMA, 1],
        "each attempt tries to create the schema again (then reads which columns are missing)"
    );

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE broken_kv_entries")
        .unwrap();
    kv.put("k", "v").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn k34_without_auto_create_a_missing_table_is_an_error_until_migrated() {
    let path = scratch_db("k34_no_auto_create");
    let backend = Arc::new(SqliteBackend::open(&path).unwrap());
    let kv = D1Namespace::builder(backend.clone())
        .namespace("manual")
        .auto_create(false)
        .build()
        .unwrap();
    let error = kv.put("k", "v").unwrap().execute().await.unwrap_err();
    match &error {
        Error::Database(e) => assert!(e.is_missing_table(), "{e}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    assert!(table_names(&path).is_empty(), "nothing was created");

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&kv.schema_sql())
        .unwrap();
    kv.put("k", "v").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

/// Every schema object of the database at `path`, as SQLite stores it.
fn schema_of(conn: &rusqlite::Connection) -> Vec<(String, String, String)> {
    let mut statement = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_migration_files_applied_in_order_give_the_schema_of_the_default_table() {
    let kv = D1Namespace::new(SqliteBackend::open_in_memory().unwrap());
    let migrated = rusqlite::Connection::open_in_memory().unwrap();
    migrated
        .execute_batch(include_str!("../migrations/0001_d1ns.sql"))
        .unwrap();
    migrated
        .execute_batch(include_str!("../migrations/0002_d1ns_size.sql"))
        .unwrap();
    migrated
        .execute_batch(include_str!("../migrations/0003_d1ns_version.sql"))
        .unwrap();
    let fresh = rusqlite::Connection::open_in_memory().unwrap();
    fresh.execute_batch(&kv.schema_sql()).unwrap();
    assert_eq!(schema_of(&migrated), schema_of(&fresh));
    // 0003 is the upgrade from 0.2 that d1ns runs itself, for the default table.
    let normalize = |sql: &str| -> String {
        let code: Vec<&str> = sql.lines().filter(|line| !line.starts_with("--")).collect();
        code.join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        normalize(include_str!("../migrations/0003_d1ns_version.sql")),
        normalize(&kv.upgrade_sql_from_0_2())
    );
}

#[test]
fn the_example_workers_migrations_give_the_schema_of_its_namespaces() {
    let migrated = rusqlite::Connection::open_in_memory().unwrap();
    for migration in [
        include_str!("../examples/worker/migrations/0001_d1ns.sql"),
        include_str!("../examples/worker/migrations/0002_d1ns_size.sql"),
        include_str!("../examples/worker/migrations/0003_d1ns_version.sql"),
        include_str!("../examples/worker/migrations/0004_d1ns_sessions_index.sql"),
    ] {
        migrated.execute_batch(migration).unwrap();
    }
    let fresh = rusqlite::Connection::open_in_memory().unwrap();
    for namespace in ["", "limits"] {
        let kv = D1Namespace::builder(SqliteBackend::open_in_memory().unwrap())
            .namespace(namespace)
            .build()
            .unwrap();
        fresh.execute_batch(&kv.schema_sql()).unwrap();
    }
    // The Worker's sessions, with the index it declares.
    #[d1ns::d1_namespace(name = "sessions", index(user_id))]
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Session {
        user_id: u64,
    }
    let sessions = Session::namespace(SqliteBackend::open_in_memory().unwrap());
    fresh.execute_batch(&sessions.raw().schema_sql()).unwrap();
    assert_eq!(schema_of(&migrated), schema_of(&fresh));
}

// ---- Persistence ---------------------------------------------------------------------------

#[tokio::test]
async fn a_connection_opened_with_the_reexported_rusqlite_can_be_handed_over() {
    // The caller needs no rusqlite dependency of its own, matched by hand to d1ns's version.
    let connection = d1ns::rusqlite::Connection::open_in_memory().unwrap();
    let kv = D1Namespace::new(SqliteBackend::from_connection(connection).unwrap());
    kv.put("k", "v").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a_persisted_sqlite_file_keeps_its_entries_when_reopened() {
    let path = scratch_db("reopen");
    {
        let kv = namespace(SqliteBackend::open(&path).unwrap(), "keep", None);
        kv.put("text", "v")
            .unwrap()
            .metadata(json!({"m": true}))
            .unwrap()
            .await
            .unwrap();
        kv.put_bytes("bytes", &[0, 1, 255])
            .unwrap()
            .expiration_ttl(3600)
            .await
            .unwrap();
    }
    let kv = namespace(SqliteBackend::open(&path).unwrap(), "keep", None);
    let (text, meta) = kv.get("text").text_with_metadata::<Value>().await.unwrap();
    assert_eq!(
        (text.as_deref(), meta),
        (Some("v"), Some(json!({"m": true})))
    );
    assert_eq!(
        kv.get("bytes").bytes().await.unwrap(),
        Some(vec![0, 1, 255])
    );
    assert_eq!(
        kv.list().await.unwrap().keys[0].expiration,
        Some(T0 / 1000 + 3600)
    );
}

#[tokio::test]
async fn values_are_plain_sql_text_and_blobs() {
    let path = scratch_db("plain_sql");
    let kv = namespace(SqliteBackend::open(&path).unwrap(), "plain", None);
    kv.put("user", json!({"id": 7})).unwrap().await.unwrap();
    kv.put_bytes("raw", b"\x00\x01").unwrap().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (kind, id): (String, i64) = conn
        .query_row(
            "SELECT typeof(value), json_extract(value, '$.id') FROM plain_kv_entries WHERE key = 'user'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), id), ("text", 7));
    let kind: String = conn
        .query_row(
            "SELECT typeof(value) FROM plain_kv_entries WHERE key = 'raw'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kind, "blob");
}

// ---- Expired rows: reads never write, purge_expired removes -------------------------------

#[tokio::test]
async fn k31a_reads_of_expired_keys_write_nothing_and_purge_removes_them_in_bounded_steps() {
    let path = scratch_db("purge");
    let clock = ManualClock::new(T0);
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .namespace("purge")
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..5 {
        kv.put(&format!("old{i}"), "v")
            .unwrap()
            .expiration_ttl(1)
            .await
            .unwrap();
    }
    kv.put("live", "v").unwrap().await.unwrap();
    kv.put("later", "v")
        .unwrap()
        .expiration_ttl(60)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));

    let rows = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT count(*) FROM purge_kv_entries", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(kv.get("old0").text().await.unwrap(), None);
    kv.get_bulk(&["old1", "old2"]).text().await.unwrap();
    kv.list().await.unwrap();
    assert_eq!(rows(), 7, "reads left the expired rows in place");

    assert_eq!(kv.purge_expired(3).await.unwrap(), 3);
    assert_eq!(kv.purge_expired(100).await.unwrap(), 2);
    assert_eq!(kv.purge_expired(100).await.unwrap(), 0);
    assert_eq!(rows(), 2);
    assert_eq!(kv.get("later").text().await.unwrap().as_deref(), Some("v"));
}

// ---- Cost rules ----------------------------------------------------------------------------

/// Every operation of the API, on `kv`, in steady state.
async fn every_operation<B: d1ns::Backend + Send + Sync + 'static>(kv: &D1Namespace<B>) {
    kv.put("a", "1").unwrap().await.unwrap();
    kv.put("b", json!({"x": 1}))
        .unwrap()
        .expiration_ttl(5)
        .metadata(1)
        .unwrap()
        .await
        .unwrap();
    kv.put_bytes("c", b"\x00")
        .unwrap()
        .expiration(T0 / 1000 + 50)
        .await
        .unwrap();
    kv.get("a").text().await.unwrap();
    kv.get("b")
        .json_with_metadata::<Value, Value>()
        .await
        .unwrap();
    kv.get("c").bytes().await.unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("bulk{i}")).collect();
    kv.get_bulk(&keys).text().await.unwrap();
    kv.get_bulk(&["a", "b"])
        .text_with_metadata::<Value>()
        .await
        .unwrap();
    kv.list().await.unwrap();
    let page = kv.list().prefix(String::new()).limit(1).await.unwrap();
    kv.list()
        .prefix("a".to_string())
        .cursor(page.cursor.unwrap())
        .await
        .unwrap();
    kv.delete("a").await.unwrap();
    kv.purge_expired(10).await.unwrap();
}

#[tokio::test]
async fn every_operation_is_one_round_trip_of_one_statement_with_at_most_100_parameters() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = namespace(recorder.clone(), "cost", None);
    kv.get("warm-up").text().await.unwrap();
    recorder.clear();
    every_operation(&kv).await;
    let batches = recorder.batches();
    assert_eq!(batches.len(), 13, "one round trip per operation");
    let bulk = |sql: &str| sql.starts_with("SELECT c.part AS c0, CASE WHEN c.part IS NULL");
    for batch in &batches {
        // A get_bulk is one statement per distinct key, in its one batch (D1 then counts the
        // rows each key reads, not the key list): 100 and 2 statements here.
        let statements = match batch.iter().all(|(sql, _)| bulk(sql)) {
            true => [100, 2]
                .into_iter()
                .find(|n| *n == batch.len())
                .unwrap_or(1),
            false => 1,
        };
        assert_eq!(batch.len(), statements, "statements: {}", batch[0].0);
        for (sql, params) in batch {
            assert!(*params <= 100, "too many parameters: {sql}");
        }
    }
}

#[tokio::test]
async fn no_statement_scans_the_table() {
    let path = scratch_db("query_plans");
    let recorder = Recorder::new(SqliteBackend::open(&path).unwrap());
    let kv = namespace(recorder.clone(), "plans", Some("plans_table"));
    every_operation(&kv).await;
    kv.put("fill", "v").unwrap().await.unwrap();
    // Values stored in chunks: written, overwritten both ways, read, bulk-read, deleted, purged.
    let long = "x".repeat(d1ns::limits::MAX_CHUNK_BYTES + 1);
    kv.put("long", long.as_str()).unwrap().await.unwrap();
    kv.put("long", long.as_str())
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    kv.get("long").text().await.unwrap();
    kv.get_bulk(&["long", "a"]).text().await.unwrap();
    kv.put("long", "short").unwrap().await.unwrap();
    kv.put_bytes("long", long.as_bytes())
        .unwrap()
        .await
        .unwrap();
    kv.delete("long").await.unwrap();
    let mut statements: Vec<String> = recorder
        .batches()
        .into_iter()
        .flatten()
        .map(|(sql, _)| sql)
        .collect();
    statements.sort();
    statements.dedup();
    assert!(statements.len() >= 8, "{statements:#?}");

    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in &statements {
        let lower = sql.to_lowercase();
        assert!(!lower.contains(" like "), "LIKE in {sql}");
        assert!(
            !lower.contains("unixepoch") && !lower.contains("'now'"),
            "SQL clock in {sql}"
        );
        if lower.starts_with("create") {
            continue;
        }
        // The D1 backend reads a row's values by these names, not by JavaScript's property order.
        let names: Vec<String> = conn
            .prepare(sql)
            .unwrap()
            .column_names()
            .map(str::to_owned)
            .collect();
        let positional: Vec<String> = (0..names.len()).map(|i| format!("c{i}")).collect();
        assert_eq!(names, positional, "{sql}");
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters stay unbound (NULL): the plan depends on the statement, not the values.
        let mut rows = explain.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push(row.get::<_, String>(3).unwrap());
        }
        for step in &plan {
            assert!(
                !step.starts_with("SCAN plans_table"),
                "{sql}\nscans the table: {plan:?}"
            );
        }
        if !lower.starts_with("insert") {
            // Reads and deletes reach the table through the key or the expiration index.
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH plans_table")),
                "{sql}: {plan:?}"
            );
        }
        println!("{sql}\n  {plan:?}");

        // Prepared once, reused: the per-key statements must not make SQLite prepare them again
        // at each use (an ORDER BY on the get's compound select did, and cost 4x on every get).
        // Range reads (list, purge) are prepared again by SQLite's planner whatever the form.
        let per_key = !lower.contains(" limit ");
        for _ in 0..3 {
            if !per_key {
                break;
            }
            let mut statement = conn.prepare_cached(sql).unwrap();
            for index in 1..=statement.parameter_count() {
                statement.raw_bind_parameter(index, 1).unwrap();
            }
            let mut rows = statement.raw_query();
            while rows.next().unwrap().is_some() {}
            drop(rows);
            let reprepared = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(reprepared, 0, "prepared again at each use: {sql}");
        }
    }
}

// ---- Threads -------------------------------------------------------------------------------

#[test]
fn the_sqlite_namespace_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let (kv, _) = kv();
    send_sync(&kv);
    send(kv.get("k").text());
    send(kv.get("k").json_with_metadata::<Value, Value>());
    send(kv.get_bulk(&["k"]).json::<Value>());
    send(kv.put("k", "v").unwrap().execute());
    send(std::future::IntoFuture::into_future(
        kv.put("k", "v").unwrap(),
    ));
    send(kv.list().execute());
    send(std::future::IntoFuture::into_future(kv.list()));
    send(kv.delete("k"));
    send(kv.purge_expired(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_many_tasks_of_a_multi_threaded_runtime() {
    let kv = Arc::new(D1Namespace::new(SqliteBackend::open_in_memory().unwrap()));
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let kv = kv.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    kv.put(&format!("t{t}-{i}"), i).unwrap().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(kv.list().await.unwrap().keys.len(), 200);
}

#[tokio::test]
async fn namespaces_are_cheap_handles_and_their_futures_outlive_the_call_like_kvstore() {
    // As with KvStore: `ctx.wait_until(kv.put(k, v)?.execute())` needs a 'static future.
    fn static_send<T: Send + 'static>(future: T) -> T {
        future
    }
    let kv = D1Namespace::new(SqliteBackend::open_in_memory().unwrap());
    let write = {
        let key = String::from("later");
        static_send(kv.put(&key, "v").unwrap().execute())
        // `key` is dropped here; the future owns what it needs.
    };
    tokio::spawn(write).await.unwrap().unwrap();
    let read = static_send(kv.get("later").text());
    assert_eq!(
        tokio::spawn(read).await.unwrap().unwrap().as_deref(),
        Some("v")
    );
    let bulk = static_send(kv.get_bulk(&["later"]).text());
    let list = static_send(kv.list().execute());
    let awaited_list = static_send(std::future::IntoFuture::into_future(kv.list()));
    assert!(bulk.await.unwrap()["later"].is_some());
    assert_eq!(list.await.unwrap().keys.len(), 1);
    assert_eq!(awaited_list.await.unwrap().keys.len(), 1);

    let clone = kv.clone();
    clone.put("via-clone", "v").unwrap().await.unwrap();
    assert_eq!(
        kv.get("via-clone").text().await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn purge_expired_removes_the_expired_rows_of_every_namespace_sharing_the_table() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let clock = ManualClock::new(T0);
    let build = |name: &str| {
        D1Namespace::builder(backend.clone())
            .namespace(name)
            .table("shared")
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (build("a"), build("b"));
    a.put("k", "v").unwrap().expiration_ttl(1).await.unwrap();
    b.put("k", "v").unwrap().expiration_ttl(1).await.unwrap();
    b.put("live", "v").unwrap().await.unwrap();
    clock.advance(Duration::from_secs(1));
    // Expired entries are invisible to every namespace, so removing them all changes nothing
    // any namespace can see.
    assert_eq!(a.purge_expired(100).await.unwrap(), 2);
    assert_eq!(b.purge_expired(100).await.unwrap(), 0);
    assert_eq!(common::names(&b, "").await, ["live"]);
}

#[tokio::test]
async fn list_reports_metadata_that_is_not_json_naming_the_key() {
    let path = scratch_db("list_bad_metadata");
    let kv = namespace(SqliteBackend::open(&path).unwrap(), "bad", None);
    kv.put("k", "v")
        .unwrap()
        .metadata(1)
        .unwrap()
        .await
        .unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE bad_kv_entries SET metadata = 'not json'")
        .unwrap();
    let error = kv.list().execute().await.unwrap_err();
    assert!(
        matches!(&error, Error::Decode { key, part: "metadata", .. } if key == "k"),
        "{error:?}"
    );
}

/// Records the value of every put in the order the database commits them (SqliteBackend runs a
/// batch inside `batch()`, so recording and running under one lock pins that order).
struct CommitOrder {
    inner: SqliteBackend,
    values: std::sync::Mutex<Vec<d1ns::Value>>,
}

impl d1ns::Backend for CommitOrder {
    fn batch(
        &self,
        statements: &[d1ns::Statement<'_>],
    ) -> impl std::future::Future<Output = Result<Vec<d1ns::QueryResult>, d1ns::DatabaseError>> + Send
    {
        let mut values = self.values.lock().unwrap();
        let result = self.inner.batch(statements);
        for statement in statements {
            if statement.sql.starts_with("INSERT") {
                values.push(statement.params[2].clone());
            }
        }
        result
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k35_concurrent_writes_to_one_key_all_succeed_and_the_last_committed_wins() {
    let kv = D1Namespace::new(Arc::new(CommitOrder {
        inner: SqliteBackend::open_in_memory().unwrap(),
        values: std::sync::Mutex::default(),
    }));
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.put("hot", i).unwrap().await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let committed = kv.backend().values.lock().unwrap().clone();
    assert_eq!(committed.len(), 16, "every write committed");
    let last = committed.last().cloned();
    let value = kv.get("hot").text().await.unwrap();
    assert_eq!(value.map(d1ns::Value::Text), last);
}

// ---- Several connections on one file ---------------------------------------------------------

#[tokio::test]
async fn a_first_read_never_waits_for_another_connections_write_lock() {
    let path = scratch_db("read_while_locked");
    // The table and an entry, made by another process: this one has not met the table yet, so
    // its first operation carries the schema statements.
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer.pragma_update(None, "journal_mode", "WAL").unwrap();
    writer
        .execute_batch(include_str!("../migrations/0001_d1ns.sql"))
        .unwrap();
    writer
        .execute_batch(include_str!("../migrations/0002_d1ns_size.sql"))
        .unwrap();
    writer
        .execute_batch(include_str!("../migrations/0003_d1ns_version.sql"))
        .unwrap();
    writer
        .execute(
            "INSERT INTO _kv_entries (namespace, key, value) VALUES ('', 'k', 'v')",
            [],
        )
        .unwrap();
    // That process holds the write lock while this one reads.
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let reader = SqliteBackend::open(&path)
        .unwrap()
        .busy_timeout(Duration::from_millis(100))
        .unwrap();
    let reader = D1Namespace::new(reader);
    assert_eq!(reader.get("k").text().await.unwrap().as_deref(), Some("v"));
    assert_eq!(reader.list().await.unwrap().keys.len(), 1);
    writer.execute_batch("COMMIT").unwrap();
}

#[tokio::test]
async fn a_callers_busy_timeout_is_kept_and_the_default_is_generous() {
    let pragma = |db: &SqliteBackend| {
        let statement = d1ns::Statement {
            sql: "PRAGMA busy_timeout",
            params: Vec::new(),
        };
        let statements = [statement];
        let result = std::pin::pin!(d1ns::Backend::batch(db, &statements));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match result.poll(&mut context) {
            std::task::Poll::Ready(Ok(results)) => results[0].rows[0][0].clone(),
            other => panic!("{other:?}"),
        }
    };
    let connection = rusqlite::Connection::open_in_memory().unwrap();
    connection
        .busy_timeout(Duration::from_millis(1234))
        .unwrap();
    let own = SqliteBackend::from_connection(connection).unwrap();
    assert_eq!(pragma(&own), d1ns::Value::Integer(1234));
    let default = SqliteBackend::open_in_memory().unwrap();
    assert_eq!(
        pragma(&default),
        d1ns::Value::Integer(d1ns::backend::DEFAULT_BUSY_TIMEOUT.as_millis() as i64)
    );
    let set = default.busy_timeout(Duration::from_secs(7)).unwrap();
    assert_eq!(pragma(&set), d1ns::Value::Integer(7000));
}

#[test]
fn writers_on_one_file_through_separate_connections_wait_for_each_other_and_lose_nothing() {
    let path = scratch_db("many_writers");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let kv = D1Namespace::new(SqliteBackend::open(&path).unwrap());
                runtime.block_on(async {
                    for i in 0..60 {
                        let key = format!("t{t}-{i}");
                        kv.put(&key, i).unwrap().await.unwrap();
                        kv.put("shared", t).unwrap().await.unwrap();
                        assert!(kv.get(&key).text().await.unwrap().is_some());
                    }
                    kv.purge_expired(10).await.unwrap();
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let kv = D1Namespace::new(SqliteBackend::open(&path).unwrap());
    let page = runtime.block_on(kv.list().execute()).unwrap();
    assert_eq!(page.keys.len(), 6 * 60 + 1);
}

/// A database that reports no counts (as D1 does when its meta does not decode).
struct NoMeta(SqliteBackend);

impl d1ns::Backend for NoMeta {
    async fn batch(
        &self,
        statements: &[d1ns::Statement<'_>],
    ) -> Result<Vec<d1ns::QueryResult>, d1ns::DatabaseError> {
        let results = self.0.batch(statements).await?;
        Ok(results
            .into_iter()
            .map(|result| d1ns::QueryResult::new(result.rows))
            .collect())
    }

    fn database_id(&self) -> u64 {
        self.0.database_id()
    }
}

#[tokio::test]
async fn purge_expired_counts_the_rows_it_removed_without_the_databases_meta() {
    let clock = ManualClock::new(T0);
    let kv = D1Namespace::builder(NoMeta(SqliteBackend::open_in_memory().unwrap()))
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..5 {
        kv.put(&format!("k{i}"), "v")
            .unwrap()
            .expiration_ttl(1)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(2));
    // A cron loop that purges until a pass removes less than its bound ends with nothing left.
    assert_eq!(kv.purge_expired(3).await.unwrap(), 3);
    assert_eq!(kv.purge_expired(3).await.unwrap(), 2);
    assert_eq!(kv.purge_expired(3).await.unwrap(), 0);
}

#[test]
fn processes_opening_one_brand_new_file_together_all_get_in() {
    // The app and a tool (or N workers) starting on a fresh file at the same moment: each open
    // switches the file to WAL, which takes its lock; they must wait for each other.
    for round in 0..40 {
        let path = scratch_db(&format!("fresh_open_{round}"));
        let _ = std::fs::remove_file(&path);
        let start = std::sync::Arc::new(std::sync::Barrier::new(6));
        let opened: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteBackend::open(&path).map(drop)
                })
            })
            .collect();
        for thread in opened {
            let result = thread.join().unwrap();
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
    }
}
