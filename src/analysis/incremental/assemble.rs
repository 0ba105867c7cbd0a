//! Building the report tables and the summary from the pieces of a run.

use std::collections::HashMap;

use anyhow::{Context, Result};
use polars::prelude::*;

use super::compute::Pieces;
use super::{IDENTITY_COLUMNS, Run, SnapshotPiece, file_rows};
use crate::analysis::ReportTables;
use crate::analysis::group_rates::group_rates_with_mapping;
use crate::analysis::normalize::{mapping_from_counts, with_department_mapping};
use crate::analysis::params::AnalysisParams;
use crate::analysis::prepare::PreparedSnapshots;
use crate::analysis::repeat::{repeat_clickers_table, rising_clicks, rising_periods_per_user};
use crate::analysis::summary::{Summary, summarize_totals};
use crate::analysis::trend::{period_department_counts, trend_from_counts};
use crate::analysis::user_risk::user_risk;
use crate::snapshot::SnapshotFile;

impl Run<'_> {
    /// Builds the tables and the summary from the pieces of the files in
    /// range and the newest file in range of each account.
    pub(super) fn assemble(
        &mut self,
        in_range: &[usize],
        latest_files: &[(usize, SnapshotFile)],
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
        let newest_rows = std::mem::take(
            &mut *self
                .newest_rows
                .lock()
                .expect("no worker panics with the lock"),
        );
        let latest = latest_rows(latest_files, newest_rows, &mapping)?;

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
        // The repeat clickers are found once, for their identities and the table.
        let per_user = rising_periods_per_user(rising.lazy())?;
        let identities = identity_rows(&per_user, &latest, &pieces.departures, &mapping)?;
        let tables = ReportTables {
            user_risk: user_risk(&latest, params)?,
            group_rates: group_rates_with_mapping(&latest, params, mapping.clone().lazy())?,
            department_trend: trend_from_counts(counts.lazy(), department_displays(&mapping))?,
            repeat_clickers: repeat_clickers_table(per_user, identities.lazy())?,
        };
        let totals = stack(snapshot_pieces.iter().map(|p| &p.totals))?;
        let summary = summarize_totals(totals.lazy(), &tables)?;
        Ok((tables, summary))
    }
}

/// Collects identity rows of each repeat clicker in `per_user` (the output of
/// `rising_periods_per_user`) from their latest snapshot in range: from the
/// latest rows, or else from the user's latest departure.
fn identity_rows(
    per_user: &DataFrame,
    latest: &PreparedSnapshots,
    departures: &[DataFrame],
    mapping: &DataFrame,
) -> Result<DataFrame> {
    let ids = per_user.select(["account_id", "user_id"])?;
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
/// values of `mapping`. `read` contains the rows that the piece workers
/// read, by file index, and the other files are read here.
fn latest_rows(
    files: &[(usize, SnapshotFile)],
    mut read: HashMap<usize, DataFrame>,
    mapping: &DataFrame,
) -> Result<PreparedSnapshots> {
    let mut rows: Option<DataFrame> = None;
    for (index, file) in files {
        let rows_of_file = match read.remove(index) {
            Some(rows) => rows,
            None => file_rows(file)?,
        };
        match &mut rows {
            Some(rows) => {
                rows.vstack_mut(&rows_of_file)?;
            }
            None => rows = Some(rows_of_file),
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
