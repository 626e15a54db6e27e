//! [`Instrumented`]: a backend wrapper that counts what d1ns asks of the database, so that tests
//! can assert the cost rules and users can see their bill before it arrives.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, Query, QueryResult, RowSink, Session, Statement, ValueRef};
use crate::error::DatabaseError;

/// Counts calls (round trips), statements, and the rows the database reports reading and
/// writing. Clones share the backend and the counters: keep one, give the other to the namespace.
///
/// `rows_read` and `rows_written` are D1's own `meta.rows_read` and `meta.rows_written`, what D1
/// bills; SQLite does not report them, so on `SqliteBackend` they stay 0
/// and `changes` (rows inserted, updated or deleted) is the measure of writes.
///
/// ```
/// use d1ns_runtime::{D1Namespace, SqliteBackend, backend::Instrumented};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), d1ns_runtime::Error> {
/// let db = Instrumented::new(SqliteBackend::open_in_memory()?);
/// let kv = D1Namespace::new(db.clone());
/// kv.put("k", "v")?.await?;
/// kv.get("k").text().await?;
/// assert_eq!(db.stats().calls, 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Instrumented<B> {
    inner: Arc<B>,
    counters: Arc<Counters>,
}

impl<B> Clone for Instrumented<B> {
    fn clone(&self) -> Self {
        Instrumented {
            inner: Arc::clone(&self.inner),
            counters: Arc::clone(&self.counters),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    statements: AtomicU64,
    rows_read: AtomicU64,
    rows_written: AtomicU64,
    changes: AtomicU64,
}

/// What an [`Instrumented`] backend has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Round trips to the database (each D1 `batch()` call).
    pub calls: u64,
    /// Statements sent.
    pub statements: u64,
    /// Rows read, as the database reports them (D1's `meta.rows_read`).
    pub rows_read: u64,
    /// Rows written, as the database reports them (D1's `meta.rows_written`).
    pub rows_written: u64,
    /// Rows inserted, updated or deleted.
    pub changes: u64,
}

impl<B> Instrumented<B> {
    /// Counts what goes through `inner`.
    pub fn new(inner: B) -> Self {
        Instrumented {
            inner: Arc::new(inner),
            counters: Arc::default(),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            calls: c.calls.load(Ordering::Relaxed),
            statements: c.statements.load(Ordering::Relaxed),
            rows_read: c.rows_read.load(Ordering::Relaxed),
            rows_written: c.rows_written.load(Ordering::Relaxed),
            changes: c.changes.load(Ordering::Relaxed),
        }
    }

    /// The counts so far, and starts again from zero.
    pub fn take_stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            calls: c.calls.swap(0, Ordering::Relaxed),
            statements: c.statements.swap(0, Ordering::Relaxed),
            rows_read: c.rows_read.swap(0, Ordering::Relaxed),
            rows_written: c.rows_written.swap(0, Ordering::Relaxed),
            changes: c.changes.swap(0, Ordering::Relaxed),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend + Sync> Backend for Instrumented<B> {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let counters = &self.counters;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .statements
            .fetch_add(statements.len() as u64, Ordering::Relaxed);
        let batch = self.inner.batch(statements);
        async move {
            let results = batch.await?;
            for result in &results {
                let add = |counter: &AtomicU64, n: Option<u64>| {
                    counter.fetch_add(n.unwrap_or(0), Ordering::Relaxed);
                };
                add(&counters.rows_read, result.rows_read);
                add(&counters.rows_written, result.rows_written);
                add(&counters.changes, result.changes);
            }
            Ok(results)
        }
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }

    fn id_is_identity(&self) -> bool {
        self.inner.id_is_identity()
    }

    fn run_now(
        &self,
        queries: &[Query<'_>],
        rows: &mut dyn RowSink,
    ) -> Option<Result<(), DatabaseError>> {
        let mut counting = CountChanges { rows, changes: 0 };
        let result = self.inner.run_now(queries, &mut counting)?;
        // Counted only when the inner backend took the batch (no double count on `batch`), and
        // changes only when it committed, as `batch` counts them.
        let counters = &self.counters;
        if result.is_ok() {
            counters
                .changes
                .fetch_add(counting.changes, Ordering::Relaxed);
        }
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .statements
            .fetch_add(queries.len() as u64, Ordering::Relaxed);
        Some(result)
    }
}

/// Passes rows on and counts the changes a batch reports.
struct CountChanges<'a> {
    rows: &'a mut dyn RowSink,
    changes: u64,
}

impl RowSink for CountChanges<'_> {
    fn row(&mut self, statement: usize, columns: &[ValueRef<'_>]) {
        self.rows.row(statement, columns);
    }

    fn changes(&mut self, statement: usize, changes: u64) {
        self.changes += changes;
        self.rows.changes(statement, changes);
    }
}

impl<B: Session> Session for Instrumented<B> {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        self.inner.bookmark()
    }
}
