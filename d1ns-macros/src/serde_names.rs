//! What serde's attributes say about the JSON of an indexed field (I2): its name, after
//! `rename` and `rename_all`, and the attributes that write it somewhere the macro cannot follow.
//!
//! Attributes serde itself rejects (an unknown `rename_all` rule, a `rename` that is not a
//! string) are left to serde's derive, which reports them: they are read here as absent.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr};

/// A `rename_all` rule, applied to a field name as serde applies it. Serde expects fields in
/// `snake_case`, so `lowercase` and `snake_case` leave a field name as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    /// The rule a `rename_all` string names, spelled as serde spells it.
    pub fn named(name: &str) -> Option<RenameRule> {
        Some(match name {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// The JSON name of the field `field` (a Rust name without `r#`).
    pub fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
            RenameRule::Pascal => words_capitalized(field),
            RenameRule::Camel => {
                let pascal = words_capitalized(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
        }
    }
}

/// `user_id` -> `UserId`: the underscores dropped, and the first letter after each (and the
/// very first) in upper case; the rest as written.
fn words_capitalized(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut word_start = true;
    for c in field.chars() {
        if c == '_' {
            word_start = true;
        } else {
            out.push(if word_start {
                c.to_ascii_uppercase()
            } else {
                c
            });
            word_start = false;
        }
    }
    out
}

/// A serde attribute written on the struct that hides where fields are in its JSON.
pub(crate) struct Unfollowable {
    /// The attribute's name, to point the error at.
    pub at: TokenStream,
    pub why: &'static str,
}

/// What `#[serde(...)]` on the struct says.
#[derive(Default)]
pub(crate) struct Container {
    /// The `rename_all` rule for serializing, if one is given and known.
    pub rename_all: Option<RenameRule>,
    /// `transparent` and `into`: the struct is not written as an object of its fields.
    pub unfollowable: Vec<Unfollowable>,
}

/// What `#[serde(...)]` on one field says.
#[derive(Default)]
pub(crate) struct Field {
    /// The `rename` (or `rename(serialize = ...)`) string, if given.
    pub rename: Option<LitStr>,
    /// `flatten`, `skip` and the like: the field is not written as itself, under its name.
    pub unfollowable: Vec<Unfollowable>,
    /// `skip_serializing_if = "..."`: allowed only as `Option::is_none` on an `Option` field,
    /// which leaves out exactly what the index leaves out; `valid` decides.
    pub skip_serializing_if: Option<(TokenStream, LitStr)>,
    /// `flatten`: one of `unfollowable`, and a reason not to check the field's type.
    pub flattened: bool,
}

pub(crate) fn container(attrs: &[Attribute]) -> Container {
    let mut out = Container::default();
    for_each_serde_meta(attrs, |meta| {
        let Some(key) = meta.path.get_ident().map(ToString::to_string) else {
            return skip(&meta);
        };
        match key.as_str() {
            "rename_all" => {
                if let Some(rule) = serialize_string(&meta)? {
                    out.rename_all = RenameRule::named(&rule.value());
                }
                Ok(())
            }
            "transparent" => {
                out.unfollowable.push(Unfollowable {
                    at: meta.path.to_token_stream(),
                    why: "`#[serde(transparent)]` writes the struct as its one field, not as an \
                          object with named fields, so there is no field to index",
                });
                skip(&meta)
            }
            "into" => {
                out.unfollowable.push(Unfollowable {
                    at: meta.path.to_token_stream(),
                    why: "`#[serde(into = \"...\")]` writes the struct as another type, so \
                          #[d1_namespace] cannot tell where an indexed field is in its JSON",
                });
                skip(&meta)
            }
            _ => skip(&meta),
        }
    });
    out
}

pub(crate) fn field(attrs: &[Attribute]) -> Field {
    let mut out = Field::default();
    // `cfg_attr` is expanded after this macro runs: a serde attribute inside it is invisible
    // here, and a rename or skip written that way would silently break the index.
    for attr in attrs {
        if attr.path().is_ident("cfg_attr")
            && attr
                .meta
                .to_token_stream()
                .into_iter()
                .any(|token| mentions_serde(&token))
        {
            out.unfollowable.push(Unfollowable {
                at: attr.to_token_stream(),
                why: "#[d1_namespace] cannot see inside `cfg_attr`, so it cannot follow a serde \
                      attribute written there: write `#[serde(...)]` on an indexed field directly",
            });
        }
    }
    for_each_serde_meta(attrs, |meta| {
        let Some(key) = meta.path.get_ident().map(ToString::to_string) else {
            return skip(&meta);
        };
        let why = match key.as_str() {
            "rename" => {
                if let Some(name) = serialize_string(&meta)? {
                    out.rename = Some(name);
                }
                return Ok(());
            }
            "skip_serializing_if" => {
                let value = meta.value()?.parse::<LitStr>()?;
                out.skip_serializing_if = Some((meta.path.to_token_stream(), value));
                return Ok(());
            }
            "flatten" => {
                out.flattened = true;
                "`#[serde(flatten)]` writes the fields of this field in its place, so the JSON \
                 has no such field to index"
            }
            "skip" | "skip_serializing" => {
                "a skipped field is never written to the JSON, so the index would find nothing"
            }
            "serialize_with" => {
                "#[d1_namespace] cannot tell what a `serialize_with` function writes, so a \
                 look-up by the field's type might never match it"
            }
            "with" => {
                "#[d1_namespace] cannot tell what the `serialize` function of a `with` module \
                 writes, so a look-up by the field's type might never match it"
            }
            _ => return skip(&meta),
        };
        out.unfollowable.push(Unfollowable {
            at: meta.path.to_token_stream(),
            why,
        });
        skip(&meta)
    });
    out
}

/// Whether `token` is, or holds, the word `serde`.
fn mentions_serde(token: &proc_macro2::TokenTree) -> bool {
    match token {
        proc_macro2::TokenTree::Ident(ident) => ident == "serde",
        proc_macro2::TokenTree::Group(group) => {
            group.stream().into_iter().any(|t| mentions_serde(&t))
        }
        _ => false,
    }
}

/// Calls `each` for every item of every `#[serde(...)]` in `attrs`. An attribute that does not
/// parse is serde's to report; what was read before the mistake is kept.
fn for_each_serde_meta(
    attrs: &[Attribute],
    mut each: impl FnMut(ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs {
        if attr.path().is_ident("serde") && matches!(attr.meta, syn::Meta::List(_)) {
            // An error here is a malformed attribute, which serde's derive reports.
            let _ = attr.parse_nested_meta(&mut each);
        }
    }
}

/// The string of `key = "..."`, or the `serialize` one of `key(serialize = "...", deserialize
/// = "...")`: the index reads what was written. `None` when only `deserialize` is given.
fn serialize_string(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(syn::Token![=]) {
        return meta.value()?.parse().map(Some);
    }
    let mut found = None;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| {
            if inner.path.is_ident("serialize") {
                found = Some(inner.value()?.parse()?);
                Ok(())
            } else {
                skip(&inner)
            }
        })?;
    }
    Ok(found)
}

/// Reads past what follows a key this module does not need: `= value`, `(...)` or nothing.
fn skip(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    fn all(field: &str) -> Vec<String> {
        [
            "lowercase",
            "UPPERCASE",
            "PascalCase",
            "camelCase",
            "snake_case",
            "SCREAMING_SNAKE_CASE",
            "kebab-case",
            "SCREAMING-KEBAB-CASE",
        ]
        .iter()
        .map(|name| RenameRule::named(name).map_or_else(String::new, |rule| rule.apply(field)))
        .collect()
    }

    #[test]
    fn rename_all_rules_follow_serde() {
        assert_eq!(
            all("user_id"),
            [
                "user_id", "USER_ID", "UserId", "userId", "user_id", "USER_ID", "user-id",
                "USER-ID"
            ]
        );
        assert_eq!(
            all("_a__b_"),
            [
                "_a__b_", "_A__B_", "AB", "aB", "_a__b_", "_A__B_", "-a--b-", "-A--B-"
            ]
        );
        assert_eq!(all("x"), ["x", "X", "X", "x", "x", "X", "x", "X"]);
        assert_eq!(RenameRule::named("Camel"), None);
    }
}
