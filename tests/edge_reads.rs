//! Reading close to users (docs/edge-reads.md, R1-R12), natively: the session API a backend
//! offers (`Session`, `bookmark()`), and `cache_ttl`, which changes nothing where there is no
//! edge. The rules that need D1 sessions and the Cache API are proven in workerd
//! (`tests/workerd/driver.mjs`).

mod common;

use common::Bookmarking;
use d1ns::backend::Instrumented;
use d1ns::{Backend, D1Namespace, SqliteBackend, Statement, d1_namespace};
use serde::{Deserialize, Serialize};

/// A stand-in session on a fresh in-memory database.
fn session() -> Bookmarking {
    Bookmarking::new(SqliteBackend::open_in_memory().unwrap(), "", 0)
}

#[d1_namespace(name = "notes")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

/// R2: the namespace hands out its session's bookmark after its operations, in one call, for
/// untyped and typed namespaces, and through `Instrumented`.
#[tokio::test]
async fn r2_the_bookmark_is_the_sessions_after_the_operations_so_far() {
    let kv = D1Namespace::new(session());
    assert_eq!(kv.bookmark().unwrap(), None, "no operation yet");
    kv.put("k", "v").unwrap().await.unwrap();
    let after_put = kv.bookmark().unwrap();
    assert_eq!(after_put.as_deref(), Some("00000001"));
    kv.get("k").text().await.unwrap();
    assert!(kv.bookmark().unwrap() > after_put, "the bookmark advances");

    let counted = D1Namespace::new(Instrumented::new(session()));
    counted.put("k", "v").unwrap().await.unwrap();
    assert_eq!(counted.bookmark().unwrap().as_deref(), Some("00000001"));

    let notes = Note::namespace(session());
    assert_eq!(notes.bookmark().unwrap(), None);
    let note = Note { text: "hi".into() };
    notes.put("n", &note).await.unwrap();
    assert_eq!(notes.get("n").await.unwrap(), Some(note));
    assert_eq!(notes.bookmark().unwrap().as_deref(), Some("00000002"));
}

/// R7 and "no edge natively": `cache_ttl` is checked (K18) and changes nothing; every read goes
/// to the database and sees a change made behind d1ns's back at once. So does `get_cached`.
#[tokio::test]
async fn r7_natively_cache_ttl_changes_nothing() {
    let db = Instrumented::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(db.clone());
    kv.put("hot", "v1").unwrap().await.unwrap();
    assert_eq!(
        kv.get("hot").cache_ttl(60).text().await.unwrap().as_deref(),
        Some("v1")
    );
    let change = Statement {
        sql: "UPDATE _kv_entries SET value = 'v2' WHERE key = 'hot'",
        params: Vec::new(),
    };
    db.inner().batch(&[change]).await.unwrap();
    db.take_stats();
    assert_eq!(
        kv.get("hot").cache_ttl(60).text().await.unwrap().as_deref(),
        Some("v2")
    );
    let bulk = kv
        .get_bulk(&["hot", "none"])
        .cache_ttl(60)
        .text()
        .await
        .unwrap();
    assert_eq!(bulk["hot"].as_deref(), Some("v2"));
    assert_eq!(bulk["none"], None);
    assert_eq!(
        db.take_stats().calls,
        2,
        "each read is one call to the database"
    );
    assert!(kv.get("hot").cache_ttl(29).text().await.is_err(), "K18");

    let notes = Note::namespace(SqliteBackend::open_in_memory().unwrap());
    let note = Note { text: "hi".into() };
    notes.put("n", &note).await.unwrap();
    assert_eq!(notes.get_cached("n", 60).await.unwrap(), Some(note));
}

/// `get_bulk` returns what `get` does for every key, expirations and values in chunks included,
/// whether or not it is asked to cache (its statement also reads expiration and version, for
/// the edge cache).
#[tokio::test]
async fn get_bulk_with_cache_ttl_reads_what_get_reads() {
    let (kv, clock) = common::kv();
    let long = "x".repeat(300 * 1024);
    kv.put("short", "s").unwrap().await.unwrap();
    kv.put("long", long.as_str()).unwrap().await.unwrap();
    kv.put("ttl", "t").unwrap().expiration_ttl(5).await.unwrap();
    kv.put_bytes("bin", &[0, 255]).unwrap().await.unwrap();
    let keys = ["short", "long", "ttl", "bin", "none"];
    let bulk = kv.get_bulk(&keys).cache_ttl(60).text().await.unwrap();
    for key in keys {
        assert_eq!(bulk[key], kv.get(key).text().await.unwrap(), "{key}");
    }
    clock.advance(std::time::Duration::from_secs(5));
    let later = kv.get_bulk(&keys).cache_ttl(60).text().await.unwrap();
    assert_eq!(later["ttl"], None);
    assert_eq!(later["long"].as_deref(), Some(long.as_str()));
}
