//! A text preview of a query's result, like DataJoint's table repr.

use std::fmt;

use dj_core::value::Value;

use super::Query;
use crate::error::Result;

/// Rows shown by [`Query::preview`] (DataJoint's `display.limit`).
pub const PREVIEW_ROWS: u64 = 12;

/// The first rows of a query and its row count; `Display` prints them like DataJoint's table
/// repr: the primary-key attributes marked with `*`, then the rows, then the total.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The column names, in heading order.
    pub columns: Vec<String>,
    /// Whether each column is in the primary key.
    pub in_key: Vec<bool>,
    /// The first rows, as text (codec columns show as `=BLOB=`/`=OBJ=`-style markers, as
    /// DataJoint does, without downloading anything).
    pub rows: Vec<Vec<String>>,
    /// How many rows the query has in all.
    pub total: u64,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Decimal(s) | Value::String(s) => s.clone(),
        Value::Bytes(_) => "=BLOB=".into(),
        Value::Uuid(u) => u.to_string(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Json(j) => j.to_string(),
        _ => "=OBJ=".into(),
    }
}

impl Query {
    /// The first rows (by the query's order; the primary key if none) and the row count.
    pub async fn preview(&self) -> Result<Preview> {
        let h = self.heading_ref()?.clone();
        let columns: Vec<String> = h.names().iter().map(|n| n.to_string()).collect();
        let in_key: Vec<bool> = h.attributes().map(|a| a.in_key).collect();
        let codec: Vec<bool> = h.attributes().map(|a| a.has_codec()).collect();
        let total = self.len().await?;
        let first = match &self.node.kind {
            super::Kind::Top { .. } => self.top(Some(PREVIEW_ROWS), Vec::<String>::new(), 0),
            _ => self.top(Some(PREVIEW_ROWS), ["KEY"], 0),
        };
        let stored = first.fetch_stored().await?;
        let rows = stored
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .zip(&codec)
                    .map(|(c, is_codec)| match r.get(c) {
                        Some(Value::Null) | None => "None".into(),
                        Some(_) if *is_codec => "=BLOB=".into(),
                        Some(v) => cell(v),
                    })
                    .collect()
            })
            .collect();
        Ok(Preview {
            columns,
            in_key,
            rows,
            total,
        })
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let heads: Vec<String> = self
            .columns
            .iter()
            .zip(&self.in_key)
            .map(|(c, k)| if *k { format!("*{c}") } else { c.clone() })
            .collect();
        let widths: Vec<usize> = heads
            .iter()
            .enumerate()
            .map(|(i, h)| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count().min(24))
                    .chain([h.chars().count()])
                    .max()
                    .unwrap_or(0)
                    .max(6)
            })
            .collect();
        let pad = |s: &str, w: usize| {
            let t: String = if s.chars().count() > w {
                s.chars().take(w.saturating_sub(1)).chain(['…']).collect()
            } else {
                s.to_string()
            };
            format!("{t:<w$}")
        };
        let line: Vec<String> = heads.iter().zip(&widths).map(|(h, w)| pad(h, *w)).collect();
        writeln!(f, "{}", line.join("   ").trim_end())?;
        let rule: Vec<String> = widths
            .iter()
            .map(|w| format!("+{}+", "-".repeat(*w)))
            .collect();
        writeln!(f, "{}", rule.join(" "))?;
        for r in &self.rows {
            let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
            writeln!(f, "{}", line.join("   ").trim_end())?;
        }
        if (self.rows.len() as u64) < self.total {
            writeln!(f, "   ...")?;
        }
        write!(f, " (Total: {})", self.total)
    }
}
