//! Resolution of command settings.
//!
//! Precedence, highest first: command-line flag, environment variable, the
//! config file, the built-in default. clap applies the first two (each flag
//! declares its `CPSTAT_*` variable), so the functions here only fall back
//! to the config file and defaults, read secrets and validate the result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::api::auth::Credentials;
use crate::api::retry::RetryPolicy;
use crate::api::{ClientOptions, DEFAULT_BASE_URL, FetchOptions};
use crate::cli::{ConnectionArgs, FetchArgs, StoreArg, env};
use crate::config::{AccountEntry, ConfigFile};
use crate::error::usage;
use crate::secret::Secret;

/// The store folder used when neither flag, environment nor config names one.
pub const DEFAULT_STORE: &str = "cpstat-store";

/// One account to fetch and how to reach it.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub id: String,
    pub display_name: Option<String>,
    pub credentials: Credentials,
    pub client: ClientOptions,
}

/// Everything `cpstat fetch` needs.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub store: PathBuf,
    pub account: AccountSettings,
    pub fetch: FetchOptions,
    pub snapshot_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Resolves the store folder.
pub fn resolve_store(arg: &StoreArg, config: &ConfigFile) -> PathBuf {
    arg.store
        .clone()
        .or_else(|| config.store.as_ref().map(|p| config.resolve_path(p)))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

/// Resolves the settings of `cpstat fetch`.
pub fn resolve_fetch(args: &FetchArgs, config: &ConfigFile) -> Result<FetchSettings> {
    resolve_fetch_account(args, config, args.account.as_deref())
}

/// Resolves the settings of a fetch of `requested`, an account id or the
/// name of an account in the config file, in place of `args.account`.
pub fn resolve_fetch_account(
    args: &FetchArgs,
    config: &ConfigFile,
    requested: Option<&str>,
) -> Result<FetchSettings> {
    let requested = requested.map(str::trim).filter(|a| !a.is_empty());
    let entry = match requested {
        Some(name) => config.account(name).cloned(),
        None if config.accounts.len() == 1 => config.accounts.first().cloned(),
        None => None,
    };
    let id = match (&entry, requested) {
        (Some(entry), _) => entry.id.clone(),
        (None, Some(id)) => id.to_string(),
        (None, None) => {
            return Err(usage(format!(
                "no account given: pass --account ID, set {}, or list the account in cpstat.toml",
                env::ACCOUNT
            )));
        }
    };
    validate_account_id(&id)?;
    let account = resolve_account(&id, entry.as_ref(), &args.connection, config)?;
    Ok(FetchSettings {
        store: resolve_store(&args.store, config),
        account,
        fetch: FetchOptions {
            page_size: args.page_size,
            concurrency: args.concurrency as usize,
            max_rounds: args.max_rounds,
            allow_partial: args.allow_partial,
        },
        snapshot_at: args.snapshot_at,
    })
}

/// Account ids become folder names, so they must be plain: letters, digits,
/// `-` and `_`. Real ids are UUIDs.
pub fn validate_account_id(id: &str) -> Result<()> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid account id {id:?}: expected a UUID such as 0b5f4a8e-1111-4c1e-9d7a-000000000001, or the name of an account in cpstat.toml"
        )))
    }
}

/// Resolves one account's connection and credentials.
pub fn resolve_account(
    id: &str,
    entry: Option<&AccountEntry>,
    connection: &ConnectionArgs,
    config: &ConfigFile,
) -> Result<AccountSettings> {
    let base_url = connection
        .base_url
        .clone()
        .or_else(|| entry.and_then(|e| e.base_url.clone()))
        .or_else(|| config.base_url.clone())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let ca_cert = connection
        .ca_cert
        .clone()
        .or_else(|| config.ca_cert.as_ref().map(|p| config.resolve_path(p)));
    let client = ClientOptions {
        base_url,
        connect_timeout: Duration::from_secs(connection.connect_timeout.max(1)),
        read_timeout: Duration::from_secs(connection.read_timeout.max(1)),
        retry: RetryPolicy {
            max_attempts: connection.max_attempts,
            max_wait: Duration::from_secs(connection.max_retry_wait),
            time_scale: retry_time_scale()?,
            ..RetryPolicy::default()
        },
        ca_cert,
        max_body_bytes: crate::api::client::MAX_BODY_BYTES,
    };
    let credentials = resolve_credentials(id, entry, connection, config)?;
    Ok(AccountSettings {
        id: id.to_string(),
        display_name: entry.and_then(|e| e.display_name.clone()),
        credentials,
        client,
    })
}

fn retry_time_scale() -> Result<f64> {
    match std::env::var(env::RETRY_TIME_SCALE) {
        Err(_) => Ok(1.0),
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale >= 0.0 => Ok(scale),
            _ => Err(usage(format!(
                "invalid {}={text:?}: expected a number of at least 0",
                env::RETRY_TIME_SCALE
            ))),
        },
    }
}

/// Finds the credentials: a token from the environment or a token file
/// first, then the password grant from the environment and flags, then the
/// account's entry in the config file.
fn resolve_credentials(
    id: &str,
    entry: Option<&AccountEntry>,
    connection: &ConnectionArgs,
    config: &ConfigFile,
) -> Result<Credentials> {
    if let Some(token) = env_secret(env::TOKEN) {
        return Ok(Credentials::Token(token));
    }
    if let Some(path) = &connection.token_file {
        return Ok(Credentials::Token(read_secret_file(path, "token")?));
    }
    if connection.username.is_some()
        || env_secret(env::PASSWORD).is_some()
        || connection.password_file.is_some()
    {
        return password_grant(connection, entry, config);
    }
    if let Some(entry) = entry {
        if let Some(path) = &entry.token_file {
            return Ok(Credentials::Token(read_secret_file(
                &config.resolve_path(path),
                "token",
            )?));
        }
        if entry.password_file.is_some() || entry.username.is_some() {
            return password_grant(connection, Some(entry), config);
        }
    }
    Err(usage(format!(
        "no credentials for account {id}: set {} or {} (or --token-file), configure the password grant \
         with {}, {}, {} and {}, or give the account a token_file in cpstat.toml",
        env::TOKEN,
        env::TOKEN_FILE,
        env::AUTH_URL,
        env::CLIENT_ID,
        env::USERNAME,
        env::PASSWORD
    )))
}

fn password_grant(
    connection: &ConnectionArgs,
    entry: Option<&AccountEntry>,
    config: &ConfigFile,
) -> Result<Credentials> {
    let missing = |what: &str, variable: &str| {
        usage(format!("the password grant needs {what}: set {variable}"))
    };
    let auth_url = connection
        .auth_url
        .clone()
        .or_else(|| entry.and_then(|e| e.auth_url.clone()))
        .or_else(|| config.auth_url.clone())
        .ok_or_else(|| missing("the token URL", env::AUTH_URL))?;
    let client_id = connection
        .client_id
        .clone()
        .or_else(|| entry.and_then(|e| e.client_id.clone()))
        .ok_or_else(|| missing("a client id", env::CLIENT_ID))?;
    let username = connection
        .username
        .clone()
        .or_else(|| entry.and_then(|e| e.username.clone()))
        .ok_or_else(|| missing("a user name", env::USERNAME))?;
    let password = match (env_secret(env::PASSWORD), &connection.password_file) {
        (Some(password), _) => password,
        (None, Some(path)) => read_secret_file(path, "password")?,
        (None, None) => match entry.and_then(|e| e.password_file.as_ref()) {
            Some(path) => read_secret_file(&config.resolve_path(path), "password")?,
            None => {
                return Err(missing(
                    "a password",
                    &format!("{} or {}", env::PASSWORD, env::PASSWORD_FILE),
                ));
            }
        },
    };
    Ok(Credentials::PasswordGrant {
        auth_url,
        client_id,
        username,
        password,
    })
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .map(Secret::new)
        .filter(|s| !s.is_empty())
}

/// Reads a secret from a file, warning when others may read the file.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the {what} file {}", path.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let secret = Secret::new(text);
    if secret.is_empty() {
        return Err(usage(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    warn_if_shared(path, what);
    Ok(secret)
}

fn warn_if_shared(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "the {what} file can be read by other users; run `chmod 600` on it");
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}
