//! A small driver for `<blob@>` in a `file` store, without a database: the codec chain of the
//! objects benches (`crates/schema/benches/objects.rs`) alone, for load-independent figures (CPU
//! time, instruction counts under `valgrind --tool=callgrind`, syscall counts under `strace -c
//! -f`).
//!
//! ```text
//! cargo run --release -p dj-codec-blob --example store_driver -- PHASES [N] [BYTES] [MODE] [DIR]
//! ```
//!
//! `PHASES` is `insert`, `fetch` (inserts first, untimed when `insert` is not named too),
//! `floor` (the durable write and the read of the same blobs as plain files, as the benches'
//! floors), or several of them comma-separated; `N` values (default 1000) of `BYTES` bytes (default 65536) of random float64
//! noise, as the benches write; `MODE` is `fast` (default) or `compat`; `DIR` the store's
//! directory (default: a fresh directory under the current one; it should be on a real disk, not
//! tmpfs, so that fsync costs what it does). Values are encoded and decoded 16 at a time, as a
//! table does (`transfer_concurrency`), on a two-worker runtime. For each timed phase it prints
//! the wall time and the process's CPU time (user + system) spent in it.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dj_codec_blob::{Compression, Item};
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::Registry;
use dj_core::value::Value;
use futures::{StreamExt, TryStreamExt};

use dj_codec_hash as _;
use dj_store_file as _;

/// Values in flight at once: the configuration's default `transfer_concurrency`.
const FAN_OUT: usize = 16;

/// The process's CPU time so far, user and system (every thread).
#[allow(unsafe_code)]
fn cpu_time() -> (Duration, Duration) {
    // SAFETY: `getrusage` fills the struct it is given; a zeroed `rusage` is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a `rusage` the call may write.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Wall time and CPU time since a start.
struct Clock {
    wall: Instant,
    cpu: (Duration, Duration),
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn report(&self, what: &str) {
        let wall = self.wall.elapsed();
        let (user, sys) = cpu_time();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (user, sys) = (user - self.cpu.0, sys - self.cpu.1);
        println!(
            "{what}: wall {:.1} ms, cpu {:.1} ms (user {:.1}, sys {:.1})",
            ms(wall),
            ms(user + sys),
            ms(user),
            ms(sys)
        );
    }
}

/// `n` arrays of `bytes` bytes of float64 noise uniform in [-0.5, 0.5].
fn arrays(n: usize, bytes: usize) -> Vec<Value> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            let data: Vec<f64> = (0..bytes / 8)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .collect();
            Value::domain(Item::from(data))
        })
        .collect()
}

struct Args {
    floor: bool,
    insert: bool,
    fetch: bool,
    n: usize,
    bytes: usize,
    compression: Compression,
    dir: Option<std::path::PathBuf>,
}

fn args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let phases = a.first().map_or("insert,fetch", String::as_str);
    let insert = phases.split(',').any(|p| p == "insert");
    let fetch = phases.split(',').any(|p| p == "fetch");
    let floor = phases.split(',').any(|p| p == "floor");
    if !insert && !fetch && !floor {
        return Err(format!(
            "unknown phases `{phases}`: insert, fetch, floor or several, comma-separated"
        ));
    }
    let num = |i: usize, default: usize| -> Result<usize, String> {
        a.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("`{s}`: {e}"))
        })
    };
    let compression = match a.get(3).map_or("fast", String::as_str) {
        "fast" => Compression::Fast,
        "compat" => Compression::Compat,
        other => return Err(format!("unknown mode `{other}`: fast or compat")),
    };
    Ok(Args {
        floor,
        insert,
        fetch,
        n: num(1, 1000)?,
        bytes: num(2, 64 * 1024)?,
        compression,
        dir: a.get(4).map(Into::into),
    })
}

async fn run(a: Args, dir: &std::path::Path) -> dj_core::Result<()> {
    let mut config = Config::default();
    config.stores.specs.insert(
        "files".into(),
        StoreSpec::new("files", "file", dir.display().to_string()),
    );
    config.blob_compression = a.compression;
    let config = Arc::new(config);
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.schema = "driver".into();
    cx.field = "data".into();
    cx.store = Some("files".into());
    let ty = ResolvedType::resolve(&"<blob@files>".parse()?, Registry::global(), &config)?;
    let (ty, cx) = (&ty, &cx);

    let values = arrays(a.n, a.bytes);
    if a.floor {
        floors(&values, a.compression, &dir.join("floor")).await?;
        if !a.insert && !a.fetch {
            return Ok(());
        }
    }
    let clock = Clock::start();
    let stored: Vec<Value> = futures::stream::iter(values)
        .map(|v| ty.encode(v, cx))
        .buffered(FAN_OUT)
        .try_collect()
        .await?;
    if a.insert {
        clock.report("insert");
    }
    if a.fetch {
        let clock = Clock::start();
        let n = futures::stream::iter(stored)
            .map(|v| ty.decode(v, cx))
            .buffered(FAN_OUT)
            .try_fold(0usize, |n, v| async move {
                Ok(n + usize::from(v.as_domain::<Item>().is_some()))
            })
            .await?;
        clock.report("fetch");
        if n != a.n {
            return Err(dj_core::Error::codec("blob", "a fetched value is no blob"));
        }
    }
    Ok(())
}

/// Write `data` durably as `dir/name`, as a durable create-if-absent must: a staging file
/// created, written and fsync'd, hard-linked to its name, the staging name removed, and the
/// directory fsync'd.
fn durable_write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let staging = dir.join(format!("{name}#1"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staging)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::hard_link(&staging, dir.join(name))?;
    std::fs::remove_file(&staging)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Read a whole file into a fresh buffer (not zeroed first).
fn read_file(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len() as usize;
    let mut buf = Vec::with_capacity(len);
    f.read_to_end(&mut buf)?;
    Ok(())
}

/// Run `f(i)` for every `i` in `0..n` on the blocking pool, [`FAN_OUT`] at a time.
async fn fan_out(
    n: usize,
    f: impl Fn(usize) -> std::io::Result<()> + Send + Sync + 'static,
) -> std::io::Result<()> {
    let f = Arc::new(f);
    futures::stream::iter(0..n)
        .map(|i| {
            let f = Arc::clone(&f);
            async move {
                tokio::task::spawn_blocking(move || f(i))
                    .await
                    .map_err(std::io::Error::other)?
            }
        })
        .buffer_unordered(FAN_OUT)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// The machine's floors for the blobs of `values`: their durable write into `dir`, then the read
/// of the files written.
async fn floors(values: &[Value], compression: Compression, dir: &Path) -> dj_core::Result<()> {
    let options = dj_codec_blob::EncodeOptions { compression };
    let blobs: Vec<Vec<u8>> = values
        .iter()
        .filter_map(|v| v.as_domain::<Item>())
        .map(|item| dj_codec_blob::encode_with(item, options))
        .collect::<Result<_, _>>()?;
    let blobs = Arc::new(blobs);
    let io = |e: std::io::Error| dj_core::Error::codec("blob", format!("floor: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let n = blobs.len();
    let d = dir.to_path_buf();
    let clock = Clock::start();
    fan_out(n, move |i| durable_write(&d, &format!("o{i}"), &blobs[i]))
        .await
        .map_err(io)?;
    clock.report("floor: durable write");
    let d = dir.to_path_buf();
    let clock = Clock::start();
    fan_out(n, move |i| read_file(&d.join(format!("o{i}"))))
        .await
        .map_err(io)?;
    clock.report("floor: read");
    Ok(())
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("store_driver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fresh = match &a.dir {
        Some(_) => None,
        None => match tempfile::tempdir_in(".") {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("store_driver: a directory for the store: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let dir = match (&a.dir, &fresh) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.path().to_path_buf(),
        (None, None) => return ExitCode::FAILURE,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("store_driver: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(a, &dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_driver: {e}");
            ExitCode::FAILURE
        }
    }
}
