//! A hand-written page of quirky users, decoded, written as a snapshot and
//! read back with the independent `parquet` crate.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use cpstat::api::decode::decode_page;
use cpstat::snapshot::batch::UserBatches;
use cpstat::snapshot::{SnapshotMeta, Store, write_snapshot};

const ACCOUNT: &str = "0b5f4a8e-1111-4c1e-9d7a-000000000001";

fn write_quirky_snapshot(root: &std::path::Path) -> std::path::PathBuf {
    let body = std::fs::read(data_file("quirky_page.json")).unwrap();
    let page = decode_page(&body).expect("quirky page decodes");
    // 2026-11-30T06:00:00Z is 1_796_018_400 seconds after the epoch.
    let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
    let meta = SnapshotMeta {
        count_reported: page.count,
        pages: 1,
        source: "test".into(),
        ..SnapshotMeta::default()
    };
    let users = UserBatches::from(page.users);
    write_snapshot(&Store::new(root), ACCOUNT, at, users, &meta).unwrap()
}

#[test]
fn quirky_page_values_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_quirky_snapshot(dir.path());
    assert_eq!(
        path,
        dir.path().join(format!(
            "users_summary/account={ACCOUNT}/20261130T060000Z.parquet"
        ))
    );
    let rows = read_rows(&path);
    assert_eq!(rows.len(), 4);

    for row in &rows {
        assert_eq!(micros(row, "snapshot_at"), Some(1_796_018_400_000_000));
        assert_eq!(text(row, "account_id").as_deref(), Some(ACCOUNT));
    }

    let soren = &rows[0];
    assert_eq!(text(soren, "user_id").as_deref(), Some("1001"));
    assert_eq!(text(soren, "name").as_deref(), Some("Søren Østergaard-Ærø"));
    assert_eq!(text(soren, "last_name").as_deref(), Some("Østergaard-Ærø"));
    assert_eq!(micros(soren, "user_created"), Some(1_683_016_200_000_000));
    assert_eq!(text(soren, "manager").as_deref(), Some("Åse Ågren"));
    assert_eq!(text(soren, "department").as_deref(), Some("Økonomi"));
    assert_eq!(text(soren, "branch_id").as_deref(), Some("7"));
    assert_eq!(text(soren, "branch_name").as_deref(), Some("København"));
    assert_eq!(groups(soren), None);
    let counters = [
        "enrolled_courses",
        "not_completed_courses",
        "overdue_courses",
        "enrolled_materials",
        "not_completed_materials",
        "phishing_campaigns",
        "emails_sent",
        "links_clicked",
        "data_submitted",
    ];
    let soren_counts: Vec<Option<i64>> = counters.iter().map(|c| long(soren, c)).collect();
    assert_eq!(
        soren_counts,
        [5, 1, 0, 3, 0, 1, 12, 3, 1].map(Some).to_vec()
    );
    assert_eq!(text(soren, "last_action").as_deref(), Some("Clicked link"));
    assert_eq!(double(soren, "average_score"), Some(87.5));
    assert_eq!(
        text(soren, "extra").as_deref(),
        Some(r#"{"riskLevel":"high"}"#)
    );

    let ase = &rows[1];
    assert_eq!(
        text(ase, "user_id").as_deref(),
        Some("9007199254740993"),
        "an id above 2^53 stays exact"
    );
    // 2021-11-15T12:00:00.250+01:00 is 11:00:00.25 UTC.
    assert_eq!(micros(ase, "user_created"), Some(1_636_974_000_250_000));
    let ase_counts: Vec<Option<i64>> = counters.iter().map(|c| long(ase, c)).collect();
    assert_eq!(ase_counts, [4, 2, 1, 0, 0, 0, 8, 0, 0].map(Some).to_vec());
    assert_eq!(
        text(ase, "last_action").as_deref(),
        Some("3"),
        "an int lastAction is kept as text"
    );
    assert_eq!(double(ase, "average_score"), None);
    assert_eq!(text(ase, "company_name"), None, "missing meta gives nulls");
    assert_eq!(text(ase, "department"), None);
    assert_eq!(text(ase, "branch_id"), None, "null branch gives nulls");
    assert_eq!(
        groups(ase),
        Some(vec![]),
        "an empty group list stays empty, not null"
    );
    assert_eq!(text(ase, "extra"), None);

    let bjorn = &rows[2];
    let nfd_name = "Bjørn Þo\u{301}rsdóttir".replace('ó', "o\u{301}");
    assert_eq!(
        text(bjorn, "name"),
        Some(nfd_name),
        "names are stored exactly as sent"
    );
    assert_eq!(text(bjorn, "department").as_deref(), Some("Århus"));
    assert_eq!(
        micros(bjorn, "user_created"),
        Some(1_709_164_800_000_000),
        "a bare date is midnight UTC"
    );
    assert_eq!(text(bjorn, "manager"), None);
    assert_eq!(text(bjorn, "branch_id").as_deref(), Some("b-9"));
    assert_eq!(
        groups(bjorn),
        Some(vec![
            ("11".into(), Some("Ledere".into())),
            ("12".into(), Some("Fjernarbejde".into()))
        ])
    );
    assert_eq!(
        text(bjorn, "extra").as_deref(),
        Some(r#"{"user":{"meta":{"costCenter":"CC-42"},"phoneNumber":"+45 12 34 56 78"}}"#)
    );
    assert_eq!(double(bjorn, "average_score"), Some(70.0));

    let kai = &rows[3];
    assert_eq!(
        text(kai, "email").as_deref(),
        Some("Kai.Lehtinen@Nordlys.dk")
    );
    assert_eq!(micros(kai, "user_created"), None);
    assert_eq!(
        text(kai, "department").as_deref(),
        Some(" Salg "),
        "raw spelling is kept in the store"
    );
    assert_eq!(long(kai, "links_clicked"), Some(1));
    assert_eq!(
        long(kai, "data_submitted"),
        Some(3),
        "raw counters are kept even when inconsistent"
    );
    assert_eq!(
        double(kai, "average_score"),
        Some(64.0),
        "a numeric string score is a number"
    );
    assert_eq!(
        groups(kai),
        Some(vec![("11".into(), Some("Ledere".into()))])
    );
}

#[test]
fn snapshot_schema_types_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_quirky_snapshot(dir.path());
    let types = column_types(&path);
    let names: Vec<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = cpstat::snapshot::schema::COLUMNS.to_vec();
    expected.push("extra");
    assert_eq!(names, expected);
    for (name, kind) in &types {
        let ok = match name.as_str() {
            "snapshot_at" | "user_created" => {
                kind.starts_with("INT64")
                    && kind.contains("is_adjusted_to_u_t_c: true")
                    && kind.contains("MICROS")
            }
            "groups" => kind.starts_with("group"),
            "average_score" => kind.starts_with("DOUBLE"),
            n if n.ends_with("_courses")
                || n.ends_with("_materials")
                || matches!(
                    n,
                    "phishing_campaigns" | "emails_sent" | "links_clicked" | "data_submitted"
                ) =>
            {
                kind == "INT64 none"
            }
            _ => kind.starts_with("BYTE_ARRAY String"),
        };
        assert!(ok, "column {name} has type {kind}");
    }
}

#[test]
fn snapshot_metadata_records_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_quirky_snapshot(dir.path());
    let kv = key_values(&path);
    assert_eq!(
        kv.get("cpstat.schema_version").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        kv.get("cpstat.account_id").map(String::as_str),
        Some(ACCOUNT)
    );
    assert_eq!(
        kv.get("cpstat.count_reported").map(String::as_str),
        Some("4")
    );
    assert_eq!(
        kv.get("cpstat.users_written").map(String::as_str),
        Some("4")
    );
    assert_eq!(kv.get("cpstat.pages").map(String::as_str), Some("1"));
    assert_eq!(
        kv.get("cpstat.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn snapshot_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_quirky_snapshot(dir.path());
    let before = std::fs::read(&path).unwrap();
    let body = std::fs::read(data_file("quirky_page.json")).unwrap();
    let page = decode_page(&body).unwrap();
    let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();
    let error = write_snapshot(
        &Store::new(dir.path()),
        ACCOUNT,
        at,
        UserBatches::from_records(&page.users.to_records()[..1]),
        &SnapshotMeta::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("already exists"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );
}

#[cfg(unix)]
#[test]
fn snapshot_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_quirky_snapshot(dir.path());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let folder = path.parent().unwrap();
    assert_eq!(
        std::fs::metadata(folder).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// Describes every column chunk of a file as the `parquet` crate reads
/// its footer: path, encodings, compression, value count and statistics.
fn column_chunks(path: &std::path::Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let metadata = reader.metadata();
    assert_eq!(metadata.num_row_groups(), 1, "{}", path.display());
    metadata
        .row_group(0)
        .columns()
        .iter()
        .map(|chunk| {
            format!(
                "{} {:?} {:?} {} {:?}",
                chunk.column_path(),
                chunk.encodings().collect::<Vec<_>>(),
                chunk.compression(),
                chunk.num_values(),
                chunk.statistics()
            )
        })
        .collect()
}

#[test]
fn snapshot_matches_polars_writer() {
    use cpstat::mock::{OrgConfig, Organisation};
    use polars::prelude::{KeyValueMetadata, ParquetCompression, ParquetWriter, StatisticsOptions};

    // Simulated users and the quirky page, in two batches: text with
    // escapes, nulls, empty and absent group lists and undocumented
    // properties.
    let mut simulation = Organisation::new(OrgConfig {
        users: 3000,
        ..OrgConfig::default()
    })
    .simulation();
    simulation.advance_to(60);
    let body = std::fs::read(data_file("quirky_page.json")).unwrap();
    let mut users = UserBatches::from(cpstat::generate::users_of(simulation.users()));
    users.push(decode_page(&body).unwrap().users);
    let expected_rows = simulation.users().len() + 4;
    let at: DateTime<Utc> = "2026-11-30T06:00:00Z".parse().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let written = write_snapshot(
        &Store::new(dir.path()),
        ACCOUNT,
        at,
        users.clone(),
        &SnapshotMeta::default(),
    )
    .unwrap();
    let mut frame = cpstat::snapshot::write::users_frame(ACCOUNT, at, users).unwrap();
    let by_polars = dir.path().join("by_polars.parquet");
    let file = std::fs::File::create(&by_polars).unwrap();
    let metadata = key_values(&written)
        .into_iter()
        .filter(|(key, _)| key.starts_with("cpstat."))
        .map(|(key, value)| polars_parquet::write::KeyValue::new(key, value))
        .collect();
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .with_key_value_metadata(Some(KeyValueMetadata::Static(metadata)))
        .finish(&mut frame)
        .unwrap();

    let rows = read_rows(&written);
    assert_eq!(rows.len(), expected_rows);
    assert_eq!(format!("{rows:?}"), format!("{:?}", read_rows(&by_polars)));
    assert_eq!(column_types(&written), column_types(&by_polars));
    assert_eq!(column_chunks(&written), column_chunks(&by_polars));
    assert_eq!(key_values(&written), key_values(&by_polars));
}
