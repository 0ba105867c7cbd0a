//! Staffing of the synthetic organisation: the initial roster, hires,
//! leavers, transfers, managers and group membership.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

use super::names::{
    BRANCHES, DEPARTMENTS, GROUP_ALL, GROUP_MANAGERS, GROUP_NEW_HIRES, GROUP_PILOT, GROUP_REMOTE,
    GROUPS, ascii_fold, odd_spelling, to_nfd,
};
use super::rng::{Draw, Purpose, SplitMix64, pick_weighted};
use super::sim::{Context, SimUser, Simulation, UserState};

/// Earliest hire date of the initial roster, in days before day 0 (15 years).
const MAX_TENURE_DAYS: f64 = 5475.0;
/// Hires per year as a share of the initial headcount.
const HIRE_RATE_PER_YEAR: f64 = 0.145;
/// Days a hire stays in the new-hire group.
const NEW_HIRE_DAYS: i64 = 90;
/// Members per manager when the initial roster is built.
const TEAM_SIZE: usize = 8;
/// The largest number of groups one user is in.
const MAX_GROUPS: usize = 3;
/// Index of the management department in `DEPARTMENTS`.
const MANAGEMENT: usize = 0;
/// Index of the head office in `BRANCHES`.
const HEAD_OFFICE: usize = 0;
/// Serial offset of users inserted by a mid-fetch mutation, far above any hire.
const INSERTED_SERIAL_BASE: u64 = 1_000_000_000;

/// The id of the first user when `big_ids` is set: 2^53 + 1, the smallest
/// integer that an f64 cannot represent.
const BIG_ID_BASE: u64 = (1 << 53) + 1;

/// Everything needed to create one person.
struct Hiring {
    serial: u64,
    hire_day: i64,
    created: DateTime<Utc>,
    department: usize,
}

/// Returns the id digits for a serial. Ids grow with the serial, so ordering
/// by creation and then id matches ordering by serial.
fn user_id(ctx: &Context, serial: u64) -> String {
    if ctx.big_ids {
        return (BIG_ID_BASE + 2 * serial).to_string();
    }
    let jitter = Draw::new(ctx.seed, Purpose::Person).with(serial).below(17);
    (104_729 + serial * 17 + jitter).to_string()
}

fn branch_for(ctx: &Context, serial: u64, department: usize) -> usize {
    if department == MANAGEMENT {
        return HEAD_OFFICE;
    }
    let weights: Vec<u32> = BRANCHES.iter().map(|branch| branch.weight).collect();
    pick_weighted(
        &weights,
        Draw::new(ctx.seed, Purpose::Person).with(serial).with(1),
    )
}

fn pick_name(ctx: &Context, serial: u64, branch: usize) -> (String, String) {
    let country = BRANCHES[branch].country;
    let draw = Draw::new(ctx.seed, Purpose::Person).with(serial);
    let firsts = country.first_names();
    let lasts = country.last_names();
    let first = firsts[draw.with(2).below(firsts.len() as u64) as usize];
    let last = lasts[draw.with(3).below(lasts.len() as u64) as usize];
    (first.to_string(), last.to_string())
}

/// Returns the department name as served, misspelled for about 1 user in 250.
fn served_department(department: usize, draw: Draw) -> String {
    let name = DEPARTMENTS[department].name;
    if draw.with(6).chance(1.0 / 250.0) {
        odd_spelling(name, draw.with(7).bits())
    } else {
        name.to_string()
    }
}

fn new_state(ctx: &Context, hiring: &Hiring) -> UserState {
    let draw = Draw::new(ctx.seed, Purpose::Trait).with(hiring.serial);
    UserState {
        serial: hiring.serial as u32,
        hire_day: hiring.hire_day,
        department: hiring.department,
        is_manager: false,
        manager: None,
        click_factor: draw.with(1).range_f64(0.4, 1.6),
        course_diligence: draw.with(2).range_f64(0.01, 0.12),
        material_diligence: draw.with(3).range_f64(0.03, 0.2),
        skill: draw.with(4).range_f64(45.0, 85.0),
        in_all_staff: draw.with(5).chance(0.75),
        remote: draw.with(6).chance(0.15),
        pilot: draw.with(7).chance(0.05),
        course_due: Vec::new(),
        completed_courses: 0,
        completed_materials: 0,
        score_sum: 0.0,
        score_count: 0,
        campaign_ends: Vec::new(),
    }
}

impl Simulation {
    /// Builds the users employed on day 0, hired over the 15 years before it
    /// with recent hire dates more common.
    pub(crate) fn build_roster(&mut self, count: usize) {
        self.managers_by_dept = vec![Vec::new(); DEPARTMENTS.len()];
        let mut rng = SplitMix64::new(Draw::new(self.ctx.seed, Purpose::Roster).bits());
        // Sorting by hire time makes serial order, and so id order, follow creation order.
        let mut hire_times: Vec<(i64, i64)> = (0..count)
            .map(|_| {
                let unit = rng.unit();
                let day = -1 - (unit * unit * MAX_TENURE_DAYS) as i64;
                (day, rng.below(9 * 60) as i64)
            })
            .collect();
        hire_times.sort_unstable();
        for (hire_day, minute) in hire_times {
            let serial = u64::from(self.next_serial);
            let department = self.roster_department(serial);
            let hiring = Hiring {
                serial,
                hire_day,
                created: self.work_time(hire_day, minute),
                department,
            };
            self.add_person(hiring);
        }
        self.ceo = self.states.first().map(|state| state.serial);
        self.appoint_initial_managers();
    }

    fn roster_department(&self, serial: u64) -> usize {
        if serial == 0 {
            return MANAGEMENT;
        }
        let weights: Vec<u32> = DEPARTMENTS.iter().map(|dept| dept.weight).collect();
        pick_weighted(
            &weights,
            Draw::new(self.ctx.seed, Purpose::Person)
                .with(serial)
                .with(4),
        )
    }

    /// Returns the UTC time `minute` minutes after 08:00 on a simulated day.
    fn work_time(&self, day: i64, minute: i64) -> DateTime<Utc> {
        let date = self.ctx.start + TimeDelta::days(day);
        let eight = NaiveTime::from_hms_opt(8, 0, 0).expect("08:00:00 is a valid time");
        (date.and_time(eight) + TimeDelta::minutes(minute)).and_utc()
    }

    /// Appends a person with no manager and no groups, and returns their index.
    fn add_person(&mut self, hiring: Hiring) -> usize {
        let user = self.new_user(&hiring, "");
        self.users.push(user);
        self.states.push(new_state(&self.ctx, &hiring));
        self.next_serial = self.next_serial.max(hiring.serial as u32 + 1);
        self.users.len() - 1
    }

    /// Creates the report view of a new person. `email_tag` is appended to the
    /// e-mail local part of users that bypass the uniqueness counter.
    fn new_user(&mut self, hiring: &Hiring, email_tag: &str) -> SimUser {
        let draw = Draw::new(self.ctx.seed, Purpose::Person).with(hiring.serial);
        let branch = branch_for(&self.ctx, hiring.serial, hiring.department);
        let (first, last) = pick_name(&self.ctx, hiring.serial, branch);
        let local = format!("{}.{}", ascii_fold(&first), ascii_fold(&last));
        let email = if email_tag.is_empty() {
            self.unique_email(local)
        } else {
            format!("{local}.{email_tag}@{}", self.ctx.domain)
        };
        // About 1 in 150 names arrives decomposed (NFD), as from some HR systems.
        let (first, last) = if draw.with(5).chance(1.0 / 150.0) {
            (to_nfd(&first), to_nfd(&last))
        } else {
            (first, last)
        };
        SimUser {
            id: user_id(&self.ctx, hiring.serial),
            email,
            name: format!("{first} {last}"),
            first_name: first,
            last_name: last,
            created: hiring.created,
            company: self.ctx.company.clone(),
            department: served_department(hiring.department, draw),
            country: BRANCHES[branch].country.code().to_string(),
            branch_id: BRANCHES[branch].id.to_string(),
            branch_name: BRANCHES[branch].name.to_string(),
            ..SimUser::default()
        }
    }

    fn unique_email(&mut self, local: String) -> String {
        let used = self.email_counts.entry(local.clone()).or_insert(0);
        *used += 1;
        if *used == 1 {
            format!("{local}@{}", self.ctx.domain)
        } else {
            format!("{local}{}@{}", *used, self.ctx.domain)
        }
    }

    /// Makes the longest-serving 1 in `TEAM_SIZE` members of each department
    /// its managers, then gives everyone a manager and groups.
    fn appoint_initial_managers(&mut self) {
        let mut sizes = vec![0usize; DEPARTMENTS.len()];
        for state in &self.states {
            sizes[state.department] += 1;
        }
        for index in 0..self.states.len() {
            let department = self.states[index].department;
            let wanted = sizes[department].div_ceil(TEAM_SIZE);
            if self.managers_by_dept[department].len() < wanted {
                self.states[index].is_manager = true;
                self.managers_by_dept[department].push(self.states[index].serial);
            }
        }
        for index in 0..self.states.len() {
            self.assign_manager(index);
            self.rebuild_groups(index, 0);
        }
    }

    /// Chooses the manager of the user at `index` and copies their name and
    /// e-mail into the report fields.
    ///
    /// The CEO has no manager, department heads report to the CEO, other
    /// managers to their head, and staff to one of the department's managers.
    pub(crate) fn assign_manager(&mut self, index: usize) {
        let manager = self.choose_manager(&self.states[index]);
        self.states[index].manager = manager;
        let (name, email) = match manager.and_then(|serial| self.index_of(serial)) {
            Some(boss) => (
                self.users[boss].name.clone(),
                self.users[boss].email.clone(),
            ),
            None => (String::new(), String::new()),
        };
        self.users[index].manager = name;
        self.users[index].manager_email = email;
    }

    fn choose_manager(&self, state: &UserState) -> Option<u32> {
        if Some(state.serial) == self.ceo {
            return None;
        }
        let managers = &self.managers_by_dept[state.department];
        let head = managers.first().copied();
        if head.is_none() || head == Some(state.serial) {
            return self.ceo;
        }
        if state.is_manager {
            return head;
        }
        let draw = Draw::new(self.ctx.seed, Purpose::Manager)
            .with(u64::from(state.serial))
            .with(managers.len() as u64);
        Some(managers[draw.below(managers.len() as u64) as usize])
    }

    /// Recomputes the groups of the user at `index` as of `day`.
    pub(crate) fn rebuild_groups(&mut self, index: usize, day: u32) {
        let state = &self.states[index];
        let new_hire = i64::from(day) - state.hire_day < NEW_HIRE_DAYS;
        let memberships = [
            (GROUP_ALL, state.in_all_staff),
            (GROUP_MANAGERS, state.is_manager),
            (GROUP_NEW_HIRES, new_hire),
            (GROUP_REMOTE, state.remote),
            (GROUP_PILOT, state.pilot),
        ];
        let groups = memberships
            .iter()
            .filter(|(_, member)| *member)
            .take(MAX_GROUPS)
            .map(|&(group, _)| (GROUPS[group].0.to_string(), GROUPS[group].1.to_string()))
            .collect();
        self.users[index].groups = groups;
    }

    /// Removes hires from the new-hire group once their first 90 days are over.
    pub(crate) fn expire_new_hire_group(&mut self, day: u32) {
        for index in 0..self.states.len() {
            if self.states[index].hire_day + NEW_HIRE_DAYS == i64::from(day) {
                self.rebuild_groups(index, day);
            }
        }
    }

    /// Hires about `HIRE_RATE_PER_YEAR` of the initial headcount per year,
    /// spread evenly over the days.
    pub(crate) fn hire(&mut self, day: u32) {
        let expected = self.ctx.initial_users as f64 * HIRE_RATE_PER_YEAR / 365.0;
        let draw = Draw::new(self.ctx.seed, Purpose::Hire).with(u64::from(day));
        let extra = draw.chance(expected - expected.floor());
        let count = expected.floor() as u64 + u64::from(extra);
        let mut minutes: Vec<i64> = (0..count)
            .map(|n| draw.with(n + 1).below(9 * 60) as i64)
            .collect();
        minutes.sort_unstable();
        for (ordinal, minute) in (0..).zip(minutes) {
            self.hire_one(day, minute, draw.with(ordinal + 1));
        }
    }

    fn hire_one(&mut self, day: u32, minute: i64, draw: Draw) {
        let serial = u64::from(self.next_serial);
        let weights: Vec<u32> = DEPARTMENTS.iter().map(|dept| dept.weight).collect();
        let hiring = Hiring {
            serial,
            hire_day: i64::from(day),
            created: self.work_time(i64::from(day), minute),
            department: pick_weighted(&weights, draw.with(2)),
        };
        let department = hiring.department;
        let index = self.add_person(hiring);
        if self.managers_by_dept[department].is_empty() {
            self.promote(index);
        }
        self.assign_manager(index);
        self.rebuild_groups(index, day);
        self.enrol_new_hire(index, day);
    }

    fn promote(&mut self, index: usize) {
        let state = &mut self.states[index];
        state.is_manager = true;
        self.managers_by_dept[state.department].push(state.serial);
    }

    /// Moves a staff member to another department under a new manager.
    /// Managers and the CEO stay where they are.
    pub(crate) fn transfer(&mut self, serial: u32, day: u32) {
        let Some(index) = self.index_of(serial) else {
            return;
        };
        if self.states[index].is_manager || Some(serial) == self.ceo {
            return;
        }
        let old = self.states[index].department;
        let weights: Vec<u32> = DEPARTMENTS
            .iter()
            .enumerate()
            .map(|(dept, spec)| {
                if dept == old || dept == MANAGEMENT {
                    0
                } else {
                    spec.weight
                }
            })
            .collect();
        let draw = Draw::new(self.ctx.seed, Purpose::Transfer).with(u64::from(serial));
        let department = pick_weighted(&weights, draw.with(u64::from(day)));
        self.states[index].department = department;
        self.users[index].department = DEPARTMENTS[department].name.to_string();
        if self.managers_by_dept[department].is_empty() {
            self.promote(index);
            self.rebuild_groups(index, day);
        }
        self.assign_manager(index);
    }

    /// Removes leavers, promotes a member of any department left without a
    /// manager, and gives the leavers' reports new managers.
    pub(crate) fn remove_leavers(&mut self, leavers: &[u32], day: u32) {
        let mut gone: Vec<u32> = leavers
            .iter()
            .copied()
            .filter(|&s| Some(s) != self.ceo)
            .collect();
        if gone.is_empty() {
            return;
        }
        gone.sort_unstable();
        let is_gone = |serial: &u32| gone.binary_search(serial).is_ok();
        let mut index = 0;
        self.users.retain(|_| {
            let keep = !is_gone(&self.states[index].serial);
            index += 1;
            keep
        });
        self.states.retain(|state| !is_gone(&state.serial));
        for managers in &mut self.managers_by_dept {
            managers.retain(|serial| !is_gone(serial));
        }
        self.fill_empty_departments(day);
        for index in 0..self.states.len() {
            let reports_to_leaver = self.states[index].manager.is_some_and(|m| is_gone(&m));
            if reports_to_leaver {
                self.assign_manager(index);
            }
        }
    }

    /// Promotes the longest-serving member of each department that has
    /// members but no manager.
    fn fill_empty_departments(&mut self, day: u32) {
        for department in 0..DEPARTMENTS.len() {
            if !self.managers_by_dept[department].is_empty() {
                continue;
            }
            let Some(index) = self.states.iter().position(|s| s.department == department) else {
                continue;
            };
            self.promote(index);
            self.rebuild_groups(index, day);
            self.assign_manager(index);
        }
    }

    /// Creates a user who appears in the report mid-fetch, outside the
    /// simulation: hired today, with no activity and a tagged e-mail address
    /// so that it never collides with a simulated user.
    pub(crate) fn make_inserted_user(&mut self, ordinal: u64) -> SimUser {
        let serial = INSERTED_SERIAL_BASE + ordinal;
        let day = i64::from(self.day());
        let weights: Vec<u32> = DEPARTMENTS.iter().map(|dept| dept.weight).collect();
        let draw = Draw::new(self.ctx.seed, Purpose::Hire).with(serial);
        let hiring = Hiring {
            serial,
            hire_day: day,
            created: self.work_time(day, draw.with(1).below(9 * 60) as i64),
            department: pick_weighted(&weights, draw.with(2)),
        };
        let mut user = self.new_user(&hiring, &format!("n{ordinal}"));
        let (group_id, group_name) = GROUPS[GROUP_NEW_HIRES];
        user.groups = vec![(group_id.to_string(), group_name.to_string())];
        user
    }
}
