//! Typed secondary indexes (I1-I12): `#[d1_namespace(..., index(user_id))]` declares them, the
//! database keeps them (a partial expression index per field and namespace, see `sql.rs`), and
//! [`TypedNamespace::find`] and [`TypedNamespace::delete_where`] look entries up through them.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::backend::{Backend, Query, Statement, Value, ValueRef};
use crate::error::{DatabaseError, Error};
use crate::get::{BULK_INLINE_BYTES, json, metadata};
use crate::limits::MAX_LIST_LIMIT;
use crate::list::{ShardPage, decode_resume, merge_pages};
use crate::namespace::{D1Namespace, to_i64};
use crate::rows::{FoundRow, FoundRows};
use crate::typed::{Entry, Namespace, TypedNamespace};
use crate::version::Versionstamp;

/// One indexed field, as `#[d1_namespace(index(..))]` declares it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// The field's name in the JSON of a value (serde's, after `rename` and `rename_all`).
    pub field: &'static str,
    /// Whether the field's integers may go beyond 2^53 (`i64`, `u64`), so that a put must check
    /// them: D1 hands numbers to JavaScript as doubles, and a look-up of such a value could not
    /// find it (I3).
    pub check_range: bool,
}

impl IndexDef {
    /// What the macro writes for one indexed field.
    pub const fn new(field: &'static str, check_range: bool) -> IndexDef {
        IndexDef { field, check_range }
    }
}

/// The typed handle of one index of `T` whose field holds `V`s (`str` for a `String` field), made
/// by `#[d1_namespace(index(..))]` as an associated constant of `T` named after the field in
/// upper case (`Session::USER_ID`). A look-up with a value of another type does not compile.
pub struct Index<T, V: ?Sized> {
    field: &'static str,
    _types: PhantomData<Types<T, V>>,
}

/// What an [`Index`] is of: values of type `T`, looked up by a `V`; covariant, `Send` and `Sync`
/// whatever they are.
type Types<T, V> = (fn() -> T, fn(&V));

impl<T, V: ?Sized> Index<T, V> {
    /// What the macro writes; `field` is the JSON name.
    #[doc(hidden)]
    pub const fn new(field: &'static str) -> Self {
        Index {
            field,
            _types: PhantomData,
        }
    }

    /// The field's name in the JSON of a value.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl<T, V: ?Sized> Clone for Index<T, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, V: ?Sized> Copy for Index<T, V> {}

impl<T, V: ?Sized> fmt::Debug for Index<T, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index").field("field", &self.field).finish()
    }
}

/// A value an index can be looked up by: text, a boolean, or an integer that D1 keeps exactly
/// (I3). Implemented for `str`, `bool` and the integer types.
pub trait IndexValue: sealed::Sealed {
    /// The value as the index holds it (`json_extract` of the field), or why it cannot be
    /// looked up.
    #[doc(hidden)]
    fn to_param(&self) -> Result<Value, String>;
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for str {}
impl IndexValue for str {
    fn to_param(&self) -> Result<Value, String> {
        Ok(Value::Text(self.to_owned()))
    }
}

impl sealed::Sealed for bool {}
impl IndexValue for bool {
    fn to_param(&self) -> Result<Value, String> {
        // JSON `true` and `false` are 1 and 0 to `json_extract`.
        Ok(Value::Integer(i64::from(*self)))
    }
}

macro_rules! small_integers {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl IndexValue for $ty {
            fn to_param(&self) -> Result<Value, String> {
                Ok(Value::Integer(i64::from(*self)))
            }
        }
    )*};
}
small_integers!(i8, i16, i32, u8, u16, u32);

/// The largest integer a double holds exactly, with every integer below it.
const MAX_EXACT: u64 = 1 << 53;

impl sealed::Sealed for i64 {}
impl IndexValue for i64 {
    fn to_param(&self) -> Result<Value, String> {
        if self.unsigned_abs() > MAX_EXACT {
            return Err(beyond_2_53(self));
        }
        Ok(Value::Integer(*self))
    }
}

impl sealed::Sealed for u64 {}
impl IndexValue for u64 {
    fn to_param(&self) -> Result<Value, String> {
        if *self > MAX_EXACT {
            return Err(beyond_2_53(self));
        }
        Ok(Value::Integer(to_i64(*self)))
    }
}

fn beyond_2_53(value: &dyn fmt::Display) -> String {
    format!("{value} is beyond 2^53, which D1 cannot look up exactly")
}

impl<T: Namespace, B: Backend> TypedNamespace<T, B> {
    /// The live entries whose field `index` equals `value`, in key order, a page at a time
    /// (I4): one round trip per page, reading through the index (I5). Finish with `.await` or
    /// `.execute().await`.
    ///
    /// ```ignore
    /// let page = sessions.find(Session::USER_ID, &7).limit(100).await?;
    /// for (key, entry) in &page.entries { /* entry.value: Session, entry.version, ... */ }
    /// ```
    pub fn find<V: IndexValue + ?Sized>(&self, index: Index<T, V>, value: &V) -> FindBuilder<T, B> {
        FindBuilder {
            namespace: self.clone(),
            field: index.field,
            value: value.to_param(),
            limit: None,
            cursor: None,
        }
    }

    /// Deletes every live entry whose field `index` equals `value`, with its chunks, in one
    /// round trip, and returns how many it removed (I6).
    pub fn delete_where<V: IndexValue + ?Sized>(
        &self,
        index: Index<T, V>,
        value: &V,
    ) -> impl Future<Output = Result<u64, Error>> + use<T, B, V> {
        let raw = self.raw().clone();
        let field = index.field;
        let value = value.to_param();
        async move {
            let value = value.map_err(|message| invalid_value(field, message))?;
            if raw.inner.previous.is_some() {
                return Err(Error::MoveInProgress {
                    operation: "delete_where",
                });
            }
            let sql = index_sql(&raw, field)?;
            let now = Value::Integer(to_i64(raw.now_ms()));
            // The keys removed, when an edge cache must forget them (R8), or, over several
            // shards, to count only the entries placed where they were removed (an old copy a
            // reshard left on another shard goes too, uncounted, as no read shows it): they
            // cost D1 a row read each.
            let sharded = raw.shards().len() > 1;
            let returning = raw.has_edge_cache() || sharded;
            let delete = if returning {
                &sql.delete_where_returning
            } else {
                &sql.delete_where
            };
            // S7: every shard, in parallel; the total.
            let deletes = (0..raw.shards().len()).map(|shard| {
                let mut statements = vec![Statement {
                    sql: delete,
                    params: vec![value.clone(), now.clone()],
                }];
                if !returning {
                    statements.push(Statement {
                        sql: crate::sql::CHANGES,
                        params: Vec::new(),
                    });
                }
                raw.run(shard, statements)
            });
            let results = crate::join::join_all(deletes.collect()).await;
            let mut removed_keys: Vec<&str> = Vec::new();
            let mut count = 0;
            for (shard, results) in results.iter().enumerate() {
                let Ok(results) = results else { continue };
                match results.as_slice() {
                    [delete] if returning => {
                        let keys = delete.rows.iter().filter_map(|row| match row.first() {
                            Some(Value::Text(key)) => Some(key.as_str()),
                            _ => None,
                        });
                        for key in keys {
                            if !sharded || raw.shard_of(key) == shard {
                                count += 1;
                            }
                            removed_keys.push(key);
                        }
                    }
                    [_, changes] => {
                        let changed = changes.rows.first().and_then(|row| row.first());
                        count += changed.and_then(Value::as_u64).ok_or_else(|| {
                            Error::Database(DatabaseError::new(format!(
                                "delete_where: the count of entries removed reads {changed:?}"
                            )))
                        })?;
                    }
                    other => {
                        return Err(Error::Database(DatabaseError::new(format!(
                            "delete_where: {} results for its statements",
                            other.len()
                        ))));
                    }
                }
            }
            raw.purge_cached(&removed_keys).await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                let shards = raw.shards().len();
                return Err(crate::namespace::partly_done(e, shards, count, "entries"));
            }
            Ok(count)
        }
    }
}

fn invalid_value(field: &str, message: String) -> Error {
    Error::InvalidIndexValue {
        field: field.to_owned(),
        message,
    }
}

/// The statements of the index on `field`: the namespace was built with it.
fn index_sql<'n, B: Backend>(
    ns: &'n D1Namespace<B>,
    field: &str,
) -> Result<&'n crate::sql::IndexSql, Error> {
    ns.inner
        .indexes
        .iter()
        .find(|(def, _)| def.field == field)
        .map(|(_, sql)| sql)
        .ok_or_else(|| {
            Error::Database(DatabaseError::new(format!(
                "the namespace {:?} has no index on {field:?}",
                ns.namespace()
            )))
        })
}

/// A look-up by an index; made by [`TypedNamespace::find`].
#[must_use = "a find does nothing until you .execute().await (or .await) it"]
pub struct FindBuilder<T, B> {
    namespace: TypedNamespace<T, B>,
    field: &'static str,
    value: Result<Value, String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

impl<T: Namespace, B: Backend> FindBuilder<T, B> {
    /// Entries per page: 1 to 1000; 0 means 1000 (as `list`, K28).
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continue after the page that returned this cursor.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Reads one page.
    pub async fn execute(self) -> Result<FindResponse<T, T::Metadata>, Error> {
        let ns = self.namespace.raw();
        let value = self
            .value
            .map_err(|message| invalid_value(self.field, message))?;
        let limit = match self.limit {
            None | Some(0) => MAX_LIST_LIMIT,
            Some(limit) if limit > MAX_LIST_LIMIT => {
                return Err(Error::InvalidListLimit { limit });
            }
            Some(limit) => limit,
        };
        let shards = ns.shards().len();
        let resume = decode_resume(self.cursor.as_deref())?;
        let after = resume.after.unwrap_or_default();
        let sql = index_sql(ns, self.field)?;
        // Every round trip of the page judges expiration at this instant.
        let now = ns.now_ms();
        // S7: every shard, in parallel, merged in key order.
        let pages =
            (0..shards).map(|shard| find_on::<T, B>(ns, shard, sql, &value, &after, now, limit));
        let pages = crate::join::join_all(pages.collect())
            .await
            .into_iter()
            .collect::<Result<Vec<_>, Error>>()?;
        let merged = merge_pages(pages, limit as usize, |(key, _): &(String, _)| key);
        Ok(FindResponse {
            entries: merged.rows,
            list_complete: merged.list_complete,
            cursor: merged.cursor,
        })
    }
}

/// One shard's part of a look-up page: its first `limit` live matches after `after`, whole.
async fn find_on<T: Namespace, B: Backend>(
    ns: &D1Namespace<B>,
    shard: usize,
    sql: &crate::sql::IndexSql,
    value: &Value,
    after: &str,
    now: u64,
    limit: u64,
) -> Result<ShardPage<(String, Entry<T, T::Metadata>)>, Error> {
    {
        let params = [
            value.as_ref(),
            ValueRef::Text(after),
            ValueRef::Integer(to_i64(now)),
            // One more than the page, to tell whether another follows.
            ValueRef::Integer(to_i64(limit + 1)),
            ValueRef::Integer(to_i64(BULK_INLINE_BYTES)),
        ];
        let query = Query {
            sql: &sql.find,
            params: &params,
        };
        let rows = ns.read(shard, &[query], FoundRows::new).await?;
        let FoundRows {
            mut found,
            mut chunks,
            ..
        } = rows.finish()?;
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let list_complete = found.len() as u64 <= limit;
        found.truncate(limit as usize);
        let bound = match found.last() {
            Some((key, _)) if !list_complete => Some(key.clone()),
            _ => None,
        };
        // Of several shards, each finds the keys placed on it: an old copy a reshard left
        // behind on another is not the key's entry.
        if ns.shards().len() > 1 {
            found.retain(|(key, _)| ns.shard_of(key) == shard);
        }
        // Values longer than a first result carries: read whole afterwards, a few per round trip.
        let long: Vec<(String, u64)> = found
            .iter()
            .filter(|(_, row)| read_later(&row.count, &row.size))
            .map(|(key, row)| {
                let bytes = row
                    .size
                    .as_u64()
                    .unwrap_or(crate::limits::MAX_VALUE_BYTES as u64);
                (key.clone(), bytes.saturating_mul(4) / 3)
            })
            .collect();
        let mut long_values = ns.read_long_values(shard, long, now).await?;
        let mut entries = Vec::with_capacity(found.len());
        for (key, row) in found {
            let FoundRow {
                value,
                metadata: meta,
                expiration,
                count,
                size,
                version,
            } = row;
            let (value, meta, expiration, version) = if read_later(&count, &size) {
                // `None`: gone between the two round trips.
                let Some(entry) = long_values.remove(&key) else {
                    continue;
                };
                (
                    entry.value,
                    entry.metadata,
                    entry.expiration_ms.map(crate::limits::expiration_seconds),
                    entry.version,
                )
            } else {
                let own_chunks = chunks.remove(&key).unwrap_or_default();
                let value = crate::rows::assemble(&key, value, &count, &size, own_chunks)?;
                let expiration = expiration.as_u64().map(crate::limits::expiration_seconds);
                (value, meta, expiration, version)
            };
            let entry = Entry {
                value: json(&key, value)?,
                metadata: metadata(&key, meta)?,
                expiration,
                version: Versionstamp::from_column(&key, &version)?,
            };
            entries.push((key, entry));
        }
        Ok(ShardPage {
            rows: entries,
            complete: list_complete,
            bound,
        })
    }
}

/// Whether an entry of a page, from its `chunks` and `size` columns, is a value in chunks too
/// long for the page's own statement (see `IndexSql::find`).
fn read_later(count: &Value, size: &Value) -> bool {
    count.as_u64().is_some_and(|count| count > 0)
        && size.as_u64().is_none_or(|size| size > BULK_INLINE_BYTES)
}

impl<T: Namespace + Send + 'static, B: Backend + Send + Sync + 'static> IntoFuture
    for FindBuilder<T, B>
where
    T::Metadata: Send,
{
    type Output = Result<FindResponse<T, T::Metadata>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<T, B> fmt::Debug for FindBuilder<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindBuilder")
            .field("field", &self.field)
            .field("limit", &self.limit)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// One page of a look-up by an index.
#[derive(Debug, Clone, PartialEq)]
pub struct FindResponse<T, M> {
    /// The matching live entries of this page, in key order: each key with its value,
    /// metadata, expiration and versionstamp.
    pub entries: Vec<(String, Entry<T, M>)>,
    /// `true` on the last page.
    pub list_complete: bool,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

/// What the row of a JSON object value stored in chunks keeps so that its indexes find it
/// (I11): [`INDEXED_FIELDS_MARK`](crate::sql::INDEXED_FIELDS_MARK) and a JSON object of its
/// indexed fields. A field whose JSON is long is left out (the row stays small, see `sql.rs`),
/// the others stay. `None` when the value is not a JSON object or keeps none of the fields.
pub(crate) fn indexed_fields(
    text: &str,
    defs: &[(IndexDef, crate::sql::IndexSql)],
) -> Option<String> {
    let wanted: Vec<&str> = defs.iter().map(|(def, _)| def.field).collect();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fields = Fields { wanted: &wanted }
        .deserialize(&mut deserializer)
        .ok()?;
    let mut kept = serde_json::Map::new();
    let mut room = crate::limits::MAX_IN_ROW_VALUE_BYTES.saturating_sub(3);
    for (name, value) in fields {
        // `"name":value,` as it will be written.
        let length = serde_json::to_string(&name).ok()?.len() + value.to_string().len() + 2;
        if length <= room {
            room -= length;
            kept.insert(name, value);
        }
    }
    if kept.is_empty() {
        return None;
    }
    let json = serde_json::to_string(&kept).ok()?;
    Some(format!("{}{json}", crate::sql::INDEXED_FIELDS_MARK))
}

/// Checks the integers of range-checked indexed fields (`i64`, `u64`) of a typed value before it
/// is put (I3).
pub(crate) fn check_indexed_integers(
    key: &str,
    text: &str,
    defs: &[(IndexDef, crate::sql::IndexSql)],
) -> Result<(), Error> {
    let checked: Vec<&str> = defs
        .iter()
        .filter(|(def, _)| def.check_range)
        .map(|(def, _)| def.field)
        .collect();
    if checked.is_empty() {
        return Ok(());
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let Ok(fields) = (Fields { wanted: &checked }).deserialize(&mut deserializer) else {
        return Ok(());
    };
    for (field, value) in fields {
        let beyond = match &value {
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(|i| i.unsigned_abs() > MAX_EXACT)
                .or_else(|| n.as_u64().map(|u| u > MAX_EXACT))
                .unwrap_or(false),
            _ => false,
        };
        if beyond {
            return Err(Error::IndexValueTooLarge {
                key: key.to_owned(),
                field,
                value: value.to_string(),
            });
        }
    }
    Ok(())
}

/// Reads the top level of a JSON object, keeping only the wanted members and skipping the rest
/// without building them.
struct Fields<'w> {
    wanted: &'w [&'w str],
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if self.wanted.contains(&name.as_str()) {
                let value: serde_json::Value = map.next_value()?;
                fields.insert(name, value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(fields)
    }
}
