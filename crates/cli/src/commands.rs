//! `config check`, `codecs`, `schema list`, `table list|describe`, `blob cat`, and the dispatch of
//! the commands that need a database connection.

use datajoint::Config;
use datajoint::blob::Item;
use datajoint::config::{DatabaseBackend, StoreSpec, is_unread_datajoint_env_var};
use datajoint::dj_core::codec::ResolvedType;
use datajoint::dj_core::registry::Registry;
use datajoint::dj_core::typespec::{CoreType, TypeSpec};
use datajoint::dj_core::value::Value;
use datajoint::schema::heading::Attribute;
use datajoint::schema::naming::{Tier, class_name};
use datajoint::schema::{Connection, Restriction, Row, Table};
use serde_json::{Value as Json, json};

use crate::cli::{BlobCommand, Command, SchemaCommand, TableCommand};
use crate::error::{CliError, EXIT_ERROR, EXIT_OK, Result};
use crate::item_json::item_to_json;
use crate::{Ctx, lifecycle, pipeline};

/// Where a store keeps its objects, in one phrase (no secrets).
fn store_place(s: &StoreSpec) -> String {
    let loc = s.location.trim_matches('/');
    let option = |k: &str| s.options.get(k).and_then(|v| v.as_str()).unwrap_or("?");
    match s.protocol.as_str() {
        "s3" => format!("s3://{}/{loc} at {}", option("bucket"), option("endpoint")),
        "gcs" => format!("gs://{}/{loc}", option("bucket")),
        "azure" => format!("azure://{}/{loc}", option("container")),
        _ => s.location.clone(),
    }
}

/// `dj config check`.
pub(crate) fn config_check(ctx: &mut Ctx<'_>, config: &Config) -> Result<u8> {
    let registry = Registry::global();
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = datajoint::check_registry() {
        problems.push(format!("this build of dj is incomplete: {e}"));
    }
    let mut stores = Vec::new();
    for spec in config.stores.specs.values() {
        let linked = registry.protocol(&spec.protocol).is_some();
        if !linked {
            problems.push(format!(
                "store `{}` uses protocol `{}`, which this build of dj does not link \
                 (build dj-cli with `--features {}`)",
                spec.name, spec.protocol, spec.protocol
            ));
        }
        stores.push((spec, linked));
    }
    let db = &config.database;
    // DataJoint variables that are set but have no effect here: said, not silently skipped.
    let mut unread: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| is_unread_datajoint_env_var(k))
        .collect();
    unread.sort();
    if ctx.json {
        let store_list: Vec<Json> = stores
            .iter()
            .map(|(s, linked)| {
                json!({
                    "name": s.name,
                    "protocol": s.protocol,
                    "place": store_place(s),
                    "linked": linked,
                })
            })
            .collect();
        ctx.emit(&json!({
            "ok": problems.is_empty(),
            "source": config.source.as_ref().map(|p| p.display().to_string()),
            "database": {
                "backend": db.backend.as_str(),
                "target": db.target(),
                "chosen_by": db.backend_source.to_string(),
            },
            "unread_env": unread,
            "config": config.redacted_json(),
            "stores": store_list,
            "problems": problems,
        }))?;
    } else {
        let source = config.source.as_ref().map_or_else(
            || "(no datajoint.json: defaults and environment)".to_string(),
            |p| p.display().to_string(),
        );
        ctx.line(format!("{:<14} {source}", "configuration"))?;
        if let Some(dir) = &config.secrets_dir {
            ctx.line(format!("{:<14} {}", "secrets", dir.display()))?;
        }
        ctx.line(format!(
            "{:<14} {} at {}",
            "database",
            db.backend,
            db.target()
        ))?;
        ctx.line(format!("  {:<12} {}", "chosen by", db.backend_source))?;
        ctx.line(format!("  {:<12} {}", "backend", db.backend))?;
        let secret = |s: &Option<datajoint::Secret>| s.as_ref().map(|_| "***".to_string());
        let fields: Vec<(&str, Option<String>)> = match db.backend {
            DatabaseBackend::Sqlite => vec![
                (
                    "path",
                    db.url
                        .is_none()
                        .then(|| db.sqlite_path().display().to_string()),
                ),
                ("url", secret(&db.url)),
            ],
            // A URL holds host, port and credentials (and is a secret as a whole).
            _ if db.url.is_some() => vec![
                ("url", secret(&db.url)),
                ("user", db.user.clone()),
                ("password", secret(&db.password)),
                ("name", db.name.clone()),
            ],
            _ => vec![
                ("host", Some(db.host_or_default().to_string())),
                ("port", db.port_or_default().map(|p| p.to_string())),
                ("user", db.user.clone()),
                ("password", secret(&db.password)),
                ("name", db.name.clone()),
                ("url", secret(&db.url)),
            ],
        };
        for (name, value) in fields {
            if let Some(v) = value {
                ctx.line(format!("  {name:<12} {v}"))?;
            }
        }
        let mut defaults = Vec::new();
        if let Some(d) = &config.stores.default {
            defaults.push(format!("default: {d}"));
        }
        if let Some(d) = &config.stores.filepath_default {
            defaults.push(format!("filepath default: {d}"));
        }
        if stores.is_empty() {
            ctx.line("stores         (none)")?;
        } else {
            ctx.line(format!("stores         {}", defaults.join("; ")).trim_end())?;
        }
        for (s, linked) in &stores {
            ctx.line(format!(
                "  {:<12} {:<6} {:<40} {}",
                s.name,
                s.protocol,
                store_place(s),
                if *linked { "linked" } else { "NOT LINKED" }
            ))?;
        }
        if !unread.is_empty() {
            ctx.line(format!(
                "{:<14} {} (DataJoint settings without effect in dj-rs)",
                "not read",
                unread.join(", ")
            ))?;
        }
        if ctx.verbose > 0 {
            ctx.line("resolved configuration (secrets shown as ***):")?;
            ctx.emit(&config.redacted_json())?;
        }
        if problems.is_empty() {
            ctx.line("ok")?;
        }
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// `dj codecs`.
pub(crate) fn codecs(ctx: &mut Ctx<'_>) -> Result<u8> {
    let registry = Registry::global();
    let show = |r: datajoint::CoreResult<TypeSpec>, store: bool| match r {
        // In store mode a chained codec is itself used with `@`.
        Ok(TypeSpec::Codec { name, store: None }) if store => format!("<{name}@>"),
        Ok(t) => t.to_string(),
        Err(_) => "-".to_string(),
    };
    let mut rows = Vec::new();
    for name in registry.list_codecs() {
        let (in_table, in_store) = match registry.codec(&name) {
            Ok(c) => (show(c.dtype(false), false), show(c.dtype(true), true)),
            Err(_) => ("?".into(), "?".into()),
        };
        rows.push((name, in_table, in_store));
    }
    let protocols = registry.list_protocols();
    if ctx.json {
        let codecs: Vec<Json> = rows
            .iter()
            .map(|(n, t, s)| json!({ "name": n, "in_table": t, "in_store": s }))
            .collect();
        ctx.emit(&json!({ "codecs": codecs, "protocols": protocols }))?;
    } else {
        ctx.line(format!(
            "{:<14} {:<16} {}",
            "codec", "stored in table", "stored with @"
        ))?;
        for (n, t, s) in &rows {
            ctx.line(format!("{:<14} {t:<16} {s}", format!("<{n}>")))?;
        }
        ctx.line(format!("store protocols: {}", protocols.join(", ")))?;
    }
    datajoint::check_registry().map_err(CliError::Registry)?;
    Ok(EXIT_OK)
}

/// Open the configured database. A SQLite file that does not exist is an error rather than a
/// new empty database.
async fn connect(config: &Config) -> Result<Connection> {
    let db = &config.database;
    if db.backend == DatabaseBackend::Sqlite && db.url.is_none() {
        let path = db.sqlite_path();
        if path.as_os_str() != ":memory:" && !path.exists() {
            return Err(CliError::NoDatabase {
                path: path.display().to_string(),
            });
        }
    }
    Ok(Connection::open(config).await?)
}

/// Run a command that needs the database.
pub(crate) async fn database_command(
    ctx: &mut Ctx<'_>,
    command: &Command,
    config: Config,
) -> Result<u8> {
    let conn = connect(&config).await?;
    let result = match command {
        Command::Schema(SchemaCommand::List) => schema_list(ctx, &conn).await,
        Command::Table(TableCommand::List { schema }) => table_list(ctx, &conn, schema).await,
        Command::Table(TableCommand::Describe { schema, table }) => {
            table_describe(ctx, &conn, schema, table).await
        }
        Command::Gc(args) => lifecycle::gc(ctx, &conn, args).await,
        Command::Verify(args) => lifecycle::verify(ctx, &conn, args).await,
        Command::Migrate(args) => lifecycle::migrate(ctx, &conn, args).await,
        Command::Blob(BlobCommand::Cat {
            schema,
            table,
            attribute,
            keys,
        }) => blob_cat(ctx, &conn, schema, table, attribute, keys).await,
        Command::Diagram(args) => pipeline::diagram(ctx, &conn, args).await,
        Command::Jobs(args) => pipeline::jobs(ctx, &conn, args).await,
        Command::Delete(args) => pipeline::delete(ctx, &conn, args).await,
        Command::Config(_) | Command::Codecs => Ok(EXIT_OK),
    };
    conn.close().await;
    result
}

async fn schema_list(ctx: &mut Ctx<'_>, conn: &Connection) -> Result<u8> {
    let schemas = conn.list_schemas().await?;
    if ctx.json {
        ctx.emit(&schemas)?;
    } else {
        for s in &schemas {
            ctx.line(s)?;
        }
    }
    Ok(EXIT_OK)
}

async fn table_list(ctx: &mut Ctx<'_>, conn: &Connection, schema: &str) -> Result<u8> {
    let tables = conn.existing_schema(schema).await?.list_tables().await?;
    let rows: Vec<(String, String, String)> = tables
        .into_iter()
        .map(|t| {
            let tier = Tier::of(&t).map_or_else(|| "-".to_string(), |t| t.to_string());
            let class = class_name(&t);
            (t, tier, class)
        })
        .collect();
    if ctx.json {
        let list: Vec<Json> = rows
            .iter()
            .map(|(t, tier, class)| json!({ "name": t, "tier": tier, "class": class }))
            .collect();
        ctx.emit(&list)?;
    } else {
        for (t, tier, class) in &rows {
            ctx.line(format!("{t:<32} {tier:<9} {class}"))?;
        }
    }
    Ok(EXIT_OK)
}

/// Open a table by SQL name (`session`, `#rig`) or class name (`Session`, `Session.Trial`).
pub(crate) async fn open_table(conn: &Connection, schema: &str, table: &str) -> Result<Table> {
    let s = conn.existing_schema(schema).await?;
    let t = if table.starts_with(|c: char| c.is_ascii_uppercase()) {
        s.table_by_class(table).await?
    } else {
        s.table(table).await?
    };
    Ok(t)
}

async fn table_describe(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    schema: &str,
    table: &str,
) -> Result<u8> {
    let t = open_table(conn, schema, table).await?;
    let definition = t.describe();
    if ctx.json {
        ctx.emit(&json!({
            "table": t.full_name(),
            "tier": t.tier().map(|t| t.to_string()),
            "definition": definition,
            "heading": t.heading(),
        }))?;
    } else {
        ctx.line(definition.trim_end())?;
    }
    Ok(EXIT_OK)
}

/// A `--key` value converted for its attribute's type.
fn key_value(attr: &Attribute, text: &str) -> std::result::Result<Value, String> {
    let int = |t: &str| {
        let t = t.trim();
        t.parse::<i64>()
            .map(Value::Int)
            .or_else(|_| t.parse::<u64>().map(Value::UInt))
            .map_err(|_| format!("`{t}` is not an integer"))
    };
    let float = |t: &str| {
        t.trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("`{t}` is not a number"))
    };
    match &attr.spec {
        TypeSpec::Core(c) => match c {
            CoreType::Int8
            | CoreType::Int16
            | CoreType::Int32
            | CoreType::Int64
            | CoreType::UInt8
            | CoreType::UInt16
            | CoreType::UInt32
            | CoreType::UInt64 => int(text),
            CoreType::Float32 | CoreType::Float64 => float(text),
            CoreType::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Value::Bool(true)),
                "false" | "0" | "no" => Ok(Value::Bool(false)),
                _ => Err(format!("`{text}` is not a bool (true or false)")),
            },
            _ => Ok(Value::String(text.to_string())),
        },
        TypeSpec::Native(n) => {
            let n = n.to_ascii_lowercase();
            if n.contains("int") {
                int(text)
            } else if n.contains("float") || n.contains("double") || n.contains("real") {
                float(text)
            } else {
                Ok(Value::String(text.to_string()))
            }
        }
        TypeSpec::Codec { .. } => Err(format!(
            "it is a codec attribute (`{}`), which cannot be matched",
            attr.spec
        )),
    }
}

/// Parse `attr=value` arguments into a key for `table`.
pub(crate) fn parse_keys(table: &Table, args: &[String]) -> Result<Row> {
    let mut row = Row::new();
    for arg in args {
        let bad = |message: String| CliError::BadKey {
            arg: arg.clone(),
            message,
        };
        let (name, text) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected ATTRIBUTE=VALUE".into()))?;
        let name = name.trim();
        let attr = table.heading().attribute(name).ok_or_else(|| {
            bad(format!(
                "table `{}` has no attribute `{name}`; its primary key: {}",
                table.full_name(),
                table.heading().primary_key().join(", ")
            ))
        })?;
        let value = key_value(attr, text).map_err(|m| bad(format!("attribute `{name}`: {m}")))?;
        if row.insert(name.to_string(), value).is_some() {
            return Err(bad(format!("attribute `{name}` is given twice")));
        }
    }
    Ok(row)
}

/// A key as compact JSON, for messages.
pub(crate) fn key_json(row: &Row) -> String {
    let map: serde_json::Map<String, Json> = row
        .iter()
        .map(|(k, v)| {
            let j = match v {
                Value::Int(i) => json!(i),
                Value::UInt(u) => json!(u),
                Value::Float(f) => json!(f),
                Value::Bool(b) => json!(b),
                Value::String(s) => json!(s),
                other => json!(other.kind()),
            };
            (k.clone(), j)
        })
        .collect();
    Json::Object(map).to_string()
}

async fn blob_cat(
    ctx: &mut Ctx<'_>,
    conn: &Connection,
    schema: &str,
    table: &str,
    attribute: &str,
    keys: &[String],
) -> Result<u8> {
    let t = open_table(conn, schema, table).await?;
    let heading = t.heading();
    let attr = heading
        .attribute(attribute)
        .ok_or_else(|| CliError::NoAttribute {
            table: t.full_name(),
            attribute: attribute.to_string(),
            known: heading.visible_names().join(", "),
        })?;
    let not_blob = || CliError::NotBlob {
        table: t.full_name(),
        attribute: attribute.to_string(),
        spec: attr.spec.to_string(),
    };
    if !attr.spec.is_codec() {
        return Err(not_blob());
    }
    let resolved = ResolvedType::resolve(&attr.spec, Registry::global(), conn.config())
        .map_err(|e| e.with_attribute(attribute))?;
    if !resolved.chain.iter().any(|c| c.name() == "blob") {
        return Err(not_blob());
    }
    let key = parse_keys(&t, keys)?;
    let shown = key_json(&key);
    let mut names: Vec<String> = heading
        .primary_key()
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !names.iter().any(|n| n == attribute) {
        names.push(attribute.to_string());
    }
    let rows = t
        .restrict(Restriction::from(key))
        .attrs(names)
        .fetch_rows()
        .await?;
    let row = match rows.as_slice() {
        [one] => one,
        [] => {
            return Err(CliError::NoRow {
                table: t.full_name(),
                key: shown,
            });
        }
        many => {
            return Err(CliError::ManyRows {
                table: t.full_name(),
                key: shown,
                found: many.len(),
                primary_key: heading.primary_key().join(", "),
            });
        }
    };
    let value = match row.get(attribute) {
        None | Some(Value::Null) => Json::Null,
        Some(v) => match v.as_domain::<Item>() {
            Some(item) => item_to_json(item),
            None => return Err(not_blob()),
        },
    };
    // One line, whatever the size: arrays pretty-printed one number a line are unreadable.
    ctx.line(value.to_string())?;
    Ok(EXIT_OK)
}
