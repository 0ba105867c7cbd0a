//! `--pseudonymize` and `--min-group-size` on `analyze` and `report`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::common::{Row, long, read_rows, text};
use crate::fixture::*;

/// Søren's pseudonyms under KEY_ONE, computed with Python's hmac module:
/// hmac.new(KEY_ONE, b"person\x00" + "søren østergaard-ærø".encode(), "sha256").hexdigest()[:12]
/// and the same with b"email\x00soren@nordlys.dk".
const SOREN_NAME_KEY_ONE: &str = "person-e936d6105331";
const SOREN_EMAIL_KEY_ONE: &str = "1b4fda9a3123@pseudonym.invalid";
/// "person\x00ola nordmann" under KEY_ONE.
const OLA_KEY_ONE: &str = "person-34f7d67d97c0";

/// user_id to [name, email, manager] of a user_risk file.
fn identities(set: &Path) -> BTreeMap<String, [Option<String>; 3]> {
    read_rows(&set.join("user_risk.parquet"))
        .iter()
        .map(|row: &Row| {
            (
                text(row, "user_id").unwrap(),
                [text(row, "name"), text(row, "email"), text(row, "manager")],
            )
        })
        .collect()
}

#[test]
fn pseudonyms_stable_per_key() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    std::fs::write(dir.path().join("key"), format!("{KEY_ONE}\n")).unwrap();

    let by_env = analyze(
        dir.path(),
        "one",
        &["--pseudonymize"],
        &[("CPSTAT_PSEUDONYM_KEY", KEY_ONE)],
    );
    let by_file = analyze(
        dir.path(),
        "two",
        &["--pseudonymize", "--pseudonym-key-file", "key"],
        &[],
    );
    let other_key = analyze(
        dir.path(),
        "three",
        &["--pseudonymize"],
        &[("CPSTAT_PSEUDONYM_KEY", KEY_TWO)],
    );

    let first = identities(&by_env);
    assert_eq!(first, identities(&by_file), "same key, same pseudonyms");
    assert_eq!(first[SOREN.id][0].as_deref(), Some(SOREN_NAME_KEY_ONE));
    assert_eq!(first[SOREN.id][1].as_deref(), Some(SOREN_EMAIL_KEY_ONE));
    assert_eq!(
        first[SOREN.id][2], first[BJORN.id][2],
        "one manager, one pseudonym"
    );
    assert_eq!(
        first[THORA.id][2].as_deref(),
        Some(OLA_KEY_ONE),
        "Þóra's manager"
    );
    assert_eq!(
        first[OLA.id][0].as_deref(),
        Some(OLA_KEY_ONE),
        "the manager's own row joins"
    );

    let second = identities(&other_key);
    for (user, values) in &first {
        for (index, value) in values.iter().enumerate() {
            assert_ne!(
                value, &second[user][index],
                "{user} field {index} under another key"
            );
        }
    }
}

#[test]
fn missing_key_explains_fix() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    for command in ["analyze", "report"] {
        let output = cpstat(
            &[command, "--store", "store", "--pseudonymize"],
            &[],
            dir.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{command}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("CPSTAT_PSEUDONYM_KEY"), "{message}");
        assert!(message.contains("--pseudonym-key-file"), "{message}");
    }
    let short = cpstat(
        &["analyze", "--store", "store", "--pseudonymize"],
        &[("CPSTAT_PSEUDONYM_KEY", "short")],
        dir.path(),
    );
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("fewer than the 16 required"));
}

/// Returns the text that a reader of the file gets: its raw bytes, plus
/// every string cell of a Parquet file and every part of a workbook
/// unzipped, because both formats compress their text.
fn readable_text(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            for row in read_rows(path) {
                for (_, field) in row {
                    bytes.extend_from_slice(field.to_string().as_bytes());
                }
            }
        }
        Some("xlsx") => {
            let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
            for index in 0..archive.len() {
                archive
                    .by_index(index)
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
            }
        }
        _ => {}
    }
    bytes
}

fn assert_no_identities(path: &Path) {
    let bytes = readable_text(path);
    for needle in IDENTIFYING {
        let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!found, "{needle:?} in {}", path.display());
    }
}

#[test]
fn pseudonymized_outputs_hide_identities() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let env = [("CPSTAT_PSEUDONYM_KEY", KEY_ONE)];

    // A set written pseudonymised, with its page.
    let set = analyze(
        dir.path(),
        "shared",
        &["--pseudonymize", "--format", "all"],
        &env,
    );
    cpstat_ok(
        &[
            "report",
            "--store",
            "store",
            "--reports",
            "shared",
            "--pseudonymize",
        ],
        &env,
        dir.path(),
    );
    let page = set.join("report.pseudonymized.html");
    assert!(page.is_file());
    // A page made pseudonymised from a set that is not.
    analyze(dir.path(), "internal", &[], &[]);
    cpstat_ok(
        &[
            "report",
            "--store",
            "store",
            "--reports",
            "internal",
            "--pseudonymize",
            "--out",
            "customer.html",
        ],
        &env,
        dir.path(),
    );

    let mut checked = files_under(&dir.path().join("shared"));
    checked.push(dir.path().join("customer.html"));
    assert!(checked.len() >= 10, "{checked:?}");
    for path in &checked {
        assert_no_identities(path);
    }
    let html = std::fs::read_to_string(dir.path().join("customer.html")).unwrap();
    assert!(
        html.contains(SOREN_NAME_KEY_ONE),
        "the page shows the pseudonym"
    );
    assert!(html.contains(SOREN_EMAIL_KEY_ONE));
    assert!(html.contains("Økonomi"), "departments stay readable");
    let same_set_page = std::fs::read_to_string(&page).unwrap();
    assert!(
        same_set_page.contains(SOREN_NAME_KEY_ONE),
        "a pseudonymised set is not pseudonymised twice"
    );

    // The check itself finds names in a set that is not pseudonymised.
    let internal = readable_text(&dir.path().join("internal/latest/user_risk.parquet"));
    assert!(
        internal
            .windows("Søren".len())
            .any(|w| w == "Søren".as_bytes())
    );
}

#[test]
fn min_group_size_hides_small_groups() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let json = cpstat_ok(
        &[
            "--json",
            "analyze",
            "--store",
            "store",
            "--out",
            "reports",
            "--min-group-size",
            "2",
        ],
        &[],
        dir.path(),
    );
    let set = dir.path().join("reports/latest");
    let groups = read_rows(&set.join("group_rates.parquet"));
    assert!(!groups.is_empty());
    for row in &groups {
        assert!(long(row, "users").unwrap() >= 2, "{row:?}");
    }
    let departments: Vec<(String, String)> = groups
        .iter()
        .filter(|row| text(row, "dimension").as_deref() == Some("department"))
        .map(|row| {
            (
                text(row, "account_id").unwrap(),
                text(row, "value").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        departments,
        [
            (ACCOUNT_A.to_string(), "Økonomi".to_string()),
            (ACCOUNT_B.to_string(), "Salg".to_string())
        ],
        "@Indkøb has one user"
    );
    let trend = read_rows(&set.join("department_trend.parquet"));
    let trend_departments: Vec<String> = trend
        .iter()
        .map(|row| text(row, "department").unwrap())
        .collect();
    assert_eq!(
        trend_departments,
        ["Økonomi"],
        "A's one period, without @Indkøb"
    );

    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    let listed = &summary["accounts"][0]["riskiest_departments"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["department"], "Økonomi");
}
