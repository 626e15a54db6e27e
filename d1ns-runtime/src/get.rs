//! `get`, `get_with_metadata` and `get_bulk`: one statement each (a bulk read of values over
//! 128 KiB reads them in further round trips), reading through the primary key, hiding expired
//! entries by predicate and never writing (K31a).

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::backend::{Backend, Query, Statement, Value, ValueRef};
use crate::error::{Error, Operation};
use crate::key::OwnedKey;
use crate::limits;
use crate::namespace::{D1Namespace, to_i64};
use crate::rows::{
    BulkRow, BulkRows, Columns, EntryRows, Found, StoredEntry, assemble, decode_found,
};
use crate::typed::Entry;
use crate::version::Versionstamp;

impl<B: Backend> D1Namespace<B> {
    /// Reads a key. Pick the form with the builder's last call: `text()`, `json()`, `bytes()`,
    /// or their `_with_metadata` forms.
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// kv.put("user:1", serde_json::json!({"name": "Ada"}))?.metadata(7)?.execute().await?;
    /// let (user, meta) = kv
    ///     .get("user:1")
    ///     .json_with_metadata::<serde_json::Value, u32>()
    ///     .await?;
    /// assert_eq!(user.unwrap()["name"], "Ada");
    /// assert_eq!(meta, Some(7));
    /// # Ok(()) }
    /// ```
    pub fn get(&self, key: &str) -> GetOptionsBuilder<B> {
        GetOptionsBuilder {
            namespace: self.clone(),
            key: OwnedKey::new(key),
            cache_ttl: None,
        }
    }

    /// Reads up to 100 keys in one round trip. The result has an entry for every requested key,
    /// `None` for a missing or expired one (K19-K23).
    pub fn get_bulk(&self, keys: &[impl AsRef<str>]) -> GetBulkOptionsBuilder<B> {
        GetBulkOptionsBuilder {
            namespace: self.clone(),
            keys: keys.iter().map(|k| k.as_ref().to_owned()).collect(),
            cache_ttl: None,
        }
    }
}

/// Options of a `get`; made by [`D1Namespace::get`].
#[derive(Debug)]
#[must_use = "a get does nothing until you call .text(), .json(), .bytes() or a _with_metadata form"]
pub struct GetOptionsBuilder<B> {
    namespace: D1Namespace<B>,
    pub(crate) key: OwnedKey,
    cache_ttl: Option<u64>,
}

impl<B: Backend> GetOptionsBuilder<B> {
    /// How long this read's result may be served from the data center's cache, in seconds; at
    /// least 30, as in KV (K18). It takes effect only on a namespace built with
    /// `edge_cache` (a builder option of the `d1` feature) (R6); otherwise it is checked and
    /// changes nothing: reads are always fresh (R7).
    pub fn cache_ttl(mut self, cache_ttl: u64) -> Self {
        self.cache_ttl = Some(cache_ttl);
        self
    }

    /// The value as text; `None` if missing or expired (K17). Bytes that are not UTF-8 read as
    /// Workers KV reads them: each invalid sequence becomes U+FFFD (K7).
    pub async fn text(self) -> Result<Option<String>, Error> {
        let entry = self.entry(Columns::VALUE).await?;
        Ok(entry.map(|e| text(e.value)))
    }

    /// The value parsed as JSON into `T` (K7).
    pub async fn json<T: DeserializeOwned>(self) -> Result<Option<T>, Error> {
        let entry = self.entry(Columns::VALUE).await?;
        entry.map(|e| json(self.key.as_str(), e.value)).transpose()
    }

    /// The value as bytes (text reads as its UTF-8, K7).
    pub async fn bytes(self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entry(Columns::VALUE).await?.map(|e| bytes(e.value)))
    }

    /// The value as text, with its metadata; `(None, None)` if missing (K17).
    pub async fn text_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<(Option<String>, Option<M>), Error> {
        self.with_metadata(|_, value| Ok(text(value))).await
    }

    /// The value as JSON, with its metadata.
    pub async fn json_with_metadata<T: DeserializeOwned, M: DeserializeOwned>(
        self,
    ) -> Result<(Option<T>, Option<M>), Error> {
        self.with_metadata(json).await
    }

    /// The value as bytes, with its metadata.
    pub async fn bytes_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<(Option<Vec<u8>>, Option<M>), Error> {
        self.with_metadata(|_, value| Ok(bytes(value))).await
    }

    /// The value as text with its metadata, expiration and [`Versionstamp`], in the same one
    /// statement and one row read as [`text`](Self::text) (A4); `None` if missing or expired.
    /// The stamp is what [`AtomicOperation::check`](crate::AtomicOperation::check) takes.
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// kv.put("greeting", "hello")?.await?;
    /// let entry = kv.get("greeting").text_entry::<()>().await?.unwrap();
    /// assert_eq!(entry.value, "hello");
    /// let committed = kv
    ///     .atomic()
    ///     .check("greeting", Some(entry.version))
    ///     .put("greeting", "hello, world")
    ///     .commit()
    ///     .await?;
    /// assert!(committed.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn text_entry<M: DeserializeOwned>(self) -> Result<Option<Entry<String, M>>, Error> {
        self.decoded_entry(|_, value| Ok(text(value))).await
    }

    /// The value parsed as JSON, with its metadata, expiration and [`Versionstamp`] (A4).
    pub async fn json_entry<T: DeserializeOwned, M: DeserializeOwned>(
        self,
    ) -> Result<Option<Entry<T, M>>, Error> {
        self.decoded_entry(json).await
    }

    /// The value as bytes, with its metadata, expiration and [`Versionstamp`] (A4).
    pub async fn bytes_entry<M: DeserializeOwned>(
        self,
    ) -> Result<Option<Entry<Vec<u8>, M>>, Error> {
        self.decoded_entry(|_, value| Ok(bytes(value))).await
    }

    pub(crate) async fn decoded_entry<T, M: DeserializeOwned>(
        self,
        decode: impl FnOnce(&str, Value) -> Result<T, Error>,
    ) -> Result<Option<Entry<T, M>>, Error> {
        let Some(entry) = self.entry(Columns::ALL).await? else {
            return Ok(None);
        };
        let key = self.key.as_str();
        Ok(Some(Entry {
            value: decode(key, entry.value)?,
            metadata: metadata(key, entry.metadata)?,
            expiration: entry.expiration_ms.map(limits::expiration_seconds),
            version: Versionstamp::from_column(key, &entry.version)?,
        }))
    }

    async fn with_metadata<T, M: DeserializeOwned>(
        self,
        decode: impl FnOnce(&str, Value) -> Result<T, Error>,
    ) -> Result<(Option<T>, Option<M>), Error> {
        let key = self.key.as_str();
        match self.entry(WITH_METADATA).await? {
            None => Ok((None, None)),
            Some(entry) => Ok((
                Some(decode(key, entry.value)?),
                metadata(key, entry.metadata)?,
            )),
        }
    }

    /// The live entry under the key, in one statement (the chunks of a long value included),
    /// or from the edge cache when the read asks for it (R6).
    pub(crate) async fn entry(&self, columns: Columns) -> Result<Option<StoredEntry>, Error> {
        limits::check_key(Operation::Get, self.key.as_str())?;
        limits::check_cache_ttl(Operation::Get, self.cache_ttl)?;
        let ns = &self.namespace;
        let key = self.key.as_str();
        let edge = ns.edge_for(self.cache_ttl);
        if let Some((edge, _)) = edge
            && let Some(Some(cached)) = edge.lookup(&[key], ns.now_ms()).await.pop()
        {
            return Ok(cached);
        }
        // What the edge cache keeps is every column.
        let columns = if edge.is_some() {
            Columns::ALL
        } else {
            columns
        };
        let entry = ns.read_entry(key, ns.now_ms(), columns).await?;
        if let Some((edge, cache_ttl)) = edge {
            edge.store(vec![(key, entry.as_ref())], cache_ttl, ns.now_ms())
                .await;
        }
        Ok(entry)
    }
}

impl<B: Backend> D1Namespace<B> {
    /// The live entry under `key` as of `now`, in one statement on its shard; during a move, a
    /// key this home has never seen is read from the previous home (M2).
    pub(crate) async fn read_entry(
        &self,
        key: &str,
        now: u64,
        columns: Columns,
    ) -> Result<Option<StoredEntry>, Error> {
        let shard = self.shard_of(key);
        if self.inner.previous.is_none() {
            let params = [
                ValueRef::Text(self.namespace()),
                ValueRef::Text(key),
                ValueRef::Integer(to_i64(now)),
            ];
            let query = Query {
                sql: &self.sql().get,
                params: &params,
            };
            let rows = self
                .read(shard, &[query], || EntryRows::new(key, columns))
                .await?;
            return Ok(rows.finish()?.live());
        }
        match self.found(shard, key, now).await? {
            Found::Live(entry) => Ok(Some(entry)),
            Found::Dead => Ok(None),
            Found::Absent => {
                if let Some(entry) = self.read_previous(&[key], now).await?.remove(key) {
                    return Ok(Some(entry));
                }
                if !self.may_move_meanwhile(key) {
                    return Ok(None);
                }
                // In neither home: the mover may have brought it here since the first read.
                match self.found(shard, key, now).await? {
                    Found::Live(entry) => Ok(Some(entry)),
                    Found::Dead | Found::Absent => Ok(None),
                }
            }
        }
    }

    /// The live entries of `keys` (distinct, all on `shard`), as of `now`, in one batch (values over
    /// [`BULK_INLINE_BYTES`] in more); missing and expired keys are left out. During a move,
    /// the keys this home has seen die come back in the second map.
    pub(crate) async fn read_bulk(
        &self,
        shard: usize,
        keys: &[&str],
        now: u64,
        columns: Columns,
    ) -> Result<
        (
            HashMap<String, StoredEntry>,
            std::collections::HashSet<String>,
        ),
        Error,
    > {
        let moving = self.inner.previous.is_some();
        // One statement per key (the keys are distinct), all in one batch: D1 counts the rows
        // each reads (1 per entry found, none per key missing, 2 per chunk), where a statement
        // over a list of keys also counts reading the list.
        let namespace = ValueRef::Text(self.namespace());
        let now_param = ValueRef::Integer(to_i64(now));
        let bound = ValueRef::Integer(to_i64(BULK_INLINE_BYTES));
        let params: Vec<[ValueRef<'_>; 4]> = keys
            .iter()
            .map(|key| [namespace, ValueRef::Text(key), now_param, bound])
            .collect();
        let sql = if moving {
            &self.sql().moving.get_bulk
        } else {
            &self.sql().get_bulk
        };
        let queries: Vec<Query<'_>> = params.iter().map(|params| Query { sql, params }).collect();
        let rows = self.read(shard, &queries, || BulkRows::new(columns, keys.len()));
        let BulkRows {
            entries,
            chunks,
            dead,
            ..
        } = rows.await?.finish()?;
        let dead = keys
            .iter()
            .zip(dead)
            .filter(|(_, dead)| *dead)
            .map(|(key, _)| (*key).to_owned())
            .collect();
        let mut found: HashMap<String, StoredEntry> = HashMap::with_capacity(keys.len());
        let mut long_values = Vec::new();
        for ((key, row), own_chunks) in keys.iter().zip(entries).zip(chunks) {
            let Some(BulkRow {
                value,
                metadata,
                count,
                size,
                length,
                expiration,
                version,
            }) = row
            else {
                continue;
            };
            let inline = match (count.as_u64(), size.as_u64()) {
                (Some(count), size) if count > 0 => {
                    size.is_some_and(|size| size <= BULK_INLINE_BYTES)
                }
                // A value in the row, left out of the result when it is longer than the bound
                // (rows written by d1ns 0.1 hold up to 1.9 MB).
                _ => !matches!(value, Value::Null),
            };
            if inline {
                let value = assemble(key, value, &count, &size, own_chunks)?;
                let entry = StoredEntry {
                    value,
                    metadata,
                    expiration_ms: expiration,
                    version,
                };
                found.insert((*key).to_owned(), entry);
            } else {
                let bytes = match (count.as_u64(), size.as_u64()) {
                    (Some(count), None) => count.saturating_mul(limits::MAX_CHUNK_BYTES as u64),
                    (_, Some(size)) => size.saturating_mul(4) / 3,
                    (_, None) => length.as_u64().unwrap_or(limits::MAX_CHUNK_BYTES as u64),
                };
                long_values.push(((*key).to_owned(), bytes));
            }
        }
        found.extend(self.read_long_values(shard, long_values, now).await?);
        Ok((found, dead))
    }

    /// Reads whole the entries of long values (keys with the bytes their values take in a
    /// result), a few per round trip within D1's 50 MB per result, as of `now`; an entry gone
    /// meanwhile is left out.
    pub(crate) async fn read_long_values(
        &self,
        shard: usize,
        keys: Vec<(String, u64)>,
        now: u64,
    ) -> Result<HashMap<String, StoredEntry>, Error> {
        let mut found = HashMap::new();
        for group in group_by_size(keys) {
            let statements = group
                .iter()
                .map(|key| self.get_statement(key, now))
                .collect();
            let results = self.run(shard, statements).await?;
            for (key, result) in group.into_iter().zip(results) {
                if let Some(entry) = decode_found(&key, result.rows)?.live() {
                    found.insert(key, entry);
                }
            }
        }
        Ok(found)
    }

    /// Reads one entry with its chunks, as of `now`: see `Sql::get`.
    pub(crate) fn get_statement(&self, key: &str, now: u64) -> Statement<'_> {
        Statement {
            sql: &self.sql().get,
            params: vec![
                self.namespace_param(),
                Value::Text(key.to_owned()),
                Value::Integer(to_i64(now)),
            ],
        }
    }
}

/// Options of a `get_bulk`; made by [`D1Namespace::get_bulk`].
#[derive(Debug)]
#[must_use = "a get_bulk does nothing until you call .text(), .json() or a _with_metadata form"]
pub struct GetBulkOptionsBuilder<B> {
    namespace: D1Namespace<B>,
    keys: Vec<String>,
    cache_ttl: Option<u64>,
}

impl<B: Backend> GetBulkOptionsBuilder<B> {
    /// How long each key's result may be served from the data center's cache, in seconds; at
    /// least 30, as in KV (K18). Only with an
    /// `edge_cache` (a builder option of the `d1` feature) (R6): keys found cached cost no
    /// D1 round trip, the others are read in one; without, it is checked and changes nothing.
    pub fn cache_ttl(mut self, cache_ttl: u64) -> Self {
        self.cache_ttl = Some(cache_ttl);
        self
    }

    /// Every requested key's value as text, `None` where missing (K20).
    pub async fn text(self) -> Result<HashMap<String, Option<String>>, Error> {
        self.collect(Columns::VALUE, |_, value, _| Ok(text(value)))
            .await
    }

    /// Every requested key's value parsed as JSON. If any present value is not JSON the whole
    /// call fails, as in KV (K21).
    pub async fn json<T: DeserializeOwned>(self) -> Result<HashMap<String, Option<T>>, Error> {
        self.collect(Columns::VALUE, |key, value, _| bulk_json(key, value))
            .await
    }

    /// Every requested key's value as text with its metadata; a missing key gives `None` (K22).
    pub async fn text_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<HashMap<String, (Option<String>, Option<M>)>, Error> {
        let found = self
            .collect(WITH_METADATA, |key, value, meta| {
                Ok((text(value), metadata(key, meta)?))
            })
            .await?;
        Ok(split_pairs(found))
    }

    /// Every requested key's value as JSON with its metadata; a missing key gives `None` (K22).
    pub async fn json_with_metadata<T: DeserializeOwned, M: DeserializeOwned>(
        self,
    ) -> Result<HashMap<String, (Option<T>, Option<M>)>, Error> {
        let found = self
            .collect(WITH_METADATA, |key, value, meta| {
                Ok((bulk_json(key, value)?, metadata(key, meta)?))
            })
            .await?;
        Ok(split_pairs(found))
    }

    /// Reads all keys in one statement (values over [`BULK_INLINE_BYTES`] in more; keys found in
    /// the edge cache not at all) and decodes the present ones in request order, so the first
    /// failing key (in the caller's order) is the one reported. Every statement judges
    /// expiration at the same instant.
    async fn collect<T>(
        self,
        columns: Columns,
        mut decode: impl FnMut(&str, Value, Option<String>) -> Result<T, Error>,
    ) -> Result<HashMap<String, Option<T>>, Error> {
        let ns = self.namespace;
        limits::check_bulk_count(self.keys.len())?;
        limits::check_cache_ttl(Operation::GetBulk, self.cache_ttl)?;
        for key in &self.keys {
            limits::check_key(Operation::GetBulk, key)?;
        }
        let now = ns.now_ms();
        let edge = ns.edge_for(self.cache_ttl);
        // What the edge cache keeps is every column.
        let columns = if edge.is_some() {
            Columns::ALL
        } else {
            columns
        };
        let mut found: HashMap<String, StoredEntry> = HashMap::new();
        // The keys D1 is asked for, each once: with an edge cache, those not found there.
        let mut unread: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        unread.sort_unstable();
        unread.dedup();
        if let Some((edge, _)) = edge {
            let cached = edge.lookup(&unread, now).await;
            let mut missed = Vec::with_capacity(unread.len());
            for (key, cached) in unread.into_iter().zip(cached) {
                match cached {
                    Some(Some(entry)) => {
                        found.insert(key.to_owned(), entry);
                    }
                    Some(None) => {}
                    None => missed.push(key),
                }
            }
            unread = missed;
        }
        if !unread.is_empty() {
            // S4: one round trip per shard involved, in parallel.
            let mut per_shard: Vec<Vec<&str>> = vec![Vec::new(); ns.shards().len()];
            for &key in &unread {
                per_shard[ns.shard_of(key)].push(key);
            }
            let reads = per_shard
                .iter()
                .enumerate()
                .filter(|(_, keys)| !keys.is_empty())
                .map(|(shard, keys)| ns.read_bulk(shard, keys, now, columns));
            let mut read = HashMap::new();
            let mut dead = std::collections::HashSet::new();
            for result in crate::join::join_all(reads.collect()).await {
                let (found, gone) = result?;
                extend(&mut read, found);
                dead.extend(gone);
            }
            if ns.inner.previous.is_some() {
                // M2: keys this home has never seen, from the previous home.
                let absent: Vec<&str> = unread
                    .iter()
                    .copied()
                    .filter(|key| !read.contains_key(*key) && !dead.contains(*key))
                    .collect();
                if !absent.is_empty() {
                    read.extend(ns.read_previous(&absent, now).await?);
                    // In neither home: the mover may have brought them here since the first read.
                    let mut again: Vec<Vec<&str>> = vec![Vec::new(); ns.shards().len()];
                    for &key in &absent {
                        if !read.contains_key(key) && ns.may_move_meanwhile(key) {
                            again[ns.shard_of(key)].push(key);
                        }
                    }
                    let reads = again
                        .iter()
                        .enumerate()
                        .filter(|(_, keys)| !keys.is_empty())
                        .map(|(shard, keys)| ns.read_bulk(shard, keys, now, columns));
                    for result in crate::join::join_all(reads.collect()).await {
                        read.extend(result?.0);
                    }
                }
            }
            if let Some((edge, cache_ttl)) = edge {
                let results = unread.iter().map(|&key| (key, read.get(key))).collect();
                edge.store(results, cache_ttl, ns.now_ms()).await;
            }
            extend(&mut found, read);
        }
        let mut result = HashMap::with_capacity(self.keys.len());
        for key in self.keys {
            let decoded = match found.remove(&key) {
                Some(entry) => Some(decode(&key, entry.value, entry.metadata)?),
                // Either missing, or a duplicate already decoded (K20: duplicates collapse).
                None if result.contains_key(&key) => continue,
                None => None,
            };
            result.insert(key, decoded);
        }
        Ok(result)
    }
}

/// The columns a `_with_metadata` read copies.
const WITH_METADATA: Columns = Columns {
    metadata: true,
    version: false,
};

/// Adds `more` to `map`, without hashing anything again when `map` is empty.
fn extend<V>(map: &mut HashMap<String, V>, more: HashMap<String, V>) {
    if map.is_empty() {
        *map = more;
    } else {
        map.extend(more);
    }
}

/// The longest value a bulk read's first statement returns; 100 of them, even as base64, stay
/// well within the 50 MB D1 returns per call.
pub(crate) const BULK_INLINE_BYTES: u64 = 128 * 1024;

/// Most bytes of long values read in one round trip: D1 returns at most 50 MB per call.
const MAX_BYTES_PER_ROUND_TRIP: u64 = 40_000_000;

/// Keys with the bytes their values take in a result, grouped so that each group fits one round
/// trip.
fn group_by_size(keys: Vec<(String, u64)>) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current_bytes: u64 = 0;
    for (key, bytes) in keys {
        match groups.last_mut() {
            Some(group) if current_bytes.saturating_add(bytes) <= MAX_BYTES_PER_ROUND_TRIP => {
                group.push(key);
                current_bytes += bytes;
            }
            _ => {
                groups.push(vec![key]);
                current_bytes = bytes;
            }
        }
    }
    groups
}

/// `Some((v, m))` -> `(Some(v), m)`; a missing key -> `(None, None)` (K22).
fn split_pairs<T, M>(
    found: HashMap<String, Option<(T, Option<M>)>>,
) -> HashMap<String, (Option<T>, Option<M>)> {
    found
        .into_iter()
        .map(|(key, pair)| match pair {
            Some((value, meta)) => (key, (Some(value), meta)),
            None => (key, (None, None)),
        })
        .collect()
}

/// K7: text as is; bytes as UTF-8, each invalid sequence replaced by U+FFFD as Workers KV's
/// TextDecoder does.
pub(crate) fn text(value: Value) -> String {
    match value {
        Value::Text(t) => t,
        Value::Blob(b) => match String::from_utf8(b) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Null => String::new(),
    }
}

/// K7: text as its UTF-8, bytes as they are.
pub(crate) fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::Blob(b) => b,
        Value::Text(t) => t.into_bytes(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Real(r) => r.to_string().into_bytes(),
        Value::Null => Vec::new(),
    }
}

/// K7: the value parsed as JSON; not JSON at all is [`Error::NotJson`], JSON of another shape
/// is [`Error::Decode`].
pub(crate) fn json<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, Error> {
    let raw = bytes(value);
    serde_json::from_slice(&raw).map_err(|source| {
        // A number beyond f64 (`1e400`) is JSON that Rust cannot hold, not "not JSON".
        if source.is_data() || source.to_string().starts_with("number out of range") {
            Error::Decode {
                key: key.to_owned(),
                part: "value",
                source,
            }
        } else {
            Error::NotJson {
                key: key.to_owned(),
                source,
            }
        }
    })
}

/// K21: in a bulk read, a value that is not JSON fails the whole call with KV's text.
fn bulk_json<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, Error> {
    json(key, value).map_err(|e| match e {
        Error::NotJson { key, .. } => Error::BulkNotJson { key },
        other => other,
    })
}

/// K12: metadata comes back as the JSON that was stored.
pub(crate) fn metadata<M: DeserializeOwned>(
    key: &str,
    metadata: Option<String>,
) -> Result<Option<M>, Error> {
    match metadata {
        Some(metadata) => metadata_str(key, &metadata),
        None => Ok(None),
    }
}

/// K12: stored metadata JSON, parsed.
pub(crate) fn metadata_str<M: DeserializeOwned>(
    key: &str,
    metadata: &str,
) -> Result<Option<M>, Error> {
    serde_json::from_str(metadata)
        .map(Some)
        .map_err(|source| Error::Decode {
            key: key.to_owned(),
            part: "metadata",
            source,
        })
}
