use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// A serde attribute behind `cfg_attr` is expanded after #[d1_namespace] runs, so the index could
// not follow it: on an indexed field it is an error at the attribute.
#[d1_namespace(name = "users", index(user_id, email))]
#[derive(Serialize, Deserialize)]
struct User {
    #[cfg_attr(all(), serde(rename = "uid"))]
    user_id: u64,
    // Other attributes under cfg_attr, and serde ones on fields without an index, are fine.
    #[cfg_attr(all(), allow(dead_code))]
    email: String,
    #[cfg_attr(all(), serde(rename = "n"))]
    name: String,
}

fn main() {}
