//! A Worker whose KV data lives in D1, through d1ns.
//!
//! - `GET/PUT/DELETE /kv/:key` and `GET /kv?prefix=..&cursor=..`: the untyped KV API, exactly as
//!   with a KV binding (the only changed line is marked below).
//! - `PUT/GET /sessions/:id`: a typed namespace, values and metadata checked at compile time.
//! - A Cron Trigger removes expired rows.

use d1ns::{D1Namespace, d1_namespace};
use serde::{Deserialize, Serialize};
use worker::{
    Context, Env, Request, Response, Result, RouteContext, Router, ScheduleContext, ScheduledEvent,
    event,
};

#[derive(Serialize, Deserialize)]
struct SessionMeta {
    user_agent: String,
}

/// Sessions expire an hour after they are written.
#[d1_namespace(name = "sessions", ttl = 3600, metadata = SessionMeta)]
#[derive(Serialize, Deserialize)]
struct Session {
    user_id: u64,
    roles: Vec<String>,
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get_async("/kv", list)
        .get_async("/kv/:key", get)
        .put_async("/kv/:key", put)
        .delete_async("/kv/:key", delete)
        .put_async("/sessions/:id", put_session)
        .get_async("/sessions/:id", get_session)
        .run(req, env)
        .await
}

/// The untyped namespace. With Workers KV this line was `let kv = ctx.kv("KV")?;`.
fn kv(ctx: &RouteContext<()>) -> Result<D1Namespace<worker::D1Database>> {
    Ok(D1Namespace::new(ctx.d1("DB")?))
}

fn param<'a>(ctx: &'a RouteContext<()>, name: &str) -> Result<&'a str> {
    ctx.param(name)
        .map(String::as_str)
        .ok_or_else(|| format!("missing :{name}").into())
}

fn query(req: &Request, name: &str) -> Result<Option<String>> {
    Ok(req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned()))
}

async fn get(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    match kv(&ctx)?.get(param(&ctx, "key")?).text().await? {
        Some(value) => Response::ok(value),
        None => Response::error("not found", 404),
    }
}

/// `PUT /kv/:key?ttl=SECONDS` with the value as the body; any TTL from 1 s up.
async fn put(mut req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let value = req.text().await?;
    let kv = kv(&ctx)?;
    let mut put = kv.put(param(&ctx, "key")?, value)?;
    if let Some(ttl) = query(&req, "ttl")? {
        put = put.expiration_ttl(
            ttl.parse()
                .map_err(|_| "ttl must be a whole number of seconds")?,
        );
    }
    put.execute().await?;
    Response::empty()
}

async fn delete(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    kv(&ctx)?.delete(param(&ctx, "key")?).await?;
    Response::empty()
}

async fn list(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = kv(&ctx)?;
    let mut list = kv.list().limit(100);
    if let Some(prefix) = query(&req, "prefix")? {
        list = list.prefix(prefix);
    }
    if let Some(cursor) = query(&req, "cursor")? {
        list = list.cursor(cursor);
    }
    Response::from_json(&list.execute().await?)
}

async fn put_session(mut req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let session: Session = req.json().await?;
    let user_agent = req.headers().get("user-agent")?.unwrap_or_default();
    let sessions = Session::namespace(ctx.d1("DB")?);
    sessions
        .put(param(&ctx, "id")?, &session)
        .metadata(SessionMeta { user_agent })
        .await?;
    Response::empty()
}

async fn get_session(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let sessions = Session::namespace(ctx.d1("DB")?);
    match sessions.get_with_metadata(param(&ctx, "id")?).await? {
        Some(entry) => Response::from_json(&serde_json::json!({
            "session": entry.value,
            "user_agent": entry.metadata.map(|m| m.user_agent),
            "expiration": entry.expiration,
        })),
        None => Response::error("not found", 404),
    }
}

/// Removes up to 1000 expired rows per table each run (reads never delete).
#[event(scheduled)]
async fn purge_expired(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let Ok(db) = env.d1("DB") else { return };
    purge(&D1Namespace::new(db)).await;
    if let Ok(db) = env.d1("DB") {
        purge(Session::namespace(db).raw()).await;
    }
}

/// Removes a table's expired rows, 1,000 a pass, until a pass finds fewer: lists then read only
/// live rows. Each pass reads and writes only the rows it removes.
async fn purge(kv: &D1Namespace<worker::D1Database>) {
    const PASS: u64 = 1000;
    for _ in 0..50 {
        match kv.purge_expired(PASS).await {
            Ok(removed) if removed == PASS => continue,
            Ok(_) => return,
            Err(e) => {
                worker::console_error!("purge of {} failed: {e}", kv.table());
                return;
            }
        }
    }
}
