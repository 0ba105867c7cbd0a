//! Deleting one person's data from every snapshot in the store.
//!
//! A person is identified by e-mail address, compared with Unicode caseless
//! matching. Their own rows are removed. Where they are another user's
//! manager (`manager_email` matches), that row's `manager` and
//! `manager_email` are set to null. Each affected file is rewritten with the
//! same schema and metadata, except `cpstat.users_written` and a note in
//! `cpstat.notes`, and replaces the old file in one rename.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use polars_parquet::write::KeyValue;

use super::Store;
use super::meta::read_footer;
use super::write::{keys, replace_parquet_atomically};

/// The changes `forget` made to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenIn {
    pub path: PathBuf,
    /// Rows of the person removed.
    pub rows_removed: usize,
    /// Other users' rows whose manager fields were cleared.
    pub manager_fields_cleared: usize,
}

/// Removes the person with `email` from every snapshot of the store;
/// returns the files that changed.
pub fn forget_email(store: &Store, email: &str) -> Result<Vec<ForgottenIn>> {
    let mut changed = Vec::new();
    for file in store.list(&[])? {
        if let Some(done) = forget_in_file(&file.path, email)
            .with_context(|| format!("failed to rewrite {}", file.path.display()))?
        {
            tracing::info!(file = %done.path.display(), rows = done.rows_removed, "removed a person's rows");
            changed.push(done);
        }
    }
    Ok(changed)
}

fn forget_in_file(path: &Path, email: &str) -> Result<Option<ForgottenIn>> {
    let frame = ParquetReader::new(File::open(path)?).finish()?;
    let own_rows = matches(&frame, "email", email)?;
    let managed_rows = matches(&frame, "manager_email", email)?;
    let rows_removed = own_rows.sum().unwrap_or(0) as usize;
    let manager_fields_cleared = managed_rows.sum().unwrap_or(0) as usize;
    if rows_removed == 0 && manager_fields_cleared == 0 {
        return Ok(None);
    }

    let mut kept = clear_manager(frame, &managed_rows)?.filter(&!&own_rows)?;
    let note = format!(
        "{rows_removed} rows removed and {manager_fields_cleared} manager fields cleared by `cpstat forget` on {}",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let metadata = updated_metadata(path, kept.height(), &note)?;
    replace_parquet_atomically(path, &mut kept, metadata)?;
    Ok(Some(ForgottenIn {
        path: path.to_path_buf(),
        rows_removed,
        manager_fields_cleared,
    }))
}

/// Marks the rows whose `column` equals `email` without regard to case.
fn matches(frame: &DataFrame, column: &str, email: &str) -> Result<BooleanChunked> {
    let address = email.trim();
    let values = frame.column(column)?.str()?;
    Ok(values
        .iter()
        .map(|value| value.is_some_and(|v| caseless::default_caseless_match_str(v.trim(), address)))
        .collect::<BooleanChunked>()
        .with_name(column.into()))
}

/// Sets `manager` and `manager_email` to null in the marked rows.
fn clear_manager(mut frame: DataFrame, rows: &BooleanChunked) -> Result<DataFrame> {
    if rows.sum().unwrap_or(0) == 0 {
        return Ok(frame);
    }
    for column in ["manager", "manager_email"] {
        let values = frame.column(column)?.str()?;
        let cleared: StringChunked = values
            .iter()
            .zip(rows.iter())
            .map(|(value, clear)| if clear == Some(true) { None } else { value })
            .collect::<StringChunked>()
            .with_name(column.into());
        frame.replace(column, cleared.into_column())?;
    }
    Ok(frame)
}

/// Copies the file's cpstat metadata with the new row count and the note
/// appended. Other keys, such as the Arrow schema, are left to the writer.
fn updated_metadata(path: &Path, rows: usize, note: &str) -> Result<Vec<KeyValue>> {
    let footer = read_footer(path)?;
    let mut pairs = footer.metadata;
    pairs.retain(|key, _| key.starts_with("cpstat."));
    pairs.insert(keys::USERS_WRITTEN.to_string(), rows.to_string());
    let notes = pairs.entry(keys::NOTES.to_string()).or_default();
    if !notes.is_empty() {
        notes.push_str("; ");
    }
    notes.push_str(note);
    Ok(pairs
        .into_iter()
        .map(|(key, value)| KeyValue::new(key, value))
        .collect())
}
