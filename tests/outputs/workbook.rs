//! `analyze --format xlsx`: the workbook read back by calamine, and its
//! styles read from the file's XML, because calamine does not report
//! number formats.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::fixture::*;

/// Reads the header and the cells of one sheet, one map per data row.
fn sheet_rows(path: &Path, sheet: &str) -> (Vec<String>, Vec<HashMap<String, Data>>) {
    let mut workbook: Xlsx<_> = open_workbook(path).expect("calamine opens the workbook");
    let range = workbook.worksheet_range(sheet).expect("sheet exists");
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .expect("header row")
        .iter()
        .map(|cell| cell.to_string())
        .collect();
    let data = rows
        .map(|row| header.iter().cloned().zip(row.iter().cloned()).collect())
        .collect();
    (header, data)
}

fn row_of<'a>(
    rows: &'a [HashMap<String, Data>],
    column: &str,
    value: &str,
) -> &'a HashMap<String, Data> {
    let matches: Vec<&HashMap<String, Data>> = rows
        .iter()
        .filter(|row| row.get(column) == Some(&Data::String(value.to_string())))
        .collect();
    assert_eq!(matches.len(), 1, "rows with {column} = {value:?}");
    matches[0]
}

/// Reads one file of the workbook's zip archive as text.
fn part(path: &Path, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} in the workbook"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Returns the value of `attribute` in an element's text.
fn attribute(element: &str, attribute: &str) -> Option<String> {
    let marker = format!(" {attribute}=\"");
    let start = element.find(&marker)? + marker.len();
    let end = element[start..].find('"')? + start;
    Some(element[start..end].to_string())
}

/// Returns the elements named `element` in `xml`, in order, each from its
/// start tag to its end tag (or the end of a self-closing tag).
fn elements<'a>(xml: &'a str, element: &str) -> Vec<&'a str> {
    let open = format!("<{element}");
    let close = format!("</{element}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start..];
        // `<font` also starts `<fonts`: only a space, `>` or `/` ends the name.
        if !matches!(after.as_bytes().get(open.len()), Some(b' ' | b'>' | b'/')) {
            rest = &after[open.len()..];
            continue;
        }
        let tag_end = after.find('>').expect("a closed tag") + 1;
        let end = if after[..tag_end].ends_with("/>") {
            tag_end
        } else {
            after.find(&close).map_or(tag_end, |c| c + close.len())
        };
        found.push(&after[..end]);
        rest = &after[end..];
    }
    found
}

/// The styles of a workbook: number format codes and bold flags per style index.
struct Styles {
    formats: Vec<String>,
    bold: Vec<bool>,
}

fn styles(path: &Path) -> Styles {
    let xml = part(path, "xl/styles.xml");
    let custom: HashMap<String, String> = elements(&xml, "numFmt")
        .iter()
        .map(|tag| {
            (
                attribute(tag, "numFmtId").unwrap(),
                attribute(tag, "formatCode").unwrap(),
            )
        })
        .collect();
    let fonts_xml = &xml[xml.find("<fonts").unwrap()..xml.find("</fonts>").unwrap()];
    let fonts: Vec<bool> = elements(fonts_xml, "font")
        .iter()
        .map(|f| f.contains("<b/>"))
        .collect();
    let xfs_xml = &xml[xml.find("<cellXfs").unwrap()..xml.find("</cellXfs>").unwrap()];
    let xfs = elements(xfs_xml, "xf");
    Styles {
        formats: xfs
            .iter()
            .map(|xf| {
                let id = attribute(xf, "numFmtId").unwrap_or_else(|| "0".into());
                custom.get(&id).cloned().unwrap_or(format!("builtin {id}"))
            })
            .collect(),
        bold: xfs
            .iter()
            .map(|xf| {
                fonts[attribute(xf, "fontId")
                    .unwrap_or_else(|| "0".into())
                    .parse::<usize>()
                    .unwrap()]
            })
            .collect(),
    }
}

/// Excel column letters of a zero-based index: 0 is A, 26 is AA.
fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap()
}

/// Returns the style index of cell `reference` in a sheet's XML.
fn style_of(sheet_xml: &str, reference: &str) -> usize {
    let marker = format!("<c r=\"{reference}\"");
    let start = sheet_xml
        .find(&marker)
        .unwrap_or_else(|| panic!("cell {reference}"));
    let tag_end = sheet_xml[start..].find('>').unwrap() + start;
    attribute(&sheet_xml[start..tag_end], "s").map_or(0, |s| s.parse().unwrap())
}

fn as_float(cell: &Data) -> f64 {
    match cell {
        Data::Float(value) => *value,
        Data::Int(value) => *value as f64,
        Data::DateTime(value) => value.as_f64(),
        other => panic!("{other:?} is not a number"),
    }
}

#[test]
fn workbook_cells_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let set = analyze(dir.path(), "reports", &["--format", "xlsx"], &[]);
    let path = set.join("report.xlsx");
    assert!(
        !set.join("user_risk.parquet").exists(),
        "xlsx alone writes no Parquet"
    );

    let workbook: Xlsx<_> = open_workbook(&path).unwrap();
    let names = workbook.sheet_names();
    assert_eq!(
        names[..4],
        [
            "user_risk",
            "group_rates",
            "department_trend",
            "repeat_clickers"
        ]
    );

    let (header, users) = sheet_rows(&path, "user_risk");
    assert_eq!(header[..3], ["account_id", "snapshot_at", "user_id"]);
    assert_eq!(users.len(), 5, "three users of A and two of B");
    let bjorn = row_of(&users, "user_id", BJORN.id);
    assert_eq!(
        bjorn["name"],
        Data::String(BJORN.name.into()),
        "markup and quotes kept as text"
    );
    assert_eq!(bjorn["department"], Data::String("Økonomi".into()));
    assert_eq!(as_float(&bjorn["emails_sent"]), 10.0);
    assert_eq!(as_float(&bjorn["click_rate"]), 0.5, "5 of 10 clicked");
    assert_eq!(bjorn["data_issue"], Data::Bool(false));
    // 2025-03-10T06:00Z: 25569 days to 1970 + 20157 days + 6/24 = 45726.25.
    match &bjorn["snapshot_at"] {
        Data::DateTime(time) => assert_eq!(time.as_f64(), 45_726.25),
        other => panic!("snapshot_at is {other:?}, not a date"),
    }
    let formula = row_of(&users, "user_id", FORMULA.id);
    assert_eq!(
        formula["name"],
        Data::String("=1+2".into()),
        "a text cell, not a formula"
    );
    assert_eq!(formula["manager"], Data::String("-Åse Ågren".into()));

    let (_, groups) = sheet_rows(&path, "group_rates");
    let accounts: Vec<&HashMap<String, Data>> = groups
        .iter()
        .filter(|row| row["dimension"] == Data::String("account".into()))
        .collect();
    assert_eq!(accounts.len(), 2);
    let a = row_of(&groups, "value", ACCOUNT_A);
    assert_eq!(as_float(&a["users"]), 3.0);
    assert_eq!(as_float(&a["sent"]), 30.0);
    assert_eq!(as_float(&a["clicked"]), 8.0, "3 + 5 + 0");
    assert_eq!(as_float(&a["click_rate"]), 8.0 / 30.0);
    let economy = groups
        .iter()
        .find(|row| {
            row["dimension"] == Data::String("department".into())
                && row["value"] == Data::String("Økonomi".into())
        })
        .expect("Økonomi row");
    assert_eq!(as_float(&economy["click_rate"]), 0.4, "8 of 20");
}

#[test]
fn workbook_styles_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let set = analyze(dir.path(), "reports", &["--format", "all"], &[]);
    let path = set.join("report.xlsx");
    assert!(
        set.join("user_risk.parquet").exists(),
        "all writes Parquet too"
    );
    assert!(set.join("user_risk.csv").exists(), "all writes CSV too");

    let (header, users) = sheet_rows(&path, "user_risk");
    let letter = |name: &str| column_letters(header.iter().position(|h| h == name).unwrap());
    let styles = styles(&path);
    let sheet = part(&path, "xl/worksheets/sheet1.xml");
    let format_at =
        |column: &str| styles.formats[style_of(&sheet, &format!("{}2", letter(column)))].clone();

    assert_eq!(format_at("click_rate"), "0.0%");
    assert_eq!(format_at("click_rate_smoothed"), "0.0%");
    assert_eq!(format_at("training_gap_filled"), "0.0%");
    assert_eq!(format_at("snapshot_at"), "yyyy-mm-dd hh:mm:ss");
    assert_eq!(
        format_at("risk_score"),
        "builtin 0",
        "scores stay plain numbers"
    );
    assert_eq!(format_at("emails_sent"), "builtin 0");
    for column in ["account_id", "click_rate", "risk_band"] {
        assert!(
            styles.bold[style_of(&sheet, &format!("{}1", letter(column)))],
            "{column} header bold"
        );
    }
    assert!(
        !styles.bold[style_of(&sheet, &format!("{}2", letter("account_id")))],
        "data not bold"
    );

    let pane = elements(&sheet, "pane");
    assert_eq!(pane.len(), 1, "one frozen pane");
    assert_eq!(attribute(pane[0], "ySplit").as_deref(), Some("1"));
    assert_eq!(attribute(pane[0], "state").as_deref(), Some("frozen"));
    let filter = elements(&sheet, "autoFilter");
    let last = column_letters(header.len() - 1);
    assert_eq!(
        attribute(filter[0], "ref"),
        Some(format!("A1:{last}{}", users.len() + 1)),
        "the filter covers the header and every row"
    );
}

#[test]
fn column_letters_by_hand() {
    assert_eq!(column_letters(0), "A");
    assert_eq!(column_letters(25), "Z");
    assert_eq!(column_letters(26), "AA");
    assert_eq!(column_letters(46), "AU");
}
