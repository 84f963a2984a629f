#!/usr/bin/env bash
# The side-by-side peer run: builds the drivers, then times convkit, PyTorch, oneDNN (and
# OpenBLAS on the pointwise layers) on the same problems and thread counts, with the machine's
# copy bandwidth and FMA peak measured in the same run; prints the table and writes
# bench/results/peers-*.{md,json}. --quick: the first problem of each shape file, 2 reps.
#
#   bench/peers/run.sh [--quick] [--threads 1,2] [--rounds N] [--no-torch] [--no-onednn]
#                      [--ref-macs N] [SHAPE_FILE...]
#   (--rounds N: every driver runs N times in turn and keeps its best, so that a busy
#   neighbour on a shared machine slows one round rather than one peer)
#   (default shape files: bench/shapes/{mobilenet_v2_dw,replknet_dw,dw_misc,mobilenet_v2_pw}.txt)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
build="${CONVKIT_PEERS_BUILD:-$root/build-peers}"
threads=1,2
args=()
onednn=1
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick|--no-torch) args+=("$1") ;;
    --ref-macs) args+=(--ref-macs "$2"); shift ;;
    --rounds) args+=(--rounds "$2"); shift ;;
    --no-onednn) onednn=0 ;;
    --threads) threads="$2"; shift ;;
    --threads=*) threads="${1#--threads=}" ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
if [ ${#files[@]} -eq 0 ]; then
  files=(bench/shapes/mobilenet_v2_dw.txt bench/shapes/replknet_dw.txt bench/shapes/dw_misc.txt
         bench/shapes/mobilenet_v2_pw.txt)
fi

# convkit's driver comes from the main CMake build (bench/ only, no tests or examples).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_BUILD_BENCH=ON \
  -DCONVKIT_BUILD_TESTS=OFF -DCONVKIT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target convkit_peer >&2
# The machine limits and oneDNN's driver are built apart: oneDNN (libdnnl-dev) is a peer for
# benchmarks only and never part of the library's build.
mkdir -p "$build/peers"
g++ -O3 -march=native -fopenmp -o "$build/peers/machine_peak" bench/peers/machine_peak.cpp
onednn_args=()
if [ "$onednn" = 1 ]; then
  if [ -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then
    g++ -std=c++20 -O2 -fopenmp -o "$build/peers/onednn_peer" bench/peers/onednn_peer.cpp -ldnnl
    onednn_args=(--onednn-peer "$build/peers/onednn_peer")
  else
    echo "run.sh: oneDNN is not installed (apt-get install libdnnl-dev); running without it" >&2
  fi
fi
# OpenBLAS called directly: the pointwise layers' reference speed (libopenblas-dev).
if g++ -std=c++20 -O2 -o "$build/peers/gemm_peer" bench/peers/gemm_peer.cpp -lopenblas 2>/dev/null; then
  onednn_args+=(--gemm-peer "$build/peers/gemm_peer")
else
  echo "run.sh: OpenBLAS (libopenblas-dev) not found; running without the GEMM peer" >&2
fi
source scripts/openblas-core.sh "$build/bench/convkit_peer"
exec /usr/bin/python3 bench/peers/run.py --convkit-peer "$build/bench/convkit_peer" \
  --machine-peak "$build/peers/machine_peak" "${onednn_args[@]}" --threads "$threads" \
  --out bench/results "${args[@]}" "${files[@]}"
