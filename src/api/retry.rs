//! Retry timing: exponential backoff with jitter and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

/// How often and how long to wait between attempts at one page.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per page, the first one included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles with each further one.
    pub base_delay: Duration,
    /// Maximum backoff, and the maximum `Retry-After` that is honoured.
    /// A server asking for a longer wait ends the fetch.
    pub max_wait: Duration,
    /// Factor applied to every wait. Tests set it to 0 through
    /// `CPSTAT_RETRY_TIME_SCALE` so that retries run without sleeping.
    pub time_scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(120),
            time_scale: 1.0,
        }
    }
}

impl RetryPolicy {
    /// Returns the backoff after `failed_attempts` failures (1 for the first):
    /// half of the exponential delay plus a random part of the other half, so
    /// that concurrent requests do not retry in step.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_wait);
        let half = full / 2;
        half + half.mul_f64(jitter_fraction())
    }

    /// Scales a wait by [`RetryPolicy::time_scale`], saturating at
    /// `Duration::MAX` when the product does not fit.
    pub fn scaled(&self, wait: Duration) -> Duration {
        let seconds = wait.as_secs_f64() * self.time_scale.max(0.0);
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

/// Returns a value in [0, 1) that differs between calls. It has no
/// cryptographic quality.
fn jitter_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The meaning of a `Retry-After` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this long; a date in the past gives zero.
    Wait(Duration),
    /// The value is neither delay-seconds nor an HTTP date.
    Invalid,
}

/// Parses `Retry-After` as delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`), relative to `now` (RFC 9110, 10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> RetryAfter {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return match value.parse::<u64>() {
            Ok(seconds) => RetryAfter::Wait(Duration::from_secs(seconds)),
            // More digits than fit in u64 seconds: a very long wait.
            Err(_) => RetryAfter::Wait(Duration::MAX),
        };
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => RetryAfter::Wait(date.duration_since(now).unwrap_or(Duration::ZERO)),
        Err(_) => RetryAfter::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let cases: [(&str, RetryAfter); 8] = [
            ("0", RetryAfter::Wait(Duration::ZERO)),
            ("7", RetryAfter::Wait(Duration::from_secs(7))),
            (" 120 ", RetryAfter::Wait(Duration::from_secs(120))),
            ("99999999999999999999999", RetryAfter::Wait(Duration::MAX)),
            // 1_800_000_030 seconds after the epoch, 30 s after `now`.
            (
                "Fri, 15 Jan 2027 08:00:30 GMT",
                RetryAfter::Wait(Duration::from_secs(30)),
            ),
            (
                "Thu, 01 Jan 2015 00:00:00 GMT",
                RetryAfter::Wait(Duration::ZERO),
            ),
            ("-5", RetryAfter::Invalid),
            ("soon", RetryAfter::Invalid),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                expected,
                "Retry-After: {value:?}"
            );
        }
    }

    #[test]
    fn scaled_wait_saturates() {
        let cases = [
            (1.0, Duration::from_secs(3), Duration::from_secs(3)),
            (0.0, Duration::from_secs(3), Duration::ZERO),
            (f64::NAN, Duration::from_secs(3), Duration::ZERO),
            (1e300, Duration::from_millis(500), Duration::MAX),
            (2.0, Duration::MAX, Duration::MAX),
        ];
        for (time_scale, wait, expected) in cases {
            let policy = RetryPolicy {
                time_scale,
                ..RetryPolicy::default()
            };
            assert_eq!(policy.scaled(wait), expected, "{time_scale} x {wait:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_wait: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let first = policy.backoff(1);
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
            "{first:?}"
        );
        let third = policy.backoff(3);
        assert!(
            third >= Duration::from_millis(200) && third <= Duration::from_millis(400),
            "{third:?}"
        );
        let late = policy.backoff(30);
        assert!(
            late >= Duration::from_millis(500) && late <= Duration::from_millis(1000),
            "{late:?}"
        );
    }
}
