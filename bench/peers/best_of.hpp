// The timing protocol every C++ peer driver shares (torch_peer.py follows it too): one
// warm-up call, then the best of at least one and up to max_reps timed calls, stopping once
// min_time has been spent. Only a warm-up longer than kOnlySampleFactor * min_time (2 s in
// full runs) is taken as the only sample, for passes so slow that one more call would cost
// more than it tells (PyTorch's 31x31 backward, oneDNN's GEMM fallback). A first call pays
// what later calls do not (fresh pages for its output, lazy set-up): taking every warm-up
// over min_time as the sample had convkit's public API at batch 32 NCHW reported at
// 200-250 ms per pass where every later call took 10 ms.
#pragma once

#include <algorithm>
#include <chrono>

namespace peers {

inline constexpr double kOnlySampleFactor = 10;

struct Timing {
  double best = 0;  // seconds
  int reps = 0;     // timed calls (1 where the warm-up was the only sample)
};

template <typename Fn>
Timing best_of(Fn&& fn, double min_time, int max_reps) {
  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  auto t0 = clock::now();
  fn();
  const double warm_up = seconds(clock::now() - t0);
  if (warm_up > kOnlySampleFactor * min_time) return {warm_up, 1};
  Timing t;
  double spent = 0;
  while (t.reps < max_reps && (t.reps == 0 || spent < min_time)) {
    t0 = clock::now();
    fn();
    const double s = seconds(clock::now() - t0);
    t.best = t.reps == 0 ? s : std::min(t.best, s);
    spent += s;
    ++t.reps;
  }
  return t;
}

}  // namespace peers
