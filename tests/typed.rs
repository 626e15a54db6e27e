//! `#[d1_namespace]`: typed namespaces over the same storage as the untyped API.

mod common;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use common::T0;
use d1ns::{D1Namespace, Entry, Error, ManualClock, SqliteBackend, TypedNamespace, d1_namespace};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct SessionMeta {
    user_agent: String,
}

#[d1_namespace(name = "sessions", ttl = 30, metadata = SessionMeta)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Session {
    user_id: u64,
    roles: Vec<String>,
}

#[d1_namespace(name = "counters")]
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct Counter(u64);

#[d1_namespace(
    name = "events",
    table = "shared_kv",
    auto_create = true,
    crate = "::d1ns"
)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind")]
enum Event {
    Login { user: String },
    Logout,
}

// Named like the generic parameters a macro might generate: the expansion's own names must not
// collide with the user's.
#[d1_namespace(name = "bees")]
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct B {
    stings: u8,
}

fn session(user_id: u64) -> Session {
    Session {
        user_id,
        roles: vec!["admin".into()],
    }
}

fn meta(agent: &str) -> SessionMeta {
    SessionMeta {
        user_agent: agent.into(),
    }
}

fn sessions() -> (
    TypedNamespace<Session, Arc<SqliteBackend>>,
    ManualClock,
    Arc<SqliteBackend>,
) {
    let clock = ManualClock::new(T0);
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let typed = Session::namespace_with(backend.clone(), |b| b.clock(clock.clone())).unwrap();
    (typed, clock, backend)
}

#[tokio::test]
async fn put_and_get_round_trip_values_and_metadata() {
    let (sessions, _, _) = sessions();
    sessions
        .put("abc", &session(7))
        .metadata(meta("curl"))
        .await
        .unwrap();
    let got: Option<Session> = sessions.get("abc").await.unwrap();
    assert_eq!(got, Some(session(7)));
    let entry: Option<Entry<Session, SessionMeta>> =
        sessions.get_with_metadata("abc").await.unwrap();
    let entry = entry.unwrap();
    assert_eq!(entry.value, session(7));
    assert_eq!(entry.metadata, Some(meta("curl")));
    assert_eq!(sessions.get("missing").await.unwrap(), None);
    assert_eq!(sessions.get_with_metadata("missing").await.unwrap(), None);
}

#[tokio::test]
async fn the_default_ttl_applies_to_every_put_unless_overridden() {
    let (sessions, clock, _) = sessions();
    sessions.put("default", &session(1)).await.unwrap();
    sessions
        .put("short", &session(2))
        .expiration_ttl(5)
        .await
        .unwrap();
    sessions
        .put("at", &session(3))
        .expiration(T0 / 1000 + 100)
        .await
        .unwrap();
    sessions
        .put("forever", &session(4))
        .no_expiration()
        .execute()
        .await
        .unwrap();

    let expiration = |key: &'static str| {
        let sessions = &sessions;
        async move {
            sessions
                .get_with_metadata(key)
                .await
                .unwrap()
                .unwrap()
                .expiration
        }
    };
    assert_eq!(expiration("default").await, Some(T0 / 1000 + 30));
    assert_eq!(expiration("short").await, Some(T0 / 1000 + 5));
    assert_eq!(expiration("at").await, Some(T0 / 1000 + 100));
    assert_eq!(expiration("forever").await, None);

    clock.advance(Duration::from_secs(30));
    assert_eq!(sessions.get("default").await.unwrap(), None);
    assert_eq!(sessions.get("short").await.unwrap(), None);
    assert_eq!(sessions.get("at").await.unwrap(), Some(session(3)));
    assert_eq!(sessions.get("forever").await.unwrap(), Some(session(4)));
}

#[tokio::test]
async fn get_bulk_list_and_delete() {
    let (sessions, _, _) = sessions();
    for (i, key) in ["a1", "a2", "b1"].iter().enumerate() {
        sessions
            .put(key, &session(i as u64))
            .metadata(meta(key))
            .await
            .unwrap();
    }
    let many: HashMap<String, Option<Session>> =
        sessions.get_bulk(&["a1", "b1", "zz"]).await.unwrap();
    assert_eq!(many["a1"], Some(session(0)));
    assert_eq!(many["b1"], Some(session(2)));
    assert_eq!(many["zz"], None);

    let page = sessions.list().prefix("a").limit(1).await.unwrap();
    assert_eq!(page.keys.len(), 1);
    assert_eq!(page.keys[0].name, "a1");
    assert_eq!(page.keys[0].metadata, Some(meta("a1")));
    assert_eq!(page.keys[0].expiration, Some(T0 / 1000 + 30));
    assert!(!page.list_complete);
    let rest = sessions
        .list()
        .prefix("a")
        .cursor(page.cursor.unwrap())
        .execute()
        .await
        .unwrap();
    assert_eq!(
        rest.keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["a2"]
    );
    assert!(rest.list_complete);

    sessions.delete("a1").await.unwrap();
    assert_eq!(sessions.get("a1").await.unwrap(), None);
    assert_eq!(sessions.list().await.unwrap().keys.len(), 2);
}

#[tokio::test]
async fn the_untyped_api_reads_what_the_typed_store_wrote() {
    let (sessions, _, backend) = sessions();
    sessions
        .put("abc", &session(9))
        .metadata(meta("ua"))
        .await
        .unwrap();
    let raw: &D1Namespace<_> = sessions.raw();
    let (value, metadata) = raw
        .get("abc")
        .json_with_metadata::<Value, Value>()
        .await
        .unwrap();
    assert_eq!(value, Some(json!({"user_id": 9, "roles": ["admin"]})));
    assert_eq!(metadata, Some(json!({"user_agent": "ua"})));
    assert_eq!(
        (raw.namespace(), raw.table()),
        ("sessions", "sessions_kv_entries")
    );

    // And the same namespace opened untyped by name sees it too.
    let untyped = D1Namespace::builder(backend)
        .namespace("sessions")
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    assert_eq!(
        untyped.get("abc").text().await.unwrap().as_deref(),
        Some(r#"{"user_id":9,"roles":["admin"]}"#)
    );
}

#[tokio::test]
async fn values_are_json_in_sql() {
    let path = common::scratch_db("typed_sql");
    let sessions = Session::namespace(SqliteBackend::open(&path).unwrap());
    sessions.put("abc", &session(42)).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let user_id: i64 = conn
        .query_row(
            "SELECT json_extract(value, '$.user_id') FROM sessions_kv_entries WHERE key = 'abc'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(user_id, 42);
}

#[tokio::test]
async fn a_stored_value_of_another_shape_is_an_error_naming_the_key() {
    let (sessions, _, _) = sessions();
    sessions
        .raw()
        .put("bad", json!({"user_id": "not a number"}))
        .unwrap()
        .await
        .unwrap();
    sessions.raw().put("text", "plain").unwrap().await.unwrap();
    sessions
        .raw()
        .put("odd-meta", json!({"user_id": 1, "roles": []}))
        .unwrap()
        .metadata(5)
        .unwrap()
        .await
        .unwrap();

    let error = sessions.get("bad").await.unwrap_err();
    assert!(
        matches!(&error, Error::Decode { key, part: "value", .. } if key == "bad"),
        "{error:?}"
    );
    let error = sessions.get("text").await.unwrap_err();
    assert!(
        matches!(&error, Error::NotJson { key, .. } if key == "text"),
        "{error:?}"
    );
    let error = sessions.get_with_metadata("odd-meta").await.unwrap_err();
    assert!(matches!(&error, Error::Decode { key, part: "metadata", .. } if key == "odd-meta"));
    let error = sessions.list().prefix("odd").await.unwrap_err();
    assert!(matches!(&error, Error::Decode { key, part: "metadata", .. } if key == "odd-meta"));
}

#[tokio::test]
async fn metadata_over_1024_bytes_is_rejected_at_put() {
    // K11
    let (sessions, _, _) = sessions();
    let error = sessions
        .put("k", &session(1))
        .metadata(meta(&"x".repeat(1024)))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MetadataTooLarge { .. }), "{error:?}");
    assert_eq!(sessions.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn key_rules_apply_to_typed_stores() {
    let (sessions, _, _) = sessions();
    let error = sessions.put("", &session(1)).await.unwrap_err();
    assert_eq!(error.to_string(), "Key name cannot be empty.");
    let error = sessions.get(&"k".repeat(513)).await.unwrap_err();
    assert!(error.to_string().starts_with("KV GET failed: 414"));
}

#[tokio::test]
async fn namespaces_without_metadata_tuple_structs_and_enums() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let counters = Counter::namespace(backend.clone());
    counters.put("hits", &Counter(3)).await.unwrap();
    assert_eq!(counters.get("hits").await.unwrap(), Some(Counter(3)));
    let entry = counters.get_with_metadata("hits").await.unwrap().unwrap();
    assert_eq!(
        (entry.value, entry.metadata, entry.expiration),
        (Counter(3), None, None)
    );

    let events = Event::namespace(backend.clone());
    assert_eq!(events.raw().table(), "shared_kv");
    events
        .put("e1", &Event::Login { user: "ada".into() })
        .await
        .unwrap();
    events.put("e2", &Event::Logout).await.unwrap();
    assert_eq!(
        events.get("e1").await.unwrap(),
        Some(Event::Login { user: "ada".into() })
    );
    assert_eq!(
        events.raw().get("e2").text().await.unwrap().as_deref(),
        Some(r#"{"kind":"Logout"}"#)
    );
}

#[test]
fn the_trait_carries_the_attribute_arguments() {
    use d1ns::Namespace;
    assert_eq!(Session::NAME, "sessions");
    assert_eq!(Session::TTL, Some(30));
    assert_eq!(Session::TABLE, None);
    const { assert!(Session::AUTO_CREATE) };
    assert_eq!(Counter::TTL, None);
    assert_eq!(Event::TABLE, Some("shared_kv"));
}

#[test]
fn typed_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let sessions = Session::namespace(SqliteBackend::open_in_memory().unwrap());
    let value = session(1);
    send(sessions.get("k"));
    send(sessions.get_with_metadata("k"));
    send(sessions.get_bulk(&["k"]));
    send(std::future::IntoFuture::into_future(
        sessions.put("k", &value),
    ));
    send(std::future::IntoFuture::into_future(sessions.list()));
    send(sessions.delete("k"));
}

#[tokio::test]
async fn a_value_type_may_have_any_name_even_one_a_macro_might_use() {
    let bees = B::namespace(SqliteBackend::open_in_memory().unwrap());
    bees.put("queen", &B { stings: 0 }).await.unwrap();
    assert_eq!(bees.get("queen").await.unwrap(), Some(B { stings: 0 }));
}

/// Typed operations own their key and value, as the untyped builders do, so their futures can
/// outlive the call: spawned, or handed to `ctx.wait_until`.
#[tokio::test]
async fn typed_futures_own_what_they_need_and_can_be_spawned() {
    fn detached<F: Future + Send + 'static>(future: F) -> F {
        future
    }
    let (sessions, _, _) = sessions();
    let put = {
        let key = String::from("abc");
        let value = session(5);
        sessions
            .put(&key, &value)
            .metadata(meta("cron"))
            .into_future()
    };
    tokio::spawn(put).await.unwrap().unwrap();
    let get = {
        let key = String::from("abc");
        detached(sessions.get(&key))
    };
    assert_eq!(tokio::spawn(get).await.unwrap().unwrap(), Some(session(5)));
    let entry = {
        let key = String::from("abc");
        detached(sessions.get_with_metadata(&key))
    };
    let entry = tokio::spawn(entry).await.unwrap().unwrap().unwrap();
    assert_eq!(entry.metadata, Some(meta("cron")));
    let keys = vec![String::from("abc")];
    let bulk = detached(sessions.get_bulk(&keys));
    drop(keys);
    let bulk = tokio::spawn(bulk).await.unwrap().unwrap();
    assert_eq!(bulk.get("abc"), Some(&Some(session(5))));
    let delete = {
        let key = String::from("abc");
        detached(sessions.delete(&key))
    };
    tokio::spawn(delete).await.unwrap().unwrap();
    assert_eq!(sessions.get("abc").await.unwrap(), None);
}
