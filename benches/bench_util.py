"""Shared helpers of the side-by-side benchmark scripts in benches/.

Each script runs every command as a child process and reads its wall time,
CPU time and peak resident memory from os.wait4, so the figures of cpstat,
DuckDB and the Python clients are measured the same way in one run.
"""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORK = Path(os.environ.get("CPSTAT_BENCH_WORK", "/root/.cache/cpstat-bench"))
DEFAULT_CPSTAT = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/cpstat-target")) / "release" / "cpstat"


@dataclass
class Measurement:
    """One finished child process: seconds of wall and CPU time, bytes of peak RSS."""

    wall: float
    user: float
    system: float
    peak_rss: int
    output: str
    failed: str = ""

    @property
    def cpu(self):
        return self.user + self.system


def run_measured(command, env=None, cwd=None):
    """Run a command to completion and measure it; raise when it fails.

    ru_maxrss of os.wait4 is the peak resident set of that one process, in
    KiB on Linux.
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(part) for part in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, cwd=cwd, text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    measurement = Measurement(wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024, output)
    if child.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-3:])
        measurement.failed = f"exit code {child.returncode}: {tail}"
        raise CommandFailed(f"{' '.join(map(str, command))} failed with {measurement.failed}", measurement)
    return measurement


class CommandFailed(RuntimeError):
    """A measured command that exited with a non-zero status, with its measurement."""

    def __init__(self, message, measurement):
        super().__init__(message)
        self.measurement = measurement


def best_of(repeats, command, env=None, cwd=None):
    """Run a command `repeats` times and return the run with the least wall time.

    A command that fails returns its Measurement with `failed` set to the
    last lines of its output, so that one failing engine does not end the
    comparison.
    """
    runs = []
    for _ in range(repeats):
        try:
            runs.append(run_measured(command, env=env, cwd=cwd))
        except CommandFailed as failure:
            return failure.measurement
    return min(runs, key=lambda run: run.wall)


def load_average():
    """Return the 1, 5 and 15 minute load averages as text."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine():
    """Describe the processor model, cores and memory, from lscpu and /proc/meminfo."""
    model = "unknown processor"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    memory_kib = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return f"{model}, {os.cpu_count()} cores, {memory_kib / 2**20:.1f} GiB RAM"


def header(title):
    """Print the title, the date, the machine and the load before a benchmark."""
    print(f"# {title}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: {machine()}")
    print(f"load average at start (1, 5, 15 min): {load_average()}")
    print()


def gib(size):
    return f"{size / 2**30:.2f} GiB"


def mib(size):
    return f"{size / 2**20:.0f} MiB"


def check_cpstat(path):
    path = Path(path)
    if not path.is_file():
        sys.exit(f"error: {path} not found; build it with `cargo build --release` or pass --cpstat")
    return path


def generated_store(cpstat, work, users, snapshots, every):
    """Return the store of `cpstat gen` with these sizes under `work`, generating it once.

    A store whose folder exists without the `complete` marker is generated again.
    """
    store = Path(work) / f"store-{users}x{snapshots}-{every}"
    marker = store / "complete"
    if marker.is_file():
        return store
    if store.exists():
        shutil.rmtree(store)
    print(f"generating {users} users x {snapshots} snapshots every {every} into {store} ...", flush=True)
    run = run_measured([
        cpstat, "gen", "--users", users, "--snapshots", snapshots, "--every", every, "--out", store,
    ])
    print(f"  {run.output.strip()} (peak RSS {mib(run.peak_rss)}, load {load_average()})", flush=True)
    marker.write_text(run.output, encoding="utf-8")
    return store


def store_bytes(store):
    """Return the bytes of the snapshot files of a store."""
    return sum(path.stat().st_size for path in (Path(store) / "users_summary").rglob("*.parquet"))


def print_table(columns, rows):
    """Print a Markdown table."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()
