//! The KV behaviour spec (../shared/kv-semantics.md), rule by rule, on embedded SQLite with a
//! manual clock. Each test names the rule it pins down.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{T0, kv};
use d1ns::{Error, KeyProblem, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn msg<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("the call should fail").to_string()
}

// ---- Keys ----------------------------------------------------------------------------------

#[tokio::test]
async fn k1_key_of_512_bytes_is_accepted_by_every_operation() {
    let (kv, _) = kv();
    let key = "k".repeat(512);
    kv.put(&key, "v").unwrap().await.unwrap();
    assert_eq!(kv.get(&key).text().await.unwrap().as_deref(), Some("v"));
    assert_eq!(
        kv.get_bulk(&[&key]).text().await.unwrap()[&key].as_deref(),
        Some("v")
    );
    kv.delete(&key).await.unwrap();
    assert_eq!(kv.get(&key).text().await.unwrap(), None);
}

#[tokio::test]
async fn k1_keys_are_case_sensitive() {
    let (kv, _) = kv();
    kv.put("Key", "upper").unwrap().await.unwrap();
    kv.put("key", "lower").unwrap().await.unwrap();
    assert_eq!(
        kv.get("Key").text().await.unwrap().as_deref(),
        Some("upper")
    );
    assert_eq!(
        kv.get("key").text().await.unwrap().as_deref(),
        Some("lower")
    );
    assert_eq!(kv.get("KEY").text().await.unwrap(), None);
}

#[tokio::test]
async fn k2_empty_key_is_rejected() {
    let (kv, _) = kv();
    let expected = "Key name cannot be empty.";
    assert_eq!(msg(kv.get("").text().await), expected);
    assert_eq!(msg(kv.put("", "v").unwrap().execute().await), expected);
    assert_eq!(msg(kv.delete("").await), expected);
    assert!(matches!(
        kv.get("").bytes().await,
        Err(Error::InvalidKey {
            problem: KeyProblem::Empty,
            operation: Operation::Get,
            ..
        })
    ));
}

#[tokio::test]
async fn k3_dot_and_dot_dot_are_rejected() {
    let (kv, _) = kv();
    assert_eq!(
        msg(kv.put(".", "v").unwrap().execute().await),
        "\".\" is not allowed as a key name."
    );
    assert_eq!(
        msg(kv.get("..").text().await),
        "\"..\" is not allowed as a key name."
    );
    assert_eq!(
        msg(kv.delete(".").await),
        "\".\" is not allowed as a key name."
    );
    // Only the exact names: keys that merely contain dots are fine.
    kv.put("...", "v").unwrap().await.unwrap();
    kv.put("./a", "v").unwrap().await.unwrap();
}

#[tokio::test]
async fn k4_key_of_513_bytes_fails_with_the_verb_of_the_operation() {
    let (kv, _) = kv();
    let key = "k".repeat(513);
    let text = |verb: &str| {
        format!(
            "KV {verb} failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
        )
    };
    assert_eq!(msg(kv.get(&key).text().await), text("GET"));
    assert_eq!(
        msg(kv.get(&key).text_with_metadata::<Value>().await),
        text("GET")
    );
    assert_eq!(msg(kv.put(&key, "v").unwrap().execute().await), text("PUT"));
    assert_eq!(
        msg(kv.put_bytes(&key, b"v").unwrap().execute().await),
        text("PUT")
    );
    assert_eq!(msg(kv.delete(&key).await), text("DELETE"));
}

#[tokio::test]
async fn k4_length_is_counted_in_utf8_bytes() {
    let (kv, _) = kv();
    let key = "é".repeat(256); // 512 bytes, 256 characters
    kv.put(&key, "v").unwrap().await.unwrap();
    let longer = format!("{key}a");
    assert_eq!(
        msg(kv.put(&longer, "v").unwrap().execute().await),
        "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    let error = kv.get(&longer).text().await.unwrap_err();
    assert_eq!(error.key(), Some(longer.as_str()));
}

#[tokio::test]
async fn k5_every_bulk_key_is_checked() {
    let (kv, _) = kv();
    let long = "k".repeat(513);
    assert_eq!(
        msg(kv.get_bulk(&["fine", long.as_str()]).text().await),
        "KV GET_BULK failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
    // KV's own words for a bulk read, which differ from a single read's (K2, K3).
    assert_eq!(
        msg(kv.get_bulk(&["fine", ""]).text().await),
        "KV GET_BULK failed: 400 Key names must not be empty"
    );
    assert_eq!(
        msg(kv.get_bulk(&[".."]).json::<Value>().await),
        "KV GET_BULK failed: 400 Illegal key name \"..\". Please use a different name."
    );
    assert_eq!(
        msg(kv.get_bulk(&["."]).text_with_metadata::<Value>().await),
        "KV GET_BULK failed: 400 Illegal key name \".\". Please use a different name."
    );
}

#[tokio::test]
async fn k5_list_prefix_may_be_empty_but_not_longer_than_512_bytes() {
    let (kv, _) = kv();
    kv.put("a", "v").unwrap().await.unwrap();
    assert_eq!(kv.list().prefix(String::new()).await.unwrap().keys.len(), 1);
    kv.list().prefix("p".repeat(512)).await.unwrap();
    assert_eq!(
        msg(kv.list().prefix("p".repeat(513)).execute().await),
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    );
}

// ---- Values --------------------------------------------------------------------------------

#[tokio::test]
async fn k6_empty_string_is_a_value_not_a_delete() {
    let (kv, _) = kv();
    kv.put("k", "v").unwrap().await.unwrap();
    kv.put("k", "").unwrap().await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some(""));
    assert_eq!(kv.get("k").bytes().await.unwrap(), Some(Vec::new()));
    assert_eq!(kv.list().await.unwrap().keys.len(), 1);
}

#[tokio::test]
async fn k6_value_of_exactly_25_mib_works_and_one_byte_more_fails() {
    let (kv, _) = kv();
    let limit = 26_214_400;
    let value = vec![b'x'; limit];
    kv.put_bytes("big", &value).unwrap().await.unwrap();
    assert_eq!(
        kv.get("big").bytes().await.unwrap().map(|v| v.len()),
        Some(limit)
    );

    let too_big = "x".repeat(limit + 1);
    let error = kv
        .put("big", too_big.as_str())
        .unwrap()
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    );
    assert!(matches!(
        error,
        Error::ValueTooLarge {
            length: 26_214_401,
            ..
        }
    ));
    assert_eq!(
        msg(kv
            .put_bytes("big", &vec![0; limit + 1])
            .unwrap()
            .execute()
            .await),
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    );
    // The failed writes left the stored value alone.
    assert_eq!(
        kv.get("big").bytes().await.unwrap().map(|v| v.len()),
        Some(limit)
    );
}

#[tokio::test]
async fn k7_text_reads_back_as_its_utf8_bytes() {
    let (kv, _) = kv();
    kv.put("k", "héllo").unwrap().await.unwrap();
    assert_eq!(
        kv.get("k").bytes().await.unwrap(),
        Some("héllo".as_bytes().to_vec())
    );
}

#[tokio::test]
async fn k7_bytes_read_back_as_text_when_utf8() {
    let (kv, _) = kv();
    kv.put_bytes("k", "héllo".as_bytes())
        .unwrap()
        .await
        .unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("héllo"));
}

#[tokio::test]
async fn k7_bytes_that_are_not_utf8_read_as_text_with_replacement_characters_as_kv() {
    let (kv, _) = kv();
    kv.put_bytes("bin", &[104, 255, 105])
        .unwrap()
        .await
        .unwrap();
    kv.put("ok", "fine").unwrap().await.unwrap();
    // Workers KV's TextDecoder: each invalid sequence becomes U+FFFD.
    assert_eq!(
        kv.get("bin").text().await.unwrap().as_deref(),
        Some("h\u{FFFD}i")
    );
    let (text, _) = kv
        .get("bin")
        .text_with_metadata::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(text.as_deref(), Some("h\u{FFFD}i"));
    // One binary value does not fail a bulk text read.
    let bulk = kv.get_bulk(&["bin", "ok"]).text().await.unwrap();
    assert_eq!(bulk["bin"].as_deref(), Some("h\u{FFFD}i"));
    assert_eq!(bulk["ok"].as_deref(), Some("fine"));
    // A truncated multi-byte sequence, and bytes that stay bytes.
    kv.put_bytes("cut", &[0xe6, 0x97, b'x'])
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        kv.get("cut").text().await.unwrap().as_deref(),
        Some("\u{FFFD}x")
    );
    assert_eq!(
        kv.get("bin").bytes().await.unwrap(),
        Some(vec![104, 255, 105])
    );
}

#[tokio::test]
async fn k7_all_256_byte_values_round_trip() {
    let (kv, _) = kv();
    let all: Vec<u8> = (0..=255).collect();
    kv.put_bytes("all", &all).unwrap().await.unwrap();
    assert_eq!(kv.get("all").bytes().await.unwrap(), Some(all.clone()));
    let (value, meta) = kv.get("all").bytes_with_metadata::<Value>().await.unwrap();
    assert_eq!((value, meta), (Some(all), None));
}

#[tokio::test]
async fn k7_json_read_of_a_value_that_is_not_json_names_the_key() {
    let (kv, _) = kv();
    kv.put("plain", "not json").unwrap().await.unwrap();
    let error = kv.get("plain").json::<Value>().await.unwrap_err();
    assert!(
        matches!(&error, Error::NotJson { key, .. } if key == "plain"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"plain\""), "{error}");
}

#[tokio::test]
async fn k7_json_of_another_shape_is_a_decode_error_naming_the_key() {
    let (kv, _) = kv();
    kv.put("n", 42).unwrap().await.unwrap();
    let error = kv.get("n").json::<Vec<String>>().await.unwrap_err();
    assert!(
        matches!(&error, Error::Decode { key, part: "value", .. } if key == "n"),
        "{error:?}"
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[tokio::test]
async fn k8_put_stores_strings_as_is_scalars_as_text_and_the_rest_as_json() {
    let (kv, _) = kv();
    kv.put("str", "plain").unwrap().await.unwrap();
    kv.put("string", String::from("owned"))
        .unwrap()
        .await
        .unwrap();
    kv.put("int", 42).unwrap().await.unwrap();
    kv.put("float", 1.5).unwrap().await.unwrap();
    kv.put("bool", true).unwrap().await.unwrap();
    kv.put("vec", vec![1, 2]).unwrap().await.unwrap();
    kv.put(
        "struct",
        &User {
            id: 1,
            name: "Ada".into(),
        },
    )
    .unwrap()
    .await
    .unwrap();
    let text = |k: &'static str| {
        let kv = &kv;
        async move { kv.get(k).text().await.unwrap().unwrap() }
    };
    assert_eq!(text("str").await, "plain");
    assert_eq!(text("string").await, "owned");
    assert_eq!(text("int").await, "42");
    assert_eq!(text("float").await, "1.5");
    assert_eq!(text("bool").await, "true");
    assert_eq!(text("vec").await, "[1,2]");
    assert_eq!(text("struct").await, r#"{"id":1,"name":"Ada"}"#);
    assert_eq!(
        kv.get("struct").json::<User>().await.unwrap(),
        Some(User {
            id: 1,
            name: "Ada".into()
        })
    );
    assert_eq!(kv.get("int").json::<u32>().await.unwrap(), Some(42));
}

#[tokio::test]
async fn k8_integers_above_2_pow_53_come_back_exactly() {
    let (kv, _) = kv();
    kv.put("big", json!({ "n": 9_007_199_254_740_993u64 }))
        .unwrap()
        .await
        .unwrap();
    let value: Value = kv.get("big").json().await.unwrap().unwrap();
    assert_eq!(value["n"].as_u64(), Some(9_007_199_254_740_993));
}

// ---- Metadata ------------------------------------------------------------------------------

#[tokio::test]
async fn k10_metadata_can_be_any_json_and_null_means_none() {
    let (kv, _) = kv();
    let kinds = [
        json!({"a": [1, {"b": null}]}),
        json!(123),
        json!("s"),
        json!(true),
        json!([1, "x"]),
    ];
    for (i, meta) in kinds.iter().enumerate() {
        let key = format!("k{i}");
        kv.put(&key, "v")
            .unwrap()
            .metadata(meta)
            .unwrap()
            .await
            .unwrap();
        let (_, got) = kv.get(&key).text_with_metadata::<Value>().await.unwrap();
        assert_eq!(got.as_ref(), Some(meta));
    }
    kv.put("none", "v")
        .unwrap()
        .metadata(Value::Null)
        .unwrap()
        .await
        .unwrap();
    kv.put("unit", "v")
        .unwrap()
        .metadata(())
        .unwrap()
        .await
        .unwrap();
    for key in ["none", "unit"] {
        let (value, meta) = kv.get(key).text_with_metadata::<Value>().await.unwrap();
        assert_eq!((value.as_deref(), meta), (Some("v"), None));
    }
}

#[tokio::test]
async fn k11_metadata_of_1024_bytes_works_and_1025_fails() {
    let (kv, _) = kv();
    let exactly = "m".repeat(1022); // + 2 quotes = 1024 bytes of JSON
    kv.put("k", "v")
        .unwrap()
        .metadata(&exactly)
        .unwrap()
        .await
        .unwrap();
    let over = "m".repeat(1023);
    let error = kv
        .put("k2", "v")
        .unwrap()
        .metadata(&over)
        .unwrap()
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024."
    );
    assert!(matches!(&error, Error::MetadataTooLarge { key, length: 1025 } if key == "k2"));
    assert_eq!(kv.get("k2").text().await.unwrap(), None);
}

#[tokio::test]
async fn k12_metadata_comes_back_as_the_json_stored() {
    let (kv, _) = kv();
    kv.put("k", "v")
        .unwrap()
        .metadata(123)
        .unwrap()
        .await
        .unwrap();
    let (_, meta) = kv.get("k").text_with_metadata::<Value>().await.unwrap();
    assert_eq!(meta, Some(json!(123)));
    assert!(meta.unwrap().is_number());
    let listed = kv.list().await.unwrap();
    assert_eq!(listed.keys[0].metadata, Some(json!(123)));
    let (_, typed) = kv.get("k").text_with_metadata::<u16>().await.unwrap();
    assert_eq!(typed, Some(123));
}

#[tokio::test]
async fn k12_metadata_of_another_shape_is_a_decode_error_naming_the_key() {
    let (kv, _) = kv();
    kv.put("k", "v")
        .unwrap()
        .metadata("text")
        .unwrap()
        .await
        .unwrap();
    let error = kv.get("k").text_with_metadata::<u32>().await.unwrap_err();
    assert!(
        matches!(&error, Error::Decode { key, part: "metadata", .. } if key == "k"),
        "{error:?}"
    );
}

// ---- Expiration ----------------------------------------------------------------------------

#[tokio::test]
async fn k13_expiration_ttl_wins_over_expiration() {
    let (kv, clock) = kv();
    let far = T0 / 1000 + 3600;
    kv.put("k", "v")
        .unwrap()
        .expiration(far)
        .expiration_ttl(10)
        .await
        .unwrap();
    assert_eq!(
        kv.list().await.unwrap().keys[0].expiration,
        Some(T0 / 1000 + 10)
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(kv.get("k").text().await.unwrap(), None);
}

#[tokio::test]
async fn k14_ttl_of_one_second_is_accepted_and_zero_fails() {
    let (kv, _) = kv();
    kv.put("k", "v").unwrap().expiration_ttl(1).await.unwrap();
    let error = kv
        .put("k", "v")
        .unwrap()
        .expiration_ttl(0)
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."
    );
    assert!(matches!(
        error,
        Error::InvalidExpirationTtl {
            expiration_ttl: 0,
            ..
        }
    ));
}

#[tokio::test]
async fn k14_expiration_must_be_after_now() {
    let (kv, clock) = kv();
    clock.set(1_000_000); // 1000 s after the epoch
    let error = kv
        .put("k", "v")
        .unwrap()
        .expiration(1000)
        .execute()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "KV PUT failed: 400 Invalid expiration of 1000. Please specify integer greater than the current number of seconds since the UNIX epoch."
    );
    assert!(
        kv.put("k", "v")
            .unwrap()
            .expiration(999)
            .execute()
            .await
            .is_err()
    );
    kv.put("k", "v").unwrap().expiration(1001).await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn k15_entry_is_visible_until_the_expiration_millisecond_for_every_read() {
    let (kv, clock) = kv();
    let expiration = T0 / 1000 + 5;
    kv.put("k", "v")
        .unwrap()
        .expiration(expiration)
        .metadata(1)
        .unwrap()
        .await
        .unwrap();
    clock.set(expiration * 1000 - 1);
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
    assert_eq!(
        kv.get("k").text_with_metadata::<u8>().await.unwrap(),
        (Some("v".into()), Some(1))
    );
    assert_eq!(
        kv.get_bulk(&["k"]).text().await.unwrap()["k"].as_deref(),
        Some("v")
    );
    assert_eq!(kv.list().await.unwrap().keys.len(), 1);

    clock.set(expiration * 1000);
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    assert_eq!(
        kv.get("k").text_with_metadata::<u8>().await.unwrap(),
        (None, None)
    );
    assert_eq!(kv.get_bulk(&["k"]).text().await.unwrap()["k"], None);
    assert!(kv.list().await.unwrap().keys.is_empty());
}

#[tokio::test]
async fn k15_ttl_counts_from_the_current_millisecond() {
    let (kv, clock) = kv();
    clock.set(T0 + 500);
    kv.put("k", "v").unwrap().expiration_ttl(1).await.unwrap();
    // Reported in whole seconds, rounded up: T0 + 1500 ms -> T0/1000 + 2.
    assert_eq!(
        kv.list().await.unwrap().keys[0].expiration,
        Some(T0 / 1000 + 2)
    );
    clock.set(T0 + 1499);
    assert_eq!(kv.get("k").text().await.unwrap().as_deref(), Some("v"));
    clock.set(T0 + 1500);
    assert_eq!(kv.get("k").text().await.unwrap(), None);
}

#[tokio::test]
async fn k16_overwrite_replaces_value_metadata_and_expiration_together() {
    let (kv, clock) = kv();
    kv.put("k", "old")
        .unwrap()
        .expiration_ttl(5)
        .metadata("m")
        .unwrap()
        .await
        .unwrap();
    kv.put("k", "new").unwrap().await.unwrap();
    clock.advance(Duration::from_secs(3600));
    let (value, meta) = kv.get("k").text_with_metadata::<Value>().await.unwrap();
    assert_eq!((value.as_deref(), meta), (Some("new"), None));
    assert_eq!(kv.list().await.unwrap().keys[0].expiration, None);
}

// ---- get -----------------------------------------------------------------------------------

#[tokio::test]
async fn k17_missing_key_reads_as_none_in_every_form() {
    let (kv, _) = kv();
    assert_eq!(kv.get("nope").text().await.unwrap(), None);
    assert_eq!(kv.get("nope").json::<Value>().await.unwrap(), None);
    assert_eq!(kv.get("nope").bytes().await.unwrap(), None);
    assert_eq!(
        kv.get("nope").text_with_metadata::<Value>().await.unwrap(),
        (None, None)
    );
    assert_eq!(
        kv.get("nope")
            .json_with_metadata::<Value, Value>()
            .await
            .unwrap(),
        (None, None)
    );
    assert_eq!(
        kv.get("nope").bytes_with_metadata::<Value>().await.unwrap(),
        (None, None)
    );
}

#[tokio::test]
async fn k18_cache_ttl_below_30_fails_and_otherwise_reads_stay_fresh() {
    let (kv, _) = kv();
    assert_eq!(
        msg(kv.get("k").cache_ttl(10).text().await),
        "KV GET failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30."
    );
    assert_eq!(
        msg(kv.get_bulk(&["k"]).cache_ttl(29).text().await),
        "KV GET_BULK failed: 400 Invalid cache_ttl of 29. Cache TTL must be at least 30."
    );
    kv.put("k", "one").unwrap().await.unwrap();
    assert_eq!(
        kv.get("k").cache_ttl(30).text().await.unwrap().as_deref(),
        Some("one")
    );
    kv.put("k", "two").unwrap().await.unwrap();
    assert_eq!(
        kv.get("k").cache_ttl(3600).text().await.unwrap().as_deref(),
        Some("two")
    );
}

// ---- get_bulk ------------------------------------------------------------------------------

#[tokio::test]
async fn k19_bulk_takes_1_to_100_keys() {
    let (kv, _) = kv();
    let none: [&str; 0] = [];
    assert_eq!(
        msg(kv.get_bulk(&none).text().await),
        "KV GET_BULK failed: 400 You must request a minimum of 1 key"
    );
    let keys: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    assert_eq!(
        msg(kv.get_bulk(&keys).text().await),
        "KV GET_BULK failed: 400 You can request a maximum of 100 keys"
    );
    assert!(matches!(
        kv.get_bulk(&keys).text().await,
        Err(Error::BulkKeyCount { count: 101 })
    ));
    for key in &keys[..100] {
        kv.put(key, key.as_str()).unwrap().await.unwrap();
    }
    let got = kv.get_bulk(&keys[..100]).text().await.unwrap();
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|(k, v)| v.as_deref() == Some(k.as_str())));
}

#[tokio::test]
async fn k20_bulk_has_an_entry_for_every_key_and_duplicates_collapse() {
    let (kv, clock) = kv();
    kv.put("a", "1").unwrap().await.unwrap();
    kv.put("gone", "x")
        .unwrap()
        .expiration_ttl(1)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let got = kv
        .get_bulk(&["a", "missing", "a", "gone"])
        .text()
        .await
        .unwrap();
    let expected: HashMap<String, Option<String>> = [
        ("a".to_string(), Some("1".to_string())),
        ("missing".to_string(), None),
        ("gone".to_string(), None),
    ]
    .into();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn k21_bulk_json_fails_when_a_present_value_is_not_json() {
    let (kv, _) = kv();
    kv.put("j", json!({"a": 1})).unwrap().await.unwrap();
    kv.put("t", "plain text").unwrap().await.unwrap();
    assert_eq!(
        msg(kv.get_bulk(&["j", "t"]).json::<Value>().await),
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value"
    );
    assert!(matches!(
        kv.get_bulk(&["j", "t"]).json_with_metadata::<Value, Value>().await,
        Err(Error::BulkNotJson { key }) if key == "t"
    ));
    // Missing keys are not "non-json values".
    let got = kv
        .get_bulk(&["j", "missing"])
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(got["j"], Some(json!({"a": 1})));
    assert_eq!(got["missing"], None);
}

#[tokio::test]
async fn k22_bulk_with_metadata_gives_none_none_for_missing_keys() {
    let (kv, _) = kv();
    kv.put("a", "1")
        .unwrap()
        .metadata(json!({"m": 1}))
        .unwrap()
        .await
        .unwrap();
    kv.put("b", "2").unwrap().await.unwrap();
    let got = kv
        .get_bulk(&["a", "b", "c"])
        .text_with_metadata::<Value>()
        .await
        .unwrap();
    assert_eq!(got["a"], (Some("1".into()), Some(json!({"m": 1}))));
    assert_eq!(got["b"], (Some("2".into()), None));
    assert_eq!(got["c"], (None, None));
    let got = kv
        .get_bulk(&["a", "c"])
        .json_with_metadata::<u8, Value>()
        .await
        .unwrap();
    assert_eq!(got["a"], (Some(1), Some(json!({"m": 1}))));
    assert_eq!(got["c"], (None, None));
}

#[tokio::test]
async fn k23_falsy_values_survive_bulk_reads() {
    let (kv, _) = kv();
    kv.put("empty", "").unwrap().await.unwrap();
    kv.put("zero", 0).unwrap().await.unwrap();
    kv.put("false", false).unwrap().await.unwrap();
    let text = kv
        .get_bulk(&["empty", "zero", "false"])
        .text()
        .await
        .unwrap();
    assert_eq!(text["empty"].as_deref(), Some(""));
    assert_eq!(text["zero"].as_deref(), Some("0"));
    assert_eq!(text["false"].as_deref(), Some("false"));
    let json = kv
        .get_bulk(&["zero", "false"])
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(json["zero"], Some(json!(0)));
    assert_eq!(json["false"], Some(json!(false)));
}

// ---- delete --------------------------------------------------------------------------------

#[tokio::test]
async fn k24_delete_removes_the_key_and_deleting_a_missing_key_succeeds() {
    let (kv, _) = kv();
    kv.delete("never-written").await.unwrap();
    kv.put("k", "v").unwrap().await.unwrap();
    kv.put("other", "v").unwrap().await.unwrap();
    kv.delete("k").await.unwrap();
    assert_eq!(kv.get("k").text().await.unwrap(), None);
    let names = common::names(&kv, "").await;
    assert_eq!(names, ["other"]);
}

// ---- Consistency ---------------------------------------------------------------------------

#[tokio::test]
async fn k35_reads_see_writes_at_once_and_writes_to_one_key_have_no_rate_limit() {
    let (kv, _) = kv();
    for i in 0..50 {
        kv.put("hot", i).unwrap().await.unwrap();
        assert_eq!(kv.get("hot").json::<u32>().await.unwrap(), Some(i));
    }
}

#[tokio::test]
async fn k8_floats_are_written_as_rust_prints_them_like_workers_rs() {
    let (kv, _) = kv();
    for (value, text) in [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e21, "1000000000000000000000"),
        (-2.25, "-2.25"),
    ] {
        kv.put("f", value).unwrap().await.unwrap();
        assert_eq!(
            kv.get("f").text().await.unwrap().as_deref(),
            Some(text),
            "{value}"
        );
    }
}

#[tokio::test]
async fn k22_bulk_with_metadata_gives_none_none_for_expired_keys() {
    let (kv, clock) = kv();
    kv.put("gone", "v")
        .unwrap()
        .expiration_ttl(1)
        .metadata(1)
        .unwrap()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let got = kv
        .get_bulk(&["gone"])
        .text_with_metadata::<u8>()
        .await
        .unwrap();
    assert_eq!(got["gone"], (None, None));
}

#[tokio::test]
async fn k7_a_json_number_beyond_f64_is_reported_as_such_not_as_not_json() {
    let (kv, _) = kv();
    kv.put("huge", "1e400").unwrap().await.unwrap();
    let single = kv.get("huge").json::<Value>().await.unwrap_err();
    assert!(
        matches!(&single, Error::Decode { key, part: "value", .. } if key == "huge"),
        "{single:?}"
    );
    assert!(
        single.to_string().contains("number out of range"),
        "{single}"
    );
    // In a bulk read too: the value is JSON, so KV's "non-json value" text would be false.
    let bulk = kv.get_bulk(&["huge"]).json::<Value>().await.unwrap_err();
    assert!(
        matches!(&bulk, Error::Decode { key, .. } if key == "huge"),
        "{bulk:?}"
    );
    // It stays readable as text.
    assert_eq!(
        kv.get("huge").text().await.unwrap().as_deref(),
        Some("1e400")
    );
}
