//! A `d1ns::Backend` that hands every batch to `worker::D1Database` and adds up what D1 reports,
//! so the suite can print each operation's cost in D1's own figures (`meta.rows_read`,
//! `meta.rows_written`) and the number of round trips.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use d1ns::{Backend, DatabaseError, QueryResult, Statement};
use serde::Serialize;
use worker::D1Database;

/// D1's figures, summed over every batch a backend ran.
#[derive(Debug, Default)]
pub struct Counters {
    calls: AtomicU64,
    statements: AtomicU64,
    rows_read: AtomicU64,
    rows_written: AtomicU64,
}

/// A snapshot of [`Counters`], or the difference of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Round trips to D1 (`batch()` calls, failed ones included).
    pub calls: u64,
    /// Statements sent, schema statements included.
    pub statements: u64,
    /// Sum of D1's `meta.rows_read` over the statements of successful calls.
    pub rows_read: u64,
    /// Sum of D1's `meta.rows_written`.
    pub rows_written: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Cost {
        Cost {
            calls: self.calls.load(Ordering::Relaxed),
            statements: self.statements.load(Ordering::Relaxed),
            rows_read: self.rows_read.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
        }
    }
}

impl Cost {
    /// What happened between `before` and `self`.
    pub fn since(self, before: Cost) -> Cost {
        Cost {
            calls: self.calls - before.calls,
            statements: self.statements - before.statements,
            rows_read: self.rows_read - before.rows_read,
            rows_written: self.rows_written - before.rows_written,
        }
    }
}

/// `worker::D1Database`, counted.
pub struct CountingD1 {
    db: D1Database,
    counters: Arc<Counters>,
}

impl CountingD1 {
    pub fn new(db: D1Database, counters: Arc<Counters>) -> Self {
        CountingD1 { db, counters }
    }
}

impl Backend for CountingD1 {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let counters = &self.counters;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .statements
            .fetch_add(statements.len() as u64, Ordering::Relaxed);
        let results = Backend::batch(&self.db, statements);
        async move {
            let results = results.await?;
            for result in &results {
                let add = |counter: &AtomicU64, n: Option<u64>| {
                    counter.fetch_add(n.unwrap_or(0), Ordering::Relaxed);
                };
                add(&counters.rows_read, result.rows_read);
                add(&counters.rows_written, result.rows_written);
            }
            Ok(results)
        }
    }

    fn database_id(&self) -> u64 {
        self.db.database_id()
    }
}
