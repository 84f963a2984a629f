// Sparse convolution done right: global magnitude pruning of a small CNN, fine-tuning with
// the pruned weights staying exactly zero, the per-layer sparsity report, inference that
// skips the zeros, PyTorch's weight_orig/weight_mask export, and remove() to make the pruning
// permanent.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;

int main() {
  nn::manual_seed(3);
  nn::Sequential net;
  net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 3, .out = 16, .kernel = 3, .padding = 1}));
  net.push_back(std::make_shared<nn::ReLU>());
  net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 16, .out = 32, .kernel = 3, .stride = 2, .padding = 1}));
  net.push_back(std::make_shared<nn::ReLU>());
  net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 32, .out = 10, .kernel = 1}));
  net.push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net.push_back(std::make_shared<nn::Flatten>());

  nn::prune::global_magnitude(nn::prune::weights_of(net), 0.8);
  std::printf("after global magnitude pruning of 80%%:\n%s\n",
              nn::prune::format_sparsity(nn::prune::sparsity_report(net)).c_str());

  // Fine-tune with momentum and weight decay: the masked entries stay exactly zero.
  const io::Dataset data = io::make_shapes({.train = 64, .test = 1, .image_size = 16}).train;
  optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    ag::Variable loss = ag::cross_entropy(net(ag::Variable(data.images)), data.labels);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.value().get_flat(0);
  }
  const auto rows = nn::prune::sparsity_report(net);
  std::printf("after 30 fine-tuning steps (loss %.3f -> %.3f):\n%s\n", first, last,
              nn::prune::format_sparsity(rows).c_str());

  // Inference (no gradient recorded) of a pruned layer skips the zero weights once its
  // sparsity passes the measured crossover; timings are printed, not asserted.
  nn::Conv2d big({.in = 64, .out = 64, .kernel = 3, .padding = 1});
  nn::prune::magnitude(big, "weight", 0.9);
  const ag::Variable x(Tensor::uniform({4, 64, 28, 28}, -1, 1, 5));
  auto best_ms = [&](Tensor* out) {
    ag::NoGradGuard no_grad;
    double best = 1e300;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      *out = big(x).value();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  Tensor y_sparse, y_dense;
  const double t_sparse = best_ms(&y_sparse);
  const std::string kernel = last_conv_kernel();
  nn::prune::set_sparse_inference(false);
  const double t_dense = best_ms(&y_dense);
  nn::prune::set_sparse_inference(true);
  const CloseResult same = allclose(y_sparse, y_dense, 1e-4, 1e-5);
  std::printf("3x3 64->64 at 28x28, batch 4, 90%% pruned: sparse %.2f ms (%s), dense %.2f ms "
              "(%.1fx); outputs agree: %s\n",
              t_sparse, kernel.c_str(), t_dense, t_dense / t_sparse, same.ok ? "yes" : "no");

  std::printf("PyTorch naming:");
  for (const auto& [key, t] : net.state_dict({.pytorch_prune_names = true}))
    if (key.rfind("0.", 0) == 0) std::printf(" %s", key.c_str());
  std::printf("\n");
  nn::prune::remove_all(net);
  std::printf("after remove_all:");
  for (const auto& [key, t] : net.state_dict())
    if (key.rfind("0.", 0) == 0) std::printf(" %s", key.c_str());
  const auto permanent = nn::prune::sparsity_report(net).back();
  std::printf("\nzeros kept: %lld of %lld\n", static_cast<long long>(permanent.zeros),
              static_cast<long long>(permanent.numel));
  const bool ok = rows.back().zeros == static_cast<std::int64_t>(0.8 * static_cast<double>(rows.back().numel) + 0.5) &&
                  permanent.zeros == rows.back().zeros && last < first && same.ok &&
                  kernel.rfind("conv_sparse", 0) == 0;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
