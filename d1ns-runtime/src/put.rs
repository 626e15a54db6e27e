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
use crate::version::Versionstamp;

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
        let text = kv_text(&value).map_err(|source| Error::Serialize {
            key: key.to_owned(),
            part: "value",
            source,
        })?;
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

    /// The key being written.
    #[cfg(feature = "d1")]
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The value to write instead of the one the builder was made with.
    #[cfg(feature = "d1")]
    pub(crate) fn value(mut self, value: Value) -> Self {
        self.value = value;
        self
    }

    /// Metadata already serialized; `null` means none (K10).
    pub(crate) fn metadata_json(mut self, json: String) -> Self {
        self.metadata = (json != "null").then_some(json);
        self
    }

    /// Writes the entry, replacing any value, metadata and expiration the key had (K16).
    pub async fn execute(self) -> Result<(), Error> {
        let ns = self.namespace.clone();
        let put = self.check(ns.now_ms())?;
        let version = Versionstamp::random()?;
        let key = put.key.clone();
        let shard = ns.shard_of(&key);
        let result = ns.run(shard, put.statements(&ns, version)).await;
        ns.purge_cached(&[&key]).await;
        result.map(drop)
    }

    /// The put checked against the KV rules (K1-K16) at time `now`, ready to become statements.
    pub(crate) fn check(self, now: u64) -> Result<CheckedPut, Error> {
        limits::check_key(Operation::Put, &self.key)?;
        limits::check_value_len(&self.key, chunk::len(&self.value))?;
        if let Some(metadata) = &self.metadata {
            limits::check_metadata_len(&self.key, metadata.len())?;
        }
        let expiration =
            limits::expiration_ms(&self.key, now, self.expiration, self.expiration_ttl)?;
        Ok(CheckedPut {
            key: self.key,
            value: self.value,
            metadata: self.metadata,
            expiration,
        })
    }
}

/// A put that passed the KV rules: see [`PutOptionsBuilder::check`].
#[derive(Debug)]
pub(crate) struct CheckedPut {
    pub key: String,
    value: Value,
    metadata: Option<String>,
    /// In milliseconds.
    expiration: Option<u64>,
}

impl CheckedPut {
    /// An entry copied as it is from a previous home (M6): it passed the KV rules there.
    pub(crate) fn copied(
        key: String,
        value: Value,
        metadata: Option<String>,
        expiration: Option<u64>,
    ) -> CheckedPut {
        CheckedPut {
            key,
            value,
            metadata,
            expiration,
        }
    }

    /// The bytes the put sends: key, value and metadata.
    pub(crate) fn len(&self) -> usize {
        self.key.len() + chunk::len(&self.value) + self.metadata.as_ref().map_or(0, String::len)
    }

    /// The statements that write the entry with `version`: one upsert, or for a value in chunks
    /// the entry, then the removal of the key's old chunks, then its chunks, in one batch.
    pub(crate) fn statements<'s, B: Backend>(
        self,
        ns: &'s D1Namespace<B>,
        version: Versionstamp,
    ) -> Vec<Statement<'s>> {
        let key = Value::Text(self.key);
        let expiration = self
            .expiration
            .map_or(Value::Null, |ms| Value::Integer(to_i64(ms)));
        let metadata = self.metadata.map_or(Value::Null, Value::Text);
        let version = Value::Text(version.to_string());
        let count = |n: usize| {
            if n > 0 {
                Value::Integer(to_i64(n as u64))
            } else {
                Value::Null
            }
        };
        let entry = |value, chunks: usize, size: usize| Statement {
            sql: &ns.sql().put,
            params: vec![
                ns.namespace_param(),
                key.clone(),
                value,
                metadata.clone(),
                expiration.clone(),
                count(chunks),
                if chunks > 0 { count(size) } else { Value::Null },
                version.clone(),
            ],
        };
        // The indexed fields of a JSON value in chunks stay in its row, where the index reads
        // them (I11); reads take only the kind of the row's value when there are chunks.
        let indexed = match &self.value {
            Value::Text(text)
                if chunk::len(&self.value) > crate::limits::MAX_IN_ROW_VALUE_BYTES
                    && !ns.inner.indexes.is_empty() =>
            {
                crate::index::indexed_fields(text, &ns.inner.indexes)
            }
            _ => None,
        };
        let mut chunked = match chunk::split(self.value) {
            Ok(chunked) => chunked,
            Err(value) => return vec![entry(value, 0, 0)],
        };
        if let Some(fields) = indexed {
            chunked.stand_in = Value::Text(fields);
        }
        let mut statements = Vec::with_capacity(2 + chunked.chunks.len());
        statements.push(entry(chunked.stand_in, chunked.chunks.len(), chunked.size));
        statements.push(Statement {
            sql: &ns.sql().delete_chunks,
            params: vec![ns.namespace_param(), key.clone()],
        });
        for (index, chunk) in chunked.chunks.into_iter().enumerate() {
            statements.push(Statement {
                sql: &ns.sql().put_chunk,
                params: vec![
                    ns.namespace_param(),
                    key.clone(),
                    Value::Integer(to_i64(index as u64)),
                    Value::Text(chunk),
                ],
            });
        }
        statements
    }
}

impl<B: Backend + Send + Sync + 'static> IntoFuture for PutOptionsBuilder<B> {
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// A value as workers-rs's `KvStore::put` stores it (K8): a string as is; a number or boolean as
/// its text, a float as Rust prints an `f64` (`1.0` -> `1`, NaN -> `NaN`) while integers keep
/// every digit; anything else as JSON text, fields in the order serde writes them.
fn kv_text<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    match value.serialize(scalar::Scalar) {
        Ok(text) => Ok(text),
        Err(scalar::NotScalar) => serde_json::to_string(value),
    }
}

/// A serializer that turns a top-level string, number, boolean or null into its KV text and
/// refuses anything else (which then goes to `serde_json`), so no value is serialized twice.
mod scalar {
    use std::fmt;

    use serde::ser::{self, Impossible, Serialize, Serializer};

    pub(super) struct Scalar;

    /// Not a scalar (or a scalar that failed): serialize it as JSON instead.
    #[derive(Debug)]
    pub(super) struct NotScalar;

    impl fmt::Display for NotScalar {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("not a scalar")
        }
    }

    impl std::error::Error for NotScalar {}

    impl ser::Error for NotScalar {
        fn custom<T: fmt::Display>(_: T) -> Self {
            NotScalar
        }
    }

    macro_rules! as_text {
        ($($method:ident: $ty:ty),*) => {
            $(fn $method(self, v: $ty) -> Result<String, NotScalar> {
                Ok(v.to_string())
            })*
        };
    }

    impl Serializer for Scalar {
        type Ok = String;
        type Error = NotScalar;
        type SerializeSeq = Impossible<String, NotScalar>;
        type SerializeTuple = Impossible<String, NotScalar>;
        type SerializeTupleStruct = Impossible<String, NotScalar>;
        type SerializeTupleVariant = Impossible<String, NotScalar>;
        type SerializeMap = Impossible<String, NotScalar>;
        type SerializeStruct = Impossible<String, NotScalar>;
        type SerializeStructVariant = Impossible<String, NotScalar>;

        as_text!(
            serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
            serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
            serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f64: f64,
            serialize_char: char, serialize_str: &str
        );

        fn serialize_f32(self, v: f32) -> Result<String, NotScalar> {
            // workers-rs hands an f32 to JavaScript as a double.
            Ok(f64::from(v).to_string())
        }

        fn serialize_bytes(self, _: &[u8]) -> Result<String, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_none(self) -> Result<String, NotScalar> {
            Ok("null".to_owned())
        }

        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, NotScalar> {
            value.serialize(self)
        }

        fn serialize_unit(self) -> Result<String, NotScalar> {
            Ok("null".to_owned())
        }

        fn serialize_unit_struct(self, _: &'static str) -> Result<String, NotScalar> {
            Ok("null".to_owned())
        }

        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<String, NotScalar> {
            Ok(variant.to_owned())
        }

        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<String, NotScalar> {
            value.serialize(self)
        }

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<String, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, NotScalar> {
            Err(NotScalar)
        }

        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotScalar> {
            Err(NotScalar)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kv_text;

    #[test]
    fn scalars_are_stored_as_workers_rs_stores_them() {
        // K8
        assert_eq!(kv_text("plain").unwrap(), "plain");
        assert_eq!(kv_text(&42).unwrap(), "42");
        assert_eq!(kv_text(&u64::MAX).unwrap(), "18446744073709551615");
        assert_eq!(kv_text(&1.0).unwrap(), "1");
        assert_eq!(kv_text(&2.5f32).unwrap(), "2.5");
        assert_eq!(kv_text(&f64::NAN).unwrap(), "NaN");
        assert_eq!(kv_text(&f64::INFINITY).unwrap(), "inf");
        assert_eq!(kv_text(&true).unwrap(), "true");
        assert_eq!(kv_text(&Some("x")).unwrap(), "x");
        assert_eq!(kv_text(&()).unwrap(), "null");
    }

    #[test]
    fn structs_keep_the_order_serde_writes_their_fields_in() {
        // K8: declaration order, as JSON.stringify of the object workers-rs builds.
        #[derive(serde::Serialize)]
        struct User {
            id: u32,
            name: &'static str,
            active: bool,
        }
        let user = User {
            id: 1,
            name: "n",
            active: true,
        };
        assert_eq!(
            kv_text(&user).unwrap(),
            r#"{"id":1,"name":"n","active":true}"#
        );
        assert_eq!(kv_text(&[1, 2]).unwrap(), "[1,2]");
    }
}
