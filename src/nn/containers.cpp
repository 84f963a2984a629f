// Sequential, Residual and Dropout (the module that keeps its own RNG state).
#include <set>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

std::shared_ptr<Module> Sequential::at(std::size_t i) const {
  require(i < size(), "Sequential: index {} out of range for {} modules", i, size());
  return children()[i].second;
}

void Sequential::replace(std::size_t i, std::shared_ptr<Module> module) {
  require(i < size(), "Sequential: index {} out of range for {} modules", i, size());
  replace_child(children()[i].first, std::move(module));
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

namespace {

// A Dropout's name in the state list: its module path, "(root)" for the model itself.
std::string rng_name(const std::string& path) { return path.empty() ? "(root)" : path; }

}  // namespace

std::vector<std::pair<std::string, std::uint64_t>> dropout_rng_states(Module& model) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [path, m] : model.named_modules())
    if (const auto* d = dynamic_cast<const Dropout*>(m))
      out.emplace_back(rng_name(path), d->rng_state());
  return out;
}

void load_dropout_rng_states(Module& model,
                             const std::vector<std::pair<std::string, std::uint64_t>>& states) {
  std::vector<std::pair<std::string, Dropout*>> dropouts;
  for (const auto& [path, m] : model.named_modules())
    if (auto* d = dynamic_cast<Dropout*>(m)) dropouts.emplace_back(rng_name(path), d);
  std::set<std::string> given, known, missing, unknown;
  for (const auto& [name, state] : states) given.insert(name);
  for (const auto& [name, d] : dropouts) {
    known.insert(name);
    if (!given.count(name)) missing.insert(name);
  }
  for (const auto& name : given)
    if (!known.count(name)) unknown.insert(name);
  require(missing.empty() && unknown.empty(),
          "load_dropout_rng_states: no state for Dropout [{}]; states for no Dropout [{}]",
          fmt::join(missing, ", "), fmt::join(unknown, ", "));
  for (const auto& [name, state] : states)
    for (auto& [path, d] : dropouts)
      if (path == name) d->set_rng_state(state);
}

}  // namespace convkit::nn
