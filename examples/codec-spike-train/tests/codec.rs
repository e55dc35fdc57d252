//! The codec as dj-rs sees it: registration, chain resolution, encoding into a store, errors,
//! run-time overrides, and (when `DJ_TEST_PYTHON` names a Python with `datajoint`) the blob as
//! DataJoint Python reads and writes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;
use dj_codec_spike_train::{NAME, SpikeTrain, SpikeTrainCodec};
use dj_core::codec::{Codec, CodecContext, ResolvedType, StoredRef};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::Registry;
use dj_core::store::{StoreExt, StorePath};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_core::{Error, Result};

use dj_codec_hash as _;
use dj_store_memory as _;

fn config() -> Arc<Config> {
    let mut config = Config::default();
    for name in ["main", "cold"] {
        config
            .stores
            .specs
            .insert(name.into(), StoreSpec::new(name, "memory", ""));
    }
    config.stores.default = Some("main".into());
    Arc::new(config)
}

fn resolve(spec: &str, registry: &Registry, config: &Config) -> ResolvedType {
    ResolvedType::resolve(&spec.parse().unwrap(), registry, config)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn chain(ty: &ResolvedType) -> Vec<&str> {
    ty.chain.iter().map(|c| c.name()).collect()
}

fn train(unit: u32) -> SpikeTrain {
    let times = (0..50)
        .map(|i| f64::from(unit) + f64::from(i) * 0.01)
        .collect();
    SpikeTrain::new(unit, 30_000.0, times)
}

#[test]
fn registered_at_link_time() {
    let registry = Registry::global();
    assert!(registry.codec(NAME).is_ok());
    assert!(registry.list_codecs().contains(&NAME.to_string()));
    assert!(
        registry.conflicts().is_empty(),
        "{:?}",
        registry.conflicts()
    );
}

#[test]
fn store_propagates_through_blob_into_hash() {
    let config = config();
    let reg = Registry::global();
    let t = resolve("<spike_train>", reg, &config);
    assert_eq!(chain(&t), ["spike_train", "blob"]);
    assert_eq!((t.final_type.to_string(), t.store), ("bytes".into(), None));
    for (spec, store) in [("<spike_train@>", "main"), ("<spike_train@cold>", "cold")] {
        let t = resolve(spec, reg, &config);
        assert_eq!(chain(&t), ["spike_train", "blob", "hash"], "{spec}");
        assert_eq!(t.store.as_deref(), Some(store), "{spec}");
        assert_eq!(t.final_type.to_string(), "json", "{spec}");
    }
    let err =
        ResolvedType::resolve(&"<spike_train@warm>".parse().unwrap(), reg, &config).unwrap_err();
    assert!(
        err.to_string().contains("`warm` is not configured"),
        "{err}"
    );
}

#[tokio::test]
async fn round_trip_in_a_store_with_referenced_paths() {
    let config = config();
    let t = resolve("<spike_train@main>", Registry::global(), &config);
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.schema = "lab".into();
    cx.field = "train".into();

    let a = train(1);
    let stored = t.encode(Value::from(a.clone()), &cx).await.unwrap();
    let meta = stored.as_json().unwrap().clone();
    let path = meta["path"].as_str().unwrap().to_string();
    assert!(path.starts_with("_hash/lab/"), "{meta}");
    assert_eq!(meta["store"], "main");
    assert_eq!(
        t.referenced_paths(&stored),
        [StoredRef {
            path: path.clone(),
            store: Some("main".into())
        }]
    );
    // MySQL returns JSON as text; the default `referenced_paths` reads that too.
    let as_text = Value::String(meta.to_string());
    assert_eq!(t.referenced_paths(&as_text).len(), 1);

    // Equal trains share one object; another train gets its own.
    let again = t.encode(Value::from(a.clone()), &cx).await.unwrap();
    assert_eq!(again.as_json().unwrap()["path"], meta["path"]);
    let other = t.encode(Value::from(train(2)), &cx).await.unwrap();
    assert_ne!(other.as_json().unwrap()["path"], meta["path"]);

    let back = t.decode(stored, &cx).await.unwrap();
    assert_eq!(back.as_domain::<SpikeTrain>(), Some(&a));
    let store = cx.stores.get("main").unwrap();
    let key = StorePath::parse(&path).unwrap();
    assert!(store.exists(&key).await.unwrap(), "{path}");
}

#[tokio::test]
async fn wrong_values_are_refused_naming_codec_and_attribute() {
    let config = config();
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.field = "train".into();
    for spec in ["<spike_train>", "<spike_train@>"] {
        let t = resolve(spec, Registry::global(), &config);
        for (value, want) in [
            (Value::from(3_i32), "found int"),
            (
                Value::domain(dj_codec_blob::Item::from(1.5)),
                "found domain value `dj_codec_blob::item::Item`",
            ),
            (
                Value::from(SpikeTrain::new(9, -5.0, vec![])),
                "unit 9: sampling_rate must be a positive, finite number of Hz, found -5",
            ),
        ] {
            let err = t.encode(value, &cx).await.unwrap_err().to_string();
            assert!(
                err.starts_with("codec <spike_train> (attribute `train`): "),
                "{spec}: {err}"
            );
            assert!(err.contains(want), "{spec}: {err}");
        }
    }
    // Null passes through untouched (a nullable attribute).
    let t = resolve("<spike_train@>", Registry::global(), &config);
    assert_eq!(t.encode(Value::Null, &cx).await.unwrap(), Value::Null);
    // A stored value that is no spike train dict is reported, not mistaken for one.
    let plain = resolve("<spike_train>", Registry::global(), &config);
    let blob = dj_codec_blob::encode(&dj_codec_blob::Item::from("hello")).unwrap();
    let err = plain
        .decode(Value::Bytes(blob.into()), &cx)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a stored spike train must be a blob dict, found a str"),
        "{err}"
    );
}

/// A replacement registered at run time: keeps only the unit id, as text.
#[derive(Debug)]
struct UnitOnly;

#[async_trait]
impl Codec for UnitOnly {
    fn name(&self) -> &str {
        NAME
    }
    fn dtype(&self, _is_store: bool) -> Result<TypeSpec> {
        "varchar(16)".parse()
    }
    async fn encode(&self, v: Value, _cx: &CodecContext) -> Result<Value> {
        let t = v
            .as_domain::<SpikeTrain>()
            .ok_or_else(|| Error::codec(NAME, "not a train"))?;
        Ok(Value::String(t.unit_id.to_string()))
    }
    async fn decode(&self, v: Value, _cx: &CodecContext) -> Result<Value> {
        Ok(v)
    }
}

#[tokio::test]
async fn run_time_registration_wins_and_duplicates_are_errors() {
    let config = config();
    // An isolated registry still sees link-time codecs ...
    let registry = Registry::new();
    assert_eq!(
        chain(&resolve("<spike_train>", &registry, &config)),
        ["spike_train", "blob"]
    );
    // ... and a run-time entry of the same name overrides the link-time one.
    registry.register_codec(Arc::new(UnitOnly)).unwrap();
    let t = resolve("<spike_train>", &registry, &config);
    assert_eq!(t.final_type.to_string(), "varchar(16)");
    let cx = CodecContext::for_tests(Arc::clone(&config));
    let stored = t.encode(Value::from(train(42)), &cx).await.unwrap();
    assert_eq!(stored, Value::from("42"));
    // A second run-time registration of the name is an error that names both.
    let err = registry
        .register_codec(Arc::new(SpikeTrainCodec))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("codec `spike_train` is registered twice"),
        "{err}"
    );
    // Unregistering brings the link-time codec back.
    assert!(registry.unregister_codec(NAME));
    assert_eq!(
        resolve("<spike_train>", &registry, &config)
            .final_type
            .to_string(),
        "bytes"
    );
    // The global registry was never touched.
    let global = resolve("<spike_train>", Registry::global(), &config);
    assert_eq!(chain(&global), ["spike_train", "blob"]);
}

// ------------------------------------------------------------------------------------------------
// DataJoint Python
// ------------------------------------------------------------------------------------------------

/// Run a Python snippet with the blob file's path as `sys.argv[1]`; `None` when no Python is
/// configured.
fn python(script: &str, file: &std::path::Path) -> Option<String> {
    let Ok(py) = std::env::var("DJ_TEST_PYTHON") else {
        eprintln!("SKIP Python interop: DJ_TEST_PYTHON is not set");
        return None;
    };
    let out = std::process::Command::new(py)
        .args(["-W", "ignore", "-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("dj-spike-train-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn datajoint_python_reads_a_dict_and_writes_one_we_read() {
    let scratch = Scratch::new("python");
    let ours = scratch.0.join("ours.blob");
    let t = SpikeTrain::new(7, 30_000.0, vec![0.5, 1.25, 2.0]);
    std::fs::write(
        &ours,
        dj_codec_blob::encode(&t.clone().into_item()).unwrap(),
    )
    .unwrap();
    let Some(out) = python(
        "import sys, numpy as np\n\
         from datajoint.blob import unpack\n\
         d = unpack(open(sys.argv[1], 'rb').read())\n\
         assert isinstance(d, dict), type(d)\n\
         s = d['spike_times']\n\
         assert isinstance(s, np.ndarray) and s.dtype == np.float64 and s.shape == (3,), s\n\
         assert type(d['unit_id']) is int and type(d['sampling_rate']) is float, d\n\
         print(list(d), d['unit_id'], d['sampling_rate'], s.tolist())\n",
        &ours,
    ) else {
        return;
    };
    assert_eq!(
        out.trim(),
        "['unit_id', 'sampling_rate', 'spike_times'] 7 30000.0 [0.5, 1.25, 2.0]"
    );

    // What a Python codec might write: numpy scalars, float32 times, an extra key.
    let theirs = scratch.0.join("theirs.blob");
    python(
        "import sys, numpy as np\n\
         from datajoint.blob import pack\n\
         d = {'unit_id': np.uint32(11), 'sampling_rate': np.float64(20000.0),\n\
              'spike_times': np.array([0.25, 0.5], dtype=np.float32), 'probe': 'A'}\n\
         open(sys.argv[1], 'wb').write(pack(d))\n",
        &theirs,
    )
    .unwrap();
    let item = dj_codec_blob::decode(&std::fs::read(&theirs).unwrap()).unwrap();
    assert_eq!(
        SpikeTrain::from_item(item).unwrap(),
        SpikeTrain::new(11, 20_000.0, vec![0.25, 0.5])
    );
}
