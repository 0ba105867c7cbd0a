//! Builder of small snapshot frames with the full input schema, for tests.

use polars::prelude::*;

use super::params::AnalysisParams;
use super::prepare::{COUNTER_COLUMNS, PreparedSnapshots, prepare, utc_datetime};

/// One user in one snapshot. Counters default to 0 and text to null.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub account: String,
    pub at: String,
    pub user: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub department: Option<String>,
    pub branch: Option<String>,
    pub manager: Option<String>,
    pub country: Option<String>,
    pub groups: Option<Vec<String>>,
    /// Counters in the order of `COUNTER_COLUMNS`.
    pub counters: [Option<i64>; 9],
    pub average_score: Option<f64>,
}

/// Starts a row of `user` in the snapshot of `account` taken at `at` (RFC 3339).
pub fn user(account: &str, at: &str, user: &str) -> UserRow {
    UserRow {
        account: account.to_owned(),
        at: at.to_owned(),
        user: user.to_owned(),
        email: Some(format!("{user}@example.com")),
        name: Some(user.to_uppercase()),
        department: None,
        branch: None,
        manager: None,
        country: None,
        groups: None,
        counters: [Some(0); 9],
        average_score: None,
    }
}

impl UserRow {
    pub fn department(mut self, value: Option<&str>) -> Self {
        self.department = value.map(str::to_owned);
        self
    }

    pub fn dept(self, value: &str) -> Self {
        self.department(Some(value))
    }

    pub fn branch(mut self, value: &str) -> Self {
        self.branch = Some(value.to_owned());
        self
    }

    pub fn manager(mut self, value: &str) -> Self {
        self.manager = Some(value.to_owned());
        self
    }

    pub fn country(mut self, value: &str) -> Self {
        self.country = Some(value.to_owned());
        self
    }

    pub fn groups(mut self, names: &[&str]) -> Self {
        self.groups = Some(names.iter().map(|name| (*name).to_owned()).collect());
        self
    }

    /// Sets `emails_sent`, `links_clicked` and `data_submitted`.
    pub fn phishing(self, sent: i64, clicked: i64, submitted: i64) -> Self {
        self.counter("emails_sent", Some(sent))
            .counter("links_clicked", Some(clicked))
            .counter("data_submitted", Some(submitted))
    }

    /// Sets the enrolled, not completed and overdue course and material counters.
    pub fn training(
        self,
        courses: i64,
        courses_open: i64,
        overdue: i64,
        materials: i64,
        materials_open: i64,
    ) -> Self {
        self.counter("enrolled_courses", Some(courses))
            .counter("not_completed_courses", Some(courses_open))
            .counter("overdue_courses", Some(overdue))
            .counter("enrolled_materials", Some(materials))
            .counter("not_completed_materials", Some(materials_open))
    }

    pub fn counter(mut self, name: &str, value: Option<i64>) -> Self {
        let index = COUNTER_COLUMNS
            .iter()
            .position(|column| *column == name)
            .unwrap_or_else(|| panic!("unknown counter {name}"));
        self.counters[index] = value;
        self
    }

    pub fn score(mut self, value: Option<f64>) -> Self {
        self.average_score = value;
        self
    }
}

fn text(rows: &[UserRow], field: impl Fn(&UserRow) -> Option<&str>) -> Vec<Option<&str>> {
    rows.iter().map(field).collect()
}

fn null_column(name: &str, height: usize, dtype: DataType) -> Column {
    Column::full_null(name.into(), height, &dtype)
}

/// Builds the input frame of `rows` with every column of the snapshot store,
/// plus a hive `account` column that the analysis must ignore.
pub fn snapshot_frame(rows: &[UserRow]) -> LazyFrame {
    let n = rows.len();
    let micros: Vec<i64> = rows
        .iter()
        .map(|row| {
            chrono::DateTime::parse_from_rfc3339(&row.at)
                .unwrap_or_else(|error| panic!("invalid time {}: {error}", row.at))
                .timestamp_micros()
        })
        .collect();
    let mut columns = vec![
        Column::new("snapshot_at".into(), micros),
        Column::new(
            "account_id".into(),
            text(rows, |r| Some(r.account.as_str())),
        ),
        Column::new("user_id".into(), text(rows, |r| Some(r.user.as_str()))),
        Column::new("email".into(), text(rows, |r| r.email.as_deref())),
        Column::new("name".into(), text(rows, |r| r.name.as_deref())),
        null_column("first_name", n, DataType::String),
        null_column("last_name", n, DataType::String),
        null_column("user_created", n, utc_datetime()),
        null_column("company_name", n, DataType::String),
        Column::new("manager".into(), text(rows, |r| r.manager.as_deref())),
        null_column("manager_email", n, DataType::String),
        Column::new("department".into(), text(rows, |r| r.department.as_deref())),
        Column::new("country".into(), text(rows, |r| r.country.as_deref())),
        null_column("branch_id", n, DataType::String),
        Column::new("branch_name".into(), text(rows, |r| r.branch.as_deref())),
    ];
    for (index, name) in COUNTER_COLUMNS.iter().enumerate() {
        let values: Vec<Option<i64>> = rows.iter().map(|row| row.counters[index]).collect();
        columns.push(Column::new((*name).into(), values));
    }
    columns.push(null_column("last_action", n, DataType::String));
    let scores: Vec<Option<f64>> = rows.iter().map(|row| row.average_score).collect();
    columns.push(Column::new("average_score".into(), scores));
    columns.push(null_column("extra", n, DataType::String));
    columns.push(Column::new(
        "account".into(),
        text(rows, |r| Some(r.account.as_str())),
    ));

    let frame = DataFrame::new_infer_height(columns)
        .unwrap()
        .with_row_index("row".into(), None)
        .unwrap()
        .lazy()
        .with_column(col("snapshot_at").cast(utc_datetime()));
    frame
        .join(
            groups_frame(rows),
            [col("row")],
            [col("row")],
            super::join_args(JoinType::Left),
        )
        .drop(cols(["row"]))
}

/// Builds the `groups` column as List(Struct{id, name}) keyed by row index.
fn groups_frame(rows: &[UserRow]) -> LazyFrame {
    let mut row_index: Vec<IdxSize> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        for name in row.groups.iter().flatten() {
            row_index.push(index as IdxSize);
            names.push(name.clone());
        }
    }
    let ids: Vec<String> = names.iter().map(|name| format!("id-{name}")).collect();
    df!("row" => row_index, "id" => ids, "name" => names)
        .unwrap()
        .lazy()
        .group_by_stable([col("row")])
        .agg([as_struct(vec![col("id"), col("name")]).alias("groups")])
}

/// Builds the prepared rows of `rows` with `params`.
pub fn prepared(rows: &[UserRow], params: &AnalysisParams) -> PreparedSnapshots {
    prepare(snapshot_frame(rows), params).unwrap()
}

/// Returns the values of a Float64 column.
pub fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

/// Returns the values of an Int64 column.
pub fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name).unwrap().i64().unwrap().iter().collect()
}

/// Returns the values of a String column.
pub fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let values = df.column(name).unwrap().str().unwrap();
    values
        .iter()
        .map(|value| value.map(str::to_owned))
        .collect()
}

/// Returns the values of a Boolean column.
pub fn bools(df: &DataFrame, name: &str) -> Vec<Option<bool>> {
    df.column(name).unwrap().bool().unwrap().iter().collect()
}

/// Asserts that `actual` is within 1e-9 of `expected`, naming `label`.
#[track_caller]
pub fn assert_close(actual: Option<f64>, expected: f64, label: &str) {
    let value = actual.unwrap_or_else(|| panic!("{label}: null, expected {expected}"));
    assert!(
        (value - expected).abs() < 1e-9,
        "{label}: actual {value}, expected {expected}"
    );
}

/// Asserts that no Float64 column of `df` contains NaN or infinity.
#[track_caller]
pub fn assert_all_finite(df: &DataFrame) {
    for column in df.columns() {
        if let Ok(values) = column.f64() {
            for value in values.iter().flatten() {
                assert!(value.is_finite(), "{}: {value}", column.name());
            }
        }
    }
}

/// Returns the rows of `df` where the String column `name` equals `value`.
pub fn rows_where(df: &DataFrame, name: &str, value: &str) -> DataFrame {
    df.clone()
        .lazy()
        .filter(col(name).eq(lit(value)))
        .collect()
        .unwrap()
}
