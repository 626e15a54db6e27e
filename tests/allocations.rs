//! Heap allocations of the native read path, counted by a global allocator: a get of a small
//! value allocates what it returns, and the one allocation rusqlite's statement cache makes per
//! use (the same read written by hand with rusqlite makes exactly these). Each test counts
//! only its own thread's allocations, so tests running beside it do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use d1ns::rusqlite::Connection;
use d1ns::{D1Namespace, ManualClock, SqliteBackend};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter, and must still allocate.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs a future that completes without waiting (SqliteBackend's always do).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

/// The allocations `f` makes on this thread, with what it returned.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let output = f();
    (ALLOCATIONS.with(Cell::get) - before, output)
}

/// A named namespace (as every typed one is) with one small entry, its statements prepared.
fn namespace() -> D1Namespace<SqliteBackend> {
    let backend = SqliteBackend::open_in_memory().expect("in-memory database");
    let kv = D1Namespace::builder(backend)
        .namespace("sessions")
        .clock(ManualClock::new(1_700_000_000_000))
        .build()
        .expect("valid names");
    block_on(
        kv.put("user:00001234", "a small value")
            .expect("put")
            .execute(),
    )
    .expect("put");
    // The first get prepares its statement, and a miss too.
    block_on(kv.get("user:00001234").text()).expect("get");
    block_on(kv.get("missing").text()).expect("get");
    kv
}

/// The same read by hand: a cached statement, the value copied out of its row.
fn raw_get(conn: &Connection, key: &str) -> Option<String> {
    let mut statement = conn
        .prepare_cached("SELECT v FROM t WHERE k = ?1")
        .expect("prepare");
    let mut rows = statement.query([key]).expect("query");
    let row = rows.next().expect("row")?;
    Some(row.get(0).expect("text"))
}

fn raw_table() -> Connection {
    let conn = Connection::open_in_memory().expect("in-memory database");
    conn.execute_batch(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT); \
         INSERT INTO t VALUES ('user:00001234', 'a small value');",
    )
    .expect("table");
    raw_get(&conn, "missing");
    conn
}

/// What rusqlite's statement cache allocates per use (it re-inserts the statement).
const STATEMENT_CACHE: u64 = 1;

#[test]
fn a_get_of_a_small_value_allocates_only_the_value_it_returns() {
    let kv = namespace();
    let (count, value) = allocations(|| block_on(kv.get("user:00001234").text()));
    assert_eq!(value.expect("get").as_deref(), Some("a small value"));
    assert_eq!(
        count,
        1 + STATEMENT_CACHE,
        "allocations of one get(key).text() hit"
    );

    let raw = raw_table();
    let (by_hand, value) = allocations(|| raw_get(&raw, "user:00001234"));
    assert_eq!(value.as_deref(), Some("a small value"));
    assert_eq!(
        count, by_hand,
        "d1ns allocates what the same read by hand does"
    );
}

#[test]
fn a_get_of_a_missing_key_allocates_nothing_of_its_own() {
    let kv = namespace();
    let (count, value) = allocations(|| block_on(kv.get("missing").text()));
    assert_eq!(value.expect("get"), None);
    assert_eq!(
        count, STATEMENT_CACHE,
        "allocations of one get(key).text() miss"
    );

    let raw = raw_table();
    let (by_hand, value) = allocations(|| raw_get(&raw, "missing"));
    assert_eq!(value, None);
    assert_eq!(
        count, by_hand,
        "d1ns allocates what the same read by hand does"
    );
}

#[test]
fn a_long_key_costs_one_allocation_more() {
    let kv = namespace();
    let key = "k".repeat(100);
    block_on(kv.get(&key).text()).expect("get");
    let (count, value) = allocations(|| block_on(kv.get(&key).text()));
    assert_eq!(value.expect("get"), None);
    assert_eq!(
        count,
        1 + STATEMENT_CACHE,
        "the builder keeps a long key on the heap"
    );
}

#[test]
fn a_get_with_metadata_allocates_only_the_value_and_the_metadata() {
    let kv = namespace();
    block_on(
        kv.put("user:1", "v")
            .expect("put")
            .metadata(serde_json::json!({"plan": "free"}))
            .expect("metadata")
            .execute(),
    )
    .expect("put");
    block_on(kv.get("user:1").text_with_metadata::<serde_json::Value>()).expect("get");
    let (count, read) =
        allocations(|| block_on(kv.get("user:1").text_with_metadata::<serde_json::Value>()));
    let (value, metadata) = read.expect("get");
    assert_eq!(value.as_deref(), Some("v"));
    assert_eq!(metadata, Some(serde_json::json!({"plan": "free"})));
    // The value, the metadata's text as read, and the parsed JSON (a map with one string).
    assert!(
        count <= 5 + STATEMENT_CACHE,
        "allocations of one text_with_metadata(): {count}"
    );
}
