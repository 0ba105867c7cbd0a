//! The report tables as one Excel workbook, a sheet per table.
//!
//! Each sheet has a bold header row that stays in view when scrolling, an
//! autofilter over the table, rates shown as percentages and times as dates.
//! Text is written as string cells, which Excel never evaluates, so a name
//! that starts with `=` stays text without the guard that CSV needs.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{AnyValue, Column, DataFrame, DataType, TimeUnit};
use rust_xlsxwriter::{Format, FormatBorder, Workbook, Worksheet};

/// Number format of fractions such as `click_rate`: 0.1234 shows as 12.3%.
pub const PERCENT_FORMAT: &str = "0.0%";
/// Number format of timestamps, shown in UTC.
pub const DATETIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss";
/// Data rows of one sheet: Excel's 1,048,576 rows less the header.
pub const MAX_DATA_ROWS: usize = 1_048_575;
/// Widest column, in Excel's character units, that automatic sizing sets.
const MAX_COLUMN_WIDTH: u32 = 60;
/// Days from Excel's day 0 (1899-12-30 in the 1900 date system) to 1970-01-01.
const UNIX_EPOCH_SERIAL: f64 = 25_569.0;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// Float64 columns that hold fractions from 0 to 1 but have no `rate` in their name.
const FRACTION_COLUMNS: [&str; 5] = [
    "training_gap",
    "training_gap_filled",
    "score_gap",
    "score_gap_filled",
    "overdue",
];

/// Returns whether a Float64 column contains fractions that read best as
/// percentages: every rate, its interval bounds and changes, and the gap columns.
pub fn is_fraction_column(name: &str) -> bool {
    name.split('_').any(|word| word == "rate") || FRACTION_COLUMNS.contains(&name)
}

/// Writes `tables` as one workbook to `path`, a sheet per table in order.
pub fn write_workbook(path: &Path, tables: &[(String, DataFrame)]) -> Result<()> {
    let mut workbook = Workbook::new();
    let formats = CellFormats::new();
    let mut used_names = HashSet::new();
    for (name, frame) in tables {
        let sheet_name = unique_sheet_name(name, &mut used_names);
        let sheet = workbook.add_worksheet();
        sheet
            .set_name(&sheet_name)
            .with_context(|| format!("invalid sheet name {sheet_name:?}"))?;
        write_sheet(sheet, frame, &formats)
            .with_context(|| format!("failed to write table {name} to its sheet"))?;
    }
    workbook
        .save(path)
        .with_context(|| format!("failed to save the workbook {}", path.display()))?;
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("failed to sync {}", path.display()))?;
    crate::snapshot::store::restrict_file(path)
}

/// The cell formats shared by every sheet.
struct CellFormats {
    header: Format,
    percent: Format,
    datetime: Format,
}

impl CellFormats {
    fn new() -> Self {
        CellFormats {
            header: Format::new()
                .set_bold()
                .set_border_bottom(FormatBorder::Thin),
            percent: Format::new().set_num_format(PERCENT_FORMAT),
            datetime: Format::new().set_num_format(DATETIME_FORMAT),
        }
    }
}

fn write_sheet(sheet: &mut Worksheet, frame: &DataFrame, formats: &CellFormats) -> Result<()> {
    if frame.height() > MAX_DATA_ROWS {
        anyhow::bail!(crate::error::DataError(format!(
            "the table has {} rows, more than the {MAX_DATA_ROWS} an Excel sheet holds; \
             write it with --format parquet or csv instead",
            frame.height()
        )));
    }
    for (index, column) in frame.columns().iter().enumerate() {
        let col = u16::try_from(index)
            .context("the table has more than 65535 columns, more than an Excel sheet allows")?;
        sheet.write_string_with_format(0, col, column.name().as_str(), &formats.header)?;
        write_column(sheet, col, column, formats)?;
    }

    let last_col = frame.width().saturating_sub(1) as u16;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, frame.height() as u32, last_col)?;
    sheet.set_autofit_max_width(MAX_COLUMN_WIDTH);
    sheet.autofit();
    Ok(())
}

/// Writes the cells of one column below its header; nulls stay blank.
fn write_column(
    sheet: &mut Worksheet,
    col: u16,
    column: &Column,
    formats: &CellFormats,
) -> Result<()> {
    let series = column.as_materialized_series();
    let number_format = match series.dtype() {
        DataType::Float32 | DataType::Float64 if is_fraction_column(series.name()) => {
            Some(&formats.percent)
        }
        DataType::Datetime(..) | DataType::Date => Some(&formats.datetime),
        _ => None,
    };
    for (index, value) in series.iter().enumerate() {
        let row = index as u32 + 1;
        write_cell(sheet, row, col, &value, number_format)?;
    }
    Ok(())
}

fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: &AnyValue<'_>,
    number_format: Option<&Format>,
) -> Result<()> {
    let number = match value {
        AnyValue::Null => return Ok(()),
        AnyValue::Boolean(flag) => {
            sheet.write_boolean(row, col, *flag)?;
            return Ok(());
        }
        AnyValue::String(text) => {
            sheet.write_string(row, col, *text)?;
            return Ok(());
        }
        AnyValue::StringOwned(text) => {
            sheet.write_string(row, col, text.as_str())?;
            return Ok(());
        }
        AnyValue::Datetime(value, unit, _) => excel_serial(*value, *unit),
        AnyValue::DatetimeOwned(value, unit, _) => excel_serial(*value, *unit),
        AnyValue::Date(days) => UNIX_EPOCH_SERIAL + f64::from(*days),
        other => match other.extract::<f64>() {
            Some(number) if other.is_primitive_numeric() => number,
            _ => {
                sheet.write_string(row, col, other.to_string())?;
                return Ok(());
            }
        },
    };
    if !number.is_finite() {
        // Excel has no NaN or infinity; the analysis writes nulls instead,
        // so this only happens in a shipped query's own arithmetic.
        return Ok(());
    }
    match number_format {
        Some(format) => sheet.write_number_with_format(row, col, number, format)?,
        None => sheet.write_number(row, col, number)?,
    };
    Ok(())
}

/// Converts a Unix timestamp to an Excel date serial number: days since
/// 1899-12-30, with the time of day as the fraction.
fn excel_serial(value: i64, unit: TimeUnit) -> f64 {
    let micros = match unit {
        TimeUnit::Nanoseconds => value as f64 / 1_000.0,
        TimeUnit::Microseconds => value as f64,
        TimeUnit::Milliseconds => value as f64 * 1_000.0,
    };
    UNIX_EPOCH_SERIAL + micros / MICROS_PER_DAY
}

/// Makes a table name a valid sheet name that no earlier sheet has: at most
/// 31 characters, none of `[ ] : * ? / \`.
fn unique_sheet_name(name: &str, used: &mut HashSet<String>) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_matches('\'');
    let base: String = if cleaned.is_empty() { "table" } else { cleaned }
        .chars()
        .take(31)
        .collect();
    let mut candidate = base.clone();
    let mut n = 2;
    while !used.insert(candidate.to_lowercase()) {
        let suffix = format!("~{n}");
        let kept: String = base.chars().take(31 - suffix.len()).collect();
        candidate = format!("{kept}{suffix}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_columns_detected() {
        for name in [
            "click_rate",
            "click_rate_low",
            "submit_rate_smoothed",
            "account_click_rate",
            "period_click_rate_high",
            "click_rate_change",
            "completion_rate",
            "training_gap_filled",
            "overdue",
        ] {
            assert!(is_fraction_column(name), "{name}");
        }
        for name in ["risk_score", "change_z", "change_p_value", "average_score"] {
            assert!(!is_fraction_column(name), "{name}");
        }
    }

    #[test]
    fn excel_serial_of_known_times() {
        // 2025-03-03T08:00:00Z is day 20150 after 1970-01-01 plus 8 h, 1740988800 s:
        // 25569 + 20150 + 8/24 = 45719.333333...
        let micros = 1_740_988_800_000_000;
        let serial = excel_serial(micros, TimeUnit::Microseconds);
        assert!((serial - (45_719.0 + 1.0 / 3.0)).abs() < 1e-9, "{serial}");
        assert_eq!(excel_serial(0, TimeUnit::Milliseconds), 25_569.0);
    }

    #[test]
    fn sheet_names_valid_and_unique() {
        let mut used = HashSet::new();
        assert_eq!(unique_sheet_name("user_risk", &mut used), "user_risk");
        assert_eq!(unique_sheet_name("a/b:c", &mut used), "a_b_c");
        let long = "a_very_long_query_name_that_exceeds_the_limit";
        let first = unique_sheet_name(long, &mut used);
        assert_eq!(first, "a_very_long_query_name_that_exc");
        let second = unique_sheet_name(long, &mut used);
        assert_eq!(second, "a_very_long_query_name_that_e~2");
        assert_eq!(second.chars().count(), 31);
        assert_eq!(unique_sheet_name("USER_RISK", &mut used), "USER_RISK~2");
    }
}
