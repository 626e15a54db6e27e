use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

type UserId = u64;

// Each type is an error at the type (inside the `Option` when the `Option` is fine), naming the
// types an index can hold.
#[d1_namespace(name = "sessions", index(score, tags, ratio, size, user, nested, big))]
#[derive(Serialize, Deserialize)]
struct Session {
    score: f64,
    tags: Vec<String>,
    ratio: Option<f32>,
    size: usize,
    user: UserId,
    nested: Option<Option<u32>>,
    big: u128,
}

fn main() {}
