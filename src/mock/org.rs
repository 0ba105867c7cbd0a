//! The configuration and entry points of a synthetic organisation.

use chrono::NaiveDate;
use serde_json::Value;

use super::names::company_domain;
use super::sim::Simulation;

/// The parameters that fully determine a synthetic organisation.
///
/// Two organisations built from equal configurations serve byte-identical
/// reports on every day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgConfig {
    pub seed: u64,
    /// The account UUID under which the mock API serves this organisation.
    pub account_id: String,
    /// The company name, served as `meta.companyName` and used for the e-mail domain.
    pub company_name: String,
    /// Headcount on day 0. Hires and leavers change it over simulated time.
    pub users: usize,
    /// The calendar date of day 0, the day the account starts using the platform.
    pub start: NaiveDate,
    /// Gives users ids above 2^53 (9007199254740993 and up), which a JSON
    /// reader that parses numbers as f64 cannot hold exactly.
    pub big_ids: bool,
}

impl Default for OrgConfig {
    fn default() -> OrgConfig {
        OrgConfig {
            seed: 1,
            account_id: "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55".to_string(),
            company_name: "Nordlys Energi A/S".to_string(),
            users: 200,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).expect("2024-01-01 is a valid date"),
            big_ids: false,
        }
    }
}

/// A deterministic synthetic company whose users-summary report can be
/// generated for any simulated day.
///
/// Day 0 is `OrgConfig::start`. Phishing and training counters start at
/// zero on day 0, so early reports show the untrained click rate.
#[derive(Clone, Debug)]
pub struct Organisation {
    config: OrgConfig,
    domain: String,
}

impl Organisation {
    pub fn new(config: OrgConfig) -> Organisation {
        let domain = company_domain(&config.company_name);
        Organisation { config, domain }
    }

    pub fn config(&self) -> &OrgConfig {
        &self.config
    }

    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// Returns the e-mail domain of all users, derived from the company name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Returns the calendar date of a simulated day.
    pub fn date_of(&self, day: u32) -> NaiveDate {
        self.config.start + chrono::Days::new(u64::from(day))
    }

    /// Starts a simulation at day 0. Call `Simulation::advance_to` to move it
    /// forward, which is much faster than calling `users_at` for each day.
    pub fn simulation(&self) -> Simulation {
        Simulation::new(&self.config, &self.domain)
    }

    /// Generates the report `result` entries of every user employed on `day`,
    /// ordered by creation time and then id.
    ///
    /// This replays the simulation from day 0, so it costs time linear in
    /// `day` times the headcount.
    pub fn users_at(&self, day: u32) -> Vec<Value> {
        let mut simulation = self.simulation();
        simulation.advance_to(day);
        simulation.api_results()
    }
}
