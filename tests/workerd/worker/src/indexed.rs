//! Typed namespaces with indexes (I1-I12 of `docs/indexes.md`), for the ops `put_session`,
//! `find` and `delete_where` of [`ops`](crate::ops): a look-up needs the Rust type and its typed
//! index handle, so the namespaces the driver may name (its fixtures) are declared here.
//!
//! Three of them share the table `idx_kv` with the same fields and 4, 1 and 0 indexes, so that
//! the driver can compare what a put costs with each (I8) and check that one namespace's look-ups
//! never see another's entries (I4). `late` has a table of its own, which the driver fills through
//! the untyped API before the typed namespace first runs (I9).
//!
//! `GET /fixtures` answers each one's namespace, table and number of indexes, from d1ns itself.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worker::Env;

use crate::ops::{Counted, bad_request, same_byte};
use d1ns::{Entry, Index, IndexValue, Namespace, TypedNamespace};

/// The fields every fixture's values have: one index of each kind (I3), and a `note` that makes a
/// value as long as a scenario needs (values over 1 KiB are stored in chunks, I11).
#[d1ns::d1_namespace(
    name = "idx_sessions",
    table = "idx_kv",
    metadata = Value,
    index(user_id, email, admin, team)
)]
#[derive(Debug, Serialize, Deserialize)]
pub struct Session {
    user_id: u64,
    email: String,
    admin: bool,
    team: Option<u32>,
    note: String,
}

/// The same fields, one index, in the same table.
#[d1ns::d1_namespace(name = "idx_one", table = "idx_kv", metadata = Value, index(user_id))]
#[derive(Debug, Serialize, Deserialize)]
pub struct OneIndex {
    user_id: u64,
    email: String,
    admin: bool,
    team: Option<u32>,
    note: String,
}

/// The same fields, no index, in the same table: it must cost what it did before indexes (I8).
#[d1ns::d1_namespace(name = "idx_none", table = "idx_kv", metadata = Value)]
#[derive(Debug, Serialize, Deserialize)]
pub struct NoIndex {
    user_id: u64,
    email: String,
    admin: bool,
    team: Option<u32>,
    note: String,
}

/// An index over entries written before it existed (I9): its own table, which the driver fills
/// through the untyped API first.
#[d1ns::d1_namespace(name = "idx_late", metadata = Value, index(user_id))]
#[derive(Debug, Serialize, Deserialize)]
pub struct Late {
    user_id: u64,
    email: String,
    admin: bool,
    team: Option<u32>,
    note: String,
}

/// A fixture, as the driver names it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fixture {
    Sessions,
    OneIndex,
    NoIndex,
    Late,
}

/// `GET /fixtures`: `{name: {"namespace", "table", "indexes"}}`, the number of indexes counted in
/// the statements `schema_sql()` prints (I12).
pub fn fixtures(env: &Env) -> Result<Value, String> {
    let db = || env.d1("DB").map_err(|e| e.to_string());
    let describe = |raw: &d1ns::D1Namespace<worker::D1Database>| {
        json!({
            "namespace": raw.namespace(),
            "table": raw.table(),
            "indexes": raw.schema_sql().lines().filter(|line| line.contains("$index$")).count(),
        })
    };
    Ok(json!({
        "sessions": describe(Session::namespace(db()?).raw()),
        "one_index": describe(OneIndex::namespace(db()?).raw()),
        "no_index": describe(NoIndex::namespace(db()?).raw()),
        "late": describe(Late::namespace(db()?).raw()),
    }))
}

/// A typed put's options, as `put_session` sends them.
pub struct Put<'a> {
    pub key: &'a str,
    /// The value as JSON text (exact beyond 2^53).
    pub json: &'a str,
    /// Replaces the value's `note` with this many `n`, made here rather than sent.
    pub note_repeat: Option<usize>,
    pub expiration: Option<u64>,
    pub expiration_ttl: Option<u64>,
    pub metadata: &'a Option<Value>,
}

/// The longest note `note_repeat` makes: KV's largest value (K6).
const MAX_NOTE: usize = 26_214_400;

/// A typed put to `fixture`; answers `null`. A value beyond 2^53 in an `i64`/`u64` indexed
/// field is d1ns's to refuse (I3).
pub async fn put(db: &Counted, fixture: Fixture, put: Put<'_>) -> Result<Value, d1ns::Error> {
    let db = db.clone();
    match fixture {
        Fixture::Sessions => put_typed(&Session::namespace(db), put).await,
        Fixture::OneIndex => put_typed(&OneIndex::namespace(db), put).await,
        Fixture::NoIndex => put_typed(&NoIndex::namespace(db), put).await,
        Fixture::Late => put_typed(&Late::namespace(db), put).await,
    }
}

async fn put_typed<T: Namespace<Metadata = Value>>(
    ns: &TypedNamespace<T, Counted>,
    put: Put<'_>,
) -> Result<Value, d1ns::Error> {
    let mut value: Value = serde_json::from_str(put.json)
        .map_err(|e| bad_request(&format!("the value is not JSON: {e}")))?;
    if let Some(n) = put.note_repeat {
        // Not a panic for a length that cannot be allocated: KV's limit is 25 MiB (K6).
        if n > MAX_NOTE {
            return Err(bad_request(&format!("note_repeat is at most {MAX_NOTE}")));
        }
        let Some(fields) = value.as_object_mut() else {
            return Err(bad_request("note_repeat needs a JSON object"));
        };
        fields.insert("note".to_owned(), Value::String("n".repeat(n)));
    }
    let value: T = serde_json::from_value(value)
        .map_err(|e| bad_request(&format!("the value is not a session: {e}")))?;
    let mut builder = ns.put(put.key, &value);
    if let Some(expiration) = put.expiration {
        builder = builder.expiration(expiration);
    }
    if let Some(ttl) = put.expiration_ttl {
        builder = builder.expiration_ttl(ttl);
    }
    if let Some(metadata) = put.metadata {
        builder = builder.metadata(metadata);
    }
    builder.execute().await?;
    Ok(Value::Null)
}

/// A look-up by an index: a page of `find`, or `delete_where`.
pub enum Lookup<'a> {
    /// Answers `{"entries": [{"key", "value", "metadata", "expiration", "version"}],
    /// "list_complete", "cursor"}`, each value as JSON text; with `summary`, each value without
    /// its note, and `"note": {"length", "same_byte"}` instead (for notes of megabytes).
    Find {
        limit: Option<u64>,
        cursor: &'a Option<String>,
        summary: bool,
    },
    /// Answers `{"removed": n}`.
    DeleteWhere,
}

/// Runs `lookup` on the index of `fixture` on `field`, with `value` converted to the field's
/// type: a JSON number or decimal text for `user_id` (text carries values beyond 2^53, for d1ns
/// to refuse, I3), a string for `email`, a boolean for `admin`, a number for `team`.
pub async fn lookup(
    db: &Counted,
    fixture: Fixture,
    field: &str,
    value: &Value,
    lookup: Lookup<'_>,
) -> Result<Value, d1ns::Error> {
    let db = db.clone();
    match (fixture, field) {
        (Fixture::Sessions, "user_id") => {
            let ns = Session::namespace(db);
            run(&ns, Session::USER_ID, &big_integer(value)?, lookup).await
        }
        (Fixture::Sessions, "email") => {
            let ns = Session::namespace(db);
            run(&ns, Session::EMAIL, text(value)?, lookup).await
        }
        (Fixture::Sessions, "admin") => {
            let ns = Session::namespace(db);
            run(&ns, Session::ADMIN, &boolean(value)?, lookup).await
        }
        (Fixture::Sessions, "team") => {
            let ns = Session::namespace(db);
            run(&ns, Session::TEAM, &small_integer(value)?, lookup).await
        }
        (Fixture::OneIndex, "user_id") => {
            let ns = OneIndex::namespace(db);
            run(&ns, OneIndex::USER_ID, &big_integer(value)?, lookup).await
        }
        (Fixture::Late, "user_id") => {
            let ns = Late::namespace(db);
            run(&ns, Late::USER_ID, &big_integer(value)?, lookup).await
        }
        (fixture, field) => Err(bad_request(&format!(
            "the fixture {fixture:?} has no index on {field:?}"
        ))),
    }
}

async fn run<T: Namespace<Metadata = Value>, V: IndexValue + ?Sized>(
    ns: &TypedNamespace<T, Counted>,
    index: Index<T, V>,
    value: &V,
    lookup: Lookup<'_>,
) -> Result<Value, d1ns::Error> {
    match lookup {
        Lookup::DeleteWhere => Ok(json!({ "removed": ns.delete_where(index, value).await? })),
        Lookup::Find {
            limit,
            cursor,
            summary,
        } => {
            let mut find = ns.find(index, value);
            if let Some(limit) = limit {
                find = find.limit(limit);
            }
            if let Some(cursor) = cursor {
                find = find.cursor(cursor.clone());
            }
            let page = find.execute().await?;
            let entries = page
                .entries
                .into_iter()
                .map(|(key, entry)| entry_answer(key, entry, summary))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({
                "entries": entries,
                "list_complete": page.list_complete,
                "cursor": page.cursor,
            }))
        }
    }
}

/// One entry of a page, as [`Lookup::Find`] answers it.
fn entry_answer<T: Serialize>(
    key: String,
    entry: Entry<T, Value>,
    summary: bool,
) -> Result<Value, d1ns::Error> {
    let mut value =
        serde_json::to_value(&entry.value).map_err(|source| d1ns::Error::Serialize {
            key: key.clone(),
            part: "value",
            source,
        })?;
    let mut answer = json!({
        "key": key,
        "metadata": entry.metadata,
        "expiration": entry.expiration,
        "version": entry.version,
    });
    if summary {
        let note = value
            .as_object_mut()
            .and_then(|fields| fields.remove("note"));
        let note = note.as_ref().and_then(Value::as_str).unwrap_or_default();
        answer["note"] = json!({ "length": note.len(), "same_byte": same_byte(note.as_bytes()) });
    }
    answer["value"] = Value::String(value.to_string());
    Ok(answer)
}

fn big_integer(value: &Value) -> Result<u64, d1ns::Error> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad_request(&format!("{value} is not a u64")))
}

fn small_integer(value: &Value) -> Result<u32, d1ns::Error> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad_request(&format!("{value} is not a u32")))
}

fn text(value: &Value) -> Result<&str, d1ns::Error> {
    value
        .as_str()
        .ok_or_else(|| bad_request(&format!("{value} is not a string")))
}

fn boolean(value: &Value) -> Result<bool, d1ns::Error> {
    value
        .as_bool()
        .ok_or_else(|| bad_request(&format!("{value} is not a boolean")))
}
