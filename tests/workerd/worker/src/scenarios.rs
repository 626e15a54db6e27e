//! Scenarios that need Rust types of their own, run whole inside the Worker. Each answers
//! `{"checks": [{"name", "expected", "actual"}, ...]}` and the driver asserts every check, or
//! `{"skipped": "why"}`.
//!
//! To add one: write an `async fn(&Env) -> Observed` below, and list it in [`NAMES`] and
//! [`run`]. The driver runs every name that `GET /scenarios` lists, so nothing changes there.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worker::Env;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader, TransformStream};

use crate::Observed;

/// Every scenario, in the order the driver runs them.
pub const NAMES: &[&str] = &[
    "json_integers_above_2_53",
    "error_into_worker_error",
    "typed_namespace",
    "typed_atomic",
    "streams",
];

/// Runs the scenario called `name`; `None` if there is none.
pub async fn run(name: &str, env: &Env) -> Option<Observed> {
    Some(match name {
        "json_integers_above_2_53" => json_integers_above_2_53(env).await,
        "error_into_worker_error" => error_into_worker_error(env).await,
        "typed_namespace" => typed_namespace(env).await,
        "typed_atomic" => typed_atomic(env).await,
        "streams" => streams(env).await,
        _ => return None,
    })
}

fn check(name: &str, expected: impl Serialize, actual: impl Serialize) -> Value {
    json!({ "name": name, "expected": expected, "actual": actual })
}

fn namespace(env: &Env, name: &str) -> Result<d1ns::D1Namespace<worker::D1Database>, String> {
    let db = env.d1("DB").map_err(|e| e.to_string())?;
    d1ns::D1Namespace::builder(db)
        .namespace(name)
        .build()
        .map_err(|e| e.to_string())
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Ids {
    above_2_53: u64,
    below_minus_2_53: i64,
    largest: u64,
}

/// A value is stored as JSON text, so integers a double cannot hold come back exactly through
/// `serde` types (the D1 binding never turns them into JavaScript numbers).
async fn json_integers_above_2_53(env: &Env) -> Observed {
    let kv = namespace(env, "typed_json")?;
    let ids = Ids {
        above_2_53: 9_007_199_254_740_993,
        below_minus_2_53: -9_007_199_254_740_993,
        largest: u64::MAX,
    };
    let e = |e: d1ns::Error| e.to_string();
    kv.put("ids", &ids).map_err(e)?.execute().await.map_err(e)?;
    let back: Option<Ids> = kv.get("ids").json().await.map_err(e)?;
    let text = kv.get("ids").text().await.map_err(e)?;
    Ok(json!({ "checks": [
        check("round trip through serde is exact", true, back.as_ref() == Some(&ids)),
        check(
            "stored text",
            r#"{"above_2_53":9007199254740993,"below_minus_2_53":-9007199254740993,"largest":18446744073709551615}"#,
            text,
        ),
    ]}))
}

/// `?` in a handler turns a d1ns error into a `worker::Error` that keeps KV's text.
async fn error_into_worker_error(env: &Env) -> Observed {
    let kv = namespace(env, "errors")?;
    let long = "k".repeat(513);
    let Err(error) = kv.get(&long).text().await else {
        return Err("a 513-byte key was accepted".to_owned());
    };
    let converted: worker::Error = error.into();
    Ok(json!({ "checks": [
        check(
            "worker::Error keeps the KV text",
            true,
            converted
                .to_string()
                .contains("KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."),
        ),
    ]}))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SessionMeta {
    client: String,
}

/// A typed namespace: values and metadata are Rust types, the TTL is the namespace's default.
#[d1ns::d1_namespace(name = "typed_sessions", ttl = 60, metadata = SessionMeta)]
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    user_id: u64,
    roles: Vec<String>,
}

/// The `#[d1_namespace]` round trip on D1: put with metadata and the default TTL, read back
/// with metadata and expiration, bulk read, list, delete.
async fn typed_namespace(env: &Env) -> Observed {
    let e = |e: d1ns::Error| e.to_string();
    let sessions = Session::namespace(env.d1("DB").map_err(|e| e.to_string())?);
    let session = Session {
        user_id: 9_007_199_254_740_993,
        roles: vec!["admin".to_owned(), "é".to_owned()],
    };
    let now_s = (worker::js_sys::Date::now() / 1000.0) as u64;
    sessions
        .put("s1", &session)
        .metadata(SessionMeta {
            client: "web".to_owned(),
        })
        .await
        .map_err(e)?;
    let entry = sessions.get_with_metadata("s1").await.map_err(e)?;
    let bulk = sessions.get_bulk(&["s1", "s2"]).await.map_err(e)?;
    let page = sessions.list().await.map_err(e)?;
    sessions.delete("s1").await.map_err(e)?;
    let gone = sessions.get("s1").await.map_err(e)?;
    let expiration = entry.as_ref().and_then(|entry| entry.expiration);
    Ok(json!({ "checks": [
        check("value round trip", true, entry.as_ref().map(|entry| &entry.value) == Some(&session)),
        check(
            "metadata round trip",
            true,
            entry.as_ref().and_then(|entry| entry.metadata.as_ref())
                == Some(&SessionMeta { client: "web".to_owned() }),
        ),
        check(
            "the namespace's TTL of 60 s applies",
            true,
            expiration.is_some_and(|at| at > now_s + 58 && at <= now_s + 62),
        ),
        check("get_bulk", json!([true, true]), json!([bulk.get("s1").is_some_and(|v| v.as_ref() == Some(&session)), bulk.get("s2") == Some(&None)])),
        check("list", json!(["s1"]), page.keys.iter().map(|k| k.name.clone()).collect::<Vec<_>>()),
        check("deleted", true, gone.is_none()),
    ]}))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CartMeta {
    items: usize,
}

/// A typed namespace for atomic commits (A15): its puts get the namespace's TTL.
#[d1ns::d1_namespace(name = "typed_carts", ttl = 60, metadata = CartMeta)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

/// A15 on D1: a typed read returns the stamp with the value; a typed commit checks it, puts
/// typed values with the namespace's TTL (or the options of a typed put) and deletes; a stale
/// stamp commits nothing; `raw()` adds a sum beside the typed puts, under the same stamp.
async fn typed_atomic(env: &Env) -> Observed {
    let e = |e: d1ns::Error| e.to_string();
    let carts = Cart::namespace(env.d1("DB").map_err(|e| e.to_string())?);
    let now_s = (worker::js_sys::Date::now() / 1000.0) as u64;
    let within = |expiration: Option<u64>, ttl: u64| {
        expiration.is_some_and(|at| at > now_s + ttl - 2 && at <= now_s + ttl + 2)
    };
    let cart = Cart {
        items: vec!["apple".to_owned()],
    };
    let first = carts
        .atomic()
        .check("alice", None)
        .put("alice", &cart)
        .commit()
        .await
        .map_err(e)?;
    let entry = carts.get_with_metadata("alice").await.map_err(e)?;
    let version = entry.as_ref().map(|entry| entry.version);

    // A compare-and-swap with the options of a typed put, and a delete beside it.
    let mut next = cart.clone();
    next.items.push("pear".to_owned());
    let put = carts
        .put("alice", &next)
        .metadata(CartMeta { items: 2 })
        .expiration_ttl(120);
    let second = carts
        .atomic()
        .check("alice", version)
        .put_with(put)
        .delete("bob")
        .commit()
        .await
        .map_err(e)?;
    let after = carts.get_with_metadata("alice").await.map_err(e)?;

    // The first stamp is stale now: nothing is written.
    let stale = carts
        .atomic()
        .check("alice", first)
        .put("alice", &Cart::default())
        .commit()
        .await
        .map_err(e)?;
    let unchanged = carts.get("alice").await.map_err(e)?;

    // Typed puts and an untyped sum in one commit share its stamp.
    let third = carts
        .atomic()
        .check("bob", None)
        .put("bob", &cart)
        .raw()
        .sum("carts made", 2)
        .commit()
        .await
        .map_err(e)?;
    let bob = carts.get_with_metadata("bob").await.map_err(e)?;
    let made = carts
        .raw()
        .get("carts made")
        .text_entry::<Value>()
        .await
        .map_err(e)?;
    let taken = carts
        .atomic()
        .check("bob", None)
        .put("bob", &Cart::default())
        .commit()
        .await
        .map_err(e)?;
    let text = first.map(|stamp| stamp.to_string());
    let parsed = text.as_deref().map(str::parse::<d1ns::Versionstamp>);
    Ok(json!({ "checks": [
        check("a commit with check(None) on a missing key commits", true, first.is_some()),
        check("the typed read returns the commit's stamp", true, first.is_some() && version == first),
        check("the typed read returns the value", true, entry.as_ref().map(|entry| &entry.value) == Some(&cart)),
        check("a typed put in a commit takes the namespace's TTL of 60 s", true, within(entry.as_ref().and_then(|entry| entry.expiration), 60)),
        check("the compare-and-swap commits with a new stamp", true, second.is_some() && second != first),
        check("the entry has the new stamp", true, second.is_some() && after.as_ref().map(|entry| entry.version) == second),
        check("put_with keeps the typed put's metadata", true, after.as_ref().and_then(|entry| entry.metadata.as_ref()) == Some(&CartMeta { items: 2 })),
        check("put_with keeps the typed put's expiration_ttl of 120 s", true, within(after.as_ref().and_then(|entry| entry.expiration), 120)),
        check("a stale stamp commits nothing", true, stale.is_none()),
        check("and writes nothing", true, unchanged.as_ref() == Some(&next)),
        check("raw(): the typed put and the sum share the stamp", true, third.is_some() && bob.as_ref().map(|entry| entry.version) == third && made.as_ref().map(|entry| entry.version) == third),
        check("raw(): the sum", "2", made.as_ref().map(|entry| entry.value.as_str())),
        check("check(None) on a present key fails", true, taken.is_none()),
        check("the stamp prints as 32 lowercase hex digits", true, text.as_ref().is_some_and(|text| text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))),
        check("and parses back", true, parsed == Some(Ok(first.unwrap_or(d1ns::Versionstamp::ZERO)))),
    ]}))
}

/// The stream forms, as a Worker written against `KvStore` uses them: `put_stream` of a stream
/// that arrives in chunks, then `stream()` and `stream_with_metadata()` read with a reader,
/// byte for byte, for a short value and one stored in parts (over 1.9 MB).
async fn streams(env: &Env) -> Observed {
    let kv = namespace(env, "streams")?;
    let e = |e: d1ns::Error| e.to_string();
    let short = b"a short value, streamed".to_vec();
    // Every byte value, in an order that repeats only every 251 bytes: not UTF-8, no runs.
    let long: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i * 7 % 251) as u8 ^ (i >> 11) as u8)
        .collect();
    let mut checks = Vec::new();
    for (key, value, chunk) in [("short", &short, 5), ("long", &long, 65_536)] {
        let stream = chunked_stream(value, chunk)?;
        kv.put_stream(key, stream)
            .map_err(e)?
            .metadata(json!({ "len": value.len() }))
            .map_err(e)?
            .expiration_ttl(600)
            .execute()
            .await
            .map_err(e)?;
        let stored = kv.get(key).bytes().await.map_err(e)?;
        checks.push(check(
            &format!("{key}: put_stream stores the bytes"),
            true,
            stored.as_ref() == Some(value),
        ));
        let Some(stream) = kv.get(key).stream().await.map_err(e)? else {
            return Err(format!("{key}: stream() found nothing"));
        };
        let (read, chunks) = read_all(stream).await?;
        checks.push(check(
            &format!("{key}: stream() gives the bytes"),
            true,
            &read == value,
        ));
        checks.push(check(
            &format!("{key}: stream() gives at least one chunk"),
            true,
            chunks >= 1,
        ));
        let (stream, metadata) = kv
            .get(key)
            .stream_with_metadata::<Value>()
            .await
            .map_err(e)?;
        let read = match stream {
            Some(stream) => Some(read_all(stream).await?.0),
            None => None,
        };
        checks.push(check(
            &format!("{key}: stream_with_metadata gives the bytes"),
            true,
            read.as_ref() == Some(value),
        ));
        checks.push(check(
            &format!("{key}: and the metadata"),
            json!({ "len": value.len() }),
            metadata,
        ));
    }
    let missing = kv.get("missing").stream().await.map_err(e)?;
    let (missing_with, missing_meta) = kv
        .get("missing")
        .stream_with_metadata::<Value>()
        .await
        .map_err(e)?;
    checks.push(check(
        "a missing key streams None",
        json!([true, true, null]),
        json!([missing.is_none(), missing_with.is_none(), missing_meta]),
    ));
    let bad = kv
        .put_stream("", chunked_stream(&short, 5)?)
        .map_err(e)?
        .execute()
        .await;
    checks.push(check(
        "a bad key fails as put does",
        "Key name cannot be empty.",
        bad.err().map(|e| e.to_string()),
    ));
    Ok(json!({ "checks": checks }))
}

/// A stream of `bytes` in chunks of `chunk` bytes, written into a `TransformStream` (queued
/// now, read by whoever reads the stream).
fn chunked_stream(bytes: &[u8], chunk: usize) -> Result<ReadableStream, String> {
    let js = |e: JsValue| format!("{e:?}");
    let pipe = TransformStream::new().map_err(js)?;
    let writer = pipe.writable().get_writer().map_err(js)?;
    for part in bytes.chunks(chunk) {
        // Not awaited: the writes queue until put_stream reads them.
        let _ = writer.write_with_chunk(&Uint8Array::from(part));
    }
    let _ = writer.close();
    Ok(pipe.readable())
}

/// Every byte of `stream`, read chunk by chunk with a reader, and the number of chunks.
async fn read_all(stream: ReadableStream) -> Result<(Vec<u8>, usize), String> {
    let js = |e: JsValue| format!("{e:?}");
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    let mut chunks = 0;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(js)?;
        if Reflect::get(&step, &"done".into()).map_err(js)?.is_truthy() {
            return Ok((bytes, chunks));
        }
        let chunk = Reflect::get(&step, &"value".into()).map_err(js)?;
        let chunk = chunk.dyn_into::<Uint8Array>().map_err(js)?;
        bytes.extend(chunk.to_vec());
        chunks += 1;
    }
}
