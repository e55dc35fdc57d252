//! A small command-line peer for the Python interop check (`tests/interop/test_blob_roundtrip.py`).
//!
//! - `blob_tool repack DIR`: decode every `*.blob` in DIR and write it back re-encoded
//!   (`compat` mode) as `*.rust.blob`.
//! - `blob_tool generate DIR N SEED`: write N random items as `rust_K.blob`.
//! - `blob_tool check DIR`: decode every `rust_K.py.blob` (Python's repack of `rust_K.blob`) and
//!   compare it with the original item.

use std::path::Path;
use std::process::ExitCode;

use dj_codec_blob::{
    Array, ArrayData, Compression, EncodeOptions, Item, PyInt, Temporal, decode, encode_with,
};

fn compat(item: &Item) -> Result<Vec<u8>, String> {
    encode_with(
        item,
        EncodeOptions {
            compression: Compression::Compat,
        },
    )
    .map_err(|e| e.to_string())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6
    }
}

fn random_item(r: &mut Rng, depth: u32) -> Item {
    let leafy = depth >= 3;
    match r.below(if leafy { 9 } else { 13 }) {
        0 => Item::None,
        1 => Item::Bool(r.below(2) == 1),
        2 => Item::from(r.next() as i64 >> r.below(60)),
        3 => Item::Int(PyInt::from(
            (i128::from(r.next()) << 40) - i128::from(r.next()),
        )),
        4 => Item::Float(r.float()),
        5 => Item::Str(
            (0..r.below(12))
                .map(|_| char::from_u32(0x61 + r.below(26) as u32).unwrap_or('x'))
                .chain(['é', '☃'])
                .collect(),
        ),
        6 => Item::Bytes((0..r.below(40)).map(|_| r.next() as u8).collect()),
        7 => {
            let (a, b) = (1 + r.below(4), 1 + r.below(5));
            Item::Array(Array {
                shape: vec![a, b],
                data: ArrayData::F64((0..a * b).map(|_| r.float()).collect()),
            })
        }
        8 => Item::Temporal(Temporal {
            date: 20_240_102,
            time: 30_405_000_006,
        }),
        9 => Item::List((0..r.below(4)).map(|_| random_item(r, depth + 1)).collect()),
        10 => Item::Tuple((0..r.below(4)).map(|_| random_item(r, depth + 1)).collect()),
        11 => Item::Dict(
            (0..r.below(4))
                .map(|i| (Item::Str(format!("k{i}")), random_item(r, depth + 1)))
                .collect(),
        ),
        _ => {
            let n = 1 + r.below(300);
            Item::Array(Array {
                shape: vec![n],
                data: ArrayData::I32((0..n).map(|_| r.next() as i32).collect()),
            })
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let dir = Path::new(args.get(1).ok_or("missing DIR")?);
    let io = |e: std::io::Error| e.to_string();
    match args.first().map(String::as_str) {
        Some("repack") => {
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                if !name.ends_with(".blob") || name.ends_with(".rust.blob") {
                    continue;
                }
                let item = decode(&std::fs::read(&path).map_err(io)?)
                    .map_err(|e| format!("{name}: {e}"))?;
                std::fs::write(path.with_extension("rust.blob"), compat(&item)?).map_err(io)?;
            }
            Ok(())
        }
        Some("generate") => {
            let n: u64 = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .ok_or("missing N")?;
            let seed: u64 = args
                .get(3)
                .and_then(|s| s.parse().ok())
                .ok_or("missing SEED")?;
            let mut r = Rng(seed | 1);
            for k in 0..n {
                std::fs::write(
                    dir.join(format!("rust_{k}.blob")),
                    compat(&random_item(&mut r, 0))?,
                )
                .map_err(io)?;
            }
            Ok(())
        }
        Some("check") => {
            let mut checked = 0;
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let Some(stem) = name.strip_suffix(".py.blob") else {
                    continue;
                };
                let ours = decode(&std::fs::read(dir.join(format!("{stem}.blob"))).map_err(io)?)
                    .map_err(|e| e.to_string())?;
                let theirs = decode(&std::fs::read(&path).map_err(io)?)
                    .map_err(|e| format!("{name}: {e}"))?;
                if ours != theirs {
                    return Err(format!(
                        "{stem}: Python's repack decodes to {theirs:?}, expected {ours:?}"
                    ));
                }
                checked += 1;
            }
            if checked == 0 {
                return Err("no *.py.blob files to check".into());
            }
            println!("checked {checked} Rust-made blobs repacked by Python");
            Ok(())
        }
        _ => Err("usage: blob_tool repack DIR | generate DIR N SEED | check DIR".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blob_tool: {e}");
            ExitCode::FAILURE
        }
    }
}
