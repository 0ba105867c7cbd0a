"""Read the CSV report tables of data/spreadsheet_page.json back with
Python's csv module and with DuckDB, and check every value that matters.

Usage: csv_readback.py REPORT_SET_DIR ACCOUNT_ID

The report set comes from `cpstat analyze --format all` over one snapshot of
the fixture. The expected values are worked out by hand from the fixture:
formula-like text gets a leading apostrophe, numbers stay numbers (also
negative ones), quotes, commas and line breaks survive RFC 4180 quoting,
and Danish letters arrive unchanged.
"""

import csv
import sys
from pathlib import Path

import duckdb

BOM = b"\xef\xbb\xbf"

# user_id -> (name, email, department, manager, emails_sent, links_clicked, click_rate)
USERS = {
    "2001": ("'=1+2", "'+45@nordlys.dk", "'@Indkøb", "'-Åse Ågren", 10, 4, 0.4),
    "2002": ("Søren Østergaard-Ærø", "soren@nordlys.dk", "Økonomi", "Åse Ågren", 8, 2, 0.25),
    "2003": ('Bjørn "Bøss" <b>, Ærø', "bjorn@nordlys.dk", "Økonomi", "Åse Ågren", 8, 0, 0.0),
    "2004": ("'\tTab Ågård", "tab@nordlys.dk", "Lager\nNord", "Åse Ågren", 0, -1, None),
}

# department value -> (users, sent, clicked, click_rate, rank)
DEPARTMENTS = {
    "'@Indkøb": (1, 10, 4, 0.4, 1),
    "Økonomi": (2, 16, 2, 0.125, 2),
    "Lager\nNord": (1, 0, 0, None, None),
}


class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0

    def equal(self, label, actual, expected):
        self.count += 1
        if actual != expected:
            self.failures.append(f"{label}: expected {expected!r}, got {actual!r}")


def check_bytes(checks, path):
    data = path.read_bytes()
    checks.equal(f"{path.name} starts with a UTF-8 BOM", data[:3], BOM)
    header_end = data.index(b"\n")
    checks.equal(f"{path.name} header ends with CRLF", data[header_end - 1 : header_end + 1], b"\r\n")
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    checks.equal(f"{path.name} is valid UTF-8", valid, True)


def check_python_csv(checks, report_dir, account):
    with open(report_dir / "user_risk.csv", encoding="utf-8-sig", newline="") as handle:
        rows = {row["user_id"]: row for row in csv.DictReader(handle)}
    checks.equal("csv: user_risk rows", sorted(rows), sorted(USERS))
    for user_id, (name, email, department, manager, sent, clicked, rate) in USERS.items():
        row = rows.get(user_id, {})
        checks.equal(f"csv {user_id} account_id", row.get("account_id"), account)
        checks.equal(f"csv {user_id} name", row.get("name"), name)
        checks.equal(f"csv {user_id} email", row.get("email"), email)
        checks.equal(f"csv {user_id} department", row.get("department"), department)
        checks.equal(f"csv {user_id} manager", row.get("manager"), manager)
        checks.equal(f"csv {user_id} emails_sent", row.get("emails_sent"), str(sent))
        checks.equal(f"csv {user_id} links_clicked", row.get("links_clicked"), str(clicked))
        expected_rate = "" if rate is None else rate
        actual_rate = row.get("click_rate")
        checks.equal(f"csv {user_id} click_rate", float(actual_rate) if actual_rate else "", expected_rate)

    with open(report_dir / "group_rates.csv", encoding="utf-8-sig", newline="") as handle:
        groups = [row for row in csv.DictReader(handle)]
    departments = {row["value"]: row for row in groups if row["dimension"] == "department"}
    checks.equal("csv: departments", sorted(departments), sorted(DEPARTMENTS))
    for value, (users, sent, clicked, rate, rank) in DEPARTMENTS.items():
        row = departments.get(value, {})
        checks.equal(f"csv department {value!r} users", row.get("users"), str(users))
        checks.equal(f"csv department {value!r} sent", row.get("sent"), str(sent))
        checks.equal(f"csv department {value!r} clicked", row.get("clicked"), str(clicked))
        checks.equal(f"csv department {value!r} rank", row.get("rank"), "" if rank is None else str(rank))
    accounts = [row for row in groups if row["dimension"] == "account"]
    checks.equal("csv account rows", [(r["value"], r["users"], r["sent"], r["clicked"]) for r in accounts], [(account, "4", "26", "6")])
    checks.equal("csv account click_rate", float(accounts[0]["click_rate"]) if accounts else None, 6 / 26)


def check_duckdb(checks, report_dir, account):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    user_risk = str(report_dir / "user_risk.csv")
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_csv('{user_risk}'))").fetchall())
    for column, expected in [
        ("account_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("emails_sent", "BIGINT"),
        ("links_clicked", "BIGINT"),
        ("click_rate", "DOUBLE"),
        ("risk_score", "DOUBLE"),
        ("snapshot_at", "TIMESTAMP WITH TIME ZONE"),
        ("data_issue", "BOOLEAN"),
    ]:
        checks.equal(f"duckdb user_risk {column} type", types.get(column), expected)
    rows = con.execute(
        f"""SELECT CAST(user_id AS VARCHAR), name, email, department, manager, emails_sent, links_clicked,
                   click_rate, data_issue, strftime(snapshot_at, '%Y-%m-%dT%H:%M:%SZ')
            FROM read_csv('{user_risk}') ORDER BY user_id"""
    ).fetchall()
    by_id = {row[0]: row for row in rows}
    for user_id, expected in USERS.items():
        row = by_id.get(user_id)
        checks.equal(f"duckdb {user_id} values", row[1:8] if row else None, expected)
        checks.equal(f"duckdb {user_id} snapshot_at", row[9] if row else None, "2025-03-03T06:00:00Z")
    checks.equal("duckdb 2004 data_issue (negative clicks)", by_id.get("2004", [None] * 9)[8], True)

    group_rates = str(report_dir / "group_rates.csv")
    departments = con.execute(
        f"""SELECT value, users, sent, clicked, click_rate, rank FROM read_csv('{group_rates}')
            WHERE dimension = 'department'"""
    ).fetchall()
    checks.equal("duckdb departments", {row[0]: row[1:] for row in departments}, DEPARTMENTS)
    pooled = con.execute(
        f"SELECT value, users, sent, clicked, click_rate, rank FROM read_csv('{group_rates}') WHERE dimension = 'account'"
    ).fetchall()
    checks.equal("duckdb account row", pooled, [(account, 4, 26, 6, 6 / 26, 1)])

    # No text cell of any table may start like a formula.
    for path in sorted(report_dir.glob("*.csv")):
        described = con.execute(f"DESCRIBE SELECT * FROM read_csv('{path}', all_varchar = false)").fetchall()
        for column, column_type, *_ in described:
            if column_type != "VARCHAR":
                continue
            bad = con.execute(
                f"""SELECT count(*) FROM read_csv('{path}')
                    WHERE left("{column}", 1) IN ('=', '+', '-', '@', chr(9), chr(13))"""
            ).fetchone()[0]
            checks.equal(f"duckdb {path.name}.{column} unguarded formula cells", bad, 0)


def main():
    report_dir, account = Path(sys.argv[1]), sys.argv[2]
    checks = Checks()
    for name in ["user_risk.csv", "group_rates.csv", "department_trend.csv", "repeat_clickers.csv"]:
        check_bytes(checks, report_dir / name)
    check_python_csv(checks, report_dir, account)
    check_duckdb(checks, report_dir, account)
    if checks.failures:
        print("CSV read-back FAILED:")
        for failure in checks.failures:
            print("  " + failure)
        sys.exit(1)
    print(f"CSV read-back with Python csv and DuckDB: {checks.count} checks, all as expected")


if __name__ == "__main__":
    main()
