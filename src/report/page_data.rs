//! The numbers behind the HTML report, read from a report set's tables and
//! from the snapshot store, grouped by account.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use polars::prelude::{
    AnyValue, DataFrame, DataType, LazyFrame, SortMultipleOptions, TimeUnit, col, len,
};

use crate::analysis::{ACCOUNT_DIMENSION, AnalysisParams, clean_spelling, normalize_key, prepare};

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub generated_at: DateTime<Utc>,
    /// Folder name of the report set, e.g. `20261207T061502Z`.
    pub report_set: String,
    pub pseudonymized: bool,
    pub min_group_size: Option<u32>,
    pub accounts: Vec<AccountData>,
}

/// One account's section of the page.
#[derive(Debug, Clone, Default)]
pub struct AccountData {
    pub account_id: String,
    pub display_name: String,
    /// Pooled rates of every snapshot in the store, oldest first.
    pub history: Vec<SnapshotRates>,
    /// The account's row of the `account` dimension of `group_rates`.
    pub pooled: Option<GroupRate>,
    /// Departments in rank order, unranked last.
    pub departments: Vec<GroupRate>,
    /// Time of the latest snapshot, which `user_risk` describes.
    pub latest_at: Option<DateTime<Utc>>,
    pub risk_scores: Vec<f64>,
    pub trends: Vec<DepartmentTrend>,
    pub training: Vec<TrainingRow>,
    pub riskiest: Vec<RiskyUser>,
    pub repeat_clickers: Vec<RepeatClicker>,
}

/// Pooled counts of one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRates {
    pub at: DateTime<Utc>,
    pub users: i64,
    pub sent: i64,
    pub clicked: i64,
    pub submitted: i64,
}

impl SnapshotRates {
    pub fn click_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.clicked as f64 / self.sent as f64)
    }

    pub fn submit_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.submitted as f64 / self.sent as f64)
    }
}

/// One `group_rates` row.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRate {
    pub name: String,
    pub users: i64,
    pub sent: i64,
    pub clicked: i64,
    pub rate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub rank: Option<i64>,
}

/// The periods of one department in `department_trend`.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentTrend {
    pub department: String,
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub end: DateTime<Utc>,
    pub rate: Option<f64>,
    pub sent: i64,
}

/// Training totals of one department at the latest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub department: String,
    pub users: i64,
    pub enrolled: i64,
    pub not_completed: i64,
    /// Users with at least one overdue course.
    pub overdue_users: i64,
}

impl TrainingRow {
    /// `1 − not_completed / enrolled`, as in `department_trend`.
    pub fn completion_rate(&self) -> Option<f64> {
        (self.enrolled > 0).then(|| 1.0 - self.not_completed as f64 / self.enrolled as f64)
    }

    pub fn overdue_share(&self) -> Option<f64> {
        (self.users > 0).then(|| self.overdue_users as f64 / self.users as f64)
    }
}

/// One `user_risk` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskyUser {
    pub rank: Option<i64>,
    pub name: String,
    pub email: String,
    pub department: String,
    pub manager: String,
    pub risk_score: Option<f64>,
    pub risk_band: String,
    pub sent: i64,
    pub clicked: i64,
    pub submitted: i64,
}

/// One `repeat_clickers` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatClicker {
    pub name: String,
    pub email: String,
    pub department: String,
    pub periods_with_clicks: i64,
    pub clicks_gained: i64,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The report tables that the page reads, by name.
pub struct Tables<'a> {
    pub user_risk: &'a DataFrame,
    pub group_rates: &'a DataFrame,
    pub department_trend: &'a DataFrame,
    pub repeat_clickers: &'a DataFrame,
}

/// Builds one [`AccountData`] per account of `user_risk`, in account order.
/// `names` maps account ids to display names; `top` caps the riskiest users.
pub fn accounts(
    tables: &Tables<'_>,
    history: &BTreeMap<String, Vec<SnapshotRates>>,
    names: &HashMap<String, String>,
    top: usize,
    min_group_size: Option<u32>,
) -> Result<Vec<AccountData>> {
    let mut accounts: BTreeMap<String, AccountData> = BTreeMap::new();
    let entry = |accounts: &mut BTreeMap<String, AccountData>, id: &str| {
        accounts
            .entry(id.to_string())
            .or_insert_with(|| AccountData {
                account_id: id.to_string(),
                display_name: names.get(id).cloned().unwrap_or_else(|| id.to_string()),
                history: history.get(id).cloned().unwrap_or_default(),
                ..AccountData::default()
            });
    };
    let user_rows = Rows::new(tables.user_risk);
    for i in 0..tables.user_risk.height() {
        entry(&mut accounts, &user_rows.text(i, "account_id")?);
    }
    read_users(tables.user_risk, &mut accounts, top)?;
    read_group_rates(tables.group_rates, &mut accounts)?;
    read_trends(tables.department_trend, &mut accounts)?;
    read_repeat_clickers(tables.repeat_clickers, &mut accounts)?;
    for account in accounts.values_mut() {
        account.training = training_rows(tables.user_risk, account, min_group_size)?;
    }
    Ok(accounts.into_values().collect())
}

fn read_users(
    frame: &DataFrame,
    accounts: &mut BTreeMap<String, AccountData>,
    top: usize,
) -> Result<()> {
    let rows = Rows::new(frame);
    for i in 0..frame.height() {
        let Some(account) = accounts.get_mut(&rows.text(i, "account_id")?) else {
            continue;
        };
        account.latest_at = rows.time(i, "snapshot_at")?;
        if let Some(score) = rows.float(i, "risk_score")? {
            account.risk_scores.push(score);
        }
        if account.riskiest.len() < top {
            account.riskiest.push(RiskyUser {
                rank: rows.int(i, "risk_rank")?,
                name: rows.text(i, "name")?,
                email: rows.text(i, "email")?,
                department: rows.text(i, "department")?,
                manager: rows.text(i, "manager")?,
                risk_score: rows.float(i, "risk_score")?,
                risk_band: rows.text(i, "risk_band")?,
                sent: rows.int(i, "sent")?.unwrap_or(0),
                clicked: rows.int(i, "clicked")?.unwrap_or(0),
                submitted: rows.int(i, "submitted")?.unwrap_or(0),
            });
        }
    }
    Ok(())
}

fn read_group_rates(frame: &DataFrame, accounts: &mut BTreeMap<String, AccountData>) -> Result<()> {
    let rows = Rows::new(frame);
    for i in 0..frame.height() {
        let Some(account) = accounts.get_mut(&rows.text(i, "account_id")?) else {
            continue;
        };
        let group = GroupRate {
            name: rows.text(i, "value")?,
            users: rows.int(i, "users")?.unwrap_or(0),
            sent: rows.int(i, "sent")?.unwrap_or(0),
            clicked: rows.int(i, "clicked")?.unwrap_or(0),
            rate: rows.float(i, "click_rate")?,
            low: rows.float(i, "click_rate_low")?,
            high: rows.float(i, "click_rate_high")?,
            rank: rows.int(i, "rank")?,
        };
        match rows.text(i, "dimension")?.as_str() {
            "department" => account.departments.push(group),
            ACCOUNT_DIMENSION => account.pooled = Some(group),
            _ => {}
        }
    }
    Ok(())
}

fn read_trends(frame: &DataFrame, accounts: &mut BTreeMap<String, AccountData>) -> Result<()> {
    let rows = Rows::new(frame);
    for i in 0..frame.height() {
        let Some(account) = accounts.get_mut(&rows.text(i, "account_id")?) else {
            continue;
        };
        let Some(end) = rows.time(i, "period_end")? else {
            continue;
        };
        let department = rows.text(i, "department")?;
        let point = TrendPoint {
            end,
            rate: rows.float(i, "period_click_rate")?,
            sent: rows.int(i, "delta_sent")?.unwrap_or(0),
        };
        // The table is sorted by account, department and period_end.
        match account.trends.last_mut() {
            Some(trend) if trend.department == department => trend.points.push(point),
            _ => account.trends.push(DepartmentTrend {
                department,
                points: vec![point],
            }),
        }
    }
    Ok(())
}

fn read_repeat_clickers(
    frame: &DataFrame,
    accounts: &mut BTreeMap<String, AccountData>,
) -> Result<()> {
    let rows = Rows::new(frame);
    for i in 0..frame.height() {
        let Some(account) = accounts.get_mut(&rows.text(i, "account_id")?) else {
            continue;
        };
        account.repeat_clickers.push(RepeatClicker {
            name: rows.text(i, "name")?,
            email: rows.text(i, "email")?,
            department: rows.text(i, "department")?,
            periods_with_clicks: rows.int(i, "periods_with_clicks")?.unwrap_or(0),
            clicks_gained: rows.int(i, "clicks_gained")?.unwrap_or(0),
            last_seen_at: rows.time(i, "last_seen_at")?,
        });
    }
    Ok(())
}

/// Sums the training counters of the account's users per department,
/// grouped by the analysis key and shown with the department's
/// `group_rates` name. Departments with fewer than `min_group_size` users
/// are left out.
fn training_rows(
    frame: &DataFrame,
    account: &AccountData,
    min_group_size: Option<u32>,
) -> Result<Vec<TrainingRow>> {
    let display: HashMap<String, &str> = account
        .departments
        .iter()
        .map(|d| (normalize_key(&d.name), d.name.as_str()))
        .collect();
    let rows = Rows::new(frame);
    let mut totals: BTreeMap<String, TrainingRow> = BTreeMap::new();
    for i in 0..frame.height() {
        if rows.text(i, "account_id")? != account.account_id {
            continue;
        }
        let raw = rows.text(i, "department")?;
        let key = normalize_key(&raw);
        let name = display
            .get(&key)
            .map_or_else(|| display_fallback(&raw), |n| n.to_string());
        let row = totals.entry(key).or_insert_with(|| TrainingRow {
            department: name,
            users: 0,
            enrolled: 0,
            not_completed: 0,
            overdue_users: 0,
        });
        row.users += 1;
        row.enrolled += rows.int(i, "enrolled")?.unwrap_or(0);
        row.not_completed += rows.int(i, "not_completed")?.unwrap_or(0);
        row.overdue_users += i64::from(rows.int(i, "overdue_courses")?.unwrap_or(0) > 0);
    }
    let min_users = i64::from(min_group_size.unwrap_or(0));
    let mut result: Vec<TrainingRow> = totals
        .into_values()
        .filter(|r| r.users >= min_users)
        .collect();
    result.sort_by(|a, b| a.department.cmp(&b.department));
    Ok(result)
}

fn display_fallback(raw: &str) -> String {
    let cleaned = clean_spelling(raw);
    if cleaned.is_empty() {
        crate::analysis::NONE_LABEL.to_string()
    } else {
        cleaned
    }
}

/// Reads the pooled rates of every snapshot in the store, per account in
/// time order, with the derived counts of the analysis.
pub fn snapshot_history(snapshots: LazyFrame) -> Result<BTreeMap<String, Vec<SnapshotRates>>> {
    let frame = prepare(snapshots, &AnalysisParams::default())?
        .lazy()
        .group_by([col("account_id"), col("snapshot_at")])
        .agg([
            len().cast(DataType::Int64).alias("users"),
            col("sent").sum(),
            col("clicked").sum(),
            col("submitted").sum(),
        ])
        .sort(
            ["account_id", "snapshot_at"],
            SortMultipleOptions::default(),
        )
        .collect()
        .context("failed to sum the snapshots")?;
    let rows = Rows::new(&frame);
    let mut history: BTreeMap<String, Vec<SnapshotRates>> = BTreeMap::new();
    for i in 0..frame.height() {
        let Some(at) = rows.time(i, "snapshot_at")? else {
            continue;
        };
        history
            .entry(rows.text(i, "account_id")?)
            .or_default()
            .push(SnapshotRates {
                at,
                users: rows.int(i, "users")?.unwrap_or(0),
                sent: rows.int(i, "sent")?.unwrap_or(0),
                clicked: rows.int(i, "clicked")?.unwrap_or(0),
                submitted: rows.int(i, "submitted")?.unwrap_or(0),
            });
    }
    Ok(history)
}

/// Finds each account's most common `company_name` in its latest snapshot,
/// the fallback display name when the config file names none.
pub fn company_names(snapshots: LazyFrame) -> Result<HashMap<String, String>> {
    let frame = crate::query::latest(snapshots)?
        .filter(col("company_name").is_not_null())
        .group_by([col("account_id"), col("company_name")])
        .agg([len().alias("rows")])
        .sort(
            ["account_id", "rows", "company_name"],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .collect()
        .context("failed to read the company names")?;
    let rows = Rows::new(&frame);
    let mut names = HashMap::new();
    for i in 0..frame.height() {
        let name = rows.text(i, "company_name")?;
        if !name.trim().is_empty() {
            names.entry(rows.text(i, "account_id")?).or_insert(name);
        }
    }
    Ok(names)
}

/// Typed reads of single cells, with a clear error for a missing column.
struct Rows<'a> {
    frame: &'a DataFrame,
}

impl<'a> Rows<'a> {
    fn new(frame: &'a DataFrame) -> Self {
        Rows { frame }
    }

    fn cell(&self, i: usize, name: &str) -> Result<AnyValue<'a>> {
        let column = self
            .frame
            .column(name)
            .with_context(|| format!("the report table has no column {name}"))?;
        Ok(column.get(i)?)
    }

    /// Returns the text of a cell, "" for null.
    fn text(&self, i: usize, name: &str) -> Result<String> {
        Ok(match self.cell(i, name)? {
            AnyValue::Null => String::new(),
            AnyValue::String(text) => text.to_string(),
            AnyValue::StringOwned(text) => text.to_string(),
            other => other.to_string(),
        })
    }

    fn int(&self, i: usize, name: &str) -> Result<Option<i64>> {
        let value = self.cell(i, name)?;
        Ok(if value.is_null() {
            None
        } else {
            value.extract::<i64>()
        })
    }

    fn float(&self, i: usize, name: &str) -> Result<Option<f64>> {
        let value = self.cell(i, name)?;
        Ok(if value.is_null() {
            None
        } else {
            value.extract::<f64>().filter(|v| v.is_finite())
        })
    }

    fn time(&self, i: usize, name: &str) -> Result<Option<DateTime<Utc>>> {
        let micros = match self.cell(i, name)? {
            AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => match unit {
                TimeUnit::Nanoseconds => v / 1_000,
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v * 1_000,
            },
            _ => return Ok(None),
        };
        Ok(DateTime::from_timestamp_micros(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_rates_by_hand() {
        let row = TrainingRow {
            department: "Økonomi".into(),
            users: 4,
            enrolled: 8,
            not_completed: 2,
            overdue_users: 1,
        };
        assert_eq!(row.completion_rate(), Some(0.75));
        assert_eq!(row.overdue_share(), Some(0.25));
        let empty = TrainingRow {
            enrolled: 0,
            users: 0,
            ..row
        };
        assert_eq!(empty.completion_rate(), None);
        assert_eq!(empty.overdue_share(), None);
    }
}
