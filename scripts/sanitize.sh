#!/usr/bin/env bash
# The sanitizer stage of CI: the whole test suite under AddressSanitizer + UndefinedBehavior-
# Sanitizer (-fno-sanitize-recover=all: the first report fails the run), then the threading
# tests under ThreadSanitizer. Installs what is missing, like scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs="$(nproc)"

# Both builds compile the SIMD kernels for this machine's own target only (CONVKIT_NATIVE_SIMD):
# the sanitizers check the code this machine runs, and a build of every dispatched target took
# most of CI's time (docs/hardening.md).

# ASan + UBSan: every test but install.find_package, whose consumer project is built without
# the sanitizer runtime the installed library needs. Benchmarks are not built. -O1, as ASan's
# documentation advises: it builds 2-4x faster than -O3 under the sanitizers.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DCONVKIT_SANITIZE=ON -DCONVKIT_NATIVE_SIMD=ON \
  -DCONVKIT_BUILD_BENCH=OFF > /dev/null
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -E '^install\.find_package$'

# TSan: 8 threads sharing one model (tests/concurrency). OMP_NUM_THREADS=1 keeps libgomp, which
# is not built with TSan and would report its own barriers, out of the picture: what is checked
# is convkit's own code under the application's threads.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVKIT_TSAN=ON \
  -DCONVKIT_NATIVE_SIMD=ON -DCONVKIT_BUILD_BENCH=OFF -DCONVKIT_BUILD_TOOLS=OFF \
  -DCONVKIT_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build-tsan --target convkit_concurrency_tests
# setarch -R: without address-space randomization, as TSan's fixed shadow layout needs on
# kernels with high mmap entropy ("unexpected memory mapping" otherwise); where a sandbox
# forbids it, the tests run as they are.
no_aslr=()
if setarch "$(uname -m)" -R true 2>/dev/null; then no_aslr=(setarch "$(uname -m)" -R); fi
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
  "${no_aslr[@]}" build-tsan/tests/convkit_concurrency_tests
