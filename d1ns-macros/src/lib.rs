//! `#[d1_namespace]`: a typed KV namespace for a serde type, checked at compile time.
//! Use it through the `d1ns` crate, whose documentation describes the arguments.
//!
//! The macro only reads its arguments (`attr`), checks them (`valid`, with serde's naming rules in
//! `serde_names`) and writes one trait impl, two constructors and the typed index handles
//! (`expand`); all behaviour is generic code in `d1ns-runtime`.

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
/// Arguments: `name` (required), `ttl`, `metadata`, `table`, `auto_create`, `index`, `crate`.
///
/// `index(user_id, email)` declares typed secondary indexes on named fields of the struct. Each
/// gets an associated constant named after the field in upper case, with the struct's
/// visibility, whose look-up type is the field's (`str` for a `String`), so a look-up by a value
/// of another type does not compile:
///
/// ```ignore
/// #[d1_namespace(name = "sessions", ttl = 3600, index(user_id, email))]
/// #[derive(Serialize, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Session { user_id: u64, email: String }
///
/// // Session::USER_ID: d1ns::Index<Session, u64>, on the JSON field "userId".
/// let page = sessions.find(Session::USER_ID, &7).await?;
/// let removed = sessions.delete_where(Session::EMAIL, "a@example.com").await?;
/// ```
///
/// Checked at compile time, each mistake at its own tokens: every name is a field of the struct
/// (with "did you mean"), named once (repeated `index(...)` arguments are merged); the item is a
/// struct with named fields; the field's type is, as written, `String`, `bool`, `i8`-`i64`,
/// `u8`-`u64` or an `Option` of one of them (a type alias is not followed). The JSON name
/// follows serde's `rename` (the `serialize` one of `rename(serialize = .., deserialize = ..)`)
/// and `rename_all`; `flatten`, `skip`, `skip_serializing`, `serialize_with` and `with` on an
/// indexed field, `skip_serializing_if` other than `"Option::is_none"` on an `Option` field, and
/// `transparent` or `into` on the struct are errors, as is a JSON name with `"`, `\` or control
/// characters. Serde attributes inside `cfg_attr` are not read.
#[proc_macro_attribute]
pub fn d1_namespace(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::d1_namespace(args.into(), item.into()).into()
}
