// Activations and pooling layers: no parameters, one ag:: call each.
#include <algorithm>

#include "convkit/nn/layers.hpp"
#include "core/check.hpp"

namespace convkit::nn {

using convkit::detail::require;

ag::Variable activate(Act kind, const ag::Variable& x, double negative_slope) {
  switch (kind) {
    case Act::None: return x;
    case Act::ReLU: return ag::relu(x);
    case Act::ReLU6: return ag::relu6(x);
    case Act::LeakyReLU: return ag::leaky_relu(x, negative_slope);
    case Act::Sigmoid: return ag::sigmoid(x);
    case Act::Hardsigmoid: return ag::hardsigmoid(x);
    case Act::Hardswish: return ag::hardswish(x);
    case Act::SiLU: return ag::silu(x);
    case Act::Tanh: return ag::tanh(x);
  }
  return x;
}

const char* act_name(Act kind) {
  switch (kind) {
    case Act::None: return "Identity";
    case Act::ReLU: return "ReLU";
    case Act::ReLU6: return "ReLU6";
    case Act::LeakyReLU: return "LeakyReLU";
    case Act::Sigmoid: return "Sigmoid";
    case Act::Hardsigmoid: return "Hardsigmoid";
    case Act::Hardswish: return "Hardswish";
    case Act::SiLU: return "SiLU";
    case Act::Tanh: return "Tanh";
  }
  return "?";
}

namespace {

ag::Pool2dOptions pool_options(const char* layer, const PoolOpts& o) {
  auto check = [&](const char* what, const std::vector<std::int64_t>& v, std::int64_t min) {
    require(v.size() <= 2 && (v.size() >= 1 || std::string(what) == "stride"),
            "{}: {} needs 1 or 2 values, got {}", layer, what, v.size());
    for (std::int64_t s : v) require(s >= min, "{}: {} must be >= {}, got {}", layer, what, min, s);
  };
  check("kernel", o.kernel.v, 1);
  check("stride", o.stride, 1);
  check("padding", o.padding.v, 0);
  check("dilation", o.dilation.v, 1);
  return ag::Pool2dOptions{.kernel = o.kernel.v,
                           .stride = o.stride,
                           .padding = o.padding.v,
                           .dilation = o.dilation.v,
                           .ceil_mode = o.ceil_mode,
                           .count_include_pad = o.count_include_pad};
}

/// A pooling window per dimension (one given value stands for both).
Geometry pool_geometry(const ag::Pool2dOptions& o) {
  auto at = [](const std::vector<std::int64_t>& v, std::size_t d) {
    return v.size() == 1 ? v[0] : v[d];
  };
  Geometry g;
  for (std::size_t d = 0; d < 2; ++d) {
    g.kernel.push_back(at(o.kernel, d));
    g.stride.push_back(o.stride.empty() ? at(o.kernel, d) : at(o.stride, d));
    g.dilation.push_back(at(o.dilation, d));
  }
  return g;
}

/// Adaptive pooling's bins along one dimension: bin i is [floor(i*in/out), ceil((i+1)*in/out)).
void adaptive_bins(std::int64_t in, std::int64_t out, Geometry& g) {
  std::int64_t widest = 1, step = 1;
  for (std::int64_t i = 0; i < out; ++i) {
    const std::int64_t start = i * in / out, end = ((i + 1) * in + out - 1) / out;
    widest = std::max(widest, end - start);
    if (i + 1 < out) step = std::max(step, (i + 1) * in / out - start);
  }
  if (out == 1) step = widest;  // one bin: the step is the whole input
  g.kernel.push_back(widest);
  g.stride.push_back(step);
  g.dilation.push_back(1);
}

}  // namespace

MaxPool2d::MaxPool2d(const PoolOpts& options) : options_(pool_options("MaxPool2d", options)) {}
ag::Variable MaxPool2d::forward(const ag::Variable& x) { return ag::max_pool2d(x, options_); }
std::optional<Geometry> MaxPool2d::geometry(const Shape&) const { return pool_geometry(options_); }

AvgPool2d::AvgPool2d(const PoolOpts& options) : options_(pool_options("AvgPool2d", options)) {}
ag::Variable AvgPool2d::forward(const ag::Variable& x) { return ag::avg_pool2d(x, options_); }
std::optional<Geometry> AvgPool2d::geometry(const Shape&) const { return pool_geometry(options_); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::int64_t oh, std::int64_t ow)
    : oh_(oh), ow_(ow < 0 ? oh : ow) {
  require(oh_ > 0 && ow_ > 0, "AdaptiveAvgPool2d: output size must be > 0, got ({}, {})", oh, ow);
}
ag::Variable AdaptiveAvgPool2d::forward(const ag::Variable& x) {
  return ag::adaptive_avg_pool2d(x, oh_, ow_);
}
std::optional<Geometry> AdaptiveAvgPool2d::geometry(const Shape& in) const {
  if (in.rank() != 4) return std::nullopt;  // forward refuses it anyway
  Geometry g;
  adaptive_bins(in[2], oh_, g);
  adaptive_bins(in[3], ow_, g);
  return g;
}

}  // namespace convkit::nn
