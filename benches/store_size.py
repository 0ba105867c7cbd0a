"""Compare the bytes per user-snapshot of the Parquet store with the same rows as JSON and CSV.

Usage: store_size.py [--users 10000] [--snapshots 52] [--every 1w] [--cpstat PATH] [--work DIR]

Reads every snapshot of a generated store with polars and writes the same
rows as JSON lines and as CSV (the `groups` list as JSON text), plain and
gzip-compressed. Prints the bytes per user-snapshot of each and the ratio
of the store to each. The API's own JSON is larger still, because it
nests `user`, `meta` and `branch`: benches/python_fetch_client.py prints its
bytes for comparison.
"""

import argparse
import gzip
import shutil
import tempfile
from pathlib import Path

import polars as pl

from bench_util import DEFAULT_CPSTAT, DEFAULT_WORK, check_cpstat, generated_store, header, print_table, store_bytes


def gzipped_size(path):
    target = path.with_suffix(path.suffix + ".gz")
    with open(path, "rb") as source, gzip.open(target, "wb", compresslevel=6) as sink:
        shutil.copyfileobj(source, sink)
    return target.stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--snapshots", type=int, default=52)
    parser.add_argument("--every", default="1w")
    parser.add_argument("--cpstat", default=DEFAULT_CPSTAT)
    parser.add_argument("--work", default=DEFAULT_WORK, type=Path)
    args = parser.parse_args()
    cpstat = check_cpstat(args.cpstat)
    header(f"store size per user-snapshot ({args.users:,} x {args.snapshots})")

    store = generated_store(cpstat, args.work, args.users, args.snapshots, args.every)
    frame = pl.scan_parquet(f"{store}/users_summary/**/*.parquet", hive_partitioning=False).collect()
    rows = frame.height
    parquet = store_bytes(store)
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        json_path = Path(work) / "rows.ndjson"
        csv_path = Path(work) / "rows.csv"
        frame.write_ndjson(json_path)
        groups_json = pl.concat_str([
            pl.lit("["), pl.col("groups").list.eval(pl.element().struct.json_encode()).list.join(","), pl.lit("]"),
        ])
        frame.with_columns(groups_json.alias("groups")).write_csv(csv_path)
        sizes = {
            "Parquet store (zstd)": parquet,
            "JSON lines": json_path.stat().st_size,
            "JSON lines, gzip -6": gzipped_size(json_path),
            "CSV": csv_path.stat().st_size,
            "CSV, gzip -6": gzipped_size(csv_path),
        }
    table = [[name, f"{size:,}", f"{size / rows:.1f}", f"{parquet / size:.3f}"] for name, size in sizes.items()]
    print(f"{rows:,} user-snapshots\n")
    print_table(["format", "bytes", "bytes per user-snapshot", "store / this"], table)


if __name__ == "__main__":
    main()
