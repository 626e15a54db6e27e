use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

// A JSON name the index cannot quote is an error at the `rename`.
#[d1_namespace(name = "sessions", index(quoted, escaped))]
#[derive(Serialize, Deserialize)]
struct Session {
    #[serde(rename = "say \"hi\"")]
    quoted: String,
    #[serde(rename(serialize = "back\\slash"))]
    escaped: String,
}

fn main() {}
