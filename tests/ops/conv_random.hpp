// Random valid convolution problems for property tests (gradcheck, adjoint, kernel sweeps).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "convkit/ops/conv.hpp"

namespace convkit::test {

/// How many random problems a sweep runs: `ci` by default, `full` when the environment sets
/// CONVKIT_FULL_SWEEP (README: the full-size run).
inline int sweep_size(int ci, int full) { return std::getenv("CONVKIT_FULL_SWEEP") ? full : ci; }

/// A random problem together with the options that built it.
struct RandomConv {
  ConvProblem p;
  ConvOptions options;
  std::string describe() const { return p.str(); }
};

/// Draws small problems covering every option: 1-3-D, groups incl. depthwise with
/// multiplier, stride up to 3 (also larger than the kernel), dilation up to 3, explicit
/// asymmetric / same / valid padding, every padding mode, transposed with output_padding,
/// channels-last, bias, batch 1-3, sizes down to 1. Invalid draws are redrawn.
/// `max_elems` bounds the larger of src and dst element counts.
inline RandomConv random_conv(std::mt19937_64& rng, DType dtype, std::int64_t max_elems) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  for (;;) {
    const int nd = static_cast<int>(pick(1, 10) <= 2 ? 1 : pick(1, 10) <= 8 ? 2 : 3);
    const bool transposed = pick(0, 5) == 0;
    const std::int64_t g = pick(1, 3);
    const bool depthwise = pick(0, 3) == 0;
    const std::int64_t ic = depthwise ? pick(1, 5) : g * pick(1, 3);
    const std::int64_t groups = depthwise ? ic : g;
    const std::int64_t oc = depthwise ? ic * pick(1, 3) : g * pick(1, 3);
    ConvOptions o;
    o.groups = groups;
    o.stride.clear();
    o.dilation.clear();
    o.output_padding.clear();
    std::vector<std::int64_t> src{pick(1, 3), ic}, wei{transposed ? ic : oc, transposed ? oc / groups : ic / groups};
    std::vector<std::int64_t> pb, pa;
    for (int i = 0; i < nd; ++i) {
      src.push_back(pick(1, nd == 3 ? 4 : 7));
      wei.push_back(pick(1, nd == 3 ? 3 : 4));
      o.stride.push_back(pick(1, 10) <= 6 ? 1 : pick(2, 3));
      o.dilation.push_back(pick(1, 10) <= 7 ? 1 : pick(2, 3));
      pb.push_back(pick(0, 2));
      pa.push_back(pick(0, 10) <= 6 ? pb.back() : pick(0, 3));
      o.output_padding.push_back(
          transposed ? pick(0, std::max(o.stride.back(), o.dilation.back()) - 1) : 0);
    }
    const auto kind = pick(0, 9);
    o.padding = kind == 0 && !transposed ? Padding::same()
              : kind == 1                ? Padding::valid()
                                         : Padding::asymmetric(pb, pa);
    if (!transposed && pick(0, 3) == 0)
      o.padding_mode = static_cast<PaddingMode>(pick(1, 3));
    const bool bias = pick(0, 1) == 1;
    const auto format = nd >= 1 && pick(0, 3) == 0 ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    try {
      RandomConv r{ConvProblem::make(Shape(std::span<const std::int64_t>(src)),
                                     Shape(std::span<const std::int64_t>(wei)),
                                     bias ? std::optional(Shape{oc}) : std::nullopt, o, transposed,
                                     dtype, format),
                   o};
      if (std::max(r.p.src_shape().numel(), r.p.dst_shape().numel()) <= max_elems) return r;
    } catch (const InvalidArgument&) {
      // Some draws are invalid (kernel larger than the padded input, ...): draw again.
    }
  }
}

/// Random tensors for the three roles of a problem, in the problem's layout.
inline Tensor random_src(const ConvProblem& p, std::uint64_t seed) {
  return Tensor::uniform(p.src_shape(), -1, 1, seed, p.dtype, p.format);
}
inline Tensor random_wei(const ConvProblem& p, std::uint64_t seed) {
  return Tensor::uniform(p.wei_shape(), -1, 1, seed, p.dtype);
}
inline Tensor random_dst(const ConvProblem& p, std::uint64_t seed) {
  return Tensor::uniform(p.dst_shape(), -1, 1, seed, p.dtype, p.format);
}
inline Tensor random_bias(const ConvProblem& p, std::uint64_t seed) {
  return p.has_bias ? Tensor::uniform(p.bias_shape(), -1, 1, seed, p.dtype) : Tensor{};
}

}  // namespace convkit::test
