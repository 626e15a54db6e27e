use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "counters", index(count))]
#[derive(Serialize, Deserialize)]
struct Counter(u64);

#[d1_namespace(name = "flags", index(on))]
#[derive(Serialize, Deserialize)]
struct Flag;

fn main() {}
