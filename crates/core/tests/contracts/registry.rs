//! `dj_core::registry`: run-time registration.

use std::sync::Arc;

use async_trait::async_trait;
use dj_core::Result;
use dj_core::codec::{Codec, CodecContext};
use dj_core::registry::Registry;
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;

#[derive(Debug)]
struct Named(&'static str);

#[async_trait]
impl Codec for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn dtype(&self, _: bool) -> Result<TypeSpec> {
        "bytes".parse()
    }
    async fn encode(&self, v: Value, _: &CodecContext) -> Result<Value> {
        Ok(v)
    }
    async fn decode(&self, v: Value, _: &CodecContext) -> Result<Value> {
        Ok(v)
    }
}

#[test]
fn duplicate_runtime_registration_names_both() {
    let reg = Registry::new();
    reg.register_codec(Arc::new(Named("dup"))).unwrap();
    let err = reg
        .register_codec(Arc::new(Named("dup")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("codec `dup` is registered twice"), "{err}");
    assert!(err.matches("Named(\"dup\")").count() == 2, "{err}");
    assert!(reg.list_codecs().contains(&"dup".to_string()));
    assert!(reg.unregister_codec("dup"));
    assert!(reg.codec("dup").is_err());
}
