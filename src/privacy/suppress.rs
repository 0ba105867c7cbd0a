//! Suppression of small groups, so that no published group rate describes
//! fewer than `K` people.

use polars::prelude::*;

use crate::analysis::click_rank;

/// Columns of `department_trend` that describe the previous period, which
/// must go when that period's row was suppressed.
const PREVIOUS_PERIOD_COLUMNS: [&str; 5] = [
    "previous_period_click_rate",
    "click_rate_change",
    "change_z",
    "change_p_value",
    "change_significant",
];

/// Removes the `group_rates` rows with fewer than `min_users` users and
/// ranks the rest again, so that no rank gap hints at a removed group.
pub fn suppress_group_rates(table: &DataFrame, min_users: u32) -> PolarsResult<DataFrame> {
    table
        .clone()
        .lazy()
        .filter(col("users").gt_eq(lit(i64::from(min_users))))
        .with_column(click_rank())
        .collect()
}

/// Removes the `department_trend` rows of small departments.
///
/// A row is kept when the department had at least `min_users` users at the
/// end of the period, at least `min_users` tracked users (the users its
/// deltas come from), and either no user or at least `min_users` at the
/// start. A kept row whose previous period was removed loses its
/// comparison with that period, because the change would reveal the
/// removed rate.
pub fn suppress_department_trend(table: &DataFrame, min_users: u32) -> PolarsResult<DataFrame> {
    let k = lit(i64::from(min_users));
    let kept = col("users_end")
        .gt_eq(k.clone())
        .and(col("users_tracked").gt_eq(k.clone()))
        .and(
            col("users_start")
                .eq(lit(0i64))
                .or(col("users_start").gt_eq(k)),
        );
    let removed_ends = table.clone().lazy().filter(kept.clone().not()).select([
        col("account_id"),
        col("department"),
        col("period_end").alias("period_start"),
        lit(true).alias("previous_removed"),
    ]);
    let keys = [col("account_id"), col("department"), col("period_start")];
    let cleared: Vec<Expr> = PREVIOUS_PERIOD_COLUMNS
        .iter()
        .map(|name| {
            when(col("previous_removed").is_null())
                .then(col(*name))
                .otherwise(lit(NULL))
                .alias(*name)
        })
        .collect();
    let columns: Vec<Expr> = table
        .get_column_names()
        .iter()
        .map(|n| col(n.as_str()))
        .collect();
    table
        .clone()
        .lazy()
        .filter(kept)
        .join(
            removed_ends,
            keys.clone(),
            keys,
            crate::analysis::join_args(JoinType::Left),
        )
        .with_columns(cleared)
        .select(columns)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::{bools, floats, ints, strings};

    #[test]
    fn small_groups_removed_and_reranked() {
        let table = df!(
            "account_id" => ["a", "a", "a", "a"],
            "dimension" => ["department", "department", "department", "account"],
            "value" => ["Økonomi", "IT", "Salg", "a"],
            "users" => [2i64, 5, 7, 14],
            "click_rate_low" => [Some(0.5), Some(0.2), Some(0.1), Some(0.15)],
            "rank" => [1i64, 2, 3, 1],
        )
        .unwrap();
        let out = suppress_group_rates(&table, 5).unwrap();
        assert_eq!(
            strings(&out, "value"),
            [Some("IT".into()), Some("Salg".into()), Some("a".into())]
        );
        assert_eq!(
            ints(&out, "rank"),
            [Some(1), Some(2), Some(1)],
            "IT moves up to rank 1"
        );
    }

    /// Rows of one department over three periods, with the users at the
    /// start, at the end and tracked.
    fn trend(users: [(i64, i64, i64); 3]) -> DataFrame {
        let times = ["t0", "t1", "t2", "t3"];
        df!(
            "account_id" => ["a", "a", "a"],
            "department" => ["Økonomi", "Økonomi", "Økonomi"],
            "period_start" => &times[0..3],
            "period_end" => &times[1..4],
            "users_start" => users.map(|u| u.0),
            "users_end" => users.map(|u| u.1),
            "users_tracked" => users.map(|u| u.2),
            "period_click_rate" => [0.1, 0.2, 0.3],
            "previous_period_click_rate" => [None, Some(0.1), Some(0.2)],
            "click_rate_change" => [None, Some(0.1), Some(0.1)],
            "change_z" => [None, Some(1.0), Some(1.5)],
            "change_p_value" => [None, Some(0.3), Some(0.1)],
            "change_significant" => [None, Some(false), Some(false)],
        )
        .unwrap()
    }

    #[test]
    fn small_periods_removed_with_their_comparison() {
        // The middle period has only 3 tracked users, so it goes, and the
        // last period may no longer show its change against it.
        let out = suppress_department_trend(&trend([(6, 6, 6), (6, 8, 3), (8, 8, 8)]), 5).unwrap();
        assert_eq!(
            strings(&out, "period_end"),
            [Some("t1".into()), Some("t3".into())]
        );
        assert_eq!(floats(&out, "previous_period_click_rate"), [None, None]);
        assert_eq!(bools(&out, "change_significant"), [None, None]);
        assert_eq!(
            out.get_column_names(),
            trend([(0, 0, 0); 3]).get_column_names()
        );
    }

    #[test]
    fn new_department_kept_small_start_removed() {
        // Period 1 starts empty and is kept. Period 2 starts with 2 users
        // and is removed, so period 3 loses its change against period 2.
        let out = suppress_department_trend(&trend([(0, 5, 5), (2, 6, 5), (6, 6, 6)]), 5).unwrap();
        assert_eq!(
            strings(&out, "period_end"),
            [Some("t1".into()), Some("t3".into())]
        );
        assert_eq!(floats(&out, "click_rate_change"), [None, None]);
    }

    #[test]
    fn large_departments_unchanged() {
        let input = trend([(6, 6, 6), (6, 6, 6), (6, 6, 6)]);
        let out = suppress_department_trend(&input, 5).unwrap();
        assert!(out.equals_missing(&input), "{out}");
    }
}
