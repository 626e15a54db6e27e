use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "a", index = user_id)]
#[derive(Serialize, Deserialize)]
struct A {
    user_id: u64,
}

#[d1_namespace(name = "b", index())]
#[derive(Serialize, Deserialize)]
struct B {
    user_id: u64,
}

#[d1_namespace(name = "c", indx(user_id))]
#[derive(Serialize, Deserialize)]
struct C {
    user_id: u64,
}

fn main() {}
