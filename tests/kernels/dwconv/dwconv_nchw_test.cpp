// The NCHW depthwise forward / backward-data kernels against the reference on every SIMD
// target compiled in (AVX-512, AVX2, scalar), each kernel on problems drawn for it.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv/conv_list.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using kernels::ConvKernel;
using test::I;
using test::KernelProblem;

constexpr float kSentinel = 1e30f;

// The tensor's elements in a buffer with view gaps: true where (n, c, d, h, w) lands.
std::vector<char> mask_of(const test::Buffer& b, I n, I c, const std::array<I, 3>& sp,
                          const std::array<I, 5>& s) {
  std::vector<char> m(static_cast<std::size_t>(b.size), 0);
  for (I a = 0; a < n; ++a)
    for (I ch = 0; ch < c; ++ch)
      for (I h = 0; h < sp[1]; ++h)
        for (I w = 0; w < sp[2]; ++w)
          m[static_cast<std::size_t>(b.offset + a * s[0] + ch * s[1] + h * s[3] + w * s[4])] = 1;
  return m;
}

// Integer values in the tensor, the sentinel in the gaps.
std::vector<float> filled(const std::vector<char>& mask, std::mt19937_64& rng) {
  std::vector<float> v(mask.size(), kSentinel);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (mask[i]) v[i] = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  return v;
}

// Runs fwd and bwd_data of `kernel` and of the reference on kp; returns "" when they agree
// exactly (integer inputs make every partial sum exact) and no gap was written.
std::string compare(const ConvKernel<float>& kernel, const ConvKernel<float>& ref, const KernelProblem& kp,
                    std::mt19937_64& rng) {
  const auto& p = kp.p;
  const auto src_mask = mask_of(kp.src, p.mb, p.g, p.in, p.src_s);
  const auto dst_mask = mask_of(kp.dst, p.mb, p.g * p.ocg, p.out, p.dst_s);
  const auto src = filled(src_mask, rng), dst = filled(dst_mask, rng);
  std::vector<float> wei(static_cast<std::size_t>(kp.wei.size)), bias(static_cast<std::size_t>(p.g * p.ocg));
  for (auto& x : wei) x = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  for (auto& x : bias) x = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  const float* b = kp.bias ? bias.data() : nullptr;
  auto check = [](const std::vector<float>& got, const std::vector<float>& want, const std::vector<char>& mask,
                  const char* pass) -> std::string {
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (!mask[i] && got[i] != kSentinel) return fmt::format("{}: wrote into a view gap at {}", pass, i);
      if (mask[i] && !(got[i] == want[i]))
        return fmt::format("{}: element {} got {} want {}", pass, i, got[i], want[i]);
    }
    return "";
  };
  auto nan_with_gaps = [](const std::vector<char>& mask) {
    std::vector<float> v(mask.size(), NAN);
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!mask[i]) v[i] = kSentinel;
    return v;
  };
  auto got = nan_with_gaps(dst_mask), want = got;
  kernel.fwd(p, src.data() + kp.src.offset, wei.data(), b, got.data() + kp.dst.offset);
  ref.fwd(p, src.data() + kp.src.offset, wei.data(), b, want.data() + kp.dst.offset);
  if (auto miss = check(got, want, dst_mask, "fwd"); !miss.empty()) return miss;
  got = want = nan_with_gaps(src_mask);
  kernel.bwd_data(p, dst.data() + kp.dst.offset, wei.data(), got.data() + kp.src.offset);
  ref.bwd_data(p, dst.data() + kp.dst.offset, wei.data(), want.data() + kp.src.offset);
  return check(got, want, src_mask, "bwd_data");
}

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
        EXPECT_EQ(compare(kernel, ref, kp, rng), "")
            << name << " on " << kp.str() << " (" << hwy::TargetName(target) << ")";
      }
      EXPECT_EQ(ran, per_kernel) << name << ": the generator rarely draws its problems";
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  RecordProperty("targets", targets);
}

}  // namespace
}  // namespace convkit
