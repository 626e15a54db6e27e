use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "zero", ttl = 0)]
#[derive(Serialize, Deserialize)]
struct Zero;

#[d1_namespace(name = "negative", ttl = -5)]
#[derive(Serialize, Deserialize)]
struct Negative;

#[d1_namespace(name = "fraction", ttl = 1.5)]
#[derive(Serialize, Deserialize)]
struct Fraction;

#[d1_namespace(name = "text", ttl = "30")]
#[derive(Serialize, Deserialize)]
struct Text;

#[d1_namespace(name = "forever", ttl = 18446744073709551615)]
#[derive(Serialize, Deserialize)]
struct TooLong;

fn main() {}
