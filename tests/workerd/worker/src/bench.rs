//! `POST /bench`: the same KV operations through Workers KV (`worker::kv::KvStore` on the `KV`
//! binding, wrangler's local KV) and through d1ns (`D1Namespace::new(env.d1("DB")?)`), timed
//! inside the Worker. The driver's `--bench` mode (`tests/workerd/driver.mjs`) runs the rounds
//! and prints the medians; the CI suite never calls this route.
//!
//! Timing: `Date.now()` around the operations only (values are made before the clock starts and
//! checked after it stops). In workerd, `Date.now()` advances only across I/O; every timed
//! section here ends with the awaited KV or D1 call, and the `clock` case measures whether the
//! Rust work after that call (decoding the result) is in the figure or not.
//!
//! Every case that reads checks what it read: a wrong value is an error, never a fast figure.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use d1ns::{Backend, D1Namespace, DatabaseError, QueryResult, Statement};
use serde::{Deserialize, Serialize};

use serde_json::{Value, json};
use worker::js_sys::{self, Uint8Array};
use worker::kv::KvStore;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

/// The body of `POST /bench`. Unknown fields are refused, so a typo in the driver fails loudly.
#[derive(Debug, Deserialize)]
#[serde(tag = "case", rename_all = "snake_case", deny_unknown_fields)]
pub enum BenchRequest {
    /// How the clock behaves: `spin` rounds of pure computation between two `Date.now()`, then
    /// one KV read and another `Date.now()`.
    Clock { spin: u32 },
    /// `count` puts of keys `small:{from}`.. with `value_len`-byte text values.
    SmallPut {
        side: Side,
        from: u32,
        count: u32,
        value_len: usize,
    },
    /// `count` gets of the keys `SmallPut` wrote, each checked.
    SmallGet {
        side: Side,
        from: u32,
        count: u32,
        value_len: usize,
    },
    /// One put of a `size`-byte value made from `seed`.
    LargePut {
        side: Side,
        kind: Kind,
        key: String,
        size: usize,
        seed: u32,
    },
    /// One get of what `LargePut` wrote, checked byte for byte after the clock stops.
    LargeGet {
        side: Side,
        kind: Kind,
        key: String,
        size: usize,
        seed: u32,
    },
    /// A d1ns get of a value stored by `LargePut` (d1ns side), split in phases: see [`profile`].
    Profile {
        kind: Kind,
        key: String,
        size: usize,
        seed: u32,
    },
    /// A bytes value that fits in a row (up to 1,900,000 bytes), written and read straight on
    /// the D1 binding as a BLOB and as hex text: see [`blob_profile`].
    BlobProfile { size: usize, seed: u32 },
    /// `count` gets of the small keys straight on D1, with d1ns's get statement (`union`) or
    /// one of its two halves (`entries`: the entry's row, `chunks`: its chunks), to see which
    /// half of the statement a get pays for.
    ProbeGets { count: u32, sql: ProbeSql },
    /// `count` small puts of d1ns's put statement by hand sent with `run()`, and `count` sent
    /// as a `batch()` of one statement (as d1ns sends every write), alternating in blocks of
    /// `block` as [`Overhead`](Self::Overhead) does.
    ProbePuts {
        count: u32,
        value_len: usize,
        block: u32,
    },
    /// `count` small puts or gets of the keys `small:00000`.. through d1ns and through its
    /// statements by hand ([`Side::D1`]), alternating in blocks of `block` operations (the side
    /// that starts a block alternates too, so a change of the machine's load hits both sides
    /// alike); each side's time is summed over its blocks.
    Overhead {
        op: OverheadOp,
        count: u32,
        block: u32,
        value_len: usize,
    },
    /// Fails unless the statements d1ns sends for a small get and a small put are the
    /// hand-written [`GET_SQL`] and [`PUT_SQL`], with the same kinds of parameters.
    SameSql,
    /// `count` puts and then `count` gets (each checked) of `size`-byte values, keys
    /// `medium:{kind}:{size}:{i}`, timed apart.
    Medium {
        side: Side,
        kind: Kind,
        size: usize,
        count: u32,
        seed: u32,
    },
    /// Keys `n:{from}`.. of the neighbourhood of `size`-byte values (namespace `n{size}`, a
    /// table of its own), written through d1ns; key [`NEIGHBOUR_SMALL_KEY`] gets a small value.
    NeighboursFill { size: usize, from: u32, count: u32 },
    /// `count` gets of the small key among the neighbours of `size`-byte values, through d1ns
    /// and by hand (d1ns's get statement on that table), timed apart.
    NeighbourGets { size: usize, count: u32 },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverheadOp {
    Put,
    Get,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeSql {
    Union,
    Entries,
    Chunks,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Kv,
    D1ns,
    /// d1ns's own statements for a small get and put, written by hand on the D1 binding (one
    /// statement, no batch, no checks): what D1 alone costs, for the small cases only.
    D1,
    /// d1ns with the edge cache (R6), reads with `cache_ttl(60)`: small cases only.
    D1nsCached,
}

/// Large values as bytes (`put_bytes` / `bytes()`) or text (`put(&str)` / `text()`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bytes,
    Text,
}

/// Either store, opened the way a Worker opens it.
enum Store {
    Kv(KvStore),
    D1ns(D1Namespace<D1Database>),
    D1(D1Database),
    D1nsCached(D1Namespace<D1Database>),
}

fn open(env: &Env, side: Side) -> Result<Store, String> {
    Ok(match side {
        Side::Kv => Store::Kv(env.kv("KV").map_err(|e| e.to_string())?),
        Side::D1ns => Store::D1ns(D1Namespace::new(env.d1("DB").map_err(|e| e.to_string())?)),
        Side::D1 => Store::D1(env.d1("DB").map_err(|e| e.to_string())?),
        Side::D1nsCached => Store::D1nsCached(
            D1Namespace::builder(env.d1("DB").map_err(|e| e.to_string())?)
                .edge_cache(worker::Cache::default(), "bench")
                .build()
                .map_err(text)?,
        ),
    })
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// Most operations one small case runs in a request, and the longest small value.
const MAX_SMALL_COUNT: u32 = 10_000;
const MAX_SMALL_LEN: usize = 1 << 20;

pub async fn run(env: &Env, request: BenchRequest) -> Result<Value, String> {
    match &request {
        BenchRequest::SmallPut {
            count, value_len, ..
        }
        | BenchRequest::SmallGet {
            count, value_len, ..
        } if *count > MAX_SMALL_COUNT || *value_len > MAX_SMALL_LEN => {
            return Err(format!(
                "at most {MAX_SMALL_COUNT} operations of at most {MAX_SMALL_LEN} bytes a request"
            ));
        }
        BenchRequest::ProbePuts {
            count, value_len, ..
        }
        | BenchRequest::Overhead {
            count, value_len, ..
        } if *count > MAX_SMALL_COUNT || *value_len > MAX_SMALL_LEN => {
            return Err(format!(
                "at most {MAX_SMALL_COUNT} operations of at most {MAX_SMALL_LEN} bytes a request"
            ));
        }
        BenchRequest::ProbeGets { count, .. }
        | BenchRequest::NeighbourGets { count, .. }
        | BenchRequest::NeighboursFill { count, .. }
        | BenchRequest::Medium { count, .. }
            if *count > MAX_SMALL_COUNT =>
        {
            return Err(format!("at most {MAX_SMALL_COUNT} operations a request"));
        }
        _ => {}
    }
    match request {
        BenchRequest::Clock { spin } => clock(env, spin).await,
        BenchRequest::SmallPut {
            side,
            from,
            count,
            value_len,
        } => {
            let store = open(env, side)?;
            let values: Vec<(String, String)> = (from..from.saturating_add(count))
                .map(|i| (small_key(i), small_value(i, value_len)))
                .collect();
            let started = now();
            for (key, value) in &values {
                store.put_text(key, value).await?;
            }
            Ok(json!({ "ms": now() - started, "ops": values.len() }))
        }
        BenchRequest::SmallGet {
            side,
            from,
            count,
            value_len,
        } => {
            let store = open(env, side)?;
            let keys: Vec<(u32, String)> = (from..from.saturating_add(count))
                .map(|i| (i, small_key(i)))
                .collect();
            let mut read = Vec::with_capacity(keys.len());
            let started = now();
            for (_, key) in &keys {
                read.push(store.get_text(key).await?);
            }
            let ms = now() - started;
            let wrong = keys
                .iter()
                .zip(&read)
                .filter(|((i, _), value)| value.as_deref() != Some(&small_value(*i, value_len)))
                .count();
            if wrong > 0 {
                return Err(format!(
                    "{wrong} of {} small gets read a wrong value",
                    keys.len()
                ));
            }
            Ok(json!({ "ms": ms, "ops": keys.len() }))
        }
        BenchRequest::LargePut {
            side,
            kind,
            key,
            size,
            seed,
        } => {
            let store = open(env, side)?;
            let value = large_value(kind, size, seed)?;
            let started = now();
            match &value {
                Large::Bytes(bytes) => store.put_bytes(&key, bytes).await?,
                Large::Text(text) => store.put_text(&key, text).await?,
            }
            Ok(json!({ "ms": now() - started }))
        }
        BenchRequest::LargeGet {
            side,
            kind,
            key,
            size,
            seed,
        } => {
            let store = open(env, side)?;
            let started = now();
            let read = match kind {
                Kind::Bytes => store.get_bytes(&key).await?.map(Large::Bytes),
                Kind::Text => store.get_text(&key).await?.map(Large::Text),
            };
            let ms = now() - started;
            let expected = large_value(kind, size, seed)?;
            let exact = read.as_ref() == Some(&expected);
            let length = read.as_ref().map(Large::len);
            if !exact {
                return Err(format!(
                    "{key}: read {length:?} bytes, not the {size} bytes written (or not the same bytes)"
                ));
            }
            Ok(json!({ "ms": ms, "exact": exact, "length": length }))
        }
        BenchRequest::Profile {
            kind,
            key,
            size,
            seed,
        } => profile(env, kind, &key, size, seed).await,
        BenchRequest::BlobProfile { size, seed } => blob_profile(env, size, seed).await,
        BenchRequest::ProbeGets { count, sql } => probe_gets(env, count, sql).await,
        BenchRequest::ProbePuts {
            count,
            value_len,
            block,
        } => probe_puts(env, count, value_len, block).await,
        BenchRequest::Overhead {
            op,
            count,
            block,
            value_len,
        } => overhead(env, op, count, block, value_len).await,
        BenchRequest::SameSql => same_sql(env).await,
        BenchRequest::Medium {
            side,
            kind,
            size,
            count,
            seed,
        } => medium(env, side, kind, size, count, seed).await,
        BenchRequest::NeighboursFill { size, from, count } => {
            neighbours_fill(env, size, from, count).await
        }
        BenchRequest::NeighbourGets { size, count } => neighbour_gets(env, size, count).await,
    }
}

impl Store {
    async fn put_text(&self, key: &str, value: &str) -> Result<(), String> {
        match self {
            Store::Kv(kv) => kv
                .put(key, value)
                .map_err(text)?
                .execute()
                .await
                .map_err(text),
            Store::D1ns(ns) | Store::D1nsCached(ns) => ns
                .put(key, value)
                .map_err(text)?
                .execute()
                .await
                .map_err(text),
            Store::D1(db) => {
                hand_put(db, key, value)?.run().await.map_err(text)?;
                Ok(())
            }
        }
    }

    async fn put_bytes(&self, key: &str, value: &[u8]) -> Result<(), String> {
        match self {
            Store::Kv(kv) => kv
                .put_bytes(key, value)
                .map_err(text)?
                .execute()
                .await
                .map_err(text),
            Store::D1ns(ns) => ns
                .put_bytes(key, value)
                .map_err(text)?
                .execute()
                .await
                .map_err(text),
            Store::D1(_) | Store::D1nsCached(_) => Err(HAND_WRITTEN_SMALL_ONLY.to_owned()),
        }
    }

    async fn get_text(&self, key: &str) -> Result<Option<String>, String> {
        match self {
            Store::Kv(kv) => kv.get(key).text().await.map_err(text),
            Store::D1ns(ns) => ns.get(key).text().await.map_err(text),
            Store::D1(db) => hand_get(db, GET_SQL, "", key).await,
            Store::D1nsCached(ns) => ns.get(key).cache_ttl(60).text().await.map_err(text),
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Store::Kv(kv) => kv.get(key).bytes().await.map_err(text),
            Store::D1ns(ns) => ns.get(key).bytes().await.map_err(text),
            Store::D1(_) | Store::D1nsCached(_) => Err(HAND_WRITTEN_SMALL_ONLY.to_owned()),
        }
    }
}

const HAND_WRITTEN_SMALL_ONLY: &str =
    "the hand-written D1 and cached d1ns sides are for small text values only";

/// d1ns's put statement on its default table (`?1` namespace, `?2` key, `?3` value,
/// `?4` metadata, `?5` expiration, `?6` chunks, `?7` size, `?8` version; chunks and size `NULL`
/// for a value kept in its row). [`SameSql`](BenchRequest::SameSql) checks it against d1ns's.
const PUT_SQL: &str = "INSERT INTO \"_kv_entries\" \
     (namespace, key, value, metadata, expiration, chunks, size, version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (namespace, key) DO UPDATE SET \
     value = excluded.value, metadata = excluded.metadata, \
     expiration = excluded.expiration, chunks = excluded.chunks, \
     size = excluded.size, version = excluded.version";

/// A small text value read with d1ns's get statement `sql`, as a Worker written
/// straight on the binding would: `all()`, the first row's value column.
async fn hand_get(
    db: &D1Database,
    sql: &str,
    namespace: &str,
    key: &str,
) -> Result<Option<String>, String> {
    let rows: Vec<TextRow> = db
        .prepare(sql)
        .bind(&[
            JsValue::from_str(namespace),
            JsValue::from_str(key),
            JsValue::from_f64(now()),
        ])
        .map_err(text)?
        .all()
        .await
        .map_err(text)?
        .results()
        .map_err(text)?;
    Ok(rows.into_iter().next().map(|row| row.c1))
}

/// [`PUT_SQL`] bound for a small text value in the default namespace, as d1ns binds it.
fn hand_put(db: &D1Database, key: &str, value: &str) -> Result<D1PreparedStatement, String> {
    db.prepare(PUT_SQL)
        .bind(&[
            JsValue::from_str(""),
            JsValue::from_str(key),
            JsValue::from_str(value),
            JsValue::NULL,
            JsValue::NULL,
            JsValue::NULL,
            JsValue::NULL,
            // A new stamp per write, 32 hex digits as d1ns's (which draws 128 random bits).
            JsValue::from_str(&hand_version()),
        ])
        .map_err(text)
}

/// A distinct version for each hand-written put: the time and a counter, as 32 hex digits.
fn hand_version() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{count:016x}", now() as u64)
}

/// The value column (`c1`) of a small entry (its only row).
#[derive(Deserialize)]
struct TextRow {
    c1: String,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn small_key(i: u32) -> String {
    format!("small:{i:05}")
}

/// A `len`-byte ASCII value that differs from key to key.
fn small_value(i: u32, len: usize) -> String {
    let mut value = format!("value of {i:05}:");
    let mut state = i.wrapping_mul(2_654_435_761) | 1;
    while value.len() < len {
        value.push(char::from(ALPHABET[(next(&mut state) % 64) as usize]));
    }
    value.truncate(len);
    value
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// xorshift32: cheap pseudo-random bytes, so that a large value is not one byte repeated.
fn next(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

#[derive(Debug, PartialEq)]
enum Large {
    Bytes(Vec<u8>),
    Text(String),
}

impl Large {
    fn len(&self) -> usize {
        match self {
            Large::Bytes(b) => b.len(),
            Large::Text(t) => t.len(),
        }
    }
}

/// `size` pseudo-random bytes from `seed` (all 256 byte values), or as text `size` ASCII
/// characters from a 64-letter alphabet.
fn large_value(kind: Kind, size: usize, seed: u32) -> Result<Large, String> {
    if size > 26_214_400 {
        return Err(format!("{size} bytes is more than a KV value can be"));
    }
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        let word = next(&mut state).to_le_bytes();
        let take = (size - bytes.len()).min(4);
        bytes.extend_from_slice(&word[..take]);
    }
    Ok(match kind {
        Kind::Bytes => Large::Bytes(bytes),
        Kind::Text => {
            for b in &mut bytes {
                *b = ALPHABET[usize::from(*b % 64)];
            }
            Large::Text(String::from_utf8(bytes).map_err(text)?)
        }
    })
}

/// Whether Rust work between two awaits moves `Date.now()`.
async fn clock(env: &Env, spin: u32) -> Result<Value, String> {
    let kv = env.kv("KV").map_err(text)?;
    let t0 = now();
    let mut state = 1u32;
    let mut sum = 0u64;
    for _ in 0..spin {
        sum = sum.wrapping_add(u64::from(next(&mut state)));
    }
    let t1 = now();
    kv.get("clock-probe").text().await.map_err(text)?;
    let t2 = now();
    Ok(json!({ "spin_ms": t1 - t0, "spin_then_io_ms": t2 - t0, "checksum": sum }))
}

/// A backend that adds up the time spent inside D1's `batch()` (the round trip, with the
/// conversion of parameters to JS before it and of rows to Rust after it).
struct Timed {
    db: D1Database,
    batch_ms: AtomicU64,
}

impl Backend for Timed {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let started = now();
        let batch = Backend::batch(&self.db, statements);
        async move {
            let results = batch.await;
            let ms = now() - started;
            let total = f64::from_bits(self.batch_ms.load(Ordering::Relaxed)) + ms;
            self.batch_ms.store(total.to_bits(), Ordering::Relaxed);
            results
        }
    }

    fn database_id(&self) -> u64 {
        self.db.database_id()
    }
}

/// The first half of d1ns's get statement on its default table: the entry's own row
/// (`?1` namespace, `?2` key, `?3` now).
macro_rules! get_entry_sql {
    () => {
        "SELECT NULL AS c0, value AS c1, metadata AS c2, expiration AS c3, chunks AS c4, \
         size AS c5, version AS c6 FROM \"_kv_entries\" \
         WHERE namespace = ?1 AND key = ?2 AND (expiration IS NULL OR expiration > ?3)"
    };
}

/// The second half: the entry's chunks, while it is live.
macro_rules! get_chunks_sql {
    () => {
        "SELECT c.part, c.data, NULL, NULL, NULL, NULL, NULL FROM \"_kv_entries$chunks\" AS c \
         WHERE c.namespace = ?1 AND c.key = ?2 AND \
         (SELECT (expiration IS NULL OR expiration > ?3) AND c.part < e.chunks \
         FROM \"_kv_entries\" AS e WHERE e.namespace = c.namespace AND e.key = c.key)"
    };
}

/// d1ns's get statement on its default table. [`SameSql`](BenchRequest::SameSql) checks it
/// against d1ns's.
const GET_SQL: &str = concat!(get_entry_sql!(), " UNION ALL ", get_chunks_sql!());

/// One row's value column (`c1`), read the way d1ns's D1 backend reads a cell: serde's
/// `deserialize_any`, a BLOB (an array of numbers) element by element.
#[derive(Deserialize)]
struct SerdeCell {
    c1: SerdeValue,
}

struct SerdeValue(usize);

impl<'de> Deserialize<'de> for SerdeValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SerdeValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text or an array of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SerdeValue, E> {
                Ok(SerdeValue(v.to_owned().len()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SerdeValue, E> {
                Ok(SerdeValue(v.len()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SerdeValue, A::Error> {
                let mut bytes: Vec<u8> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(SerdeValue(bytes.len()))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// A d1ns get of a stored large value, in phases, each timed as the median of 3:
/// - `d1ns_get_ms`: `ns.get(key).bytes()/text()`, the whole operation;
/// - `d1ns_batch_ms`: of that, the time inside the backend's `batch()` (see [`Timed`]);
/// - `raw_all_ms`: the same SQL straight on the binding, up to D1's JS result (no Rust decoding);
/// - `serde_decode_ms`: that JS result's value column decoded by serde, as d1ns's backend does;
/// - `typed_array_decode_ms`: the same column copied through one `Uint8Array` (arrays of numbers)
///   or `as_string()` (text), the fast way.
///
/// CPU-only phases can only be seen if the clock moves without I/O (see the `clock` case).
async fn profile(
    env: &Env,
    kind: Kind,
    key: &str,
    size: usize,
    seed: u32,
) -> Result<Value, String> {
    let expected = large_value(kind, size, seed)?;
    let timed = Timed {
        db: env.d1("DB").map_err(text)?,
        batch_ms: AtomicU64::new(0f64.to_bits()),
    };
    let ns = D1Namespace::new(&timed);
    let mut phases: Vec<[f64; 5]> = Vec::new();
    for _ in 0..3 {
        timed.batch_ms.store(0f64.to_bits(), Ordering::Relaxed);
        let started = now();
        let read = match kind {
            Kind::Bytes => ns.get(key).bytes().await.map_err(text)?.map(Large::Bytes),
            Kind::Text => ns.get(key).text().await.map_err(text)?.map(Large::Text),
        };
        let get_ms = now() - started;
        let batch_ms = f64::from_bits(timed.batch_ms.load(Ordering::Relaxed));
        if read.as_ref() != Some(&expected) {
            return Err(format!("profile: {key} did not read back as written"));
        }

        let statement = timed
            .db
            .prepare(GET_SQL)
            .bind(&[
                JsValue::from_str(""),
                JsValue::from_str(key),
                JsValue::from_f64(now()),
            ])
            .map_err(text)?;
        let started = now();
        let result = statement.all().await.map_err(text)?;
        let all_ms = now() - started;

        let started = now();
        let cells: Vec<SerdeCell> = result.results().map_err(text)?;
        let serde_ms = now() - started;
        let serde_len: usize = cells.iter().map(|c| c.c1.0).sum();

        let rows = statement.raw_js_value().await.map_err(text)?;
        let started = now();
        let mut fast_len = 0;
        for row in &rows {
            let cell =
                js_sys::Reflect::get(row, &JsValue::from_f64(1.0)).map_err(|e| format!("{e:?}"))?;
            fast_len += match cell.as_string() {
                Some(t) => t.len(),
                None => Uint8Array::new(&cell).to_vec().len(),
            };
        }
        let fast_ms = now() - started;
        if serde_len == 0 || fast_len == 0 {
            return Err("profile: the raw reads found no value".to_owned());
        }
        phases.push([get_ms, batch_ms, all_ms, serde_ms, fast_ms]);
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = phases.iter().map(|p| p[i]).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Ok(json!({
        "d1ns_get_ms": median(0),
        "d1ns_batch_ms": median(1),
        "raw_all_ms": median(2),
        "serde_decode_ms": median(3),
        "typed_array_decode_ms": median(4),
    }))
}

/// What a BLOB costs on the D1 binding, against the same bytes as hex text that SQLite turns
/// into a BLOB (`unhex(?)`) and back (`hex(v)`), each the median of 3, in a scratch table:
/// - `put_blob_ms`: bind a `Uint8Array` (as d1ns does), insert;
/// - `put_hex_ms`: hex in Rust, bind the string, `unhex()` in SQL;
/// - `get_blob_ms`: select the BLOB (an array of numbers in JS), copy it through serde as d1ns does;
/// - `get_hex_ms`: select `hex(v)`, decode the string in Rust.
async fn blob_profile(env: &Env, size: usize, seed: u32) -> Result<Value, String> {
    if size > 1_900_000 {
        return Err("blob_profile: at most 1,900,000 bytes (one row)".to_owned());
    }
    let Large::Bytes(bytes) = large_value(Kind::Bytes, size, seed)? else {
        return Err("blob_profile: not bytes".to_owned());
    };
    let db = env.d1("DB").map_err(text)?;
    db.prepare("CREATE TABLE IF NOT EXISTS bench_scratch (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        .run()
        .await
        .map_err(text)?;
    let hex_digits = b"0123456789ABCDEF";
    let mut phases: Vec<[f64; 4]> = Vec::new();
    for _ in 0..3 {
        let started = now();
        let blob: JsValue = Uint8Array::from(bytes.as_slice()).into();
        db.prepare("INSERT OR REPLACE INTO bench_scratch (k, v) VALUES ('blob', ?1)")
            .bind(&[blob])
            .map_err(text)?
            .run()
            .await
            .map_err(text)?;
        let put_blob = now() - started;

        let started = now();
        let mut hex = Vec::with_capacity(bytes.len() * 2);
        for b in &bytes {
            hex.push(hex_digits[usize::from(b >> 4)]);
            hex.push(hex_digits[usize::from(b & 15)]);
        }
        let hex = String::from_utf8(hex).map_err(text)?;
        db.prepare("INSERT OR REPLACE INTO bench_scratch (k, v) VALUES ('hex', unhex(?1))")
            .bind(&[JsValue::from_str(&hex)])
            .map_err(text)?
            .run()
            .await
            .map_err(text)?;
        let put_hex = now() - started;

        let started = now();
        let rows: Vec<SerdeCell> = db
            .prepare("SELECT v AS c1 FROM bench_scratch WHERE k = 'blob'")
            .all()
            .await
            .map_err(text)?
            .results()
            .map_err(text)?;
        let get_blob = now() - started;
        if rows.first().map(|r| r.c1.0) != Some(bytes.len()) {
            return Err("blob_profile: the BLOB did not come back".to_owned());
        }

        let started = now();
        let rows: Vec<HexRow> = db
            .prepare("SELECT hex(v) AS h FROM bench_scratch WHERE k = 'hex'")
            .all()
            .await
            .map_err(text)?
            .results()
            .map_err(text)?;
        let back = rows.first().map(|r| unhex(&r.h)).transpose()?;
        let get_hex = now() - started;
        if back.as_ref() != Some(&bytes) {
            return Err("blob_profile: the hex round trip changed the bytes".to_owned());
        }
        phases.push([put_blob, put_hex, get_blob, get_hex]);
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = phases.iter().map(|p| p[i]).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Ok(json!({
        "put_blob_ms": median(0),
        "put_hex_ms": median(1),
        "get_blob_ms": median(2),
        "get_hex_ms": median(3),
    }))
}

#[derive(Deserialize)]
struct HexRow {
    h: String,
}

fn unhex(hex: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("blob_profile: not hex".to_owned()),
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(digit(*hi)? << 4 | digit(*lo)?),
            _ => Err("blob_profile: odd hex".to_owned()),
        })
        .collect()
}

/// See [`BenchRequest::ProbeGets`]. Answers the time and the rows D1 reports reading.
async fn probe_gets(env: &Env, count: u32, sql: ProbeSql) -> Result<Value, String> {
    let db = env.d1("DB").map_err(text)?;
    let statement = match sql {
        ProbeSql::Union => GET_SQL,
        ProbeSql::Entries => get_entry_sql!(),
        ProbeSql::Chunks => get_chunks_sql!(),
    };
    let mut rows_read = 0;
    let started = now();
    for i in 0..count {
        let result = db
            .prepare(statement)
            .bind(&[
                JsValue::from_str(""),
                JsValue::from_str(&small_key(i)),
                JsValue::from_f64(now()),
            ])
            .map_err(text)?
            .all()
            .await
            .map_err(text)?;
        rows_read += result
            .meta()
            .map_err(text)?
            .and_then(|m| m.rows_read)
            .unwrap_or(0);
    }
    Ok(json!({ "ms": now() - started, "rows_read": rows_read }))
}

/// See [`BenchRequest::ProbePuts`].
async fn probe_puts(env: &Env, count: u32, value_len: usize, block: u32) -> Result<Value, String> {
    let db = env.d1("DB").map_err(text)?;
    let values: Vec<(String, String)> = (0..count)
        .map(|i| (small_key(i), small_value(i, value_len)))
        .collect();
    // [run(), batch()]
    let mut ms = [0.0; 2];
    for (n, block) in values.chunks(block.max(1) as usize).enumerate() {
        let order = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        for how in order {
            let started = now();
            for (key, value) in block {
                let statement = hand_put(&db, key, value)?;
                if how == 1 {
                    db.batch(vec![statement]).await.map_err(text)?;
                } else {
                    statement.run().await.map_err(text)?;
                }
            }
            ms[how] += now() - started;
        }
    }
    Ok(json!({ "run_ms": ms[0], "batch_ms": ms[1] }))
}

/// A backend that records the statements d1ns sends, with the kinds of their parameters.
struct Capture {
    db: D1Database,
    sent: Mutex<Vec<(String, Vec<&'static str>)>>,
}

impl Backend for Capture {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        if let Ok(mut sent) = self.sent.lock() {
            sent.extend(statements.iter().map(|s| {
                let kinds = s.params.iter().map(param_kind).collect();
                (s.sql.to_owned(), kinds)
            }));
        }
        Backend::batch(&self.db, statements)
    }

    fn database_id(&self) -> u64 {
        self.db.database_id()
    }
}

/// How a parameter reaches JS: d1ns binds integers and reals alike as numbers.
fn param_kind(value: &d1ns::Value) -> &'static str {
    match value {
        d1ns::Value::Null => "null",
        d1ns::Value::Integer(_) | d1ns::Value::Real(_) => "number",
        d1ns::Value::Text(_) => "text",
        d1ns::Value::Blob(_) => "blob",
    }
}

/// See [`BenchRequest::SameSql`].
async fn same_sql(env: &Env) -> Result<Value, String> {
    let capture = Capture {
        db: env.d1("DB").map_err(text)?,
        sent: Mutex::new(Vec::new()),
    };
    let ns = D1Namespace::new(&capture);
    let last = || {
        capture
            .sent
            .lock()
            .map_err(text)?
            .last()
            .cloned()
            .ok_or_else(|| "d1ns sent nothing".to_owned())
    };
    // The hand-written side binds what `Store::put_text` and `Store::get_text` bind for D1.
    ns.put("same-sql", "v")
        .map_err(text)?
        .execute()
        .await
        .map_err(text)?;
    let put = last()?;
    let hand_put = (
        PUT_SQL.to_owned(),
        vec![
            "text", "text", "text", "null", "null", "null", "null", "text",
        ],
    );
    ns.get("same-sql").text().await.map_err(text)?;
    let get = last()?;
    let hand_get = (GET_SQL.to_owned(), vec!["text", "text", "number"]);
    for (what, sent, hand) in [("put", put, hand_put), ("get", get, hand_get)] {
        if sent != hand {
            return Err(format!(
                "the hand-written {what} is not what d1ns sends: d1ns {sent:?}, by hand {hand:?}"
            ));
        }
    }
    Ok(json!({ "same": true }))
}

/// See [`BenchRequest::Medium`].
async fn medium(
    env: &Env,
    side: Side,
    kind: Kind,
    size: usize,
    count: u32,
    seed: u32,
) -> Result<Value, String> {
    let store = open(env, side)?;
    let keys: Vec<String> = (0..count)
        .map(|i| format!("medium:{kind:?}:{size}:{i}"))
        .collect();
    let values = (0..count)
        .map(|i| large_value(kind, size, seed.wrapping_add(i)))
        .collect::<Result<Vec<Large>, String>>()?;
    let started = now();
    for (key, value) in keys.iter().zip(&values) {
        match value {
            Large::Bytes(bytes) => store.put_bytes(key, bytes).await?,
            Large::Text(text) => store.put_text(key, text).await?,
        }
    }
    let put_ms = now() - started;
    let mut read = Vec::with_capacity(keys.len());
    let started = now();
    for key in &keys {
        read.push(match kind {
            Kind::Bytes => store.get_bytes(key).await?.map(Large::Bytes),
            Kind::Text => store.get_text(key).await?.map(Large::Text),
        });
    }
    let get_ms = now() - started;
    let wrong = read
        .iter()
        .zip(&values)
        .filter(|(read, value)| read.as_ref() != Some(*value))
        .count();
    if wrong > 0 {
        return Err(format!(
            "{wrong} of {count} gets of {size}-byte values read a wrong value"
        ));
    }
    Ok(json!({ "put_ms": put_ms, "get_ms": get_ms }))
}

/// The small key among the neighbours (in the middle of `n:000`..`n:200`, so every seek
/// passes neighbours) and its value.
const NEIGHBOUR_SMALL_KEY: &str = "n:100";
const NEIGHBOUR_SMALL_VALUE: &str = "small";

/// The namespace of the neighbours of `size`-byte values: a table of its own.
fn neighbourhood(env: &Env, size: usize) -> Result<D1Namespace<D1Database>, String> {
    D1Namespace::builder(env.d1("DB").map_err(text)?)
        .namespace(format!("n{size}"))
        .build()
        .map_err(text)
}

/// See [`BenchRequest::NeighboursFill`].
async fn neighbours_fill(env: &Env, size: usize, from: u32, count: u32) -> Result<Value, String> {
    let ns = neighbourhood(env, size)?;
    let value = "n".repeat(size);
    for i in from..from.saturating_add(count) {
        let key = format!("n:{i:03}");
        let value = if key == NEIGHBOUR_SMALL_KEY {
            NEIGHBOUR_SMALL_VALUE
        } else {
            &value
        };
        ns.put(&key, value)
            .map_err(text)?
            .execute()
            .await
            .map_err(text)?;
    }
    Ok(json!({ "ops": count }))
}

/// See [`BenchRequest::NeighbourGets`].
async fn neighbour_gets(env: &Env, size: usize, count: u32) -> Result<Value, String> {
    let ns = neighbourhood(env, size)?;
    let db = env.d1("DB").map_err(text)?;
    let hand_sql = GET_SQL.replace("\"_kv_entries", &format!("\"{}", ns.table()));
    let mut read = Vec::with_capacity(2 * count as usize);
    let started = now();
    for _ in 0..count {
        read.push(ns.get(NEIGHBOUR_SMALL_KEY).text().await.map_err(text)?);
    }
    let d1ns_ms = now() - started;
    let started = now();
    for _ in 0..count {
        read.push(hand_get(&db, &hand_sql, ns.namespace(), NEIGHBOUR_SMALL_KEY).await?);
    }
    let hand_ms = now() - started;
    if read
        .iter()
        .any(|value| value.as_deref() != Some(NEIGHBOUR_SMALL_VALUE))
    {
        return Err(format!("n{size}: the small key read a wrong value"));
    }
    Ok(json!({ "d1ns_ms": d1ns_ms, "hand_ms": hand_ms }))
}

/// See [`BenchRequest::Overhead`].
async fn overhead(
    env: &Env,
    op: OverheadOp,
    count: u32,
    block: u32,
    value_len: usize,
) -> Result<Value, String> {
    let sides = [open(env, Side::D1ns)?, open(env, Side::D1)?];
    let values: Vec<(String, String)> = (0..count)
        .map(|i| (small_key(i), small_value(i, value_len)))
        .collect();
    let mut ms = [0.0; 2];
    let mut wrong = 0;
    for (n, block) in values.chunks(block.max(1) as usize).enumerate() {
        let order = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let store = &sides[side];
            let mut read = Vec::with_capacity(block.len());
            let started = now();
            for (key, value) in block {
                match op {
                    OverheadOp::Put => store.put_text(key, value).await?,
                    OverheadOp::Get => read.push(store.get_text(key).await?),
                }
            }
            ms[side] += now() - started;
            wrong += read
                .iter()
                .zip(block)
                .filter(|(read, (_, value))| read.as_deref() != Some(value.as_str()))
                .count();
        }
    }
    if wrong > 0 {
        return Err(format!("{wrong} small gets read a wrong value"));
    }
    Ok(json!({ "d1ns_ms": ms[0], "hand_ms": ms[1] }))
}
