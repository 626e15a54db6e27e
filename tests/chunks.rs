//! Values stored in chunks under everything a database can meet: rows edited by hand, chunks left
//! behind, damaged rows, bulk reads at one instant and within D1's result limit.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Recorder, T0, scratch_db};
use d1ns::limits::{MAX_CHUNK_BYTES, MAX_IN_ROW_VALUE_BYTES};
use d1ns::{Clock, D1Namespace, ManualClock, SqliteBackend};

const TABLE: &str = "\"_kv_entries\"";
const CHUNKS: &str = "\"_kv_entries$chunks\"";

fn on_file(name: &str) -> (D1Namespace<SqliteBackend>, PathBuf) {
    let path = scratch_db(name);
    let kv = D1Namespace::builder(SqliteBackend::open(&path).unwrap())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    (kv, path)
}

fn sql(path: &Path, statements: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(statements)
        .unwrap();
}

fn count(path: &Path, query: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(query, [], |row| row.get(0))
        .unwrap()
}

fn chunks_of(path: &Path, key: &str) -> i64 {
    count(
        path,
        &format!("SELECT count(*) FROM {CHUNKS} WHERE key = '{key}'"),
    )
}

/// Text of `len` bytes that differs from position to position.
fn text_of(len: usize, seed: u8) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((i + seed as usize) % 26) as u8))
        .collect()
}

#[tokio::test]
async fn a_put_makes_the_stored_chunks_exactly_the_new_ones() {
    // Chunks of an earlier value, left when the entries table was dropped by hand.
    let (kv, path) = on_file("leftovers");
    kv.put("k", text_of(2 * MAX_CHUNK_BYTES + 10, 1).as_str())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(chunks_of(&path, "k"), 3);
    sql(&path, &format!("DROP TABLE {TABLE}"));
    let two = text_of(MAX_CHUNK_BYTES + 10, 2);
    kv.put("k", two.as_str()).unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap(), Some(two));
    assert_eq!(chunks_of(&path, "k"), 2);
    // A small value over leftovers reads as itself.
    sql(&path, &format!("DROP TABLE {TABLE}"));
    kv.put("k", "small").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("small"));
    let bulk = kv.get_bulk(&["k"]).text().await.unwrap();
    assert_eq!(bulk["k"].as_deref(), Some("small"));
}

#[tokio::test]
async fn updates_by_hand_that_change_nothing_keep_the_chunks() {
    let (kv, path) = on_file("same_value");
    let long = text_of(3 * MAX_IN_ROW_VALUE_BYTES, 3);
    kv.put("k", long.as_str()).unwrap().await.unwrap();
    sql(
        &path,
        &format!("UPDATE {TABLE} SET value = value, chunks = chunks, size = size"),
    );
    sql(
        &path,
        &format!("UPDATE {TABLE} SET metadata = '{{\"by\":\"hand\"}}'"),
    );
    sql(
        &path,
        &format!("UPDATE {TABLE} SET expiration = {}", T0 + 60_000),
    );
    let (value, meta) = kv
        .get("k")
        .text_with_metadata::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(value, Some(long));
    assert_eq!(meta, Some(serde_json::json!({"by": "hand"})));
}

#[tokio::test]
async fn a_key_renamed_by_hand_takes_its_chunks_along() {
    let (kv, path) = on_file("rename");
    let long = text_of(MAX_CHUNK_BYTES + 5, 4);
    kv.put("old", long.as_str()).unwrap().await.unwrap();
    sql(
        &path,
        &format!("UPDATE {TABLE} SET key = 'new' WHERE key = 'old'"),
    );
    assert_eq!(kv.get("new").text().await.unwrap(), Some(long));
    assert_eq!(kv.get("old").text().await.unwrap(), None);
    assert_eq!(chunks_of(&path, "old"), 0);
    assert_eq!(chunks_of(&path, "new"), 2);
}

#[tokio::test]
async fn a_value_replaced_by_hand_with_its_chunk_columns_cleared_reads_as_written() {
    let (kv, path) = on_file("replace_by_hand");
    kv.put("k", text_of(4 * MAX_IN_ROW_VALUE_BYTES, 5).as_str())
        .unwrap()
        .await
        .unwrap();
    sql(
        &path,
        &format!("UPDATE {TABLE} SET value = 'by hand', chunks = NULL, size = NULL"),
    );
    assert_eq!(
        kv.get("k").text().await.unwrap().as_deref(),
        Some("by hand")
    );
    assert_eq!(
        chunks_of(&path, "k"),
        0,
        "the old chunks went with the old value"
    );
}

/// Puts a chunked value under `k`, damages it with `damage`, and returns the error of a get and
/// of a bulk get (both must fail, naming the key).
async fn damaged_read(name: &str, damage: &str) -> (String, String) {
    let (kv, path) = on_file(name);
    kv.put("k", text_of(MAX_CHUNK_BYTES + 100, 6).as_str())
        .unwrap()
        .await
        .unwrap();
    sql(&path, damage);
    let get = match kv.get("k").text().await {
        Err(e) => e.to_string(),
        Ok(value) => panic!("{name}: get read {:?} bytes", value.map(|v| v.len())),
    };
    let bulk = match kv.get_bulk(&["k"]).text().await {
        Err(e) => e.to_string(),
        Ok(values) => panic!(
            "{name}: get_bulk read {:?} bytes",
            values["k"].as_ref().map(String::len)
        ),
    };
    for error in [&get, &bulk] {
        assert!(error.contains("\"k\" is damaged"), "{name}: {error}");
    }
    (get, bulk)
}

#[tokio::test]
async fn a_value_replaced_by_hand_without_clearing_its_chunk_columns_is_reported_damaged() {
    let (get, _) = damaged_read("replaced_value", &format!("UPDATE {TABLE} SET value = 'x'")).await;
    assert!(get.contains("0 of its 2 chunks"), "{get}");
}

#[tokio::test]
async fn a_truncated_chunk_is_reported_damaged_not_read_short() {
    let damage = format!("UPDATE {CHUNKS} SET data = substr(data, 1, 10) WHERE part = 1");
    let (get, _) = damaged_read("truncated", &damage).await;
    assert!(
        get.contains(&format!("of its {}", MAX_CHUNK_BYTES + 100)),
        "{get}"
    );
}

#[tokio::test]
async fn a_missing_chunk_is_reported_damaged() {
    damaged_read("missing", &format!("DELETE FROM {CHUNKS} WHERE part = 0")).await;
}

#[tokio::test]
async fn chunk_counts_that_d1ns_never_writes_are_reported_damaged() {
    for (name, count) in [
        ("null", "NULL"),
        ("zero", "0"),
        ("negative", "-1"),
        ("real", "1.5"),
    ] {
        damaged_read(
            &format!("count_{name}"),
            &format!("UPDATE {TABLE} SET chunks = {count}"),
        )
        .await;
    }
}

#[tokio::test]
async fn stray_chunk_rows_are_never_read() {
    let (kv, path) = on_file("stray");
    let long = text_of(MAX_CHUNK_BYTES + 100, 7);
    kv.put("long", long.as_str()).unwrap().await.unwrap();
    kv.put("small", "s").unwrap().await.unwrap();
    sql(
        &path,
        &format!(
            "INSERT INTO {CHUNKS} VALUES ('', 'long', -2, 'junk'), ('', 'long', 7, 'junk'), \
             ('', 'small', -1, 'junk'), ('', 'small', 0, 'junk')"
        ),
    );
    assert_eq!(kv.get("long").text().await.unwrap(), Some(long.clone()));
    assert_eq!(kv.get("small").text().await.unwrap().as_deref(), Some("s"));
    let bulk = kv.get_bulk(&["long", "small"]).text().await.unwrap();
    assert_eq!(bulk["long"], Some(long));
    assert_eq!(bulk["small"].as_deref(), Some("s"));
    assert_eq!(kv.list().await.unwrap().keys.len(), 2);
}

/// A clock that moves 10 s forward every time it is read.
struct Rushing(AtomicU64);

impl Clock for Rushing {
    fn now_ms(&self) -> u64 {
        self.0.fetch_add(10_000, Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_bulk_read_judges_expiration_at_one_instant() {
    let db = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let writer = D1Namespace::builder(db.clone())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    // A value long enough to be read in a second round trip, and a short one.
    let long = text_of(300 * 1024, 8);
    for key in ["long", "short"] {
        let value = if key == "long" { long.as_str() } else { "v" };
        writer
            .put(key, value)
            .unwrap()
            .expiration_ttl(5)
            .await
            .unwrap();
    }
    let reader = D1Namespace::builder(db)
        .clock(Rushing(AtomicU64::new(T0)))
        .build()
        .unwrap();
    let bulk = reader.get_bulk(&["long", "short"]).text().await.unwrap();
    assert_eq!(bulk["long"], Some(long));
    assert_eq!(bulk["short"].as_deref(), Some("v"));
}

#[tokio::test]
async fn a_bulk_read_keeps_each_result_within_d1s_50_mb_for_values_in_rows_too() {
    // Rows as d1ns 0.1 wrote them: values up to 1.9 MB in the entry's own row.
    let path = scratch_db("bulk_in_row");
    sql(&path, include_str!("../migrations/0001_d1ns.sql"));
    sql(&path, include_str!("../migrations/0002_d1ns_size.sql"));
    let value = text_of(1_800_000, 9);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut insert = conn
            .prepare(&format!(
                "INSERT INTO {TABLE} (namespace, key, value) VALUES ('', ?1, ?2)"
            ))
            .unwrap();
        for i in 0..40 {
            insert.execute((format!("k{i:02}"), &value)).unwrap();
        }
    }
    let recorder = Recorder::new(
        SqliteBackend::open(&path)
            .unwrap()
            .d1_limits(false)
            .unwrap(),
    );
    let kv = D1Namespace::new(recorder.clone());
    let keys: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    let bulk = kv.get_bulk(&keys).text().await.unwrap();
    assert_eq!(bulk.len(), 40);
    assert!(bulk.values().all(|v| v.as_deref() == Some(value.as_str())));
    let largest = recorder.largest_result_bytes();
    assert!(largest < 50_000_000, "one call returned {largest} bytes");
}

#[test]
fn in_row_values_are_read_back_as_stored() {
    // The value column's own types, as a database edited by hand may hold them.
    let (kv, path) = on_file("column_types");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(kv.put("k", "x").unwrap().execute())
        .unwrap();
    sql(&path, &format!("UPDATE {TABLE} SET value = 42"));
    let got = runtime.block_on(kv.get("k").text()).unwrap();
    assert_eq!(got.as_deref(), Some("42"));
}
