pub use d1ns_runtime::*;
