#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) and prints libFuzzer's final
# statistics, the corpus size and, on a crash, the panic message. Needs
# cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags that it passes to rustc.
# Corpora are kept in fuzz/corpus/<target>, crashes in fuzz/artifacts/<target>.
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CPSTAT_FUZZ_TARGET_DIR:-$HOME/.cache/cpstat-fuzz-target}"
status=0

for target in decode_page retry_after; do
  mkdir -p "corpus/$target" "artifacts/$target"
  if [ "$target" = decode_page ] && [ -z "$(ls -A "corpus/$target")" ]; then
    cp ../data/quirky_page.json "corpus/$target/quirky_page.json"
  fi
  echo "==> fuzzing $target for ${seconds}s"
  log="artifacts/$target/last-run.log"
  if cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" > "$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$log" || true
  else
    status=1
    echo "$target FAILED; full log in fuzz/$log"
    grep -E -A2 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|Reproduce with' "$log" || tail -n 30 "$log"
  fi
  echo "corpus entries: $(ls "corpus/$target" | wc -l)"
done
exit "$status"
