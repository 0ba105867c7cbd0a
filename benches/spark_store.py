"""Run the shipped SQL over a cpstat store on Apache Spark in local mode and check it against cpstat.

Usage: spark_store.py STORE [--queries DIR] [--cores N] [--driver-memory 8g]

Needs a report set: run `cpstat analyze --store STORE` first (default
parameters). The script reads the store's Hive layout unchanged
(`users_summary/account=<id>/<time>.parquet`, so Spark adds the partition
column `account`), defines the views of queries/duckdb_views.sql in Spark
SQL (`snapshots`, `latest` and the four report tables), and then:

- runs every shipped query of queries/*.sql unchanged and compares it, row
  by row in order, with the table of the same name that cpstat wrote;
- computes the pooled click rate of each department on each account's
  latest snapshot in Spark SQL and compares it with the `department` rows of
  cpstat's group_rates (users, sent, clicked, click_rate).

Spark has no Unicode NFC normalisation or full case folding, so the
department key here is lower() of the department trimmed of Unicode
whitespace. That equals cpstat's key
for the generated and demo stores, and the script reports every key that
does not match. Queries that Spark cannot run unchanged are listed as not
portable. Exit status 0 when every result that Spark computed matches, 1
otherwise (and with --strict also when a query did not run). Needs pyspark
from PyPI and Java 17.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

TOLERANCE = 1e-9


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=TOLERANCE)
    return a == b


def define_views(spark, store):
    table = str(Path(store, "users_summary"))
    snapshots = spark.read.option("basePath", table).parquet(table)
    snapshots.createOrReplaceTempView("snapshots")
    spark.sql("""
        CREATE OR REPLACE TEMP VIEW latest AS
        SELECT * FROM (
            SELECT *, max(snapshot_at) OVER (PARTITION BY account_id) AS newest_snapshot_at FROM snapshots
        ) WHERE snapshot_at = newest_snapshot_at
    """)
    for name in ("user_risk", "group_rates", "department_trend", "repeat_clickers"):
        spark.read.parquet(str(Path(store, "reports", "latest", f"{name}.parquet"))).createOrReplaceTempView(name)


def compare_rows(name, expected, actual, problems):
    if len(expected) != len(actual):
        problems.append(f"{name}: Spark returned {len(expected)} rows, cpstat wrote {len(actual)}")
    for index, (want, got) in enumerate(zip(expected, actual)):
        for column, value in want.asDict().items():
            if not same(value, got[column]):
                problems.append(f"{name} row {index + 1}: {column} Spark {value!r}, cpstat {got[column]!r}")
                break
    return min(len(expected), len(actual))


def check_queries(spark, store, queries, problems, report, unportable):
    for path in sorted(Path(queries).glob("*.sql")):
        if path.name == "duckdb_views.sql":
            continue
        written = Path(store, "reports", "latest", f"{path.stem}.parquet")
        started = time.perf_counter()
        try:
            expected = spark.sql(path.read_text(encoding="utf-8")).collect()
        except Exception as error:  # Spark raises several types for SQL it cannot run
            first_line = str(error).strip().splitlines()[0]
            report.append(f"query {path.stem}: NOT PORTABLE, Spark cannot run it unchanged: {first_line}")
            unportable.append(path.stem)
            continue
        actual = spark.read.parquet(str(written)).collect()
        rows = compare_rows(f"query {path.stem}", expected, actual, problems)
        report.append(f"query {path.stem}: {rows} rows compared in {time.perf_counter() - started:.1f} s")


# Unicode White_Space as Rust's `str::trim` removes it (U+0009..U+000D, U+0085
# and the separators), in Java regex syntax inside a Spark SQL string literal,
# where each backslash is written twice. Spark's trim removes only spaces.
WHITESPACE = r"[\\x{9}-\\x{d}\\x{85}\\p{Z}]"


def check_department_rates(spark, problems, report):
    trimmed = f"regexp_replace(coalesce(department, ''), '^{WHITESPACE}+|{WHITESPACE}+$', '')"
    expected = spark.sql(f"""
        SELECT account_id, lower({trimmed}) AS key,
               CAST(count(*) AS BIGINT) AS users,
               CAST(sum(sent) AS BIGINT) AS sent, CAST(sum(clicked) AS BIGINT) AS clicked,
               CASE WHEN sum(sent) > 0 THEN CAST(sum(clicked) AS DOUBLE) / sum(sent) END AS click_rate
        FROM (
            SELECT account_id, department,
                   greatest(coalesce(emails_sent, 0), 0) AS sent,
                   least(greatest(greatest(coalesce(links_clicked, 0), 0), greatest(coalesce(data_submitted, 0), 0)),
                         greatest(coalesce(emails_sent, 0), 0)) AS clicked
            FROM latest
        )
        GROUP BY 1, 2
    """).collect()
    cpstat = {
        (row["account_id"], row["key"]): row
        for row in spark.sql("SELECT * FROM group_rates WHERE dimension = 'department'").collect()
    }
    compared = 0
    for row in expected:
        key = (row["account_id"], row["key"])
        if key not in cpstat:
            problems.append(f"department {key}: no cpstat group with this key (Spark keys by lower() of the trimmed value)")
            continue
        for column in ("users", "sent", "clicked", "click_rate"):
            if not same(row[column], cpstat[key][column]):
                problems.append(f"department {key}: {column} Spark {row[column]!r}, cpstat {cpstat[key][column]!r}")
        compared += 1
    if len(expected) != len(cpstat):
        problems.append(f"departments: Spark found {len(expected)}, cpstat {len(cpstat)}")
    report.append(f"department click rates on the latest snapshot: {compared} departments compared")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--queries", type=Path, default=Path(__file__).resolve().parent.parent / "queries")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--strict", action="store_true", help="fail also when a query does not run in Spark")
    args = parser.parse_args()

    # Keep the driver and its block manager on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .appName("cpstat-store")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("FATAL")
    print(f"Spark {spark.version} in local mode with {args.cores} cores, started in "
          f"{time.perf_counter() - started:.1f} s")
    define_views(spark, args.store)
    rows = spark.sql("SELECT count(*) AS rows, count(DISTINCT account) AS accounts FROM snapshots").collect()[0]
    print(f"  read {rows['rows']} snapshot rows of {rows['accounts']} accounts from the Hive layout")
    problems, report, unportable = [], [], []
    check_queries(spark, args.store, args.queries, problems, report, unportable)
    check_department_rates(spark, problems, report)
    spark.stop()
    for line in report:
        print(f"  {line}")
    print(f"total {time.perf_counter() - started:.1f} s")
    if args.strict:
        problems.extend(f"query {name}: does not run in Spark" for name in unportable)
    if problems:
        print(f"FAILED: {len(problems)} differences; the first 20:")
        for problem in problems[:20]:
            print(f"  {problem}")
        return 1
    print("Spark's results equal cpstat's" + (f", except the queries it cannot run: {', '.join(unportable)}."
                                               if unportable else "."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
