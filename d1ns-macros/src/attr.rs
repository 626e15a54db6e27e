//! Reads `#[d1_namespace(...)]`'s arguments, noting unknown and repeated ones.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;

use crate::errors::Errors;

/// The argument names, in the order the docs list them.
pub(crate) const NAME: &str = "name";
pub(crate) const TTL: &str = "ttl";
pub(crate) const METADATA: &str = "metadata";
pub(crate) const TABLE: &str = "table";
pub(crate) const AUTO_CREATE: &str = "auto_create";
pub(crate) const CRATE: &str = "crate";
const ALL: [&str; 6] = [NAME, TTL, METADATA, TABLE, AUTO_CREATE, CRATE];

/// The arguments as written; `valid` decides what they mean.
#[derive(Default)]
pub(crate) struct Args {
    pub name: Option<syn::Expr>,
    pub ttl: Option<syn::Expr>,
    pub metadata: Option<syn::Type>,
    pub table: Option<syn::Expr>,
    pub auto_create: Option<syn::Expr>,
    pub krate: Option<syn::Expr>,
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
        _ => {
            errors.at(&meta.path, unknown_message(&meta.path));
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

enum Slot<'a> {
    Expr(&'a mut Option<syn::Expr>),
    Type(&'a mut Option<syn::Type>),
}

fn unknown_message(path: &syn::Path) -> String {
    let written = quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "");
    let closest = ALL
        .iter()
        .map(|known| (edit_distance(&written, known), *known))
        .min()
        .filter(|(distance, known)| *distance <= known.len().div_ceil(3).max(1));
    match closest {
        Some((_, known)) => format!("unknown argument `{written}`; did you mean `{known}`?"),
        None => format!(
            "unknown argument `{written}`; expected one of: {}",
            ALL.join(", ")
        ),
    }
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
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("tll", "ttl"), 1);
        assert_eq!(edit_distance("metdata", "metadata"), 1);
        assert_eq!(edit_distance("", "ttl"), 3);
    }
}
