//! Risk scores, click-rate rankings and department trends computed from the
//! users-summary snapshots. docs/metrics.md defines every column.
//!
//! The input is a `LazyFrame` with one row per user per snapshot, as the
//! snapshot store writes it. Every computation is per `account_id`.
//! [`analyze`] builds all four tables, and [`summarize`] condenses them
//! for the terminal. The table functions are public so that each can be
//! tested on its own: they take the output of [`prepare`].

mod group_rates;
pub mod incremental;
mod normalize;
mod params;
mod periods;
mod prepare;
mod repeat;
mod stats;
mod summary;
mod trend;
mod user_risk;

#[cfg(test)]
pub(crate) mod test_support;

use polars::prelude::*;

pub use group_rates::{
    ACCOUNT_DIMENSION, DIMENSIONS, GROUP_RATES_COLUMNS, click_rank, group_rates,
};
pub use incremental::{PieceCache, PieceStats, StoreAnalysis, analyze_store};
pub use normalize::{NONE_LABEL, attach_values, clean_spelling, normalize_key, value_mapping};
pub use params::{
    AnalysisParams, DEFAULT_SMOOTHING_STRENGTH, Every, ParamsError, RiskWeights,
    WEIGHT_SUM_TOLERANCE,
};
pub use periods::snapshot_periods;
pub use prepare::{OVERDUE_CAP, PreparedSnapshots, prepare};
pub use repeat::{MIN_REPEAT_PERIODS, REPEAT_COLUMNS, repeat_clickers};
pub use stats::{SIGNIFICANCE_LEVEL, Z_95, two_proportion_z, two_sided_p_value, wilson_interval};
pub use summary::{
    AccountSummary, DepartmentRisk, Summary, TOP_DEPARTMENTS, render_summary, summarize,
};
pub use trend::{TREND_COLUMNS, department_trend};
pub use user_risk::{BAND_BOUNDS, SCORE_DECIMALS, USER_RISK_COLUMNS, user_risk};

/// The four report tables of one analysis run.
#[derive(Debug, Clone)]
pub struct ReportTables {
    pub user_risk: DataFrame,
    pub group_rates: DataFrame,
    pub department_trend: DataFrame,
    pub repeat_clickers: DataFrame,
}

/// Builds the four report tables from the snapshot rows.
///
/// The input is scanned once: [`prepare`] collects the rows in range, and
/// every table is built from them.
pub fn analyze(snapshots: LazyFrame, params: &AnalysisParams) -> anyhow::Result<ReportTables> {
    let prepared = prepare(snapshots, params)?;
    let tables = ReportTables {
        user_risk: user_risk(&prepared, params)?,
        group_rates: group_rates(&prepared, params)?,
        department_trend: department_trend(&prepared, params)?,
        repeat_clickers: repeat_clickers(&prepared, params)?,
    };
    tracing::debug!(
        users = tables.user_risk.height(),
        groups = tables.group_rates.height(),
        trend_rows = tables.department_trend.height(),
        repeat_clickers = tables.repeat_clickers.height(),
        "built report tables"
    );
    Ok(tables)
}

/// Returns join arguments that coalesce the key columns and keep the order of
/// the left rows.
pub(crate) fn join_args(join_type: JoinType) -> JoinArgs {
    JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(join_type).with_coalesce(JoinCoalesce::CoalesceColumns)
    }
}

/// Returns `expr` evaluated per partition of the named columns. It builds
/// `Expr::Over` directly because `Expr::over` returns a `Result` whose only
/// error is an empty partition list.
pub(crate) fn over(expr: Expr, partition: &[&str]) -> Expr {
    Expr::Over {
        function: std::sync::Arc::new(expr),
        partition_by: partition.iter().map(|name| col(*name)).collect(),
        order_by: None,
        mapping: WindowMapping::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    const T: [&str; 3] = [
        "2025-03-03T08:00:00Z",
        "2025-03-10T08:00:00Z",
        "2025-03-17T08:00:00Z",
    ];

    /// Rows with zero sends, broken counters, NaN and out-of-range scores and
    /// departments that appear and disappear.
    fn messy_rows() -> Vec<UserRow> {
        let mut rows = Vec::new();
        for (i, at) in T.iter().enumerate() {
            let i = i as i64;
            rows.push(
                user("a", at, "u1")
                    .dept("Sales")
                    .phishing(10 * i, i, i)
                    .score(Some(f64::NAN)),
            );
            rows.push(
                user("a", at, "u2")
                    .dept("sales ")
                    .phishing(5, 7, 9)
                    .score(Some(-5.0)),
            );
            rows.push(user("a", at, "u3").department(None).training(0, 0, 0, 0, 0));
            rows.push(
                user("b", at, "v1")
                    .dept("Ops")
                    .phishing(0, 0, 0)
                    .groups(&["Red"]),
            );
        }
        rows.push(user("a", T[0], "u4").dept("Legal").phishing(3, 1, 0));
        rows
    }

    fn assert_tables_finite(tables: &ReportTables) {
        assert_all_finite(&tables.user_risk);
        assert_all_finite(&tables.group_rates);
        assert_all_finite(&tables.department_trend);
        assert_all_finite(&tables.repeat_clickers);
    }

    #[test]
    fn analyze_messy_input_stays_finite() {
        let tables = analyze(snapshot_frame(&messy_rows()), &AnalysisParams::default()).unwrap();
        assert_tables_finite(&tables);
        assert_eq!(
            tables.user_risk.height(),
            4,
            "three users of a and one of b"
        );
        // A NaN score is treated as missing, so it is filled like a null.
        let u1 = rows_where(&tables.user_risk, "user_id", "u1");
        assert_eq!(floats(&u1, "average_score"), [None]);
        assert_eq!(bools(&u1, "score_out_of_range"), [Some(false)]);
        // Legal exists only at the first snapshot, so it has a first-period row.
        let legal = rows_where(&tables.department_trend, "department", "Legal");
        assert_eq!(ints(&legal, "left"), [Some(1)]);
        // u1 clicked more in both periods (0 → 1 → 2).
        assert_eq!(
            strings(&tables.repeat_clickers, "user_id"),
            [Some("u1".into())]
        );
    }

    #[test]
    fn analyze_reads_parquet_snapshots() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("snapshots.parquet");
        let mut frame = snapshot_frame(&messy_rows()).collect().unwrap();
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();

        let scan = LazyFrame::scan_parquet(
            PlRefPath::new(path.to_str().unwrap()),
            ScanArgsParquet::default(),
        )
        .unwrap();
        let tables = analyze(scan, &AnalysisParams::default()).unwrap();
        assert_tables_finite(&tables);
        assert_eq!(tables.user_risk.height(), 4);
        let schema = tables.department_trend.schema();
        assert_eq!(schema.get("period_end"), Some(&prepare::utc_datetime()));
    }

    #[test]
    fn analyze_rejects_invalid_weights() {
        let params = AnalysisParams {
            weights: RiskWeights {
                click: 0.5,
                ..RiskWeights::default()
            },
            ..AnalysisParams::default()
        };
        let error = analyze(snapshot_frame(&messy_rows()), &params).unwrap_err();
        assert!(error.to_string().contains("click 0.5"), "{error}");
    }
}
