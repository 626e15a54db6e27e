//! d1ns in five minutes, natively on an embedded SQLite file: a typed namespace with a TTL and
//! metadata and an index, an untyped namespace in the same database, an atomic update and a
//! counter, and a list read page by page.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! The same calls run in a Worker on D1: replace `SqliteBackend::open(..)` with `env.d1("DB")?`.

use std::sync::Arc;

use d1ns::{D1Namespace, NoMetadata, SqliteBackend, d1_namespace};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct SessionMeta {
    user_agent: String,
}

/// Sessions expire 30 seconds after they are written unless a put says otherwise; the database
/// keeps an index on `user_id`, to find every session of a user.
#[d1_namespace(name = "sessions", ttl = 30, metadata = SessionMeta, index(user_id))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Session {
    user_id: u64,
    roles: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("d1ns-quickstart.sqlite");
    // A fresh database each run, so the output is always the same.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!("database: {} (SQLite, the same SQL as D1)", path.display());
    let db = Arc::new(SqliteBackend::open(&path)?);

    // An untyped namespace: the Workers KV API, in the table `_kv_entries`.
    let kv = D1Namespace::new(db.clone());
    kv.put("visits", 1)?.await?;
    let visits = kv.get("visits").json::<u64>().await?.unwrap_or(0) + 1;
    kv.put("visits", visits)?.await?;
    println!("\nuntyped: visits = {visits} (read after write: always the latest value)");

    kv.put("greeting", "hello from d1ns")?
        .expiration_ttl(1)
        .metadata("any JSON")?
        .await?;
    let (greeting, note) = kv.get("greeting").text_with_metadata::<String>().await?;
    println!(
        "untyped: greeting = {greeting:?}, metadata = {note:?} (expires in 1 s: no 60 s minimum)"
    );

    // A typed namespace in the same database: values and metadata are Rust types.
    let sessions = Session::namespace(db.clone());
    let session = Session {
        user_id: 42,
        roles: vec!["admin".into()],
    };
    let meta = SessionMeta {
        user_agent: "quickstart".into(),
    };
    sessions.put("abc", &session).metadata(meta).await?;
    let entry = sessions
        .get_with_metadata("abc")
        .await?
        .ok_or("the session just written is missing")?;
    println!(
        "\ntyped:   sessions[\"abc\"] = {:?}, metadata = {:?}, expires at {:?} (the 30 s default TTL)",
        entry.value, entry.metadata, entry.expiration
    );
    sessions.put("long-lived", &session).no_expiration().await?;
    sessions
        .put(
            "other-user",
            &Session {
                user_id: 7,
                roles: vec![],
            },
        )
        .await?;

    // Find entries by an indexed field: every session of user 42, then revoke them all.
    let page = sessions.find(Session::USER_ID, &42).await?;
    let keys: Vec<&str> = page.entries.iter().map(|(key, _)| key.as_str()).collect();
    println!("\nindex:   sessions of user 42: {keys:?}");
    let revoked = sessions.delete_where(Session::USER_ID, &42).await?;
    let left = sessions.find(Session::USER_ID, &7).await?.entries.len();
    println!("         revoked {revoked} in one round trip; user 7 still has {left}");

    // Beyond KV: atomic updates. A read returns the value's versionstamp; a commit writes only if
    // its checks hold (here: nobody wrote "visits" since), all of it or nothing.
    let entry = kv
        .get("visits")
        .json_entry::<u64, NoMetadata>()
        .await?
        .ok_or("visits was just written")?;
    let committed = kv
        .atomic()
        .check("visits", Some(entry.version))
        .put("visits", entry.value + 1)
        .commit()
        .await?;
    println!(
        "
atomic:  visits {} -> {} if unchanged since version {}: committed = {}",
        entry.value,
        entry.value + 1,
        entry.version,
        committed.is_some()
    );
    let stale = kv
        .atomic()
        .check("visits", Some(entry.version))
        .put("visits", 0)
        .commit()
        .await?;
    println!(
        "         the same check again (the version has changed): committed = {}",
        stale.is_some()
    );
    let first = kv.increment("hits", 1).await?;
    let second = kv.increment("hits", 1).await?;
    println!(
        "         increment(\"hits\", 1) twice: {first}, then {second} (one round trip each, no count lost)"
    );

    // Lists come in pages, in key order; the cursor continues where a page stopped.
    for i in 0..25 {
        kv.put(&format!("user:{i:03}"), i)?.await?;
    }
    println!("\nlist:    keys with prefix \"user:\", 10 per page");
    let mut cursor = None;
    let mut page_number = 1;
    loop {
        let mut request = kv.list().prefix("user:".to_string()).limit(10);
        if let Some(cursor) = cursor.take() {
            request = request.cursor(cursor);
        }
        let page = request.await?;
        let names: Vec<&str> = page.keys.iter().map(|k| k.name.as_str()).collect();
        println!(
            "  page {page_number}: {} keys, {} .. {}",
            names.len(),
            names.first().unwrap_or(&"-"),
            names.last().unwrap_or(&"-")
        );
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
        page_number += 1;
    }

    // The data is in the file: a new backend on it (a restart, say) sees everything.
    drop((kv, sessions, db));
    let reopened = D1Namespace::new(SqliteBackend::open(&path)?);
    let visits = reopened.get("visits").text().await?;
    println!("\nreopen:  after reopening the file, visits = {visits:?}");

    println!("\nSQL:     the data is plain SQL; for instance:");
    println!(
        "  sqlite3 {} \"SELECT key, json_extract(value, '$.user_id') FROM sessions_kv_entries\"",
        path.display()
    );
    Ok(())
}
