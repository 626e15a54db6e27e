//! Typed secondary indexes: rules I1-I12 of `docs/indexes.md` (the compile-time rules, I1-I3,
//! also have UI tests in `tests/ui/`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, T0};
use d1ns::{
    Backend, D1Namespace, Error, ManualClock, SqliteBackend, Statement, TypedNamespace, Value,
    WriteOptions, d1_namespace,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct SessionMeta {
    agent: String,
}

#[d1_namespace(name = "sessions", ttl = 3600, metadata = SessionMeta, index(user_id, email, admin, team))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Session {
    user_id: u64,
    email: String,
    admin: bool,
    team: Option<u32>,
    note: String,
}

/// A namespace without indexes in the same table, to check that it never shows up (and pays
/// nothing).
#[d1_namespace(name = "other", table = "sessions_kv_entries")]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Other {
    user_id: u64,
}

fn session(user_id: u64) -> Session {
    Session {
        user_id,
        email: format!("user{user_id}@example.com"),
        admin: user_id == 0,
        team: user_id.is_multiple_of(2).then_some(user_id as u32 / 2),
        note: String::new(),
    }
}

type Sessions<B> = TypedNamespace<Session, B>;

fn sessions() -> (
    Sessions<Arc<SqliteBackend>>,
    Arc<SqliteBackend>,
    ManualClock,
) {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let clock = ManualClock::new(T0);
    let ns = Session::namespace_with(backend.clone(), |b| b.clock(clock.clone())).unwrap();
    (ns, backend, clock)
}

async fn keys<B: Backend + Send + Sync + 'static>(ns: &Sessions<B>, user_id: u64) -> Vec<String> {
    let page = ns.find(Session::USER_ID, &user_id).await.unwrap();
    assert!(page.list_complete);
    page.entries.into_iter().map(|(key, _)| key).collect()
}

async fn one_statement(backend: &impl Backend, sql: &str) -> Vec<Vec<Value>> {
    let statement = Statement {
        sql,
        params: vec![],
    };
    backend.batch(&[statement]).await.unwrap().remove(0).rows
}

// ---- Looking up ------------------------------------------------------------------------------

#[tokio::test]
async fn i4_a_look_up_returns_the_live_matching_entries_in_key_order_with_their_stamps() {
    let (ns, _, _) = sessions();
    for (key, user) in [("c", 7), ("a", 7), ("b", 8), ("d", 7)] {
        ns.put(key, &session(user))
            .metadata(SessionMeta { agent: key.into() })
            .await
            .unwrap();
    }
    let page = ns.find(Session::USER_ID, &7).await.unwrap();
    let found: Vec<&str> = page.entries.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(found, ["a", "c", "d"]);
    assert!(page.list_complete);
    assert_eq!(page.cursor, None);
    let (key, entry) = &page.entries[1];
    assert_eq!(entry.value, session(7));
    assert_eq!(entry.metadata, Some(SessionMeta { agent: "c".into() }));
    assert_eq!(entry.expiration, Some(T0 / 1000 + 3600));
    let read = ns.get_with_metadata(key).await.unwrap().unwrap();
    assert_eq!(entry.version, read.version, "the entry's versionstamp (A1)");

    // Every index kind: text, bool, Option (None is not indexed).
    let by_email = ns.find(Session::EMAIL, "user8@example.com").await.unwrap();
    assert_eq!(by_email.entries.len(), 1);
    assert_eq!(by_email.entries[0].0, "b");
    assert_eq!(
        ns.find(Session::ADMIN, &false).await.unwrap().entries.len(),
        4
    );
    assert_eq!(
        ns.find(Session::ADMIN, &true).await.unwrap().entries.len(),
        0
    );
    assert_eq!(ns.find(Session::TEAM, &4).await.unwrap().entries.len(), 1);
}

#[tokio::test]
async fn i4_pages_follow_limit_and_cursor_like_list() {
    let (ns, _, _) = sessions();
    for i in 0..25 {
        ns.put(&format!("k{i:02}"), &session(i % 2)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut find = ns.find(Session::USER_ID, &1).limit(5);
        if let Some(cursor) = cursor.take() {
            find = find.cursor(cursor);
        }
        let page = find.await.unwrap();
        pages += 1;
        assert!(page.entries.len() <= 5);
        seen.extend(page.entries.into_iter().map(|(key, _)| key));
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
    }
    let expected: Vec<String> = (0..25)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("k{i:02}"))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3, "12 entries, 5 a page");
    // The limit rules of list (K28).
    assert!(matches!(
        ns.find(Session::USER_ID, &1).limit(1001).await,
        Err(Error::InvalidListLimit { limit: 1001 })
    ));
    assert!(matches!(
        ns.find(Session::USER_ID, &1).cursor("not a cursor").await,
        Err(Error::InvalidCursor { .. })
    ));
}

#[tokio::test]
async fn i4_expired_entries_and_other_namespaces_entries_never_appear() {
    let (ns, backend, clock) = sessions();
    ns.put("short", &session(3))
        .expiration_ttl(1)
        .await
        .unwrap();
    ns.put("long", &session(3)).await.unwrap();
    let other = Other::namespace_with(backend.clone(), |b| b.clock(clock.clone())).unwrap();
    other.put("short", &Other { user_id: 3 }).await.unwrap();
    other.put("x", &Other { user_id: 3 }).await.unwrap();
    assert_eq!(keys(&ns, 3).await, ["long", "short"]);
    clock.advance(Duration::from_secs(1));
    assert_eq!(keys(&ns, 3).await, ["long"]);
}

/// The plan SQLite makes for a statement the runtime sent, with its parameters.
async fn plan(backend: &impl Backend, sql: &str, params: Vec<Value>) -> String {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let statement = Statement {
        sql: &explain,
        params,
    };
    let rows = backend.batch(&[statement]).await.unwrap().remove(0).rows;
    rows.iter()
        .map(|row| format!("{:?}", row.last()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn i5_look_ups_and_deletes_read_through_the_index_never_scanning() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let ns = Session::namespace(recorder.clone());
    for i in 0..50 {
        ns.put(&format!("k{i}"), &session(i % 5)).await.unwrap();
    }
    recorder.clear();
    ns.find(Session::USER_ID, &3).limit(10).await.unwrap();
    ns.find(Session::EMAIL, "user3@example.com").await.unwrap();
    ns.delete_where(Session::USER_ID, &4).await.unwrap();
    let batches = recorder.batches();
    assert_eq!(batches.len(), 3, "one round trip each");
    for batch in batches {
        // delete_where counts what it removed with `SELECT changes()`, which reads no table.
        let counted = batch.len() == 2 && batch[1] == ("SELECT changes() AS c0".to_owned(), 0);
        assert!(batch.len() == 1 || counted, "one statement each: {batch:?}");
        let (sql, params) = &batch[0];
        let params = (0..*params).map(|_| Value::Integer(1)).collect();
        let plan = plan(&*recorder.inner, sql, params).await;
        assert!(plan.contains("$index$sessions$"), "{sql}\n{plan}");
        assert!(
            !plan.contains("SCAN sessions_kv_entries") && !plan.contains("SCAN c"),
            "{sql}\n{plan}"
        );
        // The chunks of the page's entries only, each by its key.
        assert!(!plan.contains("(namespace=?)"), "{sql}\n{plan}");
    }
}

#[tokio::test]
async fn i5_i11_values_stored_in_chunks_are_indexed_and_returned_whole() {
    let (ns, _, _) = sessions();
    let mut long = session(9);
    long.note = "n".repeat(5_000);
    let mut huge = session(9);
    huge.note = "h".repeat(3_000_000);
    ns.put("long", &long).await.unwrap();
    ns.put("huge", &huge).await.unwrap();
    ns.put("small", &session(9)).await.unwrap();
    let page = ns.find(Session::USER_ID, &9).await.unwrap();
    let values: Vec<(&str, usize)> = page
        .entries
        .iter()
        .map(|(key, entry)| (key.as_str(), entry.value.note.len()))
        .collect();
    assert_eq!(values, [("huge", 3_000_000), ("long", 5_000), ("small", 0)]);
    assert_eq!(page.entries[0].1.value, huge);
    // Replaced by a small value: found by its new field, not its old one.
    let mut moved = session(10);
    moved.note = "m".repeat(4_000);
    ns.put("huge", &moved).await.unwrap();
    assert_eq!(keys(&ns, 9).await, ["long", "small"]);
    assert_eq!(keys(&ns, 10).await, ["huge"]);
}

#[tokio::test]
async fn i6_delete_where_removes_every_live_match_with_its_chunks_and_counts_them() {
    let (ns, backend, clock) = sessions();
    let mut long = session(4);
    long.note = "x".repeat(10_000);
    ns.put("a", &session(4)).await.unwrap();
    ns.put("b", &long).await.unwrap();
    ns.put("c", &session(5)).await.unwrap();
    ns.put("gone", &session(4)).expiration_ttl(1).await.unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(ns.delete_where(Session::USER_ID, &4).await.unwrap(), 2);
    assert_eq!(keys(&ns, 4).await, Vec::<String>::new());
    assert_eq!(keys(&ns, 5).await, ["c"]);
    let chunks = one_statement(
        &*backend,
        "SELECT count(*) FROM \"sessions_kv_entries$chunks\"",
    )
    .await;
    assert_eq!(chunks, [vec![Value::Integer(0)]]);
    assert_eq!(ns.delete_where(Session::USER_ID, &4).await.unwrap(), 0);
}

// ---- Keeping it right --------------------------------------------------------------------------

#[tokio::test]
async fn i7_commits_deletes_purges_and_hand_edits_keep_the_index_exact() {
    let (ns, backend, clock) = sessions();
    ns.put("a", &session(1)).await.unwrap();
    let version = ns.get_with_metadata("a").await.unwrap().unwrap().version;
    // An atomic commit moves `a` to user 2 and adds `b`, together.
    ns.atomic()
        .check("a", Some(version))
        .put("a", &session(2))
        .put("b", &session(1))
        .commit()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys(&ns, 1).await, ["b"]);
    assert_eq!(keys(&ns, 2).await, ["a"]);
    // A failed commit changes nothing.
    let failed = ns
        .atomic()
        .check("a", Some(version))
        .put("a", &session(1))
        .delete("b")
        .commit()
        .await
        .unwrap();
    assert_eq!(failed, None);
    assert_eq!(keys(&ns, 1).await, ["b"]);
    // Delete and purge.
    ns.delete("b").await.unwrap();
    assert_eq!(keys(&ns, 1).await, Vec::<String>::new());
    ns.put("t", &session(1)).expiration_ttl(1).await.unwrap();
    clock.advance(Duration::from_secs(1));
    ns.raw().purge_expired(100).await.unwrap();
    let rows = one_statement(
        &*backend,
        "SELECT count(*) FROM \"sessions_kv_entries\" WHERE key = 't'",
    )
    .await;
    assert_eq!(
        rows,
        [vec![Value::Integer(0)]],
        "the purged row is gone, and with it its index entries"
    );
    // An UPDATE by hand in SQL.
    one_statement(
        &*backend,
        "UPDATE \"sessions_kv_entries\" SET value = json_set(value, '$.user_id', 6) WHERE key = 'a'",
    )
    .await;
    assert_eq!(keys(&ns, 2).await, Vec::<String>::new());
    assert_eq!(keys(&ns, 6).await, ["a"]);
}

#[tokio::test]
async fn i8_a_namespace_without_indexes_sends_what_it_sent_before() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let other = Other::namespace(recorder.clone());
    other.put("k", &Other { user_id: 1 }).await.unwrap();
    let first = recorder.batches();
    assert!(
        first[0].iter().all(|(sql, _)| !sql.contains("$index$")),
        "no index statement for a namespace without indexes"
    );
    // The indexed namespace adds its index statements to the first batch only, and its put is
    // still one statement.
    recorder.clear();
    let ns = Session::namespace(recorder.clone());
    ns.put("k", &session(1)).await.unwrap();
    ns.put("k", &session(2)).await.unwrap();
    let batches = recorder.batches();
    let creates = batches[0]
        .iter()
        .filter(|(sql, _)| {
            sql.starts_with("CREATE INDEX IF NOT EXISTS \"sessions_kv_entries$index$sessions$")
        })
        .count();
    assert_eq!(creates, 4);
    assert_eq!(batches[1].len(), 1);
}

#[tokio::test]
async fn i9_an_index_added_to_a_namespace_with_entries_finds_them() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    // The same namespace, written before it had indexes (through the untyped API, as an earlier
    // version of the type would have).
    let before = D1Namespace::builder(backend.clone())
        .namespace("sessions")
        .build()
        .unwrap();
    for i in 0..10 {
        before
            .put(&format!("k{i}"), session(i % 3))
            .unwrap()
            .await
            .unwrap();
    }
    let ns = Session::namespace(backend.clone());
    assert_eq!(keys(&ns, 0).await, ["k0", "k3", "k6", "k9"]);
}

#[tokio::test]
async fn i10_values_written_through_raw_are_indexed_when_json_objects_with_the_field() {
    let (ns, _, _) = sessions();
    let raw = ns.raw();
    raw.put("json", serde_json::json!({"user_id": 11, "extra": true}))
        .unwrap()
        .await
        .unwrap();
    raw.put("text", "not JSON at all").unwrap().await.unwrap();
    raw.put("array", serde_json::json!([11]))
        .unwrap()
        .await
        .unwrap();
    raw.put("lacks", serde_json::json!({"other": 11}))
        .unwrap()
        .await
        .unwrap();
    raw.put("string", serde_json::json!({"user_id": "11"}))
        .unwrap()
        .await
        .unwrap();
    raw.put_bytes("bytes", br#"{"user_id": 11}"#)
        .unwrap()
        .await
        .unwrap();
    raw.put("long text", "y".repeat(5000).as_str())
        .unwrap()
        .await
        .unwrap();
    // Only the JSON object with the field as a number is found; the rest were stored fine.
    assert_eq!(
        raw.get("text").text().await.unwrap().as_deref(),
        Some("not JSON at all")
    );
    let page = ns.find(Session::USER_ID, &11).await;
    // `json` lacks the typed fields: it is found, and decoding it as a Session is the error.
    assert!(matches!(page, Err(Error::Decode { key, .. }) if key == "json"));
    raw.put("json", serde_json::to_value(session(11)).unwrap())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(keys(&ns, 11).await, ["json"]);
    // Atomic commits and counters through raw() keep it too.
    raw.atomic()
        .put_with(
            "c",
            serde_json::to_value(session(11)).unwrap(),
            WriteOptions::new(),
        )
        .commit()
        .await
        .unwrap();
    assert_eq!(keys(&ns, 11).await, ["c", "json"]);
}

#[tokio::test]
async fn i3_integers_beyond_2_53_are_refused_at_put_and_at_look_up() {
    let (ns, _, _) = sessions();
    let big = (1u64 << 53) + 1;
    let error = ns.put("big", &session(big)).await.unwrap_err();
    assert!(
        matches!(&error, Error::IndexValueTooLarge { key, field, .. } if key == "big" && field == "user_id"),
        "{error:?}"
    );
    assert!(error.to_string().contains("2^53"), "{error}");
    assert!(
        ns.get_with_metadata("big").await.unwrap().is_none(),
        "nothing written"
    );
    let error = ns
        .atomic()
        .put("big", &session(big))
        .commit()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::IndexValueTooLarge { .. }),
        "{error:?}"
    );
    ns.put("edge", &session(1 << 53)).await.unwrap();
    assert_eq!(keys(&ns, 1 << 53).await, ["edge"]);
    assert!(matches!(
        ns.find(Session::USER_ID, &big).await,
        Err(Error::InvalidIndexValue { .. })
    ));
}

#[test]
fn i12_schema_sql_prints_the_index_statements_with_dollar_names() {
    let ns = Session::namespace(SqliteBackend::open_in_memory().unwrap());
    let schema = ns.raw().schema_sql();
    for field in ["user_id", "email", "admin", "team"] {
        assert!(
            schema.contains(&format!(
                "CREATE INDEX IF NOT EXISTS \"sessions_kv_entries$index$sessions${field}$"
            )),
            "{schema}"
        );
    }
    // It runs as a migration, and the namespace then works without auto-create.
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(&schema).unwrap();
}

#[tokio::test]
async fn i9_a_table_upgraded_from_an_earlier_version_gets_its_indexes_too() {
    let path = common::scratch_db("index_upgrade");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        &include_str!("../migrations/0001_d1ns.sql").replace("_kv_entries", "sessions_kv_entries"),
    )
    .unwrap();
    conn.execute(
        "INSERT INTO sessions_kv_entries (namespace, key, value) VALUES ('sessions', 'old', ?1)",
        [serde_json::to_string(&session(21)).unwrap()],
    )
    .unwrap();
    let ns = Session::namespace(SqliteBackend::open(&path).unwrap());
    assert_eq!(keys(&ns, 21).await, ["old"]);
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE '%$index$%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 4);
}

#[d1_namespace(name = "docs", index(owner, title))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Doc {
    owner: u64,
    title: String,
    body: String,
}

#[tokio::test]
async fn i11_a_long_indexed_field_of_a_long_value_leaves_the_other_indexes_working() {
    let ns = Doc::namespace(SqliteBackend::open_in_memory().unwrap());
    let doc = |title: String, body: String| Doc {
        owner: 7,
        title,
        body,
    };
    ns.put("short-title", &doc("t".into(), "b".repeat(5_000)))
        .await
        .unwrap();
    ns.put("long-title", &doc("t".repeat(1_100), String::new()))
        .await
        .unwrap();
    let page = ns.find(Doc::OWNER, &7).await.unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["long-title", "short-title"]);
    let by_title = ns.find(Doc::TITLE, "t").await.unwrap();
    assert_eq!(by_title.entries.len(), 1);
}

#[tokio::test]
async fn i7_a_json_set_by_hand_on_a_value_in_chunks_fails_and_leaves_it_whole() {
    let (ns, backend, _) = sessions();
    let mut long = session(7);
    long.note = "n".repeat(5_000);
    ns.put("big", &long).await.unwrap();
    let statement = Statement {
        sql: "UPDATE \"sessions_kv_entries\" SET value = json_set(value, '$.user_id', 8) \
              WHERE key = 'big'",
        params: vec![],
    };
    assert!(
        backend.batch(&[statement]).await.is_err(),
        "not JSON: refused"
    );
    assert_eq!(ns.get("big").await.unwrap(), Some(long));
    assert_eq!(keys(&ns, 7).await, ["big"]);
}

#[d1_namespace(name = "Users", table = "people", index(user_id))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct UpperUser {
    user_id: u64,
}

#[d1_namespace(name = "users", table = "people", index(user_id))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct LowerUser {
    user_id: u64,
}

#[tokio::test]
async fn i12_index_names_differing_only_in_case_are_two_indexes() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let upper = UpperUser::namespace(backend.clone());
    let lower = LowerUser::namespace(backend.clone());
    upper.put("u", &UpperUser { user_id: 1 }).await.unwrap();
    lower.put("l", &LowerUser { user_id: 1 }).await.unwrap();
    let found = upper.find(UpperUser::USER_ID, &1).await.unwrap();
    assert_eq!(found.entries.len(), 1);
    assert_eq!(found.entries[0].0, "u");
    let found = lower.find(LowerUser::USER_ID, &1).await.unwrap();
    assert_eq!(found.entries.len(), 1);
    assert_eq!(found.entries[0].0, "l");
}

#[tokio::test]
async fn i5_a_page_of_long_values_keeps_each_result_within_d1s_50_mb() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let ns = Session::namespace(recorder.clone());
    let mut huge = session(5);
    huge.note = "h".repeat(20_000_000);
    for key in ["a", "b", "c"] {
        ns.put(key, &huge).await.unwrap();
    }
    let mut medium = session(5);
    medium.note = "m".repeat(100_000);
    ns.put("d", &medium).await.unwrap();
    recorder.clear();
    let page = ns.find(Session::USER_ID, &5).await.unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    assert!(page.entries[..3].iter().all(|(_, e)| e.value == huge));
    assert_eq!(page.entries[3].1.value, medium);
    assert!(
        recorder.largest_result_bytes() <= 50_000_000,
        "{} bytes in one result",
        recorder.largest_result_bytes()
    );
    assert!(
        recorder.batches().len() >= 3,
        "the long values in further round trips"
    );
}

#[d1_namespace(name = "manual", auto_create = false, index(user_id))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Manual {
    user_id: u64,
}

#[tokio::test]
async fn i12_without_auto_create_a_missing_index_names_schema_sql_until_it_is_applied() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let ns = Manual::namespace(backend.clone());
    // The table exists (made by an earlier migration), the index does not.
    let plain = D1Namespace::builder(backend.clone())
        .namespace("manual")
        .build()
        .unwrap();
    plain.put("k", "{\"user_id\":1}").unwrap().await.unwrap();
    let error = ns.find(Manual::USER_ID, &1).await.unwrap_err().to_string();
    assert!(error.contains("schema_sql()"), "{error}");
    for statement in ns
        .raw()
        .schema_sql()
        .split(";\n")
        .filter(|s| !s.trim().is_empty())
    {
        one_statement(&*backend, statement).await;
    }
    let page = ns.find(Manual::USER_ID, &1).await.unwrap();
    assert_eq!(page.entries.len(), 1);
}
