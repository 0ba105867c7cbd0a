//! Writing one account's users to a snapshot file, atomically.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{ArrowField, PolarsError, PolarsResult, SchemaExt, polars_err};
use polars::prelude::{
    ChunkFull, Column, CompatLevel, DataFrame, Float64Chunked, Int64Chunked, IntoColumn,
    IntoSeries, KeyValueMetadata, LargeListArray, ListChunked, NewChunkedArray, ParquetCompression,
    ParquetWriter, StatisticsOptions, StringChunked, StringChunkedBuilder, StructChunked,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::offset::OffsetsBuffer;
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::write::{
    CompressedPage, Compressor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator,
    FileWriter, KeyValue, ParquetType, Version, WriteOptions, array_to_columns,
    schema_to_metadata_key,
};

use super::batch::{TextColumn, UserBatch, UserBatches};
use super::schema::{SCHEMA_VERSION, snapshot_schema, timestamp_type};
use super::store::{Store, file_stem};

/// Facts about a fetch, stored in the file's key-value metadata.
#[derive(Debug, Clone, Default)]
pub struct SnapshotMeta {
    pub count_reported: u64,
    pub pages: u64,
    pub retries: u64,
    pub rounds: u32,
    pub duration_seconds: f64,
    /// Missing users when a partial snapshot was allowed, else 0.
    pub shortfall: i64,
    pub notes: Vec<String>,
    /// The data's origin, e.g. `api` or `generator`.
    pub source: String,
}

/// Metadata keys, all prefixed so they do not clash with other writers'.
pub mod keys {
    pub const SCHEMA_VERSION: &str = "cpstat.schema_version";
    pub const CPSTAT_VERSION: &str = "cpstat.version";
    pub const ACCOUNT: &str = "cpstat.account_id";
    pub const SNAPSHOT_AT: &str = "cpstat.snapshot_at";
    pub const COUNT_REPORTED: &str = "cpstat.count_reported";
    pub const USERS_WRITTEN: &str = "cpstat.users_written";
    pub const PAGES: &str = "cpstat.pages";
    pub const RETRIES: &str = "cpstat.retries";
    pub const ROUNDS: &str = "cpstat.rounds";
    pub const DURATION: &str = "cpstat.duration_seconds";
    pub const SHORTFALL: &str = "cpstat.shortfall";
    pub const NOTES: &str = "cpstat.notes";
    pub const SOURCE: &str = "cpstat.source";
}

/// The compression of snapshot files, in both writers below.
const COMPRESSION: ParquetCompression = ParquetCompression::Zstd(None);

/// A builder of one snapshot column, which takes that column out of each
/// batch.
type ColumnMaker<'a> = Box<dyn FnOnce(&mut [UserBatch]) -> PolarsResult<Column> + Send + Sync + 'a>;

/// Returns the builders of the snapshot columns, in schema order. Each
/// takes its column out of the batches, so the batches' memory is freed
/// column by column as the file is written.
fn column_makers(
    account_id: &str,
    snapshot_at: DateTime<Utc>,
    height: usize,
) -> Vec<ColumnMaker<'_>> {
    fn text(
        name: &'static str,
        column: fn(&mut UserBatch) -> &mut TextColumn,
    ) -> ColumnMaker<'static> {
        Box::new(move |parts| Ok(text_column(parts, name, column)))
    }
    let at = snapshot_at.timestamp_micros();
    let mut makers: Vec<ColumnMaker<'_>> = vec![
        Box::new(move |_| timestamps("snapshot_at", std::iter::repeat_n(Some(at), height))),
        // One copy of the id, which every row's view points at.
        Box::new(move |_| {
            Ok(StringChunked::full("account_id".into(), account_id, height).into_column())
        }),
        text("user_id", |u| &mut u.user_id),
        text("email", |u| &mut u.email),
        text("name", |u| &mut u.name),
        text("first_name", |u| &mut u.first_name),
        text("last_name", |u| &mut u.last_name),
        Box::new(|parts| {
            let values = parts
                .iter_mut()
                .flat_map(|u| std::mem::take(&mut u.user_created));
            timestamps("user_created", values)
        }),
        text("company_name", |u| &mut u.company_name),
        text("manager", |u| &mut u.manager),
        text("manager_email", |u| &mut u.manager_email),
        text("department", |u| &mut u.department),
        text("country", |u| &mut u.country),
        text("branch_id", |u| &mut u.branch_id),
        text("branch_name", |u| &mut u.branch_name),
        Box::new(groups_column),
    ];
    for (index, (_, name)) in super::record::COUNTER_FIELDS.iter().enumerate() {
        makers.push(Box::new(move |parts| {
            let values = parts
                .iter_mut()
                .flat_map(|u| std::mem::take(&mut u.counters[index]));
            Ok(Int64Chunked::from_iter_options((*name).into(), values).into_column())
        }));
    }
    makers.push(text("last_action", |u| &mut u.last_action));
    makers.push(Box::new(|parts| {
        let scores = parts
            .iter_mut()
            .flat_map(|u| std::mem::take(&mut u.average_score));
        Ok(Float64Chunked::from_iter_options("average_score".into(), scores).into_column())
    }));
    makers.push(text("extra", |u| &mut u.extra));
    makers
}

/// Builds the snapshot frame with the fixed schema, from the batches in
/// order.
pub fn users_frame(
    account_id: &str,
    snapshot_at: DateTime<Utc>,
    users: UserBatches,
) -> Result<DataFrame> {
    let height = users.len();
    let mut parts = users.into_parts();
    let columns = column_makers(account_id, snapshot_at, height)
        .into_iter()
        .map(|make| make(&mut parts))
        .collect::<PolarsResult<Vec<Column>>>()?;
    let frame = DataFrame::new(height, columns)?;
    debug_assert_eq!(frame.schema().as_ref(), &snapshot_schema());
    Ok(frame)
}

/// Writes the snapshot as one Parquet row group, with the encodings,
/// statistics and compression that polars' `ParquetWriter` gives the frame
/// of [`users_frame`]. Each column is built from the batches only when the
/// writer reaches it and is freed once its pages are written, so the whole
/// frame never exists. Fetching 100,000 users peaks at about 125 MiB of
/// RSS instead of 160 MiB.
fn write_columns(
    file: &File,
    account_id: &str,
    snapshot_at: DateTime<Utc>,
    users: UserBatches,
    metadata: Vec<KeyValue>,
) -> Result<()> {
    let height = users.len();
    let mut parts = users.into_parts();
    let schema = snapshot_schema().to_arrow(CompatLevel::newest());
    let encodings = polars::io::parquet::write::get_encodings(&schema);
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V1,
        compression: COMPRESSION.into(),
        data_page_size: None,
    };
    let fields: Vec<ArrowField> = schema.iter_values().cloned().collect();
    write_buffered(file, |buffer| {
        let mut writer = FileWriter::try_new(buffer, schema.clone(), options)?;
        let parquet_fields = writer.parquet_schema().fields().to_vec();
        let columns = column_makers(account_id, snapshot_at, height)
            .into_iter()
            .zip(fields.iter().zip(parquet_fields))
            .zip(encodings.iter())
            .flat_map(
                |((make, (field, parquet_field)), encoding)| match make(&mut parts) {
                    Ok(column) => encode_column(&column, field, parquet_field, options, encoding),
                    Err(error) => vec![Err(error)],
                },
            );
        writer.write(height as u64, DynIter::new(columns))?;
        let mut key_values = vec![schema_to_metadata_key(&schema)];
        key_values.extend(metadata);
        writer.end(Some(key_values))
    })?;
    Ok(())
}

/// The compressed pages of one Parquet leaf column.
type LeafPages = PolarsResult<DynStreamingIterator<'static, CompressedPage, PolarsError>>;

/// Encodes a column as polars' writer does: its Arrow array split into
/// Parquet leaf columns (two for `groups`), each a stream of pages that
/// are compressed as the file writer reads them.
fn encode_column(
    column: &Column,
    field: &ArrowField,
    parquet_field: ParquetType,
    options: WriteOptions,
    encoding: &[Encoding],
) -> Vec<LeafPages> {
    let array = column
        .as_materialized_series()
        .rechunk()
        .to_arrow(0, CompatLevel::newest());
    if array.dtype() != field.dtype() {
        return vec![Err(polars_err!(
            SchemaMismatch: "snapshot column {} is {:?}, not {:?}",
            field.name, array.dtype(), field.dtype()
        ))];
    }
    let leaves = match array_to_columns(array, parquet_field, options, encoding) {
        Ok(leaves) => leaves,
        Err(error) => return vec![Err(error)],
    };
    leaves
        .into_iter()
        .map(|pages| {
            let pages =
                pages.map(|page| page.map_err(|error| ParquetError::OutOfSpec(error.to_string())));
            let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new())
                .map_err(PolarsError::from);
            Ok(DynStreamingIterator::new(compressed))
        })
        .collect()
}

/// Builds a text column from one column of every batch, taking each out of
/// its batch and freeing it once copied.
fn text_column(
    parts: &mut [UserBatch],
    name: &str,
    column: fn(&mut UserBatch) -> &mut TextColumn,
) -> Column {
    let height = parts.iter_mut().map(|u| column(u).len()).sum();
    let mut builder = StringChunkedBuilder::new(name.into(), height);
    for part in parts {
        let values = std::mem::take(column(part));
        for value in values.iter() {
            builder.append_option(value);
        }
    }
    builder.finish().into_column()
}

fn timestamps(name: &str, values: impl Iterator<Item = Option<i64>>) -> PolarsResult<Column> {
    let raw = Int64Chunked::from_iter_options(name.into(), values).into_series();
    Ok(raw.cast(&timestamp_type())?.into_column())
}

/// Builds `groups` as a list of `{id, name}` structs: one struct array of
/// every membership and the offsets where each user's list starts.
fn groups_column(parts: &mut [UserBatch]) -> PolarsResult<Column> {
    let entries: usize = parts.iter().map(|u| u.groups.entries().0.len()).sum();
    let mut ids = StringChunkedBuilder::new("id".into(), entries);
    let mut names = StringChunkedBuilder::new("name".into(), entries);
    let mut offsets: Vec<i64> = vec![0];
    let mut validity = Vec::new();
    for part in parts {
        let groups = std::mem::take(&mut part.groups);
        let (part_ids, part_names) = groups.entries();
        part_ids.iter().for_each(|id| ids.append_option(id));
        part_names.iter().for_each(|name| names.append_option(name));
        let shift = *offsets.last().expect("offsets start with 0");
        offsets.extend(groups.offsets().skip(1).map(|offset| shift + offset as i64));
        validity.extend_from_slice(groups.validity());
    }
    let fields = [ids.finish().into_series(), names.finish().into_series()];
    let flat = StructChunked::from_series("groups".into(), entries, fields.iter())?
        .into_series()
        .rechunk();
    let values = flat.to_arrow(0, CompatLevel::newest());
    let offsets = OffsetsBuffer::<i64>::try_from(offsets)?;
    let validity = validity
        .contains(&false)
        .then(|| Bitmap::from_iter(validity.iter().copied()));
    let dtype = LargeListArray::default_datatype(values.dtype().clone());
    let array = LargeListArray::try_new(dtype, offsets, values, validity)?;
    let list = ListChunked::with_chunk("groups".into(), array);
    debug_assert_eq!(list.dtype(), &super::schema::groups_type());
    Ok(list.into_series().into_column())
}

/// Writes a snapshot: to a hidden temporary file in the account's folder,
/// synced, then renamed into place, so no reader ever sees a partial file.
/// An existing snapshot with the same name is never replaced.
pub fn write_snapshot(
    store: &Store,
    account_id: &str,
    snapshot_at: DateTime<Utc>,
    users: UserBatches,
    meta: &SnapshotMeta,
) -> Result<PathBuf> {
    let dir = store.account_dir(account_id);
    store.create_private_dir(&dir)?;
    let path = dir.join(format!("{}.parquet", file_stem(snapshot_at)));
    if path.exists() {
        anyhow::bail!(crate::error::UsageError(format!(
            "snapshot {} already exists; snapshots are never overwritten, so wait a second or pass another --snapshot-at",
            path.display()
        )));
    }
    let metadata = key_value_metadata(account_id, snapshot_at, users.len(), meta);
    write_through_temp(&path, false, |file| {
        write_columns(file, account_id, snapshot_at, users, metadata)
    })?;
    Ok(path)
}

fn key_value_metadata(
    account_id: &str,
    snapshot_at: DateTime<Utc>,
    users: usize,
    meta: &SnapshotMeta,
) -> Vec<KeyValue> {
    let pairs = [
        (keys::SCHEMA_VERSION, SCHEMA_VERSION.to_string()),
        (keys::CPSTAT_VERSION, env!("CARGO_PKG_VERSION").to_string()),
        (keys::ACCOUNT, account_id.to_string()),
        (
            keys::SNAPSHOT_AT,
            snapshot_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        (keys::COUNT_REPORTED, meta.count_reported.to_string()),
        (keys::USERS_WRITTEN, users.to_string()),
        (keys::PAGES, meta.pages.to_string()),
        (keys::RETRIES, meta.retries.to_string()),
        (keys::ROUNDS, meta.rounds.to_string()),
        (keys::DURATION, format!("{:.3}", meta.duration_seconds)),
        (keys::SHORTFALL, meta.shortfall.to_string()),
        (keys::NOTES, meta.notes.join("; ")),
        (keys::SOURCE, meta.source.clone()),
    ];
    pairs
        .into_iter()
        .map(|(key, value)| KeyValue::new(key.to_string(), value))
        .collect()
}

/// Writes a frame to `path` through a temporary file that does not end in
/// `.parquet`, so a `**/*.parquet` glob never matches a partial file. Fails
/// when `path` exists.
pub fn write_parquet_atomically(
    path: &Path,
    frame: &mut DataFrame,
    metadata: Vec<KeyValue>,
) -> Result<()> {
    write_through_temp(path, false, |file| write_frame(file, frame, metadata))
}

/// Replaces the file at `path` in one rename, written the same way as
/// [`write_parquet_atomically`]; readers see the old file or the new one.
pub fn replace_parquet_atomically(
    path: &Path,
    frame: &mut DataFrame,
    metadata: Vec<KeyValue>,
) -> Result<()> {
    write_through_temp(path, true, |file| write_frame(file, frame, metadata))
}

fn write_frame(file: &File, frame: &mut DataFrame, metadata: Vec<KeyValue>) -> Result<()> {
    write_buffered(file, |writer| {
        ParquetWriter::new(writer)
            .with_compression(COMPRESSION)
            .with_statistics(StatisticsOptions::default())
            .with_key_value_metadata(Some(KeyValueMetadata::Static(metadata)))
            .finish(frame)
    })?;
    Ok(())
}

/// Writes a file to `path` with `contents` through a synced temporary
/// file, renamed into place. With `replace`, an existing file is replaced.
fn write_through_temp(
    path: &Path,
    replace: bool,
    contents: impl FnOnce(&File) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .context("snapshot path has no parent folder")?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("snapshot path has no file name")?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.{}.", std::process::id()))
        .suffix(super::store::TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in {}", dir.display()))?;
    let file: &File = temp.as_file();
    contents(file)
        .with_context(|| format!("failed to write Parquet data for {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("failed to sync {}", temp.path().display()))?;
    super::store::restrict_file(temp.path())?;
    let persisted = if replace {
        temp.persist(path)
    } else {
        temp.persist_noclobber(path)
    };
    persisted.map_err(|e| e.error).with_context(|| {
        format!(
            "failed to move the finished file into place at {}",
            path.display()
        )
    })?;
    sync_dir(dir);
    Ok(())
}

/// Bytes gathered before each write to a Parquet file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Runs `write` on a buffer in front of `file` and flushes it. The Parquet
/// writer of polars 0.55 writes each field of a page header on its own,
/// which unbuffered costs a system call per byte or two: about 5,000 for
/// a snapshot of 100,000 users (counted with strace).
pub fn write_buffered<T>(
    file: &File,
    write: impl FnOnce(&mut std::io::BufWriter<&File>) -> polars::prelude::PolarsResult<T>,
) -> Result<T> {
    let mut buffer = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let value = write(&mut buffer)?;
    buffer.flush()?;
    Ok(value)
}

/// Syncs a folder so the rename survives a power cut. Failure only costs
/// durability, so it is logged, not raised.
fn sync_dir(dir: &Path) {
    if let Err(error) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), %error, "could not sync the folder");
    }
}

/// Removes temporary files left in `dir` by interrupted writes of processes
/// that are no longer running; returns how many.
pub fn remove_leftovers(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.ends_with(super::store::TEMP_SUFFIX)
            && !writer_is_running(&name)
        {
            fs::remove_file(entry.path())
                .with_context(|| format!("failed to remove leftover {}", entry.path().display()))?;
            tracing::info!(file = %entry.path().display(), "removed a temporary file left by an interrupted run");
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads the process id from a temporary file name
/// (`.<final name>.<pid>.<random><suffix>`) and checks whether that process
/// still runs. Without a readable id, or off Linux, the file counts as left over.
fn writer_is_running(temp_name: &str) -> bool {
    let stem = temp_name.trim_end_matches(super::store::TEMP_SUFFIX);
    let mut parts = stem.rsplit('.');
    parts.next();
    let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}
