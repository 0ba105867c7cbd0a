#!/usr/bin/env bash
# The long reliability checks, at full count: 20 SIGKILLs each of fetch and
# analyze with the store read back after every kill (then read again by
# DuckDB), and 256 cases of the paging properties. `cargo test` runs the
# same tests with fewer cases. Usage: .ci/kill_loop.sh PYTHON
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python="${1:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cpstat-target}"
kills="${CPSTAT_KILL_LOOP_COUNT:-20}"
cases="${CPSTAT_PROPTEST_CASES:-256}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs one test binary, printing its summary lines, or its whole log when it fails.
run_test() {
  local log="$work/$1.log"
  if ! cargo test --test "$1" -- --nocapture > "$log" 2>&1; then
    cat "$log"
    return 1
  fi
  grep -E '^(kill loop|test |test result)' "$log"
}

echo "==> kill loop: $kills SIGKILLs each of fetch and analyze"
CPSTAT_KILL_LOOP_COUNT="$kills" CPSTAT_KILL_LOOP_STORE="$work/kill" run_test crash_safety
"$python" .ci/duckdb_store.py "$work/kill/store"

echo "==> paging properties: $cases cases"
CPSTAT_PROPTEST_CASES="$cases" run_test paging_properties
