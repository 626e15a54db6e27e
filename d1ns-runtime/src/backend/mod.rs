//! Where d1ns meets a database: the [`Backend`] trait and the values that cross it.
//!
//! The runtime turns every KV operation into one batch of SQL statements (see the `sql` module;
//! only a `get_bulk` of values over 128 KiB takes more); a backend runs a batch atomically, in
//! one round trip, and hands back the rows. One file per
//! backend adapts it: `d1.rs` for `worker::D1Database`, `sqlite.rs` for embedded SQLite.

use std::future::Future;
use std::sync::Arc;

use crate::error::DatabaseError;

#[cfg(feature = "d1")]
mod d1;
mod instrumented;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod sqlite;

pub use instrumented::{Instrumented, Stats};
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use sqlite::{DEFAULT_BUSY_TIMEOUT, SqliteBackend};

/// A SQL value, as bound to a statement or read from a row: SQLite's five storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number (D1 returns every number this way).
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The value as a non-negative integer, from `INTEGER` or a whole `REAL`.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        self.as_ref().as_u64()
    }
}

impl Value {
    /// The value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// A SQL value, borrowed: a parameter of a [`Query`] or a column of a row handed to a
/// [`RowSink`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    /// The value, owned.
    pub fn to_owned_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(t.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }

    /// The value as a non-negative integer, from `INTEGER` or a whole `REAL`.
    pub(crate) fn as_u64(self) -> Option<u64> {
        match self {
            ValueRef::Integer(i) => u64::try_from(i).ok(),
            ValueRef::Real(r) if r >= 0.0 && r.fract() == 0.0 && r <= u64::MAX as f64 => {
                Some(r as u64)
            }
            _ => None,
        }
    }
}

/// One statement with borrowed parameters, for [`Backend::run_now`].
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The SQL text.
    pub sql: &'a str,
    /// The parameters, bound in order.
    pub params: &'a [ValueRef<'a>],
}

impl<'a> Query<'a> {
    /// The same statement with owned parameters, for [`Backend::batch`].
    pub fn to_statement(&self) -> Statement<'a> {
        Statement {
            sql: self.sql,
            params: self.params.iter().map(|p| p.to_owned_value()).collect(),
        }
    }
}

/// Receives the rows of a [`Backend::run_now`] batch as the database reads them. A row is
/// borrowed only for the call: the sink copies what it keeps.
pub trait RowSink {
    /// One row of the statement at index `statement` of the batch, its columns in the order the
    /// statement selects them.
    fn row(&mut self, statement: usize, columns: &[ValueRef<'_>]);

    /// Rows changed by the statement at `statement`, for a statement that returns no columns.
    fn changes(&mut self, statement: usize, changes: u64) {
        let _ = (statement, changes);
    }
}

/// One SQL statement with its parameters (`?1`, `?2`, ... in order).
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    /// The SQL text.
    pub sql: &'a str,
    /// The parameters, bound in order.
    pub params: Vec<Value>,
}

/// What one statement of a batch returned. Backends outside this crate make it with
/// [`QueryResult::new`] and set the counts they know.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct QueryResult {
    /// The rows, each with its columns in the order the statement selects them.
    pub rows: Vec<Vec<Value>>,
    /// Rows the database read for the statement, where it reports them (D1's `meta.rows_read`).
    pub rows_read: Option<u64>,
    /// Rows the database wrote, where it reports them (D1's `meta.rows_written`).
    pub rows_written: Option<u64>,
    /// Rows changed by an `INSERT`, `UPDATE` or `DELETE`.
    pub changes: Option<u64>,
}

impl QueryResult {
    /// A result with these rows and no counts.
    pub fn new(rows: Vec<Vec<Value>>) -> Self {
        QueryResult {
            rows,
            ..QueryResult::default()
        }
    }
}

/// A database that runs d1ns's statements: D1 in Workers, SQLite elsewhere.
///
/// Implementations run a whole batch in one round trip and atomically (all statements or none,
/// as D1's `batch()` does), and return one [`QueryResult`] per statement, in order. The futures
/// are `Send` so that d1ns works in multi-threaded runtimes; the D1 backend can promise this
/// because a Worker runs on one thread.
pub trait Backend {
    /// Runs `statements` as one atomic batch.
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send;

    /// Identifies the database, so that d1ns can remember, per database and table, that it has
    /// created a table (K34). Two backends on the same database should return the same id; two
    /// databases must not (a wrong "same" only costs a failed statement and one retry).
    fn database_id(&self) -> u64;

    /// Whether [`database_id`](Self::database_id) tells databases apart: two backends with the
    /// same id are then the same database, and a layout that gives one database twice is
    /// refused. `false` (the default) for backends whose ids may be shared by different
    /// databases (D1 sessions share one).
    #[doc(hidden)]
    fn id_is_identity(&self) -> bool {
        false
    }

    /// For a backend that answers on the calling thread (embedded SQLite): runs `queries` now,
    /// atomically as [`batch`](Self::batch) does, handing each row to `rows` without copying
    /// it. `None` (the default) says the backend has no such path, and d1ns uses `batch`.
    ///
    /// A sink's rows count only when this returns `Some(Ok(()))`: after an error, the batch
    /// rolled back and d1ns drops the sink.
    #[doc(hidden)]
    fn run_now(
        &self,
        queries: &[Query<'_>],
        rows: &mut dyn RowSink,
    ) -> Option<Result<(), DatabaseError>> {
        let _ = (queries, rows);
        None
    }
}

impl<B: Backend + Sync> Backend for &B {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        (**self).batch(statements)
    }

    fn database_id(&self) -> u64 {
        (**self).database_id()
    }

    fn id_is_identity(&self) -> bool {
        (**self).id_is_identity()
    }

    fn run_now(
        &self,
        queries: &[Query<'_>],
        rows: &mut dyn RowSink,
    ) -> Option<Result<(), DatabaseError>> {
        (**self).run_now(queries, rows)
    }
}

impl<B: Backend + Send + Sync> Backend for Arc<B> {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        (**self).batch(statements)
    }

    fn database_id(&self) -> u64 {
        (**self).database_id()
    }

    fn id_is_identity(&self) -> bool {
        (**self).id_is_identity()
    }

    fn run_now(
        &self,
        queries: &[Query<'_>],
        rows: &mut dyn RowSink,
    ) -> Option<Result<(), DatabaseError>> {
        (**self).run_now(queries, rows)
    }
}

/// A backend that is a D1 session (R1-R2): it holds the bookmark of the latest data it has
/// seen, which the application hands to the client so that the client's next request starts a
/// session from it and sees every write this one made or saw.
///
/// Implemented by `worker::D1DatabaseSession` and by the wrappers around one (`&B`, `Arc<B>`,
/// [`Instrumented`]); [`D1Namespace::bookmark`](crate::D1Namespace::bookmark) asks it.
pub trait Session {
    /// The session's bookmark after the operations so far; `None` before the first.
    fn bookmark(&self) -> Result<Option<String>, DatabaseError>;
}

/// The part for the shard `name` of the bookmark a sharded namespace gave (S8), to start that
/// shard's session from; `None` when it holds none for that shard (start that session with a
/// constraint instead).
///
/// ```
/// use d1ns_runtime::backend::shard_bookmark;
///
/// let bookmarks = "DB1=0000-aa,DB3=0000-bb";
/// assert_eq!(shard_bookmark(bookmarks, "DB3"), Some("0000-bb"));
/// assert_eq!(shard_bookmark(bookmarks, "DB2"), None);
/// ```
pub fn shard_bookmark<'a>(bookmarks: &'a str, name: &str) -> Option<&'a str> {
    bookmarks.split(',').find_map(|part| {
        let (shard, bookmark) = part.split_once('=')?;
        (shard == name && !bookmark.is_empty()).then_some(bookmark)
    })
}

impl<S: Session> Session for &S {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        (**self).bookmark()
    }
}

impl<S: Session> Session for Arc<S> {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        (**self).bookmark()
    }
}

/// A process-wide counter for database ids that have no natural name (in-memory databases,
/// D1 bindings).
#[cfg(any(feature = "d1", feature = "sqlite"))]
pub(crate) fn next_database_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
