use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(ttl = 30)]
#[derive(Serialize, Deserialize)]
struct Session;

fn main() {}
