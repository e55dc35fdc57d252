//! The layers against real stores: retries on a `FaultyStore`, the prefix layer through the
//! conformance suite, and the spans of the tracing layer seen by a subscriber.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dj_core::store::{Layer, Store, StoreExt, StorePath};
use dj_store_layers::{
    PrefixLayer, Retries, RetryLayer, RetryPolicy, SPAN_NAME, TracingLayer, standard,
};
use dj_store_memory::MemoryStore;
use dj_testkit::{Fault, FaultyStore};

fn memory(name: &str) -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(name))
}

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(4))
}

fn key(k: &str) -> StorePath {
    StorePath::parse(k).unwrap()
}

#[tokio::test]
async fn retry_recovers_from_a_transient_outage() {
    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::PutFirst(2)));
    let store = RetryLayer::new(quick(4)).layer(faulty.clone());
    store.put(&key("a/b"), "data".into()).await.unwrap();
    assert_eq!(faulty.puts(), 3, "two failures, then success");
    assert_eq!(&store.get(&key("a/b")).await.unwrap()[..], b"data");

    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::GetFirst(3)));
    faulty.put(&key("k"), "v".into()).await.unwrap();
    let store = RetryLayer::new(quick(4)).layer(faulty.clone());
    assert_eq!(&store.get(&key("k")).await.unwrap()[..], b"v");
    assert_eq!(faulty.gets(), 4);
}

#[tokio::test]
async fn retry_gives_up_after_the_last_attempt() {
    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::PutFirst(10)));
    let store = RetryLayer::new(quick(3)).layer(faulty.clone());
    let err = store.put(&key("k"), "v".into()).await.unwrap_err();
    assert!(err.is_retryable(), "the last error is returned: {err}");
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(faulty.puts(), 3);
}

#[tokio::test]
async fn retry_gives_up_when_out_of_time() {
    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::PutFirst(10)));
    let policy = quick(10).with_max_elapsed(Duration::ZERO);
    let store = RetryLayer::new(policy).layer(faulty.clone());
    assert!(store.put(&key("k"), "v".into()).await.is_err());
    assert_eq!(faulty.puts(), 1, "no time left for a second attempt");
}

#[tokio::test]
async fn retry_leaves_permanent_errors_alone() {
    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::PutFirst(1)).permanent());
    let store = RetryLayer::new(quick(5)).layer(faulty.clone());
    let err = store.put(&key("k"), "v".into()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(faulty.puts(), 1);
    // A missing object is an answer, not a failure.
    let err = store.get(&key("missing")).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(faulty.gets(), 1);
}

#[tokio::test]
async fn retry_reopens_a_listing_that_failed_before_its_first_item() {
    let faulty = Arc::new(FaultyStore::new(memory("m"), Fault::ListFirst(2)));
    for k in ["p/1", "p/2", "q/3"] {
        faulty.put(&key(k), "x".into()).await.unwrap();
    }
    let store = RetryLayer::new(quick(4)).layer(faulty.clone());
    let mut listed: Vec<String> = store
        .list_all(Some(&key("p")))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["p/1", "p/2"]);
    assert_eq!(faulty.lists(), 3);

    let never = RetryLayer::new(RetryPolicy::never())
        .layer(Arc::new(FaultyStore::new(memory("m"), Fault::ListFirst(1))));
    assert!(never.list_all(None).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn retry_layer_passes_the_conformance_suite() {
    let store = RetryLayer::new(quick(3)).layer(memory("retry"));
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test]
async fn prefix_layer_passes_the_conformance_suite() {
    let bucket = memory("prefixed");
    let store = PrefixLayer::new(key("lab a/raw")).layer(Arc::clone(&bucket));
    dj_testkit::run_all(store.as_ref()).await;
    // Everything the suite left (nothing, after its cleanup) and everything written is below
    // the prefix in the inner store.
    store.put(&key("x/y"), "1".into()).await.unwrap();
    let inner: Vec<String> = bucket
        .list_all(None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    assert_eq!(inner, ["lab a/raw/x/y"]);
    assert_eq!(store.head(&key("x/y")).await.unwrap().path, key("x/y"));
    assert!(store.to_string().contains("under `lab a/raw`"), "{store}");
}

#[tokio::test]
async fn prefix_layer_lists_only_its_own_keys() {
    let bucket = memory("b");
    bucket.put(&key("ab/outside"), "o".into()).await.unwrap();
    bucket.put(&key("a/inside"), "i".into()).await.unwrap();
    let store = PrefixLayer::new(key("a")).layer(Arc::clone(&bucket));
    let listed = store.list_all(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, key("inside"));
    assert!(store.get(&key("outside")).await.unwrap_err().is_not_found());
}

/// Spans (name and `op`, `store` fields) and events seen by a subscriber.
#[derive(Clone, Default)]
struct Seen {
    spans: Arc<Mutex<Vec<(String, String, String)>>>,
    events_in_put: Arc<Mutex<usize>>,
}

struct Fields {
    op: String,
    store: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "op" => self.op = value.to_string(),
            "store" => self.store = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Seen
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields {
            op: String::new(),
            store: String::new(),
        };
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f.op.clone());
        }
        self.spans
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_string(), f.op, f.store));
    }

    fn on_event(&self, _: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let in_put = ctx
            .lookup_current()
            .is_some_and(|s| s.extensions().get::<String>().is_some_and(|op| op == "put"));
        if in_put {
            *self.events_in_put.lock().unwrap() += 1;
        }
    }
}

#[tokio::test]
async fn tracing_layer_gives_every_operation_a_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = TracingLayer.layer(memory("traced"));
    let k = key("t/k");
    store.put(&k, "v".into()).await.unwrap();
    store.get(&k).await.unwrap();
    store.head(&k).await.unwrap();
    store.list_all(None).await.unwrap();
    store
        .put_stream(
            &key("t/big"),
            Box::pin(futures::stream::iter([Ok("ab".into()), Ok("cd".into())])),
            1,
        )
        .await
        .unwrap();
    store.delete(&k).await.unwrap();

    let spans = seen.spans.lock().unwrap().clone();
    let ops: Vec<&str> = spans
        .iter()
        .filter(|(name, _, store)| name == SPAN_NAME && store == "traced")
        .map(|(_, op, _)| op.as_str())
        .collect();
    assert_eq!(
        ops,
        ["put", "get", "head", "list", "put_multipart", "delete"],
        "{spans:?}"
    );
}

#[tokio::test]
async fn standard_layers_trace_once_around_all_retries() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let faulty = Arc::new(FaultyStore::new(memory("std"), Fault::PutFirst(2)));
    let store = standard(faulty.clone(), Retries::Layer(quick(4)));
    store.put(&key("k"), "v".into()).await.unwrap();
    assert_eq!(faulty.puts(), 3);
    let puts = seen
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, op, _)| name == SPAN_NAME && op == "put")
        .count();
    assert_eq!(puts, 1, "one span for the operation, not one per attempt");
    assert_eq!(
        *seen.events_in_put.lock().unwrap(),
        2,
        "each retry is an event inside the span"
    );

    // Backends that retry by themselves get no retry layer.
    let faulty = Arc::new(FaultyStore::new(memory("std"), Fault::PutFirst(1)));
    let store = standard(faulty.clone(), Retries::Backend);
    assert!(store.put(&key("k"), "v".into()).await.is_err());
    assert_eq!(faulty.puts(), 1);
}

#[tokio::test]
async fn stores_opened_from_configuration_have_spans() {
    use dj_core::config::{SpecContext, StoreSpec};
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let spec = StoreSpec::new("from-config", "memory", "");
    let store = dj_store_memory::create(&spec, &SpecContext::default()).unwrap();
    store.put(&key("k"), "v".into()).await.unwrap();
    let spans = seen.spans.lock().unwrap().clone();
    assert!(
        spans
            .iter()
            .any(|(name, op, store)| name == SPAN_NAME && op == "put" && store == "from-config"),
        "{spans:?}"
    );
}

#[tokio::test]
async fn a_specs_retry_settings_set_the_attempts() {
    use dj_core::config::{RetrySettings, StoreSpec};
    for attempts in [1u32, 2, 5] {
        let mut spec = StoreSpec::new("s", "webdav", "x");
        spec.retry = RetrySettings::default()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(2));
        let policy = RetryPolicy::for_spec(&spec);
        assert_eq!(policy.max_attempts, attempts);
        assert_eq!(policy.max_backoff, Duration::from_millis(2));
        // What the settings leave unset stays the default.
        assert_eq!(policy.max_elapsed, RetryPolicy::default().max_elapsed);

        let faulty = Arc::new(FaultyStore::new(memory("s"), Fault::PutFirst(100)));
        let store = standard(faulty.clone(), Retries::Layer(policy));
        assert!(store.put(&key("k"), "v".into()).await.is_err());
        assert_eq!(faulty.puts(), attempts as usize, "{attempts} attempts");
    }
    let mut spec = StoreSpec::new("s", "webdav", "x");
    spec.retry = RetrySettings::never();
    assert_eq!(RetryPolicy::for_spec(&spec), RetryPolicy::never());
    spec.retry = RetrySettings::default();
    assert_eq!(RetryPolicy::for_spec(&spec), RetryPolicy::default());
}
