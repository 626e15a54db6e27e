use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions")]
#[derive(Serialize, Deserialize)]
struct Session<T> {
    value: T,
}

fn main() {}
