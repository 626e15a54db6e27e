use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "events", index(user))]
#[derive(Serialize, Deserialize)]
enum Event {
    Login { user: String },
    Logout { user: String },
}

fn main() {}
