//! Derive macros for `actor-core` messages.
//!
//! * `#[derive(RemoteMessage)]` makes an enum a ractor `Message` that can cross nodes: every
//!   variant's fields are encoded with `actor_core::codec` (rmp-serde in a versioned envelope).
//!   A variant whose last field is an `RpcReplyPort<T>` is a call; every other variant is a cast.
//! * `#[derive(LocalMessage)]` makes any type a local-only ractor `Message` (ractor's `cluster`
//!   feature removes the blanket impl for the whole build).
//!
//! Use them through `actor_core` (`actor_core::RemoteMessage`, `actor_core::LocalMessage`); the
//! generated code refers to `::actor_core`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

/// Implements `ractor::Message` for a local-only message type (never sent to another node).
#[proc_macro_derive(LocalMessage)]
pub fn derive_local_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        impl #impl_generics ::actor_core::ractor::Message for #name #ty_generics #where_clause {}
    }
    .into()
}

/// Implements `ractor::Message` for an enum whose messages cross nodes.
///
/// Every field must implement `serde::Serialize` and `serde::de::DeserializeOwned`, except a
/// reply port: a variant whose last field (tuple variants) or whose field typed
/// `RpcReplyPort<T>` (struct variants) is a reply port is sent as a call, and `T` must be serde.
#[proc_macro_derive(RemoteMessage)]
pub fn derive_remote_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match remote_message(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The reply type `T` when `ty` is `RpcReplyPort<T>` (any path ending in that name).
fn reply_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "RpcReplyPort" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// Whether `ty` is `Vec<u8>` (any path ending in `Vec`, with the argument `u8`): such a field
/// is encoded as MessagePack `bin`.
fn is_byte_vec(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    if seg.ident != "Vec" {
        return false;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return false;
    };
    matches!(args.args.first(), Some(GenericArgument::Type(Type::Path(t))) if t.path.is_ident("u8"))
}

struct Field<'a> {
    /// Binding used in patterns.
    bind: syn::Ident,
    /// Struct field name (None for tuple fields).
    member: Option<&'a syn::Ident>,
    ty: &'a Type,
}

fn remote_message(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            Span::call_site(),
            "RemoteMessage can only be derived for enums",
        ));
    };
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let mut ser_arms = Vec::new();
    let mut cast_arms = Vec::new();
    let mut call_arms = Vec::new();

    for variant in &data.variants {
        let vname = &variant.ident;
        let vstr = vname.to_string();
        let fields: Vec<Field<'_>> = match &variant.fields {
            Fields::Unit => Vec::new(),
            Fields::Unnamed(f) => f
                .unnamed
                .iter()
                .enumerate()
                .map(|(i, f)| Field {
                    bind: format_ident!("__f{}", i),
                    member: None,
                    ty: &f.ty,
                })
                .collect(),
            Fields::Named(f) => f
                .named
                .iter()
                .map(|f| Field {
                    bind: format_ident!(
                        "__f_{}",
                        f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default()
                    ),
                    member: f.ident.as_ref(),
                    ty: &f.ty,
                })
                .collect(),
        };
        let reply_pos = fields.iter().position(|f| reply_type(f.ty).is_some());
        if let Some(pos) = reply_pos {
            if fields.iter().filter(|f| reply_type(f.ty).is_some()).count() > 1 {
                return Err(syn::Error::new_spanned(
                    variant,
                    "a RemoteMessage variant may hold at most one RpcReplyPort",
                ));
            }
            if matches!(variant.fields, Fields::Unnamed(_)) && pos + 1 != fields.len() {
                return Err(syn::Error::new_spanned(
                    variant,
                    "the RpcReplyPort must be the last field of a tuple variant",
                ));
            }
        }
        let args: Vec<&Field<'_>> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != reply_pos)
            .map(|(_, f)| f)
            .collect();
        let arg_binds: Vec<&syn::Ident> = args.iter().map(|f| &f.bind).collect();
        // What is encoded and decoded for each field: `Vec<u8>` as bytes.
        let arg_exprs: Vec<TokenStream2> = args
            .iter()
            .map(|f| {
                let b = &f.bind;
                if is_byte_vec(f.ty) {
                    quote! { ::actor_core::codec::__private::Bytes::new(&#b) }
                } else {
                    quote! { #b }
                }
            })
            .collect();
        let wire_tys: Vec<TokenStream2> = args
            .iter()
            .map(|f| {
                if is_byte_vec(f.ty) {
                    quote! { ::actor_core::codec::__private::ByteBuf }
                } else {
                    let t = f.ty;
                    quote! { #t }
                }
            })
            .collect();
        let unwrap_bytes: Vec<TokenStream2> = args
            .iter()
            .filter(|f| is_byte_vec(f.ty))
            .map(|f| {
                let b = &f.bind;
                quote! { let #b = #b.into_vec(); }
            })
            .collect();

        let pattern = |binds: &[&Field<'_>]| -> TokenStream2 {
            match &variant.fields {
                Fields::Unit => quote! { #name::#vname },
                Fields::Unnamed(_) => {
                    let b = binds.iter().map(|f| &f.bind);
                    quote! { #name::#vname( #(#b),* ) }
                }
                Fields::Named(_) => {
                    let b = binds.iter().map(|f| {
                        let m = f.member;
                        let bind = &f.bind;
                        quote! { #m: #bind }
                    });
                    quote! { #name::#vname { #(#b),* } }
                }
            }
        };
        let all: Vec<&Field<'_>> = fields.iter().collect();
        let pat = pattern(&all);

        match reply_pos {
            None => {
                ser_arms.push(quote! {
                    #pat => ::actor_core::codec::__private::cast(#vstr, &( #(#arg_exprs,)* )),
                });
                cast_arms.push(quote! {
                    #vstr => {
                        let ( #(#arg_binds,)* ): ( #(#wire_tys,)* ) =
                            ::actor_core::codec::__private::decode_args(#vstr, &args)?;
                        #(#unwrap_bytes)*
                        ::core::result::Result::Ok(#pat)
                    }
                });
            }
            Some(pos) => {
                let port = &fields[pos].bind;
                let rty = reply_type(fields[pos].ty).ok_or_else(|| {
                    syn::Error::new_spanned(fields[pos].ty, "expected RpcReplyPort<T>")
                })?;
                ser_arms.push(quote! {
                    #pat => ::actor_core::codec::__private::call::<#rty, _>(#vstr, &( #(#arg_exprs,)* ), #port),
                });
                call_arms.push(quote! {
                    #vstr => {
                        let ( #(#arg_binds,)* ): ( #(#wire_tys,)* ) =
                            match ::actor_core::codec::__private::decode_args(#vstr, &args) {
                                ::core::result::Result::Ok(v) => v,
                                ::core::result::Result::Err(e) => {
                                    ::actor_core::codec::__private::reject_call(reply, #vstr);
                                    return ::core::result::Result::Err(e);
                                }
                            };
                        #(#unwrap_bytes)*
                        let #port = ::actor_core::codec::__private::reply_port::<#rty>(reply)?;
                        ::core::result::Result::Ok(#pat)
                    }
                });
            }
        }
    }

    let type_name = name.to_string();
    Ok(quote! {
        impl #impl_generics ::actor_core::ractor::Message for #name #ty_generics #where_clause {
            fn serializable() -> bool {
                true
            }

            fn serialize(
                self,
            ) -> ::core::result::Result<
                ::actor_core::ractor::message::SerializedMessage,
                ::actor_core::ractor::message::BoxedDowncastErr,
            > {
                match self {
                    #(#ser_arms)*
                }
            }

            #[allow(unused_variables, unreachable_code)]
            fn deserialize(
                msg: ::actor_core::ractor::message::SerializedMessage,
            ) -> ::core::result::Result<Self, ::actor_core::ractor::message::BoxedDowncastErr> {
                match msg {
                    ::actor_core::ractor::message::SerializedMessage::Cast { variant, args, .. } => {
                        match variant.as_str() {
                            #(#cast_arms)*
                            other => ::core::result::Result::Err(
                                ::actor_core::codec::__private::unknown_variant(#type_name, other),
                            ),
                        }
                    }
                    ::actor_core::ractor::message::SerializedMessage::Call { variant, args, reply, .. } => {
                        match variant.as_str() {
                            #(#call_arms)*
                            other => {
                                ::actor_core::codec::__private::reject_call(reply, other);
                                ::core::result::Result::Err(
                                    ::actor_core::codec::__private::unknown_variant(#type_name, other),
                                )
                            }
                        }
                    }
                    _ => ::core::result::Result::Err(::actor_core::ractor::message::BoxedDowncastErr),
                }
            }
        }
    })
}
