//! Every KV rule about what a caller may pass, in one place (K1-K33 of the behaviour spec).
//! The operations call these before they touch the database, so a refused call costs nothing.

use crate::error::{Error, KeyProblem, NameKind, Operation};

pub use crate::bounds::{
    MAX_ATOMIC_BYTES, MAX_ATOMIC_CHECKS, MAX_ATOMIC_MUTATIONS, MAX_BULK_KEYS, MAX_CHUNK_BYTES,
    MAX_IN_ROW_VALUE_BYTES, MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_METADATA_BYTES, MAX_VALUE_BYTES,
    MIN_CACHE_TTL,
};
// Shared with `#[d1_namespace]`, which checks names and `ttl` at compile time (K33).
pub use d1ns_limits::{
    DEFAULT_TABLE_SUFFIX, MAX_EXPIRATION_MS, MAX_NAMESPACE_CHARS, MAX_TABLE_CHARS, default_table,
    name_problem,
};

/// K1-K4: a key is non-empty UTF-8 of at most 512 bytes, and not `.` or `..`.
pub(crate) fn check_key(operation: Operation, key: &str) -> Result<(), Error> {
    let problem = match key {
        "" => KeyProblem::Empty,
        "." | ".." => KeyProblem::Dots,
        _ if key.len() > MAX_KEY_BYTES => KeyProblem::TooLong(key.len()),
        _ => return Ok(()),
    };
    Err(Error::InvalidKey {
        operation,
        key: key.to_owned(),
        problem,
    })
}

/// K5: a list prefix may be empty, and is otherwise held to the key length limit.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey {
            operation: Operation::List,
            key: prefix.to_owned(),
            problem: KeyProblem::TooLong(prefix.len()),
        });
    }
    Ok(())
}

/// K6.
pub(crate) fn check_value_len(key: &str, length: usize) -> Result<(), Error> {
    if length > MAX_VALUE_BYTES {
        return Err(Error::ValueTooLarge {
            key: key.to_owned(),
            length,
        });
    }
    Ok(())
}

/// K11.
pub(crate) fn check_metadata_len(key: &str, length: usize) -> Result<(), Error> {
    if length > MAX_METADATA_BYTES {
        return Err(Error::MetadataTooLarge {
            key: key.to_owned(),
            length,
        });
    }
    Ok(())
}

/// K13-K15: the expiration to store, in milliseconds, or `None` for none. `expiration_ttl`
/// wins over `expiration` (K13); there is no 60-second minimum (K14).
pub(crate) fn expiration_ms(
    key: &str,
    now_ms: u64,
    expiration: Option<u64>,
    expiration_ttl: Option<u64>,
) -> Result<Option<u64>, Error> {
    if let Some(ttl) = expiration_ttl {
        let at = ttl
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(now_ms))
            .filter(|&at| ttl > 0 && at <= MAX_EXPIRATION_MS);
        return match at {
            Some(at) => Ok(Some(at)),
            None => Err(Error::InvalidExpirationTtl {
                key: key.to_owned(),
                expiration_ttl: ttl,
            }),
        };
    }
    if let Some(seconds) = expiration {
        return match seconds.checked_mul(1000) {
            Some(at) if at > now_ms && at <= MAX_EXPIRATION_MS => Ok(Some(at)),
            _ => Err(Error::InvalidExpiration {
                key: key.to_owned(),
                expiration: seconds,
            }),
        };
    }
    Ok(None)
}

/// K15: expirations are kept in milliseconds and reported in whole seconds, rounded up so that a
/// reported expiration is never earlier than the real one: putting it back always succeeds while
/// the key is visible.
pub(crate) fn expiration_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// K18.
pub(crate) fn check_cache_ttl(operation: Operation, cache_ttl: Option<u64>) -> Result<(), Error> {
    match cache_ttl {
        Some(cache_ttl) if cache_ttl < MIN_CACHE_TTL => Err(Error::InvalidCacheTtl {
            operation,
            cache_ttl,
        }),
        _ => Ok(()),
    }
}

/// K19.
pub(crate) fn check_bulk_count(count: usize) -> Result<(), Error> {
    if count == 0 || count > MAX_BULK_KEYS {
        return Err(Error::BulkKeyCount { count });
    }
    Ok(())
}

/// K28: 0 or absent means the default of 1000.
pub(crate) fn list_limit(limit: Option<u64>) -> Result<u64, Error> {
    match limit {
        None | Some(0) => Ok(MAX_LIST_LIMIT),
        Some(limit) if limit <= MAX_LIST_LIMIT => Ok(limit),
        Some(limit) => Err(Error::InvalidListLimit { limit }),
    }
}

/// K33: a plain identifier, not reserved by D1 (`_cf`) or SQLite (`sqlite_`); namespaces are
/// shorter than tables, so that a namespace's default table is a valid name too. Names become
/// part of SQL text, so nothing else may pass.
pub(crate) fn check_name(kind: NameKind, name: &str) -> Result<(), Error> {
    match name_problem(kind, name) {
        Some(problem) => Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The longest shard name, in bytes.
pub const MAX_SHARD_NAME_BYTES: usize = 64;

/// S1: at least one shard; names of 1 to 64 ASCII letters, digits, `_`, `-` or `.`, each once.
pub(crate) fn check_shards<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= MAX_SHARD_NAME_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(Error::InvalidShards {
                message: format!(
                    "shard name {name:?}: use 1 to {MAX_SHARD_NAME_BYTES} ASCII letters, digits, \
                     '_', '-' or '.' (the binding name, say)"
                ),
            });
        }
        if !seen.insert(name) {
            return Err(Error::InvalidShards {
                message: format!("shard name {name:?} is given twice"),
            });
        }
    }
    if seen.is_empty() {
        return Err(Error::InvalidShards {
            message: "no shard: give at least one database".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_rounds_up_to_whole_seconds() {
        // K15
        assert_eq!(expiration_seconds(2_000), 2);
        assert_eq!(expiration_seconds(2_001), 3);
        assert_eq!(expiration_seconds(2_999), 3);
    }

    #[test]
    fn ttl_wins_over_expiration() {
        // K13
        let at = expiration_ms("k", 10_500, Some(100), Some(2)).unwrap();
        assert_eq!(at, Some(12_500));
    }

    #[test]
    fn expiration_must_be_after_now_to_the_millisecond() {
        // K14
        assert!(expiration_ms("k", 1_000, Some(1), None).is_err());
        assert!(expiration_ms("k", 999, Some(1), None).is_ok());
        assert!(expiration_ms("k", 1_500, Some(1), None).is_err());
    }

    #[test]
    fn expirations_beyond_exact_doubles_are_refused() {
        assert!(expiration_ms("k", 0, Some(u64::MAX), None).is_err());
        assert!(expiration_ms("k", 0, None, Some(u64::MAX)).is_err());
        assert!(expiration_ms("k", 0, Some(MAX_EXPIRATION_MS / 1000), None).is_ok());
        assert!(expiration_ms("k", 0, Some(MAX_EXPIRATION_MS / 1000 + 1), None).is_err());
    }
}
