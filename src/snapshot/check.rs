//! Checks of snapshot files against the fixed schema and their own metadata.
//!
//! [`check_footer`] reads only the footer and is cheap enough for `analyze`
//! to run on every file; [`check_contents`] also reads the rows, for
//! `verify`.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::meta::FileFooter;
use super::record::COUNTER_FIELDS;
use super::schema::{SCHEMA_VERSION, snapshot_schema};
use super::write::keys;

/// Checks that a file has a readable Parquet footer, cpstat's schema version
/// and exactly the snapshot columns and types. Returns the footer, or the
/// reason the file is not a valid snapshot.
pub fn check_footer(path: &Path) -> Result<FileFooter, String> {
    let footer = super::meta::read_footer(path)
        .map_err(|e| format!("unreadable Parquet footer: {}", e.root_cause()))?;
    match footer.get(keys::SCHEMA_VERSION) {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "schema version {other}, but this cpstat reads version {SCHEMA_VERSION}"
            ));
        }
        None => {
            return Err(format!(
                "no {} metadata: the file was not written by cpstat",
                keys::SCHEMA_VERSION
            ));
        }
    }
    let schema = file_schema(path)?;
    schema_problem(&schema).map_or(Ok(footer), Err)
}

/// Reads a file's column names and types from its footer.
fn file_schema(path: &Path) -> Result<Schema, String> {
    let file = File::open(path).map_err(|e| format!("failed to open: {e}"))?;
    let arrow = ParquetReader::new(file)
        .schema()
        .map_err(|e| format!("failed to read the schema: {e}"))?;
    Ok(Schema::from_arrow_schema(&arrow))
}

/// Describes how a schema differs from the snapshot schema, if it does.
pub fn schema_problem(schema: &Schema) -> Option<String> {
    let expected = snapshot_schema();
    let mut problems = Vec::new();
    for (name, dtype) in expected.iter() {
        match schema.get(name) {
            None => problems.push(format!("column {name} is missing")),
            Some(found) if found != dtype => {
                problems.push(format!("column {name} is {found}, expected {dtype}"))
            }
            Some(_) => {}
        }
    }
    for name in schema.iter_names() {
        if expected.get(name).is_none() {
            problems.push(format!("unexpected column {name}"));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Checks a snapshot's rows against its footer: the row count equals
/// `cpstat.users_written`, every `user_id` is present and unique, and no
/// counter is negative. Returns one text per problem found.
pub fn check_contents(path: &Path, footer: &FileFooter) -> Vec<String> {
    let mut problems = Vec::new();
    match footer.get(keys::USERS_WRITTEN).map(|v| v.parse::<usize>()) {
        Some(Ok(written)) if written == footer.rows => {}
        Some(Ok(written)) => problems.push(format!(
            "{} rows, but {} says {written}",
            footer.rows,
            keys::USERS_WRITTEN
        )),
        _ => problems.push(format!(
            "{} is missing or not a number",
            keys::USERS_WRITTEN
        )),
    }
    let frame = match read_frame(path) {
        Ok(frame) => frame,
        Err(reason) => {
            problems.push(reason);
            return problems;
        }
    };
    if frame.height() != footer.rows {
        problems.push(format!(
            "{} rows were read, but the footer says {}",
            frame.height(),
            footer.rows
        ));
    }
    problems.extend(user_id_problem(&frame));
    problems.extend(negative_counters(&frame));
    problems
}

fn read_frame(path: &Path) -> Result<DataFrame, String> {
    let file = File::open(path).map_err(|e| format!("failed to open: {e}"))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| format!("failed to read the rows: {e}"))
}

fn user_id_problem(frame: &DataFrame) -> Option<String> {
    let ids = frame.column("user_id").ok()?.as_materialized_series();
    let nulls = ids.null_count();
    if nulls > 0 {
        return Some(format!("{nulls} rows have no user_id"));
    }
    let unique = ids.n_unique().ok()?;
    (unique != frame.height()).then(|| {
        format!(
            "user_id is not unique: {} rows but {unique} distinct ids",
            frame.height()
        )
    })
}

fn negative_counters(frame: &DataFrame) -> Vec<String> {
    let mut problems = Vec::new();
    for (_, column) in COUNTER_FIELDS {
        let Ok(values) = frame.column(column).and_then(|c| c.i64().cloned()) else {
            continue;
        };
        let negative = values.iter().flatten().filter(|v| *v < 0).count();
        if negative > 0 {
            problems.push(format!("{column} is negative in {negative} rows"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_schema_has_no_problem() {
        assert_eq!(schema_problem(&snapshot_schema()), None);
    }

    #[test]
    fn schema_differences_named() {
        let mut schema = snapshot_schema();
        schema.insert("emails_sent".into(), DataType::Float64);
        schema.shift_remove("email");
        schema.insert("nickname".into(), DataType::String);
        let problem = schema_problem(&schema).unwrap();
        assert!(problem.contains("column email is missing"), "{problem}");
        assert!(problem.contains("column emails_sent is f64"), "{problem}");
        assert!(problem.contains("unexpected column nickname"), "{problem}");
    }
}
