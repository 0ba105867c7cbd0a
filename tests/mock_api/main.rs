//! The mock API on its own: the synthetic organisation, and the server over
//! real loopback HTTP with its faults.

mod common;
mod faults;
mod organisation;
mod server;
