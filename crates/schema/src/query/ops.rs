//! Operators (`&`, `-`, `^`, `*`, `+`) on queries and tables, and DataJoint's universal set
//! [`U`].

use std::ops::{Add, BitAnd, BitXor, Mul, Sub};

use super::{Kind, ProjSrc, Query, QueryHeading, proj_items, strs};
use crate::error::Error;
use crate::restrict::Restriction;
use crate::table::Table;

/// Anything a query can be made of: a [`Query`] (owned or borrowed) or a [`Table`].
pub trait IntoQuery {
    /// The query.
    fn into_query(self) -> Query;
}

impl IntoQuery for Query {
    fn into_query(self) -> Query {
        self
    }
}

impl IntoQuery for &Query {
    fn into_query(self) -> Query {
        self.clone()
    }
}

impl IntoQuery for &Table {
    fn into_query(self) -> Query {
        self.query()
    }
}

impl IntoQuery for Table {
    fn into_query(self) -> Query {
        self.query()
    }
}

impl From<&Table> for Query {
    fn from(t: &Table) -> Query {
        t.query()
    }
}

macro_rules! operators {
    ($($t:ty),*) => {$(
        /// Restriction: `q & r` is [`Query::restrict`].
        impl<R: Into<Restriction>> BitAnd<R> for $t {
            type Output = Query;
            fn bitand(self, r: R) -> Query {
                self.into_query().restrict(r)
            }
        }

        /// Antijoin / negated restriction: `q - r` is [`Query::exclude`].
        impl<R: Into<Restriction>> Sub<R> for $t {
            type Output = Query;
            fn sub(self, r: R) -> Query {
                self.into_query().exclude(r)
            }
        }

        /// Restriction without the semantic check: `q ^ r` is [`Query::restrict_unchecked`].
        impl<R: Into<Restriction>> BitXor<R> for $t {
            type Output = Query;
            fn bitxor(self, r: R) -> Query {
                self.into_query().restrict_unchecked(r)
            }
        }

        /// Natural join with the semantic check: `a * b` is [`Query::join`].
        impl<Q: IntoQuery> Mul<Q> for $t {
            type Output = Query;
            fn mul(self, other: Q) -> Query {
                self.into_query().join(other)
            }
        }

        /// Union: `a + b` is [`Query::union`].
        impl<Q: IntoQuery> Add<Q> for $t {
            type Output = Query;
            fn add(self, other: Q) -> Query {
                self.into_query().union(other)
            }
        }
    )*};
}

operators!(Query, &Query, &Table);

/// DataJoint's universal set `dj.U(attrs)`: every possible combination of values of some
/// attributes. `&U::new(["species"]) & &q` is the distinct values of `species` in `q` (the
/// primary key of the result); [`U::aggr`] groups by them; `U::new([])` (DataJoint's `dj.U()`)
/// aggregates over everything (one row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct U {
    attrs: Vec<String>,
}

impl U {
    /// The universal set of these attributes.
    pub fn new<S: AsRef<str>>(attrs: impl IntoIterator<Item = S>) -> U {
        U { attrs: strs(attrs) }
    }

    /// `dj.U()`: the set with one element and no attributes.
    pub fn empty() -> U {
        U::default()
    }

    /// The attributes (the primary key of what it makes).
    pub fn attrs(&self) -> &[String] {
        &self.attrs
    }

    fn missing(&self, h: &QueryHeading) -> Option<Error> {
        self.attrs
            .iter()
            .find(|a| h.attribute(a).is_none())
            .map(|a| h.unknown(a))
    }

    /// `dj.U(attrs) & q`: the distinct values of the attributes in `q`, which form the primary
    /// key of the result.
    pub fn restrict(&self, q: impl IntoQuery) -> Query {
        let q = q.into_query();
        let h = match q.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return q.failed(e),
        };
        if let Some(e) = self.missing(&h) {
            return q.failed(e);
        }
        let label = format!("U({}) & {}", self.attrs.join(", "), h.label);
        let mut heading = h.set_primary_key(&self.attrs, label);
        heading.attributes.retain(|a| a.in_key);
        q.make(
            Kind::Distinct {
                src: q.clone(),
                attrs: self.attrs.clone(),
            },
            Ok(heading),
        )
    }

    /// `dj.U(attrs).aggr(q, ...)`: computed items (`"count(*) -> n"`) over the rows of `q`
    /// grouped by the attributes; only combinations present in `q` appear. With no
    /// attributes, one row over all of `q`.
    pub fn aggr<S: AsRef<str>>(
        &self,
        q: impl IntoQuery,
        items: impl IntoIterator<Item = S>,
    ) -> Query {
        let q = q.into_query();
        let h = match q.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return q.failed(e),
        };
        if let Some(e) = self.missing(&h) {
            return q.failed(e);
        }
        let label = format!("U({}).aggr({}, …)", self.attrs.join(", "), h.label);
        let keyed = h.set_primary_key(&self.attrs, label.clone());
        let items = strs(items);
        for it in &items {
            if !it.contains("->") {
                return q.failed(Error::InvalidQuery {
                    expression: label,
                    message: format!(
                        "`{it}`: an aggregation over a universal set takes computed items (`expr -> name`)"
                    ),
                });
            }
        }
        match proj_items(&keyed, &items, q.node.conn.backend()) {
            Ok((out, heading)) => {
                if let Some((n, _)) = out
                    .iter()
                    .find(|(n, p)| matches!(p, ProjSrc::Attr(_)) && !self.attrs.contains(n))
                {
                    return q.failed(Error::InvalidQuery {
                        expression: label,
                        message: format!(
                            "`{n}` is not computed by an aggregate; aggregate it (`max(x) -> {n}`)"
                        ),
                    });
                }
                q.make(
                    Kind::Aggr {
                        group_by: None,
                        group: q.clone(),
                        keep_all: false,
                        items: out,
                        key: self.attrs.clone(),
                    },
                    Ok(heading),
                )
            }
            Err(e) => q.failed(e),
        }
    }
}

/// `U & q` is [`U::restrict`].
impl<Q: IntoQuery> BitAnd<Q> for &U {
    type Output = Query;
    fn bitand(self, q: Q) -> Query {
        self.restrict(q)
    }
}

/// `U & q` is [`U::restrict`].
impl<Q: IntoQuery> BitAnd<Q> for U {
    type Output = Query;
    fn bitand(self, q: Q) -> Query {
        self.restrict(q)
    }
}
