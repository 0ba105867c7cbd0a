//! CSV that spreadsheet programs open safely.
//!
//! The files follow RFC 4180: CRLF line breaks, and fields with a comma,
//! quote or line break in double quotes with inner quotes doubled. They
//! start with a UTF-8 byte-order mark unless `--no-bom` is given. A
//! text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
//! gets a leading `'`, so a spreadsheet shows it as text instead of running
//! it as a formula. Numeric columns are written unchanged.

use std::borrow::Cow;
use std::path::Path;

use anyhow::Result;
use polars::prelude::{
    Column, CsvWriter, DataFrame, DataType, IntoColumn, IntoSeries, NewChunkedArray, QuoteStyle,
    SerWriter, StringChunked,
};

/// Line break between records; a line break inside a quoted field is kept
/// as it is in the data.
const RFC_4180_LINE_BREAK: &str = "\r\n";

/// Characters that make a spreadsheet treat a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Returns the cell text with a leading `'` when it could run as a formula.
pub fn guard_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes `frame` as safe CSV to `path`.
pub fn write_safe_csv(path: &Path, frame: &DataFrame, options: super::CsvOptions) -> Result<()> {
    let mut guarded = guarded_frame(frame)?;
    let file = crate::snapshot::store::create_private_file(path)?;
    CsvWriter::new(&file)
        .include_bom(options.bom)
        .include_header(true)
        .with_quote_style(QuoteStyle::Necessary)
        .with_line_terminator(RFC_4180_LINE_BREAK.into())
        .finish(&mut guarded)?;
    file.sync_all()?;
    crate::snapshot::store::restrict_file(path)
}

/// Guards every text column; nested columns become readable text first.
fn guarded_frame(frame: &DataFrame) -> Result<DataFrame> {
    let columns = frame
        .columns()
        .iter()
        .map(guard_column)
        .collect::<Result<Vec<Column>>>()?;
    Ok(DataFrame::new(frame.height(), columns)?)
}

fn guard_column(column: &Column) -> Result<Column> {
    let series = column.as_materialized_series();
    match series.dtype() {
        DataType::String => {
            let guarded = series
                .str()?
                .apply_into_string_amortized(|text, out| out.push_str(&guard_cell(text)));
            Ok(guarded
                .into_series()
                .with_name(series.name().clone())
                .into_column())
        }
        DataType::List(_) | DataType::Struct(_) => {
            let as_text = series
                .cast(&DataType::String)
                .or_else(|_| nested_as_text(series))?;
            guard_column(&as_text.into_column())
        }
        _ => Ok(column.clone()),
    }
}

/// Renders nested values as text, one cell per row.
fn nested_as_text(
    series: &polars::prelude::Series,
) -> polars::prelude::PolarsResult<polars::prelude::Series> {
    let values: Vec<Option<String>> = series
        .iter()
        .map(|value| (!value.is_null()).then(|| value.to_string()))
        .collect();
    Ok(StringChunked::from_iter_options(series.name().clone(), values.into_iter()).into_series())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_cell_cases() {
        let cases = [
            ("=SUM(A1:A3)", "'=SUM(A1:A3)"),
            ("+45 12 34 56 78", "'+45 12 34 56 78"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tTab", "'\tTab"),
            ("\rReturn", "'\rReturn"),
            ("Søren", "Søren"),
            ("", ""),
            ("a=b", "a=b"),
        ];
        for (input, expected) in cases {
            assert_eq!(guard_cell(input), expected, "cell {input:?}");
        }
    }
}
