//! `list` (K25-K31): order, prefixes, limits and cursors.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{kv, names};
use d1ns::{D1Namespace, Error, ListResponse, SqliteBackend};
use serde_json::json;

async fn put_all(kv: &D1Namespace<SqliteBackend>, keys: &[&str]) {
    for key in keys {
        kv.put(key, "v").unwrap().await.unwrap();
    }
}

#[tokio::test]
async fn k25_keys_carry_name_expiration_and_metadata() {
    let (kv, _) = kv();
    kv.put("plain", "v").unwrap().await.unwrap();
    kv.put("rich", "v")
        .unwrap()
        .expiration_ttl(60)
        .metadata(json!({"a": 1}))
        .unwrap()
        .await
        .unwrap();
    let page = kv.list().await.unwrap();
    assert!(page.list_complete);
    assert_eq!(page.cursor, None);
    assert_eq!(page.keys[0].name, "plain");
    assert_eq!(
        (page.keys[0].expiration, page.keys[0].metadata.clone()),
        (None, None)
    );
    assert_eq!(page.keys[1].name, "rich");
    assert_eq!(page.keys[1].expiration, Some(common::T0 / 1000 + 60));
    assert_eq!(page.keys[1].metadata, Some(json!({"a": 1})));
    // Same field names as workers-rs, so serialized responses match too.
    let serialized = serde_json::to_value(&page).unwrap();
    assert_eq!(serialized["keys"][1]["name"], "rich");
    assert_eq!(serialized["list_complete"], true);
}

#[tokio::test]
async fn k26_order_is_by_utf8_bytes() {
    let (kv, _) = kv();
    put_all(
        &kv,
        &[
            "é",
            "key",
            "z",
            ", ",
            "KEY",
            "!",
            "\u{10FFFF}",
            "a\u{0}b",
            "a",
        ],
    )
    .await;
    assert_eq!(
        names(&kv, "").await,
        [
            "!",
            ", ",
            "KEY",
            "a",
            "a\u{0}b",
            "key",
            "z",
            "é",
            "\u{10FFFF}"
        ]
    );
}

#[tokio::test]
async fn k27_prefix_wildcards_are_ordinary_characters() {
    let (kv, _) = kv();
    put_all(
        &kv,
        &[
            "100%",
            "100%off",
            "1000",
            "a_b",
            "axb",
            "a_",
            "back\\slash",
            "backXslash",
            "A_b",
        ],
    )
    .await;
    assert_eq!(names(&kv, "100%").await, ["100%", "100%off"]);
    assert_eq!(names(&kv, "a_").await, ["a_", "a_b"]);
    assert_eq!(names(&kv, "back\\").await, ["back\\slash"]);
    assert_eq!(names(&kv, "A").await, ["A_b"]);
}

#[tokio::test]
async fn k27_multibyte_characters_after_the_prefix_are_included() {
    let (kv, _) = kv();
    put_all(
        &kv,
        &[
            "p",
            "pé",
            "p\u{10FFFF}",
            "p\u{10FFFF}\u{10FFFF}",
            "p日本",
            "q",
            "o\u{10FFFF}",
        ],
    )
    .await;
    assert_eq!(
        names(&kv, "p").await,
        ["p", "pé", "p日本", "p\u{10FFFF}", "p\u{10FFFF}\u{10FFFF}"]
    );
    assert_eq!(
        names(&kv, "p\u{10FFFF}").await,
        ["p\u{10FFFF}", "p\u{10FFFF}\u{10FFFF}"]
    );
    assert_eq!(names(&kv, "日").await, Vec::<String>::new());
}

#[tokio::test]
async fn k27_prefixes_made_of_the_highest_characters_still_match() {
    let (kv, _) = kv();
    let max = "\u{10FFFF}";
    let longest = max.repeat(128); // 512 bytes: the longest key
    put_all(
        &kv,
        &[
            max,
            &max.repeat(2),
            &longest,
            "\u{10FFFE}",
            "\u{D7FF}x",
            "\u{E000}",
        ],
    )
    .await;
    assert_eq!(
        names(&kv, max).await,
        [max.to_string(), max.repeat(2), longest.clone()]
    );
    assert_eq!(names(&kv, &max.repeat(128)).await, [longest]);
    assert_eq!(names(&kv, "\u{D7FF}").await, ["\u{D7FF}x"]);
}

#[tokio::test]
async fn k28_limit_defaults_to_1000_and_0_means_default() {
    let (kv, _) = kv();
    for i in 0..1001 {
        kv.put(&format!("k{i:04}"), "").unwrap().await.unwrap();
    }
    for page in [kv.list().await.unwrap(), kv.list().limit(0).await.unwrap()] {
        assert_eq!(page.keys.len(), 1000);
        assert!(!page.list_complete);
    }
    assert_eq!(kv.list().limit(1000).await.unwrap().keys.len(), 1000);
    assert_eq!(kv.list().limit(1).await.unwrap().keys.len(), 1);
}

#[tokio::test]
async fn k28_limit_above_1000_fails() {
    let (kv, _) = kv();
    let error = kv.list().limit(1001).execute().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000."
    );
    assert!(matches!(error, Error::InvalidListLimit { limit: 1001 }));
}

#[tokio::test]
async fn k29_pages_end_with_list_complete_and_no_cursor() {
    let (kv, _) = kv();
    put_all(&kv, &["a", "b", "c", "d"]).await;
    let first = kv.list().limit(2).await.unwrap();
    assert!(!first.list_complete);
    let second = kv
        .list()
        .limit(2)
        .cursor(first.cursor.unwrap())
        .await
        .unwrap();
    // Exactly the remaining keys: the last page says so and has no cursor.
    assert_eq!(
        second
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["c", "d"]
    );
    assert!(second.list_complete);
    assert_eq!(second.cursor, None);
}

#[tokio::test]
async fn k29_k30_paging_2500_keys_visits_each_once_and_sees_later_inserts() {
    let (kv, _) = kv();
    let mut expected = BTreeSet::new();
    for i in 0..2500 {
        let key = format!("key{:05}", i * 2);
        kv.put(&key, "").unwrap().await.unwrap();
        expected.insert(key);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let limits = [1000, 700, 1000, 1000]; // the limit may change between pages (K30)
    for (page_no, limit) in limits.iter().cycle().enumerate() {
        let mut request = kv.list().prefix("key".to_string()).limit(*limit);
        if let Some(cursor) = cursor.take() {
            request = request.cursor(cursor);
        }
        let page: ListResponse = request.await.unwrap();
        seen.extend(page.keys.iter().map(|k| k.name.clone()));
        if page.list_complete {
            assert_eq!(page.cursor, None);
            break;
        }
        let last = page.keys.last().unwrap().name.clone();
        // Between pages: keys after the cursor (seen later), one before it (never seen).
        let after = format!("key9{page_no}"); // beyond every key listed so far
        let just_after = format!("{last}!"); // the next key in byte order after the cursor
        let earlier = "key0".to_string(); // before every listed key
        for key in [&after, &just_after, &earlier] {
            kv.put(key, "").unwrap().await.unwrap();
        }
        expected.insert(after);
        expected.insert(just_after);
        cursor = page.cursor;
        assert!(page_no < 10, "paging did not end");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a key was listed twice");
    assert_eq!(unique, expected);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "pages are in key order"
    );
}

#[tokio::test]
async fn k30_malformed_cursor_is_an_error() {
    let (kv, _) = kv();
    for cursor in ["garbage!", "", "AAAA", "%%%"] {
        let error = kv
            .list()
            .cursor(cursor.to_string())
            .execute()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidCursor { cursor: c } if c == cursor),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn k30_a_huge_forged_cursor_is_not_echoed_whole() {
    let (kv, _) = kv();
    let huge = "é".repeat(5_000_000);
    let error = kv.list().cursor(huge.clone()).execute().await.unwrap_err();
    let text = error.to_string();
    assert!(text.len() < 300, "{} bytes of message", text.len());
    assert!(
        text.starts_with("KV GET failed: 400 Invalid cursor \"éé")
            && text.contains("(10000000 bytes)"),
        "{text}"
    );
    // The error still carries the whole cursor for a program that wants it.
    assert!(matches!(&error, Error::InvalidCursor { cursor } if *cursor == huge));
    // A short one is shown whole, as before.
    let short = kv
        .list()
        .cursor("garbage!".to_owned())
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        short.to_string(),
        "KV GET failed: 400 Invalid cursor \"garbage!\": pass back a cursor that list() returned."
    );
}

#[tokio::test]
async fn k30_cursor_before_the_prefix_starts_at_the_prefix() {
    let (kv, _) = kv();
    put_all(&kv, &["a1", "a2", "b1", "b2"]).await;
    let first = kv.list().limit(1).await.unwrap();
    let page = kv
        .list()
        .prefix("b".to_string())
        .cursor(first.cursor.unwrap())
        .await
        .unwrap();
    assert_eq!(
        page.keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["b1", "b2"]
    );
}

#[tokio::test]
async fn k31_expired_keys_never_appear() {
    let (kv, clock) = kv();
    kv.put("live", "v").unwrap().await.unwrap();
    kv.put("short", "v")
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    kv.put("shorter", "v")
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(names(&kv, "").await, ["live"]);
    // Expired rows do not fill pages either.
    let page = kv.list().limit(1).await.unwrap();
    assert_eq!(page.keys[0].name, "live");
    assert!(page.list_complete);
}
