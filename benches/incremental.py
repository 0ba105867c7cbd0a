"""Measure `cpstat analyze` after one new snapshot, with the cache, against a full analysis.

Usage: incremental.py [--users 100000] [--snapshots 365] [--every 1d] [--cpstat PATH] [--work DIR]

Uses a generated store of --snapshots snapshots. It moves the newest
snapshot file aside, runs `cpstat analyze` to fill the cache for the
others, moves the file back (a rename, as `fetch` finishes a snapshot) and
then runs back to back:

- `cpstat analyze`, which reads the earlier snapshots' pieces from the cache;
- `cpstat analyze --no-cache`, the full recomputation.

Prints both and their ratio. The cache stays in the store's cache/ folder
and is rebuilt by the next run of this script.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_util import (
    DEFAULT_CPSTAT, DEFAULT_WORK, check_cpstat, generated_store, header, load_average, mib, print_table,
    run_measured,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=365)
    parser.add_argument("--every", default="1d")
    parser.add_argument("--cpstat", default=DEFAULT_CPSTAT)
    parser.add_argument("--work", default=DEFAULT_WORK, type=Path)
    args = parser.parse_args()
    cpstat = check_cpstat(args.cpstat)
    header(f"incremental cpstat analyze after one new snapshot ({args.users:,} x {args.snapshots})")

    store = generated_store(cpstat, args.work, args.users, args.snapshots, args.every)
    shutil.rmtree(store / "cache", ignore_errors=True)
    newest = sorted((store / "users_summary").rglob("*.parquet"))[-1]
    aside = store / newest.name
    with tempfile.TemporaryDirectory(dir=args.work) as out:
        analyze = [cpstat, "analyze", "--quiet", "--store", store, "--out", out]
        newest.rename(aside)
        try:
            warm = run_measured(analyze)
        finally:
            aside.rename(newest)
        load = load_average()
        incremental = run_measured(analyze)
        full = run_measured(analyze + ["--no-cache"])
    rows = [
        [f"fill the cache ({args.snapshots - 1} snapshots)", f"{warm.wall:.1f}", f"{warm.cpu:.1f}",
         mib(warm.peak_rss)],
        ["incremental: one new snapshot", f"{incremental.wall:.2f}", f"{incremental.cpu:.2f}",
         mib(incremental.peak_rss)],
        ["full: --no-cache", f"{full.wall:.1f}", f"{full.cpu:.1f}", mib(full.peak_rss)],
    ]
    print_table(["run", "wall s", "CPU s", "peak RSS"], rows)
    print(f"incremental / full wall time: {incremental.wall / full.wall:.3f} (load before: {load})")
    print(f"incremental / full CPU time: {incremental.cpu / full.cpu:.3f}")


if __name__ == "__main__":
    main()
