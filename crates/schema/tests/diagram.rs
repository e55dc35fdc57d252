//! The dependency graph and its diagrams (DOT, Mermaid, SVG) on every backend, for a pipeline
//! declared here across two schemas: tiers, a master with parts, a part that references
//! another master's part, renamed foreign keys, a secondary foreign key to another schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use dj_schema::diagram::{Diagram, Direction};
use dj_schema::graph::DependencyGraph;
use dj_schema::{Schema, Tier};
use quick_xml::Reader;
use quick_xml::events::Event;

const PIPELINE: &[&str] = &[
    "Subject", "Session", "Trial", "Scan", "Clean", "Detail", "Pair", "Lab",
];

/// Declare the pipeline; returns the upstream schema (dropped by the caller).
async fn declare(label: &str, s: &Schema) -> Schema {
    let conn = s.connection();
    let up = conn
        .schema(&common::schema_name("diagram_up"))
        .await
        .unwrap();
    let u = up.name().to_string();
    up.declare("Lab", Tier::Lookup, "lab : varchar(16)")
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let decl = [
        (
            "Subject",
            Tier::Manual,
            format!("subject_id : int32\n---\n-> {u}.Lab"),
        ),
        (
            "Session",
            Tier::Manual,
            "-> Subject\nsession : int16".to_string(),
        ),
        (
            "Scan",
            Tier::Imported,
            "-> Session\n---\nn : int32".to_string(),
        ),
        (
            "Pair",
            Tier::Computed,
            "-> Subject.proj(subject_a='subject_id')\n-> Subject.proj(subject_b='subject_id')"
                .to_string(),
        ),
        (
            "Clean",
            Tier::Computed,
            "-> Scan\n---\nvalue : float64".to_string(),
        ),
    ];
    let mut tables = std::collections::HashMap::new();
    for (class, tier, def) in &decl {
        let t = s
            .declare(class, *tier, def)
            .await
            .unwrap_or_else(|e| panic!("{label}: {class}: {e}"));
        tables.insert(*class, t);
    }
    s.declare_part(&tables["Session"], "Trial", "-> master\ntrial : int16")
        .await
        .unwrap_or_else(|e| panic!("{label}: Trial: {e}"));
    s.declare_part(&tables["Clean"], "Detail", "-> master\n-> Session.Trial")
        .await
        .unwrap_or_else(|e| panic!("{label}: Detail: {e}"));
    up
}

#[tokio::test]
async fn graph_and_diagrams_on_every_backend() {
    common::each_backend("diagram", |label, s| async move {
        let up = declare(label, &s).await;
        let (m, u) = (s.name().to_string(), up.name().to_string());
        let f = |t: &str| format!("{m}.{t}");
        let conn = s.connection().clone();

        // Only the main schema: the upstream lookup comes in as a node of its own.
        let g = DependencyGraph::load(&conn, &[&m]).await.unwrap();
        let lab = format!("{u}.#lab");
        assert_eq!(g.len(), 8, "{label}: {:?}", g.topo_sort());
        assert_eq!(
            g.topo_sort(),
            [
                lab.clone(),
                f("subject"),
                f("__pair"),
                f("session"),
                f("session__trial"),
                f("_scan"),
                f("__clean"),
                f("__clean__detail"),
            ],
            "{label}"
        );
        assert_eq!(
            g.descendants(&f("session")).unwrap(),
            [
                f("session"),
                f("session__trial"),
                f("_scan"),
                f("__clean"),
                f("__clean__detail")
            ],
            "{label}"
        );
        assert_eq!(
            g.ancestors(&f("__clean__detail")).unwrap(),
            [
                lab.clone(),
                f("subject"),
                f("session"),
                f("session__trial"),
                f("_scan"),
                f("__clean"),
                f("__clean__detail")
            ],
            "{label}"
        );
        assert!(g.ancestors("nope.nope").is_err());
        // Edge properties, as DataJoint's Dependencies computes them.
        let pair = g.parents(&f("__pair")).unwrap();
        assert_eq!(pair.len(), 2, "{label}: one edge per foreign key");
        assert!(pair.iter().all(|e| e.aliased && e.primary && e.multi));
        assert_eq!(pair[0].renames(), "subject_a ← subject_id");
        let sub = g.parents(&f("subject")).unwrap();
        assert_eq!(sub.len(), 1);
        assert!(!sub[0].primary && sub[0].multi && !sub[0].aliased && sub[0].parent == lab);
        let scan = g.parents(&f("_scan")).unwrap();
        assert!(scan[0].primary && !scan[0].multi);
        assert_eq!(g.children(&f("subject")).unwrap().len(), 3);
        let detail = g.node(&f("__clean__detail")).unwrap();
        assert_eq!(detail.tier, Some(Tier::Part));
        assert_eq!(detail.master.as_deref(), Some(f("__clean").as_str()));
        assert_eq!(detail.class_name, "Detail");
        assert_eq!(g.node(&lab).unwrap().tier, Some(Tier::Lookup));
        assert_eq!(
            g.node(&f("session")).unwrap().primary_key,
            ["subject_id", "session"]
        );
        assert!(g.introduces_dimension(&f("subject")));
        assert!(g.introduces_dimension(&f("session")));
        assert!(!g.introduces_dimension(&f("_scan")));
        assert!(!g.introduces_dimension(&f("__pair")));

        // Upstream loading brings the other schema in whole.
        let gu = DependencyGraph::load_upstream(&conn, &[&m]).await.unwrap();
        assert_eq!(gu.schemas(), [m.clone(), u.clone()], "{label}");
        assert_eq!(gu.len(), 8);
        // Downstream from the upstream schema reaches the main one.
        let gd = DependencyGraph::load_downstream(&conn, &[&u])
            .await
            .unwrap();
        assert_eq!(gd.len(), 8, "{label}: {:?}", gd.topo_sort());
        assert_eq!(gd.descendants(&lab).unwrap().len(), 8);

        check_dot(label, &g, &m, &u);
        check_mermaid(label, &g, &m, &u);
        check_svg(label, &Diagram::new(&g).to_svg(), 8, 9, PIPELINE);
        check_svg(
            label,
            &Diagram::new(&g).direction(Direction::LeftRight).to_svg(),
            8,
            9,
            PIPELINE,
        );
        if label == "sqlite"
            && let Ok(path) = std::env::var("DJ_DIAGRAM_SAMPLE")
        {
            std::fs::write(path, Diagram::new(&g).to_svg()).unwrap();
        }

        s.clone()
            .drop()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        up.drop().await.unwrap_or_else(|e| panic!("{label}: {e}"));
        // The harness drops the main schema again; recreate it so that works.
        conn.schema(&m).await.unwrap();
    })
    .await;
}

fn check_dot(label: &str, g: &DependencyGraph, m: &str, u: &str) {
    let dot = Diagram::new(g).to_dot();
    for want in [
        format!("digraph \"{m}, {u}\" {{"),
        "graph [rankdir=TB, fontname=\"Helvetica\"];".to_string(),
        format!("subgraph \"cluster_{m}\" {{"),
        format!("subgraph \"cluster_{u}\" {{"),
        format!("subgraph \"cluster_entity_{m}.session\" {{"),
        format!("{{ rank=same; \"{m}.session\"; \"{m}.session__trial\"; }}"),
        format!(
            "\"{m}._scan\" [label=\"Scan\", shape=ellipse, style=\"filled\", fillcolor=\"#E0F4FC\", \
             color=\"#00A0DF\", fontcolor=\"#00537A\", fontsize=12, width=0.48, height=0.48,"
        ),
        format!(
            "\"{m}.session\" [label=<<u>Session</u>>, shape=box, style=\"rounded,filled\", fillcolor=\"#E8F0E9\""
        ),
        format!(
            "\"{m}.session__trial\" [label=<<u>Trial</u>>, shape=box, style=\"rounded,filled\", fillcolor=\"#FFFFFF\", color=\"#B9BBBE\", fontcolor=\"#55585C\", fontsize=10, width=0.12"
        ),
        format!(
            "\"{u}.#lab\" [label=<<u>Lab</u>>, shape=box, style=\"rounded,filled\", fillcolor=\"#F0F0F1\""
        ),
        format!(
            "\"{m}.__pair\" [label=\"Pair\", shape=ellipse, style=\"filled\", fillcolor=\"#FFEDE5\""
        ),
        format!(
            "\"{u}.#lab\" -> \"{m}.subject\" [color=\"#171C399E\", style=dashed, penwidth=0.75, weight=1];"
        ),
        format!(
            "\"{m}.session\" -> \"{m}._scan\" [color=\"#171C399E\", style=solid, penwidth=2, weight=3];"
        ),
        format!(
            "\"{m}.subject\" -> \"{m}.__pair\" [color=\"#C77D3A9E\", style=solid, penwidth=0.75, weight=1, tooltip=\"subject_a ← subject_id\"];"
        ),
        format!(
            "\"{m}.subject\" -> \"{m}.__pair\" [color=\"#C77D3A9E\", style=solid, penwidth=0.75, weight=1, tooltip=\"subject_b ← subject_id\"];"
        ),
    ] {
        assert!(dot.contains(&want), "{label}: DOT lacks\n{want}\nin\n{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 9, "{label}: {dot}");
    // Balanced braces: the text is one graph.
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    let lr = Diagram::new(g).direction(Direction::LeftRight).to_dot();
    assert!(lr.contains("rankdir=LR"));
}

fn check_mermaid(label: &str, g: &DependencyGraph, m: &str, u: &str) {
    let mm = Diagram::new(g).to_mermaid();
    assert!(mm.starts_with("flowchart TB\n"), "{label}: {mm}");
    for want in [
        "    classDef manual fill:#E8F0E9,stroke:#3E7A52,color:#28513A".to_string(),
        "    classDef computed fill:#FFEDE5,stroke:#FF5113,color:#B23200".to_string(),
        format!("    subgraph {m}[\"{m}\"]"),
        format!("        subgraph entity_{m}_session[\" \"]"),
        format!("            {m}_session[\"Session\"]:::manual"),
        format!("            {m}_session__trial[\"Trial\"]:::part"),
        format!("        {m}__scan([\"Scan\"]):::imported"),
        format!("        {u}__lab[\"Lab\"]:::lookup"),
        format!("    {u}__lab -.-> {m}_subject"),
        format!("    {m}_session --> {m}__scan"),
    ] {
        assert!(
            mm.contains(&want),
            "{label}: Mermaid lacks\n{want}\nin\n{mm}"
        );
    }
    let styles: Vec<&str> = mm.lines().filter(|l| l.contains("linkStyle")).collect();
    assert_eq!(styles.len(), 9, "{label}: {mm}");
    assert_eq!(
        styles
            .iter()
            .filter(|l| l.contains("stroke:#C77D3A,stroke-width:1px"))
            .count(),
        2,
        "{label}: the two renamed foreign keys are amber and thin"
    );
    assert_eq!(
        mm.matches("subgraph").count(),
        mm.matches("\n    end").count() + mm.matches("\n        end").count()
    );
}

/// The SVG parses as XML, has `nodes` node groups and `edges` edge paths, and no two node
/// shapes overlap.
fn check_svg(label: &str, svg: &str, nodes: usize, edges: usize, labels: &[&str]) {
    let mut reader = Reader::from_str(svg);
    let mut n_nodes = 0;
    let mut n_edges = 0;
    let mut texts = Vec::new();
    let mut boxes: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut in_node = false;
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if true => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let attr = |k: &str| -> Option<String> {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.as_ref() == k.as_bytes())
                        .map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                };
                let num = |k: &str| attr(k).unwrap().parse::<f64>().unwrap();
                if name == "svg" {
                    depth += 1;
                }
                if name == "g" {
                    let class = attr("class").unwrap_or_default();
                    if class.starts_with("node ") {
                        n_nodes += 1;
                        in_node = true;
                    } else if class == "edge" {
                        n_edges += 1;
                    }
                }
                if in_node {
                    match name.as_str() {
                        "rect" => boxes.push((num("x"), num("y"), num("width"), num("height"))),
                        "ellipse" => {
                            let (cx, cy, rx, ry) = (num("cx"), num("cy"), num("rx"), num("ry"));
                            boxes.push((cx - rx, cy - ry, 2.0 * rx, 2.0 * ry));
                        }
                        "circle" => {
                            let (cx, cy, r) = (num("cx"), num("cy"), num("r"));
                            boxes.push((cx - r, cy - r, 2.0 * r, 2.0 * r));
                        }
                        _ => {}
                    }
                }
            }
            Ok(Event::End(e)) => {
                if e.name().as_ref() == b"g" {
                    in_node = false;
                }
            }
            Ok(Event::Text(t)) => texts.push(t.decode().unwrap().into_owned()),
            Ok(_) => {}
            Err(e) => panic!("{label}: SVG is not well-formed: {e}\n{svg}"),
        }
    }
    assert_eq!(depth, 1, "{label}");
    assert!(
        svg.contains("@media (prefers-color-scheme: dark)"),
        "{label}"
    );
    assert_eq!(n_nodes, nodes, "{label}: {svg}");
    assert_eq!(n_edges, edges, "{label}: {svg}");
    assert_eq!(boxes.len(), nodes);
    for name in labels {
        assert!(texts.iter().any(|t| t == name), "{label}: no label {name}");
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart =
                a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
            assert!(apart, "{label}: node shapes overlap: {a:?} {b:?}\n{svg}");
        }
    }
}

/// The pipeline drawn in `docs/diagram.md`, on SQLite: the committed `docs/diagram.svg` must be
/// what the renderer draws today (`DJ_BLESS=1` rewrites it).
#[tokio::test]
async fn docs_diagram_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dj_config::Config::default();
    config.database.path = Some(dir.path().join("docs.sqlite"));
    let conn = dj_schema::Connection::open(&config).await.unwrap();
    let lab = conn.schema("lab").await.unwrap();
    lab.declare(
        "Rig",
        Tier::Lookup,
        "rig : varchar(16)\n---\nroom : varchar(16)",
    )
    .await
    .unwrap();
    lab.declare(
        "Subject",
        Tier::Manual,
        "subject_id : int32\n---\nspecies : varchar(32)",
    )
    .await
    .unwrap();
    let session = lab
        .declare(
            "Session",
            Tier::Manual,
            "-> Subject\nsession : int16\n---\n-> Rig\nsession_date : date",
        )
        .await
        .unwrap();
    lab.declare_part(
        &session,
        "Trial",
        "-> master\ntrial : int16\n---\nstart : float64",
    )
    .await
    .unwrap();
    lab.declare("Scan", Tier::Imported, "-> Session\n---\nn_samples : int32")
        .await
        .unwrap();
    let filtered = lab
        .declare("Filtered", Tier::Computed, "-> Scan\n---\nmean : float64")
        .await
        .unwrap();
    lab.declare_part(
        &filtered,
        "Trial",
        "-> master\n-> Session.Trial\n---\nvalue : float64",
    )
    .await
    .unwrap();
    lab.declare(
        "Comparison",
        Tier::Computed,
        "-> Filtered.proj(session_a='session')\n-> Filtered.proj(session_b='session')\n---\nr : float64",
    )
    .await
    .unwrap();
    let g = DependencyGraph::load(&conn, &["lab"]).await.unwrap();
    let svg = Diagram::new(&g).to_svg();
    check_svg(
        "docs",
        &svg,
        8,
        9,
        &[
            "Rig",
            "Subject",
            "Session",
            "Trial",
            "Scan",
            "Filtered",
            "Comparison",
        ],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagram.svg");
    if std::env::var("DJ_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &svg).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == svg,
        "docs/diagram.svg is not what the renderer draws now; run with DJ_BLESS=1 to rewrite it"
    );
    conn.close().await;
}

/// A wider pipeline, with long edges, several parts per master and a part that references a
/// sibling: the SVG still has every table, every edge, and no overlapping shapes, both ways.
#[tokio::test]
async fn wide_pipeline_lays_out_without_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dj_config::Config::default();
    config.database.path = Some(dir.path().join("wide.sqlite"));
    let conn = dj_schema::Connection::open(&config).await.unwrap();
    let s = conn.schema("wide").await.unwrap();
    let decl: &[(&str, Tier, &str)] = &[
        ("Animal", Tier::Manual, "animal : int32"),
        ("Species", Tier::Lookup, "species : varchar(16)"),
        ("Rig", Tier::Lookup, "rig : varchar(16)"),
        ("Keeper", Tier::Manual, "keeper : varchar(16)"),
        (
            "Session",
            Tier::Manual,
            "-> Animal\nsession : int16\n---\n-> Rig\n-> Keeper",
        ),
        ("Stimulus", Tier::Lookup, "stimulus : varchar(16)"),
        ("Recording", Tier::Imported, "-> Session\n---\nn : int32"),
        ("Spikes", Tier::Computed, "-> Recording\n---\nn : int32"),
        ("Lfp", Tier::Computed, "-> Recording\n---\nn : int32"),
        (
            "Tuning",
            Tier::Computed,
            "-> Spikes\n-> Stimulus\n---\nn : int32",
        ),
        ("Summary", Tier::Computed, "-> Animal\n---\nn : int32"),
        (
            "Report",
            Tier::Computed,
            "-> Tuning\n-> Lfp\n---\n-> Species",
        ),
    ];
    let mut tables = std::collections::HashMap::new();
    for (class, tier, def) in decl {
        let t = s
            .declare(class, *tier, def)
            .await
            .unwrap_or_else(|e| panic!("{class}: {e}"));
        tables.insert(*class, t);
    }
    s.declare_part(&tables["Spikes"], "Unit", "-> master\nunit : int16")
        .await
        .unwrap();
    s.declare_part(
        &tables["Spikes"],
        "Waveform",
        "-> Spikes.Unit\n---\nw : float64",
    )
    .await
    .unwrap();
    s.declare_part(&tables["Session"], "Note", "-> master\nnote : int16")
        .await
        .unwrap();
    let g = DependencyGraph::load(&conn, &["wide"]).await.unwrap();
    assert_eq!(g.len(), 15);
    let edges = g.edges().len();
    let labels: Vec<String> = g.nodes().map(|n| n.class_name.clone()).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    for dir in [Direction::TopBottom, Direction::LeftRight] {
        let svg = Diagram::new(&g).direction(dir).to_svg();
        check_svg("wide", &svg, 15, edges, &labels);
        if let Ok(p) = std::env::var("DJ_DIAGRAM_SAMPLE") {
            std::fs::write(format!("{p}-{dir:?}.svg"), &svg).unwrap();
        }
    }
    conn.close().await;
}
