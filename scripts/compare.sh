#!/usr/bin/env bash
# The main job: installs what is missing, builds the convkit command and runs `convkit compare`
# on the embedded data set: a standard CNN, its depthwise-separable twin and a MobileNetV2
# trained side by side, a table on the terminal and report.html. Arguments go to compare
# (./build/bin/convkit compare --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_BUILD_TESTS=OFF \
  -DCONVKIT_BUILD_BENCH=OFF -DCONVKIT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build --target convkit_cli
source scripts/openblas-core.sh ./build/bin/convkit
./build/bin/convkit compare "$@"
