//! Codec-chain resolution, encoding and decoding through `dj_core::codec`.

use std::sync::Arc;

use async_trait::async_trait;
use dj_core::codec::{Codec, CodecContext, ResolvedType, StoredRef, default_referenced_paths};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::Registry;
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_core::{Error, Result};

#[derive(Debug)]
struct Chain {
    name: &'static str,
    inner: &'static str,
    store_inner: &'static str,
}

#[async_trait]
impl Codec for Chain {
    fn name(&self) -> &str {
        self.name
    }
    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        if is_store {
            self.store_inner.parse()
        } else {
            self.inner.parse()
        }
    }
    async fn encode(&self, value: Value, _ctx: &CodecContext) -> Result<Value> {
        let Value::String(s) = value else {
            return Err(Error::wrong_type("string", value.kind()));
        };
        Ok(Value::String(format!("{}({s})", self.name)))
    }
    async fn decode(&self, value: Value, _ctx: &CodecContext) -> Result<Value> {
        let Value::String(s) = value else {
            return Err(Error::wrong_type("string", value.kind()));
        };
        let inner = s
            .strip_prefix(&format!("{}(", self.name))
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| Error::codec(self.name, format!("bad stored value {s}")))?;
        Ok(Value::String(inner.to_string()))
    }
}

fn setup() -> (Registry, Config) {
    let reg = Registry::new();
    reg.register_codec(Arc::new(Chain {
        name: "outer",
        inner: "<mid>",
        store_inner: "<mid>",
    }))
    .unwrap();
    reg.register_codec(Arc::new(Chain {
        name: "mid",
        inner: "varchar(64)",
        store_inner: "json",
    }))
    .unwrap();
    reg.register_codec(Arc::new(Chain {
        name: "pinned",
        inner: "<mid@cold>",
        store_inner: "<mid@cold>",
    }))
    .unwrap();
    reg.register_codec(Arc::new(Chain {
        name: "loop_a",
        inner: "<loop_b>",
        store_inner: "<loop_b>",
    }))
    .unwrap();
    reg.register_codec(Arc::new(Chain {
        name: "loop_b",
        inner: "<loop_a>",
        store_inner: "<loop_a>",
    }))
    .unwrap();
    let mut config = Config::default();
    for name in ["main", "cold"] {
        config
            .stores
            .specs
            .insert(name.into(), StoreSpec::new(name, "memory", ""));
    }
    (reg, config)
}

#[test]
fn store_propagates_inward_and_inner_store_wins() {
    let (reg, mut config) = setup();
    let t = ResolvedType::resolve(&"<outer>".parse().unwrap(), &reg, &config).unwrap();
    assert_eq!(t.final_type.to_string(), "varchar(64)");
    assert_eq!(t.store, None);
    let t = ResolvedType::resolve(&"<outer@main>".parse().unwrap(), &reg, &config).unwrap();
    assert_eq!(t.final_type.to_string(), "json");
    assert_eq!(t.store.as_deref(), Some("main"));
    let t = ResolvedType::resolve(&"<pinned@main>".parse().unwrap(), &reg, &config).unwrap();
    assert_eq!(t.store.as_deref(), Some("cold"));

    let err = ResolvedType::resolve(&"<outer@>".parse().unwrap(), &reg, &config).unwrap_err();
    assert!(err.to_string().contains("stores.default"), "{err}");
    config.stores.default = Some("main".into());
    let t = ResolvedType::resolve(&"<outer@>".parse().unwrap(), &reg, &config).unwrap();
    assert_eq!(t.store.as_deref(), Some("main"));
}

#[test]
fn errors_name_the_problem() {
    let (reg, config) = setup();
    let err = ResolvedType::resolve(&"<loop_a>".parse().unwrap(), &reg, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "circular codec reference: <loop_a> -> <loop_b> -> <loop_a>"
    );
    let err = ResolvedType::resolve(&"<nope>".parse().unwrap(), &reg, &config).unwrap_err();
    assert!(err.to_string().contains("unknown codec `<nope>`"), "{err}");
    let err = ResolvedType::resolve(&"<outer@warm>".parse().unwrap(), &reg, &config).unwrap_err();
    assert!(
        err.to_string().contains("store `warm` is not configured"),
        "{err}"
    );
}

#[test]
fn chain_runs_outer_to_inner_and_back() {
    let (reg, config) = setup();
    let config = Arc::new(config);
    let t = ResolvedType::resolve(&"<outer>".parse().unwrap(), &reg, &config).unwrap();
    let cx = CodecContext::for_tests(config);
    futures::executor::block_on(async {
        let stored = t.encode(Value::from("x"), &cx).await.unwrap();
        assert_eq!(stored, Value::from("mid(outer(x))"));
        assert_eq!(t.decode(stored, &cx).await.unwrap(), Value::from("x"));
        assert_eq!(t.encode(Value::Null, &cx).await.unwrap(), Value::Null);
        let err = t
            .encode(
                Value::Int(1),
                &CodecContext {
                    field: "f".into(),
                    ..cx
                },
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("attribute `f`"), "{err}");
    });
}

#[test]
fn default_referenced_paths_reads_json_and_strings() {
    let j = serde_json::json!({"path": "_hash/s/abc", "store": "main", "size": 3});
    let want = vec![StoredRef {
        path: "_hash/s/abc".into(),
        store: Some("main".into()),
    }];
    assert_eq!(default_referenced_paths(&Value::Json(j.clone())), want);
    assert_eq!(
        default_referenced_paths(&Value::String(j.to_string())),
        want
    );
    assert!(default_referenced_paths(&Value::Bytes(vec![1].into())).is_empty());
}
