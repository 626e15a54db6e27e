//! Moving a namespace's data in without downtime (M1-M9): a namespace built with a previous home
//! (an earlier shard layout, or a Workers KV namespace) serves the keys it has not got yet from
//! there, while [`D1Namespace::move_step`] brings them home.
//!
//! - Reads look here first; a key this home has no row for at all is read from the previous home
//!   (M2). A row that is not live (expired, or a tombstone) means the key was here and is gone.
//!   A key of an earlier layout found in neither is looked for here once more: the mover may have
//!   moved it between the two reads. Lists read the previous home first, for the same reason.
//! - Writes go here only (M3); a delete leaves a tombstone (M4), so the previous home's copy never
//!   comes back. Commits and counters first copy their keys here (their checks and sums must see
//!   the value they change).
//! - Lists merge both homes in key order, this home winning and its tombstones hiding (M5).
//! - The mover copies each live key of the previous home here only if this home has no row for it
//!   (M6), and from an earlier layout removes the old copy if it is unchanged since (M8).

use std::collections::HashMap;

use crate::backend::{Backend, Query, Statement, Value, ValueRef};
use crate::error::Error;
use crate::list::{Key, ListResponse};
use crate::namespace::{D1Namespace, to_i64};
use crate::put::CheckedPut;
use crate::rows::{Columns, EntryRows, Found, StoredEntry};
use crate::version::Versionstamp;

/// Where a namespace's keys lived before (M1), for [`D1NamespaceBuilder::previous_home`](crate::D1NamespaceBuilder::previous_home).
pub struct PreviousHome<B> {
    pub(crate) kind: HomeKind<B>,
}

pub(crate) enum HomeKind<B> {
    Shards(Vec<(String, B)>),
    #[cfg(feature = "d1")]
    Kv(worker::send::SendWrapper<worker::kv::KvStore>),
}

impl<B> PreviousHome<B> {
    /// An earlier shard layout of the same namespace and table (resharding): each database with
    /// the name it had. A database in both layouts must have the same name in both: its keys
    /// that stay on it are not moved.
    pub fn shards<N: Into<String>>(shards: impl IntoIterator<Item = (N, B)>) -> Self {
        PreviousHome {
            kind: HomeKind::Shards(
                shards
                    .into_iter()
                    .map(|(name, backend)| (name.into(), backend))
                    .collect(),
            ),
        }
    }

    /// A Workers KV namespace (moving in from KV). Stop writing to it first: d1ns reads it and
    /// never changes it (M7).
    #[cfg(feature = "d1")]
    #[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
    pub fn kv(store: worker::kv::KvStore) -> Self {
        PreviousHome {
            kind: HomeKind::Kv(worker::send::SendWrapper::new(store)),
        }
    }
}

impl<B> std::fmt::Debug for PreviousHome<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            HomeKind::Shards(shards) => f
                .debug_tuple("PreviousHome::Shards")
                .field(&shards.iter().map(|(name, _)| name).collect::<Vec<_>>())
                .finish(),
            #[cfg(feature = "d1")]
            HomeKind::Kv(_) => f.write_str("PreviousHome::Kv"),
        }
    }
}

/// The previous home of a built namespace.
pub(crate) enum Previous<B> {
    /// The earlier layout, as a namespace of its own (same name and table, no previous home).
    Layout(D1Namespace<B>),
    #[cfg(feature = "d1")]
    Kv(worker::send::SendWrapper<worker::kv::KvStore>),
}

/// What one [`D1Namespace::move_step`] did (M6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MoveProgress {
    /// Live keys of the previous home this step looked at.
    pub scanned: u64,
    /// Keys copied here.
    pub copied: u64,
    /// Keys this home already had a row for (written or deleted here since): left as they are.
    pub skipped: u64,
    /// Keys whose old shard is their new shard too: already home.
    pub in_place: u64,
    /// Old copies removed from the earlier layout after the copy (M8).
    pub removed: u64,
    /// Old copies left in the earlier layout because they were written after this home got its
    /// copy (a process still on the old layout): that write is not moved. Stop such processes;
    /// the next run of the mover removes these old copies (this home's value stays).
    pub changed: u64,
    /// Where the next step starts; `None` once done.
    pub cursor: Option<String>,
    /// Every key of the previous home has been looked at.
    pub done: bool,
}

impl MoveProgress {
    /// Adds a later step to a running total: its counts are added, its cursor and `done` kept.
    ///
    /// ```
    /// use d1ns_runtime::MoveProgress;
    ///
    /// let mut total = MoveProgress::default();
    /// let mut step = MoveProgress::default();
    /// step.copied = 3;
    /// step.done = true;
    /// total.add(&step);
    /// total.add(&step);
    /// assert_eq!((total.copied, total.done), (6, true));
    /// ```
    pub fn add(&mut self, step: &MoveProgress) {
        self.scanned += step.scanned;
        self.copied += step.copied;
        self.skipped += step.skipped;
        self.in_place += step.in_place;
        self.removed += step.removed;
        self.changed += step.changed;
        self.cursor.clone_from(&step.cursor);
        self.done = step.done;
    }
}

impl<B: Backend> D1Namespace<B> {
    /// What this home has under `key` on `shard` (one statement, one row read).
    pub(crate) async fn found(&self, shard: usize, key: &str, now: u64) -> Result<Found, Error> {
        let params = [
            ValueRef::Text(self.namespace()),
            ValueRef::Text(key),
            ValueRef::Integer(to_i64(now)),
        ];
        let query = Query {
            sql: &self.sql().moving.get,
            params: &params,
        };
        let rows = self
            .read(shard, &[query], || EntryRows::new(key, Columns::ALL))
            .await?;
        rows.finish()
    }

    /// The live entries of `keys` in the previous home (M2): one round trip per old shard, or
    /// per key in Workers KV. Keys whose old shard is their shard here are not read again.
    pub(crate) async fn read_previous(
        &self,
        keys: &[&str],
        now: u64,
    ) -> Result<HashMap<String, StoredEntry>, Error> {
        match &self.inner.previous {
            None => Ok(HashMap::new()),
            Some(Previous::Layout(old)) => {
                let mut per_shard: Vec<Vec<&str>> = vec![Vec::new(); old.shards().len()];
                for &key in keys {
                    let shard = old.shard_of(key);
                    if !self.same_home(old, key) {
                        per_shard[shard].push(key);
                    }
                }
                let reads = per_shard
                    .iter()
                    .enumerate()
                    .filter(|(_, keys)| !keys.is_empty())
                    .map(|(shard, keys)| old.read_bulk(shard, keys, now, Columns::ALL));
                let mut found = HashMap::new();
                for result in crate::join::join_all(reads.collect()).await {
                    found.extend(result?.0);
                }
                Ok(found)
            }
            #[cfg(feature = "d1")]
            Some(Previous::Kv(kv)) => {
                let reads = keys.iter().map(|key| kv_read(kv, key));
                let mut found = HashMap::new();
                for (key, entry) in keys
                    .iter()
                    .zip(crate::join::join_all(reads.collect()).await)
                {
                    if let Some(entry) = entry? {
                        found.insert((*key).to_owned(), entry);
                    }
                }
                Ok(found)
            }
        }
    }

    /// Whether `key`'s shard in the earlier layout `old` is its shard here: the same name, or
    /// the same database by its id. Then there is nothing to read there or to move. Ids tell
    /// databases apart only when no two shards of a layout share one (all D1 sessions share
    /// one): otherwise the names alone decide.
    fn same_home(&self, old: &D1Namespace<B>, key: &str) -> bool {
        let new = &self.inner.shards[self.shard_of(key)];
        let was = &old.inner.shards[old.shard_of(key)];
        if !new.name.is_empty() && new.name == was.name {
            return true;
        }
        let distinct = |shards: &[crate::namespace::Shard<B>]| {
            let ids: std::collections::HashSet<u64> = shards
                .iter()
                .map(|shard| shard.backend.database_id())
                .collect();
            ids.len() == shards.len()
        };
        distinct(&self.inner.shards)
            && distinct(&old.inner.shards)
            && new.backend.database_id() == was.backend.database_id()
    }

    /// Whether the mover may bring `key` here between a read that found no row here and one
    /// that found nothing in the previous home: from an earlier layout, which it empties as it
    /// goes (M8), unless the key stays on the same database. Workers KV is never changed.
    pub(crate) fn may_move_meanwhile(&self, key: &str) -> bool {
        match &self.inner.previous {
            Some(Previous::Layout(old)) => !self.same_home(old, key),
            _ => false,
        }
    }

    /// The statement of a delete: during a move, a tombstone (M4).
    pub(crate) fn delete_statement(&self, key: &str) -> Statement<'_> {
        let sql = if self.inner.previous.is_some() {
            &self.sql().moving.tombstone
        } else {
            &self.sql().delete
        };
        Statement {
            sql,
            params: vec![self.namespace_param(), Value::Text(key.to_owned())],
        }
    }

    /// Brings `keys` here from the previous home if this home has no row for them yet, so that
    /// a commit's checks and sums see the value they change. Nothing to do without a previous
    /// home.
    pub(crate) async fn promote(&self, keys: &[&str]) -> Result<(), Error> {
        if self.inner.previous.is_none() {
            return Ok(());
        }
        let now = self.now_ms();
        let promotions = keys.iter().map(|&key| async move {
            let shard = self.shard_of(key);
            if !matches!(self.found(shard, key, now).await?, Found::Absent) {
                return Ok(());
            }
            if let Some(entry) = self.read_previous(&[key], now).await?.remove(key) {
                self.copy_if_absent(shard, key, entry, now).await?;
            }
            Ok::<(), Error>(())
        });
        for result in crate::join::join_all(promotions.collect()).await {
            result?;
        }
        Ok(())
    }

    /// Writes `entry` under `key` on `shard` unless this home has any row for the key (M6), in
    /// one batch; keeps its versionstamp when it has one. `false`: there was a row (or the entry
    /// has expired), nothing written.
    async fn copy_if_absent(
        &self,
        shard: usize,
        key: &str,
        entry: StoredEntry,
        now: u64,
    ) -> Result<bool, Error> {
        if entry
            .expiration_ms
            .is_some_and(|expiration| expiration <= now)
        {
            return Ok(false);
        }
        let version = match &entry.version {
            Value::Text(text) => text.parse().or_else(|_| Versionstamp::random())?,
            _ => Versionstamp::random()?,
        };
        let put = CheckedPut::copied(
            key.to_owned(),
            entry.value,
            entry.metadata,
            entry.expiration_ms,
        );
        let mut statements = vec![Statement {
            sql: &self.sql().moving.check_absent,
            params: vec![self.namespace_param(), Value::Text(key.to_owned())],
        }];
        statements.extend(put.statements(self, version));
        match self.run(shard, statements).await {
            Ok(_) => Ok(true),
            Err(e) if crate::atomic::is_failed_check(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One bounded step of the move (M6): looks at up to `max_keys` (1 to 1,000) live keys of
    /// the previous home from `cursor` (`None` for the start), copies each here unless this
    /// home has a row for it, and from an earlier layout removes the old copy if it is unchanged
    /// since it was read (M8). Run it again from the returned cursor until `done`; it may be
    /// re-run from any cursor after a crash, and runs while traffic flows. Each key is read and
    /// written once (M9); a key in Workers KV costs one KV get.
    ///
    /// When it reports `done` and the previous home has not been written since (stop writing to
    /// it first), drop the previous home from the builder (M7); `purge_expired` then removes the
    /// tombstones too.
    ///
    /// ```
    /// use d1ns_runtime::{D1Namespace, PreviousHome, SqliteBackend};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), d1ns_runtime::Error> {
    /// # let dir = std::env::temp_dir().join(format!("d1ns-move-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = |name: &str| dir.join(name);
    /// let old = D1Namespace::new(SqliteBackend::open(path("a.db"))?);
    /// old.put("user:1", "Ada")?.await?;
    /// // The same database as "a" keeps its keys; the rest move to "b".
    /// let kv = D1Namespace::sharded([
    ///     ("a", SqliteBackend::open(path("a.db"))?),
    ///     ("b", SqliteBackend::open(path("b.db"))?),
    /// ])
    /// .previous_home(PreviousHome::shards([("a", SqliteBackend::open(path("a.db"))?)]))
    /// .build()?;
    /// assert_eq!(kv.get("user:1").text().await?.as_deref(), Some("Ada")); // wherever it is
    /// let mut cursor = None;
    /// loop {
    ///     let step = kv.move_step(cursor, 100).await?;
    ///     if step.done { break; }
    ///     cursor = step.cursor;
    /// }
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    pub async fn move_step(
        &self,
        cursor: Option<String>,
        max_keys: u64,
    ) -> Result<MoveProgress, Error> {
        let limit = crate::limits::list_limit(Some(max_keys))?;
        let mut progress = MoveProgress::default();
        match &self.inner.previous {
            None => {
                progress.done = true;
                Ok(progress)
            }
            Some(Previous::Layout(old)) => {
                let page = old.list_here_live("", limit, cursor.as_deref()).await?;
                let now = self.now_ms();
                let moves = page
                    .keys
                    .iter()
                    .map(|key| self.move_from_layout(old, &key.name, now));
                for outcome in crate::join::join_all(moves.collect()).await {
                    progress.scanned += 1;
                    let removed = match outcome? {
                        Moved::InPlace => {
                            progress.in_place += 1;
                            continue;
                        }
                        Moved::Gone => continue,
                        Moved::Copied { removed } => {
                            progress.copied += 1;
                            removed
                        }
                        Moved::Skipped { removed } => {
                            progress.skipped += 1;
                            removed
                        }
                    };
                    if removed {
                        progress.removed += 1;
                    } else {
                        progress.changed += 1;
                    }
                }
                progress.cursor = page.cursor;
                progress.done = page.list_complete;
                Ok(progress)
            }
            #[cfg(feature = "d1")]
            Some(Previous::Kv(kv)) => {
                let page = kv_list(kv, None, cursor, limit).await?;
                let now = self.now_ms();
                let copies = page.keys.iter().map(|key| self.move_from_kv(kv, key, now));
                for outcome in crate::join::join_all(copies.collect()).await {
                    progress.scanned += 1;
                    match outcome? {
                        Some(true) => progress.copied += 1,
                        Some(false) => progress.skipped += 1,
                        None => {}
                    }
                }
                progress.cursor = page.cursor;
                progress.done = page.list_complete;
                Ok(progress)
            }
        }
    }

    /// Moves one key of the earlier layout here: copy if absent, then remove the old copy if
    /// unchanged (M8).
    async fn move_from_layout(
        &self,
        old: &D1Namespace<B>,
        key: &str,
        now: u64,
    ) -> Result<Moved, Error> {
        if self.same_home(old, key) {
            return Ok(Moved::InPlace);
        }
        let old_shard = old.shard_of(key);
        let Some(entry) = old.read_entry(key, now, Columns::ALL).await? else {
            return Ok(Moved::Gone);
        };
        let version = entry.version.clone();
        let copied = self
            .copy_if_absent(self.shard_of(key), key, entry, now)
            .await?;
        let statement = Statement {
            sql: &old.sql().moving.delete_if_unchanged,
            params: vec![old.namespace_param(), Value::Text(key.to_owned()), version],
        };
        let mut removed = !old.run_one(old_shard, statement).await?.rows.is_empty();
        if !removed {
            // Changed since it was read, or removed already (by another mover running at once).
            removed = !matches!(old.found(old_shard, key, now).await?, Found::Live(_));
        }
        Ok(if copied {
            Moved::Copied { removed }
        } else {
            Moved::Skipped { removed }
        })
    }

    /// Copies one key of Workers KV here if absent: `None` when it is gone from KV meanwhile.
    #[cfg(feature = "d1")]
    async fn move_from_kv(
        &self,
        kv: &worker::kv::KvStore,
        key: &worker::kv::Key,
        now: u64,
    ) -> Result<Option<bool>, Error> {
        let Some(value) = kv_value(kv, &key.name).await? else {
            return Ok(None);
        };
        let entry = StoredEntry {
            value,
            metadata: key.metadata.as_ref().map(|m| m.to_string()),
            expiration_ms: key.expiration.map(|seconds| seconds.saturating_mul(1000)),
            version: Value::Null,
        };
        let shard = self.shard_of(&key.name);
        self.copy_if_absent(shard, &key.name, entry, now)
            .await
            .map(Some)
    }

    /// A page of the list during a move (M5): both homes merged in key order, this home winning
    /// and its rows that are not live hiding the key. The cursor carries, besides the last key,
    /// where the previous home's own listing stands.
    pub(crate) async fn list_moving(
        &self,
        prefix: &str,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<ListResponse, Error> {
        let (mut after, mut state) = crate::list::decode_moving_cursor(cursor)?;
        let mut out: Vec<Key> = Vec::new();
        let wanted = limit as usize + 1;
        let mut final_state;
        loop {
            final_state = state.clone();
            let want = (wanted - out.len()) as u64;
            // The previous home first: a key the mover brings here in between is then seen
            // here, whereas read the other way round it would be in neither.
            let there = self
                .list_previous(prefix, after.as_deref(), state.clone(), want)
                .await?;
            let here = self.list_here(prefix, after.as_deref(), want).await?;
            // Up to where both homes' keys are known: the lower of the two sides' bounds, none
            // when both are read to their end.
            let boundary = [
                here.known_to.clone(),
                there
                    .keys
                    .last()
                    .filter(|_| !there.complete)
                    .map(|key| key.name.clone()),
            ]
            .into_iter()
            .flatten()
            .min();
            let within = |name: &str| boundary.as_deref().is_none_or(|bound| name <= bound);
            let mut live_here: HashMap<String, Option<Key>> = HashMap::new();
            for (key, live) in here.rows {
                if within(&key.name) {
                    let name = key.name.clone();
                    live_here.insert(name, live.then_some(key));
                }
            }
            let mut merged: Vec<Key> = live_here.values().flatten().cloned().collect();
            merged.extend(
                there
                    .keys
                    .into_iter()
                    .filter(|key| within(&key.name) && !live_here.contains_key(&key.name)),
            );
            merged.sort_by(|a, b| a.name.cmp(&b.name));
            for key in merged {
                if out.len() == wanted {
                    break;
                }
                out.push(key);
            }
            match boundary {
                Some(bound) if out.len() < wanted => {
                    after = Some(bound);
                    state = there.state;
                }
                _ => break,
            }
        }
        let list_complete = out.len() <= limit as usize;
        out.truncate(limit as usize);
        let cursor = match out.last() {
            Some(last) if !list_complete => Some(crate::list::encode_moving_cursor(
                &last.name,
                final_state.as_deref(),
            )),
            _ => None,
        };
        Ok(ListResponse {
            keys: out,
            list_complete,
            cursor,
        })
    }

    /// This home's rows after `after` with `prefix`, live or not, up to `want` per shard,
    /// merged in key order.
    async fn list_here(
        &self,
        prefix: &str,
        after: Option<&str>,
        want: u64,
    ) -> Result<HerePage, Error> {
        let low = match after {
            Some(after) if after >= prefix => format!("{after}\0"),
            _ => prefix.to_owned(),
        };
        let high = crate::list::prefix_end(prefix);
        let now = self.now_ms();
        let pages = (0..self.shards().len()).map(|shard| {
            let statement = Statement {
                sql: &self.sql().moving.list,
                params: vec![
                    self.namespace_param(),
                    Value::Text(low.clone()),
                    Value::Integer(to_i64(now)),
                    Value::Text(high.clone()),
                    Value::Integer(to_i64(want)),
                ],
            };
            self.run_one(shard, statement)
        });
        let mut rows = Vec::new();
        // The last row of each shard that may have more: this home is known up to the lowest.
        let mut full_lasts = Vec::new();
        for (shard, result) in crate::join::join_all(pages.collect())
            .await
            .into_iter()
            .enumerate()
        {
            let shard_rows = result?.rows;
            let full = shard_rows.len() as u64 >= want;
            let mut last = None;
            for row in shard_rows {
                let [name, expiration, metadata, live] = crate::rows::columns(row)?;
                let Value::Text(name) = name else { continue };
                last = Some(name.clone());
                // A database of both layouts also holds old copies of keys placed elsewhere
                // here: the previous home's listing has them, and this home's row wins.
                if self.shard_of(&name) != shard {
                    continue;
                }
                let metadata = crate::get::metadata(&name, crate::rows::text_column(metadata))?;
                let live = live.as_u64() == Some(1);
                rows.push((
                    Key {
                        name,
                        expiration: expiration.as_u64().map(crate::limits::expiration_seconds),
                        metadata,
                    },
                    live,
                ));
            }
            if full && let Some(last) = last {
                full_lasts.push(last);
            }
        }
        rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        // Only rows up to the lowest last row of a shard that may have more are known to be all
        // of this home's rows in that range (rows of keys placed elsewhere count: they bound
        // the shard's read even though they are skipped).
        let known_to = full_lasts.into_iter().min();
        if let Some(bound) = &known_to {
            rows.retain(|(key, _)| key.name <= *bound);
        }
        Ok(HerePage { rows, known_to })
    }

    /// The previous home's live keys after `after` with `prefix`, at most `want` (a Workers KV
    /// page at most), and where its listing stands.
    #[cfg_attr(not(feature = "d1"), allow(unused_variables))]
    async fn list_previous(
        &self,
        prefix: &str,
        after: Option<&str>,
        state: Option<String>,
        want: u64,
    ) -> Result<PreviousPage, Error> {
        match &self.inner.previous {
            None => Ok(PreviousPage {
                keys: Vec::new(),
                complete: true,
                state: None,
            }),
            Some(Previous::Layout(old)) => {
                let cursor = after.map(crate::list::encode_cursor);
                let limit = want.clamp(1, crate::limits::MAX_LIST_LIMIT);
                let page = old.list_here_live(prefix, limit, cursor.as_deref()).await?;
                Ok(PreviousPage {
                    keys: page.keys,
                    complete: page.list_complete,
                    state: None,
                })
            }
            #[cfg(feature = "d1")]
            Some(Previous::Kv(kv)) => {
                // KV lists from its own cursors only: from the page where the listing stands,
                // skipping what this listing has passed.
                let mut cursor = state;
                loop {
                    let page = kv_list(kv, Some(prefix), cursor.clone(), 1000).await?;
                    let keys: Vec<Key> = page
                        .keys
                        .into_iter()
                        .filter(|key| after.is_none_or(|after| key.name.as_str() > after))
                        .map(|key| Key {
                            name: key.name,
                            expiration: key.expiration,
                            metadata: key.metadata,
                        })
                        .collect();
                    if !keys.is_empty() || page.list_complete {
                        return Ok(PreviousPage {
                            keys,
                            complete: page.list_complete,
                            state: cursor,
                        });
                    }
                    cursor = page.cursor;
                }
            }
        }
    }
}

/// What moving one key of an earlier layout did.
enum Moved {
    InPlace,
    Gone,
    Copied { removed: bool },
    Skipped { removed: bool },
}

struct HerePage {
    /// Keys with whether they are live.
    rows: Vec<(Key, bool)>,
    /// The key up to which this home is read; `None` when read to its end.
    known_to: Option<String>,
}

struct PreviousPage {
    keys: Vec<Key>,
    complete: bool,
    /// Where the previous home's own listing stands (a Workers KV cursor).
    state: Option<String>,
}

/// KV's error, as d1ns reports a failing previous home.
#[cfg(feature = "d1")]
fn kv_error(e: worker::kv::KvError) -> Error {
    Error::Database(crate::error::DatabaseError::new(format!(
        "the previous home (Workers KV) failed: {e}"
    )))
}

/// A value read from Workers KV, byte for byte (KV's bulk get has no binary form): text when it
/// is UTF-8, bytes otherwise.
#[cfg(feature = "d1")]
async fn kv_value(kv: &worker::kv::KvStore, key: &str) -> Result<Option<Value>, Error> {
    let bytes = worker::send::SendFuture::new(kv.get(key).bytes())
        .await
        .map_err(kv_error)?;
    Ok(bytes.map(|bytes| match String::from_utf8(bytes) {
        Ok(text) => Value::Text(text),
        Err(e) => Value::Blob(e.into_bytes()),
    }))
}

/// A key of Workers KV with its metadata and expiration (KV's get does not tell the expiration:
/// a one-key list does, at the same time).
#[cfg(feature = "d1")]
async fn kv_read(kv: &worker::kv::KvStore, key: &str) -> Result<Option<StoredEntry>, Error> {
    let get = worker::send::SendFuture::new(kv.get(key).bytes_with_metadata::<serde_json::Value>());
    let listed = kv_list(kv, Some(key), None, 1);
    let (got, listed) = futures_pair(get, listed).await;
    let (bytes, metadata) = got.map_err(kv_error)?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let expiration = listed?
        .keys
        .into_iter()
        .find(|listed| listed.name == key)
        .and_then(|listed| listed.expiration);
    Ok(Some(StoredEntry {
        value: match String::from_utf8(bytes) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Blob(e.into_bytes()),
        },
        metadata: metadata.map(|m| m.to_string()),
        expiration_ms: expiration.map(|seconds| seconds.saturating_mul(1000)),
        version: Value::Null,
    }))
}

/// One page of a Workers KV list.
#[cfg(feature = "d1")]
async fn kv_list(
    kv: &worker::kv::KvStore,
    prefix: Option<&str>,
    cursor: Option<String>,
    limit: u64,
) -> Result<worker::kv::ListResponse, Error> {
    let mut list = kv.list().limit(limit);
    if let Some(prefix) = prefix {
        list = list.prefix(prefix.to_owned());
    }
    if let Some(cursor) = cursor {
        list = list.cursor(cursor);
    }
    worker::send::SendFuture::new(list.execute())
        .await
        .map_err(kv_error)
}

/// Two futures at once.
#[cfg(feature = "d1")]
async fn futures_pair<A: std::future::Future, C: std::future::Future>(
    a: A,
    c: C,
) -> (A::Output, C::Output) {
    let mut a = Box::pin(a);
    let mut c = Box::pin(c);
    let mut out_a = None;
    let mut out_c = None;
    std::future::poll_fn(|cx| {
        if out_a.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            out_a = Some(v);
        }
        if out_c.is_none()
            && let std::task::Poll::Ready(v) = c.as_mut().poll(cx)
        {
            out_c = Some(v);
        }
        if out_a.is_some()
            && out_c.is_some()
            && let (Some(a), Some(c)) = (out_a.take(), out_c.take())
        {
            return std::task::Poll::Ready((a, c));
        }
        std::task::Poll::Pending
    })
    .await
}
