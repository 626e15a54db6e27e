//! `get`, `get_with_metadata` and `get_bulk`: one statement each (a bulk read of values stored in
//! parts reads the parts in further round trips), reading through the primary key, hiding expired
//! entries by predicate and never writing (K31a).

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::backend::{Backend, Statement, Value};
use crate::chunk;
use crate::error::{DatabaseError, Error, Operation};
use crate::limits;
use crate::namespace::{D1Namespace, to_i64};

/// A live entry as stored: its value (text or bytes), metadata JSON and expiration.
#[derive(Debug)]
pub(crate) struct StoredEntry {
    pub value: Value,
    pub metadata: Option<String>,
    /// In whole seconds since the Unix epoch (K15).
    pub expiration: Option<u64>,
}

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
            key: key.to_owned(),
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
    pub(crate) key: String,
    cache_ttl: Option<u64>,
}

impl<B: Backend> GetOptionsBuilder<B> {
    /// Accepted for compatibility with KV; values below 30 fail as in KV (K18). It changes
    /// nothing else: reads are always fresh.
    pub fn cache_ttl(mut self, cache_ttl: u64) -> Self {
        self.cache_ttl = Some(cache_ttl);
        self
    }

    /// The value as text; `None` if missing or expired (K17). Bytes that are not UTF-8 are an
    /// error, never mangled (K7).
    pub async fn text(self) -> Result<Option<String>, Error> {
        let entry = self.entry().await?;
        entry.map(|e| text(&self.key, e.value)).transpose()
    }

    /// The value parsed as JSON into `T` (K7).
    pub async fn json<T: DeserializeOwned>(self) -> Result<Option<T>, Error> {
        let entry = self.entry().await?;
        entry.map(|e| json(&self.key, e.value)).transpose()
    }

    /// The value as bytes (text reads as its UTF-8, K7).
    pub async fn bytes(self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entry().await?.map(|e| bytes(e.value)))
    }

    /// The value as text, with its metadata; `(None, None)` if missing (K17).
    pub async fn text_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<(Option<String>, Option<M>), Error> {
        self.with_metadata(text).await
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

    async fn with_metadata<T, M: DeserializeOwned>(
        self,
        decode: impl FnOnce(&str, Value) -> Result<T, Error>,
    ) -> Result<(Option<T>, Option<M>), Error> {
        let key = &self.key;
        match self.entry().await? {
            None => Ok((None, None)),
            Some(entry) => Ok((
                Some(decode(key, entry.value)?),
                metadata(key, entry.metadata)?,
            )),
        }
    }

    /// The live entry under the key, in one statement (parts of a long value included).
    pub(crate) async fn entry(&self) -> Result<Option<StoredEntry>, Error> {
        limits::check_key(Operation::Get, &self.key)?;
        limits::check_cache_ttl(Operation::Get, self.cache_ttl)?;
        let ns = &self.namespace;
        let result = ns.run_one(ns.get_statement(&self.key)).await?;
        decode_entry(&self.key, result.rows)
    }
}

impl<B: Backend> D1Namespace<B> {
    /// Reads one entry with its parts: see `Sql::get`.
    fn get_statement(&self, key: &str) -> Statement<'_> {
        Statement {
            sql: &self.sql().get,
            params: vec![
                self.namespace_param(),
                Value::Text(key.to_owned()),
                Value::Integer(to_i64(self.now_ms())),
            ],
        }
    }
}

/// The entry from the rows of `Sql::get`: the entry's row (part -1) and its parts, in any order.
fn decode_entry(key: &str, rows: Vec<Vec<Value>>) -> Result<Option<StoredEntry>, Error> {
    let mut rows: Vec<(i64, [Value; 5])> = rows
        .into_iter()
        .map(|row| {
            let row = columns(row)?;
            let part = match row[0] {
                Value::Integer(part) => part,
                Value::Real(part) => part as i64,
                _ => i64::MIN,
            };
            Ok((part, row))
        })
        .collect::<Result<_, Error>>()?;
    if rows.len() > 1 {
        rows.sort_unstable_by_key(|(part, _)| *part);
    }
    let mut rows = rows.into_iter();
    let Some((-1, [_, value, metadata, expiration, chunks])) = rows.next() else {
        // No row, or only parts: the entry itself is missing or expired.
        return Ok(None);
    };
    let value = match chunks.as_u64() {
        Some(count) if count > 0 => {
            // Parts 0..count, each once: anything else is a damaged entry, not a value.
            let mut parts = Vec::new();
            for (expected, (part, [_, data, _, _, _])) in (0..).zip(rows) {
                if part != expected {
                    return Err(damaged(key, &format!("part {expected} is missing")));
                }
                parts.push(data);
            }
            if parts.len() as u64 != count {
                return Err(damaged(
                    key,
                    &format!("{} of its {count} parts", parts.len()),
                ));
            }
            chunk::join(key, value, parts)?
        }
        _ => value,
    };
    Ok(Some(StoredEntry {
        value,
        metadata: text_column(metadata),
        expiration: expiration.as_u64().map(limits::expiration_seconds),
    }))
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
    /// Accepted for compatibility with KV; values below 30 fail as in KV (K18).
    pub fn cache_ttl(mut self, cache_ttl: u64) -> Self {
        self.cache_ttl = Some(cache_ttl);
        self
    }

    /// Every requested key's value as text, `None` where missing (K20).
    pub async fn text(self) -> Result<HashMap<String, Option<String>>, Error> {
        self.collect(|key, value, _| text(key, value)).await
    }

    /// Every requested key's value parsed as JSON. If any present value is not JSON the whole
    /// call fails, as in KV (K21).
    pub async fn json<T: DeserializeOwned>(self) -> Result<HashMap<String, Option<T>>, Error> {
        self.collect(|key, value, _| bulk_json(key, value)).await
    }

    /// Every requested key's value as text with its metadata; a missing key gives `None` (K22).
    pub async fn text_with_metadata<M: DeserializeOwned>(
        self,
    ) -> Result<HashMap<String, (Option<String>, Option<M>)>, Error> {
        let found = self
            .collect(|key, value, meta| Ok((text(key, value)?, metadata(key, meta)?)))
            .await?;
        Ok(split_pairs(found))
    }

    /// Every requested key's value as JSON with its metadata; a missing key gives `None` (K22).
    pub async fn json_with_metadata<T: DeserializeOwned, M: DeserializeOwned>(
        self,
    ) -> Result<HashMap<String, (Option<T>, Option<M>)>, Error> {
        let found = self
            .collect(|key, value, meta| Ok((bulk_json(key, value)?, metadata(key, meta)?)))
            .await?;
        Ok(split_pairs(found))
    }

    /// Reads all keys in one statement and decodes the present ones in request order, so the
    /// first failing key (in the caller's order) is the one reported.
    async fn collect<T>(
        self,
        mut decode: impl FnMut(&str, Value, Option<String>) -> Result<T, Error>,
    ) -> Result<HashMap<String, Option<T>>, Error> {
        let ns = self.namespace;
        limits::check_bulk_count(self.keys.len())?;
        limits::check_cache_ttl(Operation::GetBulk, self.cache_ttl)?;
        for key in &self.keys {
            limits::check_key(Operation::GetBulk, key)?;
        }
        let keys_json = serde_json::to_string(&self.keys).map_err(|source| Error::Serialize {
            key: self.keys.first().cloned().unwrap_or_default(),
            part: "key",
            source,
        })?;
        let statement = Statement {
            sql: &ns.sql().get_bulk,
            params: vec![
                ns.namespace_param(),
                Value::Text(keys_json),
                Value::Integer(to_i64(ns.now_ms())),
            ],
        };
        let rows = ns.run_one(statement).await?.rows;
        let mut found: HashMap<String, (Value, Option<String>)> =
            HashMap::with_capacity(rows.len());
        let mut long_values = Vec::new();
        for row in rows {
            let [key, value, meta, chunks] = columns(row)?;
            let Value::Text(key) = key else { continue };
            match chunks.as_u64() {
                Some(parts) if parts > 0 => long_values.push((key, parts)),
                _ => {
                    found.insert(key, (value, text_column(meta)));
                }
            }
        }
        // Values stored in parts: read whole, a few per round trip, within D1's result size.
        for group in group_by_size(long_values) {
            let statements = group.iter().map(|key| ns.get_statement(key)).collect();
            let results = ns.run(statements).await?;
            for (key, result) in group.into_iter().zip(results) {
                if let Some(entry) = decode_entry(&key, result.rows)? {
                    found.insert(key, (entry.value, entry.metadata));
                }
            }
        }
        let mut result = HashMap::with_capacity(self.keys.len());
        for key in self.keys {
            let decoded = match found.remove(&key) {
                Some((value, meta)) => Some(decode(&key, value, meta)?),
                // Either missing, or a duplicate already decoded (K20: duplicates collapse).
                None if result.contains_key(&key) => continue,
                None => None,
            };
            result.insert(key, decoded);
        }
        Ok(result)
    }
}

fn damaged(key: &str, what: &str) -> Error {
    Error::Database(DatabaseError::new(format!(
        "the entry of key {key:?} is damaged: {what}"
    )))
}

/// Most bytes of parts read in one round trip: D1 returns at most 50 MB per call.
const MAX_BYTES_PER_ROUND_TRIP: u64 = 40_000_000;

/// Keys with their part counts, grouped so that each group's parts fit one round trip.
fn group_by_size(keys: Vec<(String, u64)>) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current_bytes: u64 = 0;
    for (key, parts) in keys {
        // `parts` comes from the database: saturate rather than trust it.
        let bytes = parts.saturating_mul(limits::MAX_ROW_VALUE_BYTES as u64);
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

/// A row's columns, when the statement selected exactly `N`.
pub(crate) fn columns<const N: usize>(row: Vec<Value>) -> Result<[Value; N], Error> {
    let got = row.len();
    row.try_into().map_err(|_| {
        Error::Database(DatabaseError::new(format!(
            "expected {N} columns in a row, got {got}"
        )))
    })
}

/// A nullable TEXT column (metadata).
pub(crate) fn text_column(value: Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t),
        Value::Blob(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// K7: text as is; bytes only if they are UTF-8.
pub(crate) fn text(key: &str, value: Value) -> Result<String, Error> {
    match value {
        Value::Text(t) => Ok(t),
        Value::Blob(b) => String::from_utf8(b).map_err(|_| Error::NotUtf8 {
            key: key.to_owned(),
        }),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Real(r) => Ok(r.to_string()),
        Value::Null => Ok(String::new()),
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
        if source.is_data() {
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
    metadata
        .map(|m| {
            serde_json::from_str(&m).map_err(|source| Error::Decode {
                key: key.to_owned(),
                part: "metadata",
                source,
            })
        })
        .transpose()
}
