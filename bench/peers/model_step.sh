#!/usr/bin/env bash
# One MobileNetV2 training step (batch 8, 224x224, width 1.0 by default) timed with convkit and
# with PyTorch (Debian's python3-torch) side by side, NCHW and channels-last, 1 and 2 threads;
# prints a Markdown table and writes it to bench/results/model-step-<UTC>.md.
#
#   bench/peers/model_step.sh [--threads 1,2] [--batch 8] [--size 224] [--width 1.0] [--steps 6]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
build="${CONVKIT_PEERS_BUILD:-$root/build-peers}"
threads=1,2
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift ;;
    --batch|--size|--width|--steps) args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "model_step.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_BUILD_BENCH=ON \
  -DCONVKIT_BUILD_TESTS=OFF -DCONVKIT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target model_step >&2
source scripts/openblas-core.sh "$build/bench/model_step"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out="bench/results/model-step-$stamp.md"
{
  echo "# MobileNetV2 training step, convkit vs PyTorch ($stamp)"
  echo
  echo "$(nproc) CPUs; best of the steps after a warm-up step; forward includes the loss,"
  echo "update is the SGD-momentum step. \`x torch\` = PyTorch's best / convkit's best."
  echo
  echo "| threads | layout | convkit ms | (fwd / bwd / update) | torch ms | (fwd / bwd / update) | x torch |"
  echo "|---:|---|---:|---|---:|---|---:|"
  for t in ${threads//,/ }; do
    for f in nchw nhwc; do
      c=$("$build/bench/model_step" --threads "$t" --format "$f" "${args[@]}")
      p=$(/usr/bin/python3 bench/peers/torch_model_step.py --threads "$t" --format "$f" "${args[@]}")
      /usr/bin/python3 - "$c" "$p" <<'PY'
import json, sys
c, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ms = lambda r, k: r[k] * 1e3
split = lambda r: f"{ms(r,'forward'):.0f} / {ms(r,'backward'):.0f} / {ms(r,'update'):.1f}"
print(f"| {c['threads']} | {c['format']} | {ms(c,'best'):.1f} | {split(c)} | {ms(p,'best'):.1f} | {split(p)} | {p['best']/c['best']:.2f}x |")
PY
    done
  done
} | tee "$out"
echo "wrote $out" >&2
