//! The shareable outputs, made by the real binary from a store that
//! cpstat's own snapshot writer wrote. The tests read the Excel workbook
//! back with calamine and check the safe CSV, pseudonymised and suppressed
//! outputs, the HTML report, the JSON summaries, fetching many accounts,
//! the completions and the manual page.

#[path = "../common/mod.rs"]
mod common;

mod fixture;
mod html;
mod privacy;
mod sharing;
mod workbook;
