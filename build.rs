//! Compiles the shipped `queries/*.sql` into the binary, so that an installed
//! cpstat runs them without the source tree. `duckdb_views.sql` is DuckDB's
//! setup, not a query, and is left out.

use std::fs;
use std::path::Path;

fn main() {
    // Read at run time: a compiled build script can be reused by another
    // checkout that shares the target folder, and must read that checkout's queries.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("queries");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Ok(read) = fs::read_dir(&dir) {
        for entry in read.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|e| e == "sql") && stem != "duckdb_views" {
                println!("cargo:rerun-if-changed={}", path.display());
                entries.push((stem.to_string(), path.display().to_string()));
            }
        }
    }
    entries.sort();
    let body: String = entries
        .iter()
        .map(|(name, path)| format!("    ({name:?}, include_str!({path:?})),\n"))
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("shipped_queries.rs");
    fs::write(out, format!("&[\n{body}]\n")).expect("OUT_DIR is writable");
}
