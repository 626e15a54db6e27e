use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "sessions", nmae = "typo", tll = 5)]
#[derive(Serialize, Deserialize)]
struct Session;

#[d1_namespace(name = "other", colour = "blue")]
#[derive(Serialize, Deserialize)]
struct Other;

#[d1_namespace(name = "flag", debug)]
#[derive(Serialize, Deserialize)]
struct BareWord;

fn main() {}
