//! Checks the arguments and the item, turning them into what `expand` writes. Every mistake is
//! recorded, and each invalid argument gets a harmless stand-in, so that the expansion still
//! compiles and the user sees the real mistakes only.

use d1ns_limits::{MAX_EXPIRATION_MS, NameKind, name_problem};
use proc_macro2::Span;
use syn::{Expr, ExprLit, Lit};

use crate::attr::{self, Args};
use crate::errors::Errors;

/// What the expansion needs, valid or a stand-in.
pub(crate) struct Config {
    pub name: String,
    pub table: Option<String>,
    pub ttl: Option<u64>,
    pub metadata: Option<syn::Type>,
    pub auto_create: bool,
    pub krate: syn::Path,
    /// The `crate` literal, or the call site: where a path that does not resolve is reported.
    pub krate_span: Span,
}

pub(crate) fn config(args: Args, errors: &mut Errors) -> Config {
    let name = match &args.name {
        Some(expr) => string(expr, attr::NAME, errors).and_then(|(name, lit)| {
            check_name(NameKind::Namespace, &name, lit, errors).then_some(name)
        }),
        None => {
            errors.push(syn::Error::new(
                attr::call_site(),
                "missing `name`: write #[d1_namespace(name = \"...\")]",
            ));
            None
        }
    };
    let table = args.table.as_ref().and_then(|expr| {
        let (table, lit) = string(expr, attr::TABLE, errors)?;
        check_name(NameKind::Table, &table, lit, errors).then_some(table)
    });
    let (krate, krate_span) = match args
        .krate
        .as_ref()
        .and_then(|expr| crate_path(expr, errors))
    {
        Some(given) => given,
        None => (syn::parse_quote!(::d1ns), attr::call_site()),
    };
    Config {
        name: name.unwrap_or_default(),
        table,
        ttl: args.ttl.as_ref().and_then(|expr| ttl(expr, errors)),
        metadata: args.metadata,
        auto_create: args
            .auto_create
            .as_ref()
            .is_none_or(|expr| boolean(expr, errors)),
        krate,
        krate_span,
    }
}

/// The item must be a non-generic struct or enum; returns its name and visibility.
pub(crate) fn item<'a>(
    item: &'a syn::Item,
    errors: &mut Errors,
) -> Option<(&'a syn::Ident, &'a syn::Visibility)> {
    let (ident, vis, generics) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.vis, &s.generics),
        syn::Item::Enum(e) => (&e.ident, &e.vis, &e.generics),
        syn::Item::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "#[d1_namespace] works on structs and enums, not unions",
            ));
            return None;
        }
        syn::Item::Fn(f) => {
            errors.at(
                &f.sig.ident,
                "#[d1_namespace] works on structs and enums, not functions",
            );
            return None;
        }
        other => {
            errors.at(other, "#[d1_namespace] works on structs and enums");
            return None;
        }
    };
    if !generics.params.is_empty() {
        errors.at(
            generics,
            "#[d1_namespace] does not support generic types: a namespace stores one concrete \
             type (wrap it, as in `struct Sessions(Session<u64>)`)",
        );
        return None;
    }
    Some((ident, vis))
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn string<'a>(expr: &'a Expr, arg: &str, errors: &mut Errors) -> Option<(String, &'a syn::LitStr)> {
    match literal(expr) {
        Some(Lit::Str(lit)) => Some((lit.value(), lit)),
        _ => {
            errors.at(
                expr,
                format!("`{arg}` must be a string literal, like {arg} = \"sessions\""),
            );
            None
        }
    }
}

/// K33, by the rule the runtime applies to names given at run time.
fn check_name(kind: NameKind, name: &str, lit: &syn::LitStr, errors: &mut Errors) -> bool {
    match name_problem(kind, name) {
        Some(problem) => {
            errors.at(lit, format!("invalid {kind} name \"{name}\": {problem}"));
            false
        }
        None => true,
    }
}

/// The longest TTL d1ns can store exactly.
const MAX_TTL: u64 = MAX_EXPIRATION_MS / 1000;

fn ttl(expr: &Expr, errors: &mut Errors) -> Option<u64> {
    let message = match (expr, literal(expr)) {
        (_, Some(Lit::Int(int))) => match int.base10_parse::<u64>() {
            Ok(0) => "`ttl` must be at least 1 (seconds); leave it out for no expiration".into(),
            Ok(seconds) if seconds <= MAX_TTL => return Some(seconds),
            _ => format!("`ttl` is too large: at most {MAX_TTL} seconds"),
        },
        (
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                ..
            }),
            _,
        ) => "`ttl` must be a positive number of seconds".into(),
        (_, Some(Lit::Str(_))) => "`ttl` must be an integer, not a string: write ttl = 30".into(),
        (_, Some(Lit::Float(_))) => "`ttl` must be a whole number of seconds".into(),
        _ => "`ttl` must be an integer literal number of seconds, like ttl = 30".into(),
    };
    errors.at(expr, message);
    None
}

fn boolean(expr: &Expr, errors: &mut Errors) -> bool {
    match literal(expr) {
        Some(Lit::Bool(b)) => b.value,
        _ => {
            errors.at(expr, "`auto_create` must be `true` or `false`");
            true
        }
    }
}

/// The path, its tokens spanned at the literal, and the literal's span.
fn crate_path(expr: &Expr, errors: &mut Errors) -> Option<(syn::Path, Span)> {
    let (path, lit) = string(expr, attr::CRATE, errors)?;
    match lit.parse::<syn::Path>() {
        Ok(parsed) => Some((parsed, lit.span())),
        Err(_) => {
            errors.at(
                lit,
                format!("`crate` must be a path, like crate = \"::d1ns\"; got \"{path}\""),
            );
            None
        }
    }
}
