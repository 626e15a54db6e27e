//! A namespace over several databases (S1-S8), natively: three SQLite files in a directory of
//! each test's own. Throughput (S9) is measured by `benches/shards.rs`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use common::{Bookmarking, Recorder, T0};
use d1ns::backend::{Instrumented, shard_bookmark};
use d1ns::placement::{placement_key, score, shard_for};
use d1ns::{
    Backend, D1Namespace, Error, ListResponse, ManualClock, Session, SqliteBackend, TypedNamespace,
    d1_namespace,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

const NAMES: [&str; 3] = ["DB1", "DB2", "DB3"];

/// SQLite files in a directory of one test's own, removed when dropped.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("d1ns-shards-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.sqlite"))
    }

    fn open(&self, name: &str) -> SqliteBackend {
        SqliteBackend::open(self.path(name)).expect("database file")
    }

    /// The three files of [`NAMES`], counted.
    fn instrumented(&self) -> [Instrumented<SqliteBackend>; 3] {
        NAMES.map(|name| Instrumented::new(self.open(name)))
    }

    /// The rows of the default table under `key` in the file `name`, read behind d1ns's back
    /// (0 in a file no key was placed in yet, which has no table).
    fn rows(&self, name: &str, key: &str) -> i64 {
        let connection = d1ns::rusqlite::Connection::open(self.path(name)).unwrap();
        let count = |sql: &str, param: &str| -> i64 {
            connection
                .query_row(sql, [param], |row| row.get(0))
                .unwrap()
        };
        let tables = "SELECT count(*) FROM sqlite_schema WHERE name = ?1";
        if count(tables, "_kv_entries") == 0 {
            return 0;
        }
        count("SELECT count(*) FROM _kv_entries WHERE key = ?1", key)
    }

    /// Every row of the default table in the file `name`.
    fn rows_in(&self, name: &str) -> usize {
        let connection = d1ns::rusqlite::Connection::open(self.path(name)).unwrap();
        connection
            .query_row("SELECT count(*) FROM _kv_entries", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap() as usize
    }

    /// The name of the one file holding `key`; fails if it is in none or in several.
    fn holder(&self, key: &str) -> &'static str {
        let holders: Vec<&str> = NAMES
            .into_iter()
            .filter(|name| self.rows(name, key) > 0)
            .collect();
        assert_eq!(holders.len(), 1, "{key:?} is in {holders:?}");
        holders[0]
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A namespace over `backends`, named [`NAMES`] in that order, on `clock`.
fn sharded<B: Backend>(backends: [B; 3], clock: &ManualClock) -> D1Namespace<B> {
    D1Namespace::sharded(NAMES.into_iter().zip(backends))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The calls each shard received since the last look, in the order of [`NAMES`].
fn calls(dbs: &[Instrumented<SqliteBackend>; 3]) -> [u64; 3] {
    [0, 1, 2].map(|shard| dbs[shard].take_stats().calls)
}

/// One call on `name`'s shard, none on the others.
fn only_on(name: &str) -> [u64; 3] {
    NAMES.map(|shard| u64::from(shard == name))
}

/// A small xorshift generator: reproducible data without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What a listed key shows: its name, expiration and metadata.
type Listed = (String, Option<u64>, Option<Json>);

/// One page as seen from outside: its keys, `list_complete`, and whether it has a cursor.
type Page = (Vec<Listed>, bool, bool);

fn page_of(response: ListResponse) -> (Page, Option<String>) {
    let keys = response
        .keys
        .into_iter()
        .map(|key| (key.name, key.expiration, key.metadata))
        .collect();
    let cursor = response.cursor;
    ((keys, response.list_complete, cursor.is_some()), cursor)
}

/// Every page of a listing of `prefix` at `limit`, following cursors; `after_page` runs after
/// each page with the page's last key.
async fn all_pages<B: Backend + Send + Sync + 'static>(
    kv: &D1Namespace<B>,
    prefix: &str,
    limit: u64,
    mut after_page: impl FnMut(Option<&str>),
) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut list = kv.list().prefix(prefix.to_owned()).limit(limit);
        if let Some(cursor) = cursor.take() {
            list = list.cursor(cursor);
        }
        let (page, next) = page_of(list.await.unwrap());
        after_page(page.0.last().map(|(name, _, _)| name.as_str()));
        let complete = page.1;
        assert_eq!(next.is_some(), !complete, "K29");
        pages.push(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "the listing does not end");
    }
}

// ---- S1: names, not order; one shard is an unsharded namespace -------------------------------

#[tokio::test]
async fn s1_placement_depends_on_the_names_not_their_order() {
    let files = Files::new("s1-order");
    let clock = ManualClock::new(T0);
    let forward = sharded(NAMES.map(|name| files.open(name)), &clock);
    let shuffled = D1Namespace::sharded(["DB3", "DB1", "DB2"].map(|name| (name, files.open(name))))
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..60 {
        let key = format!("forward:{i}");
        forward.put(&key, i).unwrap().await.unwrap();
        let other = format!("shuffled:{i}");
        shuffled.put(&other, i).unwrap().await.unwrap();
        let name_in = |kv: &D1Namespace<SqliteBackend>, key: &str| {
            kv.shards().nth(kv.shard_of(key)).unwrap().0.to_owned()
        };
        assert_eq!(name_in(&forward, &key), name_in(&shuffled, &key));
    }
    for i in 0..60 {
        let value = Some(i.to_string());
        let key = format!("forward:{i}");
        assert_eq!(shuffled.get(&key).text().await.unwrap(), value);
        let other = format!("shuffled:{i}");
        assert_eq!(forward.get(&other).text().await.unwrap(), value);
    }
    let everything =
        |kv: D1Namespace<SqliteBackend>| async move { all_pages(&kv, "", 1000, |_| {}).await };
    let seen = everything(forward).await;
    assert_eq!(seen[0].0.len(), 120);
    assert_eq!(seen, everything(shuffled).await);
}

#[tokio::test]
async fn s1_invalid_duplicate_or_no_shard_names_are_refused() {
    let files = Files::new("s1-names");
    let refused = |names: &[&str]| {
        let shards: Vec<(&str, SqliteBackend)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, files.open(&format!("f{i}"))))
            .collect();
        match D1Namespace::sharded(shards).build() {
            Err(Error::InvalidShards { message }) => message,
            other => panic!("{names:?} gave {other:?}"),
        }
    };
    let too_long = "D".repeat(d1ns::limits::MAX_SHARD_NAME_BYTES + 1);
    for bad in [
        "",
        "DB 1",
        "DB/1",
        "DB=1",
        "DB,1",
        "é",
        "DB{1}",
        too_long.as_str(),
    ] {
        let message = refused(&["DB1", bad]);
        assert!(message.contains(&format!("{bad:?}")), "{message}");
    }
    let message = refused(&["DB1", "DB2", "DB1"]);
    assert!(
        message.contains("\"DB1\"") && message.contains("twice"),
        "{message}"
    );
    assert!(refused(&[]).contains("no shard"));
    // What is allowed: binding names, with digits, '_', '-' and '.'.
    let longest = "D".repeat(d1ns::limits::MAX_SHARD_NAME_BYTES);
    let fine = ["KV_DB-1.eu", "2", longest.as_str()];
    let shards = fine
        .iter()
        .zip(NAMES)
        .map(|(name, file)| (*name, files.open(file)));
    assert!(D1Namespace::sharded(shards).build().is_ok());
    // The typed constructor checks the same.
    let none: Vec<(&str, SqliteBackend)> = Vec::new();
    assert!(matches!(
        Order::namespace_sharded(none),
        Err(Error::InvalidShards { .. })
    ));
}

/// The operations whose statements a one-shard namespace must send exactly as an unsharded one.
async fn operation(kv: &D1Namespace<Recorder<SqliteBackend>>, name: &str) {
    match name {
        "first put" => kv.put("k", "v").unwrap().await.unwrap(),
        "put with ttl and metadata" => kv
            .put("m", "v")
            .unwrap()
            .expiration_ttl(60)
            .metadata(json!({"a": 1}))
            .unwrap()
            .await
            .unwrap(),
        "put of 300 KiB" => kv.put("big", "x".repeat(300 << 10)).unwrap().await.unwrap(),
        "get" => assert!(kv.get("k").text().await.unwrap().is_some()),
        "get of 300 KiB" => assert!(kv.get("big").text().await.unwrap().is_some()),
        "get_bulk" => {
            let found = kv.get_bulk(&["k", "m", "none"]).text().await.unwrap();
            assert_eq!(found.len(), 3);
        }
        "list" => assert!(!kv.list().limit(2).await.unwrap().list_complete),
        "increment" => assert_eq!(kv.increment("n", 2).await.unwrap(), 2),
        "commit" => {
            let committed = kv
                .atomic()
                .check("absent", None)
                .put("k", "w")
                .sum("n", 1)
                .commit()
                .await
                .unwrap();
            assert!(committed.is_some());
        }
        "delete" => kv.delete("k").await.unwrap(),
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn s1_one_shard_sends_exactly_what_an_unsharded_namespace_sends() {
    let files = Files::new("s1-one");
    let clock = ManualClock::new(T0);
    let plain_db = Recorder::new(files.open("plain"));
    let plain = D1Namespace::builder(plain_db.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let only_db = Recorder::new(files.open("only"));
    let only = D1Namespace::sharded([("only", only_db.clone())])
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(only.shards().len(), 1);
    for name in [
        "first put",
        "put with ttl and metadata",
        "put of 300 KiB",
        "get",
        "get of 300 KiB",
        "get_bulk",
        "list",
        "increment",
        "commit",
        "delete",
    ] {
        operation(&plain, name).await;
        operation(&only, name).await;
        let sent = plain_db.batches();
        assert!(!sent.is_empty(), "{name}");
        assert_eq!(only_db.batches(), sent, "{name}: calls and statements");
        assert_eq!(only_db.rows_returned(), plain_db.rows_returned(), "{name}");
        plain_db.clear();
        only_db.clear();
    }
}

// ---- S2: the placement is pinned -------------------------------------------------------------

/// The shard of each key over `["DB1", "DB2", "DB3"]`. This pins the storage format: a key written
/// by one version of d1ns, on any platform (wasm32 in Workers, natively), must be found on the
/// same shard by every other. If this test fails, placement changed and existing sharded data
/// would be read from the wrong database: do not update the table, fix the hash.
const PINNED: [(&str, &str); 23] = [
    ("a", "DB3"),
    ("b", "DB2"),
    ("key", "DB1"),
    ("user:1", "DB1"),
    ("user:2", "DB1"),
    ("user:42", "DB3"),
    ("42", "DB3"),
    ("user:{42}:cart", "DB3"),
    ("user:{42}:prefs", "DB3"),
    ("{42}", "DB3"),
    ("é", "DB2"),
    ("日本語", "DB3"),
    ("🦀 crab", "DB1"),
    ("\u{10FFFF}", "DB2"),
    ("a{}b", "DB1"),
    ("{a}{b}", "DB3"),
    ("a{b", "DB1"),
    ("{{x}}", "DB1"),
    ("tag{é}x", "DB2"),
    ("%_\\ ", "DB3"),
    ("config", "DB2"),
    ("session:9f86d081", "DB1"),
    ("", "DB1"), // stands for "k" × 512, the longest key; see `pinned_key`
];

fn pinned_key(key: &str) -> String {
    if key.is_empty() {
        "k".repeat(512)
    } else {
        key.to_owned()
    }
}

#[test]
fn s2_the_shard_of_each_key_is_pinned_across_versions_and_platforms() {
    for (key, name) in PINNED {
        let key = pinned_key(key);
        let shard = shard_for(&NAMES, &key).unwrap();
        assert_eq!(NAMES[shard], name, "{key:?}");
    }
    // The documented hash itself (FNV-1a over name, 0xFF, placement key; then fmix64).
    assert_eq!(score("DB1", "a"), 0x3b7f_8b9f_8ddc_1433);
    assert_eq!(score("DB2", "user:{42}:cart"), 0x9a03_fe6e_6e28_78e7);
    assert_eq!(score("DB3", "日本語"), 0xfd37_cea7_3c27_1cd2);
}

#[tokio::test]
async fn s2_each_key_is_stored_in_the_file_of_its_pinned_shard_only() {
    let files = Files::new("s2-files");
    let kv = sharded(NAMES.map(|name| files.open(name)), &ManualClock::new(T0));
    for (key, name) in PINNED {
        let key = pinned_key(key);
        kv.put(&key, "v").unwrap().await.unwrap();
        assert_eq!(NAMES[kv.shard_of(&key)], name, "{key:?}");
        assert_eq!(files.holder(&key), name, "{key:?}");
        assert_eq!(files.rows(name, &key), 1);
    }
}

// ---- S3: hash tags ---------------------------------------------------------------------------

#[tokio::test]
async fn s3_keys_with_the_same_hash_tag_live_in_the_same_file() {
    let files = Files::new("s3-tags");
    let kv = sharded(NAMES.map(|name| files.open(name)), &ManualClock::new(T0));
    let mut used = [false; 3];
    for user in 0..30 {
        let tag = format!("u{user}");
        let keys = [
            format!("{{{tag}}}"),
            format!("user:{{{tag}}}:cart"),
            format!("user:{{{tag}}}:prefs"),
            format!("{{{tag}}}:visits{{other}}"),
            format!("x}}y{{{tag}}}z"),
            format!("日本:{{{tag}}}"),
        ];
        for key in &keys {
            kv.put(key, "v").unwrap().await.unwrap();
        }
        let file = files.holder(&keys[0]);
        for key in &keys {
            assert_eq!(files.holder(key), file, "{key:?} and {:?}", keys[0]);
        }
        // The tag alone, as a key, lives there too.
        assert_eq!(kv.shard_of(&tag), kv.shard_of(&keys[1]));
        used[kv.shard_of(&tag)] = true;
    }
    assert_eq!(used, [true; 3], "tags spread over every shard");
}

#[test]
fn s3_only_the_first_non_empty_tag_counts() {
    // (key, the part that is hashed)
    let cases = [
        ("user:{42}:cart", "42"),
        ("{user}", "user"),
        ("{ }", " "),
        ("a{b}c{d}e", "b"),     // only the first tag
        ("{a}b}", "a"),         // up to the first `}` after the `{`
        ("a}b{c}", "c"),        // a `}` before the first `{` plays no part
        ("{{x}}", "{x"),        // the first `{`, the next `}`
        ("{é}", "é"),           // characters, not bytes
        ("x{日本}y", "日本"),   // multi-byte tags
        ("a{}b{c}", "a{}b{c}"), // an empty first tag: the whole key, a later tag is not looked for
        ("{}", "{}"),
        ("a{b", "a{b"), // no `}`: the whole key
        ("}{", "}{"),
        ("plain", "plain"),
    ];
    let layouts: [&[&str]; 3] = [
        &NAMES,
        &["DB3", "DB1"],
        &["a", "b", "c", "d", "e", "f", "g"],
    ];
    for (key, hashed) in cases {
        assert_eq!(placement_key(key), hashed, "{key:?}");
        for names in layouts {
            for name in names {
                assert_eq!(score(name, key), score(name, hashed), "{key:?} on {name}");
            }
            assert_eq!(shard_for(names, key), shard_for(names, hashed), "{key:?}");
        }
    }
    // Where the whole key is hashed, the brace text does not decide.
    for (key, not_hashed) in [("a{}b{c}", "c"), ("a{b", "b"), ("{}", "")] {
        assert_ne!(score("DB1", key), score("DB1", not_hashed), "{key:?}");
    }
}

// ---- S4: one shard per key, one call per shard involved --------------------------------------

#[tokio::test]
async fn s4_get_put_delete_and_increment_are_one_call_on_the_keys_shard_only() {
    let files = Files::new("s4-single");
    let dbs = files.instrumented();
    let kv = sharded(dbs.clone(), &ManualClock::new(T0));
    // Every key on a fresh shard first (its table is created in the same call, K34), then again.
    for round in 0..2 {
        for (key, name) in PINNED.iter().take(12) {
            let expected = only_on(name);
            kv.put(key, "v").unwrap().await.unwrap();
            assert_eq!(calls(&dbs), expected, "put {key:?}, round {round}");
            assert_eq!(kv.get(key).text().await.unwrap().as_deref(), Some("v"));
            assert_eq!(calls(&dbs), expected, "get {key:?}");
            kv.get(key).text_entry::<Json>().await.unwrap().unwrap();
            assert_eq!(calls(&dbs), expected, "get with its entry {key:?}");
            kv.delete(key).await.unwrap();
            assert_eq!(calls(&dbs), expected, "delete {key:?}");
            assert_eq!(kv.increment(key, 5).await.unwrap(), 5);
            assert_eq!(calls(&dbs), expected, "increment {key:?}");
            kv.delete(key).await.unwrap();
            calls(&dbs);
        }
    }
    assert_eq!(files.rows("DB1", "key"), 0);
}

#[tokio::test]
async fn s4_get_bulk_is_one_call_per_shard_involved_and_none_elsewhere() {
    let files = Files::new("s4-bulk");
    let dbs = files.instrumented();
    let kv = sharded(dbs.clone(), &ManualClock::new(T0));
    for (key, _) in PINNED.iter().take(12) {
        kv.put(key, format!("value of {key}"))
            .unwrap()
            .await
            .unwrap();
    }
    calls(&dbs);
    // Keys pinned to DB1: "key", "user:1"; DB2: "b", "é"; DB3: "a", "42". "absent:1" is on DB1
    // and was never written.
    let cases: [(&[&str], [u64; 3]); 5] = [
        (&["key", "user:1", "absent:1"], [1, 0, 0]),
        (&["b", "é"], [0, 1, 0]),
        (&["a", "42", "a"], [0, 0, 1]),
        (&["key", "b"], [1, 1, 0]),
        (&["key", "b", "a", "user:1", "é", "42"], [1, 1, 1]),
    ];
    for (keys, expected) in cases {
        let found = kv.get_bulk(keys).text().await.unwrap();
        assert_eq!(calls(&dbs), expected, "{keys:?}");
        for key in keys {
            let value = (*key != "absent:1").then(|| format!("value of {key}"));
            assert_eq!(found[*key], value, "{key:?}");
        }
        let distinct: HashSet<&&str> = keys.iter().collect();
        assert_eq!(found.len(), distinct.len(), "K20: duplicates collapse");
    }
    assert_eq!(NAMES[kv.shard_of("absent:1")], "DB1");
}

#[tokio::test]
async fn s4_requests_kv_refuses_fail_as_unsharded_and_send_nothing() {
    let files = Files::new("s4-rules");
    let dbs = files.instrumented();
    let kv = sharded(dbs.clone(), &ManualClock::new(T0));
    let too_long = "k".repeat(513);
    let message = |error: Error| error.to_string();
    assert_eq!(
        message(kv.get("").text().await.unwrap_err()),
        "Key name cannot be empty.",
        "K2"
    );
    assert_eq!(
        message(kv.put(".", "v").unwrap().await.unwrap_err()),
        "\".\" is not allowed as a key name.",
        "K3"
    );
    assert_eq!(
        message(kv.delete(&too_long).await.unwrap_err()),
        "KV DELETE failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        "K4"
    );
    let error = kv
        .put("k", "v")
        .unwrap()
        .metadata("m".repeat(1023))
        .unwrap()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::MetadataTooLarge { length: 1025, .. }),
        "K11"
    );
    let error = kv
        .put("k", "v")
        .unwrap()
        .expiration_ttl(0)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidExpirationTtl { .. }), "K14");
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let error = kv.get_bulk(&many).text().await.unwrap_err();
    assert!(matches!(error, Error::BulkKeyCount { count: 101 }), "K19");
    let error = kv.list().limit(1001).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidListLimit { limit: 1001 }),
        "K28"
    );
    let error = kv.list().cursor("not a cursor!".into()).await.unwrap_err();
    assert!(matches!(error, Error::InvalidCursor { .. }), "K30");
    assert_eq!(calls(&dbs), [0, 0, 0], "nothing was sent");
}

#[tokio::test]
async fn s4_expired_keys_are_invisible_on_every_shard() {
    let files = Files::new("s4-expiry");
    let clock = ManualClock::new(T0);
    let kv = sharded(NAMES.map(|name| files.open(name)), &clock);
    // "a" (DB3), "b" (DB2), "key" (DB1)
    for key in ["a", "b", "key"] {
        kv.put(key, "short")
            .unwrap()
            .expiration_ttl(1)
            .await
            .unwrap();
        kv.put(&format!("{{{key}}}:long"), "long")
            .unwrap()
            .expiration_ttl(10)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_millis(999));
    assert_eq!(kv.list().await.unwrap().keys.len(), 6, "K15");
    clock.advance(Duration::from_millis(1));
    for key in ["a", "b", "key"] {
        assert_eq!(kv.get(key).text().await.unwrap(), None, "K15: {key}");
        let long = format!("{{{key}}}:long");
        assert_eq!(kv.get(&long).text().await.unwrap().as_deref(), Some("long"));
        assert_eq!(
            files.rows(NAMES[kv.shard_of(key)], key),
            1,
            "K31a: reads never write"
        );
    }
    let bulk = kv.get_bulk(&["a", "b", "key"]).text().await.unwrap();
    assert!(bulk.values().all(Option::is_none), "K15");
    let names: Vec<String> = kv
        .list()
        .await
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["{a}:long", "{b}:long", "{key}:long"], "K31");
}

// ---- S5: list across shards ------------------------------------------------------------------

/// The same data in a namespace over three files and in one unsharded database: random keys
/// with shared prefixes (100 live ones under `p/`), some expired, some expiring later, some
/// with metadata.
struct ListData {
    sharded: D1Namespace<Recorder<SqliteBackend>>,
    model: D1Namespace<SqliteBackend>,
    recorders: [Recorder<SqliteBackend>; 3],
    /// The live keys of each shard, in order.
    live: [Vec<String>; 3],
    _files: Files,
}

async fn list_data(test: &str) -> ListData {
    let files = Files::new(test);
    let clock = ManualClock::new(T0);
    let recorders = NAMES.map(|name| Recorder::new(files.open(name)));
    let sharded = sharded(recorders.clone(), &clock);
    let model = D1Namespace::builder(SqliteBackend::open_in_memory().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let pieces = [
        "user:",
        "user:1",
        "team/",
        "a",
        "é",
        "z",
        "{t1}",
        "{t2}:",
        "%",
        "_",
        "\u{10FFFF}",
        "日",
        "p",
        "p/",
        "!",
        "A",
    ];
    let mut keys: HashSet<String> = HashSet::new();
    let mut draw = |rng: &mut XorShift, prefix: &str, kind: &'static str| loop {
        let mut key = prefix.to_owned();
        for _ in 0..=rng.below(3) {
            key.push_str(rng.pick(&pieces));
        }
        key.push_str(&rng.below(10_000).to_string());
        // Only the keys drawn for it are under the prefix the limits are tried on.
        let stray = prefix.is_empty() && key.starts_with("p/");
        if !stray && keys.insert(key.clone()) {
            return (key, kind);
        }
    };
    let mut writes = Vec::new();
    for i in 0..3000 {
        let (prefix, kind) = match i {
            0..100 => ("p/", "live"),
            100..130 => ("p/", "expired"),
            _ => (
                "",
                ["live", "live", "live", "live", "expired", "ttl", "meta"][i % 7],
            ),
        };
        writes.push(draw(&mut rng, prefix, kind));
    }
    async fn write<B: Backend + Send + Sync + 'static>(kv: &D1Namespace<B>, key: &str, kind: &str) {
        let put = kv.put(key, "v").unwrap();
        let put = match kind {
            "expired" => put.expiration_ttl(30),
            "ttl" => put.expiration_ttl(3600),
            "meta" => put.metadata(json!({"key": key})).unwrap(),
            _ => put,
        };
        put.await.unwrap();
    }
    // The keys to expire first, then the clock moves past them, then the rest.
    for (key, kind) in writes.iter().filter(|(_, kind)| *kind == "expired") {
        write(&sharded, key, kind).await;
        write(&model, key, kind).await;
    }
    clock.advance(Duration::from_secs(31));
    let mut live: [Vec<String>; 3] = Default::default();
    for (key, kind) in writes.iter().filter(|(_, kind)| *kind != "expired") {
        write(&sharded, key, kind).await;
        write(&model, key, kind).await;
        live[sharded.shard_of(key)].push(key.clone());
    }
    for keys in &mut live {
        keys.sort();
        assert!(keys.len() > 500, "keys spread over every shard");
    }
    ListData {
        sharded,
        model,
        recorders,
        live,
        _files: files,
    }
}

impl ListData {
    /// The pages of the sharded listing, checking what each page asked of each shard (S5): one
    /// query on every shard (a shard that had no more may have a key written since, K30), at
    /// most `limit + 1` rows from each, and no row from a shard with no key left.
    async fn sharded_pages(&self, prefix: &str, limit: u64) -> Vec<Page> {
        for recorder in &self.recorders {
            recorder.clear();
        }
        let mut previous_last: Option<String> = None;
        let recorders = &self.recorders;
        let live = &self.live;
        all_pages(&self.sharded, prefix, limit, |last| {
            for (shard, recorder) in recorders.iter().enumerate() {
                let has_more = live[shard].iter().any(|key| {
                    key.starts_with(prefix) && Some(key.as_str()) > previous_last.as_deref()
                });
                let asked = recorder.batches().len();
                assert_eq!(
                    asked, 1,
                    "limit {limit}, shard {shard}, after {previous_last:?}"
                );
                if !has_more {
                    assert_eq!(
                        recorder.rows_returned(),
                        0,
                        "limit {limit}, shard {shard}: no key left, no row"
                    );
                }
                assert!(
                    recorder.rows_returned() as u64 <= limit + 1,
                    "limit {limit}, shard {shard}: {} rows",
                    recorder.rows_returned()
                );
                recorder.clear();
            }
            if let Some(last) = last {
                previous_last = Some(last.to_owned());
            }
        })
        .await
    }
}

#[tokio::test]
async fn s5_every_limit_pages_a_prefix_as_one_database_would() {
    let data = list_data("s5-limits").await;
    let model_all = all_pages(&data.model, "p/", 1000, |_| {}).await;
    assert_eq!(model_all.len(), 1);
    assert_eq!(
        model_all[0].0.len(),
        100,
        "the prefix matches 100 live keys"
    );
    for limit in 1..=1000 {
        let model = all_pages(&data.model, "p/", limit, |_| {}).await;
        let sharded = data.sharded_pages("p/", limit).await;
        assert_eq!(
            sharded.len(),
            model.len(),
            "limit {limit}: the number of pages"
        );
        assert_eq!(sharded.len(), 100usize.div_ceil(limit as usize).max(1));
        assert_eq!(
            sharded, model,
            "limit {limit}: keys, list_complete, cursors"
        );
    }
}

#[tokio::test]
async fn s5_paging_through_every_key_matches_one_database() {
    let data = list_data("s5-all").await;
    let live: usize = data.live.iter().map(Vec::len).sum();
    for limit in [1, 2, 7, 100, 333, 999, 1000] {
        let model = all_pages(&data.model, "", limit, |_| {}).await;
        let sharded = data.sharded_pages("", limit).await;
        assert_eq!(sharded, model, "limit {limit}");
        let keys: Vec<&str> = sharded
            .iter()
            .flat_map(|(keys, _, _)| keys.iter().map(|(name, _, _)| name.as_str()))
            .collect();
        assert_eq!(keys.len(), live, "K29: every live key once");
        assert!(
            keys.windows(2).all(|pair| pair[0] < pair[1]),
            "K26: byte order"
        );
        let cursors = sharded.iter().filter(|(_, _, cursor)| *cursor).count();
        assert_eq!(cursors, live.div_ceil(limit as usize) - 1);
    }
    // Metadata and expirations come through the merge.
    let page = &data.sharded_pages("", 1000).await[0].0;
    assert!(page.iter().any(|(_, _, metadata)| metadata.is_some()));
    assert!(page.iter().any(|(_, expiration, _)| expiration.is_some()));
}

#[tokio::test]
async fn s5_a_prefix_on_one_shard_reads_rows_only_there() {
    let files = Files::new("s5-tag");
    let recorders = NAMES.map(|name| Recorder::new(files.open(name)));
    let kv = sharded(recorders.clone(), &ManualClock::new(T0));
    for i in 0..25 {
        kv.put(&format!("user:{{7}}:{i:02}"), "v")
            .unwrap()
            .await
            .unwrap();
    }
    let home = kv.shard_of("7");
    let mut cursor: Option<String> = None;
    for page in 0..5 {
        for recorder in &recorders {
            recorder.clear();
        }
        let mut list = kv.list().prefix("user:{7}:".into()).limit(5);
        if let Some(cursor) = cursor.take() {
            list = list.cursor(cursor);
        }
        let response = list.await.unwrap();
        assert_eq!(response.keys.len(), 5);
        assert_eq!(response.list_complete, page == 4);
        for (shard, recorder) in recorders.iter().enumerate() {
            assert_eq!(recorder.batches().len(), 1, "page {page}, shard {shard}");
            if shard != home {
                assert_eq!(recorder.rows_returned(), 0, "page {page}, shard {shard}");
            }
        }
        cursor = response.cursor;
    }
}

#[tokio::test]
async fn s5_keys_written_between_pages_on_a_shard_still_read_are_seen() {
    // K30 through the merge: the cursor means "after this key".
    let files = Files::new("s5-k30");
    let kv = sharded(NAMES.map(|name| files.open(name)), &ManualClock::new(T0));
    // "a" is on DB3, "b" on DB2, "key" on DB1 (PINNED); the tags keep each group together.
    for i in 0..4 {
        for tag in ["a", "b", "key"] {
            kv.put(&format!("{i}{{{tag}}}"), "v")
                .unwrap()
                .await
                .unwrap();
        }
    }
    let first = kv.list().limit(6).await.unwrap();
    let last = &first.keys[5].name;
    assert_eq!(last, "1{key}");
    kv.put("1{key}zz", "after the cursor")
        .unwrap()
        .await
        .unwrap();
    kv.put("0{b}zz", "before the cursor")
        .unwrap()
        .await
        .unwrap();
    let rest = kv.list().cursor(first.cursor.unwrap()).await.unwrap();
    let names: Vec<&str> = rest.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names[0], "1{key}zz");
    assert!(!names.contains(&"0{b}zz"));
    assert_eq!(names.len(), 7);
}

#[tokio::test]
async fn s5_keys_written_after_the_cursor_on_a_shard_that_had_no_more_are_seen() {
    // K30 holds for every shard: a shard that had no more keys is asked again on the next page.
    let files = Files::new("s5-k30-done");
    let kv = sharded(NAMES.map(|name| files.open(name)), &ManualClock::new(T0));
    for i in 0..4 {
        kv.put(&format!("{i}{{a}}"), "v").unwrap().await.unwrap();
    }
    let first = kv.list().limit(2).await.unwrap();
    assert!(!first.list_complete);
    kv.put("9{b}", "written after the first page")
        .unwrap()
        .await
        .unwrap();
    let rest = kv.list().cursor(first.cursor.unwrap()).await.unwrap();
    let names: Vec<&str> = rest.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["2{a}", "3{a}", "9{b}"]);
}

// ---- S6: commits on one shard only -----------------------------------------------------------

#[tokio::test]
async fn s6_a_commit_across_shards_is_refused_before_anything_is_sent() {
    let files = Files::new("s6-cross");
    let dbs = files.instrumented();
    let kv = sharded(dbs.clone(), &ManualClock::new(T0));
    kv.put("a", "0").unwrap().await.unwrap();
    calls(&dbs);
    // "a" lives on DB3, "b" on DB2, "key" on DB1.
    let commits = [
        kv.atomic().put("a", "1").put("b", "1"),
        kv.atomic().check("a", None).put("key", "1"),
        kv.atomic().sum("a", 1).sum("{a}:too", 1).delete("b"),
        kv.atomic()
            .delete("key")
            .put("{key}:x", "1")
            .sum("user:{42}:n", 1),
    ];
    let pairs = [("a", "b"), ("a", "key"), ("a", "b"), ("key", "user:{42}:n")];
    for (commit, (first, second)) in commits.into_iter().zip(pairs) {
        let error = commit.commit().await.unwrap_err();
        assert!(
            matches!(&error, Error::CrossShard { first: f, second: s } if f == first && s == second),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&format!("{first:?}")), "{message}");
        assert!(message.contains(&format!("{second:?}")), "{message}");
        assert!(message.contains("hash tag"), "{message}");
        assert_eq!(calls(&dbs), [0, 0, 0], "nothing was sent: {message}");
    }
    assert_eq!(kv.get("a").text().await.unwrap().as_deref(), Some("0"));
    for key in ["b", "key", "{a}:too", "{key}:x", "user:{42}:n"] {
        assert_eq!(kv.get(key).text().await.unwrap(), None, "{key}");
    }
}

#[tokio::test]
async fn s6_a_commit_of_keys_with_one_tag_is_one_batch_on_their_shard() {
    let files = Files::new("s6-tag");
    let dbs = files.instrumented();
    let kv = sharded(dbs.clone(), &ManualClock::new(T0));
    let home = NAMES[kv.shard_of("u7")];
    kv.put("prefs:{u7}", "light").unwrap().await.unwrap();
    let prefs = kv
        .get("prefs:{u7}")
        .text_entry::<Json>()
        .await
        .unwrap()
        .unwrap();
    calls(&dbs);
    let committed = kv
        .atomic()
        .check("cart:{u7}", None)
        .check("prefs:{u7}", Some(prefs.version))
        .put("cart:{u7}", "3 items")
        .put("prefs:{u7}", "dark")
        .sum("visits:{u7}", 1)
        .delete("old:{u7}")
        .commit()
        .await
        .unwrap();
    assert!(committed.is_some());
    assert_eq!(calls(&dbs), only_on(home), "one batch on the tag's shard");
    for (key, value) in [
        ("cart:{u7}", "3 items"),
        ("prefs:{u7}", "dark"),
        ("visits:{u7}", "1"),
    ] {
        assert_eq!(kv.get(key).text().await.unwrap().as_deref(), Some(value));
        assert_eq!(files.holder(key), home, "{key}");
    }
    // A stale check fails the whole batch, on that shard alone (A-rules unchanged).
    calls(&dbs);
    let stale = kv
        .atomic()
        .check("prefs:{u7}", Some(prefs.version))
        .sum("visits:{u7}", 1)
        .commit()
        .await
        .unwrap();
    assert_eq!(stale, None);
    assert_eq!(calls(&dbs), only_on(home));
    assert_eq!(
        kv.get("visits:{u7}").text().await.unwrap().as_deref(),
        Some("1")
    );
}

// ---- S7: look-ups, delete_where and purge_expired over every shard ---------------------------

#[d1_namespace(name = "orders", index(user_id))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Order {
    user_id: u32,
    total: u32,
}

/// Random orders of users 0, 1 and 2 under random keys, written to `ns` and returned in key
/// order.
async fn orders<B: Backend + Send + Sync + 'static>(
    ns: &TypedNamespace<Order, B>,
    count: usize,
) -> BTreeMap<String, Order> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut model = BTreeMap::new();
    while model.len() < count {
        let key = format!("order:{}", rng.below(1_000_000));
        let order = Order {
            user_id: rng.below(3) as u32,
            total: rng.below(1000) as u32,
        };
        ns.put(&key, &order).await.unwrap();
        model.insert(key, order);
    }
    model
}

#[tokio::test]
async fn s7_find_pages_merge_in_key_order_at_every_limit() {
    let files = Files::new("s7-find");
    let ns = Order::namespace_sharded(NAMES.map(|name| (name, files.open(name)))).unwrap();
    let model = orders(&ns, 150).await;
    let expected: Vec<(&String, &Order)> = model.iter().filter(|(_, o)| o.user_id == 1).collect();
    assert!((30..=70).contains(&expected.len()), "{}", expected.len());
    let mut shards = [false; 3];
    for (key, _) in &expected {
        shards[ns.raw().shard_of(key)] = true;
    }
    assert_eq!(shards, [true; 3], "user 1's orders are on every shard");
    for limit in 1..=50u64 {
        let mut found = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut find = ns.find(Order::USER_ID, &1).limit(limit);
            if let Some(cursor) = cursor.take() {
                find = find.cursor(cursor);
            }
            let page = find.await.unwrap();
            pages += 1;
            assert!(page.entries.len() as u64 <= limit);
            assert_eq!(page.cursor.is_some(), !page.list_complete);
            found.extend(
                page.entries
                    .into_iter()
                    .map(|(key, entry)| (key, entry.value)),
            );
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let found: Vec<(&String, &Order)> = found.iter().map(|(k, v)| (k, v)).collect();
        assert_eq!(found, expected, "limit {limit}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit as usize).max(1),
            "limit {limit}"
        );
    }
}

#[tokio::test]
async fn s7_delete_where_removes_from_every_shard_and_reports_the_total() {
    let files = Files::new("s7-delete");
    let dbs = files.instrumented();
    let ns = Order::namespace_sharded(NAMES.into_iter().zip(dbs.clone())).unwrap();
    let model = orders(&ns, 90).await;
    let of = |user: u32| model.values().filter(|o| o.user_id == user).count();
    calls(&dbs);
    let removed = ns.delete_where(Order::USER_ID, &2).await.unwrap();
    assert_eq!(removed, of(2) as u64);
    assert_eq!(calls(&dbs), [1, 1, 1], "one call per shard");
    assert!(
        ns.find(Order::USER_ID, &2)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    for user in [0, 1] {
        let page = ns.find(Order::USER_ID, &user).await.unwrap();
        assert_eq!(page.entries.len(), of(user));
    }
    assert_eq!(ns.delete_where(Order::USER_ID, &2).await.unwrap(), 0);
}

#[tokio::test]
async fn s7_purge_expired_purges_every_shard_and_reports_the_total() {
    let files = Files::new("s7-purge");
    let clock = ManualClock::new(T0);
    let ns = TypedNamespace::<Order, _>::sharded_with(
        NAMES.map(|name| (name, files.open(name))),
        |builder| builder.clock(clock.clone()),
    )
    .unwrap();
    let mut expiring = [0u64; 3];
    for i in 0..40 {
        let key = format!("order:{i}");
        let order = Order {
            user_id: i,
            total: i,
        };
        if i < 30 {
            ns.put(&key, &order).expiration_ttl(60).await.unwrap();
            expiring[ns.raw().shard_of(&key)] += 1;
        } else {
            ns.put(&key, &order).await.unwrap();
        }
    }
    assert!(expiring.iter().all(|&n| n >= 2), "{expiring:?}");
    assert_eq!(
        ns.raw().purge_expired(100).await.unwrap(),
        0,
        "nothing expired yet"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        ns.raw().purge_expired(2).await.unwrap(),
        6,
        "up to 2 on each shard"
    );
    assert_eq!(ns.raw().purge_expired(100).await.unwrap(), 24);
    assert_eq!(ns.raw().purge_expired(100).await.unwrap(), 0);
    let connection = |name: &str| d1ns::rusqlite::Connection::open(files.path(name)).unwrap();
    let left: i64 = NAMES
        .iter()
        .map(|name| {
            connection(name)
                .query_row("SELECT count(*) FROM orders_kv_entries", [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
        })
        .sum();
    assert_eq!(left, 10, "only the entries without expiration are left");
}

// ---- S8: one bookmark string for every shard -------------------------------------------------

/// A stand-in session on the file `shard`, started from `bookmark` (one it made) or from
/// nothing.
fn bookmarking(files: &Files, shard: &'static str, bookmark: Option<&str>) -> Bookmarking {
    let label = shard.to_lowercase();
    let start = bookmark.map_or(0, |bookmark| {
        let (count, from) = bookmark.split_once('-').unwrap();
        assert_eq!(from, label, "a bookmark of another database");
        count.parse().unwrap()
    });
    Bookmarking::new(files.open(shard), &label, start)
}

#[tokio::test]
async fn s8_one_string_carries_each_shards_bookmark() {
    let files = Files::new("s8-bookmarks");
    let sessions = NAMES.map(|name| (name, bookmarking(&files, name, None)));
    let kv = D1Namespace::sharded(sessions).build().unwrap();
    assert_eq!(kv.bookmark().unwrap(), None, "no operation yet");
    kv.put("b", "on DB2").unwrap().await.unwrap();
    let after_one = kv.bookmark().unwrap().unwrap();
    assert_eq!(shard_bookmark(&after_one, "DB2"), Some("00000001-db2"));
    assert_eq!(
        shard_bookmark(&after_one, "DB1"),
        None,
        "DB1 has no bookmark yet"
    );
    assert_eq!(shard_bookmark(&after_one, "DB3"), None);
    for (key, _) in PINNED.iter().take(6) {
        kv.put(key, "v").unwrap().await.unwrap();
    }
    let bookmarks = kv.bookmark().unwrap().unwrap();
    for (name, session) in kv.shards() {
        let own = session.bookmark().unwrap().unwrap();
        assert_eq!(
            shard_bookmark(&bookmarks, name),
            Some(own.as_str()),
            "{name}"
        );
    }

    // The next request starts each shard's session from its part, and reads what this one wrote.
    let resumed = NAMES.map(|name| {
        let part = shard_bookmark(&bookmarks, name);
        (name, bookmarking(&files, name, part))
    });
    let next = D1Namespace::sharded(resumed).build().unwrap();
    assert_eq!(next.get("b").text().await.unwrap().as_deref(), Some("v"));
    let later = next.bookmark().unwrap().unwrap();
    let shard_of_b = NAMES[next.shard_of("b")];
    for name in NAMES {
        let before = shard_bookmark(&bookmarks, name).unwrap();
        let after = shard_bookmark(&later, name).unwrap();
        if name == shard_of_b {
            assert!(after > before, "{name} moved on");
        } else {
            assert_eq!(after, before, "{name} was not asked");
        }
    }

    // Typed namespaces hand out the same string.
    let orders =
        Order::namespace_sharded(NAMES.map(|name| (name, bookmarking(&files, name, None))))
            .unwrap();
    orders
        .put(
            "a",
            &Order {
                user_id: 1,
                total: 2,
            },
        )
        .await
        .unwrap();
    let typed = orders.bookmark().unwrap().unwrap();
    assert!(shard_bookmark(&typed, "DB3").is_some(), "{typed}");
}

#[tokio::test]
async fn s8_a_one_shard_layout_gives_its_bookmark_under_its_name() {
    let files = Files::new("s8-one");
    let kv = D1Namespace::sharded([("DB1", bookmarking(&files, "DB1", None))])
        .build()
        .unwrap();
    assert_eq!(kv.bookmark().unwrap(), None);
    kv.put("k", "v").unwrap().await.unwrap();
    let bookmarks = kv.bookmark().unwrap().unwrap();
    assert_eq!(shard_bookmark(&bookmarks, "DB1"), Some("00000001-db1"));
    // An unsharded namespace hands out its session's bookmark as it is (R2).
    let plain = D1Namespace::new(bookmarking(&files, "DB2", None));
    plain.put("k", "v").unwrap().await.unwrap();
    assert_eq!(plain.bookmark().unwrap().as_deref(), Some("00000001-db2"));
}

// ---- Seams: one database twice, old copies a reshard left behind -----------------------------

#[test]
fn a_layout_that_gives_one_database_twice_is_refused_whatever_the_path() {
    let files = Files::new("twice");
    drop(files.open("DB1"));
    let link = files.dir.join("link.sqlite");
    let hard = files.dir.join("hard.sqlite");
    std::os::unix::fs::symlink(files.path("DB1"), &link).unwrap();
    std::fs::hard_link(files.path("DB1"), &hard).unwrap();
    for (what, other) in [
        ("the same path", files.path("DB1")),
        ("a symlink", link),
        ("a hard link", hard),
    ] {
        let twice = [
            ("DB1", files.open("DB1")),
            ("DB2", SqliteBackend::open(&other).unwrap()),
        ];
        let err = D1Namespace::sharded(twice).build().unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidShards { .. }), "{what}: {text}");
        assert!(
            text.contains("\"DB1\" and \"DB2\"") && text.contains("same database"),
            "{what}: {text}"
        );
        // The same in a previous layout, which a move would otherwise empty of its only copies.
        let home = d1ns::PreviousHome::shards([
            ("a", files.open("DB1")),
            ("b", SqliteBackend::open(&other).unwrap()),
        ]);
        let err = D1Namespace::sharded([("DB3", files.open("DB3"))])
            .previous_home(home)
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"a\" and \"b\" of the previous layout"),
            "{what}: {err}"
        );
    }
    // Two files are two databases, and in-memory databases are never one another.
    let distinct = [("DB1", files.open("DB1")), ("DB2", files.open("DB2"))];
    assert!(D1Namespace::sharded(distinct).build().is_ok());
    let memory = [
        ("m1", SqliteBackend::open_in_memory().unwrap()),
        ("m2", SqliteBackend::open_in_memory().unwrap()),
    ];
    assert!(D1Namespace::sharded(memory).build().is_ok());
}

/// A shard other than `key`'s in `kv`.
fn elsewhere<B: Backend>(kv: &D1Namespace<B>, key: &str) -> &'static str {
    NAMES[(kv.shard_of(key) + 1) % NAMES.len()]
}

#[tokio::test]
async fn a_list_never_shows_an_old_copy_a_reshard_left_on_another_shard() {
    let files = Files::new("old-copies");
    let clock = ManualClock::new(T0);
    let kv = sharded(NAMES.map(|name| files.open(name)), &clock);
    let keys: Vec<String> = (0..40).map(|i| format!("k:{i:02}")).collect();
    for (i, key) in keys.iter().enumerate() {
        kv.put(key, "new")
            .unwrap()
            .metadata("new")
            .unwrap()
            .await
            .unwrap();
        // Every other key also has an old copy on a shard it is not placed on.
        if i % 2 == 0 {
            let old = D1Namespace::new(files.open(elsewhere(&kv, key)));
            old.put(key, "old")
                .unwrap()
                .metadata("old")
                .unwrap()
                .await
                .unwrap();
        }
    }
    for limit in [1, 2, 3, 7, 40, 1000] {
        let pages = all_pages(&kv, "k:", limit, |_| {}).await;
        let listed: Vec<Listed> = pages.into_iter().flat_map(|page| page.0).collect();
        let expected: Vec<Listed> = keys
            .iter()
            .map(|key| (key.clone(), None, Some(json!("new"))))
            .collect();
        assert_eq!(listed, expected, "limit {limit}");
    }
}

#[tokio::test]
async fn a_look_up_never_returns_an_old_copy_a_reshard_left_on_another_shard() {
    let files = Files::new("old-copies-find");
    let ns = Order::namespace_sharded(NAMES.map(|name| (name, files.open(name)))).unwrap();
    let model = orders(&ns, 60).await;
    for (i, (key, order)) in model.iter().enumerate() {
        if i % 2 == 0 {
            let old = Order::namespace(files.open(elsewhere(ns.raw(), key)));
            let stale = Order {
                total: order.total + 1,
                ..order.clone()
            };
            old.put(key, &stale).await.unwrap();
        }
    }
    let expected: Vec<(&String, &Order)> = model.iter().filter(|(_, o)| o.user_id == 1).collect();
    for limit in [1, 2, 5, 100] {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut find = ns.find(Order::USER_ID, &1).limit(limit);
            if let Some(cursor) = cursor.take() {
                find = find.cursor(cursor);
            }
            let page = find.await.unwrap();
            found.extend(page.entries.into_iter().map(|(k, e)| (k, e.value)));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let found: Vec<(&String, &Order)> = found.iter().map(|(k, v)| (k, v)).collect();
        assert_eq!(found, expected, "limit {limit}");
    }
    // delete_where counts the entries a read shows, and takes their old copies along.
    let removed = ns.delete_where(Order::USER_ID, &1).await.unwrap();
    assert_eq!(removed, expected.len() as u64, "old copies are not counted");
    let left = ns.find(Order::USER_ID, &1).await.unwrap();
    assert!(left.entries.is_empty() && left.list_complete);
    for name in NAMES {
        let conn = d1ns::rusqlite::Connection::open(files.path(name)).unwrap();
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM orders_kv_entries WHERE json_extract(value, '$.user_id') = 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0, "an old copy of user 1 is left in {name}");
    }
}

#[tokio::test]
async fn an_error_from_a_shard_names_it_and_its_file_and_what_the_others_did() {
    let files = Files::new("shard-errors");
    let clock = ManualClock::new(T0);
    // DB2 answers within 50 ms: another process holds its write lock below.
    let backends = NAMES.map(|name| {
        let backend = files.open(name);
        match name {
            "DB2" => backend.busy_timeout(Duration::from_millis(50)).unwrap(),
            _ => backend,
        }
    });
    let kv = sharded(backends, &clock);
    let mut on = BTreeMap::new();
    for i in 0..30 {
        let key = format!("k{i}");
        kv.put(&key, "v").unwrap().expiration_ttl(60).await.unwrap();
        on.entry(NAMES[kv.shard_of(&key)]).or_insert(key);
    }
    clock.advance(Duration::from_secs(61));
    let locker = d1ns::rusqlite::Connection::open(files.path("DB2")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let error = kv
        .put(&on["DB2"], "w")
        .unwrap()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("database is locked"), "{error}");
    assert!(error.contains("(shard \"DB2\")"), "{error}");
    assert!(
        error.contains(&files.path("DB2").display().to_string()),
        "{error}"
    );
    // A key on another shard is not held up.
    kv.put(&on["DB1"], "w").unwrap().await.unwrap();

    let error = kv.purge_expired(100).await.unwrap_err().to_string();
    let elsewhere = 30 - files.rows_in("DB2");
    assert!(error.contains("(shard \"DB2\")"), "{error}");
    assert!(
        error.contains(&format!(
            "on the other shards {} expired entries were removed",
            elsewhere - 1
        )),
        "{error}"
    );
    locker.execute_batch("ROLLBACK").unwrap();
}
