// The GEMM library's own speed on the pointwise (1x1, stride 1, unpadded, ungrouped) problems
// of the peer run: the same products a 1x1 convolution is, called straight on OpenBLAS, in
// NCHW (one GEMM per image) and NHWC (one GEMM for the batch) form, as JSON lines.
//
//   gemm_peer --threads N [--min-time S] [--max-reps R] PROBLEMS.txt   (run.py's oneDNN file)
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "best_of.hpp"

namespace {

using peers::best_of;
using peers::Timing;

void run(const std::string& id, int mb, int ic, int oc, int hw, int threads, double min_time,
         int max_reps) {
  std::vector<float> x(static_cast<std::size_t>(mb) * ic * hw, 0.5f);
  std::vector<float> y(static_cast<std::size_t>(mb) * oc * hw, 0.25f);
  std::vector<float> w(static_cast<std::size_t>(oc) * ic, 0.125f);
  std::vector<float> dx(x.size()), dw(w.size());
  const auto xs = static_cast<std::size_t>(ic) * hw, ys = static_cast<std::size_t>(oc) * hw;
  const auto R = CblasRowMajor;
  const auto N = CblasNoTrans, T = CblasTrans;
  for (const char* format : {"nchw", "nhwc"}) {
    const bool cl = format[1] == 'h';
    for (const char* pass : {"fwd", "bwd_data", "bwd_weights"}) {
      const char p = pass[0] == 'f' ? '\0' : pass[4];  // '\0' forward, 'd' data, 'w' weights
      const auto once = [&] {
        if (cl) {  // rows are the mb*hw pixels, columns the channels
          const int m = mb * hw;
          if (p == '\0') cblas_sgemm(R, N, T, m, oc, ic, 1, x.data(), ic, w.data(), ic, 0, y.data(), oc);
          else if (p == 'd') cblas_sgemm(R, N, N, m, ic, oc, 1, y.data(), oc, w.data(), ic, 0, dx.data(), ic);
          else cblas_sgemm(R, T, N, oc, ic, m, 1, y.data(), oc, x.data(), ic, 0, dw.data(), ic);
          return;
        }
        for (int n = 0; n < mb; ++n) {  // per image: (channels x pixels) matrices
          float* xn = x.data() + n * xs;
          float* yn = y.data() + n * ys;
          if (p == '\0') cblas_sgemm(R, N, N, oc, hw, ic, 1, w.data(), ic, xn, hw, 0, yn, hw);
          else if (p == 'd') cblas_sgemm(R, T, N, ic, hw, oc, 1, w.data(), ic, yn, hw, 0, dx.data() + n * xs, hw);
          else cblas_sgemm(R, N, T, oc, ic, hw, 1, yn, hw, xn, hw, n == 0 ? 0.f : 1.f, dw.data(), ic);
        }
      };
      const Timing t = best_of(once, min_time, max_reps);
      std::printf("{\"impl\": \"gemm\", \"str\": \"%s\", \"format\": \"%s\", \"pass\": \"%s\", "
                  "\"threads\": %d, \"seconds\": %.6e, \"reps\": %d, \"kernel\": \"openblas\"}\n",
                  id.c_str(), format, pass, threads, t.best, t.reps);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, max_reps = 10;
  double min_time = 0.5;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--min-time" && i + 1 < argc) min_time = std::atof(argv[++i]);
    else if (arg == "--max-reps" && i + 1 < argc) max_reps = std::atoi(argv[++i]);
    else file = arg;
  }
  std::ifstream in(file);
  if (!in || threads < 1 || max_reps < 1) {
    std::fprintf(stderr, "usage: gemm_peer --threads N [--min-time S] [--max-reps R] FILE\n");
    return 2;
  }
  openblas_set_num_threads(threads);
  for (std::string line; std::getline(in, line);) {
    // "id nd mb ic oc g" then nd values each of in, out, k, stride, pad_l, pad_r, dilation.
    std::istringstream s(line);
    std::string id;
    int nd = 0, mb = 0, ic = 0, oc = 0, g = 0;
    if (!(s >> id >> nd >> mb >> ic >> oc >> g)) continue;
    std::vector<long> v(static_cast<std::size_t>(7 * nd));
    for (auto& x : v) s >> x;
    bool pointwise = g == 1;
    long hw = 1;
    for (int d = 0; d < nd; ++d) {
      const auto at = [&](int field) { return v[static_cast<std::size_t>(field * nd + d)]; };
      hw *= at(0);
      pointwise = pointwise && at(0) == at(1) && at(2) == 1 && at(3) == 1 && at(4) == 0 && at(5) == 0;
    }
    if (pointwise) run(id, mb, ic, oc, static_cast<int>(hw), threads, min_time, max_reps);
  }
  return 0;
}
