//! The parser of DataJoint's definition language.
//!
//! ```
//! use dj_schema::definition::{parse, DefItem};
//! let def = parse("subject", "# a subject\nsubject_id : int32  # id\n---\nname = \"\" : varchar(64)\n-> [nullable] Rig\nindex(name)")?;
//! assert_eq!(def.comment, "a subject");
//! assert_eq!(def.items.len(), 4);
//! assert!(matches!(&def.items[0], DefItem::Attribute { name, in_key: true, .. } if name == "subject_id"));
//! # Ok::<(), dj_schema::Error>(())
//! ```

use dj_core::typespec::TypeSpec;

use crate::error::{Error, Result};
use crate::naming::is_attribute_name;

/// A parsed definition, before foreign keys are resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// The table comment (first line `# ...`), or empty.
    pub comment: String,
    /// The attribute, foreign-key and index lines, in order.
    pub items: Vec<DefItem>,
}

/// One meaningful line of a definition.
#[derive(Clone, Debug, PartialEq)]
pub enum DefItem {
    /// `name [= default] : type [# comment]`.
    Attribute {
        /// 1-based line number.
        line: usize,
        /// Above `---`.
        in_key: bool,
        /// The attribute name.
        name: String,
        /// The default as written (`null`, `CURRENT_TIMESTAMP`, `"text"`, `5`).
        default: Option<String>,
        /// The type.
        spec: TypeSpec,
        /// The comment.
        comment: String,
    },
    /// `-> [options] Ref[.proj(new='old', ...)]`.
    ForeignKey {
        /// 1-based line number.
        line: usize,
        /// 1-based column of the reference.
        column: usize,
        /// Above `---`.
        in_key: bool,
        /// `[nullable]`.
        nullable: bool,
        /// `[unique]`.
        unique: bool,
        /// The reference path, e.g. `["Subject"]`, `["Session", "Trial"]`, `["other", "Subject"]`.
        reference: Vec<String>,
        /// `(new, old)` renames from `.proj(new='old')`.
        renames: Vec<(String, String)>,
    },
    /// `[unique] index(a, b)`.
    Index {
        /// 1-based line number.
        line: usize,
        /// `unique index`.
        unique: bool,
        /// The attribute names.
        columns: Vec<String>,
    },
}

struct Ctx<'a> {
    table: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: usize, column: usize, message: impl Into<String>) -> Error {
        Error::Definition {
            table: self.table.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Parse a definition of table `table` (the name is used in error messages).
pub fn parse(table: &str, text: &str) -> Result<Definition> {
    let cx = Ctx { table };
    let mut comment = String::new();
    let mut items = Vec::new();
    let mut in_key = true;
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let lead = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if let Some(nul) = raw.find('\0') {
            let what = match leading_attribute(line) {
                Some(name) => format!("attribute `{name}`: "),
                None => String::new(),
            };
            return Err(cx.err(
                line_no,
                raw[..nul].chars().count() + 1,
                format!(
                    "{what}a NUL character is not allowed in a definition (not in defaults, \
                     comments or anywhere else)"
                ),
            ));
        }
        if first && !line.is_empty() {
            first = false;
            if let Some(c) = line.strip_prefix('#') {
                let c = c.trim();
                if c.starts_with(':') {
                    return Err(cx.err(line_no, lead + 2, "a table comment cannot start with `:`"));
                }
                comment = c.to_string();
                continue;
            }
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("---") {
            in_key = false;
            continue;
        }
        if is_foreign_key(line) {
            items.push(parse_fk(&cx, line, line_no, lead, in_key)?);
        } else if let Some((unique, inner)) = index_line(line) {
            let columns = inner
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>();
            if columns.is_empty() {
                return Err(cx.err(line_no, lead + 1, "an index needs at least one attribute"));
            }
            for c in &columns {
                if !is_attribute_name(c) {
                    return Err(cx.err(
                        line_no,
                        lead + 1 + line.find(c.as_str()).unwrap_or(0),
                        format!(
                            "`{c}` is not an attribute name; index expressions are not supported"
                        ),
                    ));
                }
            }
            items.push(DefItem::Index {
                line: line_no,
                unique,
                columns,
            });
        } else if line.starts_with('_') {
            return Err(cx.err(
                line_no,
                lead + 1,
                "attribute names starting with `_` are reserved for the platform",
            ));
        } else {
            let item = parse_attribute(&cx, line, line_no, lead, in_key)?;
            if let DefItem::Attribute { name, .. } = &item
                && items
                    .iter()
                    .any(|it| matches!(it, DefItem::Attribute { name: n, .. } if n == name))
            {
                return Err(cx.err(
                    line_no,
                    lead + 1,
                    format!("attribute `{name}` is declared twice"),
                ));
            }
            items.push(item);
        }
    }
    Ok(Definition { comment, items })
}

/// The attribute a line declares, when it starts like `name =` or `name :`.
fn leading_attribute(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let name = &line[..end];
    let next = line[end..].trim_start().chars().next();
    (!name.is_empty() && matches!(next, Some('=' | ':'))).then_some(name)
}

/// A line is a foreign key when it has `->` with no quote or `#` before it.
fn is_foreign_key(line: &str) -> bool {
    match line.find("->") {
        Some(pos) => !line[..pos].contains(['"', '\'', '#']),
        None => false,
    }
}

/// `^(unique\s+)?index\s*\((.*)\)\s*(#.*)?$`, case-insensitive.
fn index_line(line: &str) -> Option<(bool, &str)> {
    let lower = line.to_ascii_lowercase();
    let (unique, rest_at) = if let Some(r) = lower.strip_prefix("unique") {
        let trimmed = r.trim_start();
        if trimmed.len() == r.len() {
            return None;
        }
        (true, line.len() - trimmed.len())
    } else {
        (false, 0)
    };
    let rest = &line[rest_at..];
    if !rest.to_ascii_lowercase().starts_with("index") {
        return None;
    }
    let rest = rest[5..].trim_start();
    let rest = rest.strip_prefix('(')?;
    let body = match rest.find('#') {
        Some(h) => &rest[..h],
        None => rest,
    };
    let close = body.rfind(')')?;
    if !body[close + 1..].trim().is_empty() {
        return None;
    }
    Some((unique, &rest[..close]))
}

fn parse_fk(
    cx: &Ctx<'_>,
    line: &str,
    line_no: usize,
    lead: usize,
    in_key: bool,
) -> Result<DefItem> {
    let arrow = line.find("->").unwrap_or(0);
    let mut pos = arrow + 2;
    let col = |p: usize| lead + 1 + p;
    let skip_ws = |p: &mut usize| {
        while line[*p..].starts_with(char::is_whitespace) {
            *p += 1;
        }
    };
    if !line[..arrow].trim().is_empty() {
        return Err(cx.err(line_no, col(0), "unexpected text before `->`"));
    }
    skip_ws(&mut pos);
    let mut nullable = false;
    let mut unique = false;
    if line[pos..].starts_with('[') {
        let Some(close) = line[pos..].find(']') else {
            return Err(cx.err(line_no, col(pos), "missing `]` after foreign-key options"));
        };
        for opt in line[pos + 1..pos + close].split(',') {
            match opt.trim().to_ascii_lowercase().as_str() {
                "nullable" => nullable = true,
                "unique" => unique = true,
                "" => {}
                other => {
                    return Err(cx.err(
                        line_no,
                        col(pos + 1),
                        format!("unknown foreign-key option `{other}`; use `nullable` or `unique`"),
                    ));
                }
            }
        }
        pos += close + 1;
        skip_ws(&mut pos);
    }
    if nullable && in_key {
        return Err(cx.err(
            line_no,
            col(arrow),
            "a primary-key foreign key cannot be `[nullable]`",
        ));
    }
    let ref_col = col(pos);
    let rest = line[pos..].trim_end();
    let rest = match find_unquoted(rest, 0, '#') {
        Some(h) => rest[..h].trim_end(),
        None => rest,
    };
    let (path, proj) = match rest.find(".proj(") {
        Some(p) => (&rest[..p], Some(&rest[p + 6..])),
        None => (rest, None),
    };
    let reference: Vec<String> = path.split('.').map(|s| s.trim().to_string()).collect();
    if reference.is_empty()
        || reference
            .iter()
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(cx.err(
            line_no,
            ref_col,
            format!("`{path}` is not a table reference; write `-> Parent` or `-> Parent.proj(new='old')`"),
        ));
    }
    let mut renames = Vec::new();
    if let Some(p) = proj {
        let Some(args) = p.strip_suffix(')') else {
            return Err(cx.err(line_no, ref_col, "missing `)` after `.proj(`"));
        };
        for arg in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let Some((new, old)) = arg.split_once('=') else {
                return Err(cx.err(
                    line_no,
                    ref_col,
                    format!("`{arg}`: projections in foreign keys only rename, as in new='old'"),
                ));
            };
            let new = new.trim();
            let old = old.trim();
            let old = old
                .strip_prefix('\'')
                .and_then(|o| o.strip_suffix('\''))
                .or_else(|| old.strip_prefix('"').and_then(|o| o.strip_suffix('"')))
                .unwrap_or(old);
            if !is_attribute_name(new) || !is_attribute_name(old) {
                return Err(cx.err(line_no, ref_col, format!("bad rename `{arg}`")));
            }
            renames.push((new.to_string(), old.to_string()));
        }
    }
    Ok(DefItem::ForeignKey {
        line: line_no,
        column: ref_col,
        in_key,
        nullable,
        unique,
        reference,
        renames,
    })
}

/// Find `needle` in `s` outside single or double quotes, from byte `from`.
fn find_unquoted(s: &str, from: usize, needle: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s[from..].char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == needle => return Some(from + i),
            None => {}
        }
    }
    None
}

fn parse_attribute(
    cx: &Ctx<'_>,
    line: &str,
    line_no: usize,
    lead: usize,
    in_key: bool,
) -> Result<DefItem> {
    let col = |p: usize| lead + 1 + line[..p].chars().count();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return Err(cx.err(line_no, col(0), "expected an attribute name"));
    }
    if !is_attribute_name(name) {
        return Err(cx.err(
            line_no,
            col(0),
            format!("`{name}` is not a valid attribute name (lower case letters, digits, `_`)"),
        ));
    }
    let mut pos = name_end;
    while line[pos..].starts_with(char::is_whitespace) {
        pos += 1;
    }
    let mut default = None;
    if line[pos..].starts_with('=') {
        let Some(colon) = find_unquoted(line, pos + 1, ':') else {
            return Err(cx.err(
                line_no,
                col(pos),
                format!("attribute `{name}`: expected `:` and a type after the default"),
            ));
        };
        let d = line[pos + 1..colon].trim();
        if d.is_empty() {
            return Err(cx.err(
                line_no,
                col(pos),
                format!("attribute `{name}`: empty default after `=`"),
            ));
        }
        default = Some(d.to_string());
        pos = colon;
    }
    if !line[pos..].starts_with(':') {
        return Err(cx.err(
            line_no,
            col(pos),
            format!("expected `:` after `{name}`, as in `{name} : int32`"),
        ));
    }
    pos += 1;
    while line[pos..].starts_with(char::is_whitespace) {
        pos += 1;
    }
    let type_start = pos;
    let type_end = if line[pos..].starts_with('<') {
        match line[pos..].find('>') {
            Some(e) => pos + e + 1,
            None => {
                return Err(cx.err(
                    line_no,
                    col(pos),
                    format!("attribute `{name}`: missing `>` in codec type"),
                ));
            }
        }
    } else {
        find_unquoted(line, pos, '#').unwrap_or(line.len())
    };
    let type_text = line[type_start..type_end].trim();
    if type_text.is_empty() {
        return Err(cx.err(
            line_no,
            col(type_start),
            format!("attribute `{name}`: expected a type after `:`"),
        ));
    }
    let rest = line[type_end..].trim();
    let comment = if rest.is_empty() {
        String::new()
    } else if let Some(c) = rest.strip_prefix('#') {
        let c = c.trim();
        if c.starts_with(':') {
            return Err(cx.err(
                line_no,
                col(type_end),
                format!("attribute `{name}`: a comment cannot start with `:`"),
            ));
        }
        c.to_string()
    } else {
        return Err(cx.err(
            line_no,
            col(type_end),
            format!("attribute `{name}`: unexpected `{rest}` after the type"),
        ));
    };
    let spec: TypeSpec = type_text.parse().map_err(|e: dj_core::Error| {
        cx.err(line_no, col(type_start), format!("attribute `{name}`: {e}"))
    })?;
    if let TypeSpec::Core(c) = &spec
        && c.to_string().starts_with("uint")
    {
        return Err(cx.err(
            line_no,
            col(type_start),
            format!(
                "attribute `{name}`: unsupported type `{type_text}`: DataJoint 2.x has no unsigned core types"
            ),
        ));
    }
    if in_key
        && default
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("null"))
    {
        return Err(cx.err(
            line_no,
            col(name_end),
            format!("attribute `{name}`: a primary-key attribute cannot default to null"),
        ));
    }
    Ok(DefItem::Attribute {
        line: line_no,
        in_key,
        name: name.to_string(),
        default,
        spec,
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        let d = parse(
            "t",
            "#  comment \n  a=-1:int32#c\n---\n-> [nullable, unique] other.Rig.proj(r='rig') # why\nb = \"x:y\" : varchar(9)\nunique index (a, b)\nINDEX(b)",
        )
        .unwrap();
        assert_eq!(d.comment, "comment");
        assert_eq!(
            d.items[0],
            DefItem::Attribute {
                line: 2,
                in_key: true,
                name: "a".into(),
                default: Some("-1".into()),
                spec: TypeSpec::parse("int32").unwrap(),
                comment: "c".into()
            }
        );
        let DefItem::ForeignKey {
            nullable,
            unique,
            reference,
            renames,
            in_key,
            ..
        } = &d.items[1]
        else {
            panic!()
        };
        assert!(*nullable && *unique && !*in_key);
        assert_eq!(reference, &["other", "Rig"]);
        assert_eq!(renames, &[("r".to_string(), "rig".to_string())]);
        assert!(
            matches!(&d.items[2], DefItem::Attribute { default: Some(x), .. } if x == "\"x:y\"")
        );
        assert!(
            matches!(&d.items[3], DefItem::Index { unique: true, columns, .. } if columns.len() == 2)
        );
        assert!(matches!(&d.items[4], DefItem::Index { unique: false, .. }));
    }

    #[test]
    fn errors_have_line_and_column() {
        let e = parse("t", "a : int32\n  Bad : int32")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 3"), "{e}");
        let e = parse("t", "a int32").unwrap_err().to_string();
        assert!(
            e.contains("line 1, column 3") && e.contains("expected `:`"),
            "{e}"
        );
        let e = parse("t", "a : potato").unwrap_err().to_string();
        assert!(
            e.contains("line 1, column 5") && e.contains("potato"),
            "{e}"
        );
        let e = parse("t", "a = null : int32").unwrap_err().to_string();
        assert!(e.contains("cannot default to null"), "{e}");
        let e = parse("t", "-> [nullable] X").unwrap_err().to_string();
        assert!(e.contains("nullable"), "{e}");
        let e = parse("t", "_a : int32").unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
        let e = parse("t", "a : int32 # :x").unwrap_err().to_string();
        assert!(e.contains("cannot start with `:`"), "{e}");
        let e = parse("t", "a : uint8").unwrap_err().to_string();
        assert!(e.contains("unsigned"), "{e}");
    }

    #[test]
    fn hostile_native_types_name_the_attribute_and_line() {
        for (def, line) in [
            (
                "a : int32\n---\nb : int ); DROP TABLE x; CREATE TABLE y (a int, q decimal(5,2)",
                3,
            ),
            ("a : int32\nb : int unsigned, zz int", 2),
            ("b : int -- x", 1),
            ("b : enum('a') , zz int, c enum('b')", 1),
            ("b : varchar(5) ); DROP TABLE x; --(5)", 1),
        ] {
            let e = parse("t", def).unwrap_err().to_string();
            assert!(
                e.contains(&format!("line {line},")) && e.contains("attribute `b`"),
                "{def}: {e}"
            );
        }
        // Legitimate native types keep working.
        let d = parse(
            "t",
            "a : int unsigned\nb : float(8,3)\nc = 0 : tinyint(3) unsigned",
        )
        .unwrap();
        assert_eq!(d.items.len(), 3);
    }

    #[test]
    fn nul_characters_are_errors() {
        for (def, what) in [
            ("a : int32\n---\nb = \"x\0y\" : varchar(5)", "attribute `b`"),
            ("a : int32  # a\0comment", "attribute `a`"),
            ("# table\0comment\na : int32", "NUL"),
            ("a : enum('x\0', 'y')", "attribute `a`"),
            ("a : int32\nindex(a\0)", "NUL"),
        ] {
            let e = parse("t", def).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("NUL"), "{def:?}: {e}");
        }
    }
}
