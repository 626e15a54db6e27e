//! d1ns over `SqliteBackend` against hand-written rusqlite running the same SQL (prepared, same
//! schema, same file settings), side by side in one run, on a table of 100,000 keys.
//!
//! ```sh
//! cargo bench --bench native            # prints Markdown tables of medians and ratios
//! cargo bench --bench native -- get     # only the cases whose names contain "get" (to profile)
//! D1NS_BENCH_SMOKE=1 cargo bench --bench native   # CI: every case, tiny sizes, seconds
//! ```
//!
//! The smoke mode runs every case on small tables and one round: its figures mean nothing, but
//! it fails, as the full run does, when a hand-written side no longer runs the SQL d1ns sends.
//!
//! Each operation runs in rounds; every round times a block of d1ns calls and then the same
//! block by hand, so both sides see the same machine state. The hand-written side fetches its
//! statement from rusqlite's statement cache for every operation, as a request handler would
//! and as d1ns does. The table gives the median time per
//! operation of each side and d1ns's throughput as a fraction of raw rusqlite's.
//!
//! A second table times a get of one small key among 200 neighbours of each value size (a file
//! database of its own per size, all timed in turn in every round), against the same get among
//! 100-byte neighbours: large neighbours must not slow down a small key's get.

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use d1ns::limits::{MAX_CHUNK_BYTES, MAX_IN_ROW_VALUE_BYTES};
use d1ns::{D1Namespace, ManualClock, SqliteBackend};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// Keys per table, rounds per case, and operations per round, or their smoke-mode sizes.
fn keys() -> usize {
    if smoke() { 2_000 } else { 100_000 }
}

fn rounds() -> usize {
    if smoke() { 1 } else { 21 }
}

/// `n` operations per round, or a twentieth of them in the smoke mode.
fn scaled(n: usize) -> usize {
    if smoke() { n.div_ceil(20) } else { n }
}

fn smoke() -> bool {
    static SMOKE: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("D1NS_BENCH_SMOKE").is_some());
    *SMOKE
}
const NOW_MS: u64 = 1_700_000_000_000;

/// The statements d1ns runs for each operation (see d1ns-runtime/src/sql.rs), run by hand.
const GET: &str = "SELECT NULL AS c0, value AS c1, metadata AS c2, expiration AS c3, \
    chunks AS c4, size AS c5, version AS c6 FROM \"bench_kv_entries\" \
    WHERE namespace = ?1 AND key = ?2 AND (expiration IS NULL OR expiration > ?3) \
    UNION ALL SELECT c.part, c.data, NULL, NULL, NULL, NULL, NULL FROM \"bench_kv_entries$chunks\" AS c \
    WHERE c.namespace = ?1 AND c.key = ?2 AND (SELECT (expiration IS NULL OR expiration > ?3) \
    AND c.part < e.chunks FROM \"bench_kv_entries\" AS e \
    WHERE e.namespace = c.namespace AND e.key = c.key)";
const PUT: &str = "INSERT INTO \"bench_kv_entries\" \
    (namespace, key, value, metadata, expiration, chunks, size, version) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (namespace, key) DO UPDATE SET \
    value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration, \
    chunks = excluded.chunks, size = excluded.size, version = excluded.version";
/// An atomic commit's check statement: fails the batch when a check does not hold.
const CHECK: &str = "SELECT json_extract('{}', 'd1ns' || '-abort:check:' || '' \
    || substr(typeof(c.key), 1, 0)) AS c0 FROM json_each(?2) AS c WHERE (SELECT coalesce(e.version, \
    '00000000000000000000000000000000') FROM \"bench_kv_entries\" AS e \
    WHERE e.namespace = ?1 AND e.key = json_extract(c.value, '$[0]') \
    AND (e.expiration IS NULL OR e.expiration > ?3)) IS NOT json_extract(c.value, '$[1]')";
/// A sum (and `increment`): adds to a live integer, or starts from the operand.
const SUM: &str = "INSERT INTO \"bench_kv_entries\" \
    (namespace, key, value, metadata, expiration, chunks, size, version) \
    VALUES (?1, ?2, CAST(CAST(?3 AS INTEGER) AS TEXT), ?4, ?5, NULL, NULL, ?6) \
    ON CONFLICT (namespace, key) DO UPDATE SET \
    value = CASE WHEN NOT (expiration IS NULL OR expiration > ?7) THEN excluded.value \
    WHEN chunks IS NOT NULL OR CAST(CAST(value AS INTEGER) AS TEXT) IS NOT CAST(value AS TEXT) \
    THEN json_extract('{}', 'd1ns' || '-abort:not-integer:' || ?8 \
    || substr(typeof(value), 1, 0)) \
    WHEN (CAST(?3 AS INTEGER) > 0 AND CAST(value AS INTEGER) > 9223372036854775807 - \
    CAST(?3 AS INTEGER)) OR (CAST(?3 AS INTEGER) < 0 AND CAST(value AS INTEGER) < \
    (-9223372036854775807 - 1) - CAST(?3 AS INTEGER)) \
    THEN json_extract('{}', 'd1ns' || '-abort:overflow:' || ?8 \
    || substr(typeof(value), 1, 0)) \
    ELSE CAST(CAST(value AS INTEGER) + CAST(?3 AS INTEGER) AS TEXT) END, \
    metadata = CASE WHEN (expiration IS NULL OR expiration > ?7) THEN metadata \
    ELSE excluded.metadata END, \
    expiration = CASE WHEN (expiration IS NULL OR expiration > ?7) THEN expiration \
    ELSE excluded.expiration END, \
    chunks = NULL, size = NULL, version = excluded.version RETURNING value AS c0";
const DELETE_CHUNKS: &str =
    "DELETE FROM \"bench_kv_entries$chunks\" WHERE namespace = ?1 AND key = ?2";
const PUT_CHUNK: &str = "INSERT OR REPLACE INTO \"bench_kv_entries$chunks\" \
    (namespace, key, part, data) VALUES (?1, ?2, ?3, ?4)";
const DELETE: &str = "DELETE FROM \"bench_kv_entries\" WHERE namespace = ?1 AND key = ?2";
const LIST: &str = "SELECT key AS c0, expiration AS c1, metadata AS c2 FROM \"bench_kv_entries\" \
    WHERE namespace = ?1 AND key >= ?2 AND key < ?4 AND (expiration IS NULL OR expiration > ?3) \
    ORDER BY key LIMIT ?5";
/// One key of a bulk read; a bulk read sends one per key, in one transaction.
const GET_BULK: &str = "SELECT c.part AS c0, CASE WHEN c.part IS NULL THEN \
    CASE WHEN octet_length(p.value) <= ?4 THEN p.value END ELSE c.data END AS c1, \
    p.metadata AS c2, p.chunks AS c3, p.size AS c4, octet_length(p.value) AS c5, \
    p.expiration AS c6, p.version AS c7, \
    CASE WHEN c.part IS NOT NULL THEN substr(p.value, 1, 0) END AS c8 \
    FROM (SELECT namespace, key, value, metadata, chunks, size, expiration, version \
    FROM \"bench_kv_entries\" WHERE namespace = ?1 AND key = ?2 \
    AND (expiration IS NULL OR expiration > ?3) LIMIT 1) AS p \
    LEFT JOIN \"bench_kv_entries$chunks\" AS c ON c.namespace = p.namespace \
    AND c.key = CASE WHEN p.chunks > 0 AND p.size <= ?4 THEN p.key END AND c.part < p.chunks";
/// The largest value a bulk read's first statement returns (d1ns's `BULK_INLINE_BYTES`).
const BULK_INLINE_BYTES: i64 = 128 * 1024;

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

/// The hand-written side's versionstamp: the cheapest distinct text (d1ns draws 128 random bits),
/// so that the ratio shows all that d1ns adds.
fn raw_version() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The hand-written get: the entry's row and its chunks, joined in part order.
fn raw_get(conn: &Connection, key: &str, now: i64) -> Option<String> {
    let mut stmt = conn.prepare_cached(GET).expect("prepare");
    let mut rows = stmt.query(params!["bench", key, now]).expect("get");
    let mut value = None;
    let mut chunks: Vec<(i64, String)> = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        match row.get::<_, Option<i64>>(0).expect("part") {
            None => value = Some(row.get::<_, String>(1).expect("value")),
            Some(part) => chunks.push((part, row.get(1).expect("chunk"))),
        }
    }
    let value = value?;
    if chunks.is_empty() {
        return Some(value);
    }
    chunks.sort_unstable_by_key(|(part, _)| *part);
    Some(chunks.into_iter().map(|(_, data)| data).collect())
}

/// The hand-written put: the entry alone, or (for a value over the in-row limit) the entry, its
/// old chunks removed and the new ones written, in one write transaction.
fn raw_put(conn: &Connection, key: &str, value: &str, expiration: Option<i64>) {
    if value.len() <= MAX_IN_ROW_VALUE_BYTES {
        let mut stmt = conn.prepare_cached(PUT).expect("prepare");
        stmt.execute(params![
            "bench",
            key,
            value,
            None::<String>,
            expiration,
            None::<i64>,
            None::<i64>,
            raw_version()
        ])
        .expect("put");
        return;
    }
    let mut chunks = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).expect("tx");
    tx.prepare_cached(PUT)
        .expect("prepare")
        .execute(params![
            "bench",
            key,
            "",
            None::<String>,
            expiration,
            chunks.len() as i64,
            value.len() as i64,
            raw_version()
        ])
        .expect("put");
    tx.prepare_cached(DELETE_CHUNKS)
        .expect("prepare")
        .execute(params!["bench", key])
        .expect("delete chunks");
    let mut put_chunk = tx.prepare_cached(PUT_CHUNK).expect("prepare");
    for (part, chunk) in chunks.into_iter().enumerate() {
        put_chunk
            .execute(params!["bench", key, part as i64, chunk])
            .expect("put chunk");
    }
    drop(put_chunk);
    tx.commit().expect("commit");
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
    let kv = namespace(capture.clone());
    let expect = |what: &str, sql: &[&str], run: &dyn Fn()| {
        capture.sql.lock().expect("lock").clear();
        run();
        // The last statements are the operation's (the first call also creates the tables).
        let sent = capture.sql.lock().expect("lock").clone();
        let tail = &sent[sent.len().saturating_sub(sql.len())..];
        let what = format!("the hand-written {what} is not the SQL d1ns sends");
        assert_eq!(tail, sql, "{what}");
    };
    expect("get", &[GET], &|| drop(block_on(kv.get("k").text())));
    expect("put", &[PUT], &|| {
        drop(block_on(kv.put("k", "v").expect("put").execute()))
    });
    let long = "l".repeat(MAX_IN_ROW_VALUE_BYTES + 1);
    expect(
        "put of a long value",
        &[PUT, DELETE_CHUNKS, PUT_CHUNK],
        &|| drop(block_on(kv.put("k", long.as_str()).expect("put").execute())),
    );
    expect("delete", &[DELETE], &|| drop(block_on(kv.delete("k"))));
    expect("list", &[LIST], &|| {
        drop(block_on(kv.list().limit(100).execute()))
    });
    expect("get_bulk", &[GET_BULK], &|| {
        drop(block_on(kv.get_bulk(&["k"]).text()))
    });
    expect("commit of check + put", &[CHECK, PUT], &|| {
        drop(block_on(
            kv.atomic().check("k", None).put("k", "v").commit(),
        ))
    });
    expect("sum", &[SUM], &|| {
        drop(block_on(kv.atomic().sum("n", 1).commit()))
    });
    expect("increment", &[SUM], &|| {
        drop(block_on(kv.increment("n", 1)))
    });
}

/// The hand-written commit of one check and one put: both statements in one write transaction,
/// as `SqliteBackend` runs a batch; `false` when the check failed (and nothing was written).
fn raw_check_and_put(conn: &Connection, key: &str, version: Option<&str>, value: &str) -> bool {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).expect("tx");
    let checks = serde_json::to_string(&[(key, version)]).expect("json");
    let failed = tx
        .prepare_cached(CHECK)
        .expect("prepare")
        .query(params!["bench", checks, NOW_MS as i64])
        .expect("check")
        .next()
        .is_err();
    if failed {
        return false;
    }
    tx.prepare_cached(PUT)
        .expect("prepare")
        .execute(params![
            "bench",
            key,
            value,
            None::<String>,
            None::<i64>,
            None::<i64>,
            None::<i64>,
            raw_version()
        ])
        .expect("put");
    tx.commit().expect("commit");
    true
}

/// The hand-written sum: one statement, its new value back.
fn raw_sum(conn: &Connection, key: &str, delta: i64) -> i64 {
    let mut stmt = conn.prepare_cached(SUM).expect("prepare");
    let mut rows = stmt
        .query(params![
            "bench",
            key,
            delta.to_string(),
            None::<String>,
            None::<i64>,
            raw_version(),
            NOW_MS as i64,
            "0"
        ])
        .expect("sum");
    let text: String = rows
        .next()
        .expect("row")
        .expect("a row")
        .get(0)
        .expect("value");
    // Stepped to the end, so the write commits here (as d1ns's backend does).
    while rows.next().expect("row").is_some() {}
    text.parse().expect("integer")
}

/// The hand-written read of a value with its version, as a compare-and-swap loop starts.
fn raw_get_version(conn: &Connection, key: &str) -> Option<(String, String)> {
    let mut stmt = conn.prepare_cached(GET).expect("prepare");
    let mut rows = stmt
        .query(params!["bench", key, NOW_MS as i64])
        .expect("get");
    let row = rows.next().expect("row")?;
    Some((row.get(1).expect("value"), row.get(6).expect("version")))
}

/// The namespace both sides' tables belong to, on a fixed clock.
fn namespace<B: d1ns::Backend>(backend: B) -> D1Namespace<B> {
    D1Namespace::builder(backend)
        .namespace("bench")
        .clock(ManualClock::new(NOW_MS))
        .build()
        .expect("names")
}

/// Removes a database file and its WAL files.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

struct Sides {
    kv: D1Namespace<Arc<SqliteBackend>>,
    raw: Connection,
}

fn setup(dir: &Path) -> Sides {
    let d1ns_path: PathBuf = dir.join("d1ns.sqlite");
    let raw_path: PathBuf = dir.join("raw.sqlite");
    remove_database(&d1ns_path);
    remove_database(&raw_path);
    let backend = Arc::new(SqliteBackend::open(&d1ns_path).expect("open"));
    let kv = namespace(backend.clone());
    let raw = Connection::open(&raw_path).expect("open raw");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.execute_batch(&kv.schema_sql()).expect("schema");
    raw.set_prepared_statement_cache_capacity(128);

    check_same_sql(&backend);
    eprintln!("filling both tables with {} keys ...", keys());
    block_on(kv.get("warm-up").text()).expect("create");
    let fill = |conn: &Connection| {
        let tx = conn.unchecked_transaction().expect("tx");
        for i in 0..keys() {
            raw_put(&tx, &key(i), &format!("{{\"id\":{i}}}"), None);
        }
        tx.commit().expect("commit");
    };
    // Fill d1ns's file through its own connection (same rows as d1ns writes), and the raw one.
    fill(&Connection::open(&d1ns_path).expect("open for fill"));
    fill(&raw);
    Sides { kv, raw }
}

/// Median of the samples.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

struct Row {
    name: &'static str,
    d1ns_ns: f64,
    raw_ns: f64,
}

/// Whether the command line selects the case `name`: no filter, or one it contains.
fn selected(name: &str) -> bool {
    let mut filters = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let mut any = false;
    filters.any(|f| {
        any = true;
        name.contains(&f)
    }) || !any
}

/// Times `d1ns_block` and `raw_block` (each runs `n` operations) in `rounds` rounds after one
/// unmeasured round, and returns the median time per operation of each; `None` when the case
/// is not selected.
fn compare(
    name: &'static str,
    rounds: usize,
    n: usize,
    mut d1ns_block: impl FnMut(usize),
    mut raw_block: impl FnMut(usize),
) -> Option<Row> {
    if !selected(name) {
        return None;
    }
    let mut d1ns_samples = Vec::with_capacity(rounds);
    let mut raw_samples = Vec::with_capacity(rounds);
    for round in 0..=rounds {
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
        "{name}: d1ns {}, raw {}",
        human(row.d1ns_ns),
        human(row.raw_ns)
    );
    Some(row)
}

/// Neighbours of the small key in the neighbour-size comparison, and gets of it per round.
fn neighbour_count() -> usize {
    if smoke() { 5 } else { 200 }
}

fn neighbour_gets() -> usize {
    scaled(500)
}
const NEIGHBOUR_SIZES: [(&str, usize); 5] = [
    ("100 B", 100),
    ("16 KiB", 16 << 10),
    ("256 KiB", 256 << 10),
    ("1 MiB", 1 << 20),
    ("1.8 MB", 1_800_000),
];

/// A file database holding one small key among [`neighbour_count()`] keys with values of one
/// size, open through d1ns and by hand.
struct Neighbourhood {
    label: &'static str,
    path: PathBuf,
    kv: D1Namespace<SqliteBackend>,
    raw: Connection,
}

/// The small key, in the middle of its neighbours, so every seek passes some.
fn small_key() -> String {
    format!("n:{:03}", neighbour_count() / 2)
}

fn neighbourhood(dir: &Path, label: &'static str, size: usize) -> Neighbourhood {
    let path = dir.join(format!("neighbours-{size}.sqlite"));
    remove_database(&path);
    let kv = namespace(SqliteBackend::open(&path).expect("open"));
    let value = "n".repeat(size);
    // Keys n:000..n:200 with the small key in the middle.
    let small = small_key();
    for i in 0..=neighbour_count() {
        let key = format!("n:{i:03}");
        let value = if key == small { "small" } else { &value };
        block_on(kv.put(&key, value).expect("put").execute()).expect("put");
    }
    let raw = Connection::open(&path).expect("open raw");
    raw.set_prepared_statement_cache_capacity(128);
    Neighbourhood {
        label,
        path,
        kv,
        raw,
    }
}

/// Median time per get of the small key in each neighbourhood, d1ns and by hand. Every round
/// visits all neighbourhoods in turn, so a burst of load on the machine hits all sizes alike.
fn small_gets_among_neighbours(dir: &Path) -> Vec<Row> {
    if !selected("neighbours") {
        return Vec::new();
    }
    let hoods: Vec<Neighbourhood> = NEIGHBOUR_SIZES
        .iter()
        .map(|&(label, size)| neighbourhood(dir, label, size))
        .collect();
    let now = NOW_MS as i64;
    let small = small_key();
    let mut samples = vec![(Vec::new(), Vec::new()); hoods.len()];
    for round in 0..=rounds() {
        for (hood, (d1ns_samples, raw_samples)) in hoods.iter().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..neighbour_gets() {
                black_box(block_on(hood.kv.get(&small).text()).expect("get"));
            }
            let d1ns_time = start.elapsed();
            let start = Instant::now();
            for _ in 0..neighbour_gets() {
                black_box(raw_get(&hood.raw, &small, now).expect("hit"));
            }
            let raw_time = start.elapsed();
            if round > 0 {
                d1ns_samples.push(d1ns_time.as_nanos() as f64 / neighbour_gets() as f64);
                raw_samples.push(raw_time.as_nanos() as f64 / neighbour_gets() as f64);
            }
        }
    }
    hoods
        .into_iter()
        .zip(samples)
        .map(|(hood, (d1ns_samples, raw_samples))| {
            let Neighbourhood {
                label,
                path,
                kv,
                raw,
            } = hood;
            drop((kv, raw));
            remove_database(&path);
            Row {
                name: label,
                d1ns_ns: median(d1ns_samples),
                raw_ns: median(raw_samples),
            }
        })
        .collect()
}

/// The records of the index comparison: each `user_id` has [`MATCHES`] entries.
#[d1ns::d1_namespace(name = "bidx", index(user_id))]
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Record {
    user_id: u32,
    name: String,
}

/// Entries per `user_id` in the index comparison.
const MATCHES: usize = 10;
/// Look-ups per round in the index comparison.
fn look_ups() -> usize {
    scaled(200)
}

/// The indexed expression of `user_id`, as d1ns writes it (see d1ns-runtime/src/sql.rs).
const USER_ID_EXPR: &str = "(CASE WHEN typeof(value) != 'text' THEN NULL \
    WHEN chunks IS NULL THEN CASE WHEN json_valid(value) \
    THEN json_extract(value, '$.\"user_id\"') END \
    WHEN substr(value, 1, 1) = '#' AND json_valid(substr(value, 2)) \
    THEN json_extract(substr(value, 2), '$.\"user_id\"') END)";

/// The look-up d1ns sends for a page of `Record`s by `user_id`, written by hand, naming the
/// index as it is in the database (its name ends in a hash of the namespace and field).
fn find_sql(conn: &Connection) -> String {
    let index: String = conn
        .query_row(
            "SELECT name FROM sqlite_schema WHERE type = 'index' \
             AND name LIKE 'bidx_kv_entries$index$bidx$user_id$%'",
            [],
            |row| row.get(0),
        )
        .expect("the index d1ns made");
    format!(
        "SELECT p.key AS c0, c.part AS c1, \
         CASE WHEN c.part IS NULL THEN p.value ELSE c.data END AS c2, \
         p.metadata AS c3, p.expiration AS c4, p.chunks AS c5, p.size AS c6, \
         p.version AS c7 \
         FROM (SELECT key, value, metadata, expiration, chunks, size, version \
         FROM \"bidx_kv_entries\" INDEXED BY \"{index}\" \
         WHERE namespace = 'bidx' AND {USER_ID_EXPR} = ?1 AND key > ?2 \
         AND (expiration IS NULL OR expiration > ?3) ORDER BY key LIMIT ?4) AS p \
         LEFT JOIN \"bidx_kv_entries$chunks\" AS c ON c.namespace = 'bidx' \
         AND c.key = CASE WHEN p.chunks > 0 AND p.size <= ?5 THEN p.key END \
         AND c.part < p.chunks"
    )
}

/// The hand-written look-up: the page's rows, each value decoded as d1ns decodes it.
fn raw_find(conn: &Connection, sql: &str, user_id: u32) -> Vec<(String, Record)> {
    let mut stmt = conn.prepare_cached(sql).expect("prepare");
    let rows = stmt
        .query_map(
            params![user_id, "", NOW_MS as i64, 1001, BULK_INLINE_BYTES],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(2)?)),
        )
        .expect("find");
    rows.map(|row| {
        let (key, value) = row.expect("row");
        let record = serde_json::from_str(&value).expect("json");
        (key, record)
    })
    .collect()
}

/// A file database of `entries` records, [`MATCHES`] per `user_id`, through d1ns and by hand.
fn index_database(
    dir: &Path,
    entries: usize,
) -> (
    d1ns::TypedNamespace<Record, SqliteBackend>,
    Connection,
    PathBuf,
) {
    let path = dir.join(format!("index-{entries}.sqlite"));
    remove_database(&path);
    let records = Record::namespace(SqliteBackend::open(&path).expect("open"));
    // Created (with its index) by d1ns's first operation; filled by hand in one transaction.
    block_on(records.get("warm-up")).expect("create");
    let raw = Connection::open(&path).expect("open raw");
    raw.set_prepared_statement_cache_capacity(128);
    let tx = raw.unchecked_transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO \"bidx_kv_entries\" (namespace, key, value, version) \
                      VALUES ('bidx', ?1, ?2, ?3)",
            )
            .expect("prepare");
        for i in 0..entries {
            let value = format!("{{\"user_id\":{},\"name\":\"user {i}\"}}", i / MATCHES);
            insert
                .execute(params![format!("r:{i:08}"), value, raw_version()])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    (records, raw, path)
}

/// Look-ups of [`MATCHES`] entries by an index in namespaces of 10,000 and 100,000 entries, d1ns
/// and by hand on the same file: the time must follow the matches, not the namespace's size.
fn look_ups_by_index(dir: &Path) -> Vec<Row> {
    if !selected("index") {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for (name, entries) in [
        ("find by index, 10 of 10,000 entries", 10_000),
        ("find by index, 10 of 100,000 entries", 100_000),
    ] {
        let entries = if smoke() { entries / 50 } else { entries };
        let (records, raw, path) = index_database(dir, entries);
        let users = (entries / MATCHES) as u32;
        let sql = find_sql(&raw);
        // The hand-written statement is the one d1ns sends.
        let capture = Arc::new(Capture {
            inner: Arc::new(SqliteBackend::open(&path).expect("open")),
            sql: Default::default(),
        });
        block_on(
            Record::namespace(capture.clone())
                .find(Record::USER_ID, &7)
                .execute(),
        )
        .expect("find");
        let sent = capture.sql.lock().expect("lock").clone();
        assert_eq!(
            sent.last(),
            Some(&sql),
            "the hand-written find is not the SQL d1ns sends"
        );
        // The hand-written statement is the one d1ns sends: both find the same entries.
        let by_d1ns = block_on(records.find(Record::USER_ID, &7).execute()).expect("find");
        let by_hand = raw_find(&raw, &sql, 7);
        assert_eq!(by_d1ns.entries.len(), MATCHES);
        assert_eq!(
            by_d1ns.entries.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            by_hand.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        rows.extend(compare(
            name,
            rounds(),
            look_ups(),
            |r| {
                for i in 0..look_ups() {
                    let user = ((i * 7919 + r) as u32) % users;
                    let page = block_on(records.find(Record::USER_ID, &user).execute());
                    black_box(page.expect("find"));
                }
            },
            |r| {
                for i in 0..look_ups() {
                    let user = ((i * 7919 + r) as u32) % users;
                    black_box(raw_find(&raw, &sql, user));
                }
            },
        ));
        drop((records, raw));
        remove_database(&path);
    }
    rows
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: only check that it starts.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("run with `cargo bench --bench native`");
        return;
    }
    let started = Instant::now();
    let dir = std::env::temp_dir().join("d1ns-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let Sides { kv, raw } = setup(&dir);
    let now = NOW_MS as i64;
    let n = scaled(2_000);
    let mut rows = Vec::new();

    rows.extend(compare(
        "get (hit)",
        rounds(),
        n,
        |r| {
            for i in 0..n {
                black_box(block_on(kv.get(&key((i * 37 + r) % keys())).text()).expect("get"));
            }
        },
        |r| {
            for i in 0..n {
                black_box(raw_get(&raw, &key((i * 37 + r) % keys()), now).expect("hit"));
            }
        },
    ));
    rows.extend(compare(
        "get (miss)",
        rounds(),
        n,
        |r| {
            for i in 0..n {
                black_box(block_on(kv.get(&format!("missing:{i}:{r}")).text()).expect("get"));
            }
        },
        |r| {
            for i in 0..n {
                black_box(raw_get(&raw, &format!("missing:{i}:{r}"), now));
            }
        },
    ));
    let put_n = scaled(500);
    rows.extend(compare(
        "put",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                block_on(
                    kv.put(&key((i * 13 + r) % keys()), "{\"id\":1}")
                        .expect("put")
                        .execute(),
                )
                .expect("put");
            }
        },
        |r| {
            for i in 0..put_n {
                raw_put(&raw, &key((i * 13 + r) % keys()), "{\"id\":1}", None);
            }
        },
    ));
    rows.extend(compare(
        "put with TTL",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                let put = kv
                    .put(&key((i * 17 + r) % keys()), "{\"id\":2}")
                    .expect("put");
                block_on(put.expiration_ttl(3600).execute()).expect("put");
            }
        },
        |r| {
            for i in 0..put_n {
                raw_put(
                    &raw,
                    &key((i * 17 + r) % keys()),
                    "{\"id\":2}",
                    Some(now + 3_600_000),
                );
            }
        },
    ));
    rows.extend(compare(
        "delete",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                block_on(kv.delete(&key((i * 19 + r * 500) % keys()))).expect("delete");
            }
        },
        |r| {
            for i in 0..put_n {
                let mut stmt = raw.prepare_cached(DELETE).expect("prepare");
                stmt.execute(params!["bench", key((i * 19 + r * 500) % keys())])
                    .expect("delete");
            }
        },
    ));
    let list_n = scaled(200);
    rows.extend(compare(
        "list, page of 100",
        rounds(),
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
    rows.extend(compare(
        "get_bulk of 100",
        rounds(),
        list_n,
        |r| {
            for i in 0..list_n {
                let keys: Vec<String> = (0..100)
                    .map(|j| key((i * 100 + j * 7 + r) % keys()))
                    .collect();
                black_box(block_on(kv.get_bulk(&keys).text()).expect("bulk"));
            }
        },
        |r| {
            for i in 0..list_n {
                let keys: Vec<String> = (0..100)
                    .map(|j| key((i * 100 + j * 7 + r) % keys()))
                    .collect();
                // One statement per key in one read transaction, as d1ns's batch; the values
                // here are all in their rows: the entries' rows are the whole answer.
                let tx =
                    Transaction::new_unchecked(&raw, TransactionBehavior::Deferred).expect("tx");
                let mut found = std::collections::HashMap::with_capacity(keys.len());
                for key in keys {
                    let mut stmt = tx.prepare_cached(GET_BULK).expect("prepare");
                    let value: Option<String> = stmt
                        .query_row(params!["bench", key, now, BULK_INLINE_BYTES], |row| {
                            row.get(1)
                        })
                        .optional()
                        .expect("bulk");
                    if let Some(value) = value {
                        found.insert(key, value);
                    }
                }
                tx.commit().expect("commit");
                black_box(found);
            }
        },
    ));
    rows.extend(compare(
        "commit: check absent + put",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                let k = format!("new:d1ns:{r}:{i}");
                let committed = block_on(kv.atomic().check(&k, None).put(&k, "v").commit());
                assert!(committed.expect("commit").is_some());
            }
        },
        |r| {
            for i in 0..put_n {
                let k = format!("new:raw:{r}:{i}");
                assert!(raw_check_and_put(&raw, &k, None, "v"));
            }
        },
    ));
    rows.extend(compare(
        "compare-and-swap: get entry + check + put",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                let k = key((i * 23 + r) % keys());
                // The delete case above removed some keys: then the check is that it is absent.
                let entry = block_on(kv.get(&k).text_entry::<()>()).expect("get");
                let put = kv
                    .atomic()
                    .check(&k, entry.map(|e| e.version))
                    .put(&k, "{\"id\":3}");
                assert!(block_on(put.commit()).expect("commit").is_some());
            }
        },
        |r| {
            for i in 0..put_n {
                let k = key((i * 23 + r) % keys());
                let version = raw_get_version(&raw, &k).map(|(_, version)| version);
                assert!(raw_check_and_put(
                    &raw,
                    &k,
                    version.as_deref(),
                    "{\"id\":3}"
                ));
            }
        },
    ));
    rows.extend(compare(
        "sum (commit of one sum)",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                let k = format!("counter:{}", (i + r) % 50);
                block_on(kv.atomic().sum(&k, 1).commit()).expect("sum");
            }
        },
        |r| {
            for i in 0..put_n {
                let k = format!("counter:{}", (i + r) % 50);
                black_box(raw_sum(&raw, &k, 1));
            }
        },
    ));
    rows.extend(compare(
        "increment",
        rounds(),
        put_n,
        |r| {
            for i in 0..put_n {
                let k = format!("counter:{}", (i + r) % 50);
                black_box(block_on(kv.increment(&k, 1)).expect("increment"));
            }
        },
        |r| {
            for i in 0..put_n {
                let k = format!("counter:{}", (i + r) % 50);
                black_box(raw_sum(&raw, &k, 1));
            }
        },
    ));
    for (name, size, n) in [
        ("16 KiB value, put + get", 16 << 10, 200),
        ("256 KiB value, put + get", 256 << 10, 50),
        ("1 MiB value, put + get", 1 << 20, 20),
    ] {
        let value = "m".repeat(size);
        rows.extend(compare(
            name,
            rounds(),
            n,
            |r| {
                for i in 0..n {
                    let k = format!("big:{}", (i + r) % 4);
                    block_on(kv.put(&k, value.as_str()).expect("put").execute()).expect("put");
                    black_box(block_on(kv.get(&k).text()).expect("get"));
                }
            },
            |r| {
                for i in 0..n {
                    let k = format!("big:{}", (i + r) % 4);
                    raw_put(&raw, &k, &value, None);
                    black_box(raw_get(&raw, &k, now).expect("hit"));
                }
            },
        ));
    }
    drop((kv, raw));

    eprintln!(
        "index: look-ups of {MATCHES} matches in namespaces of 10,000 and 100,000 entries ..."
    );
    rows.extend(look_ups_by_index(&dir));

    eprintln!(
        "neighbours: gets of a small key among {} keys of each size ...",
        neighbour_count()
    );
    let neighbours = small_gets_among_neighbours(&dir);
    eprintln!("bench run took {:.0} s", started.elapsed().as_secs_f64());

    if !rows.is_empty() {
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
            "\n{} keys per table; {} rounds per operation; medians of the per-round mean.",
            keys(),
            rounds()
        );
    }

    let Some(base) = neighbours.first() else {
        return;
    };
    println!(
        "\n| neighbours' values | d1ns get (median) | / 100 B neighbours | raw get (median) | / 100 B neighbours |"
    );
    println!("|---|---:|---:|---:|---:|");
    for row in &neighbours {
        println!(
            "| {} | {} | {:.2} | {} | {:.2} |",
            row.name,
            human(row.d1ns_ns),
            row.d1ns_ns / base.d1ns_ns,
            human(row.raw_ns),
            row.raw_ns / base.raw_ns
        );
    }
    println!(
        "\nA get of one small key among {} keys with values of each size, one file \
         database per size; {} gets per size per round, {} rounds.",
        neighbour_count(),
        neighbour_gets(),
        rounds()
    );
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}
