//! Helpers shared by the integration tests: a namespace on in-memory SQLite with a manual clock,
//! and a backend wrapper that records every batch the runtime sends.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use d1ns::{
    Backend, D1Namespace, DatabaseError, ManualClock, QueryResult, Session, SqliteBackend,
    Statement,
};

/// 2023-11-14T22:13:20Z, in milliseconds.
pub const T0: u64 = 1_700_000_000_000;

/// The default namespace on a fresh in-memory database, on a manual clock at [`T0`].
pub fn kv() -> (D1Namespace<SqliteBackend>, ManualClock) {
    let clock = ManualClock::new(T0);
    let backend = SqliteBackend::open_in_memory().expect("in-memory database");
    let kv = D1Namespace::builder(backend)
        .clock(clock.clone())
        .build()
        .expect("valid names");
    (kv, clock)
}

/// One recorded batch: each statement's SQL and parameter count.
pub type Batch = Vec<(String, usize)>;

/// The names of the keys listed with `prefix`, which must fit one page.
pub async fn names<B: Backend + Send + Sync + 'static>(
    kv: &D1Namespace<B>,
    prefix: &str,
) -> Vec<String> {
    let page = kv.list().prefix(prefix.to_string()).await.unwrap();
    assert!(page.list_complete);
    page.keys.into_iter().map(|k| k.name).collect()
}

/// Records the SQL of every batch, then hands it to the wrapped backend.
#[derive(Debug)]
pub struct Recorder<B> {
    pub inner: Arc<B>,
    batches: Arc<Mutex<Vec<Batch>>>,
    rows: Arc<std::sync::atomic::AtomicUsize>,
    largest_result: Arc<std::sync::atomic::AtomicUsize>,
}

impl<B> Clone for Recorder<B> {
    fn clone(&self) -> Self {
        Recorder {
            inner: self.inner.clone(),
            batches: self.batches.clone(),
            rows: self.rows.clone(),
            largest_result: self.largest_result.clone(),
        }
    }
}

impl<B> Recorder<B> {
    pub fn new(inner: B) -> Self {
        Recorder {
            inner: Arc::new(inner),
            batches: Arc::default(),
            rows: Arc::default(),
            largest_result: Arc::default(),
        }
    }

    /// Every batch sent so far: each statement's SQL and parameter count.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }

    /// Rows the database returned since the last `clear`.
    pub fn rows_returned(&self) -> usize {
        self.rows.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most bytes of text and BLOB values one call returned.
    pub fn largest_result_bytes(&self) -> usize {
        self.largest_result
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.batches.lock().unwrap().clear();
        self.rows.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<B: Backend + Sync> Backend for Recorder<B> {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let sql = statements
            .iter()
            .map(|s| (s.sql.to_owned(), s.params.len()))
            .collect();
        self.batches.lock().unwrap().push(sql);
        let batch = self.inner.batch(statements);
        let rows = self.rows.clone();
        let largest = self.largest_result.clone();
        async move {
            let results = batch.await?;
            let returned: usize = results.iter().map(|r| r.rows.len()).sum();
            rows.fetch_add(returned, std::sync::atomic::Ordering::SeqCst);
            let bytes = results
                .iter()
                .flat_map(|r| r.rows.iter().flatten())
                .map(|value| match value {
                    d1ns::Value::Text(t) => t.len(),
                    d1ns::Value::Blob(b) => b.len(),
                    _ => 8,
                })
                .sum();
            largest.fetch_max(bytes, std::sync::atomic::Ordering::SeqCst);
            Ok(results)
        }
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

/// A path for a database file of this test, removed first if a previous run left it.
pub fn scratch_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("d1ns-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A stand-in for a D1 session (R1, S8): each batch moves its bookmark on, as D1 does after a
/// query. Its bookmarks are the count of batches, with the label after a `-` when it has one.
pub struct Bookmarking {
    pub inner: SqliteBackend,
    label: String,
    batches: std::sync::atomic::AtomicU64,
}

impl Bookmarking {
    /// A session on `inner`, labelled `label` (`""` for none), started at `start` batches.
    pub fn new(inner: SqliteBackend, label: &str, start: u64) -> Self {
        Bookmarking {
            inner,
            label: label.to_owned(),
            batches: std::sync::atomic::AtomicU64::new(start),
        }
    }
}

impl Backend for Bookmarking {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.batch(statements)
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

impl Session for Bookmarking {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        Ok(
            match self.batches.load(std::sync::atomic::Ordering::SeqCst) {
                0 => None,
                n if self.label.is_empty() => Some(format!("{n:08}")),
                n => Some(format!("{n:08}-{}", self.label)),
            },
        )
    }
}
