//! Helpers shared by the integration tests: an independent Parquet reader
//! (the `parquet` crate's record API, no polars) and small fixtures.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

/// One row as column name to value.
pub type Row = BTreeMap<String, Field>;

/// Reads every row of a Parquet file with the `parquet` crate.
pub fn read_rows(path: &Path) -> Vec<Row> {
    let reader = SerializedFileReader::new(File::open(path).expect("open parquet file"))
        .expect("parquet footer");
    reader
        .get_row_iter(None)
        .expect("row iterator")
        .map(|row| row.expect("row").into_columns().into_iter().collect())
        .collect()
}

/// Reads a file's key-value metadata with the `parquet` crate.
pub fn key_values(path: &Path) -> BTreeMap<String, String> {
    let reader = SerializedFileReader::new(File::open(path).expect("open parquet file"))
        .expect("parquet footer");
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter_map(|kv| kv.value.clone().map(|v| (kv.key.clone(), v)))
        .collect()
}

/// Returns the column names and their Parquet logical types, as the
/// `parquet` crate reads them.
pub fn column_types(path: &Path) -> Vec<(String, String)> {
    let reader = SerializedFileReader::new(File::open(path).expect("open parquet file"))
        .expect("parquet footer");
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|field| {
            let info = field.get_basic_info();
            let logical = info
                .logical_type_ref()
                .map(|t| format!("{t:?}"))
                .unwrap_or_else(|| "none".into());
            let physical = if field.is_primitive() {
                format!("{:?}", field.get_physical_type())
            } else {
                "group".into()
            };
            (field.name().to_string(), format!("{physical} {logical}"))
        })
        .collect()
}

pub fn text(row: &Row, column: &str) -> Option<String> {
    match row
        .get(column)
        .unwrap_or_else(|| panic!("column {column} missing"))
    {
        Field::Null => None,
        Field::Str(s) => Some(s.clone()),
        other => panic!("column {column} is {other:?}, not text"),
    }
}

pub fn long(row: &Row, column: &str) -> Option<i64> {
    match row
        .get(column)
        .unwrap_or_else(|| panic!("column {column} missing"))
    {
        Field::Null => None,
        Field::Long(v) => Some(*v),
        other => panic!("column {column} is {other:?}, not Int64"),
    }
}

pub fn double(row: &Row, column: &str) -> Option<f64> {
    match row
        .get(column)
        .unwrap_or_else(|| panic!("column {column} missing"))
    {
        Field::Null => None,
        Field::Double(v) => Some(*v),
        other => panic!("column {column} is {other:?}, not Float64"),
    }
}

pub fn micros(row: &Row, column: &str) -> Option<i64> {
    match row
        .get(column)
        .unwrap_or_else(|| panic!("column {column} missing"))
    {
        Field::Null => None,
        Field::TimestampMicros(v) => Some(*v),
        other => panic!("column {column} is {other:?}, not a microsecond timestamp"),
    }
}

/// Returns the `groups` list as (id, name) pairs, or `None` for a null list.
pub fn groups(row: &Row) -> Option<Vec<(String, Option<String>)>> {
    match row.get("groups").expect("column groups missing") {
        Field::Null => None,
        Field::ListInternal(list) => Some(
            list.elements()
                .iter()
                .map(|element| {
                    let Field::Group(group) = element else {
                        panic!("group element {element:?}")
                    };
                    let fields: Row = group.clone().into_columns().into_iter().collect();
                    (
                        text(&fields, "id").expect("group id"),
                        text(&fields, "name"),
                    )
                })
                .collect(),
        ),
        other => panic!("groups is {other:?}, not a list"),
    }
}

/// Lists every `*.parquet` file under a folder, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Returns the path of a file under `data/`.
pub fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Builds a command for the real `cpstat` binary with a clean environment:
/// only `PATH`, `HOME` set to `cwd`, retries without waiting, and `env`.
pub fn cpstat_command(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cpstat"));
    command.args(args).current_dir(cwd).env_clear();
    command.env("PATH", std::env::var("PATH").unwrap_or_default());
    command.env("HOME", cwd).env("CPSTAT_RETRY_TIME_SCALE", "0");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs the real binary to its end; see [`cpstat_command`].
pub fn run_cpstat(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Output {
    cpstat_command(args, env, cwd)
        .output()
        .expect("cpstat runs")
}

/// Runs the real binary like [`run_cpstat`], on a blocking thread, so that
/// a mock API on the test's async runtime keeps serving.
pub async fn cpstat(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_cpstat(&args, &env, &cwd)
    })
    .await
    .expect("the blocking task runs cpstat")
}

/// Lists every file and folder below `dir` whose name ends in `.tmp` or `.part`.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".part") {
                found.push(path.clone());
            }
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}
