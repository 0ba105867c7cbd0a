"""Measure how `cpstat analyze` grows with the rows of the store, on a log-log scale.

Usage: scaling.py [--base-users 6250] [--snapshots 52] [--every 1w] [--axis users|snapshots]
                  [--repeat N] [--cpstat PATH] [--work DIR]

Generates stores of 1x, 4x and 16x rows, by multiplying the users (default)
or the snapshots, and runs `cpstat analyze --no-cache` on each. Prints wall
time and peak RSS with log2 of each, and the slope of log(time) over
log(rows) from 1x: 1.0 is linear growth, below 1 is better than linear.
"""

import argparse
import math
import tempfile
from pathlib import Path

from bench_util import (
    DEFAULT_CPSTAT, DEFAULT_WORK, best_of, check_cpstat, generated_store, header, load_average, mib, print_table,
)

FACTORS = (1, 4, 16)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-users", type=int, default=6250)
    parser.add_argument("--snapshots", type=int, default=52)
    parser.add_argument("--every", default="1w")
    parser.add_argument("--axis", choices=("users", "snapshots"), default="users")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cpstat", default=DEFAULT_CPSTAT)
    parser.add_argument("--work", default=DEFAULT_WORK, type=Path)
    args = parser.parse_args()
    cpstat = check_cpstat(args.cpstat)
    header(f"cpstat analyze --no-cache at 1x, 4x and 16x rows (more {args.axis})")

    results = []
    for factor in FACTORS:
        users = args.base_users * (factor if args.axis == "users" else 1)
        snapshots = args.snapshots * (factor if args.axis == "snapshots" else 1)
        store = generated_store(cpstat, args.work, users, snapshots, args.every)
        load = load_average()
        with tempfile.TemporaryDirectory(dir=args.work) as out:
            run = best_of(args.repeat, [cpstat, "analyze", "--quiet", "--no-cache", "--store", store, "--out", out])
        results.append((factor, users, snapshots, run, load))
        print(f"{factor}x: {users} x {snapshots}: {run.wall:.1f} s, {mib(run.peak_rss)}", flush=True)

    base = results[0][3]
    rows = []
    for factor, users, snapshots, run, load in results:
        rows_count = users * snapshots
        slope_time = math.log(run.wall / base.wall) / math.log(factor) if factor > 1 else float("nan")
        slope_rss = math.log(run.peak_rss / base.peak_rss) / math.log(factor) if factor > 1 else float("nan")
        rows.append([
            f"{factor}x", f"{users:,} x {snapshots}", f"{rows_count:,}", f"{math.log2(rows_count):.2f}",
            f"{run.wall:.1f}", f"{math.log2(run.wall):.2f}", mib(run.peak_rss), f"{math.log2(run.peak_rss):.2f}",
            "-" if factor == 1 else f"{slope_time:.2f}", "-" if factor == 1 else f"{slope_rss:.2f}", load,
        ])
    print()
    print_table(["rows", "users x snapshots", "row count", "log2 rows", "wall s", "log2 wall", "peak RSS",
                 "log2 RSS bytes", "time slope from 1x", "memory slope from 1x", "load before"], rows)


if __name__ == "__main__":
    main()
