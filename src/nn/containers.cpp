// Sequential, Residual and Dropout (the module that keeps its own RNG state).
#include "convkit/nn/layers.hpp"
#include "core/check.hpp"

namespace convkit::nn {

using convkit::detail::require;

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

Module& Sequential::operator[](std::size_t i) const {
  require(i < size(), "Sequential: index {} out of range for {} modules", i, size());
  return *children()[i].second;
}

ag::Variable Sequential::forward(const ag::Variable& x) {
  ag::Variable y = x;
  for (const auto& [name, child] : children()) y = (*child)(y);
  return y;
}

Residual::Residual(std::shared_ptr<Module> b) : body(register_module("body", std::move(b))) {}

ag::Variable Residual::forward(const ag::Variable& x) { return ag::add(x, (*body)(x)); }

Dropout::Dropout(double p, std::uint64_t seed) : p_(p), state_(seed) {
  require(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got {}", p);
}

ag::Variable Dropout::forward(const ag::Variable& x) {
  if (!is_training() || p_ == 0) return x;
  state_ += 0x9E3779B97F4A7C15ull;  // a new mask per call, reproducible from the seed
  return ag::dropout(x, p_, true, state_);
}

}  // namespace convkit::nn
