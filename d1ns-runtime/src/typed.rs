//! Typed namespaces: values and metadata as Rust types, stored as JSON in the same table layout
//! as the untyped API. `#[d1_namespace]` implements [`Namespace`] for a type; everything else is
//! the generic code here, over [`D1Namespace`].

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::atomic::AtomicOperation;
use crate::backend::{Backend, Session, Value};
use crate::error::Error;
use crate::list::ListOptionsBuilder;
use crate::namespace::{D1Namespace, D1NamespaceBuilder};
use crate::put::PutOptionsBuilder;
use crate::version::Versionstamp;

/// A type stored in its own KV namespace; implemented by `#[d1_namespace]`, which checks the
/// names at compile time. It cannot be implemented by hand: use the attribute.
///
/// What `#[d1_namespace(name = "sessions", ttl = 30)]` implements:
///
/// ```ignore
/// impl Namespace for Session {
///     const NAME: &'static str = "sessions";
///     const TABLE: Option<&'static str> = None;
///     const TTL: Option<u64> = Some(30);
///     const AUTO_CREATE: bool = true;
///     type Metadata = NoMetadata;
/// }
/// ```
pub trait Namespace: Sealed + Serialize + DeserializeOwned {
    /// The namespace name (K33); also names the default table, `{NAME}_kv_entries`.
    const NAME: &'static str;
    /// The table, when not `{NAME}_kv_entries`.
    const TABLE: Option<&'static str>;
    /// The expiration TTL every put gets unless it says otherwise, in seconds.
    const TTL: Option<u64>;
    /// Whether to create the table on first use.
    const AUTO_CREATE: bool;
    /// The metadata stored with each value; [`NoMetadata`] for none.
    type Metadata: Serialize + DeserializeOwned;
    /// The indexed fields, `index(..)` of the attribute (I1).
    #[doc(hidden)]
    const INDEXES: &'static [crate::index::IndexDef] = &[];
}

/// Implemented by `#[d1_namespace]` only, so that every [`Namespace`]'s names were checked.
#[doc(hidden)]
pub trait Sealed {}

/// The metadata type of a namespace without metadata: stores nothing, reads as itself whatever
/// is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NoMetadata;

impl Serialize for NoMetadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| NoMetadata)
    }
}

/// A stored value with its metadata, expiration and versionstamp: what
/// [`TypedNamespace::get_with_metadata`] and the `_entry` reads of
/// [`GetOptionsBuilder`](crate::GetOptionsBuilder) return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T, M> {
    /// The value.
    pub value: T,
    /// The metadata, if the value was written with some.
    pub metadata: Option<M>,
    /// When it expires, in seconds since the Unix epoch (rounded up), if it does.
    pub expiration: Option<u64>,
    /// The stamp of the write that made this value (A1): pass it to an atomic `check` to write
    /// only if nobody wrote the key since.
    pub version: Versionstamp,
}

/// A listed key of a typed namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedKey<M> {
    /// The key.
    pub name: String,
    /// When it expires, in seconds since the Unix epoch, if it does.
    pub expiration: Option<u64>,
    /// Its metadata, if any.
    pub metadata: Option<M>,
}

/// One page of keys of a typed namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedListResponse<M> {
    /// The keys of this page, in UTF-8 byte order.
    pub keys: Vec<TypedKey<M>>,
    /// `true` on the last page.
    pub list_complete: bool,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

/// A namespace whose values are `T` and whose metadata is `T::Metadata`, checked at compile
/// time and stored as JSON. Made by the `namespace` constructors `#[d1_namespace]` generates.
pub struct TypedNamespace<T, B> {
    raw: D1Namespace<B>,
    _values: PhantomData<fn() -> T>,
}

impl<T: Namespace, B: Backend> TypedNamespace<T, B> {
    /// The namespace of `T` on `backend`, with `T`'s name, table and auto-create setting.
    pub fn new(backend: B) -> Self {
        TypedNamespace {
            raw: Self::builder(backend).build_unchecked(),
            _values: PhantomData,
        }
    }

    /// Like [`new`](Self::new), with the builder handed to `configure` first (to set a
    /// [`ManualClock`](crate::ManualClock), say).
    pub fn with(
        backend: B,
        configure: impl FnOnce(D1NamespaceBuilder<B>) -> D1NamespaceBuilder<B>,
    ) -> Result<Self, Error> {
        let raw = configure(Self::builder(backend)).build()?;
        Ok(TypedNamespace {
            raw,
            _values: PhantomData,
        })
    }

    /// The namespace of `T` spread over several databases (S1), each key placed by its name
    /// (see [`D1Namespace::sharded`]); what `#[d1_namespace]`'s `namespace_sharded` calls.
    pub fn sharded<N: Into<String>>(
        shards: impl IntoIterator<Item = (N, B)>,
    ) -> Result<Self, Error> {
        Self::sharded_with(shards, |builder| builder)
    }

    /// Like [`sharded`](Self::sharded), with the builder handed to `configure` first (for a
    /// previous home during a move, say).
    pub fn sharded_with<N: Into<String>>(
        shards: impl IntoIterator<Item = (N, B)>,
        configure: impl FnOnce(D1NamespaceBuilder<B>) -> D1NamespaceBuilder<B>,
    ) -> Result<Self, Error> {
        let raw = configure(Self::typed(D1Namespace::sharded(shards))).build()?;
        Ok(TypedNamespace {
            raw,
            _values: PhantomData,
        })
    }

    fn builder(backend: B) -> D1NamespaceBuilder<B> {
        Self::typed(D1Namespace::builder(backend))
    }

    /// `T`'s name, table, auto-create setting and indexes on a builder.
    fn typed(builder: D1NamespaceBuilder<B>) -> D1NamespaceBuilder<B> {
        let builder = builder
            .namespace(T::NAME)
            .auto_create(T::AUTO_CREATE)
            .indexes(T::INDEXES);
        match T::TABLE {
            Some(table) => builder.table(table),
            None => builder,
        }
    }

    /// The untyped KV API over the same namespace.
    pub fn raw(&self) -> &D1Namespace<B> {
        &self.raw
    }

    // Every operation's future owns what it needs (a clone of the namespace, the key, the
    // serialized value), so it can outlive the call: spawned, or given to `ctx.wait_until`.

    /// The value under `key`; `None` if missing or expired. A stored value that does not
    /// decode into `T` is an error naming the key.
    pub fn get(&self, key: &str) -> impl Future<Output = Result<Option<T>, Error>> + use<T, B> {
        self.raw.get(key).json()
    }

    /// [`get`](Self::get) through the edge cache (R6): the result may come from this data
    /// center's cache, up to `cache_ttl` seconds old (at least 30, K18), on a namespace made
    /// with `edge_cache` (a builder option of the `d1` feature) (`T::namespace_with`);
    /// otherwise the same as `get`.
    pub fn get_cached(
        &self,
        key: &str,
        cache_ttl: u64,
    ) -> impl Future<Output = Result<Option<T>, Error>> + use<T, B> {
        self.raw.get(key).cache_ttl(cache_ttl).json()
    }

    /// The value under `key` with its metadata and expiration.
    pub fn get_with_metadata(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Entry<T, T::Metadata>>, Error>> + use<T, B> {
        self.raw.get(key).json_entry()
    }

    /// Up to 100 values in one round trip; `None` for missing keys. The future holds copies
    /// of the keys, yet its type names `K`: it is `'static` when `K` is (`String`, `&'static str`).
    pub fn get_bulk<K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> impl Future<Output = Result<HashMap<String, Option<T>>, Error>> + use<T, B, K> {
        self.raw.get_bulk(keys).json()
    }

    /// Writes `value` under `key`, with the namespace's TTL unless the builder says otherwise.
    /// The value is serialized now; finish with `.execute().await` or `.await`.
    pub fn put(&self, key: &str, value: &T) -> TypedPutBuilder<T, B> {
        TypedPutBuilder {
            namespace: self.raw.clone(),
            key: key.to_owned(),
            value: serde_json::to_string(value),
            expiry: Expiry::Default,
            metadata: Ok(None),
            _values: PhantomData,
        }
    }

    /// Deletes `key`; deleting a missing key succeeds.
    pub fn delete(&self, key: &str) -> impl Future<Output = Result<(), Error>> + use<T, B> {
        let raw = self.raw.clone();
        let key = key.to_owned();
        async move { raw.delete(&key).await }
    }

    /// Starts an atomic commit over this namespace (A15): checks on versionstamps (from
    /// [`get_with_metadata`](Self::get_with_metadata)'s [`Entry::version`]), typed puts with
    /// the namespace's TTL, and deletes, applied together or not at all.
    ///
    /// ```ignore
    /// let entry = carts.get_with_metadata("alice").await?;
    /// let mut cart = entry.as_ref().map(|e| e.value.clone()).unwrap_or_default();
    /// cart.items.push(item);
    /// let committed = carts
    ///     .atomic()
    ///     .check("alice", entry.map(|e| e.version))
    ///     .put("alice", &cart)
    ///     .commit()
    ///     .await?;
    /// ```
    pub fn atomic(&self) -> TypedAtomicOperation<T, B> {
        TypedAtomicOperation {
            raw: self.raw.atomic(),
            namespace: self.clone(),
        }
    }

    /// Lists keys with their typed metadata. Finish with `.execute().await` or `.await`.
    pub fn list(&self) -> TypedListBuilder<T, B> {
        TypedListBuilder {
            list: self.raw.list(),
            _values: PhantomData,
        }
    }
}

impl<T: Namespace, B: Backend + Session> TypedNamespace<T, B> {
    /// The bookmark of the D1 session this namespace runs on (R2); see
    /// [`D1Namespace::bookmark`].
    pub fn bookmark(&self) -> Result<Option<String>, Error> {
        self.raw.bookmark()
    }
}

impl<T, B> Clone for TypedNamespace<T, B> {
    fn clone(&self) -> Self {
        TypedNamespace {
            raw: self.raw.clone(),
            _values: PhantomData,
        }
    }
}

impl<T, B> fmt::Debug for TypedNamespace<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedNamespace")
            .field("type", &std::any::type_name::<T>())
            .field("raw", &self.raw)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum Expiry {
    Default,
    Ttl(u64),
    At(u64),
    Never,
}

/// Options of a typed `put`; made by [`TypedNamespace::put`]. It owns its key and the value
/// as JSON, so the put can outlive the call that made it.
#[must_use = "a put does nothing until you .execute().await (or .await) it"]
pub struct TypedPutBuilder<T: Namespace, B> {
    namespace: D1Namespace<B>,
    key: String,
    /// Serialized at `put`, reported at `execute`.
    value: Result<String, serde_json::Error>,
    expiry: Expiry,
    /// Serialized when given, reported at `execute`.
    metadata: Result<Option<String>, serde_json::Error>,
    _values: PhantomData<fn() -> T>,
}

impl<T: Namespace, B: Backend> TypedPutBuilder<T, B> {
    /// Expire this many seconds from now (any value from 1 up), instead of the namespace's TTL.
    pub fn expiration_ttl(mut self, seconds: u64) -> Self {
        self.expiry = Expiry::Ttl(seconds);
        self
    }

    /// Expire at this time, in seconds since the Unix epoch, instead of the namespace's TTL.
    pub fn expiration(mut self, unix_seconds: u64) -> Self {
        self.expiry = Expiry::At(unix_seconds);
        self
    }

    /// Never expire, whatever the namespace's TTL.
    pub fn no_expiration(mut self) -> Self {
        self.expiry = Expiry::Never;
        self
    }

    /// Metadata stored with the value (at most 1024 bytes of JSON).
    pub fn metadata(mut self, metadata: impl std::borrow::Borrow<T::Metadata>) -> Self {
        self.metadata = serde_json::to_string(metadata.borrow()).map(Some);
        self
    }

    /// Writes the entry.
    pub async fn execute(self) -> Result<(), Error> {
        self.into_raw()?.execute().await
    }

    /// The untyped put this builder stands for: the JSON value, metadata and expiration (the
    /// namespace's TTL unless the builder said otherwise).
    fn into_raw(self) -> Result<PutOptionsBuilder<B>, Error> {
        let key = self.key.as_str();
        let serialize_error = |part| {
            move |source| Error::Serialize {
                key: key.to_owned(),
                part,
                source,
            }
        };
        let value = self.value.map_err(serialize_error("value"))?;
        crate::index::check_indexed_integers(key, &value, &self.namespace.inner.indexes)?;
        let mut put = self.namespace.put_value(key, Value::Text(value));
        if let Some(json) = self.metadata.map_err(serialize_error("metadata"))? {
            put = put.metadata_json(json);
        }
        put = match self.expiry {
            Expiry::Default => match T::TTL {
                Some(ttl) => put.expiration_ttl(ttl),
                None => put,
            },
            Expiry::Ttl(seconds) => put.expiration_ttl(seconds),
            Expiry::At(unix_seconds) => put.expiration(unix_seconds),
            Expiry::Never => put,
        };
        Ok(put)
    }
}

impl<T: Namespace + 'static, B: Backend + Send + Sync + 'static> IntoFuture
    for TypedPutBuilder<T, B>
{
    type Output = Result<(), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<T: Namespace, B> fmt::Debug for TypedPutBuilder<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedPutBuilder")
            .field("key", &self.key)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// An atomic commit over a typed namespace; made by [`TypedNamespace::atomic`]. Values are `T`,
/// checked at compile time; puts get the namespace's TTL (A15).
#[must_use = "an atomic operation does nothing until you .commit().await it"]
pub struct TypedAtomicOperation<T, B> {
    raw: AtomicOperation<B>,
    namespace: TypedNamespace<T, B>,
}

impl<T: Namespace, B: Backend> TypedAtomicOperation<T, B> {
    /// The commit holds only if `key` is live with this stamp, or, for `None`, if it is missing
    /// or expired (A6).
    pub fn check(self, key: &str, version: Option<Versionstamp>) -> Self {
        self.map(|raw| raw.check(key, version))
    }

    /// Writes `value` under `key` with the namespace's TTL, as [`TypedNamespace::put`] does.
    pub fn put(self, key: &str, value: &T) -> Self {
        let put = self.namespace.put(key, value);
        self.put_with(put)
    }

    /// Writes a put built with options (metadata, another expiration):
    /// `.put_with(ns.put("k", &v).metadata(m).expiration_ttl(5))`.
    pub fn put_with(self, put: TypedPutBuilder<T, B>) -> Self {
        let put = put.into_raw();
        self.map(|raw| raw.push_put(put))
    }

    /// Deletes `key`; a missing key is fine.
    pub fn delete(self, key: &str) -> Self {
        self.map(|raw| raw.delete(key))
    }

    /// Sends it all as one batch: `Some(stamp)` committed, `None` a check failed and nothing
    /// was written (A7).
    pub async fn commit(self) -> Result<Option<Versionstamp>, Error> {
        self.raw.commit().await
    }

    /// The untyped commit, for sums and byte values beside the typed puts.
    pub fn raw(self) -> AtomicOperation<B> {
        self.raw
    }

    fn map(self, f: impl FnOnce(AtomicOperation<B>) -> AtomicOperation<B>) -> Self {
        TypedAtomicOperation {
            raw: f(self.raw),
            namespace: self.namespace,
        }
    }
}

impl<T, B> fmt::Debug for TypedAtomicOperation<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedAtomicOperation")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

/// Options of a typed `list`; made by [`TypedNamespace::list`]: the untyped list, with each
/// key's metadata decoded into `T::Metadata`.
#[must_use = "a list does nothing until you .execute().await (or .await) it"]
pub struct TypedListBuilder<T, B> {
    list: ListOptionsBuilder<B>,
    _values: PhantomData<fn() -> T>,
}

impl<T: Namespace, B: Backend> TypedListBuilder<T, B> {
    /// Only keys that start with `prefix`.
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.map(|list| list.prefix(prefix.into()))
    }

    /// Keys per page: 1 to 1000; 0 means 1000.
    pub fn limit(self, limit: u64) -> Self {
        self.map(|list| list.limit(limit))
    }

    /// Continue after the page that returned this cursor.
    pub fn cursor(self, cursor: impl Into<String>) -> Self {
        self.map(|list| list.cursor(cursor.into()))
    }

    fn map(self, f: impl FnOnce(ListOptionsBuilder<B>) -> ListOptionsBuilder<B>) -> Self {
        TypedListBuilder {
            list: f(self.list),
            _values: PhantomData,
        }
    }

    /// Reads one page.
    pub async fn execute(self) -> Result<TypedListResponse<T::Metadata>, Error> {
        let page = self.list.execute().await?;
        let keys = page
            .keys
            .into_iter()
            .map(|key| {
                let metadata = key
                    .metadata
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(|source| Error::Decode {
                        key: key.name.clone(),
                        part: "metadata",
                        source,
                    })?;
                Ok(TypedKey {
                    name: key.name,
                    expiration: key.expiration,
                    metadata,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(TypedListResponse {
            keys,
            list_complete: page.list_complete,
            cursor: page.cursor,
        })
    }
}

impl<T: Namespace + 'static, B: Backend + Send + Sync + 'static> IntoFuture
    for TypedListBuilder<T, B>
{
    type Output = Result<TypedListResponse<T::Metadata>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<T, B> fmt::Debug for TypedListBuilder<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedListBuilder").finish_non_exhaustive()
    }
}
