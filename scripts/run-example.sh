#!/usr/bin/env bash
# The main job: installs what is missing, builds convkit and runs the separable-block example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_BUILD_TESTS=OFF > /dev/null
cmake --build build --target separable_block
./build/examples/separable_block "$@"
