//! `cargo xtask api [--bless] [PACKAGE…]`: the public-API snapshots in `api/`.
//!
//! For each crate in [`CRATES`], rustdoc's JSON output (`--output-format json`, an unstable
//! option that `RUSTC_BOOTSTRAP=1` enables on the stable toolchain) is turned into a sorted list
//! of the crate's public items, one line each: kind, path and, where there is one, signature or
//! type (`pub fn dj_core::config::StoreSpec::new(name: impl Into<String>, …) -> Self`), the
//! trait impls of public types, and re-exports of other crates' items. The list is compared
//! with `api/<crate>.txt`; a difference fails with the lines added and removed, so that the
//! public surface changes only on purpose. `--bless` writes the new lists instead.
//!
//! Items hidden with `#[doc(hidden)]` are not part of the list (rustdoc leaves them out).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;

/// The crates whose public API is snapshotted: package name and the features to document.
pub const CRATES: &[(&str, &[&str])] = &[
    ("dj-core", &[]),
    ("dj-config", &[]),
    ("datajoint", &["--all-features"]),
];

/// The rustdoc JSON format this walker reads (rustdoc-types' `FORMAT_VERSION`).
const FORMAT_VERSION: u64 = 57;

/// Check every snapshot (or rewrite them with `bless`); `only`, when not empty, picks packages.
pub fn run(root: &Path, bless: bool, only: &[&str]) -> Result<()> {
    let target = target_dir(root)?;
    let mut stale = Vec::new();
    if let Some(unknown) = only.iter().find(|p| !CRATES.iter().any(|(c, _)| c == *p)) {
        bail!("`{unknown}` has no API snapshot; known: dj-core, dj-config, datajoint");
    }
    for (package, flags) in CRATES {
        if !only.is_empty() && !only.contains(package) {
            continue;
        }
        let lines = public_api(root, &target, package, flags)?;
        let file = root.join("api").join(format!("{package}.txt"));
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        if bless {
            std::fs::create_dir_all(root.join("api")).context("cannot create api/")?;
            std::fs::write(&file, &text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("xtask: wrote {} ({} items)", file.display(), lines.len());
            continue;
        }
        let old = std::fs::read_to_string(&file).unwrap_or_default();
        if old == text {
            eprintln!(
                "xtask: {package}: public API unchanged ({} items)",
                lines.len()
            );
            continue;
        }
        let old: BTreeSet<&str> = old.lines().collect();
        let new: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
        eprintln!(
            "xtask: {package}: public API differs from {}:",
            file.display()
        );
        for l in new.difference(&old) {
            eprintln!("  + {l}");
        }
        for l in old.difference(&new) {
            eprintln!("  - {l}");
        }
        stale.push(*package);
    }
    if !stale.is_empty() {
        bail!(
            "the public API of {} changed; if on purpose, run `cargo xtask api --bless` and \
             commit api/",
            stale.join(", ")
        );
    }
    Ok(())
}

fn target_dir(root: &Path) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let meta: Json = serde_json::from_slice(&out.stdout).context("cargo metadata: bad JSON")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata: no target_directory")
}

/// The sorted public-API lines of one package.
pub fn public_api(
    root: &Path,
    target: &Path,
    package: &str,
    flags: &[&str],
) -> Result<Vec<String>> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["rustdoc", "--quiet", "-p", package])
        .args(flags)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"]);
    crate::run_cmd(&mut cmd)?;
    let crate_name = package.replace('-', "_");
    let file = target.join("doc").join(format!("{crate_name}.json"));
    let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc: Json =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let lines = lines_of(&doc).with_context(|| format!("reading {}", file.display()))?;
    Ok(lines.into_iter().collect())
}

/// The public-API lines of one rustdoc JSON document.
pub fn lines_of(doc: &Json) -> Result<BTreeSet<String>> {
    let version = doc["format_version"].as_u64().unwrap_or(0);
    if version != FORMAT_VERSION {
        bail!(
            "rustdoc JSON format version {version}, this walker reads {FORMAT_VERSION}: \
             update xtask/src/api.rs for the new format"
        );
    }
    let walker = Walker {
        doc,
        out: BTreeSet::new(),
        seen: HashSet::new(),
    };
    walker.run()
}

struct Walker<'a> {
    doc: &'a Json,
    out: BTreeSet<String>,
    /// (item id, path) pairs already walked, so that re-export cycles end.
    seen: HashSet<(String, String)>,
}

fn id_key(id: &Json) -> String {
    match id {
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'a> Walker<'a> {
    fn run(mut self) -> Result<BTreeSet<String>> {
        let root = id_key(&self.doc["root"]);
        let item = self.item(&root).context("no root item")?;
        let name = item["name"].as_str().unwrap_or("crate").to_string();
        self.module(item, &name);
        Ok(self.out)
    }

    fn item(&self, id: &str) -> Option<&'a Json> {
        self.doc["index"].get(id)
    }

    /// The full path of an item rustdoc knows by id (for items of other crates).
    fn known_path(&self, id: &str) -> Option<String> {
        let p = self.doc["paths"].get(id)?["path"].as_array()?;
        Some(
            p.iter()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join("::"),
        )
    }

    fn push(&mut self, line: String) {
        self.out.insert(line);
    }

    fn module(&mut self, item: &'a Json, path: &str) {
        if !self.seen.insert((id_key(&item["id"]), path.to_string())) {
            return;
        }
        self.push(format!("pub mod {path}"));
        let Some(items) = item["inner"]["module"]["items"].as_array() else {
            return;
        };
        for id in items {
            let id = id_key(id);
            if let Some(child) = self.item(&id) {
                self.member(child, path);
            }
        }
    }

    /// One item listed in a module at `parent`.
    fn member(&mut self, item: &'a Json, parent: &str) {
        if item["visibility"] != "public" {
            return;
        }
        let inner = &item["inner"];
        if let Some(u) = inner.get("use") {
            self.reexport(u, parent);
            return;
        }
        let Some(name) = item["name"].as_str() else {
            return;
        };
        self.named(item, &format!("{parent}::{name}"));
    }

    fn reexport(&mut self, u: &'a Json, parent: &str) {
        let source = u["source"].as_str().unwrap_or("?");
        let name = u["name"].as_str().unwrap_or("?");
        let glob = u["is_glob"].as_bool().unwrap_or(false);
        let target = u["id"]
            .as_null()
            .map_or_else(|| Some(id_key(&u["id"])), |_| None);
        match target
            .as_deref()
            .and_then(|id| self.item(id).map(|t| (id, t)))
        {
            Some((_, t)) if t["crate_id"] == 0 => {
                if glob {
                    self.glob(t, parent);
                } else {
                    let path = format!("{parent}::{name}");
                    self.named(t, &path);
                }
            }
            other => {
                let full = other
                    .map(|(id, _)| id.to_string())
                    .or(target)
                    .and_then(|id| self.known_path(&id))
                    .unwrap_or_else(|| source.to_string());
                if glob {
                    self.push(format!("pub use {parent}::* = {full}::*"));
                } else {
                    self.push(format!("pub use {parent}::{name} = {full}"));
                }
            }
        }
    }

    fn glob(&mut self, module: &'a Json, parent: &str) {
        let Some(items) = module["inner"]["module"]["items"].as_array() else {
            return;
        };
        for id in items {
            if let Some(child) = self.item(&id_key(id)) {
                self.member(child, parent);
            }
        }
    }

    /// An item of this crate, public at `path`.
    fn named(&mut self, item: &'a Json, path: &str) {
        let inner = &item["inner"];
        let attrs = attrs(item);
        let Some((kind, body)) = inner.as_object().and_then(|o| o.iter().next()) else {
            if inner.as_str() == Some("extern_crate") {
                self.push(format!("pub extern crate {path}"));
            }
            return;
        };
        match kind.as_str() {
            "module" => self.module(item, path),
            "struct" => {
                let g = generics(&body["generics"]);
                let k = &body["kind"];
                let shape = if k.get("unit").is_some() || k == "unit" {
                    ";".to_string()
                } else if let Some(t) = k.get("tuple") {
                    let fields: Vec<String> = t
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|f| {
                                    if f.is_null() {
                                        "_".to_string()
                                    } else {
                                        self.field_type(&id_key(f))
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("({})", fields.join(", "))
                } else {
                    let plain = &k["plain"];
                    for f in plain["fields"].as_array().into_iter().flatten() {
                        self.field(&id_key(f), path);
                    }
                    if plain["has_stripped_fields"] == true {
                        " { .. }".to_string()
                    } else {
                        String::new()
                    }
                };
                self.push(format!("{attrs}pub struct {path}{g}{shape}"));
                self.impls(&body["impls"], path);
            }
            "enum" => {
                let g = generics(&body["generics"]);
                self.push(format!("{attrs}pub enum {path}{g}"));
                for v in body["variants"].as_array().into_iter().flatten() {
                    self.variant(&id_key(v), path);
                }
                self.impls(&body["impls"], path);
            }
            "union" => {
                self.push(format!("{attrs}pub union {path}"));
                self.impls(&body["impls"], path);
            }
            "trait" => {
                let g = generics(&body["generics"]);
                let bounds = bounds(&body["bounds"]);
                let bounds = if bounds.is_empty() {
                    String::new()
                } else {
                    format!(": {bounds}")
                };
                let unsafety = if body["is_unsafe"] == true {
                    "unsafe "
                } else {
                    ""
                };
                self.push(format!("{attrs}pub {unsafety}trait {path}{g}{bounds}"));
                for i in body["items"].as_array().into_iter().flatten() {
                    if let Some(it) = self.item(&id_key(i)) {
                        let name = it["name"].as_str().unwrap_or("?");
                        self.assoc(it, &format!("{path}::{name}"), true);
                    }
                }
            }
            "function" => self.push(format!("{attrs}{}", function(body, path, "pub "))),
            "constant" => self.push(format!("pub const {path}: {}", ty(&body["type"]))),
            "static" => self.push(format!("pub static {path}: {}", ty(&body["type"]))),
            "type_alias" => self.push(format!(
                "pub type {path}{} = {}",
                generics(&body["generics"]),
                ty(&body["type"])
            )),
            "macro" => self.push(format!("pub macro {path}!")),
            "proc_macro" => self.push(format!("pub proc_macro {path}")),
            "primitive" | "impl" | "use" => {}
            other => self.push(format!("pub {other} {path}")),
        }
    }

    fn field_type(&self, id: &str) -> String {
        self.item(id)
            .filter(|f| f["visibility"] == "public")
            .map_or_else(|| "_".to_string(), |f| ty(&f["inner"]["struct_field"]))
    }

    fn field(&mut self, id: &str, parent: &str) {
        let Some(f) = self.item(id) else { return };
        if f["visibility"] != "public" {
            return;
        }
        let name = f["name"].as_str().unwrap_or("?");
        self.push(format!(
            "pub field {parent}::{name}: {}",
            ty(&f["inner"]["struct_field"])
        ));
    }

    fn variant(&mut self, id: &str, parent: &str) {
        let Some(v) = self.item(id) else { return };
        let name = v["name"].as_str().unwrap_or("?");
        let k = &v["inner"]["variant"]["kind"];
        let shape = if let Some(t) = k.get("tuple") {
            let fields: Vec<String> = t
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    if f.is_null() {
                        "_".to_string()
                    } else {
                        self.item(&id_key(f))
                            .map_or_else(|| "_".into(), |f| ty(&f["inner"]["struct_field"]))
                    }
                })
                .collect();
            format!("({})", fields.join(", "))
        } else if let Some(s) = k.get("struct") {
            let fields: Vec<String> = s["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| self.item(&id_key(f)))
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["name"].as_str().unwrap_or("?"),
                        ty(&f["inner"]["struct_field"])
                    )
                })
                .collect();
            let more = if s["has_stripped_fields"] == true {
                ", .."
            } else {
                ""
            };
            format!(" {{ {}{more} }}", fields.join(", "))
        } else {
            String::new()
        };
        self.push(format!("{}pub variant {parent}::{name}{shape}", attrs(v)));
    }

    /// Inherent methods and (written, not auto or blanket) trait impls of a type at `path`.
    fn impls(&mut self, impls: &Json, path: &str) {
        for id in impls.as_array().into_iter().flatten() {
            let Some(imp) = self.item(&id_key(id)) else {
                continue;
            };
            let body = &imp["inner"]["impl"];
            if body["is_synthetic"] == true || !body["blanket_impl"].is_null() {
                continue;
            }
            let g = generics(&body["generics"]);
            if let Some(t) = body["trait"].as_object() {
                let neg = if body["is_negative"] == true { "!" } else { "" };
                let tr = path_ty(&Json::Object(t.clone()));
                self.push(format!("impl{g} {neg}{tr} for {}", ty(&body["for"])));
                continue;
            }
            for i in body["items"].as_array().into_iter().flatten() {
                if let Some(it) = self.item(&id_key(i))
                    && it["visibility"] == "public"
                {
                    let name = it["name"].as_str().unwrap_or("?");
                    self.assoc(it, &format!("{path}::{name}"), false);
                }
            }
        }
    }

    /// An associated item (of an inherent impl, or of a trait when `in_trait`).
    fn assoc(&mut self, it: &Json, path: &str, in_trait: bool) {
        let vis = if in_trait { "" } else { "pub " };
        let inner = &it["inner"];
        let line = if let Some(f) = inner.get("function") {
            let mut l = function(f, path, vis);
            if in_trait && f["has_body"] == true {
                l.push_str(" (provided)");
            }
            l
        } else if let Some(c) = inner.get("assoc_const") {
            format!("{vis}const {path}: {}", ty(&c["type"]))
        } else if let Some(c) = inner.get("constant") {
            format!("{vis}const {path}: {}", ty(&c["type"]))
        } else if let Some(t) = inner.get("assoc_type") {
            let b = bounds(&t["bounds"]);
            let b = if b.is_empty() { b } else { format!(": {b}") };
            match t.get("type").filter(|t| !t.is_null()) {
                Some(d) => format!("{vis}type {path}{b} = {}", ty(d)),
                None => format!("{vis}type {path}{b}"),
            }
        } else {
            return;
        };
        let line = format!("{}{line}", attrs(it));
        self.push(line);
    }
}

fn attrs(item: &Json) -> String {
    let mut out = String::new();
    for a in item["attrs"].as_array().into_iter().flatten() {
        match a {
            Json::String(s) if s == "non_exhaustive" || s.contains("non_exhaustive") => {
                out.push_str("#[non_exhaustive] ");
            }
            Json::Object(o) if o.contains_key("non_exhaustive") => {
                out.push_str("#[non_exhaustive] ");
            }
            _ => {}
        }
    }
    if !item["deprecation"].is_null() {
        out.push_str("#[deprecated] ");
    }
    out
}

fn function(f: &Json, path: &str, vis: &str) -> String {
    let h = &f["header"];
    let g = &f["generics"];
    // `#[async_trait]` methods: written as the `async fn` the source has.
    let async_trait = g["params"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["name"] == "'async_trait");
    let mut q = String::new();
    if h["is_const"] == true {
        q.push_str("const ");
    }
    if h["is_async"] == true || async_trait {
        q.push_str("async ");
    }
    if h["is_unsafe"] == true {
        q.push_str("unsafe ");
    }
    if !async_trait {
        let (gs, w) = (generics(g), where_clause(g));
        return format!("{vis}{q}fn {path}{gs}{}{w}", sig(&f["sig"]));
    }
    let mut sig = sig(&f["sig"]);
    for n in 0..16 {
        sig = sig.replace(&format!("&'life{n} "), "&");
        sig = sig.replace(&format!("'life{n}"), "'_");
    }
    sig = sig
        .replacen("(self: &Self", "(&self", 1)
        .replacen("(self: &mut Self", "(&mut self", 1);
    if let Some(i) = sig.find(" -> Pin<Box<dyn Future<Output = ")
        && let Some(out) = sig[i..].strip_suffix("> + Send + 'async_trait>>")
    {
        let out = out
            .trim_start_matches(" -> Pin<Box<dyn Future<Output = ")
            .to_string();
        sig = if out == "()" {
            sig[..i].to_string()
        } else {
            format!("{} -> {out}", &sig[..i])
        };
    }
    let params: Vec<String> = generics(g)
        .trim_start_matches('<')
        .trim_end_matches('>')
        .split(", ")
        .filter(|p| !p.is_empty() && !p.starts_with("'life") && !p.starts_with("'async_trait"))
        .map(str::to_string)
        .collect();
    let gs = if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    };
    let preds: Vec<String> = g["where_predicates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let b = p.get("bound_predicate")?;
            let rest: Vec<String> = bounds(&b["bounds"])
                .split(" + ")
                .filter(|b| *b != "'async_trait" && !b.is_empty())
                .map(str::to_string)
                .collect();
            (!rest.is_empty()).then(|| format!("{}: {}", ty(&b["type"]), rest.join(" + ")))
        })
        .collect();
    let w = if preds.is_empty() {
        String::new()
    } else {
        format!(" where {}", preds.join(", "))
    };
    format!("{vis}{q}fn {path}{gs}{sig}{w} [async_trait]")
}

fn sig(s: &Json) -> String {
    let inputs: Vec<String> = s["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p[0].as_str().unwrap_or("_");
            let t = &p[1];
            if name == "self" {
                match ty(t).as_str() {
                    "Self" => "self".to_string(),
                    "&Self" => "&self".to_string(),
                    "&mut Self" => "&mut self".to_string(),
                    other => format!("self: {other}"),
                }
            } else {
                format!("{name}: {}", ty(t))
            }
        })
        .collect();
    let out = match &s["output"] {
        Json::Null => String::new(),
        o => format!(" -> {}", ty(o)),
    };
    format!("({}){out}", inputs.join(", "))
}

fn generics(g: &Json) -> String {
    let params: Vec<String> = g["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p["name"].as_str().unwrap_or("?");
            let k = &p["kind"];
            if let Some(l) = k.get("lifetime") {
                let o: Vec<&str> = l["outlives"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .collect();
                Some(if o.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}: {}", o.join(" + "))
                })
            } else if let Some(t) = k.get("type") {
                if t["is_synthetic"] == true {
                    return None;
                }
                let b = bounds(&t["bounds"]);
                let mut s = if b.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}: {b}")
                };
                if let Some(d) = t.get("default").filter(|d| !d.is_null()) {
                    s.push_str(&format!(" = {}", ty(d)));
                }
                Some(s)
            } else if let Some(c) = k.get("const") {
                Some(format!("const {name}: {}", ty(&c["type"])))
            } else {
                Some(name.to_string())
            }
        })
        .collect();
    if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    }
}

fn where_clause(g: &Json) -> String {
    let preds: Vec<String> = g["where_predicates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            if let Some(b) = p.get("bound_predicate") {
                format!("{}: {}", ty(&b["type"]), bounds(&b["bounds"]))
            } else if let Some(l) = p.get("lifetime_predicate") {
                let o: Vec<&str> = l["outlives"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .collect();
                format!(
                    "{}: {}",
                    l["lifetime"].as_str().unwrap_or("?"),
                    o.join(" + ")
                )
            } else if let Some(e) = p.get("eq_predicate") {
                format!("{} = {}", ty(&e["lhs"]), term(&e["rhs"]))
            } else {
                p.to_string()
            }
        })
        .collect();
    if preds.is_empty() {
        String::new()
    } else {
        format!(" where {}", preds.join(", "))
    }
}

fn term(t: &Json) -> String {
    if let Some(x) = t.get("type") {
        ty(x)
    } else if let Some(c) = t.get("constant") {
        c["expr"].as_str().unwrap_or("_").to_string()
    } else {
        t.to_string()
    }
}

fn bounds(b: &Json) -> String {
    let v: Vec<String> = b
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            if let Some(t) = b.get("trait_bound") {
                let m = match t["modifier"].as_str() {
                    Some("maybe") => "?",
                    Some("maybe_const") => "~const ",
                    _ => "",
                };
                let hr = hrtb(&t["generic_params"]);
                format!("{hr}{m}{}", path_ty(&t["trait"]))
            } else if let Some(l) = b.get("outlives") {
                l.as_str().unwrap_or("?").to_string()
            } else if b.get("use").is_some() {
                "use<..>".to_string()
            } else {
                b.to_string()
            }
        })
        .collect();
    v.join(" + ")
}

fn hrtb(params: &Json) -> String {
    let names: Vec<&str> = params
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("for<{}> ", names.join(", "))
    }
}

/// `Path<Args>` of a `resolved_path`-shaped object (a type path or a trait).
fn path_ty(p: &Json) -> String {
    let path = p["path"].as_str().unwrap_or("?");
    // rustdoc writes paths as the source spelled them (`crate::config::StoreSpec`, `Result`);
    // keep the last segment so that a `use` change is not an API change.
    let name = path.rsplit("::").next().unwrap_or(path);
    format!("{name}{}", args(&p["args"]))
}

fn args(a: &Json) -> String {
    if a.is_null() {
        return String::new();
    }
    if let Some(ab) = a.get("angle_bracketed") {
        let mut v: Vec<String> = ab["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                if let Some(t) = g.get("type") {
                    ty(t)
                } else if let Some(l) = g.get("lifetime") {
                    l.as_str().unwrap_or("'_").to_string()
                } else if let Some(c) = g.get("const") {
                    c["expr"].as_str().unwrap_or("_").to_string()
                } else {
                    "_".to_string()
                }
            })
            .collect();
        for c in ab["constraints"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("?");
            let b = &c["binding"];
            if let Some(e) = b.get("equality") {
                v.push(format!("{name} = {}", term(e)));
            } else if let Some(bs) = b.get("constraint") {
                v.push(format!("{name}: {}", bounds(bs)));
            }
        }
        if v.is_empty() {
            String::new()
        } else {
            format!("<{}>", v.join(", "))
        }
    } else if let Some(p) = a.get("parenthesized") {
        let inputs: Vec<String> = p["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(ty)
            .collect();
        let out = match &p["output"] {
            Json::Null => String::new(),
            o => format!(" -> {}", ty(o)),
        };
        format!("({}){out}", inputs.join(", "))
    } else if a.get("return_type_notation").is_some() {
        "(..)".to_string()
    } else {
        String::new()
    }
}

/// A type, written as Rust would (close enough to compare).
fn ty(t: &Json) -> String {
    let Some((k, v)) = t.as_object().and_then(|o| o.iter().next()) else {
        return match t.as_str() {
            Some("infer") => "_".to_string(),
            Some(s) => s.to_string(),
            None => t.to_string(),
        };
    };
    match k.as_str() {
        "resolved_path" => path_ty(v),
        "primitive" | "generic" => v.as_str().unwrap_or("?").to_string(),
        "borrowed_ref" => {
            let lt = v["lifetime"]
                .as_str()
                .map_or(String::new(), |l| format!("{l} "));
            let m = if v["is_mutable"] == true { "mut " } else { "" };
            format!("&{lt}{m}{}", ty(&v["type"]))
        }
        "raw_pointer" => {
            let m = if v["is_mutable"] == true {
                "mut"
            } else {
                "const"
            };
            format!("*{m} {}", ty(&v["type"]))
        }
        "slice" => format!("[{}]", ty(v)),
        "array" => format!("[{}; {}]", ty(&v["type"]), v["len"].as_str().unwrap_or("_")),
        "tuple" => {
            let items: Vec<String> = v.as_array().into_iter().flatten().map(ty).collect();
            if items.len() == 1 {
                format!("({},)", items[0])
            } else {
                format!("({})", items.join(", "))
            }
        }
        "dyn_trait" => {
            let mut parts: Vec<String> = v["traits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}{}", hrtb(&p["generic_params"]), path_ty(&p["trait"])))
                .collect();
            if let Some(l) = v["lifetime"].as_str() {
                parts.push(l.to_string());
            }
            format!("dyn {}", parts.join(" + "))
        }
        "impl_trait" => format!("impl {}", bounds(v)),
        "function_pointer" => {
            let hr = hrtb(&v["generic_params"]);
            format!("{hr}fn{}", sig(&v["sig"]))
        }
        "qualified_path" => {
            let name = v["name"].as_str().unwrap_or("?");
            let self_ty = ty(&v["self_type"]);
            match v.get("trait").filter(|t| !t.is_null()) {
                Some(tr) => format!("<{self_ty} as {}>::{name}{}", path_ty(tr), args(&v["args"])),
                None => format!("{self_ty}::{name}{}", args(&v["args"])),
            }
        }
        "pat" => ty(&v["type"]),
        _ => t.to_string(),
    }
}
