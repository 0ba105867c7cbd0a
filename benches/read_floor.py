"""Read every column that `cpstat analyze` needs from every snapshot, and nothing more.

Usage: read_floor.py ENGINE STORE

ENGINE is `duckdb` (one query that hashes every value, so each column is
decoded) or `pyarrow` (each file read into Arrow and dropped). The time and
memory of this are the floor that any analysis of the store pays before it
computes anything. benches/analyze_vs_duckdb.py runs it.
"""

import sys
from pathlib import Path

# The input columns of cpstat's prepared rows (src/analysis/prepare.rs).
COLUMNS = [
    "snapshot_at", "account_id", "user_id", "email", "name", "department", "branch_name", "manager", "country",
    "groups", "enrolled_courses", "not_completed_courses", "overdue_courses", "enrolled_materials",
    "not_completed_materials", "phishing_campaigns", "emails_sent", "links_clicked", "data_submitted",
    "average_score",
]


def read_duckdb(store):
    import duckdb

    glob = f"{store}/users_summary/account=*/*.parquet".replace("'", "''")
    hashes = ", ".join(f"sum(hash({name}))" for name in COLUMNS)
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*), {hashes} FROM read_parquet('{glob}', hive_partitioning = false)").fetchone()
    return row[0]


def read_pyarrow(store):
    import pyarrow.parquet as pq

    rows = 0
    for path in sorted(Path(store, "users_summary").rglob("*.parquet")):
        rows += pq.read_table(path, columns=COLUMNS).num_rows
    return rows


def main():
    engine, store = sys.argv[1], Path(sys.argv[2])
    readers = {"duckdb": read_duckdb, "pyarrow": read_pyarrow}
    print(f"rows={readers[engine](store)}")


if __name__ == "__main__":
    main()
