//! The runtime of [d1ns](https://docs.rs/d1ns): the Workers KV API (`worker::kv::KvStore`) over a
//! table in Cloudflare D1, or in embedded SQLite for native programs and tests.
//!
//! Use it through the `d1ns` crate, which re-exports everything here together with the
//! `#[d1_namespace]` macro.
//!
//! ```
//! use d1ns_runtime::{D1Namespace, SqliteBackend};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), d1ns_runtime::Error> {
//! // In a Worker: D1Namespace::new(env.d1("DB")?)
//! let kv = D1Namespace::new(SqliteBackend::open_in_memory()?);
//! kv.put("greeting", "hello")?.expiration_ttl(1).await?;
//! let (value, metadata) = kv.get("greeting").text_with_metadata::<serde_json::Value>().await?;
//! assert_eq!(value.as_deref(), Some("hello"));
//! assert_eq!(metadata, None);
//! # Ok(()) }
//! ```
//!
//! Where things live: the KV rules on input in [`limits`], every SQL statement in one `sql`
//! module, one file per [`backend`], the time in [`clock`], and the operations in `get`, `put`
//! and `list` beside [`D1Namespace`].

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod atomic;
pub mod backend;
mod bounds;
mod chunk;
pub mod clock;
mod edge;
mod error;
mod get;
mod index;
mod join;
mod key;
pub mod limits;
mod list;
mod macro_support;
mod moving;
mod namespace;
pub mod placement;
mod put;
mod rows;
mod sql;
#[cfg(feature = "d1")]
mod stream;
mod typed;
mod version;

pub use atomic::{AtomicOperation, WriteOptions};
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use backend::SqliteBackend;
pub use backend::{
    Backend, Instrumented, Query, QueryResult, RowSink, Session, Statement, Stats, Value, ValueRef,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use edge::EDGE_CACHE_MAX_VALUE_BYTES;
pub use error::{DatabaseError, Error, KeyProblem, NameKind, NameProblem, Operation};
pub use get::{GetBulkOptionsBuilder, GetOptionsBuilder};
pub use index::{FindBuilder, FindResponse, Index, IndexValue};
pub use list::{Key, ListOptionsBuilder, ListResponse};
pub use moving::{MoveProgress, PreviousHome};
pub use namespace::{D1Namespace, D1NamespaceBuilder};
pub use put::PutOptionsBuilder;
/// The rusqlite that [`SqliteBackend::from_connection`] takes a `Connection` of, so callers need
/// not match its version by hand.
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(no_inline)]
pub use rusqlite;
#[cfg(feature = "d1")]
pub use stream::PutStreamOptionsBuilder;
pub use typed::{
    Entry, Namespace, NoMetadata, TypedAtomicOperation, TypedKey, TypedListBuilder,
    TypedListResponse, TypedNamespace, TypedPutBuilder,
};
pub use version::{ParseVersionstampError, Versionstamp};

/// What `#[d1_namespace]`'s output refers to. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::macro_support::*;
}
