//! cpstat: CyberPilot users-summary reports into Parquet snapshots, and the
//! analysis of risk and click rates across them.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod generate;
pub mod logging;
pub mod mock;
pub mod output;
pub mod privacy;
pub mod query;
pub mod report;
pub mod secret;
pub mod settings;
pub mod snapshot;
