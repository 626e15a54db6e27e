//! Moving in without downtime between SQLite shard layouts: rules M1-M9 of
//! `scale-and-move.md`, over database files (a Workers KV previous home is tested in workerd).
//!
//! Every test has its own directory of files, removed when it ends. A "layout" is a list of shard
//! names; shard `x` is the file `x.sqlite`, so a name in both layouts is the same database.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::T0;
use d1ns::{
    Backend, Clock, D1Namespace, DatabaseError, Instrumented, ManualClock, MoveProgress,
    PreviousHome, QueryResult, SqliteBackend, Statement,
};
use serde_json::{Value as Json, json};

// ---- Files, layouts, a model -----------------------------------------------------------------

/// The database files of one test, removed when it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("d1ns-moves-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.sqlite"))
    }

    /// A new handle on shard `name`'s file (a process of its own, as far as SQLite can tell).
    fn open(&self, name: &str) -> SqliteBackend {
        SqliteBackend::open(self.path(name)).expect("database file")
    }

    fn handles(&self, names: &[&str]) -> Vec<(String, SqliteBackend)> {
        names
            .iter()
            .map(|name| (name.to_string(), self.open(name)))
            .collect()
    }

    /// The namespace over `names`, with no previous home.
    fn layout(&self, names: &[&str], clock: &ManualClock) -> D1Namespace<SqliteBackend> {
        D1Namespace::sharded(self.handles(names))
            .clock(clock.clone())
            .build()
            .expect("valid names")
    }

    /// The namespace over `new`, moving in from the layout `old`.
    fn moving(
        &self,
        new: &[&str],
        old: &[&str],
        clock: &ManualClock,
    ) -> D1Namespace<SqliteBackend> {
        moving_over(self.handles(new), self.handles(old), clock)
    }

    /// The keys with a live row in shard `name`'s file at `now_ms`, read with SQLite itself.
    fn live_rows(&self, name: &str, now_ms: u64) -> BTreeSet<String> {
        let connection = rusqlite::Connection::open(self.path(name)).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT key FROM _kv_entries WHERE namespace = '' \
                 AND (expiration IS NULL OR expiration > ?1)",
            )
            .unwrap();
        statement
            .query_map([now_ms as i64], |row| row.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Every row of shard `name`'s file, live or not.
    fn all_rows(&self, name: &str) -> usize {
        let connection = rusqlite::Connection::open(self.path(name)).unwrap();
        connection
            .query_row("SELECT count(*) FROM _kv_entries", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap() as usize
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The namespace over `new` moving in from `old`, with any backend.
fn moving_over<B: Backend>(
    new: Vec<(String, B)>,
    old: Vec<(String, B)>,
    clock: &ManualClock,
) -> D1Namespace<B> {
    D1Namespace::sharded(new)
        .clock(clock.clone())
        .previous_home(PreviousHome::shards(old))
        .build()
        .expect("valid names")
}

/// What a key holds: its value, metadata and expiration (seconds).
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    value: String,
    metadata: Option<Json>,
    expiration: Option<u64>,
}

/// The last acknowledged write or delete of every key (`None`: deleted or never live).
type Model = BTreeMap<String, Option<Stored>>;

/// A seed for [`Rng`], printed so that a failing run can be repeated.
fn seed() -> u64 {
    let seed = std::env::var("D1NS_MOVES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("D1NS_MOVES_SEED={seed}");
    seed
}

/// xorshift64*: enough randomness for choosing keys and failure points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn key(i: usize) -> String {
    // Hash tags too: keys sharing `{tag}` share a shard in both layouts.
    if i.is_multiple_of(10) {
        format!("user:{{{}}}:{i:04}", i / 30)
    } else {
        format!("k{i:04}")
    }
}

/// Far enough ahead that nothing expires unless a test moves the clock on purpose.
const LATER: u64 = T0 / 1000 + 30 * 86_400;

/// The `i`-th entry of generation `generation`: some with metadata, some expiring, one in ten
/// long enough to be stored in chunks.
fn entry(i: usize, generation: u64) -> Stored {
    let long = if i % 10 == 3 {
        "x".repeat(3000)
    } else {
        String::new()
    };
    Stored {
        value: format!("v{i}-g{generation}{long}"),
        metadata: (!i.is_multiple_of(3)).then(|| json!({ "i": i, "generation": generation })),
        expiration: (i % 4 == 1).then_some(LATER + i as u64 + generation),
    }
}

async fn put<B: Backend + Send + Sync + 'static>(
    kv: &D1Namespace<B>,
    key: &str,
    stored: &Stored,
) -> Result<(), d1ns::Error> {
    let mut put = kv.put(key, stored.value.as_str())?;
    if let Some(metadata) = &stored.metadata {
        put = put.metadata(metadata)?;
    }
    if let Some(expiration) = stored.expiration {
        put = put.expiration(expiration);
    }
    put.await
}

/// Writes `count` keys through `kv` and records them.
async fn seed_keys<B: Backend + Send + Sync + 'static>(
    kv: &D1Namespace<B>,
    model: &mut Model,
    count: usize,
) {
    for i in 0..count {
        let stored = entry(i, 0);
        put(kv, &key(i), &stored).await.unwrap();
        model.insert(key(i), Some(stored));
    }
}

/// What `kv.get` and its `_entry` form say of `key`.
async fn read<B: Backend>(kv: &D1Namespace<B>, key: &str) -> Option<Stored> {
    let (value, metadata) = kv
        .get(key)
        .text_with_metadata::<Json>()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"));
    let entry = kv.get(key).text_entry::<Json>().await.unwrap();
    assert_eq!(
        value.as_ref(),
        entry.as_ref().map(|e| &e.value),
        "{key}: get and get(..).text_entry agree"
    );
    Some(Stored {
        value: value?,
        metadata,
        expiration: entry?.expiration,
    })
}

/// Every key of the model reads as the model says, one by one and in bulk (M2).
async fn assert_reads<B: Backend + Send + Sync + 'static>(kv: &D1Namespace<B>, model: &Model) {
    for (key, expected) in model {
        assert_eq!(&read(kv, key).await, expected, "get {key}");
    }
    let keys: Vec<&String> = model.keys().collect();
    for group in keys.chunks(100) {
        let got = kv
            .get_bulk(group)
            .text_with_metadata::<Json>()
            .await
            .unwrap();
        for key in group {
            let expected = model[*key]
                .as_ref()
                .map(|s| (s.value.clone(), s.metadata.clone()));
            let (value, metadata) = got[*key].clone();
            assert_eq!(value.map(|v| (v, metadata)), expected, "get_bulk {key}");
        }
    }
}

/// Every page of the list with `limit`, in order, as (name, metadata, expiration).
async fn list_all<B: Backend + Send + Sync + 'static>(
    kv: &D1Namespace<B>,
    prefix: &str,
    limit: u64,
) -> Listed {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let mut list = kv.list().prefix(prefix.to_string()).limit(limit);
        if let Some(cursor) = cursor.take() {
            list = list.cursor(cursor);
        }
        let page = list.await.unwrap();
        assert!(
            page.keys.len() as u64 <= limit,
            "a page holds at most its limit"
        );
        out.extend(
            page.keys
                .into_iter()
                .map(|k| (k.name, k.metadata, k.expiration)),
        );
        if page.list_complete {
            return out;
        }
        cursor = Some(page.cursor.expect("an incomplete page has a cursor"));
    }
}

/// What the list of the model's live keys with `prefix` is.
fn model_list(model: &Model, prefix: &str) -> Listed {
    model
        .iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .filter_map(|(key, stored)| {
            let stored = stored.as_ref()?;
            Some((key.clone(), stored.metadata.clone(), stored.expiration))
        })
        .collect()
}

/// Listed keys as (name, metadata, expiration).
type Listed = Vec<(String, Option<Json>, Option<u64>)>;

/// Fails naming only the entries on which two lists differ.
#[track_caller]
fn assert_same_list(got: &Listed, expected: &Listed, context: &str) {
    if got != expected {
        let only_got: Vec<_> = got.iter().filter(|k| !expected.contains(k)).collect();
        let only_expected: Vec<_> = expected.iter().filter(|k| !got.contains(k)).collect();
        panic!(
            "{context}: listed but not expected {only_got:?}; expected but not listed \
             {only_expected:?} ({} listed, {} expected)",
            got.len(),
            expected.len()
        );
    }
}

/// Runs the mover to its end, `max_keys` a step, and adds up its progress.
async fn move_all<B: Backend>(kv: &D1Namespace<B>, max_keys: u64) -> MoveProgress {
    let mut total = MoveProgress::default();
    let mut cursor = None;
    loop {
        let step = kv.move_step(cursor, max_keys).await.unwrap();
        total.add(&step);
        if step.done {
            return total;
        }
        cursor = Some(step.cursor.expect("a step not done has a cursor"));
    }
}

/// After the move: every live key of the model has a live row in its home (by the new layout's
/// placement) and nowhere else, and no other key has a live row anywhere (M6, M8).
fn assert_drained(scratch: &Scratch, new: &[&str], old: &[&str], model: &Model, now_ms: u64) {
    let names: Vec<String> = new.iter().map(|s| s.to_string()).collect();
    let mut everywhere: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let files: BTreeSet<&str> = new.iter().chain(old).copied().collect();
    for &file in &files {
        for key in scratch.live_rows(file, now_ms) {
            everywhere.entry(key).or_default().push(file);
        }
    }
    for (key, stored) in model {
        let home = new[d1ns::placement::shard_for(&names, key).unwrap()];
        let found = everywhere.remove(key).unwrap_or_default();
        match stored {
            Some(_) => assert_eq!(found, [home], "{key} lives in its home {home} only"),
            None => assert!(
                found.is_empty(),
                "{key} was deleted, yet lives in {found:?}"
            ),
        }
    }
    assert!(everywhere.is_empty(), "keys nobody wrote: {everywhere:?}");
}

/// Every read of every key matches the model, and so does the list at several page sizes.
async fn assert_matches<B: Backend + Send + Sync + 'static>(kv: &D1Namespace<B>, model: &Model) {
    assert_reads(kv, model).await;
    for limit in [1, 7, 1000] {
        let context = format!("limit {limit}");
        assert_same_list(
            &list_all(kv, "", limit).await,
            &model_list(model, ""),
            &context,
        );
    }
}

// ---- Resharding, from start to end (M1, M2, M6, M7, M8) ----------------------------------------

/// Seeds `old`, moves to `new` with traffic in between, checks reads before, during and after,
/// then drops the previous home and checks that the old layout is drained.
async fn reshard(test: &str, old: &[&str], new: &[&str]) {
    let scratch = Scratch::new(test);
    let clock = ManualClock::new(T0);
    let mut model = Model::new();
    let before = scratch.layout(old, &clock);
    seed_keys(&before, &mut model, 240).await;
    // Expired in the old layout: nothing to bring over.
    for i in 240..250 {
        before
            .put(&key(i), "short-lived")
            .unwrap()
            .expiration_ttl(60)
            .await
            .unwrap();
        model.insert(key(i), None);
    }
    clock.advance(Duration::from_secs(120));
    assert_matches(&before, &model).await;

    let kv = scratch.moving(new, old, &clock);
    assert_matches(&kv, &model).await; // M2: all in the previous home
    // Half the move, then traffic: overwrites, deletes and new keys on both sides of the cursor.
    let mut cursor = None;
    for _ in 0..3 {
        let step = kv.move_step(cursor, 40).await.unwrap();
        assert!(!step.done);
        cursor = step.cursor;
    }
    for i in (0..260).step_by(7) {
        let stored = entry(i, 1);
        put(&kv, &key(i), &stored).await.unwrap();
        model.insert(key(i), Some(stored));
    }
    for i in (2..240).step_by(11) {
        kv.delete(&key(i)).await.unwrap();
        model.insert(key(i), None);
    }
    assert_matches(&kv, &model).await; // M2-M5 half way
    let mut total = MoveProgress::default();
    loop {
        let step = kv.move_step(cursor, 40).await.unwrap();
        total.add(&step);
        if step.done {
            break;
        }
        cursor = step.cursor;
    }
    assert_matches(&kv, &model).await;
    // A second run finds nothing left to move: the old layout is drained but for keys at home.
    let again = move_all(&kv, 100).await;
    assert_eq!(again.copied + again.removed + again.changed, 0, "{again:?}");

    let after = scratch.layout(new, &clock);
    assert_matches(&after, &model).await; // M7: nothing lost without the previous home
    assert_drained(&scratch, new, old, &model, clock.now_ms());
}

#[tokio::test]
async fn m8_resharding_two_to_three_keeps_every_key_and_drains_the_old_layout() {
    // "b" is in both layouts (listed last, after the new ones), "a" only in the old one.
    reshard("two-to-three", &["a", "b"], &["c", "d", "b"]).await;
}

#[tokio::test]
async fn m8_resharding_three_to_two_keeps_every_key_and_drains_the_old_layout() {
    // "a" is in both layouts, "b" and "c" only in the old one, "d" only in the new one.
    reshard("three-to-two", &["a", "b", "c"], &["d", "a"]).await;
}

#[tokio::test]
async fn m6_binary_and_chunked_values_move_byte_for_byte() {
    let scratch = Scratch::new("bytes");
    let clock = ManualClock::new(T0);
    let old = scratch.layout(&["a"], &clock);
    let binary: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00]).collect();
    let long: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    old.put_bytes("binary", &binary).unwrap().await.unwrap();
    old.put_bytes("long", &long).unwrap().await.unwrap();
    let kv = scratch.moving(&["b"], &["a"], &clock);
    assert_eq!(
        kv.get("long").bytes().await.unwrap().as_deref(),
        Some(&long[..])
    ); // M2
    let progress = move_all(&kv, 10).await;
    assert_eq!((progress.copied, progress.removed), (2, 2));
    let after = scratch.layout(&["b"], &clock);
    assert_eq!(after.get("binary").bytes().await.unwrap(), Some(binary));
    assert_eq!(after.get("long").bytes().await.unwrap(), Some(long));
    assert_eq!(scratch.all_rows("a"), 0);
}

// ---- M2: reads during the move ------------------------------------------------------------------

/// Old layout `a`, new layout `b`: every key changes database.
fn one_to_one(
    scratch: &Scratch,
    clock: &ManualClock,
) -> (D1Namespace<SqliteBackend>, D1Namespace<SqliteBackend>) {
    (
        scratch.layout(&["a"], clock),
        scratch.moving(&["b"], &["a"], clock),
    )
}

#[tokio::test]
async fn m2_get_reads_a_key_only_in_the_previous_home_with_metadata_expiration_and_version() {
    let scratch = Scratch::new("get-old");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    let stored = entry(1, 0);
    put(&old, "k", &stored).await.unwrap();
    let before = old.get("k").text_entry::<Json>().await.unwrap().unwrap();
    let during = kv.get("k").text_entry::<Json>().await.unwrap().unwrap();
    assert_eq!(during.value, stored.value);
    assert_eq!(during.metadata, stored.metadata);
    assert_eq!(during.expiration, stored.expiration);
    assert_eq!(during.version, before.version);
    move_all(&kv, 10).await;
    let after = kv.get("k").text_entry::<Json>().await.unwrap().unwrap();
    assert_eq!(
        after.version, before.version,
        "the copy keeps the version (M6)"
    );
}

#[tokio::test]
async fn m2_get_bulk_mixes_both_homes_and_hides_tombstones_and_entries_expired_here() {
    let scratch = Scratch::new("get-bulk");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    for name in ["both", "old-only", "deleted", "expired-here"] {
        old.put(name, format!("old {name}"))
            .unwrap()
            .metadata(name)
            .unwrap()
            .await
            .unwrap();
    }
    kv.put("both", "new both").unwrap().await.unwrap();
    kv.put("new-only", "new new-only").unwrap().await.unwrap();
    kv.delete("deleted").await.unwrap();
    kv.put("expired-here", "new expired-here")
        .unwrap()
        .expiration_ttl(60)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let keys = [
        "both",
        "old-only",
        "deleted",
        "expired-here",
        "new-only",
        "nowhere",
    ];
    let got = kv
        .get_bulk(&keys)
        .text_with_metadata::<String>()
        .await
        .unwrap();
    let expected: HashMap<String, (Option<String>, Option<String>)> = [
        ("both", Some("new both"), None),
        ("old-only", Some("old old-only"), Some("old-only")),
        ("deleted", None, None),      // M4
        ("expired-here", None, None), // expired here: gone, not read from the previous home
        ("new-only", Some("new new-only"), None),
        ("nowhere", None, None),
    ]
    .into_iter()
    .map(|(k, v, m)| (k.to_string(), (v.map(String::from), m.map(String::from))))
    .collect();
    assert_eq!(got, expected);
    for key in keys {
        let single = kv.get(key).text_with_metadata::<String>().await.unwrap();
        assert_eq!(single, expected[key], "get {key} agrees with get_bulk");
    }
}

#[tokio::test]
async fn m4_a_key_deleted_during_the_move_is_never_brought_back() {
    let scratch = Scratch::new("tombstone");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    old.put("k", "old").unwrap().await.unwrap();
    kv.delete("k").await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    let progress = move_all(&kv, 10).await;
    assert_eq!((progress.copied, progress.skipped), (0, 1));
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    assert!(kv.list().await.unwrap().keys.is_empty());
    let after = scratch.layout(&["b"], &clock);
    assert_eq!(after.get("k").text().await.unwrap(), None);
}

#[tokio::test]
async fn m2_an_entry_expired_here_is_not_resurrected_by_the_mover() {
    let scratch = Scratch::new("expired-here");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    old.put("k", "old").unwrap().await.unwrap();
    kv.put("k", "new")
        .unwrap()
        .expiration_ttl(60)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let progress = move_all(&kv, 10).await;
    assert_eq!((progress.copied, progress.skipped), (0, 1));
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    assert_eq!(
        scratch
            .layout(&["b"], &clock)
            .get("k")
            .text()
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn m5_list_during_the_move_merges_both_homes_in_key_order_with_every_limit() {
    let scratch = Scratch::new("list");
    let clock = ManualClock::new(T0);
    let mut model = Model::new();
    let old = scratch.layout(&["a", "b"], &clock);
    seed_keys(&old, &mut model, 300).await;
    let kv = scratch.moving(&["c", "b", "d"], &["a", "b"], &clock);
    let mut rng = Rng(seed());
    for _ in 0..200 {
        let i = rng.below(360) as usize;
        if rng.below(3) == 0 {
            kv.delete(&key(i)).await.unwrap();
            model.insert(key(i), None);
        } else {
            let stored = entry(i, 1 + rng.below(5));
            put(&kv, &key(i), &stored).await.unwrap();
            model.insert(key(i), Some(stored));
        }
    }
    // Part of the move done, so some keys are in each home.
    let step = kv.move_step(None, 100).await.unwrap();
    assert!(!step.done);
    for limit in [1, 2, 3, 10, 99, 1000] {
        for prefix in ["", "k01", "user:"] {
            assert_same_list(
                &list_all(&kv, prefix, limit).await,
                &model_list(&model, prefix),
                &format!("prefix {prefix:?}, limit {limit}"),
            );
        }
    }
}

#[tokio::test]
async fn m5_a_key_deleted_here_is_not_listed_from_its_old_copy_in_a_database_of_both_layouts() {
    let scratch = Scratch::new("list-shared");
    let clock = ManualClock::new(T0);
    let mut model = Model::new();
    // "b" is in both layouts and listed last: its old copies of keys now placed on "c" must not
    // stand for those keys in the list.
    let old = scratch.layout(&["b"], &clock);
    seed_keys(&old, &mut model, 60).await;
    let kv = scratch.moving(&["c", "b"], &["b"], &clock);
    let moved: Vec<String> = model
        .keys()
        .filter(|k| kv.shard_of(k) == 0)
        .cloned()
        .collect();
    assert!(moved.len() > 10);
    for (n, key) in moved.iter().enumerate() {
        if n % 2 == 0 {
            kv.delete(key).await.unwrap();
            model.insert(key.clone(), None);
        } else {
            let stored = entry(n, 1);
            put(&kv, key, &stored).await.unwrap();
            model.insert(key.clone(), Some(stored));
        }
    }
    for limit in [1000, 5] {
        let context = format!("limit {limit}");
        assert_same_list(
            &list_all(&kv, "", limit).await,
            &model_list(&model, ""),
            &context,
        );
    }
}

// ---- Commits and counters during the move --------------------------------------------------------

#[tokio::test]
async fn m2_a_check_with_the_version_read_during_the_move_passes_for_a_key_only_in_the_old_home() {
    let scratch = Scratch::new("check");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    old.put("k", "old").unwrap().await.unwrap();
    let read = kv.get("k").text_entry::<()>().await.unwrap().unwrap();
    let committed = kv
        .atomic()
        .check("k", Some(read.version))
        .put("k", "new")
        .commit()
        .await
        .unwrap();
    assert!(committed.is_some(), "the check sees the version it read");
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("new"));
    // A stale version still fails.
    let stale = kv
        .atomic()
        .check("k", Some(read.version))
        .put("k", "newer")
        .commit()
        .await
        .unwrap();
    assert_eq!(stale, None);
}

#[tokio::test]
async fn m2_increment_of_a_counter_only_in_the_old_home_continues_from_its_old_value() {
    let scratch = Scratch::new("increment");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    assert_eq!(old.increment("views", 41).await.unwrap(), 41);
    assert_eq!(kv.increment("views", 1).await.unwrap(), 42);
    assert_eq!(kv.increment("views", 1).await.unwrap(), 43);
    let progress = move_all(&kv, 10).await;
    assert_eq!(
        (progress.copied, progress.skipped, progress.removed),
        (0, 1, 1)
    );
    let after = scratch.layout(&["b"], &clock);
    assert_eq!(
        after.get("views").text().await.unwrap().as_deref(),
        Some("43")
    );
}

// ---- M8: a key changed in the old layout after the copy ------------------------------------------

/// What a [`Hooked`] backend runs once, before a batch.
type Hook = Box<dyn FnOnce() + Send>;

/// Runs `statements` against the wrapped backend, after `hook` (once) when set.
struct Hooked<B> {
    inner: Arc<B>,
    hook: Arc<Mutex<Option<Hook>>>,
    /// The hook waits for a batch whose first statement starts with this.
    when: &'static str,
}

impl<B> Clone for Hooked<B> {
    fn clone(&self) -> Self {
        Hooked {
            inner: self.inner.clone(),
            hook: self.hook.clone(),
            when: self.when,
        }
    }
}

impl<B> Hooked<B> {
    fn new(inner: B, when: &'static str) -> Self {
        Hooked {
            inner: Arc::new(inner),
            hook: Arc::default(),
            when,
        }
    }

    fn set(&self, hook: impl FnOnce() + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(hook));
    }
}

impl<B: Backend + Sync + Send> Backend for Hooked<B> {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let fire = statements.iter().any(|s| s.sql.starts_with(self.when));
        if fire && let Some(hook) = self.hook.lock().unwrap().take() {
            hook();
        }
        self.inner.batch(statements)
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

/// Runs `future` to its end on a runtime of its own, in another thread (a process of its own).
fn elsewhere<F: Future<Output = ()> + Send + 'static>(future: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    })
    .join()
    .unwrap();
}

#[tokio::test]
async fn m8_a_key_changed_in_the_old_layout_after_the_copy_is_left_there() {
    let scratch = Scratch::new("changed");
    let clock = ManualClock::new(T0);
    let old = scratch.layout(&["a"], &clock);
    old.put("k", "v1").unwrap().await.unwrap();
    // The old layout's handle used by the mover: just before its conditional delete, a process
    // still on the old layout writes the key.
    let hooked = Hooked::new(scratch.open("a"), "DELETE");
    let kv = moving_over(
        vec![("b".to_string(), Hooked::new(scratch.open("b"), "-"))],
        vec![("a".to_string(), hooked.clone())],
        &clock,
    );
    let path = scratch.path("a");
    let writer_clock = clock.clone();
    hooked.set(move || {
        elsewhere(async move {
            let old = D1Namespace::sharded([("a", SqliteBackend::open(path).unwrap())])
                .clock(writer_clock)
                .build()
                .unwrap();
            old.put("k", "v2").unwrap().await.unwrap();
        })
    });
    let progress = move_all(&kv, 10).await;
    assert_eq!(
        (progress.copied, progress.removed, progress.changed),
        (1, 0, 1)
    );
    assert_eq!(
        old.get("k").text().await.unwrap().as_deref(),
        Some("v2"),
        "not deleted"
    );
    assert_eq!(
        kv.get("k").text().await.unwrap().as_deref(),
        Some("v1"),
        "M3: here wins"
    );
}

// ---- M9: costs ------------------------------------------------------------------------------------

#[tokio::test]
async fn m9_a_read_that_falls_through_costs_one_more_round_trip() {
    let scratch = Scratch::new("cost-read");
    let clock = ManualClock::new(T0);
    let old = scratch.layout(&["a"], &clock);
    old.put("old", "v").unwrap().await.unwrap();
    let new_db = Instrumented::new(scratch.open("b"));
    let old_db = Instrumented::new(scratch.open("a"));
    let kv = moving_over(
        vec![("b".to_string(), new_db.clone())],
        vec![("a".to_string(), old_db.clone())],
        &clock,
    );
    kv.put("new", "v").unwrap().await.unwrap(); // creates the table here
    new_db.take_stats();
    old_db.take_stats();
    kv.get("new").text().await.unwrap();
    assert_eq!(
        (new_db.take_stats().calls, old_db.take_stats().calls),
        (1, 0)
    );
    kv.get("old").text().await.unwrap();
    assert_eq!(
        (new_db.take_stats().calls, old_db.take_stats().calls),
        (1, 1)
    );
    kv.get_bulk(&["new", "old"]).text().await.unwrap();
    assert_eq!(
        (new_db.take_stats().calls, old_db.take_stats().calls),
        (1, 1)
    );
}

#[tokio::test]
async fn m9_a_key_in_neither_home_is_looked_for_here_once_more() {
    let scratch = Scratch::new("cost-miss");
    let clock = ManualClock::new(T0);
    scratch
        .layout(&["a"], &clock)
        .put("old", "v")
        .unwrap()
        .await
        .unwrap();
    let new_db = Instrumented::new(scratch.open("b"));
    let old_db = Instrumented::new(scratch.open("a"));
    let kv = moving_over(
        vec![("b".to_string(), new_db.clone())],
        vec![("a".to_string(), old_db.clone())],
        &clock,
    );
    kv.put("new", "v").unwrap().await.unwrap(); // creates the table here
    new_db.take_stats();
    // The mover may bring the key here between the two reads, so a miss reads here again.
    assert_eq!(kv.get("nowhere").text().await.unwrap(), None);
    assert_eq!(
        (new_db.take_stats().calls, old_db.take_stats().calls),
        (2, 1)
    );
    let got = kv.get_bulk(&["nowhere", "new"]).text().await.unwrap();
    assert_eq!(got["nowhere"], None);
    assert_eq!(
        (new_db.take_stats().calls, old_db.take_stats().calls),
        (2, 1)
    );
}

#[tokio::test]
async fn m9_the_mover_reads_and_writes_each_key_once() {
    let scratch = Scratch::new("cost-move");
    let clock = ManualClock::new(T0);
    let old = scratch.layout(&["a"], &clock);
    for i in 0..20 {
        old.put(&key(i), "v").unwrap().await.unwrap();
    }
    let new_db = Instrumented::new(scratch.open("b"));
    let old_db = Instrumented::new(scratch.open("a"));
    let kv = moving_over(
        vec![("b".to_string(), new_db.clone())],
        vec![("a".to_string(), old_db.clone())],
        &clock,
    );
    kv.put("warm", "v").unwrap().await.unwrap(); // creates the table here
    kv.delete("warm").await.unwrap();
    new_db.take_stats();
    old_db.take_stats();
    let progress = kv.move_step(None, 100).await.unwrap();
    assert!(progress.done);
    assert_eq!((progress.copied, progress.removed), (20, 20));
    // Per key: one read and one conditional delete in the old layout, one copy batch here; and
    // one list call for the page.
    assert_eq!(new_db.take_stats().calls, 20, "one copy batch per key");
    assert_eq!(old_db.take_stats().calls, 1 + 20 + 20, "list, read, delete");
}

// ---- purge_expired ---------------------------------------------------------------------------------

#[tokio::test]
async fn m4_purge_expired_removes_nothing_during_the_move_and_tombstones_after_it() {
    let scratch = Scratch::new("purge");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    old.put("k", "old").unwrap().await.unwrap();
    kv.put("short", "v")
        .unwrap()
        .expiration_ttl(60)
        .await
        .unwrap();
    kv.delete("k").await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(kv.purge_expired(100).await.unwrap(), 0);
    assert_eq!(scratch.all_rows("b"), 2, "a tombstone and an expired row");
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    move_all(&kv, 10).await;
    let after = scratch.layout(&["b"], &clock);
    assert_eq!(after.purge_expired(100).await.unwrap(), 2);
    assert_eq!(scratch.all_rows("b"), 0);
    assert_eq!(
        scratch.all_rows("a"),
        0,
        "the old copy was removed by the mover (M8)"
    );
}

// ---- The mover stopped and resumed (M6) -----------------------------------------------------------

#[tokio::test]
async fn m6_a_mover_rebuilt_from_scratch_between_steps_finishes_and_loses_nothing() {
    let scratch = Scratch::new("rebuilt");
    let clock = ManualClock::new(T0);
    let (old, new) = (["a", "b", "c"], ["b", "d"]);
    let mut model = Model::new();
    seed_keys(&scratch.layout(&old, &clock), &mut model, 150).await;
    let mut rng = Rng(seed());
    let mut cursor: Option<String> = None;
    let mut cursors: Vec<Option<String>> = vec![None];
    loop {
        // A new process each step, which may have lost its latest cursor.
        let kv = scratch.moving(&new, &old, &clock);
        let from = if rng.below(4) == 0 {
            cursors[rng.below(cursors.len() as u64) as usize].clone()
        } else {
            cursor.clone()
        };
        let step = kv.move_step(from, 1 + rng.below(9)).await.unwrap();
        let i = rng.below(170) as usize;
        let stored = entry(i, 1 + rng.below(3));
        put(&kv, &key(i), &stored).await.unwrap();
        model.insert(key(i), Some(stored));
        if step.done {
            break;
        }
        cursor = step.cursor;
        cursors.push(cursor.clone());
    }
    // Cursors only ever went back, so the move is done; a last run from the start changes
    // nothing that matters.
    move_all(&scratch.moving(&new, &old, &clock), 50).await;
    let kv = scratch.moving(&new, &old, &clock);
    assert_matches(&kv, &model).await;
    let after = scratch.layout(&new, &clock);
    assert_matches(&after, &model).await;
    assert_drained(&scratch, &new, &old, &model, clock.now_ms());
}

/// Fails some batches: before they reach the database, or after they ran (the answer lost).
struct Flaky<B> {
    inner: Arc<B>,
    rng: Arc<Mutex<Rng>>,
    /// One batch in this many fails.
    one_in: u64,
    failures: Arc<AtomicU64>,
}

impl<B: Backend + Sync + Send> Backend for Flaky<B> {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let fate = self.rng.lock().unwrap().below(self.one_in * 2);
        // SqliteBackend runs the batch when asked, so "before" must not ask.
        let result = match fate {
            0 => Err(DatabaseError::new("injected: the batch never arrived")),
            1 => self
                .inner
                .batch(statements)
                .now_or_never()
                .and_then(|_| Err(DatabaseError::new("injected: the answer was lost"))),
            _ => self.inner.batch(statements).now_or_never(),
        };
        if fate < 2 {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        std::future::ready(result)
    }

    fn database_id(&self) -> u64 {
        self.inner.database_id()
    }
}

/// SqliteBackend answers at once.
trait NowOrNever: Future + Sized {
    fn now_or_never(self) -> Self::Output {
        let mut future = std::pin::pin!(self);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("SqliteBackend answers at once"),
        }
    }
}

impl<F: Future> NowOrNever for F {}

#[tokio::test]
async fn m6_a_mover_whose_batches_fail_at_random_points_resumes_and_finishes() {
    let scratch = Scratch::new("flaky");
    let clock = ManualClock::new(T0);
    let (old, new) = (["a", "b"], ["c", "d", "b"]);
    let mut model = Model::new();
    seed_keys(&scratch.layout(&old, &clock), &mut model, 200).await;
    let rng = Arc::new(Mutex::new(Rng(seed())));
    let failures = Arc::new(AtomicU64::new(0));
    let flaky = |name: &str| Flaky {
        inner: Arc::new(scratch.open(name)),
        rng: rng.clone(),
        one_in: 8,
        failures: failures.clone(),
    };
    let kv = moving_over(
        new.iter().map(|n| (n.to_string(), flaky(n))).collect(),
        old.iter().map(|n| (n.to_string(), flaky(n))).collect(),
        &clock,
    );
    // Traffic goes through handles of its own, that never fail.
    let traffic = scratch.moving(&new, &old, &clock);
    let mut cursor = None;
    let mut errors = 0;
    let mut traffic_rng = Rng(seed());
    loop {
        match kv.move_step(cursor.clone(), 7).await {
            Ok(step) if step.done => break,
            Ok(step) => cursor = step.cursor,
            Err(_) => errors += 1, // resume from the same cursor
        }
        let i = traffic_rng.below(220) as usize;
        if traffic_rng.below(4) == 0 {
            traffic.delete(&key(i)).await.unwrap();
            model.insert(key(i), None);
        } else {
            let stored = entry(i, 1 + traffic_rng.below(3));
            put(&traffic, &key(i), &stored).await.unwrap();
            model.insert(key(i), Some(stored));
        }
    }
    assert!(errors > 0 && failures.load(Ordering::Relaxed) > 0);
    assert_matches(&traffic, &model).await;
    let after = scratch.layout(&new, &clock);
    assert_matches(&after, &model).await;
    assert_drained(&scratch, &new, &old, &model, clock.now_ms());
}

// ---- Concurrent traffic while the mover runs (M3, M4) --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn m3_m4_writers_and_deleters_racing_the_mover_lose_no_write_and_revive_no_delete() {
    let scratch = Arc::new(Scratch::new("concurrent"));
    let clock = ManualClock::new(T0);
    let (old, new) = (["a", "b", "c"], ["c", "d"]);
    let mut model = Model::new();
    seed_keys(&scratch.layout(&old, &clock), &mut model, 400).await;
    const WRITERS: usize = 4;
    let seed = seed();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let scratch = scratch.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer owns the keys i with i % WRITERS == writer: its last acknowledged
            // operation on them is the truth.
            let kv = scratch.moving(&new, &old, &clock);
            let mut rng = Rng(seed.wrapping_add(writer as u64 * 7919) | 1);
            let mut model = Model::new();
            for _ in 0..150 {
                let i = rng.below(440 / WRITERS as u64) as usize * WRITERS + writer;
                match rng.below(5) {
                    0 => {
                        kv.delete(&key(i)).await.unwrap();
                        model.insert(key(i), None);
                    }
                    1 => {
                        let n = kv.increment(&format!("n{i}"), 1).await.unwrap();
                        model.insert(
                            format!("n{i}"),
                            Some(Stored {
                                value: n.to_string(),
                                metadata: None,
                                expiration: None,
                            }),
                        );
                    }
                    _ => {
                        let stored = entry(i, 1 + rng.below(1000));
                        put(&kv, &key(i), &stored).await.unwrap();
                        model.insert(key(i), Some(stored));
                    }
                }
                tokio::task::yield_now().await;
            }
            model
        }));
    }
    let mover = {
        let scratch = scratch.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            let kv = scratch.moving(&new, &old, &clock);
            let mut total = MoveProgress::default();
            let mut cursor = None;
            loop {
                let step = kv.move_step(cursor, 5).await.unwrap();
                total.add(&step);
                if step.done {
                    return total;
                }
                cursor = step.cursor;
                tokio::task::yield_now().await;
            }
        })
    };
    for task in tasks {
        model.extend(task.await.unwrap());
    }
    let progress = mover.await.unwrap();
    assert!(progress.copied > 0, "{progress:?}");
    assert_matches(&scratch.moving(&new, &old, &clock), &model).await;
    let after = scratch.layout(&new, &clock);
    assert_matches(&after, &model).await;
    assert_drained(&scratch, &new, &old, &model, clock.now_ms());
}

// ---- Reads racing the mover (M2) -------------------------------------------------------------------

/// A namespace moving from `a` to `b` whose key `k` is still in `a`; just before the first read
/// of `a` through this namespace, the whole move runs in another process (the copy into `b`,
/// then the removal from `a`).
async fn racing_the_mover(
    scratch: &Scratch,
    clock: &ManualClock,
) -> D1Namespace<Hooked<SqliteBackend>> {
    let old = scratch.layout(&["a"], clock);
    old.put("k", "v").unwrap().await.unwrap();
    let hooked = Hooked::new(scratch.open("a"), "SELECT");
    let kv = moving_over(
        vec![("b".to_string(), Hooked::new(scratch.open("b"), "-"))],
        vec![("a".to_string(), hooked.clone())],
        clock,
    );
    kv.put("warm", "v").unwrap().await.unwrap(); // the table here exists
    let (dir, mover_clock) = (scratch.0.clone(), clock.clone());
    hooked.set(move || {
        elsewhere(async move {
            let open = |name: &str| SqliteBackend::open(dir.join(format!("{name}.sqlite")));
            let mover = D1Namespace::sharded([("b", open("b").unwrap())])
                .clock(mover_clock)
                .previous_home(PreviousHome::shards([("a", open("a").unwrap())]))
                .build()
                .unwrap();
            let progress = mover.move_step(None, 10).await.unwrap();
            assert_eq!(progress.removed, 1);
        })
    });
    kv
}

#[tokio::test]
async fn m2_a_get_racing_the_mover_of_its_key_still_finds_it() {
    let scratch = Scratch::new("race-get");
    let clock = ManualClock::new(T0);
    let kv = racing_the_mover(&scratch, &clock).await;
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn m2_a_get_bulk_racing_the_mover_of_its_key_still_finds_it() {
    let scratch = Scratch::new("race-get-bulk");
    let clock = ManualClock::new(T0);
    let kv = racing_the_mover(&scratch, &clock).await;
    let got = kv.get_bulk(&["k", "nowhere"]).text().await.unwrap();
    assert_eq!(got["k"].as_deref(), Some("v"));
    assert_eq!(got["nowhere"], None);
}

#[tokio::test]
async fn m5_a_list_racing_the_mover_of_its_key_still_lists_it() {
    let scratch = Scratch::new("race-list");
    let clock = ManualClock::new(T0);
    let kv = racing_the_mover(&scratch, &clock).await;
    assert_eq!(common::names(&kv, "").await, ["k", "warm"]);
}

/// M5: a database of both layouts holding expired rows of keys now placed on another shard
/// (purge_expired does nothing during a move) does not end a list early or hide keys.
#[tokio::test]
async fn m5_expired_rows_of_keys_placed_elsewhere_do_not_cut_a_list_short() {
    let scratch = Scratch::new("m5-expired-elsewhere");
    let clock = ManualClock::new(T0);
    let old = D1Namespace::builder(scratch.open("a"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let names = ["a", "b"];
    let mut placed_on_b = 0;
    for i in 0..200 {
        let key = format!("e{i:03}");
        if d1ns::placement::shard_for(&names, &key) == Some(1) {
            old.put(&key, "v")
                .unwrap()
                .expiration_ttl(60)
                .await
                .unwrap();
            placed_on_b += 1;
            if placed_on_b == 5 {
                break;
            }
        }
    }
    clock.advance(Duration::from_secs(120));
    let kv = D1Namespace::sharded(scratch.handles(&names))
        .previous_home(PreviousHome::shards([(String::new(), scratch.open("a"))]))
        .clock(clock.clone())
        .build()
        .unwrap();
    kv.put("f-new", "v").unwrap().await.unwrap();
    kv.put("g-new", "v").unwrap().await.unwrap();
    for limit in [1, 2, 3, 10] {
        let names: Vec<String> = list_all(&kv, "", limit)
            .await
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        assert_eq!(names, ["f-new", "g-new"], "limit {limit}");
    }
}

/// S1, M1: a previous layout of no shard, or a shard name that names another database in the
/// new layout, is refused at build: never a panic, never keys left behind as "already home".
#[tokio::test]
async fn m1_a_previous_layout_that_cannot_place_keys_is_refused() {
    let scratch = Scratch::new("m1-refused");
    let empty = D1Namespace::builder(scratch.open("a"))
        .previous_home(PreviousHome::shards(Vec::<(String, SqliteBackend)>::new()))
        .build();
    assert!(
        matches!(empty, Err(d1ns::Error::InvalidShards { .. })),
        "{empty:?}"
    );
    let renamed = D1Namespace::sharded([("a", scratch.open("new-a"))])
        .previous_home(PreviousHome::shards([("a", scratch.open("old-a"))]))
        .build();
    let message = renamed.map(|_| ()).unwrap_err().to_string();
    assert!(
        message.contains("\"a\"") && message.contains("different databases"),
        "{message}"
    );
}

#[d1ns::d1_namespace(name = "orders", index(user_id))]
#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    user_id: u64,
}

/// M4: `delete_where` during a move could not find the matching keys still in the previous
/// home, which would come back: it is refused, and nothing is written.
#[tokio::test]
async fn m4_delete_where_is_refused_during_a_move() {
    let scratch = Scratch::new("m4-delete-where");
    let old = Order::namespace_sharded([("a", scratch.open("a"))]).unwrap();
    old.put("o1", &Order { user_id: 2 }).await.unwrap();
    let kv = d1ns::TypedNamespace::<Order, _>::sharded_with([("b", scratch.open("b"))], |b| {
        b.previous_home(PreviousHome::shards([("a", scratch.open("a"))]))
    })
    .unwrap();
    let refused = kv.delete_where(Order::USER_ID, &2).await;
    assert!(
        matches!(
            refused,
            Err(d1ns::Error::MoveInProgress {
                operation: "delete_where"
            })
        ),
        "{refused:?}"
    );
    assert_eq!(kv.get("o1").await.unwrap().map(|o| o.user_id), Some(2));
}

/// A backend whose database id is the same whatever the file, as every D1 session's is.
struct SameId(SqliteBackend);

impl Backend for SameId {
    fn batch(
        &self,
        statements: &[d1ns::Statement<'_>],
    ) -> impl Future<Output = Result<Vec<d1ns::QueryResult>, d1ns::DatabaseError>> + Send {
        self.0.batch(statements)
    }

    fn database_id(&self) -> u64 {
        7
    }
}

/// M8 over backends that share one database id (D1 sessions): the names decide what stayed,
/// and every key still moves and reads.
#[tokio::test]
async fn m8_resharding_over_backends_sharing_an_id_goes_by_names() {
    let scratch = Scratch::new("m8-same-id");
    let clock = ManualClock::new(T0);
    let old = scratch.layout(&["a", "b"], &clock);
    let keys: Vec<String> = (0..60).map(|i| format!("s{i:02}")).collect();
    for key in &keys {
        old.put(key, key.as_str()).unwrap().await.unwrap();
    }
    let same = |name: &str| (name.to_owned(), SameId(scratch.open(name)));
    let kv = D1Namespace::sharded([same("a"), same("b"), same("c")])
        .previous_home(PreviousHome::shards([same("a"), same("b")]))
        .clock(clock.clone())
        .build()
        .unwrap();
    for key in &keys {
        assert_eq!(
            kv.get(key).text().await.unwrap().as_deref(),
            Some(key.as_str())
        );
    }
    let total = move_all(&kv, 7).await;
    assert!(total.copied > 0 && total.in_place > 0, "{total:?}");
    assert_eq!(
        (total.copied, total.changed),
        (total.removed, 0),
        "{total:?}"
    );
    let after = scratch.layout(&["a", "b", "c"], &clock);
    for key in &keys {
        assert_eq!(
            after.get(key).text().await.unwrap().as_deref(),
            Some(key.as_str())
        );
    }
}

#[tokio::test]
async fn m4_another_namespaces_purge_never_removes_the_tombstones_of_a_namespace_moving_in() {
    let scratch = Scratch::new("neighbour-purge");
    let clock = ManualClock::new(T0);
    let (old, kv) = one_to_one(&scratch, &clock);
    old.put("k", "old").unwrap().await.unwrap();
    kv.delete("k").await.unwrap();
    // A namespace sharing the table, with no move of its own, purges the table.
    let neighbour = D1Namespace::builder(scratch.open("b"))
        .namespace("neighbour")
        .table("_kv_entries")
        .clock(clock.clone())
        .build()
        .unwrap();
    neighbour
        .put("n", "v")
        .unwrap()
        .expiration_ttl(60)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        neighbour.purge_expired(100).await.unwrap(),
        1,
        "its own expired entry"
    );
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    move_all(&kv, 10).await;
    assert_eq!(
        kv.get("k").text().await.unwrap(),
        None,
        "the deleted key came back from the previous home"
    );
    // Once the move is over, the namespace's own purge removes its tombstone.
    let after = scratch.layout(&["b"], &clock);
    assert_eq!(after.purge_expired(100).await.unwrap(), 1);
    assert_eq!(scratch.all_rows("b"), 0);
}
