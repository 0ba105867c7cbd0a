//! Decodes arbitrary bytes as a users-summary page. Decoding must not panic,
//! and a decoded page must keep the invariants asserted below.

#![no_main]

use cpstat_fuzz::api::decode::decode_page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(page) = decode_page(body) else {
        return;
    };
    for user in &page.users {
        assert!(!user.user_id.trim().is_empty(), "a decoded user has an id");
        if let Some(extra) = &user.extra {
            let parsed: serde_json::Value =
                serde_json::from_str(extra).expect("extra is JSON text");
            assert!(parsed.is_object(), "extra is a JSON object");
        }
        if let Some(score) = user.average_score {
            assert!(score.is_finite(), "averageScore is finite");
        }
    }
});
