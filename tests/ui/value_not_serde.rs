use d1ns::d1_namespace;

#[d1_namespace(name = "sessions")]
struct Session {
    _id: u64,
}

fn main() {}
