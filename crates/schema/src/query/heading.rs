//! Headings of query expressions: attribute order, primary key and lineage, derived with
//! DataJoint 2.x's rules.

use std::fmt;

use dj_core::typespec::TypeSpec;

use crate::error::{Error, Result};
use crate::heading::ColKind;
use crate::table::{AttrInfo, Table};

/// Where an output attribute's values come from when they are a base table's column (possibly
/// renamed): the codec of that column decodes them.
#[derive(Clone, Debug)]
pub(crate) struct AttrSource {
    pub table: Table,
    /// The attribute's name in `table`.
    pub attr: String,
}

impl AttrSource {
    pub(crate) fn info(&self) -> Option<&AttrInfo> {
        self.table.attr_info(&self.attr)
    }
}

/// One attribute of a query's heading.
#[derive(Clone, Debug)]
pub struct QueryAttribute {
    /// The attribute name.
    pub name: String,
    /// Whether it is part of the primary key.
    pub in_key: bool,
    /// Where it originates (`schema.table.attribute`), read from `~lineage`; `None` for
    /// secondary attributes of their own table and for computed attributes.
    pub lineage: Option<String>,
    /// Whether it may be null (nullable columns, the right side of a left join, `NULL` columns
    /// of a union).
    pub nullable: bool,
    /// The declared type, for attributes that are a table's column (possibly renamed).
    pub spec: Option<TypeSpec>,
    /// The SQL expression of a computed attribute (`proj`, `aggr`), as written.
    pub expression: Option<String>,
    pub(crate) hidden: bool,
    pub(crate) kind: ColKind,
    pub(crate) source: Option<AttrSource>,
}

impl QueryAttribute {
    /// Whether the attribute is computed by a SQL expression.
    pub fn is_computed(&self) -> bool {
        self.source.is_none()
    }

    pub(crate) fn computed(name: &str, expression: &str) -> QueryAttribute {
        QueryAttribute {
            name: name.to_string(),
            in_key: false,
            lineage: None,
            nullable: true,
            spec: None,
            expression: Some(expression.to_string()),
            hidden: false,
            kind: ColKind::Dynamic,
            source: None,
        }
    }

    /// The final (post-codec) type, when the attribute is a column.
    pub(crate) fn final_type(&self) -> Option<&TypeSpec> {
        self.source
            .as_ref()
            .and_then(|s| s.info())
            .map(|i| &i.final_type)
    }

    pub(crate) fn has_codec(&self) -> bool {
        self.source
            .as_ref()
            .and_then(|s| s.info())
            .is_some_and(|i| i.has_codec)
    }
}

/// The heading of a query: its attributes in order, which of them form the primary key, and
/// their lineage. [`crate::Query::heading`] returns it.
#[derive(Clone, Debug)]
pub struct QueryHeading {
    pub(crate) attributes: Vec<QueryAttribute>,
    /// Whether every base table's schema has a `~lineage` table (otherwise the semantic check
    /// of joins is skipped, as in DataJoint).
    pub(crate) lineage_available: bool,
    /// The expression the heading belongs to, for messages (`schema.table` or a summary).
    pub(crate) label: String,
}

impl QueryHeading {
    pub(crate) fn of_table(table: &Table) -> QueryHeading {
        let h = table.heading();
        let attributes = h
            .attributes
            .iter()
            .zip(&table.inner.attrs)
            .map(|(a, info)| QueryAttribute {
                name: a.name.clone(),
                in_key: a.in_key,
                lineage: table.lineage(&a.name).map(str::to_string),
                nullable: a.nullable,
                spec: Some(a.spec.clone()),
                expression: None,
                hidden: a.is_hidden(),
                kind: info.kind,
                source: Some(AttrSource {
                    table: table.clone(),
                    attr: a.name.clone(),
                }),
            })
            .collect();
        QueryHeading {
            attributes,
            lineage_available: table.inner.lineage.is_some(),
            label: table.full_name(),
        }
    }

    /// The visible attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &QueryAttribute> {
        self.attributes.iter().filter(|a| !a.hidden)
    }

    /// The visible attribute names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.attributes().map(|a| a.name.as_str()).collect()
    }

    /// The primary-key attribute names, in order.
    pub fn primary_key(&self) -> Vec<&str> {
        self.attributes()
            .filter(|a| a.in_key)
            .map(|a| a.name.as_str())
            .collect()
    }

    /// The secondary (non-key) attribute names, in order.
    pub fn secondary(&self) -> Vec<&str> {
        self.attributes()
            .filter(|a| !a.in_key)
            .map(|a| a.name.as_str())
            .collect()
    }

    /// A visible attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&QueryAttribute> {
        self.attributes().find(|a| a.name == name)
    }

    /// An attribute by name, hidden ones included.
    pub(crate) fn any_attribute(&self, name: &str) -> Option<&QueryAttribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Whether this heading has every attribute of the primary key of `other` (DataJoint's
    /// "A determines B").
    pub fn determines(&self, other: &QueryHeading) -> bool {
        other
            .primary_key()
            .iter()
            .all(|k| self.attribute(k).is_some())
    }

    /// The error for an attribute this heading lacks, listing the heading.
    pub(crate) fn unknown(&self, attribute: &str) -> Error {
        Error::UnknownAttribute {
            table: self.label.clone(),
            attribute: attribute.to_string(),
            heading: self.names().iter().map(|n| n.to_string()).collect(),
        }
    }

    pub(crate) fn require(&self, attribute: &str) -> Result<&QueryAttribute> {
        self.attribute(attribute)
            .ok_or_else(|| self.unknown(attribute))
    }

    /// Only the visible attributes (derived expressions drop hidden ones).
    pub(crate) fn visible(&self) -> QueryHeading {
        QueryHeading {
            attributes: self.attributes().cloned().collect(),
            lineage_available: self.lineage_available,
            label: self.label.clone(),
        }
    }

    /// DataJoint 2.x's join of headings: with A → B the key is A's and A's attributes come
    /// first; with only B → A it is B's; with neither it is the union, A's first. With
    /// `nullable_pk` (aggregation's left join) the union is taken whatever the dependencies.
    pub(crate) fn join(
        &self,
        other: &QueryHeading,
        nullable_pk: bool,
        label: String,
    ) -> QueryHeading {
        let a = self.visible();
        let b = other.visible();
        let (a_b, b_a) = if nullable_pk {
            (false, false)
        } else {
            (a.determines(&b), b.determines(&a))
        };
        let dependent = |x: &QueryHeading, y: &QueryHeading| -> Vec<QueryAttribute> {
            let mut out: Vec<QueryAttribute> =
                x.attributes().filter(|t| t.in_key).cloned().collect();
            out.extend(x.attributes().filter(|t| !t.in_key).cloned());
            out.extend(
                y.attributes()
                    .filter(|t| x.attribute(&t.name).is_none())
                    .cloned()
                    .map(|mut t| {
                        t.in_key = false;
                        t
                    }),
            );
            out
        };
        let attributes = if a_b {
            dependent(&a, &b)
        } else if b_a {
            dependent(&b, &a)
        } else {
            let a_pk = a.primary_key();
            let b_pk = b.primary_key();
            let mut out: Vec<QueryAttribute> =
                a.attributes().filter(|t| t.in_key).cloned().collect();
            out.extend(
                b.attributes()
                    .filter(|t| t.in_key && !a_pk.contains(&t.name.as_str()))
                    .cloned(),
            );
            out.extend(
                a.attributes()
                    .filter(|t| !t.in_key && !b_pk.contains(&t.name.as_str()))
                    .cloned(),
            );
            out.extend(
                b.attributes()
                    .filter(|t| {
                        !t.in_key
                            && !a_pk.contains(&t.name.as_str())
                            && a.attribute(&t.name).is_none()
                    })
                    .cloned(),
            );
            out
        };
        QueryHeading {
            attributes,
            lineage_available: a.lineage_available && b.lineage_available,
            label,
        }
    }

    /// The same attributes with `pk` (in that order) as the primary key, first.
    pub(crate) fn set_primary_key(&self, pk: &[String], label: String) -> QueryHeading {
        let mut attributes: Vec<QueryAttribute> = pk
            .iter()
            .filter_map(|k| self.attribute(k).cloned())
            .map(|mut a| {
                a.in_key = true;
                a
            })
            .collect();
        attributes.extend(
            self.attributes()
                .filter(|a| !pk.contains(&a.name))
                .cloned()
                .map(|mut a| {
                    a.in_key = false;
                    a
                }),
        );
        QueryHeading {
            attributes,
            lineage_available: self.lineage_available,
            label,
        }
    }

    /// DataJoint's semantic check: namesakes must have the same, known lineage.
    pub(crate) fn check_lineage(&self, other: &QueryHeading) -> Result<()> {
        if !self.lineage_available || !other.lineage_available {
            return Ok(());
        }
        let mut bad = Vec::new();
        for a in self.attributes() {
            if let Some(b) = other.attribute(&a.name)
                && (a.lineage.is_none() || b.lineage.is_none() || a.lineage != b.lineage)
            {
                bad.push((a.name.clone(), a.lineage.clone(), b.lineage.clone()));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        let show = |l: &Option<String>| l.clone().unwrap_or_else(|| "no lineage".into());
        Err(Error::LineageConflict {
            left: self.label.clone(),
            right: other.label.clone(),
            attributes: bad
                .iter()
                .map(|(n, l, r)| format!("{n} ({} vs {})", show(l), show(r)))
                .collect(),
        })
    }
}

impl fmt::Display for QueryHeading {
    /// The heading in definition style: key attributes, `---`, the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>, a: &QueryAttribute| -> fmt::Result {
            match (&a.spec, &a.expression) {
                (_, Some(e)) => writeln!(f, "{} = {}", a.name, e),
                (Some(s), None) => writeln!(f, "{} : {}", a.name, s),
                (None, None) => writeln!(f, "{}", a.name),
            }
        };
        for a in self.attributes().filter(|a| a.in_key) {
            line(f, a)?;
        }
        writeln!(f, "---")?;
        for a in self.attributes().filter(|a| !a.in_key) {
            line(f, a)?;
        }
        Ok(())
    }
}
