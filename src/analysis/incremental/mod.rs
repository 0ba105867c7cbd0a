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

mod cache;
mod pieces;

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use polars::prelude::*;

pub use cache::{CACHE_DIR, Fingerprint, PieceCache, fingerprint};
pub use pieces::{IDENTITY_COLUMNS, PeriodPiece, SnapshotPiece, departures, file_keys, file_rows};

use super::group_rates::group_rates_with_mapping;
use super::normalize::{mapping_from_counts, with_department_mapping};
use super::params::AnalysisParams;
use super::periods::periods;
use super::prepare::{PreparedSnapshots, utc_datetime};
use super::repeat::{repeat_clicker_ids, repeat_clickers_from, rising_clicks};
use super::summary::{Summary, summarize_totals};
use super::trend::{period_department_counts, trend_from_counts};
use super::user_risk::user_risk;
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

/// A run of consecutive files in range of one account, in time order, and
/// the file in range before it, if any.
struct Chunk {
    previous: Option<usize>,
    files: Vec<usize>,
}

/// What one chunk computed.
#[derive(Default)]
struct ChunkOutput {
    snapshots: Vec<(usize, SnapshotPiece)>,
    periods: Vec<PeriodPiece>,
    departures: Vec<DataFrame>,
    stats: PieceStats,
}

/// Splits each account's files into chunks of at most `size` files.
fn chunks(accounts: BTreeMap<String, Vec<usize>>, size: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for files in accounts.values() {
        for (number, part) in files.chunks(size.max(1)).enumerate() {
            let previous = (number > 0).then(|| files[number * size.max(1) - 1]);
            chunks.push(Chunk {
                previous,
                files: part.to_vec(),
            });
        }
    }
    chunks
}

/// The pieces of the files and periods in range other than the snapshot
/// pieces, each list in time order per account.
#[derive(Default)]
struct Pieces {
    periods: Vec<PeriodPiece>,
    /// Departures between consecutive snapshots in range.
    departures: Vec<DataFrame>,
}

/// Snapshot files whose rows [`RowBuffer`] keeps: the two ends of a period
/// or a departure and the next file.
const BUFFERED_FILES: usize = 3;

/// The rows of the files read last, so that consecutive pieces that share a
/// file read it once.
#[derive(Default)]
struct RowBuffer {
    entries: std::collections::VecDeque<(usize, DataFrame)>,
}

impl RowBuffer {
    /// Returns the output of [`file_rows`] for file `index`, read now or
    /// earlier.
    fn rows(&mut self, files: &[SnapshotFile], index: usize) -> Result<DataFrame> {
        if let Some((_, rows)) = self.entries.iter().find(|(held, _)| *held == index) {
            return Ok(rows.clone());
        }
        let rows = file_rows(&files[index])?;
        if self.entries.len() == BUFFERED_FILES {
            self.entries.pop_front();
        }
        self.entries.push_back((index, rows.clone()));
        Ok(rows)
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
    let newest = newest_files(files, &keys, |_| true);
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
    let pieces = run.compute_pieces(&keys, &in_range, &period_starts)?;
    let latest = newest_files(files, &keys, |index| in_range.contains(&index));
    let (tables, summary) = run.assemble(&in_range, &latest, &pieces, params)?;
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
        })
    }

    /// Reads the snapshot of each file: from its cached piece, or from its
    /// key columns. `None` for a file without valid rows. Returns `None`
    /// when the store breaks the layout.
    fn snapshot_keys(&mut self) -> Result<Option<Vec<Option<SnapshotKey>>>> {
        let mut keys = Vec::with_capacity(self.files.len());
        let mut seen = HashSet::new();
        for index in 0..self.files.len() {
            if let (Some(cache), Some(print)) = (self.cache, &self.prints[index]) {
                self.snapshot_pieces[index] = cache.load_snapshot(&self.files[index], print);
            }
            let frame = match &self.snapshot_pieces[index] {
                Some(piece) => piece.totals.clone(),
                None => file_keys(&self.files[index])?,
            };
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

    /// Loads or computes the snapshot piece of every file in range, the
    /// departures between consecutive files and the piece of every period,
    /// on one worker thread per core. Each worker takes runs of consecutive
    /// files of one account ([`Chunk`]) and reads each file at most once,
    /// unless `every` puts more than [`BUFFERED_FILES`] files between the
    /// ends of a period, or a period or departure crosses two chunks.
    fn compute_pieces(
        &mut self,
        keys: &[Option<SnapshotKey>],
        in_range: &[usize],
        period_starts: &HashMap<usize, usize>,
    ) -> Result<Pieces> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunks = chunks(by_account(keys, in_range), in_range.len().div_ceil(workers));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let this = &*self;
        let outputs = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.min(chunks.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut outputs = Vec::new();
                        loop {
                            let taken = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(chunk) = chunks.get(taken) else {
                                return Ok(outputs);
                            };
                            outputs.push((taken, this.compute_chunk(chunk, period_starts)?));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a piece worker does not panic"))
                .collect::<Result<Vec<Vec<(usize, ChunkOutput)>>>>()
        })?;
        let mut outputs: Vec<(usize, ChunkOutput)> = outputs.into_iter().flatten().collect();
        outputs.sort_by_key(|(taken, _)| *taken);

        let mut pieces = Pieces::default();
        for (_, output) in outputs {
            for (index, piece) in output.snapshots {
                self.snapshot_pieces[index] = Some(piece);
            }
            pieces.periods.extend(output.periods);
            pieces.departures.extend(output.departures);
            self.stats.add(&output.stats);
        }
        Ok(pieces)
    }

    /// Computes the pieces of one chunk: the snapshot pieces that were not
    /// cached, the departures into each file and the periods ending at each.
    fn compute_chunk(
        &self,
        chunk: &Chunk,
        period_starts: &HashMap<usize, usize>,
    ) -> Result<ChunkOutput> {
        let mut output = ChunkOutput::default();
        let mut buffer = RowBuffer::default();
        let mut previous = chunk.previous;
        for &index in &chunk.files {
            if self.snapshot_pieces[index].is_none() {
                let rows = buffer.rows(self.files, index)?;
                let piece = self.new_snapshot_piece(index, &rows, &mut output.stats)?;
                output.snapshots.push((index, piece));
            }
            if let Some(before) = previous {
                let departed =
                    self.departures_piece(before, index, &mut buffer, &mut output.stats)?;
                output.departures.push(departed);
            }
            if let Some(&start) = period_starts.get(&index) {
                let period = self.period_piece(start, index, &mut buffer, &mut output.stats)?;
                output.periods.push(period);
            }
            previous = Some(index);
        }
        Ok(output)
    }

    fn new_snapshot_piece(
        &self,
        index: usize,
        rows: &DataFrame,
        stats: &mut PieceStats,
    ) -> Result<SnapshotPiece> {
        let piece = SnapshotPiece::compute(rows)?;
        stats.snapshots_computed += 1;
        if let (Some(cache), Some(print)) = (self.cache, &self.prints[index]) {
            let file = &self.files[index];
            if let Err(error) = cache.save_snapshot(file, print, &piece) {
                tracing::warn!(
                    "failed to cache the analysis of {}: {error:#}",
                    file.path.display()
                );
            }
        }
        Ok(piece)
    }

    /// Loads or computes the piece of the period from file `start` to file
    /// `end`.
    fn period_piece(
        &self,
        start: usize,
        end: usize,
        buffer: &mut RowBuffer,
        stats: &mut PieceStats,
    ) -> Result<PeriodPiece> {
        let ends = self.pair_prints(start, end);
        if let Some((cache, start_print, end_print)) = &ends
            && let Some(piece) = cache.load_period(
                (&self.files[start], start_print),
                (&self.files[end], end_print),
            )
        {
            stats.periods_reused += 1;
            return Ok(piece);
        }
        let start_rows = buffer.rows(self.files, start)?;
        let end_rows = buffer.rows(self.files, end)?;
        let piece = PeriodPiece::compute(&start_rows, &end_rows)?;
        stats.periods_computed += 1;
        if let Some((cache, start_print, end_print)) = &ends {
            let saved = cache.save_period(
                (&self.files[start], start_print),
                (&self.files[end], end_print),
                &piece,
            );
            if let Err(error) = saved {
                tracing::warn!(
                    "failed to cache the period ending in {}: {error:#}",
                    self.files[end].path.display()
                );
            }
        }
        Ok(piece)
    }

    /// Loads or computes the departures from file `earlier` to the next file
    /// of the account, `later`.
    fn departures_piece(
        &self,
        earlier: usize,
        later: usize,
        buffer: &mut RowBuffer,
        stats: &mut PieceStats,
    ) -> Result<DataFrame> {
        let ends = self.pair_prints(earlier, later);
        if let Some((cache, earlier_print, later_print)) = &ends
            && let Some(departed) = cache.load_departures(
                (&self.files[earlier], earlier_print),
                (&self.files[later], later_print),
            )
        {
            stats.departures_reused += 1;
            return Ok(departed);
        }
        let earlier_rows = buffer.rows(self.files, earlier)?;
        let later_rows = buffer.rows(self.files, later)?;
        let departed = departures(&earlier_rows, &later_rows)?;
        stats.departures_computed += 1;
        if let Some((cache, earlier_print, later_print)) = &ends {
            let saved = cache.save_departures(
                (&self.files[earlier], earlier_print),
                (&self.files[later], later_print),
                &departed,
            );
            if let Err(error) = saved {
                tracing::warn!(
                    "failed to cache the departures before {}: {error:#}",
                    self.files[later].path.display()
                );
            }
        }
        Ok(departed)
    }

    /// Returns the cache and the fingerprints of two files, when caching.
    fn pair_prints(
        &self,
        first: usize,
        second: usize,
    ) -> Option<(&'a PieceCache, Fingerprint, Fingerprint)> {
        let cache = self.cache?;
        let first = self.prints[first].clone()?;
        Some((cache, first, self.prints[second].clone()?))
    }

    /// Builds the tables and the summary from the pieces of the files in
    /// range and the newest file in range of each account.
    fn assemble(
        &mut self,
        in_range: &[usize],
        latest_files: &[SnapshotFile],
        pieces: &Pieces,
        params: &AnalysisParams,
    ) -> Result<(ReportTables, Summary)> {
        self.stats.snapshots_reused = in_range.len() - self.stats.snapshots_computed;
        let period_pieces = pieces.periods.as_slice();
        let snapshot_pieces: Vec<&SnapshotPiece> = in_range
            .iter()
            .map(|&index| {
                self.snapshot_pieces[index]
                    .as_ref()
                    .expect("every file in range has a piece")
            })
            .collect();
        let mapping = display_mapping(&snapshot_pieces)?;
        let latest = latest_rows(latest_files, &mapping)?;

        // A frame with one snapshot per account has no period, so the
        // latest rows give the empty tables with their schemas.
        let counts = match period_pieces {
            [] => period_department_counts(latest.lazy(), None)?.collect()?,
            _ => stack(period_pieces.iter().map(|p| &p.department_counts))?,
        };
        let rising = match period_pieces {
            [] => rising_clicks(latest.lazy(), None)?.collect()?,
            _ => stack(period_pieces.iter().map(|p| &p.rising_clicks))?,
        };
        let identities = identity_rows(&rising, &latest, &pieces.departures, &mapping)?;
        let tables = ReportTables {
            user_risk: user_risk(&latest, params)?,
            group_rates: group_rates_with_mapping(&latest, params, mapping.clone().lazy())?,
            department_trend: trend_from_counts(counts.lazy(), department_displays(&mapping))?,
            repeat_clickers: repeat_clickers_from(rising.lazy(), identities.lazy())?,
        };
        let totals = stack(snapshot_pieces.iter().map(|p| &p.totals))?;
        let summary = summarize_totals(totals.lazy(), &tables)?;
        Ok((tables, summary))
    }
}

/// Collects identity rows of each repeat clicker's latest snapshot in range:
/// from the latest rows, or else from the user's latest departure.
fn identity_rows(
    rising: &DataFrame,
    latest: &PreparedSnapshots,
    departures: &[DataFrame],
    mapping: &DataFrame,
) -> Result<DataFrame> {
    let ids = repeat_clicker_ids(rising.clone().lazy()).collect()?;
    let on = [col("account_id"), col("user_id")];
    let members = |rows: LazyFrame| {
        rows.join(
            ids.clone().lazy(),
            on.clone(),
            on.clone(),
            JoinArgs::new(JoinType::Semi),
        )
    };
    let mut columns: Vec<Expr> = IDENTITY_COLUMNS.map(col).to_vec();
    columns.push(col("department_display"));
    let current = members(latest.lazy()).select(columns.clone());
    let mut frames = vec![current];
    if !departures.is_empty() {
        let departed = members(stack(departures.iter())?.lazy());
        frames.push(with_department_mapping(departed, mapping.clone().lazy()).select(columns));
    }
    Ok(concat(frames, UnionArgs::default())?.collect()?)
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
) -> Vec<SnapshotFile> {
    let indexes: Vec<usize> = (0..files.len()).filter(|&index| keep(index)).collect();
    let mut newest: Vec<usize> = by_account(keys, &indexes)
        .values()
        .filter_map(|files| files.last().copied())
        .collect();
    newest.sort_unstable();
    newest
        .into_iter()
        .map(|index| files[index].clone())
        .collect()
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

/// Builds the grouping keys and display values of every dimension from the
/// spelling counts of the files in range.
fn display_mapping(pieces: &[&SnapshotPiece]) -> Result<DataFrame> {
    let counts = stack(pieces.iter().map(|p| &p.spellings))?
        .lazy()
        .group_by([col("account_id"), col("dimension"), col("raw")])
        .agg([col("rows").sum()])
        .collect()?;
    Ok(mapping_from_counts(&counts)?)
}

fn department_displays(mapping: &DataFrame) -> LazyFrame {
    mapping
        .clone()
        .lazy()
        .filter(col("dimension").eq(lit("department")))
        .select([
            col("account_id"),
            col("key").alias("department_key"),
            col("value").alias("department_display"),
        ])
        .unique_generic(None, UniqueKeepStrategy::Any)
}

/// Prepares the rows of the given files with the department keys and display
/// values of `mapping`.
fn latest_rows(files: &[SnapshotFile], mapping: &DataFrame) -> Result<PreparedSnapshots> {
    let mut rows: Option<DataFrame> = None;
    for file in files {
        let read = file_rows(file)?;
        match &mut rows {
            Some(rows) => {
                rows.vstack_mut(&read)?;
            }
            None => rows = Some(read),
        }
    }
    let rows = rows
        .context("at least one snapshot is in range")?
        .lazy()
        .drop(cols(["department_key"]));
    let prepared = with_department_mapping(rows, mapping.clone().lazy()).collect()?;
    Ok(PreparedSnapshots::from_rows(prepared))
}

/// Concatenates frames of one schema.
fn stack<'f>(frames: impl Iterator<Item = &'f DataFrame>) -> Result<DataFrame> {
    let mut stacked: Option<DataFrame> = None;
    for frame in frames {
        match &mut stacked {
            Some(stacked) => {
                stacked.vstack_mut(frame)?;
            }
            None => stacked = Some(frame.clone()),
        }
    }
    let mut stacked = stacked.context("at least one frame to concatenate")?;
    stacked.rechunk_mut();
    Ok(stacked)
}
