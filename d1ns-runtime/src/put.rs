//! `put` and `put_bytes`: one upsert each, replacing value, metadata and expiration together
//! (K16).

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;

use crate::backend::{Backend, Statement, Value};
use crate::chunk;
use crate::error::{Error, Operation};
use crate::limits;
use crate::namespace::{D1Namespace, to_i64};

impl<B: Backend> D1Namespace<B> {
    /// Writes a value: a string as is, a number or boolean as its text (`42`, `true`), anything
    /// else `Serialize` as JSON text, as workers-rs does for KV (K8).
    ///
    /// Finish with `.execute().await` or just `.await`:
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// kv.put("count", 42)?.await?;
    /// kv.put("session", "token")?.expiration_ttl(1).metadata("web")?.await?;
    /// assert_eq!(kv.get("count").text().await?.as_deref(), Some("42"));
    /// # Ok(()) }
    /// ```
    pub fn put<T: Serialize>(&self, key: &str, value: T) -> Result<PutOptionsBuilder<B>, Error> {
        let serialize_error = |source| Error::Serialize {
            key: key.to_owned(),
            part: "value",
            source,
        };
        let text = match serde_json::to_value(&value).map_err(serialize_error)? {
            serde_json::Value::String(s) => s,
            // As workers-rs: a float is written as Rust prints an f64 (`1.0` -> `1`); integers
            // keep every digit (workers-rs rounds those above 2^53 through a JS number).
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if !(n.is_i64() || n.is_u64()) => f.to_string(),
                _ => n.to_string(),
            },
            serde_json::Value::Bool(b) => b.to_string(),
            other => serde_json::to_string(&other).map_err(serialize_error)?,
        };
        Ok(self.put_value(key, Value::Text(text)))
    }

    /// Writes bytes; they read back as bytes, or as text if they are UTF-8 (K7).
    pub fn put_bytes(&self, key: &str, value: &[u8]) -> Result<PutOptionsBuilder<B>, Error> {
        Ok(self.put_value(key, Value::Blob(value.to_vec())))
    }

    pub(crate) fn put_value(&self, key: &str, value: Value) -> PutOptionsBuilder<B> {
        PutOptionsBuilder {
            namespace: self.clone(),
            key: key.to_owned(),
            value,
            expiration: None,
            expiration_ttl: None,
            metadata: None,
        }
    }
}

/// Options of a `put`; made by [`D1Namespace::put`] and [`D1Namespace::put_bytes`].
/// Nothing is written until `.execute().await` (or `.await`).
#[derive(Debug)]
#[must_use = "a put does nothing until you .execute().await (or .await) it"]
pub struct PutOptionsBuilder<B> {
    namespace: D1Namespace<B>,
    key: String,
    value: Value,
    expiration: Option<u64>,
    expiration_ttl: Option<u64>,
    metadata: Option<String>,
}

impl<B: Backend> PutOptionsBuilder<B> {
    /// Expire at this time, in seconds since the Unix epoch; it must be in the future (K14).
    pub fn expiration(mut self, expiration: u64) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Expire this many seconds from now; any value from 1 up, no 60-second minimum (K14).
    /// Wins over [`expiration`](Self::expiration) (K13).
    pub fn expiration_ttl(mut self, expiration_ttl: u64) -> Self {
        self.expiration_ttl = Some(expiration_ttl);
        self
    }

    /// Metadata stored with the value: any JSON of at most 1024 bytes (K10, K11); `null` means
    /// none.
    pub fn metadata<T: Serialize>(self, metadata: T) -> Result<Self, Error> {
        let json = serde_json::to_string(&metadata).map_err(|source| Error::Serialize {
            key: self.key.clone(),
            part: "metadata",
            source,
        })?;
        Ok(self.metadata_json(json))
    }

    /// Metadata already serialized; `null` means none (K10).
    pub(crate) fn metadata_json(mut self, json: String) -> Self {
        self.metadata = (json != "null").then_some(json);
        self
    }

    /// Writes the entry, replacing any value, metadata and expiration the key had (K16).
    pub async fn execute(self) -> Result<(), Error> {
        let ns = self.namespace;
        limits::check_key(Operation::Put, &self.key)?;
        limits::check_value_len(&self.key, chunk::len(&self.value))?;
        if let Some(metadata) = &self.metadata {
            limits::check_metadata_len(&self.key, metadata.len())?;
        }
        let expiration =
            limits::expiration_ms(&self.key, ns.now_ms(), self.expiration, self.expiration_ttl)?;
        // A value too long for one row goes in parts, written in the same batch: all or nothing.
        let (value, parts) = match chunk::split(&self.value) {
            Some((stand_in, parts)) => (stand_in, parts),
            None => (self.value, Vec::new()),
        };
        let part_count = to_i64(parts.len() as u64);
        let mut statements = Vec::with_capacity(1 + parts.len());
        statements.push(Statement {
            sql: &ns.sql().put,
            params: vec![
                ns.namespace_param(),
                Value::Text(self.key.clone()),
                value,
                self.metadata.map_or(Value::Null, Value::Text),
                expiration.map_or(Value::Null, |ms| Value::Integer(to_i64(ms))),
                if part_count > 0 {
                    Value::Integer(part_count)
                } else {
                    Value::Null
                },
            ],
        });
        for (index, part) in parts.into_iter().enumerate() {
            statements.push(Statement {
                sql: &ns.sql().put_chunk,
                params: vec![
                    ns.namespace_param(),
                    Value::Text(self.key.clone()),
                    Value::Integer(to_i64(index as u64)),
                    Value::Text(part),
                ],
            });
        }
        ns.run(statements).await.map(drop)
    }
}

impl<B: Backend + Send + Sync + 'static> IntoFuture for PutOptionsBuilder<B> {
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}
