use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions")]
struct Session {
    _id: u64,
}

fn main() {}
