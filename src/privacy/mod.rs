//! Sharing reports outside the security team: keyed pseudonyms in place of
//! names and email addresses, and suppression of small groups.

pub mod pseudonym;
pub mod suppress;

use std::path::PathBuf;

use anyhow::Result;
use polars::prelude::{DataFrame, IntoLazy, LazyFrame, NULL, lit};

use crate::cli::{PrivacyArgs, env};
use crate::error::usage;
use crate::settings::read_secret_file;

pub use pseudonym::{Kind, PseudonymKey, pseudonymize_frame};
pub use suppress::{suppress_department_trend, suppress_group_rates};

/// Options that make outputs fit to share.
#[derive(Debug, Clone, Default)]
pub struct Privacy {
    /// Replace names and email addresses by pseudonyms under this key.
    pub pseudonym_key: Option<PseudonymKey>,
    /// Leave out group rows with fewer users than this.
    pub min_group_size: Option<u32>,
}

/// Resolves the privacy options. The key comes from `--pseudonym-key-file`
/// (or `CPSTAT_PSEUDONYM_KEY_FILE`), else from `CPSTAT_PSEUDONYM_KEY`, and
/// is read only with `--pseudonymize`.
pub fn resolve_privacy(args: &PrivacyArgs) -> Result<Privacy> {
    let pseudonym_key = if args.pseudonymize {
        Some(resolve_key(args.pseudonym_key_file.as_ref())?)
    } else {
        None
    };
    if args.min_group_size == Some(0) {
        return Err(usage(
            "invalid --min-group-size 0: expected a number of users of at least 1",
        ));
    }
    Ok(Privacy {
        pseudonym_key,
        min_group_size: args.min_group_size,
    })
}

fn resolve_key(file: Option<&PathBuf>) -> Result<PseudonymKey> {
    let text = match (file, std::env::var(env::PSEUDONYM_KEY)) {
        (Some(path), _) => read_secret_file(path, "pseudonym key")?
            .expose()
            .to_string(),
        (None, Ok(text)) if !text.trim().is_empty() => text,
        (None, _) => {
            return Err(usage(format!(
                "--pseudonymize needs a secret key: set {} or pass --pseudonym-key-file FILE. \
                 Create a key once with `head -c 32 /dev/urandom | base64 > pseudonym.key && chmod 600 pseudonym.key` \
                 and keep it: the same key gives the same pseudonyms in every run",
                env::PSEUDONYM_KEY
            )));
        }
    };
    PseudonymKey::new(&text).map_err(|message| usage(format!("{message}; use a longer key")))
}

impl Privacy {
    /// Replaces names and email addresses in the snapshot rows before any
    /// table is built from them, and drops `extra`, which can hold any
    /// property the API adds, such as a phone number.
    pub fn apply_to_snapshots(&self, snapshots: LazyFrame) -> Result<LazyFrame> {
        let Some(key) = &self.pseudonym_key else {
            return Ok(snapshots);
        };
        let rows = snapshots.collect()?;
        let mut replaced = pseudonymize_frame(&rows, key)?.lazy();
        if rows.schema().contains("extra") {
            replaced = replaced.with_column(
                lit(NULL)
                    .cast(polars::prelude::DataType::String)
                    .alias("extra"),
            );
        }
        Ok(replaced)
    }

    /// Suppresses small groups in `group_rates` and `department_trend`.
    /// Other tables pass unchanged.
    pub fn apply_to_table(&self, name: &str, table: DataFrame) -> Result<DataFrame> {
        let Some(min_users) = self.min_group_size else {
            return Ok(table);
        };
        Ok(match name {
            "group_rates" => suppress_group_rates(&table, min_users)?,
            "department_trend" => suppress_department_trend(&table, min_users)?,
            _ => table,
        })
    }
}

impl Privacy {
    /// Replaces names and email addresses in a report table read back from
    /// a report set, including the `manager` groups of `group_rates`.
    /// Values that already are pseudonyms stay as they are, so a set written
    /// by `analyze --pseudonymize` reads back unchanged.
    pub fn pseudonymize_table(&self, name: &str, table: DataFrame) -> Result<DataFrame> {
        let Some(key) = &self.pseudonym_key else {
            return Ok(table);
        };
        let replaced = pseudonymize_frame(&table, key)?;
        if name == "group_rates" {
            return Ok(pseudonym::pseudonymize_manager_groups(&replaced, key)?);
        }
        Ok(replaced)
    }
}
