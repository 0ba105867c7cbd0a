//! Bearer tokens: a fixed token, or one obtained and renewed through the
//! OAuth2 resource-owner password grant (RFC 6749, section 4.3).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::ApiError;
use crate::secret::Secret;

/// The source of bearer tokens.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A token obtained elsewhere; it cannot be renewed.
    Token(Secret),
    /// The password grant, renewed before the token expires.
    PasswordGrant {
        auth_url: String,
        client_id: String,
        username: String,
        password: Secret,
    },
}

/// A token and the renewal count it belongs to.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub token: Secret,
    pub generation: u64,
}

#[derive(Debug)]
struct Issued {
    token: Secret,
    renew_at: Instant,
    generation: u64,
}

/// Hands out the current token and renews it when needed.
#[derive(Debug)]
pub struct TokenProvider {
    credentials: Credentials,
    issued: Mutex<Option<Issued>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenProvider {
    pub fn new(credentials: Credentials) -> Self {
        TokenProvider {
            credentials,
            issued: Mutex::new(None),
        }
    }

    /// Returns whether a rejected token can be replaced by a new one.
    pub fn can_renew(&self) -> bool {
        matches!(self.credentials, Credentials::PasswordGrant { .. })
    }

    /// Returns the current token, requesting one first when there is none
    /// or the current one is close to expiry.
    pub async fn bearer(&self, http: &reqwest::Client) -> Result<Bearer, ApiError> {
        if let Credentials::Token(token) = &self.credentials {
            return Ok(Bearer {
                token: token.clone(),
                generation: 0,
            });
        }
        let mut issued = self.issued.lock().await;
        let fresh = issued.as_ref().is_some_and(|i| Instant::now() < i.renew_at);
        if !fresh {
            let generation = issued.as_ref().map_or(1, |i| i.generation + 1);
            *issued = Some(self.request_token(http, generation).await?);
        }
        let current = issued.as_ref().expect("a token was stored above");
        Ok(Bearer {
            token: current.token.clone(),
            generation: current.generation,
        })
    }

    /// Marks the token of `generation` as rejected, so that the next
    /// [`TokenProvider::bearer`] call requests a new one. Returns false when
    /// the credentials cannot be renewed.
    pub async fn reject(&self, generation: u64) -> bool {
        if !self.can_renew() {
            return false;
        }
        let mut issued = self.issued.lock().await;
        if let Some(current) = issued.as_mut()
            && current.generation == generation
        {
            current.renew_at = Instant::now();
        }
        true
    }

    async fn request_token(
        &self,
        http: &reqwest::Client,
        generation: u64,
    ) -> Result<Issued, ApiError> {
        let Credentials::PasswordGrant {
            auth_url,
            client_id,
            username,
            password,
        } = &self.credentials
        else {
            unreachable!("only the password grant requests tokens");
        };
        let failed = |message: String| ApiError::TokenRequest {
            url: auth_url.clone(),
            message,
        };
        let form = [
            ("grant_type", "password"),
            ("client_id", client_id.as_str()),
            ("username", username.as_str()),
            ("password", password.expose()),
        ];
        tracing::info!(url = %auth_url, "requesting an access token with the password grant");
        let response = http
            .post(auth_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(TokenResponse {
                access_token: Some(token),
                expires_in,
                ..
            }) if status.is_success() && !token.trim().is_empty() => {
                let lifetime = expires_in
                    .as_ref()
                    .and_then(lifetime_seconds)
                    .unwrap_or(3600);
                Ok(Issued {
                    token: Secret::new(token),
                    renew_at: Instant::now() + renewal_delay(Duration::from_secs(lifetime)),
                    generation,
                })
            }
            Some(TokenResponse {
                error: Some(error),
                error_description,
                ..
            }) => Err(failed(format!(
                "HTTP {status}, {error}{}; check the client id, user name and password",
                error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ))),
            _ => Err(failed(format!(
                "HTTP {status} without an access_token in the response; check CPSTAT_AUTH_URL"
            ))),
        }
    }
}

fn lifetime_seconds(value: &serde_json::Value) -> Option<u64> {
    super::decode::lenient_int(value)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
}

/// Renews a token when 80% of its lifetime has passed, and at least 30
/// seconds before it expires when the lifetime allows.
fn renewal_delay(lifetime: Duration) -> Duration {
    let early = lifetime.mul_f64(0.8);
    let margin = lifetime.saturating_sub(Duration::from_secs(30));
    early.min(margin.max(lifetime / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_before_expiry() {
        assert_eq!(
            renewal_delay(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(
            renewal_delay(Duration::from_secs(100)),
            Duration::from_secs(70)
        );
        assert_eq!(
            renewal_delay(Duration::from_secs(40)),
            Duration::from_secs(20)
        );
        assert_eq!(renewal_delay(Duration::ZERO), Duration::ZERO);
    }
}
