// The machine's limits for the peer table, measured with the same thread count: copy
// bandwidth (STREAM-like copy of arrays far larger than the last-level cache) and FMA peak
// (independent register-resident FMA chains). Prints one JSON object.
//
//   machine_peak --threads N [--mib M]      (built by run.sh: g++ -O3 -march=native -fopenmp)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best GB/s of b[i] = a[i] over `reps` passes; bytes counted as STREAM does (read + write).
double copy_bandwidth(std::size_t n, int reps) {
  float* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  float* b = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  const auto count = static_cast<long>(n);
  // First touch with the same static split as the copy, so pages sit near their thread.
#pragma omp parallel for schedule(static)
  for (long i = 0; i < count; ++i) {
    a[i] = static_cast<float>(i % 7);
    b[i] = 0;
  }
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; ++i) b[i] = a[i];
    best = std::min(best, now() - t0);
  }
  volatile float sink = b[n / 3];
  (void)sink;
  std::free(a);
  std::free(b);
  return 2.0 * static_cast<double>(n * sizeof(float)) / best / 1e9;
}

// FMA throughput of one thread: kChains independent accumulators hide the FMA latency
// (4-5 cycles x 2 ports needs 8-10 chains); all operands stay in registers.
double fma_gflops_one_thread(long iters) {
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int kLanes = 16;
  const auto set1 = [](float x) { return _mm512_set1_ps(x); };
  const auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  const auto sum = [](V v) {
    alignas(64) float f[16];
    _mm512_store_ps(f, v);
    float s = 0;
    for (const float x : f) s += x;
    return s;
  };
#elif defined(__FMA__)
  using V = __m256;
  constexpr int kLanes = 8;
  const auto set1 = [](float x) { return _mm256_set1_ps(x); };
  const auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  const auto sum = [](V v) {
    alignas(32) float f[8];
    _mm256_store_ps(f, v);
    float s = 0;
    for (const float x : f) s += x;
    return s;
  };
#else
  using V = float;
  constexpr int kLanes = 1;
  const auto set1 = [](float x) { return x; };
  const auto fma = [](V a, V b, V c) { return a * b + c; };
  const auto sum = [](V v) { return v; };
#endif
  constexpr int kChains = 12;
  V acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = set1(0.001f * static_cast<float>(c));
  const V m = set1(0.9999f), add = set1(1e-7f);
  const double t0 = now();
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, add);
  }
  const double t = now() - t0;
  float total = 0;
  for (int c = 0; c < kChains; ++c) total += sum(acc[c]);
  volatile float sink = total;
  (void)sink;
  return 2.0 * kLanes * kChains * static_cast<double>(iters) / t / 1e9;
}

double fma_peak(int reps) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    double total = 0;
#pragma omp parallel reduction(+ : total)
    total += fma_gflops_one_thread(20'000'000);
    best = std::max(best, total);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::size_t mib = 512;  // per array; far beyond any last-level cache here
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--mib") == 0) mib = std::strtoul(argv[i + 1], nullptr, 10);
  }
  omp_set_num_threads(std::max(threads, 1));
  const double copy = copy_bandwidth(mib * 1024 * 1024 / sizeof(float), 8);
  const double fma = fma_peak(3);
  std::printf("{\"threads\": %d, \"copy_gbs\": %.3f, \"fma_gflops\": %.3f, \"copy_mib\": %zu}\n",
              threads, copy, fma, mib);
  return 0;
}
