//! `cpstat query`: SQL over the store and the latest report set.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{CsvWriter, DataFrame, ParquetReader, PolarsError, SerReader, SerWriter};

use crate::cli::QueryArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, usage};
use crate::output::{Output, frame_rows_json};
use crate::query::{context, run_sql};
use crate::report::LATEST;
use crate::settings::resolve_store;
use crate::snapshot::Store;

pub fn run(args: &QueryArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    let store_dir = resolve_store(&args.store, config);
    let reports = args
        .reports
        .clone()
        .unwrap_or_else(|| store_dir.join("reports"));
    let (name, sql) = sql_text(&args.sql)?;
    let store = Store::new(&store_dir);
    let snapshots = Store::scan(&store.list(&[])?)?;
    let tables = latest_report_tables(&reports.join(LATEST))?;
    let mut sql_context = context(snapshots, &tables)?;
    let mut result = run_sql(&mut sql_context, &name, &sql)?;
    match &args.out {
        Some(path) => write_result(path, &mut result)?,
        None if output.json => output.json_value(&frame_rows_json(&result))?,
        None => print_result(&mut result)?,
    }
    Ok(ExitKind::Success)
}

/// Reads the SQL from a file when the argument names an existing `.sql` file.
fn sql_text(argument: &str) -> Result<(String, String)> {
    let path = Path::new(argument);
    if path.extension().is_some_and(|e| e == "sql") {
        let sql = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("failed to read SQL file {}: {e}", path.display())))?;
        return Ok((path.display().to_string(), sql));
    }
    Ok(("the query".to_string(), argument.to_string()))
}

/// Loads every table of a report set, or none when there is no set yet.
pub fn latest_report_tables(dir: &Path) -> Result<Vec<(String, DataFrame)>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::info!(dir = %dir.display(), "no report set yet; only snapshots and latest are available");
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let file = std::fs::File::open(&path)
                .with_context(|| format!("failed to open {}", path.display()))?;
            let frame = ParquetReader::new(file)
                .finish()
                .with_context(|| format!("failed to read report table {}", path.display()))?;
            Ok((name, frame))
        })
        .collect()
}

/// Writes the result to a hidden `.part` file beside `path` and renames it
/// into place, so that an interrupted run leaves no partial result file.
fn write_result(path: &Path, frame: &mut DataFrame) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let temp = path.with_file_name(format!(".{name}.{}.part", std::process::id()));
    let written = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => crate::report::write_parquet(&temp, frame),
        Some("csv") => crate::report::csv::write_safe_csv(
            &temp,
            frame,
            crate::report::CsvOptions { bom: true },
        ),
        _ => {
            return Err(usage(format!(
                "cannot tell the format of {}: name the file *.parquet or *.csv",
                path.display()
            )));
        }
    };
    let renamed = written.and_then(|()| {
        std::fs::rename(&temp, path)
            .with_context(|| format!("failed to move the result into place at {}", path.display()))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

/// Prints a table on a terminal, and CSV into a pipe.
fn print_result(frame: &mut DataFrame) -> Result<()> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        println!("{frame}");
        return Ok(());
    }
    let written = CsvWriter::new(stdout.lock())
        .include_header(true)
        .finish(frame);
    match written {
        Err(PolarsError::IO { error, .. }) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(())
        }
        other => Ok(other?),
    }
}
