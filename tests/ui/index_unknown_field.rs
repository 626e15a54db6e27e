use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// An unknown field is an error at its name, with the closest field when one is close; the
// namespace and the other indexes still compile.
#[d1_namespace(name = "sessions", index(user_id, emial, colour))]
#[derive(Serialize, Deserialize)]
struct Session {
    user_id: u64,
    email: String,
}

fn main() {
    let sessions = Session::namespace(d1ns::SqliteBackend::open_in_memory().unwrap());
    let _ = sessions.find(Session::USER_ID, &7);
}
