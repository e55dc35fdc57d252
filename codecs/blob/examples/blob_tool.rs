//! A small command-line peer for the Python interop check (`tests/interop/test_blob_roundtrip.py`).
//!
//! - `blob_tool repack DIR`: decode every `py_K.blob` in DIR and write it back re-encoded, in
//!   `compat` mode as `py_K.rust.blob` and in `fast` mode as `py_K.rust-fast.blob`.
//! - `blob_tool generate DIR N SEED`: write N random items as `rust_K.blob` (`compat`) and
//!   `rust_K.fast.blob` (`fast`).
//! - `blob_tool check DIR`: decode every `rust_K.py.blob` (Python's repack of `rust_K.blob`) and
//!   compare it with the original item.

use std::path::Path;
use std::process::ExitCode;

use dj_codec_blob::{
    Array, ArrayData, CellArray, Compression, EncodeOptions, Item, PyInt, RecordArray, StructArray,
    Temporal, decode, encode_with,
};
use uuid::Uuid;

fn encode_mode(item: &Item, compression: Compression) -> Result<Vec<u8>, String> {
    encode_with(item, EncodeOptions { compression }).map_err(|e| e.to_string())
}

fn compat(item: &Item) -> Result<Vec<u8>, String> {
    encode_mode(item, Compression::Compat)
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
    fn shape(&mut self) -> (Vec<u64>, usize) {
        let shape: Vec<u64> = (0..self.below(4)).map(|_| self.below(4)).collect();
        let n = shape.iter().product::<u64>() as usize;
        (shape, n)
    }
}

/// An integer as DataJoint writes it: `bit_length // 8 + 1` little-endian two's complement bytes.
fn python_int(mut bytes: Vec<u8>) -> PyInt {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = bytes.clone();
    if negative {
        let mut carry = true;
        for b in &mut magnitude {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    let bits = magnitude
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i * 8 + 8 - magnitude[i].leading_zeros() as usize);
    bytes.resize(bits / 8 + 1, if negative { 0xFF } else { 0 });
    PyInt::from_le_bytes(bytes)
}

fn numeric(r: &mut Rng, n: usize) -> ArrayData {
    let v = |r: &mut Rng| -> Vec<u64> { (0..n).map(|_| r.next()).collect() };
    match r.below(14) {
        0 => ArrayData::Bool(v(r).into_iter().map(|x| (x & 1) as u8).collect()),
        1 => ArrayData::I8(v(r).into_iter().map(|x| x as i8).collect()),
        2 => ArrayData::U8(v(r).into_iter().map(|x| x as u8).collect()),
        3 => ArrayData::I16(v(r).into_iter().map(|x| x as i16).collect()),
        4 => ArrayData::U16(v(r).into_iter().map(|x| x as u16).collect()),
        5 => ArrayData::I32(v(r).into_iter().map(|x| x as i32).collect()),
        6 => ArrayData::U32(v(r).into_iter().map(|x| x as u32).collect()),
        7 => ArrayData::I64(v(r).into_iter().map(|x| x as i64).collect()),
        8 => ArrayData::U64(v(r)),
        9 => ArrayData::F32((0..n).map(|_| r.float() as f32).collect()),
        10 => ArrayData::F64((0..n).map(|_| r.float()).collect()),
        11 => ArrayData::Complex(
            Box::new(ArrayData::F64((0..n).map(|_| r.float()).collect())),
            Box::new(ArrayData::F64((0..n).map(|_| r.float()).collect())),
        ),
        12 => ArrayData::Complex(
            Box::new(ArrayData::F32((0..n).map(|_| r.float() as f32).collect())),
            Box::new(ArrayData::F32((0..n).map(|_| r.float() as f32).collect())),
        ),
        _ => ArrayData::DateTime64 {
            unit: r.below(13) as u8,
            ticks: (0..n)
                .map(|_| r.below(2_000_000) as i64 - 1_000_000)
                .collect(),
        },
    }
}

/// A scalar item (no arrays): DataJoint cannot rebuild object arrays whose elements are arrays.
fn scalar(r: &mut Rng) -> Item {
    pick_leaf(r, 11)
}

fn leaf(r: &mut Rng) -> Item {
    pick_leaf(r, 14)
}

fn pick_leaf(r: &mut Rng, kinds: u64) -> Item {
    match r.below(kinds) {
        0 => Item::None,
        1 => Item::Bool(r.below(2) == 1),
        2 => Item::from(r.next() as i64 >> r.below(63)),
        3 => Item::Int(python_int(
            (0..1 + r.below(40)).map(|_| r.next() as u8).collect(),
        )),
        4 => Item::Float(r.float()),
        5 => Item::Str(
            (0..r.below(12))
                .map(|_| char::from_u32(0x61 + r.below(26) as u32).unwrap_or('x'))
                .chain(['é', '☃', '😀'])
                .collect(),
        ),
        6 => Item::Bytes((0..r.below(40)).map(|_| r.next() as u8).collect()),
        7 => Item::Complex(r.float(), -r.float()),
        8 => Item::Decimal(format!(
            "{}.{:03}",
            r.below(2_000_000) as i64 - 1_000_000,
            r.below(1000)
        )),
        9 => Item::Uuid(Uuid::from_u64_pair(r.next(), r.next())),
        // Date and time, date only, or time only (DataJoint reads "neither" as None).
        10 => Item::Temporal(
            [
                Temporal {
                    date: 20_240_229,
                    time: 30_405_000_006,
                },
                Temporal {
                    date: 19_991_231,
                    time: -1,
                },
                Temporal {
                    date: -1,
                    time: 235_959_999_999,
                },
            ][r.below(3) as usize],
        ),
        _ => {
            let (shape, n) = r.shape();
            let data = numeric(r, n);
            Item::Array(Array { shape, data })
        }
    }
}

fn random_item(r: &mut Rng, depth: u32) -> Item {
    if depth >= 3 {
        return leaf(r);
    }
    let items =
        |r: &mut Rng, n: u64| -> Vec<Item> { (0..n).map(|_| random_item(r, depth + 1)).collect() };
    match r.below(12) {
        0 => {
            let n = r.below(4);
            Item::List(items(r, n))
        }
        1 => {
            let n = r.below(4);
            Item::Tuple(items(r, n))
        }
        2 => Item::Dict(
            (0..r.below(4))
                .map(|i| {
                    let key = if i % 2 == 0 {
                        Item::Str(format!("k{i}"))
                    } else {
                        Item::from(i)
                    };
                    (key, random_item(r, depth + 1))
                })
                .collect(),
        ),
        // Distinct, Python-hashable elements.
        3 => Item::Set(
            (0..r.below(4))
                .map(|i| Item::Str(format!("s{i}")))
                .collect(),
        ),
        4 => {
            let (shape, n) = r.shape();
            Item::Array(Array {
                shape,
                data: ArrayData::Object((0..n).map(|_| scalar(r)).collect()),
            })
        }
        5 => {
            let (shape, n) = r.shape();
            let columns = (0..1 + r.below(3))
                .map(|_| {
                    let data = numeric(r, n);
                    Item::Array(Array {
                        shape: shape.clone(),
                        data,
                    })
                })
                .collect::<Vec<_>>();
            Item::Record(RecordArray {
                fields: (0..columns.len()).map(|i| format!("f{i}")).collect(),
                columns,
            })
        }
        // Not empty: DataJoint reads a 1x0 cell array back as a 0-d one.
        6 => {
            let n = 1 + r.below(3);
            let cells = (0..n)
                .map(|_| {
                    let k = 1 + r.below(4);
                    let data = numeric(r, k as usize);
                    Item::Array(Array {
                        shape: vec![1, k],
                        data,
                    })
                })
                .collect();
            Item::Cell(CellArray {
                shape: vec![1, n],
                items: cells,
            })
        }
        7 => {
            let n = 1 + r.below(3);
            Item::Struct(StructArray {
                shape: vec![1, n],
                fields: vec!["x".into(), "y".into()],
                elements: (0..n)
                    .map(|_| {
                        vec![
                            Item::from(vec![r.float(), r.float()]),
                            random_item(r, depth + 1),
                        ]
                    })
                    .collect(),
            })
        }
        8 => {
            // Large, and compressible half of the time.
            let n = 200 + r.below(3000);
            let data = if r.below(2) == 0 {
                ArrayData::I64((0..n as i64).collect())
            } else {
                ArrayData::F64((0..n).map(|_| r.float()).collect())
            };
            Item::Array(Array {
                shape: vec![n],
                data,
            })
        }
        _ => leaf(r),
    }
}

/// Sets compare without order: sort their elements by encoding.
fn canonical(item: &Item) -> Item {
    let all = |v: &[Item]| v.iter().map(canonical).collect::<Vec<_>>();
    match item {
        Item::Set(v) => {
            let mut v = all(v);
            v.sort_by_key(|i| encode_mode(i, Compression::None).unwrap_or_default());
            Item::Set(v)
        }
        Item::List(v) => Item::List(all(v)),
        Item::Tuple(v) => Item::Tuple(all(v)),
        Item::Dict(p) => Item::Dict(
            p.iter()
                .map(|(k, v)| (canonical(k), canonical(v)))
                .collect(),
        ),
        Item::Cell(c) => Item::Cell(CellArray {
            shape: c.shape.clone(),
            items: all(&c.items),
        }),
        Item::Struct(s) => Item::Struct(StructArray {
            shape: s.shape.clone(),
            fields: s.fields.clone(),
            elements: s.elements.iter().map(|e| all(e)).collect(),
        }),
        Item::Array(Array {
            shape,
            data: ArrayData::Object(v),
        }) => Item::Array(Array {
            shape: shape.clone(),
            data: ArrayData::Object(all(v)),
        }),
        other => other.clone(),
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
                if !name.starts_with("py_") || name.matches('.').count() != 1 {
                    continue;
                }
                let item = decode(&std::fs::read(&path).map_err(io)?)
                    .map_err(|e| format!("{name}: {e}"))?;
                std::fs::write(path.with_extension("rust.blob"), compat(&item)?).map_err(io)?;
                std::fs::write(
                    path.with_extension("rust-fast.blob"),
                    encode_mode(&item, Compression::Fast)?,
                )
                .map_err(io)?;
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
                let item = random_item(&mut r, 0);
                std::fs::write(dir.join(format!("rust_{k}.blob")), compat(&item)?).map_err(io)?;
                std::fs::write(
                    dir.join(format!("rust_{k}.fast.blob")),
                    encode_mode(&item, Compression::Fast)?,
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
                let (ours, theirs) = (canonical(&ours), canonical(&theirs));
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
