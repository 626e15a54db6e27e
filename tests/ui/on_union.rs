use d1ns::d1_namespace;

#[d1_namespace(name = "sessions")]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
