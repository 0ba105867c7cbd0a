"""Compute cpstat's four report tables in DuckDB with the SQL of the CI cross-check.

Usage: duckdb_tables.py STORE OUT [MAX_TEMP]

Reads every snapshot of STORE, builds user_risk, group_rates,
department_trend and repeat_clickers with the SQL of
.ci/duckdb_crosscheck.py (default parameters of docs/metrics.md) and writes
each to OUT/<table>.parquet, as `cpstat analyze` writes its report set.
DuckDB spills to `.tmp` in the working folder when it runs out of memory.
MAX_TEMP caps that folder (default 10GiB), so that a store too large for
this SQL fails instead of filling the disk.
benches/analyze_vs_duckdb.py runs it as the DuckDB side of the comparison.
"""

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".ci"))
import duckdb_crosscheck  # noqa: E402

TABLES = {
    "user_risk": "risk",
    "group_rates": "group_rates_expected",
    "department_trend": "trend_expected",
    "repeat_clickers": "repeat_expected",
}


def main():
    store, out = Path(sys.argv[1]), Path(sys.argv[2])
    max_temp = sys.argv[3] if len(sys.argv) > 3 else "10GiB"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET max_temp_directory_size = {duckdb_crosscheck.sql_string(max_temp)}")
    notes = []
    duckdb_crosscheck.compute_tables(con, store, notes)
    for name, table in TABLES.items():
        target = duckdb_crosscheck.sql_string(str(out / f"{name}.parquet"))
        con.execute(f"COPY (SELECT * FROM {table}) TO {target} (FORMAT parquet)")
    rows = {name: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for name, table in TABLES.items()}
    print(" ".join(f"{name}={count}" for name, count in rows.items()))


if __name__ == "__main__":
    main()
