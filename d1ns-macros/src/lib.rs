//! The `#[d1_namespace]` attribute macro of d1ns (see the `d1ns` crate).
