use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions", index(user_id, email))]
#[derive(Serialize, Deserialize)]
struct Session {
    user_id: u64,
    email: String,
}

async fn revoke(sessions: d1ns::TypedNamespace<Session, d1ns::SqliteBackend>) {
    // Each look-up takes the type of its field.
    let _ = sessions.find(Session::USER_ID, "seven");
    let _ = sessions.delete_where(Session::EMAIL, &7).await;
}

fn main() {
    let _ = revoke;
}
