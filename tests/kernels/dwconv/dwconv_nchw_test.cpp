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
  const test::DwShape shapes[] = {
      {2, 1, 40, 40, 31, 31, 1, 2, 15, 15, 1, 1},  // 31 rows x 16 taps per phase > 256
      {1, 2, 20, 45, 9, 41, 1, 3, 4, 20, 1, 1},   {3, 1, 30, 30, 17, 17, 2, 1, 8, 8, 1, 1},
      {2, 1, 28, 28, 31, 31, 1, 1, 15, 15, 1, 1},  // RepLKNet's 31x31: every column an edge
      {1, 1, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1},        // rows narrower than a vector
      {1, 4, 9, 5, 5, 5, 2, 2, 2, 2, 1, 1},       {2, 1, 12, 50, 3, 7, 1, 1, 1, 9, 1, 3},
  };
  std::mt19937_64 rng(3);
  for (const test::DwShape& s : shapes) {
    const KernelProblem kp = test::dw_problem(s, false, rng);
    const auto& p = kp.p;
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
