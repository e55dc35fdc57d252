//! DataJoint's naming rules: class names to SQL table names, tier prefixes and back.
//!
//! ```
//! use dj_schema::naming::{table_name, class_name, Tier};
//! assert_eq!(table_name("SessionTrial", Tier::Manual).unwrap(), "session_trial");
//! assert_eq!(table_name("Rig", Tier::Lookup).unwrap(), "#rig");
//! assert_eq!(table_name("Proc", Tier::Computed).unwrap(), "__proc");
//! assert_eq!(Tier::of("session__trial"), Some(Tier::Part));
//! assert_eq!(class_name("#rig"), "Rig");
//! ```

use std::fmt;

use crate::Backend;

use crate::dialect::dialect;
use crate::error::{Error, Result};

/// A table's tier: how its rows come to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Entered by hand or by scripts (no prefix).
    Manual,
    /// Reference data with fixed contents (`#` prefix).
    Lookup,
    /// Read from outside files by `make` (`_` prefix).
    Imported,
    /// Computed from other tables by `make` (`__` prefix).
    Computed,
    /// A part of a master table (`master__part`).
    Part,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Manual => "manual",
            Tier::Lookup => "lookup",
            Tier::Imported => "imported",
            Tier::Computed => "computed",
            Tier::Part => "part",
        })
    }
}

/// Whether `s` matches DataJoint's base table-name pattern `[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*`.
fn is_base(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    s.split('_').all(|seg| {
        let mut c = seg.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_lowercase())
            && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
    })
}

fn tier_of_master(s: &str) -> Option<Tier> {
    if let Some(rest) = s.strip_prefix("__") {
        is_base(rest).then_some(Tier::Computed)
    } else if let Some(rest) = s.strip_prefix('_') {
        is_base(rest).then_some(Tier::Imported)
    } else if let Some(rest) = s.strip_prefix('#') {
        is_base(rest).then_some(Tier::Lookup)
    } else {
        is_base(s).then_some(Tier::Manual)
    }
}

impl Tier {
    /// The tier of an SQL table name, as DataJoint recognises it; `None` for names that match
    /// no tier (part of a part, upper case, hidden `~` tables).
    pub fn of(table: &str) -> Option<Tier> {
        if let Some(t) = tier_of_master(table) {
            return Some(t);
        }
        // A part: a master of any tier, `__`, a base name. Search from the right so that
        // `__proc__detail` splits as `__proc` + `detail`.
        let (master, part) = table.rsplit_once("__")?;
        if master.is_empty() || !is_base(part) {
            return None;
        }
        tier_of_master(master).map(|_| Tier::Part)
    }

    /// The SQL prefix of this tier (empty for Manual and Part).
    pub fn prefix(self) -> &'static str {
        match self {
            Tier::Manual | Tier::Part => "",
            Tier::Lookup => "#",
            Tier::Imported => "_",
            Tier::Computed => "__",
        }
    }
}

/// `SessionTrial` → `session_trial`, `MRIScan` → `m_r_i_scan`, as DataJoint's `from_camel_case`.
pub fn snake_case(class: &str) -> Result<String> {
    let mut chars = class.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(Error::InvalidName {
            name: class.to_string(),
            reason: "a table class name must be CamelCase: an upper-case letter, then letters and digits"
                .into(),
        });
    }
    let mut out = String::with_capacity(class.len() + 4);
    for (i, c) in class.chars().filter(|&c| c != '_').enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The SQL name of a table of class `class` in tier `tier` (not for parts; see [`part_name`]).
pub fn table_name(class: &str, tier: Tier) -> Result<String> {
    if tier == Tier::Part {
        return Err(Error::InvalidName {
            name: class.to_string(),
            reason: "a part table's name needs its master; use `part_name`".into(),
        });
    }
    Ok(format!("{}{}", tier.prefix(), snake_case(class)?))
}

/// The SQL name of part `class` of master table `master` (`session` + `Trial` → `session__trial`).
pub fn part_name(master: &str, class: &str) -> Result<String> {
    Ok(format!("{master}__{}", snake_case(class)?))
}

/// The class name of an SQL table name: `#rig` → `Rig`, `session__trial` → `Trial`.
pub fn class_name(table: &str) -> String {
    let base = match Tier::of(table) {
        Some(Tier::Part) => table.rsplit_once("__").map_or(table, |(_, p)| p),
        _ => table.trim_start_matches(['#', '_']),
    };
    base.split('_')
        .map(|seg| {
            let mut c = seg.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The master's SQL name of a part table, `None` for other tables.
pub fn master_of(table: &str) -> Option<&str> {
    if Tier::of(table) == Some(Tier::Part) {
        table.rsplit_once("__").map(|(m, _)| m)
    } else {
        None
    }
}

/// The longest schema, table or attribute name `backend` takes, in characters (names are ASCII,
/// so characters are bytes): 64 on MySQL and MariaDB, 63 on PostgreSQL (which would otherwise cut
/// a longer name silently, so that two names differing only at the end become one), and 63 on
/// SQLite, which has no limit of its own: a schema declared there moves to either server.
pub fn max_identifier_len(backend: Backend) -> usize {
    dialect(backend).max_identifier_len()
}

fn backend_label(backend: Backend) -> &'static str {
    dialect(backend).identifier_limit_label()
}

/// Check that a name of `kind` (`schema`, `table`, `attribute`) fits `backend`'s identifier
/// limit ([`max_identifier_len`]).
pub fn check_identifier_len(backend: Backend, kind: &str, name: &str) -> Result<()> {
    let max = max_identifier_len(backend);
    if name.len() <= max {
        return Ok(());
    }
    Err(Error::InvalidName {
        name: name.to_string(),
        reason: format!(
            "the {kind} name is {} characters long; {} at most {max}",
            name.len(),
            backend_label(backend)
        ),
    })
}

/// Check the SQL name of a table about to be declared on `backend`: its characters
/// ([`check_table_name`]) and its length, prefix included ([`check_identifier_len`]); for an
/// Imported or Computed table also the name of the job table DataJoint gives it
/// (`~~` + the name without its leading `_`), and on MySQL the names of the foreign-key
/// constraints the server derives from the table name (`<table>_ibfk_<n>` for `foreign_keys`
/// foreign keys), which must fit in 63 characters (MariaDB's bound for them).
pub fn check_new_table_name(backend: Backend, name: &str, foreign_keys: usize) -> Result<()> {
    check_table_name(name)?;
    check_identifier_len(backend, "table", name)?;
    if matches!(Tier::of(name), Some(Tier::Imported | Tier::Computed)) {
        let jobs = format!("~~{}", name.trim_start_matches('_'));
        check_identifier_len(backend, "job table", &jobs).map_err(|e| match e {
            Error::InvalidName { reason, .. } => Error::InvalidName {
                name: name.to_string(),
                reason: format!("its job table `{jobs}` is too long: {reason}"),
            },
            other => other,
        })?;
    }
    if let Some(max) = dialect(backend).max_generated_constraint_len()
        && foreign_keys > 0
    {
        let constraint = format!("{name}_ibfk_{foreign_keys}");
        if constraint.len() > max {
            return Err(Error::InvalidName {
                name: name.to_string(),
                reason: format!(
                    "MySQL and MariaDB name the foreign-key constraints after the table \
                     (`{constraint}`), and those names must fit in {max} characters: with \
                     {foreign_keys} foreign key(s) the table name can have at most {} characters",
                    max - (constraint.len() - name.len())
                ),
            });
        }
    }
    Ok(())
}

/// Check a schema name: lower-case letters, digits and `_`, starting with a letter or `_`, at most
/// 64 characters (each backend's own limit is [`check_identifier_len`]'s). These names are
/// quoted, never escaped, so nothing else is allowed.
pub fn check_schema_name(name: &str) -> Result<()> {
    let mut c = name.chars();
    let ok = matches!(c.next(), Some(ch) if ch.is_ascii_lowercase() || ch == '_')
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: "schema names must be lower-case letters, digits and `_` (at most 64)".into(),
        })
    }
}

/// Check an SQL table name: `[a-z0-9_#~]`, at most 64 characters (MySQL's limit, the largest;
/// each backend's own limit is [`check_identifier_len`]'s).
pub fn check_table_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '#' | '~')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: "table names must be lower-case letters, digits, `_`, `#` or `~` (at most 64)"
                .into(),
        })
    }
}

/// Whether `name` is a valid attribute name: `[a-z_][a-z0-9_]*`.
pub fn is_attribute_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_lowercase() || ch == '_')
        && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_to_snake_like_datajoint() {
        assert_eq!(snake_case("SessionTrial").unwrap(), "session_trial");
        assert_eq!(snake_case("MRIScan").unwrap(), "m_r_i_scan");
        assert_eq!(snake_case("Scan3D").unwrap(), "scan3_d");
        assert!(snake_case("session").is_err());
        assert!(snake_case("Bad-Name").is_err());
    }

    #[test]
    fn identifier_limits_per_backend() {
        let n63 = "a".repeat(63);
        let n64 = "a".repeat(64);
        for b in [Backend::Sqlite, Backend::Postgres] {
            assert!(check_identifier_len(b, "schema", &n63).is_ok());
            let e = check_identifier_len(b, "attribute", &n64)
                .unwrap_err()
                .to_string();
            assert!(e.contains("64 characters") && e.contains("63"), "{e}");
        }
        assert!(check_identifier_len(Backend::MySql, "table", &n64).is_ok());
        assert!(check_identifier_len(Backend::MySql, "table", &"a".repeat(65)).is_err());
        // Tier prefixes count.
        let base = "a".repeat(62);
        assert!(check_new_table_name(Backend::Postgres, &format!("#{base}"), 0).is_ok());
        assert!(check_new_table_name(Backend::Postgres, &format!("__{base}"), 0).is_err());
        assert!(check_new_table_name(Backend::Postgres, &format!("__{}", &base[1..]), 0).is_ok());
        // A part's full name counts.
        let part = format!("{}__{}", "m".repeat(31), "p".repeat(31));
        assert_eq!(part.len(), 64);
        assert!(check_new_table_name(Backend::Sqlite, &part, 0).is_err());
        assert!(check_new_table_name(Backend::MySql, &part, 0).is_ok());
        // An Imported table's job table `~~name` is one longer than `_name`.
        let e = check_new_table_name(Backend::Postgres, &format!("_{base}"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("job table") && e.contains("~~"), "{e}");
        assert!(check_new_table_name(Backend::Postgres, &format!("_{}", &base[1..]), 0).is_ok());
        let imported = format!("_{}", "a".repeat(63));
        assert!(check_new_table_name(Backend::MySql, &imported, 0).is_err());
        // MySQL's foreign-key constraint names.
        let t = "t".repeat(56);
        assert!(check_new_table_name(Backend::MySql, &t, 1).is_ok());
        let e = check_new_table_name(Backend::MySql, &format!("{t}t"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("_ibfk_1") && e.contains("at most 56"), "{e}");
        assert!(check_new_table_name(Backend::MySql, &"t".repeat(55), 10).is_ok());
        assert!(check_new_table_name(Backend::MySql, &t, 10).is_err());
        assert!(check_new_table_name(Backend::Postgres, &format!("{t}tt"), 3).is_ok());
    }

    #[test]
    fn tiers_from_names() {
        assert_eq!(Tier::of("subject"), Some(Tier::Manual));
        assert_eq!(Tier::of("#rig"), Some(Tier::Lookup));
        assert_eq!(Tier::of("_imp"), Some(Tier::Imported));
        assert_eq!(Tier::of("__proc"), Some(Tier::Computed));
        assert_eq!(Tier::of("session__trial"), Some(Tier::Part));
        assert_eq!(Tier::of("#rig__x"), Some(Tier::Part));
        assert_eq!(Tier::of("__proc__detail"), Some(Tier::Part));
        assert_eq!(Tier::of("a__b__c"), None);
        assert_eq!(Tier::of("s_2"), None);
        assert_eq!(Tier::of("~lineage"), None);
        assert_eq!(master_of("__proc__detail"), Some("__proc"));
        assert_eq!(class_name("session__trial"), "Trial");
        assert_eq!(class_name("__proc"), "Proc");
        assert_eq!(class_name("session_trial"), "SessionTrial");
    }
}
