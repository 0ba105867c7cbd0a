//! The optional `cpstat.toml` configuration file.
//!
//! The file names defaults (store, API base URL, authentication URL) and any
//! number of accounts, each with its own credential source. Secrets are never
//! written into it. An account names a file that contains its token or password.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Classify, ExitKind};

/// The name looked for in the working directory and in the user config dir.
pub const CONFIG_FILE_NAME: &str = "cpstat.toml";

/// An error in reading or validating the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Classify for ConfigError {
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Usage
    }
}

/// The parsed configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Snapshot store directory.
    pub store: Option<PathBuf>,
    /// API base URL, e.g. `https://api.app.cyberpilot.io`.
    pub base_url: Option<String>,
    /// OAuth2 token URL for the password grant.
    pub auth_url: Option<String>,
    /// Extra root certificate (PEM) to trust, e.g. a corporate proxy's.
    pub ca_cert: Option<PathBuf>,
    /// Accounts in the order they are listed.
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
    /// The file's own path. Relative paths in the file resolve against its
    /// directory.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// Short name used with `--account`, e.g. `acme`.
    pub name: String,
    /// The account id (a UUID) from the vendor's API settings.
    pub id: String,
    /// Name shown in reports, e.g. `ACME A/S`.
    pub display_name: Option<String>,
    /// File holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// Password-grant client id.
    pub client_id: Option<String>,
    /// Password-grant user name.
    pub username: Option<String>,
    /// File holding the password-grant password.
    pub password_file: Option<PathBuf>,
    /// Token URL for this account, overriding the file-wide `auth_url`.
    pub auth_url: Option<String>,
    /// API base URL for this account, overriding the file-wide `base_url`.
    pub base_url: Option<String>,
}

impl ConfigFile {
    /// Loads the config file from `explicit` if given, else from
    /// `./cpstat.toml`, else from `<user config dir>/cpstat/cpstat.toml`.
    /// A missing file in the default places is not an error.
    pub fn discover(explicit: Option<&Path>) -> Result<ConfigFile, ConfigError> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        for candidate in Self::default_locations() {
            if candidate.is_file() {
                return Self::load(&candidate);
            }
        }
        Ok(ConfigFile::default())
    }

    fn default_locations() -> Vec<PathBuf> {
        let mut places = vec![PathBuf::from(CONFIG_FILE_NAME)];
        if let Some(dir) = dirs::config_dir() {
            places.push(dir.join("cpstat").join(CONFIG_FILE_NAME));
        }
        places
    }

    /// Reads and validates one config file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is used in messages and to resolve relative
    /// file names.
    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        reject_inline_secrets(text).map_err(invalid)?;
        let mut config: ConfigFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        config.path = Some(path.to_path_buf());
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for account in &self.accounts {
            if account.name.trim().is_empty() {
                return Err(format!(
                    "account with id {:?} has an empty name",
                    account.id
                ));
            }
            if !seen.insert(account.name.as_str()) {
                return Err(format!(
                    "account name {:?} appears twice; give each account its own name",
                    account.name
                ));
            }
            if account.token_file.is_some() && account.password_file.is_some() {
                return Err(format!(
                    "account {:?} sets both token_file and password_file; keep one",
                    account.name
                ));
            }
        }
        Ok(())
    }

    /// Finds an account by its configured name or by its id.
    pub fn account(&self, name_or_id: &str) -> Option<&AccountEntry> {
        self.accounts
            .iter()
            .find(|a| a.name == name_or_id)
            .or_else(|| self.accounts.iter().find(|a| a.id == name_or_id))
    }

    /// Resolves a path from the file against the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        match (&self.path, path.is_relative()) {
            (Some(file), true) => file
                .parent()
                .map(|dir| dir.join(path))
                .unwrap_or_else(|| path.to_path_buf()),
            _ => path.to_path_buf(),
        }
    }
}

/// Rejects `token = ...` and `password = ...` keys with a message that names
/// where the secret belongs, before serde would call them unknown fields.
fn reject_inline_secrets(text: &str) -> Result<(), String> {
    for (number, line) in text.lines().enumerate() {
        let key = line.split('=').next().unwrap_or("").trim();
        if key == "token" || key == "password" || key == "access_token" {
            return Err(format!(
                "line {}: `{key}` holds a secret in plain text; put it in a file readable only by you \
                 and set `{key}_file` to that file's path instead",
                number + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accounts_in_order() {
        let text = r#"
store = "data/store"
auth_url = "https://auth.example.test/token"

[[accounts]]
name = "acme"
id = "0b5f4a8e-1111-4c1e-9d7a-000000000001"
display_name = "ACME A/S"
token_file = "acme.token"

[[accounts]]
name = "nordlys"
id = "0b5f4a8e-2222-4c1e-9d7a-000000000002"
client_id = "cpstat"
username = "api@nordlys.dk"
password_file = "/etc/cpstat/nordlys.password"
"#;
        let config = ConfigFile::parse(text, Path::new("/etc/cpstat/cpstat.toml")).unwrap();
        assert_eq!(config.accounts.len(), 2);
        assert_eq!(config.accounts[0].name, "acme");
        assert_eq!(
            config.accounts[1].username.as_deref(),
            Some("api@nordlys.dk")
        );
        let acme = config.account("acme").unwrap();
        assert_eq!(
            config.resolve_path(acme.token_file.as_ref().unwrap()),
            PathBuf::from("/etc/cpstat/acme.token")
        );
        assert!(
            config
                .account("0b5f4a8e-2222-4c1e-9d7a-000000000002")
                .is_some()
        );
    }

    #[test]
    fn inline_token_rejected_with_hint() {
        let text = "[[accounts]]\nname = \"a\"\nid = \"x\"\ntoken = \"eyJ.secret\"\n";
        let error = ConfigFile::parse(text, Path::new("cpstat.toml")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("token_file"), "{message}");
        assert!(!message.contains("eyJ.secret"), "{message}");
    }

    #[test]
    fn duplicate_account_names_rejected() {
        let text =
            "[[accounts]]\nname = \"a\"\nid = \"1\"\n[[accounts]]\nname = \"a\"\nid = \"2\"\n";
        let error = ConfigFile::parse(text, Path::new("cpstat.toml")).unwrap_err();
        assert!(error.to_string().contains("appears twice"));
    }

    #[test]
    fn unknown_key_rejected() {
        let error = ConfigFile::parse("stroe = \"x\"\n", Path::new("cpstat.toml")).unwrap_err();
        assert!(error.to_string().contains("stroe"), "{error}");
    }
}
