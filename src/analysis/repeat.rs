//! Users whose click count rose in several periods.

use foldhash::HashMap;

use polars::prelude::*;

use super::params::{AnalysisParams, Every};
use super::periods::user_changes;
use super::prepare::PreparedSnapshots;
use super::{join_args, over};

/// Minimum number of periods with new clicks that makes a repeat clicker.
pub const MIN_REPEAT_PERIODS: i64 = 2;

/// Columns of the `repeat_clickers` table, in order.
pub const REPEAT_COLUMNS: [&str; 12] = [
    "account_id",
    "user_id",
    "email",
    "name",
    "department",
    "branch_name",
    "manager",
    "country",
    "last_seen_at",
    "periods_with_clicks",
    "clicks_gained",
    "click_periods",
];

/// Format of the period bounds in `click_periods` (RFC 3339 in UTC).
const PERIOD_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Builds the `repeat_clickers` table: users present at both ends of at least
/// [`MIN_REPEAT_PERIODS`] periods in which their derived click count rose,
/// with identity and department from their latest snapshot in range. Sorted
/// by account, then most periods and clicks first.
pub fn repeat_clickers(
    prepared: &PreparedSnapshots,
    params: &AnalysisParams,
) -> anyhow::Result<DataFrame> {
    params.validate()?;
    let frame = prepared.lazy();
    let rising = rising_clicks(frame.clone(), params.every)?;
    repeat_clickers_from(rising, frame)
}

/// Selects the periods of `frame` (prepared rows with `department_key`) in
/// which a user's derived click count rose: `account_id`, `user_id`,
/// `period_start`, `period_end` and `delta_clicked`. Periods are
/// independent, so the rows of two sets of periods can be concatenated.
pub(crate) fn rising_clicks(frame: LazyFrame, every: Option<Every>) -> PolarsResult<LazyFrame> {
    Ok(rising_in_changes(user_changes(frame, every)?))
}

/// Selects the rows of [`rising_clicks`] from the output of `user_changes`.
pub(crate) fn rising_in_changes(changes: LazyFrame) -> LazyFrame {
    let columns = [
        "account_id",
        "user_id",
        "period_start",
        "period_end",
        "delta_clicked",
    ];
    changes
        .filter(col("delta_clicked").gt(lit(0i64)))
        .select(columns.map(col))
}

/// Builds the `repeat_clickers` table from the output of [`rising_clicks`]
/// and prepared rows (with `department_display`) that contain at least each
/// repeat clicker's latest snapshot in range.
pub(crate) fn repeat_clickers_from(
    rising: LazyFrame,
    prepared_rows: LazyFrame,
) -> anyhow::Result<DataFrame> {
    repeat_clickers_table(rising_periods_per_user(rising)?, prepared_rows)
}

/// Builds the `repeat_clickers` table from the output of
/// [`rising_periods_per_user`] and prepared rows as [`repeat_clickers_from`]
/// takes them.
pub(crate) fn repeat_clickers_table(
    per_user: DataFrame,
    prepared_rows: LazyFrame,
) -> anyhow::Result<DataFrame> {
    let per_user = per_user.lazy();
    let on = [col("account_id"), col("user_id")];
    let semi = JoinArgs::new(JoinType::Semi);
    let members = prepared_rows.join(per_user.clone(), on.clone(), on.clone(), semi);
    let identity = latest_identity(members);

    let sort_columns = [
        "account_id",
        "periods_with_clicks",
        "clicks_gained",
        "user_id",
    ];
    let descending = [false, true, true, false];
    let order = SortMultipleOptions::default().with_order_descending_multi(descending);
    let table = per_user
        .join(identity, on.clone(), on, join_args(JoinType::Left))
        .select(REPEAT_COLUMNS.map(col))
        .sort(sort_columns, order)
        .collect()?;
    Ok(table)
}

/// Aggregates, per user with at least [`MIN_REPEAT_PERIODS`] rising
/// periods, the number of those periods, the clicks gained and their labels.
pub(crate) fn rising_periods_per_user(changes: LazyFrame) -> PolarsResult<DataFrame> {
    // One group-by finds the repeat clickers and aggregates them, and each
    // distinct period label is formatted once.
    let rising = changes
        .filter(col("delta_clicked").gt(lit(0i64)))
        .collect()?;
    let by_time = SortMultipleOptions::default();
    with_period_labels(rising)?
        .lazy()
        .group_by([col("account_id"), col("user_id")])
        .agg([
            len().cast(DataType::Int64).alias("periods_with_clicks"),
            col("delta_clicked").sum().alias("clicks_gained"),
            col("period_label")
                .sort_by([col("period_end")], by_time)
                .str()
                .join("; ", true)
                .alias("click_periods"),
        ])
        .filter(col("periods_with_clicks").gt_eq(lit(MIN_REPEAT_PERIODS)))
        .collect()
}

/// Adds `period_label`, `start/end` of each row's period in RFC 3339 UTC
/// times. A store has few distinct periods and many rows per period, so
/// each distinct label is formatted once and then looked up.
fn with_period_labels(mut rows: DataFrame) -> PolarsResult<DataFrame> {
    let micros = |name: &str| -> PolarsResult<Int64Chunked> {
        Ok(rows.column(name)?.cast(&DataType::Int64)?.i64()?.clone())
    };
    let (starts, ends) = (micros("period_start")?, micros("period_end")?);
    let mut labels: HashMap<(i64, i64), String> = HashMap::default();
    for (start, end) in starts.iter().zip(ends.iter()) {
        if let (Some(start), Some(end)) = (start, end) {
            labels
                .entry((start, end))
                .or_insert_with(|| format!("{}/{}", rfc3339(start), rfc3339(end)));
        }
    }
    let column: StringChunked = starts
        .iter()
        .zip(ends.iter())
        .map(|pair| match pair {
            (Some(start), Some(end)) => Some(labels[&(start, end)].as_str()),
            _ => None,
        })
        .collect();
    rows.with_column(column.with_name("period_label".into()).into_column())?;
    Ok(rows)
}

/// Formats microseconds since the epoch as an RFC 3339 UTC time to the second.
fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.format(PERIOD_TIME_FORMAT).to_string())
        .unwrap_or_default()
}

/// Selects each user's identity from their latest snapshot in range.
fn latest_identity(frame: LazyFrame) -> LazyFrame {
    let latest = over(col("snapshot_at").max(), &["account_id", "user_id"]);
    frame.filter(col("snapshot_at").eq(latest)).select([
        col("account_id"),
        col("user_id"),
        col("email"),
        col("name"),
        col("department_display").alias("department"),
        col("branch_name"),
        col("manager"),
        col("country"),
        col("snapshot_at").alias("last_seen_at"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::*;

    const T: [&str; 4] = [
        "2025-03-03T08:00:00Z",
        "2025-03-10T08:00:00Z",
        "2025-03-17T08:00:00Z",
        "2025-03-24T08:00:00Z",
    ];

    /// Adds one row per snapshot for `id` with the given clicks out of 10 emails;
    /// `None` leaves the user out of that snapshot.
    fn history(rows: &mut Vec<UserRow>, id: &str, clicks: [Option<i64>; 4]) {
        for (at, clicked) in T.iter().zip(clicks) {
            if let Some(clicked) = clicked {
                rows.push(user("a", at, id).dept("Sales").phishing(10, clicked, 0));
            }
        }
    }

    fn clickers(rows: &[UserRow], params: &AnalysisParams) -> DataFrame {
        repeat_clickers(&prepared(rows, params), params).unwrap()
    }

    fn sample_rows() -> Vec<UserRow> {
        let mut rows = Vec::new();
        // Rises in periods 1 and 3: 0 → 1 → 1 → 3.
        history(&mut rows, "u1", [Some(0), Some(1), Some(1), Some(3)]);
        // One rise only.
        history(&mut rows, "u2", [Some(0), Some(2), Some(2), Some(2)]);
        // 5 → 1 is a reset, so 1 click counts; then 1 → 2.
        history(&mut rows, "u3", [Some(5), Some(1), Some(2), Some(2)]);
        // Absent at T3, so only the first period is compared.
        history(&mut rows, "u4", [Some(0), Some(1), None, Some(3)]);
        rows
    }

    #[test]
    fn repeat_clickers_need_two_periods() {
        let mut rows = sample_rows();
        // u1 moved to IT in the latest snapshot.
        let last = rows
            .iter()
            .position(|r| r.user == "u1" && r.at == T[3])
            .unwrap();
        rows[last] = rows[last].clone().dept("IT");
        let table = clickers(&rows, &AnalysisParams::default());

        assert_eq!(
            strings(&table, "user_id"),
            [Some("u1".into()), Some("u3".into())]
        );
        assert_eq!(ints(&table, "periods_with_clicks"), [Some(2), Some(2)]);
        // u1: 1 + 2 = 3 clicks; u3: 1 (reset) + 1 = 2 clicks.
        assert_eq!(ints(&table, "clicks_gained"), [Some(3), Some(2)]);
        assert_eq!(strings(&table, "department")[0].as_deref(), Some("IT"));
        assert_eq!(
            strings(&table, "email")[0].as_deref(),
            Some("u1@example.com")
        );
        assert_eq!(
            strings(&table, "click_periods")[0].as_deref(),
            Some(
                "2025-03-03T08:00:00Z/2025-03-10T08:00:00Z; 2025-03-17T08:00:00Z/2025-03-24T08:00:00Z"
            )
        );
        let names: Vec<&str> = table
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, REPEAT_COLUMNS);
    }

    #[test]
    fn monthly_periods_need_two_months() {
        // All four snapshots fall in March, so there is no monthly period at all.
        let params = AnalysisParams {
            every: Some(Every::Month),
            ..AnalysisParams::default()
        };
        assert_eq!(clickers(&sample_rows(), &params).height(), 0);
    }
}
