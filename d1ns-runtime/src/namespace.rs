//! [`D1Namespace`]: the Workers KV API over one namespace of a D1 (or SQLite) table, and the
//! bookkeeping every operation shares: one batch per operation, the table created on first use.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use crate::backend::{Backend, Query, QueryResult, Session, Statement, Value};
use crate::clock::{Clock, SystemClock};
use crate::edge::EdgeCache;
use crate::error::{Error, NameKind, Operation};
use crate::index::IndexDef;
use crate::limits::{self, default_table};
use crate::rows::Decode;
use crate::sql::{IndexSql, Sql};

/// A KV namespace stored in a D1 table: the API of `worker::kv::KvStore`, strongly consistent.
///
/// Moving from Workers KV is one line: `env.kv("KV")?` becomes
/// `D1Namespace::new(env.d1("DB")?)`; `get`, `get_bulk`, `put`, `put_bytes`, `delete` and `list`
/// keep their shape, options and return types.
///
/// ```
/// use d1ns_runtime::{D1Namespace, SqliteBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), d1ns_runtime::Error> {
/// let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
/// kv.put("greeting", "hello")?.expiration_ttl(60).execute().await?;
/// assert_eq!(kv.get("greeting").text().await?.as_deref(), Some("hello"));
/// kv.delete("greeting").await?;
/// assert_eq!(kv.get("greeting").text().await?, None);
/// # Ok(()) }
/// ```
///
/// Many namespaces can share one database, each in its own table or several in one table
/// ([`builder`](Self::builder)); they never see each other's keys (K32).
///
/// Like `KvStore`, a `D1Namespace` is a cheap handle: clones share the backend, and the builders
/// own what they need, so their futures can outlive the call that made them (`ctx.wait_until`).
pub struct D1Namespace<B> {
    pub(crate) inner: Arc<Inner<B>>,
}

/// One database a namespace lives in, with the name that places keys on it (S1).
pub(crate) struct Shard<B> {
    pub(crate) name: Box<str>,
    pub(crate) backend: B,
    /// Set once this namespace knows its table exists here; saves a lock on the registry per
    /// operation.
    schema_known: AtomicBool,
}

impl<B> AsRef<str> for Shard<B> {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// What the clones of a [`D1Namespace`] share.
pub(crate) struct Inner<B> {
    /// The databases of the namespace: one, or several with keys placed by name (S1).
    pub(crate) shards: Vec<Shard<B>>,
    namespace: String,
    table: String,
    pub(crate) sql: Sql,
    /// The typed indexes of this namespace (I1), with their statements.
    pub(crate) indexes: Vec<(IndexDef, IndexSql)>,
    /// What the schema registry knows this namespace by: its table, and with indexes its name
    /// too (another namespace in the same table has other indexes).
    schema_key: Box<str>,
    auto_create: bool,
    clock: Arc<dyn Clock>,
    /// The edge cache behind `cache_ttl`, when the builder was given one (R6).
    edge: Option<EdgeCache>,
    /// Where the keys lived before, during a move (M1).
    pub(crate) previous: Option<crate::moving::Previous<B>>,
}

impl<B> Clone for D1Namespace<B> {
    fn clone(&self) -> Self {
        D1Namespace {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> D1Namespace<B> {
    /// The default namespace `""` in the table `_kv_entries`, created on first use, on the
    /// system clock.
    pub fn new(backend: B) -> Self {
        D1Namespace::builder(backend).build_unchecked()
    }

    /// Options: the namespace name, the table, auto-create and the clock.
    ///
    /// ```
    /// use d1ns_runtime::{D1Namespace, ManualClock, SqliteBackend};
    ///
    /// # fn main() -> Result<(), d1ns_runtime::Error> {
    /// let sessions = D1Namespace::builder(SqliteBackend::open_in_memory()?)
    ///     .namespace("sessions")
    ///     .table("shared_kv")
    ///     .clock(ManualClock::new(1_700_000_000_000))
    ///     .build()?;
    /// assert_eq!(sessions.table(), "shared_kv");
    /// # Ok(()) }
    /// ```
    pub fn builder(backend: B) -> D1NamespaceBuilder<B> {
        D1Namespace::builder_of(vec![(String::new(), backend)])
    }

    /// Options for a namespace spread over several databases (S1): each key lives on one of
    /// them, chosen by rendezvous hashing over the shard names and the key (see
    /// [`placement`](crate::placement)); the names, not their order, decide. One shard behaves
    /// and costs exactly as [`builder`](Self::builder).
    ///
    /// ```
    /// use d1ns_runtime::{D1Namespace, SqliteBackend};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// let kv = D1Namespace::sharded([
    ///     ("DB1", SqliteBackend::open_in_memory()?),
    ///     ("DB2", SqliteBackend::open_in_memory()?),
    ///     ("DB3", SqliteBackend::open_in_memory()?),
    /// ])
    /// .build()?;
    /// kv.put("user:{42}:cart", "3 items")?.await?;
    /// kv.put("user:{42}:prefs", "dark")?.await?; // the same shard: the tag {42} places both
    /// assert_eq!(kv.shard_of("user:{42}:cart"), kv.shard_of("user:{42}:prefs"));
    /// assert_eq!(kv.list().execute().await?.keys.len(), 2); // every shard, in key order
    /// # Ok(()) }
    /// ```
    pub fn sharded<N: Into<String>>(
        shards: impl IntoIterator<Item = (N, B)>,
    ) -> D1NamespaceBuilder<B> {
        let mut builder = D1Namespace::builder_of(Vec::new());
        builder.shards = shards
            .into_iter()
            .map(|(name, backend)| (name.into(), backend))
            .collect();
        builder.named_shards = true;
        builder
    }

    fn builder_of(shards: Vec<(String, B)>) -> D1NamespaceBuilder<B> {
        D1NamespaceBuilder {
            shards,
            named_shards: false,
            namespace: String::new(),
            table: None,
            auto_create: true,
            clock: Arc::new(SystemClock),
            indexes: &[],
            #[cfg(feature = "d1")]
            edge_cache: None,
            previous: None,
        }
    }

    /// The namespace of a builder whose names are checked, with its edge cache and previous
    /// home made.
    fn assemble(
        builder: D1NamespaceBuilder<B>,
        table: String,
        edge: Option<EdgeCache>,
        previous: Option<crate::moving::Previous<B>>,
    ) -> Self {
        let D1NamespaceBuilder {
            shards,
            namespace,
            auto_create,
            clock,
            indexes,
            ..
        } = builder;
        let schema_key = if indexes.is_empty() {
            table.clone().into()
        } else {
            format!("{table}\0{namespace}").into()
        };
        let inner = Inner {
            shards: shards
                .into_iter()
                .map(|(name, backend)| Shard {
                    name: name.into(),
                    backend,
                    schema_known: AtomicBool::new(false),
                })
                .collect(),
            sql: Sql::for_table(&table),
            indexes: indexes
                .iter()
                .map(|def| (*def, IndexSql::new(&table, &namespace, def.field)))
                .collect(),
            schema_key,
            namespace,
            table,
            auto_create,
            clock,
            edge,
            previous,
        };
        D1Namespace {
            inner: Arc::new(inner),
        }
    }

    /// The namespace name (`""` for the default namespace).
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The table the namespace lives in.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The backend, for queries of your own; of a sharded namespace, the first shard's (see
    /// [`shards`](Self::shards)).
    pub fn backend(&self) -> &B {
        &self.inner.shards[0].backend
    }

    /// The shards with their names, in the order given (one, named `""`, for a namespace made
    /// with [`new`](Self::new) or [`builder`](Self::builder)).
    pub fn shards(&self) -> impl ExactSizeIterator<Item = (&str, &B)> {
        self.inner
            .shards
            .iter()
            .map(|shard| (&*shard.name, &shard.backend))
    }

    /// The one shard all of `keys` live on, for an atomic commit (S6); an error naming two keys
    /// on different shards otherwise. No keys: the first shard.
    pub(crate) fn shard_of_all<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<usize, Error> {
        let mut first: Option<(&str, usize)> = None;
        for key in keys {
            let shard = self.shard_of(key);
            match first {
                None => first = Some((key, shard)),
                Some((first_key, first_shard)) if first_shard != shard => {
                    return Err(Error::CrossShard {
                        first: first_key.to_owned(),
                        second: key.to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(first.map_or(0, |(_, shard)| shard))
    }

    /// The index, in [`shards`](Self::shards), of the shard `key` lives on (S2).
    pub fn shard_of(&self, key: &str) -> usize {
        match self.inner.shards.len() {
            1 => 0,
            _ => crate::placement::shard_for(&self.inner.shards, key).unwrap_or(0),
        }
    }

    /// The statements that create this namespace's table, its expiration index, the table of
    /// long values' chunks and its two triggers: for a D1 migration when auto-create is off.
    pub fn schema_sql(&self) -> String {
        let indexes: String = self
            .inner
            .indexes
            .iter()
            .map(|(_, sql)| format!("{};\n", sql.create))
            .collect();
        self.sql().schema_script() + &indexes
    }

    /// The statements that bring a table made by d1ns 0.1 to this version's schema, for a D1
    /// migration when auto-create is off (with auto-create, d1ns runs them itself the first
    /// time it meets such a table). Run them once; for the default table they are
    /// `migrations/0002_d1ns_size.sql` then `migrations/0003_d1ns_version.sql`.
    pub fn upgrade_sql(&self) -> String {
        self.sql().upgrade_script()
    }

    /// The statements that bring a table made by d1ns 0.2 (it has the `size` column, not yet
    /// `version`) to this version's schema; `migrations/0003_d1ns_version.sql` is this script
    /// for the default table.
    pub fn upgrade_sql_from_0_2(&self) -> String {
        self.sql().upgrade_script_from(1)
    }

    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// The namespace as the first parameter of a statement.
    pub(crate) fn namespace_param(&self) -> Value {
        Value::Text(self.inner.namespace.clone())
    }

    /// The edge cache a read with this `cache_ttl` goes through, with the ttl: only in a
    /// Worker, with a cache given to the builder and a `cache_ttl` asked for (R6, R7).
    pub(crate) fn edge_for(&self, cache_ttl: Option<u64>) -> Option<(&EdgeCache, u64)> {
        if !cfg!(target_arch = "wasm32") {
            return None;
        }
        Some((self.inner.edge.as_ref()?, cache_ttl?))
    }

    /// Whether this namespace reads through an edge cache, whose entries its writes remove (R8).
    pub(crate) fn has_edge_cache(&self) -> bool {
        self.inner.edge.is_some()
    }

    /// Removes the cached entries of keys this operation wrote or deleted (R8). Called whether
    /// or not the write succeeded: a failed write may have landed, and a purge is never wrong.
    pub(crate) async fn purge_cached(&self, keys: &[&str]) {
        if let Some(edge) = &self.inner.edge {
            edge.purge(keys).await;
        }
    }

    /// Deletes a key; deleting a missing key succeeds (K24).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        limits::check_key(Operation::Delete, key)?;
        let statement = self.delete_statement(key);
        let result = self.run_one(self.shard_of(key), statement).await;
        self.purge_cached(&[key]).await;
        result.map(drop)
    }

    /// Removes up to `max_rows` expired entries from this namespace's table (of every namespace
    /// in it: expired entries are invisible to all of them) and returns how many it removed.
    ///
    /// Reads never delete (K31a), so expired rows stay until their key is written again or this
    /// runs. It reaches them through the index on expirations, so its cost is the rows it
    /// removes; call it from a Cron Trigger with a bound that fits one invocation, until it
    /// returns less than the bound.
    ///
    /// A sharded namespace purges every shard, up to `max_rows` each, in parallel, and returns
    /// the total (S7).
    ///
    /// During a move (a namespace with a previous home) it removes nothing and returns 0: an
    /// expired row tells reads and the mover that the key was written here, and a tombstone
    /// that it was deleted. Once the previous home is dropped, it removes both. Another
    /// namespace's purge of a shared table never removes this namespace's tombstones, so a
    /// neighbour may purge while this one moves in.
    pub async fn purge_expired(&self, max_rows: u64) -> Result<u64, Error> {
        if self.inner.previous.is_some() {
            return Ok(0);
        }
        let now = Value::Integer(to_i64(self.now_ms()));
        // D1 binds numbers as doubles; a larger LIMIT would be a REAL and fail.
        let limit = Value::Integer(to_i64(max_rows.min(crate::limits::MAX_EXPIRATION_MS)));
        let purges = (0..self.inner.shards.len()).map(|shard| {
            let statement = Statement {
                sql: &self.sql().purge_expired,
                params: vec![now.clone(), limit.clone(), self.namespace_param()],
            };
            self.run_one(shard, statement)
        });
        let mut removed = 0;
        let mut failed = None;
        for result in crate::join::join_all(purges.collect()).await {
            match result {
                // One row per entry removed: a count that does not depend on the database's meta.
                Ok(result) => removed += result.rows.len() as u64,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            None => Ok(removed),
            Some(e) => Err(partly_done(
                e,
                self.inner.shards.len(),
                removed,
                "expired entries",
            )),
        }
    }

    /// Runs one statement on `shard` as the operation's single round trip.
    pub(crate) async fn run_one(
        &self,
        shard: usize,
        statement: Statement<'_>,
    ) -> Result<QueryResult, Error> {
        let mut results = self.run(shard, vec![statement]).await?;
        results.pop().ok_or_else(|| {
            Error::Database(crate::error::DatabaseError::new(
                "the database returned no result",
            ))
        })
    }

    /// Runs read statements on `shard` as the operation's single round trip, handing their rows
    /// to a decoder that `decoder` makes (again for a retry, so that only the rows of the run
    /// that succeeded count). Embedded SQLite lends the rows to the decoder as it reads them;
    /// other backends go through [`run`](Self::run).
    pub(crate) async fn read<D: Decode>(
        &self,
        shard: usize,
        queries: &[Query<'_>],
        decoder: impl Fn() -> D,
    ) -> Result<D, Error> {
        let part = self.shard(shard)?;
        // In a Worker every backend answers through `batch` (D1 hands over JS objects, not
        // rows to borrow): the fast path is left out of the wasm, where bytes count.
        if cfg!(not(target_arch = "wasm32")) && self.schema_known(part) {
            let mut rows = decoder();
            match part.backend.run_now(queries, &mut rows) {
                None => {}
                Some(Ok(())) => return Ok(rows),
                // What `run` mends (an upgrade, a table to create) or words: run it there.
                Some(Err(e)) if self.handled_by_run(&e) => {}
                Some(Err(e)) => return Err(self.on_shard(shard, e.into())),
            }
        }
        let statements = queries.iter().map(Query::to_statement).collect();
        let results = self.run(shard, statements).await?;
        let mut rows = decoder();
        for (statement, result) in results.into_iter().enumerate() {
            for row in result.rows {
                rows.owned_row(statement, row);
            }
        }
        Ok(rows)
    }

    /// Whether [`run`](Self::run) does more with this error than return it.
    /// Any missing column or table: `run` tells an older d1ns table from another program's,
    /// creates a dropped table, or words a missing migration; a lock met, `run` waits for.
    fn handled_by_run(&self, e: &crate::error::DatabaseError) -> bool {
        // A read of several statements that met a writer is run again by `batch`, which waits.
        missing_column(e) || e.is_missing_table() || e.message().contains("database is locked")
    }

    /// Runs an operation's statements as one batch, with the schema statements in front when
    /// the table may not exist yet (K34), and returns the operation's results. A table made by
    /// an earlier version is upgraded in place (with auto-create) and the operation retried.
    pub(crate) async fn run<'s>(
        &'s self,
        shard: usize,
        statements: Vec<Statement<'s>>,
    ) -> Result<Vec<QueryResult>, Error> {
        let results = self.run_on(shard, statements).await;
        results.map_err(|e| self.on_shard(shard, e))
    }

    /// A database's error, naming the shard that gave it when the namespace has named shards
    /// (of three databases, which one is locked or damaged).
    fn on_shard(&self, shard: usize, error: Error) -> Error {
        let name = self
            .inner
            .shards
            .get(shard)
            .map_or("", |shard| &*shard.name);
        match error {
            Error::Database(e) if !name.is_empty() => Error::Database(
                crate::error::DatabaseError::new(format!("{} (shard {name:?})", e.message())),
            ),
            other => other,
        }
    }

    async fn run_on<'s>(
        &'s self,
        shard: usize,
        mut statements: Vec<Statement<'s>>,
    ) -> Result<Vec<QueryResult>, Error> {
        let shard = self.shard(shard)?;
        let auto_create = self.inner.auto_create;
        // Until this namespace has seen its table work here, its first batch carries the schema
        // (with auto-create) or, without, the check that the table is d1ns's, which reads no
        // row: either fails the batch, before the operation's statements change anything, on
        // another program's table.
        let mut with_schema = !self.schema_known(shard);
        let schema_len = self.schema_statements().count();
        let mut prefixed = false;
        let mut upgraded = false;
        loop {
            if with_schema && !prefixed {
                statements.splice(0..0, self.schema_statements());
            } else if !with_schema && prefixed {
                statements.drain(..schema_len);
            }
            prefixed = with_schema;
            let result = shard.backend.batch(&statements).await;
            // A column is missing (or, without auto-create, a table of d1ns's): an older d1ns
            // table to upgrade, another program's table, which d1ns never changes, or a missing
            // migration. Told apart before anything else is sent.
            if let Err(e) = &result
                && (missing_column(e) || (!auto_create && e.is_missing_table()))
                && let Some(foreign) = self.foreign_table(shard).await
            {
                return Err(foreign);
            }
            match result {
                Ok(mut results) => {
                    if with_schema {
                        self.remember_schema(shard);
                        results.drain(..schema_len.min(results.len()));
                    }
                    return Ok(results);
                }
                // A table made by an earlier version: bring it up to date once, then try again.
                Err(e) if !upgraded && self.missing_step(&e).is_some() => {
                    if !auto_create {
                        return Err(self.upgrade_needed(shard, &e).await);
                    }
                    self.upgrade(shard).await?;
                    upgraded = true;
                    with_schema = false;
                }
                // The table was dropped, or this is another database than the registry thinks:
                // create it and try once more.
                Err(e) if e.is_missing_table() && auto_create && !with_schema => {
                    self.forget_schema(shard);
                    with_schema = true;
                }
                // Without auto-create, a missing index is the migration's to make.
                Err(e) if !auto_create && e.message().contains("no such index") => {
                    return Err(Error::Database(crate::error::DatabaseError::new(format!(
                        "{}: the indexes of namespace {:?} are missing; apply the statements of \
                         schema_sql() (or turn auto-create on)",
                        e.message(),
                        self.inner.namespace
                    ))));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The error of a table that is not d1ns's (it lacks a column every d1ns table has), naming
    /// the table, the column and what to do; `None` for a d1ns table or a missing one.
    async fn foreign_table(&self, shard: &Shard<B>) -> Option<Error> {
        let probe = Statement {
            sql: &self.sql().own_columns,
            params: Vec::new(),
        };
        let e = shard.backend.batch(&[probe]).await.err()?;
        let column = crate::sql::OWN_COLUMNS
            .split(", ")
            .find(|column| e.is_missing_column(column))?;
        Some(Error::Database(crate::error::DatabaseError::new(format!(
            "table {table:?} is not a d1ns table: it has no column {column:?} (another program \
             made it; d1-namespace, the npm package, makes tables like it). d1ns never changes a \
             table it did not create: give this namespace another table with .table(\"...\"), \
             or move the entries into a d1ns table",
            table = self.inner.table
        ))))
    }

    /// The first upgrade step whose column `e` says is missing.
    fn missing_step(&self, e: &crate::error::DatabaseError) -> Option<usize> {
        self.sql()
            .upgrades
            .iter()
            .position(|step| e.is_missing_column(step.column))
    }

    /// The error of an operation on a table that needs an upgrade, without auto-create: names
    /// the migration files and the method that prints the statements. SQLite names one missing
    /// column, not always the oldest, so each step's column is looked for.
    async fn upgrade_needed(&self, shard: &Shard<B>, e: &crate::error::DatabaseError) -> Error {
        let mut first = self.missing_step(e).unwrap_or(0);
        for (index, step) in self.sql().upgrades.iter().enumerate().take(first) {
            let statement = Statement {
                sql: &step.probe,
                params: Vec::new(),
            };
            if let Err(probe_error) = shard.backend.batch(&[statement]).await
                && probe_error.is_missing_column(step.column)
            {
                first = index;
                break;
            }
        }
        let steps = &self.sql().upgrades[first..];
        let files: Vec<&str> = steps.iter().map(|step| step.migration).collect();
        let (made_by, method) = if first == 0 {
            ("d1ns 0.1", "D1Namespace::upgrade_sql()")
        } else {
            ("d1ns 0.2", "D1Namespace::upgrade_sql_from_0_2()")
        };
        Error::Database(crate::error::DatabaseError::new(format!(
            "table {:?} was made by {made_by} and needs an upgrade ({}): apply {} (for the \
             default table), or the statements of {method}",
            self.inner.table,
            e.message(),
            files.join(" then ")
        )))
    }

    /// Upgrades a table made by an earlier version, in one atomic batch: every step whose
    /// column is missing, then the schema. Another process may be doing the same: a step whose
    /// column turns out to exist is done, and the rest is tried again without it.
    async fn upgrade(&self, shard: &Shard<B>) -> Result<(), Error> {
        let steps = &self.sql().upgrades;
        let mut pending: Vec<bool> = vec![true; steps.len()];
        loop {
            let statements: Vec<Statement<'_>> = steps
                .iter()
                .zip(&pending)
                .filter(|(_, pending)| **pending)
                .flat_map(|(step, _)| &step.statements)
                .chain(&self.sql().schema)
                .chain(self.inner.indexes.iter().map(|(_, index)| &index.create))
                .map(|sql| Statement {
                    sql,
                    params: Vec::new(),
                })
                .collect();
            match shard.backend.batch(&statements).await {
                Ok(_) => break,
                Err(e) => {
                    let done = steps.iter().zip(&pending).position(|(step, pending)| {
                        *pending
                            && e.message()
                                .contains(&format!("duplicate column name: {}", step.column))
                    });
                    match done {
                        Some(step) => pending[step] = false,
                        None => return Err(e.into()),
                    }
                }
            }
        }
        self.remember_schema(shard);
        Ok(())
    }

    /// The schema statements, this namespace's indexes and the check, sent in front of an
    /// operation.
    /// Without auto-create, only the check that the table has d1ns's columns.
    fn schema_statements(&self) -> impl Iterator<Item = Statement<'_>> {
        let sql = self.sql();
        let create = self.inner.auto_create;
        let schema = sql.schema.iter().filter(move |_| create);
        let indexes = self.inner.indexes.iter().filter(move |_| create);
        let check = if create {
            &sql.schema_check
        } else {
            &sql.own_columns
        };
        schema
            .chain(indexes.map(|(_, index)| &index.create))
            .chain([check])
            .map(|sql| Statement {
                sql,
                params: Vec::new(),
            })
    }

    /// The shard at `index`, for an index from this namespace's own placement.
    fn shard(&self, index: usize) -> Result<&Shard<B>, Error> {
        self.inner.shards.get(index).ok_or_else(|| {
            Error::Database(crate::error::DatabaseError::new(format!(
                "no shard {index}: the namespace has {}",
                self.inner.shards.len()
            )))
        })
    }

    fn schema_known(&self, shard: &Shard<B>) -> bool {
        if shard.schema_known.load(Ordering::Relaxed) {
            return true;
        }
        let id = shard.backend.database_id();
        let known = registry()
            .get(&id)
            .is_some_and(|tables| tables.contains(&*self.inner.schema_key));
        if known {
            shard.schema_known.store(true, Ordering::Relaxed);
        }
        known
    }

    fn remember_schema(&self, shard: &Shard<B>) {
        let id = shard.backend.database_id();
        let key = &*self.inner.schema_key;
        let mut registry = registry();
        let tables = registry.entry(id).or_default();
        if !tables.contains(key) {
            tables.insert(key.into());
        }
        shard.schema_known.store(true, Ordering::Relaxed);
    }

    fn forget_schema(&self, shard: &Shard<B>) {
        let id = shard.backend.database_id();
        if let Some(tables) = registry().get_mut(&id) {
            // The table is gone: so are the indexes of every namespace in it.
            let table = self.inner.table.as_str();
            tables.retain(|key| key.split('\0').next() != Some(table));
        }
        shard.schema_known.store(false, Ordering::Relaxed);
    }
}

impl<B: Backend + Session> D1Namespace<B> {
    /// The bookmark of the D1 session this namespace runs on, after its operations so far (R2):
    /// hand it to the client (a cookie, a header), and start the client's next request's session
    /// from it, so that request sees every write this one made or saw. `None` before the first
    /// operation.
    ///
    /// ```ignore
    /// let bookmark = req.headers().get("x-d1-bookmark")?;
    /// let db = env.d1("DB")?;
    /// let kv = D1Namespace::new(match bookmark.as_deref() {
    ///     Some(bookmark) => db.with_session(Some(bookmark))?,
    ///     None => db.with_session_constraint(D1SessionConstraint::FirstUnconstrained)?,
    /// });
    /// let value = kv.get("profile").text().await?;
    /// let mut response = Response::ok(value.unwrap_or_default())?;
    /// if let Some(bookmark) = kv.bookmark()? {
    ///     response.headers_mut().set("x-d1-bookmark", &bookmark)?;
    /// }
    /// ```
    ///
    /// A namespace made by [`sharded`](Self::sharded), even of one shard, keeps one bookmark
    /// per shard and gives them as one opaque string (S8); start each shard's session from its
    /// own part with [`shard_bookmark`](crate::backend::shard_bookmark).
    pub fn bookmark(&self) -> Result<Option<String>, Error> {
        if let [shard] = self.inner.shards.as_slice()
            && shard.name.is_empty()
        {
            return shard.backend.bookmark().map_err(Error::Database);
        }
        let mut parts = Vec::new();
        for shard in &self.inner.shards {
            if let Some(bookmark) = shard.backend.bookmark().map_err(Error::Database)? {
                parts.push(format!("{}={bookmark}", shard.name));
            }
        }
        Ok((!parts.is_empty()).then(|| parts.join(",")))
    }
}

/// The tables known to exist, per database id, for the life of the process (or Worker isolate),
/// so that a `D1Namespace` made fresh in every request does not send schema statements each time.
/// Only successes are recorded: a failed creation is tried again by the next operation (K34).
/// Entries are never removed but for a table found missing; a process that opens many
/// short-lived in-memory databases keeps one small entry for each.
type Registry = HashMap<u64, HashSet<Box<str>>>;

fn registry() -> MutexGuard<'static, Registry> {
    static SCHEMA_REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);
    // The registry is valid after any panic (each change is one insert or remove).
    SCHEMA_REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The error of an operation over every shard that failed on one (named in `error`): with
/// several shards, it says how many entries the others removed (S7), which stay removed.
pub(crate) fn partly_done(error: Error, shards: usize, removed: u64, what: &str) -> Error {
    match error {
        Error::Database(e) if shards > 1 => {
            Error::Database(crate::error::DatabaseError::new(format!(
                "{}; on the other shards {removed} {what} were removed (they stay removed: run \
                 it again once the failing shard is back)",
                e.message()
            )))
        }
        other => other,
    }
}

/// Whether a statement failed for a column its table lacks, in SQLite's words (which D1 passes
/// on): a table of an earlier d1ns, or of another program.
fn missing_column(e: &crate::error::DatabaseError) -> bool {
    e.message().contains("no such column") || e.message().contains("has no column named")
}

/// Milliseconds and counts bound as SQL integers; d1ns's are checked to stay below 2^53.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<B> fmt::Debug for D1Namespace<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D1Namespace")
            .field("namespace", &self.inner.namespace)
            .field("table", &self.inner.table)
            .field("auto_create", &self.inner.auto_create)
            .finish_non_exhaustive()
    }
}

/// Options for a [`D1Namespace`]; made by [`D1Namespace::builder`].
#[must_use = "call .build() to get the namespace"]
pub struct D1NamespaceBuilder<B> {
    shards: Vec<(String, B)>,
    /// Made by `sharded`: the names place keys and are checked.
    named_shards: bool,
    namespace: String,
    table: Option<String>,
    auto_create: bool,
    clock: Arc<dyn Clock>,
    indexes: &'static [IndexDef],
    previous: Option<crate::moving::PreviousHome<B>>,
    /// The Workers cache and its stable name (R6).
    #[cfg(feature = "d1")]
    edge_cache: Option<(worker::send::SendWrapper<worker::Cache>, String)>,
}

impl<B: Backend> D1NamespaceBuilder<B> {
    /// The typed indexes `#[d1_namespace(index(..))]` declares (I1).
    pub(crate) fn indexes(mut self, indexes: &'static [IndexDef]) -> Self {
        self.indexes = indexes;
        self
    }

    /// The namespace name: a plain identifier (K33). Default `""`. Its default table is
    /// `{namespace}_kv_entries` (K32).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The table, instead of `{namespace}_kv_entries`: a plain identifier (K33). Several
    /// namespaces may share a table without seeing each other's keys.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Whether to create the table and its index on first use (default `true`). Turn it off when
    /// a D1 migration creates them (see `migrations/` and [`D1Namespace::schema_sql`]).
    pub fn auto_create(mut self, auto_create: bool) -> Self {
        self.auto_create = auto_create;
        self
    }

    /// The clock for expirations (default [`SystemClock`]); tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Serves reads that ask for `cache_ttl(n)` from the data center's cache for up to `n`
    /// seconds, as Workers KV does (R6): what a read finds, a miss included, is kept under
    /// `name`, the table, the namespace and the key; a write or delete through d1ns removes
    /// the key's entry in this data center before it returns (R8); no entry is served past its
    /// expiration (R9); values over
    /// [`EDGE_CACHE_MAX_VALUE_BYTES`](crate::EDGE_CACHE_MAX_VALUE_BYTES) and any failing cache
    /// call go to D1 (R11). Reads without `cache_ttl` are always fresh.
    ///
    /// `name` tells databases apart in the cache: use one per D1 database (its id, say), the
    /// same in every Worker that uses the database. Only writes through namespaces built with
    /// the same name remove entries. Other data centers may serve the old value of a changed
    /// key for up to `n` seconds, exactly KV's promise. Each cached key costs one Cache API
    /// call per read or write, within the request's subrequest limit. The Cache API stores
    /// nothing on `*.workers.dev`, and natively there is no edge: there every read goes to the
    /// database. See `docs/edge-reads.md`.
    ///
    /// ```ignore
    /// let kv = D1Namespace::builder(env.d1("DB")?)
    ///     .edge_cache(worker::Cache::default(), "6f1e2a4c-...") // the database's id
    ///     .build()?;
    /// let config = kv.get("config").cache_ttl(60).text().await?;
    /// ```
    #[cfg(feature = "d1")]
    #[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
    pub fn edge_cache(mut self, cache: worker::Cache, name: impl Into<String>) -> Self {
        self.edge_cache = Some((worker::send::SendWrapper::new(cache), name.into()));
        self
    }

    /// Where this namespace's keys lived before (M1): an earlier shard layout, or a Workers KV
    /// namespace. Reads of keys this home has never seen go there; writes stay here; deletes
    /// leave tombstones; [`D1Namespace::move_step`] brings the keys here. Drop this option once
    /// the mover reports `done` (M7). See `docs/scale-and-move.md`.
    pub fn previous_home(mut self, previous: crate::moving::PreviousHome<B>) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Checks the names (K33) and makes the namespace.
    pub fn build(self) -> Result<D1Namespace<B>, Error> {
        if !self.namespace.is_empty() {
            limits::check_name(NameKind::Namespace, &self.namespace)?;
        }
        limits::check_name(NameKind::Table, &self.table_name())?;
        if self.named_shards {
            limits::check_shards(self.shards.iter().map(|(name, _)| name.as_str()))?;
        }
        check_distinct_databases("layout", &self.shards)?;
        if let Some(crate::moving::PreviousHome {
            kind: crate::moving::HomeKind::Shards(old),
        }) = &self.previous
        {
            if old.is_empty() {
                return Err(Error::InvalidShards {
                    message: "the previous layout has no shard: give at least one database"
                        .to_owned(),
                });
            }
            if old.len() > 1 || old.iter().any(|(name, _)| !name.is_empty()) {
                limits::check_shards(old.iter().map(|(name, _)| name.as_str()))?;
            }
            check_distinct_databases("previous layout", old)?;
            // A name in both layouts says "this database stayed": it must be the same one.
            for (name, before) in old.iter().filter(|(name, _)| !name.is_empty()) {
                if let Some((_, now)) = self.shards.iter().find(|(new, _)| new == name)
                    && now.database_id() != before.database_id()
                {
                    return Err(Error::InvalidShards {
                        message: format!(
                            "shard name {name:?} names different databases in the previous and \
                             the new layout: a name in both layouts must be the same database \
                             (give the new one a new name)"
                        ),
                    });
                }
            }
        }
        Ok(self.build_unchecked())
    }

    /// Makes the namespace without checking the names: for names `#[d1_namespace]` checked at
    /// compile time. (SQL quotes table names, so even an unchecked name cannot alter a statement.)
    pub(crate) fn build_unchecked(self) -> D1Namespace<B> {
        let mut builder = self;
        let table = builder.table_name();
        #[cfg(feature = "d1")]
        let edge = builder
            .edge_cache
            .take()
            .map(|(cache, name)| EdgeCache::new(cache.0, &name, &table, &builder.namespace));
        #[cfg(not(feature = "d1"))]
        let edge = None;
        let previous = builder.previous.take().map(|home| match home.kind {
            crate::moving::HomeKind::Shards(old) => {
                // The earlier layout: the same namespace and table, nothing more.
                let mut layout = D1Namespace::builder_of(old)
                    .namespace(builder.namespace.clone())
                    .table(table.clone())
                    .auto_create(builder.auto_create);
                layout.clock = Arc::clone(&builder.clock);
                crate::moving::Previous::Layout(layout.build_unchecked())
            }
            #[cfg(feature = "d1")]
            crate::moving::HomeKind::Kv(kv) => crate::moving::Previous::Kv(kv),
        });
        D1Namespace::assemble(builder, table, edge, previous)
    }

    fn table_name(&self) -> String {
        self.table
            .clone()
            .unwrap_or_else(|| default_table(&self.namespace))
    }
}

/// A layout gives each database once: two shards on one database would list every key twice,
/// and a move would remove a key's only copy as its old one. Databases are told apart by their
/// ids where the backend says its ids are identities (a SQLite file by device and inode, a D1
/// binding by its object); D1 sessions share one id, and are told apart by name only.
fn check_distinct_databases<B: Backend>(layout: &str, shards: &[(String, B)]) -> Result<(), Error> {
    for (at, (name, backend)) in shards.iter().enumerate() {
        if !backend.id_is_identity() {
            continue;
        }
        let id = backend.database_id();
        let twin = shards[..at]
            .iter()
            .find(|(_, other)| other.id_is_identity() && other.database_id() == id);
        if let Some((first, _)) = twin {
            return Err(Error::InvalidShards {
                message: format!(
                    "shards {first:?} and {name:?} of the {layout} are the same database (a \
                     path, symlink or hard link to one file, or one binding given twice): give \
                     each database once"
                ),
            });
        }
    }
    Ok(())
}

impl<B> fmt::Debug for D1NamespaceBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D1NamespaceBuilder")
            .field("namespace", &self.namespace)
            .field("table", &self.table)
            .field("auto_create", &self.auto_create)
            .finish_non_exhaustive()
    }
}
