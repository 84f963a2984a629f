// Random kernel-level convolution problems (ConvParams on raw buffers) for the list-driven
// differential test: depthwise, dense and grouped families with the awkward cases, in NCHW,
// channels-last and strided views with guard gaps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/conv/conv_params.hpp"

namespace convkit::test {

using I = std::int64_t;

/// The problem families the optimized kernels target.
enum class Family { Depthwise, Dense, Grouped };

inline const char* family_name(Family f) {
  return f == Family::Depthwise ? "depthwise" : f == Family::Dense ? "dense" : "grouped";
}

/// One buffer of a problem: `size` elements allocated, the logical tensor starting at
/// `offset`; elements outside the tensor (view gaps) must never be written.
struct Buffer {
  I size = 0, offset = 0;
};

/// A kernel-level problem with the buffers its three roles live in.
struct KernelProblem {
  kernels::ConvParams p;
  int nd = 2;  // spatial dimensions (1-3); the slots before 3 - nd are 1
  bool channels_last = false, view = false, bias = false;
  Buffer src, dst, wei;

  /// benchdnn-style line, enough to rebuild the problem by hand when a test fails.
  std::string str() const {
    const char* dn[3] = {"d", "h", "w"};
    std::string s = fmt::format("g{}mb{}ic{}", p.g, p.mb, p.g * p.icg);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("i{}{}", dn[i], p.in[i]);
    s += fmt::format("oc{}", p.g * p.ocg);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("o{}{}", dn[i], p.out[i]);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("k{}{}", dn[i], p.k[i]);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("s{}{}", dn[i], p.stride[i]);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("p{}{}", dn[i], p.pad[i]);
    for (int i = 3 - nd; i < 3; ++i) s += fmt::format("d{}{}", dn[i], p.dilation[i] - 1);
    if (channels_last) s += "_nhwc";
    if (view) s += "_view";
    return s;
  }
};

namespace detail {

// Lays out an (n, c, d, h, w) tensor: dense in NCDHW or NDHWC order, or as a view into a
// larger buffer (every extent grown by 0-2 and a start offset), filling `s` and `b`.
inline void lay_out(std::mt19937_64& rng, I n, I c, const std::array<I, 3>& sp, bool channels_last,
                    bool view, std::array<I, 5>& s, Buffer& b) {
  auto extra = [&] { return view ? std::uniform_int_distribution<I>(0, 2)(rng) : I{0}; };
  const std::array<I, 5> ext{n, c + extra(), sp[0] + extra(), sp[1] + extra(), sp[2] + extra()};
  // Order from innermost to outermost dimension.
  const std::array<int, 5> order = channels_last ? std::array<int, 5>{1, 4, 3, 2, 0}
                                                 : std::array<int, 5>{4, 3, 2, 1, 0};
  I stride = 1;
  for (int dim : order) {
    s[static_cast<std::size_t>(dim)] = stride;
    stride *= std::max<I>(ext[static_cast<std::size_t>(dim)], 1);
  }
  b.offset = view ? std::uniform_int_distribution<I>(1, 5)(rng) : 0;
  b.size = b.offset + stride;
}

}  // namespace detail

/// Draws a problem of family `f`. Sizes stay small enough that the reference runs a few
/// thousand problems in seconds, yet reach every case a kernel specializes on: kernels
/// 1-7 and large ones up to 31, stride 1-4 (also above the kernel), dilation 1-3, padding
/// up to and above the kernel, width or height 1, kernels as large as the padded input,
/// channel counts around SIMD widths, multipliers 1-4, batch 1-3, outputs cut short (as
/// transposed convolutions with output_padding produce).
inline KernelProblem random_kernel_problem(std::mt19937_64& rng, Family f) {
  auto pick = [&](I lo, I hi) { return std::uniform_int_distribution<I>(lo, hi)(rng); };
  auto chance = [&](int percent) { return pick(1, 100) <= percent; };
  static constexpr I kChannels[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33};
  for (;;) {
    KernelProblem kp;
    auto& p = kp.p;
    kp.nd = chance(25) ? 1 : chance(95) ? 2 : 3;
    p.mb = chance(70) ? 1 : pick(2, 3);
    if (f == Family::Depthwise) {
      p.g = kChannels[pick(0, std::size(kChannels) - 1)];
      p.icg = 1;
      p.ocg = chance(60) ? 1 : std::array<I, 4>{2, 3, 4, 4}[static_cast<std::size_t>(pick(0, 3))];
    } else if (f == Family::Dense) {
      p.g = 1;
      p.icg = chance(50) ? pick(1, 9) : kChannels[pick(0, std::size(kChannels) - 1)];
      p.ocg = chance(50) ? pick(1, 9) : kChannels[pick(0, std::size(kChannels) - 1)];
    } else {
      p.g = pick(2, 8);
      p.icg = pick(1, 6);
      p.ocg = pick(1, 6);
    }
    const bool pointwise = f != Family::Depthwise && chance(30);
    const bool large = f == Family::Depthwise && chance(20);
    for (int i = 3 - kp.nd; i < 3; ++i) {
      const auto u = static_cast<std::size_t>(i);
      if (pointwise) {
        p.k[u] = 1;
      } else if (large) {
        p.k[u] = std::array<I, 6>{9, 11, 13, 15, 17, 31}[static_cast<std::size_t>(pick(0, 5))];
      } else {
        // Depthwise kernels specialize on 3, 5 and 7: draw them more often.
        p.k[u] = chance(f == Family::Depthwise ? 80 : 60)
                     ? std::array<I, 3>{3, 5, 7}[static_cast<std::size_t>(pick(0, 2))]
                     : pick(1, 8);
      }
      if (i > 3 - kp.nd && chance(70) && !pointwise) p.k[u] = p.k[u - 1];  // mostly square
      // Depthwise kernels specialize on strides 1 and 2: draw 2 more often there.
      const bool dw = f == Family::Depthwise;
      p.stride[u] = pointwise && chance(70) ? 1 : chance(dw ? 45 : 55) ? 1 : chance(dw ? 80 : 60) ? 2 : pick(3, 4);
      if (large && chance(60)) p.stride[u] = 1;  // as large kernels are used
      if (i > 3 - kp.nd && chance(80)) p.stride[u] = p.stride[u - 1];
      p.dilation[u] = chance(80) || pointwise ? 1 : pick(2, 3);
      const I span = p.dilation[u] * (p.k[u] - 1) + 1;
      p.pad[u] = pointwise && chance(80) ? 0
               : chance(50)              ? span / 2
                                         : pick(0, std::min<I>(span + 1, 20));
      I in = chance(10) ? 1 : chance(40) ? pick(1, 8) : pick(8, kp.nd == 3 ? 10 : large ? 40 : 34);
      if (chance(8)) in = std::max<I>(1, span - p.pad[u]);  // kernel about as large as the input
      p.in[u] = in;
      const I pad_after = chance(70) ? p.pad[u] : pick(0, std::min<I>(span, 20));
      const I full = in + p.pad[u] + pad_after - span;
      if (full < 0) break;
      p.out[u] = full / p.stride[u] + 1;
      if (p.out[u] > 1 && chance(10)) p.out[u] -= 1;  // cut short, as transposed convs do
    }
    bool ok = true;
    for (int i = 3 - kp.nd; i < 3; ++i) ok = ok && p.out[static_cast<std::size_t>(i)] >= 1 && p.in[static_cast<std::size_t>(i)] >= 1;
    if (!ok) continue;
    // Keep the reference cheap: bound the multiply-adds of one pass.
    I macs = p.mb * p.g * p.ocg * p.icg;
    for (int i = 0; i < 3; ++i) macs *= p.out[static_cast<std::size_t>(i)] * p.k[static_cast<std::size_t>(i)];
    if (macs > 3'000'000) continue;
    kp.channels_last = chance(40);
    kp.view = chance(20);
    kp.bias = chance(50);
    detail::lay_out(rng, p.mb, p.g * p.icg, p.in, kp.channels_last, kp.view, p.src_s, kp.src);
    detail::lay_out(rng, p.mb, p.g * p.ocg, p.out, kp.channels_last, kp.view, p.dst_s, kp.dst);
    // Weights are dense (o, i, kd, kh, kw), as src/ops/ passes them.
    p.wei_s = {p.icg * p.k[0] * p.k[1] * p.k[2], p.k[0] * p.k[1] * p.k[2], p.k[1] * p.k[2], p.k[2], 1};
    kp.wei = {p.g * p.ocg * p.wei_s[0], 0};
    // src/ops/ leaves the strides of unused spatial slots (d in 2-D, d and h in 1-D) at 0;
    // kernels must not depend on them, so half the problems do the same.
    if (chance(50))
      for (int i = 0; i < 3 - kp.nd; ++i) {
        const auto slot = static_cast<std::size_t>(2 + i);
        p.src_s[slot] = p.dst_s[slot] = p.wei_s[slot] = 0;
      }
    return kp;
  }
}

}  // namespace convkit::test
