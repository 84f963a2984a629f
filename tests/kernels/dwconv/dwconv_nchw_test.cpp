// The NCHW depthwise forward / backward-data kernels against the reference on every SIMD
// target compiled in (AVX-512, AVX2, scalar), each kernel on problems drawn for it.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv/conv_list.hpp"
#include "kernels/dwconv/dwconv_test_util.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using kernels::ConvKernel;
using test::I;
using test::KernelProblem;

TEST(DwconvNchw, EveryKernelOnEveryTargetAgreesWithTheReference) {
  const auto list = kernels::conv_kernels<float>();
  const auto& ref = list.back();
  const int per_kernel = test::sweep_size(40, 400);
  std::string targets;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    targets += std::string(targets.empty() ? "" : " ") + hwy::TargetName(target);
    for (const auto& kernel : list) {
      const std::string name = kernel.name;
      if (name.rfind("dwconv2d_f32_nchw_", 0) != 0 || !kernel.fwd || !kernel.bwd_data) continue;
      std::mt19937_64 rng(7);
      int ran = 0;
      for (int tries = 0; ran < per_kernel && tries < 200000; ++tries) {
        const KernelProblem kp = test::random_kernel_problem(rng, test::Family::Depthwise);
        if (!kernel.supports(kp.p)) continue;
        ++ran;
        EXPECT_EQ(test::compare_exact(kernel, ref, kp, rng), "")
            << name << " on " << kp.str() << " (" << hwy::TargetName(target) << ")";
      }
      EXPECT_EQ(ran, per_kernel) << name << ": the generator rarely draws its problems";
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  RecordProperty("targets", targets);
}

// Shapes the random draw seldom reaches: kernels wide enough that one diff_src row phase has
// more taps than the phase gather's table, mixed strides, rows narrower than a vector.
TEST(DwconvNchw, RareShapesAgreeWithTheReference) {
  const auto list = kernels::conv_kernels<float>();
  struct Shape {
    I g, ocg, ih, iw, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  const Shape shapes[] = {
      {2, 1, 40, 40, 31, 31, 1, 2, 15, 15, 1, 1},  // 31 rows x 16 taps per phase > 256
      {1, 2, 20, 45, 9, 41, 1, 3, 4, 20, 1, 1},   {3, 1, 30, 30, 17, 17, 2, 1, 8, 8, 1, 1},
      {2, 1, 28, 28, 31, 31, 1, 1, 15, 15, 1, 1},  // RepLKNet's 31x31: every column an edge
      {1, 1, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1},        // rows narrower than a vector
      {1, 4, 9, 5, 5, 5, 2, 2, 2, 2, 1, 1},       {2, 1, 12, 50, 3, 7, 1, 1, 1, 9, 1, 3},
  };
  std::mt19937_64 rng(3);
  for (const Shape& s : shapes) {
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
    test::detail::lay_out(rng, p.mb, p.g, p.in, false, false, p.src_s, kp.src);
    test::detail::lay_out(rng, p.mb, p.g * p.ocg, p.out, false, false, p.dst_s, kp.dst);
    p.wei_s = {s.kh * s.kw, s.kh * s.kw, s.kh * s.kw, s.kw, 1};
    kp.wei = {p.g * p.ocg * p.wei_s[0], 0};
    int ran = 0;
    for (const auto& kernel : list) {
      const std::string name = kernel.name;
      if (name.rfind("dwconv2d_f32_nchw_", 0) != 0 || !kernel.fwd || !kernel.bwd_data ||
          !kernel.supports(p))
        continue;
      ++ran;
      EXPECT_EQ(test::compare_exact(kernel, list.back(), kp, rng), "")
          << name << " on " << kp.str();
    }
    EXPECT_GE(ran, 1) << kp.str();
  }
}

}  // namespace
}  // namespace convkit
