use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions", ttl = 30, ttl = 60)]
#[derive(Serialize, Deserialize)]
struct Session;

fn main() {}
