//! Loading or computing the pieces of a run on one worker thread per core,
//! each reading a run of consecutive files of one account once.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use polars::prelude::*;

use super::{
    Fingerprint, PeriodPiece, PieceCache, PieceStats, Run, SnapshotKey, SnapshotPiece, by_account,
    departures, file_rows,
};
use crate::snapshot::SnapshotFile;

/// A run of consecutive files in range of one account, in time order, and
/// the file in range before it, if any.
struct Chunk {
    previous: Option<usize>,
    files: Vec<usize>,
}

/// The pieces that one chunk computed or loaded, with its statistics.
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
pub(super) struct Pieces {
    pub(super) periods: Vec<PeriodPiece>,
    /// Departures between consecutive snapshots in range.
    pub(super) departures: Vec<DataFrame>,
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

impl<'a> Run<'a> {
    /// Loads or computes the snapshot piece of every file in range, the
    /// departures between consecutive files and the piece of every period,
    /// on one worker thread per core. Each worker takes runs of consecutive
    /// files of one account ([`Chunk`]) and reads each file at most once,
    /// unless `every` puts more than [`BUFFERED_FILES`] files between the
    /// ends of a period, or a period or departure crosses two chunks.
    pub(super) fn compute_pieces(
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
            // A period between consecutive files joins the same two files
            // as the departures between them, so one join serves both.
            let mut period = None;
            let mut departed_in_period = None;
            if let Some(&start) = period_starts.get(&index) {
                let consecutive = previous == Some(start);
                let (piece, departed) =
                    self.period_piece(start, index, consecutive, &mut buffer, &mut output.stats)?;
                period = Some(piece);
                departed_in_period = departed;
            }
            if let Some(before) = previous {
                let departed = self.departures_piece(
                    before,
                    index,
                    departed_in_period,
                    &mut buffer,
                    &mut output.stats,
                )?;
                output.departures.push(departed);
            }
            output.periods.extend(period);
            if self.newest_indexes.contains(&index) {
                let rows = buffer.rows(self.files, index)?;
                let mut newest = self
                    .newest_rows
                    .lock()
                    .expect("no worker panics with the lock");
                newest.insert(index, rows);
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
    /// `end`. A computed piece comes with the departures between the two
    /// files when `with_departures`.
    fn period_piece(
        &self,
        start: usize,
        end: usize,
        with_departures: bool,
        buffer: &mut RowBuffer,
        stats: &mut PieceStats,
    ) -> Result<(PeriodPiece, Option<DataFrame>)> {
        let ends = self.pair_prints(start, end);
        if let Some((cache, start_print, end_print)) = &ends
            && let Some(piece) = cache.load_period(
                (&self.files[start], start_print),
                (&self.files[end], end_print),
            )
        {
            stats.periods_reused += 1;
            return Ok((piece, None));
        }
        let start_rows = buffer.rows(self.files, start)?;
        let end_rows = buffer.rows(self.files, end)?;
        let (piece, departed) = PeriodPiece::compute(&start_rows, &end_rows, with_departures)?;
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
        Ok((piece, departed))
    }

    /// Loads or computes the departures from file `earlier` to the next file
    /// of the account, `later`. When the period piece between the two files
    /// was computed, `computed` contains the departures it found.
    fn departures_piece(
        &self,
        earlier: usize,
        later: usize,
        computed: Option<DataFrame>,
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
        let departed = match computed {
            Some(departed) => departed,
            None => {
                let earlier_rows = buffer.rows(self.files, earlier)?;
                let later_rows = buffer.rows(self.files, later)?;
                departures(&earlier_rows, &later_rows)?
            }
        };
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
}
