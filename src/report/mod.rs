//! Report sets: the analysis tables written as files, published atomically.
//!
//! A run writes `<out>/<YYYYMMDDTHHMMSSZ>/` and then points `<out>/latest`
//! at it. Files are written with a `.part` suffix inside a hidden folder and
//! synced. They get their final names only once all of them are complete, so
//! neither a crash nor a failed run leaves a partial `.parquet` file or
//! changes what `latest` shows.

pub mod charts;
pub mod csv;
pub mod html;
pub mod page_data;
pub mod svg;
pub mod xlsx;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{DataFrame, ParquetCompression, ParquetWriter};
use rayon::prelude::*;

use crate::snapshot::store::{STEM_FORMAT, create_private_file, restrict_file};

/// Name of the pointer to the newest complete report set.
pub const LATEST: &str = "latest";
/// File name of the workbook in a report set.
pub const WORKBOOK: &str = "report.xlsx";
const PART_SUFFIX: &str = ".part";

/// Output formats of a report set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    // Plain comments, not doc comments: clap would show doc comments of the
    // values as long help and spread `analyze --help` over many lines.
    // One Parquet file per table.
    Parquet,
    // One CSV file per table.
    Csv,
    // One Excel workbook, `report.xlsx`, with a sheet per table.
    Xlsx,
    // Parquet and CSV.
    Both,
    // Parquet, CSV and the Excel workbook.
    All,
}

impl Format {
    fn parquet(self) -> bool {
        matches!(self, Format::Parquet | Format::Both | Format::All)
    }

    fn csv(self) -> bool {
        matches!(self, Format::Csv | Format::Both | Format::All)
    }

    fn xlsx(self) -> bool {
        matches!(self, Format::Xlsx | Format::All)
    }
}

/// Options of the CSV files.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// Start each file with a UTF-8 byte-order mark, so that spreadsheet
    /// programs read æ, ø and å correctly.
    pub bom: bool,
}

/// Writes a report set and publishes it as `latest`; returns its folder.
pub fn publish(
    out: &Path,
    created_at: DateTime<Utc>,
    tables: &mut [(String, DataFrame)],
    format: Format,
    csv_options: CsvOptions,
) -> Result<PathBuf> {
    create_private_dir(out)?;
    remove_leftovers(out);
    let work = out.join(format!(
        ".{}.{}.tmp",
        created_at.format(STEM_FORMAT),
        std::process::id()
    ));
    create_private_dir(&work)?;
    let written = write_tables(&work, tables, format, csv_options);
    if let Err(error) = written {
        let _ = fs::remove_dir_all(&work);
        return Err(error);
    }
    let final_dir = free_set_dir(out, created_at);
    fs::rename(&work, &final_dir).with_context(|| {
        format!(
            "failed to move the report set into place at {}",
            final_dir.display()
        )
    })?;
    finish_parts(&final_dir)?;
    point_latest(out, &final_dir)?;
    Ok(final_dir)
}

fn write_tables(
    dir: &Path,
    tables: &mut [(String, DataFrame)],
    format: Format,
    csv_options: CsvOptions,
) -> Result<()> {
    // The tables are independent files, each synced to disk, so they are
    // written in parallel and their syncs overlap.
    tables
        .par_iter_mut()
        .try_for_each(|(name, frame)| -> Result<()> {
            if format.parquet() {
                let path = dir.join(format!("{name}.parquet{PART_SUFFIX}"));
                write_parquet(&path, frame).with_context(|| {
                    format!("failed to write table {name} to {}", path.display())
                })?;
            }
            if format.csv() {
                let path = dir.join(format!("{name}.csv{PART_SUFFIX}"));
                csv::write_safe_csv(&path, frame, csv_options).with_context(|| {
                    format!("failed to write table {name} to {}", path.display())
                })?;
            }
            Ok(())
        })?;
    if format.xlsx() {
        let path = dir.join(format!("{WORKBOOK}{PART_SUFFIX}"));
        xlsx::write_workbook(&path, tables)?;
    }
    Ok(())
}

/// Writes one frame as Parquet, synced to disk.
pub fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<()> {
    let file = create_private_file(path)?;
    crate::snapshot::write::write_buffered(&file, |writer| {
        ParquetWriter::new(writer)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(frame)
    })?;
    file.sync_all()?;
    restrict_file(path)
}

/// Returns `<out>/<stamp>`, or `<out>/<stamp>-N` when runs share a second.
fn free_set_dir(out: &Path, created_at: DateTime<Utc>) -> PathBuf {
    let stem = created_at.format(STEM_FORMAT).to_string();
    let mut candidate = out.join(&stem);
    let mut n = 1;
    while candidate.exists() {
        candidate = out.join(format!("{stem}-{n}"));
        n += 1;
    }
    candidate
}

/// Renames every `*.part` file in `dir` to its final name.
fn finish_parts(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if let Some(final_name) = path.to_str().and_then(|p| p.strip_suffix(PART_SUFFIX)) {
            fs::rename(&path, final_name)
                .with_context(|| format!("failed to rename {}", path.display()))?;
        }
    }
    sync_dir(dir);
    Ok(())
}

/// Points `<out>/latest` at `set_dir` by renaming a new symbolic link over
/// the old one, which readers see change in one step.
fn point_latest(out: &Path, set_dir: &Path) -> Result<()> {
    let latest = out.join(LATEST);
    let target = set_dir.file_name().context("report folder has no name")?;
    if latest.exists() && !latest.is_symlink() {
        anyhow::bail!(crate::error::UsageError(format!(
            "{} exists and is not a symbolic link made by cpstat; move it away and run again",
            latest.display()
        )));
    }
    let link = out.join(format!(".{LATEST}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&link);
    make_symlink(Path::new(target), &link)?;
    fs::rename(&link, &latest).with_context(|| format!("failed to update {}", latest.display()))?;
    sync_dir(out);
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("failed to create link {}", link.display()))
}

#[cfg(not(unix))]
fn make_symlink(_target: &Path, link: &Path) -> Result<()> {
    anyhow::bail!(
        "publishing {} needs symbolic links, which this platform does not offer",
        link.display()
    )
}

/// Removes what interrupted runs left in `out`: hidden work folders and
/// links of processes that no longer run, and report sets that were moved
/// into place but still hold `.part` files. Returns how many were removed.
///
/// The caller must hold the store lock, because a set that another
/// process is finishing looks the same as an interrupted one.
pub fn remove_leftovers(out: &Path) -> usize {
    remove_stale_work_dirs(out) + remove_incomplete_sets(out)
}

fn remove_incomplete_sets(out: &Path) -> usize {
    let Ok(entries) = fs::read_dir(out) else {
        return 0;
    };
    let mut removed = 0;
    for path in entries.flatten().map(|e| e.path()) {
        let is_set = path
            .file_name()
            .is_some_and(|n| is_set_name(&n.to_string_lossy()));
        if !is_set || path.is_symlink() || !path.is_dir() || !holds_parts(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::warn!(dir = %path.display(), "removed a report set that an interrupted run left incomplete");
                removed += 1;
            }
            Err(error) => {
                tracing::warn!(dir = %path.display(), %error, "failed to remove an incomplete report set")
            }
        }
    }
    removed
}

/// Checks whether a folder name is one that [`free_set_dir`] gives, so that
/// other folders in `--out` are never removed or checked as report sets.
pub fn is_set_name(name: &str) -> bool {
    let stem = match name.split_once('-') {
        Some((stem, n)) if n.parse::<u32>().is_ok() => stem,
        Some(_) => return false,
        None => name,
    };
    chrono::NaiveDateTime::parse_from_str(stem, STEM_FORMAT).is_ok()
}

fn holds_parts(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(PART_SUFFIX))
    })
}

fn remove_stale_work_dirs(out: &Path) -> usize {
    let Ok(entries) = fs::read_dir(out) else {
        return 0;
    };
    let mut removed_count = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id() {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {
                tracing::warn!(path = %path.display(), "removed a leftover of an interrupted run");
                removed_count += 1;
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "failed to remove a leftover of an interrupted run")
            }
        }
    }
    removed_count
}

/// Reads the process id from a work name `.<anything>.<pid>.tmp`.
fn stale_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    inner.rsplit('.').next()?.parse().ok()
}

fn create_private_dir(dir: &Path) -> Result<()> {
    crate::snapshot::Store::new(dir).create_private_dir(dir)
}

fn sync_dir(dir: &Path) {
    if let Err(error) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), %error, "could not sync the folder");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_recognised() {
        let cases = [
            ("20261207T061502Z", true),
            ("20261207T061502Z-3", true),
            ("20261207T061502Z-x", false),
            ("latest", false),
            ("downloads", false),
            (".20261207T061502Z.42.tmp", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_set_name(name), expected, "{name}");
        }
    }
}
