//! Reading a snapshot file's footer: row count and key-value metadata.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{ParquetReader, SerReader};

/// The footer facts of one Parquet file.
#[derive(Debug, Clone)]
pub struct FileFooter {
    pub rows: usize,
    pub metadata: BTreeMap<String, String>,
}

impl FileFooter {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

/// Reads the footer of a Parquet file without reading its data.
pub fn read_footer(path: &Path) -> Result<FileFooter> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut reader = ParquetReader::new(file);
    let metadata = reader
        .get_metadata()
        .with_context(|| format!("failed to read the Parquet footer of {}", path.display()))?;
    let pairs = metadata
        .key_value_metadata
        .iter()
        .flatten()
        .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), v.clone())))
        .collect();
    Ok(FileFooter {
        rows: metadata.num_rows,
        metadata: pairs,
    })
}
