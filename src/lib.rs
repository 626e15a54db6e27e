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
//! The same code runs natively on embedded SQLite ([`SqliteBackend`]), for local development
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
//! Features: `d1` (the `worker::D1Database` backend) and `sqlite` (the embedded backend; not
//! built on wasm32), both on by default.

pub use d1ns_macros::d1_namespace;
pub use d1ns_runtime::*;
