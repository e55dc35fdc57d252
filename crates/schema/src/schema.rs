//! [`Schema`]: a namespace of tables; declaring tables from definitions and opening existing ones.

use std::any::Any;

use crate::Backend;
use dj_core::codec::ResolvedType;
use dj_core::typespec::{CoreType, StoreRef, TypeSpec};
use serde::Serialize;

use crate::catalog;
use crate::db::{Connection, Param, Sql, qualified};
use crate::ddl;
use crate::definition::{DefItem, parse};
use crate::dialect::{SchemaQuery, dialect};
use crate::error::{Error, Result};
use crate::heading::{Attribute, ForeignKey, Heading, Index};
use crate::naming::{
    Tier, check_identifier_len, check_new_table_name, check_schema_name, part_name, snake_case,
    table_name,
};
use crate::table::{InsertOptions, Table};

/// A schema: a MySQL database, a PostgreSQL schema, or on SQLite a name prefix.
#[derive(Clone, Debug)]
pub struct Schema {
    conn: Connection,
    name: String,
}

impl Connection {
    /// Open schema `name`, creating it when missing.
    pub async fn schema(&self, name: &str) -> Result<Schema> {
        check_schema_name(name)?;
        let backend = self.backend();
        check_identifier_len(backend, "schema", name)?;
        let mut conn = self.acquire().await?;
        let mut ex = conn.exec();
        if !catalog::schema_exists(&mut ex, backend, name).await? {
            let sql = dialect(backend).create_schema_sql(name);
            if sql.params.is_empty() {
                ex.raw(&sql.text).await?;
            } else {
                ex.execute(&sql).await?;
            }
        }
        Ok(Schema {
            conn: self.clone(),
            name: name.to_string(),
        })
    }

    /// The schemas of the database, sorted (for `dj schema list`). On SQLite, every schema
    /// recorded in the file (what [`Connection::schema`] created); on PostgreSQL and MySQL, every
    /// schema except the server's own (`information_schema`, `pg_*`, `mysql`,
    /// `performance_schema`, `sys`), and PostgreSQL's `public` only when it holds tables.
    pub async fn list_schemas(&self) -> Result<Vec<String>> {
        self.schema_names(SchemaQuery::All).await
    }

    /// The schema names of [`Dialect::schemas_sql`](crate::dialect::Dialect::schemas_sql)
    /// (on SQLite every schema recorded in the file).
    pub(crate) async fn schema_names(&self, which: SchemaQuery) -> Result<Vec<String>> {
        let backend = self.backend();
        let mut sql = Sql::new(backend);
        sql.push(&dialect(backend).schemas_sql(which));
        let mut conn = self.acquire().await?;
        let mut ex = conn.exec();
        if dialect(backend).keeps_metadata_tables() {
            catalog::sqlite_bootstrap(&mut ex).await?;
        }
        Ok(catalog::text_rows(&mut ex, &sql, 1)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// Open an existing schema; an error when it does not exist.
    pub async fn existing_schema(&self, name: &str) -> Result<Schema> {
        check_schema_name(name)?;
        check_identifier_len(self.backend(), "schema", name)?;
        let mut conn = self.acquire().await?;
        if !catalog::schema_exists(&mut conn.exec(), self.backend(), name).await? {
            return Err(Error::NoSuchSchema {
                schema: name.to_string(),
            });
        }
        Ok(Schema {
            conn: self.clone(),
            name: name.to_string(),
        })
    }
}

impl Schema {
    /// The schema name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The SQL names of the schema's tables (hidden `~` tables excluded), sorted.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.acquire().await?;
        catalog::list_tables(&mut conn.exec(), self.conn.backend(), &self.name).await
    }

    /// The `~lineage` rows of a table, `(attribute, lineage)` sorted by attribute: where each
    /// primary-key and inherited attribute originates (`schema.table.attribute`).
    pub async fn lineage(&self, sql_name: &str) -> Result<Vec<(String, String)>> {
        let backend = self.conn.backend();
        let mut conn = self.conn.acquire().await?;
        let mut ex = conn.exec();
        if !catalog::table_exists_raw(&mut ex, backend, &self.name, "~lineage").await? {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(backend);
        sql.push("SELECT attribute_name, lineage FROM ")
            .push(&qualified(backend, &self.name, "~lineage"))
            .push(" WHERE table_name = ")
            .bind(Some(Param::Text(sql_name.to_string())), None)
            .push(" ORDER BY attribute_name");
        Ok(catalog::text_rows(&mut ex, &sql, 2)
            .await?
            .into_iter()
            .map(|r| {
                let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                (g(0), g(1))
            })
            .collect())
    }

    /// Open an existing table by its SQL name (`subject`, `#rig`, `session__trial`), reading
    /// its heading from the catalog.
    pub async fn table(&self, sql_name: &str) -> Result<Table> {
        crate::naming::check_table_name(sql_name)?;
        let mut conn = self.conn.acquire().await?;
        let h = catalog::load_heading(
            &mut conn.exec(),
            self.conn.backend(),
            &self.name,
            sql_name,
            0,
        )
        .await
        .map_err(|e| e.in_table(&format!("{}.{sql_name}", self.name)))?;
        let lineage =
            catalog::table_lineages(&mut conn.exec(), self.conn.backend(), &self.name, sql_name)
                .await?;
        Ok(Table::from_heading(self.conn.clone(), h).with_lineage(lineage))
    }

    /// Open an existing table by class name (`Session`, `Rig`, `Session.Trial`), whatever its tier.
    pub async fn table_by_class(&self, class: &str) -> Result<Table> {
        let path: Vec<String> = class.split('.').map(str::to_string).collect();
        let (schema, table) = self.resolve(&path, None).await?;
        let s = if schema == self.name {
            self.clone()
        } else {
            self.conn.existing_schema(&schema).await?
        };
        s.table(&table).await
    }

    /// Find the SQL name of a class in this schema, trying every tier prefix.
    async fn find_class(&self, schema: &str, class: &str) -> Result<Option<String>> {
        let base = snake_case(class)?;
        let mut conn = self.conn.acquire().await?;
        let mut ex = conn.exec();
        for prefix in ["", "#", "_", "__"] {
            let name = format!("{prefix}{base}");
            if catalog::table_exists(&mut ex, self.conn.backend(), schema, &name).await? {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Resolve a foreign-key reference path to `(schema, table)`.
    async fn resolve(&self, path: &[String], master: Option<&Table>) -> Result<(String, String)> {
        let not_found = || Error::NoSuchTable {
            table: path.join("."),
        };
        match path {
            [one] if one == "master" => master
                .map(|m| (m.schema_name().to_string(), m.name().to_string()))
                .ok_or_else(not_found),
            [one] => {
                let t = self
                    .find_class(&self.name, one)
                    .await?
                    .ok_or_else(not_found)?;
                Ok((self.name.clone(), t))
            }
            [a, b] if a.starts_with(|c: char| c.is_ascii_uppercase()) => {
                let m = self
                    .find_class(&self.name, a)
                    .await?
                    .ok_or_else(not_found)?;
                Ok((self.name.clone(), part_name(&m, b)?))
            }
            [s, b] => {
                let t = self.find_class(s, b).await?.ok_or_else(not_found)?;
                Ok((s.clone(), t))
            }
            [s, a, b] => {
                let m = self.find_class(s, a).await?.ok_or_else(not_found)?;
                Ok((s.clone(), part_name(&m, b)?))
            }
            _ => Err(not_found()),
        }
    }

    /// Declare a table of `tier` named after `class` (CamelCase) from a definition, or open it
    /// when it exists already (its catalog heading wins, as in DataJoint).
    pub async fn declare(&self, class: &str, tier: Tier, definition: &str) -> Result<Table> {
        let name = table_name(class, tier)?;
        self.declare_named(&name, definition, None).await
    }

    /// Declare a part table `class` of `master` (`-> master` in the definition refers to it).
    pub async fn declare_part(
        &self,
        master: &Table,
        class: &str,
        definition: &str,
    ) -> Result<Table> {
        let name = part_name(master.name(), class)?;
        self.declare_named(&name, definition, Some(master)).await
    }

    /// Declare a Lookup table and insert its contents (existing rows are kept).
    pub async fn declare_lookup<R: Serialize + Any>(
        &self,
        class: &str,
        definition: &str,
        contents: &[R],
    ) -> Result<Table> {
        let t = self.declare(class, Tier::Lookup, definition).await?;
        t.insert_with(
            contents,
            InsertOptions {
                skip_duplicates: true,
                ..InsertOptions::default()
            },
        )
        .await?;
        Ok(t)
    }

    pub(crate) async fn declare_named(
        &self,
        name: &str,
        definition: &str,
        master: Option<&Table>,
    ) -> Result<Table> {
        crate::naming::check_table_name(name)?;
        let full = format!("{}.{name}", self.name);
        let backend = self.conn.backend();
        {
            let mut conn = self.conn.acquire().await?;
            if catalog::table_exists(&mut conn.exec(), backend, &self.name, name).await? {
                drop(conn);
                return self.table(name).await;
            }
        }
        check_new_table_name(backend, name, 0)?;
        let def = parse(&full, definition)?;
        let mut attributes: Vec<Attribute> = Vec::new();
        let mut foreign_keys: Vec<ForeignKey> = Vec::new();
        let mut indexes: Vec<Index> = Vec::new();
        let mut native_pk = Vec::new();
        let def_err = |line: usize, column: usize, message: String| Error::Definition {
            table: full.clone(),
            line,
            column,
            message,
        };
        let name_err = |line: usize, column: usize, e: Error| match e {
            Error::InvalidName { name, reason } => {
                def_err(line, column, format!("attribute `{name}`: {reason}"))
            }
            other => other,
        };
        for item in &def.items {
            match item {
                DefItem::Attribute {
                    line,
                    in_key,
                    name: attr,
                    default,
                    spec,
                    comment,
                } => {
                    check_identifier_len(backend, "attribute", attr)
                        .map_err(|e| name_err(*line, 1, e))?;
                    let mut spec = spec.clone();
                    let sql_type = match &spec {
                        TypeSpec::Codec { name: codec, store } => {
                            let r = ResolvedType::resolve(
                                &spec,
                                self.conn.inner.registry,
                                self.conn.config(),
                            )
                            .map_err(|e| Error::core_at(&full, attr, e))?;
                            if *in_key
                                && matches!(
                                    r.final_type,
                                    TypeSpec::Core(CoreType::Bytes | CoreType::Json)
                                )
                            {
                                return Err(def_err(
                                    *line,
                                    1,
                                    format!(
                                        "`{attr}`: a primary-key attribute cannot be stored as {}",
                                        r.final_type
                                    ),
                                ));
                            }
                            let sql = ddl::sql_type(backend, &self.name, &r.final_type);
                            // A bare `@` is recorded as the store it resolved to.
                            if let (Some(StoreRef::Default), Some(resolved)) = (store, &r.store) {
                                spec = TypeSpec::Codec {
                                    name: codec.clone(),
                                    store: Some(StoreRef::Named(resolved.clone())),
                                };
                            }
                            sql
                        }
                        other => {
                            if *in_key
                                && matches!(other, TypeSpec::Core(CoreType::Bytes | CoreType::Json))
                            {
                                return Err(def_err(
                                    *line,
                                    1,
                                    format!("`{attr}`: a primary-key attribute cannot be {other}"),
                                ));
                            }
                            ddl::sql_type(backend, &self.name, other)
                        }
                    };
                    let nullable = default
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case("null"));
                    if *in_key {
                        native_pk.push(attr.clone());
                    }
                    attributes.push(Attribute {
                        name: attr.clone(),
                        spec: spec.clone(),
                        sql_type,
                        in_key: *in_key,
                        nullable,
                        default: default.clone(),
                        comment: comment.clone(),
                        inherited: false,
                    });
                }
                DefItem::ForeignKey {
                    line,
                    column,
                    in_key,
                    nullable,
                    unique,
                    reference,
                    renames,
                } => {
                    let (ps, pt) = self.resolve(reference, master).await.map_err(|_| {
                        def_err(
                            *line,
                            *column,
                            format!("`{}` names no existing table", reference.join(".")),
                        )
                    })?;
                    let parent = if ps == self.name {
                        self.table(&pt).await?
                    } else {
                        self.conn.existing_schema(&ps).await?.table(&pt).await?
                    };
                    let ph = parent.heading();
                    for (new, old) in renames {
                        if ph.attribute(old).is_none_or(|a| !a.in_key) {
                            return Err(def_err(
                                *line,
                                *column,
                                format!(
                                    "`{old}` is not a primary-key attribute of `{}`",
                                    parent.full_name()
                                ),
                            ));
                        }
                        let _ = new;
                    }
                    let mut attr_map = Vec::new();
                    for pa in ph.attributes.iter().filter(|a| a.in_key) {
                        let child = renames
                            .iter()
                            .find(|(_, old)| *old == pa.name)
                            .map_or(pa.name.clone(), |(new, _)| new.clone());
                        attr_map.push((child.clone(), pa.name.clone()));
                        if attributes.iter().any(|a| a.name == child) {
                            continue;
                        }
                        check_identifier_len(backend, "attribute", &child)
                            .map_err(|e| name_err(*line, *column, e))?;
                        attributes.push(Attribute {
                            name: child,
                            spec: pa.spec.clone(),
                            sql_type: pa.sql_type.clone(),
                            in_key: *in_key,
                            nullable: *nullable,
                            default: None,
                            comment: pa.comment.clone(),
                            inherited: true,
                        });
                    }
                    foreign_keys.push(ForeignKey {
                        parent_schema: ps,
                        parent_table: pt,
                        attr_map,
                        nullable: *nullable,
                        unique: *unique,
                    });
                }
                DefItem::Index {
                    line,
                    unique,
                    columns,
                } => {
                    for c in columns {
                        if !attributes.iter().any(|a| &a.name == c) {
                            return Err(def_err(
                                *line,
                                1,
                                format!("index on unknown attribute `{c}`"),
                            ));
                        }
                    }
                    indexes.push(Index {
                        unique: *unique,
                        columns: columns.clone(),
                    });
                }
            }
        }
        // Primary-key attributes first, in definition order, then the rest.
        attributes.sort_by_key(|a| !a.in_key);
        if !attributes.iter().any(|a| a.in_key) {
            attributes.insert(
                0,
                Attribute {
                    name: "_singleton".into(),
                    spec: TypeSpec::Core(CoreType::Bool),
                    sql_type: ddl::sql_type(backend, &self.name, &TypeSpec::Core(CoreType::Bool)),
                    in_key: true,
                    nullable: false,
                    default: Some("1".into()),
                    comment: "singleton primary key".into(),
                    inherited: false,
                },
            );
            native_pk.push("_singleton".into());
        }
        let tier = Tier::of(name);
        if matches!(tier, Some(Tier::Computed | Tier::Imported))
            && let Some(bad) = attributes.iter().find(|a| a.in_key && !a.inherited)
        {
            return Err(Error::Definition {
                table: full,
                line: def
                    .items
                    .iter()
                    .find_map(|i| match i {
                        DefItem::Attribute { line, name, .. } if *name == bad.name => Some(*line),
                        _ => None,
                    })
                    .unwrap_or(1),
                column: 1,
                message: format!(
                    "primary-key attribute `{}` of a Computed or Imported table must come from a foreign key",
                    bad.name
                ),
            });
        }
        if matches!(tier, Some(Tier::Computed | Tier::Imported))
            && self.conn.config().jobs.add_job_metadata
        {
            attributes.extend(job_metadata_attributes(backend, &self.name));
        }
        check_new_table_name(backend, name, foreign_keys.len())?;
        let heading = Heading {
            schema: self.name.clone(),
            table: name.to_string(),
            comment: def.comment.clone(),
            attributes,
            foreign_keys,
            indexes,
        };
        ddl::check_literals(&heading).map_err(|message| Error::Refused {
            table: full.clone(),
            message,
        })?;
        self.create(&heading).await.map_err(|e| e.in_table(&full))?;
        let lineage = {
            let mut conn = self.conn.acquire().await?;
            catalog::table_lineages(
                &mut conn.exec(),
                self.conn.backend(),
                &heading.schema,
                &heading.table,
            )
            .await?
        };
        Ok(Table::from_heading(self.conn.clone(), heading).with_lineage(lineage))
    }

    async fn create(&self, h: &Heading) -> Result<()> {
        let backend = self.conn.backend();
        // Lineage rows (computed before the DDL; parents' lineage is read from their schema).
        let mut lineage: Vec<(String, String)> = Vec::new();
        {
            let mut conn = self.conn.acquire().await?;
            let mut ex = conn.exec();
            for a in &h.attributes {
                if a.inherited {
                    let Some((fk, parent_col)) = h.foreign_keys.iter().find_map(|fk| {
                        fk.attr_map
                            .iter()
                            .find(|(c, _)| *c == a.name)
                            .map(|(_, p)| (fk, p))
                    }) else {
                        continue;
                    };
                    let l = catalog::lineage_of(
                        &mut ex,
                        backend,
                        &fk.parent_schema,
                        &fk.parent_table,
                        parent_col,
                    )
                    .await?
                    .unwrap_or_else(|| {
                        format!("{}.{}.{}", fk.parent_schema, fk.parent_table, parent_col)
                    });
                    lineage.push((a.name.clone(), l));
                } else if a.in_key {
                    lineage.push((
                        a.name.clone(),
                        format!("{}.{}.{}", h.schema, h.table, a.name),
                    ));
                }
            }
        }
        let mut statements = Vec::new();
        let types = dialect(backend).schema_types(h);
        if !types.is_empty() {
            let mut conn = self.conn.acquire().await?;
            let mut ex = conn.exec();
            for (exists, create) in types {
                if catalog::text_rows(&mut ex, &exists, 1).await?.is_empty() {
                    ex.raw(&create).await?;
                }
            }
        }
        statements.extend(ddl::create_table(backend, h));
        statements.push(ddl::lineage_table(backend, &h.schema));
        let lineage_table = qualified(backend, &h.schema, "~lineage");
        // SQLite and PostgreSQL run DDL in a transaction; MySQL commits each DDL statement.
        let mut tx = self.conn.begin_tx().await?;
        let mut ex = tx.exec();
        if dialect(backend).keeps_metadata_tables() {
            catalog::sqlite_bootstrap(&mut ex).await?;
        }
        for s in &statements {
            ex.raw(s).await?;
        }
        let mut del = Sql::new(backend);
        del.push("DELETE FROM ")
            .push(&lineage_table)
            .push(" WHERE table_name = ")
            .bind(Some(Param::Text(h.table.clone())), None);
        ex.execute(&del).await?;
        for (attr, l) in &lineage {
            let mut ins = Sql::new(backend);
            ins.push("INSERT INTO ")
                .push(&lineage_table)
                .push(" (table_name, attribute_name, lineage) VALUES (")
                .bind(Some(Param::Text(h.table.clone())), None)
                .push(", ")
                .bind(Some(Param::Text(attr.clone())), None)
                .push(", ")
                .bind(Some(Param::Text(l.clone())), None)
                .push(")");
            ex.execute(&ins).await?;
        }
        if dialect(backend).keeps_metadata_tables() {
            let json = serde_json::to_string(h).map_err(|e| Error::Refused {
                table: h.full_name(),
                message: format!("cannot record metadata: {e}"),
            })?;
            let mut meta = Sql::new(backend);
            meta.push("INSERT INTO ")
                .ident(catalog::SQLITE_TABLES)
                .push(" (schema_name, table_name, heading) VALUES (")
                .bind(Some(Param::Text(h.schema.clone())), None)
                .push(", ")
                .bind(Some(Param::Text(h.table.clone())), None)
                .push(", ")
                .bind(Some(Param::Text(json)), None)
                .push(")");
            ex.execute(&meta).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drop the schema with all its tables (`DROP DATABASE` / `DROP SCHEMA … CASCADE`; on
    /// SQLite every table with the schema's prefix).
    pub async fn drop(self) -> Result<()> {
        let backend = self.conn.backend();
        match dialect(backend).drop_schema_sql(&self.name) {
            None => {
                // Each drop takes its dependents along; parts go with their masters.
                loop {
                    let tables = self.list_tables().await?;
                    if tables.is_empty() {
                        break;
                    }
                    let mut progressed = false;
                    for t in &tables {
                        if let Ok(table) = self.table(t).await
                            && table.tier() != Some(Tier::Part)
                            && table.clone().drop().await.is_ok()
                        {
                            progressed = true;
                        }
                    }
                    if !progressed {
                        let mut conn = self.conn.acquire().await?;
                        let mut ex = conn.exec();
                        for t in &tables {
                            ex.raw(&format!(
                                "DROP TABLE IF EXISTS {}",
                                qualified(backend, &self.name, t)
                            ))
                            .await?;
                            let mut sql = Sql::new(backend);
                            sql.push("DELETE FROM ")
                                .ident(catalog::SQLITE_TABLES)
                                .push(" WHERE schema_name = ")
                                .bind(Some(Param::Text(self.name.clone())), None)
                                .push(" AND table_name = ")
                                .bind(Some(Param::Text(t.clone())), None);
                            ex.execute(&sql).await?;
                        }
                        break;
                    }
                }
                let mut conn = self.conn.acquire().await?;
                let mut ex = conn.exec();
                ex.raw(&format!(
                    "DROP TABLE IF EXISTS {}",
                    qualified(backend, &self.name, "~lineage")
                ))
                .await?;
                let mut sql = Sql::new(backend);
                sql.push("DELETE FROM ")
                    .ident(catalog::SQLITE_SCHEMAS)
                    .push(" WHERE schema_name = ")
                    .bind(Some(Param::Text(self.name.clone())), None);
                ex.execute(&sql).await?;
            }
            Some(drop) => {
                let mut conn = self.conn.acquire().await?;
                conn.exec().raw(&drop).await?;
            }
        }
        Ok(())
    }
}

/// The hidden job-metadata columns DataJoint 2.3.5 adds to Computed and Imported tables when
/// `jobs.add_job_metadata` is set: when the make began, how long it took, the code version.
fn job_metadata_attributes(backend: Backend, schema: &str) -> Vec<Attribute> {
    let attr =
        |name: &str, spec: TypeSpec, nullable: bool, default: &str, comment: &str| Attribute {
            name: name.into(),
            sql_type: ddl::sql_type(backend, schema, &spec),
            spec,
            in_key: false,
            nullable,
            default: Some(default.into()),
            comment: comment.into(),
            inherited: false,
        };
    vec![
        attr(
            "_job_start_time",
            TypeSpec::Core(CoreType::DateTime(Some(3))),
            true,
            "null",
            "when computation began",
        ),
        attr(
            "_job_duration",
            TypeSpec::Core(CoreType::Float32),
            true,
            "null",
            "computation duration in seconds",
        ),
        attr(
            "_job_version",
            TypeSpec::Core(CoreType::Varchar(64)),
            false,
            "\"\"",
            "code version",
        ),
    ]
}
