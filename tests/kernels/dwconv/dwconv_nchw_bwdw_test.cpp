// The NCHW depthwise backward-weights kernels against the reference on every compiled SIMD
// target (AVX3, AVX2, scalar), on random problems and on the model shapes they are made for.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/conv/conv_list.hpp"
#include "kernels/dwconv/dwconv_nchw_bwdw.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using kernels::ConvKernel;
using kernels::ConvParams;
using test::I;

// A dense NCHW depthwise 2-D problem (1-D when kh = 1 and ih = 1).
ConvParams nchw(I mb, I g, I ocg, I ih, I iw, I kh, I kw, I s, I ph, I pw, I d = 1) {
  ConvParams p;
  p.mb = mb, p.g = g, p.icg = 1, p.ocg = ocg;
  p.in = {1, ih, iw};
  p.k = {1, kh, kw};
  p.stride = {1, s, s};
  p.dilation = {1, d, d};
  p.pad = {0, ph, pw};
  p.out = {1, (ih + 2 * ph - d * (kh - 1) - 1) / s + 1, (iw + 2 * pw - d * (kw - 1) - 1) / s + 1};
  p.src_s = {g * ih * iw, ih * iw, 0, iw, 1};
  p.dst_s = {g * ocg * p.out[1] * p.out[2], p.out[1] * p.out[2], 0, p.out[2], 1};
  p.wei_s = {kh * kw, kh * kw, kh * kw, kw, 1};
  return p;
}

I extent(const ConvParams& p, const std::array<I, 5>& s, I c, const std::array<I, 3>& sp) {
  return (p.mb - 1) * s[0] + (c - 1) * s[1] + (sp[1] - 1) * s[3] + (sp[2] - 1) * s[4] + 1;
}

// Runs every listed NCHW bwdw kernel that takes p against the reference; returns how many ran.
int check(const ConvParams& p, std::uint64_t seed, bool integers, const std::string& what) {
  std::mt19937_64 rng(seed);
  auto draw = [&]() -> float {
    if (integers) return static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
    return static_cast<float>(std::normal_distribution<double>(0, 1)(rng));
  };
  std::vector<float> src(static_cast<std::size_t>(extent(p, p.src_s, p.g, p.in))),
      dst(static_cast<std::size_t>(extent(p, p.dst_s, p.g * p.ocg, p.out)));
  for (auto& v : src) v = draw();
  for (auto& v : dst) v = draw();
  std::vector<float> as(src), ad(dst);
  for (auto& v : as) v = std::abs(v);
  for (auto& v : ad) v = std::abs(v);
  const auto n = static_cast<std::size_t>(p.g * p.ocg * p.wei_s[0]);
  std::vector<float> want(n), bound(n);
  kernels::conv_bwd_weights_ref<float>(p, src.data(), dst.data(), want.data());
  kernels::conv_bwd_weights_ref<float>(p, as.data(), ad.data(), bound.data());
  int ran = 0;
  for (const ConvKernel<float>& k : kernels::conv_kernels<float>()) {
    if (std::string(k.name).find("nchw_bwdw") == std::string::npos || !k.supports(p)) continue;
    ++ran;
    std::vector<float> got(n, NAN);
    k.bwd_weights(p, src.data(), dst.data(), got.data());
    for (std::size_t i = 0; i < n; ++i) {
      const double tol = integers ? 0.0 : 1e-6 * static_cast<double>(bound[i]);
      const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      if (!(diff <= tol)) {  // also NaN: an element never written
        ADD_FAILURE() << k.name << " element " << i << " got " << got[i] << " want " << want[i]
                      << " on " << what;
        break;
      }
    }
  }
  return ran;
}

class DwconvNchwBwdw : public ::testing::TestWithParam<std::int64_t> {
 protected:
  void SetUp() override {
    if ((hwy::SupportedTargets() & GetParam()) == 0) GTEST_SKIP() << "target not supported here";
    hwy::SetSupportedTargetsForTest(GetParam());
  }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(DwconvNchwBwdw, ModelShapes) {
  const std::vector<std::pair<std::string, ConvParams>> shapes = {
      {"3x3 s1 112", nchw(2, 3, 1, 40, 112, 3, 3, 1, 1, 1)},
      {"3x3 s2 113 m2", nchw(2, 2, 2, 21, 113, 3, 3, 2, 1, 1)},
      {"5x5 s1", nchw(2, 3, 1, 30, 57, 5, 5, 1, 2, 2)},
      {"5x5 s2", nchw(1, 2, 3, 31, 61, 5, 5, 2, 2, 2)},
      {"7x7 s1 d2", nchw(1, 2, 1, 33, 70, 7, 7, 1, 6, 6, 2)},
      {"7x7 s2", nchw(2, 2, 1, 35, 67, 7, 7, 2, 3, 3)},
      {"31x31 on 28", nchw(2, 2, 1, 28, 28, 31, 31, 1, 15, 15)},
      {"13x13 s2", nchw(1, 2, 1, 40, 45, 13, 13, 2, 6, 6)},
      {"1-D k9", nchw(3, 4, 2, 1, 100, 1, 9, 1, 0, 4)},
      {"3x3 s3", nchw(1, 2, 1, 20, 50, 3, 3, 3, 1, 1)},
      {"3x3 no pad narrow", nchw(1, 2, 1, 9, 9, 3, 3, 1, 0, 0)},
  };
  int i = 0;
  for (const auto& [what, p] : shapes) {
    EXPECT_GE(check(p, 7 + static_cast<std::uint64_t>(i), true, what), 1) << what;
    EXPECT_GE(check(p, 9 + static_cast<std::uint64_t>(i), false, what), 1) << what;
    ++i;
  }
}

TEST_P(DwconvNchwBwdw, RandomProblems) {
  std::mt19937_64 rng(77);
  int ran = 0;
  for (int i = 0; i < test::sweep_size(400, 5000); ++i) {
    const auto kp = test::random_kernel_problem(rng, test::Family::Depthwise);
    if (kp.channels_last || kp.view || !kernels::dwconv_nchw_bwdw_layout_ok(kp.p)) continue;
    ran += check(kp.p, 100 + static_cast<std::uint64_t>(i), i % 3 != 2, kp.str());
  }
  EXPECT_GE(ran, 100);
}

INSTANTIATE_TEST_SUITE_P(Target, DwconvNchwBwdw, ::testing::Values(HWY_AVX3, HWY_AVX2, HWY_SCALAR),
                         [](const auto& target) {
                           return std::string(hwy::TargetName(target.param));
                         });

}  // namespace
}  // namespace convkit
