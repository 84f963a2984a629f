// Finite-difference gradient checks (float64, central differences) of every convolution
// gradient, and the adjoint identity <y, conv(x)> = <conv_backward_data(y), x>.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/conv_random.hpp"

namespace convkit {
namespace {

double dot(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

// Checks d(loss)/d(t) for loss = <r, conv(src, wei, bias)> by central differences at up to
// `budget` elements of t (all of them when t is small), perturbing t in place.
template <typename Loss>
void check_gradient(const char* role, const Tensor& t, const Tensor& analytic, Loss&& loss,
                    std::mt19937_64& rng, const std::string& problem) {
  constexpr double eps = 1e-6;
  const std::int64_t n = t.numel(), budget = 48;
  for (std::int64_t j = 0; j < std::min(n, budget); ++j) {
    const std::int64_t pos = n <= budget ? j : std::uniform_int_distribution<std::int64_t>(0, n - 1)(rng);
    const double orig = t.get_flat(pos);
    t.set_flat(pos, orig + eps);
    const double up = loss();
    t.set_flat(pos, orig - eps);
    const double down = loss();
    t.set_flat(pos, orig);
    const double numeric = (up - down) / (2 * eps), exact = analytic.get_flat(pos);
    ASSERT_NEAR(exact, numeric, 1e-6 * (1 + std::fabs(numeric)))
        << role << " element " << pos << " of problem " << problem;
  }
}

// One test per random problem, so ctest counts and names each gradient check.
class ConvGradcheck : public ::testing::TestWithParam<int> {};

TEST_P(ConvGradcheck, AllThreeGradientsMatchFiniteDifferences) {
  const int i = GetParam();
  std::mt19937_64 rng(2024 + static_cast<std::uint64_t>(i));
  const auto r = test::random_conv(rng, DType::F64, 300);
  const ConvProblem& p = r.p;
  SCOPED_TRACE(p.str());
  const Tensor x = test::random_src(p, 3 * i + 1), w = test::random_wei(p, 3 * i + 2);
  const Tensor b = test::random_bias(p, 3 * i + 3), dy = test::random_dst(p, 7 * i + 5);
  auto loss = [&] { return dot(dy, conv_forward(p, x, w, b)); };
  check_gradient("diff_src", x, conv_backward_data(p, dy, w), loss, rng, p.str());
  check_gradient("diff_wei", w, conv_backward_weights(p, x, dy), loss, rng, p.str());
  if (p.has_bias) check_gradient("diff_bias", b, conv_backward_bias(p, dy), loss, rng, p.str());
}

INSTANTIATE_TEST_SUITE_P(RandomProblems, ConvGradcheck, ::testing::Range(0, test::sweep_size(120, 1200)));

TEST(ConvAdjoint, RandomProblems) {
  // <y, A x> = <A^T y, x> for the linear map A = conv(., w) without bias, in both directions:
  // backward-data must be the exact adjoint of forward, including padding modes and
  // transposed problems (whose forward is itself an adjoint).
  std::mt19937_64 rng(99);
  for (int i = 0; i < test::sweep_size(150, 1500); ++i) {
    auto r = test::random_conv(rng, DType::F64, 2000);
    r.p.has_bias = false;
    const ConvProblem& p = r.p;
    const Tensor x = test::random_src(p, i + 11), w = test::random_wei(p, i + 12);
    const Tensor y = test::random_dst(p, i + 13);
    const double lhs = dot(y, conv_forward(p, x, w));
    const double rhs = dot(conv_backward_data(p, y, w), x);
    EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::fabs(lhs))) << p.str();
    // And backward-weights is the adjoint with respect to the weights.
    const double rhs_w = dot(conv_backward_weights(p, x, y), w);
    EXPECT_NEAR(lhs, rhs_w, 1e-10 * (1 + std::fabs(lhs))) << p.str();
  }
}

TEST(ConvAdjoint, TransposedIsBackwardDataOfDirect) {
  // conv_transpose(x, w) equals the direct convolution's backward-data with the same
  // weights, whenever output_padding is 0 and the sizes line up.
  const Tensor x = Tensor::uniform({2, 6, 5, 4}, -1, 1, 1, DType::F64);
  const Tensor w = Tensor::uniform({6, 2, 3, 2}, -1, 1, 2, DType::F64);  // (in, out/g, k)
  const ConvOptions o{.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 3};
  const Tensor y = conv_transpose2d(x, w, {}, o);
  const ConvProblem direct = ConvProblem::make(Tensor::zeros(y.shape(), DType::F64), w, {}, o);
  ASSERT_EQ(direct.dst_shape(), x.shape());
  const auto close = allclose(y, conv_backward_data(direct, x, w), 1e-12, 1e-12);
  EXPECT_TRUE(close) << close.message;
}

}  // namespace
}  // namespace convkit
