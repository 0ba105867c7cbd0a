//! Per-user risk scores on the latest snapshot of each account.

use polars::prelude::*;

use super::over;
use super::params::{AnalysisParams, RiskWeights};
use super::prepare::{PreparedSnapshots, latest_snapshot_rows};
use super::stats::ratio;

/// Decimal places of the points and the risk score. Rounding removes
/// floating-point noise (100 · 0.3 is 30.000000000000004) so that equal
/// scores share a rank and a score shown as 25 is banded "medium".
pub const SCORE_DECIMALS: u32 = 9;

/// Upper bounds (exclusive) of the risk bands "low", "medium" and "high".
/// Scores from the last bound up are "critical".
pub const BAND_BOUNDS: [f64; 3] = [25.0, 50.0, 75.0];

/// Columns of the `user_risk` table, in order.
pub const USER_RISK_COLUMNS: [&str; 47] = [
    "account_id",
    "snapshot_at",
    "user_id",
    "email",
    "name",
    "department",
    "branch_name",
    "manager",
    "country",
    "phishing_campaigns",
    "emails_sent",
    "links_clicked",
    "data_submitted",
    "sent",
    "clicked",
    "submitted",
    "click_rate",
    "submit_rate",
    "account_click_rate",
    "account_submit_rate",
    "click_rate_smoothed",
    "submit_rate_smoothed",
    "enrolled_courses",
    "not_completed_courses",
    "overdue_courses",
    "enrolled_materials",
    "not_completed_materials",
    "enrolled",
    "not_completed",
    "training_gap",
    "training_gap_filled",
    "overdue",
    "average_score",
    "score_gap",
    "score_gap_filled",
    "click_points",
    "submit_points",
    "training_points",
    "overdue_points",
    "score_points",
    "risk_score",
    "risk_band",
    "risk_rank",
    "data_issue",
    "training_issue",
    "score_out_of_range",
    "counters_missing",
];

/// Builds the `user_risk` table: one row per account and user of the latest
/// snapshot of the account, sorted by account, rank and user.
pub fn user_risk(
    prepared: &PreparedSnapshots,
    params: &AnalysisParams,
) -> anyhow::Result<DataFrame> {
    params.validate()?;
    let table = scored_latest_rows(prepared.lazy(), params)
        .select(USER_RISK_COLUMNS.map(col))
        .sort(
            ["account_id", "risk_rank", "user_id"],
            SortMultipleOptions::default(),
        )
        .collect()?;
    Ok(table)
}

/// Adds the rates, components, points, score, band and rank to the rows of
/// the latest snapshot of each account. All prepared columns are kept.
pub(crate) fn scored_latest_rows(prepared: LazyFrame, params: &AnalysisParams) -> LazyFrame {
    latest_snapshot_rows(prepared)
        .with_columns(observed_rates())
        .with_columns(smoothed_rates(params.smoothing_strength))
        .with_columns(gaps())
        .with_columns(filled_gaps())
        .with_columns(points(&params.weights))
        .with_column(risk_score())
        .with_columns([risk_band(), risk_rank()])
}

/// Returns `expr` evaluated per account.
fn per_account(expr: Expr) -> Expr {
    over(expr, &["account_id"])
}

/// Builds the per-user rates and the pooled account rates that serve as the
/// priors of the smoothed rates (0 when the account sent no email).
fn observed_rates() -> Vec<Expr> {
    let pooled = |count: &str| {
        let total = per_account(col(count).sum());
        ratio(total, per_account(col("sent").sum())).fill_null(lit(0.0))
    };
    vec![
        ratio(col("clicked"), col("sent")).alias("click_rate"),
        ratio(col("submitted"), col("sent")).alias("submit_rate"),
        pooled("clicked").alias("account_click_rate"),
        pooled("submitted").alias("account_submit_rate"),
    ]
}

/// Builds `(count + m·p) / (sent + m)`, which moves a rate from few emails
/// toward the account rate `p`. With `m = 0` and no email sent the result is `p`.
fn smoothed(count: &str, prior: &str, m: f64) -> Expr {
    let trials = col("sent").cast(DataType::Float64) + lit(m);
    let successes = col(count).cast(DataType::Float64) + lit(m) * col(prior);
    when(trials.clone().gt(lit(0.0)))
        .then(successes / trials)
        .otherwise(col(prior))
}

fn smoothed_rates(m: f64) -> [Expr; 2] {
    [
        smoothed("clicked", "account_click_rate", m).alias("click_rate_smoothed"),
        smoothed("submitted", "account_submit_rate", m).alias("submit_rate_smoothed"),
    ]
}

fn gaps() -> [Expr; 2] {
    [
        ratio(col("not_completed"), col("enrolled")).alias("training_gap"),
        (lit(1.0) - col("score_clamped") / lit(100.0)).alias("score_gap"),
    ]
}

/// Builds `name_filled`: the value, or the account mean of the non-null
/// values when it is null, or 0 when the whole account is null.
fn filled_with_account_mean(name: &str) -> Expr {
    let mean = per_account(col(name).mean()).fill_null(lit(0.0));
    col(name).fill_null(mean).alias(format!("{name}_filled"))
}

fn filled_gaps() -> [Expr; 2] {
    [
        filled_with_account_mean("training_gap"),
        filled_with_account_mean("score_gap"),
    ]
}

/// Builds the weighted components in points: `100 · weight · component`.
fn points(weights: &RiskWeights) -> [Expr; 5] {
    let weighted = |component: &str, weight: f64, name: &str| {
        (lit(100.0 * weight) * col(component))
            .round(SCORE_DECIMALS, RoundMode::HalfToEven)
            .alias(name)
    };
    [
        weighted("click_rate_smoothed", weights.click, "click_points"),
        weighted("submit_rate_smoothed", weights.submit, "submit_points"),
        weighted("training_gap_filled", weights.training, "training_points"),
        weighted("overdue", weights.overdue, "overdue_points"),
        weighted("score_gap_filled", weights.score, "score_points"),
    ]
}

fn risk_score() -> Expr {
    let total = col("click_points")
        + col("submit_points")
        + col("training_points")
        + col("overdue_points")
        + col("score_points");
    total
        .round(SCORE_DECIMALS, RoundMode::HalfToEven)
        .alias("risk_score")
}

fn risk_band() -> Expr {
    let score = col("risk_score");
    when(score.clone().lt(lit(BAND_BOUNDS[0])))
        .then(lit("low"))
        .when(score.clone().lt(lit(BAND_BOUNDS[1])))
        .then(lit("medium"))
        .when(score.lt(lit(BAND_BOUNDS[2])))
        .then(lit("high"))
        .otherwise(lit("critical"))
        .alias("risk_band")
}

/// Builds the rank of the score within the account: 1 for the highest, and
/// tied scores share the lowest rank of the tie ("min" ranking).
fn risk_rank() -> Expr {
    let options = RankOptions {
        method: RankMethod::Min,
        descending: true,
    };
    per_account(col("risk_score").rank(options, None))
        .cast(DataType::Int64)
        .alias("risk_rank")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::*;

    const T1: &str = "2025-03-03T08:00:00Z";
    const T2: &str = "2025-03-10T08:00:00Z";

    fn risk(rows: &[UserRow], params: &AnalysisParams) -> DataFrame {
        let table = user_risk(&prepared(rows, params), params).unwrap();
        assert_all_finite(&table);
        table
    }

    /// Returns the table row of `user` as a one-row frame.
    fn row_of(table: &DataFrame, user: &str) -> DataFrame {
        let row = rows_where(table, "user_id", user);
        assert_eq!(row.height(), 1, "rows of {user}");
        row
    }

    #[test]
    fn smoothing_pulls_toward_account_rate() {
        let rows = [
            user("a", T1, "u1").phishing(10, 5, 0),
            user("a", T1, "u2").phishing(30, 3, 1),
            user("a", T1, "u3").phishing(0, 0, 0),
        ];
        let table = risk(&rows, &AnalysisParams::default());

        // p_click = (5 + 3 + 0) / (10 + 30 + 0) = 0.2; p_submit = 1 / 40 = 0.025; m = 4.
        let u1 = row_of(&table, "u1");
        assert_close(floats(&u1, "account_click_rate")[0], 0.2, "p_click");
        assert_close(floats(&u1, "click_rate")[0], 0.5, "u1 raw rate 5/10");
        // (5 + 4 · 0.2) / (10 + 4) = 5.8 / 14
        assert_close(
            floats(&u1, "click_rate_smoothed")[0],
            5.8 / 14.0,
            "u1 click",
        );
        // (0 + 4 · 0.025) / 14 = 0.1 / 14
        assert_close(
            floats(&u1, "submit_rate_smoothed")[0],
            0.1 / 14.0,
            "u1 submit",
        );
        // (3 + 0.8) / 34 = 3.8 / 34
        let u2 = row_of(&table, "u2");
        assert_close(
            floats(&u2, "click_rate_smoothed")[0],
            3.8 / 34.0,
            "u2 click",
        );
        // No email sent: (0 + 0.8) / 4 = 0.2, the account rate.
        let u3 = row_of(&table, "u3");
        assert_eq!(floats(&u3, "click_rate")[0], None);
        assert_close(floats(&u3, "click_rate_smoothed")[0], 0.2, "u3 click");
    }

    #[test]
    fn smoothing_strength_is_configurable() {
        let rows = [
            user("a", T1, "u1").phishing(10, 5, 0),
            user("a", T1, "u2").phishing(30, 3, 0),
            user("a", T1, "u3").phishing(0, 0, 0),
        ];
        // p_click = (5 + 3) / 40 = 0.2.
        let unsmoothed = AnalysisParams {
            smoothing_strength: 0.0,
            ..AnalysisParams::default()
        };
        let table = risk(&rows, &unsmoothed);
        // m = 0: the raw rate 5/10, and the account rate for the user without emails.
        let u1 = floats(&row_of(&table, "u1"), "click_rate_smoothed")[0];
        assert_close(u1, 0.5, "u1, m = 0");
        let u3 = floats(&row_of(&table, "u3"), "click_rate_smoothed")[0];
        assert_close(u3, 0.2, "u3, m = 0");

        let strong = AnalysisParams {
            smoothing_strength: 10.0,
            ..AnalysisParams::default()
        };
        let table = risk(&rows, &strong);
        // m = 10: (5 + 10 · 0.2) / (10 + 10) = 7 / 20 = 0.35.
        let u1 = floats(&row_of(&table, "u1"), "click_rate_smoothed")[0];
        assert_close(u1, 0.35, "u1, m = 10");
    }

    fn component_rows() -> [UserRow; 3] {
        [
            // Training gap (2 + 1) / (4 + 6) = 0.3; overdue min(5, 3) / 3 = 1; score gap 1 − 0.8.
            user("a", T1, "u1")
                .phishing(10, 2, 1)
                .training(4, 2, 5, 6, 1)
                .score(Some(80.0)),
            // Nothing enrolled and no score: both gaps take the account mean.
            user("a", T1, "u2").training(0, 0, 0, 0, 0).score(None),
            // Gap 2 / 2 = 1; overdue 1/3; score 150 clamps to 100, gap 0.
            user("a", T1, "u3")
                .phishing(10, 0, 0)
                .training(2, 2, 1, 0, 0)
                .score(Some(150.0)),
        ]
    }

    #[test]
    fn training_and_score_components() {
        let table = risk(&component_rows(), &AnalysisParams::default());
        let u1 = row_of(&table, "u1");
        assert_close(floats(&u1, "training_gap")[0], 0.3, "u1 training gap");
        assert_close(floats(&u1, "overdue")[0], 1.0, "u1 overdue");
        assert_close(floats(&u1, "score_gap")[0], 0.2, "u1 score gap");
        assert_eq!(bools(&u1, "score_out_of_range")[0], Some(false));

        // Account means: training (0.3 + 1.0) / 2 = 0.65, score (0.2 + 0.0) / 2 = 0.1.
        let u2 = row_of(&table, "u2");
        assert_eq!(floats(&u2, "training_gap")[0], None);
        assert_close(
            floats(&u2, "training_gap_filled")[0],
            0.65,
            "u2 filled training",
        );
        assert_eq!(floats(&u2, "score_gap")[0], None);
        assert_close(floats(&u2, "score_gap_filled")[0], 0.1, "u2 filled score");

        let u3 = row_of(&table, "u3");
        assert_close(floats(&u3, "training_gap")[0], 1.0, "u3 training gap");
        assert_close(floats(&u3, "overdue")[0], 1.0 / 3.0, "u3 overdue");
        assert_close(floats(&u3, "score_gap")[0], 0.0, "u3 clamped score gap");
        assert_eq!(bools(&u3, "score_out_of_range")[0], Some(true));
        assert_eq!(
            floats(&u3, "average_score")[0],
            Some(150.0),
            "raw score kept"
        );
    }

    #[test]
    fn risk_score_sums_weighted_components() {
        let table = risk(&component_rows(), &AnalysisParams::default());
        // p_click = 2 / 20 = 0.1, p_submit = 1 / 20 = 0.05, m = 4.
        // u1: click (2 + 0.4) / 14 · 30 = 72/14; submit (1 + 0.2) / 14 · 30 = 36/14;
        // training 15 · 0.3 = 4.5; overdue 10 · 1 = 10; score 15 · 0.2 = 3.
        let u1 = row_of(&table, "u1");
        assert_close(
            floats(&u1, "click_points")[0],
            72.0 / 14.0,
            "u1 click points",
        );
        assert_close(
            floats(&u1, "submit_points")[0],
            36.0 / 14.0,
            "u1 submit points",
        );
        assert_close(floats(&u1, "training_points")[0], 4.5, "u1 training points");
        assert_close(floats(&u1, "overdue_points")[0], 10.0, "u1 overdue points");
        assert_close(floats(&u1, "score_points")[0], 3.0, "u1 score points");
        // 108/14 + 17.5 = 25.2142857142857
        assert_close(
            floats(&u1, "risk_score")[0],
            108.0 / 14.0 + 17.5,
            "u1 score",
        );
        assert_eq!(strings(&u1, "risk_band")[0].as_deref(), Some("medium"));

        // u2: click 0.4 / 4 · 30 = 3; submit 0.2 / 4 · 30 = 1.5; training 15 · 0.65 = 9.75;
        // overdue 0; score 15 · 0.1 = 1.5; total 15.75.
        let u2 = row_of(&table, "u2");
        assert_close(floats(&u2, "risk_score")[0], 15.75, "u2 score");
        // u3: click 0.4 / 14 · 30 = 12/14; submit 0.2 / 14 · 30 = 6/14; training 15;
        // overdue 10/3; score 0; total 18/14 + 15 + 10/3 = 19.6190476190476.
        let u3 = row_of(&table, "u3");
        assert_close(
            floats(&u3, "risk_score")[0],
            18.0 / 14.0 + 15.0 + 10.0 / 3.0,
            "u3 score",
        );

        assert_eq!(
            strings(&table, "user_id"),
            [Some("u1".into()), Some("u3".into()), Some("u2".into())]
        );
        assert_eq!(ints(&table, "risk_rank"), [Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn bands_at_bounds_and_ties() {
        let click_only = AnalysisParams {
            smoothing_strength: 0.0,
            weights: RiskWeights {
                click: 1.0,
                submit: 0.0,
                training: 0.0,
                overdue: 0.0,
                score: 0.0,
            },
            ..AnalysisParams::default()
        };

        // Click rates 0/4, 1/4, 2/4, 3/4, 4/4, 4/4 give scores 0, 25, 50, 75, 100, 100.
        let rows: Vec<UserRow> = [0, 1, 2, 3, 4, 4]
            .iter()
            .enumerate()
            .map(|(i, clicks)| user("a", T1, &format!("u{i}")).phishing(4, *clicks, 0))
            .collect();
        let table = risk(&rows, &click_only);
        let by_user = table
            .sort(["user_id"], SortMultipleOptions::default())
            .unwrap();
        let bands: Vec<Option<String>> = strings(&by_user, "risk_band");
        let expected = ["low", "medium", "high", "critical", "critical", "critical"];
        for (i, (band, expected_band)) in bands.iter().zip(expected).enumerate() {
            assert_eq!(band.as_deref(), Some(expected_band), "u{i}");
        }

        // Two users tie at 100 and share rank 1; the next score gets rank 3.
        assert_eq!(
            ints(&by_user, "risk_rank"),
            [Some(6), Some(5), Some(4), Some(3), Some(1), Some(1)]
        );
    }

    #[test]
    fn zero_sends_give_null_rates() {
        let rows = [user("a", T1, "u1"), user("a", T1, "u2")];
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(floats(&table, "click_rate"), [None, None]);
        assert_eq!(floats(&table, "submit_rate"), [None, None]);
        // The account sent nothing, so p = 0 and the smoothed rates are 0.
        assert_eq!(floats(&table, "account_click_rate"), [Some(0.0), Some(0.0)]);
        assert_eq!(
            floats(&table, "click_rate_smoothed"),
            [Some(0.0), Some(0.0)]
        );
    }

    #[test]
    fn clicks_above_sends_are_capped() {
        let rows = [user("a", T1, "u1").phishing(5, 8, 2)];
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(ints(&table, "links_clicked"), [Some(8)], "raw value kept");
        assert_eq!(ints(&table, "clicked"), [Some(5)]);
        assert_eq!(ints(&table, "submitted"), [Some(2)]);
        assert_close(floats(&table, "click_rate")[0], 1.0, "5 / 5");
        assert_eq!(bools(&table, "data_issue"), [Some(true)]);
    }

    #[test]
    fn submissions_above_clicks_count_as_clicks() {
        let rows = [
            user("a", T1, "u1").phishing(10, 2, 4),
            user("a", T1, "u2").phishing(3, 1, 5),
            user("a", T1, "u3").phishing(10, 2, 1),
        ];
        let table = risk(&rows, &AnalysisParams::default());
        let u1 = row_of(&table, "u1");
        assert_eq!(
            ints(&u1, "clicked"),
            [Some(4)],
            "a submission implies a click"
        );
        assert_eq!(ints(&u1, "submitted"), [Some(4)]);
        assert_eq!(bools(&u1, "data_issue"), [Some(true)]);
        // Submissions above sends: clicked = min(max(1, 5), 3) = 3, submitted = min(5, 3) = 3.
        let u2 = row_of(&table, "u2");
        assert_eq!(ints(&u2, "clicked"), [Some(3)]);
        assert_eq!(ints(&u2, "submitted"), [Some(3)]);
        let u3 = row_of(&table, "u3");
        assert_eq!(
            bools(&u3, "data_issue"),
            [Some(false)],
            "consistent counters"
        );
    }

    #[test]
    fn null_counters_count_as_zero() {
        let rows = [user("a", T1, "u1")
            .counter("emails_sent", None)
            .counter("links_clicked", Some(0))
            .counter("enrolled_courses", None)];
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(ints(&table, "emails_sent"), [None], "raw null kept");
        assert_eq!(ints(&table, "sent"), [Some(0)]);
        assert_eq!(bools(&table, "counters_missing"), [Some(true)]);
        assert_eq!(bools(&table, "data_issue"), [Some(false)]);
        assert_eq!(floats(&table, "training_gap"), [None]);
    }

    #[test]
    fn negative_counters_flagged_and_zeroed() {
        let rows = [user("a", T1, "u1")
            .phishing(-2, 0, 0)
            .training(2, -1, 0, 0, 0)];
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(ints(&table, "sent"), [Some(0)]);
        assert_eq!(bools(&table, "data_issue"), [Some(true)]);
        assert_eq!(bools(&table, "training_issue"), [Some(true)]);
        assert_close(floats(&table, "training_gap")[0], 0.0, "0 of 2 open");
    }

    #[test]
    fn all_null_scores_in_large_account() {
        let rows: Vec<UserRow> = (0..1200)
            .map(|i| {
                user("a", T1, &format!("u{i:04}"))
                    .phishing(2, i % 2, 0)
                    .score(None)
            })
            .collect();
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(table.height(), 1200);
        assert_eq!(table.column("score_gap").unwrap().null_count(), 1200);
        assert_eq!(table.column("score_gap_filled").unwrap().null_count(), 0);
        assert_eq!(table.column("risk_score").unwrap().null_count(), 0);
        // No score and nothing enrolled: both gaps fall back to 0 for everyone.
        for value in floats(&table, "score_gap_filled") {
            assert_eq!(value, Some(0.0));
        }
        for value in floats(&table, "training_gap_filled") {
            assert_eq!(value, Some(0.0));
        }
        // p_click = 600 / 2400 = 0.25; a user with 1 of 2 clicked:
        // click (1 + 1) / 6 · 30 = 10; submit 0; total 10.
        assert_close(floats(&table, "risk_score")[0], 10.0, "top score");
    }

    #[test]
    fn only_latest_snapshot_per_account() {
        let rows = [
            user("a", T1, "u1").phishing(1, 1, 0),
            user("a", T2, "u1").phishing(2, 1, 0),
            user("a", T2, "u2"),
            user("b", T1, "u9").phishing(4, 0, 0),
        ];
        let table = risk(&rows, &AnalysisParams::default());
        assert_eq!(table.height(), 3);
        let a = rows_where(&table, "account_id", "a");
        assert_eq!(a.height(), 2, "u1 and u2 at the later snapshot");
        assert_eq!(ints(&row_of(&a, "u1"), "sent"), [Some(2)]);
        let b = rows_where(&table, "account_id", "b");
        assert_eq!(
            strings(&b, "user_id"),
            [Some("u9".into())],
            "b's latest is T1"
        );
        assert_eq!(ints(&b, "risk_rank"), [Some(1)], "ranks are per account");
    }

    #[test]
    fn date_range_limits_snapshots() {
        let rows = [
            user("a", T1, "u1").phishing(1, 1, 0),
            user("a", T2, "u1").phishing(2, 1, 0),
        ];
        let params = AnalysisParams {
            until: Some("2025-03-05T00:00:00Z".parse().unwrap()),
            ..AnalysisParams::default()
        };
        let table = risk(&rows, &params);
        assert_eq!(ints(&table, "sent"), [Some(1)], "T2 is after until");
    }

    #[test]
    fn output_columns_in_order() {
        let table = risk(&[user("a", T1, "u1")], &AnalysisParams::default());
        let names: Vec<&str> = table
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, USER_RISK_COLUMNS);
    }
}
