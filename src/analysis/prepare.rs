//! Selection, cleaning and derived counts of the snapshot rows that every
//! table starts from.

use polars::lazy::dsl::{max_horizontal, min_horizontal};
use polars::prelude::*;

use super::normalize::with_department_group;
use super::over;
use super::params::AnalysisParams;

/// Cumulative counters of the input, each Int64 and nullable.
pub const COUNTER_COLUMNS: [&str; 9] = [
    "enrolled_courses",
    "not_completed_courses",
    "overdue_courses",
    "enrolled_materials",
    "not_completed_materials",
    "phishing_campaigns",
    "emails_sent",
    "links_clicked",
    "data_submitted",
];

/// Text columns kept from the input for identity and grouping.
pub const TEXT_COLUMNS: [&str; 8] = [
    "account_id",
    "user_id",
    "email",
    "name",
    "department",
    "branch_name",
    "manager",
    "country",
];

/// Number of overdue courses at which the overdue component reaches 1.
pub const OVERDUE_CAP: i64 = 3;

/// Snapshot rows within the date range, with derived counts and flags,
/// collected in memory.
///
/// Built by [`prepare`]. It has the input columns listed in [`TEXT_COLUMNS`]
/// and [`COUNTER_COLUMNS`], `snapshot_at`, `groups` and `average_score`
/// (NaN replaced by null), and the derived columns `sent`, `clicked`,
/// `submitted`, `data_issue`, `counters_missing`, `enrolled`,
/// `not_completed`, `training_issue`, `overdue`, `score_clamped`,
/// `score_out_of_range`, `department_key` and `department_display`, defined
/// in docs/metrics.md.
#[derive(Clone)]
pub struct PreparedSnapshots {
    rows: DataFrame,
}

impl PreparedSnapshots {
    /// Returns the prepared rows as a lazy frame.
    pub fn lazy(&self) -> LazyFrame {
        self.rows.clone().lazy()
    }

    /// Returns the prepared rows.
    pub fn rows(&self) -> &DataFrame {
        &self.rows
    }

    /// Wraps rows that already have every prepared column, such as the
    /// output of [`cleaned_rows`] with the department columns attached.
    pub(crate) fn from_rows(rows: DataFrame) -> Self {
        PreparedSnapshots { rows }
    }
}

/// Selects the used columns of the snapshot rows within the date range of
/// `params`, adds the derived counts and flags, and collects the result.
///
/// The rows are collected once because every table reads them. Collecting
/// also keeps the table plans shallow: the polars optimizer recurses over the
/// plan, and a table plan stacked on the whole input plan overflowed the
/// 2 MiB stack of a test thread in a debug build.
///
/// Extra input columns are ignored. Rows with a null `account_id`, `user_id`
/// or `snapshot_at` are dropped, because they cannot be attributed to a user
/// or a snapshot. When a snapshot contains the same user twice, the first row
/// is kept.
pub fn prepare(snapshots: LazyFrame, params: &AnalysisParams) -> anyhow::Result<PreparedSnapshots> {
    params.validate()?;
    let rows = with_department_group(cleaned_rows(snapshots, params)?)?.collect()?;
    Ok(PreparedSnapshots { rows })
}

/// Builds the prepared rows without `department_key` and
/// `department_display`, whose display spelling depends on every row in
/// range. [`prepare`] adds them.
pub(crate) fn cleaned_rows(
    snapshots: LazyFrame,
    params: &AnalysisParams,
) -> PolarsResult<LazyFrame> {
    let identity = [col("account_id"), col("snapshot_at"), col("user_id")];
    let rows = snapshots
        .select(input_columns())
        .filter(range_filter(params))
        .filter(all_horizontal(identity.clone().map(Expr::is_not_null))?)
        .unique_stable_generic(Some(identity.to_vec()), UniqueKeepStrategy::First);
    with_derived_counts(rows)
}

/// Collects the rows of [`cleaned_rows`] without a date range from rows that
/// contain one snapshot of one account, so that a user's first row in the
/// snapshot is their first row by `user_id` alone.
///
/// A fetched snapshot lists every user once, and the deduplication gathers
/// every column (84 ms of 150 for a file of 100,000 users), so it runs only
/// when `user_id` has a duplicate.
pub(crate) fn cleaned_snapshot_rows(snapshot: LazyFrame) -> PolarsResult<DataFrame> {
    let identity = [col("account_id"), col("snapshot_at"), col("user_id")];
    let rows = snapshot.select(input_columns()).collect()?;
    // A fetched snapshot has no null identity, and filtering copies every
    // column, the list of groups included.
    let mut has_nulls = false;
    for name in ["account_id", "snapshot_at", "user_id"] {
        has_nulls |= rows.column(name)?.null_count() > 0;
    }
    let rows = match has_nulls {
        true => rows
            .lazy()
            .filter(all_horizontal(identity.map(Expr::is_not_null))?)
            .collect()?,
        false => rows,
    };
    let has_duplicates = rows.column("user_id")?.n_unique()? < rows.height();
    let rows = match has_duplicates {
        true => rows
            .lazy()
            .unique_stable_generic(Some(vec![col("user_id")]), UniqueKeepStrategy::First),
        false => rows.lazy(),
    };
    with_derived_counts(rows)?.collect()
}

fn with_derived_counts(rows: LazyFrame) -> PolarsResult<LazyFrame> {
    let rows = rows
        .with_columns(phishing_counts()?)
        .with_column(
            min_horizontal([non_negative("data_submitted"), col("clicked")])?.alias("submitted"),
        )
        .with_columns(training_counts()?)
        .with_columns(score_columns());
    Ok(rows)
}

/// Returns the UTC microsecond Datetime type of `snapshot_at`.
pub fn utc_datetime() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// Builds a literal of `time` as a UTC microsecond Datetime.
pub fn datetime_literal(time: chrono::DateTime<chrono::Utc>) -> Expr {
    lit(time.timestamp_micros()).cast(utc_datetime())
}

/// Keeps the rows of the latest snapshot of each account.
pub fn latest_snapshot_rows(frame: LazyFrame) -> LazyFrame {
    let latest = over(col("snapshot_at").max(), &["account_id"]);
    frame.filter(col("snapshot_at").eq(latest))
}

fn input_columns() -> Vec<Expr> {
    let mut columns = vec![col("snapshot_at").cast(utc_datetime())];
    columns.extend(TEXT_COLUMNS.map(|name| col(name).cast(DataType::String)));
    columns.push(col("groups"));
    columns.extend(COUNTER_COLUMNS.map(|name| col(name).cast(DataType::Int64)));
    let score = col("average_score").cast(DataType::Float64);
    columns.push(
        when(score.clone().is_nan())
            .then(lit(NULL).cast(DataType::Float64))
            .otherwise(score)
            .alias("average_score"),
    );
    columns
}

fn range_filter(params: &AnalysisParams) -> Expr {
    let mut keep = lit(true);
    if let Some(since) = params.since {
        keep = keep.and(col("snapshot_at").gt_eq(datetime_literal(since)));
    }
    if let Some(until) = params.until {
        keep = keep.and(col("snapshot_at").lt_eq(datetime_literal(until)));
    }
    keep
}

/// Counter with null and negative values replaced by 0.
fn non_negative(name: &str) -> Expr {
    col(name).fill_null(lit(0i64)).clip_min(lit(0i64))
}

/// Counter with null replaced by 0, for the consistency checks.
fn zero_if_null(name: &str) -> Expr {
    col(name).fill_null(lit(0i64))
}

fn any_negative(names: &[&str]) -> PolarsResult<Expr> {
    any_horizontal(
        names
            .iter()
            .map(|name| zero_if_null(name).lt(lit(0i64)))
            .collect::<Vec<_>>(),
    )
}

/// Builds `sent`, `clicked`, `data_issue` and `counters_missing`. A submission
/// implies a click, so `clicked` is at least `data_submitted`, and no more
/// than `sent`.
fn phishing_counts() -> PolarsResult<Vec<Expr>> {
    let clicks_or_submits = max_horizontal([
        non_negative("links_clicked"),
        non_negative("data_submitted"),
    ])?;
    let broken_order = zero_if_null("data_submitted")
        .gt(zero_if_null("links_clicked"))
        .or(zero_if_null("links_clicked").gt(zero_if_null("emails_sent")));
    let negative = any_negative(&["emails_sent", "links_clicked", "data_submitted"])?;
    let missing = any_horizontal(COUNTER_COLUMNS.map(|name| col(name).is_null()))?;
    Ok(vec![
        non_negative("emails_sent").alias("sent"),
        min_horizontal([clicks_or_submits, non_negative("emails_sent")])?.alias("clicked"),
        broken_order.or(negative).alias("data_issue"),
        missing.alias("counters_missing"),
    ])
}

/// Builds `enrolled`, `not_completed` (capped at enrolled for courses and
/// materials separately), `training_issue` and `overdue`.
fn training_counts() -> PolarsResult<Vec<Expr>> {
    let not_completed = min_horizontal([
        non_negative("not_completed_courses"),
        non_negative("enrolled_courses"),
    ])? + min_horizontal([
        non_negative("not_completed_materials"),
        non_negative("enrolled_materials"),
    ])?;
    let above_enrolled = zero_if_null("not_completed_courses")
        .gt(zero_if_null("enrolled_courses"))
        .or(zero_if_null("not_completed_materials").gt(zero_if_null("enrolled_materials")));
    let negative = any_negative(&COUNTER_COLUMNS[..5])?;
    let overdue = min_horizontal([non_negative("overdue_courses"), lit(OVERDUE_CAP)])?
        .cast(DataType::Float64)
        / lit(OVERDUE_CAP as f64);
    Ok(vec![
        (non_negative("enrolled_courses") + non_negative("enrolled_materials")).alias("enrolled"),
        not_completed.alias("not_completed"),
        above_enrolled.or(negative).alias("training_issue"),
        overdue.alias("overdue"),
    ])
}

fn score_columns() -> Vec<Expr> {
    let score = col("average_score");
    let out_of_range = score.clone().lt(lit(0.0)).or(score.clone().gt(lit(100.0)));
    vec![
        score.clip(lit(0.0), lit(100.0)).alias("score_clamped"),
        out_of_range
            .fill_null(lit(false))
            .alias("score_out_of_range"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::*;

    const T1: &str = "2025-03-03T08:00:00Z";
    const T2: &str = "2025-03-10T08:00:00Z";

    fn prepared_rows(rows: &[UserRow], params: &AnalysisParams) -> DataFrame {
        prepare(snapshot_frame(rows), params)
            .unwrap()
            .rows()
            .clone()
    }

    #[test]
    fn extra_columns_are_dropped() {
        let rows = prepared_rows(&[user("a", T1, "u1")], &AnalysisParams::default());
        let names: Vec<&str> = rows.get_column_names().iter().map(|n| n.as_str()).collect();
        assert!(!names.contains(&"account"), "hive column");
        assert!(!names.contains(&"extra"));
        assert!(names.contains(&"sent"));
    }

    #[test]
    fn duplicate_user_keeps_first_row() {
        let rows = [
            user("a", T1, "u1").phishing(4, 1, 0),
            user("a", T1, "u1").phishing(9, 9, 9),
            user("a", T2, "u1").phishing(5, 1, 0),
        ];
        let prepared = prepared_rows(&rows, &AnalysisParams::default());
        assert_eq!(prepared.height(), 2);
        assert_eq!(ints(&prepared, "sent"), [Some(4), Some(5)]);
    }

    #[test]
    fn date_range_is_inclusive() {
        let rows = [user("a", T1, "u1"), user("a", T2, "u1")];
        let params = AnalysisParams {
            since: Some(T1.parse().unwrap()),
            until: Some(T1.parse().unwrap()),
            ..AnalysisParams::default()
        };
        assert_eq!(prepared_rows(&rows, &params).height(), 1);
        let params = AnalysisParams {
            since: Some("2025-03-03T08:00:00.000001Z".parse().unwrap()),
            ..AnalysisParams::default()
        };
        assert_eq!(
            prepared_rows(&rows, &params).height(),
            1,
            "T1 is before since"
        );
    }

    #[test]
    fn training_counts_capped_at_enrolled() {
        // 5 open of 3 courses counts as 3; materials 1 of 2.
        let rows = [user("a", T1, "u1").training(3, 5, 0, 2, 1)];
        let prepared = prepared_rows(&rows, &AnalysisParams::default());
        assert_eq!(ints(&prepared, "enrolled"), [Some(5)]);
        assert_eq!(ints(&prepared, "not_completed"), [Some(4)]);
        assert_eq!(bools(&prepared, "training_issue"), [Some(true)]);
    }
}
