use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "my-sessions")]
#[derive(Serialize, Deserialize)]
struct Dashed;

#[d1_namespace(name = "ok", table = "1table")]
#[derive(Serialize, Deserialize)]
struct DigitTable;

#[d1_namespace(name = sessions)]
#[derive(Serialize, Deserialize)]
struct NotAString;

#[d1_namespace(name = "a_name_that_is_long_enough_to_make_the_default_table_too_long_x")]
#[derive(Serialize, Deserialize)]
struct LongDefaultTable;

fn main() {}
