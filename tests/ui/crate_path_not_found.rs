use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// A `crate` path that does not resolve is one error, at the path.
#[d1_namespace(name = "sessions", crate = "::not_d1ns")]
#[derive(Serialize, Deserialize)]
struct Session;

fn main() {}
