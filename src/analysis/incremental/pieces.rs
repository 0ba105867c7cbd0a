//! The parts of the analysis that depend on one snapshot file or on the two
//! files at the ends of one period, and nothing else.

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::analysis::group_rates::dimension_values;
use crate::analysis::join_args;
use crate::analysis::normalize::{normalize_key, spelling_counts};
use crate::analysis::periods::user_changes;
use crate::analysis::prepare::cleaned_snapshot_rows;
use crate::analysis::repeat::rising_in_changes;
use crate::analysis::summary::snapshot_totals;
use crate::analysis::trend::department_counts;
use crate::snapshot::{SnapshotFile, Store};

/// Per-file results of the analysis, apart from the latest snapshot's tables.
#[derive(Debug, Clone)]
pub struct SnapshotPiece {
    /// `account_id`, `snapshot_at`, `sent` and `clicked`: the pooled totals
    /// of each snapshot in the file (one row in a well-formed store).
    pub totals: DataFrame,
    /// `account_id`, `dimension`, `raw` and `rows`: how often each spelling
    /// of a department, branch, group, country or manager occurs, from which
    /// the display spelling of each group is chosen.
    pub spellings: DataFrame,
}

/// Per-period results of the analysis, from the two snapshots a period compares.
#[derive(Debug, Clone)]
pub struct PeriodPiece {
    /// Per-department counts of `department_trend` before the display
    /// spelling, the rates and the previous period are added.
    pub department_counts: DataFrame,
    /// The users whose click count rose in the period, for `repeat_clickers`.
    pub rising_clicks: DataFrame,
}

/// Columns of a departure row: the user's identity in the earlier snapshot,
/// with the department as written.
pub const IDENTITY_COLUMNS: [&str; 9] = [
    "account_id",
    "user_id",
    "snapshot_at",
    "email",
    "name",
    "department",
    "branch_name",
    "manager",
    "country",
];

/// Selects the users of one snapshot who are absent from the next snapshot
/// of the account, with [`IDENTITY_COLUMNS`] from the earlier one. Both
/// frames are outputs of [`file_rows`]. A user's latest snapshot in a range
/// is the latest snapshot of the account or the earlier side of their
/// latest departure, which is how `repeat_clickers` finds the identity of a
/// user who left.
pub fn departures(earlier: &DataFrame, later: &DataFrame) -> Result<DataFrame> {
    let on = [col("account_id"), col("user_id")];
    let remaining = later.clone().lazy().select(on.clone());
    let left = earlier
        .clone()
        .lazy()
        .join(remaining, on.clone(), on, JoinArgs::new(JoinType::Anti))
        .select(IDENTITY_COLUMNS.map(col))
        .collect()?;
    compact(left)
}

/// Copies the String columns of a piece into buffers of their own.
///
/// Polars stores strings as views into shared buffers, and filters, joins
/// and group-bys keep the buffers of their input. A piece of a few hundred
/// rows would then keep a whole snapshot's strings alive for the rest of
/// the run: on 100,000 users x 365 snapshots that raised the peak memory
/// from well under 1 GiB to more than 3 GiB.
fn compact(frame: DataFrame) -> Result<DataFrame> {
    let columns = frame
        .columns()
        .iter()
        .map(|column| -> Result<Column> {
            if column.dtype() != &DataType::String {
                return Ok(column.clone());
            }
            let strings = column.str()?;
            let copied = StringChunked::from_chunk_iter(
                column.name().clone(),
                strings.downcast_iter().map(|chunk| chunk.clone().gc()),
            );
            Ok(copied.into_column())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DataFrame::new(frame.height(), columns)?)
}

/// Reads and cleans every row of one snapshot file: the prepared columns
/// with `department_key` but without `department_display`, which depends on
/// every snapshot in range. The date range is not applied, because a piece
/// covers a whole file and the range selects whole files.
///
/// The file must contain one snapshot of one account, as [`file_keys`]
/// checks before any piece is computed.
pub fn file_rows(file: &SnapshotFile) -> Result<DataFrame> {
    let scan = Store::scan(std::slice::from_ref(file))?;
    let rows = cleaned_snapshot_rows(scan);
    let rows = Context::with_context(rows, || failed_to_read(file))?;
    with_department_key(rows)
}

/// Adds `department_key` by a join on the raw department alone, which is
/// cheaper than the general mapping's join on account, dimension and value.
/// The key depends only on the value ([`normalize_key`]).
fn with_department_key(rows: DataFrame) -> Result<DataFrame> {
    let raw = col("department").fill_null(lit(""));
    let distinct = rows
        .clone()
        .lazy()
        .select([raw.clone().alias("raw")])
        .unique_generic(None, UniqueKeepStrategy::Any)
        .collect()?;
    let values: Vec<Option<&str>> = distinct.column("raw")?.str()?.iter().collect();
    let keys: Vec<String> = values
        .iter()
        .map(|value| normalize_key(value.unwrap_or_default()))
        .collect();
    let keys = df!("raw" => values, "department_key" => keys)?.lazy();
    let on = [col("raw")];
    let keyed = rows
        .lazy()
        .with_column(raw.alias("raw"))
        .join(keys, on.clone(), on, join_args(JoinType::Left))
        .drop(cols(["raw"]))
        .collect()?;
    Ok(keyed)
}

fn failed_to_read(file: &SnapshotFile) -> String {
    format!("failed to read the snapshot {}", file.path.display())
}

/// Reads the distinct `account_id` and `snapshot_at` of the rows of a file
/// that [`file_rows`] keeps, without reading the other columns.
pub fn file_keys(file: &SnapshotFile) -> Result<DataFrame> {
    let identity = ["account_id", "snapshot_at", "user_id"].map(col);
    let keys = Store::scan(std::slice::from_ref(file))?
        .select(identity.clone())
        .filter(all_horizontal(identity.map(Expr::is_not_null))?)
        .select([col("account_id"), col("snapshot_at")])
        .unique_generic(None, UniqueKeepStrategy::Any)
        .collect();
    Context::with_context(keys, || failed_to_read(file))
}

impl SnapshotPiece {
    /// Computes the piece from the output of [`file_rows`].
    pub fn compute(rows: &DataFrame) -> Result<Self> {
        let frame = rows.clone().lazy();
        Ok(SnapshotPiece {
            totals: compact(snapshot_totals(frame.clone()).collect()?)?,
            spellings: compact(spelling_counts(dimension_values(frame, &[])?).collect()?)?,
        })
    }
}

impl PeriodPiece {
    /// Computes the piece of the period between two snapshots from the output
    /// of [`file_rows`] for each of them.
    pub fn compute(start: &DataFrame, end: &DataFrame) -> Result<Self> {
        // user_changes collects its result, so both pieces share one join.
        let changes = user_changes(start.vstack(end)?.lazy(), None)?;
        Ok(PeriodPiece {
            department_counts: compact(department_counts(changes.clone()).collect()?)?,
            rising_clicks: compact(rising_in_changes(changes).collect()?)?,
        })
    }
}
