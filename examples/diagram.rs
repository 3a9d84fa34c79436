//! Regenerates `docs/state-diagram.md`, `docs/state-diagram.dot`, the
//! diagram embedded in `README.md` and, when
//! Graphviz's `dot` is installed, `docs/state-diagram.svg`, all derived from
//! the transition function by exploration.
//!
//! Run: `cargo run --example diagram`

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ws_lifecycle::fsm::{diagram, explore};

fn main() -> std::io::Result<()> {
    let config = explore::exploration_config();
    let graph = explore::explore(&config, Instant::now(), |_, _, _, _| {});
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&docs)?;
    std::fs::write(docs.join("state-diagram.md"), diagram::mermaid(&graph))?;
    let dot_path = docs.join("state-diagram.dot");
    std::fs::write(&dot_path, diagram::dot(&graph))?;
    println!(
        "explored {} abstract states, {} state x event pairs, {} merged edges",
        graph.states,
        graph.transitions,
        graph.edges.len()
    );
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    match diagram::splice_readme(&readme, &graph) {
        Some(updated) => std::fs::write(&readme_path, updated)?,
        None => println!("README.md has no state-diagram markers: left it alone"),
    }
    let svg = docs.join("state-diagram.svg");
    match Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_path)
        .arg("-o")
        .arg(&svg)
        .status()
    {
        Ok(s) if s.success() => println!("wrote {}", svg.display()),
        _ => println!("graphviz `dot` not found: skipped the SVG"),
    }
    Ok(())
}
