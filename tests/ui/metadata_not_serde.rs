use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

struct NotSerde {
    _field: u8,
}

#[d1_namespace(name = "sessions", metadata = NotSerde)]
#[derive(Serialize, Deserialize)]
struct Session;

fn main() {}
