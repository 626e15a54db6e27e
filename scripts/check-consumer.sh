#!/usr/bin/env bash
# d1ns as a user gets it: a fresh project outside the workspace, with its own lock file, that
# depends on d1ns by path and uses its API, checked under each feature set of d1ns (none,
# sqlite, d1, both). Catches a crate that only builds because another crate in the workspace
# turns a dependency feature on. The workspace's target dir is shared, so dependencies built
# for it are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

PROJECT=$(mktemp -d)
trap 'rm -rf "$PROJECT"' EXIT
mkdir "$PROJECT/src"

cat >"$PROJECT/Cargo.toml" <<TOML
[package]
name = "d1ns-consumer"
version = "0.0.0"
edition = "2024"
publish = false

# Its own workspace, so no enclosing one adopts it.
[workspace]

[features]
d1 = ["d1ns/d1", "dep:worker"]
sqlite = ["d1ns/sqlite"]

[dependencies]
d1ns = { path = "$ROOT", default-features = false }
serde = { version = "1", features = ["derive"] }
worker = { version = "0.8.7", features = ["d1"], optional = true }
TOML

cat >"$PROJECT/src/main.rs" <<'RUST'
use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions", ttl = 60, index(user_id))]
#[derive(Serialize, Deserialize)]
struct Session {
    user_id: u64,
}

// The page types have these traits under every feature set (features only add).
fn _page_traits(
    page: d1ns::ListResponse,
) -> impl std::fmt::Debug + Clone + Serialize + serde::de::DeserializeOwned {
    page
}

// The drop-in promise: code written against KvStore's types keeps compiling.
#[cfg(feature = "d1")]
async fn _list_as_kv_does(
    kv: d1ns::D1Namespace<worker::D1Database>,
) -> Result<worker::kv::ListResponse, worker::kv::KvError> {
    Ok(kv.list().prefix("user:".to_string()).execute().await?)
}

#[cfg(feature = "d1")]
fn _typed_on_d1(db: worker::D1Database) -> d1ns::TypedNamespace<Session, worker::D1Database> {
    Session::namespace(db)
}

// Reading close to users (R1-R12): a D1 session is a backend with a bookmark, typed too, and the
// edge cache is a builder option, with the d1 feature.
#[cfg(feature = "d1")]
async fn _session_and_edge_cache(
    db: worker::D1Database,
    bookmark: Option<&str>,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let kv = d1ns::D1Namespace::builder(db.with_session(bookmark)?)
        .edge_cache(worker::Cache::default(), "DB")
        .build()?;
    kv.get("hot").cache_ttl(60).text().await?;
    kv.get_bulk(&["a", "b"]).cache_ttl(60).text().await?;
    let sessions = Session::namespace(db.with_session(None)?);
    sessions.get_cached("s", 60).await?;
    sessions.bookmark()?;
    Ok(kv.bookmark()?)
}

// Shards and moves (S1-S9, M1-M9): every feature set; KV as a previous home with d1.
fn _sharded<B: d1ns::Backend>(
    a: B,
    b: B,
    old: B,
) -> Result<d1ns::D1Namespace<B>, d1ns::Error> {
    d1ns::D1Namespace::sharded([("a", a), ("b", b)])
        .previous_home(d1ns::PreviousHome::shards([("a", old)]))
        .build()
}

fn _typed_sharded<B: d1ns::Backend>(
    shards: Vec<(String, B)>,
) -> Result<d1ns::TypedNamespace<Session, B>, d1ns::Error> {
    let _ = d1ns::placement::shard_for(&["a", "b"], "user:{42}");
    Session::namespace_sharded(shards)
}

#[cfg(feature = "d1")]
async fn _move_from_kv(
    db: worker::D1Database,
    kv: worker::kv::KvStore,
) -> Result<bool, d1ns::Error> {
    let ns = d1ns::D1Namespace::builder(db)
        .previous_home(d1ns::PreviousHome::kv(kv))
        .build()?;
    Ok(ns.move_step(None, 100).await?.done)
}

// Indexes, versionstamps and atomic commits exist under every feature set.
async fn _beyond_kv<B: d1ns::Backend + Send + Sync + 'static>(
    sessions: d1ns::TypedNamespace<Session, B>,
) -> Result<Option<d1ns::Versionstamp>, d1ns::Error> {
    let page: d1ns::FindResponse<Session, d1ns::NoMetadata> =
        sessions.find(Session::USER_ID, &7).limit(10).await?;
    let _removed: u64 = sessions.delete_where(Session::USER_ID, &7).await?;
    let version = page.entries.first().map(|(_, entry)| entry.version);
    let _count: i64 = sessions.raw().increment("count", 1).await?;
    sessions
        .atomic()
        .check("k", version)
        .put("k", &Session { user_id: 7 })
        .commit()
        .await
}

#[cfg(feature = "sqlite")]
fn main() -> Result<(), d1ns::Error> {
    let kv = d1ns::D1Namespace::new(d1ns::SqliteBackend::open_in_memory()?);
    let connection = d1ns::rusqlite::Connection::open_in_memory()
        .map_err(|e| d1ns::Error::Database(d1ns::DatabaseError::new(e.to_string())))?;
    let sessions = Session::namespace(d1ns::SqliteBackend::from_connection(connection)?);
    let _ = (kv, sessions, Session { user_id: 1 }.user_id);
    Ok(())
}

#[cfg(not(feature = "sqlite"))]
fn main() {
    let _ = Session { user_id: 1 }.user_id;
}
RUST

for features in "" "sqlite" "d1" "d1,sqlite"; do
  printf -- '-- a fresh project with d1ns features [%s]\n' "$features"
  cargo check --quiet --manifest-path "$PROJECT/Cargo.toml" --features "$features"
done
echo "fresh projects: ok"
