//! `list`: one range read over the primary key, in UTF-8 byte order (K25-K31).
//!
//! A prefix is the key range `[prefix, successor(prefix))`, so `%`, `_` and `\` are ordinary
//! characters and no `LIKE` is involved (K27). The cursor means "after this key" (K30), so keys
//! written between pages are seen on later pages.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(not(feature = "d1"))]
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Query, RowSink, ValueRef};
use crate::error::{DatabaseError, Error};
use crate::limits::{self, MAX_KEY_BYTES};
use crate::namespace::{D1Namespace, to_i64};
use crate::rows::Decode;

// With the `d1` feature the page types are workers-rs's own, so code that names
// `worker::kv::ListResponse` or `worker::kv::Key` keeps compiling after the move from KV.
// Without it they derive exactly what workers-rs's derive, so turning `d1` on removes no trait.
#[cfg(feature = "d1")]
pub use worker::kv::{Key, ListResponse};

/// One page of keys, as `worker::kv::ListResponse` (which it is, with the `d1` feature).
#[cfg(not(feature = "d1"))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    /// The keys of this page, in UTF-8 byte order.
    pub keys: Vec<Key>,
    /// `true` on the last page.
    pub list_complete: bool,
    /// Where the next page starts; `None` on the last page (K29).
    pub cursor: Option<String>,
}

/// A listed key, as `worker::kv::Key` (which it is, with the `d1` feature).
#[cfg(not(feature = "d1"))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    /// The key.
    pub name: String,
    /// When it expires, in seconds since the Unix epoch, if it does.
    pub expiration: Option<u64>,
    /// Its metadata, as the JSON that was stored (K12).
    pub metadata: Option<serde_json::Value>,
}

impl<B: Backend> D1Namespace<B> {
    /// Lists keys in UTF-8 byte order, at most 1000 a page.
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// for key in ["user:1", "user:2", "user:3", "team:1"] {
    ///     kv.put(key, "")?.await?;
    /// }
    /// let page = kv.list().prefix("user:".to_string()).limit(2).await?;
    /// assert_eq!(page.keys.len(), 2);
    /// let rest = kv.list().prefix("user:".to_string()).cursor(page.cursor.unwrap()).await?;
    /// assert_eq!(rest.keys[0].name, "user:3");
    /// assert!(rest.list_complete);
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> ListOptionsBuilder<B> {
        ListOptionsBuilder {
            namespace: self.clone(),
            prefix: None,
            limit: None,
            cursor: None,
        }
    }
}

/// Options of a `list`; made by [`D1Namespace::list`]. Run with `.execute().await` or `.await`.
#[derive(Debug)]
#[must_use = "a list does nothing until you .execute().await (or .await) it"]
pub struct ListOptionsBuilder<B> {
    namespace: D1Namespace<B>,
    prefix: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

impl<B: Backend> ListOptionsBuilder<B> {
    /// Only keys that start with `prefix` (literal and case-sensitive, K27).
    pub fn prefix(mut self, prefix: String) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// Keys per page: 1 to 1000; 0 means the default, 1000 (K28).
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continue after the page that returned this cursor (K29, K30).
    pub fn cursor(mut self, cursor: String) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// Reads one page.
    pub async fn execute(self) -> Result<ListResponse, Error> {
        let ns = self.namespace;
        let prefix = self.prefix.unwrap_or_default();
        limits::check_prefix(&prefix)?;
        let limit = limits::list_limit(self.limit)?;
        if ns.inner.previous.is_some() {
            return ns.list_moving(&prefix, limit, self.cursor.as_deref()).await;
        }
        ns.list_here_live(&prefix, limit, self.cursor.as_deref())
            .await
    }
}

impl<B: Backend> D1Namespace<B> {
    /// A page of this home's live keys (checked prefix and limit): one query per shard not
    /// read to its end, merged (S5).
    pub(crate) async fn list_here_live(
        &self,
        prefix: &str,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<ListResponse, Error> {
        let ns = self;
        let shards = ns.shards().len();
        let resume = decode_resume(cursor)?;
        let low = match resume.after {
            // The smallest string above the cursor's key is the key followed by U+0000.
            Some(after) if after.as_str() >= prefix => after + "\0",
            _ => prefix.to_owned(),
        };
        let high = prefix_end(prefix);
        let now = ns.now_ms();
        let namespace = ns.namespace();
        let params = [
            ValueRef::Text(namespace),
            ValueRef::Text(&low),
            ValueRef::Integer(to_i64(now)),
            ValueRef::Text(&high),
            // One more than asked tells whether another page follows.
            ValueRef::Integer(to_i64(limit + 1)),
        ];
        let query = Query {
            sql: &ns.sql().list,
            params: &params,
        };
        // S5: every shard, in parallel.
        let page = |shard| async move {
            // One shard holds every key; of several, each lists the keys placed on it.
            let placed_here = |key: &str| shards == 1 || ns.shard_of(key) == shard;
            let rows = ns
                .read(shard, &[query], || ListedRows::new(limit, placed_here))
                .await?;
            rows.finish()
        };
        let pages = if shards == 1 {
            vec![page(0).await?]
        } else {
            crate::join::join_all((0..shards).map(page).collect())
                .await
                .into_iter()
                .collect::<Result<Vec<_>, Error>>()?
        };
        let merged = merge_pages(pages, limit as usize, |key| &key.name);
        Ok(ListResponse {
            keys: merged.rows,
            list_complete: merged.list_complete,
            cursor: merged.cursor,
        })
    }
}

/// The decoder of `Sql::list`'s rows, `name, expiration, metadata`: the keys placed on this
/// shard among the first `limit` rows, whether there were no more, and the last of those rows.
struct ListedRows<P> {
    limit: u64,
    read: u64,
    keys: Vec<Key>,
    /// Whether a key is placed on this shard: rows of keys placed elsewhere (old copies a
    /// reshard left behind) are skipped, but bound the read all the same.
    placed_here: P,
    last: Option<String>,
    error: Option<Error>,
}

impl<P: Fn(&str) -> bool> ListedRows<P> {
    fn new(limit: u64, placed_here: P) -> Self {
        ListedRows {
            limit,
            read: 0,
            keys: Vec::new(),
            placed_here,
            last: None,
            error: None,
        }
    }

    fn finish(self) -> Result<ShardPage<Key>, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let complete = self.read <= self.limit;
        Ok(ShardPage {
            rows: self.keys,
            complete,
            bound: if complete { None } else { self.last },
        })
    }
}

/// A listed key from its row's columns.
fn listed_key(columns: &[ValueRef<'_>]) -> Result<Key, Error> {
    let &[name, expiration, metadata] = columns else {
        return Err(Error::Database(DatabaseError::new(format!(
            "expected 3 columns in a row, got {}",
            columns.len()
        ))));
    };
    // Keys d1ns wrote are text; one written by hand as bytes could not be paged past.
    let ValueRef::Text(name) = name else {
        return Err(Error::Database(DatabaseError::new(
            "a key of this namespace is not text; list needs text keys",
        )));
    };
    let metadata = match metadata {
        ValueRef::Text(text) => crate::get::metadata_str(name, text)?,
        ValueRef::Blob(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => crate::get::metadata_str(name, text)?,
            Err(_) => None,
        },
        _ => None,
    };
    Ok(Key {
        name: name.to_owned(),
        expiration: expiration.as_u64().map(limits::expiration_seconds),
        metadata,
    })
}

impl<P: Fn(&str) -> bool> RowSink for ListedRows<P> {
    fn row(&mut self, _statement: usize, columns: &[ValueRef<'_>]) {
        self.read += 1;
        if self.read > self.limit || self.error.is_some() {
            return;
        }
        if let Some(ValueRef::Text(name)) = columns.first() {
            if self.read == self.limit {
                self.last = Some((*name).to_owned());
            }
            if !(self.placed_here)(name) {
                return;
            }
        }
        match listed_key(columns) {
            Ok(key) => {
                if self.keys.is_empty() {
                    self.keys.reserve(self.limit.min(1000) as usize);
                }
                self.keys.push(key);
            }
            Err(error) => self.error = Some(error),
        }
    }
}

impl<P: Fn(&str) -> bool> Decode for ListedRows<P> {}

/// One shard's part of a page: its first rows in key order after the cursor, and whether it
/// had no more.
pub(crate) struct ShardPage<R> {
    pub rows: Vec<R>,
    pub complete: bool,
    /// When not complete, the last key the shard read for the page: every key up to it was
    /// seen, whether or not its row is in `rows` (rows of keys placed elsewhere are not).
    pub bound: Option<String>,
}

/// A page merged from the shards' parts.
pub(crate) struct MergedPage<R> {
    pub rows: Vec<R>,
    pub list_complete: bool,
    pub cursor: Option<String>,
}

/// The first `limit` rows of every shard's part in key (UTF-8 byte) order (S5), each row's key
/// given by `name`, up to the lowest bound of an incomplete part (above it, that part has not
/// looked); complete when every shard is. Every page asks every shard: a key written after the
/// cursor on a shard that had no more is seen on a later page (K30).
pub(crate) fn merge_pages<R>(
    mut pages: Vec<ShardPage<R>>,
    limit: usize,
    name: impl Fn(&R) -> &str,
) -> MergedPage<R> {
    let every_part_complete = pages.iter().all(|page| page.complete);
    let bound = pages.iter_mut().filter_map(|page| page.bound.take()).min();
    let mut rows = match pages.len() {
        // One shard's rows are in key order already.
        1 => pages.pop().map(|page| page.rows).unwrap_or_default(),
        _ => {
            let mut rows: Vec<R> = pages.into_iter().flat_map(|page| page.rows).collect();
            rows.sort_by(|a, b| name(a).cmp(name(b)));
            rows
        }
    };
    if let Some(bound) = &bound {
        rows.retain(|row| name(row) <= bound.as_str());
    }
    let total = rows.len();
    rows.truncate(limit);
    let list_complete = every_part_complete && total <= limit;
    let cursor = match (rows.last(), &bound) {
        _ if list_complete => None,
        (Some(last), _) if total >= limit => Some(encode_cursor(name(last))),
        // Fewer rows than the page holds, all up to the bound: go on after the bound.
        (_, Some(bound)) => Some(encode_cursor(bound)),
        (Some(last), None) => Some(encode_cursor(name(last))),
        (None, None) => None,
    };
    MergedPage {
        rows,
        list_complete,
        cursor,
    }
}

impl<B: Backend + Send + Sync + 'static> IntoFuture for ListOptionsBuilder<B> {
    type Output = Result<ListResponse, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// The first cursor byte: the format version, so the format can change without misreading old
/// cursors. Version 1 is the last key.
const CURSOR_VERSION: u8 = 1;
/// Version 3 (namespaces during a move): the last key, and where the previous home's own
/// listing stands. (Version 2 was never released.)
const MOVING_CURSOR_VERSION: u8 = 3;

/// The cursor of a page of a list during a move: the last key, and the previous home's state.
pub(crate) fn encode_moving_cursor(last_key: &str, state: Option<&str>) -> String {
    let state = state.unwrap_or_default().as_bytes();
    let length = u16::try_from(state.len()).unwrap_or(0);
    let state = if length == 0 { &[][..] } else { state };
    let mut raw = Vec::with_capacity(3 + state.len() + last_key.len());
    raw.push(MOVING_CURSOR_VERSION);
    raw.extend(length.to_be_bytes());
    raw.extend_from_slice(state);
    raw.extend_from_slice(last_key.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// A cursor read back during a move: the key to continue after, and the previous home's state
/// (none from a cursor made before the move, which only costs a longer walk there).
pub(crate) fn decode_moving_cursor(
    cursor: Option<&str>,
) -> Result<(Option<String>, Option<String>), Error> {
    let Some(text) = cursor else {
        return Ok((None, None));
    };
    let invalid = || Error::InvalidCursor {
        cursor: text.to_owned(),
    };
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    if raw.first() != Some(&MOVING_CURSOR_VERSION) {
        return Ok((decode_resume(cursor)?.after, None));
    }
    let (length, rest) = raw[1..].split_first_chunk::<2>().ok_or_else(invalid)?;
    let (state, key) = rest
        .split_at_checked(usize::from(u16::from_be_bytes(*length)))
        .ok_or_else(invalid)?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid());
    }
    let key = String::from_utf8(key.to_vec()).map_err(|_| invalid())?;
    let state = String::from_utf8(state.to_vec()).map_err(|_| invalid())?;
    Ok((Some(key), Some(state).filter(|state| !state.is_empty())))
}

/// Where a page continues.
pub(crate) struct Resume {
    /// The key the page continues after; `None` from the start.
    pub after: Option<String>,
}

/// A cursor read back; no cursor starts at the beginning. A cursor made during a move carries
/// the previous home's state too, which is not needed once the move is done: the key is enough.
pub(crate) fn decode_resume(cursor: Option<&str>) -> Result<Resume, Error> {
    let Some(cursor) = cursor else {
        return Ok(Resume { after: None });
    };
    let invalid = || Error::InvalidCursor {
        cursor: cursor.to_owned(),
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let key = match raw.split_first() {
        Some((&CURSOR_VERSION, key)) => key,
        Some((&MOVING_CURSOR_VERSION, rest)) => {
            let (length, rest) = rest.split_first_chunk::<2>().ok_or_else(invalid)?;
            rest.split_at_checked(usize::from(u16::from_be_bytes(*length)))
                .ok_or_else(invalid)?
                .1
        }
        _ => return Err(invalid()),
    };
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid());
    }
    let after = String::from_utf8(key.to_vec()).map_err(|_| invalid())?;
    Ok(Resume { after: Some(after) })
}

pub(crate) fn encode_cursor(last_key: &str) -> String {
    let mut raw = Vec::with_capacity(1 + last_key.len());
    raw.push(CURSOR_VERSION);
    raw.extend_from_slice(last_key.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// The key a cursor continues after; anything d1ns did not make is [`Error::InvalidCursor`].
#[cfg(test)]
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, Error> {
    decode_resume(Some(cursor))?
        .after
        .ok_or_else(|| Error::InvalidCursor {
            cursor: cursor.to_owned(),
        })
}

/// The smallest string above every string that starts with `prefix`: the prefix with its last
/// character that can grow grown by one (UTF-8 byte order follows code point order). When no
/// character can grow (empty prefix, or all U+10FFFF), a string above every valid key: 129 ×
/// U+10FFFF is longer than 512 bytes, so no key can reach it.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    char::MAX
        .to_string()
        .repeat(MAX_KEY_BYTES / char::MAX.len_utf8() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_grows_the_last_character() {
        assert_eq!(prefix_end("ab"), "ac");
        assert_eq!(prefix_end("a\u{10FFFF}"), "b");
        assert_eq!(prefix_end("\u{D7FF}"), "\u{E000}");
        assert_eq!(prefix_end("%"), "&");
    }

    #[test]
    fn prefix_end_without_a_growable_character_is_above_every_key() {
        let end = prefix_end("");
        assert!(end.len() > MAX_KEY_BYTES);
        let longest = char::MAX.to_string().repeat(MAX_KEY_BYTES / 4);
        assert!(longest.as_str() < end.as_str());
        assert_eq!(prefix_end("\u{10FFFF}"), end);
    }

    #[test]
    fn moving_cursors_read_back_with_their_state_and_as_plain_cursors() {
        let cursor = encode_moving_cursor("k/é", Some("kv-cursor"));
        assert_eq!(
            decode_moving_cursor(Some(&cursor)).unwrap(),
            (Some("k/é".to_owned()), Some("kv-cursor".to_owned()))
        );
        assert_eq!(decode_cursor(&cursor).unwrap(), "k/é");
        let plain = encode_cursor("k");
        assert_eq!(
            decode_moving_cursor(Some(&plain)).unwrap(),
            (Some("k".to_owned()), None)
        );
        let cut = &URL_SAFE_NO_PAD.decode(&cursor).unwrap()[..2];
        assert!(decode_resume(Some(&URL_SAFE_NO_PAD.encode(cut))).is_err());
    }

    #[test]
    fn merged_pages_are_in_key_order_and_complete_only_when_every_shard_is() {
        fn name(row: &(String, ())) -> &str {
            &row.0
        }
        let page = |_shard: usize, keys: &[&str], complete| ShardPage {
            rows: keys.iter().map(|k| (k.to_string(), ())).collect(),
            complete,
            bound: (!complete)
                .then(|| keys.last().map(|k| k.to_string()))
                .flatten(),
        };
        let merged = merge_pages(
            vec![page(0, &["a", "d"], true), page(1, &["b", "c", "e"], false)],
            3,
            name,
        );
        let keys: Vec<&str> = merged.rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(!merged.list_complete);
        assert_eq!(
            decode_cursor(merged.cursor.as_deref().unwrap()).unwrap(),
            "c"
        );
        let last = merge_pages(vec![page(0, &["d"], true), page(1, &["e"], true)], 3, name);
        assert!(last.list_complete);
        assert_eq!(last.cursor, None);
        let more = merge_pages(
            vec![page(0, &["a", "b"], true), page(1, &[], true)],
            1,
            name,
        );
        assert!(!more.list_complete, "a shard had more than the page took");
    }

    #[test]
    fn cursor_round_trips_and_rejects_foreign_text() {
        // K30
        assert_eq!(decode_cursor(&encode_cursor("a/é")).unwrap(), "a/é");
        assert!(decode_cursor("not a cursor!").is_err());
        assert!(decode_cursor("").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([9, b'a'])).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([1, 0xff])).is_err());
    }
}
