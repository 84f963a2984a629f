#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang and runs each for a while on a copy of its
# seed corpus; fails when any target finds a crash, a leak, a timeout or an allocation over
# the limits. Usage: scripts/fuzz.sh [seconds-per-target]   (default 30, for CI)
# FUZZ_TARGETS="safetensors datasets" runs only those; FUZZ_BUILD_JOBS sets the build's -j.
# Crash reproducers land in build-fuzz/fuzz-run/<target>/ (see docs/hardening.md).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
bash scripts/install-deps.sh clang-14 libclang-rt-14-dev libomp-14-dev

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVKIT_BUILD_FUZZ=ON -DCONVKIT_NATIVE_SIMD=ON -DCONVKIT_BUILD_TESTS=OFF \
  -DCONVKIT_BUILD_TOOLS=OFF -DCONVKIT_BUILD_BENCH=OFF -DCONVKIT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build-fuzz -j "${FUZZ_BUILD_JOBS:-$(nproc)}"

# One thread: runs are reproducible and the executions per second are comparable.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
targets=${FUZZ_TARGETS:-$(cd fuzz && ls ./*_fuzz.cpp | sed 's|^\./||; s|_fuzz\.cpp$||')}
failed=()
for t in $targets; do
  run=build-fuzz/fuzz-run/$t
  rm -rf "$run" && mkdir -p "$run/corpus"
  cp fuzz/corpus/"$t"/* "$run/corpus/"
  echo "== fuzz_$t for ${seconds}s"
  # -timeout: one input running 10 s is a hang; the memory limits make a huge allocation
  # (a size taken from the input) a crash instead of a slow run.
  if build-fuzz/fuzz/fuzz_"$t" "$run/corpus" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
      -artifact_prefix="$run/" > "$run/log.txt" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)" \
      "$run/log.txt" | tr '\n' ' '
    echo "corpus: $(ls "$run/corpus" | wc -l) files"
  else
    failed+=("$t")
    tail -n 60 "$run/log.txt"
    echo "fuzz_$t FAILED: reproducer in $run/ (crash-*, leak-*, timeout-*, oom-*)"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}"
  exit 1
fi
echo "fuzzing passed: $(echo $targets | wc -w) targets, ${seconds}s each"
