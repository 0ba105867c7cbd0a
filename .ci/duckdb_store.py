"""Read a whole store back with DuckDB after the kill loop.

Usage: duckdb_store.py STORE

Every snapshot must read through the hive-partitioned glob with unique user
ids per snapshot, and every table of the `latest` report set must read.
"""

import sys
from pathlib import Path

import duckdb

REPORT_TABLES = ["user_risk", "group_rates", "department_trend", "repeat_clickers"]


def main():
    store = Path(sys.argv[1])
    con = duckdb.connect()
    glob = f"{store}/users_summary/**/*.parquet"
    per_file = con.execute(
        f"""
        SELECT filename, count(*) AS users, count(DISTINCT user_id) AS ids
        FROM read_parquet('{glob}', hive_partitioning = true, filename = true)
        GROUP BY filename ORDER BY filename
        """
    ).fetchall()
    assert per_file, f"no snapshots under {store}"
    for filename, users, ids in per_file:
        assert users == ids, f"{filename}: {users} rows but {ids} distinct user ids"
    latest = store / "reports" / "latest"
    for table in REPORT_TABLES:
        path = latest / f"{table}.parquet"
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
        print(f"{table}: {rows} rows")
    print(f"DuckDB read {len(per_file)} snapshots and the latest report set of {store}")


if __name__ == "__main__":
    main()
