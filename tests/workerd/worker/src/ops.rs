//! `POST /ops`: runs KV operations through d1ns on a D1 binding, one result and one D1 cost per
//! operation. The driver (`tests/workerd/driver.mjs`) composes its scenarios from these.
//!
//! A request names the binding and the namespace options, then lists operations:
//! `{"binding": "DB", "namespace": "ns", "table": "t", "ops": [{"op": "put", "key": "k", "text": "v"}]}`.
//! Without `namespace`, `table` and `auto_create` the namespace is `D1Namespace::new(env.d1(..)?)`,
//! the one-line move from KV. JSON values travel as JSON *text* in both directions (`json`
//! fields), so integers above 2^53 are never a JavaScript number on the way; so do the
//! integers of counters (`n`, `delta`, and the value `increment` returns).
//!
//! Atomic commits (A6-A13) take checks as `[key, versionstamp or null]` and mutations tagged by
//! `type`: `{"op": "atomic", "checks": [["k", "0123..."]], "mutations": [{"type": "put", "key":
//! "k", "text": "v"}, {"type": "sum", "key": "n", "n": "1"}]}`, answered `{"committed": stamp or
//! null}`.
//!
//! Typed namespaces with indexes (I1-I12) are declared in [`indexed`](crate::indexed), and ops
//! name one by `fixture`: `put_session` (a typed put of a value sent as JSON text), `find` (one
//! page of a look-up) and `delete_where`, each with its cost like every other operation:
//! `{"op": "find", "fixture": "sessions", "field": "user_id", "value": 7, "limit": 10}`.

use std::collections::HashMap;
use std::sync::Arc;

use d1ns::backend::{Instrumented, Stats};
use d1ns::{
    AtomicOperation, Backend, D1Namespace, DatabaseError, PreviousHome, QueryResult, Session,
    Statement, Versionstamp, WriteOptions,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use worker::{D1Database, D1DatabaseSession, Env};

use crate::indexed::{self, Fixture, Lookup};

/// The D1 binding or a session on it, counted by d1ns's own public wrapper: every figure the
/// driver prints is D1's `meta.rows_read` / `meta.rows_written` as [`Instrumented`] sums them,
/// as a user would see them.
pub(crate) type Counted = Arc<Instrumented<Target>>;

/// What the operations run on: the binding, or a D1 session made from it (R1). The suite runs
/// over both.
pub(crate) enum Target {
    Binding(D1Database),
    Session(D1DatabaseSession),
}

impl Backend for Target {
    async fn batch(&self, statements: &[Statement<'_>]) -> Result<Vec<QueryResult>, DatabaseError> {
        match self {
            Target::Binding(db) => Backend::batch(db, statements).await,
            Target::Session(session) => Backend::batch(session, statements).await,
        }
    }

    fn database_id(&self) -> u64 {
        match self {
            Target::Binding(db) => db.database_id(),
            Target::Session(session) => session.database_id(),
        }
    }
}

impl Session for Target {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        match self {
            Target::Binding(_) => Ok(None),
            Target::Session(session) => session.bookmark(),
        }
    }
}

/// The body of `POST /ops`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsRequest {
    /// The D1 binding (`DB` or `DB2` in wrangler.toml).
    #[serde(default = "default_binding")]
    binding: String,
    namespace: Option<String>,
    table: Option<String>,
    auto_create: Option<bool>,
    /// A new `D1Namespace` on a new `env.d1()` handle for every operation, as a Worker that builds
    /// one per request does; otherwise one namespace serves the whole request.
    #[serde(default)]
    fresh_per_op: bool,
    /// Run on a D1 session started from this: `first-primary`, `first-unconstrained` or a
    /// bookmark (R1); the answer carries the session's bookmark after the operations (R2).
    session: Option<String>,
    /// Read through the edge cache under this stable name (R6).
    edge_cache: Option<String>,
    /// A namespace over several bindings, named by them (S1): `["DB", "DB2", "DB3"]`. The cost
    /// of an operation is the sum over its shards.
    shards: Option<Vec<String>>,
    /// Moving in from Workers KV: the `KV` binding is the previous home (M1).
    #[serde(default)]
    previous_kv: bool,
    /// Resharding: this earlier layout of bindings is the previous home (M1).
    previous_shards: Option<Vec<String>>,
    ops: Vec<Op>,
}

fn default_binding() -> String {
    "DB".to_owned()
}

/// How a read returns its value.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    #[default]
    Text,
    /// Read with `json::<serde_json::Value>()`, answered as JSON text.
    Json,
    Bytes,
}

/// One KV operation. Unknown fields are refused, so a typo in the driver fails loudly.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    /// `put` (`text`, `json` as JSON text, or `repeat` bytes of `x`) or `put_bytes` (`bytes`).
    Put {
        key: String,
        text: Option<String>,
        json: Option<String>,
        bytes: Option<Vec<u8>>,
        /// A text value of this many `x`, made here rather than sent (K6 limits).
        repeat: Option<usize>,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        /// Any JSON, `null` included (which means no metadata).
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    Get {
        key: String,
        #[serde(default, rename = "as")]
        kind: Kind,
        #[serde(default)]
        with_metadata: bool,
        cache_ttl: Option<u64>,
        /// Answer `{"length", "same_byte"}` instead of the value (for values of megabytes).
        #[serde(default)]
        summary: bool,
        /// Read with the `_entry` forms: answer `{"value", "metadata", "expiration", "version"}`
        /// (all `null` for a missing key), or with `summary`, `{"length", "same_byte",
        /// "version"}` (A4).
        #[serde(default)]
        entry: bool,
    },
    GetBulk {
        keys: Vec<String>,
        #[serde(default, rename = "as")]
        kind: Kind,
        #[serde(default)]
        with_metadata: bool,
        cache_ttl: Option<u64>,
    },
    Delete {
        key: String,
    },
    List {
        prefix: Option<String>,
        limit: Option<u64>,
        cursor: Option<String>,
    },
    PurgeExpired {
        max_rows: u64,
    },
    /// One atomic commit: every check, then every mutation, in order.
    Atomic {
        /// `[key, versionstamp]`, the stamp as its 32 hex digits or `null` (A6).
        #[serde(default)]
        checks: Vec<(String, Option<String>)>,
        #[serde(default)]
        mutations: Vec<Mutation>,
    },
    /// `increment_with`, answered `{"value": "the new value as decimal text"}` (A14).
    Increment {
        key: String,
        delta: Int,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    /// A typed put to an indexed fixture, answered `null` (I3, I8, I11).
    PutSession {
        fixture: Fixture,
        key: String,
        /// The value as JSON text, every field of the fixture's type.
        json: String,
        /// Replaces the value's `note` with this many `n` (values in chunks, I11).
        note_repeat: Option<usize>,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        metadata: Option<Value>,
    },
    /// One page of a look-up by an index (I4, I5), answered as [`Lookup::Find`] says.
    Find {
        fixture: Fixture,
        field: String,
        /// A number or decimal text (`user_id`), a string, a boolean, as the field's type is.
        value: Value,
        limit: Option<u64>,
        cursor: Option<String>,
        #[serde(default)]
        summary: bool,
    },
    /// Deletes every live entry whose field has the value, answered `{"removed": n}` (I6).
    DeleteWhere {
        fixture: Fixture,
        field: String,
        value: Value,
    },
    /// One step of the mover (M6), answered as `MoveProgress`.
    MoveStep {
        cursor: Option<String>,
        max_keys: u64,
    },
    /// The shard index a key lives on (S2).
    ShardOf {
        key: String,
    },
    /// A write straight to Workers KV (the `KV` binding), to seed a move: `text` or `bytes`.
    KvPut {
        key: String,
        text: Option<String>,
        bytes: Option<Vec<u8>>,
        expiration: Option<u64>,
        metadata: Option<Value>,
    },
    /// A delete straight from Workers KV.
    KvDelete {
        key: String,
    },
}

/// One mutation of an [`Op::Atomic`], with the options of a plain put (A11, A13).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Mutation {
    /// `put` of `text`, `json` (as JSON text) or `repeat` bytes of `x`.
    Put {
        key: String,
        text: Option<String>,
        json: Option<String>,
        repeat: Option<usize>,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    PutBytes {
        key: String,
        bytes: Vec<u8>,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    Delete {
        key: String,
    },
    Sum {
        key: String,
        n: Int,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    Min {
        key: String,
        n: Int,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
    Max {
        key: String,
        n: Int,
        expiration: Option<u64>,
        expiration_ttl: Option<u64>,
        #[serde(default, deserialize_with = "present")]
        metadata: Option<Value>,
    },
}

/// An `i64` sent as decimal text (exact beyond 2^53, A5) or as a JSON integer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Int {
    Text(String),
    Number(i64),
}

impl Int {
    fn get(&self) -> Result<i64, d1ns::Error> {
        match self {
            Int::Text(text) => text
                .parse()
                .map_err(|_| bad_request(&format!("{text:?} is not an i64"))),
            Int::Number(n) => Ok(*n),
        }
    }
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Runs the request's operations in order; each result carries the D1 cost of that operation.
/// A refused namespace (K33) is an error for the whole request.
pub async fn run(env: &Env, request: OpsRequest) -> Result<Value, String> {
    let mut shared: Option<(Vec<Counted>, D1Namespace<Counted>)> = None;
    let mut results = Vec::with_capacity(request.ops.len());
    for op in &request.ops {
        if shared.is_none() || request.fresh_per_op {
            shared = Some(namespace(env, &request)?);
        }
        let Some((dbs, ns)) = shared.as_ref() else {
            return Err("no namespace".to_owned());
        };
        // Whatever an earlier operation left in the counters is not this one's.
        for db in dbs {
            db.take_stats();
        }
        let outcome = match (op, dbs.as_slice()) {
            (Op::KvPut { .. } | Op::KvDelete { .. }, _) => kv_op(env, op).await,
            (_, [db]) => execute(db, ns, op).await,
            (Op::PutSession { .. } | Op::Find { .. } | Op::DeleteWhere { .. }, _) => {
                Err(bad_request("the typed fixtures run on one database"))
            }
            (_, [db, ..]) => execute(db, ns, op).await,
            (_, []) => Err(bad_request("no database")),
        };
        let stats: Vec<Stats> = dbs.iter().map(|db| db.take_stats()).collect();
        let cost = cost(&stats);
        results.push(match outcome {
            Ok(result) => json!({ "ok": true, "result": result, "cost": cost }),
            Err(e) => json!({ "ok": false, "error": e.to_string(), "cost": cost }),
        });
    }
    let bookmark = match &shared {
        Some((_, ns)) => ns.bookmark().map_err(|e| e.to_string())?,
        None => None,
    };
    Ok(json!({ "results": results, "bookmark": bookmark }))
}

/// An operation's cost as the driver reads it: round trips (`batch()` calls, failed ones
/// included), statements sent (schema statements included), and D1's rows read and written,
/// summed over the statements of successful calls and over the shards; with several shards,
/// `shard_calls` says how many calls each shard got.
fn cost(stats: &[Stats]) -> Value {
    let sum = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    let mut cost = json!({
        "calls": sum(|s| s.calls),
        "statements": sum(|s| s.statements),
        "rows_read": sum(|s| s.rows_read),
        "rows_written": sum(|s| s.rows_written),
    });
    if stats.len() > 1 {
        cost["shard_calls"] = json!(stats.iter().map(|s| s.calls).collect::<Vec<_>>());
    }
    cost
}

/// A write straight to Workers KV, to seed a move from it.
async fn kv_op(env: &Env, op: &Op) -> Result<Value, d1ns::Error> {
    let kv = env
        .kv("KV")
        .map_err(|e| bad_request(&format!("no KV binding: {e}")))?;
    let failed = |e: worker::kv::KvError| bad_request(&format!("KV: {e}"));
    match op {
        Op::KvPut {
            key,
            text,
            bytes,
            expiration,
            metadata,
        } => {
            let mut put = match (text, bytes) {
                (Some(text), None) => kv.put(key, text.as_str()).map_err(failed)?,
                (None, Some(bytes)) => kv.put_bytes(key, bytes).map_err(failed)?,
                _ => return Err(bad_request("a kv_put needs text or bytes")),
            };
            if let Some(expiration) = expiration {
                put = put.expiration(*expiration);
            }
            if let Some(metadata) = metadata {
                put = put.metadata(metadata).map_err(failed)?;
            }
            put.execute().await.map_err(failed)?;
            Ok(Value::Null)
        }
        Op::KvDelete { key } => {
            kv.delete(key).await.map_err(failed)?;
            Ok(Value::Null)
        }
        _ => Err(bad_request("not a KV operation")),
    }
}

/// A namespace on new `env.d1()` handles (or new sessions on them), each wrapped in
/// [`Instrumented`]; the caller keeps one handle on each wrapper to read its counts, the
/// namespace holds the others.
fn namespace(
    env: &Env,
    request: &OpsRequest,
) -> Result<(Vec<Counted>, D1Namespace<Counted>), String> {
    let open = |binding: &str| -> Result<Counted, String> {
        let db = env.d1(binding).map_err(|e| e.to_string())?;
        let target = match &request.session {
            Some(start) => {
                Target::Session(db.with_session(Some(start)).map_err(|e| e.to_string())?)
            }
            None => Target::Binding(db),
        };
        Ok(Arc::new(Instrumented::new(target)))
    };
    let (counted, mut builder) = match &request.shards {
        Some(names) => {
            let counted = names
                .iter()
                .map(|name| open(name))
                .collect::<Result<Vec<_>, _>>()?;
            let shards: Vec<(String, Counted)> = names
                .iter()
                .cloned()
                .zip(counted.iter().map(Arc::clone))
                .collect();
            (counted, D1Namespace::sharded(shards))
        }
        None => {
            let counted = open(&request.binding)?;
            let plain = request.namespace.is_none()
                && request.table.is_none()
                && request.auto_create.is_none()
                && request.edge_cache.is_none()
                && !request.previous_kv
                && request.previous_shards.is_none();
            if plain {
                return Ok((vec![Arc::clone(&counted)], D1Namespace::new(counted)));
            }
            let builder = D1Namespace::builder(Arc::clone(&counted));
            (vec![counted], builder)
        }
    };
    if let Some(namespace) = &request.namespace {
        builder = builder.namespace(namespace.as_str());
    }
    if let Some(table) = &request.table {
        builder = builder.table(table.as_str());
    }
    if let Some(auto_create) = request.auto_create {
        builder = builder.auto_create(auto_create);
    }
    if let Some(name) = &request.edge_cache {
        builder = builder.edge_cache(worker::Cache::default(), name.as_str());
    }
    if request.previous_kv {
        let kv = env.kv("KV").map_err(|e| e.to_string())?;
        builder = builder.previous_home(PreviousHome::kv(kv));
    }
    if let Some(old) = &request.previous_shards {
        let old = old
            .iter()
            .map(|name| Ok((name.clone(), open(name)?)))
            .collect::<Result<Vec<_>, String>>()?;
        builder = builder.previous_home(PreviousHome::shards(old));
    }
    let ns = builder.build().map_err(|e| e.to_string())?;
    Ok((counted, ns))
}

async fn execute(db: &Counted, ns: &D1Namespace<Counted>, op: &Op) -> Result<Value, d1ns::Error> {
    match op {
        Op::Put {
            key,
            text,
            json,
            bytes,
            repeat,
            expiration,
            expiration_ttl,
            metadata,
        } => {
            let mut put = match (text, json, bytes, repeat) {
                (Some(text), None, None, None) => ns.put(key, text.as_str())?,
                (None, Some(json), None, None) => {
                    let value: Value =
                        serde_json::from_str(json).map_err(|source| d1ns::Error::Serialize {
                            key: key.clone(),
                            part: "value",
                            source,
                        })?;
                    ns.put(key, &value)?
                }
                (None, None, Some(bytes), None) => ns.put_bytes(key, bytes)?,
                (None, None, None, Some(n)) => ns.put(key, "x".repeat(*n))?,
                _ => {
                    return Err(bad_request(
                        "a put needs exactly one of text, json, bytes, repeat",
                    ));
                }
            };
            if let Some(expiration) = expiration {
                put = put.expiration(*expiration);
            }
            if let Some(ttl) = expiration_ttl {
                put = put.expiration_ttl(*ttl);
            }
            if let Some(metadata) = metadata {
                put = put.metadata(metadata)?;
            }
            put.execute().await?;
            Ok(Value::Null)
        }
        Op::Get {
            key,
            kind,
            with_metadata,
            cache_ttl,
            summary,
            entry,
        } => {
            let mut get = ns.get(key);
            if let Some(cache_ttl) = cache_ttl {
                get = get.cache_ttl(*cache_ttl);
            }
            if *entry {
                if *with_metadata {
                    return Err(bad_request("an entry has its metadata: no with_metadata"));
                }
                return read_entry(get, *kind, *summary).await;
            }
            if *summary {
                let value = get.bytes().await?;
                return Ok(json!({
                    "length": value.as_ref().map(Vec::len),
                    "same_byte": value.as_deref().and_then(same_byte),
                }));
            }
            Ok(match (kind, with_metadata) {
                (Kind::Text, false) => json!({ "value": get.text().await? }),
                (Kind::Json, false) => {
                    json!({ "value": get.json::<Value>().await?.map(|v| v.to_string()) })
                }
                (Kind::Bytes, false) => json!({ "value": get.bytes().await? }),
                (Kind::Text, true) => {
                    let (value, metadata) = get.text_with_metadata::<Value>().await?;
                    json!({ "value": value, "metadata": metadata })
                }
                (Kind::Json, true) => {
                    let (value, metadata) = get.json_with_metadata::<Value, Value>().await?;
                    json!({ "value": value.map(|v| v.to_string()), "metadata": metadata })
                }
                (Kind::Bytes, true) => {
                    let (value, metadata) = get.bytes_with_metadata::<Value>().await?;
                    json!({ "value": value, "metadata": metadata })
                }
            })
        }
        Op::GetBulk {
            keys,
            kind,
            with_metadata,
            cache_ttl,
        } => {
            let mut get = ns.get_bulk(keys);
            if let Some(cache_ttl) = cache_ttl {
                get = get.cache_ttl(*cache_ttl);
            }
            Ok(match (kind, with_metadata) {
                (Kind::Text, false) => json!({ "values": get.text().await? }),
                (Kind::Json, false) => {
                    json!({ "values": json_texts(get.json::<Value>().await?) })
                }
                (Kind::Text, true) => json!({ "values": get.text_with_metadata::<Value>().await? }),
                (Kind::Json, true) => {
                    let found = get.json_with_metadata::<Value, Value>().await?;
                    let found: HashMap<String, (Option<String>, Option<Value>)> = found
                        .into_iter()
                        .map(|(k, (v, m))| (k, (v.map(|v| v.to_string()), m)))
                        .collect();
                    json!({ "values": found })
                }
                (Kind::Bytes, _) => return Err(bad_request("get_bulk reads text or json")),
            })
        }
        Op::Delete { key } => {
            ns.delete(key).await?;
            Ok(Value::Null)
        }
        Op::List {
            prefix,
            limit,
            cursor,
        } => {
            let mut list = ns.list();
            if let Some(prefix) = prefix {
                list = list.prefix(prefix.clone());
            }
            if let Some(limit) = limit {
                list = list.limit(*limit);
            }
            if let Some(cursor) = cursor {
                list = list.cursor(cursor.clone());
            }
            let page = list.execute().await?;
            serde_json::to_value(page).map_err(|source| d1ns::Error::Serialize {
                key: String::new(),
                part: "list response",
                source,
            })
        }
        Op::PurgeExpired { max_rows } => {
            Ok(json!({ "removed": ns.purge_expired(*max_rows).await? }))
        }
        Op::Atomic { checks, mutations } => {
            let mut atomic = ns.atomic();
            for (key, version) in checks {
                let version = match version {
                    Some(text) => Some(
                        text.parse::<Versionstamp>()
                            .map_err(|e| bad_request(&e.to_string()))?,
                    ),
                    None => None,
                };
                atomic = atomic.check(key, version);
            }
            for mutation in mutations {
                atomic = add_mutation(atomic, mutation)?;
            }
            let committed = atomic.commit().await?;
            Ok(json!({ "committed": committed }))
        }
        Op::Increment {
            key,
            delta,
            expiration,
            expiration_ttl,
            metadata,
        } => {
            let options = write_options(*expiration, *expiration_ttl, metadata);
            let value = ns.increment_with(key, delta.get()?, options).await?;
            Ok(json!({ "value": value.to_string() }))
        }
        Op::PutSession {
            fixture,
            key,
            json,
            note_repeat,
            expiration,
            expiration_ttl,
            metadata,
        } => {
            let put = indexed::Put {
                key,
                json,
                note_repeat: *note_repeat,
                expiration: *expiration,
                expiration_ttl: *expiration_ttl,
                metadata,
            };
            indexed::put(db, *fixture, put).await
        }
        Op::Find {
            fixture,
            field,
            value,
            limit,
            cursor,
            summary,
        } => {
            let find = Lookup::Find {
                limit: *limit,
                cursor,
                summary: *summary,
            };
            indexed::lookup(db, *fixture, field, value, find).await
        }
        Op::DeleteWhere {
            fixture,
            field,
            value,
        } => indexed::lookup(db, *fixture, field, value, Lookup::DeleteWhere).await,
        Op::MoveStep { cursor, max_keys } => {
            let progress = ns.move_step(cursor.clone(), *max_keys).await?;
            Ok(json!({
                "scanned": progress.scanned,
                "copied": progress.copied,
                "skipped": progress.skipped,
                "in_place": progress.in_place,
                "removed": progress.removed,
                "changed": progress.changed,
                "cursor": progress.cursor,
                "done": progress.done,
            }))
        }
        Op::ShardOf { key } => Ok(json!({ "shard": ns.shard_of(key) })),
        Op::KvPut { .. } | Op::KvDelete { .. } => Err(bad_request("a KV operation")),
    }
}

/// A get through the `_entry` forms (A4): the value as `kind` with its metadata, expiration and
/// versionstamp, or with `summary` the value's length and repeated byte instead of the value.
async fn read_entry(
    get: d1ns::GetOptionsBuilder<Counted>,
    kind: Kind,
    summary: bool,
) -> Result<Value, d1ns::Error> {
    let missing = json!({ "value": null, "metadata": null, "expiration": null, "version": null });
    if summary {
        return Ok(match get.bytes_entry::<Value>().await? {
            Some(entry) => json!({
                "length": entry.value.len(),
                "same_byte": same_byte(&entry.value),
                "version": entry.version,
            }),
            None => json!({ "length": null, "same_byte": null, "version": null }),
        });
    }
    let answer = |value: Value, metadata, expiration, version| json!({ "value": value, "metadata": metadata, "expiration": expiration, "version": version });
    Ok(match kind {
        Kind::Text => match get.text_entry::<Value>().await? {
            Some(e) => answer(json!(e.value), e.metadata, e.expiration, e.version),
            None => missing,
        },
        Kind::Json => match get.json_entry::<Value, Value>().await? {
            Some(e) => answer(
                json!(e.value.to_string()),
                e.metadata,
                e.expiration,
                e.version,
            ),
            None => missing,
        },
        Kind::Bytes => match get.bytes_entry::<Value>().await? {
            Some(e) => answer(json!(e.value), e.metadata, e.expiration, e.version),
            None => missing,
        },
    })
}

/// The options of a mutation or an increment, as a plain put takes them.
fn write_options(
    expiration: Option<u64>,
    expiration_ttl: Option<u64>,
    metadata: &Option<Value>,
) -> WriteOptions {
    let mut options = WriteOptions::new();
    if let Some(expiration) = expiration {
        options = options.expiration(expiration);
    }
    if let Some(ttl) = expiration_ttl {
        options = options.expiration_ttl(ttl);
    }
    if let Some(metadata) = metadata {
        options = options.metadata(metadata);
    }
    options
}

/// Adds one mutation to the commit. Mistakes of the driver's (no value, a bad integer) are
/// errors here; mistakes against the KV rules are the commit's to report (A8).
fn add_mutation(
    atomic: AtomicOperation<Counted>,
    mutation: &Mutation,
) -> Result<AtomicOperation<Counted>, d1ns::Error> {
    Ok(match mutation {
        Mutation::Put {
            key,
            text,
            json,
            repeat,
            expiration,
            expiration_ttl,
            metadata,
        } => {
            let options = write_options(*expiration, *expiration_ttl, metadata);
            match (text, json, repeat) {
                (Some(text), None, None) => atomic.put_with(key, text.as_str(), options),
                (None, Some(json), None) => {
                    let value: Value =
                        serde_json::from_str(json).map_err(|source| d1ns::Error::Serialize {
                            key: key.clone(),
                            part: "value",
                            source,
                        })?;
                    atomic.put_with(key, &value, options)
                }
                (None, None, Some(n)) => atomic.put_with(key, "x".repeat(*n), options),
                _ => {
                    return Err(bad_request(
                        "a put mutation needs exactly one of text, json, repeat",
                    ));
                }
            }
        }
        Mutation::PutBytes {
            key,
            bytes,
            expiration,
            expiration_ttl,
            metadata,
        } => atomic.put_bytes_with(
            key,
            bytes,
            write_options(*expiration, *expiration_ttl, metadata),
        ),
        Mutation::Delete { key } => atomic.delete(key),
        Mutation::Sum {
            key,
            n,
            expiration,
            expiration_ttl,
            metadata,
        } => atomic.sum_with(
            key,
            n.get()?,
            write_options(*expiration, *expiration_ttl, metadata),
        ),
        Mutation::Min {
            key,
            n,
            expiration,
            expiration_ttl,
            metadata,
        } => atomic.min_with(
            key,
            n.get()?,
            write_options(*expiration, *expiration_ttl, metadata),
        ),
        Mutation::Max {
            key,
            n,
            expiration,
            expiration_ttl,
            metadata,
        } => atomic.max_with(
            key,
            n.get()?,
            write_options(*expiration, *expiration_ttl, metadata),
        ),
    })
}

/// The byte every position of `value` holds, if it is one byte repeated.
pub(crate) fn same_byte(value: &[u8]) -> Option<u8> {
    let first = *value.first()?;
    value.iter().all(|&b| b == first).then_some(first)
}

fn json_texts(values: HashMap<String, Option<Value>>) -> HashMap<String, Option<String>> {
    values
        .into_iter()
        .map(|(k, v)| (k, v.map(|v| v.to_string())))
        .collect()
}

/// A mistake in the driver's request, reported in the operation's result.
pub(crate) fn bad_request(message: &str) -> d1ns::Error {
    d1ns::Error::Database(d1ns::DatabaseError::new(format!(
        "bad test request: {message}"
    )))
}
