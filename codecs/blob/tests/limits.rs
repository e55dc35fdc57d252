//! The two limits of the blob format: nesting depth ([`MAX_DEPTH`], one limit for encode, decode,
//! serde and JSON conversions, never a stack overflow) and the decompressed size of `ZL123` blobs
//! (`blob_max_decompressed_size`).
//!
//! Deep values are handled on threads with a normal 2 MiB stack, the size of tokio's workers and
//! of the blocking pool.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;

use dj_codec_blob::*;
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::Config;
use dj_core::registry::Registry;
use dj_core::value::Value;
use proptest::prelude::*;

/// Run `f` on a thread with a 2 MiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|_| panic!("the thread panicked"))
}

/// How one level of nesting wraps the level below.
#[derive(Clone, Copy, Debug)]
enum Wrap {
    List,
    Tuple,
    Set,
    DictValue,
    DictKey,
    Cell,
    Struct,
    Object,
    Record,
}

const WRAPS: [Wrap; 9] = [
    Wrap::List,
    Wrap::Tuple,
    Wrap::Set,
    Wrap::DictValue,
    Wrap::DictKey,
    Wrap::Cell,
    Wrap::Struct,
    Wrap::Object,
    Wrap::Record,
];

fn wrap(kind: Wrap, inner: Item) -> Item {
    match kind {
        Wrap::List => Item::List(vec![inner]),
        Wrap::Tuple => Item::Tuple(vec![Item::from(1_i64), inner]),
        Wrap::Set => Item::Set(vec![inner]),
        Wrap::DictValue => Item::Dict(vec![(Item::from("k"), inner)]),
        Wrap::DictKey => Item::Dict(vec![(inner, Item::None)]),
        Wrap::Cell => Item::Cell(CellArray {
            shape: vec![1, 1],
            items: vec![inner],
        }),
        Wrap::Struct => Item::Struct(StructArray {
            shape: vec![1, 1],
            fields: vec!["f".into()],
            elements: vec![vec![inner]],
        }),
        Wrap::Object => Item::Array(Array::new(vec![1], ArrayData::Object(vec![inner])).unwrap()),
        // Record columns must be arrays or record arrays: a record of the inner item when it is
        // one, otherwise an object array holding it.
        Wrap::Record => match inner {
            r @ Item::Record(_) => Item::Record(RecordArray {
                fields: vec!["c".into()],
                columns: vec![r],
            }),
            other => wrap(Wrap::Object, other),
        },
    }
}

/// A scalar wrapped once per entry of `kinds`, innermost last (built without recursion).
fn nested(kinds: &[Wrap]) -> Item {
    let mut item = Item::from(7_i64);
    for &k in kinds.iter().rev() {
        item = wrap(k, item);
    }
    item
}

fn lists(depth: usize) -> Item {
    nested(&vec![Wrap::List; depth])
}

/// A `dj0` blob of a scalar inside `depth` one-element lists, built in linear time.
fn deep_list_blob(depth: usize) -> Vec<u8> {
    let mut b = b"dj0\0".to_vec();
    b.reserve(depth * 17 + 1);
    for level in (1..=depth).rev() {
        b.push(0x02);
        b.extend_from_slice(&1u64.to_le_bytes());
        // The one element: a list of `level - 1` levels around `None` (1 byte), 17 bytes each.
        b.extend_from_slice(&(1 + 17 * (level as u64 - 1)).to_le_bytes());
    }
    b.push(0xFF);
    b
}

fn is_too_deep(e: &BlobError) -> bool {
    e.to_string().contains(&MAX_DEPTH.to_string())
}

#[test]
fn the_deepest_value_round_trips_and_one_level_more_is_refused_both_ways() {
    on_small_stack(|| {
        for kind in WRAPS {
            let deepest = nested(&vec![kind; MAX_DEPTH]);
            assert!(deepest.depth() >= MAX_DEPTH, "{kind:?}");
            let deepest = if deepest.depth() > MAX_DEPTH {
                // Records take two levels per wrap; trim to the limit with lists.
                nested(&vec![Wrap::List; MAX_DEPTH])
            } else {
                deepest
            };
            let blob = encode(&deepest).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(decode(&blob).unwrap(), deepest, "{kind:?}");
            let too_deep = wrap(Wrap::List, deepest);
            assert_eq!(too_deep.depth(), MAX_DEPTH + 1);
            let e = encode(&too_deep).unwrap_err();
            assert!(is_too_deep(&e), "{kind:?}: {e}");
        }
        assert_eq!(
            decode(&deep_list_blob(MAX_DEPTH)).unwrap().depth(),
            MAX_DEPTH
        );
        let e = decode(&deep_list_blob(MAX_DEPTH + 1)).unwrap_err();
        assert!(is_too_deep(&e), "{e}");
        // An empty container at the deepest level is fine.
        let mut empty_at_limit = Item::List(vec![]);
        for _ in 0..MAX_DEPTH {
            empty_at_limit = Item::List(vec![empty_at_limit]);
        }
        assert_eq!(empty_at_limit.depth(), MAX_DEPTH);
        assert!(encode(&empty_at_limit).is_ok());
    });
}

#[test]
fn values_nested_far_too_deep_are_errors_never_stack_overflows() {
    on_small_stack(|| {
        for depth in [10_000, 1_000_000] {
            let item = lists(depth);
            assert_eq!(item.depth(), depth);
            let e = encode(&item).unwrap_err();
            assert!(is_too_deep(&e), "{e}");
            assert!(!is_classic(&item));
            let e = decode(&deep_list_blob(depth)).unwrap_err();
            assert!(is_too_deep(&e), "{e}");
            // Every kind of container, mixed.
            let kinds: Vec<Wrap> = (0..depth).map(|i| WRAPS[i % WRAPS.len()]).collect();
            let mixed = nested(&kinds);
            assert!(is_too_deep(&encode(&mixed).unwrap_err()));
            // MATLAB-only nesting: `is_classic` walks all of it.
            let cells = nested(&vec![Wrap::Cell; depth]);
            assert!(!is_classic(&cells), "a scalar int is not classic");
            // Through the codec's value conversions (a JSON document nested as deep).
            let mut json = serde_json::Value::Null;
            for _ in 0..depth {
                json = serde_json::Value::Array(vec![json]);
            }
            let e = Item::try_from(Value::Json(json)).unwrap_err();
            assert!(is_too_deep(&e), "{e}");
            // Each of these is dropped here, on the small stack.
            drop((item, mixed, cells));
        }
        // A complex array whose parts are (invalidly) complex, a million times over.
        let mut data = ArrayData::F64(vec![1.0]);
        for _ in 0..1_000_000 {
            data = ArrayData::Complex(Box::new(data), Box::new(ArrayData::F64(vec![2.0])));
        }
        let item = Item::Array(Array {
            shape: vec![1],
            data,
        });
        assert!(encode(&item).is_err());
        drop(item);
    });
}

#[test]
fn the_codec_refuses_deep_values_on_encode() {
    on_small_stack(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let config = Arc::new(Config::default());
            let mut cx = CodecContext::for_tests(Arc::clone(&config));
            cx.field = "tree".into();
            let ty = ResolvedType::resolve(&"<blob>".parse().unwrap(), Registry::global(), &config)
                .unwrap();
            let ok = ty
                .encode(Value::domain(lists(MAX_DEPTH)), &cx)
                .await
                .unwrap();
            let back = ty.decode(ok, &cx).await.unwrap();
            assert_eq!(back.as_domain::<Item>().unwrap().depth(), MAX_DEPTH);
            for depth in [MAX_DEPTH + 1, 10_000, 1_000_000] {
                // The caller keeps a handle on the value (as a row does): nothing is copied.
                let value = Value::domain(lists(depth));
                let e = ty.encode(value.clone(), &cx).await.unwrap_err();
                let m = e.to_string();
                assert!(m.contains("blob") && m.contains("256"), "{m}");
                assert!(m.contains("tree"), "the attribute is named: {m}");
            }
        });
    });
}

#[cfg(feature = "serde")]
mod serde_limits {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    enum Chain {
        End,
        Link(Box<Chain>),
    }

    fn chain(n: usize) -> Chain {
        let mut c = Chain::End;
        for _ in 0..n {
            c = Chain::Link(Box::new(c));
        }
        c
    }

    /// Drop a chain without recursion.
    fn unchain(mut c: Chain) {
        while let Chain::Link(next) = c {
            c = *next;
        }
    }

    #[derive(Deserialize, Debug)]
    struct SelfWrapped(#[allow(dead_code)] Option<Box<SelfWrapped>>);

    #[test]
    fn serde_conversions_stop_at_the_limit() {
        on_small_stack(|| {
            // Each link is a one-entry dict: 256 links fit, 257 do not.
            let c = chain(MAX_DEPTH);
            let item = to_item(&c).unwrap();
            assert_eq!(item.depth(), MAX_DEPTH);
            let back: Chain = from_item(&decode(&encode(&item).unwrap()).unwrap()).unwrap();
            unchain(back);
            unchain(c);
            for n in [MAX_DEPTH + 1, 10_000] {
                let c = chain(n);
                let e = to_item(&c).unwrap_err();
                assert!(is_too_deep(&e), "{e}");
                unchain(c);
            }
            // Reading: an item deeper than the limit, built in memory.
            for depth in [MAX_DEPTH + 1, 10_000, 1_000_000] {
                let item = lists(depth);
                let e = from_item::<serde_json::Value>(&item).unwrap_err();
                assert!(is_too_deep(&e), "{e}");
            }
            let ok: serde_json::Value = from_item(&lists(MAX_DEPTH)).unwrap();
            assert!(ok.is_array());
            // A type that wraps itself reads a shallow item without endless recursion.
            let e = from_item::<SelfWrapped>(&Item::from(1_i64)).unwrap_err();
            assert!(e.to_string().contains("wrappers"), "{e}");
        });
    }
}

fn kinds() -> impl Strategy<Value = Vec<Wrap>> {
    proptest::collection::vec(
        proptest::sample::select(WRAPS.to_vec()),
        0..(MAX_DEPTH + 40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Encode accepts exactly what decode reads back: a value within the limit round-trips at its
    /// depth; one beyond it is refused by encode, and its blob (written by hand) by decode.
    #[test]
    fn encode_and_decode_share_one_limit(kinds in kinds()) {
        let (ok, depth) = on_small_stack(move || {
            let item = nested(&kinds);
            let depth = item.depth();
            let ok = match encode(&item) {
                Ok(blob) => {
                    let back = decode(&blob).unwrap();
                    assert_eq!(back.depth(), depth);
                    assert_eq!(back, item);
                    true
                }
                Err(e) => {
                    assert!(is_too_deep(&e), "{e}");
                    false
                }
            };
            (ok, depth)
        });
        prop_assert_eq!(ok, depth <= MAX_DEPTH);
    }

    #[test]
    fn hand_written_deep_blobs_decode_up_to_the_limit(depth in 0usize..(MAX_DEPTH + 40)) {
        let got = on_small_stack(move || decode(&deep_list_blob(depth)).map(|i| i.depth()));
        match got {
            Ok(d) => prop_assert!(d == depth && depth <= MAX_DEPTH),
            Err(e) => prop_assert!(depth > MAX_DEPTH && is_too_deep(&e), "{}", e),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The decompressed-size limit
// ------------------------------------------------------------------------------------------------

/// A `ZL123` blob of `n` zero bytes of `uint8` array data, compressed, built without holding the
/// uncompressed bytes; the header may state another length.
fn zeros_blob(n: u64, declared: Option<u64>) -> Vec<u8> {
    let mut plain_head = b"mYm\0A".to_vec();
    plain_head.extend_from_slice(&1u64.to_le_bytes());
    let elements = n - (4 + 1 + 8 + 8 + 4 + 4);
    plain_head.extend_from_slice(&elements.to_le_bytes());
    plain_head.extend_from_slice(&9u32.to_le_bytes()); // uint8
    plain_head.extend_from_slice(&0u32.to_le_bytes());
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&plain_head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = elements;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        z.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    let body = z.finish().unwrap();
    let mut b = b"ZL123\0".to_vec();
    b.extend_from_slice(&declared.unwrap_or(n).to_le_bytes());
    b.extend_from_slice(&body);
    b
}

fn limited(limit: u64) -> DecodeOptions {
    DecodeOptions {
        max_decompressed_size: limit,
        ..DecodeOptions::default()
    }
}

#[test]
fn compressed_blobs_over_the_limit_are_refused_with_the_setting_named() {
    let blob = zeros_blob(8 << 20, None);
    assert!(blob.len() < 64 << 10, "{} bytes", blob.len());
    // Within the limit (and at exactly the limit): read.
    for limit in [8 << 20, 9 << 20] {
        let item = decode_with(&blob, limited(limit)).unwrap();
        let Item::Array(a) = &item else { panic!() };
        assert_eq!(a.data.len() as u64, (8 << 20) - 29);
    }
    // Over it: refused, naming both sizes and the configuration key.
    let e = decode_with(&blob, limited((8 << 20) - 1)).unwrap_err();
    assert_eq!(
        e,
        BlobError::TooLarge {
            declared: 8 << 20,
            limit: (8 << 20) - 1
        }
    );
    let m = e.to_string();
    assert!(m.contains("blob_max_decompressed_size"), "{m}");
    assert!(m.contains(&(8u64 << 20).to_string()), "{m}");
    // A header that understates the size: inflating stops one byte past it.
    let lying = zeros_blob(8 << 20, Some(1 << 20));
    let e = decode_with(&lying, limited(2 << 20)).unwrap_err();
    assert!(
        matches!(e, BlobError::SizeMismatch { expected, actual } if expected == 1 << 20 && actual == (1 << 20) + 1),
        "{e}"
    );
    // The default reads large legitimate blobs.
    assert_eq!(
        DecodeOptions::default().max_decompressed_size,
        DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE
    );
    assert!(decode(&blob).is_ok());
}

#[test]
fn the_setting_is_read_from_the_configuration_and_used_by_the_codec() {
    let dir = std::path::Path::new(".");
    let config =
        dj_config::Config::from_json_str(r#"{"blob_max_decompressed_size": 1048576}"#, dir)
            .unwrap();
    assert_eq!(config.blob_max_decompressed_size, 1 << 20);
    assert_eq!(
        Config::default().blob_max_decompressed_size,
        DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE
    );
    assert_eq!(
        dj_config::Config::from_json_str(r#"{"blob_max_decompressed_size": null}"#, dir)
            .unwrap()
            .blob_max_decompressed_size,
        DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE
    );
    for bad in ["0", "-5", "\"1GB\"", "1.5"] {
        let e = dj_config::Config::from_json_str(
            &format!(r#"{{"blob_max_decompressed_size": {bad}}}"#),
            dir,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("blob_max_decompressed_size"),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        config.redacted_json()["blob_max_decompressed_size"],
        1 << 20
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = config.core();
        let mut cx = CodecContext::for_tests(Arc::clone(&config));
        cx.field = "frames".into();
        let ty =
            ResolvedType::resolve(&"<blob>".parse().unwrap(), Registry::global(), &config).unwrap();
        let small = ty
            .decode(Value::Bytes(zeros_blob(1 << 20, None).into()), &cx)
            .await
            .unwrap();
        assert!(small.as_domain::<Item>().is_some());
        let e = ty
            .decode(Value::Bytes(zeros_blob(2 << 20, None).into()), &cx)
            .await
            .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("blob_max_decompressed_size"), "{m}");
        assert!(m.contains("frames"), "{m}");
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A compressed blob reads exactly when its size is within the limit, whatever the two are;
    /// a header that understates the size is a mismatch, never a larger read.
    #[test]
    fn the_size_limit_decides_exactly(n in 29u64..300_000, limit in 1u64..400_000, under in 0u64..1000) {
        let blob = zeros_blob(n, None);
        match decode_with(&blob, limited(limit)) {
            Ok(_) => prop_assert!(n <= limit),
            Err(e) => prop_assert_eq!(e, BlobError::TooLarge { declared: n, limit }),
        }
        let stated = n.saturating_sub(under + 1);
        let lying = zeros_blob(n, Some(stated));
        let e = decode_with(&lying, limited(n)).unwrap_err();
        prop_assert!(
            matches!(e, BlobError::SizeMismatch { expected, actual } if expected == stated && actual == stated + 1),
            "{}", e
        );
    }
}
