// Every sparse forward kernel in the list against the dense reference convolution, over random
// problems of each family (any layout, strided views, 1-3-D) pruned to 0-100% sparsity, with
// the rows split at random the way src/ops/ splits them; plus the packed format itself.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/conv/conv_ref.hpp"
#include "kernels/conv_sparse/conv_sparse.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using test::I;
using test::KernelProblem;

constexpr float kSentinel = 1e30f;  // in view gaps of dst: must survive every call

constexpr double kSparsities[] = {0.0, 0.5, 0.9, 0.99, 1.0};

// The packed weights of a problem, owning their arrays.
struct Packed {
  std::vector<I> row_ptr, off;
  std::vector<std::int32_t> col;
  std::vector<float> val;
  kernels::SparseWeights view() const { return {row_ptr.data(), col.data(), off.data(), val.data()}; }
};

Packed pack(const kernels::ConvParams& p, const std::vector<float>& wei) {
  Packed k;
  std::vector<I> nnz(static_cast<std::size_t>(p.g * p.ocg));
  kernels::conv_sparse_count(p, wei.data(), nnz.data());
  I total = 0;
  for (I n : nnz) total += n;
  k.row_ptr.resize(nnz.size() + 1);
  k.col.resize(static_cast<std::size_t>(total));
  k.off.resize(static_cast<std::size_t>(total));
  k.val.resize(static_cast<std::size_t>(total));
  kernels::conv_sparse_pack(p, wei.data(), k.row_ptr.data(), k.col.data(), k.off.data(), k.val.data());
  return k;
}

// Runs `kernel` over the rows of kp cut into `cuts` random chunks, into a fresh dst whose
// gaps hold the sentinel and whose logical elements start as NaN (so an unwritten one shows).
std::vector<float> run(const kernels::SparseConvKernel& kernel, const KernelProblem& kp,
                       const Packed& w, const std::vector<float>& src, const float* bias,
                       const std::vector<char>& dst_mask, std::mt19937_64& rng) {
  std::vector<float> dst(static_cast<std::size_t>(kp.dst.size), kSentinel);
  for (std::size_t i = 0; i < dst.size(); ++i)
    if (dst_mask[i]) dst[i] = NAN;
  kernels::SparseConvParams sp{kp.p, w.view(), 0, 0};
  const I rows = kp.p.out[0] * kp.p.out[1];
  for (I r = 0; r < rows;) {
    const I len = std::uniform_int_distribution<I>(1, rows)(rng);
    sp.row_begin = r;
    sp.row_end = std::min(rows, r + len);
    kernel.fwd(sp, src.data() + kp.src.offset, bias, dst.data() + kp.dst.offset);
    r = sp.row_end;
  }
  return dst;
}

std::vector<char> mask_of(const test::Buffer& b, I n, I c, const std::array<I, 3>& sp,
                          const std::array<I, 5>& s) {
  std::vector<char> m(static_cast<std::size_t>(b.size), 0);
  for (I a = 0; a < n; ++a)
    for (I ch = 0; ch < c; ++ch)
      for (I d = 0; d < sp[0]; ++d)
        for (I h = 0; h < sp[1]; ++h)
          for (I w = 0; w < sp[2]; ++w)
            m[static_cast<std::size_t>(b.offset + a * s[0] + ch * s[1] + d * s[2] + h * s[3] + w * s[4])] = 1;
  return m;
}

// One problem at one sparsity through every kernel of the list; returns "" or the first miss.
std::string check(const KernelProblem& kp, double sparsity, bool integers, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto draw = [&]() -> float {
    if (integers) return static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
    return static_cast<float>(std::normal_distribution<double>(0, 1)(rng));
  };
  const auto& p = kp.p;
  std::vector<float> src(static_cast<std::size_t>(kp.src.size), kSentinel);
  const auto src_mask = mask_of(kp.src, p.mb, p.g * p.icg, p.in, p.src_s);
  for (std::size_t i = 0; i < src.size(); ++i)
    if (src_mask[i]) src[i] = draw();
  // Prune: each weight is zero with probability `sparsity`; kept ones are never zero.
  std::vector<float> wei(static_cast<std::size_t>(kp.wei.size));
  std::bernoulli_distribution zero(sparsity);
  for (auto& v : wei) {
    const float x = draw();
    v = zero(rng) ? 0.0f : (x == 0.0f ? 1.0f : x);
  }
  std::vector<float> bias(static_cast<std::size_t>(p.g * p.ocg));
  for (auto& b : bias) b = draw();
  const float* b = kp.bias ? bias.data() : nullptr;
  const Packed w = pack(p, wei);
  // The oracle: the dense reference convolution on the pruned dense weights, and the bound
  // on rounding from the same convolution of magnitudes.
  const auto dst_mask = mask_of(kp.dst, p.mb, p.g * p.ocg, p.out, p.dst_s);
  std::vector<float> want(static_cast<std::size_t>(kp.dst.size), kSentinel), bound = want;
  kernels::conv_fwd_ref<float>(p, src.data() + kp.src.offset, wei.data(), b, want.data() + kp.dst.offset);
  auto abs_of = [](std::vector<float> v) {
    for (auto& x : v) x = std::abs(x);
    return v;
  };
  const auto as = abs_of(src), aw = abs_of(wei), ab = abs_of(bias);
  kernels::conv_fwd_ref<float>(p, as.data() + kp.src.offset, aw.data(), b ? ab.data() : nullptr,
                               bound.data() + kp.dst.offset);
  for (const auto& kernel : kernels::kSparseConvKernels) {
    const auto got = run(kernel, kp, w, src, b, dst_mask, rng);
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (!dst_mask[i]) {
        if (got[i] != kSentinel) return fmt::format("{}: wrote into a view gap at {}", kernel.name, i);
        continue;
      }
      const double tol = integers ? 0.0 : 2e-6 * 8 * (static_cast<double>(bound[i]) + 1e-30);
      const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      if (!(diff <= tol))
        return fmt::format("{}: element {}: got {} want {} (tolerance {}, nnz {} of {})", kernel.name,
                           i, got[i], want[i], tol, w.val.size(), wei.size());
    }
  }
  return "";
}

class ConvSparseKernels : public ::testing::TestWithParam<test::Family> {};

TEST_P(ConvSparseKernels, AgreeWithTheDenseReference) {
  // 3 families x 100 problems in CI (x 5 sparsities each); CONVKIT_FULL_SWEEP: 3 x 1700.
  const int count = test::sweep_size(100, 1700);
  const auto seed = 31 + static_cast<std::uint64_t>(GetParam());
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    const KernelProblem kp = test::random_kernel_problem(rng, GetParam());
    for (std::size_t s = 0; s < std::size(kSparsities); ++s) {
      const bool integers = (i + static_cast<int>(s)) % 4 != 3;
      const std::string miss = check(kp, kSparsities[s], integers, seed * 7919 + i * 8 + s);
      EXPECT_EQ(miss, "") << kp.str() << " sparsity " << kSparsities[s] << " (problem " << i
                          << ", seed " << seed << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Family, ConvSparseKernels,
                         ::testing::Values(test::Family::Depthwise, test::Family::Dense,
                                           test::Family::Grouped),
                         [](const auto& p) { return std::string(test::family_name(p.param)); });

// The layout of the packed arrays, on a 2-D problem small enough to write out by hand.
TEST(ConvSparsePack, CsrRowsColumnsAndOffsets) {
  kernels::ConvParams p;
  p.mb = 1;
  p.g = 1;
  p.icg = 2;
  p.ocg = 2;
  p.in = {1, 5, 6};
  p.out = {1, 3, 4};
  p.k = {1, 3, 3};
  p.dilation = {1, 1, 1};
  p.wei_s = {18, 9, 0, 3, 1};
  for (const bool nhwc : {false, true}) {
    p.src_s = nhwc ? std::array<I, 5>{60, 1, 0, 12, 2} : std::array<I, 5>{60, 30, 0, 6, 1};
    std::vector<float> wei(36, 0.0f);
    wei[0 * 18 + 1 * 9 + 2 * 3 + 1] = 2.0f;  // o 0, i 1, th 2, tw 1
    wei[0 * 18 + 0 * 9 + 0 * 3 + 2] = -1.0f;  // o 0, i 0, th 0, tw 2
    wei[0 * 18 + 1 * 9 + 0] = -0.0f;          // negative zero is pruned too
    // o 1: all zero
    const Packed k = pack(p, wei);
    EXPECT_EQ(k.row_ptr, (std::vector<I>{0, 2, 2}));
    EXPECT_EQ(k.col, (std::vector<std::int32_t>{2, 9 + 7}));
    EXPECT_EQ(k.val, (std::vector<float>{-1.0f, 2.0f}));
    const I off0 = 2 * p.src_s[4];                                 // i 0, th 0, tw 2
    const I off1 = 1 * p.src_s[1] + 2 * p.src_s[3] + 1 * p.src_s[4];  // i 1, th 2, tw 1
    EXPECT_EQ(k.off, (std::vector<I>{off0, off1})) << (nhwc ? "nhwc" : "nchw");
  }
}

}  // namespace
}  // namespace convkit
