//! Values beyond D1's 2,000,000-byte rows in chunks (K6, K9), and D1's limits enforced locally.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, T0, scratch_db};
use d1ns::backend::Instrumented;
use d1ns::limits::{MAX_CHUNK_BYTES, MAX_IN_ROW_VALUE_BYTES, MAX_VALUE_BYTES};
use d1ns::{Backend, D1Namespace, ManualClock, SqliteBackend, Statement, Value};
use serde_json::json;

/// A namespace on a database file, so tests can look at the tables with SQL.
fn on_file(
    name: &str,
) -> (
    D1Namespace<Arc<SqliteBackend>>,
    ManualClock,
    std::path::PathBuf,
) {
    let path = scratch_db(name);
    let clock = ManualClock::new(T0);
    let kv = D1Namespace::builder(Arc::new(SqliteBackend::open(&path).unwrap()))
        .namespace("big")
        .clock(clock.clone())
        .build()
        .unwrap();
    (kv, clock, path)
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn chunks(path: &std::path::Path) -> i64 {
    count(path, "SELECT count(*) FROM \"big_kv_entries$chunks\"")
}

/// Text of `len` bytes with multi-byte characters throughout, so chunk boundaries fall inside
/// characters unless they are chosen with care.
fn text_of(len: usize) -> String {
    let unit = "aé日\u{10FFFF}"; // 1 + 2 + 3 + 4 bytes
    let mut text = unit.repeat(len / unit.len());
    text.push_str(&"z".repeat(len - text.len()));
    text
}

fn bytes_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn k6_k9_exactly_25_mib_round_trips_as_text_and_as_bytes() {
    let (kv, _, path) = on_file("k9_exact");
    let text = text_of(MAX_VALUE_BYTES);
    kv.put("text", text.as_str()).unwrap().await.unwrap();
    assert!(kv.get("text").text().await.unwrap() == Some(text.clone()));
    assert!(kv.get("text").bytes().await.unwrap() == Some(text.into_bytes()));

    let bytes = bytes_of(MAX_VALUE_BYTES);
    kv.put_bytes("bytes", &bytes).unwrap().await.unwrap();
    assert!(kv.get("bytes").bytes().await.unwrap() == Some(bytes));
    // No row holds more than D1 allows.
    let longest = count(
        &path,
        "SELECT max(length(CAST(data AS BLOB))) FROM \"big_kv_entries$chunks\"",
    );
    assert!(longest as usize <= MAX_CHUNK_BYTES, "{longest}");
}

#[tokio::test]
async fn k6_one_byte_over_25_mib_fails_and_keeps_the_old_value() {
    let (kv, _, path) = on_file("k6_over");
    kv.put("k", "old").unwrap().await.unwrap();
    let error = kv
        .put_bytes("k", &vec![1; MAX_VALUE_BYTES + 1])
        .unwrap()
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    );
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("old"));
    assert_eq!(chunks(&path), 0);
}

#[tokio::test]
async fn the_in_row_and_chunk_boundaries_are_seamless() {
    let (kv, _, path) = on_file("row_boundary");
    // Text and bytes stay in their row up to MAX_IN_ROW_VALUE_BYTES; one byte more and they go
    // in chunks; past MAX_CHUNK_BYTES, in more than one.
    for len in [
        MAX_IN_ROW_VALUE_BYTES,
        MAX_IN_ROW_VALUE_BYTES + 1,
        MAX_CHUNK_BYTES,
        MAX_CHUNK_BYTES + 1,
    ] {
        let text = text_of(len);
        kv.put("t", text.as_str()).unwrap().await.unwrap();
        assert!(
            kv.get("t").text().await.unwrap() == Some(text),
            "text of {len} bytes"
        );
        let expected = match len {
            _ if len <= MAX_IN_ROW_VALUE_BYTES => 0,
            _ if len <= MAX_CHUNK_BYTES => 1,
            _ => 2,
        };
        assert_eq!(chunks(&path), expected, "text of {len} bytes");
        kv.delete("t").await.unwrap();

        let bytes = bytes_of(len);
        kv.put_bytes("b", &bytes).unwrap().await.unwrap();
        assert!(
            kv.get("b").bytes().await.unwrap() == Some(bytes),
            "bytes of {len}"
        );
        assert_eq!(
            chunks(&path) > 0,
            len > MAX_IN_ROW_VALUE_BYTES,
            "bytes of {len}"
        );
        kv.delete("b").await.unwrap();
    }
}

#[tokio::test]
async fn overwrites_in_either_direction_and_deletes_leave_no_orphan_chunks() {
    let (kv, _, path) = on_file("orphans");
    let large = text_of(5 * MAX_CHUNK_BYTES);
    kv.put("k", large.as_str()).unwrap().await.unwrap();
    let chunks_of_large = chunks(&path);
    assert!(chunks_of_large >= 5);

    kv.put("k", "small").unwrap().await.unwrap(); // large -> small
    assert_eq!(chunks(&path), 0);
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("small"));

    kv.put("k", large.as_str()).unwrap().await.unwrap(); // small -> large
    assert_eq!(chunks(&path), chunks_of_large);
    let smaller_large = text_of(2 * MAX_CHUNK_BYTES);
    kv.put("k", smaller_large.as_str()).unwrap().await.unwrap(); // large -> fewer chunks
    assert!(chunks(&path) < chunks_of_large);
    assert!(kv.get("k").text().await.unwrap() == Some(smaller_large));

    kv.put_bytes("k", &bytes_of(3 * MAX_CHUNK_BYTES))
        .unwrap()
        .await
        .unwrap(); // text -> bytes
    assert!(kv.get("k").bytes().await.unwrap() == Some(bytes_of(3 * MAX_CHUNK_BYTES)));

    kv.delete("k").await.unwrap();
    assert_eq!(chunks(&path), 0);
    assert_eq!(kv.get("k").bytes().await.unwrap(), None);
}

#[tokio::test]
async fn large_values_expire_list_and_purge_like_small_ones() {
    let (kv, clock, path) = on_file("expire");
    let large = text_of(3 * MAX_CHUNK_BYTES);
    kv.put("large", large.as_str())
        .unwrap()
        .expiration_ttl(1)
        .metadata(json!({"n": 1}))
        .unwrap()
        .await
        .unwrap();
    let page = kv.list().await.unwrap();
    assert_eq!(page.keys[0].name, "large");
    assert_eq!(page.keys[0].metadata, Some(json!({"n": 1})));
    assert_eq!(page.keys[0].expiration, Some(T0 / 1000 + 1));
    let (value, meta) = kv
        .get("large")
        .text_with_metadata::<serde_json::Value>()
        .await
        .unwrap();
    assert!(value == Some(large));
    assert_eq!(meta, Some(json!({"n": 1})));

    clock.advance(Duration::from_secs(1));
    assert_eq!(kv.get("large").text().await.unwrap(), None);
    assert_eq!(
        kv.get("large").text_with_metadata::<u8>().await.unwrap(),
        (None, None)
    );
    assert!(kv.list().await.unwrap().keys.is_empty());
    assert!(chunks(&path) > 0, "reads never delete (K31a)");
    assert_eq!(kv.purge_expired(10).await.unwrap(), 1);
    assert_eq!(chunks(&path), 0, "purging an entry removes its chunks");
}

#[tokio::test]
async fn get_bulk_reads_large_values_with_their_metadata() {
    let recorder = Recorder::new(Arc::new(SqliteBackend::open_in_memory().unwrap()));
    let kv = D1Namespace::builder(recorder.clone())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    let large: Vec<String> = (0..3)
        .map(|i| format!("{i}").repeat(12 * MAX_CHUNK_BYTES / 10))
        .collect();
    for (i, value) in large.iter().enumerate() {
        let json_value = json!({ "i": i, "pad": value });
        kv.put(&format!("L{i}"), &json_value)
            .unwrap()
            .metadata(i)
            .unwrap()
            .await
            .unwrap();
    }
    kv.put("small", json!({"i": 9})).unwrap().await.unwrap();
    recorder.clear();

    let got = kv
        .get_bulk(&["L0", "L1", "L2", "small", "missing"])
        .json_with_metadata::<serde_json::Value, usize>()
        .await
        .unwrap();
    for (i, value) in large.iter().enumerate() {
        let (json_value, meta) = &got[&format!("L{i}")];
        assert_eq!(
            json_value.as_ref().unwrap()["pad"].as_str(),
            Some(value.as_str())
        );
        assert_eq!(*meta, Some(i));
    }
    assert_eq!(got["small"].0, Some(json!({"i": 9})));
    assert_eq!(got["missing"], (None, None));
    // One round trip for the entries, one more for the chunks (3 x 2.3 MB fit one call).
    assert_eq!(recorder.batches().len(), 2);
}

#[tokio::test]
async fn a_large_put_and_get_are_one_round_trip_each_and_small_ones_one_statement() {
    let db = Instrumented::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(db.clone());
    kv.get("warm-up").text().await.unwrap();
    db.take_stats();

    let large = text_of(4 * MAX_CHUNK_BYTES);
    kv.put("large", large.as_str()).unwrap().await.unwrap();
    let put = db.take_stats();
    assert_eq!(put.calls, 1);
    assert_eq!(
        put.statements,
        1 + 1 + 4,
        "the entry, the removal of any chunks left under the key, and its 4 chunks, in one batch"
    );
    assert!(kv.get("large").text().await.unwrap() == Some(large));
    assert_eq!(db.take_stats().calls, 1);

    kv.put("small", "v").unwrap().await.unwrap();
    kv.get("small").text().await.unwrap();
    let small = db.take_stats();
    assert_eq!((small.calls, small.statements), (2, 2));
}

#[tokio::test]
async fn a_failed_large_write_changes_nothing() {
    let path = scratch_db("all_or_nothing");
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .namespace("big")
        .build()
        .unwrap();
    let before = text_of(2 * MAX_CHUNK_BYTES);
    kv.put("k", before.as_str()).unwrap().await.unwrap();
    // Make the fourth chunk of any write fail, as a full disk or a lost connection would.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER fail_chunk AFTER INSERT ON \"big_kv_entries$chunks\" WHEN NEW.part = 3 \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
    let error = kv
        .put("k", text_of(6 * MAX_CHUNK_BYTES).as_str())
        .unwrap()
        .execute()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("disk full"), "{error}");
    assert!(
        kv.get("k").text().await.unwrap() == Some(before),
        "the old value is intact"
    );
}

#[tokio::test]
async fn typed_namespaces_store_large_values_too() {
    #[d1ns::d1_namespace(name = "documents")]
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Document {
        body: String,
    }
    let documents = Document::namespace(SqliteBackend::open_in_memory().unwrap());
    let doc = Document {
        body: text_of(3 * MAX_CHUNK_BYTES),
    };
    documents.put("d", &doc).await.unwrap();
    assert!(documents.get("d").await.unwrap() == Some(doc));
}

// ---- D1's limits, enforced by SqliteBackend ------------------------------------------------

async fn run_one(
    db: &SqliteBackend,
    sql: &str,
    params: Vec<Value>,
) -> Result<(), d1ns::DatabaseError> {
    db.batch(&[Statement { sql, params }]).await.map(drop)
}

#[tokio::test]
async fn sqlite_refuses_strings_and_blobs_over_2_000_000_bytes_like_d1() {
    let db = SqliteBackend::open_in_memory().unwrap();
    let length = "SELECT length(?1)";
    run_one(&db, length, vec![Value::Text("x".repeat(2_000_000))])
        .await
        .unwrap();
    run_one(&db, length, vec![Value::Blob(vec![0; 2_000_000])])
        .await
        .unwrap();
    for too_big in [
        Value::Text("x".repeat(2_000_001)),
        Value::Blob(vec![0; 2_000_001]),
    ] {
        let error = run_one(&db, length, vec![too_big]).await.unwrap_err();
        assert!(
            error
                .message()
                .starts_with("D1_ERROR: string or blob too big"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn sqlite_refuses_rows_over_2_000_000_bytes_like_d1() {
    let db = SqliteBackend::open_in_memory().unwrap();
    run_one(&db, "CREATE TABLE t (a TEXT, b TEXT)", vec![])
        .await
        .unwrap();
    let half = || Value::Text("x".repeat(1_000_001));
    let error = run_one(&db, "INSERT INTO t VALUES (?1, ?2)", vec![half(), half()])
        .await
        .unwrap_err();
    assert!(error.message().contains("too big"), "{error}");
}

#[tokio::test]
async fn sqlite_refuses_more_than_100_parameters_like_d1() {
    let db = SqliteBackend::open_in_memory().unwrap();
    let placeholders = |n: usize| {
        (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql_100 = format!("SELECT {}", placeholders(100));
    run_one(&db, &sql_100, vec![Value::Integer(1); 100])
        .await
        .unwrap();
    let sql_101 = format!("SELECT {}", placeholders(101));
    let error = run_one(&db, &sql_101, vec![Value::Integer(1); 101])
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .starts_with("D1_ERROR: too many SQL variables"),
        "{error}"
    );
}

#[tokio::test]
async fn sqlite_refuses_statements_over_100_000_bytes_like_d1() {
    let db = SqliteBackend::open_in_memory().unwrap();
    let padded = |len: usize| format!("SELECT 1 /*{}*/", "x".repeat(len - "SELECT 1 /**/".len()));
    run_one(&db, &padded(100_000), vec![]).await.unwrap();
    let error = run_one(&db, &padded(100_001), vec![]).await.unwrap_err();
    assert!(
        error.message().starts_with("D1_ERROR: statement too long"),
        "{error}"
    );
}

#[tokio::test]
async fn d1_limits_can_be_turned_off() {
    let db = SqliteBackend::open_in_memory()
        .unwrap()
        .d1_limits(false)
        .unwrap();
    run_one(&db, "CREATE TABLE t (v BLOB)", vec![])
        .await
        .unwrap();
    run_one(
        &db,
        "INSERT INTO t (v) VALUES (?1)",
        vec![Value::Blob(vec![0; 3_000_000])],
    )
    .await
    .unwrap();
    let db = db.d1_limits(true).unwrap();
    assert!(
        run_one(
            &db,
            "INSERT INTO t (v) VALUES (?1)",
            vec![Value::Blob(vec![0; 3_000_000])]
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn updating_metadata_or_expiration_by_hand_keeps_the_chunks() {
    let (kv, _, path) = on_file("hand_update");
    let large = text_of(2 * MAX_CHUNK_BYTES);
    kv.put("k", large.as_str()).unwrap().await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE big_kv_entries SET metadata = '1', expiration = NULL")
        .unwrap();
    let (value, meta) = kv.get("k").text_with_metadata::<u8>().await.unwrap();
    assert!(value == Some(large));
    assert_eq!(meta, Some(1));
}

#[tokio::test]
async fn an_expired_large_value_is_not_downloaded() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let clock = ManualClock::new(T0);
    let kv = D1Namespace::builder(recorder.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    kv.put("k", text_of(3 * MAX_CHUNK_BYTES).as_str())
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    recorder.clear();
    kv.get("k").text().await.unwrap();
    assert_eq!(
        recorder.rows_returned(),
        1 + 3,
        "the entry and its chunks while live"
    );
    clock.advance(Duration::from_secs(1));
    recorder.clear();
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    assert_eq!(recorder.rows_returned(), 0, "nothing once expired");
}

#[tokio::test]
async fn a_table_named_like_another_tables_chunks_is_its_own_table() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let build = |table: &str| {
        D1Namespace::builder(backend.clone())
            .namespace("ns")
            .table(table)
            .build()
            .unwrap()
    };
    let (plain, named_like_chunks) = (build("sessions"), build("sessions_chunks"));
    let large = text_of(2 * MAX_CHUNK_BYTES);
    plain.put("k", large.as_str()).unwrap().await.unwrap();
    named_like_chunks.put("k", "small").unwrap().await.unwrap();
    assert!(plain.get("k").text().await.unwrap() == Some(large));
    assert_eq!(
        named_like_chunks.get("k").text().await.unwrap().as_deref(),
        Some("small")
    );
}

#[tokio::test]
async fn a_damaged_entry_is_an_error_naming_the_key_never_a_panic_or_a_wrong_value() {
    let (kv, _, path) = on_file("damaged");
    kv.put("gap", text_of(3 * MAX_CHUNK_BYTES).as_str())
        .unwrap()
        .await
        .unwrap();
    kv.put("huge", text_of(2 * MAX_CHUNK_BYTES).as_str())
        .unwrap()
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DELETE FROM \"big_kv_entries$chunks\" WHERE key = 'gap' AND part = 1; \
         INSERT INTO \"big_kv_entries$chunks\" VALUES ('big', 'gap', 7, 'x'); \
         UPDATE big_kv_entries SET chunks = 9000000000000000000 WHERE key = 'huge'",
    )
    .unwrap();
    for key in ["gap", "huge"] {
        let error = kv.get(key).text().await.unwrap_err();
        assert!(error.to_string().contains(&format!("{key:?}")), "{error}");
    }
    let error = kv.get_bulk(&["gap", "huge"]).text().await.unwrap_err();
    assert!(matches!(error, d1ns::Error::Database(_)), "{error:?}");
}
