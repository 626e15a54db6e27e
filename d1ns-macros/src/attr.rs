//! Reads `#[d1_namespace(...)]`'s arguments, noting unknown and repeated ones.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::punctuated::Punctuated;

use crate::errors::Errors;

/// The argument names, in the order the docs list them.
pub(crate) const NAME: &str = "name";
pub(crate) const TTL: &str = "ttl";
pub(crate) const METADATA: &str = "metadata";
pub(crate) const TABLE: &str = "table";
pub(crate) const AUTO_CREATE: &str = "auto_create";
pub(crate) const CRATE: &str = "crate";
pub(crate) const INDEX: &str = "index";
const ALL: [&str; 7] = [NAME, TTL, METADATA, TABLE, AUTO_CREATE, INDEX, CRATE];

/// The arguments as written; `valid` decides what they mean.
#[derive(Default)]
pub(crate) struct Args {
    pub name: Option<syn::Expr>,
    pub ttl: Option<syn::Expr>,
    pub metadata: Option<syn::Type>,
    pub table: Option<syn::Expr>,
    pub auto_create: Option<syn::Expr>,
    pub krate: Option<syn::Expr>,
    /// Every `index(...)` argument, in order: repeated ones add their fields.
    pub indexes: Vec<IndexList>,
}

/// One `index(a, b)` argument: the fields as written, and the word `index` to point errors at
/// (`index` on an enum).
pub(crate) struct IndexList {
    pub keyword: syn::Path,
    pub fields: Vec<syn::Ident>,
}

pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| read_one(&mut args, meta, errors));
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

fn read_one(args: &mut Args, meta: ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    let slot = match key.as_str() {
        NAME => Slot::Expr(&mut args.name),
        TTL => Slot::Expr(&mut args.ttl),
        TABLE => Slot::Expr(&mut args.table),
        AUTO_CREATE => Slot::Expr(&mut args.auto_create),
        CRATE => Slot::Expr(&mut args.krate),
        METADATA => Slot::Type(&mut args.metadata),
        INDEX => return read_index(args, meta, errors),
        _ => {
            errors.at(&meta.path, unknown_message(&meta.path));
            if meta.input.peek(syn::token::Paren) {
                // A list, like a misspelt `index(...)`: skipped whole.
                meta.input.parse::<proc_macro2::TokenTree>()?;
                return Ok(());
            }
            if !meta.input.peek(syn::Token![=]) {
                return Ok(()); // a bare word: nothing more to read, nothing more to report
            }
            // Read the value anyway, so the arguments after it are still checked.
            let value = meta.value()?;
            if value.fork().parse::<syn::Expr>().is_ok() {
                value.parse::<syn::Expr>()?;
            } else {
                value.parse::<syn::Type>()?;
            }
            return Ok(());
        }
    };
    let value = meta.value()?;
    let repeated = match slot {
        Slot::Expr(slot) => slot.replace(value.parse()?).is_some(),
        Slot::Type(slot) => slot.replace(value.parse()?).is_some(),
    };
    if repeated {
        errors.at(&meta.path, format!("`{key}` is given more than once"));
    }
    Ok(())
}

/// `index(a, b, ...)`: field names, checked against the struct by `valid`. Repeated `index`
/// arguments are merged (a field named in two of them is named twice).
fn read_index(args: &mut Args, meta: ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
    const USAGE: &str = "`index` takes a list of fields, like index(user_id, email)";
    if !meta.input.peek(syn::token::Paren) {
        errors.at(&meta.path, USAGE);
        if meta.input.peek(syn::Token![=]) {
            meta.value()?.parse::<syn::Expr>()?;
        }
        return Ok(());
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let fields = Punctuated::<syn::Ident, syn::Token![,]>::parse_terminated(&content)?;
    if fields.is_empty() {
        errors.at(&meta.path, format!("{USAGE}; this one names none"));
    }
    args.indexes.push(IndexList {
        keyword: meta.path,
        fields: fields.into_iter().collect(),
    });
    Ok(())
}

enum Slot<'a> {
    Expr(&'a mut Option<syn::Expr>),
    Type(&'a mut Option<syn::Type>),
}

fn unknown_message(path: &syn::Path) -> String {
    let written = quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "");
    match closest(&written, ALL) {
        Some(known) => format!("unknown argument `{written}`; did you mean `{known}`?"),
        None => format!(
            "unknown argument `{written}`; expected one of: {}",
            ALL.join(", ")
        ),
    }
}

/// The name in `known` that `written` most likely misspells, if one is close enough: at most one
/// edit in three characters.
pub(crate) fn closest<'a>(
    written: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|known| (edit_distance(written, known), known))
        .min()
        .filter(|(distance, known)| *distance <= known.chars().count().div_ceil(3).max(1))
        .map(|(_, known)| known)
}

/// The number of single-character insertions, deletions and substitutions from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Where to point errors about the attribute as a whole (a missing `name`).
pub(crate) fn call_site() -> Span {
    Span::call_site()
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("tll", "ttl"), 1);
        assert_eq!(edit_distance("metdata", "metadata"), 1);
        assert_eq!(edit_distance("", "ttl"), 3);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        assert_eq!(closest("indx", ["name", "index"]), Some("index"));
        assert_eq!(closest("emial", ["user_id", "email"]), Some("email"));
        assert_eq!(closest("colour", ["name", "index"]), None);
    }
}
