//! The analysis of a snapshot store in pieces, one per snapshot file and one
//! per period, which [`PieceCache`] keeps between runs. A run after one new
//! fetch then computes the new snapshot's pieces, the new period and the
//! tables of the latest snapshot, and reads the rest from the cache.
//!
//! The result equals [`super::analyze`] and [`super::summarize`] over every
//! file, because every other part of the analysis is a sum or a union over
//! snapshots or over periods. It relies on the store layout: each file contains
//! one snapshot of one account, and no two files contain the same snapshot. A
//! store that breaks the layout is analysed in one piece instead. Memory use
//! is bounded by the pieces and a few snapshots, not by the whole store.

mod assemble;
mod cache;
mod compute;
mod pieces;

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;

pub use cache::{CACHE_DIR, Fingerprint, PieceCache, fingerprint};
pub use pieces::{IDENTITY_COLUMNS, PeriodPiece, SnapshotPiece, departures, file_keys, file_rows};

use super::params::AnalysisParams;
use super::periods::periods;
use super::prepare::utc_datetime;
use super::summary::Summary;
use super::{ReportTables, analyze, summarize};
use crate::snapshot::schema::snapshot_schema;
use crate::snapshot::{SnapshotFile, Store};

/// The outcome of [`analyze_store`].
pub struct StoreAnalysis {
    pub tables: ReportTables,
    pub summary: Summary,
    /// Files that contain each account's newest snapshot, regardless of the
    /// date range. They may contain older snapshots too when the store
    /// breaks its layout.
    pub newest_files: Vec<SnapshotFile>,
    pub stats: PieceStats,
}

/// How many pieces a run computed and how many it read from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PieceStats {
    pub snapshots_computed: usize,
    pub snapshots_reused: usize,
    pub periods_computed: usize,
    pub periods_reused: usize,
    pub departures_computed: usize,
    pub departures_reused: usize,
}

impl PieceStats {
    fn add(&mut self, other: &PieceStats) {
        self.snapshots_computed += other.snapshots_computed;
        self.snapshots_reused += other.snapshots_reused;
        self.periods_computed += other.periods_computed;
        self.periods_reused += other.periods_reused;
        self.departures_computed += other.departures_computed;
        self.departures_reused += other.departures_reused;
    }
}

/// The snapshot that one file holds: account and time in microseconds.
type SnapshotKey = (String, i64);

/// Builds the report tables and the summary of `files` (in the order of
/// [`Store::list`]), reading and storing pieces in `cache` when it is given.
/// Failures to store a piece are logged and do not fail the run.
pub fn analyze_store(
    files: &[SnapshotFile],
    params: &AnalysisParams,
    cache: Option<&PieceCache>,
) -> Result<StoreAnalysis> {
    params.validate()?;
    let mut run = Run::new(files, cache)?;
    let Some(keys) = run.snapshot_keys()? else {
        tracing::warn!(
            "a snapshot file holds several snapshots, or two files hold the same one; analysing the store in one piece"
        );
        return whole_store(files, params);
    };
    let newest: Vec<SnapshotFile> = newest_files(files, &keys, |_| true)
        .into_iter()
        .map(|index| files[index].clone())
        .collect();
    let in_range = in_range(&keys, params);
    if in_range.is_empty() {
        let empty = DataFrame::empty_with_schema(&snapshot_schema()).lazy();
        let tables = analyze(empty.clone(), params)?;
        let summary = summarize(empty, &tables, params)?;
        return Ok(StoreAnalysis {
            tables,
            summary,
            newest_files: newest,
            stats: run.stats,
        });
    }

    let period_starts = period_starts(&keys, &in_range, params)?;
    let started = std::time::Instant::now();
    let latest = newest_files(files, &keys, |index| in_range.contains(&index));
    // The workers keep the rows of the newest files, which the tables of
    // the latest snapshot need, instead of the assembly reading them again.
    run.newest_indexes = latest.iter().copied().collect();
    let pieces = run.compute_pieces(&keys, &in_range, &period_starts)?;
    let pieces_ms = started.elapsed().as_millis() as u64;
    let latest: Vec<(usize, SnapshotFile)> = latest
        .into_iter()
        .map(|index| (index, files[index].clone()))
        .collect();
    let started = std::time::Instant::now();
    let (tables, summary) = run.assemble(&in_range, &latest, &pieces, params)?;
    let assembly_ms = started.elapsed().as_millis() as u64;
    if let Some(cache) = cache {
        match cache.prune() {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "removed cache pieces of deleted snapshots"),
            Err(error) => tracing::warn!("failed to prune the analysis cache: {error:#}"),
        }
    }
    tracing::info!(
        snapshots_computed = run.stats.snapshots_computed,
        snapshots_reused = run.stats.snapshots_reused,
        periods_computed = run.stats.periods_computed,
        periods_reused = run.stats.periods_reused,
        departures_computed = run.stats.departures_computed,
        departures_reused = run.stats.departures_reused,
        pieces_ms,
        assembly_ms,
        "analysed the store in pieces"
    );
    Ok(StoreAnalysis {
        tables,
        summary,
        newest_files: newest,
        stats: run.stats,
    })
}

/// Analyses every file at once, without pieces.
fn whole_store(files: &[SnapshotFile], params: &AnalysisParams) -> Result<StoreAnalysis> {
    let snapshots = Store::scan(files)?;
    let tables = analyze(snapshots.clone(), params)?;
    let summary = summarize(snapshots, &tables, params)?;
    Ok(StoreAnalysis {
        tables,
        summary,
        newest_files: files.to_vec(),
        stats: PieceStats::default(),
    })
}

/// The state of one run: the files, their fingerprints and their pieces.
struct Run<'a> {
    files: &'a [SnapshotFile],
    cache: Option<&'a PieceCache>,
    prints: Vec<Option<Fingerprint>>,
    snapshot_pieces: Vec<Option<SnapshotPiece>>,
    stats: PieceStats,
    /// Indexes of the newest file in range of each account, whose rows the
    /// piece workers keep for the assembly.
    newest_indexes: HashSet<usize>,
    /// Rows of the files in `newest_indexes`, by file index.
    newest_rows: std::sync::Mutex<HashMap<usize, DataFrame>>,
}

impl<'a> Run<'a> {
    fn new(files: &'a [SnapshotFile], cache: Option<&'a PieceCache>) -> Result<Self> {
        let prints = match cache {
            Some(cache) => files
                .iter()
                .map(|file| cache.fingerprint(file).map(Some))
                .collect::<Result<Vec<_>>>()?,
            None => vec![None; files.len()],
        };
        Ok(Run {
            files,
            cache,
            prints,
            snapshot_pieces: vec![None; files.len()],
            stats: PieceStats::default(),
            newest_indexes: HashSet::new(),
            newest_rows: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Reads the snapshot of each file: from its cached piece, or from its
    /// key columns. `None` for a file without valid rows. Returns `None`
    /// when the store breaks the layout.
    fn snapshot_keys(&mut self) -> Result<Option<Vec<Option<SnapshotKey>>>> {
        // Each file is read on its own, so the files are read in parallel.
        let loaded = (0..self.files.len())
            .into_par_iter()
            .map(|index| -> Result<(Option<SnapshotPiece>, DataFrame)> {
                let file = &self.files[index];
                let piece = match (self.cache, &self.prints[index]) {
                    (Some(cache), Some(print)) => cache.load_snapshot(file, print),
                    _ => None,
                };
                let frame = match &piece {
                    Some(piece) => piece.totals.clone(),
                    None => file_keys(file)?,
                };
                Ok((piece, frame))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut keys = Vec::with_capacity(self.files.len());
        let mut seen = HashSet::new();
        for (index, (piece, frame)) in loaded.into_iter().enumerate() {
            self.snapshot_pieces[index] = piece;
            let key = match frame.height() {
                0 => None,
                1 => Some(key_of(&frame)?),
                _ => return Ok(None),
            };
            if let Some(key) = &key
                && !seen.insert(key.clone())
            {
                return Ok(None);
            }
            keys.push(key);
        }
        Ok(Some(keys))
    }
}

fn key_of(totals: &DataFrame) -> Result<SnapshotKey> {
    let account = totals
        .column("account_id")?
        .str()?
        .get(0)
        .unwrap_or_default();
    let at = totals
        .column("snapshot_at")?
        .cast(&DataType::Int64)?
        .i64()?
        .get(0)
        .context("a snapshot key has a time")?;
    Ok((account.to_owned(), at))
}

/// Returns the indexes of the files whose snapshot is within the date range.
fn in_range(keys: &[Option<SnapshotKey>], params: &AnalysisParams) -> Vec<usize> {
    let since = params.since.map(|t| t.timestamp_micros());
    let until = params.until.map(|t| t.timestamp_micros());
    keys.iter()
        .enumerate()
        .filter_map(|(index, key)| {
            let (_, at) = key.as_ref()?;
            let after_since = since.is_none_or(|since| *at >= since);
            let before_until = until.is_none_or(|until| *at <= until);
            (after_since && before_until).then_some(index)
        })
        .collect()
}

/// Groups file indexes by account, each in time order.
fn by_account(keys: &[Option<SnapshotKey>], indexes: &[usize]) -> BTreeMap<String, Vec<usize>> {
    let mut accounts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &index in indexes {
        if let Some((account, _)) = &keys[index] {
            accounts.entry(account.clone()).or_default().push(index);
        }
    }
    for files in accounts.values_mut() {
        files.sort_by_key(|&index| keys[index].as_ref().map(|(_, at)| *at));
    }
    accounts
}

/// Returns the newest file of each account among the files that `keep`
/// accepts, in listing order.
fn newest_files(
    files: &[SnapshotFile],
    keys: &[Option<SnapshotKey>],
    keep: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let indexes: Vec<usize> = (0..files.len()).filter(|&index| keep(index)).collect();
    let mut newest: Vec<usize> = by_account(keys, &indexes)
        .values()
        .filter_map(|files| files.last().copied())
        .collect();
    newest.sort_unstable();
    newest
}

/// Maps the end file of every period to its start file, with the periods
/// that [`periods`] defines over the snapshots in range.
fn period_starts(
    keys: &[Option<SnapshotKey>],
    in_range: &[usize],
    params: &AnalysisParams,
) -> Result<HashMap<usize, usize>> {
    let file_of: HashMap<&SnapshotKey, usize> = in_range
        .iter()
        .filter_map(|&index| keys[index].as_ref().map(|key| (key, index)))
        .collect();
    let accounts: Vec<&str> = file_of
        .keys()
        .map(|(account, _)| account.as_str())
        .collect();
    let times: Vec<i64> = file_of.keys().map(|(_, at)| *at).collect();
    let snapshots = df!("account_id" => accounts, "snapshot_at" => times)?
        .lazy()
        .with_column(col("snapshot_at").cast(utc_datetime()));
    let table = periods(snapshots, params.every)
        .with_columns([
            col("period_start").cast(DataType::Int64),
            col("period_end").cast(DataType::Int64),
        ])
        .collect()?;
    let accounts = table.column("account_id")?.str()?;
    let starts = table.column("period_start")?.i64()?;
    let ends = table.column("period_end")?.i64()?;
    let mut map = HashMap::with_capacity(table.height());
    for row in 0..table.height() {
        let account = accounts.get(row).unwrap_or_default().to_owned();
        let file = |at: Option<i64>| {
            let key = (account.clone(), at.unwrap_or_default());
            file_of
                .get(&key)
                .copied()
                .context("a period ends at a snapshot in range")
        };
        map.insert(file(ends.get(row))?, file(starts.get(row))?);
    }
    Ok(map)
}
