//! A small store with Nordic names, formula-like text and markup in names,
//! written with cpstat's snapshot writer, and a runner for the binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, Utc};
use cpstat::snapshot::batch::UserBatches;
use cpstat::snapshot::record::{Counters, UserRecord};
use cpstat::snapshot::{SnapshotMeta, Store, write_snapshot};

pub const ACCOUNT_A: &str = "0b5f4a8e-1111-4c1e-9d7a-000000000001";
pub const ACCOUNT_B: &str = "0b5f4a8e-2222-4c1e-9d7a-000000000002";
pub const T1: &str = "2025-03-03T06:00:00Z";
pub const T2: &str = "2025-03-10T06:00:00Z";
/// Company name of account B, with characters that HTML must escape.
pub const COMPANY_B: &str = "Fjordkraft & <Søn>";
pub const KEY_ONE: &str = "first-test-key-0123456789";
pub const KEY_TWO: &str = "second-test-key-9876543210";

/// A person of the fixture: id, name, email, department, manager, manager email.
pub struct Person {
    pub id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub department: &'static str,
    pub manager: &'static str,
    pub manager_email: &'static str,
}

pub const SOREN: Person = Person {
    id: "u1",
    name: "Søren Østergaard-Ærø",
    email: "soren@nordlys.dk",
    department: "Økonomi",
    manager: "Åse Ågren",
    manager_email: "ase.agren@nordlys.dk",
};
pub const BJORN: Person = Person {
    id: "u2",
    name: "Bjørn \"Bøss\" <b>, Ærø",
    email: "bjorn@nordlys.dk",
    department: "Økonomi",
    manager: "Åse Ågren",
    manager_email: "ase.agren@nordlys.dk",
};
pub const FORMULA: Person = Person {
    id: "u3",
    name: "=1+2",
    email: "+45@nordlys.dk",
    department: "@Indkøb",
    manager: "-Åse Ågren",
    manager_email: "=ase@nordlys.dk",
};
pub const THORA: Person = Person {
    id: "v1",
    name: "Þóra Jónsdóttir",
    email: "thora@fjordkraft.no",
    department: "Salg",
    manager: "Ola Nordmann",
    manager_email: "ola.nordmann@fjordkraft.no",
};
pub const OLA: Person = Person {
    id: "v2",
    name: "Ola Nordmann",
    email: "ola.nordmann@fjordkraft.no",
    department: "Salg",
    manager: "Kåre Ødegård",
    manager_email: "kare@fjordkraft.no",
};

/// Texts that must never appear in a pseudonymised output.
pub const IDENTIFYING: [&str; 14] = [
    "Søren",
    "Østergaard",
    "soren@nordlys.dk",
    "Bjørn",
    "Bøss",
    "bjorn@nordlys.dk",
    "Ågren",
    "ase.agren@nordlys.dk",
    "+45@nordlys.dk",
    "Þóra",
    "Jónsdóttir",
    "thora@fjordkraft.no",
    "Nordmann",
    "Ødegård",
];

fn record(person: &Person, company: &str, sent: i64, clicked: i64, submitted: i64) -> UserRecord {
    let text = |s: &str| Some(s.to_string());
    UserRecord {
        user_id: person.id.to_string(),
        email: text(person.email),
        name: text(person.name),
        first_name: person.name.split(' ').next().map(str::to_string),
        last_name: person.name.rsplit(' ').next().map(str::to_string),
        company_name: text(company),
        manager: text(person.manager),
        manager_email: text(person.manager_email),
        department: text(person.department),
        country: text("DK"),
        branch_name: text("København"),
        counters: Counters {
            enrolled_courses: Some(2),
            not_completed_courses: Some(1),
            overdue_courses: Some(i64::from(person.id == "u1")),
            enrolled_materials: Some(0),
            not_completed_materials: Some(0),
            phishing_campaigns: Some(1),
            emails_sent: Some(sent),
            links_clicked: Some(clicked),
            data_submitted: Some(submitted),
        },
        average_score: Some(70.0),
        extra: text(&format!("{{\"phone\":\"{}\"}}", person.name)),
        ..UserRecord::default()
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid RFC 3339 time")
}

/// Writes the fixture store into `<dir>/store` and returns its path.
///
/// Account A has two weekly snapshots of Søren, Bjørn and the formula
/// user; account B has one snapshot of Þóra and Ola.
pub fn write_store(dir: &Path) -> PathBuf {
    let store_dir = dir.join("store");
    let store = Store::new(&store_dir);
    let meta = SnapshotMeta {
        source: "generator".into(),
        ..SnapshotMeta::default()
    };
    let company_a = "Nordlys A/S";
    let first = [
        record(&SOREN, company_a, 4, 1, 0),
        record(&BJORN, company_a, 4, 2, 0),
        record(&FORMULA, company_a, 4, 0, 0),
    ];
    let second = [
        record(&SOREN, company_a, 10, 3, 1),
        record(&BJORN, company_a, 10, 5, 0),
        record(&FORMULA, company_a, 10, 0, 0),
    ];
    let b = [
        record(&THORA, COMPANY_B, 10, 5, 5),
        record(&OLA, COMPANY_B, 10, 1, 0),
    ];
    let write = |account: &str, time: &str, users: &[UserRecord]| {
        let users = UserBatches::from_records(users);
        write_snapshot(&store, account, at(time), users, &meta)
    };
    write(ACCOUNT_A, T1, &first).expect("write A at T1");
    write(ACCOUNT_A, T2, &second).expect("write A at T2");
    write(ACCOUNT_B, T2, &b).expect("write B at T2");
    store_dir
}

/// Runs the real binary in `cwd` with a clean environment plus `env`.
pub fn cpstat(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cpstat"));
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("CPSTAT_RETRY_TIME_SCALE", "0");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("cpstat runs")
}

/// Runs the binary and asserts it succeeded; returns its stdout.
pub fn cpstat_ok(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> String {
    let output = cpstat(args, env, cwd);
    assert_eq!(
        output.status.code(),
        Some(0),
        "cpstat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `analyze` over the fixture store into `<dir>/<reports>` and returns
/// the report set folder.
pub fn analyze(dir: &Path, reports: &str, extra: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let mut args = vec!["analyze", "--store", "store", "--out", reports];
    args.extend_from_slice(extra);
    cpstat_ok(&args, env, dir);
    dir.join(reports)
        .join("latest")
        .canonicalize()
        .expect("latest points at the report set")
}

/// Lists every regular file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("readable folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
