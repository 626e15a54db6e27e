//! The test Worker of d1ns's workerd suite. It runs d1ns compiled to wasm32 inside workerd, on
//! wrangler's local D1, and answers the driver (`tests/workerd/driver.mjs`) over HTTP:
//!
//! - `GET /ready`: `ok`, once the Worker is loaded.
//! - `POST /ops`: KV operations through d1ns, each with its D1 cost (see [`ops`]).
//! - `POST /bench`: KV against d1ns, timed inside the Worker (see [`bench`]); not part of the
//!   CI suite, only of the driver's `--bench` mode.
//! - `POST /sql`: one statement straight on a D1 binding, to look at what d1ns stored (`typeof`)
//!   and to drop tables behind its back (K34).
//! - `GET /fixtures`: the typed namespaces with indexes that ops may name (see [`indexed`]).
//! - `GET /scenarios`, `POST /scenario/NAME`: scenarios that need Rust types of their own
//!   (see [`scenarios`]).
//!
//! Nothing a request sends may panic the Worker: every failure becomes a JSON error response.

mod bench;
mod indexed;
mod ops;
mod scenarios;
mod sql;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use worker::{Context, Env, Method, Request, Response, Result, event};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let outcome = match (req.method(), path.as_str()) {
        (Method::Get, "/ready") => return Response::ok("ok"),
        (Method::Get, "/scenarios") => Ok(json!(scenarios::NAMES)),
        (Method::Get, "/fixtures") => indexed::fixtures(&env),
        (Method::Post, "/ops") => match body(&mut req).await {
            Ok(request) => ops::run(&env, request).await,
            Err(e) => Err(e),
        },
        (Method::Post, "/bench") => match body(&mut req).await {
            Ok(request) => bench::run(&env, request).await,
            Err(e) => Err(e),
        },
        (Method::Post, "/sql") => match body(&mut req).await {
            Ok(request) => sql::run(&env, request).await,
            Err(e) => Err(e),
        },
        (Method::Post, name) if name.starts_with("/scenario/") => {
            let name = &name["/scenario/".len()..];
            match scenarios::run(name, &env).await {
                Some(outcome) => outcome,
                None => return error_response(404, &format!("no scenario named {name:?}")),
            }
        }
        _ => return error_response(404, &format!("no route for {path}")),
    };
    match outcome {
        Ok(value) => Response::from_json(&value),
        Err(message) => error_response(400, &message),
    }
}

/// The request body as JSON of type `T`; a malformed body is the caller's error, not a panic.
async fn body<T: DeserializeOwned>(req: &mut Request) -> std::result::Result<T, String> {
    let text = req.text().await.map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("bad request body: {e}"))
}

fn error_response(status: u16, message: &str) -> Result<Response> {
    Ok(Response::from_json(&json!({ "error": message }))?.with_status(status))
}

/// For scenarios: a JSON object of what was observed.
pub(crate) type Observed = std::result::Result<Value, String>;
