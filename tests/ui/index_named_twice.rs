use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// A field named twice is an error at the second name, within one `index(...)` or across two.
#[d1_namespace(name = "sessions", index(user_id, email, user_id), index(email))]
#[derive(Serialize, Deserialize)]
struct Session {
    user_id: u64,
    email: String,
}

// Two fields with one JSON name, and two fields with one constant name.
#[d1_namespace(name = "carts", index(owner, buyer, userId, user_id))]
#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct Cart {
    owner: String,
    #[serde(rename(serialize = "owner"))]
    buyer: String,
    userId: u32,
    user_id: u32,
}

fn main() {}
