"""Compare `cpstat analyze` with DuckDB computing the same four tables over the same store.

Usage: analyze_vs_duckdb.py [--sizes 10000x52x1w,100000x52x1w,100000x365x1d] [--repeat N]
                            [--cpstat PATH] [--work DIR]

For each size, generates a store with `cpstat gen` once (kept under --work),
then runs back to back:

- `cpstat analyze --no-cache`: the four tables, the shipped queries and the
  report files, computed from scratch;
- benches/duckdb_tables.py: the four tables in DuckDB with the SQL of
  .ci/duckdb_crosscheck.py, written to Parquet;
- benches/read_floor.py with DuckDB and with pyarrow: only reading every
  column that analyze needs.

It prints wall time, CPU time and peak RSS of each, the ratios cpstat /
DuckDB and cpstat / fastest read, and the load average before each size.
A run that fails is listed as failed, and the script then exits with
status 1. Run it with the virtualenv of benches/requirements.txt.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from bench_util import (
    DEFAULT_CPSTAT, DEFAULT_WORK, REPO, best_of, check_cpstat, generated_store, header, load_average, mib,
    print_table, store_bytes,
)


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        users, snapshots, every = part.split("x")
        sizes.append((int(users), int(snapshots), every))
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x52x1w,100000x52x1w,100000x365x1d", type=parse_sizes,
                        help="users x snapshots x period of `cpstat gen`, comma separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest counts")
    parser.add_argument("--cpstat", default=DEFAULT_CPSTAT, help="release binary of cpstat")
    parser.add_argument("--work", default=DEFAULT_WORK, type=Path, help="folder of the generated stores")
    parser.add_argument("--skip-read-floor", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true",
                        help="compare with the read floor only, for stores too large for the DuckDB SQL")
    args = parser.parse_args()
    cpstat = check_cpstat(args.cpstat)
    python = sys.executable
    benches = REPO / "benches"

    header("cpstat analyze versus DuckDB on the same store")
    rows = []
    failed = False
    for users, snapshots, every in args.sizes:
        store = generated_store(cpstat, args.work, users, snapshots, every)
        load = load_average()
        with tempfile.TemporaryDirectory(dir=args.work) as out:
            runs = {
                "cpstat analyze --no-cache": best_of(
                    args.repeat,
                    [cpstat, "analyze", "--quiet", "--no-cache", "--store", store, "--out", Path(out) / "cpstat"],
                ),
            }
            if not args.skip_duckdb:
                # DuckDB spills to its temporary folder under the working
                # folder when a query needs more than its memory limit.
                runs["DuckDB, four tables"] = best_of(
                    args.repeat, [python, benches / "duckdb_tables.py", store, Path(out) / "duckdb"], cwd=out,
                )
            if not args.skip_read_floor:
                for engine in ("duckdb", "pyarrow"):
                    runs[f"read floor, {engine}"] = best_of(
                        args.repeat, [python, benches / "read_floor.py", engine, store],
                    )
        cpstat_run = runs["cpstat analyze --no-cache"]
        duckdb_run = runs.get("DuckDB, four tables")
        floors = [run for name, run in runs.items() if name.startswith("read floor") and not run.failed]
        size = f"{users:,} x {snapshots} ({store_bytes(store) / 2**20:,.1f} MiB)"
        for name, run in runs.items():
            state = f"FAILED after {run.wall:.1f}" if run.failed else f"{run.wall:.1f}"
            rows.append([size, name, state, f"{run.cpu:.1f}", mib(run.peak_rss), load])
            if run.failed:
                print(f"{size}: {name} failed: {run.failed}", flush=True)
        floor = min(floors, key=lambda run: run.wall) if floors else None
        ratio_floor = f"{cpstat_run.wall / floor.wall:.2f}x" if floor else "-"
        failed = failed or any(run.failed for run in runs.values())
        if duckdb_run is None or duckdb_run.failed or cpstat_run.failed:
            rows.append([size, "**cpstat / DuckDB**", "no ratio", "", "", f"read floor {ratio_floor}"])
            print(f"{size}: no cpstat/DuckDB ratio; cpstat/read floor {ratio_floor}", flush=True)
            continue
        ratio_wall = cpstat_run.wall / duckdb_run.wall
        ratio_cpu = cpstat_run.cpu / duckdb_run.cpu
        ratio_rss = cpstat_run.peak_rss / duckdb_run.peak_rss
        rows.append([size, "**cpstat / DuckDB; cpstat / fastest read**",
                     f"**{ratio_wall:.2f}x**", f"**{ratio_cpu:.2f}x**", f"**{ratio_rss:.2f}x**",
                     f"read floor {ratio_floor}"])
        print(f"{size}: cpstat/DuckDB wall {ratio_wall:.2f}x, CPU {ratio_cpu:.2f}x, peak RSS {ratio_rss:.2f}x, "
              f"cpstat/read floor {ratio_floor}", flush=True)
    print()
    print_table(["store (users x snapshots)", "command", "wall s", "CPU s", "peak RSS", "load before"], rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
