"""Compare `cpstat fetch` from the mock API with plain Python clients, against the ideal time.

Usage: fetch_vs_python.py [--users 100000] [--latency-ms 50] [--concurrency 4] [--page-size 100]
                          [--threads 4] [--repeat 3] [--skip-sequential] [--cpstat PATH]

Starts `cpstat mock-api` on 127.0.0.1 with the given latency per request,
then fetches every user back to back with:

- `cpstat fetch` (pages in flight: --concurrency);
- benches/python_fetch_client.py, sequential (requests, pyarrow);
- the same client with a pool of --threads threads.

The ideal wall time is pages / concurrency x latency: the latency alone,
with every slot busy. Each client runs --repeat times, the clients taking
turns, and the script prints the median wall and CPU time of each, the
range of its CPU times, cpstat's wall time against the ideal and its CPU
time against the sequential client's. A single run of cpstat varies by
about 10% in CPU time on a 2-core machine, so one run is not enough to
judge a ratio near its target. The mock server runs on the same cores, so
its CPU time competes with the clients'.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_util import DEFAULT_CPSTAT, REPO, check_cpstat, header, load_average, mib, print_table, run_measured

TOKEN = "mock-static-token"
ACCOUNT = "0b5f4a8e-7c1e-4c1e-9d7a-5e2f3c4d5e6f"


def start_mock(cpstat, users, latency_ms):
    """Start the mock API and return the process and its base URL (first output line)."""
    mock = subprocess.Popen(
        [str(cpstat), "mock-api", "--users", str(users), "--latency-ms", str(latency_ms), "--port", "0",
         "--account", ACCOUNT, "--day", "60"],
        stdout=subprocess.PIPE, text=True,
    )
    base = mock.stdout.readline().strip()
    if not base.startswith("http://127.0.0.1:"):
        mock.kill()
        sys.exit(f"error: the mock API printed {base!r} instead of its base URL")
    return mock, base


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="cpstat fetch --concurrency")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4, help="threads of the pooled Python client")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each client; the table gives medians")
    parser.add_argument("--skip-sequential", action="store_true",
                        help="skip the sequential client (pages x latency: 100 s at the defaults)")
    parser.add_argument("--cpstat", default=DEFAULT_CPSTAT)
    args = parser.parse_args()
    cpstat = check_cpstat(args.cpstat)
    header("cpstat fetch versus plain Python clients, mock API with latency")

    pages = math.ceil(args.users / args.page_size)
    ideal = pages / args.concurrency * args.latency_ms / 1000
    print(f"{args.users} users, {pages} pages of {args.page_size}, {args.latency_ms} ms per request; "
          f"ideal at concurrency {args.concurrency}: {ideal:.2f} s\n")
    env = dict(os.environ, CPSTAT_TOKEN=TOKEN)
    client = REPO / "benches" / "python_fetch_client.py"
    mock, base = start_mock(cpstat, args.users, args.latency_ms)
    cpstat_name = f"cpstat fetch --concurrency {args.concurrency}"
    clients = [
        (cpstat_name, lambda work: [
            cpstat, "fetch", "--quiet", "--account", ACCOUNT, "--base-url", base, "--store", work / "store",
            "--concurrency", args.concurrency, "--page-size", args.page_size]),
        (f"Python, {args.threads} threads", lambda work: [
            sys.executable, client, base, ACCOUNT, work / "pooled.parquet",
            "--threads", args.threads, "--page-size", args.page_size]),
    ]
    if not args.skip_sequential:
        clients.append(("Python, sequential", lambda work: [
            sys.executable, client, base, ACCOUNT, work / "sequential.parquet",
            "--page-size", args.page_size]))
    runs = {name: [] for name, _ in clients}
    try:
        for _ in range(args.repeat):
            for name, command in clients:
                with tempfile.TemporaryDirectory() as work:
                    runs[name].append(run_measured(command(Path(work)), env=env))
    finally:
        mock.terminate()
        mock.wait()

    def median(name, value):
        return statistics.median(value(run) for run in runs[name])

    rows = []
    for name in runs:
        wall = median(name, lambda run: run.wall)
        cpu = [run.cpu for run in runs[name]]
        rows.append([name, f"{wall:.2f}", f"{wall / ideal:.2f}x", f"{statistics.median(cpu):.2f}",
                     f"{min(cpu):.2f} to {max(cpu):.2f}", mib(max(run.peak_rss for run in runs[name]))])
    print(f"medians of {args.repeat} runs of each client, taking turns\n")
    print_table(["client", "wall s", "wall / ideal", "CPU s", "CPU s range", "peak RSS"], rows)
    print(f"cpstat wall / ideal: {median(cpstat_name, lambda run: run.wall) / ideal:.2f}x")
    if "Python, sequential" in runs:
        ratio = median(cpstat_name, lambda run: run.cpu) / median("Python, sequential", lambda run: run.cpu)
        per_round = ", ".join(f"{ours.cpu / theirs.cpu:.3f}"
                              for ours, theirs in zip(runs[cpstat_name], runs["Python, sequential"]))
        print(f"cpstat CPU / sequential Python CPU: {ratio:.3f} (medians; each round: {per_round})")
    print(f"load average at end: {load_average()}")
    for name in runs:
        if name.startswith("Python"):
            print(f"{name}: {runs[name][-1].output.strip()}")


if __name__ == "__main__":
    main()
