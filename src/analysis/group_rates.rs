//! Pooled click and submission rates per department, branch, group, country,
//! manager and account on the latest snapshot, with Wilson intervals and a
//! ranking.

use polars::prelude::*;

use super::normalize::{attach_values, value_mapping};
use super::over;
use super::params::AnalysisParams;
use super::prepare::PreparedSnapshots;
use super::stats::{Z_95, ratio, wilson_bounds};
use super::user_risk::scored_latest_rows;

/// Dimensions of `group_rates`, as written in its `dimension` column.
pub const DIMENSIONS: [&str; 6] = [
    "department",
    "branch",
    "group",
    "country",
    "manager",
    ACCOUNT_DIMENSION,
];

/// The dimension with one group per account: the whole account pooled. Its
/// rows are ranked across accounts, so that a service provider can compare
/// customers.
pub const ACCOUNT_DIMENSION: &str = "account";

/// Input column of each dimension other than `group`, which comes from the
/// `name` field of the `groups` list.
pub(crate) const SCALAR_DIMENSIONS: [(&str, &str); 4] = [
    ("department", "department"),
    ("branch", "branch_name"),
    ("country", "country"),
    ("manager", "manager"),
];

/// Columns of the `group_rates` table, in order.
pub const GROUP_RATES_COLUMNS: [&str; 17] = [
    "account_id",
    "snapshot_at",
    "dimension",
    "value",
    "key",
    "users",
    "sent",
    "clicked",
    "submitted",
    "click_rate",
    "click_rate_low",
    "click_rate_high",
    "submit_rate",
    "submit_rate_low",
    "submit_rate_high",
    "mean_risk_score",
    "rank",
];

/// Columns that each member row carries into the aggregation.
const MEMBER_COLUMNS: [&str; 5] = ["snapshot_at", "sent", "clicked", "submitted", "risk_score"];

/// Builds the `group_rates` table: one row per account, dimension and
/// normalised value on the latest snapshot of the account. A user counts
/// once in each group they belong to. Sorted by account, dimension, rank
/// (unranked last) and value.
pub fn group_rates(
    prepared: &PreparedSnapshots,
    params: &AnalysisParams,
) -> anyhow::Result<DataFrame> {
    params.validate()?;
    let mapping = value_mapping(dimension_values(prepared.lazy(), &[])?)?;
    group_rates_with_mapping(prepared, params, mapping)
}

/// Builds the `group_rates` table with the grouping keys and display values
/// of `mapping` (from [`value_mapping`] over every prepared row in range),
/// so that `prepared` need only hold the latest snapshot of each account.
pub(crate) fn group_rates_with_mapping(
    prepared: &PreparedSnapshots,
    params: &AnalysisParams,
    mapping: LazyFrame,
) -> anyhow::Result<DataFrame> {
    let attached = attach_values(
        dimension_values(scored_latest_rows(prepared.lazy(), params), &MEMBER_COLUMNS)?,
        mapping,
    )
    .collect()?
    .lazy();
    // A user has one row per account in the latest rows, so only two group
    // spellings with one key can count a user twice in a group.
    let is_group = col("dimension").eq(lit("group"));
    let groups = attached
        .clone()
        .filter(is_group.clone())
        .unique_stable_generic(
            Some(
                ["account_id", "dimension", "key", "user_id"]
                    .map(col)
                    .to_vec(),
            ),
            UniqueKeepStrategy::First,
        );
    let members = concat(
        [attached.filter(is_group.not()), groups],
        UnionArgs::default(),
    )?;
    let order = SortMultipleOptions::default().with_nulls_last(true);
    let table = members
        .group_by(["account_id", "snapshot_at", "dimension", "key"].map(col))
        .agg(group_totals())
        .with_columns(group_statistics())
        .with_column(click_rank())
        .select(GROUP_RATES_COLUMNS.map(col))
        .sort(["account_id", "dimension", "rank", "value"], order)
        .collect()?;
    Ok(table)
}

/// Builds one row per user and dimension value: `account_id`, `user_id`,
/// `dimension`, `raw` and the `carry` columns. A user with no group gets one
/// `group` row with a null value, and every user gets one `account` row
/// whose value is the account id.
pub(crate) fn dimension_values(frame: LazyFrame, carry: &[&str]) -> PolarsResult<LazyFrame> {
    let base: Vec<Expr> = ["account_id", "user_id"]
        .iter()
        .chain(carry)
        .map(|name| col(*name))
        .collect();
    let tagged = |dimension: &str, raw: Expr| {
        let mut columns = base.clone();
        columns.extend([lit(dimension).alias("dimension"), raw.alias("raw")]);
        columns
    };
    let mut parts: Vec<LazyFrame> = SCALAR_DIMENSIONS
        .iter()
        .map(|(dimension, column)| frame.clone().select(tagged(dimension, col(*column))))
        .collect();
    parts.push(group_names(
        frame.clone().select(tagged("group", col("groups"))),
    ));
    parts.push(frame.select(tagged(ACCOUNT_DIMENSION, col("account_id"))));
    concat(parts, UnionArgs::default())
}

/// Replaces the list of groups in the `raw` column with one row per
/// membership whose `raw` is the group's name. A user without groups keeps
/// one row with a null name.
pub(crate) fn group_names(frame: LazyFrame) -> LazyFrame {
    let explode = ExplodeOptions {
        empty_as_null: true,
        keep_nulls: true,
    };
    frame.explode(cols(["raw"]), explode).with_column(
        col("raw")
            .struct_()
            .field_by_name("name")
            .cast(DataType::String)
            .alias("raw"),
    )
}

fn group_totals() -> Vec<Expr> {
    vec![
        col("value").first(),
        len().cast(DataType::Int64).alias("users"),
        col("sent").sum(),
        col("clicked").sum(),
        col("submitted").sum(),
        col("risk_score").mean().alias("mean_risk_score"),
    ]
}

fn group_statistics() -> Vec<Expr> {
    let [click_low, click_high] = wilson_bounds(col("clicked"), col("sent"), Z_95);
    let [submit_low, submit_high] = wilson_bounds(col("submitted"), col("sent"), Z_95);
    vec![
        ratio(col("clicked"), col("sent")).alias("click_rate"),
        click_low.alias("click_rate_low"),
        click_high.alias("click_rate_high"),
        ratio(col("submitted"), col("sent")).alias("submit_rate"),
        submit_low.alias("submit_rate_low"),
        submit_high.alias("submit_rate_high"),
    ]
}

/// Builds the rank by `click_rate_low`, highest first, within account and
/// dimension, and across accounts for the `account` dimension. Ties share
/// the lowest rank, and groups without emails (null lower bound) get a null
/// rank. Works on any frame with `account_id`, `dimension` and
/// `click_rate_low`, so a filtered `group_rates` can be ranked again.
pub fn click_rank() -> Expr {
    let options = RankOptions {
        method: RankMethod::Min,
        descending: true,
    };
    let rank_within =
        |partition: &[&str]| over(col("click_rate_low").rank(options, None), partition);
    when(col("dimension").eq(lit(ACCOUNT_DIMENSION)))
        .then(rank_within(&["dimension"]))
        .otherwise(rank_within(&["account_id", "dimension"]))
        .cast(DataType::Int64)
        .alias("rank")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::normalize::NONE_LABEL;
    use crate::analysis::params::RiskWeights;
    use crate::analysis::test_support::*;

    const T1: &str = "2025-03-03T08:00:00Z";
    const ARHUS_NFC: &str = "\u{00C5}rhus";
    const ARHUS_NFD: &str = "A\u{030A}rhus";

    /// Parameters that make the risk score 100 · the raw click rate.
    fn click_only() -> AnalysisParams {
        AnalysisParams {
            smoothing_strength: 0.0,
            weights: RiskWeights {
                click: 1.0,
                submit: 0.0,
                training: 0.0,
                overdue: 0.0,
                score: 0.0,
            },
            ..AnalysisParams::default()
        }
    }

    fn rates(rows: &[UserRow], params: &AnalysisParams) -> DataFrame {
        let table = group_rates(&prepared(rows, params), params).unwrap();
        assert_all_finite(&table);
        table
    }

    /// Returns the row of `value` in `dimension`, asserting there is exactly one.
    fn group_row(table: &DataFrame, dimension: &str, value: &str) -> DataFrame {
        let rows = rows_where(&rows_where(table, "dimension", dimension), "value", value);
        assert_eq!(rows.height(), 1, "rows of {dimension} = {value:?}");
        rows
    }

    fn spelling_rows() -> Vec<UserRow> {
        vec![
            user("a", T1, "u1").dept("Sales").phishing(10, 2, 0),
            user("a", T1, "u2").dept(" sales ").phishing(10, 3, 0),
            user("a", T1, "u3").dept("SALES"),
            user("a", T1, "u8").dept("Sales"),
            user("a", T1, "u4").department(None).phishing(4, 1, 0),
            user("a", T1, "u5").dept("").phishing(4, 0, 0),
            user("a", T1, "u6").dept(ARHUS_NFC).phishing(5, 5, 1),
            user("a", T1, "u7").dept(ARHUS_NFD).phishing(5, 0, 0),
        ]
    }

    #[test]
    fn department_spellings_group_together() {
        let table = rates(&spelling_rows(), &AnalysisParams::default());
        let departments = rows_where(&table, "dimension", "department");
        assert_eq!(departments.height(), 3, "Sales, Århus and (none)");

        // "Sales" is written twice, "sales" and "SALES" once each.
        let sales = group_row(&table, "department", "Sales");
        assert_eq!(ints(&sales, "users"), [Some(4)]);
        assert_eq!(ints(&sales, "sent"), [Some(20)]);
        assert_eq!(ints(&sales, "clicked"), [Some(5)]);
        assert_close(floats(&sales, "click_rate")[0], 0.25, "Sales 5/20");
        // Wilson 5/20: (6.920729440648 ∓ 4.253783303017678) / 23.841458881296.
        assert_close(
            floats(&sales, "click_rate_low")[0],
            0.111861700699976,
            "Sales low",
        );
        assert_close(
            floats(&sales, "click_rate_high")[0],
            0.468700879392589,
            "Sales high",
        );

        // NFC and NFD spellings are one group, shown in NFC.
        let arhus = group_row(&table, "department", ARHUS_NFC);
        assert_eq!(ints(&arhus, "users"), [Some(2)]);
        assert_eq!(ints(&arhus, "submitted"), [Some(1)]);
        assert_eq!(strings(&arhus, "key")[0].as_deref(), Some("\u{00E5}rhus"));
        // Wilson 5/10: s(n − s)/n = 2.5; √(2.5 + 0.960364720324) = 1.8602055586208746;
        // (5 + 1.920729440648 ∓ 1.959964 · 1.8602055586208746) / 13.841458881296.
        assert_close(
            floats(&arhus, "click_rate_low")[0],
            0.236593089011479,
            "Århus low",
        );
        assert_close(
            floats(&arhus, "click_rate_high")[0],
            0.763406910988521,
            "Århus high",
        );
        // Submissions 1/10: √(0.9 + 0.960364720324) = 1.3639518761026725;
        // (1 + 1.920729440648 ∓ 1.959964 · 1.3639518761026725) / 13.841458881296.
        assert_close(floats(&arhus, "submit_rate")[0], 0.1, "Århus submit 1/10");
        assert_close(
            floats(&arhus, "submit_rate_low")[0],
            0.0178762128960740,
            "Århus submit low",
        );
        assert_close(
            floats(&arhus, "submit_rate_high")[0],
            0.404150029524772,
            "Århus submit high",
        );

        // Null and empty departments are one group.
        let none = group_row(&table, "department", NONE_LABEL);
        assert_eq!(ints(&none, "users"), [Some(2)]);
        assert_eq!(ints(&none, "sent"), [Some(8)]);
        // Wilson 1/8: √(0.875 + 0.960364720324) = 1.3547563324539214;
        // (1 + 1.920729440648 − 1.959964 · 1.3547563324539214) / 11.841458881296.
        assert_close(
            floats(&none, "click_rate_low")[0],
            0.0224174911999719,
            "(none) low",
        );

        // Ranked by lower bound: Århus 0.237, Sales 0.112, (none) 0.022.
        assert_eq!(
            strings(&departments, "value"),
            [
                Some(ARHUS_NFC.into()),
                Some("Sales".into()),
                Some(NONE_LABEL.into())
            ]
        );
        assert_eq!(ints(&departments, "rank"), [Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn display_tie_takes_smallest_spelling() {
        let rows = [
            user("a", T1, "u1").dept("sales"),
            user("a", T1, "u2").dept("Sales"),
            user("a", T1, "u3").dept("SALES "),
        ];
        let table = rates(&rows, &AnalysisParams::default());
        // One row each; "SALES" < "Sales" < "sales" by code point.
        group_row(&table, "department", "SALES");
    }

    #[test]
    fn null_keys_form_one_group() {
        let rows = [
            user("a", T1, "u1").department(None).phishing(2, 1, 0),
            user("a", T1, "u2").department(None).phishing(2, 0, 0),
            user("a", T1, "u3").dept("   ").phishing(2, 0, 0),
            user("a", T1, "u4").dept("").phishing(2, 1, 0),
            user("a", T1, "u5").department(None),
        ];
        let table = rates(&rows, &AnalysisParams::default());
        let named = DIMENSIONS.iter().filter(|d| **d != ACCOUNT_DIMENSION);
        for dimension in named {
            let rows = rows_where(&table, "dimension", dimension);
            assert_eq!(rows.height(), 1, "{dimension}: only the (none) group");
            assert_eq!(
                strings(&rows, "value")[0].as_deref(),
                Some(NONE_LABEL),
                "{dimension}"
            );
            assert_eq!(
                ints(&rows, "users"),
                [Some(5)],
                "{dimension}: each user once"
            );
            assert_eq!(ints(&rows, "sent"), [Some(8)], "{dimension}");
            assert_eq!(ints(&rows, "clicked"), [Some(2)], "{dimension}");
        }
    }

    #[test]
    fn users_count_in_each_group() {
        let rows = [
            user("a", T1, "u1")
                .groups(&["Red", "red "])
                .phishing(10, 5, 0),
            user("a", T1, "u2")
                .groups(&["Red", "Blue"])
                .phishing(10, 0, 0),
            user("a", T1, "u3").phishing(4, 4, 0),
        ];
        let table = rates(&rows, &AnalysisParams::default());
        assert_eq!(rows_where(&table, "dimension", "group").height(), 3);
        // u1 lists Red twice in two spellings but counts once.
        let red = group_row(&table, "group", "Red");
        assert_eq!(ints(&red, "users"), [Some(2)]);
        assert_eq!(ints(&red, "sent"), [Some(20)]);
        assert_eq!(ints(&red, "clicked"), [Some(5)]);
        let blue = group_row(&table, "group", "Blue");
        assert_eq!(ints(&blue, "users"), [Some(1)]);
        let none = group_row(&table, "group", NONE_LABEL);
        assert_eq!(ints(&none, "users"), [Some(1)], "u3 has no group");
        assert_eq!(ints(&none, "clicked"), [Some(4)]);
    }

    #[test]
    fn scalar_dimensions_use_their_columns() {
        let rows = [
            user("a", T1, "u1")
                .branch("Oslo")
                .country("NO")
                .manager("Åse Ørn"),
            user("a", T1, "u2")
                .branch("oslo")
                .country("DK")
                .manager("Åse Ørn"),
        ];
        let table = rates(&rows, &AnalysisParams::default());
        assert_eq!(
            ints(&group_row(&table, "branch", "Oslo"), "users"),
            [Some(2)]
        );
        assert_eq!(
            ints(&group_row(&table, "country", "DK"), "users"),
            [Some(1)]
        );
        assert_eq!(
            ints(&group_row(&table, "manager", "Åse Ørn"), "users"),
            [Some(2)]
        );
    }

    #[test]
    fn rank_ties_and_unsent_groups() {
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
        let rows = [
            user("a", T1, "u1").dept("A").phishing(10, 2, 0),
            user("a", T1, "u2").dept("B").phishing(10, 2, 0),
            user("a", T1, "u3").dept("C").phishing(4, 1, 0),
            user("a", T1, "u4").dept("C").phishing(6, 4, 0),
            user("a", T1, "u5").dept("D"),
        ];
        let table = rates(&rows, &click_only);
        let departments = rows_where(&table, "dimension", "department");

        // C: 5/10, low 0.2366; A and B: 2/10, low 0.0567 each; D sent nothing.
        assert_eq!(
            strings(&departments, "value"),
            [
                Some("C".into()),
                Some("A".into()),
                Some("B".into()),
                Some("D".into())
            ]
        );
        assert_eq!(
            ints(&departments, "rank"),
            [Some(1), Some(2), Some(2), None]
        );
        let d = group_row(&table, "department", "D");
        assert_eq!(floats(&d, "click_rate"), [None]);
        assert_eq!(floats(&d, "click_rate_low"), [None]);

        // With only the click weight and m = 0 the risk score is 100 · click rate:
        // u3 100 · 1/4 = 25, u4 100 · 4/6 = 66.6667; mean (25 + 66.6667) / 2 = 45.8333.
        let c = group_row(&table, "department", "C");
        assert_close(
            floats(&c, "mean_risk_score")[0],
            (25.0 + 400.0 / 6.0) / 2.0,
            "C mean risk",
        );
    }

    #[test]
    fn account_rows_pool_and_rank_accounts() {
        let rows = [
            user("a", T1, "u1").dept("Sales").phishing(10, 2, 1),
            user("a", T1, "u2").dept("IT").phishing(10, 3, 0),
            user("b", T1, "v1").dept("Sales").phishing(10, 5, 0),
            user("c", T1, "w1").dept("Sales"),
        ];
        let table = rates(&rows, &click_only());
        let accounts = rows_where(&table, "dimension", ACCOUNT_DIMENSION);
        assert_eq!(accounts.height(), 3, "one row per account");
        assert_eq!(
            strings(&accounts, "account_id"),
            [Some("a".into()), Some("b".into()), Some("c".into())]
        );
        assert_eq!(
            strings(&accounts, "value"),
            strings(&accounts, "account_id"),
            "the value is the account id"
        );
        assert_eq!(strings(&accounts, "key"), strings(&accounts, "account_id"));

        // a pools u1 and u2: 5 clicks and 1 submission in 20 emails.
        let a = rows_where(&accounts, "account_id", "a");
        assert_eq!(ints(&a, "users"), [Some(2)]);
        assert_eq!(ints(&a, "sent"), [Some(20)]);
        assert_eq!(ints(&a, "clicked"), [Some(5)]);
        assert_eq!(ints(&a, "submitted"), [Some(1)]);
        assert_close(floats(&a, "click_rate")[0], 0.25, "a 5/20");
        assert_close(floats(&a, "click_rate_low")[0], 0.111861700699976, "a low");
        assert_close(
            floats(&a, "click_rate_high")[0],
            0.468700879392589,
            "a high",
        );
        // Wilson 1/20: √(0.95 + 0.960364720324) = 1.3821592962036;
        // (1 + 1.920729440648 ∓ 1.959964 · 1.3821592962036) / 23.841458881296.
        assert_close(floats(&a, "submit_rate")[0], 0.05, "a submit 1/20");
        assert_close(
            floats(&a, "submit_rate_low")[0],
            0.00888144870233553,
            "a submit low",
        );
        assert_close(
            floats(&a, "submit_rate_high")[0],
            0.236131195464281,
            "a submit high",
        );
        // Click weight only, m = 0: u1 scores 20 and u2 30.
        assert_close(floats(&a, "mean_risk_score")[0], 25.0, "a mean risk");

        // b: 5/10, low 0.236593089011479, ranks above a (low 0.1119) across
        // accounts; c sent nothing and is unranked.
        let b = rows_where(&accounts, "account_id", "b");
        assert_close(floats(&b, "click_rate_low")[0], 0.236593089011479, "b low");
        assert_eq!(ints(&b, "rank"), [Some(1)]);
        assert_eq!(ints(&a, "rank"), [Some(2)]);
        let c = rows_where(&accounts, "account_id", "c");
        assert_eq!(ints(&c, "rank"), [None]);
        assert_eq!(floats(&c, "click_rate"), [None]);

        // Departments are still ranked within their own account: in a, IT
        // (3/10) ranks above Sales (2/10), and Sales of b is first in b.
        let sales = rows_where(&table, "value", "Sales");
        assert_eq!(
            ints(&rows_where(&sales, "account_id", "a"), "rank"),
            [Some(2)]
        );
        assert_eq!(
            ints(&rows_where(&sales, "account_id", "b"), "rank"),
            [Some(1)]
        );
    }

    #[test]
    fn output_columns_in_order() {
        let table = rates(&[user("a", T1, "u1")], &AnalysisParams::default());
        let names: Vec<&str> = table
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, GROUP_RATES_COLUMNS);
    }
}
