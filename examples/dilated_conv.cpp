// Dilated convolution as a layer option: three 3x3 convolutions with dilation 1, 2, 4 keep
// the image size (padding = dilation) and see 15x15 pixels, where plain ones see 7x7, for the
// same parameters and multiply-adds; the summary's receptive-field column shows it.
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;

std::shared_ptr<nn::Sequential> stack(std::int64_t d1, std::int64_t d2, std::int64_t d3) {
  auto net = std::make_shared<nn::Sequential>();
  for (std::int64_t d : {d1, d2, d3}) {
    net->push_back(std::make_shared<nn::Conv2d>(
        nn::ConvOpts{.in = 8, .out = 8, .kernel = 3, .padding = d, .dilation = d}));
    net->push_back(std::make_shared<nn::ReLU>());
  }
  return net;
}

int main() {
  auto plain = stack(1, 1, 1), dilated = stack(1, 2, 4);
  const nn::Summary a = nn::summary(*plain, {1, 8, 32, 32});
  const nn::Summary b = nn::summary(*dilated, {1, 8, 32, 32});
  std::printf("dilation 1, 1, 1:\n%s\ndilation 1, 2, 4:\n%s\n", a.str().c_str(), b.str().c_str());
  const auto rf_plain = a.rows.back().receptive_field, rf_dilated = b.rows.back().receptive_field;
  std::printf("receptive field: %lldx%lld plain, %lldx%lld dilated; output %s for input "
              "[1, 8, 32, 32]; same parameters (%lld) and MACs (%lld)\n",
              static_cast<long long>(rf_plain[0]), static_cast<long long>(rf_plain[1]),
              static_cast<long long>(rf_dilated[0]), static_cast<long long>(rf_dilated[1]),
              b.rows.back().output.str().c_str(), static_cast<long long>(b.count.total),
              static_cast<long long>(b.total_macs));

  // Dilation works in training like any option: one backward pass reaches every weight.
  ag::Variable y = (*dilated)(ag::Variable(Tensor::uniform({2, 8, 32, 32}, -1, 1, 3)));
  ag::sum(y).backward();
  bool grads = true;
  for (const auto& p : dilated->parameters()) grads = grads && p.grad().defined();

  const bool ok = rf_plain == std::vector<std::int64_t>{7, 7} &&
                  rf_dilated == std::vector<std::int64_t>{15, 15} &&
                  b.rows.back().output == Shape({1, 8, 32, 32}) && a.count.total == b.count.total &&
                  a.total_macs == b.total_macs && grads;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
