//! Fetching every user of an account, with a consistency check.
//!
//! The first page is fetched alone to learn `count` and how many users the
//! server really returns per page. The remaining pages are then fetched
//! concurrently, each planned from where the previous data ended. A page that
//! returns fewer users than planned gets a follow-up request for the rest, so
//! the offsets advance by what the server returned, never by what was asked.
//!
//! Offset paging is not a snapshot: when users are added or removed during
//! the fetch, offsets shift, and users appear twice or not at all. A round is
//! accepted only when every response reported the same `count` and the unique
//! users equal it. Otherwise the account is fetched again, a bounded number
//! of times.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::decode::Page;
use super::{ApiClient, ApiError, PageRef};
use crate::snapshot::batch::{UserBatch, UserBatches};

/// Paging and consistency settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Users asked for per page (`take`).
    pub page_size: u64,
    /// Page requests in flight at once.
    pub concurrency: usize,
    /// Fetch rounds before giving up on an account that keeps changing.
    pub max_rounds: u32,
    /// Return the last round even when it is inconsistent.
    pub allow_partial: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            page_size: 100,
            concurrency: 4,
            max_rounds: 3,
            allow_partial: false,
        }
    }
}

/// The users of an account and how they were obtained.
#[derive(Debug, Clone)]
pub struct FetchOutcome {
    /// Unique users, in the order the server listed them, one batch per page.
    /// Writing the snapshot takes them out, so count with `user_count`.
    pub users: UserBatches,
    /// The number of unique users fetched.
    pub user_count: usize,
    /// `count` reported by the last response of the accepted round.
    pub count_reported: u64,
    /// Page requests that returned data, over all rounds.
    pub pages: u64,
    /// Retries spent, over all rounds.
    pub retries: u64,
    /// Rounds fetched, 1 when the first was consistent.
    pub rounds: u32,
    /// Whether the unique users equal the reported count.
    pub complete: bool,
    /// The reasons rounds were rejected, one entry per rejected round.
    pub notes: Vec<String>,
    pub duration: Duration,
}

impl FetchOutcome {
    /// Users missing from (positive) or beyond (negative) the reported count.
    pub fn shortfall(&self) -> i64 {
        self.count_reported as i64 - self.user_count as i64
    }
}

/// Receives progress as pages arrive.
pub trait Progress: Sync {
    fn planned(&self, _users: u64, _pages: u64) {}
    fn page_done(&self, _users: u64) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One round's raw material.
struct Round {
    pages: BTreeMap<u64, Page>,
    counts: Vec<u64>,
    empty_pages: Vec<u64>,
    requests: u64,
}

/// Fetches every user of `account`.
pub async fn fetch_account(
    client: &ApiClient,
    account: &str,
    options: &FetchOptions,
    progress: &dyn Progress,
) -> Result<FetchOutcome, ApiError> {
    let started = Instant::now();
    let retries_before = client.retries();
    let mut notes = Vec::new();
    let mut pages = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let round = fetch_round(client, account, options, progress).await?;
        pages += round.requests;
        let (users, count, problem) = assemble(round);
        let outcome = |complete: bool, notes: Vec<String>| FetchOutcome {
            user_count: users.len(),
            users,
            count_reported: count,
            pages,
            retries: client.retries() - retries_before,
            rounds,
            complete,
            notes,
            duration: started.elapsed(),
        };
        let Some(problem) = problem else {
            return Ok(outcome(true, notes));
        };
        tracing::warn!(%account, round = rounds, max_rounds = options.max_rounds, %problem, "account changed during the fetch");
        notes.push(format!("round {rounds}: {problem}"));
        if rounds >= options.max_rounds {
            if options.allow_partial {
                return Ok(outcome(false, notes));
            }
            return Err(ApiError::Inconsistent {
                account: account.to_string(),
                rounds,
                detail: notes.join("; "),
            });
        }
    }
}

async fn fetch_round(
    client: &ApiClient,
    account: &str,
    options: &FetchOptions,
    progress: &dyn Progress,
) -> Result<Round, ApiError> {
    let take = options.page_size.max(1);
    let first = client.get_page(account, PageRef { skip: 0, take }).await?;
    let step = first.users.len() as u64;
    if step > 0 && step < take && step < first.count {
        tracing::info!(%account, asked = take, returned = step, "the server caps the page size; paging by what it returns");
    }
    progress.planned(first.count, first.count.div_ceil(step.max(1)));
    progress.page_done(step);

    let first_ids: Vec<String> = first.users.user_ids().map(str::to_string).collect();
    let mut round = Round {
        counts: vec![first.count],
        empty_pages: Vec::new(),
        requests: 1,
        pages: BTreeMap::from([(0, first)]),
    };
    if step == 0 {
        if round.counts[0] > 0 {
            round.empty_pages.push(0);
        }
        return Ok(round);
    }
    let mut pending: Vec<PageRef> = (1..)
        .map(|i| i * step)
        .take_while(|skip| *skip < round.counts[0])
        .map(|skip| PageRef { skip, take })
        .collect();
    tracing::info!(
        %account, count = round.counts[0], page_users = step, pages = pending.len() + 1,
        concurrency = options.concurrency, "planned the pages of the account"
    );
    pending.reverse();
    fetch_pending(
        client, account, options, progress, &first_ids, pending, &mut round,
    )
    .await?;
    Ok(round)
}

async fn fetch_pending(
    client: &ApiClient,
    account: &str,
    options: &FetchOptions,
    progress: &dyn Progress,
    first_ids: &[String],
    mut pending: Vec<PageRef>,
    round: &mut Round,
) -> Result<(), ApiError> {
    let step = first_ids.len() as u64;
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < options.concurrency.max(1) {
            let Some(page) = pending.pop() else { break };
            in_flight.push(async move { (page, client.get_page(account, page).await) });
        }
        let Some((page, result)) = in_flight.next().await else {
            return Ok(());
        };
        let fetched = result?;
        round.requests += 1;
        progress.page_done(fetched.users.len() as u64);
        if same_ids(&fetched, first_ids) {
            return Err(ApiError::IgnoresSkip {
                account: account.to_string(),
                page,
            });
        }
        if let Some(follow_up) = follow_up(page, &fetched, step) {
            pending.push(follow_up);
        }
        if fetched.users.is_empty() && page.skip < fetched.count {
            round.empty_pages.push(page.skip);
        }
        round.counts.push(fetched.count);
        round.pages.insert(page.skip, fetched);
    }
}

fn same_ids(page: &Page, first_ids: &[String]) -> bool {
    !first_ids.is_empty()
        && page.users.len() == first_ids.len()
        && page
            .users
            .user_ids()
            .zip(first_ids)
            .all(|(user_id, id)| user_id == id)
}

/// Returns the request for the rest of a page that came back short, before
/// the end of the account.
fn follow_up(page: PageRef, fetched: &Page, step: u64) -> Option<PageRef> {
    let returned = fetched.users.len() as u64;
    let expected = step.min(fetched.count.saturating_sub(page.skip));
    (returned > 0 && returned < expected).then(|| PageRef {
        skip: page.skip + returned,
        take: page.take,
    })
}

/// Deduplicates a round by user id, in page order, and describes what, if
/// anything, makes it inconsistent.
fn assemble(round: Round) -> (UserBatches, u64, Option<String>) {
    let mut keep = Vec::new();
    let mut duplicates = 0u64;
    {
        let users = round.pages.values().map(|page| page.users.len()).sum();
        let mut seen =
            HashSet::with_capacity_and_hasher(users, foldhash::fast::RandomState::default());
        for page in round.pages.values() {
            for user_id in page.users.user_ids() {
                let first = seen.insert(user_id);
                duplicates += u64::from(!first);
                keep.push(first);
            }
        }
    }
    let mut users = UserBatches::default();
    let mut keep = keep.into_iter();
    let count = *round.counts.last().expect("every round has its first page");
    for page in round.pages.into_values() {
        let flags: Vec<bool> = keep.by_ref().take(page.users.len()).collect();
        if flags.iter().all(|kept| *kept) {
            users.push(page.users);
            continue;
        }
        let mut unique = UserBatch::default();
        for (index, _) in flags.iter().enumerate().filter(|(_, kept)| **kept) {
            unique.push_from(&page.users, index);
        }
        users.push(unique);
    }
    let distinct_counts: Vec<u64> = {
        let mut counts = round.counts.clone();
        counts.sort_unstable();
        counts.dedup();
        counts
    };
    let mut problems = Vec::new();
    if distinct_counts.len() > 1 {
        problems.push(format!("count changed between pages ({distinct_counts:?})"));
    }
    if duplicates > 0 {
        problems.push(format!("{duplicates} users appeared twice"));
    }
    if !round.empty_pages.is_empty() {
        problems.push(format!(
            "empty pages before the end at skip {:?}",
            round.empty_pages
        ));
    }
    if users.len() as u64 != count {
        problems.push(format!("{} unique users but count {count}", users.len()));
    }
    let problem = (!problems.is_empty()).then(|| problems.join(", "));
    (users, count, problem)
}
