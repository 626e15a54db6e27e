//! The edge cache behind `cache_ttl` (R6-R12): with a Workers cache given to the builder, a read
//! with `cache_ttl(n)` keeps what it read (a miss included) in the data center's cache for up
//! to `n` seconds, and reads of that key with `cache_ttl` are then answered from there with no
//! D1 round trip. Every write or delete through d1ns removes the key's cached entry before it
//! returns.
//!
//! An entry is cached as a response under a URL built from the cache's stable name, the table,
//! the namespace and the key, each percent-encoded into its own path segment, so no two of them
//! share a URL (R10). Its body holds the value, metadata, expiration and versionstamp in a small
//! binary layout; a body that does not decode is a miss. Expiration is judged on every read by
//! the Worker's clock, so no cached entry is served past it (R9).
//!
//! There is no edge natively: there the cache is never used and every read goes to the database.

// Natively only the unit tests reach the layout and the URLs.
#![cfg_attr(not(all(feature = "d1", target_arch = "wasm32")), allow(dead_code))]

use crate::backend::Value;
use crate::rows::StoredEntry;

/// The longest value the edge cache keeps (R11): longer ones are read from D1 every time.
pub const EDGE_CACHE_MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Where the cached entries live: a host that is reserved never to resolve (RFC 2606), and the
/// version of the body layout, so that a later layout never reads an older one.
const URL_PREFIX: &str = "https://d1ns.invalid/v1";

/// The first byte of every cached body: the layout's version.
const LAYOUT: u8 = 1;

const MISSING: u8 = 0;
const TEXT: u8 = 1;
const BYTES: u8 = 2;

/// The cache a namespace reads through, with the URL prefix of its entries.
pub(crate) struct EdgeCache {
    /// `URL_PREFIX/_{name}/_{table}/_{namespace}/`, each part percent-encoded.
    prefix: String,
    #[cfg(feature = "d1")]
    cache: worker::send::SendWrapper<worker::Cache>,
}

impl EdgeCache {
    #[cfg(feature = "d1")]
    pub(crate) fn new(cache: worker::Cache, name: &str, table: &str, namespace: &str) -> Self {
        EdgeCache {
            prefix: url_prefix(name, table, namespace),
            cache: worker::send::SendWrapper::new(cache),
        }
    }

    /// The URL of a key's cached entry.
    pub(crate) fn url(&self, key: &str) -> String {
        let mut url = self.prefix.clone();
        push_segment(&mut url, key);
        url
    }
}

/// `URL_PREFIX/_{name}/_{table}/_{namespace}/`. The table name in ASCII lower case: SQLite
/// names `Sessions` and `sessions` the same table, so they share entries too.
fn url_prefix(name: &str, table: &str, namespace: &str) -> String {
    let mut prefix = String::from(URL_PREFIX);
    let table = table.to_ascii_lowercase();
    for part in [name, &table, namespace] {
        prefix.push('/');
        push_segment(&mut prefix, part);
    }
    prefix.push('/');
    prefix
}

/// One path segment: `_` then the bytes, every one but ASCII letters, digits, `-` and `_`
/// percent-encoded. No `/` is left to split it, and the leading `_` keeps `.` and `..` (which a
/// URL parser removes, even encoded) from being dot segments.
fn push_segment(url: &mut String, part: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    url.push('_');
    for &byte in part.as_bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            url.push(char::from(byte));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(byte >> 4)]));
            url.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// How long a read's result may stay cached, in whole seconds: `cache_ttl`, and never past the
/// entry's expiration. `None`: not worth caching (under a second left, or a value too long).
pub(crate) fn max_age(entry: Option<&StoredEntry>, cache_ttl: u64, now_ms: u64) -> Option<u64> {
    let Some(entry) = entry else {
        return Some(cache_ttl);
    };
    let length = match &entry.value {
        Value::Text(text) => text.len(),
        Value::Blob(bytes) => bytes.len(),
        _ => return None,
    };
    if length > EDGE_CACHE_MAX_VALUE_BYTES {
        return None;
    }
    let left = match entry.expiration_ms {
        Some(expiration) => expiration.saturating_sub(now_ms) / 1000,
        None => cache_ttl,
    };
    Some(left.min(cache_ttl)).filter(|&seconds| seconds > 0)
}

/// A read's result as a cached body: the layout byte, then `MISSING`, or the kind of value, the
/// expiration in milliseconds (0 for none), the versionstamp's length and text, the metadata's
/// length plus one (0 for none) and text, then the value. `None` for what the layout cannot hold
/// (a value of another SQL type, say): such an entry is not cached.
pub(crate) fn encode(entry: Option<&StoredEntry>) -> Option<Vec<u8>> {
    let Some(entry) = entry else {
        return Some(vec![LAYOUT, MISSING]);
    };
    let (kind, value) = match &entry.value {
        Value::Text(text) => (TEXT, text.as_bytes()),
        Value::Blob(bytes) => (BYTES, bytes.as_slice()),
        _ => return None,
    };
    let version = match &entry.version {
        Value::Text(text) => text.as_bytes(),
        Value::Null => &[],
        _ => return None,
    };
    let metadata = entry.metadata.as_deref().map(str::as_bytes);
    let metadata_length = match metadata {
        Some(metadata) => u32::try_from(metadata.len()).ok()?.checked_add(1)?,
        None => 0,
    };
    let mut body = Vec::with_capacity(16 + version.len() + value.len());
    body.extend([LAYOUT, kind]);
    body.extend(entry.expiration_ms.unwrap_or(0).to_be_bytes());
    body.push(u8::try_from(version.len()).ok()?);
    body.extend(version);
    body.extend(metadata_length.to_be_bytes());
    body.extend(metadata.unwrap_or_default());
    body.extend(value);
    Some(body)
}

/// A cached body read back, as of `now_ms`: `Some(None)` for a cached miss, `Some(Some(entry))`
/// for a live entry, and `None` (read D1 instead) for an entry expired since it was cached or a
/// body that does not decode.
pub(crate) fn decode(body: &[u8], now_ms: u64) -> Option<Option<StoredEntry>> {
    let (&layout, rest) = body.split_first()?;
    if layout != LAYOUT {
        return None;
    }
    let (&kind, rest) = rest.split_first()?;
    if kind == MISSING {
        return rest.is_empty().then_some(None);
    }
    let (expiration, rest) = rest.split_first_chunk::<8>()?;
    let expiration_ms = Some(u64::from_be_bytes(*expiration)).filter(|&ms| ms > 0);
    if expiration_ms.is_some_and(|expiration| expiration <= now_ms) {
        return None;
    }
    let (&version_length, rest) = rest.split_first()?;
    let (version, rest) = rest.split_at_checked(usize::from(version_length))?;
    let version = match version {
        [] => Value::Null,
        text => Value::Text(String::from_utf8(text.to_vec()).ok()?),
    };
    let (metadata_length, rest) = rest.split_first_chunk::<4>()?;
    let metadata = match usize::try_from(u32::from_be_bytes(*metadata_length)).ok()? {
        0 => (None, rest),
        length => {
            let (metadata, rest) = rest.split_at_checked(length - 1)?;
            (Some(String::from_utf8(metadata.to_vec()).ok()?), rest)
        }
    };
    let (metadata, value) = metadata;
    let value = match kind {
        TEXT => Value::Text(String::from_utf8(value.to_vec()).ok()?),
        BYTES => Value::Blob(value.to_vec()),
        _ => return None,
    };
    Some(Some(StoredEntry {
        value,
        metadata,
        expiration_ms,
        version,
    }))
}

/// The cache calls, in a Worker. A failing call is a miss on a read and is let go on a purge:
/// the cache is never in the way of an operation (R11).
#[cfg(all(feature = "d1", target_arch = "wasm32"))]
impl EdgeCache {
    /// The cached results of reading `keys`, in order: `None` where nothing usable is cached.
    pub(crate) async fn lookup(
        &self,
        keys: &[&str],
        now_ms: u64,
    ) -> Vec<Option<Option<StoredEntry>>> {
        let reads = keys.iter().map(|key| {
            let url = self.url(key);
            async move {
                let mut response = self.cache.get(url, false).await.ok()??;
                let body = response.bytes().await.ok()?;
                decode(&body, now_ms)
            }
        });
        worker::send::SendFuture::new(crate::join::join_all(reads.collect())).await
    }

    /// Keeps what reading each key gave, each for its [`max_age`].
    pub(crate) async fn store(
        &self,
        entries: Vec<(&str, Option<&StoredEntry>)>,
        cache_ttl: u64,
        now_ms: u64,
    ) {
        let writes = entries.into_iter().filter_map(|(key, entry)| {
            let seconds = max_age(entry, cache_ttl, now_ms)?;
            let body = encode(entry)?;
            let url = self.url(key);
            Some(async move {
                let Ok(mut response) = worker::Response::from_bytes(body) else {
                    return;
                };
                let control = format!("max-age={seconds}");
                if response
                    .headers_mut()
                    .set("cache-control", &control)
                    .is_ok()
                {
                    let _ = self.cache.put(url, response).await;
                }
            })
        });
        worker::send::SendFuture::new(crate::join::join_all(writes.collect())).await;
    }

    /// Removes the cached entries of `keys` in this data center (R8).
    pub(crate) async fn purge(&self, keys: &[&str]) {
        let deletes = keys.iter().map(|key| {
            let url = self.url(key);
            async move {
                let _ = self.cache.delete(url, false).await;
            }
        });
        worker::send::SendFuture::new(crate::join::join_all(deletes.collect())).await;
    }
}

/// No edge natively: nothing is cached, nothing to purge.
#[cfg(not(all(feature = "d1", target_arch = "wasm32")))]
impl EdgeCache {
    pub(crate) async fn lookup(
        &self,
        keys: &[&str],
        _now_ms: u64,
    ) -> Vec<Option<Option<StoredEntry>>> {
        keys.iter().map(|_| None).collect()
    }

    pub(crate) async fn store(
        &self,
        _entries: Vec<(&str, Option<&StoredEntry>)>,
        _cache_ttl: u64,
        _now_ms: u64,
    ) {
    }

    pub(crate) async fn purge(&self, _keys: &[&str]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: Value, metadata: Option<&str>, expiration_ms: Option<u64>) -> StoredEntry {
        StoredEntry {
            value,
            metadata: metadata.map(str::to_owned),
            expiration_ms,
            version: Value::Text("0123456789abcdef0123456789abcdef".into()),
        }
    }

    fn round_trip(entry: &StoredEntry, now_ms: u64) -> Option<Option<StoredEntry>> {
        decode(&encode(Some(entry)).unwrap(), now_ms)
    }

    /// R11: what comes back from the cache is what was read, metadata as stored.
    #[test]
    fn entries_come_back_as_they_were_read() {
        let cases = [
            entry(Value::Text("héllo".into()), Some(r#"{"a":[1,"é"]}"#), None),
            entry(Value::Blob(vec![0, 255, 1, 2]), None, Some(5_000)),
            entry(Value::Text(String::new()), Some(""), None),
            entry(Value::Blob(Vec::new()), Some("null"), Some(u64::MAX)),
        ];
        for case in &cases {
            let back = round_trip(case, 1_000).unwrap().unwrap();
            assert_eq!(back.value, case.value);
            assert_eq!(back.metadata, case.metadata);
            assert_eq!(back.expiration_ms, case.expiration_ms);
            assert_eq!(back.version, case.version);
        }
        let no_version = StoredEntry {
            version: Value::Null,
            ..entry(Value::Text("v".into()), None, None)
        };
        assert_eq!(
            round_trip(&no_version, 0).unwrap().unwrap().version,
            Value::Null
        );
    }

    /// R6: a miss is cached as a miss.
    #[test]
    fn a_miss_is_cached_as_a_miss() {
        let body = encode(None).unwrap();
        assert!(matches!(decode(&body, 0), Some(None)));
    }

    /// R9: an entry is never served from the cache at or past its expiration.
    #[test]
    fn an_expired_entry_is_not_served() {
        let e = entry(Value::Text("v".into()), None, Some(5_000));
        assert!(round_trip(&e, 4_999).unwrap().is_some());
        assert!(round_trip(&e, 5_000).is_none());
        assert!(round_trip(&e, 9_000).is_none());
    }

    /// R9: a result stays cached for `cache_ttl`, never past the expiration, and not at all
    /// with under a second left.
    #[test]
    fn max_age_is_cache_ttl_bounded_by_the_expiration() {
        let forever = entry(Value::Text("v".into()), None, None);
        assert_eq!(max_age(Some(&forever), 60, 0), Some(60));
        assert_eq!(max_age(None, 45, 0), Some(45));
        let soon = entry(Value::Text("v".into()), None, Some(10_500));
        assert_eq!(max_age(Some(&soon), 60, 1_000), Some(9));
        assert_eq!(max_age(Some(&soon), 5, 1_000), Some(5));
        assert_eq!(max_age(Some(&soon), 60, 9_600), None);
    }

    /// R11: values longer than the bound are not cached.
    #[test]
    fn long_values_are_not_cached() {
        let long = entry(
            Value::Blob(vec![7; EDGE_CACHE_MAX_VALUE_BYTES + 1]),
            None,
            None,
        );
        assert_eq!(max_age(Some(&long), 60, 0), None);
        let fits = entry(Value::Blob(vec![7; EDGE_CACHE_MAX_VALUE_BYTES]), None, None);
        assert_eq!(max_age(Some(&fits), 60, 0), Some(60));
    }

    /// A body that is cut short, of another layout, or with bytes after a miss, is a miss.
    #[test]
    fn damaged_bodies_are_misses() {
        let body = encode(Some(&entry(Value::Text("value".into()), Some("{}"), None))).unwrap();
        for cut in 0..body.len() - "value".len() {
            assert!(decode(&body[..cut], 0).is_none(), "cut at {cut}");
        }
        let mut other = body.clone();
        other[0] = LAYOUT + 1;
        assert!(decode(&other, 0).is_none());
        assert!(decode(&[LAYOUT, MISSING, 0], 0).is_none());
        assert!(decode(&[LAYOUT, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0).is_none());
    }

    /// SQLite table names ignore ASCII case: so do the URLs (one table, one set of entries).
    #[test]
    fn table_names_that_differ_in_case_share_entries() {
        assert_eq!(
            url_prefix("n", "Sessions", "ns"),
            url_prefix("n", "sessions", "ns")
        );
        assert_ne!(url_prefix("n", "t", "NS"), url_prefix("n", "t", "ns"));
    }

    /// R10: URLs never collide across names, tables, namespaces or keys, whatever their
    /// characters; dot segments and slashes stay inside their segment.
    #[test]
    fn urls_never_collide() {
        let parts = [
            "", ".", "..", "a/b", "a", "b", "%2F", "/", "a%", "é", "_", "%2e", "?x", "#",
        ];
        let mut seen = std::collections::HashMap::new();
        for name in parts {
            for table in ["t", "t/u", "T2"] {
                for namespace in parts {
                    let prefix = url_prefix(name, table, namespace);
                    for key in parts {
                        let mut url = prefix.clone();
                        push_segment(&mut url, key);
                        let tuple = (name, table, namespace, key);
                        if let Some(other) = seen.insert(url.clone(), tuple) {
                            panic!("{tuple:?} and {other:?} share {url}");
                        }
                        let path = &url[URL_PREFIX.len()..];
                        assert_eq!(path.matches('/').count(), 4, "{url}");
                        assert!(path.split('/').skip(1).all(|s| s.starts_with('_')), "{url}");
                        assert!(url.bytes().all(|b| b.is_ascii_graphic()), "{url}");
                    }
                }
            }
        }
    }
}
