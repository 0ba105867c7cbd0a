//! Per-account summary of the report tables, for the terminal and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::ReportTables;
use super::params::AnalysisParams;
use super::prepare::prepare;

/// Maximum rank of the departments listed in a summary. Tied departments
/// are all listed, so a summary can list more than this many.
pub const TOP_DEPARTMENTS: i64 = 5;

/// Summary of every account in the snapshots, ordered by account id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub accounts: Vec<AccountSummary>,
}

/// Headline numbers of one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    pub account_id: String,
    /// Users in the latest snapshot in range.
    pub users: u64,
    /// Snapshots in range.
    pub snapshot_count: u64,
    #[serde(serialize_with = "serialize_time")]
    pub first_snapshot_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_time")]
    pub last_snapshot_at: DateTime<Utc>,
    /// Pooled click rate of the latest snapshot: clicked / sent over all
    /// users, as a fraction. `None` when no email was sent.
    pub click_rate: Option<f64>,
    /// Change of the pooled click rate since the previous snapshot, in
    /// percentage points. `None` with one snapshot or when either snapshot
    /// has no email sent.
    pub click_rate_change_pp: Option<f64>,
    /// Users in the "critical" risk band.
    pub critical_users: u64,
    pub repeat_clickers: u64,
    /// Departments ranked 1 to [`TOP_DEPARTMENTS`] by `click_rate_low`.
    pub riskiest_departments: Vec<DepartmentRisk>,
}

/// One department of [`AccountSummary::riskiest_departments`], with the
/// values of its `group_rates` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartmentRisk {
    pub rank: i64,
    pub department: String,
    pub users: i64,
    pub sent: i64,
    pub clicked: i64,
    pub click_rate: f64,
    pub click_rate_low: f64,
    pub click_rate_high: f64,
}

fn serialize_time<S: serde::Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Pooled email and click totals of one snapshot.
struct SnapshotTotals {
    at: DateTime<Utc>,
    sent: i64,
    clicked: i64,
}

impl SnapshotTotals {
    fn click_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.clicked as f64 / self.sent as f64)
    }
}

/// Builds the summary of every account from the snapshots and the tables that
/// [`super::analyze`] built from them with the same `params`.
pub fn summarize(
    snapshots: LazyFrame,
    tables: &ReportTables,
    params: &AnalysisParams,
) -> anyhow::Result<Summary> {
    let totals = snapshot_totals(prepare(snapshots, params)?.lazy());
    summarize_totals(totals, tables)
}

/// Builds the summary from the pooled totals of every snapshot in range (the
/// output of [`snapshot_totals`], possibly concatenated over disjoint
/// snapshots) and the report tables built from the same snapshots.
pub(crate) fn summarize_totals(
    totals: LazyFrame,
    tables: &ReportTables,
) -> anyhow::Result<Summary> {
    let totals = totals_by_account(totals)?;
    let users = count_by_account(&tables.user_risk, None)?;
    let critical = count_by_account(&tables.user_risk, Some(("risk_band", "critical")))?;
    let repeat = count_by_account(&tables.repeat_clickers, None)?;
    let mut departments = riskiest_departments(&tables.group_rates)?;

    let mut accounts = Vec::with_capacity(totals.len());
    for (account_id, snapshots) in totals {
        let (Some(first), Some(latest)) = (snapshots.first(), snapshots.last()) else {
            continue;
        };
        accounts.push(AccountSummary {
            users: users.get(&account_id).copied().unwrap_or(0),
            snapshot_count: snapshots.len() as u64,
            first_snapshot_at: first.at,
            last_snapshot_at: latest.at,
            click_rate: latest.click_rate(),
            click_rate_change_pp: click_rate_change_pp(&snapshots),
            critical_users: critical.get(&account_id).copied().unwrap_or(0),
            repeat_clickers: repeat.get(&account_id).copied().unwrap_or(0),
            riskiest_departments: departments.remove(&account_id).unwrap_or_default(),
            account_id,
        });
    }
    Ok(Summary { accounts })
}

/// Returns the change of the pooled click rate from the second-latest to the
/// latest snapshot, in percentage points.
fn click_rate_change_pp(snapshots: &[SnapshotTotals]) -> Option<f64> {
    let [.., previous, latest] = snapshots else {
        return None;
    };
    Some((latest.click_rate()? - previous.click_rate()?) * 100.0)
}

/// Sums `sent` and `clicked` of prepared rows per account and snapshot.
pub(crate) fn snapshot_totals(prepared: LazyFrame) -> LazyFrame {
    prepared
        .group_by([col("account_id"), col("snapshot_at")])
        .agg([col("sent").sum(), col("clicked").sum()])
}

/// Collects the output of [`snapshot_totals`] per account in time order.
fn totals_by_account(totals: LazyFrame) -> anyhow::Result<BTreeMap<String, Vec<SnapshotTotals>>> {
    let frame = totals
        .select([
            col("account_id"),
            col("snapshot_at").dt().timestamp(TimeUnit::Microseconds),
            col("sent"),
            col("clicked"),
        ])
        .sort(
            ["account_id", "snapshot_at"],
            SortMultipleOptions::default(),
        )
        .collect()?;

    let accounts = frame.column("account_id")?.str()?;
    let mut totals: BTreeMap<String, Vec<SnapshotTotals>> = BTreeMap::new();
    for i in 0..frame.height() {
        let account = accounts.get(i).unwrap_or_default().to_owned();
        totals
            .entry(account)
            .or_default()
            .push(snapshot_row(&frame, i)?);
    }
    Ok(totals)
}

fn snapshot_row(frame: &DataFrame, i: usize) -> anyhow::Result<SnapshotTotals> {
    let int =
        |name: &str| -> PolarsResult<i64> { Ok(frame.column(name)?.i64()?.get(i).unwrap_or(0)) };
    let micros = int("snapshot_at")?;
    let at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| anyhow::anyhow!("snapshot time {micros} µs is out of range"))?;
    Ok(SnapshotTotals {
        at,
        sent: int("sent")?,
        clicked: int("clicked")?,
    })
}

/// Counts the rows of each account, or only those whose String column
/// `filter.0` equals `filter.1`.
fn count_by_account(
    table: &DataFrame,
    filter: Option<(&str, &str)>,
) -> PolarsResult<BTreeMap<String, u64>> {
    let accounts = table.column("account_id")?.str()?;
    let matches: Option<&StringChunked> = match filter {
        Some((name, _)) => Some(table.column(name)?.str()?),
        None => None,
    };
    let mut counts = BTreeMap::new();
    for i in 0..table.height() {
        let keep = match (matches, filter) {
            (Some(values), Some((_, wanted))) => values.get(i) == Some(wanted),
            _ => true,
        };
        if keep && let Some(account) = accounts.get(i) {
            *counts.entry(account.to_owned()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Selects the ranked departments up to [`TOP_DEPARTMENTS`] of each account,
/// in rank order.
fn riskiest_departments(
    group_rates: &DataFrame,
) -> PolarsResult<BTreeMap<String, Vec<DepartmentRisk>>> {
    let top = group_rates
        .clone()
        .lazy()
        .filter(col("dimension").eq(lit("department")))
        .filter(col("rank").lt_eq(lit(TOP_DEPARTMENTS)))
        .sort(
            ["account_id", "rank", "value"],
            SortMultipleOptions::default(),
        )
        .collect()?;

    let accounts = top.column("account_id")?.str()?;
    let mut departments: BTreeMap<String, Vec<DepartmentRisk>> = BTreeMap::new();
    for i in 0..top.height() {
        let account = accounts.get(i).unwrap_or_default().to_owned();
        departments
            .entry(account)
            .or_default()
            .push(department_row(&top, i)?);
    }
    Ok(departments)
}

/// Reads row `i` of the ranked `group_rates` rows. Ranked rows have emails
/// sent, so their rates are not null.
fn department_row(top: &DataFrame, i: usize) -> PolarsResult<DepartmentRisk> {
    let int =
        |name: &str| -> PolarsResult<i64> { Ok(top.column(name)?.i64()?.get(i).unwrap_or(0)) };
    let float =
        |name: &str| -> PolarsResult<f64> { Ok(top.column(name)?.f64()?.get(i).unwrap_or(0.0)) };
    Ok(DepartmentRisk {
        rank: int("rank")?,
        department: top
            .column("value")?
            .str()?
            .get(i)
            .unwrap_or_default()
            .to_owned(),
        users: int("users")?,
        sent: int("sent")?,
        clicked: int("clicked")?,
        click_rate: float("click_rate")?,
        click_rate_low: float("click_rate_low")?,
        click_rate_high: float("click_rate_high")?,
    })
}

/// Renders the summary as plain text for the terminal, one block per account.
pub fn render_summary(summary: &Summary) -> String {
    if summary.accounts.is_empty() {
        return "No snapshots in the selected date range.\n".to_owned();
    }
    let mut text = String::new();
    for (index, account) in summary.accounts.iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        render_account(&mut text, account);
    }
    text
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

fn render_account(text: &mut String, account: &AccountSummary) {
    let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    // Writing to a String cannot fail, so the fmt::Result values are ignored.
    let _ = writeln!(text, "Account {}", account.account_id);
    let _ = writeln!(
        text,
        "  Snapshots: {}, from {} to {}",
        account.snapshot_count,
        time(&account.first_snapshot_at),
        time(&account.last_snapshot_at)
    );
    let _ = writeln!(text, "  Users in the latest snapshot: {}", account.users);
    let rate = account
        .click_rate
        .map_or("no emails sent".to_owned(), percent);
    let change = match (account.click_rate_change_pp, account.snapshot_count) {
        (Some(pp), _) => format!(" ({pp:+.1} pp since the previous snapshot)"),
        (None, 1) => String::new(),
        (None, _) => {
            " (no change shown: the latest or the previous snapshot has no emails sent)".to_owned()
        }
    };
    let _ = writeln!(text, "  Click rate, all users pooled: {rate}{change}");
    let _ = writeln!(text, "  Users at critical risk: {}", account.critical_users);
    let _ = writeln!(text, "  Repeat clickers: {}", account.repeat_clickers);
    render_departments(text, &account.riskiest_departments);
}

fn render_departments(text: &mut String, departments: &[DepartmentRisk]) {
    if departments.is_empty() {
        let _ = writeln!(text, "  Riskiest departments: none with emails sent");
        return;
    }
    let _ = writeln!(
        text,
        "  Riskiest departments, by the lower bound of the 95% Wilson interval:"
    );
    let width = departments
        .iter()
        .map(|d| d.department.chars().count())
        .max()
        .unwrap_or(0);
    for d in departments {
        let padding = " ".repeat(width - d.department.chars().count());
        let _ = writeln!(
            text,
            "    {:>2}. {}{padding}  {} (95% CI {} to {}), {} {}, {} of {} emails clicked",
            d.rank,
            d.department,
            percent(d.click_rate),
            percent(d.click_rate_low),
            percent(d.click_rate_high),
            d.users,
            if d.users == 1 { "user" } else { "users" },
            d.clicked,
            d.sent
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::analysis::params::RiskWeights;
    use crate::analysis::test_support::*;

    const T: [&str; 3] = [
        "2025-03-03T08:00:00Z",
        "2025-03-10T08:00:00Z",
        "2025-03-17T08:00:00Z",
    ];

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

    fn sample_rows() -> Vec<UserRow> {
        vec![
            user("a", T[0], "u1").dept("Sales").phishing(10, 1, 0),
            user("a", T[0], "u2").dept("IT").phishing(10, 0, 0),
            user("a", T[1], "u1").dept("Sales").phishing(20, 5, 0),
            user("a", T[1], "u2").dept("IT").phishing(20, 1, 0),
            user("a", T[1], "u3").dept("IT").phishing(4, 4, 0),
            user("a", T[2], "u1").dept("Sales").phishing(30, 6, 0),
            user("a", T[2], "u2").dept("IT").phishing(30, 1, 0),
            user("a", T[2], "u3").dept("IT").phishing(4, 4, 0),
            user("b", T[0], "v1").dept("Ops"),
        ]
    }

    fn sample_summary() -> Summary {
        let params = click_only();
        let tables = analyze(snapshot_frame(&sample_rows()), &params).unwrap();
        summarize(snapshot_frame(&sample_rows()), &tables, &params).unwrap()
    }

    #[test]
    fn summary_headline_numbers() {
        let summary = sample_summary();
        assert_eq!(summary.accounts.len(), 2);
        let a = &summary.accounts[0];
        assert_eq!(a.account_id, "a");
        assert_eq!(a.users, 3);
        assert_eq!(a.snapshot_count, 3);
        assert_eq!(
            a.first_snapshot_at.to_rfc3339(),
            "2025-03-03T08:00:00+00:00"
        );
        assert_eq!(a.last_snapshot_at.to_rfc3339(), "2025-03-17T08:00:00+00:00");
        // Latest: (6 + 1 + 4) / (30 + 30 + 4) = 11/64; previous: (5 + 1 + 4) / 44 = 10/44.
        assert_close(a.click_rate, 11.0 / 64.0, "latest pooled rate");
        // (11/64 − 10/44) · 100 = −5.53977272727273 pp.
        assert_close(a.click_rate_change_pp, -5.53977272727273, "change");
        // Click weight only, m = 0: u3 clicked 4 of 4, score 100.
        assert_eq!(a.critical_users, 1);
        // u1 clicked more in both periods (1 → 5 → 6).
        assert_eq!(a.repeat_clickers, 1);
    }

    #[test]
    fn summary_ranks_departments_by_lower_bound() {
        let summary = sample_summary();
        let departments = &summary.accounts[0].riskiest_departments;
        let names: Vec<&str> = departments.iter().map(|d| d.department.as_str()).collect();
        // Sales 6/30, Wilson low 0.0950510712188294; IT 5/34, low 0.0644944140397586.
        assert_eq!(names, ["Sales", "IT"]);
        assert_eq!(departments[0].rank, 1);
        assert_eq!((departments[0].clicked, departments[0].sent), (6, 30));
        assert_close(
            Some(departments[0].click_rate_low),
            0.0950510712188294,
            "Sales low",
        );
        assert_close(
            Some(departments[1].click_rate_low),
            0.0644944140397586,
            "IT low",
        );
    }

    #[test]
    fn single_snapshot_account_has_no_change() {
        let summary = sample_summary();
        let b = &summary.accounts[1];
        assert_eq!(b.account_id, "b");
        assert_eq!(b.snapshot_count, 1);
        assert_eq!(b.click_rate, None, "no emails sent");
        assert_eq!(b.click_rate_change_pp, None);
        assert!(b.riskiest_departments.is_empty());
    }

    #[test]
    fn summary_renders_and_serializes() {
        let summary = sample_summary();
        let text = render_summary(&summary);
        assert!(text.contains("Account a\n"), "{text}");
        assert!(
            text.contains(
                "Click rate, all users pooled: 17.2% (-5.5 pp since the previous snapshot)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                " 1. Sales  20.0% (95% CI 9.5% to 37.3%), 1 user, 6 of 30 emails clicked"
            ),
            "{text}"
        );
        assert!(
            text.contains("Click rate, all users pooled: no emails sent\n"),
            "{text}"
        );

        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json["accounts"][0]["last_snapshot_at"],
            "2025-03-17T08:00:00Z"
        );
        assert_eq!(
            json["accounts"][0]["riskiest_departments"][0]["department"],
            "Sales"
        );
        assert_eq!(
            json["accounts"][1]["click_rate_change_pp"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn empty_range_renders_message() {
        let params = AnalysisParams {
            since: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            ..AnalysisParams::default()
        };
        let tables = analyze(snapshot_frame(&sample_rows()), &params).unwrap();
        let summary = summarize(snapshot_frame(&sample_rows()), &tables, &params).unwrap();
        assert!(summary.accounts.is_empty());
        assert_eq!(
            render_summary(&summary),
            "No snapshots in the selected date range.\n"
        );
    }
}
