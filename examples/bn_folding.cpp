// Folds every BatchNorm of a MobileNetV2 into the convolution before it (nn::fuse) and shows
// that the eval logits do not change while parameters, buffers and latency go down.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "convkit/convkit.hpp"
#include "convkit/nn/nn.hpp"

using namespace convkit;

namespace {

// Best of 3 eval forwards after a warm-up, in milliseconds.
double best_ms(nn::Module& model, const ag::Variable& x) {
  model(x);
  double best = 1e300;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model(x);
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  nn::manual_seed(1);
  nn::MobileNetV2 model({.width = 0.35, .num_classes = 10, .torchvision_init = false});
  // Give every BatchNorm a non-trivial scale and shift, then let a few training-mode batches
  // move its running statistics away from (0, 1), as training would.
  std::uint64_t seed = 100;
  for (auto& [path, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
      bn->weight.set_value(Tensor::uniform(bn->weight.shape(), 0.5, 1.5, ++seed));
      bn->bias.set_value(Tensor::uniform(bn->bias.shape(), -0.3, 0.3, ++seed));
    }
  ag::NoGradGuard no_grad;
  model.train();
  for (int i = 0; i < 3; ++i) model(ag::Variable(Tensor::uniform({4, 3, 32, 32}, -1, 2, ++seed)));
  model.eval();

  const ag::Variable x(Tensor::uniform({2, 3, 32, 32}, -1, 1, 7));
  const Tensor before = model(x).value().clone();
  const nn::ParamCount params_before = nn::count_params(model);
  const std::size_t keys_before = model.state_dict().size();
  const double ms_before = best_ms(model, x);

  const nn::FuseReport report = nn::fuse(model);
  const Tensor after = model(x).value();
  const nn::ParamCount params_after = nn::count_params(model);
  const double ms_after = best_ms(model, x);

  double max_diff = 0, max_logit = 0;
  const std::vector<double> a = before.to_vector(), b = after.to_vector();
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
    max_logit = std::max(max_logit, std::abs(a[i]));
  }
  std::printf("MobileNetV2 width 0.35, input %s, eval\n", x.shape().str().c_str());
  std::printf("fused %lld conv+BatchNorm pairs (first: %s, last: %s), skipped %zu\n",
              static_cast<long long>(report.count()), report.fused.front().c_str(),
              report.fused.back().c_str(), report.skipped.size());
  std::printf("state_dict entries   %zu -> %zu\n", keys_before, model.state_dict().size());
  std::printf(
      "parameters           total %lld -> %lld (trainable %lld -> %lld, "
      "non-trainable %lld -> %lld)\n",
      static_cast<long long>(params_before.total), static_cast<long long>(params_after.total),
      static_cast<long long>(params_before.trainable),
      static_cast<long long>(params_after.trainable),
      static_cast<long long>(params_before.non_trainable),
      static_cast<long long>(params_after.non_trainable));
  std::printf("eval latency         %.2f ms -> %.2f ms (best of 3)\n", ms_before, ms_after);
  const double tolerance = 1e-4 * (1 + max_logit);
  std::printf("max |logit difference| %.3g (largest |logit| %.3g, tolerance %.3g)\n", max_diff,
              max_logit, tolerance);
  if (report.count() != 52 || !(max_diff <= tolerance)) {
    std::printf("FAILED: fusing changed the model's output or missed pairs\n");
    return 1;
  }
  return 0;
}
