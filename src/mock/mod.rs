//! A mock of the CyberPilot users-summary report API.
//!
//! [`Organisation`] generates a deterministic synthetic company whose users,
//! phishing counters and training evolve day by day. [`MockApi`] serves one or
//! more organisations over HTTP/1.1 on loopback, with an OAuth2 password-grant
//! token endpoint and queued [`Fault`]s that imitate a misbehaving server.

mod activity;
mod auth;
mod drift;
mod faults;
mod http;
mod json;
mod names;
mod org;
mod people;
mod rng;
mod routes;
mod server;
mod sim;
mod summary;

pub use faults::{Fault, Mutation};
pub use org::{OrgConfig, Organisation};
pub use server::{
    DEFAULT_TOKEN, MAX_RECORDED, MockApi, MockOptions, MockStats, RecordedRequest, TOKEN_PATH,
};
pub use sim::{SimUser, Simulation};
