//! Atomic commits (A6-A13) and counters (A14): checks and mutations sent as one D1 batch, which
//! D1 runs as one transaction.
//!
//! The batch is: one statement that fails when any check does not hold (`Sql::check`), then each
//! mutation's statements in order. A failed check, and a sum on a value that is not an integer
//! or that overflows, raise an error inside the batch, so the transaction rolls back and nothing
//! is written; the error's text carries a marker that tells which (see the `sql` module).

use std::collections::HashSet;

use serde::Serialize;

use crate::backend::{Backend, Statement, Value};
use crate::error::{DatabaseError, Error, Operation};
use crate::limits::{self, MAX_ATOMIC_BYTES, MAX_ATOMIC_CHECKS, MAX_ATOMIC_MUTATIONS};
use crate::namespace::{D1Namespace, to_i64};
use crate::put::{CheckedPut, PutOptionsBuilder};
use crate::sql::{ABORT_MARKER, Counter};
use crate::version::Versionstamp;

/// Options of one mutation of an [`AtomicOperation`] or of
/// [`increment_with`](D1Namespace::increment_with): metadata, `expiration` and
/// `expiration_ttl`, with the rules of a plain put (K10-K15).
///
/// On a sum, min or max they apply only when the mutation creates the entry (the key was missing
/// or expired); one on a live entry keeps its metadata and expiration (A13).
///
/// ```
/// use d1ns_runtime::WriteOptions;
///
/// let options = WriteOptions::new().expiration_ttl(60).metadata("hits");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    expiration: Option<u64>,
    expiration_ttl: Option<u64>,
    /// The metadata as JSON, or why it could not be serialized (reported at commit, A8).
    metadata: Option<Result<String, String>>,
}

impl WriteOptions {
    /// No metadata, no expiration.
    pub fn new() -> Self {
        WriteOptions::default()
    }

    /// Expire at this time, in seconds since the Unix epoch; it must be in the future (K14).
    pub fn expiration(mut self, expiration: u64) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Expire this many seconds from now, from 1 up (K14); wins over
    /// [`expiration`](Self::expiration) (K13).
    pub fn expiration_ttl(mut self, expiration_ttl: u64) -> Self {
        self.expiration_ttl = Some(expiration_ttl);
        self
    }

    /// Metadata stored with the value: any JSON of at most 1024 bytes (K10, K11). A value that
    /// cannot be serialized fails the commit (A8).
    pub fn metadata<T: Serialize>(mut self, metadata: T) -> Self {
        self.metadata = Some(serde_json::to_string(&metadata).map_err(|e| e.to_string()));
        self
    }

    /// The metadata as JSON for `key`, `None` for none (or `null`, K10).
    fn metadata_json(&self, key: &str) -> Result<Option<String>, Error> {
        match &self.metadata {
            None => Ok(None),
            Some(Ok(json)) => Ok((json != "null").then(|| json.clone())),
            Some(Err(message)) => Err(Error::Serialize {
                key: key.to_owned(),
                part: "metadata",
                source: <serde_json::Error as serde::ser::Error>::custom(message),
            }),
        }
    }

    /// Applies the options to a put.
    fn apply<B: Backend>(
        &self,
        mut put: PutOptionsBuilder<B>,
        key: &str,
    ) -> Result<PutOptionsBuilder<B>, Error> {
        if let Some(expiration) = self.expiration {
            put = put.expiration(expiration);
        }
        if let Some(ttl) = self.expiration_ttl {
            put = put.expiration_ttl(ttl);
        }
        if let Some(json) = self.metadata_json(key)? {
            put = put.metadata_json(json);
        }
        Ok(put)
    }
}

impl<B: Backend> D1Namespace<B> {
    /// Starts an atomic commit: checks on versionstamps, then mutations, sent together as one
    /// D1 batch (one round trip, one transaction). Either every check holds and every mutation
    /// is applied, or nothing is written (A7).
    ///
    /// The compare-and-swap loop, which loses no update however many requests run it at once:
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// loop {
    ///     let entry = kv.get("visits").json_entry::<u64, ()>().await?;
    ///     let (visits, version) = match entry {
    ///         Some(entry) => (entry.value, Some(entry.version)),
    ///         None => (0, None),
    ///     };
    ///     let committed = kv
    ///         .atomic()
    ///         .check("visits", version)
    ///         .put("visits", visits + 1)
    ///         .commit()
    ///         .await?;
    ///     if committed.is_some() {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(kv.get("visits").json::<u64>().await?, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn atomic(&self) -> AtomicOperation<B> {
        AtomicOperation {
            namespace: self.clone(),
            checks: Vec::new(),
            mutations: Vec::new(),
            error: None,
        }
    }

    /// Adds `delta` to the integer under `key` and returns the new value, in one round trip
    /// (A14). A missing or expired key counts as 0; the value is stored as decimal text, so
    /// `get(key).json::<i64>()` reads it. A live value that is not an integer, or a result
    /// beyond `i64`, is an error and nothing is written (A12).
    ///
    /// ```
    /// # use d1ns_runtime::{D1Namespace, SqliteBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
    /// assert_eq!(kv.increment("views", 1).await?, 1);
    /// assert_eq!(kv.increment("views", 41).await?, 42);
    /// assert_eq!(kv.get("views").text().await?.as_deref(), Some("42"));
    /// # Ok(()) }
    /// ```
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.increment_with(key, delta, WriteOptions::new()).await
    }

    /// [`increment`](Self::increment) with options for an entry it creates: the fixed-window
    /// rate limiter is `increment_with(key, 1, WriteOptions::new().expiration_ttl(60))`, whose
    /// first hit starts a window that later hits do not extend (A13).
    pub async fn increment_with(
        &self,
        key: &str,
        delta: i64,
        options: WriteOptions,
    ) -> Result<i64, Error> {
        let now = self.now_ms();
        let counter = CheckedCounter::new(Counter::Sum, key, delta, &options, now)?;
        // During a move, the counter's current value may still be in the previous home.
        self.promote(&[counter.key.as_str()]).await?;
        let version = Versionstamp::random()?;
        let statement = counter.statement(self, 0, version, now);
        let result = self.run_one(self.shard_of(key), statement).await;
        self.purge_cached(&[&counter.key]).await;
        let result =
            result.map_err(|e| aborted(e, |_| Some((counter.key.clone(), counter.op, delta))))?;
        let value = result
            .rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next());
        match value {
            Some(Value::Text(text)) => text.parse().map_err(|_| returned_not_integer(key, &text)),
            Some(Value::Integer(i)) => Ok(i),
            other => Err(returned_not_integer(key, &format!("{other:?}"))),
        }
    }
}

fn returned_not_integer(key: &str, what: &str) -> Error {
    Error::Database(DatabaseError::new(format!(
        "the sum on key {key:?} returned {what}, not an integer"
    )))
}

/// An atomic commit being built; made by [`D1Namespace::atomic`]. Nothing is sent until
/// [`commit`](Self::commit). Mistakes in its mutations (a bad key, a value too large) are
/// reported by `commit`, before anything is sent (A8).
#[must_use = "an atomic operation does nothing until you .commit().await it"]
pub struct AtomicOperation<B> {
    namespace: D1Namespace<B>,
    checks: Vec<(String, Option<Versionstamp>)>,
    mutations: Vec<Mutation<B>>,
    /// The first mistake of a mutation, reported at commit.
    error: Option<Error>,
}

enum Mutation<B> {
    Put(PutOptionsBuilder<B>),
    Delete(String),
    Counter {
        op: Counter,
        key: String,
        operand: i64,
        options: WriteOptions,
    },
}

impl<B: Backend> AtomicOperation<B> {
    /// The commit holds only if `key` is live with this stamp, or, for `None`, if it is missing
    /// or expired (A6). Checks see the data as it was before this commit's mutations (A7).
    pub fn check(mut self, key: &str, version: Option<Versionstamp>) -> Self {
        self.checks.push((key.to_owned(), version));
        self
    }

    /// Writes `value` as [`D1Namespace::put`] does (A11): a string as is, a number or boolean as
    /// its text, anything else as JSON.
    pub fn put<T: Serialize>(self, key: &str, value: T) -> Self {
        self.put_with(key, value, WriteOptions::new())
    }

    /// [`put`](Self::put) with metadata and expiration.
    pub fn put_with<T: Serialize>(self, key: &str, value: T, options: WriteOptions) -> Self {
        let put = self.namespace.put(key, value);
        self.push_put(put.and_then(|put| options.apply(put, key)))
    }

    /// Writes bytes as [`D1Namespace::put_bytes`] does (A11).
    pub fn put_bytes(self, key: &str, value: &[u8]) -> Self {
        self.put_bytes_with(key, value, WriteOptions::new())
    }

    /// [`put_bytes`](Self::put_bytes) with metadata and expiration.
    pub fn put_bytes_with(self, key: &str, value: &[u8], options: WriteOptions) -> Self {
        let put = self.namespace.put_value(key, Value::Blob(value.to_vec()));
        self.push_put(options.apply(put, key))
    }

    /// A put made elsewhere (a typed namespace's), or the mistake that stopped it.
    pub(crate) fn push_put(mut self, put: Result<PutOptionsBuilder<B>, Error>) -> Self {
        match put {
            Ok(put) => self.mutations.push(Mutation::Put(put)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Deletes `key`; a missing key is fine (A11, K24).
    pub fn delete(mut self, key: &str) -> Self {
        self.mutations.push(Mutation::Delete(key.to_owned()));
        self
    }

    /// Adds `delta` to the integer under `key`; a missing or expired key counts as 0 (A12).
    /// The result is stored as decimal text. A live value that is not an integer, or a result
    /// beyond `i64`, fails the commit and nothing is written.
    pub fn sum(self, key: &str, delta: i64) -> Self {
        self.counter(Counter::Sum, key, delta, WriteOptions::new())
    }

    /// [`sum`](Self::sum) with options for an entry it creates (A13).
    pub fn sum_with(self, key: &str, delta: i64, options: WriteOptions) -> Self {
        self.counter(Counter::Sum, key, delta, options)
    }

    /// Keeps the smaller of the integer under `key` and `value`; a missing or expired key takes
    /// `value` (A12).
    pub fn min(self, key: &str, value: i64) -> Self {
        self.counter(Counter::Min, key, value, WriteOptions::new())
    }

    /// [`min`](Self::min) with options for an entry it creates (A13).
    pub fn min_with(self, key: &str, value: i64, options: WriteOptions) -> Self {
        self.counter(Counter::Min, key, value, options)
    }

    /// Keeps the larger of the integer under `key` and `value`; a missing or expired key takes
    /// `value` (A12).
    pub fn max(self, key: &str, value: i64) -> Self {
        self.counter(Counter::Max, key, value, WriteOptions::new())
    }

    /// [`max`](Self::max) with options for an entry it creates (A13).
    pub fn max_with(self, key: &str, value: i64, options: WriteOptions) -> Self {
        self.counter(Counter::Max, key, value, options)
    }

    fn counter(mut self, op: Counter, key: &str, operand: i64, options: WriteOptions) -> Self {
        self.mutations.push(Mutation::Counter {
            op,
            key: key.to_owned(),
            operand,
            options,
        });
        self
    }

    /// Sends the checks and mutations as one batch. `Some(stamp)`: every check held and every
    /// mutation was applied, in order (A9), and each written entry now has `stamp`. `None`: a
    /// check failed and nothing was written (A7). An error (a mutation that breaks a KV rule,
    /// a sum on a value that is not an integer, the database failing) also writes nothing.
    pub async fn commit(self) -> Result<Option<Versionstamp>, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let ns = self.namespace;
        if self.checks.len() > MAX_ATOMIC_CHECKS {
            return Err(too_large("checks", self.checks.len(), MAX_ATOMIC_CHECKS));
        }
        if self.mutations.len() > MAX_ATOMIC_MUTATIONS {
            return Err(too_large(
                "mutations",
                self.mutations.len(),
                MAX_ATOMIC_MUTATIONS,
            ));
        }
        for (key, _) in &self.checks {
            limits::check_key(Operation::Get, key)?;
        }
        let now = ns.now_ms();
        // Every mutation checked before anything is sent (A8).
        let mut checked = Vec::with_capacity(self.mutations.len());
        let mut bytes = 0usize;
        for mutation in self.mutations {
            let mutation = match mutation {
                Mutation::Put(put) => Checked::Put(put.check(now)?),
                Mutation::Delete(key) => {
                    limits::check_key(Operation::Delete, &key)?;
                    Checked::Delete(key)
                }
                Mutation::Counter {
                    op,
                    key,
                    operand,
                    options,
                } => Checked::Counter(CheckedCounter::new(op, &key, operand, &options, now)?),
            };
            bytes = bytes.saturating_add(mutation.len());
            checked.push(mutation);
        }
        if bytes > MAX_ATOMIC_BYTES {
            return Err(too_large("bytes", bytes, MAX_ATOMIC_BYTES));
        }
        // S6: one batch on one shard, or nothing at all.
        let keys = self
            .checks
            .iter()
            .map(|(key, _)| key.as_str())
            .chain(checked.iter().map(Checked::key));
        let shard = ns.shard_of_all(keys)?;
        let version = Versionstamp::random()?;
        if self.checks.is_empty() && checked.is_empty() {
            return Ok(Some(version));
        }
        // During a move, what the checks and counters look at may still be in the previous home.
        let promoted: Vec<&str> = self
            .checks
            .iter()
            .map(|(key, _)| key.as_str())
            .chain(checked.iter().filter_map(|mutation| match mutation {
                Checked::Counter(counter) => Some(counter.key.as_str()),
                _ => None,
            }))
            .collect();
        ns.promote(&promoted).await?;

        let mut statements = Vec::new();
        if !self.checks.is_empty() {
            let checks: Vec<(&str, Option<String>)> = self
                .checks
                .iter()
                .map(|(key, version)| (key.as_str(), version.map(|v| v.to_string())))
                .collect();
            let checks = serde_json::to_string(&checks).map_err(|source| Error::Serialize {
                key: self.checks[0].0.clone(),
                part: "key",
                source,
            })?;
            statements.push(Statement {
                sql: &ns.sql().check,
                params: vec![
                    ns.namespace_param(),
                    Value::Text(checks),
                    Value::Integer(to_i64(now)),
                ],
            });
        }
        // Every key the commit writes or deletes, for the edge cache (R8).
        let touched: Vec<String> = checked.iter().map(|m| m.key().to_owned()).collect();
        // What an abort in mutation `i` is about.
        let mut counters = Vec::with_capacity(checked.len());
        // Keys this commit has written so far: writing one again needs its version cleared.
        let mut written = HashSet::new();
        for (index, mutation) in checked.into_iter().enumerate() {
            if let Some(key) = mutation.written_key()
                && !written.insert(key.to_owned())
            {
                statements.push(Statement {
                    sql: &ns.sql().clear_version,
                    params: vec![ns.namespace_param(), Value::Text(key.to_owned())],
                });
            }
            match mutation {
                Checked::Put(put) => {
                    counters.push(None);
                    statements.extend(put.statements(&ns, version));
                }
                Checked::Delete(key) => {
                    counters.push(None);
                    statements.push(ns.delete_statement(&key));
                }
                Checked::Counter(counter) => {
                    let statement = counter.statement(&ns, index, version, now);
                    counters.push(Some((counter.key, counter.op, counter.operand)));
                    statements.push(statement);
                }
            }
        }
        let result = ns.run(shard, statements).await;
        let touched: Vec<&str> = touched.iter().map(String::as_str).collect();
        ns.purge_cached(&touched).await;
        match result {
            Ok(_) => Ok(Some(version)),
            Err(e) if abort_reason(&e).is_some_and(|(reason, _)| reason == "check") => Ok(None),
            Err(e) => Err(aborted(e, |index| counters.get(index).cloned().flatten())),
        }
    }
}

/// A mutation that passed the KV rules.
enum Checked {
    Put(CheckedPut),
    Delete(String),
    Counter(CheckedCounter),
}

impl Checked {
    /// The key the mutation writes or deletes.
    fn key(&self) -> &str {
        match self {
            Checked::Put(put) => &put.key,
            Checked::Delete(key) => key,
            Checked::Counter(counter) => &counter.key,
        }
    }

    /// The key a put or counter writes (a delete writes none).
    fn written_key(&self) -> Option<&str> {
        match self {
            Checked::Put(put) => Some(&put.key),
            Checked::Delete(_) => None,
            Checked::Counter(counter) => Some(&counter.key),
        }
    }

    fn len(&self) -> usize {
        match self {
            Checked::Put(put) => put.len(),
            Checked::Delete(key) => key.len(),
            Checked::Counter(counter) => {
                counter.key.len() + counter.metadata.as_ref().map_or(0, String::len)
            }
        }
    }
}

/// A sum, min or max that passed the KV rules.
struct CheckedCounter {
    op: Counter,
    key: String,
    operand: i64,
    metadata: Option<String>,
    /// In milliseconds.
    expiration: Option<u64>,
}

impl CheckedCounter {
    fn new(
        op: Counter,
        key: &str,
        operand: i64,
        options: &WriteOptions,
        now: u64,
    ) -> Result<CheckedCounter, Error> {
        limits::check_key(Operation::Put, key)?;
        let metadata = options.metadata_json(key)?;
        if let Some(metadata) = &metadata {
            limits::check_metadata_len(key, metadata.len())?;
        }
        let expiration =
            limits::expiration_ms(key, now, options.expiration, options.expiration_ttl)?;
        Ok(CheckedCounter {
            op,
            key: key.to_owned(),
            operand,
            metadata,
            expiration,
        })
    }

    /// The statement, as the mutation numbered `index` of its commit.
    fn statement<'s, B: Backend>(
        &self,
        ns: &'s D1Namespace<B>,
        index: usize,
        version: Versionstamp,
        now: u64,
    ) -> Statement<'s> {
        let sql = match self.op {
            Counter::Sum => &ns.sql().counter[0],
            Counter::Min => &ns.sql().counter[1],
            Counter::Max => &ns.sql().counter[2],
        };
        Statement {
            sql,
            params: vec![
                ns.namespace_param(),
                Value::Text(self.key.clone()),
                // As text: D1 binds numbers as doubles, exact only below 2^53 (A5).
                Value::Text(self.operand.to_string()),
                self.metadata.clone().map_or(Value::Null, Value::Text),
                self.expiration
                    .map_or(Value::Null, |ms| Value::Integer(to_i64(ms))),
                Value::Text(version.to_string()),
                Value::Integer(to_i64(now)),
                Value::Text(index.to_string()),
            ],
        }
    }
}

fn too_large(what: &'static str, count: usize, limit: usize) -> Error {
    Error::CommitTooLarge { what, count, limit }
}

/// The reason and mutation number of an error raised by a commit's own statements.
/// Whether a batch stopped because a check failed (A7; the mover's copy-if-absent too).
pub(crate) fn is_failed_check(e: &Error) -> bool {
    abort_reason(e).is_some_and(|(reason, _)| reason == "check")
}

fn abort_reason(e: &Error) -> Option<(&str, Option<usize>)> {
    let Error::Database(e) = e else { return None };
    let rest = e.message().split(ABORT_MARKER).nth(1)?;
    let (reason, rest) = rest.split_once(':')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((reason, digits.parse().ok()))
}

/// The error of a commit whose batch failed: a sum's own abort becomes [`Error::NotAnInteger`]
/// or [`Error::Overflow`], naming the key of mutation `i` as `counter(i)` describes it.
fn aborted(e: Error, counter: impl Fn(usize) -> Option<(String, Counter, i64)>) -> Error {
    let Some((reason, Some(index))) = abort_reason(&e) else {
        return e;
    };
    match (reason, counter(index)) {
        ("not-integer", Some((key, op, _))) => Error::NotAnInteger {
            key,
            operation: op.name(),
        },
        ("overflow", Some((key, _, delta))) => Error::Overflow { key, delta },
        _ => e,
    }
}

impl<B> std::fmt::Debug for AtomicOperation<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicOperation")
            .field("namespace", &self.namespace)
            .field("checks", &self.checks)
            .field("mutations", &self.mutations.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_markers_are_read_in_sqlites_and_d1s_words() {
        let reason = |message: &str| {
            let e = Error::Database(DatabaseError::new(message));
            abort_reason(&e).map(|(r, i)| (r.to_owned(), i))
        };
        assert_eq!(
            reason("bad JSON path: 'd1ns-abort:check:'"),
            Some(("check".to_owned(), None))
        );
        assert_eq!(
            reason("D1_ERROR: JSON path error near 'd1ns-abort:overflow:12': SQLITE_ERROR"),
            Some(("overflow".to_owned(), Some(12)))
        );
        assert_eq!(reason("no such table: t"), None);
    }
}
