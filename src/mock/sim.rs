//! Day-by-day simulation of a synthetic organisation.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::org::OrgConfig;
use super::rng::{Draw, Purpose};

/// One user as the report shows them on the simulation's current day.
///
/// Empty strings in `manager`, `manager_email` and `last_action` mean "none"
/// and are served as JSON `null`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimUser {
    /// Decimal digits of the numeric user id.
    pub id: String,
    pub email: String,
    /// Full name, normally `"{first_name} {last_name}"`.
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    /// Hire time, which the report serves as `user.created`.
    pub created: DateTime<Utc>,
    pub company: String,
    pub manager: String,
    pub manager_email: String,
    /// Department as served, which for a few users carries stray spaces or odd case.
    pub department: String,
    /// ISO 3166-1 alpha-2 code of the branch's country.
    pub country: String,
    /// Decimal digits of the numeric branch id.
    pub branch_id: String,
    pub branch_name: String,
    /// Group (id, name) pairs, where the id is decimal digits.
    pub groups: Vec<(String, String)>,
    pub enrolled_courses: i64,
    pub not_completed_courses: i64,
    pub overdue_courses: i64,
    pub enrolled_materials: i64,
    pub not_completed_materials: i64,
    /// Phishing campaigns that include the user and are still running.
    pub phishing_campaigns: i64,
    pub emails_sent: i64,
    pub links_clicked: i64,
    pub data_submitted: i64,
    pub last_action: String,
    /// Mean score of completed courses, or `None` before the first completion.
    pub average_score: Option<f64>,
}

/// The settings of a simulation that do not change over simulated time.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub(crate) seed: u64,
    pub(crate) company: String,
    pub(crate) domain: String,
    pub(crate) start: NaiveDate,
    pub(crate) big_ids: bool,
    pub(crate) initial_users: usize,
}

/// Hidden per-user state that drives the simulation, aligned by index with
/// `Simulation::users`.
#[derive(Clone, Debug)]
pub(crate) struct UserState {
    /// Creation order, which also orders ids. The vectors stay sorted by it.
    pub(crate) serial: u32,
    /// Day of hire relative to day 0, negative for users hired before it.
    pub(crate) hire_day: i64,
    pub(crate) department: usize,
    pub(crate) is_manager: bool,
    pub(crate) manager: Option<u32>,
    /// Personal multiplier on the department's click probability.
    pub(crate) click_factor: f64,
    /// Daily probability of completing the oldest open course.
    pub(crate) course_diligence: f64,
    /// Daily probability of completing an open material.
    pub(crate) material_diligence: f64,
    /// Typical course score before practice, in points out of 100.
    pub(crate) skill: f64,
    pub(crate) in_all_staff: bool,
    pub(crate) remote: bool,
    pub(crate) pilot: bool,
    /// Due days of open courses, oldest first.
    pub(crate) course_due: Vec<u32>,
    pub(crate) completed_courses: u32,
    pub(crate) completed_materials: u32,
    pub(crate) score_sum: f64,
    pub(crate) score_count: u32,
    /// First day on which each campaign that targeted the user is over.
    pub(crate) campaign_ends: Vec<u32>,
}

/// An organisation moving forward one simulated day at a time.
///
/// Draws are keyed by (seed, purpose, user, day), so the state on a day does
/// not depend on whether it was reached in one `advance_to` call or many.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub(crate) ctx: Context,
    day: u32,
    pub(crate) users: Vec<SimUser>,
    pub(crate) states: Vec<UserState>,
    /// Manager serials per department index, the department head first.
    pub(crate) managers_by_dept: Vec<Vec<u32>>,
    pub(crate) ceo: Option<u32>,
    pub(crate) next_serial: u32,
    /// Times each e-mail local part has been handed out, to keep addresses unique.
    pub(crate) email_counts: HashMap<String, u32>,
}

/// Share of users who leave per year.
const LEAVE_RATE_PER_YEAR: f64 = 0.13;
/// Share of users who move to another department per year.
const TRANSFER_RATE_PER_YEAR: f64 = 0.06;
/// Share of users whose counters are reset to zero per 30 days (1 in 2,000).
const RESET_RATE_PER_30_DAYS: f64 = 0.0005;

/// A change to one user drawn for one day.
enum DailyChange {
    Leave,
    Transfer,
    Reset,
}

impl Simulation {
    pub(crate) fn new(config: &OrgConfig, domain: &str) -> Simulation {
        let ctx = Context {
            seed: config.seed,
            company: config.company_name.clone(),
            domain: domain.to_string(),
            start: config.start,
            big_ids: config.big_ids,
            initial_users: config.users,
        };
        let mut simulation = Simulation {
            ctx,
            day: 0,
            users: Vec::with_capacity(config.users),
            states: Vec::with_capacity(config.users),
            managers_by_dept: Vec::new(),
            ceo: None,
            next_serial: 0,
            email_counts: HashMap::new(),
        };
        simulation.build_roster(config.users);
        simulation.step(0);
        simulation
    }

    /// Returns the simulated day that `users` describes.
    pub fn day(&self) -> u32 {
        self.day
    }

    /// Returns the calendar date of the current simulated day.
    pub fn date(&self) -> NaiveDate {
        self.ctx.start + chrono::Days::new(u64::from(self.day))
    }

    /// Returns the users employed on the current day, ordered by creation time and then id.
    pub fn users(&self) -> &[SimUser] {
        &self.users
    }

    /// Runs every day after the current one up to and including `day`.
    ///
    /// # Panics
    /// Panics if `day` is before the current day, because the simulation
    /// cannot run backwards. Start a new one with `Organisation::simulation`.
    pub fn advance_to(&mut self, day: u32) {
        assert!(
            day >= self.day,
            "cannot move a simulation back from day {} to day {day}",
            self.day
        );
        while self.day < day {
            self.day += 1;
            self.step(self.day);
        }
    }

    /// Generates the report `result` entries of all current users.
    pub fn api_results(&self) -> Vec<Value> {
        self.users.iter().map(SimUser::to_api_json).collect()
    }

    fn step(&mut self, day: u32) {
        self.apply_daily_changes(day);
        self.hire(day);
        self.expire_new_hire_group(day);
        self.run_campaign(day);
        self.enrol(day);
        self.complete_training(day);
        self.refresh_open_counts(day);
    }

    /// Draws leavers, transfers and counter resets with one draw per user.
    fn apply_daily_changes(&mut self, day: u32) {
        let leave = LEAVE_RATE_PER_YEAR / 365.0;
        let transfer = leave + TRANSFER_RATE_PER_YEAR / 365.0;
        let reset = transfer + RESET_RATE_PER_30_DAYS / 30.0;
        let daily = Draw::new(self.ctx.seed, Purpose::Leave).with(u64::from(day));
        let mut changes = Vec::new();
        for state in &self.states {
            let roll = daily.with(u64::from(state.serial)).unit();
            let change = if roll < leave {
                DailyChange::Leave
            } else if roll < transfer {
                DailyChange::Transfer
            } else if roll < reset {
                DailyChange::Reset
            } else {
                continue;
            };
            changes.push((state.serial, change));
        }
        self.apply_changes(changes, day);
    }

    fn apply_changes(&mut self, changes: Vec<(u32, DailyChange)>, day: u32) {
        let mut leavers = Vec::new();
        for (serial, change) in changes {
            match change {
                DailyChange::Leave => leavers.push(serial),
                DailyChange::Transfer => self.transfer(serial, day),
                DailyChange::Reset => self.reset_counters(serial),
            }
        }
        self.remove_leavers(&leavers, day);
    }

    /// Returns the index of the user with `serial`, if still employed.
    pub(crate) fn index_of(&self, serial: u32) -> Option<usize> {
        self.states
            .binary_search_by_key(&serial, |state| state.serial)
            .ok()
    }
}
