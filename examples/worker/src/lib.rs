//! A Worker whose KV data lives in D1, through d1ns.
//!
//! - `GET/PUT/DELETE /kv/:key` and `GET /kv?prefix=..&cursor=..`: the untyped KV API, exactly as
//!   with a KV binding (the only changed line is marked below). Beyond KV: reads send the value's
//!   versionstamp as an `ETag`, and a `PUT` with `If-Match: <etag>` (or `If-None-Match: *`)
//!   writes only if nobody wrote the key since (or it is absent), else answers 412; writes are
//!   rate-limited to 60 a minute per client, with a counter that cannot lose counts.
//!   Reads may come from a D1 read replica: every answer carries the session's bookmark in a
//!   `d1-bookmark` cookie, and a request that sends it back reads on a session started from
//!   it, so a client always sees its own writes.
//! - `GET /config`: a hot key, served from the data center's cache for up to a minute (the edge
//!   cache behind `cache_ttl`); writing it through `PUT /kv/config` removes it from this data
//!   center's cache at once.
//! - `POST /views/:page`: a view counter, exact under any load, one round trip.
//! - `PUT/GET /sessions/:id`: a typed namespace, values and metadata checked at compile time.
//! - `GET/DELETE /users/:user_id/sessions`: every session of a user, found (or revoked) through
//!   an index on `user_id` that the database keeps.
//! - Moving in from Workers KV, data included: while an `OLD_KV` binding is configured, keys not
//!   yet in D1 are read from it (writes and deletes go to D1 only), and each Cron Trigger run
//!   moves a few thousand keys over, its cursor kept in D1. When it logs "done", remove
//!   `OLD_KV`.
//! - A Cron Trigger removes expired rows.

use d1ns::{
    Backend, D1Namespace, D1NamespaceBuilder, NoMetadata, PreviousHome, Versionstamp, WriteOptions,
    d1_namespace,
};
use serde::{Deserialize, Serialize};
use worker::{
    Cache, Context, D1DatabaseSession, D1SessionConstraint, Env, Request, Response, Result,
    RouteContext, Router, ScheduleContext, ScheduledEvent, event,
};

#[derive(Serialize, Deserialize)]
struct SessionMeta {
    user_agent: String,
}

/// Sessions expire an hour after they are written; the database indexes them by `user_id`.
#[d1_namespace(name = "sessions", ttl = 3600, metadata = SessionMeta, index(user_id))]
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
        .get_async("/config", config)
        .post_async("/views/:page", view)
        .put_async("/sessions/:id", put_session)
        .get_async("/sessions/:id", get_session)
        .get_async("/users/:user_id/sessions", user_sessions)
        .delete_async("/users/:user_id/sessions", revoke_user_sessions)
        .run(req, env)
        .await
}

/// The name that tells this database's entries apart in the edge cache: its `database_id` in
/// wrangler.toml (a binding name like `DB` may mean another database in another Worker).
const CACHE_NAME: &str = "00000000-0000-0000-0000-000000000000";

/// The untyped namespace, on a D1 session that continues the client's own (see
/// [`with_bookmark`]), reading hot keys through the edge cache. With Workers KV this was
/// `let kv = ctx.kv("KV")?;`, and the one-line move is `D1Namespace::new(ctx.d1("DB")?)`.
fn kv(req: &Request, ctx: &RouteContext<()>) -> Result<D1Namespace<D1DatabaseSession>> {
    let db = ctx.d1("DB")?;
    // Read-your-writes: replicas at least as new as what this client saw last. A client
    // without a bookmark (or with one D1 refuses) starts anywhere: the nearest replica.
    let session = match bookmark(req)? {
        Some(bookmark) => db.with_session(Some(&bookmark)).ok(),
        None => None,
    };
    let session = match session {
        Some(session) => session,
        None => db.with_session_constraint(D1SessionConstraint::FirstUnconstrained)?,
    };
    // Every namespace of this data is built here, so every write clears the edge cache too. On
    // *.workers.dev the Cache API stores nothing and reads go to D1.
    configured(D1Namespace::builder(session), &ctx.env)
}

/// Every namespace of the untyped data is finished here, so that every write clears the edge
/// cache too and, during a move from Workers KV, every read sees both homes.
fn configured<B: Backend>(builder: D1NamespaceBuilder<B>, env: &Env) -> Result<D1Namespace<B>> {
    let mut builder = builder.edge_cache(Cache::default(), CACHE_NAME);
    if let Ok(old) = env.kv("OLD_KV") {
        builder = builder.previous_home(PreviousHome::kv(old));
    }
    Ok(builder.build()?)
}

/// The bookmark the client sent back in its `d1-bookmark` cookie.
fn bookmark(req: &Request) -> Result<Option<String>> {
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    Ok(cookies
        .split(';')
        .find_map(|cookie| cookie.trim().strip_prefix("d1-bookmark="))
        .filter(|bookmark| !bookmark.is_empty())
        .map(str::to_owned))
}

/// The response, with the session's bookmark after this request's operations in the
/// `d1-bookmark` cookie: the client's next request starts its session there.
fn with_bookmark(mut response: Response, kv: &D1Namespace<D1DatabaseSession>) -> Result<Response> {
    if let Some(bookmark) = kv.bookmark()? {
        let cookie = format!("d1-bookmark={bookmark}; Path=/; HttpOnly; Secure; SameSite=Lax");
        response.headers_mut().append("set-cookie", &cookie)?;
    }
    Ok(response)
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

/// The value, with its versionstamp as the `ETag` (read in the same one statement).
async fn get(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = kv(&req, &ctx)?;
    let response = match kv
        .get(param(&ctx, "key")?)
        .text_entry::<NoMetadata>()
        .await?
    {
        Some(entry) => with_etag(Response::ok(entry.value)?, entry.version)?,
        None => Response::error("not found", 404)?,
    };
    with_bookmark(response, &kv)
}

/// `GET /config`: read by every page, so it may come from this data center's cache, up to 60 s
/// old (a miss is cached too); writes through d1ns remove it from this data center's cache.
async fn config(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = kv(&req, &ctx)?;
    let response = match kv.get("config").cache_ttl(60).text().await? {
        Some(config) => Response::ok(config)?,
        None => Response::error("no config yet: PUT /kv/config", 404)?,
    };
    with_bookmark(response, &kv)
}

fn with_etag(mut response: Response, version: Versionstamp) -> Result<Response> {
    response
        .headers_mut()
        .set("etag", &format!("\"{version}\""))?;
    Ok(response)
}

/// `PUT /kv/:key?ttl=SECONDS` with the value as the body; any TTL from 1 s up. With
/// `If-Match: "<etag>"` it writes only if the key still has that version, with
/// `If-None-Match: *` only if the key is absent; otherwise 412 and nothing is written.
async fn put(mut req: Request, ctx: RouteContext<()>) -> Result<Response> {
    if let Some(limited) = rate_limit(&req, &ctx).await? {
        return Ok(limited);
    }
    let value = req.text().await?;
    let key = param(&ctx, "key")?;
    let mut options = WriteOptions::new();
    if let Some(ttl) = query(&req, "ttl")? {
        options = options.expiration_ttl(
            ttl.parse()
                .map_err(|_| "ttl must be a whole number of seconds")?,
        );
    }
    let kv = kv(&req, &ctx)?;
    let mut write = kv.atomic();
    if let Some(etag) = req.headers().get("if-match")? {
        let version: Versionstamp = etag
            .trim_matches('"')
            .parse()
            .map_err(|e| format!("If-Match: {e}"))?;
        write = write.check(key, Some(version));
    } else if req.headers().get("if-none-match")?.as_deref() == Some("*") {
        write = write.check(key, None);
    }
    let response = match write.put_with(key, value, options).commit().await? {
        Some(version) => with_etag(Response::empty()?, version)?,
        None => Response::error("the key changed since that version", 412)?,
    };
    with_bookmark(response, &kv)
}

/// At most 60 writes a minute per client: one counter per client and minute, made by its first
/// hit with a 60 s TTL, which later hits do not extend. `increment` adds and reads in one
/// round trip and never loses a count, however many requests race.
async fn rate_limit(req: &Request, ctx: &RouteContext<()>) -> Result<Option<Response>> {
    const PER_MINUTE: i64 = 60;
    let client = req
        .headers()
        .get("cf-connecting-ip")?
        .unwrap_or_else(|| "unknown".to_owned());
    let minute = worker::Date::now().as_millis() / 60_000;
    let limits = D1Namespace::builder(ctx.d1("DB")?)
        .namespace("limits")
        .build()?;
    let key = format!("writes:{client}:{minute}");
    let hits = limits
        .increment_with(&key, 1, WriteOptions::new().expiration_ttl(60))
        .await?;
    if hits > PER_MINUTE {
        return Response::error("too many writes: try again in a minute", 429).map(Some);
    }
    Ok(None)
}

/// `POST /views/:page`: counts a view and answers the new count.
async fn view(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let page = param(&ctx, "page")?;
    let kv = kv(&req, &ctx)?;
    let views = kv.increment(&format!("views:{page}"), 1).await?;
    let response = Response::from_json(&serde_json::json!({ "page": page, "views": views }))?;
    with_bookmark(response, &kv)
}

async fn delete(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = kv(&req, &ctx)?;
    kv.delete(param(&ctx, "key")?).await?;
    with_bookmark(Response::empty()?, &kv)
}

async fn list(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = kv(&req, &ctx)?;
    let mut list = kv.list().limit(100);
    if let Some(prefix) = query(&req, "prefix")? {
        list = list.prefix(prefix);
    }
    if let Some(cursor) = query(&req, "cursor")? {
        list = list.cursor(cursor);
    }
    let response = Response::from_json(&list.execute().await?)?;
    with_bookmark(response, &kv)
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

fn user_id(ctx: &RouteContext<()>) -> Result<u64> {
    param(ctx, "user_id")?
        .parse()
        .map_err(|_| "user_id must be a whole number".into())
}

/// `GET /users/:user_id/sessions?cursor=..`: the user's live sessions, 100 a page, read through
/// the index (about one row read per session).
async fn user_sessions(req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let sessions = Session::namespace(ctx.d1("DB")?);
    let mut find = sessions.find(Session::USER_ID, &user_id(&ctx)?).limit(100);
    if let Some(cursor) = query(&req, "cursor")? {
        find = find.cursor(cursor);
    }
    let page = find.await?;
    let ids: Vec<&str> = page.entries.iter().map(|(id, _)| id.as_str()).collect();
    Response::from_json(&serde_json::json!({ "sessions": ids, "cursor": page.cursor }))
}

/// `DELETE /users/:user_id/sessions`: signs the user out everywhere, in one round trip.
async fn revoke_user_sessions(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let sessions = Session::namespace(ctx.d1("DB")?);
    let revoked = sessions
        .delete_where(Session::USER_ID, &user_id(&ctx)?)
        .await?;
    Response::from_json(&serde_json::json!({ "revoked": revoked }))
}

/// Removes up to 1000 expired rows per table each run (reads never delete), and moves keys in
/// from Workers KV while a move is on.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    move_from_kv(&env).await;
    purge_expired(&env).await;
}

/// Up to 5 steps of 500 keys from `OLD_KV` into D1 (M6), resuming where the last run stopped:
/// the cursor is kept in D1, in a namespace of its own. Safe to run while requests write, to run
/// twice, and to stop at any point.
async fn move_from_kv(env: &Env) {
    if env.kv("OLD_KV").is_err() {
        return;
    }
    let namespaces = env
        .d1("DB")
        .and_then(|db| configured(D1Namespace::builder(db), env));
    let state = env
        .d1("DB")
        .map(|db| D1Namespace::builder(db).namespace("moves").build());
    let (Ok(kv), Ok(Ok(state))) = (namespaces, state) else {
        return worker::console_error!("move from OLD_KV: no D1 binding");
    };
    let mut cursor = match state.get("old-kv").text().await {
        Ok(Some(cursor)) if cursor == "done" => {
            return worker::console_log!("move from OLD_KV done: remove the OLD_KV binding");
        }
        Ok(cursor) => cursor,
        Err(e) => return worker::console_error!("move from OLD_KV: {e}"),
    };
    for _ in 0..5 {
        let step = match kv.move_step(cursor.clone(), 500).await {
            Ok(step) => step,
            Err(e) => return worker::console_error!("move from OLD_KV: {e}"),
        };
        worker::console_log!(
            "move from OLD_KV: {} keys looked at, {} copied, {} written here since",
            step.scanned,
            step.copied,
            step.skipped
        );
        cursor = if step.done {
            Some("done".to_owned())
        } else {
            step.cursor
        };
        let saved = match &cursor {
            Some(cursor) => match state.put("old-kv", cursor.as_str()) {
                Ok(put) => put.execute().await,
                Err(e) => Err(e),
            },
            None => Ok(()),
        };
        if let Err(e) = saved {
            return worker::console_error!("move from OLD_KV: saving the cursor: {e}");
        }
        if step.done {
            return worker::console_log!("move from OLD_KV done: remove the OLD_KV binding");
        }
    }
}

async fn purge_expired(env: &Env) {
    // Through `configured`: during a move from OLD_KV it must leave tombstones alone.
    if let Ok(Ok(kv)) = env
        .d1("DB")
        .map(|db| configured(D1Namespace::builder(db), env))
    {
        purge(&kv).await;
    }
    if let Ok(db) = env.d1("DB") {
        purge(Session::namespace(db).raw()).await;
    }
    if let Ok(Ok(limits)) = env
        .d1("DB")
        .map(|db| D1Namespace::builder(db).namespace("limits").build())
    {
        purge(&limits).await;
    }
}

/// Removes a table's expired rows, 1,000 a pass, until a pass finds fewer: lists then read only
/// live rows. Each pass reads and writes only the rows it removes (none during a move).
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
