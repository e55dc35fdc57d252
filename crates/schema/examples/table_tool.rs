//! The Rust side of the table interop test (`tests/interop/test_tables.py`): it opens, reads,
//! fills, restricts and declares tables on a database DataJoint Python 2.3.5 shares.
//!
//! One JSON request on standard input, one JSON answer on standard output:
//!
//! ```text
//! {"url": "postgres://…" | "mysql://…", "schema": "lab", "op": "read" | "insert" | "delete" | "declare" | "count",
//!  "config": {…}?, …}
//! ```
//!
//! `config` is optional `datajoint.json` content (stores, `download_path`, `blob_compression`);
//! the database always comes from `url`.
//!
//! - `read` `{"tables": ["subject", …]}` → `{"subject": {"tier", "describe", "primary_key",
//!   "attributes", "rows"}}`, rows ordered by primary key;
//! - `insert` `{"table", "rows"}` → `{"inserted": n}` (one transaction);
//! - `delete` `{"table", "key"}` → `{"deleted": n}` (cascading);
//! - `count` `{"table", "semijoin": "other"}` → `{"count": n}`: rows of `table` with a match in
//!   `other` (DataJoint's `table & other`);
//! - `declare` `{"tables": [{"class", "tier", "definition", "master"?, "contents"?}]}` →
//!   `{"declared": ["sql_name", …]}`.
//!
//! Values in rows are JSON, with `{"$blob": hex}` for a `<blob>` (packed blob bytes; written in
//! `compat` mode so Python can compare bytes), `{"$bytes": hex}` for `bytes`, and
//! `{"$attach": name, "hex": contents}` for an attachment (fetched ones also carry `saved_to`),
//! `{"$object": hex, "ext": ".txt"?}` for `<object@>` bytes (a plain string names a local file or
//! folder), and `{"$npy": {"dtype", "shape", "hex"}}` for an `<npy@>` array (little-endian, C
//! order). A fetched `<object@>`/`<filepath@>` value is `{"$objectref": metadata, "verified",
//! "hex" (files) | "files": {relative path: hex} (folders)}`; a fetched `<npy@>` value is
//! `{"$npy": {"dtype", "shape", "hex"}}`, loaded through `NpyRef`. Dates are `YYYY-MM-DD`,
//! datetimes `YYYY-MM-DD HH:MM:SS.ffffff`, decimals and uuids strings.

use std::io::Read;

use dj_codec_attach::Attachment;
use dj_codec_blob::{Compression, EncodeOptions, Item};
use dj_codec_npy::{DType, NpyArray, NpyRef};
use dj_codec_object::ObjectInput;
use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_core::value::Value;
use dj_object::ObjectRef;
use dj_schema::{Connection, Restriction, Row, Schema, Tier};
use serde_json::{Map, Value as Json, json};

// The codecs and store protocols the requests may use.
use dj_codec_filepath as _;
use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unhex(s: &str) -> Fallible<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .map_err(|e| format!("bad hex string ({} characters): {e}", s.len()).into())
}

fn str_field<'a>(req: &'a Json, key: &str) -> Fallible<&'a str> {
    req.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("the request needs a string `{key}`").into())
}

/// A JSON value from the request, as a [`Value`] for the table.
fn to_value(j: &Json) -> Fallible<Value> {
    if let Json::Object(m) = j {
        if let Some(Json::String(h)) = m.get("$blob") {
            let item = dj_codec_blob::decode(&unhex(h)?)?;
            return Ok(Value::domain(item));
        }
        if let Some(Json::String(h)) = m.get("$bytes") {
            return Ok(Value::Bytes(unhex(h)?.into()));
        }
        if let (Some(Json::String(name)), Some(Json::String(h))) = (m.get("$attach"), m.get("hex"))
        {
            return Ok(Value::domain(Attachment::new(name.clone(), unhex(h)?)));
        }
        if let Some(Json::String(h)) = m.get("$object") {
            let data = unhex(h)?;
            return Ok(match m.get("ext").and_then(Json::as_str) {
                Some(ext) => ObjectInput::bytes_with_ext(ext, data).into(),
                None => ObjectInput::bytes(data).into(),
            });
        }
        if let Some(Json::Object(a)) = m.get("$npy") {
            let dtype: DType = a
                .get("dtype")
                .and_then(Json::as_str)
                .ok_or("$npy needs a dtype")?
                .parse()?;
            let shape = a
                .get("shape")
                .and_then(Json::as_array)
                .ok_or("$npy needs a shape")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
                .collect::<Result<Vec<usize>, _>>()?;
            let data = unhex(
                a.get("hex")
                    .and_then(Json::as_str)
                    .ok_or("$npy needs hex")?,
            )?;
            return Ok(Value::domain(NpyArray::new(dtype, shape, false, data)?));
        }
    }
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (_, _, Some(f)) => Value::Float(f),
            _ => return Err(format!("number {n} is out of range").into()),
        },
        Json::String(s) => Value::String(s.clone()),
        other => Value::Json(other.clone()),
    })
}

/// A fetched lazy reference as JSON, read through its own API.
async fn lazy_json(v: &Value) -> Fallible<Option<Json>> {
    if let Some(o) = v.as_domain::<ObjectRef>() {
        let verified = o.verify().await.is_ok();
        let mut m = Map::new();
        m.insert("$objectref".into(), o.metadata().to_json());
        m.insert("verified".into(), json!(verified));
        if o.is_dir() {
            let mut files = Map::new();
            for f in o.walk().await? {
                let data = o.child(&f.path)?.read().await?;
                files.insert(f.path, json!(hex(&data)));
            }
            m.insert("files".into(), Json::Object(files));
        } else {
            m.insert("hex".into(), json!(hex(&o.read().await?)));
        }
        return Ok(Some(Json::Object(m)));
    }
    if let Some(n) = v.as_domain::<NpyRef>() {
        n.verify().await?;
        let a = n.load_raw().await?;
        let mut data = a.data().to_vec();
        if a.fortran_order() {
            return Err("fortran-order arrays are not shown".into());
        }
        data.truncate(a.nbytes());
        return Ok(Some(json!({"$npy": {
            "dtype": a.dtype().to_string(),
            "shape": a.shape(),
            "hex": hex(&data),
        }})));
    }
    Ok(None)
}

/// A fetched [`Value`] as JSON, in the convention above.
async fn to_json(v: &Value) -> Fallible<Json> {
    if let Some(j) = lazy_json(v).await? {
        return Ok(j);
    }
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Decimal(s) | Value::String(s) => json!(s),
        Value::Bytes(b) => json!({ "$bytes": hex(b) }),
        Value::Uuid(u) => json!(u.hyphenated().to_string()),
        Value::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(d) => json!(d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        Value::Json(j) => j.clone(),
        Value::Domain(_) => {
            if let Some(item) = v.as_domain::<Item>() {
                let opts = EncodeOptions {
                    compression: Compression::Compat,
                };
                json!({ "$blob": hex(&dj_codec_blob::encode_with(item, opts)?) })
            } else if let Some(a) = v.as_domain::<Attachment>() {
                json!({
                    "$attach": a.filename,
                    "hex": hex(&a.data),
                    "saved_to": a.saved_to.as_ref().map(|p| p.display().to_string()),
                })
            } else {
                return Err(format!("cannot show a `{}` value", v.kind()).into());
            }
        }
        _ => return Err(format!("cannot show a `{}` value", v.kind()).into()),
    })
}

/// Fetched rows as JSON objects, in the convention above.
async fn rows_json(rows: &[Row]) -> Fallible<Vec<Json>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut m = Map::new();
        for (k, v) in r {
            m.insert(k.clone(), to_json(v).await?);
        }
        out.push(Json::Object(m));
    }
    Ok(out)
}

fn rows_from(req: &Json) -> Fallible<Vec<Row>> {
    let rows = req
        .get("rows")
        .and_then(Json::as_array)
        .ok_or("the request needs an array `rows`")?;
    rows.iter()
        .map(|r| {
            let obj = r.as_object().ok_or("each row is a JSON object")?;
            obj.iter()
                .map(|(k, v)| Ok((k.clone(), to_value(v)?)))
                .collect::<Fallible<Row>>()
        })
        .collect()
}

fn tier_of(name: &str) -> Fallible<Tier> {
    Ok(match name {
        "manual" => Tier::Manual,
        "lookup" => Tier::Lookup,
        "imported" => Tier::Imported,
        "computed" => Tier::Computed,
        "part" => Tier::Part,
        other => return Err(format!("unknown tier `{other}`").into()),
    })
}

async fn read(schema: &Schema, req: &Json) -> Fallible<Json> {
    let mut out = Map::new();
    let tables = req
        .get("tables")
        .and_then(Json::as_array)
        .ok_or("`read` needs an array `tables`")?;
    for name in tables {
        let name = name.as_str().ok_or("table names are strings")?;
        let table = schema.table(name).await?;
        let heading = table.heading();
        let pk: Vec<String> = heading
            .primary_key()
            .into_iter()
            .map(String::from)
            .collect();
        let rows = table.query().order_by(pk.clone()).fetch_rows().await?;
        let rows = rows_json(&rows).await?;
        let attributes: Vec<Json> = heading
            .attributes
            .iter()
            .filter(|a| !a.is_hidden())
            .map(|a| json!({ "name": a.name, "type": a.spec.to_string(), "nullable": a.nullable }))
            .collect();
        out.insert(
            name.to_string(),
            json!({
                "tier": table.tier().map(|t| format!("{t:?}").to_lowercase()),
                "describe": table.describe(),
                "primary_key": pk,
                "attributes": attributes,
                "rows": rows,
            }),
        );
    }
    Ok(Json::Object(out))
}

async fn declare(schema: &Schema, req: &Json) -> Fallible<Json> {
    let specs = req
        .get("tables")
        .and_then(Json::as_array)
        .ok_or("`declare` needs an array `tables`")?;
    let mut declared = Vec::new();
    for spec in specs {
        let class = str_field(spec, "class")?;
        let tier = tier_of(str_field(spec, "tier")?)?;
        let definition = str_field(spec, "definition")?;
        let table = match tier {
            Tier::Part => {
                let master = schema.table(str_field(spec, "master")?).await?;
                schema.declare_part(&master, class, definition).await?
            }
            Tier::Lookup => {
                let contents = rows_from(
                    &json!({ "rows": spec.get("contents").cloned().unwrap_or(json!([])) }),
                )?;
                schema.declare_lookup(class, definition, &contents).await?
            }
            tier => schema.declare(class, tier, definition).await?,
        };
        declared.push(table.name().to_string());
    }
    Ok(json!({ "declared": declared }))
}

async fn run(req: Json) -> Fallible<Json> {
    let url = str_field(&req, "url")?;
    let mut config = match req.get("config") {
        Some(c) => Config::from_json_str(&c.to_string(), std::env::current_dir()?)?,
        None => Config::default(),
    };
    config.database.backend = if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        DatabaseBackend::Mysql
    } else if url.starts_with("postgres") {
        DatabaseBackend::Postgresql
    } else {
        DatabaseBackend::Sqlite
    };
    config.database.url = Some(Secret::new(url.to_string()));
    let conn = Connection::open(&config).await?;
    let schema = conn.schema(str_field(&req, "schema")?).await?;
    let answer = match str_field(&req, "op")? {
        "read" => read(&schema, &req).await?,
        "insert" => {
            let table = schema.table(str_field(&req, "table")?).await?;
            let n = table.insert(&rows_from(&req)?).await?;
            json!({ "inserted": n })
        }
        "delete" => {
            let table = schema.table(str_field(&req, "table")?).await?;
            let key =
                rows_from(&json!({ "rows": [req.get("key").cloned().unwrap_or(json!({}))] }))?;
            let key = key.into_iter().next().unwrap_or_default();
            let n = table.restrict(Restriction::Key(key)).delete().await?;
            json!({ "deleted": n })
        }
        "stored" => {
            // The rows as the database holds them (JSON metadata of stored attributes).
            let table = schema.table(str_field(&req, "table")?).await?;
            let pk: Vec<String> = table
                .heading()
                .primary_key()
                .into_iter()
                .map(String::from)
                .collect();
            let rows = table.query().order_by(pk).fetch_stored().await?;
            let rows = rows_json(&rows).await?;
            json!({ "rows": rows })
        }
        "count" => {
            let table = schema.table(str_field(&req, "table")?).await?;
            let other = schema.table(str_field(&req, "semijoin")?).await?;
            let n = table.restrict(&other).len().await?;
            json!({ "count": n })
        }
        "declare" => declare(&schema, &req).await?,
        other => return Err(format!("unknown op `{other}`").into()),
    };
    conn.close().await;
    Ok(answer)
}

fn main() -> std::process::ExitCode {
    let mut input = String::new();
    let result = std::io::stdin()
        .read_to_string(&mut input)
        .map_err(Into::into)
        .and_then(|_| serde_json::from_str::<Json>(&input).map_err(Into::into))
        .and_then(|req| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(run(req))
        });
    match result {
        Ok(answer) => {
            println!("{answer}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("table_tool: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
