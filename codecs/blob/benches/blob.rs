//! Blob encode/decode throughput (`cargo bench -p dj-codec-blob`, or `cargo xtask bench`).
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dj_codec_blob::{Compression, EncodeOptions, Item, decode, encode_into, encode_with};

/// Deterministic standard-normal samples (xorshift + Box-Muller), like `np.random.randn`.
pub fn normal(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next(), next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

fn big_array(c: &mut Criterion) {
    let n = 64 * 1024 * 1024 / 8;
    let item = Item::from(normal(n, 1));
    let none = EncodeOptions {
        compression: Compression::None,
    };
    let blob = encode_with(&item, none).unwrap();
    let mut g = c.benchmark_group("64 MiB float64, uncompressed");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(blob.len() as u64));
    g.bench_function("encode", |b| b.iter(|| encode_with(&item, none).unwrap()));
    // The same into one reused buffer: no fresh pages to fault in.
    let mut out = Vec::new();
    g.bench_function("encode_into a reused buffer", |b| {
        b.iter(|| {
            encode_into(&item, none, &mut out).unwrap();
            out.len()
        })
    });
    g.bench_function("decode", |b| b.iter(|| decode(&blob).unwrap()));
    g.finish();
}

fn hundred_arrays(c: &mut Criterion) {
    // 100 random-normal 1 MiB float64 arrays, as `py_blob_bench.py` packs them in DataJoint.
    let items: Vec<Item> = (0..100)
        .map(|i| Item::from(normal(1024 * 1024 / 8, i + 7)))
        .collect();
    let mut g = c.benchmark_group("100 x 1 MiB random normal float64");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(100 * 1024 * 1024));
    for (name, compression) in [("fast", Compression::Fast), ("compat", Compression::Compat)] {
        let opts = EncodeOptions { compression };
        g.bench_function(format!("encode {name}"), |b| {
            b.iter(|| {
                items
                    .iter()
                    .map(|i| encode_with(i, opts).unwrap().len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn thousand_small_arrays(c: &mut Criterion) {
    // 1000 random-normal 64 KiB float64 arrays: too noisy to compress, so `fast` should cost
    // about a copy; and 1000 slowly varying integer arrays, which it must still compress.
    let noisy: Vec<Item> = (0..1000)
        .map(|i| Item::from(normal(64 * 1024 / 8, i + 7)))
        .collect();
    let smooth: Vec<Item> = (0..1000_i64)
        .map(|i| Item::from((0..8192_i64).map(|j| (i + j) / 64).collect::<Vec<i64>>()))
        .collect();
    let mut g = c.benchmark_group("1000 x 64 KiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(1000 * 64 * 1024));
    let fast = EncodeOptions {
        compression: Compression::Fast,
    };
    for (name, items) in [("noisy float64", &noisy), ("smooth int64", &smooth)] {
        let mut out = Vec::new();
        g.bench_function(format!("encode fast {name}"), |b| {
            b.iter(|| {
                items
                    .iter()
                    .map(|i| {
                        encode_into(i, fast, &mut out).unwrap();
                        out.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, big_array, hundred_arrays, thousand_small_arrays);
criterion_main!(benches);
