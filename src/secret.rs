//! Credentials that cannot leak through formatting.
//!
//! Tokens and passwords are wrapped in [`Secret`], whose `Debug` and `Display`
//! print a fixed placeholder, so a log line, an error chain or a panic message
//! that formats one shows `[redacted]` instead of the value.

use std::fmt;

/// A credential value, such as an access token or a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value, trimming the surrounding white space that files and
    /// shells tend to add.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    /// Returns the value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_hides_value() {
        let secret = Secret::new("  eyJhbGciOi.canary.sig\n");
        assert_eq!(secret.expose(), "eyJhbGciOi.canary.sig");
        assert!(!format!("{secret}").contains("canary"));
        assert!(!format!("{secret:?}").contains("canary"));
        assert!(!format!("{:#?}", Some(&secret)).contains("canary"));
    }
}
