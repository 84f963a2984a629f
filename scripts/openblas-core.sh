# Sourced by scripts that time convkit (scripts/compare.sh, bench/peers/run.sh and
# model_step.sh) with a program linked to OpenBLAS as $1. OpenBLAS picks its kernels for the
# CPU when it loads, and Debian 12's 0.3.21 falls back to its SSE3 ones ("Prescott") on CPUs
# newer than itself: on a Xeon of family 6, model 207 with AVX-512, its sgemm then took
# 3.9-7x as long on MobileNetV2's pointwise products. In that case this exports
# OPENBLAS_CORETYPE for the vector unit the CPU has (SkylakeX with AVX-512, Haswell with
# AVX2) and says so. A value already set is kept.
openblas_banner="$(OPENBLAS_VERBOSE=2 "$1" --help 2>&1 || true)"  # "Core: <name>" on load
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [[ "$openblas_banner" == *"Core: Prescott"* ]]; then
  if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    echo "OpenBLAS fell back to its SSE3 kernels here: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" >&2
  fi
fi
