//! Writes the macro's output: the item unchanged, then in `const _: () = { ... };` the checks
//! that the types are serde types, one impl of `Namespace` and the constructors `namespace` and
//! `namespace_with`, with one typed index handle per `index(...)` field. Paths go through the facade (`::d1ns::__private`, or the `crate` argument),
//! imported once, so users need no other dependency and a wrong `crate` is one error.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::{attr, valid};

pub(crate) fn d1_namespace(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut args = attr::parse(args, &mut errors);
    let index_lists = std::mem::take(&mut args.indexes);
    let parsed = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            errors.push(error);
            return with_errors(item, &errors);
        }
    };
    let target = valid::item(&parsed, &mut errors);
    let config = valid::config(args, &mut errors);
    let Some((ident, vis)) = target else {
        // Nothing to implement for: the item and the mistakes only.
        return with_errors(item, &errors);
    };
    let indexes = valid::indexes(&index_lists, &parsed, &mut errors);
    // With mistakes in the arguments, stand-ins keep the impl valid so that code using the
    // namespace still compiles and the user sees only the real mistakes.
    let expansion = namespace_impl(&config, &indexes, ident, vis);
    let mut output = with_errors(item, &errors);
    output.extend(expansion);
    output
}

fn with_errors(item: TokenStream, errors: &Errors) -> TokenStream {
    let mut output = errors.to_compile_errors();
    output.extend(item);
    output
}

fn namespace_impl(
    config: &valid::Config,
    indexes: &[valid::IndexField],
    ident: &syn::Ident,
    vis: &syn::Visibility,
) -> TokenStream {
    // Generated names start with `__d1ns`/`__D1ns`, a prefix left to generated code by
    // convention, so they do not collide with the user's names (a type called `B`, say).
    let private = quote!(__d1ns_private);
    let krate = &config.krate;
    let import = quote_spanned! {config.krate_span=>
        use #krate::__private as __d1ns_private;
    };
    let name = &config.name;
    let table = match &config.table {
        Some(table) => quote!(#private::core::option::Option::Some(#table)),
        None => quote!(#private::core::option::Option::None),
    };
    let ttl = match config.ttl {
        Some(ttl) => quote!(#private::core::option::Option::Some(#ttl)),
        None => quote!(#private::core::option::Option::None),
    };
    let auto_create = config.auto_create;
    let metadata = match &config.metadata {
        Some(ty) => quote!(#ty),
        None => quote!(#private::NoMetadata),
    };
    // Spanned at the types, so a type that is not a serde type is pointed at, with d1ns's message.
    let value_check = quote_spanned! {ident.span()=>
        #private::assert_value::<#ident>()
    };
    let metadata_check = match &config.metadata {
        Some(ty) => quote_spanned!(ty.span()=> #private::assert_metadata::<#ty>()),
        None => quote!(()),
    };
    // Behind `for<'__d1ns>` the bounds are not checked where they are written, so a type that is
    // not a serde type gets the two checks above as its only errors, not rustc's account of the
    // `Namespace` bounds as well.
    let bounds = quote! {
        where
            for<'__d1ns> #ident: #private::StoredValue,
            for<'__d1ns> #metadata: #private::StoredMetadata,
    };
    // Written only for a namespace with indexes, so that one without expands as it always did.
    let index_defs = (!indexes.is_empty()).then(|| {
        let defs = indexes.iter().map(|index| {
            let (field, check_range) = (&index.json_name, index.check_range);
            quote!(#private::IndexDef::new(#field, #check_range))
        });
        quote! {
            const INDEXES: &'static [#private::IndexDef] = &[#(#defs),*];
        }
    });
    let index_consts = indexes
        .iter()
        .map(|index| index_const(&private, index, ident, vis));
    let trait_impl = quote_spanned! {ident.span()=>
        #[automatically_derived]
        impl #private::Namespace for #ident
    };
    quote! {
        const _: () = {
            #import

            const _: () = #value_check;
            const _: () = #metadata_check;

            #trait_impl #bounds {
                const NAME: &'static str = #name;
                const TABLE: #private::core::option::Option<&'static str> = #table;
                const TTL: #private::core::option::Option<u64> = #ttl;
                const AUTO_CREATE: bool = #auto_create;
                type Metadata = #metadata;
                #index_defs
            }

            #[automatically_derived]
            impl #private::Sealed for #ident {}

            #[automatically_derived]
            impl #ident {
                #(#index_consts)*

                /// This type's KV namespace on `backend` (a `worker::D1Database`, or a
                /// `SqliteBackend` natively).
                #vis fn namespace<__D1nsBackend: #private::Backend>(
                    backend: __D1nsBackend,
                ) -> #private::TypedNamespace<#ident, __D1nsBackend>
                #bounds
                {
                    #private::TypedNamespace::new(backend)
                }

                /// This type's KV namespace on `backend`, with the builder handed to
                /// `configure` first (to set a clock, say).
                #vis fn namespace_with<__D1nsBackend: #private::Backend>(
                    backend: __D1nsBackend,
                    configure: impl #private::core::ops::FnOnce(
                        #private::D1NamespaceBuilder<__D1nsBackend>,
                    ) -> #private::D1NamespaceBuilder<__D1nsBackend>,
                ) -> #private::core::result::Result<
                    #private::TypedNamespace<#ident, __D1nsBackend>,
                    #private::Error,
                >
                #bounds
                {
                    #private::TypedNamespace::with(backend, configure)
                }

                /// This type's KV namespace spread over several databases, each given with a
                /// stable name (its binding name, say) that places keys on it.
                #vis fn namespace_sharded<__D1nsBackend: #private::Backend, __D1nsName: #private::core::convert::Into<#private::String>>(
                    shards: impl #private::core::iter::IntoIterator<Item = (__D1nsName, __D1nsBackend)>,
                ) -> #private::core::result::Result<
                    #private::TypedNamespace<#ident, __D1nsBackend>,
                    #private::Error,
                >
                #bounds
                {
                    #private::TypedNamespace::sharded(shards)
                }
            }
        };
    }
}

/// `Session::USER_ID`, the typed handle of the index on `user_id`.
fn index_const(
    private: &TokenStream,
    index: &valid::IndexField,
    ident: &syn::Ident,
    vis: &syn::Visibility,
) -> TokenStream {
    let look_up = match &index.look_up {
        valid::LookUp::Primitive(name) => {
            let name = syn::Ident::new(name, proc_macro2::Span::call_site());
            quote!(#private::core::primitive::#name)
        }
        valid::LookUp::StandIn(ty) => quote!(#ty),
    };
    let (constant, field, json) = (&index.constant, &index.rust_name, &index.json_name);
    let doc = if *field == *json {
        format!("The index on `{field}`: `namespace.find({ident}::{constant}, &value)`.")
    } else {
        format!(
            "The index on `{field}` (`{json}` in JSON): \
             `namespace.find({ident}::{constant}, &value)`."
        )
    };
    quote! {
        #[doc = #doc]
        #vis const #constant: #private::Index<#ident, #look_up> = #private::Index::new(#json);
    }
}
