//! Grouping keys and display spellings of free-text values such as
//! department, branch, group, country and manager names.
//!
//! Two spellings fall into one group when they are equal after trimming
//! Unicode whitespace, NFC normalisation and full Unicode case folding. So
//! `Sales`, ` sales ` and `SALES` are one group. So are `Århus` written with a
//! precomposed `Å` (NFC) and with `A` and a combining ring (NFD). Null and
//! blank values form the group shown as [`NONE_LABEL`].

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Display value of the group of null and blank values.
pub const NONE_LABEL: &str = "(none)";

/// Returns the grouping key of a value: trimmed, NFC-normalised and case
/// folded, then NFC-normalised again because folding can decompose
/// characters (for example `İ` folds to `i` and a combining dot). Blank values
/// get the empty key.
pub fn normalize_key(value: &str) -> String {
    let composed: String = value.trim().nfc().collect();
    caseless::default_case_fold_str(&composed).nfc().collect()
}

/// Returns the spelling of a value as counted for display: trimmed and
/// NFC-normalised, with case kept.
pub fn clean_spelling(value: &str) -> String {
    value.trim().nfc().collect()
}

/// Returns the display value of a group from the number of rows of each
/// spelling: the most common spelling, and on a tie the lexicographically
/// smallest (by Unicode code point). The empty key displays as [`NONE_LABEL`].
pub fn display_value(key: &str, spelling_counts: &BTreeMap<String, u64>) -> String {
    if key.is_empty() {
        return NONE_LABEL.to_owned();
    }
    // BTreeMap iterates in ascending order and `max_by_key` keeps the last
    // maximum, so iterate in reverse to keep the smallest spelling on a tie.
    spelling_counts
        .iter()
        .rev()
        .max_by_key(|(_, count)| **count)
        .map(|(spelling, _)| spelling.clone())
        .unwrap_or_else(|| NONE_LABEL.to_owned())
}

/// Builds the mapping from raw values to grouping keys and display values.
///
/// `values` has the String columns `account_id`, `dimension` and `raw` (null
/// allowed), one row per occurrence, because the display spelling is the
/// most common one per account and dimension. The key normalisation runs once
/// per distinct raw value, not per row. The result has the columns
/// `account_id`, `dimension`, `raw` (null replaced by ""), `key` and `value`,
/// and is meant for [`attach_values`].
pub fn value_mapping(values: LazyFrame) -> PolarsResult<LazyFrame> {
    let counts = spelling_counts(values).collect()?;
    mapping_from_counts(&counts).map(IntoLazy::lazy)
}

/// Counts the rows of each raw value: `account_id`, `dimension`, `raw` (null
/// replaced by "") and `rows` (UInt64). Counts of disjoint row sets can be
/// added up per value before [`mapping_from_counts`].
pub(crate) fn spelling_counts(values: LazyFrame) -> LazyFrame {
    values
        .select([
            col("account_id"),
            col("dimension"),
            col("raw").fill_null(lit("")),
        ])
        .group_by([col("account_id"), col("dimension"), col("raw")])
        .agg([len().cast(DataType::UInt64).alias("rows")])
}

/// Builds the mapping of [`value_mapping`] from the output of
/// [`spelling_counts`], with one row per account, dimension and raw value.
pub(crate) fn mapping_from_counts(counts: &DataFrame) -> PolarsResult<DataFrame> {
    let distinct = distinct_values(counts)?;
    mapping_frame(&distinct)
}

/// Group of a value: account, dimension and grouping key.
type GroupId<'a> = (&'a str, &'a str, String);

/// One distinct raw value of the input of [`value_mapping`].
struct DistinctValue<'a> {
    group: GroupId<'a>,
    raw: &'a str,
    rows: u64,
}

fn distinct_values(counts: &DataFrame) -> PolarsResult<Vec<DistinctValue<'_>>> {
    let accounts = counts.column("account_id")?.str()?;
    let dimensions = counts.column("dimension")?.str()?;
    let raws = counts.column("raw")?.str()?;
    let rows = counts.column("rows")?.u64()?;
    let mut distinct = Vec::with_capacity(counts.height());
    for i in 0..counts.height() {
        let raw = raws.get(i).unwrap_or_default();
        let account = accounts.get(i).unwrap_or_default();
        let dimension = dimensions.get(i).unwrap_or_default();
        distinct.push(DistinctValue {
            group: (account, dimension, normalize_key(raw)),
            raw,
            rows: rows.get(i).unwrap_or(0),
        });
    }
    Ok(distinct)
}

/// Builds the mapping frame, choosing the display value of each group from
/// the row counts of its spellings.
fn mapping_frame(distinct: &[DistinctValue<'_>]) -> PolarsResult<DataFrame> {
    let mut spellings: HashMap<&GroupId<'_>, BTreeMap<String, u64>> = HashMap::new();
    for value in distinct {
        let counts = spellings.entry(&value.group).or_default();
        *counts.entry(clean_spelling(value.raw)).or_default() += value.rows;
    }
    let displays: HashMap<&GroupId<'_>, String> = spellings
        .iter()
        .map(|(group, counts)| (*group, display_value(&group.2, counts)))
        .collect();

    let column = |name: &str, data: Vec<&str>| Column::new(name.into(), data);
    DataFrame::new_infer_height(vec![
        column("account_id", distinct.iter().map(|v| v.group.0).collect()),
        column("dimension", distinct.iter().map(|v| v.group.1).collect()),
        column("raw", distinct.iter().map(|v| v.raw).collect()),
        column("key", distinct.iter().map(|v| v.group.2.as_str()).collect()),
        column(
            "value",
            distinct
                .iter()
                .map(|v| displays[&v.group].as_str())
                .collect(),
        ),
    ])
}

/// Adds the columns `key` and `value` to a frame with the columns
/// `account_id`, `dimension` and `raw`, by a join on the mapping from
/// [`value_mapping`]. Every row keeps its place, and a null `raw` matches "".
pub fn attach_values(frame: LazyFrame, mapping: LazyFrame) -> LazyFrame {
    let on = [col("account_id"), col("dimension"), col("raw")];
    frame.with_column(col("raw").fill_null(lit(""))).join(
        mapping,
        on.clone(),
        on,
        super::join_args(JoinType::Left),
    )
}

/// Adds `department_key` and `department_display` to prepared rows, with the
/// display spelling counted over all rows of `frame`. This is the same
/// mapping that `group_rates` uses for its `department` dimension.
pub(crate) fn with_department_group(frame: LazyFrame) -> PolarsResult<LazyFrame> {
    let values = frame
        .clone()
        .select([&[col("account_id")], &department_tag()[..]].concat());
    let mapping = value_mapping(values)?;
    Ok(with_department_mapping(frame, mapping))
}

/// Adds `department_key` and `department_display` to prepared rows from a
/// mapping of [`value_mapping`] that covers every department value of
/// `frame`. Rows of other dimensions in `mapping` are ignored.
pub(crate) fn with_department_mapping(frame: LazyFrame, mapping: LazyFrame) -> LazyFrame {
    attach_values(frame.with_columns(department_tag()), mapping)
        .rename(
            ["key", "value"],
            ["department_key", "department_display"],
            true,
        )
        .drop(cols(["dimension", "raw"]))
}

fn department_tag() -> [Expr; 2] {
    [
        lit("department").alias("dimension"),
        col("department").alias("raw"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARHUS_NFC: &str = "\u{00C5}rhus";
    const ARHUS_NFD: &str = "A\u{030A}rhus";

    #[test]
    fn key_ignores_case_and_whitespace() {
        assert_eq!(normalize_key("Sales"), "sales");
        assert_eq!(normalize_key(" sales "), "sales");
        assert_eq!(normalize_key("SALES"), "sales");
        assert_eq!(
            normalize_key("\u{00A0}Sales\t"),
            "sales",
            "no-break space and tab"
        );
    }

    #[test]
    fn key_merges_nfc_and_nfd() {
        assert_ne!(ARHUS_NFC, ARHUS_NFD);
        assert_eq!(normalize_key(ARHUS_NFC), "\u{00E5}rhus");
        assert_eq!(normalize_key(ARHUS_NFD), "\u{00E5}rhus");
        assert_eq!(normalize_key("ÆRØ"), "ærø");
    }

    #[test]
    fn key_is_nfc_after_folding() {
        // Full case folding maps U+01F0 (ǰ) to "j" and a combining caron, and the
        // key recomposes them. "J" and a combining caron has no precomposed form.
        assert_eq!(normalize_key("\u{01F0}"), "\u{01F0}");
        assert_eq!(normalize_key("J\u{030C}"), "\u{01F0}");
    }

    #[test]
    fn key_uses_full_case_folding() {
        // Full folding maps ß to "ss", which simple lowercasing does not.
        assert_eq!(normalize_key("Straße"), normalize_key("STRASSE"));
    }

    #[test]
    fn blank_values_get_empty_key() {
        assert_eq!(normalize_key(""), "");
        assert_eq!(normalize_key("   "), "");
    }

    #[test]
    fn display_prefers_most_common_spelling() {
        let counts = BTreeMap::from([("SALES".to_owned(), 1), ("Sales".to_owned(), 3)]);
        assert_eq!(display_value("sales", &counts), "Sales");
    }

    #[test]
    fn display_tie_takes_smallest_spelling() {
        // "SALES" < "Sales" < "sales" by code point.
        let counts = BTreeMap::from([
            ("sales".to_owned(), 2),
            ("SALES".to_owned(), 2),
            ("Sales".to_owned(), 2),
        ]);
        assert_eq!(display_value("sales", &counts), "SALES");
    }

    #[test]
    fn mapping_groups_department_spellings() {
        // Rows: "Sales" twice, " sales ", "SALES", null, "", "  ", Århus in NFC
        // twice and in NFD once, "Aarhus" once.
        let raw: Vec<Option<&str>> = vec![
            Some("Sales"),
            Some("Sales"),
            Some(" sales "),
            Some("SALES"),
            None,
            Some(""),
            Some("  "),
            Some(ARHUS_NFC),
            Some(ARHUS_NFC),
            Some(ARHUS_NFD),
            Some("Aarhus"),
        ];
        let n = raw.len();
        let values = df!(
            "account_id" => vec!["a"; n],
            "dimension" => vec!["department"; n],
            "raw" => raw.clone(),
        )
        .unwrap()
        .lazy();
        let mapping = value_mapping(values.clone()).unwrap();
        let out = attach_values(values, mapping).collect().unwrap();

        let keys: Vec<&str> = out
            .column("key")
            .unwrap()
            .str()
            .unwrap()
            .no_null_iter()
            .collect();
        let displayed: Vec<&str> = out
            .column("value")
            .unwrap()
            .str()
            .unwrap()
            .no_null_iter()
            .collect();
        assert_eq!(out.height(), n, "the join keeps one row per input row");
        // "Sales" counts 3 after trimming (" sales " is "sales"), so the spellings are
        // Sales: 2, sales: 1, SALES: 1 and the display is "Sales".
        for i in 0..4 {
            assert_eq!(keys[i], "sales", "row {i}");
            assert_eq!(displayed[i], "Sales", "row {i}");
        }
        for i in 4..7 {
            assert_eq!(keys[i], "", "row {i}");
            assert_eq!(displayed[i], NONE_LABEL, "row {i}");
        }
        // NFC and NFD Århus clean to the same NFC spelling, counted 3 times.
        for i in 7..10 {
            assert_eq!(keys[i], "\u{00E5}rhus", "row {i}");
            assert_eq!(displayed[i], ARHUS_NFC, "row {i}");
        }
        assert_eq!(keys[10], "aarhus", "Aarhus is a different name");
        assert_eq!(displayed[10], "Aarhus");
    }

    #[test]
    fn mapping_is_per_account() {
        let values = df!(
            "account_id" => ["a", "a", "b"],
            "dimension" => ["department"; 3],
            "raw" => ["IT", "IT", "it"],
        )
        .unwrap()
        .lazy();
        let mapping = value_mapping(values.clone()).unwrap();
        let out = attach_values(values, mapping).collect().unwrap();
        let displayed: Vec<&str> = out
            .column("value")
            .unwrap()
            .str()
            .unwrap()
            .no_null_iter()
            .collect();
        assert_eq!(displayed, ["IT", "IT", "it"]);
    }
}
