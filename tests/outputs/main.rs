//! The shareable outputs, made by the real binary from a store written by
//! cpstat's own snapshot writer: the Excel workbook read back by calamine,
//! the safe CSV, pseudonymised and suppressed outputs, the HTML report, the
//! JSON summaries, fetching many accounts, and completions and man page.

#[path = "../common/mod.rs"]
mod common;

mod fixture;
mod html;
mod privacy;
mod sharing;
mod workbook;
