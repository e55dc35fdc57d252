//! `dj gc`, `dj verify` and `dj migrate`.

use datajoint::schema::lifecycle::{
    Gc, GcOptions, Migration, MigrationReport, SectionStats, Status, Verify,
};
use datajoint::schema::{Connection, GcReport, Restriction, VerifyReport};

use crate::Ctx;
use crate::cli::{GcArgs, MigrateArgs, VerifyArgs};
use crate::commands::{open_table, parse_keys};
use crate::duration::{format_seconds, human_bytes};
use crate::error::{CliError, EXIT_DAMAGED, EXIT_ERROR, EXIT_GC_REFUSED, EXIT_OK, Result};
use crate::progress::Bar;

/// Refuse unsafe option combinations before anything is opened: with `--delete`, a zero grace
/// period without `--allow-zero-grace`, or one shorter than the minimum GC can protect.
pub(crate) fn check_gc_args(args: &GcArgs) -> Result<()> {
    if !args.delete {
        return Ok(());
    }
    GcOptions::grace(args.grace)
        .allow_zero_grace(args.allow_zero_grace)
        .check_grace()
        .map_err(|message| CliError::Usage(format!("gc of store `{}`: {message}", args.store)))
}

fn count_bytes(n: u64, bytes: u64) -> String {
    format!("{n} ({})", human_bytes(bytes))
}

fn section_line(name: &str, s: &SectionStats) -> String {
    format!(
        "  {name:<8} {:>10}  {:<18} {:<18} {:<18} {}",
        s.referenced,
        count_bytes(s.stored, s.stored_bytes),
        count_bytes(s.orphaned, s.orphaned_bytes),
        count_bytes(s.skipped_young, s.skipped_young_bytes),
        count_bytes(s.deleted, s.bytes_freed),
    )
}

fn print_gc(ctx: &mut Ctx<'_>, rep: &GcReport) -> Result<()> {
    let mode = if rep.dry_run { "dry run" } else { "deleting" };
    ctx.line(format!(
        "gc of store `{}` ({mode}, grace {}) over {} schema(s): {}",
        rep.store,
        format_seconds(rep.grace_seconds),
        rep.schemas.len(),
        if rep.schemas.is_empty() {
            "(none)".to_string()
        } else {
            rep.schemas.join(", ")
        }
    ))?;
    ctx.line(format!(
        "  {:<8} {:>10}  {:<18} {:<18} {:<18} {}",
        "section", "referenced", "stored", "orphaned", "too young", "deleted"
    ))?;
    ctx.line(section_line("hash", &rep.hash))?;
    ctx.line(section_line("schema", &rep.schema))?;
    ctx.line(format!(
        "  other keys (never touched): {}   rescued: {}",
        rep.other_keys, rep.rescued
    ))?;
    let inc = &rep.incomplete;
    if inc.found > 0 {
        ctx.line(format!(
            "  leftovers of interrupted writes: {} found ({}), {} too young, {} stale ({}), \
             {} removed (freed {})",
            inc.found,
            human_bytes(inc.found_bytes),
            inc.skipped_young,
            inc.stale,
            human_bytes(inc.stale_bytes),
            inc.removed,
            human_bytes(inc.bytes_freed)
        ))?;
    }
    if ctx.verbose > 0 {
        let paths: Vec<&String> = rep
            .hash
            .orphaned_paths
            .iter()
            .chain(&rep.schema.orphaned_paths)
            .collect();
        if !paths.is_empty() {
            ctx.line("orphans:")?;
            for p in paths {
                ctx.line(format!("  {p}"))?;
            }
        }
        if !inc.stale_paths.is_empty() {
            ctx.line("stale leftovers of interrupted writes:")?;
            for p in &inc.stale_paths {
                ctx.line(format!("  {p}"))?;
            }
        }
    }
    if !rep.scan_errors.is_empty() {
        ctx.line("scan errors (nothing is deleted while any scan fails):")?;
        for e in &rep.scan_errors {
            ctx.line(format!("  - {e}"))?;
        }
    }
    if !rep.errors.is_empty() || !inc.errors.is_empty() {
        ctx.line("deletions that failed:")?;
        for e in rep.errors.iter().chain(&inc.errors) {
            ctx.line(format!("  - {e}"))?;
        }
    }
    let orphaned_bytes = rep.hash.orphaned_bytes + rep.schema.orphaned_bytes;
    if rep.refused {
        ctx.line("refused: the scan had errors, nothing was deleted")?;
    } else if rep.dry_run {
        let young = rep.hash.skipped_young + rep.schema.skipped_young;
        let kept = if young > 0 {
            format!(
                " ({young} unreferenced object(s) younger than {} kept)",
                format_seconds(rep.grace_seconds)
            )
        } else {
            String::new()
        };
        if rep.orphaned() > 0 {
            ctx.line(format!(
                "dry run: {} orphan(s), {}, would be deleted{kept}; run again with --delete to \
                 delete them",
                rep.orphaned(),
                human_bytes(orphaned_bytes)
            ))?;
        } else {
            ctx.line(format!("dry run: nothing to delete{kept}"))?;
        }
    } else {
        ctx.line(format!(
            "deleted {} object(s), freed {}",
            rep.deleted(),
            human_bytes(rep.bytes_freed())
        ))?;
    }
    Ok(())
}

/// Run a long operation with a progress bar (none with `--json`), then print its report: as
/// JSON with `--json`, otherwise through `print`.
async fn run_and_report<R, Fut>(
    ctx: &mut Ctx<'_>,
    run: impl FnOnce(Bar) -> Fut,
    print: fn(&mut Ctx<'_>, &R) -> Result<()>,
) -> Result<R>
where
    R: serde::Serialize,
    Fut: std::future::Future<Output = datajoint::schema::Result<R>>,
{
    let bar = Bar::new(!ctx.json);
    let result = run(bar.clone()).await;
    bar.finish();
    let rep = result?;
    if ctx.json {
        ctx.emit(&rep)?;
    } else {
        print(ctx, &rep)?;
    }
    Ok(rep)
}

/// `dj gc`.
pub(crate) async fn gc(ctx: &mut Ctx<'_>, conn: &Connection, args: &GcArgs) -> Result<u8> {
    check_gc_args(args)?;
    let options = GcOptions::grace(args.grace)
        .allow_zero_grace(args.allow_zero_grace)
        .dry_run(!args.delete);
    let mut gc = Gc::new(conn, &args.store).options(options);
    if !args.schemas.is_empty() {
        gc = gc.schemas(args.schemas.iter().cloned());
    }
    let rep = run_and_report(
        ctx,
        |bar| async move { gc.progress(bar.hook()).run().await },
        print_gc,
    )
    .await?;
    Ok(if !rep.scan_errors.is_empty() {
        eprintln!(
            "error: garbage collection of store `{}` had {} scan error(s); nothing was deleted",
            rep.store,
            rep.scan_errors.len()
        );
        EXIT_GC_REFUSED
    } else if !rep.errors.is_empty() {
        eprintln!(
            "error: {} deletion(s) in store `{}` failed",
            rep.errors.len(),
            rep.store
        );
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Missing => "MISSING",
        Status::Corrupt => "CORRUPT",
        Status::Error => "ERROR",
        _ => "?",
    }
}

fn print_verify(ctx: &mut Ctx<'_>, rep: &VerifyReport) -> Result<()> {
    ctx.line(format!(
        "verify {} over {} schema(s): {}",
        rep.store
            .as_ref()
            .map_or_else(|| "every store".to_string(), |s| format!("store `{s}`")),
        rep.schemas.len(),
        if rep.schemas.is_empty() {
            "(none)".to_string()
        } else {
            rep.schemas.join(", ")
        }
    ))?;
    for a in &rep.attributes {
        ctx.line(format!(
            "  {:<40} {:>6} ok {:>6} missing {:>6} corrupt {:>6} errors",
            format!("{}.{}", a.table, a.attribute),
            a.ok,
            a.missing,
            a.corrupt,
            a.errors
        ))?;
        for p in &a.problems {
            ctx.line(format!(
                "    {:<8} {} {}:{} {}",
                status_name(p.status),
                p.key,
                p.store,
                p.path,
                p.reason
            ))?;
        }
    }
    if !rep.scan_errors.is_empty() {
        ctx.line("scan errors (these tables were not checked):")?;
        for e in &rep.scan_errors {
            ctx.line(format!("  - {e}"))?;
        }
    }
    ctx.line(format!(
        "{} object(s) checked, {} read: {} ok, {} missing, {} corrupt, {} errors",
        rep.objects,
        human_bytes(rep.bytes_read),
        rep.ok,
        rep.missing,
        rep.corrupt,
        rep.errors
    ))?;
    Ok(())
}

/// `dj verify`.
pub(crate) async fn verify(ctx: &mut Ctx<'_>, conn: &Connection, args: &VerifyArgs) -> Result<u8> {
    let mut v = Verify::new(conn);
    if let Some(s) = &args.store {
        v = v.store(s);
    }
    if !args.schemas.is_empty() {
        v = v.schemas(args.schemas.iter().cloned());
    }
    let rep = run_and_report(
        ctx,
        |bar| async move { v.progress(bar.hook()).run().await },
        print_verify,
    )
    .await?;
    Ok(if rep.missing > 0 || rep.corrupt > 0 {
        eprintln!(
            "error: {} missing and {} corrupt object reference(s)",
            rep.missing, rep.corrupt
        );
        EXIT_DAMAGED
    } else if !rep.is_clean() {
        eprintln!(
            "error: verification incomplete: {} reference(s) could not be checked, {} scan error(s)",
            rep.errors,
            rep.scan_errors.len()
        );
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

fn print_migration(ctx: &mut Ctx<'_>, rep: &MigrationReport) -> Result<()> {
    ctx.line(format!(
        "migrate {}.{} from store `{}` to `{}`{}",
        rep.table,
        rep.attribute,
        rep.from,
        rep.to,
        if rep.dry_run { " (dry run)" } else { "" }
    ))?;
    ctx.line(format!(
        "  rows: {} with a value, {} to migrate, {} migrated, {} changed meanwhile (left as they are)",
        rep.rows, rep.rows_to_migrate, rep.rows_migrated, rep.rows_changed
    ))?;
    ctx.line(format!(
        "  objects: {} to move, {} copied ({}), {} already in `{}`",
        rep.objects,
        rep.objects_copied,
        human_bytes(rep.bytes_copied),
        rep.objects_present,
        rep.to
    ))?;
    if rep.rows_changed > 0 {
        ctx.line("  some rows changed while their objects were copied: run the migration again")?;
    }
    Ok(())
}

/// `dj migrate`.
pub(crate) async fn migrate(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    args: &MigrateArgs,
) -> Result<u8> {
    let table = open_table(conn, &args.schema, &args.table).await?;
    let mut m = Migration::new(&table, &args.attribute, &args.from, &args.to).dry_run(args.dry_run);
    if !args.keys.is_empty() {
        m = m.restrict(Restriction::from(parse_keys(&table, &args.keys)?));
    }
    run_and_report(
        ctx,
        |bar| async move { m.progress(bar.hook()).run().await },
        print_migration,
    )
    .await?;
    Ok(EXIT_OK)
}
