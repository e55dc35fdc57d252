//! Durations on the command line (`--grace 24h`) and byte counts in reports.

use std::time::Duration;

/// Parse a duration: whole numbers with a unit, `s`, `m`, `h`, `d` or `w`, concatenated
/// (`30s`, `30m`, `24h`, `7d`, `1h30m`); a bare number counts seconds (`0`, `90`).
///
/// ```
/// use std::time::Duration;
/// use dj_cli::duration::parse_duration;
/// assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
/// assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("`{text}` is not a duration; use a number with a unit: 30s, 30m, 24h, 7d, 1h30m")
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        if digits.is_empty() {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the units [`parse_duration`] reads: `24h`, `1h30m`, `0s`.
///
/// ```
/// assert_eq!(dj_cli::duration::format_seconds(86_400), "24h");
/// assert_eq!(dj_cli::duration::format_seconds(5_430), "1h30m30s");
/// assert_eq!(dj_cli::duration::format_seconds(0), "0s");
/// ```
pub fn format_seconds(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, name) in [(3_600, 'h'), (60, 'm'), (1, 's')] {
        let n = rest / unit;
        rest %= unit;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
        }
    }
    out
}

/// A byte count for people, in binary units through `indicatif`: `0 B`, `512 B`, `1.50 KiB`,
/// `3.20 GiB`.
///
/// ```
/// assert_eq!(dj_cli::duration::human_bytes(512), "512 B");
/// assert_eq!(dj_cli::duration::human_bytes(1536), "1.50 KiB");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2d12h"), Ok(Duration::from_secs(216_000)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "h",
            "10x",
            "1.5h",
            "10h5",
            "-1s",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for secs in [0, 1, 59, 60, 3600, 86_400, 90_061] {
            assert_eq!(
                parse_duration(&format_seconds(secs)),
                Ok(Duration::from_secs(secs))
            );
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.00 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.00 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.00 EiB");
    }
}
