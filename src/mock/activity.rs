//! Phishing campaigns and training: the events behind the report counters.

use super::names::DEPARTMENTS;
use super::rng::{Draw, Purpose};
use super::sim::{SimUser, Simulation, UserState};

/// Days between course enrolment waves.
const COURSE_WAVE_DAYS: u32 = 28;
/// Share of users enrolled in a course at each wave.
const COURSE_WAVE_SHARE: f64 = 0.6;
/// Days from enrolment until a course is overdue.
const COURSE_DUE_DAYS: u32 = 30;
/// Days from hire until an onboarding course is overdue.
const ONBOARDING_DUE_DAYS: u32 = 14;
/// Days between material enrolment waves, which fall midway between course waves.
const MATERIAL_WAVE_DAYS: u32 = 14;
const MATERIAL_WAVE_SHARE: f64 = 0.5;
/// Days between phishing campaigns.
const CAMPAIGN_INTERVAL_DAYS: u32 = 7;
/// Maximum probability of clicking, whatever the department and person.
const MAX_CLICK_PROBABILITY: f64 = 0.95;

pub(crate) const ACTION_EMAIL_SENT: &str = "Email sent";
pub(crate) const ACTION_CLICKED: &str = "Clicked link";
pub(crate) const ACTION_SUBMITTED: &str = "Submitted data";
pub(crate) const ACTION_REPORTED: &str = "Reported email";
pub(crate) const ACTION_COMPLETED_COURSE: &str = "Completed course";
pub(crate) const ACTION_COMPLETED_MATERIAL: &str = "Completed material";

/// Training completed so far, with a material counting half a course.
fn training_done(state: &UserState) -> f64 {
    f64::from(state.completed_courses) + 0.5 * f64::from(state.completed_materials)
}

/// Returns the probability that the user clicks a phishing link.
///
/// It is the department baseline times a personal factor (mean 1), and falls
/// towards 30 % of that as training accumulates, reaching 65 % after five
/// completed courses.
pub(crate) fn click_probability(state: &UserState) -> f64 {
    let base = DEPARTMENTS[state.department].click_base * state.click_factor;
    let training = 0.3 + 0.7 / (1.0 + 0.2 * training_done(state));
    (base * training).min(MAX_CLICK_PROBABILITY)
}

/// Returns the probability of submitting data after a click.
fn submit_probability(state: &UserState) -> f64 {
    0.4 * (0.5 + 0.5 / (1.0 + 0.2 * training_done(state)))
}

/// Returns the probability of reporting a phishing e-mail that was not clicked.
fn report_probability(state: &UserState) -> f64 {
    (0.05 + 0.03 * training_done(state)).min(0.6)
}

/// A phishing campaign: the share of users it targets and how long it runs.
struct Campaign {
    day: u32,
    target_share: f64,
    duration_days: u32,
}

impl Simulation {
    fn campaign_on(&self, day: u32) -> Option<Campaign> {
        let offset =
            Draw::new(self.ctx.seed, Purpose::Campaign).below(u64::from(CAMPAIGN_INTERVAL_DAYS));
        if u64::from(day % CAMPAIGN_INTERVAL_DAYS) != offset {
            return None;
        }
        let draw = Draw::new(self.ctx.seed, Purpose::Campaign).with(u64::from(day));
        Some(Campaign {
            day,
            target_share: draw.with(1).range_f64(0.55, 0.9),
            duration_days: 10 + draw.with(2).below(12) as u32,
        })
    }

    /// Sends the day's phishing campaign, if there is one, to its targets.
    pub(crate) fn run_campaign(&mut self, day: u32) {
        let Some(campaign) = self.campaign_on(day) else {
            return;
        };
        let seed = self.ctx.seed;
        for (user, state) in self.users.iter_mut().zip(self.states.iter_mut()) {
            let key = Draw::new(seed, Purpose::Target).with(u64::from(state.serial));
            if key.with(u64::from(day)).chance(campaign.target_share) {
                receive_phishing(user, state, &campaign, seed);
            }
        }
    }

    /// Enrols users in courses and materials on wave days.
    pub(crate) fn enrol(&mut self, day: u32) {
        let course_wave = day % COURSE_WAVE_DAYS == 0;
        let material_wave = day % MATERIAL_WAVE_DAYS == MATERIAL_WAVE_DAYS / 2;
        if !course_wave && !material_wave {
            return;
        }
        let wave = Draw::new(self.ctx.seed, Purpose::Enrol).with(u64::from(day));
        for (user, state) in self.users.iter_mut().zip(self.states.iter_mut()) {
            let draw = wave.with(u64::from(state.serial));
            if course_wave && draw.chance(COURSE_WAVE_SHARE) {
                enrol_course(user, state, day + COURSE_DUE_DAYS);
            }
            if material_wave && draw.with(1).chance(MATERIAL_WAVE_SHARE) {
                user.enrolled_materials += 1;
                user.not_completed_materials += 1;
            }
        }
    }

    /// Enrols a hire in two onboarding courses and one material.
    pub(crate) fn enrol_new_hire(&mut self, index: usize, day: u32) {
        let user = &mut self.users[index];
        let state = &mut self.states[index];
        enrol_course(user, state, day + ONBOARDING_DUE_DAYS);
        enrol_course(user, state, day + ONBOARDING_DUE_DAYS);
        user.enrolled_materials += 1;
        user.not_completed_materials += 1;
    }

    /// Lets each user complete at most one open course and one open material.
    pub(crate) fn complete_training(&mut self, day: u32) {
        let seed = self.ctx.seed;
        for (user, state) in self.users.iter_mut().zip(self.states.iter_mut()) {
            let key = (u64::from(state.serial), u64::from(day));
            if user.not_completed_courses > 0 {
                let draw = Draw::new(seed, Purpose::CompleteCourse)
                    .with(key.0)
                    .with(key.1);
                if draw.chance(state.course_diligence) {
                    complete_course(user, state, draw.with(1));
                }
            }
            if user.not_completed_materials > 0 {
                let draw = Draw::new(seed, Purpose::CompleteMaterial)
                    .with(key.0)
                    .with(key.1);
                if draw.chance(state.material_diligence) {
                    user.not_completed_materials -= 1;
                    state.completed_materials += 1;
                    set_last_action(user, ACTION_COMPLETED_MATERIAL);
                }
            }
        }
    }

    /// Updates the counts that depend on today's date: overdue courses and
    /// campaigns still running.
    pub(crate) fn refresh_open_counts(&mut self, day: u32) {
        for (user, state) in self.users.iter_mut().zip(self.states.iter_mut()) {
            user.overdue_courses = state.course_due.iter().filter(|&&due| due < day).count() as i64;
            state.campaign_ends.retain(|&end| end > day);
            user.phishing_campaigns = state.campaign_ends.len() as i64;
        }
    }

    /// Resets the cumulative counters of one user to zero, as the platform
    /// occasionally does. Open courses and materials stay enrolled.
    pub(crate) fn reset_counters(&mut self, serial: u32) {
        let Some(index) = self.index_of(serial) else {
            return;
        };
        let user = &mut self.users[index];
        user.emails_sent = 0;
        user.links_clicked = 0;
        user.data_submitted = 0;
        user.enrolled_courses = user.not_completed_courses;
        user.enrolled_materials = user.not_completed_materials;
    }
}

fn receive_phishing(user: &mut SimUser, state: &mut UserState, campaign: &Campaign, seed: u64) {
    let key = Draw::new(seed, Purpose::Click)
        .with(u64::from(state.serial))
        .with(u64::from(campaign.day));
    user.emails_sent += 1;
    set_last_action(user, ACTION_EMAIL_SENT);
    state
        .campaign_ends
        .push(campaign.day + campaign.duration_days);
    if key.chance(click_probability(state)) {
        user.links_clicked += 1;
        set_last_action(user, ACTION_CLICKED);
        if key
            .with(Purpose::Submit as u64)
            .chance(submit_probability(state))
        {
            user.data_submitted += 1;
            set_last_action(user, ACTION_SUBMITTED);
        }
    } else if key
        .with(Purpose::Report as u64)
        .chance(report_probability(state))
    {
        set_last_action(user, ACTION_REPORTED);
    }
}

/// Replaces the last action in place, reusing the string's buffer.
fn set_last_action(user: &mut SimUser, action: &str) {
    user.last_action.clear();
    user.last_action.push_str(action);
}

fn enrol_course(user: &mut SimUser, state: &mut UserState, due_day: u32) {
    user.enrolled_courses += 1;
    user.not_completed_courses += 1;
    state.course_due.push(due_day);
}

/// Completes the oldest open course with a score that improves with practice.
fn complete_course(user: &mut SimUser, state: &mut UserState, draw: Draw) {
    if !state.course_due.is_empty() {
        state.course_due.remove(0);
    }
    user.not_completed_courses -= 1;
    state.completed_courses += 1;
    let practice = 1.5 * f64::from(state.completed_courses);
    let noise = draw.range_f64(-10.0, 10.0);
    let score = (state.skill + practice + noise).clamp(0.0, 100.0).round();
    state.score_sum += score;
    state.score_count += 1;
    user.average_score = Some(state.score_sum / f64::from(state.score_count));
    set_last_action(user, ACTION_COMPLETED_COURSE);
}
