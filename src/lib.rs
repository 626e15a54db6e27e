//! # d1ns: the Workers KV API, stored in Cloudflare D1
//!
//! [`D1Namespace`] has the API of `worker::kv::KvStore` (`get`, `get_bulk`, `put`, `put_bytes`,
//! `delete`, `list`, metadata, `expiration`, `expiration_ttl`) and keeps its entries in a D1
//! table: strongly consistent, TTLs down to 1 second, no write limit per key, plain SQL.
//! Moving a Worker from KV is one line:
//!
//! ```ignore
//! // let kv = env.kv("KV")?;
//! let kv = d1ns::D1Namespace::new(env.d1("DB")?);
//! ```
//!
//! The same code runs natively on embedded SQLite ([`SqliteBackend`][sqlite]), for local development
//! and tests:
//!
//! ```
//! use d1ns::{D1Namespace, SqliteBackend};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), d1ns::Error> {
//! let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
//! kv.put("session:42", "token")?.expiration_ttl(1).metadata("web")?.await?;
//! let (token, client) = kv.get("session:42").text_with_metadata::<String>().await?;
//! assert_eq!(token.as_deref(), Some("token"));
//! assert_eq!(client.as_deref(), Some("web"));
//! let page = kv.list().prefix("session:".to_string()).await?;
//! assert_eq!(page.keys[0].name, "session:42");
//! # Ok(()) }
//! ```
//!
//! ## Typed namespaces
//!
//! [`macro@d1_namespace`] on a serde type makes a namespace whose values and metadata are Rust
//! types, checked at compile time and stored as JSON (so SQL can read them with `json_extract`):
//!
//! ```
//! use d1ns::{SqliteBackend, d1_namespace};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct SessionMeta { user_agent: String }
//!
//! #[d1_namespace(name = "sessions", ttl = 30, metadata = SessionMeta)]
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Session { user_id: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), d1ns::Error> {
//! let sessions = Session::namespace(SqliteBackend::open_in_memory()?);
//! let meta = SessionMeta { user_agent: "curl".into() };
//! sessions.put("abc", &Session { user_id: 7 }).metadata(meta).await?; // expires in 30 s
//! let entry = sessions.get_with_metadata("abc").await?.unwrap();
//! assert_eq!(entry.value, Session { user_id: 7 });
//! assert_eq!(entry.metadata.unwrap().user_agent, "curl");
//! # Ok(()) }
//! ```
//!
//! Arguments of `#[d1_namespace(...)]`:
//!
//! | argument      | meaning                                                                     |
//! |---------------|-----------------------------------------------------------------------------|
//! | `name`        | required; the namespace, and the default table `{name}_kv_entries`          |
//! | `ttl`         | seconds (1 or more) every put expires after, unless the put says otherwise  |
//! | `metadata`    | the metadata type (`Serialize + DeserializeOwned`); without it, none        |
//! | `table`       | the table, when not `{name}_kv_entries`; namespaces may share one           |
//! | `auto_create` | `true` (default) creates the table on first use                             |
//! | `index`       | `index(user_id, email)`: typed indexes on fields, e.g. `Session::USER_ID`   |
//! | `crate`       | the path to this crate when it is renamed, e.g. `crate = "::my_d1ns"`       |
//!
//! Names are checked at compile time: plain identifiers not starting with `_cf` or `sqlite_`, of
//! up to 53 characters for a namespace and 64 for a table (53 + `_kv_entries` = 64). The type gets `Type::namespace(backend)` and
//! `Type::namespace_with(backend, |builder| builder.clock(..))`, both giving a
//! [`TypedNamespace`]; [`TypedNamespace::raw`] is the untyped API over the same namespace.
//!
//! ## Finding entries by a field
//!
//! `index(..)` asks the database to keep an index on fields of the values, updated in the same
//! transaction as every write; each index is a typed constant of the type:
//!
//! ```
//! use d1ns::{SqliteBackend, d1_namespace};
//! use serde::{Deserialize, Serialize};
//!
//! #[d1_namespace(name = "sessions", ttl = 3600, index(user_id))]
//! #[derive(Serialize, Deserialize)]
//! struct Session { user_id: u64, device: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), d1ns::Error> {
//! let sessions = Session::namespace(SqliteBackend::open_in_memory()?);
//! sessions.put("s1", &Session { user_id: 7, device: "phone".into() }).await?;
//! sessions.put("s2", &Session { user_id: 7, device: "laptop".into() }).await?;
//! let page = sessions.find(Session::USER_ID, &7).await?; // live entries, key order, paged
//! assert_eq!(page.entries.len(), 2);
//! assert_eq!(sessions.delete_where(Session::USER_ID, &7).await?, 2); // sign out everywhere
//! # Ok(()) }
//! ```
//!
//! The rules (I1-I12) are in `docs/indexes.md`, shipped with the crate.
//!
//! ## Atomic updates
//!
//! What KV cannot do: every write gives the entry a [`Versionstamp`], reads can return it
//! ([`GetOptionsBuilder::json_entry`] and its siblings), and [`D1Namespace::atomic`] sends checks on
//! stamps and mutations (puts, deletes, sums) as one D1 transaction, all applied or none. A
//! compare-and-swap loses no update however many requests race:
//!
//! ```
//! use d1ns::{D1Namespace, NoMetadata, SqliteBackend, WriteOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), d1ns::Error> {
//! let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
//! loop {
//!     let entry = kv.get("likes").json_entry::<u64, NoMetadata>().await?;
//!     let (likes, version) = entry.map_or((0, None), |e| (e.value, Some(e.version)));
//!     let committed = kv.atomic().check("likes", version).put("likes", likes + 1).commit().await?;
//!     if committed.is_some() {
//!         break; // `None`: another request wrote first; read again
//!     }
//! }
//! // Counters in one round trip; the TTL applies when the hit creates the counter.
//! let hits = kv.increment_with("rate:1.2.3.4", 1, WriteOptions::new().expiration_ttl(60)).await?;
//! assert_eq!(hits, 1);
//! # Ok(()) }
//! ```
//!
//! The rules (A1-A16) are in `docs/atomic.md`, shipped with the crate.
//!
//! ## Features
//!
//! `d1` (the `worker::D1Database` backend) and `sqlite` (the embedded backend; not built on
//! wasm32), both on by default. A Worker can use `default-features = false, features = ["d1"]`.
//! With `sqlite`, `d1ns::rusqlite` is the rusqlite whose `Connection`
//! `SqliteBackend::from_connection` takes.
//!
//! Features only add: with `d1`, [`ListResponse`] and [`Key`] are `worker::kv`'s own types, and
//! without it d1ns's, with the same fields and traits.
//!

// The link goes to the type where it is built, and to the feature that builds it elsewhere.
#![cfg_attr(
    all(feature = "sqlite", not(target_arch = "wasm32")),
    doc = "[sqlite]: SqliteBackend"
)]
#![cfg_attr(
    not(all(feature = "sqlite", not(target_arch = "wasm32"))),
    doc = "[sqlite]: #features"
)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use d1ns_macros::d1_namespace;
pub use d1ns_runtime::*;
// Named, so that the docs link to rusqlite's own instead of copying them in.
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(no_inline)]
pub use d1ns_runtime::rusqlite;
