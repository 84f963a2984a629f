#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds convkit with its tests, runs ctest.
# CONVKIT_FULL_SWEEP=1 runs the randomized sweeps at full size.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_BUILD_TESTS=ON > /dev/null
cmake --build build-test
ctest --test-dir build-test --output-on-failure -j "$(nproc)"
