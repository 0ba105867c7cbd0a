//! Department changes between snapshots: headcount movements, period click
//! rates with Wilson intervals, and a z-test against the previous period.

use polars::prelude::*;

use super::join_args;
use super::params::{AnalysisParams, Every};
use super::periods::user_changes;
use super::prepare::PreparedSnapshots;
use super::stats::{
    SIGNIFICANCE_LEVEL, Z_95, ratio, two_proportion_z_expr, two_sided_p_value_expr, wilson_bounds,
};

/// Columns of the `department_trend` table, in order.
pub const TREND_COLUMNS: [&str; 27] = [
    "account_id",
    "department",
    "department_key",
    "period_start",
    "period_end",
    "users_start",
    "users_end",
    "users_tracked",
    "joined",
    "left",
    "moved_in",
    "moved_out",
    "resets",
    "delta_sent",
    "delta_clicked",
    "delta_submitted",
    "period_click_rate",
    "period_click_rate_low",
    "period_click_rate_high",
    "clicks_exceed_sends",
    "previous_period_click_rate",
    "click_rate_change",
    "change_z",
    "change_p_value",
    "change_significant",
    "completion_rate",
    "mean_average_score",
];

/// Count columns that are 0, not null, for a department absent at one end.
const COUNT_COLUMNS: [&str; 12] = [
    "users_start",
    "users_end",
    "users_tracked",
    "joined",
    "left",
    "moved_in",
    "moved_out",
    "resets",
    "delta_sent",
    "delta_clicked",
    "delta_submitted",
    "enrolled",
];

const PERIOD_KEYS: [&str; 4] = ["account_id", "period_start", "period_end", "department_key"];

/// Builds the `department_trend` table: one row per account, department and
/// period in which the department has users at either end, sorted by
/// account, department and period.
pub fn department_trend(
    prepared: &PreparedSnapshots,
    params: &AnalysisParams,
) -> anyhow::Result<DataFrame> {
    params.validate()?;
    let frame = prepared.lazy();
    let counts = period_department_counts(frame.clone(), params.every)?;
    trend_from_counts(counts, department_displays(frame))
}

/// Builds the `department_trend` table from the output of
/// [`period_department_counts`], which may come from several calls on
/// disjoint periods, and the display spelling of each department key
/// (`account_id`, `department_key`, `department_display`).
pub(crate) fn trend_from_counts(
    counts: LazyFrame,
    displays: LazyFrame,
) -> anyhow::Result<DataFrame> {
    let on = [col("account_id"), col("department_key")];
    let rows = counts
        .join(displays, on.clone(), on, join_args(JoinType::Left))
        .with_columns(period_rates());
    let table = with_previous_period(rows)
        .with_columns(change_test())
        .with_column(two_sided_p_value_expr(col("change_z")).alias("change_p_value"))
        .with_column(
            col("change_p_value")
                .lt(lit(SIGNIFICANCE_LEVEL))
                .alias("change_significant"),
        )
        .rename(["department_display"], ["department"], true)
        .select(TREND_COLUMNS.map(col))
        .sort(
            ["account_id", "department", "department_key", "period_end"],
            SortMultipleOptions::default(),
        )
        .collect()?;
    Ok(table)
}

/// Aggregates the changes of the periods of `frame` (prepared rows with
/// `department_key`) per account, period and department key. Periods are
/// independent, so the counts of two sets of periods can be concatenated.
pub(crate) fn period_department_counts(
    frame: LazyFrame,
    every: Option<Every>,
) -> PolarsResult<LazyFrame> {
    Ok(department_counts(user_changes(frame, every)?))
}

/// Selects the display spelling of each department key of prepared rows.
fn department_displays(frame: LazyFrame) -> LazyFrame {
    frame
        .select([
            col("account_id"),
            col("department_key"),
            col("department_display"),
        ])
        .unique_generic(None, UniqueKeepStrategy::Any)
}

/// Aggregates the user changes per department. Changes, arrivals and the end
/// state count in the department at the end of the period. The start
/// headcount, departures and moves out count in the start department.
pub(crate) fn department_counts(changes: LazyFrame) -> LazyFrame {
    let at_end = changes
        .clone()
        .filter(col("in_end"))
        .group_by(period_keys("end_key"))
        .agg(end_counts());
    let at_start = changes
        .filter(col("in_start"))
        .group_by(period_keys("start_key"))
        .agg(start_counts());
    join_counts(at_end, at_start)
}

/// Builds the output of [`department_counts`] for changes of one account
/// and one period. Grouping by the department key alone spares polars
/// encoding four key columns per row, and the account and the period are
/// carried as the first value of each group.
pub(crate) fn department_counts_of_one_period(changes: LazyFrame) -> LazyFrame {
    let side = |frame: LazyFrame, present: &str, department: &str, counts: Vec<Expr>| {
        let mut aggregations = PERIOD_KEYS[..3]
            .iter()
            .map(|name| col(*name).first())
            .collect::<Vec<_>>();
        aggregations.extend(counts);
        let mut order: Vec<Expr> = PERIOD_KEYS.map(col).to_vec();
        order.extend(counts_names(&aggregations[3..]));
        frame
            .filter(col(present))
            .group_by([col(department).alias("department_key")])
            .agg(aggregations)
            .select(order)
    };
    let at_end = side(changes.clone(), "in_end", "end_key", end_counts());
    let at_start = side(changes, "in_start", "start_key", start_counts());
    join_counts(at_end, at_start)
}

/// Returns a column per aggregation, by its output name.
fn counts_names(aggregations: &[Expr]) -> Vec<Expr> {
    aggregations
        .iter()
        .map(|expr| {
            let name = expr
                .clone()
                .meta()
                .output_name()
                .expect("every count has an output name");
            col(name)
        })
        .collect()
}

/// Returns the counts taken in the department at the end of a period.
fn end_counts() -> Vec<Expr> {
    let count = |flag: Expr| flag.cast(DataType::Int64).sum();
    vec![
        len().cast(DataType::Int64).alias("users_end"),
        count(col("in_start")).alias("users_tracked"),
        count(col("in_start").not()).alias("joined"),
        count(col("moved")).alias("moved_in"),
        count(col("reset")).alias("resets"),
        col("delta_sent").sum(),
        col("delta_clicked").sum(),
        col("delta_submitted").sum(),
        col("enrolled").sum(),
        col("not_completed").sum(),
        col("score_clamped").mean().alias("mean_average_score"),
    ]
}

/// Returns the counts taken in the department at the start of a period.
fn start_counts() -> Vec<Expr> {
    let count = |flag: Expr| flag.cast(DataType::Int64).sum();
    vec![
        len().cast(DataType::Int64).alias("users_start"),
        count(col("in_end").not()).alias("left"),
        count(col("moved")).alias("moved_out"),
    ]
}

/// Joins the counts at the end and at the start of each period, with 0 for
/// a department absent at one end.
fn join_counts(at_end: LazyFrame, at_start: LazyFrame) -> LazyFrame {
    let on = PERIOD_KEYS.map(col);
    at_end
        .join(at_start, on.clone(), on, join_args(JoinType::Full))
        .with_columns(COUNT_COLUMNS.map(|name| col(name).fill_null(lit(0i64))))
}

fn period_keys(department_column: &str) -> [Expr; 4] {
    [
        col("account_id"),
        col("period_start"),
        col("period_end"),
        col(department_column).alias("department_key"),
    ]
}

/// Builds the period click rate and its interval. Clicks in a period can
/// exceed the emails of the period (late clicks on earlier campaigns), so the
/// rate caps clicks at the emails sent and `clicks_exceed_sends` flags it.
fn period_rates() -> Vec<Expr> {
    let capped = smaller_of(col("delta_clicked"), col("delta_sent"));
    let [low, high] = wilson_bounds(capped.clone(), col("delta_sent"), Z_95);
    let completed = lit(1.0) - ratio(col("not_completed"), col("enrolled"));
    vec![
        capped.clone().alias("rate_clicked"),
        ratio(capped, col("delta_sent")).alias("period_click_rate"),
        low.alias("period_click_rate_low"),
        high.alias("period_click_rate_high"),
        col("delta_clicked")
            .gt(col("delta_sent"))
            .alias("clicks_exceed_sends"),
        completed.alias("completion_rate"),
    ]
}

fn smaller_of(a: Expr, b: Expr) -> Expr {
    when(a.clone().lt_eq(b.clone())).then(a).otherwise(b)
}

/// Joins the same department's values from the previous period of the
/// account, whose end is this period's start.
fn with_previous_period(rows: LazyFrame) -> LazyFrame {
    let previous = rows.clone().select([
        col("account_id"),
        col("department_key"),
        col("period_end").alias("period_start"),
        col("rate_clicked").alias("previous_clicked"),
        col("delta_sent").alias("previous_sent"),
        col("period_click_rate").alias("previous_period_click_rate"),
    ]);
    let on = [
        col("account_id"),
        col("department_key"),
        col("period_start"),
    ];
    rows.join(previous, on.clone(), on, join_args(JoinType::Left))
}

/// Builds the rate change against the previous period and its pooled
/// two-proportion z statistic. Both are null when either period sent no email.
fn change_test() -> [Expr; 2] {
    let change = col("period_click_rate") - col("previous_period_click_rate");
    let z = two_proportion_z_expr(
        col("previous_clicked"),
        col("previous_sent"),
        col("rate_clicked"),
        col("delta_sent"),
    );
    [change.alias("click_rate_change"), z.alias("change_z")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::*;

    const T1: &str = "2025-03-03T08:00:00Z";
    const T2: &str = "2025-03-10T08:00:00Z";
    const T3: &str = "2025-03-17T08:00:00Z";

    fn trend(rows: &[UserRow]) -> DataFrame {
        let params = AnalysisParams::default();
        let table = department_trend(&prepared(rows, &params), &params).unwrap();
        assert_all_finite(&table);
        table
    }

    fn department_row(table: &DataFrame, department: &str) -> DataFrame {
        let rows = rows_where(table, "department", department);
        assert_eq!(rows.height(), 1, "rows of {department}");
        rows
    }

    #[test]
    fn counter_reset_uses_later_value() {
        let rows = [
            user("a", T1, "u1").dept("IT").phishing(10, 2, 0),
            user("a", T1, "u2").dept("IT").phishing(10, 5, 1),
            user("a", T2, "u1")
                .dept("IT")
                .phishing(14, 3, 0)
                .training(4, 1, 0, 6, 2)
                .score(Some(80.0)),
            // Counters went down: the later values are the period's change.
            user("a", T2, "u2")
                .dept("IT")
                .phishing(3, 1, 0)
                .training(2, 2, 0, 0, 0)
                .score(Some(150.0)),
        ];
        let table = trend(&rows);
        let it = department_row(&table, "IT");

        assert_eq!(ints(&it, "resets"), [Some(1)]);
        // u1: 14 − 10 = 4 sent, 3 − 2 = 1 clicked; u2 reset: 3 sent, 1 clicked, 0 submitted.
        assert_eq!(ints(&it, "delta_sent"), [Some(7)]);
        assert_eq!(ints(&it, "delta_clicked"), [Some(2)]);
        assert_eq!(ints(&it, "delta_submitted"), [Some(0)]);

        assert_close(floats(&it, "period_click_rate")[0], 2.0 / 7.0, "2/7");
        // Wilson 2/7: s(n − s)/n = 10/7; √(10/7 + 0.960364720324) = 1.5456183710397042;
        // (2 + 1.920729440648 ∓ 1.959964 · 1.5456183710397042) / 10.841458881296.
        assert_close(
            floats(&it, "period_click_rate_low")[0],
            0.0822189232492834,
            "low",
        );
        assert_close(
            floats(&it, "period_click_rate_high")[0],
            0.641065550468946,
            "high",
        );

        assert_eq!(ints(&it, "users_start"), [Some(2)]);
        assert_eq!(ints(&it, "users_end"), [Some(2)]);
        assert_eq!(ints(&it, "users_tracked"), [Some(2)]);

        // Open items (1 + 2) + (2 + 0) = 5 of 4 + 6 + 2 + 0 = 12 enrolled: 1 − 5/12 = 7/12.
        assert_close(floats(&it, "completion_rate")[0], 7.0 / 12.0, "completion");
        // Scores 80 and 150 clamped to 100: mean 90.
        assert_close(floats(&it, "mean_average_score")[0], 90.0, "mean score");
        assert_eq!(
            floats(&it, "click_rate_change"),
            [None],
            "no previous period"
        );
    }

    #[test]
    fn moved_user_counts_in_later_department() {
        let rows = [
            user("a", T1, "u1").dept("Sales").phishing(10, 1, 0),
            user("a", T1, "u2").dept("Sales"),
            user("a", T1, "u3").dept("IT").phishing(5, 0, 0),
            user("a", T2, "u1").dept("it").phishing(20, 4, 0),
            user("a", T2, "u2").dept("Sales"),
            user("a", T2, "u4").dept("IT").phishing(3, 3, 0),
        ];
        let table = trend(&rows);
        assert_eq!(table.height(), 2);

        let sales = department_row(&table, "Sales");
        assert_eq!(ints(&sales, "users_start"), [Some(2)]);
        assert_eq!(ints(&sales, "users_end"), [Some(1)]);
        assert_eq!(ints(&sales, "moved_out"), [Some(1)]);
        assert_eq!(ints(&sales, "moved_in"), [Some(0)]);
        assert_eq!(
            ints(&sales, "delta_sent"),
            [Some(0)],
            "u1's emails go to IT"
        );
        assert_eq!(floats(&sales, "period_click_rate"), [None]);

        // "IT" is written twice and "it" once, so the display is "IT".
        let it = department_row(&table, "IT");
        assert_eq!(ints(&it, "users_start"), [Some(1)], "u3");
        assert_eq!(ints(&it, "users_end"), [Some(2)], "u1 and u4");
        assert_eq!(ints(&it, "moved_in"), [Some(1)], "u1");
        assert_eq!(ints(&it, "moved_out"), [Some(0)]);
        assert_eq!(ints(&it, "joined"), [Some(1)], "u4");
        assert_eq!(ints(&it, "left"), [Some(1)], "u3");
        assert_eq!(
            ints(&it, "users_tracked"),
            [Some(1)],
            "only u1 is at both ends"
        );
        // Only u1 is at both ends: 20 − 10 = 10 sent, 4 − 1 = 3 clicked. u4 joined, so
        // its 3 clicks are not part of the change.
        assert_eq!(ints(&it, "delta_sent"), [Some(10)]);
        assert_eq!(ints(&it, "delta_clicked"), [Some(3)]);
    }

    #[test]
    fn department_emptied_keeps_a_row() {
        let rows = [
            user("a", T1, "u1")
                .dept("Legal")
                .phishing(4, 1, 0)
                .score(Some(50.0)),
            user("a", T2, "u1").dept("IT").phishing(8, 2, 0),
        ];
        let table = trend(&rows);
        let legal = department_row(&table, "Legal");
        assert_eq!(ints(&legal, "users_start"), [Some(1)]);
        assert_eq!(ints(&legal, "users_end"), [Some(0)]);
        assert_eq!(ints(&legal, "moved_out"), [Some(1)]);
        assert_eq!(ints(&legal, "delta_sent"), [Some(0)]);
        assert_eq!(floats(&legal, "period_click_rate"), [None]);
        assert_eq!(floats(&legal, "completion_rate"), [None]);
        assert_eq!(floats(&legal, "mean_average_score"), [None]);
        assert_eq!(bools(&legal, "clicks_exceed_sends"), [Some(false)]);
    }

    #[test]
    fn change_tested_against_previous_period() {
        let rows = [
            user("a", T1, "u1").dept("IT"),
            user("a", T2, "u1").dept("IT").phishing(100, 10, 0),
            user("a", T3, "u1").dept("IT").phishing(200, 30, 0),
        ];
        let table = trend(&rows);
        assert_eq!(table.height(), 2);
        // Period 1: 10/100 = 0.1; period 2: 20/100 = 0.2.
        assert_eq!(floats(&table, "period_click_rate"), [Some(0.1), Some(0.2)]);
        assert_eq!(floats(&table, "click_rate_change")[0], None);
        assert_close(
            floats(&table, "previous_period_click_rate")[1],
            0.1,
            "previous",
        );
        assert_close(floats(&table, "click_rate_change")[1], 0.1, "0.2 − 0.1");
        // Pooled 30/200 = 0.15; √(0.15 · 0.85 · (1/100 + 1/100)) = 0.0504975246918104;
        // z = 0.1 / 0.0504975246918104 = 1.98029508595335; p = erfc(z / √2) = 0.0476703806561614.
        assert_close(floats(&table, "change_z")[1], 1.98029508595335, "z");
        assert_close(floats(&table, "change_p_value")[1], 0.0476703806561614, "p");
        assert_eq!(bools(&table, "change_significant"), [None, Some(true)]);
    }

    #[test]
    fn late_clicks_capped_at_sends() {
        let rows = [
            user("a", T1, "u1").dept("IT").phishing(10, 2, 0),
            user("a", T2, "u1").dept("IT").phishing(11, 5, 0),
        ];
        let table = trend(&rows);
        // 1 email and 3 new clicks: the rate uses min(3, 1) = 1 click.
        assert_eq!(ints(&table, "delta_clicked"), [Some(3)]);
        assert_eq!(floats(&table, "period_click_rate"), [Some(1.0)]);
        assert_eq!(bools(&table, "clicks_exceed_sends"), [Some(true)]);
    }

    #[test]
    fn single_snapshot_has_no_periods() {
        let table = trend(&[user("a", T1, "u1").dept("IT")]);
        assert_eq!(table.height(), 0);
        let names: Vec<&str> = table
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, TREND_COLUMNS);
    }
}
