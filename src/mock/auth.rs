//! Bearer-token checks and the OAuth2 password-grant token endpoint.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::http::{Request, Response, parse_query};
use super::rng::{Draw, Purpose, mix64};

/// The result of checking a request's `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    Missing,
    Unknown,
    Expired,
}

/// Access tokens issued by the token endpoint, with their expiry times.
#[derive(Debug, Default)]
pub(crate) struct IssuedTokens {
    expiry: HashMap<String, Instant>,
    issued: u64,
}

impl IssuedTokens {
    /// Issues a JWT-shaped token for `username` that expires after `ttl`.
    pub(crate) fn issue(&mut self, username: &str, ttl: Duration, seed: u64) -> String {
        self.issued += 1;
        let token = jwt_like(username, ttl, seed, self.issued);
        self.expiry.insert(token.clone(), Instant::now() + ttl);
        token
    }

    /// Makes every issued token expire now.
    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        for expiry in self.expiry.values_mut() {
            *expiry = now;
        }
    }

    fn check(&self, token: &str) -> TokenCheck {
        match self.expiry.get(token) {
            Some(expiry) if Instant::now() < *expiry => TokenCheck::Valid,
            Some(_) => TokenCheck::Expired,
            None => TokenCheck::Unknown,
        }
    }
}

/// Checks the `Authorization: Bearer <token>` header. The scheme word is
/// matched case-insensitively, the token exactly.
pub(crate) fn check_bearer(
    request: &Request,
    static_tokens: &[String],
    issued: &IssuedTokens,
) -> TokenCheck {
    let Some(value) = request.header("authorization") else {
        return TokenCheck::Missing;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return TokenCheck::Missing;
    };
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return TokenCheck::Missing;
    }
    if static_tokens.iter().any(|known| known == token) {
        return TokenCheck::Valid;
    }
    issued.check(token)
}

/// Builds the 401 response for a failed token check.
pub(crate) fn unauthorized(check: TokenCheck) -> Response {
    let challenge = match check {
        TokenCheck::Expired => {
            r#"Bearer error="invalid_token", error_description="The access token expired""#
        }
        TokenCheck::Unknown => r#"Bearer error="invalid_token""#,
        _ => "Bearer",
    };
    Response::message(401, "Unauthorized").with_header("WWW-Authenticate", challenge)
}

/// The client credentials that the token endpoint accepts.
pub(crate) struct Credentials<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
}

/// The outcome of a token request: a token to issue for a username, or an error response.
pub(crate) enum Grant {
    Issue { username: String },
    Reject(Response),
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
    .with_header("Cache-Control", "no-store")
}

/// Validates a password-grant token request (RFC 6749, section 4.3.2).
pub(crate) fn validate_grant(request: &Request, expected: &Credentials<'_>) -> Grant {
    match check_grant(request, expected) {
        Ok(username) => Grant::Issue { username },
        Err(response) => Grant::Reject(response),
    }
}

/// Returns the username of a valid request, or the OAuth2 error response.
fn check_grant(request: &Request, expected: &Credentials<'_>) -> Result<String, Response> {
    let form = read_form(request)?;
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    match field("grant_type") {
        Some("password") => {}
        Some(_) => {
            let description = "Only the password grant is supported";
            return Err(oauth_error(400, "unsupported_grant_type", description));
        }
        None => return Err(oauth_error(400, "invalid_request", "Missing grant_type")),
    }

    let (Some(client_id), Some(username), Some(password)) =
        (field("client_id"), field("username"), field("password"))
    else {
        let description = "Missing client_id, username or password";
        return Err(oauth_error(400, "invalid_request", description));
    };
    if client_id != expected.client_id {
        return Err(oauth_error(401, "invalid_client", "Unknown client_id"));
    }
    if username != expected.username || password != expected.password {
        return Err(oauth_error(
            400,
            "invalid_grant",
            "Invalid username or password",
        ));
    }
    Ok(username.to_string())
}

/// Decodes the form of a token request, which must be a POST with
/// `application/x-www-form-urlencoded` content.
fn read_form(request: &Request) -> Result<Vec<(String, String)>, Response> {
    if request.method != "POST" {
        return Err(Response::message(405, "Use POST").with_header("Allow", "POST"));
    }
    let content_type = request
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        let description = "The body must be application/x-www-form-urlencoded";
        return Err(oauth_error(400, "invalid_request", description));
    }
    Ok(parse_query(&String::from_utf8_lossy(&request.body)))
}

/// Builds the successful token response.
pub(crate) fn token_response(token: &str, ttl: Duration) -> Response {
    let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let body = json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in});
    Response::json(200, &body)
        .with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

/// Builds a token shaped like a JWT: three base64url parts, the middle one a
/// JSON payload with `sub`, `iat`, `exp` and `jti`. The signature is random
/// bytes, because nothing verifies it.
fn jwt_like(username: &str, ttl: Duration, seed: u64, serial: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let header = json!({"alg": "HS256", "typ": "JWT"}).to_string();
    let payload = json!({
        "sub": username,
        "aud": "cyberpilot-api",
        "iat": now,
        "exp": now + ttl.as_secs(),
        "jti": serial,
    })
    .to_string();
    let mut signature = Vec::with_capacity(32);
    let mut state = Draw::new(seed, Purpose::Token)
        .with(serial)
        .with(now)
        .bits();
    for _ in 0..4 {
        state = mix64(state);
        signature.extend_from_slice(&state.to_le_bytes());
    }
    format!(
        "{}.{}.{}",
        base64url(header.as_bytes()),
        base64url(payload.as_bytes()),
        base64url(&signature)
    )
}

/// Encodes bytes as unpadded base64url (RFC 4648, section 5).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for position in 0..=chunk.len() {
            let index = (group >> (18 - 6 * position)) & 0x3F;
            encoded.push(char::from(ALPHABET[index as usize]));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_vectors() {
        // Test vectors from RFC 4648, section 10, without padding.
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xFB, 0xFF]), "-_8");
    }

    #[test]
    fn issued_token_has_three_parts() {
        let mut tokens = IssuedTokens::default();
        let token = tokens.issue("åse@example.dk", Duration::from_secs(60), 1);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(tokens.check(&token), TokenCheck::Valid);
        tokens.expire_all();
        assert_eq!(tokens.check(&token), TokenCheck::Expired);
        assert_eq!(tokens.check("other"), TokenCheck::Unknown);
    }
}
