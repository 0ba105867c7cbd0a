//! Error kinds that decide the process exit code.
//!
//! Lower layers return their own `thiserror` enums. Each implements
//! [`Classify`], and `main` walks the `anyhow` chain to the first error that
//! classifies itself, so the exit code does not depend on where context was
//! added.

use std::fmt;

/// The documented exit codes of `cpstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// 0: everything asked for was done.
    Success,
    /// 1: an unexpected internal error.
    Internal,
    /// 2: invalid arguments or configuration, including an unknown account id.
    Usage,
    /// 3: the API rejected the credentials or denied access to the account.
    Auth,
    /// 4: the network or the server failed after every retry.
    Network,
    /// 5: a response or a file could not be understood.
    Data,
    /// 6: some of the work was done: a snapshot written with a recorded
    /// shortfall, or some accounts failed while others succeeded.
    Partial,
    /// 7: another run holds the store lock.
    Busy,
}

impl ExitKind {
    pub fn code(self) -> i32 {
        match self {
            ExitKind::Success => 0,
            ExitKind::Internal => 1,
            ExitKind::Usage => 2,
            ExitKind::Auth => 3,
            ExitKind::Network => 4,
            ExitKind::Data => 5,
            ExitKind::Partial => 6,
            ExitKind::Busy => 7,
        }
    }
}

/// Implemented by error types that know which exit code they mean.
pub trait Classify {
    fn exit_kind(&self) -> ExitKind;
}

/// A usage or configuration error with a message that tells what to do.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Classify for UsageError {
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Usage
    }
}

/// A data error: a file or value that cannot be used as it is.
#[derive(Debug)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

impl Classify for DataError {
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Data
    }
}

/// Returns a usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Returns a data error as an `anyhow::Error`.
pub fn data(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(DataError(message.into()))
}

/// Finds the exit code for an error chain: the first error in it that
/// classifies itself, or [`ExitKind::Internal`].
pub fn exit_kind_of(error: &anyhow::Error) -> ExitKind {
    for cause in error.chain() {
        if let Some(kind) = classify_one(cause) {
            return kind;
        }
    }
    ExitKind::Internal
}

fn classify_one(cause: &(dyn std::error::Error + 'static)) -> Option<ExitKind> {
    if let Some(e) = cause.downcast_ref::<UsageError>() {
        return Some(e.exit_kind());
    }
    if let Some(e) = cause.downcast_ref::<DataError>() {
        return Some(e.exit_kind());
    }
    if let Some(e) = cause.downcast_ref::<crate::api::ApiError>() {
        return Some(e.exit_kind());
    }
    if let Some(e) = cause.downcast_ref::<crate::config::ConfigError>() {
        return Some(e.exit_kind());
    }
    if let Some(e) = cause.downcast_ref::<crate::snapshot::lock::LockError>() {
        return Some(e.exit_kind());
    }
    if cause.downcast_ref::<polars::error::PolarsError>().is_some() {
        return Some(ExitKind::Data);
    }
    None
}
