//! Drawing a [`DependencyGraph`] as DataJoint 2.3.5's `Diagram` draws it: Graphviz DOT,
//! Mermaid, and SVG laid out here (no Graphviz needed).
//!
//! The notation is DataJoint's: the tier by shape and colour (Manual green and Lookup grey
//! rounded boxes, Imported blue and Computed orange ellipses, parts small white boxes, tables
//! of no tier small yellow circles); a master and its parts share a shaded box; each schema is
//! a dashed frame labelled at its top right; an edge per foreign key, without arrowheads
//! (parents above children): solid when the foreign key is in the child's primary key, dashed
//! when it is a secondary attribute, thin when one parent row has many child rows and thick
//! when the foreign key is the child's whole primary key, amber when attributes are renamed
//! (their renames in the edge's tooltip). A table that adds primary-key attributes of its own
//! has its name underlined (DOT and SVG).
//!
//! ```
//! use dj_schema::{Connection, Tier};
//! use dj_schema::diagram::{Diagram, Direction};
//! use dj_schema::graph::DependencyGraph;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let mut config = dj_config::Config::default();
//! # config.database.path = Some(":memory:".into());
//! # let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! lab.declare("Subject", Tier::Manual, "subject_id : int32").await?;
//! lab.declare("Scan", Tier::Imported, "-> Subject\n---\nn : int32").await?;
//! let graph = DependencyGraph::load(&conn, &["lab"]).await?;
//! let diagram = Diagram::new(&graph).direction(Direction::TopBottom);
//! assert!(diagram.to_dot().contains(r#""lab.subject" -> "lab._scan""#));
//! assert!(diagram.to_mermaid().contains("lab_subject --> lab__scan"));
//! assert!(diagram.to_svg().starts_with("<?xml"));
//! # Ok::<(), dj_schema::Error>(())
//! # }).unwrap();
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use crate::graph::{Dependency, DependencyGraph, TableNode};
use crate::naming::Tier;

/// Which way the graph runs: parents above children (`TB`, the default here) or to their left
/// (`LR`, the default of DataJoint 2.3.5's `display.diagram_direction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Top to bottom (`TB`).
    #[default]
    TopBottom,
    /// Left to right (`LR`).
    LeftRight,
}

impl Direction {
    fn dot(self) -> &'static str {
        match self {
            Direction::TopBottom => "TB",
            Direction::LeftRight => "LR",
        }
    }
}

impl FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "TB" => Ok(Direction::TopBottom),
            "LR" => Ok(Direction::LeftRight),
            _ => Err(format!("`{s}` is not a diagram direction: TB or LR")),
        }
    }
}

/// DataJoint's light theme: fill, stroke and text colour per tier.
const EDGE: &str = "#171C39";
const EDGE_RENAMED: &str = "#C77D3A";
/// The edges' alpha, `9E` of DataJoint's `#RRGGBBAA` colours.
const EDGE_ALPHA: &str = "9E";
const EDGE_OPACITY: &str = "0.62";
const CLUSTER_STROKE: &str = "#171D3A";
const CLUSTER_TEXT: &str = "#171C39";
const ENTITY_FILL: &str = "#F3F5F8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Box,
    Ellipse,
    Circle,
}

struct Style {
    shape: Shape,
    /// Points.
    font_size: u32,
    /// Minimum width and height, inches (Graphviz's `width`/`height`).
    size: f64,
    rounded: bool,
    fill: &'static str,
    stroke: &'static str,
    text: &'static str,
    class: &'static str,
}

fn style(tier: Option<Tier>) -> Style {
    let (shape, font_size, size, rounded, fill, stroke, text, class) = match tier {
        Some(Tier::Manual) => (
            Shape::Box,
            12,
            0.48,
            true,
            "#E8F0E9",
            "#3E7A52",
            "#28513A",
            "manual",
        ),
        Some(Tier::Lookup) => (
            Shape::Box,
            12,
            0.48,
            true,
            "#F0F0F1",
            "#808285",
            "#5A5C5F",
            "lookup",
        ),
        Some(Tier::Computed) => (
            Shape::Ellipse,
            12,
            0.48,
            false,
            "#FFEDE5",
            "#FF5113",
            "#B23200",
            "computed",
        ),
        Some(Tier::Imported) => (
            Shape::Ellipse,
            12,
            0.48,
            false,
            "#E0F4FC",
            "#00A0DF",
            "#00537A",
            "imported",
        ),
        Some(Tier::Part) => (
            Shape::Box,
            10,
            0.12,
            true,
            "#FFFFFF",
            "#B9BBBE",
            "#55585C",
            "part",
        ),
        None => (
            Shape::Circle,
            10,
            0.48,
            false,
            "#FFFDE7",
            "#C9BC5B",
            "#6B6420",
            "other",
        ),
    };
    Style {
        shape,
        font_size,
        size,
        rounded,
        fill,
        stroke,
        text,
        class,
    }
}

/// A diagram of a dependency graph, ready to render.
pub struct Diagram<'a> {
    graph: &'a DependencyGraph,
    direction: Direction,
}

impl<'a> Diagram<'a> {
    /// A diagram of every table of `graph`, top to bottom.
    pub fn new(graph: &'a DependencyGraph) -> Self {
        Diagram {
            graph,
            direction: Direction::default(),
        }
    }

    /// Lay the graph out top to bottom or left to right.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// The tables in DataJoint's topological order (parts after their masters).
    fn ordered(&self) -> Vec<&'a TableNode> {
        self.graph
            .topo_sort()
            .iter()
            .filter_map(|n| self.graph.node(n))
            .collect()
    }

    /// Schemas in the order loaded, then any others the nodes belong to.
    fn schemas(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let present: HashSet<&str> = self.graph.nodes().map(|n| n.schema.as_str()).collect();
        for s in self.graph.schemas() {
            if present.contains(s.as_str()) && !out.contains(s) {
                out.push(s.clone());
            }
        }
        for n in self.ordered() {
            if !out.contains(&n.schema) {
                out.push(n.schema.clone());
            }
        }
        out
    }

    /// Parts whose master is in the graph, grouped by master; whether a part references a
    /// sibling part (then it is not on its master's rank).
    fn entities(&self) -> (HashMap<&'a str, Vec<&'a str>>, HashSet<&'a str>) {
        let mut parts: HashMap<&str, Vec<&str>> = HashMap::new();
        for n in self.ordered() {
            if let Some(m) = n.master.as_deref() {
                parts.entry(m).or_default().push(n.full_name.as_str());
            }
        }
        let mut on_sibling = HashSet::new();
        for e in self.graph.edges() {
            let (Some(c), Some(p)) = (self.graph.node(&e.child), self.graph.node(&e.parent)) else {
                continue;
            };
            if c.master.is_some() && c.master == p.master {
                on_sibling.insert(c.full_name.as_str());
            }
        }
        (parts, on_sibling)
    }

    fn tooltip(&self, n: &TableNode) -> String {
        let mut t = n.full_name.clone();
        if !n.comment.is_empty() {
            t.push('\n');
            t.push_str(&n.comment);
        }
        if !n.primary_key.is_empty() {
            t.push_str("\nprimary key: ");
            t.push_str(&n.primary_key.join(", "));
        }
        t
    }

    /// Graphviz DOT text, with the attributes DataJoint's `make_dot` sets.
    pub fn to_dot(&self) -> String {
        let schemas = self.schemas();
        let (parts, on_sibling) = self.entities();
        let mut s = String::new();
        let title = schemas.join(", ");
        let _ = writeln!(s, "digraph {} {{", dot_str(&title));
        let _ = writeln!(
            s,
            "    graph [rankdir={}, fontname=\"Helvetica\"];",
            self.direction.dot()
        );
        s.push_str("    node [fontname=\"Helvetica\", margin=\"0.11,0.06\"];\n");
        s.push_str("    edge [arrowhead=none];\n");
        for schema in &schemas {
            let _ = writeln!(
                s,
                "    subgraph {} {{",
                dot_str(&format!("cluster_{schema}"))
            );
            let _ = writeln!(
                s,
                "        graph [label={}, labelloc=t, labeljust=r, style=\"rounded,dashed\", \
                 color=\"{CLUSTER_STROKE}\", fontcolor=\"{CLUSTER_TEXT}\", fontname=\"Helvetica\"];",
                dot_str(schema)
            );
            let nodes: Vec<&TableNode> = self
                .ordered()
                .into_iter()
                .filter(|n| &n.schema == schema)
                .collect();
            let mut grouped: HashSet<&str> = HashSet::new();
            for n in &nodes {
                let Some(ps) = parts.get(n.full_name.as_str()) else {
                    continue;
                };
                let _ = writeln!(
                    s,
                    "        subgraph {} {{",
                    dot_str(&format!("cluster_entity_{}", n.full_name))
                );
                let _ = writeln!(
                    s,
                    "            graph [label=\"\", style=\"rounded,filled\", fillcolor=\"{ENTITY_FILL}\", color=\"{ENTITY_FILL}\"];"
                );
                self.dot_node(&mut s, n, "            ");
                grouped.insert(&n.full_name);
                let mut same_rank = vec![dot_str(&n.full_name)];
                for p in ps {
                    if let Some(pn) = self.graph.node(p) {
                        self.dot_node(&mut s, pn, "            ");
                        grouped.insert(p);
                        if !on_sibling.contains(p) {
                            same_rank.push(dot_str(p));
                        }
                    }
                }
                if same_rank.len() > 1 {
                    let _ = writeln!(s, "            {{ rank=same; {}; }}", same_rank.join("; "));
                }
                s.push_str("        }\n");
            }
            for n in &nodes {
                if !grouped.contains(n.full_name.as_str()) {
                    self.dot_node(&mut s, n, "        ");
                }
            }
            s.push_str("    }\n");
        }
        for e in self.graph.edges() {
            let color = if e.aliased { EDGE_RENAMED } else { EDGE };
            let _ = write!(
                s,
                "    {} -> {} [color=\"{color}{EDGE_ALPHA}\", style={}, penwidth={}, weight={}",
                dot_str(&e.parent),
                dot_str(&e.child),
                if e.primary { "solid" } else { "dashed" },
                if e.multi { "0.75" } else { "2" },
                if e.multi { 1 } else { 3 },
            );
            let renames = e.renames();
            if !renames.is_empty() {
                let _ = write!(s, ", tooltip={}", dot_str(&renames));
            }
            s.push_str("];\n");
        }
        s.push_str("}\n");
        s
    }

    fn dot_node(&self, s: &mut String, n: &TableNode, indent: &str) {
        let st = style(n.tier);
        let label = if self.graph.introduces_dimension(&n.full_name) {
            format!("<<u>{}</u>>", xml_escape(&n.class_name))
        } else {
            dot_str(&n.class_name)
        };
        let shape = match st.shape {
            Shape::Box => "box",
            Shape::Ellipse => "ellipse",
            Shape::Circle => "circle",
        };
        let _ = writeln!(
            s,
            "{indent}{} [label={label}, shape={shape}, style=\"{}\", fillcolor=\"{}\", color=\"{}\", \
             fontcolor=\"{}\", fontsize={}, width={}, height={}, tooltip={}];",
            dot_str(&n.full_name),
            if st.rounded {
                "rounded,filled"
            } else {
                "filled"
            },
            st.fill,
            st.stroke,
            st.text,
            st.font_size,
            st.size,
            st.size,
            dot_str(&self.tooltip(n)),
        );
    }

    /// Mermaid flowchart text, as DataJoint's `make_mermaid` writes it: a subgraph per schema,
    /// a nested one per master and its parts, a class per tier, and a `linkStyle` per edge
    /// (renamed foreign keys amber, one-to-one edges thick). A foreign key outside the child's
    /// primary key is a dotted link (`-.->`).
    pub fn to_mermaid(&self) -> String {
        let schemas = self.schemas();
        let (parts, _) = self.entities();
        let ids = mermaid_ids(self.graph);
        let id = |n: &str| ids.get(n).cloned().unwrap_or_else(|| n.to_string());
        let mut s = String::new();
        let _ = writeln!(s, "flowchart {}", self.direction.dot());
        s.push('\n');
        for tier in [
            Some(Tier::Manual),
            Some(Tier::Lookup),
            Some(Tier::Computed),
            Some(Tier::Imported),
            Some(Tier::Part),
            None,
        ] {
            let st = style(tier);
            let _ = writeln!(
                s,
                "    classDef {} fill:{},stroke:{},color:{}",
                st.class, st.fill, st.stroke, st.text
            );
        }
        s.push('\n');
        let node_line = |n: &TableNode, indent: &str| -> String {
            let st = style(n.tier);
            let (l, r) = match st.shape {
                Shape::Box => ("[", "]"),
                Shape::Ellipse => ("([", "])"),
                Shape::Circle => ("((", "))"),
            };
            format!(
                "{indent}{}{l}\"{}\"{r}:::{}",
                id(&n.full_name),
                n.class_name.replace('"', "#quot;"),
                st.class
            )
        };
        for schema in &schemas {
            let _ = writeln!(s, "    subgraph {}[\"{schema}\"]", mermaid_safe(schema));
            let nodes: Vec<&TableNode> = self
                .ordered()
                .into_iter()
                .filter(|n| &n.schema == schema)
                .collect();
            let mut done: HashSet<&str> = HashSet::new();
            for n in &nodes {
                let Some(ps) = parts.get(n.full_name.as_str()) else {
                    continue;
                };
                let _ = writeln!(s, "        subgraph entity_{}[\" \"]", id(&n.full_name));
                let _ = writeln!(s, "{}", node_line(n, "            "));
                done.insert(&n.full_name);
                for p in ps {
                    if let Some(pn) = self.graph.node(p) {
                        let _ = writeln!(s, "{}", node_line(pn, "            "));
                        done.insert(p);
                    }
                }
                s.push_str("        end\n");
            }
            for n in &nodes {
                if !done.contains(n.full_name.as_str()) {
                    let _ = writeln!(s, "{}", node_line(n, "        "));
                }
            }
            s.push_str("    end\n");
        }
        s.push('\n');
        let mut styles = Vec::new();
        for (i, e) in self.graph.edges().iter().enumerate() {
            let link = if e.primary { "-->" } else { "-.->" };
            let _ = writeln!(s, "    {} {link} {}", id(&e.parent), id(&e.child));
            let color = if e.aliased { EDGE_RENAMED } else { EDGE };
            let width = if e.multi { "1px" } else { "2px" };
            styles.push(format!(
                "    linkStyle {i} stroke:{color},stroke-width:{width}"
            ));
        }
        for l in styles {
            s.push_str(&l);
            s.push('\n');
        }
        s
    }

    /// A standalone SVG document, laid out in layers by topological rank (parents above their
    /// children, or to their left), with crossings reduced by barycentre sweeps.
    pub fn to_svg(&self) -> String {
        Layout::new(self).svg(self)
    }
}

/// Node ids for Mermaid: the full name with every character outside `[A-Za-z0-9_]` as `_`,
/// made unique with a numeric suffix.
fn mermaid_ids(graph: &DependencyGraph) -> HashMap<String, String> {
    let mut used: HashSet<String> = HashSet::new();
    let mut out = HashMap::new();
    for n in graph.nodes() {
        let base = mermaid_safe(&n.full_name);
        let mut id = base.clone();
        let mut k = 2;
        while !used.insert(id.clone()) {
            id = format!("{base}_{k}");
            k += 1;
        }
        out.insert(n.full_name.clone(), id);
    }
    out
}

fn mermaid_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A DOT double-quoted string.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for XML content and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Layered layout for SVG.
//
// Coordinates are kept along two axes: `o` (the order within a rank) and `r` (the rank); top to
// bottom maps (o, r) to (x, y), left to right to (y, x).

/// Pixels per inch (Graphviz's points).
const PPI: f64 = 72.0;
/// Space between ranks, pixels.
const RANK_GAP: f64 = 48.0;
/// Space between neighbours in a rank.
const NODE_GAP: f64 = 22.0;
/// Space between a master and its parts.
const PART_GAP: f64 = 10.0;
/// Space between schema bands.
const BAND_GAP: f64 = 40.0;
/// Padding inside a schema frame, and the height of its label.
const CLUSTER_PAD: f64 = 12.0;
const CLUSTER_LABEL: f64 = 16.0;
const MARGIN: f64 = 8.0;
/// The width of a bend point of a long edge.
const VIRTUAL: f64 = 8.0;

struct LNode {
    /// Index into `Layout::real`, or `None` for a bend point of a long edge.
    real: Option<usize>,
    rank: usize,
    /// Extent along the order axis and the rank axis.
    ext_o: f64,
    ext_r: f64,
    band: usize,
    /// Centre along the order axis (within its band, then absolute).
    o: f64,
}

struct Block {
    members: Vec<usize>,
    rank: usize,
    band: usize,
}

impl Block {
    fn ext(&self, nodes: &[LNode]) -> f64 {
        let gaps = self.members.len().saturating_sub(1) as f64 * PART_GAP;
        self.members.iter().map(|&m| nodes[m].ext_o).sum::<f64>() + gaps
    }
}

struct Placed<'a> {
    node: &'a TableNode,
    w: f64,
    h: f64,
    label_w: f64,
}

struct Layout<'a> {
    lr: bool,
    real: Vec<Placed<'a>>,
    nodes: Vec<LNode>,
    blocks: Vec<Block>,
    /// Per rank, the blocks in order.
    ranks: Vec<Vec<usize>>,
    /// Neighbours in the rank above and below, for each layout node.
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
    /// Per foreign key: the chain of layout nodes from the parent to the child.
    chains: Vec<Vec<usize>>,
    /// Centre of each rank along the rank axis.
    rank_pos: Vec<f64>,
    bands: Vec<String>,
}

/// Text width in pixels of `s` at `size` points in Helvetica (a mean character width).
fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| {
            if c.is_ascii_uppercase() || c == 'm' || c == 'w' {
                0.72
            } else if matches!(c, 'i' | 'l' | 'j' | 't' | 'f' | 'r' | '.' | ',') {
                0.32
            } else {
                0.56
            }
        })
        .sum::<f64>()
        * size
}

impl<'a> Layout<'a> {
    fn new(d: &Diagram<'a>) -> Layout<'a> {
        let lr = d.direction == Direction::LeftRight;
        let ordered = d.ordered();
        let mut bands = d.schemas();
        let (parts, on_sibling) = d.entities();
        let index: HashMap<&str, usize> = ordered
            .iter()
            .enumerate()
            .map(|(i, n)| (n.full_name.as_str(), i))
            .collect();
        // Sizes.
        let real: Vec<Placed<'a>> = ordered
            .iter()
            .map(|n| {
                let st = style(n.tier);
                let fs = f64::from(st.font_size);
                let tw = text_width(&n.class_name, fs);
                let min = st.size * PPI;
                let (w, h) = match st.shape {
                    Shape::Box if n.tier == Some(Tier::Part) => ((tw + 12.0).max(min), fs + 10.0),
                    Shape::Box => ((tw + 16.0).max(min), (fs + 12.0).max(min * 0.75)),
                    Shape::Ellipse => ((tw * 1.25 + 18.0).max(min), (fs + 16.0).max(min * 0.75)),
                    Shape::Circle => {
                        let dd = (tw + 10.0).max(min);
                        (dd, dd)
                    }
                };
                Placed {
                    node: n,
                    w,
                    h,
                    label_w: tw,
                }
            })
            .collect();
        // Ranks: longest path from the roots; a part on its master's rank unless it
        // references a sibling; a part's other parents above its master.
        let mut rank = vec![0usize; ordered.len()];
        for (i, n) in ordered.iter().enumerate() {
            let mut r = 0;
            for e in d.graph.edges() {
                if e.child == n.full_name
                    && let Some(&p) = index.get(e.parent.as_str())
                {
                    r = r.max(rank[p] + 1);
                }
            }
            if let Some(ps) = parts.get(n.full_name.as_str()) {
                // The master goes below its parts' outside parents.
                for p in ps {
                    for e in d.graph.edges() {
                        if e.child == *p
                            && e.parent != n.full_name
                            && !ps.contains(&e.parent.as_str())
                            && let Some(&q) = index.get(e.parent.as_str())
                            && q < i
                        {
                            r = r.max(rank[q] + 1);
                        }
                    }
                }
            }
            if let Some(m) = n.master.as_deref()
                && !on_sibling.contains(n.full_name.as_str())
                && let Some(&mi) = index.get(m)
            {
                r = rank[mi];
            }
            rank[i] = r;
        }
        // Bands: schemas whose tables start higher up first (upstream on the left).
        let top = |schema: &str| {
            ordered
                .iter()
                .enumerate()
                .filter(|(_, n)| n.schema == schema)
                .map(|(i, _)| rank[i])
                .min()
                .unwrap_or(0)
        };
        let mut keyed: Vec<(usize, usize, String)> = bands
            .drain(..)
            .enumerate()
            .map(|(i, b)| (top(&b), i, b))
            .collect();
        keyed.sort();
        bands = keyed.into_iter().map(|(_, _, b)| b).collect();
        let band_of: HashMap<&str, usize> = bands
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut nodes: Vec<LNode> = real
            .iter()
            .enumerate()
            .map(|(i, p)| LNode {
                real: Some(i),
                rank: rank[i],
                ext_o: if lr { p.h } else { p.w },
                ext_r: if lr { p.w } else { p.h },
                band: band_of.get(p.node.schema.as_str()).copied().unwrap_or(0),
                o: 0.0,
            })
            .collect();
        // Blocks: a master with the parts on its rank, or one node.
        let mut blocks: Vec<Block> = Vec::new();
        let mut in_block = vec![false; nodes.len()];
        for (i, n) in ordered.iter().enumerate() {
            // A part on its master's rank joins the master's block.
            if in_block[i] || n.master.is_some() && !on_sibling.contains(n.full_name.as_str()) {
                continue;
            }
            let mut members = vec![i];
            in_block[i] = true;
            if let Some(ps) = parts.get(n.full_name.as_str()) {
                for p in ps {
                    if let Some(&pi) = index.get(p)
                        && !on_sibling.contains(p)
                    {
                        members.push(pi);
                        in_block[pi] = true;
                    }
                }
            }
            blocks.push(Block {
                members,
                rank: rank[i],
                band: nodes[i].band,
            });
        }
        // Parts whose master is on another rank (none expected) get blocks of their own.
        for i in 0..nodes.len() {
            if !in_block[i] {
                blocks.push(Block {
                    members: vec![i],
                    rank: rank[i],
                    band: nodes[i].band,
                });
            }
        }
        // Long edges through bend points; same-rank edges (master to part) stay direct.
        let mut chains = Vec::new();
        for e in d.graph.edges() {
            let (Some(&p), Some(&c)) = (index.get(e.parent.as_str()), index.get(e.child.as_str()))
            else {
                chains.push(Vec::new());
                continue;
            };
            let mut chain = vec![p];
            let band = nodes[c].band;
            for r in rank[p] + 1..rank[c] {
                nodes.push(LNode {
                    real: None,
                    rank: r,
                    ext_o: VIRTUAL,
                    ext_r: 0.0,
                    band,
                    o: 0.0,
                });
                let v = nodes.len() - 1;
                blocks.push(Block {
                    members: vec![v],
                    rank: r,
                    band,
                });
                chain.push(v);
            }
            chain.push(c);
            chains.push(chain);
        }
        let n = nodes.len();
        let mut up = vec![Vec::new(); n];
        let mut down = vec![Vec::new(); n];
        for chain in &chains {
            for w in chain.windows(2) {
                if nodes[w[0]].rank < nodes[w[1]].rank {
                    down[w[0]].push(w[1]);
                    up[w[1]].push(w[0]);
                }
            }
        }
        let nranks = nodes.iter().map(|n| n.rank + 1).max().unwrap_or(0);
        let mut ranks = vec![Vec::new(); nranks];
        for (b, block) in blocks.iter().enumerate() {
            ranks[block.rank].push(b);
        }
        let mut layout = Layout {
            lr,
            real,
            nodes,
            blocks,
            ranks,
            up,
            down,
            chains,
            rank_pos: Vec::new(),
            bands,
        };
        layout.order();
        layout.place();
        layout
    }

    /// Each node's index within its rank, given the blocks' current order.
    fn indexes(&self) -> Vec<f64> {
        let mut idx = vec![0.0; self.nodes.len()];
        for rank in &self.ranks {
            let mut k = 0.0;
            for &b in rank {
                for &m in &self.blocks[b].members {
                    idx[m] = k;
                    k += 1.0;
                }
            }
        }
        idx
    }

    /// Order the blocks of each rank: by band, then barycentre sweeps down and up.
    fn order(&mut self) {
        for rank in &mut self.ranks {
            let blocks = &self.blocks;
            rank.sort_by_key(|&b| blocks[b].band);
        }
        for sweep in 0..8 {
            let downward = sweep % 2 == 0;
            let order: Vec<usize> = if downward {
                (0..self.ranks.len()).collect()
            } else {
                (0..self.ranks.len()).rev().collect()
            };
            for r in order {
                let idx = self.indexes();
                let mut keyed: Vec<(usize, f64, usize)> = self.ranks[r]
                    .iter()
                    .enumerate()
                    .map(|(pos, &b)| {
                        let mut sum = 0.0;
                        let mut cnt = 0.0;
                        for &m in &self.blocks[b].members {
                            let nb = if downward { &self.up[m] } else { &self.down[m] };
                            for &u in nb {
                                sum += idx[u];
                                cnt += 1.0;
                            }
                        }
                        let bary = if cnt > 0.0 {
                            sum / cnt
                        } else {
                            idx[self.blocks[b].members[0]]
                        };
                        (b, bary, pos)
                    })
                    .collect();
                let blocks = &self.blocks;
                keyed.sort_by(|a, b| {
                    blocks[a.0]
                        .band
                        .cmp(&blocks[b.0].band)
                        .then(a.1.total_cmp(&b.1))
                        .then(a.2.cmp(&b.2))
                });
                self.ranks[r] = keyed.into_iter().map(|(b, _, _)| b).collect();
            }
        }
    }

    /// Offsets of a block's members from the block's centre.
    fn member_offsets(&self, b: usize) -> Vec<(usize, f64)> {
        let block = &self.blocks[b];
        let ext = block.ext(&self.nodes);
        let mut at = -ext / 2.0;
        block
            .members
            .iter()
            .map(|&m| {
                let e = self.nodes[m].ext_o;
                let off = at + e / 2.0;
                at += e + PART_GAP;
                (m, off)
            })
            .collect()
    }

    fn set_block(&mut self, b: usize, centre: f64) {
        for (m, off) in self.member_offsets(b) {
            self.nodes[m].o = centre + off;
        }
    }

    fn block_centre(&self, b: usize) -> f64 {
        let offs = self.member_offsets(b);
        offs.first().map_or(0.0, |&(m, off)| self.nodes[m].o - off)
    }

    /// Coordinates: along the order axis per band (neighbours pulled together, no overlaps),
    /// bands side by side; along the rank axis rank by rank.
    fn place(&mut self) {
        let nbands = self.bands.len().max(1);
        let mut band_offset = 0.0;
        for band in 0..nbands {
            // Blocks of this band per rank, in order.
            let rows: Vec<Vec<usize>> = self
                .ranks
                .iter()
                .map(|r| {
                    r.iter()
                        .copied()
                        .filter(|&b| self.blocks[b].band == band)
                        .collect()
                })
                .collect();
            // Packed start.
            for row in &rows {
                let mut at = 0.0;
                for &b in row {
                    let ext = self.blocks[b].ext(&self.nodes);
                    self.set_block(b, at + ext / 2.0);
                    at += ext + NODE_GAP;
                }
            }
            for iter in 0..16 {
                let downward = iter % 2 == 0;
                let order: Vec<usize> = if downward {
                    (0..rows.len()).collect()
                } else {
                    (0..rows.len()).rev().collect()
                };
                for r in order {
                    let row = &rows[r];
                    if row.is_empty() {
                        continue;
                    }
                    let desired: Vec<f64> = row
                        .iter()
                        .map(|&b| {
                            let mut sum = 0.0;
                            let mut cnt = 0.0;
                            for (m, off) in self.member_offsets(b) {
                                let nb = if downward { &self.up[m] } else { &self.down[m] };
                                for &u in nb {
                                    if self.nodes[u].band == band {
                                        sum += self.nodes[u].o - off;
                                        cnt += 1.0;
                                    }
                                }
                            }
                            if cnt > 0.0 {
                                sum / cnt
                            } else {
                                self.block_centre(b)
                            }
                        })
                        .collect();
                    let ext: Vec<f64> = row
                        .iter()
                        .map(|&b| self.blocks[b].ext(&self.nodes))
                        .collect();
                    let sep = |i: usize| -> f64 {
                        let gap = if self.is_virtual(row[i]) || self.is_virtual(row[i - 1]) {
                            NODE_GAP / 2.0
                        } else {
                            NODE_GAP
                        };
                        (ext[i] + ext[i - 1]) / 2.0 + gap
                    };
                    let k = row.len();
                    let mut left = desired.clone();
                    for i in 1..k {
                        left[i] = left[i].max(left[i - 1] + sep(i));
                    }
                    let mut right = desired.clone();
                    for i in (0..k - 1).rev() {
                        right[i] = right[i].min(right[i + 1] - sep(i + 1));
                    }
                    for (i, &b) in row.iter().enumerate() {
                        self.set_block(b, (left[i] + right[i]) / 2.0);
                    }
                }
            }
            // Shift the band to start at `band_offset`.
            let members: Vec<usize> = rows
                .iter()
                .flatten()
                .flat_map(|&b| self.blocks[b].members.clone())
                .collect();
            let lo = members
                .iter()
                .map(|&m| self.nodes[m].o - self.nodes[m].ext_o / 2.0)
                .fold(f64::INFINITY, f64::min);
            let hi = members
                .iter()
                .map(|&m| self.nodes[m].o + self.nodes[m].ext_o / 2.0)
                .fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() {
                for &m in &members {
                    self.nodes[m].o += band_offset - lo;
                }
                band_offset += hi - lo + BAND_GAP + 2.0 * CLUSTER_PAD;
                if self.lr {
                    band_offset += CLUSTER_LABEL;
                }
            }
        }
        // Ranks.
        let nranks = self.ranks.len();
        let mut ext_r = vec![0.0f64; nranks];
        for n in &self.nodes {
            ext_r[n.rank] = ext_r[n.rank].max(n.ext_r);
        }
        let gap = if self.lr { RANK_GAP + 8.0 } else { RANK_GAP };
        let mut pos = Vec::with_capacity(nranks);
        let mut at = 0.0;
        for r in 0..nranks {
            if r > 0 {
                at += ext_r[r - 1] / 2.0 + gap + ext_r[r] / 2.0;
            }
            pos.push(at);
        }
        self.rank_pos = pos;
    }

    fn is_virtual(&self, b: usize) -> bool {
        self.blocks[b]
            .members
            .first()
            .is_some_and(|&m| self.nodes[m].real.is_none())
    }

    /// (x, y) of a point given along the order and rank axes.
    fn xy(&self, o: f64, r: f64) -> (f64, f64) {
        if self.lr { (r, o) } else { (o, r) }
    }

    fn svg(&self, d: &Diagram<'_>) -> String {
        // Raw boxes (centre x, y, w, h) of real nodes.
        let mut boxes: Vec<(f64, f64, f64, f64)> = Vec::with_capacity(self.real.len());
        for (i, p) in self.real.iter().enumerate() {
            let n = &self.nodes[i];
            let (x, y) = self.xy(n.o, self.rank_pos[n.rank]);
            boxes.push((x, y, p.w, p.h));
        }
        // Schema frames.
        let mut frames: Vec<(String, f64, f64, f64, f64)> = Vec::new();
        for (band, schema) in self.bands.iter().enumerate() {
            let mut lo = (f64::INFINITY, f64::INFINITY);
            let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for (i, b) in boxes.iter().enumerate() {
                if self.nodes[i].band != band {
                    continue;
                }
                lo = (lo.0.min(b.0 - b.2 / 2.0), lo.1.min(b.1 - b.3 / 2.0));
                hi = (hi.0.max(b.0 + b.2 / 2.0), hi.1.max(b.1 + b.3 / 2.0));
            }
            if !lo.0.is_finite() {
                continue;
            }
            // Room for the arcs from masters to their parts.
            for chain in &self.chains {
                if let (Some(&a), Some(&b)) = (chain.first(), chain.last())
                    && chain.len() == 2
                    && self.nodes[a].rank == self.nodes[b].rank
                    && self.nodes[b].band == band
                {
                    let (n0, n1) = (&self.nodes[a], &self.nodes[b]);
                    let depth = 0.75 * (14.0 + 0.08 * (n1.o - n0.o).abs() + 14.0);
                    let r = self.rank_pos[n0.rank] + n0.ext_r.max(n1.ext_r) / 2.0 + depth;
                    let (x, y) = self.xy(n0.o, r);
                    hi = (hi.0.max(x), hi.1.max(y));
                }
            }
            let label_w = text_width(schema, 12.0) + 2.0 * CLUSTER_PAD;
            let x0 = lo.0 - CLUSTER_PAD;
            let x1 = hi.0.max(lo.0 + label_w) + CLUSTER_PAD;
            let y0 = lo.1 - CLUSTER_PAD - CLUSTER_LABEL;
            let y1 = hi.1 + CLUSTER_PAD;
            frames.push((schema.clone(), x0, y0, x1 - x0, y1 - y0));
        }
        // Canvas: shift everything to start at the margin.
        let mut min = (f64::INFINITY, f64::INFINITY);
        let mut max = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for f in &frames {
            min = (min.0.min(f.1), min.1.min(f.2));
            max = (max.0.max(f.1 + f.3), max.1.max(f.2 + f.4));
        }
        for b in &boxes {
            min = (min.0.min(b.0 - b.2 / 2.0), min.1.min(b.1 - b.3 / 2.0));
            max = (max.0.max(b.0 + b.2 / 2.0), max.1.max(b.1 + b.3 / 2.0));
        }
        if !min.0.is_finite() {
            min = (0.0, 0.0);
            max = (0.0, 0.0);
        }
        let dx = MARGIN - min.0;
        let dy = MARGIN - min.1;
        let width = (max.0 - min.0 + 2.0 * MARGIN).ceil();
        let height = (max.1 - min.1 + 2.0 * MARGIN).ceil();
        let title = self.bands.join(", ");
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\">"
        );
        let _ = writeln!(s, "<title>{}</title>", xml_escape(&title));
        s.push_str(&dark_style());
        let _ = writeln!(
            s,
            "<rect class=\"canvas\" x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
        );
        for (schema, x, y, w, h) in &frames {
            let _ = writeln!(
                s,
                "<g class=\"cluster\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\" \
                 fill=\"none\" stroke=\"{CLUSTER_STROKE}\" stroke-dasharray=\"5,3\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"{CLUSTER_TEXT}\">{}</text></g>",
                xml_escape(schema),
                f1(x + dx),
                f1(y + dy),
                f1(*w),
                f1(*h),
                f1(x + w + dx - CLUSTER_PAD / 2.0 - 2.0),
                f1(y + dy + 13.0),
                xml_escape(schema)
            );
        }
        // Entity boxes: a master and the parts on its rank.
        for block in &self.blocks {
            if block.members.len() < 2 {
                continue;
            }
            let mut lo = (f64::INFINITY, f64::INFINITY);
            let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for &m in &block.members {
                let b = boxes[m];
                lo = (lo.0.min(b.0 - b.2 / 2.0), lo.1.min(b.1 - b.3 / 2.0));
                hi = (hi.0.max(b.0 + b.2 / 2.0), hi.1.max(b.1 + b.3 / 2.0));
            }
            let pad = 5.0;
            let _ = writeln!(
                s,
                "<rect class=\"entity\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"7\" fill=\"{ENTITY_FILL}\" stroke=\"{ENTITY_FILL}\"/>",
                f1(lo.0 - pad + dx),
                f1(lo.1 - pad + dy),
                f1(hi.0 - lo.0 + 2.0 * pad),
                f1(hi.1 - lo.1 + 2.0 * pad)
            );
        }
        // Edges.
        let mut parallel: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
        for e in d.graph.edges() {
            parallel
                .entry((e.parent.as_str(), e.child.as_str()))
                .or_insert((0, 0))
                .1 += 1;
        }
        for (e, chain) in d.graph.edges().iter().zip(&self.chains) {
            if chain.len() < 2 {
                continue;
            }
            let slot = parallel
                .get_mut(&(e.parent.as_str(), e.child.as_str()))
                .map_or((0, 1), |p| {
                    let k = p.0;
                    p.0 += 1;
                    (k, p.1)
                });
            let shift = (slot.0 as f64 - (slot.1 as f64 - 1.0) / 2.0) * 14.0;
            let path = self.edge_path(chain, shift, dx, dy);
            let color = if e.aliased { EDGE_RENAMED } else { EDGE };
            let dash = if e.primary {
                String::new()
            } else {
                " stroke-dasharray=\"5,3\"".to_string()
            };
            let _ = writeln!(
                s,
                "<g class=\"edge\"><title>{}</title><path d=\"{path}\" fill=\"none\" stroke=\"{color}\" \
                 stroke-opacity=\"{EDGE_OPACITY}\" stroke-width=\"{}\"{dash}/></g>",
                xml_escape(&edge_title(e)),
                if e.multi { "0.75" } else { "2" },
            );
        }
        // Nodes, with ids made of `[A-Za-z0-9_]` (as Mermaid's).
        let ids = mermaid_ids(d.graph);
        for (i, p) in self.real.iter().enumerate() {
            let (x, y, w, h) = boxes[i];
            let (x, y) = (x + dx, y + dy);
            let st = style(p.node.tier);
            let shape = match st.shape {
                Shape::Box => format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"{}\" stroke=\"{}\"/>",
                    f1(x - w / 2.0),
                    f1(y - h / 2.0),
                    f1(w),
                    f1(h),
                    if st.rounded { 5 } else { 0 },
                    st.fill,
                    st.stroke
                ),
                Shape::Ellipse => format!(
                    "<ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" fill=\"{}\" stroke=\"{}\"/>",
                    f1(x),
                    f1(y),
                    f1(w / 2.0),
                    f1(h / 2.0),
                    st.fill,
                    st.stroke
                ),
                Shape::Circle => format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\" stroke=\"{}\"/>",
                    f1(x),
                    f1(y),
                    f1(w / 2.0),
                    st.fill,
                    st.stroke
                ),
            };
            let fs = f64::from(st.font_size);
            let underline = if d.graph.introduces_dimension(&p.node.full_name) {
                " text-decoration=\"underline\""
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "<g class=\"node {}\" id=\"{}\"><title>{}</title>{shape}<text x=\"{}\" y=\"{}\" \
                 text-anchor=\"middle\" font-size=\"{}\" fill=\"{}\" textLength=\"{}\" lengthAdjust=\"spacingAndGlyphs\"{underline}>{}</text></g>",
                st.class,
                ids.get(&p.node.full_name).map_or("", String::as_str),
                xml_escape(&d.tooltip(p.node)),
                f1(x),
                f1(y + fs * 0.35),
                st.font_size,
                st.text,
                f1(p.label_w),
                xml_escape(&p.node.class_name),
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// The path of an edge through its chain of layout nodes: from the parent's far side to
    /// the child's near side, smooth through the bend points; a master-to-part edge on one
    /// rank arcs below (or beside) the two.
    fn edge_path(&self, chain: &[usize], shift: f64, dx: f64, dy: f64) -> String {
        let pt = |o: f64, r: f64| {
            let (x, y) = self.xy(o, r);
            format!("{},{}", f1(x + dx), f1(y + dy))
        };
        let first = &self.nodes[chain[0]];
        let last = &self.nodes[chain[chain.len() - 1]];
        if first.rank == last.rank {
            let r = self.rank_pos[first.rank];
            let r0 = r + first.ext_r / 2.0;
            let r1 = r + last.ext_r / 2.0;
            let bulge = r0.max(r1) + 14.0 + 0.08 * (last.o - first.o).abs() + shift.abs();
            return format!(
                "M{} C{} {} {}",
                pt(first.o, r0),
                pt(first.o, bulge),
                pt(last.o, bulge),
                pt(last.o, r1)
            );
        }
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(chain.len());
        for (k, &m) in chain.iter().enumerate() {
            let n = &self.nodes[m];
            let r = self.rank_pos[n.rank];
            let r = if k == 0 {
                r + n.ext_r / 2.0
            } else if k == chain.len() - 1 {
                r - n.ext_r / 2.0
            } else {
                r
            };
            points.push((n.o, r));
        }
        let mut d = format!("M{}", pt(points[0].0, points[0].1));
        for w in points.windows(2) {
            let ((o0, r0), (o1, r1)) = (w[0], w[1]);
            let mid = (r1 - r0) / 2.0;
            let _ = write!(
                d,
                " C{} {} {}",
                pt(o0 + shift, r0 + mid),
                pt(o1 + shift, r1 - mid),
                pt(o1, r1)
            );
        }
        d
    }
}

/// DataJoint's dark palette for each light colour: `(light, dark)` for fills, then strokes.
const DARK_FILLS: &[(&str, &str)] = &[
    ("#E8F0E9", "#16281F"),
    ("#28513A", "#BCE6CF"),
    ("#F0F0F1", "#242832"),
    ("#5A5C5F", "#C9CFD9"),
    ("#FFEDE5", "#331B12"),
    ("#B23200", "#FFC7AE"),
    ("#E0F4FC", "#0F2433"),
    ("#00537A", "#BEE7F9"),
    ("#FFFFFF", "#1E232C"),
    ("#55585C", "#C8CED8"),
    ("#FFFDE7", "#3A3620"),
    ("#6B6420", "#EBE3A0"),
    (ENTITY_FILL, "#2A313D"),
    (CLUSTER_TEXT, "#8A93A1"),
];
const DARK_STROKES: &[(&str, &str)] = &[
    ("#3E7A52", "#6BBF94"),
    ("#808285", "#9DA0A4"),
    ("#FF5113", "#FF7A47"),
    ("#00A0DF", "#33B8E8"),
    ("#B9BBBE", "#8F959D"),
    ("#C9BC5B", "#C9BC5B"),
    (ENTITY_FILL, "#2A313D"),
    (CLUSTER_STROKE, "#606875"),
];

/// A `<style>` that turns the light drawing into DataJoint's dark theme when the viewer
/// prefers dark (DataJoint's default `auto` theme does the same to its Graphviz SVG).
fn dark_style() -> String {
    let mut s = String::from(
        "<style>\n@media (prefers-color-scheme: dark) {\n  rect.canvas { fill: #161A21; }\n",
    );
    for (light, dark) in DARK_FILLS {
        let _ = writeln!(s, "  [fill=\"{light}\"] {{ fill: {dark}; }}");
    }
    for (light, dark) in DARK_STROKES {
        let _ = writeln!(s, "  [stroke=\"{light}\"] {{ stroke: {dark}; }}");
    }
    let _ = writeln!(
        s,
        "  [stroke=\"{EDGE}\"] {{ stroke: #AEB6C2; stroke-opacity: 0.753; }}\n  \
         [stroke=\"{EDGE_RENAMED}\"] {{ stroke: #D68C4A; stroke-opacity: 0.753; }}"
    );
    s.push_str("}\n</style>\n");
    s
}

fn edge_title(e: &Dependency) -> String {
    let mut t = format!("{} → {}", e.parent, e.child);
    let renames = e.renames();
    if !renames.is_empty() {
        t.push_str(": ");
        t.push_str(&renames);
    }
    t
}

/// A coordinate with one decimal.
fn f1(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}
