// The fast bias gradient against the reference on random shapes and layouts (NCHW rows,
// channels-last, strided views), and its independence from how channels are split.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/conv/conv_bias.hpp"
#include "kernels/conv/conv_ref.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using test::I;

template <typename T>
void check_family(test::Family family, int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    const test::KernelProblem kp = test::random_kernel_problem(rng, family);
    kernels::ConvParams p = kp.p;
    const bool integers = i % 3 != 2;
    std::vector<T> dst(static_cast<std::size_t>(kp.dst.size), static_cast<T>(1e30));
    std::vector<T> absolute(dst.size());
    std::mt19937_64 fill(seed + static_cast<std::uint64_t>(i));
    const I oc = p.g * p.ocg;
    // Only logical elements get values: a read of a gap would show as a huge sum.
    for (I n = 0; n < p.mb; ++n)
      for (I o = 0; o < oc; ++o)
        for (I d = 0; d < p.out[0]; ++d)
          for (I h = 0; h < p.out[1]; ++h)
            for (I w = 0; w < p.out[2]; ++w) {
              const auto at = static_cast<std::size_t>(kp.dst.offset + n * p.dst_s[0] + o * p.dst_s[1] +
                                                       d * p.dst_s[2] + h * p.dst_s[3] + w * p.dst_s[4]);
              dst[at] = integers ? static_cast<T>(std::uniform_int_distribution<int>(-3, 3)(fill))
                                 : static_cast<T>(std::normal_distribution<double>(0, 1)(fill));
              absolute[at] = std::abs(dst[at]);
            }
    std::vector<T> got(static_cast<std::size_t>(oc), static_cast<T>(NAN)), want(got), bound(got);
    kernels::conv_bwd_bias<T>(p, dst.data() + kp.dst.offset, got.data());
    kernels::conv_bwd_bias_ref<T>(p, dst.data() + kp.dst.offset, want.data());
    kernels::conv_bwd_bias_ref<T>(p, absolute.data() + kp.dst.offset, bound.data());
    // One channel at a time gives the same bits as all channels in one call.
    std::vector<T> alone(got.size(), static_cast<T>(NAN));
    kernels::ConvParams one = p;
    one.g = 1;
    one.ocg = 1;
    for (I o = 0; o < oc; ++o)
      kernels::conv_bwd_bias<T>(one, dst.data() + kp.dst.offset + o * p.dst_s[1], alone.data() + o);
    const double eps = sizeof(T) == 4 ? 6e-8 : 1.2e-16;
    for (std::size_t o = 0; o < got.size(); ++o) {
      const double tol = integers ? 0.0 : 64 * eps * static_cast<double>(bound[o]);
      EXPECT_LE(std::abs(static_cast<double>(got[o]) - static_cast<double>(want[o])), tol)
          << "channel " << o << " of " << kp.str() << " (problem " << i << ")";
      EXPECT_EQ(got[o], alone[o]) << "channel " << o << " of " << kp.str();
    }
  }
}

TEST(ConvBias, AgreesWithTheReferenceF32) {
  for (auto family : {test::Family::Depthwise, test::Family::Dense, test::Family::Grouped})
    check_family<float>(family, test::sweep_size(150, 3000), 31 + static_cast<int>(family));
}

TEST(ConvBias, AgreesWithTheReferenceF64) {
  for (auto family : {test::Family::Depthwise, test::Family::Dense, test::Family::Grouped})
    check_family<double>(family, test::sweep_size(60, 1000), 41 + static_cast<int>(family));
}

}  // namespace
}  // namespace convkit
