//! `populate-traces`: seed `Session` with noisy traces, then fill `FilteredTrace` with
//! `populate`, in this process or in N worker processes that share DataJoint's job queue.
//!
//! ```text
//! populate-traces seed --sessions 200             # 200 sessions, 10 000 samples each
//! populate-traces populate                        # one process, progress bar on stderr
//! populate-traces populate --workers 4            # 4 worker processes (PostgreSQL, MySQL)
//! populate-traces status                          # what is made, what the queue holds
//! ```
//!
//! The database and the store come from `datajoint.json` and the `DJ_*` environment, as for
//! every dj-rs program; what they leave unset comes from the embedded defaults (an SQLite file
//! and a file store in the working directory). See `docs/populate.md`.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use datajoint::Backend;
use datajoint::schema::populate::{self, JobStatus, Jobs, Order, Populate};
use datajoint::schema::{Connection, InsertOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use populate_traces::{
    DEFAULT_SCHEMA, Filter, Pipeline, SAMPLING_RATE, Session, declare, load_config, session_id,
    trace,
};
use serde::{Deserialize, Serialize};

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Filter `<blob@>` traces with populate: one process, or N workers sharing a job queue.
#[derive(Debug, Parser)]
#[command(name = "populate-traces", version)]
struct Cli {
    /// The schema holding `Session` and `FilteredTrace`.
    #[arg(long, global = true, default_value = DEFAULT_SCHEMA)]
    schema: String,
    /// Read this configuration file instead of searching for `datajoint.json`.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the summary as one JSON document on standard output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Insert sessions with noisy traces (sessions already there are kept).
    Seed {
        /// How many sessions: ids 1 to N.
        #[arg(long, default_value_t = 20)]
        sessions: u32,
        /// Samples per trace.
        #[arg(long, default_value_t = 10_000)]
        samples: usize,
        /// Give every K-th session a NaN sample, which `make` refuses (0: none).
        #[arg(long, default_value_t = 0, value_name = "K")]
        nan_every: u32,
    },
    /// Fill `FilteredTrace`: in this process, or with --workers N in N worker processes that
    /// reserve keys from the job queue `~~filtered_trace` (needs PostgreSQL or MySQL/MariaDB).
    Populate {
        /// Start N worker processes of this program, each running a distributed populate.
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
        /// Samples the moving average spans (a make argument).
        #[arg(long, default_value_t = 9)]
        window: u32,
        /// Makes run at once in each process.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Make at most this many keys (per process).
        #[arg(long)]
        max_calls: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Show what is made and what the job queue holds.
    Status,
    /// One worker of `populate --workers` (started by it; prints its report as JSON).
    #[command(hide = true)]
    Worker {
        /// The worker's number.
        #[arg(long)]
        id: usize,
        /// As `populate --window`.
        #[arg(long, default_value_t = 9)]
        window: u32,
        /// As `populate --concurrency`.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// As `populate --max-calls`.
        #[arg(long)]
        max_calls: Option<usize>,
    },
}

/// What one process made.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct WorkerReport {
    /// The worker's number (0 in direct mode).
    worker: usize,
    /// Its process id.
    pid: u32,
    /// The sessions it made, in the order it made them.
    made: Vec<i64>,
    /// The sessions whose make failed, with the message.
    errors: Vec<KeyFailure>,
    /// Keys skipped: reserved by another worker first, or made meanwhile.
    skipped: usize,
    /// Why the worker process itself failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyFailure {
    session_id: Option<i64>,
    message: String,
}

/// The summary of a `populate` run.
#[derive(Debug, Serialize)]
struct Summary {
    schema: String,
    backend: String,
    mode: &'static str,
    window: u32,
    seconds: f64,
    workers: Vec<WorkerReport>,
    made: usize,
    failed: usize,
    /// Sessions made by more than one worker (always empty: the job queue's guarantee).
    made_twice: Vec<i64>,
    remaining: u64,
    total: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("populate-traces: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("populate-traces: {e}");
            ExitCode::from(2)
        }
    }
}

async fn open(cli: &Cli) -> AnyResult<(Connection, Pipeline)> {
    datajoint::check_registry()?;
    let dir = std::env::current_dir()?;
    let config = load_config(&dir, cli.config.as_deref())?;
    let conn = Connection::open(&config).await?;
    let pipeline = declare(&conn, &cli.schema).await?;
    Ok((conn, pipeline))
}

async fn run(cli: &Cli) -> AnyResult<ExitCode> {
    match &cli.command {
        Cmd::Seed {
            sessions,
            samples,
            nan_every,
        } => seed(cli, *sessions, *samples, *nan_every).await,
        Cmd::Populate {
            workers: Some(n),
            window,
            concurrency,
            max_calls,
            no_progress,
        } => populate_workers(cli, *n, *window, *concurrency, *max_calls, !no_progress).await,
        Cmd::Populate {
            workers: None,
            window,
            concurrency,
            max_calls,
            no_progress,
        } => populate_direct(cli, *window, *concurrency, *max_calls, !no_progress).await,
        Cmd::Status => status(cli).await,
        Cmd::Worker {
            id,
            window,
            concurrency,
            max_calls,
        } => worker(cli, *id, *window, *concurrency, *max_calls).await,
    }
}

async fn seed(cli: &Cli, sessions: u32, samples: usize, nan_every: u32) -> AnyResult<ExitCode> {
    let (conn, p) = open(cli).await?;
    let ids: Vec<i32> = (1..=i32::try_from(sessions)?).collect();
    let mut inserted = 0;
    for chunk in ids.chunks(50) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|&id| {
                Session {
                    session_id: id,
                    sampling_rate: SAMPLING_RATE,
                    trace: trace(
                        id,
                        samples,
                        nan_every > 0 && id.unsigned_abs() % nan_every == 0,
                    ),
                }
                .to_row()
            })
            .collect();
        inserted += p
            .session
            .insert_with(
                &rows,
                InsertOptions {
                    skip_duplicates: true,
                    ..InsertOptions::default()
                },
            )
            .await?;
    }
    let total = p.session.len().await?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"inserted": inserted, "sessions": total})
        );
    } else {
        println!(
            "seeded {inserted} session(s) of {samples} samples into {}; {total} in all",
            p.session.full_name()
        );
    }
    conn.close().await;
    Ok(ExitCode::SUCCESS)
}

/// A populate of `FilteredTrace` with this program's options.
fn populate_of<'a>(
    p: &'a Pipeline,
    maker: &'a Filter,
    window: u32,
    concurrency: usize,
    max_calls: Option<usize>,
    made: &Arc<Mutex<Vec<i64>>>,
) -> Populate<'a, impl populate::Runner + 'a> {
    let record = Arc::clone(made);
    let mut run = Populate::new(&p.filtered, maker)
        .make_args(serde_json::json!({ "window": window }))
        .suppress_errors(true)
        .concurrency(concurrency)
        .on_progress(move |progress| {
            if progress.ok
                && let Some(id) = session_id(&progress.key)
            {
                record.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            }
        });
    if let Some(n) = max_calls {
        run = run.max_calls(n);
    }
    run
}

fn report_of(
    worker: usize,
    report: &populate::PopulateReport,
    made: &Arc<Mutex<Vec<i64>>>,
) -> WorkerReport {
    WorkerReport {
        worker,
        pid: std::process::id(),
        made: made.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        errors: report
            .errors
            .iter()
            .map(|e| KeyFailure {
                session_id: session_id(&e.key),
                message: e.message.clone(),
            })
            .collect(),
        skipped: report.skipped,
        failure: None,
    }
}

async fn populate_direct(
    cli: &Cli,
    window: u32,
    concurrency: usize,
    max_calls: Option<usize>,
    bar: bool,
) -> AnyResult<ExitCode> {
    let (conn, p) = open(cli).await?;
    let maker = Filter {
        session: p.session.clone(),
    };
    let made = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let report = populate_of(&p, &maker, window, concurrency, max_calls, &made)
        .progress_bar(bar)
        .run()
        .await?;
    let workers = vec![report_of(0, &report, &made)];
    let code = summarize(cli, &conn, &p, "direct", window, started, workers).await?;
    conn.close().await;
    Ok(code)
}

/// One worker process: a distributed populate that reserves keys from the job queue.
async fn worker(
    cli: &Cli,
    id: usize,
    window: u32,
    concurrency: usize,
    max_calls: Option<usize>,
) -> AnyResult<ExitCode> {
    let (conn, p) = open(cli).await?;
    let maker = Filter {
        session: p.session.clone(),
    };
    let made = Arc::new(Mutex::new(Vec::new()));
    // The parent refreshed the queue; random order makes workers collide less.
    let report = populate_of(&p, &maker, window, concurrency, max_calls, &made)
        .reserve_jobs(true)
        .refresh(false)
        .order(Order::Random)
        .run()
        .await?;
    println!("{}", serde_json::to_string(&report_of(id, &report, &made))?);
    conn.close().await;
    Ok(ExitCode::SUCCESS)
}

/// A started worker process and the thread reading its standard output.
struct Running {
    id: usize,
    child: Child,
    output: std::thread::JoinHandle<String>,
}

fn spawn_worker(
    cli: &Cli,
    id: usize,
    window: u32,
    concurrency: usize,
    max_calls: Option<usize>,
) -> AnyResult<Running> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--schema").arg(&cli.schema);
    if let Some(c) = &cli.config {
        cmd.arg("--config").arg(c);
    }
    cmd.args([
        "worker",
        "--id",
        &id.to_string(),
        "--window",
        &window.to_string(),
    ])
    .args(["--concurrency", &concurrency.to_string()]);
    if let Some(n) = max_calls {
        cmd.args(["--max-calls", &n.to_string()]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start worker {id}: {e}"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("worker {id} has no standard output"))?;
    let output = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    Ok(Running { id, child, output })
}

async fn populate_workers(
    cli: &Cli,
    n: usize,
    window: u32,
    concurrency: usize,
    max_calls: Option<usize>,
    show_bar: bool,
) -> AnyResult<ExitCode> {
    let (conn, p) = open(cli).await?;
    if conn.backend() == Backend::Sqlite {
        return Err(
            "--workers needs a database server that every worker process reaches: \
                    PostgreSQL or MySQL/MariaDB (set `database` in datajoint.json, or DJ_BACKEND, \
                    DJ_HOST, DJ_USER, DJ_PASS). SQLite is one file with one writer, not a job \
                    queue for many processes; without --workers, `populate` runs in this one \
                    process (--concurrency for several makes at once)"
                .into(),
        );
    }
    if n == 0 {
        return Err("--workers must be at least 1".into());
    }
    let started = Instant::now();
    // Fill the queue once here, so that the workers only reserve.
    let jobs = Jobs::new(&p.filtered).await?;
    jobs.refresh().await?;
    let mut running = Vec::with_capacity(n);
    for id in 0..n {
        running.push(spawn_worker(cli, id, window, concurrency, max_calls)?);
    }
    let bar = show_bar.then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "FilteredTrace [{wide_bar}] {pos}/{len} {msg} {elapsed_precise}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    // Follow the table while the workers run: keys made of the key source, and the queue.
    let mut statuses = vec![None; n];
    loop {
        for (r, st) in running.iter_mut().zip(statuses.iter_mut()) {
            if st.is_none() {
                *st = r.child.try_wait()?;
            }
        }
        if let Some(bar) = &bar {
            let (remaining, total) = populate::progress(&p.filtered).await?;
            let reserved = jobs.with_status(JobStatus::Reserved).len().await?;
            let errors = jobs.with_status(JobStatus::Error).len().await?;
            bar.set_length(total);
            bar.set_position(total - remaining);
            bar.set_message(format!(
                "{} of {n} workers running, {reserved} reserved, {errors} failed",
                statuses.iter().filter(|s| s.is_none()).count()
            ));
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut reports = Vec::with_capacity(n);
    for (r, status) in running.into_iter().zip(statuses) {
        let out = r.output.join().unwrap_or_default();
        let parsed = BufReader::new(out.as_bytes())
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty())
            .last()
            .and_then(|l| serde_json::from_str::<WorkerReport>(&l).ok());
        let ok = status.is_some_and(|s| s.success());
        reports.push(match parsed {
            Some(rep) if ok => rep,
            _ => WorkerReport {
                worker: r.id,
                pid: r.child.id(),
                failure: Some(match status {
                    Some(s) => format!("the worker process ended with {s}"),
                    None => "the worker process did not end".into(),
                }),
                ..WorkerReport::default()
            },
        });
    }
    let code = summarize(cli, &conn, &p, "workers", window, started, reports).await?;
    conn.close().await;
    Ok(code)
}

/// Print the summary; the exit code is 0 when every key of the key source is made and no
/// worker failed, 1 otherwise.
async fn summarize(
    cli: &Cli,
    conn: &Connection,
    p: &Pipeline,
    mode: &'static str,
    window: u32,
    started: Instant,
    workers: Vec<WorkerReport>,
) -> AnyResult<ExitCode> {
    let (remaining, total) = populate::progress(&p.filtered).await?;
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for w in &workers {
        for id in &w.made {
            *count.entry(*id).or_default() += 1;
        }
    }
    let made_twice: Vec<i64> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    let summary = Summary {
        schema: cli.schema.clone(),
        backend: format!("{:?}", conn.backend()).to_lowercase(),
        mode,
        window,
        seconds: started.elapsed().as_secs_f64(),
        made: workers.iter().map(|w| w.made.len()).sum(),
        failed: workers.iter().map(|w| w.errors.len()).sum(),
        made_twice,
        remaining,
        total,
        workers,
    };
    let ok = summary.remaining == 0 && summary.workers.iter().all(|w| w.failure.is_none());
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_summary(s: &Summary) {
    println!(
        "FilteredTrace in `{}` ({}, {} mode, window {}): {:.1} s",
        s.schema, s.backend, s.mode, s.window, s.seconds
    );
    for w in &s.workers {
        match &w.failure {
            Some(f) => println!("  worker {} (pid {}): FAILED: {f}", w.worker, w.pid),
            None => println!(
                "  worker {} (pid {}): made {}, failed {}, skipped {}",
                w.worker,
                w.pid,
                w.made.len(),
                w.errors.len(),
                w.skipped
            ),
        }
    }
    println!(
        "made {} key(s), {} failed; {} of {} still to do",
        s.made, s.failed, s.remaining, s.total
    );
    if !s.made_twice.is_empty() {
        println!("made more than once: {:?}", s.made_twice);
    }
    let errors: Vec<&KeyFailure> = s.workers.iter().flat_map(|w| &w.errors).collect();
    if !errors.is_empty() {
        println!("errors (recorded in the job queue with --workers; `dj jobs` lists them):");
        for e in errors {
            println!("  {}", e.message);
        }
    }
}

async fn status(cli: &Cli) -> AnyResult<ExitCode> {
    let (conn, p) = open(cli).await?;
    let (remaining, total) = populate::progress(&p.filtered).await?;
    let queue = if conn.backend() == Backend::Sqlite {
        None
    } else {
        Some(Jobs::new(&p.filtered).await?.progress().await?)
    };
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"remaining": remaining, "total": total, "jobs": queue})
        );
    } else {
        println!(
            "{}: {} of {total} made, {remaining} to do",
            p.filtered.full_name(),
            total - remaining
        );
        if let Some(q) = queue {
            let counts: Vec<String> = q.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("job queue: {}", counts.join(", "));
        }
    }
    conn.close().await;
    Ok(ExitCode::SUCCESS)
}
