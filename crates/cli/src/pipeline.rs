//! `diagram`, `jobs` and `delete`: the pipeline's shape, its job queues, and cascading deletes.

use std::io::{BufRead, Write};

use datajoint::blob::Item;
use datajoint::dj_core::value::Value;
use datajoint::schema::diagram::Diagram;
use datajoint::schema::graph::DependencyGraph;
use datajoint::schema::populate::{self, JobStatus, Jobs, RefreshOptions};
use datajoint::schema::{Connection, Query, Restriction, Row, Table};
use serde_json::{Value as Json, json};

use crate::Ctx;
use crate::cli::{DeleteArgs, DiagramArgs, DiagramFormat, JobsArgs};
use crate::commands::{open_table, parse_keys};
use crate::error::{CliError, EXIT_OK, Result};
use crate::item_json::item_to_json;
use crate::progress::WatchBar;

/// `SCHEMA.TABLE`, or `SCHEMA` and `TABLE` as two arguments.
fn split_target(target: &str, table: Option<&str>) -> Result<(String, String)> {
    if let Some(t) = table {
        return Ok((target.to_string(), t.to_string()));
    }
    match target.split_once('.') {
        Some((s, t)) if !s.is_empty() && !t.is_empty() => Ok((s.to_string(), t.to_string())),
        _ => Err(CliError::Usage(format!(
            "`{target}` names no table: give SCHEMA.TABLE (`lab.Session`, `lab.__clean`) or \
             SCHEMA TABLE"
        ))),
    }
}

/// `dj diagram`.
pub(crate) async fn diagram(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    args: &DiagramArgs,
) -> Result<u8> {
    for s in &args.schemas {
        // A clear error for a schema that does not exist.
        conn.existing_schema(s).await?;
    }
    let names: Vec<&str> = args.schemas.iter().map(String::as_str).collect();
    let mut graph = if args.downstream {
        DependencyGraph::load_downstream(conn, &names).await?
    } else {
        DependencyGraph::load(conn, &names).await?
    };
    if args.upstream {
        let mut all: Vec<String> = graph.schemas().to_vec();
        for n in graph.nodes() {
            if !all.contains(&n.schema) {
                all.push(n.schema.clone());
            }
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        graph = DependencyGraph::load_upstream(conn, &all).await?;
    }
    if ctx.json {
        ctx.emit(&json!({
            "schemas": graph.schemas(),
            "order": graph.topo_sort(),
            "tables": graph.nodes().collect::<Vec<_>>(),
            "foreign_keys": graph.edges(),
        }))?;
        return Ok(EXIT_OK);
    }
    let d = Diagram::new(&graph).direction(args.direction);
    let text = match args.format {
        DiagramFormat::Svg => d.to_svg(),
        DiagramFormat::Mermaid => d.to_mermaid(),
        DiagramFormat::Dot => d.to_dot(),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::File {
            path: path.display().to_string(),
            source,
        })?,
        None => ctx
            .out
            .write_all(text.as_bytes())
            .map_err(CliError::Output)?,
    }
    Ok(EXIT_OK)
}

/// A value as JSON, for keys and job rows.
fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Bool(b) => json!(b),
        Value::String(s) => json!(s),
        Value::DateTime(d) => json!(d.format("%Y-%m-%d %H:%M:%S").to_string()),
        Value::Date(d) => json!(d.to_string()),
        Value::Uuid(u) => json!(u.to_string()),
        // `error_stack` is a `<blob>`: DataJoint stores the stack as a string in it.
        other => match other.as_domain::<Item>() {
            Some(Item::Str(s)) => json!(s),
            Some(item) => item_to_json(item),
            None => json!(format!("{other:?}")),
        },
    }
}

fn row_json(row: &Row, names: &[String]) -> Json {
    Json::Object(
        names
            .iter()
            .filter_map(|n| row.get(n).map(|v| (n.clone(), value_json(v))))
            .collect(),
    )
}

/// `dj jobs`.
pub(crate) async fn jobs(ctx: &mut Ctx<'_>, conn: &Connection, args: &JobsArgs) -> Result<u8> {
    let (schema, table) = split_target(&args.target, args.table.as_deref())?;
    let target = open_table(conn, &schema, &table).await?;
    let jobs = Jobs::new(&target).await?;
    let job_table = jobs.table();
    let key_names: Vec<String> = job_table
        .heading()
        .primary_key()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut actions = serde_json::Map::new();
    let mut ignored = Vec::new();
    for arg in &args.ignore {
        let parts: Vec<String> = arg.split(',').map(|p| p.trim().to_string()).collect();
        let key = parse_keys(job_table, &parts)
            .map_err(|e| CliError::Usage(format!("--ignore `{arg}`: {e}")))?;
        let missing: Vec<&String> = key_names.iter().filter(|k| !key.contains_key(*k)).collect();
        if !missing.is_empty() {
            return Err(CliError::Usage(format!(
                "--ignore `{arg}`: give the whole job key ({}); missing {}",
                key_names.join(", "),
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        jobs.ignore(&key).await?;
        ignored.push(row_json(&key, &key_names));
    }
    if !args.ignore.is_empty() {
        actions.insert("ignored".into(), Json::Array(ignored));
    }
    if args.clear_errors {
        let n = jobs.with_status(JobStatus::Error).delete().await?;
        actions.insert("errors_cleared".into(), json!(n));
    }
    if args.refresh {
        let report = jobs
            .refresh_with(RefreshOptions {
                orphan_timeout: args.orphan_timeout.map(|t| t.as_secs_f64()),
                ..RefreshOptions::default()
            })
            .await?;
        actions.insert(
            "refreshed".into(),
            json!({
                "added": report.added,
                "removed": report.removed,
                "orphaned": report.orphaned,
                "re_pended": report.re_pended,
            }),
        );
    }
    if args.watch {
        let how = watch(ctx, &target, &jobs, args.interval).await?;
        actions.insert("watched".into(), json!(how));
    }
    let counts = jobs.progress().await?;
    let errors = jobs
        .with_status(JobStatus::Error)
        .order_by(["completed_time"])
        .fetch_rows()
        .await?;
    let error_list: Vec<Json> = errors
        .iter()
        .map(|r| {
            let mut e = json!({
                "key": row_json(r, &key_names),
                "message": r.get("error_message").map_or(Json::Null, value_json),
                "completed_time": r.get("completed_time").map_or(Json::Null, value_json),
                "user": r.get("user").map_or(Json::Null, value_json),
                "host": r.get("host").map_or(Json::Null, value_json),
                "pid": r.get("pid").map_or(Json::Null, value_json),
            });
            if let Some(obj) = e.as_object_mut() {
                obj.insert(
                    "stack".into(),
                    r.get("error_stack").map_or(Json::Null, value_json),
                );
            }
            e
        })
        .collect();
    if ctx.json {
        ctx.emit(&json!({
            "table": target.full_name(),
            "job_table": job_table.full_name(),
            "counts": counts,
            "errors": error_list,
            "actions": actions,
        }))?;
        return Ok(EXIT_OK);
    }
    ctx.line(format!(
        "jobs of {} (job table {})",
        target.full_name(),
        job_table.name()
    ))?;
    if let Some(k) = actions.get("ignored").and_then(Json::as_array) {
        for key in k {
            ctx.line(format!("ignored      {key}"))?;
        }
    }
    if let Some(n) = actions.get("errors_cleared") {
        ctx.line(format!("cleared      {n} error job(s)"))?;
    }
    if let Some(how) = actions.get("watched").and_then(Json::as_str) {
        ctx.line(format!("watched      until {how}"))?;
    }
    if let Some(r) = actions.get("refreshed") {
        ctx.line(format!(
            "refreshed    {} added, {} removed, {} orphaned reservation(s) put back",
            r["added"], r["removed"], r["orphaned"]
        ))?;
    }
    for (status, n) in &counts {
        ctx.line(format!("  {status:<10} {n}"))?;
    }
    if !error_list.is_empty() {
        ctx.line("errors:")?;
        for e in &error_list {
            let when = e["completed_time"].as_str().unwrap_or("");
            let host = e["host"].as_str().unwrap_or("");
            let msg = e["message"].as_str().unwrap_or("");
            ctx.line(format!("  {}  {when}  {host}", e["key"]))?;
            for line in msg.lines() {
                ctx.line(format!("    {line}"))?;
            }
            if ctx.verbose > 0
                && let Some(stack) = e["stack"].as_str()
            {
                for line in stack.lines() {
                    ctx.line(format!("      | {line}"))?;
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// `dj jobs --watch`: follow `target` until every key of its key source is made, until no
/// remaining key can be taken by a worker (nothing pending or reserved, and every remaining key
/// failed or ignored), or Ctrl-C. Returns which of the three ended it.
async fn watch(
    ctx: &Ctx<'_>,
    target: &Table,
    jobs: &Jobs,
    interval: std::time::Duration,
) -> Result<&'static str> {
    let interval = interval.max(std::time::Duration::from_millis(100));
    let mut bar = WatchBar::new(&target.full_name(), !ctx.json);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Poll it once now, so that Ctrl-C is caught from the first figures on.
    tokio::select! {
        biased;
        _ = &mut ctrl_c => return Ok("interrupted"),
        () = std::future::ready(()) => {}
    }
    let how = loop {
        let (remaining, total) = populate::progress(target).await?;
        let counts = jobs.progress().await?;
        let n = |s: &str| counts.get(s).copied().unwrap_or(0);
        let list: Vec<(String, u64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        bar.update(total - remaining, total, &list);
        if remaining == 0 {
            break "all made";
        }
        if n("pending") == 0 && n("reserved") == 0 && n("error") + n("ignore") >= remaining {
            break "nothing left to take";
        }
        tokio::select! {
            _ = &mut ctrl_c => break "interrupted",
            () = tokio::time::sleep(interval) => {}
        }
    };
    bar.finish();
    Ok(how)
}

/// The rows `dj delete` starts from.
fn delete_query(table: &Table, args: &DeleteArgs) -> Result<Query> {
    let mut q = table.query();
    for c in &args.conditions {
        q = q.restrict(Restriction::from(c.as_str()));
    }
    if !args.keys.is_empty() {
        q = q.restrict(parse_keys(table, &args.keys)?);
    }
    Ok(q)
}

/// `dj delete`.
pub(crate) async fn delete(ctx: &mut Ctx<'_>, conn: &Connection, args: &DeleteArgs) -> Result<u8> {
    let (schema, table) = split_target(&args.target, args.table.as_deref())?;
    let t = open_table(conn, &schema, &table).await?;
    let q = delete_query(&t, args)?;
    let preview = q.delete_preview().await?;
    let total: u64 = preview.values().sum();
    let safemode = conn.config().safemode;
    let show = |ctx: &mut Ctx<'_>, verb: &str| -> Result<()> {
        for (name, n) in &preview {
            if *n > 0 {
                ctx.line(format!("{verb} {n:>8} row(s) from {name}"))?;
            }
        }
        Ok(())
    };
    let counts: serde_json::Map<String, Json> =
        preview.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if total == 0 || args.dry_run {
        if ctx.json {
            ctx.emit(&json!({
                "table": t.full_name(),
                "dry_run": args.dry_run,
                "deleted": false,
                "rows": counts,
            }))?;
        } else if total == 0 {
            ctx.line(format!("nothing to delete from {}", t.full_name()))?;
        } else {
            show(ctx, "would delete")?;
            ctx.line(format!(
                "dry run: {total} row(s) would be deleted; nothing was deleted"
            ))?;
        }
        return Ok(EXIT_OK);
    }
    if safemode && !args.yes {
        // The question goes to standard error, so that --json output stays one document.
        let mut err = std::io::stderr().lock();
        for (name, n) in &preview {
            if *n > 0 {
                let _ = writeln!(err, "about to delete {n:>8} row(s) from {name}");
            }
        }
        let _ = write!(err, "Commit deletes? [yes, No]: ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(CliError::Cancelled {
                table: t.full_name(),
            });
        }
    }
    let n = q.delete().await?;
    if ctx.json {
        ctx.emit(&json!({
            "table": t.full_name(),
            "dry_run": false,
            "deleted": true,
            "rows": counts,
            "rows_of_table": n,
        }))?;
    } else {
        show(ctx, "deleted")?;
        ctx.line(format!(
            "deleted {total} row(s): {n} from {} and the rest from its dependents",
            t.full_name()
        ))?;
    }
    Ok(EXIT_OK)
}
