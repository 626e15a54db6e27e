//! `ListResponse` and `Key` are `worker::kv`'s own types with the `d1` feature and d1ns's without
//! it. Features are additive only if both have exactly the same traits: turning `d1` on anywhere in
//! a build must not take a trait away from code compiled without it. CI runs this file with and
//! without `d1`.

use std::fmt::Debug;

use d1ns::{Key, ListResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The traits `worker::kv::ListResponse` and `worker::kv::Key` have.
fn has_the_traits_of_worker_kv_types<
    T: Debug + Clone + Serialize + DeserializeOwned + Send + Sync,
>() {
}

/// Compiles only if `$ty` implements none of the traits: with one of them, the `_` below has two
/// solutions and type inference fails.
macro_rules! lacks {
    ($ty:ty: $($trait_:path),+) => {$(
        const _: () = {
            trait AmbiguousIfImplemented<A> {
                fn check() {}
            }
            impl<T: ?Sized> AmbiguousIfImplemented<()> for T {}
            struct Implemented;
            impl<T: ?Sized + $trait_> AmbiguousIfImplemented<Implemented> for T {}
            let _ = <$ty as AmbiguousIfImplemented<_>>::check;
        };
    )+};
}

// The traits `worker::kv`'s page types do not derive.
lacks!(ListResponse: PartialEq, Eq, PartialOrd, Ord, std::hash::Hash, Default, Copy);
lacks!(Key: PartialEq, Eq, PartialOrd, Ord, std::hash::Hash, Default, Copy);

#[test]
fn page_types_have_exactly_the_traits_of_worker_kv_types_with_and_without_d1() {
    has_the_traits_of_worker_kv_types::<ListResponse>();
    has_the_traits_of_worker_kv_types::<Key>();
}
