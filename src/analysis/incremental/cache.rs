//! The on-disk cache of analysis pieces under `<store>/cache/analyze/`.
//!
//! Each piece is a Parquet file whose key-value metadata contains the key it
//! was computed for: the cache format, the cpstat version and the fingerprint of
//! each snapshot file it came from (path in the store, size, modification
//! time and a hash of the Parquet footer). A piece is used only when its key
//! equals the key of the current files, so a snapshot file that changes gets
//! its pieces recomputed, and pieces of files that disappear are removed by
//! [`PieceCache::prune`]. Pieces are written to a temporary file and renamed,
//! so a reader never sees a partial piece. A piece that cannot be read counts
//! as missing.

use std::collections::hash_map::DefaultHasher;
use std::fs::{self, File};
use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use polars::prelude::*;
use polars_parquet::write::KeyValue;

use super::pieces::{PeriodPiece, SnapshotPiece};
use crate::snapshot::store::{TABLE_DIR, TEMP_SUFFIX, restrict_file};
use crate::snapshot::{SnapshotFile, Store};

/// Folder of the cache under the store root.
pub const CACHE_DIR: &str = "cache/analyze";

/// Version of the cached pieces' content. Change it whenever the
/// computation of a piece changes, so that older pieces stop matching.
const CACHE_FORMAT: u32 = 1;

/// Key-value metadata key of a piece's key.
const KEY_METADATA: &str = "cpstat.cache_key";

/// Age after which a temporary piece file counts as left by a crashed run.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Size of the Parquet tail: a 4-byte footer length and the magic `PAR1`.
const PARQUET_TAIL: u64 = 8;

/// Identity of one snapshot file's current content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

/// Reads the fingerprint of a snapshot file: its path in the store, size,
/// modification time in nanoseconds and a hash of its Parquet footer, which
/// contains the row count, the column statistics and the byte offsets of every
/// column chunk. The hash is Rust's `DefaultHasher`, which a later Rust
/// release may change. That only makes every piece miss once.
pub fn fingerprint(store: &Store, file: &SnapshotFile) -> Result<Fingerprint> {
    let path = &file.path;
    let metadata =
        fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    let relative = path.strip_prefix(store.root()).unwrap_or(path);
    let footer = footer_hash(path, metadata.len())
        .with_context(|| format!("failed to read the Parquet footer of {}", path.display()))?;
    Ok(Fingerprint(format!(
        "{} size={} modified_ns={modified} footer={footer:016x}",
        relative.display(),
        metadata.len()
    )))
}

fn footer_hash(path: &Path, size: u64) -> Result<u64> {
    let mut file = File::open(path)?;
    anyhow::ensure!(
        size >= PARQUET_TAIL,
        "the file is shorter than a Parquet tail"
    );
    file.seek(SeekFrom::Start(size - PARQUET_TAIL))?;
    let mut tail = [0u8; PARQUET_TAIL as usize];
    file.read_exact(&mut tail)?;
    anyhow::ensure!(&tail[4..] == b"PAR1", "the file does not end in PAR1");
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    anyhow::ensure!(
        length + PARQUET_TAIL <= size,
        "the footer length {length} is too large"
    );
    file.seek(SeekFrom::Start(size - PARQUET_TAIL - length))?;
    let mut footer = vec![0u8; length as usize];
    file.read_exact(&mut footer)?;
    let mut hasher = DefaultHasher::new();
    hasher.write(&footer);
    Ok(hasher.finish())
}

/// The cache of one store.
#[derive(Debug, Clone)]
pub struct PieceCache {
    store: Store,
    root: PathBuf,
}

impl PieceCache {
    /// Returns the cache of `store`, in `<store>/cache/analyze`.
    pub fn new(store: &Store) -> Self {
        PieceCache {
            store: store.clone(),
            root: store.root().join(CACHE_DIR),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the fingerprint of a snapshot file of this store.
    pub fn fingerprint(&self, file: &SnapshotFile) -> Result<Fingerprint> {
        fingerprint(&self.store, file)
    }

    /// Loads the piece of a snapshot file, if one was stored for its
    /// current content.
    pub fn load_snapshot(&self, file: &SnapshotFile, print: &Fingerprint) -> Option<SnapshotPiece> {
        let key = snapshot_key(print);
        let base = self.snapshot_base(file);
        Some(SnapshotPiece {
            totals: read_piece(&with_suffix(&base, "totals"), &key)?,
            spellings: read_piece(&with_suffix(&base, "spellings"), &key)?,
        })
    }

    /// Stores the piece of a snapshot file.
    pub fn save_snapshot(
        &self,
        file: &SnapshotFile,
        print: &Fingerprint,
        piece: &SnapshotPiece,
    ) -> Result<()> {
        let key = snapshot_key(print);
        let base = self.snapshot_base(file);
        write_piece(
            &self.store,
            &with_suffix(&base, "totals"),
            &key,
            &piece.totals,
        )?;
        write_piece(
            &self.store,
            &with_suffix(&base, "spellings"),
            &key,
            &piece.spellings,
        )
    }

    /// Loads the piece of the period between two snapshot files, if one was
    /// stored for their current content.
    pub fn load_period(
        &self,
        start: (&SnapshotFile, &Fingerprint),
        end: (&SnapshotFile, &Fingerprint),
    ) -> Option<PeriodPiece> {
        let key = period_key(start.1, end.1);
        let base = self.period_base(start.0, end.0);
        Some(PeriodPiece {
            department_counts: read_piece(&with_suffix(&base, "departments"), &key)?,
            rising_clicks: read_piece(&with_suffix(&base, "rising"), &key)?,
        })
    }

    /// Stores the piece of the period between two snapshot files.
    pub fn save_period(
        &self,
        start: (&SnapshotFile, &Fingerprint),
        end: (&SnapshotFile, &Fingerprint),
        piece: &PeriodPiece,
    ) -> Result<()> {
        let key = period_key(start.1, end.1);
        let base = self.period_base(start.0, end.0);
        let departments = with_suffix(&base, "departments");
        write_piece(&self.store, &departments, &key, &piece.department_counts)?;
        write_piece(
            &self.store,
            &with_suffix(&base, "rising"),
            &key,
            &piece.rising_clicks,
        )
    }

    /// Loads the departures between two consecutive snapshot files, if they
    /// were stored for their current content.
    pub fn load_departures(
        &self,
        earlier: (&SnapshotFile, &Fingerprint),
        later: (&SnapshotFile, &Fingerprint),
    ) -> Option<DataFrame> {
        let key = period_key(earlier.1, later.1);
        let base = self.period_base(earlier.0, later.0);
        read_piece(&with_suffix(&base, "departures"), &key)
    }

    /// Stores the departures between two consecutive snapshot files.
    pub fn save_departures(
        &self,
        earlier: (&SnapshotFile, &Fingerprint),
        later: (&SnapshotFile, &Fingerprint),
        departures: &DataFrame,
    ) -> Result<()> {
        let key = period_key(earlier.1, later.1);
        let base = self.period_base(earlier.0, later.0);
        write_piece(
            &self.store,
            &with_suffix(&base, "departures"),
            &key,
            departures,
        )
    }

    /// Removes the pieces whose snapshot files no longer exist and the
    /// temporary files of interrupted runs (older than an hour). Returns how
    /// many files were removed.
    pub fn prune(&self) -> Result<usize> {
        let mut removed = 0;
        for (kind, dir) in [
            ("snapshots", self.root.join("snapshots")),
            ("periods", self.root.join("periods")),
        ] {
            for account_dir in sorted_entries(&dir)? {
                for piece in sorted_entries(&account_dir)? {
                    if !self.source_exists(kind, &account_dir, &piece) {
                        fs::remove_file(&piece)
                            .with_context(|| format!("failed to remove {}", piece.display()))?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Checks whether every snapshot file that a piece file came from still
    /// exists. Temporary files never count as existing sources.
    fn source_exists(&self, kind: &str, account_dir: &Path, piece: &Path) -> bool {
        let Some(name) = piece.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        if name.starts_with('.') {
            // A temporary file: keep it while a running analysis may still
            // rename it into place.
            return !older_than(piece, STALE_TEMP_AGE);
        }
        let Some(account) = account_dir.file_name() else {
            return false;
        };
        let stems = name.split('.').next().unwrap_or_default();
        let sources: Vec<&str> = match kind {
            "periods" => stems.split('-').collect(),
            _ => vec![stems],
        };
        let folder = self.store.table_dir().join(account);
        sources
            .iter()
            .all(|stem| folder.join(format!("{stem}.parquet")).is_file())
    }

    fn snapshot_base(&self, file: &SnapshotFile) -> PathBuf {
        self.root.join("snapshots").join(self.relative(file))
    }

    /// Places a period's piece in the folder of its end file, named by both
    /// file stems.
    fn period_base(&self, start: &SnapshotFile, end: &SnapshotFile) -> PathBuf {
        let relative = self.relative(end);
        let stem = |file: &SnapshotFile| {
            file.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let name = format!("{}-{}.parquet", stem(start), stem(end));
        self.root
            .join("periods")
            .join(relative.with_file_name(name))
    }

    /// Returns `account=<id>/<stem>.parquet`, the file's path in the table folder.
    fn relative(&self, file: &SnapshotFile) -> PathBuf {
        let table = self.store.root().join(TABLE_DIR);
        file.path
            .strip_prefix(&table)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| {
                PathBuf::from(format!("account={}", file.account_id))
                    .join(file.path.file_name().unwrap_or_default())
            })
    }
}

fn snapshot_key(print: &Fingerprint) -> String {
    format!("{} snapshot\n{}", version_line(), print.0)
}

fn period_key(start: &Fingerprint, end: &Fingerprint) -> String {
    format!("{} period\n{}\n{}", version_line(), start.0, end.0)
}

fn version_line() -> String {
    format!("format={CACHE_FORMAT} cpstat={}", env!("CARGO_PKG_VERSION"))
}

/// Returns `<stem>.<part>.parquet` beside `base` (`<stem>.parquet`).
fn with_suffix(base: &Path, part: &str) -> PathBuf {
    base.with_extension(format!("{part}.parquet"))
}

/// Reads a piece file when its stored key equals `key`.
fn read_piece(path: &Path, key: &str) -> Option<DataFrame> {
    let file = File::open(path).ok()?;
    let mut reader = ParquetReader::new(file);
    let metadata = match reader.get_metadata() {
        Ok(metadata) => metadata.clone(),
        Err(error) => {
            tracing::debug!(piece = %path.display(), %error, "unreadable cache piece");
            return None;
        }
    };
    let stored = metadata
        .key_value_metadata
        .iter()
        .flatten()
        .find(|kv| kv.key == KEY_METADATA)
        .and_then(|kv| kv.value.as_deref());
    if stored != Some(key) {
        return None;
    }
    match reader.finish() {
        Ok(frame) => Some(frame),
        Err(error) => {
            tracing::debug!(piece = %path.display(), %error, "unreadable cache piece");
            None
        }
    }
}

/// Writes a piece file through a temporary file in the same folder, with
/// owner-only permissions because pieces contain names and user ids.
fn write_piece(store: &Store, path: &Path, key: &str, frame: &DataFrame) -> Result<()> {
    let dir = path
        .parent()
        .context("a cache piece path has a parent folder")?;
    store.create_private_dir(dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".piece.")
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in {}", dir.display()))?;
    let metadata = vec![KeyValue::new(KEY_METADATA.to_string(), key.to_string())];
    let written = crate::snapshot::write::write_buffered(temp.as_file(), |writer| {
        ParquetWriter::new(writer)
            .with_compression(ParquetCompression::Lz4Raw)
            .with_key_value_metadata(Some(KeyValueMetadata::Static(metadata)))
            .finish(&mut frame.clone())
    });
    Context::with_context(written, || {
        format!("failed to write the cache piece {}", path.display())
    })?;
    restrict_file(temp.path())?;
    temp.persist(path).map_err(|e| e.error).with_context(|| {
        format!(
            "failed to move the cache piece into place at {}",
            path.display()
        )
    })?;
    Ok(())
}

fn older_than(path: &Path, age: std::time::Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("failed to read folder {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}
