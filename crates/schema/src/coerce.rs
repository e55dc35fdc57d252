//! Checking a value against a column's final type and turning it into a statement parameter.

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

use crate::db::{Param, parse_datetime_text};
use crate::heading::{ColKind, col_kind};

/// Convert `v` for a column of final type `ty`. `Ok(None)` is NULL. The error says what is wrong,
/// without table or attribute (the caller adds them).
pub(crate) fn to_param(v: &Value, ty: &TypeSpec) -> Result<Option<Param>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let wrong = |expected: &str| format!("expected {expected}, found {}", v.kind());
    if let Value::Domain(_) = v {
        return Err(format!(
            "{} cannot be stored in a `{ty}` column; declare the attribute with a codec that takes it",
            v.kind()
        ));
    }
    let core = match ty {
        TypeSpec::Core(c) => c,
        TypeSpec::Native(_) | TypeSpec::Codec { .. } => return native_param(v, col_kind(ty)),
    };
    use CoreType::*;
    Ok(Some(match core {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
            let (lo, hi): (i128, i128) = match core {
                Int8 => (i8::MIN.into(), i8::MAX.into()),
                Int16 => (i16::MIN.into(), i16::MAX.into()),
                Int32 => (i32::MIN.into(), i32::MAX.into()),
                Int64 => (i64::MIN.into(), i64::MAX.into()),
                UInt8 => (0, u8::MAX.into()),
                UInt16 => (0, u16::MAX.into()),
                UInt32 => (0, u32::MAX.into()),
                _ => (0, u64::MAX.into()),
            };
            let i: i128 = match v {
                Value::Int(i) => (*i).into(),
                Value::UInt(u) => (*u).into(),
                Value::Bool(b) => i128::from(*b),
                Value::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e18 => {
                    *f as i128
                }
                _ => return Err(wrong("an integer")),
            };
            if i < lo || i > hi {
                return Err(format!("{i} is out of range for {core}"));
            }
            match i64::try_from(i) {
                Ok(i) => Param::Int(i),
                Err(_) => Param::BigUInt(i as u64),
            }
        }
        Float32 | Float64 => match v {
            Value::Float(f) => Param::Float(*f),
            Value::Int(i) => Param::Float(*i as f64),
            Value::UInt(u) => Param::Float(*u as f64),
            _ => return Err(wrong("a number")),
        },
        Bool => match v {
            Value::Bool(b) => Param::Bool(*b),
            Value::Int(0) => Param::Bool(false),
            Value::Int(1) => Param::Bool(true),
            _ => return Err(wrong("a bool")),
        },
        Decimal(p, s) => {
            let text = match v {
                Value::Decimal(d) | Value::String(d) => d.clone(),
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                Value::Float(f) if f.is_finite() => format!("{f}"),
                _ => return Err(wrong("a decimal")),
            };
            Param::Text(normalize_decimal(&text, *p, *s)?)
        }
        Char(n) | Varchar(n) => match v {
            Value::String(s) => {
                let len = s.chars().count();
                if len > *n as usize {
                    return Err(format!("a string of {len} characters does not fit {core}"));
                }
                if s.contains('\0') {
                    return Err("strings cannot contain NUL characters".into());
                }
                Param::Text(s.clone())
            }
            _ => return Err(wrong("a string")),
        },
        Enum(values) => match v {
            Value::String(s) if values.contains(s) => Param::Text(s.clone()),
            Value::String(s) => return Err(format!("`{s}` is not one of {core}")),
            _ => return Err(wrong("a string")),
        },
        Uuid => match v {
            Value::Uuid(u) => Param::Uuid(*u),
            Value::String(s) => Param::Uuid(
                uuid::Uuid::parse_str(s).map_err(|e| format!("`{s}` is not a uuid: {e}"))?,
            ),
            Value::Bytes(b) => Param::Uuid(
                uuid::Uuid::from_slice(b).map_err(|_| "uuid bytes must be 16 long".to_string())?,
            ),
            _ => return Err(wrong("a uuid")),
        },
        Json => Param::Json(match v {
            Value::Json(j) => j.clone(),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .ok_or_else(|| "JSON cannot hold NaN or infinity".to_string())?,
            Value::Decimal(d) => serde_json::Value::String(d.clone()),
            _ => return Err(wrong("JSON data")),
        }),
        Bytes => match v {
            Value::Bytes(b) => Param::Bytes(b.clone()),
            _ => return Err(wrong("bytes")),
        },
        Date => match v {
            Value::Date(d) => Param::Date(*d),
            Value::String(s) => Param::Date(
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|e| format!("`{s}` is not a date (YYYY-MM-DD): {e}"))?,
            ),
            _ => return Err(wrong("a date")),
        },
        DateTime(precision) => {
            let d = match v {
                Value::DateTime(d) => *d,
                Value::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
                Value::String(s) => parse_datetime_text(s)
                    .ok_or_else(|| format!("`{s}` is not a datetime (YYYY-MM-DD HH:MM:SS)"))?,
                _ => return Err(wrong("a datetime")),
            };
            Param::DateTime(round_datetime(d, precision.unwrap_or(6)))
        }
    }))
}

/// Round to `digits` fractional-second digits, as the servers do.
fn round_datetime(d: NaiveDateTime, digits: u8) -> NaiveDateTime {
    let unit = 10u32.pow(9 - u32::from(digits.min(6)));
    let nanos = d.nanosecond() % 1_000_000_000;
    let rounded = (nanos + unit / 2) / unit * unit;
    if rounded >= 1_000_000_000 {
        d.with_nanosecond(0)
            .map(|x| x + chrono::Duration::seconds(1))
            .unwrap_or(d)
    } else {
        d.with_nanosecond(rounded).unwrap_or(d)
    }
}

fn native_param(v: &Value, kind: ColKind) -> Result<Option<Param>, String> {
    Ok(Some(match (v, kind) {
        (Value::Bool(b), _) => Param::Bool(*b),
        (Value::Int(i), _) => Param::Int(*i),
        (Value::UInt(u), _) => match i64::try_from(*u) {
            Ok(i) => Param::Int(i),
            Err(_) => Param::BigUInt(*u),
        },
        (Value::Float(f), _) => Param::Float(*f),
        (Value::Decimal(s) | Value::String(s), _) => Param::Text(s.clone()),
        (Value::Bytes(b), _) => Param::Bytes(b.clone()),
        (Value::Uuid(u), _) => Param::Uuid(*u),
        (Value::Json(j), _) => Param::Json(j.clone()),
        (Value::Date(d), _) => Param::Date(*d),
        (Value::DateTime(d), _) => Param::DateTime(*d),
        (other, _) => return Err(format!("{} cannot be stored here", other.kind())),
    }))
}

/// Check a decimal's text and write it with exactly `scale` fraction digits (rounding half up).
pub(crate) fn normalize_decimal(text: &str, precision: u8, scale: u8) -> Result<String, String> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("`{text}` is not a decimal number"));
    }
    let scale = usize::from(scale);
    // All digits as one integer string, scaled by 10^scale, then rounded.
    let mut all: Vec<u8> = int.bytes().map(|b| b - b'0').collect();
    let mut f: Vec<u8> = frac.bytes().map(|b| b - b'0').collect();
    let round_up = f.len() > scale && f[scale] >= 5;
    f.resize(scale, 0);
    all.extend(f);
    if round_up {
        let mut i = all.len();
        loop {
            if i == 0 {
                all.insert(0, 1);
                break;
            }
            i -= 1;
            if all[i] == 9 {
                all[i] = 0;
            } else {
                all[i] += 1;
                break;
            }
        }
    }
    while all.len() > scale + 1 && all[0] == 0 {
        all.remove(0);
    }
    while all.len() < scale + 1 {
        all.insert(0, 0);
    }
    let int_digits = all.len() - scale;
    let significant_int = if all[..int_digits].iter().all(|&d| d == 0) {
        0
    } else {
        int_digits
    };
    if significant_int > usize::from(precision) - scale {
        return Err(format!(
            "`{text}` does not fit decimal({precision},{scale})"
        ));
    }
    let mut out = String::new();
    let is_zero = all.iter().all(|&d| d == 0);
    if neg && !is_zero {
        out.push('-');
    }
    for d in &all[..int_digits] {
        out.push(char::from(b'0' + d));
    }
    if scale > 0 {
        out.push('.');
        for d in &all[int_digits..] {
            out.push(char::from(b'0' + d));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(normalize_decimal("12.5", 6, 2).unwrap(), "12.50");
        assert_eq!(normalize_decimal("-0.005", 6, 2).unwrap(), "-0.01");
        assert_eq!(
            normalize_decimal("9999.995", 6, 2).unwrap_err(),
            "`9999.995` does not fit decimal(6,2)"
        );
        assert_eq!(normalize_decimal("7", 3, 0).unwrap(), "7");
        assert_eq!(normalize_decimal("0.1", 3, 2).unwrap(), "0.10");
        assert!(normalize_decimal("1e5", 8, 2).is_err());
        assert!(normalize_decimal("1; drop table x", 8, 2).is_err());
    }

    #[test]
    fn ranges_and_types() {
        let int8: TypeSpec = "int8".parse().unwrap();
        assert!(
            to_param(&Value::Int(128), &int8)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            to_param(&Value::from("1"), &int8)
                .unwrap_err()
                .contains("expected an integer")
        );
        let v: TypeSpec = "varchar(3)".parse().unwrap();
        assert!(to_param(&Value::from("abcd"), &v).is_err());
        let e: TypeSpec = "enum('a','b')".parse().unwrap();
        assert!(to_param(&Value::from("c"), &e).is_err());
        let dt: TypeSpec = "datetime(3)".parse().unwrap();
        let Some(Param::DateTime(d)) =
            to_param(&Value::from("2024-01-01 00:00:09.123456"), &dt).unwrap()
        else {
            panic!()
        };
        assert_eq!(d.nanosecond(), 123_000_000);
    }
}
