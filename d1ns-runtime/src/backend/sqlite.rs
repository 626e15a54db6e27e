//! The embedded backend: SQLite through rusqlite (bundled), for native programs, local
//! development and tests. It runs the same SQL as D1.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef as SqlRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{Backend, Query, QueryResult, RowSink, Statement, Value, ValueRef, next_database_id};
use crate::error::{DatabaseError, Error};

/// Prepared statements kept per connection: d1ns issues about ten per table.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// How long a statement waits for another connection's write lock by default: long enough that
/// many writer processes on one file queue up instead of failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// What production D1 refuses, as SQLite limits: the longest string, BLOB or row; the most bound
/// parameters per statement; the longest statement.
const D1_LIMITS: [(Limit, i32); 3] = [
    (Limit::SQLITE_LIMIT_LENGTH, 2_000_000),
    (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 100),
    (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
];

/// An embedded SQLite database as a d1ns [`Backend`].
///
/// Operations run synchronously on the calling thread (an embedded database answers in
/// microseconds); the returned futures are ready at their first poll. The connection sits behind a
/// mutex, so the backend is `Send + Sync` and one instance can serve a multi-threaded server.
///
/// By default it refuses what production D1 refuses, with an error like D1's: a string, BLOB or
/// row over 2,000,000 bytes, more than 100 bound parameters, a statement over 100,000 bytes. So
/// a query of your own that would fail on D1 fails in local tests too (local workerd does not
/// enforce the row limit). [`d1_limits(false)`](Self::d1_limits) turns this off.
///
/// ```
/// use d1ns_runtime::{D1Namespace, SqliteBackend};
/// # fn main() -> Result<(), d1ns_runtime::Error> {
/// let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub struct SqliteBackend {
    connection: Mutex<Connection>,
    id: u64,
    /// The database file, which every error names; `None` in memory.
    file: Option<Box<str>>,
    /// SQLite's own limits, restored by `d1_limits(false)`.
    sqlite_limits: [i32; 3],
}

impl SqliteBackend {
    /// Opens (or creates) the SQLite database file at `path`. Writers in other processes are
    /// waited for up to [`DEFAULT_BUSY_TIMEOUT`]; see [`busy_timeout`](Self::busy_timeout).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path.as_ref(), OpenFlags::default())
    }

    /// Opens the SQLite database file at `path`, which must exist: a tool that reads a
    /// database (a previous layout, a file to export) never creates an empty one in place of a
    /// mistyped path, whose keys would then read as missing.
    ///
    /// ```
    /// # use d1ns_runtime::SqliteBackend;
    /// let missing = std::env::temp_dir().join("d1ns-doc-no-such-file.sqlite");
    /// let error = SqliteBackend::open_existing(&missing).unwrap_err();
    /// assert!(error.to_string().contains("no database file"));
    /// assert!(!missing.exists());
    /// ```
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::Database(DatabaseError::new(format!(
                "{}: no database file there (open_existing creates none)",
                path.display()
            ))));
        }
        Self::open_with(path, OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Self, Error> {
        let connection =
            Connection::open_with_flags(path, flags).map_err(|e| database_error(&e, path))?;
        // Wait for other connections from the start: switching a new file to WAL takes its
        // lock, and processes opening one brand-new file together must queue, not fail.
        connection
            .busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .map_err(|e| database_error(&e, path))?;
        // WAL lets readers in other processes (say, the sqlite3 shell) work while this one writes.
        // SQLite may refuse the switch at once, without its busy handler, while another
        // connection is making the same switch: try again until the busy timeout has passed.
        let deadline = std::time::Instant::now() + DEFAULT_BUSY_TIMEOUT;
        loop {
            match connection.pragma_update(None, "journal_mode", "WAL") {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                result => break result.map_err(|e| database_error(&e, path))?,
            }
        }
        Self::from_connection(connection)
    }

    /// Opens a fresh in-memory database, gone when the backend is dropped.
    pub fn open_in_memory() -> Result<Self, Error> {
        let connection =
            Connection::open_in_memory().map_err(|e| database_error(&e, Path::new(":memory:")))?;
        Self::from_connection(connection)?.busy_timeout(DEFAULT_BUSY_TIMEOUT)
    }

    /// Uses a connection the caller opened (to set its own pragmas, say). Its busy timeout is
    /// kept (rusqlite's default is 5 s); [`busy_timeout`](Self::busy_timeout) changes it.
    pub fn from_connection(connection: Connection) -> Result<Self, Error> {
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // Two backends on the same file are the same database (K34), whatever path, symlink
        // or hard link reached it; in-memory ones never are.
        let file = connection.path().filter(|p| !p.is_empty()).map(Box::from);
        let id = match &file {
            Some(path) => file_identity(Path::new(&**path)),
            None => next_database_id(),
        };
        let mut sqlite_limits = [0; 3];
        for (slot, (limit, _)) in sqlite_limits.iter_mut().zip(D1_LIMITS) {
            *slot = connection
                .limit(limit)
                .map_err(|e| Error::Database(d1_like_error(&e)))?;
        }
        SqliteBackend {
            connection: Mutex::new(connection),
            id,
            file,
            sqlite_limits,
        }
        .d1_limits(true)
    }

    /// Whether to refuse what production D1 refuses (the default): strings, BLOBs and rows over
    /// 2,000,000 bytes, more than 100 bound parameters, statements over 100,000 bytes.
    ///
    /// ```
    /// # use d1ns_runtime::SqliteBackend;
    /// # fn main() -> Result<(), d1ns_runtime::Error> {
    /// let unlimited = SqliteBackend::open_in_memory()?.d1_limits(false)?;
    /// # Ok(()) }
    /// ```
    pub fn d1_limits(self, enabled: bool) -> Result<Self, Error> {
        {
            let connection = self.lock();
            for ((limit, d1), sqlite) in D1_LIMITS.into_iter().zip(self.sqlite_limits) {
                let value = if enabled { d1 } else { sqlite };
                connection
                    .set_limit(limit, value)
                    .map_err(|e| Error::Database(d1_like_error(&e)))?;
            }
        }
        Ok(self)
    }

    /// How long a statement waits for another connection (another process, say) to release the
    /// database before it fails with "database is locked"; default [`DEFAULT_BUSY_TIMEOUT`].
    ///
    /// ```
    /// # use d1ns_runtime::SqliteBackend;
    /// # fn main() -> Result<(), d1ns_runtime::Error> {
    /// let db = SqliteBackend::open_in_memory()?.busy_timeout(std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn busy_timeout(self, timeout: Duration) -> Result<Self, Error> {
        self.lock()
            .busy_timeout(timeout)
            .map_err(|e| Error::Database(d1_like_error(&e)))?;
        Ok(self)
    }

    /// A batch's error in D1's words, naming the file (of several shards, which one failed).
    fn error(&self, e: &rusqlite::Error) -> DatabaseError {
        let error = d1_like_error(e);
        match &self.file {
            Some(file) => DatabaseError::new(format!("{} (database file {file})", error.message())),
            None => error,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic elsewhere while the lock was held cannot leave a half-done batch behind: the
        // transaction rolls back when dropped. So a poisoned lock is safe to take over.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `statements` as one atomic batch, handing rows and changes to `sink`.
    fn run<S: Bind>(&self, statements: &[S], sink: Sink<'_>) -> Result<(), rusqlite::Error> {
        let mut connection = self.lock();
        if let [statement] = statements {
            return run_statement(&connection, 0, statement, sink.into_dyn());
        }
        // Writes take the write lock up front (no deadlock between two upgrading readers). Reads,
        // with the schema statements in front that are no-ops once the table exists, take no
        // write lock, so they never wait behind another process's writes; if such a batch has to
        // create the table after all and meets a writer, it runs again as a write. The rows of
        // the first attempt reach no sink unless it committed.
        let reads = statements.iter().all(|s| reads_only(s.sql()));
        let sink = match sink {
            Sink::Collect(collect) if reads => {
                let deferred = TransactionBehavior::Deferred;
                match run_batch(&mut connection, statements, deferred, collect) {
                    Err(e) if is_busy(&e) => collect.restart(),
                    result => return result,
                }
                Sink::Collect(collect)
            }
            // Straight into the caller's sink, whose rows count only if the batch commits: a
            // caller meeting "database is locked" here goes through `batch`, which waits.
            Sink::Rows(rows) if reads => {
                let deferred = TransactionBehavior::Deferred;
                return run_batch(&mut connection, statements, deferred, rows);
            }
            sink => sink,
        };
        let immediate = TransactionBehavior::Immediate;
        run_batch(&mut connection, statements, immediate, sink.into_dyn())
    }
}

/// Where a batch's rows go: into the owned results of [`Backend::batch`], or to a caller's
/// [`RowSink`] ([`Backend::run_now`]).
enum Sink<'a> {
    Collect(&'a mut Collect),
    Rows(&'a mut dyn RowSink),
}

impl<'a> Sink<'a> {
    fn into_dyn(self) -> &'a mut dyn RowSink {
        match self {
            Sink::Collect(collect) => collect,
            Sink::Rows(rows) => rows,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// A statement SQLite can run: an owned [`Statement`] or a borrowed [`Query`].
trait Bind {
    fn sql(&self) -> &str;
    fn bind(&self, prepared: &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<()>;
}

impl Bind for Statement<'_> {
    fn sql(&self) -> &str {
        self.sql
    }

    fn bind(&self, prepared: &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<()> {
        for (index, value) in self.params.iter().enumerate() {
            prepared.raw_bind_parameter(index + 1, value)?;
        }
        Ok(())
    }
}

impl Bind for Query<'_> {
    fn sql(&self) -> &str {
        self.sql
    }

    fn bind(&self, prepared: &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<()> {
        for (index, value) in self.params.iter().enumerate() {
            prepared.raw_bind_parameter(index + 1, ToSqlOutput::Borrowed(sql_ref(*value)))?;
        }
        Ok(())
    }
}

fn sql_ref(value: ValueRef<'_>) -> SqlRef<'_> {
    match value {
        ValueRef::Null => SqlRef::Null,
        ValueRef::Integer(i) => SqlRef::Integer(i),
        ValueRef::Real(r) => SqlRef::Real(r),
        ValueRef::Text(t) => SqlRef::Text(t.as_bytes()),
        ValueRef::Blob(b) => SqlRef::Blob(b),
    }
}

/// Whether a statement reads only, or creates something only if it is missing (a no-op that
/// takes no write lock once the schema exists).
fn reads_only(sql: &str) -> bool {
    sql.starts_with("SELECT") || (sql.starts_with("CREATE ") && sql.contains(" IF NOT EXISTS "))
}

fn run_batch<S: Bind>(
    connection: &mut Connection,
    statements: &[S],
    behavior: TransactionBehavior,
    sink: &mut dyn RowSink,
) -> Result<(), rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(behavior)?;
    for (index, statement) in statements.iter().enumerate() {
        run_statement(&transaction, index, statement, sink)?;
    }
    transaction.commit()
}

/// The most columns a row is handed over in without a heap allocation; d1ns selects at most 9.
const STACK_COLUMNS: usize = 16;

fn run_statement<S: Bind>(
    connection: &Connection,
    index: usize,
    statement: &S,
    sink: &mut dyn RowSink,
) -> Result<(), rusqlite::Error> {
    let mut prepared = connection.prepare_cached(statement.sql())?;
    statement.bind(&mut prepared)?;
    let columns = prepared.column_count();
    if columns == 0 {
        let changes = prepared.raw_execute()? as u64;
        sink.changes(index, changes);
        return Ok(());
    }
    let mut cursor = prepared.raw_query();
    while let Some(row) = cursor.next()? {
        let mut stack = [ValueRef::Null; STACK_COLUMNS];
        let mut heap = Vec::new();
        let cells: &mut [ValueRef<'_>] = if columns <= STACK_COLUMNS {
            &mut stack[..columns]
        } else {
            heap.resize(columns, ValueRef::Null);
            &mut heap
        };
        for (column, cell) in cells.iter_mut().enumerate() {
            *cell = match row.get_ref(column)? {
                SqlRef::Null => ValueRef::Null,
                SqlRef::Integer(i) => ValueRef::Integer(i),
                SqlRef::Real(r) => ValueRef::Real(r),
                // Text d1ns wrote is UTF-8; text that is not (written by hand) stays bytes, so
                // that a text read reports it instead of mangling it (K7).
                SqlRef::Text(t) => std::str::from_utf8(t).map_or(ValueRef::Blob(t), ValueRef::Text),
                SqlRef::Blob(b) => ValueRef::Blob(b),
            };
        }
        sink.row(index, cells);
    }
    Ok(())
}

/// The rows of a batch, owned: what [`Backend::batch`] returns.
struct Collect {
    results: Vec<QueryResult>,
}

impl Collect {
    fn new(statements: usize) -> Self {
        Collect {
            results: vec![QueryResult::default(); statements],
        }
    }

    /// Forgets what a failed attempt collected.
    fn restart(&mut self) {
        for result in &mut self.results {
            *result = QueryResult::default();
        }
    }
}

impl RowSink for Collect {
    fn row(&mut self, statement: usize, columns: &[ValueRef<'_>]) {
        if let Some(result) = self.results.get_mut(statement) {
            result
                .rows
                .push(columns.iter().map(|c| c.to_owned_value()).collect());
        }
    }

    fn changes(&mut self, statement: usize, changes: u64) {
        if let Some(result) = self.results.get_mut(statement) {
            result.changes = Some(changes);
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(sql_ref(self.as_ref())))
    }
}

/// The identity of a database file: its device and inode where the system has them (so a hard
/// link is the same file) with its creation time (so a file made where a removed one was is
/// another), else its canonical path.
fn file_identity(path: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        (metadata.dev(), metadata.ino(), metadata.created().ok()).hash(&mut hasher);
        return hasher.finish();
    }
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.into())
        .hash(&mut hasher);
    hasher.finish()
}

/// SQLite's error, worded as D1 words it where D1 has its own words (its limits).
fn d1_like_error(e: &rusqlite::Error) -> DatabaseError {
    let text = e.to_string();
    let message = if text.contains("statement too long") {
        format!("D1_ERROR: statement too long (D1 takes at most 100,000 bytes of SQL): {text}")
    } else if text.contains("too many SQL variables")
        || text.contains("variable number must be between")
    {
        format!("D1_ERROR: too many SQL variables (D1 binds at most 100 parameters): {text}")
    } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::TooBig) {
        format!(
            "D1_ERROR: string or blob too big: SQLITE_TOOBIG (D1 rows, strings and BLOBs hold at \
             most 2,000,000 bytes; SqliteBackend::d1_limits(false) lifts this locally): {text}"
        )
    } else {
        text
    };
    DatabaseError::new(message)
}

fn database_error(e: &rusqlite::Error, path: &Path) -> Error {
    Error::Database(DatabaseError::new(format!("{}: {e}", path.display())))
}

impl Backend for SqliteBackend {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let mut collect = Collect::new(statements.len());
        let result = self
            .run(statements, Sink::Collect(&mut collect))
            .map(|()| collect.results)
            .map_err(|e| self.error(&e));
        std::future::ready(result)
    }

    /// A file's id is its identity (device, inode and creation time); an in-memory database's
    /// is its own.
    fn id_is_identity(&self) -> bool {
        true
    }

    fn run_now(
        &self,
        queries: &[Query<'_>],
        rows: &mut dyn RowSink,
    ) -> Option<Result<(), DatabaseError>> {
        Some(
            self.run(queries, Sink::Rows(rows))
                .map_err(|e| self.error(&e)),
        )
    }

    fn database_id(&self) -> u64 {
        self.id
    }
}
