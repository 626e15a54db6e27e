//! Versionstamps, atomic commits and counters: rules A1-A15 of `atomic-semantics.md` (A16, tables
//! made before versionstamps, is in `upgrade.rs`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Recorder, T0, kv, scratch_db};
use d1ns::{
    Backend, D1Namespace, Error, ManualClock, SqliteBackend, Versionstamp, WriteOptions,
    d1_namespace,
};
use serde::{Deserialize, Serialize};

/// SqliteBackend's futures are ready at once.
fn futures_block<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("SqliteBackend answers at once"),
    }
}

/// The live entry under `key` as text, with string metadata.
async fn text_entry<B: Backend>(kv: &D1Namespace<B>, key: &str) -> d1ns::Entry<String, String> {
    kv.get(key)
        .text_entry::<String>()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} is live"))
}

async fn stamp<B: Backend>(kv: &D1Namespace<B>, key: &str) -> Option<Versionstamp> {
    kv.get(key)
        .bytes_entry::<()>()
        .await
        .unwrap()
        .map(|e| e.version)
}

// ---- Versionstamps ---------------------------------------------------------------------------

#[tokio::test]
async fn a1_every_write_gives_the_entry_a_new_stamp_and_every_read_form_returns_it() {
    let (kv, _) = kv();
    let mut seen = HashSet::new();
    kv.put("k", "v").unwrap().await.unwrap();
    let first = stamp(&kv, "k").await.unwrap();
    assert!(seen.insert(first));
    kv.put_bytes("k", b"v").unwrap().await.unwrap();
    assert!(seen.insert(stamp(&kv, "k").await.unwrap()));
    kv.atomic().put("k", "v").commit().await.unwrap().unwrap();
    assert!(seen.insert(stamp(&kv, "k").await.unwrap()));
    kv.put("k", 5).unwrap().await.unwrap();
    assert!(seen.insert(stamp(&kv, "k").await.unwrap()));
    for mutation in ["sum", "min", "max"] {
        let atomic = kv.atomic();
        let atomic = match mutation {
            "sum" => atomic.sum("k", 1),
            "min" => atomic.min("k", 100),
            _ => atomic.max("k", -100),
        };
        atomic.commit().await.unwrap().unwrap();
        assert!(seen.insert(stamp(&kv, "k").await.unwrap()), "{mutation}");
    }
    kv.increment("k", 1).await.unwrap();
    assert!(seen.insert(stamp(&kv, "k").await.unwrap()));

    // The three read forms agree, and the stamp survives its text form.
    let now = stamp(&kv, "k").await.unwrap();
    let text = kv.get("k").text_entry::<()>().await.unwrap().unwrap();
    let json = kv.get("k").json_entry::<i64, ()>().await.unwrap().unwrap();
    assert_eq!((text.version, json.version), (now, now));
    assert_eq!((text.value.as_str(), json.value), ("7", 7));
    assert_eq!(now.to_string().parse::<Versionstamp>().unwrap(), now);
    // Reads do not change it.
    assert_eq!(stamp(&kv, "k").await.unwrap(), now);
}

#[tokio::test]
async fn a2_the_mutations_of_one_commit_share_the_stamp_it_returns() {
    let (kv, _) = kv();
    let committed = kv
        .atomic()
        .put("a", "1")
        .put_bytes("b", b"2")
        .sum("c", 3)
        .commit()
        .await
        .unwrap()
        .unwrap();
    for key in ["a", "b", "c"] {
        assert_eq!(stamp(&kv, key).await, Some(committed), "{key}");
    }
    let again = kv.atomic().put("a", "1").commit().await.unwrap().unwrap();
    assert_ne!(again, committed);
    assert_eq!(stamp(&kv, "b").await, Some(committed), "b was not written");
}

#[tokio::test]
async fn a2_a_key_written_several_times_in_one_commit_ends_with_the_commits_stamp() {
    let (kv, _) = kv();
    for writes in 1..=4 {
        for kind in ["sum", "put", "mixed"] {
            let key = format!("{kind}{writes}");
            let mut atomic = kv.atomic();
            for i in 0..writes {
                atomic = match (kind, i % 2) {
                    ("sum", _) | ("mixed", 1) => atomic.sum(&key, 1),
                    _ => atomic.put(&key, 10),
                };
            }
            let committed = atomic.commit().await.unwrap().unwrap();
            assert_eq!(stamp(&kv, &key).await, Some(committed), "{key}");
            // So the stamp the commit returned works in the next check.
            let next = kv
                .atomic()
                .check(&key, Some(committed))
                .max(&key, 0)
                .min(&key, 1000)
                .commit()
                .await
                .unwrap();
            assert!(next.is_some(), "{key}");
            assert_eq!(stamp(&kv, &key).await, next, "{key}");
        }
    }
}

#[tokio::test]
async fn a2_stamps_from_two_databases_of_the_same_table_differ() {
    let one = kv().0;
    let two = kv().0;
    let mut seen = HashSet::new();
    for i in 0..50 {
        one.put("k", i).unwrap().await.unwrap();
        two.put("k", i).unwrap().await.unwrap();
        assert!(seen.insert(stamp(&one, "k").await.unwrap()));
        assert!(seen.insert(stamp(&two, "k").await.unwrap()));
    }
}

#[tokio::test]
async fn a3_a_key_deleted_and_written_again_has_a_new_stamp() {
    let (kv, _) = kv();
    kv.put("k", "same").unwrap().await.unwrap();
    let old = stamp(&kv, "k").await.unwrap();
    kv.delete("k").await.unwrap();
    assert_eq!(stamp(&kv, "k").await, None, "the stamp went with the entry");
    kv.put("k", "same").unwrap().await.unwrap();
    assert_ne!(stamp(&kv, "k").await.unwrap(), old);
    // So a check on the old stamp fails although the value is the same (no ABA).
    let outcome = kv
        .atomic()
        .check("k", Some(old))
        .put("k", "changed")
        .commit()
        .await
        .unwrap();
    assert_eq!(outcome, None);
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("same"));
}

#[tokio::test]
async fn a4_the_stamp_comes_with_the_value_in_the_same_one_statement_and_writes_no_row_more() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(recorder.clone());
    kv.put("k", "v").unwrap().await.unwrap();
    recorder.clear();
    kv.get("k").text().await.unwrap();
    kv.get("k").text_entry::<()>().await.unwrap();
    let batches = recorder.batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(
        batches[0], batches[1],
        "the same one statement as a plain get"
    );
    assert_eq!(batches[0].len(), 1);

    // A put is still one statement, and the version lives in the entry's own row.
    recorder.clear();
    kv.put("k", "w").unwrap().await.unwrap();
    assert_eq!(
        recorder.batches(),
        [vec![(recorder.batches()[0][0].0.clone(), 8)]]
    );
    let statement = d1ns::Statement {
        sql: "SELECT count(*), typeof(version) FROM \"_kv_entries\"",
        params: vec![],
    };
    let result = futures_block(recorder.inner.batch(&[statement])).unwrap();
    assert_eq!(
        result[0].rows,
        [vec![
            d1ns::Value::Integer(1),
            d1ns::Value::Text("text".into())
        ]]
    );
}

#[tokio::test]
async fn a5_stamps_are_stored_as_text_and_counters_stay_exact_beyond_2_53() {
    let (kv, _) = kv();
    kv.put("k", "v").unwrap().await.unwrap();
    let version = stamp(&kv, "k").await.unwrap();
    let statement = d1ns::Statement {
        sql: "SELECT version FROM \"_kv_entries\" WHERE key = 'k'",
        params: vec![],
    };
    let result = kv.backend().batch(&[statement]).await.unwrap();
    assert_eq!(
        result[0].rows,
        [vec![d1ns::Value::Text(version.to_string())]]
    );
    // Operands and results beyond 2^53 travel as text, exactly.
    let big = (1i64 << 60) + 1;
    assert_eq!(kv.increment("n", big).await.unwrap(), big);
    assert_eq!(kv.increment("n", 2).await.unwrap(), big + 2);
    assert_eq!(
        kv.get("n").text().await.unwrap().as_deref(),
        Some("1152921504606846979")
    );
}

// ---- Checks and commit -----------------------------------------------------------------------

#[tokio::test]
async fn a6_a_check_holds_on_a_live_entry_with_that_stamp_or_none_on_a_missing_or_expired_one() {
    let (kv, clock) = kv();
    let commit = |key: &'static str, version: Option<Versionstamp>| {
        let kv = kv.clone();
        async move {
            kv.atomic()
                .check(key, version)
                .put("log", key)
                .commit()
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(commit("absent", None).await);
    kv.put("live", "v").unwrap().await.unwrap();
    let live = stamp(&kv, "live").await.unwrap();
    assert!(commit("live", Some(live)).await);
    assert!(!commit("live", None).await, "None fails on a live key");
    assert!(!commit("live", Some(Versionstamp::ZERO)).await);
    assert!(!commit("absent", Some(live)).await);

    kv.put("short", "v")
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    let short = stamp(&kv, "short").await.unwrap();
    assert!(commit("short", Some(short)).await);
    clock.advance(std::time::Duration::from_millis(1000));
    assert!(
        commit("short", None).await,
        "an expired entry counts as absent"
    );
    assert!(!commit("short", Some(short)).await);
}

#[tokio::test]
async fn a7_a_commit_is_one_batch_and_a_failed_check_writes_nothing() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(recorder.clone());
    kv.put("a", "1").unwrap().await.unwrap();
    kv.put("b", "2").unwrap().await.unwrap();
    let a = stamp(&kv, "a").await.unwrap();
    recorder.clear();
    let committed = kv
        .atomic()
        .check("a", Some(a))
        .check("new", None)
        .put("a", "10")
        .delete("b")
        .sum("c", 1)
        .commit()
        .await
        .unwrap();
    assert!(committed.is_some());
    assert_eq!(recorder.batches().len(), 1, "one round trip");
    assert_eq!(
        recorder.batches()[0].len(),
        4,
        "one check statement, three mutations"
    );

    // The same again: the check on `a` now fails, and nothing of it is written.
    let before = (
        kv.get("a").text().await.unwrap(),
        kv.get("b").text().await.unwrap(),
        kv.get("c").text().await.unwrap(),
        stamp(&kv, "a").await,
    );
    let outcome = kv
        .atomic()
        .check("new", None)
        .check("a", Some(a))
        .put("a", "20")
        .put("b", "again")
        .sum("c", 1)
        .delete("c")
        .commit()
        .await
        .unwrap();
    assert_eq!(outcome, None);
    let after = (
        kv.get("a").text().await.unwrap(),
        kv.get("b").text().await.unwrap(),
        kv.get("c").text().await.unwrap(),
        stamp(&kv, "a").await,
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn a7_checks_see_the_data_as_it_was_before_the_commits_own_mutations() {
    let (kv, _) = kv();
    // The put comes first, yet the check on the same key still sees it absent.
    let committed = kv
        .atomic()
        .put("k", "v")
        .check("k", None)
        .commit()
        .await
        .unwrap();
    assert!(committed.is_some());
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a7_a_commit_of_checks_only_writes_nothing_and_reports_whether_they_hold() {
    let (kv, _) = kv();
    kv.put("k", "v").unwrap().await.unwrap();
    let version = stamp(&kv, "k").await.unwrap();
    assert!(
        kv.atomic()
            .check("k", Some(version))
            .commit()
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(kv.atomic().check("k", None).commit().await.unwrap(), None);
    assert_eq!(stamp(&kv, "k").await, Some(version));
}

#[tokio::test]
async fn a8_a_mutation_that_breaks_a_kv_rule_fails_with_the_plain_error_and_sends_nothing() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::builder(recorder.clone())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    kv.put("keep", "v").unwrap().await.unwrap();
    recorder.clear();
    let long_key = "k".repeat(513);
    let huge = vec![0u8; 26_214_401];
    let cases: Vec<(d1ns::AtomicOperation<_>, String)> = vec![
        (
            kv.atomic().put("ok", "v").put(&long_key, "v"),
            kv.put(&long_key, "v")
                .unwrap()
                .await
                .unwrap_err()
                .to_string(),
        ),
        (
            kv.atomic().put("ok", "v").put("", "v"),
            kv.put("", "v").unwrap().await.unwrap_err().to_string(),
        ),
        (
            kv.atomic().put("ok", "v").delete(".."),
            kv.delete("..").await.unwrap_err().to_string(),
        ),
        (
            kv.atomic().put("ok", "v").put_bytes("big", &huge),
            kv.put_bytes("big", &huge)
                .unwrap()
                .await
                .unwrap_err()
                .to_string(),
        ),
        (
            kv.atomic().put("ok", "v").put_with(
                "m",
                "v",
                WriteOptions::new().metadata("x".repeat(1100)),
            ),
            kv.put("m", "v")
                .unwrap()
                .metadata("x".repeat(1100))
                .unwrap()
                .await
                .unwrap_err()
                .to_string(),
        ),
        (
            kv.atomic()
                .put("ok", "v")
                .put_with("e", "v", WriteOptions::new().expiration(1)),
            kv.put("e", "v")
                .unwrap()
                .expiration(1)
                .await
                .unwrap_err()
                .to_string(),
        ),
        (
            kv.atomic()
                .put("ok", "v")
                .sum_with("t", 1, WriteOptions::new().expiration_ttl(0)),
            kv.put("t", "v")
                .unwrap()
                .expiration_ttl(0)
                .await
                .unwrap_err()
                .to_string(),
        ),
        (
            kv.atomic().put("ok", "v").check("", None),
            kv.get("").text().await.unwrap_err().to_string(),
        ),
    ];
    recorder.clear();
    for (atomic, plain) in cases {
        let error = atomic.commit().await.unwrap_err();
        assert_eq!(error.to_string(), plain);
    }
    assert!(recorder.batches().is_empty(), "nothing was sent");
    assert_eq!(kv.get("ok").text().await.unwrap(), None);

    // A value that cannot be serialized fails the commit, naming the key.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), 3);
    let error = kv.atomic().put("ok", "v").put("map", &bad).commit().await;
    assert!(
        matches!(&error, Err(Error::Serialize { key, part: "value", .. }) if key == "map"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a8_a_database_failure_writes_nothing() {
    let (kv, _) = kv();
    kv.put("a", "before").unwrap().await.unwrap();
    // A trigger of the user's that refuses one key, as a database failure mid-batch.
    kv.backend()
        .batch(&[d1ns::Statement {
            sql: "CREATE TRIGGER refuse BEFORE INSERT ON \"_kv_entries\" \
                  WHEN NEW.key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by hand'); END",
            params: vec![],
        }])
        .await
        .unwrap();
    let error = kv
        .atomic()
        .put("a", "after")
        .sum("n", 5)
        .put("refused", "x")
        .commit()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("refused by hand"), "{error}");
    assert_eq!(kv.get("a").text().await.unwrap().as_deref(), Some("before"));
    assert_eq!(kv.get("n").text().await.unwrap(), None);
    // increment too.
    assert!(kv.increment("refused", 1).await.is_err());
    assert_eq!(kv.get("refused").text().await.unwrap(), None);
}

#[tokio::test]
async fn a9_mutations_apply_in_order_and_a_key_may_repeat() {
    let (kv, _) = kv();
    kv.atomic()
        .put("k", "1")
        .sum("k", 2)
        .sum("k", 3)
        .put("last", "first")
        .put("last", "second")
        .put("gone", "x")
        .delete("gone")
        .delete("back")
        .put("back", "here")
        .max("m", 3)
        .max("m", 9)
        .min("m", 5)
        .commit()
        .await
        .unwrap()
        .unwrap();
    let text = |key: &'static str| {
        let kv = kv.clone();
        async move { kv.get(key).text().await.unwrap() }
    };
    assert_eq!(text("k").await.as_deref(), Some("6"));
    assert_eq!(text("last").await.as_deref(), Some("second"));
    assert_eq!(text("gone").await, None);
    assert_eq!(text("back").await.as_deref(), Some("here"));
    assert_eq!(text("m").await.as_deref(), Some("5"));
}

#[tokio::test]
async fn a10_a_commit_holds_100_mutations_and_100_checks_and_refuses_more_before_sending() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(recorder.clone());
    let mut atomic = kv.atomic();
    for i in 0..100 {
        atomic = atomic
            .check(&format!("c{i}"), None)
            .put(&format!("k{i}"), i);
    }
    assert!(atomic.commit().await.unwrap().is_some());
    assert_eq!(kv.get("k99").json::<i32>().await.unwrap(), Some(99));

    recorder.clear();
    let mut atomic = kv.atomic();
    for i in 0..101 {
        atomic = atomic.sum("n", i);
    }
    let error = atomic.commit().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::CommitTooLarge {
                what: "mutations",
                count: 101,
                limit: 100
            }
        ),
        "{error:?}"
    );
    let mut atomic = kv.atomic();
    for i in 0..101 {
        atomic = atomic.check(&format!("c{i}"), None);
    }
    let error = atomic.commit().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::CommitTooLarge {
                what: "checks",
                count: 101,
                ..
            }
        ),
        "{error:?}"
    );
    let big = vec![b'x'; 20 * 1024 * 1024];
    let error = kv
        .atomic()
        .put_bytes("a", &big)
        .put_bytes("b", &big)
        .commit()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::CommitTooLarge { what: "bytes", .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("at most 33554432 bytes"),
        "{error}"
    );
    assert!(recorder.batches().is_empty(), "nothing was sent");
    assert_eq!(kv.get("n").text().await.unwrap(), None);
}

#[tokio::test]
async fn a10_values_stored_in_chunks_work_in_a_commit() {
    let (kv, _) = kv();
    let long: String = (0..3_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    kv.put("long", "short").unwrap().await.unwrap();
    let version = stamp(&kv, "long").await.unwrap();
    kv.atomic()
        .check("long", Some(version))
        .put("long", long.as_str())
        .put_bytes("bytes", &vec![7u8; 5000])
        .commit()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kv.get("long").text().await.unwrap(), Some(long.clone()));
    assert_eq!(
        kv.get("bytes").bytes().await.unwrap(),
        Some(vec![7u8; 5000])
    );
    // Replaced by a short value in a commit that then fails: the long value stays whole.
    let outcome = kv
        .atomic()
        .put("long", "short again")
        .check("bytes", None)
        .commit()
        .await
        .unwrap();
    assert_eq!(outcome, None);
    assert_eq!(kv.get("long").text().await.unwrap(), Some(long));
}

// ---- Mutations -------------------------------------------------------------------------------

#[tokio::test]
async fn a11_puts_in_a_commit_take_the_options_of_a_plain_put() {
    let (kv, clock) = kv();
    kv.atomic()
        .put_with(
            "k",
            serde_json::json!({"a": 1}),
            WriteOptions::new()
                .expiration_ttl(5)
                .metadata(serde_json::json!({"m": true})),
        )
        .put_bytes_with("b", b"\xff", WriteOptions::new().expiration(T0 / 1000 + 60))
        .commit()
        .await
        .unwrap()
        .unwrap();
    let entry = kv
        .get("k")
        .json_entry::<serde_json::Value, serde_json::Value>()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.value, serde_json::json!({"a": 1}));
    assert_eq!(entry.metadata, Some(serde_json::json!({"m": true})));
    assert_eq!(entry.expiration, Some(T0 / 1000 + 5));
    let bytes = kv.get("b").bytes_entry::<()>().await.unwrap().unwrap();
    assert_eq!(
        (bytes.value, bytes.expiration),
        (vec![0xff], Some(T0 / 1000 + 60))
    );
    clock.advance(std::time::Duration::from_millis(5000));
    assert_eq!(
        kv.get("k").text().await.unwrap(),
        None,
        "expired as a plain put's would"
    );
    // `null` metadata means none (K10).
    kv.atomic()
        .put_with("n", "v", WriteOptions::new().metadata(()))
        .commit()
        .await
        .unwrap();
    let (_, meta) = kv
        .get("n")
        .text_with_metadata::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(meta, None);
}

#[tokio::test]
async fn a12_sum_counts_a_missing_key_as_0_and_stores_decimal_text() {
    let (kv, _) = kv();
    kv.atomic().sum("n", 42).commit().await.unwrap().unwrap();
    assert_eq!(kv.get("n").text().await.unwrap().as_deref(), Some("42"));
    assert_eq!(kv.get("n").json::<i64>().await.unwrap(), Some(42));
    kv.atomic().sum("n", -50).commit().await.unwrap().unwrap();
    assert_eq!(kv.get("n").json::<i64>().await.unwrap(), Some(-8));
    // A value put as a number, or as bytes of digits, is a counter too.
    kv.put("p", 10).unwrap().await.unwrap();
    kv.put_bytes("b", b"-3").unwrap().await.unwrap();
    kv.atomic()
        .sum("p", 1)
        .sum("b", 1)
        .commit()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kv.get("p").text().await.unwrap().as_deref(), Some("11"));
    assert_eq!(kv.get("b").text().await.unwrap().as_deref(), Some("-2"));
}

#[tokio::test]
async fn a12_a_sum_on_a_value_that_is_not_an_integer_fails_naming_the_key_and_writes_nothing() {
    let (kv, _) = kv();
    let long = "1".repeat(2000);
    let texts = [
        "abc",
        "4.5",
        "042",
        " 1",
        "+1",
        "",
        "1e3",
        "9223372036854775808",
        long.as_str(),
    ];
    // Bytes too: empty, over 1 KiB (in chunks), not UTF-8.
    let bytes: [&[u8]; 3] = [b"", &[b'1'; 2000], b"\xff"];
    let values = texts
        .iter()
        .map(|t| (t.to_string(), t.as_bytes().to_vec(), false))
        .chain(bytes.iter().map(|b| (format!("{b:?}"), b.to_vec(), true)));
    for (i, (stored, raw, as_bytes)) in values.enumerate() {
        let key = format!("bad{i}");
        if as_bytes {
            kv.put_bytes(&key, &raw).unwrap().await.unwrap();
        } else {
            kv.put(&key, stored.as_str()).unwrap().await.unwrap();
        }
        let before = stamp(&kv, &key).await;
        for op in ["sum", "min", "max"] {
            let atomic = kv.atomic().put("side", "effect");
            let atomic = match op {
                "sum" => atomic.sum(&key, 1),
                "min" => atomic.min(&key, 1),
                _ => atomic.max(&key, 1),
            };
            let error = atomic.commit().await.unwrap_err();
            match &error {
                Error::NotAnInteger { key: k, operation } => {
                    assert_eq!((k.as_str(), *operation), (key.as_str(), op), "{stored:?}")
                }
                other => panic!("{stored:?}: expected NotAnInteger, got {other:?}"),
            }
            assert!(error.to_string().contains(&format!("{key:?}")), "{error}");
        }
        assert!(matches!(
            kv.increment(&key, 1).await,
            Err(Error::NotAnInteger { .. })
        ));
        assert_eq!(kv.get(&key).bytes().await.unwrap(), Some(raw));
        assert_eq!(stamp(&kv, &key).await, before);
        assert_eq!(
            kv.get("side").text().await.unwrap(),
            None,
            "nothing written"
        );
    }
}

#[tokio::test]
async fn a12_an_overflow_fails_and_writes_nothing_where_deno_would_wrap() {
    let (kv, _) = kv();
    kv.put("max", i64::MAX).unwrap().await.unwrap();
    kv.put("min", i64::MIN).unwrap().await.unwrap();
    let error = kv
        .atomic()
        .put("side", "effect")
        .sum("max", 1)
        .commit()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Overflow { key, delta: 1 } if key == "max"),
        "{error:?}"
    );
    assert!(matches!(
        kv.increment("min", -1).await,
        Err(Error::Overflow { .. })
    ));
    assert!(matches!(
        kv.increment("min", i64::MIN).await,
        Err(Error::Overflow { .. })
    ));
    assert_eq!(kv.get("side").text().await.unwrap(), None);
    assert_eq!(kv.get("max").json::<i64>().await.unwrap(), Some(i64::MAX));
    assert_eq!(kv.get("min").json::<i64>().await.unwrap(), Some(i64::MIN));
    // The edges themselves are fine.
    assert_eq!(kv.increment("max", 0).await.unwrap(), i64::MAX);
    assert_eq!(kv.increment("max", -1).await.unwrap(), i64::MAX - 1);
    assert_eq!(kv.increment("max", 1).await.unwrap(), i64::MAX);
    assert_eq!(kv.increment("min", i64::MAX).await.unwrap(), -1);
}

#[tokio::test]
async fn a12_min_and_max_keep_the_smaller_or_larger_and_start_from_the_operand() {
    let (kv, _) = kv();
    kv.atomic()
        .min("lo", 5)
        .max("hi", 5)
        .commit()
        .await
        .unwrap();
    kv.atomic()
        .min("lo", 7)
        .max("hi", 3)
        .commit()
        .await
        .unwrap();
    assert_eq!(kv.get("lo").json::<i64>().await.unwrap(), Some(5));
    assert_eq!(kv.get("hi").json::<i64>().await.unwrap(), Some(5));
    kv.atomic()
        .min("lo", -1)
        .max("hi", i64::MAX)
        .commit()
        .await
        .unwrap();
    assert_eq!(kv.get("lo").json::<i64>().await.unwrap(), Some(-1));
    assert_eq!(kv.get("hi").json::<i64>().await.unwrap(), Some(i64::MAX));
}

#[tokio::test]
async fn a13_a_counter_created_by_a_sum_takes_its_options_and_a_live_one_keeps_its_own() {
    let (kv, clock) = kv();
    let window = || WriteOptions::new().expiration_ttl(60).metadata("window");
    // The fixed-window rate limiter: the first hit starts a 60 s window.
    assert_eq!(kv.increment_with("hits", 1, window()).await.unwrap(), 1);
    clock.advance(std::time::Duration::from_millis(30_000));
    assert_eq!(kv.increment_with("hits", 1, window()).await.unwrap(), 2);
    let entry = text_entry(&kv, "hits").await;
    assert_eq!(
        entry.expiration,
        Some(T0 / 1000 + 60),
        "not extended by later hits"
    );
    assert_eq!(entry.metadata.as_deref(), Some("window"));
    clock.advance(std::time::Duration::from_millis(30_000));
    // The window ended: the next hit starts a new one, from 1.
    assert_eq!(kv.increment_with("hits", 1, window()).await.unwrap(), 1);
    let entry = text_entry(&kv, "hits").await;
    assert_eq!(entry.expiration, Some(T0 / 1000 + 120));

    // On a live entry with metadata and expiration of its own, a sum keeps both.
    kv.put("kept", 1)
        .unwrap()
        .metadata("mine")
        .unwrap()
        .expiration_ttl(500)
        .await
        .unwrap();
    kv.atomic()
        .sum_with(
            "kept",
            1,
            WriteOptions::new().metadata("theirs").expiration_ttl(5),
        )
        .commit()
        .await
        .unwrap();
    let entry = text_entry(&kv, "kept").await;
    assert_eq!(entry.value, "2");
    assert_eq!(entry.metadata.as_deref(), Some("mine"));
    assert_eq!(entry.expiration, Some(T0 / 1000 + 60 + 500));
    // A sum without options on a missing key: no expiration, no metadata.
    kv.atomic().sum("plain", 1).commit().await.unwrap();
    let entry = text_entry(&kv, "plain").await;
    assert_eq!((entry.metadata, entry.expiration), (None, None));
}

#[tokio::test]
async fn a13_a_sum_over_an_expired_long_value_starts_from_the_operand_and_drops_its_chunks() {
    let (kv, clock) = kv();
    kv.put("k", "x".repeat(5000).as_str())
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(1000));
    assert_eq!(kv.increment("k", 3).await.unwrap(), 3);
    let chunks = kv
        .backend()
        .batch(&[d1ns::Statement {
            sql: "SELECT count(*) FROM \"_kv_entries$chunks\"",
            params: vec![],
        }])
        .await
        .unwrap();
    assert_eq!(chunks[0].rows, [vec![d1ns::Value::Integer(0)]]);
}

#[tokio::test]
async fn a14_increment_is_one_round_trip_of_one_statement() {
    let recorder = Recorder::new(SqliteBackend::open_in_memory().unwrap());
    let kv = D1Namespace::new(recorder.clone());
    kv.put("warm", "up").unwrap().await.unwrap();
    recorder.clear();
    assert_eq!(kv.increment("n", 5).await.unwrap(), 5);
    assert_eq!(kv.increment("n", -2).await.unwrap(), 3);
    let batches = recorder.batches();
    assert_eq!(batches.len(), 2);
    assert!(batches.iter().all(|batch| batch.len() == 1));
}

// ---- Typed namespaces --------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct CartMeta {
    items: usize,
}

#[d1_namespace(name = "carts", ttl = 30, metadata = CartMeta)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
struct Cart {
    items: Vec<String>,
}

#[tokio::test]
async fn a15_typed_reads_return_the_stamp_and_typed_commits_apply_the_default_ttl() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let carts = Cart::namespace_with(backend.clone(), |b| b.clock(ManualClock::new(T0))).unwrap();
    let cart = Cart {
        items: vec!["apple".into()],
    };
    let committed = carts
        .atomic()
        .check("alice", None)
        .put("alice", &cart)
        .commit()
        .await
        .unwrap()
        .unwrap();
    let entry = carts.get_with_metadata("alice").await.unwrap().unwrap();
    assert_eq!(entry.version, committed);
    assert_eq!(
        entry.expiration,
        Some(T0 / 1000 + 30),
        "the namespace's ttl"
    );
    assert_eq!(entry.value, cart);

    // A compare-and-swap on the typed value, with metadata.
    let mut next = entry.value.clone();
    next.items.push("pear".into());
    let put = carts.put("alice", &next).metadata(CartMeta { items: 2 });
    let committed = carts
        .atomic()
        .check("alice", Some(entry.version))
        .put_with(put)
        .delete("bob")
        .commit()
        .await
        .unwrap();
    assert!(committed.is_some());
    let entry = carts.get_with_metadata("alice").await.unwrap().unwrap();
    assert_eq!(entry.metadata, Some(CartMeta { items: 2 }));
    assert_eq!(entry.value.items.len(), 2);
    // The old stamp no longer holds.
    let stale = carts
        .atomic()
        .check("alice", Some(committed.unwrap_or(Versionstamp::ZERO)))
        .put("alice", &Cart::default())
        .commit()
        .await
        .unwrap();
    assert!(
        stale.is_some(),
        "the stamp the last commit returned is the entry's"
    );
    let stale = carts
        .atomic()
        .check("alice", committed)
        .put("alice", &Cart::default())
        .commit()
        .await
        .unwrap();
    assert_eq!(stale, None);

    // `raw()` goes on with the untyped builder: a counter beside the typed put, in one commit.
    let committed = carts
        .atomic()
        .put("bob", &cart)
        .raw()
        .sum("carts:count", 1)
        .commit()
        .await
        .unwrap()
        .unwrap();
    let bob = carts.get_with_metadata("bob").await.unwrap().unwrap();
    assert_eq!(
        (bob.version, bob.expiration),
        (committed, Some(T0 / 1000 + 30))
    );
    assert_eq!(
        carts.raw().get("carts:count").json::<i64>().await.unwrap(),
        Some(1)
    );
}

// ---- Concurrency -------------------------------------------------------------------------------

/// One compare-and-swap increment of `key`, retried until it commits.
async fn cas_increment<B: Backend>(kv: &D1Namespace<B>, key: &str) -> usize {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let entry = kv.get(key).json_entry::<u64, ()>().await.unwrap();
        let (value, version) = match entry {
            Some(entry) => (entry.value, Some(entry.version)),
            None => (0, None),
        };
        let committed = kv
            .atomic()
            .check(key, version)
            .put(key, value + 1)
            .commit()
            .await
            .unwrap();
        if committed.is_some() {
            return attempts;
        }
        tokio::task::yield_now().await;
    }
}

/// 8 tasks x 25 compare-and-swap increments, 25 sums and 25 `increment`s, on the namespaces
/// given round-robin.
async fn no_lost_update<B: Backend + Send + Sync + 'static>(namespaces: Vec<D1Namespace<B>>) {
    let mut tasks = Vec::new();
    for task in 0..8 {
        let kv = namespaces[task % namespaces.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0;
            for _ in 0..25 {
                attempts += cas_increment(&kv, "cas").await;
                kv.atomic().sum("sum", 1).commit().await.unwrap().unwrap();
                kv.increment("inc", 1).await.unwrap();
            }
            attempts
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        attempts += task.await.unwrap();
    }
    let kv = &namespaces[0];
    assert_eq!(kv.get("cas").json::<u64>().await.unwrap(), Some(200));
    assert_eq!(kv.get("sum").json::<u64>().await.unwrap(), Some(200));
    assert_eq!(kv.get("inc").json::<u64>().await.unwrap(), Some(200));
    assert!(attempts >= 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_compare_and_swap_sums_and_increments_lose_no_update() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    no_lost_update(vec![D1Namespace::new(backend)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_backends_on_one_file_lose_no_update_and_never_report_a_lock() {
    let path = scratch_db("atomic_two_backends");
    let one = SqliteBackend::open(&path).unwrap();
    let two = SqliteBackend::open(&path).unwrap();
    no_lost_update(vec![D1Namespace::new(one), D1Namespace::new(two)]).await;
}
