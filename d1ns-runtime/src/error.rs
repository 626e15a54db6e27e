//! The one error type of d1ns.
//!
//! Every mistake a Workers KV binding rejects is rejected here too, and the `Display` text is the one
//! KV uses for the same mistake (rules K2-K28 of the behaviour spec), so logs read the same after a
//! move from KV. The variants carry the key or argument at fault so callers can match on them.

use std::fmt;

/// The KV operation an error belongs to; it picks the verb of KV's error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `get`, `get_with_metadata` (`KV GET failed`).
    Get,
    /// `get_bulk` (`KV GET_BULK failed`).
    GetBulk,
    /// `put`, `put_bytes` (`KV PUT failed`).
    Put,
    /// `delete` (`KV DELETE failed`).
    Delete,
    /// `list`; KV reports list errors as `KV GET failed`.
    List,
}

impl Operation {
    /// The verb KV puts in its error text for this operation.
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Get | Operation::List => "GET",
            Operation::GetBulk => "GET_BULK",
            Operation::Put => "PUT",
            Operation::Delete => "DELETE",
        }
    }
}

/// Why a key (or list prefix) was refused (K1-K5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// `""` (K2).
    Empty,
    /// `"."` or `".."` (K3).
    Dots,
    /// More than 512 bytes of UTF-8 (K4); the actual length.
    TooLong(usize),
}

// Defined beside the name rules, which `#[d1_namespace]` shares.
pub use d1ns_limits::{NameKind, NameProblem};

/// An error from a d1ns operation.
///
/// `Display` gives the Workers KV text for the same mistake, e.g.
/// `KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.`;
/// errors KV has no text for name the key at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The key is empty, `.`/`..`, or longer than 512 bytes (K2-K5).
    InvalidKey {
        /// The operation that was refused.
        operation: Operation,
        /// The key (or list prefix) as given.
        key: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// The value is longer than 26,214,400 bytes (K6).
    ValueTooLarge {
        /// The key being written.
        key: String,
        /// The value's length in bytes.
        length: usize,
    },
    /// The metadata serializes to more than 1024 bytes of JSON (K11).
    MetadataTooLarge {
        /// The key being written.
        key: String,
        /// The serialized metadata's length in bytes.
        length: usize,
    },
    /// `expiration` is not after the current time (K14), or too far away to store exactly.
    InvalidExpiration {
        /// The key being written.
        key: String,
        /// The expiration given, in seconds since the Unix epoch.
        expiration: u64,
    },
    /// `expiration_ttl` is 0 (K14), or too far away to store exactly.
    InvalidExpirationTtl {
        /// The key being written.
        key: String,
        /// The TTL given, in seconds.
        expiration_ttl: u64,
    },
    /// `cache_ttl` is below 30 (K18).
    InvalidCacheTtl {
        /// `Get` or `GetBulk`.
        operation: Operation,
        /// The value given.
        cache_ttl: u64,
    },
    /// A list `limit` above 1000 (K28). The text is KV's own, word for word, so it says "less than
    /// 1000" although 1000 itself is accepted, by KV and by d1ns.
    InvalidListLimit {
        /// The value given.
        limit: u64,
    },
    /// `get_bulk` with 0 or more than 100 keys (K19).
    BulkKeyCount {
        /// The number of keys given.
        count: usize,
    },
    /// `get_bulk(..).json()` where a present value is not JSON (K21).
    BulkNotJson {
        /// The first key (in request order) whose value is not JSON.
        key: String,
    },
    /// A `json` read of a value that is not JSON (K7).
    NotJson {
        /// The key read.
        key: String,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A value or metadata is JSON but does not decode into the requested type.
    Decode {
        /// The key read.
        key: String,
        /// `"value"` or `"metadata"`.
        part: &'static str,
        /// The decoder's complaint.
        source: serde_json::Error,
    },
    /// A value or metadata could not be serialized to JSON.
    Serialize {
        /// The key being written.
        key: String,
        /// `"value"` or `"metadata"`.
        part: &'static str,
        /// The serializer's complaint.
        source: serde_json::Error,
    },
    /// A list cursor that d1ns did not make (K30).
    InvalidCursor {
        /// The cursor given.
        cursor: String,
    },
    /// A namespace or table name that is not a plain identifier, or is reserved (K33).
    InvalidName {
        /// Which name.
        kind: NameKind,
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// A stream form (`stream()`, `put_stream`) failed: JS could not make or read the stream,
    /// or the program is not a Worker (streams are JS objects).
    Stream {
        /// The key read or written.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// A sum, min or max (or `increment`) met a live value that is not the decimal text of an
    /// `i64` (A12); the commit wrote nothing.
    NotAnInteger {
        /// The key of the mutation.
        key: String,
        /// `"sum"`, `"min"` or `"max"`.
        operation: &'static str,
    },
    /// A sum (or `increment`) would leave the range of `i64` (A12); the commit wrote nothing.
    Overflow {
        /// The key of the mutation.
        key: String,
        /// The amount that was to be added.
        delta: i64,
    },
    /// An atomic commit beyond its limits (A10): too many checks or mutations, or too many
    /// bytes; see [`limits`](crate::limits).
    CommitTooLarge {
        /// `"checks"`, `"mutations"` or `"bytes"`.
        what: &'static str,
        /// How many the commit has.
        count: usize,
        /// The most a commit may have.
        limit: usize,
    },
    /// A look-up by an index with a value D1 cannot look up exactly (an integer beyond 2^53).
    InvalidIndexValue {
        /// The indexed field.
        field: String,
        /// What is wrong with the value.
        message: String,
    },
    /// A typed put whose indexed integer field is beyond 2^53 (I3): D1 hands numbers to
    /// JavaScript as doubles, so the entry could not be found by it.
    IndexValueTooLarge {
        /// The key being written.
        key: String,
        /// The indexed field.
        field: String,
        /// Its value, as JSON.
        value: String,
    },
    /// A shard layout that cannot place keys (S1): no shard, a name that is empty, too long or
    /// not made of ASCII letters, digits, `_`, `-` and `.`, or a name given twice.
    InvalidShards {
        /// What is wrong.
        message: String,
    },
    /// An atomic commit whose keys live on different shards (S6): D1 has no transaction across
    /// databases. Nothing was sent.
    CrossShard {
        /// A key of the commit.
        first: String,
        /// A key of the commit on another shard than `first`.
        second: String,
    },
    /// An operation that cannot keep the rules of a move (M4) while the namespace has a previous
    /// home: `delete_where` could not find the matching keys still there, and they would come
    /// back. Nothing was sent.
    MoveInProgress {
        /// The operation refused.
        operation: &'static str,
    },
    /// The database refused or failed a statement.
    Database(DatabaseError),
}

impl Error {
    /// The key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::InvalidKey { key, .. }
            | Error::ValueTooLarge { key, .. }
            | Error::MetadataTooLarge { key, .. }
            | Error::InvalidExpiration { key, .. }
            | Error::InvalidExpirationTtl { key, .. }
            | Error::BulkNotJson { key }
            | Error::NotJson { key, .. }
            | Error::Decode { key, .. }
            | Error::Serialize { key, .. }
            | Error::Stream { key, .. }
            | Error::NotAnInteger { key, .. }
            | Error::Overflow { key, .. }
            | Error::IndexValueTooLarge { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::bounds::{
            MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_METADATA_BYTES, MAX_VALUE_BYTES, MIN_CACHE_TTL,
        };
        use d1ns_limits::MAX_EXPIRATION_MS;
        match self {
            // KV checks a bulk read's keys on its server, with other words than the binding's.
            Error::InvalidKey { problem: KeyProblem::Empty, operation: Operation::GetBulk, .. } => {
                f.write_str("KV GET_BULK failed: 400 Key names must not be empty")
            }
            Error::InvalidKey { problem: KeyProblem::Dots, operation: Operation::GetBulk, key } => {
                write!(f, "KV GET_BULK failed: 400 Illegal key name \"{key}\". Please use a different name.")
            }
            Error::InvalidKey { problem: KeyProblem::Empty, .. } => {
                f.write_str("Key name cannot be empty.")
            }
            Error::InvalidKey { problem: KeyProblem::Dots, key, .. } => {
                write!(f, "\"{key}\" is not allowed as a key name.")
            }
            Error::InvalidKey { problem: KeyProblem::TooLong(length), operation, .. } => write!(
                f,
                "KV {} failed: 414 UTF-8 encoded length of {length} exceeds key length limit of {MAX_KEY_BYTES}.",
                operation.verb()
            ),
            Error::ValueTooLarge { length, .. } => write!(
                f,
                "KV PUT failed: 413 Value length of {length} exceeds limit of {MAX_VALUE_BYTES}."
            ),
            Error::MetadataTooLarge { length, .. } => write!(
                f,
                "KV PUT failed: 413 Metadata length of {length} exceeds limit of {MAX_METADATA_BYTES}."
            ),
            Error::InvalidExpiration { expiration, .. } => {
                if expiration.saturating_mul(1000) > MAX_EXPIRATION_MS {
                    write!(
                        f,
                        "KV PUT failed: 400 Invalid expiration of {expiration}. Please specify integer at most {}.",
                        MAX_EXPIRATION_MS / 1000
                    )
                } else {
                    write!(
                        f,
                        "KV PUT failed: 400 Invalid expiration of {expiration}. Please specify integer greater than the current number of seconds since the UNIX epoch."
                    )
                }
            }
            Error::InvalidExpirationTtl { expiration_ttl, .. } => {
                if *expiration_ttl == 0 {
                    write!(
                        f,
                        "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."
                    )
                } else {
                    write!(
                        f,
                        "KV PUT failed: 400 Invalid expiration_ttl of {expiration_ttl}. The expiration it gives must be at most {} seconds since the UNIX epoch.",
                        MAX_EXPIRATION_MS / 1000
                    )
                }
            }
            Error::InvalidCacheTtl { operation, cache_ttl } => write!(
                f,
                "KV {} failed: 400 Invalid cache_ttl of {cache_ttl}. Cache TTL must be at least {MIN_CACHE_TTL}.",
                operation.verb()
            ),
            Error::InvalidListLimit { limit } => write!(
                f,
                "KV GET failed: 400 Invalid key_count_limit of {limit}. Please specify an integer less than {MAX_LIST_LIMIT}."
            ),
            Error::BulkKeyCount { count } => {
                if *count == 0 {
                    f.write_str("KV GET_BULK failed: 400 You must request a minimum of 1 key")
                } else {
                    f.write_str("KV GET_BULK failed: 400 You can request a maximum of 100 keys")
                }
            }
            Error::BulkNotJson { .. } => f.write_str(
                "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value",
            ),
            Error::NotJson { key, source } => {
                write!(f, "the value of key {key:?} is not JSON: {source}")
            }
            Error::Decode { key, part, source } => {
                write!(f, "the {part} of key {key:?} does not decode into the requested type: {source}")
            }
            Error::Serialize { key, part, source } => {
                write!(f, "the {part} for key {key:?} cannot be serialized to JSON: {source}")
            }
            Error::InvalidCursor { cursor } => {
                // A cursor comes from outside (a query string): its text is cut, not echoed
                // whole (a 10 MB cursor must not make a 10 MB message).
                const SHOWN: usize = 64;
                let cut = (0..=SHOWN.min(cursor.len()))
                    .rev()
                    .find(|&end| cursor.is_char_boundary(end))
                    .unwrap_or(0);
                if cut < cursor.len() {
                    let shown = &cursor[..cut];
                    let length = cursor.len();
                    write!(f, "KV GET failed: 400 Invalid cursor {shown:?}... ({length} bytes): pass back a cursor that list() returned.")
                } else {
                    write!(f, "KV GET failed: 400 Invalid cursor {cursor:?}: pass back a cursor that list() returned.")
                }
            }
            Error::InvalidName { kind, name, problem } => {
                write!(f, "invalid {kind} name {name:?}: {problem}")
            }
            Error::InvalidShards { message } => write!(f, "invalid shard layout: {message}"),
            Error::MoveInProgress { operation } => write!(
                f,
                "{operation} cannot run while the namespace has a previous home: the matching \
                 keys not moved yet could not be found there, and would come back; run it once \
                 the mover reports done and the previous home is dropped (or delete the keys one \
                 by one); nothing was written"
            ),
            Error::CrossShard { first, second } => write!(
                f,
                "an atomic commit cannot span shards: keys {first:?} and {second:?} live on \
                 different databases; give keys that change together the same hash tag \
                 (\"user:{{42}}:cart\", \"user:{{42}}:prefs\"); nothing was written"
            ),
            Error::Stream { key, message } => {
                write!(f, "the stream of key {key:?} failed: {message}")
            }
            Error::NotAnInteger { key, operation } => write!(
                f,
                "the value of key {key:?} is not an integer, so {operation} cannot apply to it; nothing was written"
            ),
            Error::Overflow { key, delta } => write!(
                f,
                "adding {delta} to the value of key {key:?} overflows a 64-bit integer; nothing was written"
            ),
            Error::CommitTooLarge { what, count, limit } => write!(
                f,
                "an atomic commit may have at most {limit} {what}, this one has {count}; nothing was written"
            ),
            Error::InvalidIndexValue { field, message } => {
                write!(f, "cannot look up the index on {field:?}: {message}")
            }
            Error::IndexValueTooLarge { key, field, value } => write!(
                f,
                "the indexed field {field:?} of the value for key {key:?} is {value}, beyond 2^53: D1 could not find the entry by it; nothing was written"
            ),
            Error::Database(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotJson { source, .. }
            | Error::Decode { source, .. }
            | Error::Serialize { source, .. } => Some(source),
            Error::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DatabaseError> for Error {
    fn from(e: DatabaseError) -> Self {
        Error::Database(e)
    }
}

/// A failure reported by the database (D1 or SQLite), with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseError {
    message: String,
}

impl DatabaseError {
    /// An error with the database's own message.
    pub fn new(message: impl Into<String>) -> Self {
        DatabaseError {
            message: message.into(),
        }
    }

    /// The database's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the statement failed because its table does not exist (dropped by hand, or
    /// another database than the one d1ns created it in). d1ns then creates it and retries once.
    pub fn is_missing_table(&self) -> bool {
        // Both SQLite and D1 ("D1_ERROR: no such table: t: SQLITE_ERROR") use SQLite's text.
        // A look-up names its index (`INDEXED BY`): one dropped by hand is missing schema too.
        self.message.contains("no such table") || self.message.contains("no such index")
    }

    /// Whether the statement failed because its table lacks `column` (a table made by an
    /// earlier version of d1ns).
    pub(crate) fn is_missing_column(&self, column: &str) -> bool {
        // SQLite's words, which D1 passes on: "no such column: size" (or "NEW.size" in a
        // trigger) and "table t has no column named size".
        let message = self.message.as_str();
        message.contains(&format!("has no column named {column}"))
            || message.split("no such column: ").skip(1).any(|rest| {
                let name = rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'));
                name.take(1)
                    .any(|name| name == column || name.ends_with(&format!(".{column}")))
            })
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.message)
    }
}

impl std::error::Error for DatabaseError {}

#[cfg(feature = "d1")]
#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl From<Error> for worker::Error {
    /// Lets `?` turn a d1ns error into a `worker::Error` in a Worker's handler, as it does for
    /// `worker::kv::KvError`.
    fn from(e: Error) -> Self {
        worker::Error::RustError(e.to_string())
    }
}

#[cfg(feature = "d1")]
#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl From<Error> for worker::kv::KvError {
    /// Lets `?` turn a d1ns error into a `worker::kv::KvError`, for helpers written against
    /// `KvStore` that return `Result<_, KvError>`.
    ///
    /// In a Worker it is a JS `Error` with KV's text, as a KV binding throws. Elsewhere (native
    /// tests of such helpers) no JS value can be made, so it is `InvalidKvStore` with the same
    /// text; both `Display` it after a short prefix workers-rs adds.
    fn from(e: Error) -> Self {
        #[cfg(target_arch = "wasm32")]
        let error =
            worker::kv::KvError::JavaScript(worker::js_sys::Error::new(&e.to_string()).into());
        #[cfg(not(target_arch = "wasm32"))]
        let error = worker::kv::KvError::InvalidKvStore(e.to_string());
        error
    }
}

#[cfg(all(test, feature = "d1"))]
mod tests {
    use super::*;

    /// The conversions a Worker's `?` relies on after the move from `KvStore` exist, and the
    /// page types are workers-rs's own (checked at compile time).
    #[test]
    fn errors_convert_for_workers_and_pages_are_workers_rs_types() {
        fn _into_kv_error(e: Error) -> worker::kv::KvError {
            e.into()
        }
        fn _same_page(page: crate::ListResponse) -> worker::kv::ListResponse {
            page
        }
        fn _same_key(key: crate::Key) -> worker::kv::Key {
            key
        }
        let error = Error::BulkKeyCount { count: 0 };
        match worker::Error::from(error) {
            worker::Error::RustError(text) => {
                assert_eq!(
                    text,
                    "KV GET_BULK failed: 400 You must request a minimum of 1 key"
                )
            }
            other => panic!("expected the KV text as a RustError, got {other:?}"),
        }
    }

    /// A helper written against `KvStore` can be tested natively: converting gives a value, not
    /// an abort, and it shows d1ns's KV-worded text.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn errors_convert_to_kv_error_natively_with_the_kv_text() {
        fn helper() -> Result<(), worker::kv::KvError> {
            Err(Error::InvalidListLimit { limit: 1001 })?
        }
        let Err(error) = helper() else {
            panic!("the helper returns its error")
        };
        let text = "KV GET failed: 400 Invalid key_count_limit of 1001.";
        assert!(error.to_string().contains(text), "{error}");
        let error = worker::Error::from(error);
        assert!(error.to_string().contains(text), "{error}");
    }
}

#[cfg(test)]
mod missing_column_tests {
    use super::DatabaseError;

    #[test]
    fn a_missing_column_is_recognised_in_sqlites_and_d1s_words() {
        let missing = |message: &str| DatabaseError::new(message).is_missing_column("size");
        assert!(missing("no such column: size"));
        assert!(missing("in prepare, no such column: NEW.size"));
        assert!(missing(
            "D1_ERROR: table _kv_entries has no column named size: SQLITE_ERROR"
        ));
        assert!(missing("D1_ERROR: no such column: e.size: SQLITE_ERROR"));
        // Another column, or a name that only starts with it, is not this one.
        assert!(!missing("no such column: sizes"));
        assert!(!missing("no such column: chunks"));
        assert!(!missing("no such table: size"));
    }
}
