//! The rules of [d1ns](https://docs.rs/d1ns) that hold both at compile time, where
//! `#[d1_namespace]` checks its arguments, and at run time, where `D1Namespace::builder` checks
//! the same names: one definition for both. Use them through `d1ns::limits`.
//!
//! ```
//! use d1ns_limits::{NameKind, NameProblem, name_problem};
//!
//! assert_eq!(name_problem(NameKind::Namespace, "sessions"), None);
//! assert_eq!(name_problem(NameKind::Table, "my-table"), Some(NameProblem::Character));
//! assert_eq!(d1ns_limits::default_table("sessions"), "sessions_kv_entries");
//! ```

#![warn(missing_docs)]

use std::fmt;

/// Longest table name, in characters.
pub const MAX_TABLE_CHARS: usize = 64;
/// What a namespace's default table adds to its name: `{namespace}_kv_entries`.
pub const DEFAULT_TABLE_SUFFIX: &str = "_kv_entries";
/// Longest namespace name, in characters: its default table must be a valid table name.
pub const MAX_NAMESPACE_CHARS: usize = MAX_TABLE_CHARS - DEFAULT_TABLE_SUFFIX.len();
/// Latest expiration d1ns stores, in milliseconds: D1 binds numbers as JavaScript doubles, which
/// hold integers exactly up to 2^53 (the year 287,396).
pub const MAX_EXPIRATION_MS: u64 = (1 << 53) - 1;

/// The table a namespace uses when none is given.
pub fn default_table(namespace: &str) -> String {
    format!("{namespace}{DEFAULT_TABLE_SUFFIX}")
}

/// Which name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameKind {
    /// The namespace name.
    Namespace,
    /// The table name (given, or derived as `{namespace}_kv_entries`).
    Table,
}

impl NameKind {
    /// The longest name of this kind, in characters.
    pub const fn max_chars(self) -> usize {
        match self {
            NameKind::Namespace => MAX_NAMESPACE_CHARS,
            NameKind::Table => MAX_TABLE_CHARS,
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Namespace => "namespace",
            NameKind::Table => "table",
        })
    }
}

/// Why a namespace or table name was refused. Names become part of SQL text, so only plain
/// identifiers pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The first character is not an ASCII letter or `_`.
    Start,
    /// A character other than an ASCII letter, digit or `_`.
    Character,
    /// More characters than the kind allows ([`NameKind::max_chars`]).
    TooLong(NameKind),
    /// The name starts with `_cf` or `sqlite_`, which D1 and SQLite reserve.
    Reserved,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::Start => f.write_str("it must start with an ASCII letter or `_`"),
            NameProblem::Character => f.write_str("only ASCII letters, digits and `_` are allowed"),
            NameProblem::TooLong(NameKind::Namespace) => write!(
                f,
                "it is longer than {MAX_NAMESPACE_CHARS} characters, so its default table \
                 `{{namespace}}{DEFAULT_TABLE_SUFFIX}` would be longer than {MAX_TABLE_CHARS}"
            ),
            NameProblem::TooLong(NameKind::Table) => {
                write!(f, "it is longer than {MAX_TABLE_CHARS} characters")
            }
            NameProblem::Reserved => {
                f.write_str("names starting with `_cf` or `sqlite_` are reserved by D1 and SQLite")
            }
        }
    }
}

/// What is wrong with a namespace or table name, if anything: a name is an ASCII identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`) of at most [`NameKind::max_chars`] characters, not starting with
/// `_cf` or `sqlite_` in any case.
pub fn name_problem(kind: NameKind, name: &str) -> Option<NameProblem> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Some(NameProblem::Empty),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => return Some(NameProblem::Start),
        _ => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(NameProblem::Character);
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > kind.max_chars() {
        return Some(NameProblem::TooLong(kind));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("_cf") || lower.starts_with("sqlite_") {
        return Some(NameProblem::Reserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_namespace_has_a_valid_default_table() {
        let longest = "n".repeat(MAX_NAMESPACE_CHARS);
        assert_eq!(name_problem(NameKind::Namespace, &longest), None);
        assert_eq!(
            name_problem(NameKind::Table, &default_table(&longest)),
            None
        );
        let over = "n".repeat(MAX_NAMESPACE_CHARS + 1);
        assert_eq!(
            name_problem(NameKind::Namespace, &over),
            Some(NameProblem::TooLong(NameKind::Namespace))
        );
        assert!(name_problem(NameKind::Table, &default_table(&over)).is_some());
    }

    #[test]
    fn tables_may_have_64_characters() {
        assert_eq!(name_problem(NameKind::Table, &"t".repeat(64)), None);
        assert_eq!(
            name_problem(NameKind::Table, &"t".repeat(65)),
            Some(NameProblem::TooLong(NameKind::Table))
        );
    }

    #[test]
    fn the_namespace_length_error_states_the_limit_and_why() {
        let text = NameProblem::TooLong(NameKind::Namespace).to_string();
        assert_eq!(
            text,
            "it is longer than 53 characters, so its default table `{namespace}_kv_entries` \
             would be longer than 64"
        );
    }

    #[test]
    fn names_are_plain_identifiers_and_not_reserved() {
        use NameProblem::*;
        for (name, problem) in [
            ("", Empty),
            ("1abc", Start),
            ("é", Start),
            ("a-b", Character),
            ("a é", Character),
            ("_cf_kv", Reserved),
            ("_CFx", Reserved),
            ("SQLITE_t", Reserved),
        ] {
            assert_eq!(
                name_problem(NameKind::Table, name),
                Some(problem),
                "{name:?}"
            );
        }
        for name in ["_private", "Sessions2", "sqlite", "_c"] {
            assert_eq!(name_problem(NameKind::Table, name), None, "{name:?}");
        }
    }
}
