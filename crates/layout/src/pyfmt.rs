//! Python's text formats where dj-rs must match them byte for byte: `repr(float)` (used by
//! DataJoint for primary-key path segments) and `json.dumps` with its default separators and
//! `ensure_ascii` (what DataJoint writes into MySQL/MariaDB `json` columns, which keep the text).
//!
//! ```
//! use dj_layout::pyfmt::{float_repr, json_dumps};
//! use serde_json::json;
//!
//! assert_eq!(float_repr(1.0), "1.0");
//! assert_eq!(float_repr(1e-5), "1e-05");
//! assert_eq!(float_repr(1.5e16), "1.5e+16");
//! assert_eq!(json_dumps(&json!({"a": [1, 2.5, null], "b": "é"})), r#"{"a": [1, 2.5, null], "b": "\u00e9"}"#);
//! ```

use std::fmt::Write;

/// Python's `repr(x)` for a float: the shortest digits that round-trip, in fixed notation when
/// the decimal exponent is in `-5 < e < 16`, otherwise in exponent notation (`1e-05`, `1e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "1.5e16", "-1e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// Python's `json.dumps(value)` with default arguments: `", "` and `": "` separators, non-ASCII
/// escaped as `\uXXXX` (surrogate pairs above the BMP), floats as `repr`, `NaN`/`Infinity` for
/// non-finite floats, keys in the map's order.
pub fn json_dumps(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value as J;
    match value {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(f64::NAN);
                match float_repr(f).as_str() {
                    "nan" => out.push_str("NaN"),
                    "inf" => out.push_str("Infinity"),
                    "-inf" => out.push_str("-Infinity"),
                    s => out.push_str(s),
                }
            } else {
                let _ = write!(out, "{n}");
            }
        }
        J::String(s) => write_str(out, s),
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn float_repr_matches_python() {
        // Values and their Python 3 repr.
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (123456.789, "123456.789"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0f64.powi(60), "1.152921504606847e+18"),
        ] {
            assert_eq!(float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn json_dumps_matches_python() {
        let v =
            json!({"hash": "abc", "path": "_hash/s/abc", "schema": "s", "store": null, "size": 11});
        assert_eq!(
            json_dumps(&v),
            r#"{"hash": "abc", "path": "_hash/s/abc", "schema": "s", "store": null, "size": 11}"#
        );
        assert_eq!(
            json_dumps(&json!("tab\there \"q\" ü 😀")),
            r#""tab\there \"q\" \u00fc \ud83d\ude00""#
        );
        assert_eq!(json_dumps(&json!([1.0, 1e-5, -3])), "[1.0, 1e-05, -3]");
        assert_eq!(json_dumps(&json!({})), "{}");
    }

    proptest! {
        #[test]
        fn float_repr_round_trips(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL) {
            let s = float_repr(x);
            prop_assert_eq!(s.parse::<f64>().unwrap(), x);
        }

        #[test]
        fn json_dumps_parses_back(s in "\\PC{0,20}", n in any::<i64>(), f in proptest::num::f64::NORMAL) {
            let v = json!({"s": s, "n": n, "f": f, "l": [s, n]});
            let back: serde_json::Value = serde_json::from_str(&json_dumps(&v)).unwrap();
            prop_assert_eq!(back, v);
        }
    }
}
