//! Checks the arguments and the item, turning them into what `expand` writes. Every mistake is
//! recorded, and each invalid argument gets a harmless stand-in, so that the expansion still
//! compiles and the user sees the real mistakes only.

use d1ns_limits::{MAX_EXPIRATION_MS, NameKind, name_problem};
use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Expr, ExprLit, Lit};

use crate::attr::{self, Args};
use crate::errors::Errors;
use crate::serde_names;

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

/// What the look-ups of one index take: the `V` of `Index<T, V>`.
pub(crate) enum LookUp {
    /// `str`, `bool` or an integer type, by its name in `core::primitive`.
    Primitive(&'static str),
    /// A stand-in for a field whose type cannot be indexed: its own type, so that the constant
    /// still exists and the mistake is reported once, at the type.
    StandIn(proc_macro2::TokenStream),
}

/// One indexed field, as the expansion writes it.
pub(crate) struct IndexField {
    /// The field's Rust name, without `r#`.
    pub rust_name: String,
    /// Its name in the JSON of a value (serde's, after `rename` and `rename_all`).
    pub json_name: String,
    /// The associated constant of the typed handle: the Rust name in SCREAMING_SNAKE_CASE,
    /// spanned at the name in `index(...)`.
    pub constant: syn::Ident,
    pub look_up: LookUp,
    /// Whether puts must refuse integers beyond 2^53 (`i64`, `u64`).
    pub check_range: bool,
}

/// Checks the fields of every `index(...)` (I1-I3) against `item`. Each mistake is recorded where
/// it was written; a field with a mistake in its type or serde attributes is still returned
/// (with a stand-in type), one that does not exist or is named twice is not.
pub(crate) fn indexes(
    lists: &[attr::IndexList],
    item: &syn::Item,
    errors: &mut Errors,
) -> Vec<IndexField> {
    if lists.is_empty() {
        return Vec::new();
    }
    let (strukt, fields) = match item {
        syn::Item::Struct(
            s @ syn::ItemStruct {
                fields: syn::Fields::Named(named),
                ..
            },
        ) => (s, named),
        syn::Item::Struct(s) => {
            let shape = match s.fields {
                syn::Fields::Unit => "a unit struct",
                _ => "a tuple struct",
            };
            not_named_fields(lists, &s.ident, shape, errors);
            return Vec::new();
        }
        syn::Item::Enum(e) => {
            not_named_fields(lists, &e.ident, "an enum", errors);
            return Vec::new();
        }
        // Not a struct or enum: `item` reported it.
        _ => return Vec::new(),
    };
    let container = serde_names::container(&strukt.attrs);
    for unfollowable in &container.unfollowable {
        errors.at(
            &unfollowable.at,
            format!("{}; `index` cannot be used with it", unfollowable.why),
        );
    }
    let by_name: Vec<(String, &syn::Field)> = fields
        .named
        .iter()
        .filter_map(|field| Some((field.ident.as_ref()?.unraw().to_string(), field)))
        .collect();
    let mut out: Vec<IndexField> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for written in lists.iter().flat_map(|list| &list.fields) {
        let name = written.unraw().to_string();
        let Some((_, field)) = by_name.iter().find(|(known, _)| *known == name) else {
            let message = match attr::closest(&name, by_name.iter().map(|(n, _)| n.as_str())) {
                _ if by_name.is_empty() => format!("`{}` has no fields", strukt.ident),
                Some(known) => format!(
                    "`{}` has no field `{name}`; did you mean `{known}`?",
                    strukt.ident
                ),
                None => format!(
                    "`{}` has no field `{name}`; its fields are: {}",
                    strukt.ident,
                    by_name
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            errors.at(written, message);
            continue;
        };
        if seen.contains(&name) {
            errors.at(written, format!("`{name}` is named twice in `index(...)`"));
            continue;
        }
        seen.push(name.clone());
        let Some(index) = index_field(written, &name, field, &container, errors) else {
            continue;
        };
        if let Some(other) = out.iter().find(|o| o.json_name == index.json_name) {
            errors.at(
                written,
                format!(
                    "`{name}` is \"{}\" in JSON, as is `{}`, which is indexed already",
                    index.json_name, other.rust_name
                ),
            );
            continue;
        }
        if let Some(other) = out.iter().find(|o| o.constant == index.constant) {
            errors.at(
                written,
                format!(
                    "the index constants of `{}` and `{name}` would both be `{}`: index one of them",
                    other.rust_name, index.constant
                ),
            );
            continue;
        }
        out.push(index);
    }
    out
}

fn not_named_fields(
    lists: &[attr::IndexList],
    ident: &syn::Ident,
    shape: &str,
    errors: &mut Errors,
) {
    for list in lists {
        errors.at(
            &list.keyword,
            format!(
                "`index` works on structs with named fields, and `{ident}` is {shape}: an index \
                 finds entries by the value of a named field"
            ),
        );
    }
}

/// The JSON name, constant and look-up type of the existing field `field`, named `name`.
fn index_field(
    written: &syn::Ident,
    name: &str,
    field: &syn::Field,
    container: &serde_names::Container,
    errors: &mut Errors,
) -> Option<IndexField> {
    let serde = serde_names::field(&field.attrs);
    for unfollowable in &serde.unfollowable {
        errors.at(
            &unfollowable.at,
            format!("`{name}` is indexed: {}", unfollowable.why),
        );
    }
    // A flattened field is reported as such: its type (a struct) is beside the point.
    let (look_up, check_range, optional) = if serde.flattened {
        let ty = quote::ToTokens::to_token_stream(&field.ty);
        (LookUp::StandIn(ty), false, false)
    } else {
        field_type(&field.ty, errors)
    };
    if let Some((at, function)) = &serde.skip_serializing_if {
        let is_none = matches!(
            function.value().as_str(),
            "Option::is_none" | "std::option::Option::is_none" | "core::option::Option::is_none"
        );
        if !(optional && is_none) {
            errors.at(
                at,
                format!(
                    "`{name}` is indexed: a field left out by `skip_serializing_if` is not in \
                     the index, and #[d1_namespace] cannot tell when `{}` leaves it out (only \
                     `Option::is_none` on an `Option` field is allowed: `None` is not indexed \
                     anyway)",
                    function.value()
                ),
            );
        }
    }
    let json_name = match &serde.rename {
        Some(rename) => {
            let json_name = rename.value();
            if let Some(c) = json_name
                .chars()
                .find(|c| matches!(c, '"' | '\\') || c.is_control())
            {
                let c = if c.is_control() {
                    format!("the control character {c:?}")
                } else {
                    format!("`{c}`")
                };
                errors.at(
                    rename,
                    format!(
                        "the JSON name of the indexed field `{name}` holds {c}: the JSON name \
                         of an indexed field cannot hold `\"`, `\\` or control characters"
                    ),
                );
            }
            json_name
        }
        None => match container.rename_all {
            Some(rule) => rule.apply(name),
            None => name.to_owned(),
        },
    };
    let constant = match syn::parse_str::<syn::Ident>(&screaming_snake(name)) {
        Ok(mut constant) => {
            constant.set_span(written.span());
            constant
        }
        Err(_) => {
            errors.at(
                written,
                format!(
                    "`{name}` in upper case is not an identifier, so it cannot name the index's \
                     constant; rename the field"
                ),
            );
            return None;
        }
    };
    Some(IndexField {
        rust_name: name.to_owned(),
        json_name,
        constant,
        look_up,
        check_range,
    })
}

/// The name of a field's index constant: `user_id` -> `USER_ID`, `userId` -> `USER_ID`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut after_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && after_lower {
            out.push('_');
        }
        after_lower = c.is_lowercase() || c.is_numeric();
        out.extend(c.to_uppercase());
    }
    out
}

/// The types an index can hold, for the error about one that it cannot (I3).
const INDEXABLE: &str = "`String`, `bool`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, \
                         or an `Option` of one of them";

/// The look-up type of an indexed field of type `ty`, whether its integers need the 2^53 check,
/// and whether it is an `Option`. The check is by the names as written: `String`, `bool`, the
/// integer types and `Option`, with or without their `std`/`core`/`alloc` paths.
fn field_type(ty: &syn::Type, errors: &mut Errors) -> (LookUp, bool, bool) {
    match option_of(ty) {
        Some(inner) => {
            let (look_up, check_range) = plain_type(inner, true, errors);
            (look_up, check_range, true)
        }
        None => {
            let (look_up, check_range) = plain_type(ty, false, errors);
            (look_up, check_range, false)
        }
    }
}

fn plain_type(ty: &syn::Type, in_option: bool, errors: &mut Errors) -> (LookUp, bool) {
    let path = path_of(ty);
    if let Some(name) = path.and_then(indexable) {
        return (LookUp::Primitive(name), matches!(name, "i64" | "u64"));
    }
    let last = path
        .and_then(|path| path.segments.last())
        .map(|segment| segment.ident.to_string());
    let plain_name = path.is_some_and(|path| path.segments.iter().all(|s| s.arguments.is_empty()));
    let hint = match (peel(ty), last.as_deref()) {
        (syn::Type::Reference(_), _) => " (a namespace value owns its fields: use `String`)".into(),
        (_, Some("f32" | "f64")) => " (a float cannot be looked up exactly)".into(),
        (_, Some("usize" | "isize")) => {
            " (`usize` and `isize` differ between wasm32 and native)".into()
        }
        (_, Some("i128" | "u128")) => " (D1 keeps integers up to 2^53 exactly)".into(),
        (_, Some("Option")) if in_option => " (not an `Option` of an `Option`)".into(),
        (_, Some("char" | "str")) | (_, None) => String::new(),
        (_, Some(name)) if plain_name => {
            format!(
                " (if `{name}` is a type alias, write the type it stands for: aliases are not followed)"
            )
        }
        _ => String::new(),
    };
    errors.at(
        ty,
        format!(
            "`{}` cannot be indexed: an indexed field must be {INDEXABLE}{hint}",
            type_text(ty)
        ),
    );
    (LookUp::StandIn(quote::ToTokens::to_token_stream(ty)), false)
}

/// `ty` without the invisible groups of `macro_rules!` and parentheses.
fn peel(ty: &syn::Type) -> &syn::Type {
    match ty {
        syn::Type::Group(group) => peel(&group.elem),
        syn::Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// The path of a path type without `<T as Trait>::` in front.
fn path_of(ty: &syn::Type) -> Option<&syn::Path> {
    match peel(ty) {
        syn::Type::Path(syn::TypePath {
            qself: None, path, ..
        }) => Some(path),
        _ => None,
    }
}

/// The segments of `path` as words.
fn words(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// Whether `path` (its last segment aside) is `name`, `prefix::name` or `::prefix::name` for one
/// of `prefixes`.
fn is_path(path: &syn::Path, prefixes: &[&[&str]], name: &str) -> bool {
    let words = words(path);
    let Some((last, front)) = words.split_last() else {
        return false;
    };
    if last != name
        || path
            .segments
            .iter()
            .take(front.len())
            .any(|segment| !segment.arguments.is_empty())
    {
        return false;
    }
    if front.is_empty() {
        return path.leading_colon.is_none();
    }
    prefixes.iter().any(|prefix| prefix.iter().eq(front.iter()))
}

/// The name of the look-up type of a field of the indexable type at `path`, if it is one.
fn indexable(path: &syn::Path) -> Option<&'static str> {
    const PRIMITIVE: &[&[&str]] = &[&["std", "primitive"], &["core", "primitive"]];
    const STRING: &[&[&str]] = &[&["std", "string"], &["alloc", "string"]];
    const NAMES: [&str; 9] = ["bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"];
    if path.segments.last()?.arguments.is_empty() {
        if is_path(path, STRING, "String") {
            return Some("str");
        }
        return NAMES
            .into_iter()
            .find(|name| is_path(path, PRIMITIVE, name));
    }
    None
}

/// `T` of `Option<T>` (or `std::option::Option<T>`, `core::option::Option<T>`).
fn option_of(ty: &syn::Type) -> Option<&syn::Type> {
    const OPTION: &[&[&str]] = &[&["std", "option"], &["core", "option"]];
    let path = path_of(ty)?;
    if !is_path(path, OPTION, "Option") {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &path.segments.last()?.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// A type as the user would write it: `Vec<String>`, not `Vec < String >`.
fn type_text(ty: &syn::Type) -> String {
    let mut text = quote::ToTokens::to_token_stream(ty).to_string();
    for (spaced, tight) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ::", "::"),
        (":: ", "::"),
        (" ,", ","),
    ] {
        text = text.replace(spaced, tight);
    }
    text.replace("& ", "&")
}
