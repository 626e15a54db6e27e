use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// Every mistake is reported, and code using the namespace still compiles: no cascade.
#[d1_namespace(name = "bad name", ttl = 0, auto_create = "yes", table = "x-y")]
#[derive(Serialize, Deserialize)]
struct Session {
    id: u64,
}

fn main() {
    let backend = d1ns::SqliteBackend::open_in_memory().unwrap();
    let sessions = Session::namespace(backend);
    let _ = sessions.put("k", &Session { id: 1 });
}
