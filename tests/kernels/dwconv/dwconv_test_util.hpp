// Helpers of the depthwise kernel tests: buffers with view gaps, integer fills, exact checks.
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/conv/conv_list.hpp"
#include "kernels/kernel_problems.hpp"

namespace convkit::test {

inline constexpr float kSentinel = 1e30f;  // in view gaps: must survive every call

/// The tensor's elements in a buffer with view gaps: true where (n, c, h, w) lands.
inline std::vector<char> mask_of(const Buffer& b, I n, I c, const std::array<I, 3>& sp,
                                 const std::array<I, 5>& s) {
  std::vector<char> m(static_cast<std::size_t>(b.size), 0);
  for (I a = 0; a < n; ++a)
    for (I ch = 0; ch < c; ++ch)
      for (I h = 0; h < sp[1]; ++h)
        for (I w = 0; w < sp[2]; ++w)
          m[static_cast<std::size_t>(b.offset + a * s[0] + ch * s[1] + h * s[3] + w * s[4])] = 1;
  return m;
}

/// Small integers in the tensor (every partial sum exact), the sentinel in the gaps.
inline std::vector<float> filled(const std::vector<char>& mask, std::mt19937_64& rng) {
  std::vector<float> v(mask.size(), kSentinel);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (mask[i]) v[i] = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  return v;
}

/// NaN in the tensor (so an element a kernel never writes shows), the sentinel in the gaps.
inline std::vector<float> nan_with_gaps(const std::vector<char>& mask) {
  std::vector<float> v(mask.size(), NAN);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!mask[i]) v[i] = kSentinel;
  return v;
}

/// "" when got equals want on the tensor's elements and the gaps still hold the sentinel.
inline std::string check_exact(const std::vector<float>& got, const std::vector<float>& want,
                               const std::vector<char>& mask, const char* pass) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!mask[i] && got[i] != kSentinel)
      return fmt::format("{}: wrote into a view gap at {}", pass, i);
    if (mask[i] && !(got[i] == want[i]))
      return fmt::format("{}: element {} got {} want {}", pass, i, got[i], want[i]);
  }
  return "";
}

/// A 2-D depthwise problem written out by hand (the rare-shape tests).
struct DwShape {
  I g, ocg, ih, iw, kh, kw, sh, sw, ph, pw, dh, dw;
};

/// The batch-2 problem of shape s with bias, dense in NCHW or channels-last, symmetric
/// padding, output sizes from the conv formula.
inline KernelProblem dw_problem(const DwShape& s, bool channels_last, std::mt19937_64& rng) {
  KernelProblem kp;
  auto& p = kp.p;
  p.mb = 2;
  p.g = s.g;
  p.icg = 1;
  p.ocg = s.ocg;
  p.in = {1, s.ih, s.iw};
  p.k = {1, s.kh, s.kw};
  p.stride = {1, s.sh, s.sw};
  p.pad = {0, s.ph, s.pw};
  p.dilation = {1, s.dh, s.dw};
  p.out = {1, (s.ih + 2 * s.ph - s.dh * (s.kh - 1) - 1) / s.sh + 1,
           (s.iw + 2 * s.pw - s.dw * (s.kw - 1) - 1) / s.sw + 1};
  kp.bias = true;
  kp.channels_last = channels_last;
  detail::lay_out(rng, p.mb, p.g, p.in, channels_last, false, p.src_s, kp.src);
  detail::lay_out(rng, p.mb, p.g * p.ocg, p.out, channels_last, false, p.dst_s, kp.dst);
  p.wei_s = {s.kh * s.kw, s.kh * s.kw, 0, s.kw, 1};  // the d slot unused, as src/ops/ leaves it
  kp.wei = {p.g * p.ocg * p.wei_s[0], 0};
  return kp;
}

/// Runs the passes `kernel` implements (any of forward, backward-data and backward-weights)
/// and the reference's on kp with small-integer inputs; "" when every result is equal (every
/// partial sum is exact) and no view gap was written.
inline std::string compare_exact(const kernels::ConvKernel<float>& kernel,
                                 const kernels::ConvKernel<float>& ref, const KernelProblem& kp,
                                 std::mt19937_64& rng) {
  const auto& p = kp.p;
  const auto src_mask = mask_of(kp.src, p.mb, p.g, p.in, p.src_s);
  const auto dst_mask = mask_of(kp.dst, p.mb, p.g * p.ocg, p.out, p.dst_s);
  const auto src = filled(src_mask, rng), dst = filled(dst_mask, rng);
  std::vector<float> wei(static_cast<std::size_t>(kp.wei.size)),
      bias(static_cast<std::size_t>(p.g * p.ocg));
  for (auto& x : wei) x = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  for (auto& x : bias) x = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  const float* b = kp.bias ? bias.data() : nullptr;
  std::vector<float> got, want;
  if (kernel.fwd) {
    got = want = nan_with_gaps(dst_mask);
    kernel.fwd(p, src.data() + kp.src.offset, wei.data(), b, got.data() + kp.dst.offset);
    ref.fwd(p, src.data() + kp.src.offset, wei.data(), b, want.data() + kp.dst.offset);
    if (auto miss = check_exact(got, want, dst_mask, "fwd"); !miss.empty()) return miss;
  }
  if (kernel.bwd_data) {
    got = want = nan_with_gaps(src_mask);
    kernel.bwd_data(p, dst.data() + kp.dst.offset, wei.data(), got.data() + kp.src.offset);
    ref.bwd_data(p, dst.data() + kp.dst.offset, wei.data(), want.data() + kp.src.offset);
    if (auto miss = check_exact(got, want, src_mask, "bwd_data"); !miss.empty()) return miss;
  }
  if (!kernel.bwd_weights) return "";
  got = want = std::vector<float>(wei.size(), NAN);
  kernel.bwd_weights(p, src.data() + kp.src.offset, dst.data() + kp.dst.offset, got.data());
  ref.bwd_weights(p, src.data() + kp.src.offset, dst.data() + kp.dst.offset, want.data());
  return check_exact(got, want, std::vector<char>(wei.size(), 1), "bwd_weights");
}

}  // namespace convkit::test
