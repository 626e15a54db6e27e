//! What `#[d1_namespace]`'s output refers to, re-exported as `__private`. Not public API.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::backend::Backend;
pub use crate::error::Error;
pub use crate::index::{Index, IndexDef};
pub use crate::namespace::D1NamespaceBuilder;
pub use crate::typed::{Namespace, NoMetadata, Sealed, TypedNamespace};
pub use ::core;
pub use ::std::string::String;

/// A value type the expansion checks by name, so that a missing derive is one short error of
/// d1ns's own wording instead of rustc's account of the `Namespace` bounds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored by #[d1_namespace]: it is not `Serialize` and `DeserializeOwned`",
    label = "derive serde's `Serialize` and `Deserialize` for this type"
)]
pub trait StoredValue: Serialize + DeserializeOwned {}

// Not recommended, so that rustc reports the trait above, not serde's traits behind it.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> StoredValue for T {}

/// The same check for the `metadata` type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the metadata of #[d1_namespace]: it is not `Serialize` and `DeserializeOwned`",
    label = "derive serde's `Serialize` and `Deserialize` for this type"
)]
pub trait StoredMetadata: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> StoredMetadata for T {}

/// Fails to compile, with the message of [`StoredValue`], unless `T` is a storable value.
pub const fn assert_value<T: StoredValue>() {}

/// Fails to compile, with the message of [`StoredMetadata`], unless `T` is storable metadata.
pub const fn assert_metadata<T: StoredMetadata>() {}
