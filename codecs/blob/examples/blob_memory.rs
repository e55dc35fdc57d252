//! Peak memory of encoding one large float64 array: `cargo run --release -p dj-codec-blob
//! --example blob_memory -- [MiB]` (default 1024). Prints the array size, the blob size and the
//! process's peak resident memory (VmHWM) as a multiple of the array size.

use std::process::ExitCode;

use dj_codec_blob::{Item, encode};

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let n = mib * 1024 * 1024 / 8;
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<f64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64
        })
        .collect();
    let item = Item::from(data);
    let blob = match encode(&item) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("blob_memory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(peak) = vm_hwm_kib() else {
        eprintln!("blob_memory: no /proc/self/status");
        return ExitCode::FAILURE;
    };
    let array = (n * 8) as f64;
    println!(
        "array {mib} MiB, blob {:.1} MiB, peak RSS {:.1} MiB = {:.2} x the array",
        blob.len() as f64 / 1048576.0,
        peak as f64 / 1024.0,
        peak as f64 * 1024.0 / array
    );
    ExitCode::SUCCESS
}
