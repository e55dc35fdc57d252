//! A third-party codec takes the user's own Rust type and chains it into `<blob>` (in the table)
//! or `<blob@>` (in a store), the pattern of DataJoint's `<graph>` example.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use datajoint::blob::Item;
use datajoint::dj_core::codec::{Codec, CodecContext, ResolvedType};
use datajoint::dj_core::config::{Config, StoreSpec};
use datajoint::dj_core::{Error, Result};
use datajoint::{Registry, TypeSpec, Value};

/// The user's domain type.
#[derive(Debug, Clone, PartialEq)]
struct Graph {
    edges: Vec<(i64, i64)>,
}

#[derive(Debug)]
struct GraphCodec;

#[async_trait]
impl Codec for GraphCodec {
    fn name(&self) -> &str {
        "graph"
    }
    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        if is_store {
            "<blob@>".parse()
        } else {
            "<blob>".parse()
        }
    }
    fn validate(&self, value: &Value) -> Result<()> {
        match value.as_domain::<Graph>() {
            Some(_) => Ok(()),
            None => Err(Error::codec(
                "graph",
                format!("expected a Graph, found {}", value.kind()),
            )),
        }
    }
    async fn encode(&self, value: Value, _cx: &CodecContext) -> Result<Value> {
        let g = value
            .as_domain::<Graph>()
            .ok_or_else(|| Error::codec("graph", "expected a Graph"))?;
        let edges = g
            .edges
            .iter()
            .map(|&(a, b)| Item::Tuple(vec![Item::from(a), Item::from(b)]))
            .collect();
        Ok(Value::domain(Item::List(edges)))
    }
    async fn decode(&self, stored: Value, _cx: &CodecContext) -> Result<Value> {
        let Some(Item::List(edges)) = stored.as_domain::<Item>() else {
            return Err(Error::codec("graph", "stored value is not a list of edges"));
        };
        let mut out = Vec::new();
        for e in edges {
            let Item::Tuple(p) = e else {
                return Err(Error::codec("graph", "edge is not a pair"));
            };
            let [a, b] = p.as_slice() else {
                return Err(Error::codec("graph", "edge is not a pair"));
            };
            out.push((
                i64::try_from(a).map_err(Error::from)?,
                i64::try_from(b).map_err(Error::from)?,
            ));
        }
        Ok(Value::domain(Graph { edges: out }))
    }
}

#[tokio::test]
async fn user_type_chains_into_blob_in_table_and_in_store() {
    let registry = Registry::new();
    registry.register_codec(Arc::new(GraphCodec)).unwrap();
    let mut config = Config::default();
    config
        .stores
        .specs
        .insert("main".into(), StoreSpec::new("main", "memory", ""));
    config.stores.default = Some("main".into());
    let config = Arc::new(config);
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.schema = "lab".into();
    cx.field = "g".into();
    let graph = Graph {
        edges: vec![(0, 1), (1, 2)],
    };

    let t = ResolvedType::resolve(&"<graph>".parse().unwrap(), &registry, &config).unwrap();
    assert_eq!(
        t.chain.iter().map(|c| c.name()).collect::<Vec<_>>(),
        ["graph", "blob"]
    );
    assert_eq!(t.final_type.to_string(), "bytes");
    let stored = t.encode(Value::domain(graph.clone()), &cx).await.unwrap();
    assert_eq!(
        t.decode(stored, &cx).await.unwrap().as_domain::<Graph>(),
        Some(&graph)
    );

    let s = ResolvedType::resolve(&"<graph@>".parse().unwrap(), &registry, &config).unwrap();
    assert_eq!(
        s.chain.iter().map(|c| c.name()).collect::<Vec<_>>(),
        ["graph", "blob", "hash"]
    );
    assert_eq!(s.store.as_deref(), Some("main"));
    let stored = s.encode(Value::domain(graph.clone()), &cx).await.unwrap();
    // GC sees the hash object through the resolved chain, although the outer codec is custom.
    let refs = s.referenced_paths(&stored);
    assert_eq!(refs.len(), 1);
    assert!(refs[0].path.starts_with("_hash/lab/"), "{refs:?}");
    assert_eq!(
        s.decode(stored, &cx).await.unwrap().as_domain::<Graph>(),
        Some(&graph)
    );

    let err = t
        .encode(Value::from(3_i64), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected a Graph") && err.contains("attribute `g`"),
        "{err}"
    );
}
