//! `#[d1_namespace(..., index(..))]` at compile time (I1-I3): the typed handles it writes, their
//! JSON names (serde's, checked against what serde_json writes), their look-up types, and the
//! `INDEXES` of the `Namespace` impl. The errors are in `tests/ui/index_*.rs`.

extern crate alloc;

use d1ns::__private::IndexDef;
use d1ns::{Index, Namespace, SqliteBackend, d1_namespace};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[d1_namespace(name = "sessions", ttl = 3600, index(user_id, email, age, active))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Session {
    user_id: u64,
    #[serde(rename = "mail")]
    email: String,
    age: Option<u32>,
    active: bool,
    not_indexed: Vec<String>,
}

/// The paths of the types, a repeated `index`, a raw identifier, `rename(serialize = ..)` and
/// `skip_serializing_if = "Option::is_none"` on an `Option`.
#[d1_namespace(name = "carts", index(owner, r#type), index(total, tenant, note))]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Cart {
    owner: std::string::String,
    r#type: ::core::primitive::u8,
    #[serde(rename(serialize = "sum", deserialize = "total_in"))]
    total: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    tenant: ::std::option::Option<i32>,
    note: core::option::Option<alloc::string::String>,
}

mod public {
    use d1ns::d1_namespace;
    use serde::{Deserialize, Serialize};

    #[d1_namespace(name = "users", index(email))]
    #[derive(Serialize, Deserialize)]
    pub struct User {
        pub email: String,
    }
}

fn session(user_id: u64, email: &str) -> Session {
    Session {
        user_id,
        email: email.into(),
        age: Some(30),
        active: true,
        not_indexed: Vec::new(),
    }
}

/// The keys serde_json writes for `value`.
fn keys(value: &impl Serialize) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        other => panic!("not an object: {other:?}"),
    }
}

#[test]
fn handles_are_named_after_fields_and_hold_json_names() {
    assert_eq!(Session::USER_ID.field(), "userId");
    assert_eq!(Session::EMAIL.field(), "mail");
    assert_eq!(Session::AGE.field(), "age");
    assert_eq!(Session::ACTIVE.field(), "active");
    let written = keys(&session(7, "a@example.com"));
    for field in [
        Session::USER_ID.field(),
        Session::EMAIL.field(),
        Session::AGE.field(),
        Session::ACTIVE.field(),
    ] {
        assert!(
            written.iter().any(|key| key == field),
            "{field} in {written:?}"
        );
    }

    assert_eq!(Cart::OWNER.field(), "owner");
    assert_eq!(Cart::TYPE.field(), "type");
    assert_eq!(Cart::TOTAL.field(), "sum");
    assert_eq!(Cart::TENANT.field(), "tenant");
    assert_eq!(Cart::NOTE.field(), "note");
    assert_eq!(public::User::EMAIL.field(), "email");
}

#[test]
fn indexes_of_the_namespace_impl_check_the_range_of_64_bit_integers() {
    assert_eq!(
        Session::INDEXES,
        [
            IndexDef::new("userId", true),
            IndexDef::new("mail", false),
            IndexDef::new("age", false),
            IndexDef::new("active", false),
        ]
    );
    // Repeated `index(...)` arguments are merged in order.
    assert_eq!(
        Cart::INDEXES,
        [
            IndexDef::new("owner", false),
            IndexDef::new("type", false),
            IndexDef::new("sum", true),
            IndexDef::new("tenant", false),
            IndexDef::new("note", false),
        ]
    );
    // A namespace without `index` has none.
    #[d1_namespace(name = "plain")]
    #[derive(Serialize, Deserialize)]
    struct Plain {
        user_id: u64,
    }
    assert!(Plain::INDEXES.is_empty());
}

#[test]
fn handles_are_typed_by_the_field() {
    // Each line fails to compile if the handle's look-up type is another.
    let _: Index<Session, u64> = Session::USER_ID;
    let _: Index<Session, str> = Session::EMAIL;
    let _: Index<Session, u32> = Session::AGE;
    let _: Index<Session, bool> = Session::ACTIVE;
    let _: Index<Cart, str> = Cart::OWNER;
    let _: Index<Cart, u8> = Cart::TYPE;
    let _: Index<Cart, i64> = Cart::TOTAL;
    let _: Index<Cart, i32> = Cart::TENANT;
    let _: Index<Cart, str> = Cart::NOTE;
}

/// One struct per `rename_all` rule, with field names that tell the rules apart; each handle must
/// name a key that serde_json writes.
macro_rules! rename_all_case {
    ($test:ident, $ty:ident, $rule:literal) => {
        #[d1_namespace(name = "cases", index(user_id, _lead, trail_, a__b, nameID, r#type, x))]
        #[derive(Serialize, Deserialize, Default)]
        #[serde(rename_all = $rule)]
        #[allow(non_snake_case)]
        struct $ty {
            user_id: u64,
            nameID: u8,
            _lead: u8,
            trail_: u8,
            a__b: u8,
            r#type: u8,
            x: u8,
        }

        #[test]
        fn $test() {
            let mut handles = [
                $ty::USER_ID.field(),
                $ty::_LEAD.field(),
                $ty::TRAIL_.field(),
                $ty::A__B.field(),
                $ty::NAME_ID.field(),
                $ty::TYPE.field(),
                $ty::X.field(),
            ]
            .map(String::from)
            .to_vec();
            handles.sort();
            let mut written = keys(&$ty::default());
            written.sort();
            assert_eq!(handles, written, "rename_all = {}", $rule);
        }
    };
}

rename_all_case!(rename_all_lowercase, Lower, "lowercase");
rename_all_case!(rename_all_uppercase, Upper, "UPPERCASE");
rename_all_case!(rename_all_pascal_case, Pascal, "PascalCase");
rename_all_case!(rename_all_camel_case, Camel, "camelCase");
rename_all_case!(rename_all_snake_case, Snake, "snake_case");
rename_all_case!(
    rename_all_screaming_snake_case,
    ScreamingSnake,
    "SCREAMING_SNAKE_CASE"
);
rename_all_case!(rename_all_kebab_case, Kebab, "kebab-case");
rename_all_case!(
    rename_all_screaming_kebab_case,
    ScreamingKebab,
    "SCREAMING-KEBAB-CASE"
);

/// Types arrive in invisible groups from `macro_rules!`, and are still recognised.
macro_rules! through_macro_rules {
    ($ty:ty) => {
        #[d1_namespace(name = "wrapped", index(value))]
        #[derive(Serialize, Deserialize)]
        struct Wrapped {
            value: $ty,
        }
    };
}
through_macro_rules!(Option<u16>);

#[test]
fn types_from_macro_rules_are_recognised() {
    let _: Index<Wrapped, u16> = Wrapped::VALUE;
}

#[tokio::test]
async fn handles_find_and_delete_through_the_runtime() -> Result<(), d1ns::Error> {
    let sessions = Session::namespace(SqliteBackend::open_in_memory()?);
    sessions.put("a", &session(7, "a@example.com")).await?;
    sessions.put("b", &session(8, "b@example.com")).await?;
    sessions.put("c", &session(7, "c@example.com")).await?;
    let page = sessions.find(Session::USER_ID, &7).await?;
    let found: Vec<&str> = page.entries.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(found, ["a", "c"]);
    let page = sessions.find(Session::EMAIL, "b@example.com").await?;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(sessions.delete_where(Session::USER_ID, &7).await?, 2);
    assert!(
        sessions
            .find(Session::USER_ID, &7)
            .await?
            .entries
            .is_empty()
    );
    Ok(())
}
