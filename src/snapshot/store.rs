//! The snapshot store: a Hive-partitioned folder of Parquet files.
//!
//! `<store>/users_summary/account=<account-id>/<YYYYMMDDTHHMMSSZ>.parquet`,
//! one file per account per fetch. DuckDB reads it with
//! `read_parquet('<store>/users_summary/**/*.parquet', hive_partitioning = true)`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use polars::prelude::*;

use super::schema::snapshot_schema;

/// The table folder under the store root.
pub const TABLE_DIR: &str = "users_summary";
/// Suffix of files being written; it must not end in `.parquet`.
pub const TEMP_SUFFIX: &str = ".tmp";
/// File name format of snapshots: the UTC snapshot time.
pub const STEM_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A snapshot store rooted at a folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// One snapshot file found in the store.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub account_id: String,
    pub snapshot_at: DateTime<Utc>,
    pub path: PathBuf,
    pub size: u64,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table_dir(&self) -> PathBuf {
        self.root.join(TABLE_DIR)
    }

    pub fn account_dir(&self, account_id: &str) -> PathBuf {
        self.table_dir().join(format!("account={account_id}"))
    }

    /// Creates a folder and its missing parents, readable by the owner only
    /// on Unix.
    pub fn create_private_dir(&self, dir: &Path) -> Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("failed to create folder {}", dir.display()))
    }

    /// Lists the snapshot files, oldest first, optionally of some accounts.
    /// Files whose names do not follow the layout are skipped with a warning.
    pub fn list(&self, accounts: &[String]) -> Result<Vec<SnapshotFile>> {
        let table = self.table_dir();
        if !table.is_dir() {
            return Ok(Vec::new());
        }
        let mut files = Vec::new();
        for entry in read_dir_sorted(&table)? {
            let Some(account_id) = partition_value(&entry) else {
                continue;
            };
            if !accounts.is_empty() && !accounts.contains(&account_id) {
                continue;
            }
            for path in read_dir_sorted(&entry)? {
                if let Some(file) = snapshot_file(&account_id, &path)? {
                    files.push(file);
                }
            }
        }
        files.sort_by(|a, b| (a.snapshot_at, &a.account_id).cmp(&(b.snapshot_at, &b.account_id)));
        Ok(files)
    }

    /// Removes temporary files that interrupted writes left in any account
    /// folder; returns how many. Each removal is logged.
    pub fn remove_leftovers(&self) -> Result<usize> {
        let table = self.table_dir();
        if !table.is_dir() {
            return Ok(0);
        }
        let mut removed = 0;
        for dir in read_dir_sorted(&table)? {
            if dir.is_dir() {
                removed += super::write::remove_leftovers(&dir)?;
            }
        }
        Ok(removed)
    }

    /// Lazily scans the given snapshot files with the fixed schema.
    pub fn scan(files: &[SnapshotFile]) -> Result<LazyFrame> {
        if files.is_empty() {
            return Ok(DataFrame::empty_with_schema(&snapshot_schema()).lazy());
        }
        let paths = files
            .iter()
            .map(|f| PlRefPath::try_from_path(&f.path))
            .collect::<PolarsResult<Vec<_>>>()?;
        // The account is a column of every file, so the `account=` folder
        // names are not read as a hive column: the scan has the file schema.
        let args = ScanArgsParquet {
            schema: Some(Arc::new(snapshot_schema())),
            hive_options: HiveOptions::new_disabled(),
            ..ScanArgsParquet::default()
        };
        Ok(LazyFrame::scan_parquet_files(
            paths.into_iter().collect(),
            args,
        )?)
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .with_context(|| format!("failed to read folder {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("failed to read folder {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

fn partition_value(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return None;
    }
    let name = dir.file_name()?.to_str()?;
    name.strip_prefix("account=").map(str::to_string)
}

fn snapshot_file(account_id: &str, path: &Path) -> Result<Option<SnapshotFile>> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let Some(stem) = name.strip_suffix(".parquet") else {
        return Ok(None);
    };
    let Ok(time) = NaiveDateTime::parse_from_str(stem, STEM_FORMAT) else {
        tracing::warn!(file = %path.display(), "skipping a Parquet file whose name is not a snapshot time (YYYYMMDDTHHMMSSZ)");
        return Ok(None);
    };
    let size = fs::metadata(path)
        .with_context(|| format!("failed to read {}", path.display()))?
        .len();
    Ok(Some(SnapshotFile {
        account_id: account_id.to_string(),
        snapshot_at: time.and_utc(),
        path: path.to_path_buf(),
        size,
    }))
}

/// Returns the file name stem for a snapshot time.
pub fn file_stem(snapshot_at: DateTime<Utc>) -> String {
    snapshot_at.format(STEM_FORMAT).to_string()
}

/// Creates or truncates a file that only its owner can read and write on
/// Unix, from its first byte on, so no other user can open it while it is
/// being written.
pub fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes a file readable and writable by the owner only, on Unix.
pub fn restrict_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("failed to restrict permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
