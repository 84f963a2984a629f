// PyTorch's default parameter initializations, drawn from nn::next_seed() (internal).
#pragma once

#include <cmath>

#include "convkit/core/tensor.hpp"
#include "convkit/nn/module.hpp"

namespace convkit::nn::init {

/// kaiming_uniform_(a = sqrt(5)) as PyTorch's Conv and Linear use it: bound
/// sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(fan_in). Their biases use the same bound.
inline Tensor default_uniform(const Shape& shape, std::int64_t fan_in) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return Tensor::uniform(shape, -bound, bound, next_seed());
}

/// kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, sqrt(2 / fan_out)).
inline Tensor kaiming_normal_fan_out(const Shape& shape, std::int64_t fan_out) {
  return Tensor::normal(shape, 0.0, std::sqrt(2.0 / static_cast<double>(fan_out)), next_seed());
}

}  // namespace convkit::nn::init
