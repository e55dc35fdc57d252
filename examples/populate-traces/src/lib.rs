//! A computed pipeline on dj-rs: a Manual `Session` table holds raw traces as `<blob@>` objects
//! in a store, and a Computed `FilteredTrace` table holds each trace smoothed by a moving
//! average, filled by `populate`.
//!
//! ```text
//! Session        session_id : int32 --- sampling_rate : float64, trace : <blob@>
//!   └─ FilteredTrace (Computed)  -> Session --- window : int32, filtered : <blob@>
//! ```
//!
//! The binary (`src/main.rs`) seeds sessions, populates in one process with a progress bar, or
//! starts N worker processes of itself that share DataJoint's job queue `~~filtered_trace`.
//! This library holds what the binary and its tests share: the definitions, the `make`, the
//! configuration with its embedded defaults, and the traces.

use std::path::Path;

use datajoint::blob::Item;
use datajoint::config::ConfigLoader;
use datajoint::config::DatabaseBackend;
use datajoint::schema::populate::{Make, MakeContext, MakeResult};
use datajoint::schema::{Connection, Row, Table, Tier};
use datajoint::{Config, Result, Value};

/// The schema used when `--schema` is not given.
pub const DEFAULT_SCHEMA: &str = "populate_traces";

/// The defaults that apply where neither `datajoint.json` nor the `DJ_*` environment says
/// otherwise: an SQLite file and a local file store, both in the working directory.
pub const DEFAULT_CONFIG: &str = r#"{
    "database": {"backend": "sqlite", "path": "populate_traces.sqlite"},
    "stores": {
        "default": "traces",
        "traces": {"protocol": "file", "location": "populate_traces_store"}
    }
}"#;

/// The folder of the embedded defaults' file store, in the working directory.
pub const DEFAULT_STORE_DIR: &str = "populate_traces_store";

/// `Session`: one recording and its raw trace.
pub const SESSION: &str = "
# a recording session and its raw trace
session_id : int32
---
sampling_rate : float64     # Hz
trace : <blob@>             # raw samples, in the default store
";

/// `FilteredTrace`: the trace of a session smoothed by a centred moving average.
pub const FILTERED_TRACE: &str = "
# the session's trace smoothed by a centred moving average
-> Session
---
window : int32              # samples averaged
filtered : <blob@>          # the smoothed trace, in the default store
";

/// The configuration: `datajoint.json` (searched upward from `dir`, or `file` when given),
/// the `DJ_*` environment and secrets, as any dj-rs program reads them; then
/// [`DEFAULT_CONFIG`] for what they leave unset: the SQLite file when there is no configuration
/// file and the backend is SQLite, the stores when none is configured (creating the store's
/// folder).
pub fn load_config(dir: &Path, file: Option<&Path>) -> Result<Config> {
    load_config_with(dir, file, &|k: &str| std::env::var(k).ok())
}

/// As [`load_config`], with the environment read through `env`.
pub fn load_config_with(
    dir: &Path,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config> {
    let mut loader = ConfigLoader::new(dir).env(env);
    if let Some(f) = file {
        loader = loader.file(f);
    }
    let mut config = loader.load()?;
    // Without a configuration file, the loader's SQLite default is `datajoint.sqlite`; this
    // program's is its own file.
    let db = &config.database;
    let need_db =
        config.source.is_none() && db.backend == DatabaseBackend::Sqlite && db.url.is_none();
    let need_stores = config.stores.specs.is_empty() && config.stores.default.is_none();
    let defaults: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).map_err(|e| {
        datajoint::dj_core::Error::config("DEFAULT_CONFIG", format!("invalid JSON: {e}"))
    })?;
    if need_db {
        let section = serde_json::json!({ "database": defaults["database"] }).to_string();
        config.database.path = Config::from_json_str(&section, dir)?.database.path;
    }
    if need_stores {
        // The embedded file store's folder, so that a first run needs no setup.
        let location = dir.join(DEFAULT_STORE_DIR);
        std::fs::create_dir_all(&location).map_err(|source| datajoint::dj_core::Error::Io {
            path: location.display().to_string(),
            source,
        })?;
        let section = serde_json::json!({ "stores": defaults["stores"] }).to_string();
        config.stores = Config::from_json_str(&section, dir)?.stores.clone();
    }
    Ok(config)
}

/// The pipeline's two tables.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// `Session` (Manual).
    pub session: Table,
    /// `FilteredTrace` (Computed).
    pub filtered: Table,
}

/// Declare (or open, when they exist) the pipeline's tables in `schema`.
pub async fn declare(conn: &Connection, schema: &str) -> Result<Pipeline> {
    let s = conn.schema(schema).await?;
    let session = s.declare("Session", Tier::Manual, SESSION).await?;
    let filtered = s
        .declare("FilteredTrace", Tier::Computed, FILTERED_TRACE)
        .await?;
    Ok(Pipeline { session, filtered })
}

/// A `Session` row.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The key.
    pub session_id: i32,
    /// Samples per second.
    pub sampling_rate: f64,
    /// The raw trace.
    pub trace: Vec<f64>,
}

/// A `FilteredTrace` row.
#[derive(Clone, Debug, PartialEq)]
pub struct FilteredTrace {
    /// The key (from `Session`).
    pub session_id: i32,
    /// Samples averaged.
    pub window: i32,
    /// The smoothed trace.
    pub filtered: Vec<f64>,
}

/// A trace as a `<blob>` value: a 1-D `float64` array, what numpy reads as `np.ndarray`
/// (a `Vec<f64>` in a serde struct would be stored as a Python list).
pub fn array_value(v: Vec<f64>) -> Value {
    Value::domain(Item::from(v))
}

/// The samples of a fetched `<blob>` attribute `attr` that holds a `float64` array.
pub fn array_of(row: &Row, attr: &str) -> std::result::Result<Vec<f64>, String> {
    let item = row
        .get(attr)
        .and_then(Value::as_domain::<Item>)
        .ok_or_else(|| format!("`{attr}` is not a fetched blob"))?;
    Vec::<f64>::try_from(item).map_err(|e| format!("`{attr}`: {e}"))
}

fn int_of(row: &Row, attr: &str) -> std::result::Result<i32, String> {
    row.get(attr)
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| format!("`{attr}` is not an int32"))
}

impl Session {
    /// The row to insert.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("session_id".into(), self.session_id.into());
        r.insert("sampling_rate".into(), self.sampling_rate.into());
        r.insert("trace".into(), array_value(self.trace.clone()));
        r
    }

    /// From a fetched row.
    pub fn from_row(row: &Row) -> std::result::Result<Session, String> {
        Ok(Session {
            session_id: int_of(row, "session_id")?,
            sampling_rate: row
                .get("sampling_rate")
                .and_then(Value::as_f64)
                .ok_or("`sampling_rate` is not a number")?,
            trace: array_of(row, "trace")?,
        })
    }
}

impl FilteredTrace {
    /// The row to insert.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("session_id".into(), self.session_id.into());
        r.insert("window".into(), self.window.into());
        r.insert("filtered".into(), array_value(self.filtered.clone()));
        r
    }

    /// From a fetched row.
    pub fn from_row(row: &Row) -> std::result::Result<FilteredTrace, String> {
        Ok(FilteredTrace {
            session_id: int_of(row, "session_id")?,
            window: int_of(row, "window")?,
            filtered: array_of(row, "filtered")?,
        })
    }
}

/// The sampling rate of every seeded session.
pub const SAMPLING_RATE: f64 = 1000.0;

/// A deterministic noisy trace for `session_id`: a sine of 5 to 11 Hz plus uniform noise;
/// with `nan`, sample `samples / 2` is NaN (a broken recording, which `make` refuses).
pub fn trace(session_id: i32, samples: usize, nan: bool) -> Vec<f64> {
    let freq = 5.0 + f64::from(session_id.rem_euclid(7));
    let mut state = u64::from(session_id.unsigned_abs()).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out: Vec<f64> = (0..samples)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as f64 / SAMPLING_RATE;
            (2.0 * std::f64::consts::PI * freq * t).sin() + noise
        })
        .collect();
    if nan && let Some(x) = out.get_mut(samples / 2) {
        *x = f64::NAN;
    }
    out
}

/// The centred moving average of `x` over `window` samples (at the edges, over the samples
/// there are). A window of 0 or 1 returns `x`.
pub fn moving_average(x: &[f64], window: usize) -> Vec<f64> {
    if window <= 1 || x.is_empty() {
        return x.to_vec();
    }
    let before = (window - 1) / 2;
    let after = window - 1 - before;
    // prefix[i] = x[0] + ... + x[i-1]
    let mut prefix = Vec::with_capacity(x.len() + 1);
    prefix.push(0.0);
    let mut sum = 0.0;
    for v in x {
        sum += v;
        prefix.push(sum);
    }
    (0..x.len())
        .map(|i| {
            let lo = i.saturating_sub(before);
            let hi = (i + after + 1).min(x.len());
            (prefix[hi] - prefix[lo]) / (hi - lo) as f64
        })
        .collect()
}

/// The `make` of `FilteredTrace`: fetch the session's trace, smooth it, insert the result.
/// The window comes from the make arguments (`{"window": 9}`, default 9). A trace with a
/// sample that is not finite is refused with an error naming the session and the sample.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The `Session` table.
    pub session: Table,
}

impl Make for Filter {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        let window = cx.args()["window"].as_u64().unwrap_or(9);
        let window = i32::try_from(window).map_err(|_| format!("window {window} is too large"))?;
        let row: Row = cx.fetch1(self.session.restrict(key.clone())).await?;
        let s = Session::from_row(&row)?;
        if let Some(i) = s.trace.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "session {}: sample {i} of the trace is {}; the filter needs finite samples",
                s.session_id, s.trace[i]
            )
            .into());
        }
        let filtered = moving_average(&s.trace, window.unsigned_abs() as usize);
        let out = FilteredTrace {
            session_id: s.session_id,
            window,
            filtered,
        };
        cx.insert1(cx.target(), &out.to_row()).await?;
        Ok(())
    }
}

/// The `session_id` of a key.
pub fn session_id(key: &Row) -> Option<i64> {
    key.get("session_id").and_then(|v| v.as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_matches_a_direct_sum() {
        let x: Vec<f64> = (0..50).map(|i| f64::from(i * i % 17)).collect();
        for window in [1, 2, 3, 4, 9] {
            let got = moving_average(&x, window);
            let before = (window - 1) / 2;
            let after = window - 1 - before;
            for (i, g) in got.iter().enumerate() {
                let lo = i.saturating_sub(before);
                let hi = (i + after + 1).min(x.len());
                let want: f64 = x[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
                assert!((g - want).abs() < 1e-9, "window {window}, sample {i}");
            }
        }
        assert!(moving_average(&[], 5).is_empty());
    }

    #[test]
    fn smoothing_reduces_the_noise() {
        let x = trace(3, 4000, false);
        let y = moving_average(&x, 25);
        let rough = |v: &[f64]| v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>();
        assert!(rough(&y) < rough(&x) / 5.0);
    }

    #[test]
    fn traces_are_deterministic_and_nan_only_when_asked() {
        assert_eq!(trace(4, 100, false), trace(4, 100, false));
        assert_ne!(trace(4, 100, false), trace(5, 100, false));
        assert!(trace(4, 100, false).iter().all(|v| v.is_finite()));
        assert!(trace(4, 100, true)[50].is_nan());
    }
}
