//! `cpstat fetch` and `cpstat analyze` run end to end through the real binary
//! against the mock API, with every column of the report tables recomputed
//! from the snapshot files by an independent model of docs/metrics.md.
//!
//! The model reads the snapshots with the `parquet` crate and computes each
//! column in plain Rust. It shares no code with cpstat's polars analysis,
//! so a disagreement points at one of the two.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, NaiveTime, Utc};
use common::*;
use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use parquet::record::Field;
use serde_json::{Value, json};
use unicode_normalization::UnicodeNormalization;

// ---------------------------------------------------------------------------
// Definitions of docs/metrics.md, with the default parameters.

/// Strength `m` of the prior of the smoothed rates, in pseudo-emails.
const SMOOTHING_STRENGTH: f64 = 4.0;
const WEIGHT_CLICK: f64 = 0.30;
const WEIGHT_SUBMIT: f64 = 0.30;
const WEIGHT_TRAINING: f64 = 0.15;
const WEIGHT_OVERDUE: f64 = 0.10;
const WEIGHT_SCORE: f64 = 0.15;
/// Normal quantile of every 95% Wilson interval.
const Z_95: f64 = 1.959964;
const SIGNIFICANCE_LEVEL: f64 = 0.05;
/// Overdue courses at which the overdue component reaches 1.
const OVERDUE_CAP: i64 = 3;
/// Lower bounds of the bands `medium`, `high` and `critical`.
const BAND_BOUNDS: [f64; 3] = [25.0, 50.0, 75.0];
const MIN_REPEAT_PERIODS: usize = 2;
/// Decimal places of the points and the risk score.
const SCORE_DECIMALS: i32 = 9;
/// Display value of the group of null and blank values.
const NONE_LABEL: &str = "(none)";
const DIMENSIONS: [&str; 5] = ["department", "branch", "group", "country", "manager"];
/// Format of the period bounds in `click_periods`.
const PERIOD_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Absolute tolerance of float columns that are not rounded.
const TOLERANCE: f64 = 1e-9;
/// Absolute tolerance of the columns rounded to 9 decimals: one unit in the
/// ninth decimal place, because a sum that lies within float noise of a
/// rounding boundary may round either way.
const ROUNDED_TOLERANCE: f64 = 1.000_001e-9;

// ---------------------------------------------------------------------------
// The simulated accounts and the fetch schedule.

const ACCOUNT_A: &str = "0b5f4a8e-1111-4c1e-9d7a-000000000001";
const ACCOUNT_B: &str = "0b5f4a8e-2222-4c1e-9d7a-000000000002";
/// Simulated days of the snapshots, one week apart.
const DAYS: [u32; 5] = [60, 67, 74, 81, 88];

/// Builds the two accounts. The seeds were chosen so that the simulated weeks
/// contain hires, leavers, department moves and at least one counter reset,
/// and so that account B has manager names in decomposed Unicode (NFD).
fn organisations() -> Vec<Organisation> {
    let account_a = OrgConfig {
        seed: 25,
        account_id: ACCOUNT_A.to_string(),
        company_name: "Nordlys Energi A/S".to_string(),
        users: 300,
        ..OrgConfig::default()
    };
    let account_b = OrgConfig {
        seed: 24,
        account_id: ACCOUNT_B.to_string(),
        company_name: "Fjordbank ASA".to_string(),
        users: 160,
        ..OrgConfig::default()
    };
    vec![Organisation::new(account_a), Organisation::new(account_b)]
}

/// Returns the snapshot time of a simulated day: 06:00 UTC on its date.
fn snapshot_time(organisation: &Organisation, day: u32) -> DateTime<Utc> {
    organisation
        .date_of(day)
        .and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 is a valid time"))
        .and_utc()
}

// ---------------------------------------------------------------------------
// A hand-written account with the irregular values that the simulation never
// produces: broken and negative counters, nulls, out-of-range scores,
// spellings that fold together, duplicate and nameless groups, ties.

const ACCOUNT_IRREGULAR: &str = "0b5f4a8e-3333-4c1e-9d7a-000000000003";

/// Builds a users-summary entry with zero phishing counters, one of two
/// courses open, one completed material and no score. The callers change
/// what their case needs.
fn hand_written_user(id: u64, department: Value) -> Value {
    json!({
        "enrolledCourses": 2,
        "notCompletedCourses": 1,
        "overdueCourses": 0,
        "enrolledMaterials": 1,
        "notCompletedMaterials": 0,
        "phishingCampaigns": 1,
        "emailsSent": 0,
        "linksClicked": 0,
        "dataSubmitted": 0,
        "lastAction": null,
        "averageScore": null,
        "user": {
            "id": id,
            "email": format!("user{id}@irregular.example"),
            "created": "2023-06-01T08:00:00Z",
            "name": format!("User {id}"),
            "firstName": "User",
            "lastName": id.to_string(),
            "meta": {
                "companyName": "Irregular ApS",
                "manager": "\u{C5}se Berg",
                "managerEmail": null,
                "department": department,
                "country": "DK",
            },
            "branch": {"id": 1, "name": "K\u{F8}benhavn"},
            "groups": [],
        },
    })
}

fn with_phishing(mut entry: Value, sent: i64, clicked: i64, submitted: i64) -> Value {
    entry["emailsSent"] = json!(sent);
    entry["linksClicked"] = json!(clicked);
    entry["dataSubmitted"] = json!(submitted);
    entry
}

/// Returns the entries of the irregular account at snapshot `step`, 0 to 4.
fn irregular_entries(step: i64) -> Vec<Value> {
    let k = step;
    let mut entries = Vec::new();

    // Three spellings of one department. User 1 clicks more every week, so
    // it is a repeat clicker.
    let mut clicker = with_phishing(hand_written_user(1, json!("Sales")), 10 + 2 * k, 1 + k, 0);
    clicker["averageScore"] = json!(80);
    entries.push(clicker);
    // More submissions than clicks, and a score above 100 sent as a float.
    let mut submits = with_phishing(hand_written_user(2, json!(" sales ")), 5 + k, 1, 3);
    submits["averageScore"] = json!(150.5);
    submits["user"]["meta"]["country"] = json!("dk ");
    entries.push(submits);
    // More clicks than emails: the derived clicks stay at the 2 emails.
    let mut over_clicks = with_phishing(hand_written_user(3, json!("SALES")), 2, 4 + k, 0);
    over_clicks["user"]["meta"]["manager"] = json!("A\u{30A}se Berg");
    entries.push(over_clicks);

    // Full case folding makes these one department, and the two spellings
    // tie. User 4 also has a score below 0.
    let mut fold = with_phishing(hand_written_user(4, json!("Stra\u{DF}e")), 4 * k, k, 0);
    fold["averageScore"] = json!(-5);
    entries.push(fold);
    let mut upper = with_phishing(hand_written_user(5, json!("STRASSE")), 4 * k, 0, 0);
    upper["user"]["meta"]["manager"] = json!("\u{C5}SE BERG");
    entries.push(upper);

    // Århus in NFD and in NFC. Counters and a score arrive as text and floats.
    let mut decomposed = hand_written_user(6, json!("A\u{30A}rhus"));
    decomposed["emailsSent"] = json!((7 + k).to_string());
    decomposed["linksClicked"] = json!(2.0);
    decomposed["averageScore"] = json!("64");
    entries.push(decomposed);
    let mut composed = with_phishing(hand_written_user(7, json!("\u{C5}rhus")), 3, 0, 0);
    composed["averageScore"] = json!(72.5);
    entries.push(composed);

    // Null, empty and blank departments. User 8 also has no manager.
    let mut no_department = with_phishing(hand_written_user(8, Value::Null), 6, 1, 1);
    no_department["user"]["meta"]["manager"] = Value::Null;
    entries.push(no_department);
    entries.push(with_phishing(hand_written_user(9, json!("")), 6, 0, 0));
    entries.push(with_phishing(
        hand_written_user(10, json!("\u{A0}\t")),
        6,
        2,
        0,
    ));

    // Negative counters.
    let mut negative = with_phishing(hand_written_user(11, json!("IT")), -3, 1, 0);
    negative["enrolledCourses"] = json!(-1);
    entries.push(negative);
    // Null counters, counted as 0 and flagged.
    let mut missing = with_phishing(hand_written_user(12, json!("IT")), 4, 0, 0);
    missing["linksClicked"] = Value::Null;
    missing["overdueCourses"] = Value::Null;
    entries.push(missing);
    // More open courses than enrolled, and overdue above the cap of 3.
    let mut training = hand_written_user(13, json!("IT"));
    training["enrolledCourses"] = json!(3);
    training["notCompletedCourses"] = json!(5);
    training["overdueCourses"] = json!(7);
    entries.push(training);

    // One group in two spellings counts once. Null groups and a nameless
    // group fall into (none).
    let mut grouped = with_phishing(hand_written_user(14, json!("IT")), 8, 2, 1);
    grouped["user"]["groups"] = json!([
        {"id": 1, "name": "Pilot"},
        {"id": 2, "name": "pilot "},
        {"id": 3, "name": "Ledere"},
    ]);
    entries.push(grouped);
    let mut null_groups = with_phishing(hand_written_user(15, json!("IT")), 8, 0, 0);
    null_groups["user"]["groups"] = Value::Null;
    entries.push(null_groups);
    let mut nameless = with_phishing(hand_written_user(16, json!("IT")), 8, 3, 0);
    nameless["user"]["groups"] = json!([{"id": 4, "name": null}, {"id": 1, "name": "PILOT"}]);
    entries.push(nameless);

    // Counters reset to lower values from snapshot 2.
    let reset = if k < 2 {
        with_phishing(hand_written_user(17, json!("Sales")), 20 + k, 5 + k, 2)
    } else {
        with_phishing(hand_written_user(17, json!("Sales")), k - 1, k - 2, 0)
    };
    entries.push(reset);
    // Moves from IT to Sales at snapshot 2.
    let department = if k < 2 { "IT" } else { "Sales" };
    entries.push(with_phishing(
        hand_written_user(18, json!(department)),
        3 * k,
        k / 2,
        0,
    ));
    // Joins at snapshot 1, and leaves after snapshot 2.
    if k >= 1 {
        entries.push(with_phishing(
            hand_written_user(19, json!("IT")),
            2 * k,
            1,
            0,
        ));
    }
    if k <= 2 {
        entries.push(with_phishing(hand_written_user(20, json!("IT")), 5, 2, 1));
    }

    // One email and three clicks between snapshots 1 and 2, so the period's
    // clicks exceed its sends; the other periods send nothing.
    let late = if k < 2 { (5, 1) } else { (6, 4) };
    entries.push(with_phishing(
        hand_written_user(21, json!("Lager")),
        late.0,
        late.1,
        0,
    ));
    // A department whose clicks never rise, so the pooled rate of the z-test
    // is 0.
    entries.push(with_phishing(
        hand_written_user(22, json!("Finans")),
        3 * k,
        0,
        0,
    ));
    entries.push(with_phishing(
        hand_written_user(23, json!("Finans")),
        3 * k + 1,
        0,
        0,
    ));
    // Two users with equal inputs share a risk rank. The second name needs
    // quoting in CSV.
    entries.push(with_phishing(
        hand_written_user(24, json!("Finans")),
        9,
        3,
        1,
    ));
    let mut quoted = with_phishing(hand_written_user(25, json!("Finans")), 9, 3, 1);
    quoted["user"]["name"] = json!("Hansen, \"Bo\"\nJr.");
    entries.push(quoted);
    // A department that sends nothing is not ranked. The name starts like a
    // spreadsheet formula, which the CSV guards with a leading quote.
    let mut formula = hand_written_user(26, json!("Kantine"));
    formula["user"]["name"] = json!("=1+1");
    entries.push(formula);
    entries
}

/// An account that has sent no phishing email, so its pooled rates are 0.
const ACCOUNT_NO_EMAIL: &str = "0b5f4a8e-4444-4c1e-9d7a-000000000004";

/// Returns the entries of the account without emails at snapshot `step`.
fn no_email_entries(step: i64) -> Vec<Value> {
    // The points 15 · 18/25, 10 · 3/3 and 15 · (1 − 0.72) add up to
    // 24.999999999999996 in floating point, and to 25 (band `medium`) once
    // rounded to 9 decimals.
    let mut boundary = hand_written_user(1, json!("Support"));
    boundary["enrolledCourses"] = json!(25);
    boundary["notCompletedCourses"] = json!(18);
    boundary["enrolledMaterials"] = json!(0);
    boundary["overdueCourses"] = json!(3);
    boundary["averageScore"] = json!(72);
    // Nothing enrolled and no score: both gaps take the account mean.
    let mut unknown = hand_written_user(2, json!("Support"));
    for counter in [
        "enrolledCourses",
        "notCompletedCourses",
        "enrolledMaterials",
    ] {
        unknown[counter] = json!(0);
    }
    let mut entries = vec![boundary, unknown];
    if step >= 1 {
        let mut joiner = hand_written_user(3, json!("Service"));
        joiner["averageScore"] = json!(50);
        entries.push(joiner);
    }
    entries
}

// ---------------------------------------------------------------------------
// Snapshot rows, read back with the `parquet` crate.

/// The nine counters of a snapshot row, null where the API sent none.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    enrolled_courses: Option<i64>,
    not_completed_courses: Option<i64>,
    overdue_courses: Option<i64>,
    enrolled_materials: Option<i64>,
    not_completed_materials: Option<i64>,
    phishing_campaigns: Option<i64>,
    emails_sent: Option<i64>,
    links_clicked: Option<i64>,
    data_submitted: Option<i64>,
}

impl Counters {
    fn all(&self) -> [Option<i64>; 9] {
        [
            self.enrolled_courses,
            self.not_completed_courses,
            self.overdue_courses,
            self.enrolled_materials,
            self.not_completed_materials,
            self.phishing_campaigns,
            self.emails_sent,
            self.links_clicked,
            self.data_submitted,
        ]
    }
}

/// One user of a snapshot, with the columns that the analysis reads.
#[derive(Clone, Debug)]
struct SnapshotUser {
    user_id: String,
    email: Option<String>,
    name: Option<String>,
    department: Option<String>,
    branch_name: Option<String>,
    manager: Option<String>,
    country: Option<String>,
    /// Names of the `groups` entries, `None` for a null list.
    groups: Option<Vec<Option<String>>>,
    counters: Counters,
    /// `average_score` with NaN read as null.
    average_score: Option<f64>,
}

impl SnapshotUser {
    fn from_row(row: &Row) -> SnapshotUser {
        let counter = |column: &str| long(row, column);
        SnapshotUser {
            user_id: text(row, "user_id").expect("user_id is never null in a snapshot"),
            email: text(row, "email"),
            name: text(row, "name"),
            department: text(row, "department"),
            branch_name: text(row, "branch_name"),
            manager: text(row, "manager"),
            country: text(row, "country"),
            groups: groups(row).map(|list| list.into_iter().map(|(_, name)| name).collect()),
            counters: Counters {
                enrolled_courses: counter("enrolled_courses"),
                not_completed_courses: counter("not_completed_courses"),
                overdue_courses: counter("overdue_courses"),
                enrolled_materials: counter("enrolled_materials"),
                not_completed_materials: counter("not_completed_materials"),
                phishing_campaigns: counter("phishing_campaigns"),
                emails_sent: counter("emails_sent"),
                links_clicked: counter("links_clicked"),
                data_submitted: counter("data_submitted"),
            },
            average_score: double(row, "average_score").filter(|score| !score.is_nan()),
        }
    }

    /// Returns the raw values of a dimension: one per group entry for
    /// `group` (a single null for a null or empty list), else the column.
    fn dimension_values(&self, dimension: &str) -> Vec<Option<&str>> {
        match dimension {
            "department" => vec![self.department.as_deref()],
            "branch" => vec![self.branch_name.as_deref()],
            "country" => vec![self.country.as_deref()],
            "manager" => vec![self.manager.as_deref()],
            "group" => match &self.groups {
                Some(names) if !names.is_empty() => names.iter().map(Option::as_deref).collect(),
                _ => vec![None],
            },
            other => panic!("unknown dimension {other}"),
        }
    }
}

/// The users of one snapshot of one account, each user once.
#[derive(Clone, Debug)]
struct Snapshot {
    /// `snapshot_at` in microseconds since the Unix epoch.
    at: i64,
    users: Vec<SnapshotUser>,
}

impl Snapshot {
    fn user(&self, user_id: &str) -> Option<&SnapshotUser> {
        self.users.iter().find(|user| user.user_id == user_id)
    }

    fn users_by_id(&self) -> HashMap<&str, &SnapshotUser> {
        self.users
            .iter()
            .map(|user| (user.user_id.as_str(), user))
            .collect()
    }
}

/// Reads every snapshot file of the store: account to snapshots, oldest
/// first. Rows with a null account, user or time are dropped, and of a
/// user listed twice in one snapshot the first row is kept.
fn read_store(store: &Path) -> BTreeMap<String, Vec<Snapshot>> {
    let mut by_account: BTreeMap<String, BTreeMap<i64, Snapshot>> = BTreeMap::new();
    for path in parquet_files(&store.join("users_summary")) {
        for row in read_rows(&path) {
            let (Some(account), Some(at), Some(_)) = (
                text(&row, "account_id"),
                micros(&row, "snapshot_at"),
                text(&row, "user_id"),
            ) else {
                continue;
            };
            let user = SnapshotUser::from_row(&row);
            let snapshot = by_account
                .entry(account)
                .or_default()
                .entry(at)
                .or_insert_with(|| Snapshot {
                    at,
                    users: Vec::new(),
                });
            if snapshot.user(&user.user_id).is_none() {
                snapshot.users.push(user);
            }
        }
    }
    by_account
        .into_iter()
        .map(|(account, snapshots)| (account, snapshots.into_values().collect()))
        .collect()
}

// ---------------------------------------------------------------------------
// Derived counts and flags, as "Cleaning of the input rows" in
// docs/metrics.md defines them.

/// Derived counts and flags of one snapshot row.
#[derive(Clone, Copy, Debug)]
struct Derived {
    sent: i64,
    clicked: i64,
    submitted: i64,
    enrolled: i64,
    not_completed: i64,
    overdue: f64,
    score_clamped: Option<f64>,
    data_issue: bool,
    training_issue: bool,
    score_out_of_range: bool,
    counters_missing: bool,
}

/// Returns a counter with null and negative values read as 0.
fn non_negative(value: Option<i64>) -> i64 {
    value.unwrap_or(0).max(0)
}

fn derive(user: &SnapshotUser) -> Derived {
    let c = &user.counters;
    let sent = non_negative(c.emails_sent);
    let clicked = non_negative(c.links_clicked)
        .max(non_negative(c.data_submitted))
        .min(sent);
    let submitted = non_negative(c.data_submitted).min(clicked);

    let raw = |value: Option<i64>| value.unwrap_or(0);
    let phishing = [c.emails_sent, c.links_clicked, c.data_submitted];
    let data_issue = raw(c.data_submitted) > raw(c.links_clicked)
        || raw(c.links_clicked) > raw(c.emails_sent)
        || phishing.iter().any(|value| raw(*value) < 0);

    let training = [
        c.enrolled_courses,
        c.not_completed_courses,
        c.overdue_courses,
        c.enrolled_materials,
        c.not_completed_materials,
    ];
    let training_issue = training.iter().any(|value| raw(*value) < 0)
        || raw(c.not_completed_courses) > raw(c.enrolled_courses)
        || raw(c.not_completed_materials) > raw(c.enrolled_materials);

    let enrolled = non_negative(c.enrolled_courses) + non_negative(c.enrolled_materials);
    let not_completed = non_negative(c.not_completed_courses).min(non_negative(c.enrolled_courses))
        + non_negative(c.not_completed_materials).min(non_negative(c.enrolled_materials));
    let overdue = non_negative(c.overdue_courses).min(OVERDUE_CAP) as f64 / OVERDUE_CAP as f64;

    Derived {
        sent,
        clicked,
        submitted,
        enrolled,
        not_completed,
        overdue,
        score_clamped: user.average_score.map(|score| score.clamp(0.0, 100.0)),
        data_issue,
        training_issue,
        score_out_of_range: user
            .average_score
            .is_some_and(|score| !(0.0..=100.0).contains(&score)),
        counters_missing: c.all().iter().any(Option::is_none),
    }
}

// ---------------------------------------------------------------------------
// Grouping of names.

/// Returns the grouping key: trimmed, NFC, fully case folded, NFC again.
/// Null and blank values get the empty key.
fn group_key(value: Option<&str>) -> String {
    let composed: String = value.unwrap_or("").trim().nfc().collect();
    caseless::default_case_fold_str(&composed).nfc().collect()
}

/// Returns a spelling as counted for display: trimmed and NFC, case kept.
fn clean_spelling(value: &str) -> String {
    value.trim().nfc().collect()
}

/// Maps each key of one dimension of one account to its display value, from
/// every occurrence of the dimension's values in every snapshot.
fn display_names(snapshots: &[Snapshot], dimension: &str) -> HashMap<String, String> {
    let mut spellings: HashMap<String, BTreeMap<String, usize>> = HashMap::new();
    for snapshot in snapshots {
        for user in &snapshot.users {
            for value in user.dimension_values(dimension) {
                let counts = spellings.entry(group_key(value)).or_default();
                *counts
                    .entry(clean_spelling(value.unwrap_or("")))
                    .or_default() += 1;
            }
        }
    }
    spellings
        .into_iter()
        .map(|(key, counts)| {
            let display = if key.is_empty() {
                NONE_LABEL.to_string()
            } else {
                most_common_spelling(&counts)
            };
            (key, display)
        })
        .collect()
}

/// Returns the most common spelling, the smallest by code point on a tie.
fn most_common_spelling(counts: &BTreeMap<String, usize>) -> String {
    let highest = counts
        .values()
        .copied()
        .max()
        .expect("a key has a spelling");
    counts
        .iter()
        .find(|(_, count)| **count == highest)
        .map(|(spelling, _)| spelling.clone())
        .expect("a spelling has the highest count")
}

// ---------------------------------------------------------------------------
// Statistics.

/// Returns `numerator / denominator`, or `None` when the denominator is 0.
fn ratio(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator != 0).then(|| numerator as f64 / denominator as f64)
}

/// Returns the 95% Wilson interval of `successes` in `trials`, clamped to
/// 0..1, or `None` when `trials` is 0.
fn wilson(successes: i64, trials: i64) -> Option<(f64, f64)> {
    if trials == 0 {
        return None;
    }
    let (s, n) = (successes as f64, trials as f64);
    let z2 = Z_95 * Z_95;
    let center = s + z2 / 2.0;
    let half = Z_95 * (s * (n - s) / n + z2 / 4.0).sqrt();
    let low = ((center - half) / (n + z2)).clamp(0.0, 1.0);
    let high = ((center + half) / (n + z2)).clamp(0.0, 1.0);
    Some((low, high))
}

/// Returns the pooled two-proportion z statistic of `c2/n2 − c1/n1`, or
/// `None` when either sample is empty or the pooled rate is 0 or 1.
fn two_proportion_z(c1: i64, n1: i64, c2: i64, n2: i64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (c1, n1, c2, n2) = (c1 as f64, n1 as f64, c2 as f64, n2 as f64);
    let pooled = (c1 + c2) / (n1 + n2);
    if pooled == 0.0 || pooled == 1.0 {
        return None;
    }
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    Some((c2 / n2 - c1 / n1) / standard_error)
}

/// Returns the two-sided p-value `erfc(|z| / √2)`.
fn two_sided_p_value(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

fn round_decimals(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round_ties_even() / scale
}

/// Returns the "min" rank of `value` among `values`, highest first: 1 plus
/// the number of strictly higher values.
fn min_rank_descending(value: f64, values: &[f64]) -> i64 {
    1 + values.iter().filter(|other| **other > value).count() as i64
}

/// Splits an optional interval into its optional bounds.
fn split_interval(interval: Option<(f64, f64)>) -> (Option<f64>, Option<f64>) {
    (interval.map(|(low, _)| low), interval.map(|(_, high)| high))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Returns the change of a cumulative counter over a period: `end − start`,
/// or `end` when the counter went down (a reset).
fn counter_delta(start: i64, end: i64) -> i64 {
    if end < start { end } else { end - start }
}

fn format_time(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .expect("a snapshot time in range")
        .format(PERIOD_TIME_FORMAT)
        .to_string()
}

// ---------------------------------------------------------------------------
// Model of `user_risk`.

#[derive(Clone, Debug)]
struct ExpectedUserRisk {
    user: SnapshotUser,
    derived: Derived,
    click_rate: Option<f64>,
    submit_rate: Option<f64>,
    account_click_rate: f64,
    account_submit_rate: f64,
    click_rate_smoothed: f64,
    submit_rate_smoothed: f64,
    training_gap: Option<f64>,
    training_gap_filled: f64,
    score_gap: Option<f64>,
    score_gap_filled: f64,
    click_points: f64,
    submit_points: f64,
    training_points: f64,
    overdue_points: f64,
    score_points: f64,
    risk_score: f64,
    risk_band: &'static str,
    risk_rank: i64,
}

/// Computes the `user_risk` rows of the latest snapshot of one account.
fn model_user_risk(latest: &Snapshot) -> Vec<ExpectedUserRisk> {
    let derived: Vec<Derived> = latest.users.iter().map(derive).collect();
    let total = |count: fn(&Derived) -> i64| derived.iter().map(count).sum::<i64>();
    let total_sent = total(|d| d.sent);
    let account_click_rate = ratio(total(|d| d.clicked), total_sent).unwrap_or(0.0);
    let account_submit_rate = ratio(total(|d| d.submitted), total_sent).unwrap_or(0.0);

    let smoothed = |count: i64, sent: i64, prior: f64| {
        let trials = sent as f64 + SMOOTHING_STRENGTH;
        if trials > 0.0 {
            (count as f64 + SMOOTHING_STRENGTH * prior) / trials
        } else {
            prior
        }
    };
    let training_gaps: Vec<Option<f64>> = derived
        .iter()
        .map(|d| ratio(d.not_completed, d.enrolled))
        .collect();
    let score_gaps: Vec<Option<f64>> = derived
        .iter()
        .map(|d| d.score_clamped.map(|score| 1.0 - score / 100.0))
        .collect();
    let account_mean = |gaps: &[Option<f64>]| {
        let present: Vec<f64> = gaps.iter().flatten().copied().collect();
        mean(&present).unwrap_or(0.0)
    };
    let training_mean = account_mean(&training_gaps);
    let score_mean = account_mean(&score_gaps);
    let points =
        |weight: f64, component: f64| round_decimals(100.0 * weight * component, SCORE_DECIMALS);

    let mut rows: Vec<ExpectedUserRisk> = latest
        .users
        .iter()
        .zip(&derived)
        .zip(training_gaps.iter().zip(&score_gaps))
        .map(|((user, d), (training_gap, score_gap))| {
            let click_rate_smoothed = smoothed(d.clicked, d.sent, account_click_rate);
            let submit_rate_smoothed = smoothed(d.submitted, d.sent, account_submit_rate);
            let training_gap_filled = training_gap.unwrap_or(training_mean);
            let score_gap_filled = score_gap.unwrap_or(score_mean);
            let click_points = points(WEIGHT_CLICK, click_rate_smoothed);
            let submit_points = points(WEIGHT_SUBMIT, submit_rate_smoothed);
            let training_points = points(WEIGHT_TRAINING, training_gap_filled);
            let overdue_points = points(WEIGHT_OVERDUE, d.overdue);
            let score_points = points(WEIGHT_SCORE, score_gap_filled);
            let risk_score = round_decimals(
                click_points + submit_points + training_points + overdue_points + score_points,
                SCORE_DECIMALS,
            );
            ExpectedUserRisk {
                user: user.clone(),
                derived: *d,
                click_rate: ratio(d.clicked, d.sent),
                submit_rate: ratio(d.submitted, d.sent),
                account_click_rate,
                account_submit_rate,
                click_rate_smoothed,
                submit_rate_smoothed,
                training_gap: *training_gap,
                training_gap_filled,
                score_gap: *score_gap,
                score_gap_filled,
                click_points,
                submit_points,
                training_points,
                overdue_points,
                score_points,
                risk_score,
                risk_band: risk_band(risk_score),
                risk_rank: 0,
            }
        })
        .collect();
    let scores: Vec<f64> = rows.iter().map(|row| row.risk_score).collect();
    for row in &mut rows {
        row.risk_rank = min_rank_descending(row.risk_score, &scores);
    }
    rows
}

fn risk_band(score: f64) -> &'static str {
    if score < BAND_BOUNDS[0] {
        "low"
    } else if score < BAND_BOUNDS[1] {
        "medium"
    } else if score < BAND_BOUNDS[2] {
        "high"
    } else {
        "critical"
    }
}

// ---------------------------------------------------------------------------
// Model of `group_rates`.

#[derive(Clone, Debug)]
struct ExpectedGroup {
    dimension: &'static str,
    key: String,
    value: String,
    users: i64,
    sent: i64,
    clicked: i64,
    submitted: i64,
    mean_risk_score: f64,
    rank: Option<i64>,
}

impl ExpectedGroup {
    fn click_rate(&self) -> Option<f64> {
        ratio(self.clicked, self.sent)
    }

    fn click_interval(&self) -> Option<(f64, f64)> {
        wilson(self.clicked, self.sent)
    }

    fn submit_rate(&self) -> Option<f64> {
        ratio(self.submitted, self.sent)
    }

    fn submit_interval(&self) -> Option<(f64, f64)> {
        wilson(self.submitted, self.sent)
    }
}

/// Computes the `group_rates` rows of one account from its snapshots and
/// the modelled `user_risk` rows of its latest snapshot.
fn model_group_rates(snapshots: &[Snapshot], risk: &[ExpectedUserRisk]) -> Vec<ExpectedGroup> {
    let mut groups = Vec::new();
    for dimension in DIMENSIONS {
        let names = display_names(snapshots, dimension);
        // Key to the indices of its members in `risk`. A set, so that a user
        // listed twice in one group counts once.
        let mut members: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (index, row) in risk.iter().enumerate() {
            for value in row.user.dimension_values(dimension) {
                members.entry(group_key(value)).or_default().insert(index);
            }
        }
        let mut rows: Vec<ExpectedGroup> = members
            .into_iter()
            .map(|(key, indices)| {
                let sum = |count: fn(&Derived) -> i64| {
                    indices.iter().map(|i| count(&risk[*i].derived)).sum()
                };
                let scores: Vec<f64> = indices.iter().map(|i| risk[*i].risk_score).collect();
                ExpectedGroup {
                    dimension,
                    value: names[&key].clone(),
                    key,
                    users: indices.len() as i64,
                    sent: sum(|d| d.sent),
                    clicked: sum(|d| d.clicked),
                    submitted: sum(|d| d.submitted),
                    mean_risk_score: mean(&scores).expect("a group has a member"),
                    rank: None,
                }
            })
            .collect();
        let lows: Vec<f64> = rows
            .iter()
            .filter_map(|row| row.click_interval().map(|(low, _)| low))
            .collect();
        for row in &mut rows {
            row.rank = row
                .click_interval()
                .map(|(low, _)| min_rank_descending(low, &lows));
        }
        groups.extend(rows);
    }
    groups
}

// ---------------------------------------------------------------------------
// Model of `department_trend`.

#[derive(Clone, Debug, Default)]
struct ExpectedTrend {
    key: String,
    department: String,
    period_start: i64,
    period_end: i64,
    users_start: i64,
    users_end: i64,
    users_tracked: i64,
    joined: i64,
    left: i64,
    moved_in: i64,
    moved_out: i64,
    resets: i64,
    delta_sent: i64,
    delta_clicked: i64,
    delta_submitted: i64,
    /// Σ `not_completed` of the department's users at the end snapshot.
    not_completed_end: i64,
    /// Σ `enrolled` of the department's users at the end snapshot.
    enrolled_end: i64,
    /// `score_clamped` of the department's users at the end snapshot, where present.
    scores_end: Vec<f64>,
    previous_period_click_rate: Option<f64>,
    click_rate_change: Option<f64>,
    change_z: Option<f64>,
}

impl ExpectedTrend {
    fn capped_clicks(&self) -> i64 {
        self.delta_clicked.min(self.delta_sent)
    }

    fn period_click_rate(&self) -> Option<f64> {
        ratio(self.capped_clicks(), self.delta_sent)
    }

    fn period_interval(&self) -> Option<(f64, f64)> {
        wilson(self.capped_clicks(), self.delta_sent)
    }

    fn change_p_value(&self) -> Option<f64> {
        self.change_z.map(two_sided_p_value)
    }

    fn completion_rate(&self) -> Option<f64> {
        ratio(self.not_completed_end, self.enrolled_end).map(|gap| 1.0 - gap)
    }
}

/// Returns the row of a department key in one period, created with zero counts.
fn trend_row<'a>(
    period: &'a mut BTreeMap<String, ExpectedTrend>,
    key: &str,
    names: &HashMap<String, String>,
    start: &Snapshot,
    end: &Snapshot,
) -> &'a mut ExpectedTrend {
    period
        .entry(key.to_string())
        .or_insert_with(|| ExpectedTrend {
            key: key.to_string(),
            department: names[key].clone(),
            period_start: start.at,
            period_end: end.at,
            ..ExpectedTrend::default()
        })
}

/// Computes the `department_trend` rows of one account: one per period of
/// consecutive snapshots and department with users at either end.
fn model_department_trend(snapshots: &[Snapshot]) -> Vec<ExpectedTrend> {
    let names = display_names(snapshots, "department");
    let mut rows: Vec<ExpectedTrend> = Vec::new();
    for pair in snapshots.windows(2) {
        let (start, end) = (&pair[0], &pair[1]);
        let start_users = start.users_by_id();
        let end_users = end.users_by_id();
        let mut period: BTreeMap<String, ExpectedTrend> = BTreeMap::new();
        for user in &start.users {
            let key = group_key(user.department.as_deref());
            let row = trend_row(&mut period, &key, &names, start, end);
            row.users_start += 1;
            match end_users.get(user.user_id.as_str()) {
                None => row.left += 1,
                Some(later) if group_key(later.department.as_deref()) != key => row.moved_out += 1,
                Some(_) => {}
            }
        }
        for user in &end.users {
            let key = group_key(user.department.as_deref());
            let d_end = derive(user);
            let row = trend_row(&mut period, &key, &names, start, end);
            row.users_end += 1;
            row.enrolled_end += d_end.enrolled;
            row.not_completed_end += d_end.not_completed;
            row.scores_end.extend(d_end.score_clamped);
            let Some(earlier) = start_users.get(user.user_id.as_str()) else {
                row.joined += 1;
                continue;
            };
            let d_start = derive(earlier);
            row.users_tracked += 1;
            if group_key(earlier.department.as_deref()) != key {
                row.moved_in += 1;
            }
            if d_end.sent < d_start.sent
                || d_end.clicked < d_start.clicked
                || d_end.submitted < d_start.submitted
            {
                row.resets += 1;
            }
            row.delta_sent += counter_delta(d_start.sent, d_end.sent);
            row.delta_clicked += counter_delta(d_start.clicked, d_end.clicked);
            row.delta_submitted += counter_delta(d_start.submitted, d_end.submitted);
        }
        rows.extend(period.into_values());
    }

    // The previous period of a row is the same department's row ending at
    // this row's start.
    let previous: HashMap<(String, i64), (i64, i64)> = rows
        .iter()
        .map(|row| {
            (
                (row.key.clone(), row.period_end),
                (row.capped_clicks(), row.delta_sent),
            )
        })
        .collect();
    for row in &mut rows {
        let Some(&(c1, n1)) = previous.get(&(row.key.clone(), row.period_start)) else {
            continue;
        };
        row.previous_period_click_rate = ratio(c1, n1);
        row.click_rate_change = row
            .period_click_rate()
            .zip(row.previous_period_click_rate)
            .map(|(rate, previous)| rate - previous);
        row.change_z = two_proportion_z(c1, n1, row.capped_clicks(), row.delta_sent);
    }
    rows
}

// ---------------------------------------------------------------------------
// Model of `repeat_clickers`.

#[derive(Clone, Debug)]
struct ExpectedRepeat {
    user: SnapshotUser,
    department: String,
    last_seen_at: i64,
    periods_with_clicks: i64,
    clicks_gained: i64,
    click_periods: String,
}

/// Computes the `repeat_clickers` rows of one account.
fn model_repeat_clickers(snapshots: &[Snapshot]) -> Vec<ExpectedRepeat> {
    let names = display_names(snapshots, "department");
    // User to (rising period labels, clicks gained), over the periods in
    // which the user is present at both ends.
    let mut rising: BTreeMap<String, (Vec<String>, i64)> = BTreeMap::new();
    for pair in snapshots.windows(2) {
        let (start, end) = (&pair[0], &pair[1]);
        let start_users = start.users_by_id();
        for user in &end.users {
            let Some(earlier) = start_users.get(user.user_id.as_str()) else {
                continue;
            };
            let delta = counter_delta(derive(earlier).clicked, derive(user).clicked);
            let entry = rising.entry(user.user_id.clone()).or_default();
            entry.1 += delta;
            if delta > 0 {
                entry
                    .0
                    .push(format!("{}/{}", format_time(start.at), format_time(end.at)));
            }
        }
    }
    rising
        .into_iter()
        .filter(|(_, (periods, _))| periods.len() >= MIN_REPEAT_PERIODS)
        .map(|(user_id, (periods, clicks_gained))| {
            let latest = snapshots
                .iter()
                .rev()
                .find(|snapshot| snapshot.user(&user_id).is_some())
                .expect("a repeat clicker is in a snapshot");
            let user = latest.user(&user_id).expect("found above").clone();
            ExpectedRepeat {
                department: names[&group_key(user.department.as_deref())].clone(),
                user,
                last_seen_at: latest.at,
                periods_with_clicks: periods.len() as i64,
                clicks_gained,
                click_periods: periods.join("; "),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reading cpstat's report tables and comparing them with the model.

fn boolean(row: &Row, column: &str) -> Option<bool> {
    match row
        .get(column)
        .unwrap_or_else(|| panic!("column {column} missing"))
    {
        Field::Null => None,
        Field::Bool(value) => Some(*value),
        other => panic!("column {column} is {other:?}, not Boolean"),
    }
}

/// Reads one report table, grouped by account in file order.
fn read_table(report_dir: &Path, table: &str) -> BTreeMap<String, Vec<Row>> {
    let path = report_dir.join(format!("{table}.parquet"));
    assert!(path.is_file(), "{} is missing", path.display());
    let mut by_account: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in read_rows(&path) {
        let account = text(&row, "account_id").expect("account_id is never null");
        by_account.entry(account).or_default().push(row);
    }
    by_account
}

fn close(actual: Option<f64>, expected: Option<f64>, tolerance: f64) -> bool {
    match (actual, expected) {
        (None, None) => true,
        (Some(actual), Some(expected)) => (actual - expected).abs() <= tolerance,
        _ => false,
    }
}

/// Returns whether a value has at most 9 decimal places, up to float noise.
fn is_rounded_to_score_decimals(value: f64) -> bool {
    let scaled = value * 10f64.powi(SCORE_DECIMALS);
    (scaled - scaled.round()).abs() < 1e-3
}

/// The account, table and row key of compared values, which every
/// assertion message names together with the column.
struct Place {
    account: String,
    table: &'static str,
    key: String,
}

impl Place {
    fn new(account: &str, table: &'static str, key: impl Into<String>) -> Place {
        Place {
            account: account.to_string(),
            table,
            key: key.into(),
        }
    }

    fn at(&self, column: &str) -> String {
        format!(
            "account {}, table {}, {}, column {column}",
            self.account, self.table, self.key
        )
    }

    fn text(&self, row: &Row, column: &str, expected: Option<&str>) {
        let actual = text(row, column);
        assert_eq!(actual.as_deref(), expected, "{}", self.at(column));
    }

    fn long(&self, row: &Row, column: &str, expected: Option<i64>) {
        assert_eq!(long(row, column), expected, "{}", self.at(column));
    }

    fn boolean(&self, row: &Row, column: &str, expected: Option<bool>) {
        assert_eq!(boolean(row, column), expected, "{}", self.at(column));
    }

    fn time(&self, row: &Row, column: &str, expected: i64) {
        assert_eq!(micros(row, column), Some(expected), "{}", self.at(column));
    }

    fn float(&self, row: &Row, column: &str, expected: Option<f64>) {
        let actual = double(row, column);
        assert!(
            close(actual, expected, TOLERANCE),
            "{}: cpstat {actual:?}, model {expected:?}",
            self.at(column)
        );
    }

    /// Compares a column that docs/metrics.md rounds to 9 decimal places.
    fn rounded(&self, row: &Row, column: &str, expected: f64) {
        let actual = double(row, column);
        assert!(
            close(actual, Some(expected), ROUNDED_TOLERANCE),
            "{}: cpstat {actual:?}, model {expected}",
            self.at(column)
        );
        assert!(
            actual.is_some_and(is_rounded_to_score_decimals),
            "{}: {actual:?} is not rounded to {SCORE_DECIMALS} decimals",
            self.at(column)
        );
    }
}

/// Asserts that the model and cpstat have the same non-zero number of rows
/// for one account and table.
fn assert_same_row_count(account: &str, table: &str, actual: usize, expected: usize) {
    assert!(
        expected > 0,
        "account {account}, table {table}: the model has no rows, so the comparison would prove nothing"
    );
    assert_eq!(
        actual, expected,
        "account {account}, table {table}: rows in cpstat's table and in the model"
    );
}

/// Indexes rows by a key, asserting that the key is unique.
fn index_rows<'a>(
    account: &str,
    table: &str,
    rows: &'a [Row],
    key_of: impl Fn(&Row) -> String,
) -> HashMap<String, &'a Row> {
    let mut index = HashMap::new();
    for row in rows {
        let key = key_of(row);
        let duplicate = index.insert(key.clone(), row).is_some();
        assert!(
            !duplicate,
            "account {account}, table {table}: {key} appears twice"
        );
    }
    index
}

/// Asserts that the accounts of a table are the accounts of the store.
fn assert_accounts(table: &str, actual: &BTreeMap<String, Vec<Row>>, fixture: &Fixture) {
    let actual: Vec<&String> = actual.keys().collect();
    let expected: Vec<&String> = fixture.snapshots.keys().collect();
    assert_eq!(actual, expected, "table {table}: accounts");
}

fn check_user_risk(fixture: &Fixture) {
    let table = read_table(&fixture.report_dir, "user_risk");
    assert_accounts("user_risk", &table, fixture);
    for (account, snapshots) in &fixture.snapshots {
        let latest = snapshots.last().expect("an account has snapshots");
        let expected = model_user_risk(latest);
        let rows = table.get(account).map(Vec::as_slice).unwrap_or_default();
        assert_same_row_count(account, "user_risk", rows.len(), expected.len());

        let sort_keys: Vec<(i64, String)> = rows
            .iter()
            .map(|row| {
                (
                    long(row, "risk_rank").unwrap_or(0),
                    text(row, "user_id").unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            sort_keys.windows(2).all(|pair| pair[0] <= pair[1]),
            "account {account}, table user_risk: rows are not sorted by risk_rank and user_id"
        );

        let by_user = index_rows(account, "user_risk", rows, |row| {
            text(row, "user_id").unwrap_or_default()
        });
        for e in &expected {
            let place = Place::new(account, "user_risk", format!("user {}", e.user.user_id));
            let row = by_user
                .get(&e.user.user_id)
                .unwrap_or_else(|| panic!("{}", place.at("user_id")));
            compare_user_risk(&place, row, e, latest.at);
        }
    }
}

fn compare_user_risk(place: &Place, row: &Row, e: &ExpectedUserRisk, snapshot_at: i64) {
    let user = &e.user;
    let c = &user.counters;
    let d = &e.derived;
    place.time(row, "snapshot_at", snapshot_at);
    place.text(row, "email", user.email.as_deref());
    place.text(row, "name", user.name.as_deref());
    place.text(row, "department", user.department.as_deref());
    place.text(row, "branch_name", user.branch_name.as_deref());
    place.text(row, "manager", user.manager.as_deref());
    place.text(row, "country", user.country.as_deref());

    place.long(row, "phishing_campaigns", c.phishing_campaigns);
    place.long(row, "emails_sent", c.emails_sent);
    place.long(row, "links_clicked", c.links_clicked);
    place.long(row, "data_submitted", c.data_submitted);
    place.long(row, "sent", Some(d.sent));
    place.long(row, "clicked", Some(d.clicked));
    place.long(row, "submitted", Some(d.submitted));
    place.float(row, "click_rate", e.click_rate);
    place.float(row, "submit_rate", e.submit_rate);
    place.float(row, "account_click_rate", Some(e.account_click_rate));
    place.float(row, "account_submit_rate", Some(e.account_submit_rate));
    place.float(row, "click_rate_smoothed", Some(e.click_rate_smoothed));
    place.float(row, "submit_rate_smoothed", Some(e.submit_rate_smoothed));

    place.long(row, "enrolled_courses", c.enrolled_courses);
    place.long(row, "not_completed_courses", c.not_completed_courses);
    place.long(row, "overdue_courses", c.overdue_courses);
    place.long(row, "enrolled_materials", c.enrolled_materials);
    place.long(row, "not_completed_materials", c.not_completed_materials);
    place.long(row, "enrolled", Some(d.enrolled));
    place.long(row, "not_completed", Some(d.not_completed));
    place.float(row, "training_gap", e.training_gap);
    place.float(row, "training_gap_filled", Some(e.training_gap_filled));
    place.float(row, "overdue", Some(d.overdue));
    place.float(row, "average_score", user.average_score);
    place.float(row, "score_gap", e.score_gap);
    place.float(row, "score_gap_filled", Some(e.score_gap_filled));

    place.rounded(row, "click_points", e.click_points);
    place.rounded(row, "submit_points", e.submit_points);
    place.rounded(row, "training_points", e.training_points);
    place.rounded(row, "overdue_points", e.overdue_points);
    place.rounded(row, "score_points", e.score_points);
    place.rounded(row, "risk_score", e.risk_score);
    place.text(row, "risk_band", Some(e.risk_band));
    place.long(row, "risk_rank", Some(e.risk_rank));

    place.boolean(row, "data_issue", Some(d.data_issue));
    place.boolean(row, "training_issue", Some(d.training_issue));
    place.boolean(row, "score_out_of_range", Some(d.score_out_of_range));
    place.boolean(row, "counters_missing", Some(d.counters_missing));
}

/// Models the `account` rows of `group_rates`: each account's latest users
/// pooled into one group keyed by the account id, ranked across accounts.
fn model_account_rows(fixture: &Fixture) -> BTreeMap<String, ExpectedGroup> {
    let mut rows: BTreeMap<String, ExpectedGroup> = BTreeMap::new();
    for (account, snapshots) in &fixture.snapshots {
        let latest = snapshots.last().expect("an account has snapshots");
        let risk = model_user_risk(latest);
        let scores: Vec<f64> = risk.iter().map(|r| r.risk_score).collect();
        let row = ExpectedGroup {
            dimension: "account",
            key: account.clone(),
            value: account.clone(),
            users: risk.len() as i64,
            sent: risk.iter().map(|r| r.derived.sent).sum(),
            clicked: risk.iter().map(|r| r.derived.clicked).sum(),
            submitted: risk.iter().map(|r| r.derived.submitted).sum(),
            mean_risk_score: mean(&scores).expect("an account has users"),
            rank: None,
        };
        rows.insert(account.clone(), row);
    }
    let lows: Vec<f64> = rows
        .values()
        .filter_map(|row| row.click_interval().map(|(low, _)| low))
        .collect();
    for row in rows.values_mut() {
        row.rank = row
            .click_interval()
            .map(|(low, _)| min_rank_descending(low, &lows));
    }
    rows
}

fn check_group_rates(fixture: &Fixture) {
    let table = read_table(&fixture.report_dir, "group_rates");
    assert_accounts("group_rates", &table, fixture);
    let account_rows = model_account_rows(fixture);
    for (account, snapshots) in &fixture.snapshots {
        let latest = snapshots.last().expect("an account has snapshots");
        let mut expected = model_group_rates(snapshots, &model_user_risk(latest));
        expected.push(account_rows[account].clone());
        let rows = table.get(account).map(Vec::as_slice).unwrap_or_default();
        assert_same_row_count(account, "group_rates", rows.len(), expected.len());
        for dimension in DIMENSIONS.iter().copied().chain(["account"]) {
            let modelled = expected.iter().filter(|g| g.dimension == dimension).count();
            let written = rows
                .iter()
                .filter(|row| text(row, "dimension").as_deref() == Some(dimension))
                .count();
            assert_same_row_count(
                account,
                &format!("group_rates {dimension}"),
                written,
                modelled,
            );
        }

        // Sorted by dimension, rank (unranked last) and value.
        let sort_keys: Vec<(String, bool, i64, String)> = rows
            .iter()
            .map(|row| {
                let rank = long(row, "rank");
                (
                    text(row, "dimension").unwrap_or_default(),
                    rank.is_none(),
                    rank.unwrap_or(0),
                    text(row, "value").unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            sort_keys.windows(2).all(|pair| pair[0] <= pair[1]),
            "account {account}, table group_rates: rows are not sorted by dimension, rank and value"
        );

        let by_key = index_rows(account, "group_rates", rows, |row| {
            format!(
                "dimension {} key {:?}",
                text(row, "dimension").unwrap_or_default(),
                text(row, "key").unwrap_or_default()
            )
        });
        for e in &expected {
            let key = format!("dimension {} key {:?}", e.dimension, e.key);
            let place = Place::new(account, "group_rates", key.clone());
            let row = by_key
                .get(&key)
                .unwrap_or_else(|| panic!("{}: row missing", place.at("key")));
            compare_group(&place, row, e, latest.at);
        }
    }
}

fn compare_group(place: &Place, row: &Row, e: &ExpectedGroup, snapshot_at: i64) {
    place.time(row, "snapshot_at", snapshot_at);
    place.text(row, "value", Some(&e.value));
    place.long(row, "users", Some(e.users));
    place.long(row, "sent", Some(e.sent));
    place.long(row, "clicked", Some(e.clicked));
    place.long(row, "submitted", Some(e.submitted));

    let (click_low, click_high) = split_interval(e.click_interval());
    place.float(row, "click_rate", e.click_rate());
    place.float(row, "click_rate_low", click_low);
    place.float(row, "click_rate_high", click_high);

    let (submit_low, submit_high) = split_interval(e.submit_interval());
    place.float(row, "submit_rate", e.submit_rate());
    place.float(row, "submit_rate_low", submit_low);
    place.float(row, "submit_rate_high", submit_high);

    place.float(row, "mean_risk_score", Some(e.mean_risk_score));
    place.long(row, "rank", e.rank);
}

fn check_department_trend(fixture: &Fixture) {
    let table = read_table(&fixture.report_dir, "department_trend");
    assert_accounts("department_trend", &table, fixture);
    for (account, snapshots) in &fixture.snapshots {
        let expected = model_department_trend(snapshots);
        let rows = table.get(account).map(Vec::as_slice).unwrap_or_default();
        assert_same_row_count(account, "department_trend", rows.len(), expected.len());

        let displays: BTreeMap<&str, &str> = expected
            .iter()
            .map(|e| (e.key.as_str(), e.department.as_str()))
            .collect();
        let distinct: BTreeSet<&str> = displays.values().copied().collect();
        assert_eq!(
            distinct.len(),
            displays.len(),
            "account {account}: two department keys share a display value, so rows cannot be matched by it"
        );

        let sort_keys: Vec<(String, i64)> = rows
            .iter()
            .map(|row| {
                (
                    text(row, "department").unwrap_or_default(),
                    micros(row, "period_end").unwrap_or(0),
                )
            })
            .collect();
        assert!(
            sort_keys.windows(2).all(|pair| pair[0] <= pair[1]),
            "account {account}, table department_trend: rows are not sorted by department and period_end"
        );

        let by_key = index_rows(account, "department_trend", rows, |row| {
            format!(
                "department {:?} period_end {}",
                text(row, "department").unwrap_or_default(),
                format_time(micros(row, "period_end").unwrap_or(0))
            )
        });
        for e in &expected {
            let key = format!(
                "department {:?} period_end {}",
                e.department,
                format_time(e.period_end)
            );
            let place = Place::new(account, "department_trend", key.clone());
            let row = by_key
                .get(&key)
                .unwrap_or_else(|| panic!("{}: row missing", place.at("department")));
            compare_trend(&place, row, e);
        }
    }
}

fn compare_trend(place: &Place, row: &Row, e: &ExpectedTrend) {
    place.time(row, "period_start", e.period_start);
    place.long(row, "users_start", Some(e.users_start));
    place.long(row, "users_end", Some(e.users_end));
    place.long(row, "users_tracked", Some(e.users_tracked));
    place.long(row, "joined", Some(e.joined));
    place.long(row, "left", Some(e.left));
    place.long(row, "moved_in", Some(e.moved_in));
    place.long(row, "moved_out", Some(e.moved_out));
    place.long(row, "resets", Some(e.resets));

    place.long(row, "delta_sent", Some(e.delta_sent));
    place.long(row, "delta_clicked", Some(e.delta_clicked));
    place.long(row, "delta_submitted", Some(e.delta_submitted));
    let (low, high) = split_interval(e.period_interval());
    place.float(row, "period_click_rate", e.period_click_rate());
    place.float(row, "period_click_rate_low", low);
    place.float(row, "period_click_rate_high", high);
    let exceed = e.delta_clicked > e.delta_sent;
    place.boolean(row, "clicks_exceed_sends", Some(exceed));

    let previous = e.previous_period_click_rate;
    place.float(row, "previous_period_click_rate", previous);
    place.float(row, "click_rate_change", e.click_rate_change);
    place.float(row, "change_z", e.change_z);
    place.float(row, "change_p_value", e.change_p_value());
    let significant = e.change_p_value().map(|p| p < SIGNIFICANCE_LEVEL);
    place.boolean(row, "change_significant", significant);

    place.float(row, "completion_rate", e.completion_rate());
    place.float(row, "mean_average_score", mean(&e.scores_end));
}

fn check_repeat_clickers(fixture: &Fixture) {
    let table = read_table(&fixture.report_dir, "repeat_clickers");
    let mut modelled_rows = 0;
    for (account, snapshots) in &fixture.snapshots {
        let expected = model_repeat_clickers(snapshots);
        modelled_rows += expected.len();
        let rows = table.get(account).map(Vec::as_slice).unwrap_or_default();
        // The account without emails has no repeat clicker, so only the
        // total over all accounts must be non-zero.
        assert_eq!(
            rows.len(),
            expected.len(),
            "account {account}, table repeat_clickers: rows in cpstat's table and in the model"
        );

        // Sorted by periods_with_clicks and clicks_gained, highest first, then user_id.
        let sort_keys: Vec<(i64, i64, String)> = rows
            .iter()
            .map(|row| {
                (
                    -long(row, "periods_with_clicks").unwrap_or(0),
                    -long(row, "clicks_gained").unwrap_or(0),
                    text(row, "user_id").unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            sort_keys.windows(2).all(|pair| pair[0] <= pair[1]),
            "account {account}, table repeat_clickers: rows are not sorted by periods_with_clicks, clicks_gained and user_id"
        );

        let by_user = index_rows(account, "repeat_clickers", rows, |row| {
            text(row, "user_id").unwrap_or_default()
        });
        for e in &expected {
            let place = Place::new(
                account,
                "repeat_clickers",
                format!("user {}", e.user.user_id),
            );
            let row = by_user
                .get(&e.user.user_id)
                .unwrap_or_else(|| panic!("{}: row missing", place.at("user_id")));
            place.text(row, "email", e.user.email.as_deref());
            place.text(row, "name", e.user.name.as_deref());
            place.text(row, "department", Some(&e.department));
            place.text(row, "branch_name", e.user.branch_name.as_deref());
            place.text(row, "manager", e.user.manager.as_deref());
            place.text(row, "country", e.user.country.as_deref());
            place.time(row, "last_seen_at", e.last_seen_at);
            place.long(row, "periods_with_clicks", Some(e.periods_with_clicks));
            place.long(row, "clicks_gained", Some(e.clicks_gained));
            place.text(row, "click_periods", Some(&e.click_periods));
        }
    }
    assert!(
        modelled_rows > 0,
        "table repeat_clickers: the model has no rows, so the comparison would prove nothing"
    );
}

// ---------------------------------------------------------------------------
// The CSV copy of `user_risk`.

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses RFC 4180 CSV: fields separated by commas, records by CRLF or LF,
/// quoted fields with doubled quotes inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if in_quotes {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(ch),
            }
            continue;
        }
        match ch {
            '"' => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(ch),
        }
    }
    assert!(!in_quotes, "the CSV ends inside a quoted field");
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// Returns the CSV text of a text cell: a leading `'` is added where a
/// spreadsheet would run the cell as a formula.
fn guarded_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// Asserts that a CSV cell contains the value of a Parquet field.
fn assert_cell_matches(cell: &str, field: &Field, context: &str) {
    match field {
        Field::Null => assert_eq!(cell, "", "{context}: null"),
        Field::Str(value) => assert_eq!(cell, guarded_cell(value), "{context}"),
        Field::Long(value) => assert_eq!(
            cell.parse::<i64>().ok(),
            Some(*value),
            "{context}: cell {cell:?}"
        ),
        Field::Double(value) => {
            assert_eq!(
                cell.parse::<f64>().ok(),
                Some(*value),
                "{context}: cell {cell:?}"
            )
        }
        Field::Bool(value) => assert_eq!(cell, value.to_string(), "{context}"),
        Field::TimestampMicros(value) => {
            // The CSV writer of polars writes `2024-03-29T06:00:00.000000+0000`.
            let parsed = DateTime::parse_from_str(cell, "%Y-%m-%dT%H:%M:%S%.f%z")
                .map(|time| time.timestamp_micros())
                .ok();
            assert_eq!(parsed, Some(*value), "{context}: cell {cell:?}")
        }
        other => panic!("{context}: no CSV comparison for {other:?}"),
    }
}

fn check_user_risk_csv(fixture: &Fixture) {
    let parquet_path = fixture.report_dir.join("user_risk.parquet");
    let csv_path = fixture.report_dir.join("user_risk.csv");
    let bytes = std::fs::read(&csv_path).expect("user_risk.csv is written with --format both");
    assert!(
        bytes.starts_with(UTF8_BOM),
        "user_risk.csv starts with a UTF-8 byte-order mark"
    );
    let csv_text = std::str::from_utf8(&bytes[UTF8_BOM.len()..]).expect("user_risk.csv is UTF-8");
    let mut records = parse_csv(csv_text).into_iter();

    let header = records.next().expect("user_risk.csv has a header");
    let columns: Vec<String> = column_types(&parquet_path)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(header, columns, "user_risk.csv header and Parquet columns");

    let records: Vec<Vec<String>> = records.collect();
    let rows = read_rows(&parquet_path);
    assert!(!rows.is_empty(), "user_risk.parquet has rows");
    assert_eq!(
        records.len(),
        rows.len(),
        "rows in user_risk.csv and user_risk.parquet"
    );
    for (index, (record, row)) in records.iter().zip(&rows).enumerate() {
        let user = text(row, "user_id").unwrap_or_default();
        assert_eq!(
            record.len(),
            columns.len(),
            "user_risk.csv row {index}: fields"
        );
        for (cell, column) in record.iter().zip(&columns) {
            let context = format!("user_risk.csv row {index}, user {user}, column {column}");
            assert_cell_matches(cell, &row[column], &context);
        }
    }
}

// ---------------------------------------------------------------------------
// Running the binary.

/// Runs the binary off the async runtime, so that the mock keeps serving,
/// with a clean environment plus `env` and `HOME` set to `cwd`.
async fn cpstat(args: Vec<String>, env: Vec<(&'static str, String)>, cwd: &Path) -> Output {
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cpstat"));
        command.args(&args).current_dir(&cwd).env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command
            .env("HOME", &cwd)
            .env("CPSTAT_RETRY_TIME_SCALE", "0");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("cpstat runs")
    })
    .await
    .expect("the blocking task finishes")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fetches one snapshot of every organisation on every day of `days`.
async fn fetch_days(mock: &MockApi, organisations: &[Organisation], days: &[u32], store: &Path) {
    for &day in days {
        mock.set_day(day);
        for organisation in organisations {
            let at = snapshot_time(organisation, day).to_rfc3339();
            let args = [
                "fetch",
                "--account",
                organisation.account_id(),
                "--base-url",
                &mock.base_url(),
                "--store",
                store.to_str().expect("a UTF-8 temporary path"),
                "--snapshot-at",
                &at,
            ]
            .map(str::to_string)
            .to_vec();
            let env = vec![("CPSTAT_TOKEN", DEFAULT_TOKEN.to_string())];
            let output = cpstat(args, env, store.parent().expect("the store has a parent")).await;
            assert_eq!(
                output.status.code(),
                Some(0),
                "fetch of account {} on day {day}: {}",
                organisation.account_id(),
                stderr(&output)
            );
        }
    }
}

/// Fetches a hand-written account on every day of `DAYS`, each day from its
/// own mock that serves the entries of that step.
async fn fetch_hand_written_account(
    store: &Path,
    account_id: &str,
    entries_at_step: fn(i64) -> Vec<Value>,
) {
    for (step, day) in DAYS.iter().enumerate() {
        let organisation = Organisation::new(OrgConfig {
            account_id: account_id.to_string(),
            users: 1,
            ..OrgConfig::default()
        });
        let options = MockOptions {
            fixture: Some(entries_at_step(step as i64)),
            ..MockOptions::default()
        };
        let mock = MockApi::start(options, vec![organisation.clone()])
            .await
            .expect("the mock API starts");
        fetch_days(&mock, &[organisation], &[*day], store).await;
        mock.shutdown().await;
    }
}

async fn analyze(store: &Path) -> Output {
    let args = [
        "analyze",
        "--store",
        store.to_str().expect("a UTF-8 temporary path"),
        "--format",
        "both",
    ]
    .map(str::to_string)
    .to_vec();
    cpstat(
        args,
        Vec::new(),
        store.parent().expect("the store has a parent"),
    )
    .await
}

// ---------------------------------------------------------------------------
// The tests.

/// A store fetched from the mock, analysed by cpstat, and read back.
struct Fixture {
    report_dir: PathBuf,
    snapshots: BTreeMap<String, Vec<Snapshot>>,
}

/// Compares one report table with the model and panics on a difference.
type TableCheck = fn(&Fixture);

/// Asserts that the simulated accounts contain the irregular cases that the
/// analysis must handle, so that the comparisons cover them even if the
/// simulation changes. The hand-written account covers the rest.
fn assert_simulation_has_irregular_cases(snapshots: &BTreeMap<String, Vec<Snapshot>>) {
    let (mut joined, mut left, mut moved, mut resets, mut blank_departments) = (0, 0, 0, 0, 0);
    let mut department_spellings = 0;
    for account in [ACCOUNT_A, ACCOUNT_B] {
        let account_snapshots = &snapshots[account];
        for pair in account_snapshots.windows(2) {
            let start = pair[0].users_by_id();
            let end = pair[1].users_by_id();
            joined += end.keys().filter(|id| !start.contains_key(*id)).count();
            left += start.keys().filter(|id| !end.contains_key(*id)).count();
            for (id, user) in &end {
                let Some(earlier) = start.get(id) else {
                    continue;
                };
                if group_key(earlier.department.as_deref()) != group_key(user.department.as_deref())
                {
                    moved += 1;
                }
                let (before, after) = (derive(earlier), derive(user));
                if after.sent < before.sent || after.clicked < before.clicked {
                    resets += 1;
                }
            }
        }
        let mut spellings: HashMap<String, BTreeSet<&str>> = HashMap::new();
        for snapshot in account_snapshots {
            for user in &snapshot.users {
                let department = user.department.as_deref();
                blank_departments += usize::from(group_key(department).is_empty());
                spellings
                    .entry(group_key(department))
                    .or_default()
                    .insert(department.unwrap_or(""));
            }
        }
        department_spellings += spellings.values().filter(|set| set.len() > 1).count();
    }
    assert!(joined > 0, "the simulated weeks have hires");
    assert!(left > 0, "the simulated weeks have leavers");
    assert!(moved > 0, "the simulated weeks have department moves");
    assert!(resets > 0, "the simulated weeks have a counter reset");
    assert!(
        blank_departments > 0,
        "type drift leaves some departments null"
    );
    assert!(
        department_spellings > 0,
        "some simulated department has two spellings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_tables_match_independent_model() {
    let organisations = organisations();
    let options = MockOptions {
        type_drift: true,
        ..MockOptions::default()
    };
    let mock = MockApi::start(options, organisations.clone())
        .await
        .expect("the mock API starts");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = dir.path().join("store");
    fetch_days(&mock, &organisations, &DAYS, &store).await;
    fetch_hand_written_account(&store, ACCOUNT_IRREGULAR, irregular_entries).await;
    fetch_hand_written_account(&store, ACCOUNT_NO_EMAIL, no_email_entries).await;

    let output = analyze(&store).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "analyze: {}",
        stderr(&output)
    );
    let latest = store.join("reports").join("latest");
    assert!(latest.is_symlink(), "reports/latest is a symbolic link");
    let fixture = Fixture {
        report_dir: latest
            .canonicalize()
            .expect("reports/latest points at a folder"),
        snapshots: read_store(&store),
    };

    assert_eq!(
        fixture.snapshots.len(),
        organisations.len() + 2,
        "accounts in the store: the simulated and the hand-written ones"
    );
    for (account, snapshots) in &fixture.snapshots {
        assert_eq!(snapshots.len(), DAYS.len(), "account {account}: snapshots");
        assert!(
            snapshots.iter().all(|snapshot| !snapshot.users.is_empty()),
            "account {account}: every snapshot has users"
        );
    }
    assert_simulation_has_irregular_cases(&fixture.snapshots);

    // Each table is checked even when an earlier one fails. The panic message
    // of a failed check names the account, table, row and column.
    let checks: [(&str, TableCheck); 5] = [
        ("user_risk", check_user_risk),
        ("group_rates", check_group_rates),
        ("department_trend", check_department_trend),
        ("repeat_clickers", check_repeat_clickers),
        ("user_risk.csv", check_user_risk_csv),
    ];
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, check)| catch_unwind(AssertUnwindSafe(|| check(&fixture))).is_err())
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "tables that disagree with docs/metrics.md: {failed:?}; the messages above name the row and column"
    );
}

/// Returns every file under `dir` with its bytes, by path relative to `dir`.
fn folder_contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut contents = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("a readable folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a readable file");
                let relative = path.strip_prefix(dir).expect("below dir").to_path_buf();
                contents.insert(relative, bytes);
            }
        }
    }
    contents
}

/// Returns the names in a folder, sorted.
fn folder_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a readable folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_without_snapshots_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let missing_store = dir.path().join("missing");
    let empty_store = dir.path().join("empty");
    std::fs::create_dir_all(empty_store.join("users_summary")).expect("create the empty store");
    let cases = [
        (missing_store, "does not exist"),
        (empty_store, "no snapshots in"),
    ];
    for (store, problem) in cases {
        let output = analyze(&store).await;
        let message = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: exit code; {message}",
            store.display()
        );
        assert!(
            message.contains(problem),
            "{}: the message names the problem ({problem}); {message}",
            store.display()
        );
        assert!(
            message.contains("run `cpstat fetch`"),
            "{}: the message says to run `cpstat fetch`; {message}",
            store.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_analyze_keeps_latest_reports() {
    let organisation = Organisation::new(OrgConfig {
        account_id: ACCOUNT_A.to_string(),
        users: 40,
        ..OrgConfig::default()
    });
    let mock = MockApi::start(MockOptions::default(), vec![organisation.clone()])
        .await
        .expect("the mock API starts");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = dir.path().join("store");
    fetch_days(
        &mock,
        std::slice::from_ref(&organisation),
        &DAYS[..2],
        &store,
    )
    .await;

    let output = analyze(&store).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "first analyze: {}",
        stderr(&output)
    );
    let reports = store.join("reports");
    let latest = reports.join("latest");
    let target_before = std::fs::read_link(&latest).expect("reports/latest is a symbolic link");
    let files_before = folder_contents(&latest);
    let names_before = folder_names(&reports);
    assert!(
        files_before.contains_key(Path::new("user_risk.parquet")),
        "the first report set has user_risk.parquet: {:?}",
        files_before.keys().collect::<Vec<_>>()
    );

    // A later snapshot file that is not Parquet makes the next run fail.
    let corrupt = store
        .join("users_summary")
        .join(format!("account={ACCOUNT_A}"))
        .join("20240315T060000Z.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not a Parquet file PAR1")
        .expect("write the corrupt file");
    let output = analyze(&store).await;
    assert_eq!(
        output.status.code(),
        Some(5),
        "analyze of a store with a corrupt snapshot exits with the invalid-data code: {}",
        stderr(&output)
    );

    let target_after =
        std::fs::read_link(&latest).expect("reports/latest is still a symbolic link");
    assert_eq!(
        target_after, target_before,
        "reports/latest points at the same set"
    );
    let files_after = folder_contents(&latest);
    assert_eq!(
        files_after.keys().collect::<Vec<_>>(),
        files_before.keys().collect::<Vec<_>>(),
        "the files of the latest report set"
    );
    for (name, bytes) in &files_before {
        assert!(
            files_after.get(name) == Some(bytes),
            "{} changed after the failed run",
            name.display()
        );
    }
    assert_eq!(
        folder_names(&reports),
        names_before,
        "the failed run leaves no report set or work folder in reports/"
    );
}
