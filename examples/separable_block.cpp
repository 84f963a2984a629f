// A MobileNetV2-sized depthwise-separable block through the functional API: forward and
// every backward pass, with shapes, parameter counts, MACs and timings.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convkit/convkit.hpp"

using namespace convkit;

namespace {

// Best of 5 calls after a warm-up (the first call also pays for first-touching its output),
// in milliseconds; `kernel` receives the kernel that ran.
template <typename Fn>
double best_ms(Fn&& fn, std::string& kernel) {
  fn();
  double best = 1e300;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  kernel = last_conv_kernel();
  return best;
}

// Runs one layer's four passes and prints what they produced and how long they took.
Tensor run_layer(const char* name, const Tensor& x, const Tensor& w, const Tensor& b,
                 const ConvOptions& o) {
  const ConvProblem p = ConvProblem::make(x, w, b, o);
  const Tensor y = conv_forward(p, x, w, b);
  const Tensor dy = Tensor::uniform(y.shape(), -1, 1, 99);  // stand-in upstream gradient
  const Tensor dx = conv_backward_data(p, dy, w);
  const Tensor dw = conv_backward_weights(p, x, dy);
  const Tensor db = conv_backward_bias(p, dy);
  std::string k_fwd, k_bwd_d, k_bwd_w, k_bias;
  const double fwd = best_ms([&] { (void)conv_forward(p, x, w, b); }, k_fwd);
  const double bwd_d = best_ms([&] { (void)conv_backward_data(p, dy, w); }, k_bwd_d);
  const double bwd_w = best_ms([&] { (void)conv_backward_weights(p, x, dy); }, k_bwd_w);
  const double bwd_b = best_ms([&] { (void)conv_backward_bias(p, dy); }, k_bias);
  const double gmacs = static_cast<double>(p.macs()) * 1e-9;
  std::printf("%-10s %s -> %s   params %lld   MACs %.1fM\n           problem %s\n", name,
              x.shape().str().c_str(), y.shape().str().c_str(),
              static_cast<long long>(w.numel() + b.numel()), gmacs * 1e3, p.str().c_str());
  std::printf(
      "           forward %8.2f ms (%6.2f GMAC/s)   backward-data %8.2f ms   "
      "backward-weights %8.2f ms   backward-bias %6.2f ms\n",
      fwd, gmacs / (fwd * 1e-3), bwd_d, bwd_w, bwd_b);
  std::printf("           kernels: %s, %s, %s\n", k_fwd.c_str(), k_bwd_d.c_str(), k_bwd_w.c_str());
  std::printf("           grads: diff_src %s  diff_wei %s  diff_bias %s\n",
              dx.shape().str().c_str(), dw.shape().str().c_str(), db.shape().str().c_str());
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  // MobileNetV2's first bottleneck sees 32 channels at 112x112; batch from the command line.
  const std::int64_t batch = argc > 1 ? std::atoll(argv[1]) : 4;
  const std::int64_t c = 32, k = 1, c_out = 16, hw = 112;
  std::printf(
      "convkit depthwise-separable block, batch %lld, input (%lld, %lld, %lld, %lld), "
      "float32, the fastest kernel per pass (CONVKIT_CONV_KERNEL=ref: the reference)\n\n",
      static_cast<long long>(batch), static_cast<long long>(batch), static_cast<long long>(c),
      static_cast<long long>(hw), static_cast<long long>(hw));
  try {
    const Tensor x = Tensor::uniform({batch, c, hw, hw}, -1, 1, 1);
    // Depthwise 3x3 with multiplier k: weight (k*C, 1, 3, 3), groups = C.
    const Tensor w_dw = Tensor::uniform({k * c, 1, 3, 3}, -0.3, 0.3, 2);
    const Tensor b_dw = Tensor::zeros({k * c});
    const Tensor h = run_layer("depthwise", x, w_dw, b_dw, {.padding = 1, .groups = c});
    // Pointwise 1x1 mixes channels: weight (C_out, k*C, 1, 1).
    const Tensor w_pw = Tensor::uniform({c_out, k * c, 1, 1}, -0.2, 0.2, 3);
    const Tensor b_pw = Tensor::zeros({c_out});
    run_layer("pointwise", h, w_pw, b_pw, {});
    const std::int64_t separable = w_dw.numel() + b_dw.numel() + w_pw.numel() + b_pw.numel();
    const std::int64_t dense = c_out * c * 9 + c_out;
    std::printf(
        "\nparameters: separable block %lld vs a dense 3x3 convolution %lld (%.1fx fewer)\n",
        static_cast<long long>(separable), static_cast<long long>(dense),
        static_cast<double>(dense) / static_cast<double>(separable));
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
