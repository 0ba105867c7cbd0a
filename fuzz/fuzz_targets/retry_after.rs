//! Parses arbitrary text as a Retry-After value and scales the wait by an
//! arbitrary factor, as the client does before sleeping: neither may panic.

#![no_main]

use std::time::{Duration, SystemTime};

use cpstat_fuzz::api::retry::{RetryAfter, RetryPolicy, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, f64, u32)| {
    let (value, scale, failures) = input;
    // 2027-01-15T08:00:00Z, a fixed "now" so that runs are repeatable.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let parsed = parse_retry_after(value, now);

    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        assert!(matches!(parsed, RetryAfter::Wait(_)), "delay-seconds always parse");
    }

    let policy = RetryPolicy {
        time_scale: scale,
        ..RetryPolicy::default()
    };
    if let RetryAfter::Wait(wait) = parsed {
        let _ = policy.scaled(wait);
    }
    let backoff = policy.backoff(failures);
    assert!(backoff <= policy.max_wait, "backoff stays within the cap");
    let _ = policy.scaled(backoff);
});
