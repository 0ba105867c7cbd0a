//! Properties of the synthetic organisation, without HTTP.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use cpstat::mock::{OrgConfig, Organisation, SimUser};
use serde_json::Value;

fn organisation(users: usize, seed: u64) -> Organisation {
    Organisation::new(OrgConfig {
        seed,
        users,
        ..OrgConfig::default()
    })
}

fn simulated_users(org: &Organisation, day: u32) -> Vec<SimUser> {
    let mut simulation = org.simulation();
    simulation.advance_to(day);
    simulation.users().to_vec()
}

fn by_id(users: &[SimUser]) -> HashMap<&str, &SimUser> {
    users.iter().map(|user| (user.id.as_str(), user)).collect()
}

#[test]
fn same_seed_gives_identical_json() {
    let first = serde_json::to_string(&organisation(300, 11).users_at(45)).unwrap();
    let again = serde_json::to_string(&organisation(300, 11).users_at(45)).unwrap();
    let other = serde_json::to_string(&organisation(300, 12).users_at(45)).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn stepwise_advance_matches_users_at() {
    let org = organisation(400, 3);
    let mut simulation = org.simulation();
    for day in [1, 2, 9, 30, 31, 60] {
        simulation.advance_to(day);
    }
    assert_eq!(simulation.api_results(), org.users_at(60));
}

#[test]
fn seed_output_is_pinned() {
    // Pins the generator so that a change in output across versions or
    // platforms fails here. Update the values only on purpose.
    let org = organisation(50, 2024);
    let users = simulated_users(&org, 100);
    let first = &users[0];
    let totals: i64 = users
        .iter()
        .map(|u| u.emails_sent + 3 * u.links_clicked + 7 * u.enrolled_courses)
        .sum();
    assert_eq!(
        (users.len(), first.id.as_str(), first.email.as_str()),
        (50, "104740", "rasmus.poulsen@nordlysenergi.dk")
    );
    assert_eq!(totals, 1766);
    let text = serde_json::to_string(&org.users_at(100)).unwrap();
    let fnv1a = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    assert_eq!((text.len(), fnv1a), (32873, 4781079448719302434));
}

#[test]
fn users_are_ordered_by_creation_then_id() {
    let users = simulated_users(&organisation(500, 5), 200);
    for pair in users.windows(2) {
        let key = |user: &SimUser| (user.created, user.id.parse::<u64>().unwrap());
        assert!(
            key(&pair[0]) < key(&pair[1]),
            "{} before {}",
            pair[0].id,
            pair[1].id
        );
    }
}

#[test]
fn hires_and_leavers_change_roster() {
    let org = organisation(2000, 8);
    let early = simulated_users(&org, 30);
    let late = simulated_users(&org, 180);
    let early_ids: HashSet<&str> = early.iter().map(|u| u.id.as_str()).collect();
    let late_ids: HashSet<&str> = late.iter().map(|u| u.id.as_str()).collect();
    let hires: Vec<&SimUser> = late
        .iter()
        .filter(|u| !early_ids.contains(u.id.as_str()))
        .collect();
    let leavers = early_ids.difference(&late_ids).count();
    // About 14.5 % hires and 13 % leavers per year: roughly 119 and 107 in 150 days.
    assert!((80..=160).contains(&hires.len()), "{} hires", hires.len());
    assert!((70..=150).contains(&leavers), "{leavers} leavers");
    let day_30 = org.date_of(30).and_hms_opt(0, 0, 0).unwrap().and_utc();
    for hire in hires {
        assert!(
            hire.created > day_30,
            "hire {} created {}",
            hire.id,
            hire.created
        );
        assert_eq!(
            hire.groups
                .iter()
                .filter(|(_, name)| name == "Nyansatte")
                .count(),
            usize::from(late_is_recent(&org, hire))
        );
    }
}

fn late_is_recent(org: &Organisation, user: &SimUser) -> bool {
    let day_180 = org.date_of(180).and_hms_opt(0, 0, 0).unwrap().and_utc();
    (day_180 - user.created).num_days() < 89
}

#[test]
fn cumulative_counters_do_not_decrease() {
    let org = organisation(2000, 9);
    let early = simulated_users(&org, 60);
    let late = simulated_users(&org, 240);
    let late_by_id = by_id(&late);
    let mut decreases = 0;
    for before in &early {
        let Some(after) = late_by_id.get(before.id.as_str()) else {
            continue;
        };
        let decreased = after.emails_sent < before.emails_sent
            || after.links_clicked < before.links_clicked
            || after.data_submitted < before.data_submitted
            || after.enrolled_courses < before.enrolled_courses
            || after.enrolled_materials < before.enrolled_materials;
        if decreased {
            decreases += 1;
        }
    }
    // Resets hit about 1 user in 2,000 per 30 days: expect about 6 in 6 months.
    assert!(
        decreases <= 20,
        "{decreases} users with decreasing counters"
    );
}

#[test]
fn counters_respect_funnel_order() {
    for user in simulated_users(&organisation(1500, 10), 365) {
        assert!(user.data_submitted <= user.links_clicked, "{user:?}");
        assert!(user.links_clicked <= user.emails_sent, "{user:?}");
        assert!(
            user.not_completed_courses <= user.enrolled_courses,
            "{user:?}"
        );
        assert!(
            user.overdue_courses <= user.not_completed_courses,
            "{user:?}"
        );
        assert!(
            user.not_completed_materials <= user.enrolled_materials,
            "{user:?}"
        );
        assert!((0..=3).contains(&user.phishing_campaigns), "{user:?}");
        assert!(
            user.average_score
                .is_none_or(|score| (0.0..=100.0).contains(&score)),
            "{user:?}"
        );
    }
}

fn click_rate(users: &[SimUser]) -> f64 {
    let emails: i64 = users.iter().map(|u| u.emails_sent).sum();
    let clicks: i64 = users.iter().map(|u| u.links_clicked).sum();
    clicks as f64 / emails as f64
}

#[test]
fn click_rate_falls_after_training() {
    let org = organisation(3000, 12);
    let early = simulated_users(&org, 35);
    let early_rate = click_rate(&early);
    assert!(
        (0.26..=0.34).contains(&early_rate),
        "early click rate {early_rate}"
    );

    let before = simulated_users(&org, 300);
    let after = simulated_users(&org, 365);
    let before_by_id = by_id(&before);
    let (mut emails, mut clicks) = (0, 0);
    for user in &after {
        if let Some(old) = before_by_id.get(user.id.as_str()) {
            if user.emails_sent >= old.emails_sent {
                emails += user.emails_sent - old.emails_sent;
                clicks += user.links_clicked - old.links_clicked;
            }
        }
    }
    let late_rate = clicks as f64 / emails as f64;
    assert!(
        late_rate < 0.8 * early_rate,
        "late {late_rate} vs early {early_rate}"
    );
    let early_scores: Vec<f64> = early.iter().filter_map(|u| u.average_score).collect();
    let late_scores: Vec<f64> = after.iter().filter_map(|u| u.average_score).collect();
    let mean = |scores: &[f64]| scores.iter().sum::<f64>() / scores.len() as f64;
    assert!(mean(&late_scores) > mean(&early_scores) + 2.0);
}

#[test]
fn click_rate_differs_by_department() {
    let users = simulated_users(&organisation(4000, 13), 60);
    let mut per_department: HashMap<&str, Vec<SimUser>> = HashMap::new();
    for user in &users {
        per_department
            .entry(user.department.trim())
            .or_default()
            .push(user.clone());
    }
    let rate = |name: &str| click_rate(&per_department[name]);
    assert!(
        rate("Salg") > rate("IT") + 0.1,
        "Salg {} IT {}",
        rate("Salg"),
        rate("IT")
    );
    let sizes: HashSet<usize> = per_department.values().map(Vec::len).collect();
    assert!(sizes.len() >= 8, "department sizes {sizes:?}");
}

#[test]
fn emails_are_unique_folded_ascii() {
    let users = simulated_users(&organisation(3000, 14), 120);
    let emails: HashSet<&str> = users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails.len(), users.len(), "e-mail addresses are unique");

    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    for user in &users {
        let (local, domain) = user.email.split_once('@').unwrap();
        assert_eq!(domain, "nordlysenergi.dk");
        assert!(local.bytes().all(allowed), "{local}");
    }
    let sorens: Vec<&SimUser> = users.iter().filter(|u| u.first_name == "Søren").collect();
    assert!(!sorens.is_empty());
    for soren in sorens {
        assert!(soren.email.starts_with("soren."), "{}", soren.email);
    }
}

#[test]
fn branches_match_countries_and_groups() {
    let users = simulated_users(&organisation(3000, 14), 120);
    let branch_country = [
        ("København", "DK"),
        ("Malmö", "SE"),
        ("Tromsø", "NO"),
        ("Reykjavík", "IS"),
        ("Helsinki", "FI"),
    ];
    for user in &users {
        assert!(user.groups.len() <= 3, "{user:?}");
        for (branch, country) in branch_country {
            if user.branch_name == branch {
                assert_eq!(user.country, country, "{user:?}");
            }
        }
    }
    let countries: HashSet<&str> = users.iter().map(|u| u.country.as_str()).collect();
    assert_eq!(countries.len(), 5, "{countries:?}");
}

#[test]
fn managers_are_current_colleagues() {
    let users = simulated_users(&organisation(3000, 14), 120);
    let by_email: HashMap<&str, &SimUser> = users.iter().map(|u| (u.email.as_str(), u)).collect();
    let without_manager = users.iter().filter(|u| u.manager.is_empty()).count();
    assert_eq!(without_manager, 1, "only the CEO has no manager");

    let mut same_department = 0;
    for user in users.iter().filter(|u| !u.manager_email.is_empty()) {
        let manager = by_email
            .get(user.manager_email.as_str())
            .expect("manager is a current user");
        assert_eq!(manager.name, user.manager);
        let manager_department = manager.department.trim().to_lowercase();
        same_department += usize::from(manager_department == user.department.trim().to_lowercase());
    }
    // Department heads report to the CEO in Ledelse, everyone else within the department.
    assert!(
        same_department as f64 > 0.95 * users.len() as f64,
        "{same_department}"
    );
}

#[test]
fn names_and_departments_vary() {
    let users = simulated_users(&organisation(3000, 14), 120);
    let all_names: String = users.iter().map(|u| u.name.as_str()).collect();
    for letter in ['æ', 'ø', 'å', 'Ø', 'Å', 'ä', 'ö', 'Þ', 'ð'] {
        assert!(all_names.contains(letter), "no name contains {letter}");
    }
    assert!(all_names.contains('\u{030A}'), "some names are in NFD form");

    let clean = [
        "Ledelse",
        "Salg",
        "Kundeservice",
        "Produktion",
        "Lager & logistik",
        "Økonomi",
        "HR",
        "IT",
        "Forskning og udvikling",
        "Marketing",
    ];
    let odd: Vec<&str> = users
        .iter()
        .map(|u| u.department.as_str())
        .filter(|d| !clean.contains(d))
        .collect();
    assert!(!odd.is_empty(), "some departments are spelled oddly");
    assert!(odd.len() < users.len() / 50, "{} odd spellings", odd.len());
}

#[test]
fn big_ids_exceed_two_pow_53() {
    let config = OrgConfig {
        users: 20,
        big_ids: true,
        ..OrgConfig::default()
    };
    let entries = Organisation::new(config).users_at(0);
    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        text.contains(r#""id":9007199254740993"#),
        "first id is 2^53 + 1"
    );
    for entry in &entries {
        let id = &entry["user"]["id"];
        assert!(matches!(id, Value::Number(_)));
        assert!(id.as_u64().unwrap() > 1 << 53);
    }
}

#[test]
fn start_date_sets_created_dates() {
    let start = NaiveDate::from_ymd_opt(2025, 6, 2).unwrap();
    let org = Organisation::new(OrgConfig {
        users: 300,
        start,
        ..OrgConfig::default()
    });
    let entries = org.users_at(0);
    for entry in &entries {
        let created = entry["user"]["created"].as_str().unwrap();
        assert_eq!(created.len(), 20, "{created}");
        assert!(created.ends_with('Z'));
        assert!(created < "2025-06-02", "{created} is before day 0");
    }
    let org_late = org.users_at(100);
    assert!(
        org_late
            .iter()
            .any(|e| e["user"]["created"].as_str().unwrap() > "2025-06-02")
    );
}

#[test]
fn empty_organisation_stays_empty() {
    let org = organisation(0, 1);
    assert!(org.users_at(0).is_empty());
    assert!(org.users_at(400).is_empty());
}

#[test]
fn tiny_organisation_has_one_ceo() {
    let users = simulated_users(&organisation(1, 1), 30);
    assert!(!users.is_empty());
    assert_eq!(users[0].department, "Ledelse");
    assert!(users[0].manager.is_empty());
}

#[test]
fn serialize_matches_api_json() {
    let config = OrgConfig {
        users: 400,
        big_ids: true,
        ..OrgConfig::default()
    };
    let org = Organisation::new(config);
    let users = simulated_users(&org, 90);
    let direct = serde_json::to_string(&users).unwrap();
    let via_value = serde_json::to_string(&org.users_at(90)).unwrap();
    assert_eq!(direct, via_value);
}
