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

use crate::backend::{Backend, Statement, Value};
use crate::error::{DatabaseError, Error};
use crate::get::{columns, text_column};
use crate::limits::{self, MAX_KEY_BYTES};
use crate::namespace::{D1Namespace, to_i64};

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
        let after = self.cursor.map(|c| decode_cursor(&c)).transpose()?;
        let low = match after {
            // The smallest string above the cursor's key is the key followed by U+0000.
            Some(after) if after.as_str() >= prefix.as_str() => after + "\0",
            _ => prefix.clone(),
        };
        let statement = Statement {
            sql: &ns.sql().list,
            params: vec![
                ns.namespace_param(),
                Value::Text(low),
                Value::Integer(to_i64(ns.now_ms())),
                Value::Text(prefix_end(&prefix)),
                // One more than asked tells whether another page follows.
                Value::Integer(to_i64(limit + 1)),
            ],
        };
        let rows = ns.run_one(statement).await?.rows;
        let list_complete = rows.len() as u64 <= limit;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows.into_iter().take(limit as usize) {
            let [name, expiration, metadata] = columns(row)?;
            // Keys d1ns wrote are text; one written by hand as bytes could not be paged past.
            let Value::Text(name) = name else {
                return Err(Error::Database(DatabaseError::new(
                    "a key of this namespace is not text; list needs text keys",
                )));
            };
            let metadata = crate::get::metadata(&name, text_column(metadata))?;
            keys.push(Key {
                expiration: expiration.as_u64().map(limits::expiration_seconds),
                metadata,
                name,
            });
        }
        let cursor = match keys.last() {
            Some(last) if !list_complete => Some(encode_cursor(&last.name)),
            _ => None,
        };
        Ok(ListResponse {
            keys,
            list_complete,
            cursor,
        })
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
/// cursors.
const CURSOR_VERSION: u8 = 1;

pub(crate) fn encode_cursor(last_key: &str) -> String {
    let mut raw = Vec::with_capacity(1 + last_key.len());
    raw.push(CURSOR_VERSION);
    raw.extend_from_slice(last_key.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// The key a cursor continues after; anything d1ns did not make is [`Error::InvalidCursor`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidCursor {
        cursor: cursor.to_owned(),
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    match raw.split_first() {
        Some((&CURSOR_VERSION, key)) if !key.is_empty() && key.len() <= MAX_KEY_BYTES => {
            String::from_utf8(key.to_vec()).map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

/// The smallest string above every string that starts with `prefix`: the prefix with its last
/// character that can grow grown by one (UTF-8 byte order follows code point order). When no
/// character can grow (empty prefix, or all U+10FFFF), a string above every valid key: 129 ×
/// U+10FFFF is longer than 512 bytes, so no key can reach it.
fn prefix_end(prefix: &str) -> String {
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
    fn cursor_round_trips_and_rejects_foreign_text() {
        // K30
        assert_eq!(decode_cursor(&encode_cursor("a/é")).unwrap(), "a/é");
        assert!(decode_cursor("not a cursor!").is_err());
        assert!(decode_cursor("").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([9, b'a'])).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode([1, 0xff])).is_err());
    }
}
