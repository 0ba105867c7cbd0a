//! Variations of the JSON that a lenient client must accept: numbers with
//! other JSON types (type drift) and undocumented properties.
//!
//! Each variation is drawn per (seed, user id, day), so a page served twice on
//! the same day is identical.

use serde_json::{Map, Number, Value, json};

use super::activity::{
    ACTION_CLICKED, ACTION_COMPLETED_COURSE, ACTION_COMPLETED_MATERIAL, ACTION_EMAIL_SENT,
    ACTION_REPORTED, ACTION_SUBMITTED,
};
use super::rng::{Draw, Purpose, mix64};

/// Share of users whose entry drifts on a given day.
const DRIFTED_SHARE: f64 = 0.3;

/// The numeric codes that a drifted `lastAction` uses in place of its text.
const ACTION_CODES: &[(&str, i64)] = &[
    (ACTION_EMAIL_SENT, 1),
    (ACTION_CLICKED, 2),
    (ACTION_SUBMITTED, 3),
    (ACTION_REPORTED, 4),
    (ACTION_COMPLETED_COURSE, 5),
    (ACTION_COMPLETED_MATERIAL, 6),
];

const COUNTER_KEYS: [&str; 9] = [
    "enrolledCourses",
    "notCompletedCourses",
    "overdueCourses",
    "enrolledMaterials",
    "notCompletedMaterials",
    "phishingCampaigns",
    "emailsSent",
    "linksClicked",
    "dataSubmitted",
];

/// Returns the draw for one user entry on one day.
pub(crate) fn entry_draw(seed: u64, purpose: Purpose, entry: &Value, day: u32) -> Draw {
    let id = &entry["user"]["id"];
    let key = id.as_u64().unwrap_or_else(|| {
        id.to_string()
            .bytes()
            .fold(0, |hash, byte| mix64(hash ^ u64::from(byte)))
    });
    Draw::new(seed, purpose).with(key).with(u64::from(day))
}

/// Rewrites some values of an entry with other JSON types that mean the same:
/// counters as floats (`3.0`) or strings (`"3"`), `lastAction` as a numeric
/// code, `averageScore` as a float, empty `groups` as `null`. Rarely `meta`
/// or `branch` is `null` or missing, which loses their contents.
pub(crate) fn apply_type_drift(entry: &mut Value, draw: Draw) {
    if !draw.chance(DRIFTED_SHARE) {
        return;
    }
    let Some(object) = entry.as_object_mut() else {
        return;
    };
    for (index, key) in COUNTER_KEYS.iter().enumerate() {
        if let Some(value) = object.get_mut(*key) {
            drift_number(value, draw.with(index as u64 + 1).below(3));
        }
    }
    drift_last_action(object, draw.with(20));
    if let Some(score) = object.get_mut("averageScore") {
        if draw.with(21).chance(0.5) {
            drift_number(score, 0);
        }
    }
    if let Some(user) = object.get_mut("user").and_then(Value::as_object_mut) {
        drift_user(user, draw.with(22));
    }
}

/// Rewrites an integer as a float (`style` 0) or a decimal string (`style` 1),
/// or keeps it (any other `style`).
fn drift_number(value: &mut Value, style: u64) {
    let Some(number) = value.as_i64() else {
        return;
    };
    *value = match style {
        0 => Number::from_f64(number as f64).map_or(Value::from(number), Value::Number),
        1 => Value::String(number.to_string()),
        _ => return,
    };
}

fn drift_last_action(object: &mut Map<String, Value>, draw: Draw) {
    let Some(action) = object.get("lastAction").and_then(Value::as_str) else {
        return;
    };
    let code = ACTION_CODES
        .iter()
        .find(|(text, _)| *text == action)
        .map(|(_, code)| *code);
    if let (Some(code), true) = (code, draw.chance(0.3)) {
        object.insert("lastAction".into(), Value::from(code));
    }
}

fn drift_user(user: &mut Map<String, Value>, draw: Draw) {
    let groups_empty = user
        .get("groups")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    if groups_empty && draw.with(1).chance(0.5) {
        user.insert("groups".into(), Value::Null);
    }
    for (index, key) in ["meta", "branch"].iter().enumerate() {
        let roll = draw.with(index as u64 + 2).unit();
        if roll < 0.05 {
            user.insert((*key).into(), Value::Null);
        } else if roll < 0.1 {
            user.remove(*key);
        }
    }
}

/// Adds undocumented properties to an entry, its `user` and its `meta`.
pub(crate) fn add_extra_properties(entry: &mut Value, draw: Draw) {
    let risk = match draw.below(3) {
        0 => "low",
        1 => "medium",
        _ => "high",
    };
    let Some(object) = entry.as_object_mut() else {
        return;
    };
    object.insert("riskLevel".into(), Value::from(risk));
    object.insert("lastLogin".into(), Value::Null);
    let Some(user) = object.get_mut("user").and_then(Value::as_object_mut) else {
        return;
    };
    let phone = format!("+45 {:08}", draw.with(1).below(100_000_000));
    user.insert("phoneNumber".into(), Value::from(phone));
    user.insert(
        "externalIds".into(),
        json!({"azureAd": format!("{:016x}", draw.with(2).bits()), "hr": null}),
    );
    if let Some(meta) = user.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert(
            "costCenter".into(),
            Value::from(format!("CC-{}", 1000 + draw.with(3).below(90))),
        );
        meta.insert("jobTitle".into(), Value::Null);
    }
}

/// Adds undocumented top-level properties to a page.
pub(crate) fn add_extra_page_properties(
    page: &mut Map<String, Value>,
    served_take: usize,
    date: &str,
) {
    page.insert("pageSize".into(), Value::from(served_take));
    page.insert(
        "generatedAt".into(),
        Value::from(format!("{date}T06:00:00Z")),
    );
    page.insert("apiVersion".into(), Value::from("1.4"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Value {
        json!({
            "enrolledCourses": 3, "notCompletedCourses": 1, "overdueCourses": 0,
            "enrolledMaterials": 2, "notCompletedMaterials": 0, "phishingCampaigns": 1,
            "emailsSent": 7, "linksClicked": 2, "dataSubmitted": 1,
            "lastAction": "Clicked link", "averageScore": 71,
            "user": {"id": 12, "meta": {"department": "IT"}, "branch": {"id": 1}, "groups": []}
        })
    }

    fn as_number(value: &Value) -> Option<f64> {
        match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
    }

    #[test]
    fn drift_keeps_counter_values() {
        let mut drifted_entries = 0;
        for day in 0..200 {
            let original = entry();
            let mut drifted = entry();
            apply_type_drift(&mut drifted, Draw::new(3, Purpose::Drift).with(day));
            if drifted != original {
                drifted_entries += 1;
            }
            for key in COUNTER_KEYS {
                assert_eq!(as_number(&drifted[key]), as_number(&original[key]), "{key}");
            }
        }
        assert!(
            drifted_entries > 30 && drifted_entries < 90,
            "{drifted_entries}"
        );
    }

    #[test]
    fn drift_writes_float_with_fraction() {
        let mut value = Value::from(3);
        drift_number(&mut value, 0);
        assert_eq!(value.to_string(), "3.0");
        drift_number(&mut value, 1);
        assert_eq!(value.to_string(), "3.0");
        let mut value = Value::from(3);
        drift_number(&mut value, 1);
        assert_eq!(value, Value::from("3"));
    }
}
