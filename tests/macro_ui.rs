//! The compile-time checks of `#[d1_namespace]`, each pinned by its compiler output in
//! `tests/ui/*.stderr`. Regenerate after a deliberate change with `TRYBUILD=overwrite`.

#[test]
fn mistakes_are_compile_errors_at_the_offending_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
