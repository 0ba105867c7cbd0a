//! A large synthetic store written straight from the mock's organisation
//! model, without HTTP, for benchmarks and capacity tests.
//!
//! Each account's simulation advances day by day on one thread, while the
//! finished snapshots are converted and written in parallel. The files have
//! the same schema, layout and values as `fetch` would write from the mock
//! API for the same organisation and day.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveTime, TimeZone, Utc};

use crate::mock::{OrgConfig, Organisation, SimUser};
use crate::snapshot::batch::{UserBatch, UserBatches, UserRow};
use crate::snapshot::record::Counters;
use crate::snapshot::{SnapshotMeta, Store, write_snapshot};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Users per account on the first simulated day.
    pub users: usize,
    /// Snapshots per account.
    pub snapshots: u32,
    /// Simulated days between snapshots.
    pub every_days: u32,
    pub accounts: usize,
    pub seed: u64,
    /// Simulated day of the first snapshot; earlier days build up history.
    pub first_day: u32,
}

/// Counts of what was written.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
    pub seconds: f64,
}

/// Returns the account id of the generated account number `index`.
pub fn account_id(seed: u64, index: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, index)
}

/// Returns the organisation that `generate` simulates for account `index`.
pub fn organisation(options: &GenerateOptions, index: usize) -> Organisation {
    Organisation::new(OrgConfig {
        seed: options.seed.wrapping_add(index as u64),
        account_id: account_id(options.seed, index),
        users: options.users,
        ..OrgConfig::default()
    })
}

/// Returns the snapshot time of a simulated day: 06:00 UTC on its date.
pub fn snapshot_time(organisation: &Organisation, day: u32) -> DateTime<Utc> {
    let six = NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 is a valid time");
    Utc.from_utc_datetime(&organisation.date_of(day).and_time(six))
}

/// Writes the store and returns what was written.
pub fn generate(store: &Path, options: &GenerateOptions) -> Result<GenerateSummary> {
    let started = Instant::now();
    let store = Store::new(store);
    let writers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (sender, receiver) = mpsc::sync_channel::<Job>(writers);
    let receiver = std::sync::Mutex::new(receiver);

    let written: Result<Vec<PathBuf>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|_| scope.spawn(|| write_jobs(&store, &receiver)))
            .collect();
        let simulated = simulate_all(options, &sender);
        drop(sender);
        let mut paths = Vec::new();
        for handle in handles {
            paths.extend(handle.join().expect("a writer thread panicked")?);
        }
        simulated.map(|()| paths)
    });
    let paths = written?;
    let bytes = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(GenerateSummary {
        files: paths.len(),
        rows: count_rows(&paths),
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One snapshot to write.
struct Job {
    account_id: String,
    snapshot_at: DateTime<Utc>,
    users: UserBatches,
}

fn simulate_all(options: &GenerateOptions, sender: &mpsc::SyncSender<Job>) -> Result<()> {
    for index in 0..options.accounts {
        let organisation = organisation(options, index);
        let mut simulation = organisation.simulation();
        for snapshot in 0..options.snapshots {
            let day = options.first_day + snapshot * options.every_days;
            simulation.advance_to(day);
            let job = Job {
                account_id: organisation.account_id().to_string(),
                snapshot_at: snapshot_time(&organisation, day),
                users: users_of(simulation.users()).into(),
            };
            if sender.send(job).is_err() {
                // A writer failed and dropped the receiver; its error is reported by the caller.
                return Ok(());
            }
        }
    }
    Ok(())
}

fn write_jobs(
    store: &Store,
    receiver: &std::sync::Mutex<mpsc::Receiver<Job>>,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    loop {
        let job = {
            let receiver = receiver
                .lock()
                .expect("no writer panics while holding the receiver");
            receiver.recv()
        };
        let Ok(job) = job else { return Ok(paths) };
        let meta = SnapshotMeta {
            count_reported: job.users.len() as u64,
            source: "generator".to_string(),
            ..SnapshotMeta::default()
        };
        let path = write_snapshot(store, &job.account_id, job.snapshot_at, job.users, &meta)
            .with_context(|| {
                format!(
                    "failed to write the generated snapshot of {}",
                    job.account_id
                )
            })?;
        paths.push(path);
    }
}

fn count_rows(paths: &[PathBuf]) -> usize {
    paths
        .iter()
        .filter_map(|p| crate::snapshot::meta::read_footer(p).ok())
        .map(|footer| footer.rows)
        .sum()
}

fn text(value: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(value))
}

fn non_empty(value: &str) -> Option<Cow<'_, str>> {
    (!value.is_empty()).then_some(Cow::Borrowed(value))
}

/// Converts simulated users the way the API serves them and `fetch` decodes
/// them: creation time in whole seconds, the score rounded to an integer,
/// empty manager fields and actions as null.
pub fn users_of(users: &[SimUser]) -> UserBatch {
    let mut batch = UserBatch::default();
    let mut groups = Vec::new();
    for user in users {
        groups.clear();
        groups.extend(
            user.groups
                .iter()
                .map(|(id, name)| (Cow::Borrowed(id.as_str()), text(name))),
        );
        batch.push(&UserRow {
            user_id: Cow::Borrowed(&user.id),
            email: text(&user.email),
            name: text(&user.name),
            first_name: text(&user.first_name),
            last_name: text(&user.last_name),
            user_created: Some(user.created.timestamp() * 1_000_000),
            company_name: text(&user.company),
            manager: non_empty(&user.manager),
            manager_email: non_empty(&user.manager_email),
            department: text(&user.department),
            country: text(&user.country),
            branch_id: text(&user.branch_id),
            branch_name: text(&user.branch_name),
            groups: Some(&groups),
            counters: counters(user).values(),
            last_action: non_empty(&user.last_action),
            average_score: user.average_score.map(|score| score.round()),
            extra: None,
        });
    }
    batch
}

fn counters(user: &SimUser) -> Counters {
    Counters {
        enrolled_courses: Some(user.enrolled_courses),
        not_completed_courses: Some(user.not_completed_courses),
        overdue_courses: Some(user.overdue_courses),
        enrolled_materials: Some(user.enrolled_materials),
        not_completed_materials: Some(user.not_completed_materials),
        phishing_campaigns: Some(user.phishing_campaigns),
        emails_sent: Some(user.emails_sent),
        links_clicked: Some(user.links_clicked),
        data_submitted: Some(user.data_submitted),
    }
}
