//! The codec contract and codec-chain resolution.
//!
//! A [`Codec`] turns a user's value into the value of the type it stores as, and back. That type is
//! a core type (`bytes`, `json`, …) or another codec, so codecs chain: `<blob@>` is blob → hash →
//! `json`. [`ResolvedType::resolve`] walks a chain once, at declare time, following DataJoint's
//! store-propagation rule (a store named at an outer level applies inward unless an inner level
//! names its own) and rejecting cycles; [`ResolvedType::encode`] then runs the chain outer to inner
//! and [`ResolvedType::decode`] inner to outer.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use dj_core::codec::{Codec, CodecContext, ResolvedType};
//! use dj_core::registry::Registry;
//! use dj_core::typespec::TypeSpec;
//! use dj_core::value::Value;
//! use dj_core::{Config, Result};
//!
//! /// Stores a temperature in kelvin, as `float64`.
//! #[derive(Debug)]
//! struct Celsius;
//!
//! #[async_trait]
//! impl Codec for Celsius {
//!     fn name(&self) -> &str { "celsius" }
//!     fn dtype(&self, _is_store: bool) -> Result<TypeSpec> { "float64".parse() }
//!     async fn encode(&self, v: Value, _cx: &CodecContext) -> Result<Value> {
//!         Ok(Value::Float(v.as_f64().unwrap_or(f64::NAN) + 273.15))
//!     }
//!     async fn decode(&self, v: Value, _cx: &CodecContext) -> Result<Value> {
//!         Ok(Value::Float(v.as_f64().unwrap_or(f64::NAN) - 273.15))
//!     }
//! }
//!
//! # tokio_test_block_on(async {
//! let registry = Registry::new();
//! registry.register_codec(Arc::new(Celsius)).unwrap();
//! let config = Arc::new(Config::default());
//! let ty = ResolvedType::resolve(&"<celsius>".parse().unwrap(), &registry, &config).unwrap();
//! assert_eq!(ty.final_type.to_string(), "float64");
//! let cx = CodecContext::for_tests(config);
//! let stored = ty.encode(Value::Float(20.0), &cx).await.unwrap();
//! assert_eq!(stored, Value::Float(293.15));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     futures::executor::block_on(f)
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use indexmap::IndexMap;
use tracing::Instrument;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::storeset::StoreSet;
use crate::typespec::{StoreRef, TypeSpec};
use crate::value::Value;

/// A path a stored value refers to, as reported to garbage collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredRef {
    /// The key inside the store.
    pub path: String,
    /// The store's name, when recorded.
    pub store: Option<String>,
}

/// What a codec is given besides the value: where the value lives and how to reach the stores.
///
/// On insert every field is filled. On fetch DataJoint gives codecs no primary key, schema or table,
/// so stored metadata must be self-describing; dj-rs fills them when it knows them.
#[derive(Clone)]
pub struct CodecContext {
    /// The schema (database) name.
    pub schema: String,
    /// The SQL table name, with its tier prefix (`rec`, `_imported`, `__computed`, `#lookup`).
    pub table: String,
    /// The attribute name.
    pub field: String,
    /// The row's primary-key values, in heading order.
    pub key: IndexMap<String, Value>,
    /// The resolved store name for this attribute, `None` in table mode.
    pub store: Option<String>,
    /// The configuration of the connection.
    pub config: Arc<Config>,
    /// The connection's stores.
    pub stores: Arc<StoreSet>,
}

impl fmt::Debug for CodecContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodecContext")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("field", &self.field)
            .field("key", &self.key)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl CodecContext {
    /// A context with empty names, for unit tests and examples.
    pub fn for_tests(config: Arc<Config>) -> Self {
        CodecContext {
            schema: String::new(),
            table: String::new(),
            field: String::new(),
            key: IndexMap::new(),
            store: None,
            stores: Arc::new(StoreSet::new(Arc::clone(&config))),
            config,
        }
    }

    /// The store this attribute uses, or an error naming the codec when it is in table mode.
    pub fn store(&self, codec: &str) -> Result<(String, Arc<dyn Store>)> {
        let Some(name) = &self.store else {
            return Err(Error::Codec {
                codec: codec.to_string(),
                attribute: Some(self.field.clone()),
                message: "this codec needs a store; declare the attribute with `@` or `@store`"
                    .into(),
                source: None,
            });
        };
        Ok((name.clone(), self.stores.get(name)?))
    }
}

/// Where chain resolution finds codecs by name: the [`Registry`](crate::registry::Registry), or
/// anything else that knows codecs.
pub trait CodecLookup {
    /// The codec called `name`, or an error naming it (and the known codecs).
    fn codec(&self, name: &str) -> Result<Arc<dyn Codec>>;
}

/// A codec: a named, chainable conversion between a user's value and a stored value.
///
/// Implementations must be cheap to share (`Arc<dyn Codec>`) and must not block the async runtime on
/// CPU-heavy work of large values (use `tokio::task::spawn_blocking` or similar).
#[async_trait]
pub trait Codec: Send + Sync + fmt::Debug + 'static {
    /// The name used inside `<…>`.
    fn name(&self) -> &str;

    /// The type this codec stores as: a core type or another codec. `is_store` is true when the
    /// attribute's spec has `@` (with or without a store name). Return an error to reject a mode,
    /// as store-only codecs do for `is_store == false`.
    fn dtype(&self, is_store: bool) -> Result<TypeSpec>;

    /// Check a value before it is encoded. The default accepts everything.
    fn validate(&self, _value: &Value) -> Result<()> {
        Ok(())
    }

    /// Turn a value into the representation of [`Codec::dtype`].
    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value>;

    /// Turn a stored representation back into the value.
    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value>;

    /// The store paths a stored (not decoded) value refers to, for garbage collection. The default
    /// reads `path` and `store` from JSON metadata, as DataJoint does.
    fn referenced_paths(&self, stored: &Value) -> Vec<StoredRef> {
        default_referenced_paths(stored)
    }

    /// Whether a bare `@` means `stores.filepath_default` instead of `stores.default`.
    fn uses_filepath_default(&self) -> bool {
        false
    }
}

/// The [`Codec::dtype`] of a codec that keeps its values in an object store only (`<hash@>`,
/// `<object@>`, `<npy@>`, `<filepath@>`): JSON metadata in the table with `@`, and without `@` an
/// error that names the codec and says how to declare it.
pub fn store_only_json(codec: &str, is_store: bool) -> Result<TypeSpec> {
    if !is_store {
        return Err(Error::codec(
            codec,
            format!(
                "<{codec}> keeps its values in an object store only: declare it as <{codec}@> or <{codec}@store>"
            ),
        ));
    }
    Ok(TypeSpec::Core(crate::typespec::CoreType::Json))
}

/// Reads `{"path": …, "store": …}` from a JSON value (or a JSON string), as DataJoint's default
/// `referenced_paths` does.
pub fn default_referenced_paths(stored: &Value) -> Vec<StoredRef> {
    let Ok(json) = stored.stored_json() else {
        return Vec::new();
    };
    match json.get("path").and_then(serde_json::Value::as_str) {
        Some(path) => vec![StoredRef {
            path: path.to_string(),
            store: json
                .get("store")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
        }],
        None => Vec::new(),
    }
}

/// A type spec resolved down to the SQL type: the codec chain and the store.
#[derive(Clone)]
pub struct ResolvedType {
    /// The spec as declared, e.g. `<blob@>`.
    pub spec: TypeSpec,
    /// The type the column holds: a core type or a native SQL type.
    pub final_type: TypeSpec,
    /// The codecs, outermost first. Empty for core and native types.
    pub chain: Vec<Arc<dyn Codec>>,
    /// The resolved store name (never empty: a bare `@` is replaced by the default store).
    pub store: Option<String>,
}

impl fmt::Debug for ResolvedType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain: Vec<&str> = self.chain.iter().map(|c| c.name()).collect();
        f.debug_struct("ResolvedType")
            .field("spec", &self.spec.to_string())
            .field("final_type", &self.final_type.to_string())
            .field("chain", &chain)
            .field("store", &self.store)
            .finish()
    }
}

fn resolve_store(
    store: &StoreRef,
    codec: &dyn Codec,
    spec: &TypeSpec,
    config: &Config,
) -> Result<String> {
    let stores = &config.stores;
    let name = match store {
        StoreRef::Named(n) => n.clone(),
        StoreRef::Default => {
            let default = if codec.uses_filepath_default() {
                &stores.filepath_default
            } else {
                &stores.default
            };
            match default {
                Some(d) => d.clone(),
                None if codec.uses_filepath_default() => {
                    return Err(Error::config(
                        "stores.filepath_default",
                        format!(
                            "`{spec}` uses the default filepath store, but `stores.filepath_default` is not set"
                        ),
                    ));
                }
                None => {
                    return Err(Error::NoDefaultStore {
                        spec: spec.to_string(),
                    });
                }
            }
        }
    };
    stores.get(&name)?;
    Ok(name)
}

impl ResolvedType {
    /// Resolve a spec against the codec registry and the configured stores.
    ///
    /// Errors: an unknown codec, a codec that rejects the mode, a cycle, a bare `@` with no
    /// default store, or a store name that is not configured.
    pub fn resolve(
        spec: &TypeSpec,
        registry: &dyn CodecLookup,
        config: &Config,
    ) -> Result<ResolvedType> {
        let mut chain: Vec<Arc<dyn Codec>> = Vec::new();
        let mut store: Option<String> = None;
        let mut current = spec.clone();
        loop {
            match current {
                TypeSpec::Core(_) | TypeSpec::Native(_) => {
                    return Ok(ResolvedType {
                        spec: spec.clone(),
                        final_type: current,
                        chain,
                        store,
                    });
                }
                TypeSpec::Codec {
                    ref name,
                    store: ref store_ref,
                } => {
                    if chain.iter().any(|c| c.name() == name) {
                        let mut names: Vec<String> =
                            chain.iter().map(|c| format!("<{}>", c.name())).collect();
                        names.push(format!("<{name}>"));
                        return Err(Error::CircularCodec {
                            chain: names.join(" -> "),
                        });
                    }
                    let codec = registry.codec(name)?;
                    if let Some(store_ref) = store_ref {
                        store = Some(resolve_store(store_ref, codec.as_ref(), &current, config)?);
                    }
                    let inner = codec.dtype(store.is_some()).map_err(|e| match e {
                        Error::Codec {
                            codec,
                            attribute,
                            message,
                            source,
                        } => Error::Codec {
                            codec,
                            attribute,
                            message: format!("{message} (in `{spec}`)"),
                            source,
                        },
                        other => other,
                    })?;
                    chain.push(codec);
                    current = inner;
                }
            }
        }
    }

    /// Validate and encode a value, outermost codec first. `Null` passes through untouched.
    /// `ctx.store` is set from the resolved store.
    pub async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let mut ctx = ctx.clone();
        ctx.store.clone_from(&self.store);
        let mut value = value;
        for codec in &self.chain {
            let span = tracing::debug_span!(
                "codec.encode",
                codec = codec.name(),
                attribute = %ctx.field,
                table = %ctx.table,
                store = ctx.store.as_deref().unwrap_or(""),
            );
            let started = std::time::Instant::now();
            codec
                .validate(&value)
                .map_err(|e| e.with_attribute(&ctx.field))?;
            value = codec
                .encode(value, &ctx)
                .instrument(span.clone())
                .await
                .map_err(|e| e.with_attribute(&ctx.field))?;
            span.in_scope(|| {
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "encoded")
            });
        }
        Ok(value)
    }

    /// Decode a stored value, innermost codec first. `Null` decodes to `Null`.
    pub async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        if stored.is_null() {
            return Ok(Value::Null);
        }
        let mut ctx = ctx.clone();
        ctx.store.clone_from(&self.store);
        let mut value = stored;
        for codec in self.chain.iter().rev() {
            let span = tracing::debug_span!(
                "codec.decode",
                codec = codec.name(),
                attribute = %ctx.field,
                table = %ctx.table,
                store = ctx.store.as_deref().unwrap_or(""),
            );
            let started = std::time::Instant::now();
            value = codec
                .decode(value, &ctx)
                .instrument(span.clone())
                .await
                .map_err(|e| e.with_attribute(&ctx.field))?;
            span.in_scope(|| {
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "decoded")
            });
        }
        Ok(value)
    }

    /// The store paths a stored value refers to, asking every codec of the chain (so a custom codec
    /// chaining into `<hash@>` is classified by what it resolves to).
    pub fn referenced_paths(&self, stored: &Value) -> Vec<StoredRef> {
        let mut out = Vec::new();
        for codec in &self.chain {
            for r in codec.referenced_paths(stored) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}
