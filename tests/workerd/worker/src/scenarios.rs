//! Scenarios that need Rust types of their own, run whole inside the Worker. Each answers
//! `{"checks": [{"name", "expected", "actual"}, ...]}` and the driver asserts every check, or
//! `{"skipped": "why"}`.
//!
//! To add one: write an `async fn(&Env) -> Observed` below, and list it in [`NAMES`] and
//! [`run`]. The driver runs every name that `GET /scenarios` lists.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worker::Env;

use crate::Observed;

/// Every scenario, in the order the driver runs them.
pub const NAMES: &[&str] = &[
    "json_integers_above_2_53",
    "error_into_worker_error",
    "typed_namespace",
];

/// Runs the scenario called `name`; `None` if there is none.
pub async fn run(name: &str, env: &Env) -> Option<Observed> {
    Some(match name {
        "json_integers_above_2_53" => json_integers_above_2_53(env).await,
        "error_into_worker_error" => error_into_worker_error(env).await,
        "typed_namespace" => typed_namespace(env).await,
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

/// TODO(typed namespace): `#[d1_namespace]` (d1ns-macros) is being written. When it lands,
/// declare a typed namespace here (e.g. `#[d1_namespace] struct Sessions` holding a serde
/// struct), put one value with metadata and a TTL, read it back, list it, and return the checks
/// as the scenarios above do. The driver already runs this name and reports it as skipped.
async fn typed_namespace(_env: &Env) -> Observed {
    Ok(json!({ "skipped": "the #[d1_namespace] macro does not exist yet (TODO in scenarios.rs)" }))
}
