//! d1ns over `SqliteBackend` against hand-written rusqlite running the same SQL (prepared, same
//! schema, same file settings), side by side in one run, on a table of 100,000 keys.
//!
//! ```sh
//! cargo bench --bench native            # prints a Markdown table of medians and ratios
//! ```
//!
//! Each operation runs in rounds; every round times a block of d1ns calls and then the same
//! block by hand, so both sides see the same machine state. The hand-written side fetches its
//! statement from rusqlite's statement cache for every operation, as a request handler would
//! and as d1ns does. The table gives the median time per
//! operation of each side and d1ns's throughput as a fraction of raw rusqlite's.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use d1ns::{D1Namespace, ManualClock, SqliteBackend};
use rusqlite::{Connection, params};

const KEYS: usize = 100_000;
const ROUNDS: usize = 21;
const NOW_MS: u64 = 1_700_000_000_000;

/// The statements d1ns runs for each operation (see d1ns-runtime/src/sql.rs), run by hand.
const GET: &str = "SELECT -1, value, metadata, expiration, chunks FROM \"bench_kv_entries\" \
    WHERE namespace = ?1 AND key = ?2 AND (expiration IS NULL OR expiration > ?3) \
    UNION ALL SELECT c.part, c.data, NULL, NULL, NULL FROM \"bench_kv_entries$chunks\" AS c \
    WHERE c.namespace = ?1 AND c.key = ?2 AND (SELECT (expiration IS NULL OR expiration > ?3) \
    FROM \"bench_kv_entries\" AS e WHERE e.namespace = c.namespace AND e.key = c.key)";
const PUT: &str = "INSERT INTO \"bench_kv_entries\" (namespace, key, value, metadata, expiration, chunks) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (namespace, key) DO UPDATE SET \
    value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration, \
    chunks = excluded.chunks";
const DELETE: &str = "DELETE FROM \"bench_kv_entries\" WHERE namespace = ?1 AND key = ?2";
const LIST: &str = "SELECT key, expiration, metadata FROM \"bench_kv_entries\" \
    WHERE namespace = ?1 AND key >= ?2 AND key < ?4 AND (expiration IS NULL OR expiration > ?3) \
    ORDER BY key LIMIT ?5";
const GET_BULK: &str = "SELECT key, value, metadata, chunks FROM \"bench_kv_entries\" \
    WHERE namespace = ?1 AND key IN (SELECT value FROM json_each(?2)) \
    AND (expiration IS NULL OR expiration > ?3)";

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

fn key(i: usize) -> String {
    format!("user:{i:08}")
}

/// Records the SQL d1ns sends, to check that the hand-written side runs the same statements.
struct Capture {
    inner: Arc<SqliteBackend>,
    sql: std::sync::Mutex<Vec<String>>,
}

impl d1ns::Backend for Capture {
    fn batch(
        &self,
        statements: &[d1ns::Statement<'_>],
    ) -> impl Future<Output = Result<Vec<d1ns::QueryResult>, d1ns::DatabaseError>> + Send {
        let mut sql = self.sql.lock().expect("lock");
        sql.extend(statements.iter().map(|s| s.sql.to_owned()));
        self.inner.batch(statements)
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

/// Fails the run if d1ns's statements and the hand-written ones differ.
fn check_same_sql(backend: &Arc<SqliteBackend>) {
    let capture = Arc::new(Capture {
        inner: backend.clone(),
        sql: Default::default(),
    });
    let kv = D1Namespace::builder(capture.clone())
        .namespace("bench")
        .clock(ManualClock::new(NOW_MS))
        .build()
        .expect("names");
    let expect = |what: &str, sql: &str, run: &dyn Fn()| {
        capture.sql.lock().expect("lock").clear();
        run();
        // The last statement is the operation's (the first one also creates the tables).
        let sent = capture.sql.lock().expect("lock").last().cloned();
        let what = format!("the hand-written {what} is not the SQL d1ns sends");
        assert_eq!(sent.as_deref(), Some(sql), "{what}");
    };
    expect("get", GET, &|| drop(block_on(kv.get("k").text())));
    expect("put", PUT, &|| {
        drop(block_on(kv.put("k", "v").expect("put").execute()))
    });
    expect("delete", DELETE, &|| drop(block_on(kv.delete("k"))));
    expect("list", LIST, &|| {
        drop(block_on(kv.list().limit(100).execute()))
    });
    expect("get_bulk", GET_BULK, &|| {
        drop(block_on(kv.get_bulk(&["k"]).text()))
    });
}

struct Sides {
    kv: D1Namespace<Arc<SqliteBackend>>,
    raw: Connection,
}

fn setup(dir: &std::path::Path) -> Sides {
    let d1ns_path: PathBuf = dir.join("d1ns.sqlite");
    let raw_path: PathBuf = dir.join("raw.sqlite");
    for path in [&d1ns_path, &raw_path] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    let backend = Arc::new(SqliteBackend::open(&d1ns_path).expect("open"));
    let kv = D1Namespace::builder(backend.clone())
        .namespace("bench")
        .clock(ManualClock::new(NOW_MS))
        .build()
        .expect("names");
    let raw = Connection::open(&raw_path).expect("open raw");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.execute_batch(&kv.schema_sql()).expect("schema");
    raw.set_prepared_statement_cache_capacity(128);

    check_same_sql(&backend);
    eprintln!("filling both tables with {KEYS} keys ...");
    block_on(kv.get("warm-up").text()).expect("create");
    let fill = |conn: &Connection| {
        let tx = conn.unchecked_transaction().expect("tx");
        {
            let mut put = tx.prepare_cached(PUT).expect("prepare");
            for i in 0..KEYS {
                put.execute(params![
                    "bench",
                    key(i),
                    format!("{{\"id\":{i}}}"),
                    None::<String>,
                    None::<i64>,
                    None::<i64>
                ])
                .expect("fill");
            }
        }
        tx.commit().expect("commit");
    };
    // Fill d1ns's file through its own connection (same rows as d1ns writes), and the raw one.
    fill(&Connection::open(&d1ns_path).expect("open for fill"));
    fill(&raw);
    Sides { kv, raw }
}

/// Median nanoseconds per operation of `block` (which runs `n` operations) over the rounds.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

struct Row {
    name: &'static str,
    d1ns_ns: f64,
    raw_ns: f64,
}

fn compare(
    name: &'static str,
    n: usize,
    mut d1ns_block: impl FnMut(usize),
    mut raw_block: impl FnMut(usize),
) -> Row {
    let mut d1ns_samples = Vec::with_capacity(ROUNDS);
    let mut raw_samples = Vec::with_capacity(ROUNDS);
    // One unmeasured round warms caches on both sides.
    for round in 0..=ROUNDS {
        let start = Instant::now();
        d1ns_block(round);
        let d1ns_time = start.elapsed();
        let start = Instant::now();
        raw_block(round);
        let raw_time = start.elapsed();
        if round > 0 {
            d1ns_samples.push(d1ns_time.as_nanos() as f64 / n as f64);
            raw_samples.push(raw_time.as_nanos() as f64 / n as f64);
        }
    }
    let row = Row {
        name,
        d1ns_ns: median(d1ns_samples),
        raw_ns: median(raw_samples),
    };
    eprintln!(
        "{name}: d1ns {:.1} µs, raw {:.1} µs",
        row.d1ns_ns / 1e3,
        row.raw_ns / 1e3
    );
    row
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: only check that it starts.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("run with `cargo bench --bench native`");
        return;
    }
    let dir = std::env::temp_dir().join("d1ns-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let Sides { kv, raw } = setup(&dir);
    let now = NOW_MS as i64;
    let n = 2_000;
    let mut rows = Vec::new();

    rows.push(compare(
        "get (hit)",
        n,
        |r| {
            for i in 0..n {
                black_box(block_on(kv.get(&key((i * 37 + r) % KEYS)).text()).expect("get"));
            }
        },
        |r| {
            for i in 0..n {
                let mut stmt = raw.prepare_cached(GET).expect("prepare");
                let mut rows = stmt
                    .query(params!["bench", key((i * 37 + r) % KEYS), now])
                    .expect("query");
                let row = rows.next().expect("row").expect("hit");
                black_box(row.get::<_, String>(1).expect("value"));
            }
        },
    ));
    rows.push(compare(
        "get (miss)",
        n,
        |r| {
            for i in 0..n {
                black_box(block_on(kv.get(&format!("missing:{i}:{r}")).text()).expect("get"));
            }
        },
        |r| {
            for i in 0..n {
                let mut stmt = raw.prepare_cached(GET).expect("prepare");
                let mut rows = stmt
                    .query(params!["bench", format!("missing:{i}:{r}"), now])
                    .expect("query");
                black_box(rows.next().expect("row").is_none());
            }
        },
    ));
    let put_n = 500;
    rows.push(compare(
        "put",
        put_n,
        |r| {
            for i in 0..put_n {
                block_on(
                    kv.put(&key((i * 13 + r) % KEYS), "{\"id\":1}")
                        .expect("put")
                        .execute(),
                )
                .expect("put");
            }
        },
        |r| {
            for i in 0..put_n {
                let mut stmt = raw.prepare_cached(PUT).expect("prepare");
                stmt.execute(params![
                    "bench",
                    key((i * 13 + r) % KEYS),
                    "{\"id\":1}",
                    None::<String>,
                    None::<i64>,
                    None::<i64>
                ])
                .expect("put");
            }
        },
    ));
    rows.push(compare(
        "put with TTL",
        put_n,
        |r| {
            for i in 0..put_n {
                let put = kv
                    .put(&key((i * 17 + r) % KEYS), "{\"id\":2}")
                    .expect("put");
                block_on(put.expiration_ttl(3600).execute()).expect("put");
            }
        },
        |r| {
            for i in 0..put_n {
                let mut stmt = raw.prepare_cached(PUT).expect("prepare");
                stmt.execute(params![
                    "bench",
                    key((i * 17 + r) % KEYS),
                    "{\"id\":2}",
                    None::<String>,
                    now + 3_600_000,
                    None::<i64>
                ])
                .expect("put");
            }
        },
    ));
    rows.push(compare(
        "delete",
        put_n,
        |r| {
            for i in 0..put_n {
                block_on(kv.delete(&key((i * 19 + r * 500) % KEYS))).expect("delete");
            }
        },
        |r| {
            for i in 0..put_n {
                let mut stmt = raw.prepare_cached(DELETE).expect("prepare");
                stmt.execute(params!["bench", key((i * 19 + r * 500) % KEYS)])
                    .expect("delete");
            }
        },
    ));
    let list_n = 200;
    rows.push(compare(
        "list, page of 100",
        list_n,
        |r| {
            for i in 0..list_n {
                let prefix = format!("user:000{}", (i + r) % 10);
                black_box(block_on(kv.list().prefix(prefix).limit(100).execute()).expect("list"));
            }
        },
        |r| {
            for i in 0..list_n {
                let mut stmt = raw.prepare_cached(LIST).expect("prepare");
                let digit = (i + r) % 10;
                let low = format!("user:000{digit}");
                let high = format!("user:000{}", char::from(b'0' + digit as u8 + 1));
                let rows = stmt
                    .query_map(params!["bench", low, now, high, 101], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    })
                    .expect("list");
                black_box(rows.map(|r| r.expect("row")).take(100).collect::<Vec<_>>());
            }
        },
    ));
    rows.push(compare(
        "get_bulk of 100",
        list_n,
        |r| {
            for i in 0..list_n {
                let keys: Vec<String> = (0..100)
                    .map(|j| key((i * 100 + j * 7 + r) % KEYS))
                    .collect();
                black_box(block_on(kv.get_bulk(&keys).text()).expect("bulk"));
            }
        },
        |r| {
            for i in 0..list_n {
                let mut stmt = raw.prepare_cached(GET_BULK).expect("prepare");
                let keys: Vec<String> = (0..100)
                    .map(|j| key((i * 100 + j * 7 + r) % KEYS))
                    .collect();
                let json = serde_json::to_string(&keys).expect("json");
                let found: std::collections::HashMap<String, String> = stmt
                    .query_map(params!["bench", json, now], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .expect("bulk")
                    .map(|r| r.expect("row"))
                    .collect();
                black_box(found);
            }
        },
    ));
    let mib = "m".repeat(1 << 20);
    let big_n = 20;
    rows.push(compare(
        "1 MiB value, put + get",
        big_n,
        |r| {
            for i in 0..big_n {
                let k = format!("big:{}", (i + r) % 4);
                block_on(kv.put(&k, mib.as_str()).expect("put").execute()).expect("put");
                black_box(block_on(kv.get(&k).text()).expect("get"));
            }
        },
        |r| {
            for i in 0..big_n {
                let mut put = raw.prepare_cached(PUT).expect("prepare");
                let k = format!("big:{}", (i + r) % 4);
                put.execute(params![
                    "bench",
                    k,
                    mib.as_str(),
                    None::<String>,
                    None::<i64>,
                    None::<i64>
                ])
                .expect("put");
                let mut get = raw.prepare_cached(GET).expect("prepare");
                let mut rows = get.query(params!["bench", k, now]).expect("get");
                black_box(
                    rows.next()
                        .expect("row")
                        .expect("hit")
                        .get::<_, String>(1)
                        .expect("value"),
                );
            }
        },
    ));

    println!(
        "\n| operation | d1ns (median per op) | raw rusqlite (median per op) | d1ns throughput / raw |"
    );
    println!("|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.2} |",
            row.name,
            human(row.d1ns_ns),
            human(row.raw_ns),
            row.raw_ns / row.d1ns_ns
        );
    }
    println!(
        "\n{KEYS} keys per table; {ROUNDS} rounds per operation; medians of the per-round mean."
    );
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}
