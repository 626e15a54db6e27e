//! `#[d1_namespace]`: a typed KV namespace for a serde type, checked at compile time.
//! Use it through the `d1ns` crate, whose documentation describes the arguments.
//!
//! The macro only reads its arguments (`attr`), checks them (`valid`) and writes one trait impl
//! and two constructors (`expand`); all behaviour is generic code in `d1ns-runtime`.

mod attr;
mod errors;
mod expand;
mod serde_names;
mod valid;

use proc_macro::TokenStream;

/// Makes a serde type the value type of a KV namespace stored in D1.
///
/// ```ignore
/// #[d1_namespace(name = "sessions", ttl = 30, metadata = SessionMeta)]
/// #[derive(Serialize, Deserialize)]
/// struct Session { user_id: u64 }
///
/// let sessions = Session::namespace(env.d1("DB")?);
/// ```
///
/// Arguments: `name` (required), `ttl`, `metadata`, `table`, `auto_create`, `crate`.
#[proc_macro_attribute]
pub fn d1_namespace(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::d1_namespace(args.into(), item.into()).into()
}
