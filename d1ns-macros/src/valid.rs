//! Checks the arguments and the item, turning them into what `expand` writes. Every mistake is
//! recorded, and each invalid argument gets a harmless stand-in, so that the expansion still
//! compiles and the user sees the real mistakes only.

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
}

pub(crate) fn config(args: Args, errors: &mut Errors) -> Config {
    let name = match &args.name {
        Some(expr) => string(expr, attr::NAME, errors)
            .and_then(|(name, lit)| check_name(&name, &lit, "namespace", errors).then_some(name)),
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
        check_name(&table, &lit, "table", errors).then_some(table)
    });
    if let (Some(name), None) = (&name, &table) {
        // The default table is derived from the name; it must be a valid name too.
        if let (Some(expr), Some(problem)) = (
            &args.name,
            d1ns_runtime::limits::name_problem(&format!("{name}_kv_entries")),
        ) {
            errors.at(expr, format!("the default table `{name}_kv_entries` is invalid: {problem}; shorten `name` or give `table`"));
        }
    }
    Config {
        name: name.unwrap_or_default(),
        table,
        ttl: args.ttl.as_ref().and_then(|expr| ttl(expr, errors)),
        metadata: args.metadata,
        auto_create: args
            .auto_create
            .as_ref()
            .is_none_or(|expr| boolean(expr, errors)),
        krate: args
            .krate
            .as_ref()
            .and_then(|expr| crate_path(expr, errors))
            .unwrap_or_else(|| syn::parse_quote!(::d1ns)),
    }
}

/// The item must be a non-generic struct or enum; returns its name and visibility.
pub(crate) fn item(item: &syn::Item, errors: &mut Errors) -> Option<(syn::Ident, syn::Visibility)> {
    let (ident, vis, generics) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.vis, &s.generics),
        syn::Item::Enum(e) => (&e.ident, &e.vis, &e.generics),
        syn::Item::Union(u) => {
            errors.at(
                u.union_token,
                "#[d1_namespace] works on structs and enums, not unions",
            );
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
    Some((ident.clone(), vis.clone()))
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn string(expr: &Expr, arg: &str, errors: &mut Errors) -> Option<(String, syn::LitStr)> {
    match literal(expr) {
        Some(Lit::Str(lit)) => Some((lit.value(), lit.clone())),
        _ => {
            errors.at(
                expr,
                format!("`{arg}` must be a string literal, like {arg} = \"sessions\""),
            );
            None
        }
    }
}

fn check_name(name: &str, lit: &syn::LitStr, what: &str, errors: &mut Errors) -> bool {
    match d1ns_runtime::limits::name_problem(name) {
        Some(problem) => {
            errors.at(lit, format!("invalid {what} name \"{name}\": {problem}"));
            false
        }
        None => true,
    }
}

/// The longest TTL d1ns can store exactly (see `d1ns_runtime::limits::MAX_EXPIRATION_MS`).
const MAX_TTL: u64 = d1ns_runtime::limits::MAX_EXPIRATION_MS / 1000;

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

fn crate_path(expr: &Expr, errors: &mut Errors) -> Option<syn::Path> {
    let (path, lit) = string(expr, attr::CRATE, errors)?;
    match syn::parse_str::<syn::Path>(&path) {
        Ok(path) => Some(path),
        Err(_) => {
            errors.at(
                lit,
                format!("`crate` must be a path, like crate = \"::d1ns\"; got \"{path}\""),
            );
            None
        }
    }
}
