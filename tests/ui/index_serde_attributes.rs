use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Address {
    city: String,
}

mod as_text {
    pub fn serialize<S: serde::Serializer>(value: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

// Serde attributes that move or hide an indexed field are errors at the attribute, saying why.
// `skip_serializing_if = "Option::is_none"` on an `Option` is fine: `None` is not indexed anyway.
#[d1_namespace(name = "users", index(address, email, tenant, code, level, nick, plan))]
#[derive(Serialize, Deserialize)]
struct User {
    #[serde(flatten)]
    address: Address,
    #[serde(skip_serializing_if = "String::is_empty")]
    email: String,
    #[serde(skip)]
    tenant: u32,
    #[serde(with = "as_text")]
    code: u32,
    #[serde(default, serialize_with = "as_text::serialize")]
    level: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    nick: Option<String>,
    #[serde(skip_serializing)]
    plan: String,
}

// A struct written as something else has no fields to index.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
#[d1_namespace(name = "wrappers", index(inner))]
struct Wrapper {
    inner: String,
}

fn main() {}
