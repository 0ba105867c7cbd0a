//! Client for the CyberPilot users-summary report API.
//!
//! `client` sends single page requests with retries, `auth` supplies bearer
//! tokens (static or renewed by the OAuth2 password grant), `fetch` plans the
//! pages of a whole account and checks the result for consistency, and
//! `decode` turns response bodies into columnar
//! [`crate::snapshot::batch::UserBatch`]es.

pub mod auth;
pub mod client;
pub mod decode;
pub mod fetch;
pub mod retry;

use std::fmt;
use std::time::Duration;

use crate::error::{Classify, ExitKind};

pub use client::{ApiClient, ClientOptions};
pub use fetch::{FetchOptions, FetchOutcome, fetch_account};

/// The vendor's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.app.cyberpilot.io";

/// One page request: where it starts and how many users it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageRef {
    pub skip: u64,
    pub take: u64,
}

impl fmt::Display for PageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page skip={} take={}", self.skip, self.take)
    }
}

/// Everything that can end a fetch.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the API rejected the access token for account {account} (HTTP 401): it is wrong or has expired. \
         Get a new token, or configure the password grant so that cpstat renews it"
    )]
    Unauthorized { account: String },
    #[error(
        "access to account {account} was denied (HTTP 403): {message}. Check that the API is activated \
         in the account's settings and that the credentials belong to this account"
    )]
    Forbidden { account: String, message: String },
    #[error(
        "account {account} was not found (HTTP 404): check the account id in the account's API settings"
    )]
    AccountNotFound { account: String },
    #[error("the token request to {url} failed: {message}")]
    TokenRequest { url: String, message: String },
    #[error("unexpected HTTP {status} for {page} of account {account}: {body}")]
    Status {
        account: String,
        page: PageRef,
        status: u16,
        body: String,
    },
    #[error("invalid response for {page} of account {account}: {source}")]
    Decode {
        account: String,
        page: PageRef,
        #[source]
        source: decode::DecodeError,
    },
    #[error("{page} of account {account} failed after {attempts} attempts; the last error: {last}")]
    RetriesExhausted {
        account: String,
        page: PageRef,
        attempts: u32,
        last: String,
        /// Whether the last failure was an unreadable body rather than the
        /// network or the server's status.
        data: bool,
    },
    #[error(
        "the server asked to wait {wait:?} before retrying {page} of account {account}, more than the \
         maximum of {cap:?}; run again later or raise --max-retry-wait"
    )]
    RetryAfterTooLong {
        account: String,
        page: PageRef,
        wait: Duration,
        cap: Duration,
    },
    #[error(
        "the server returned the same users for {page} as for the first page of account {account}: \
         it ignores `skip`, so paging cannot make progress"
    )]
    IgnoresSkip { account: String, page: PageRef },
    #[error(
        "account {account} changed during every one of {rounds} fetch rounds ({detail}); run again later, \
         or pass --allow-partial to keep the last round with its shortfall recorded"
    )]
    Inconsistent {
        account: String,
        rounds: u32,
        detail: String,
    },
    #[error("invalid base URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("failed to build the HTTP client: {0}")]
    Client(String),
}

impl Classify for ApiError {
    fn exit_kind(&self) -> ExitKind {
        match self {
            ApiError::Unauthorized { .. }
            | ApiError::Forbidden { .. }
            | ApiError::TokenRequest { .. } => ExitKind::Auth,
            ApiError::AccountNotFound { .. }
            | ApiError::InvalidUrl { .. }
            | ApiError::Client(_) => ExitKind::Usage,
            ApiError::Status { .. } | ApiError::RetryAfterTooLong { .. } => ExitKind::Network,
            ApiError::RetriesExhausted { data: false, .. } => ExitKind::Network,
            ApiError::RetriesExhausted { data: true, .. }
            | ApiError::Decode { .. }
            | ApiError::IgnoresSkip { .. }
            | ApiError::Inconsistent { .. } => ExitKind::Data,
        }
    }
}
