use d1ns::d1_namespace;

#[d1_namespace(name = "sessions")]
fn sessions() {}

fn main() {}
