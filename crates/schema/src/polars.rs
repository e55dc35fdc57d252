//! Polars data frames (feature `polars`): [`Query::to_polars`] and [`Table::insert_polars`].
//!
//! The frame has one column per fetched attribute, in heading order, typed as for Arrow (the
//! table is in `docs/fetch-forms.md`) with these differences, since Polars has no extension
//! types: a `uuid` is a `String` (hyphenated), JSON (`json` attributes and the
//! stored metadata of `<object@>`, `<npy@>`, `<filepath@>`, `<attach@>`) is a `String` of JSON
//! text, numeric `<blob>` arrays are always `List` columns (elements row-major; the shape of a
//! matrix is not kept), other blob values are `Binary` DataJoint blob bytes. `date` is `Date`,
//! `datetime` is `Datetime(Microseconds)`, `decimal(p, s)` is `Decimal(p, s)`.
//!
//! DataJoint 2.3.5's `to_polars` builds the frame from Python dicts, so Polars infers its types;
//! dj-rs keeps the declared ones.
//!
//! The frame types are Polars' own (`polars-core`, re-exported as [`polars_core`]): the
//! `DataFrame` of the `polars` crate of the same version.

use polars_core::prelude::{
    DataFrame, DataType, IntoColumn, NamedFrom, PlSmallStr, Series, TimeUnit,
};

use dj_core::value::Value;

use crate::Row;
use crate::error::{Error, Result};
use crate::frame::{self, ColData, Column, Prims};
use crate::query::Query;
use crate::table::{InsertOptions, Table};

pub use polars_core;

fn polars_err(table: &str, attribute: &str, e: impl std::fmt::Display) -> Error {
    Error::BadValue {
        table: table.to_string(),
        attribute: attribute.to_string(),
        message: e.to_string(),
    }
}

/// A slice of flat list values as a Series.
fn prims_series(p: &Prims, start: usize, len: usize) -> Series {
    let name = PlSmallStr::EMPTY;
    macro_rules! s {
        ($v:expr) => {
            Series::new(name, $v.get(start..start + len).unwrap_or_default())
        };
    }
    match p {
        Prims::Bool(v) => s!(v),
        Prims::I8(v) => s!(v),
        Prims::U8(v) => s!(v),
        Prims::I16(v) => s!(v),
        Prims::U16(v) => s!(v),
        Prims::I32(v) => s!(v),
        Prims::U32(v) => s!(v),
        Prims::I64(v) => s!(v),
        Prims::U64(v) => s!(v),
        Prims::F32(v) => s!(v),
        Prims::F64(v) => s!(v),
    }
}

fn to_series(table: &str, c: Column) -> Result<Series> {
    let name = PlSmallStr::from(c.name.as_str());
    Ok(match c.data {
        ColData::Null(n) => Series::full_null(name, n, &DataType::Null),
        ColData::Bool(v) => Series::new(name, v),
        ColData::Int8(v) => Series::new(name, v),
        ColData::Int16(v) => Series::new(name, v),
        ColData::Int32(v) => Series::new(name, v),
        ColData::Int64(v) => Series::new(name, v),
        ColData::UInt8(v) => Series::new(name, v),
        ColData::UInt16(v) => Series::new(name, v),
        ColData::UInt32(v) => Series::new(name, v),
        ColData::UInt64(v) => Series::new(name, v),
        ColData::Float32(v) => Series::new(name, v),
        ColData::Float64(v) => Series::new(name, v),
        ColData::Decimal {
            precision,
            scale,
            values,
        } => Series::new(name, values)
            .into_decimal(usize::from(precision), usize::from(scale))
            .map_err(|e| polars_err(table, &c.name, e))?,
        ColData::Utf8(v) | ColData::Json(v) => Series::new(name, v),
        ColData::Binary(v) | ColData::Blob(v) => Series::new(name, v),
        ColData::Uuid(v) => Series::new(
            name,
            v.into_iter()
                .map(|u| u.map(|b| uuid::Uuid::from_bytes(b).hyphenated().to_string()))
                .collect::<Vec<_>>(),
        ),
        ColData::Date(v) => Series::new(name, v).into_date(),
        ColData::DateTime(v) => Series::new(name, v).into_datetime(TimeUnit::Microseconds, None),
        ColData::List {
            values, lengths, ..
        } => {
            let mut start = 0;
            let cells: Vec<Option<Series>> = lengths
                .iter()
                .map(|l| {
                    l.map(|len| {
                        let s = prims_series(&values, start, len);
                        start += len;
                        s
                    })
                })
                .collect();
            if cells.iter().all(Option::is_none) {
                Series::full_null(name, cells.len(), &DataType::Null)
            } else {
                Series::new(name, cells)
            }
        }
    })
}

impl Query {
    /// The matching rows as a Polars `DataFrame`, a column per attribute in heading order,
    /// typed as the [module docs](crate::polars) say.
    ///
    /// ```
    /// # use dj_schema::{Connection, Tier, row};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let mut config = dj_config::Config::default();
    /// # config.database.path = Some(":memory:".into());
    /// # let conn = Connection::open(&config).await?;
    /// let lab = conn.schema("lab").await?;
    /// let subject = lab
    ///     .declare("Subject", Tier::Manual, "subject_id : int32\n---\nname : varchar(16)")
    ///     .await?;
    /// subject.insert1(&row! { "subject_id" => 1, "name" => "Ann" }).await?;
    /// let df = subject.query().to_polars().await?;
    /// assert_eq!(df.height(), 1);
    /// assert_eq!(df.column("name").unwrap().str().unwrap().get(0), Some("Ann"));
    /// # Ok::<(), dj_schema::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn to_polars(&self) -> Result<DataFrame> {
        let full = self.label();
        let columns = frame::fetch_columns(self).await?;
        let height = columns.first().map_or(0, |c| c.data.len());
        let columns = columns
            .into_iter()
            .map(|c| to_series(&full, c).map(IntoColumn::into_column))
            .collect::<Result<Vec<_>>>()?;
        DataFrame::new(height, columns).map_err(|e| Error::Serde {
            table: Some(full),
            message: format!("building the Polars data frame: {e}"),
        })
    }
}

/// List cells as blob arrays.
fn list_values(table: &str, name: &str, s: &Series) -> Result<Vec<Value>> {
    let l = s.list().map_err(|e| polars_err(table, name, e))?;
    (0..l.len())
        .map(|i| (i, l.get_as_series(i)))
        .map(|(i, cell)| {
            let Some(cell) = cell else {
                return Ok(Value::Null);
            };
            let err = |m: String| polars_err(table, name, format!("row {i}: {m}"));
            if cell.null_count() > 0 {
                return Err(err("a list cell holds nulls; blob arrays cannot".into()));
            }
            macro_rules! p {
                ($m:ident, $v:ident) => {
                    Prims::$v(
                        cell.$m()
                            .map_err(|e| err(e.to_string()))?
                            .iter()
                            .flatten()
                            .collect(),
                    )
                };
            }
            let values = match cell.dtype() {
                DataType::Boolean => p!(bool, Bool),
                DataType::Int8 => p!(i8, I8),
                DataType::UInt8 => p!(u8, U8),
                DataType::Int16 => p!(i16, I16),
                DataType::UInt16 => p!(u16, U16),
                DataType::Int32 => p!(i32, I32),
                DataType::UInt32 => p!(u32, U32),
                DataType::Int64 => p!(i64, I64),
                DataType::UInt64 => p!(u64, U64),
                DataType::Float32 => p!(f32, F32),
                DataType::Float64 => p!(f64, F64),
                other => {
                    return Err(err(format!(
                        "lists of {other} have no blob form; only numeric and boolean lists do"
                    )));
                }
            };
            frame::list_value(values, None).map_err(err)
        })
        .collect()
}

/// The values of one Polars column, a [`Value`] per row.
fn series_values(table: &str, s: &Series) -> Result<Vec<Value>> {
    let name = s.name().to_string();
    let err = |e: &dyn std::fmt::Display| polars_err(table, &name, e);
    macro_rules! each {
        ($m:ident, $f:expr) => {
            s.$m()
                .map_err(|e| err(&e))?
                .iter()
                .map(|v| v.map_or(Value::Null, $f))
                .collect()
        };
    }
    Ok(match s.dtype() {
        DataType::Null => vec![Value::Null; s.len()],
        DataType::Boolean => each!(bool, Value::Bool),
        DataType::Int8 => each!(i8, |x: i8| Value::Int(x.into())),
        DataType::Int16 => each!(i16, |x: i16| Value::Int(x.into())),
        DataType::Int32 => each!(i32, |x: i32| Value::Int(x.into())),
        DataType::Int64 => each!(i64, Value::Int),
        DataType::UInt8 => each!(u8, |x: u8| Value::Int(x.into())),
        DataType::UInt16 => each!(u16, |x: u16| Value::Int(x.into())),
        DataType::UInt32 => each!(u32, |x: u32| Value::Int(x.into())),
        DataType::UInt64 => each!(u64, Value::from),
        DataType::Float32 => each!(f32, |x: f32| Value::Float(x.into())),
        DataType::Float64 => each!(f64, Value::Float),
        DataType::String => each!(str, |x: &str| Value::String(x.to_string())),
        DataType::Binary => each!(binary, |x: &[u8]| Value::Bytes(x.to_vec().into())),
        DataType::Date => s
            .date()
            .map_err(|e| err(&e))?
            .physical()
            .iter()
            .map(|d| match d {
                None => Ok(Value::Null),
                Some(d) => frame::days_date(d)
                    .map(Value::Date)
                    .ok_or_else(|| err(&"date out of range")),
            })
            .collect::<Result<_>>()?,
        DataType::Datetime(unit, _) => {
            let unit = *unit;
            s.datetime()
                .map_err(|e| err(&e))?
                .physical()
                .iter()
                .map(|d| {
                    let Some(d) = d else {
                        return Ok(Value::Null);
                    };
                    let micros = match unit {
                        TimeUnit::Milliseconds => d.checked_mul(1000),
                        TimeUnit::Microseconds => Some(d),
                        TimeUnit::Nanoseconds => Some(d.div_euclid(1000)),
                    };
                    micros
                        .and_then(frame::micros_datetime)
                        .map(Value::DateTime)
                        .ok_or_else(|| err(&"datetime out of range"))
                })
                .collect::<Result<_>>()?
        }
        DataType::Decimal(_, scale) => {
            let scale = u8::try_from(*scale).map_err(|e| err(&e))?;
            s.decimal()
                .map_err(|e| err(&e))?
                .physical()
                .iter()
                .map(|v| {
                    v.map_or(Value::Null, |v| {
                        Value::Decimal(frame::decimal_text(v, scale))
                    })
                })
                .collect()
        }
        DataType::List(_) => list_values(table, &name, s)?,
        other => {
            return Err(err(&format!(
                "Polars type {other} has no DataJoint form; cast the column first"
            )));
        }
    })
}

/// Rows of a data frame, a [`Row`] per frame row keyed by column name.
fn rows_of(table: &str, df: &DataFrame) -> Result<Vec<Row>> {
    let columns = df.columns();
    let names: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
    let mut iters = columns
        .iter()
        .map(|c| series_values(table, c.as_materialized_series()).map(Vec::into_iter))
        .collect::<Result<Vec<_>>>()?;
    Ok((0..df.height())
        .map(|_| {
            names
                .iter()
                .zip(iters.iter_mut())
                .map(|(n, it)| (n.clone(), it.next().unwrap_or(Value::Null)))
                .collect()
        })
        .collect())
}

impl Table {
    /// Every row as a Polars `DataFrame`: `self.query().to_polars()`.
    pub async fn to_polars(&self) -> Result<DataFrame> {
        self.query().to_polars().await
    }

    /// Insert the rows of a Polars `DataFrame` (columns named as attributes) in one
    /// transaction, through the normal insert path. Returns the number of rows written.
    /// `List` cells become numeric blob arrays; `Binary` bound for a `<blob>` attribute that
    /// holds DataJoint blob bytes is decoded; `String` bound for a `json` attribute is parsed.
    pub async fn insert_polars(&self, df: &DataFrame) -> Result<u64> {
        self.insert_polars_with(df, InsertOptions::default()).await
    }

    /// [`Table::insert_polars`] with options.
    pub async fn insert_polars_with(&self, df: &DataFrame, opts: InsertOptions) -> Result<u64> {
        let mut rows = rows_of(&self.full_name(), df)?;
        frame::adapt_to(self, &mut rows)?;
        self.insert_with(&rows, opts).await
    }
}
