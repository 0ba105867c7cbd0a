"""Read a snapshot of data/quirky_page.json back with DuckDB and check every value.

Usage: duckdb_quirky.py STORE ACCOUNT_ID

The expected values are written out by hand from the page, independently of
cpstat's code.
"""

import sys
import unicodedata
from datetime import datetime, timezone

import duckdb


def utc(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def main():
    store, account = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = f"{store}/users_summary/**/*.parquet"
    rows = con.execute(
        f"""
        SELECT account, account_id, user_id, name, department, user_created, groups,
               enrolled_courses, not_completed_courses, overdue_courses, enrolled_materials,
               not_completed_materials, phishing_campaigns, emails_sent, links_clicked,
               data_submitted, last_action, average_score, extra, branch_id, branch_name, company_name
        FROM read_parquet('{glob}', hive_partitioning = true)
        ORDER BY user_id
        """
    ).fetchall()
    types = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true))"
        ).fetchall()
    )
    failures = []

    def check(label, actual, expected):
        if actual != expected:
            failures.append(f"{label}: expected {expected!r}, got {actual!r}")

    check("row count", len(rows), 4)
    check("snapshot_at type", types.get("snapshot_at"), "TIMESTAMP WITH TIME ZONE")
    check("user_created type", types.get("user_created"), "TIMESTAMP WITH TIME ZONE")
    check("groups type", types.get("groups"), "STRUCT(id VARCHAR, \"name\" VARCHAR)[]")
    check("emails_sent type", types.get("emails_sent"), "BIGINT")
    check("average_score type", types.get("average_score"), "DOUBLE")
    check("department type", types.get("department"), "VARCHAR")
    by_id = {row[2]: row for row in rows}

    soren = by_id["1001"]
    check("hive account", soren[0], account)
    check("account_id", soren[1], account)
    check("soren name", soren[3], "Søren Østergaard-Ærø")
    check("soren department", soren[4], "Økonomi")
    check("soren created", soren[5], utc("2023-05-02T08:30:00+00:00"))
    check("soren groups", soren[6], None)
    check("soren counters", soren[7:16], (5, 1, 0, 3, 0, 1, 12, 3, 1))
    check("soren last_action", soren[16], "Clicked link")
    check("soren score", soren[17], 87.5)
    check("soren extra", soren[18], '{"riskLevel":"high"}')
    check("soren branch", soren[19:21], ("7", "København"))

    ase = by_id["9007199254740993"]
    check("ase created", ase[5], utc("2021-11-15T12:00:00.250+01:00"))
    check("ase groups", ase[6], [])
    check("ase counters", ase[7:16], (4, 2, 1, 0, 0, 0, 8, 0, 0))
    check("ase last_action", ase[16], "3")
    check("ase score", ase[17], None)
    check("ase company", ase[21], None)

    bjorn = by_id["u-3"]
    check("bjorn name is NFD as sent", bjorn[3], unicodedata.normalize("NFD", "Bjørn Þórsdóttir"))
    check("bjorn department", bjorn[4], "Århus")
    check("bjorn created", bjorn[5], utc("2024-02-29T00:00:00+00:00"))
    check("bjorn groups", bjorn[6], [{"id": "11", "name": "Ledere"}, {"id": "12", "name": "Fjernarbejde"}])
    check("bjorn extra", bjorn[18], '{"user":{"meta":{"costCenter":"CC-42"},"phoneNumber":"+45 12 34 56 78"}}')

    kai = by_id["u-4"]
    check("kai department", kai[4], " Salg ")
    check("kai created", kai[5], None)
    check("kai clicked and submitted", kai[14:16], (1, 3))
    check("kai score", kai[17], 64.0)

    if failures:
        print("DuckDB read-back of the quirky snapshot FAILED:")
        for failure in failures:
            print("  " + failure)
        sys.exit(1)
    print(f"DuckDB read-back of the quirky snapshot: {len(rows)} rows, all values as expected")


if __name__ == "__main__":
    main()
