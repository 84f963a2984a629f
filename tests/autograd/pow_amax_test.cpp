// square, rsqrt, pow and amax: gradchecks in float64, amax's ties against PyTorch
// (tests/fixtures/attention/amax_*), NaN and bad dims.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/ag_test_util.hpp"
#include "convkit/io/safetensors.hpp"
#include "test_util.hpp"

namespace convkit::ag {
namespace {

using test::expect_gradcheck;
using test::rnd;
using V = std::vector<Variable>;

TEST(PowGrad, SquareRsqrtPow) {
  const Variable x = rnd({3, 4}, 1, true, -2, 2), pos = rnd({3, 4}, 2, true, 0.3, 3);
  expect_gradcheck([](const V& v) { return square(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return rsqrt(v[0]); }, {pos});
  expect_gradcheck([](const V& v) { return pow(v[0], 3.0); }, {x});
  expect_gradcheck([](const V& v) { return pow(v[0], -1.5); }, {pos});
  expect_gradcheck([](const V& v) { return pow(v[0], 0.5) * rsqrt(v[0]); }, {pos});  // = 1
  EXPECT_DOUBLE_EQ(rsqrt(Variable(Tensor::full({1}, 4.0, DType::F64))).value().get_flat(0), 0.5);
  EXPECT_DOUBLE_EQ(pow(Variable(Tensor::full({1}, 2.0, DType::F64)), 10).value().get_flat(0), 1024);
  EXPECT_DOUBLE_EQ(square(Variable(Tensor::full({1}, -3.0))).value().get_flat(0), 9);
}

TEST(PowGrad, ZeroExponentHasZeroGradientEvenAtZero) {
  const Variable x(Tensor::from_values({3}, {0, 2, -1}, DType::F64), true);
  sum(pow(x, 0)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(pow(x, 0).value().to_vector(), (std::vector<double>{1, 1, 1}));
  convkit::test::expect_error<InvalidArgument>(
      [&] { pow(x, std::numeric_limits<double>::infinity()); }, {"pow", "exponent", "inf"});
}

TEST(AmaxGrad, DistinctValuesAndTwoWayTies) {
  const Variable x = rnd({2, 3, 4, 5}, 3, true, -2, 2);
  for (const std::vector<int>& dims :
       {std::vector<int>{2, 3}, std::vector<int>{1}, std::vector<int>{0, -1}, std::vector<int>{}})
    for (bool keep : {false, true})
      expect_gradcheck([dims, keep](const V& v) { return amax(v[0], dims, keep); }, {x});
  // A two-way tie: central differences see +eps raise the max and -eps leave it, so the
  // numeric derivative of each tied element is 1/2, exactly the even split.
  const Variable t(Tensor::from_values({2, 3}, {1, 4, 4, -1, 2, 0}, DType::F64), true);
  expect_gradcheck([](const V& v) { return amax(v[0], {1}); }, {t});
  sum(amax(t, {1})).backward();
  EXPECT_EQ(t.grad().to_vector(), (std::vector<double>{0, 0.5, 0.5, 0, 1, 0}));
}

TEST(AmaxFixture, TiesSplitLikePyTorch) {
  for (const char* name : {"amax_hw_keepdim", "amax_c", "amax_all"}) {
    SCOPED_TRACE(name);
    const io::SafetensorsFile f = io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) +
                                                       "/attention/" + name + ".safetensors");
    const nlohmann::json cfg = nlohmann::json::parse(f.metadata.at("config"));
    for (DType dt : {DType::F64, DType::F32}) {
      const Variable x(f.at("x").to(dt), true);
      const Variable y = amax(x, cfg.at("dims").get<std::vector<int>>(), cfg.at("keepdim"));
      EXPECT_EQ(y.shape(), f.at("y").shape());
      EXPECT_TRUE(allclose(y.value().to(DType::F64), f.at("y"), 0, 0));
      y.backward(f.at("R").to(dt));
      const CloseResult r = allclose(x.grad().to(DType::F64), f.at("grad.x"), 1e-6, 1e-7);
      EXPECT_TRUE(r) << r.message;
    }
  }
}

TEST(Amax, NaNPropagatesAndBadDimsAreRefused) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Variable x(Tensor::from_values({2, 2}, {1, nan, 3, 2}, DType::F64));
  const std::vector<double> y = amax(x, {1}).value().to_vector();
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 3);
  using convkit::test::expect_error;
  expect_error<InvalidArgument>([&] { amax(x, {2}); }, {"amax", "dim 2", "[2, 2]"});
  expect_error<InvalidArgument>([&] { amax(x, {1, -1}); }, {"amax", "twice"});
  expect_error<InvalidArgument>(
      [] {
        amax(Variable(Tensor::zeros({2, 0})), {1});
      },
      {"amax", "size 0"});
  EXPECT_EQ(amax(Variable(Tensor::zeros({2, 0})), {0}).shape(), (Shape{0}));
}

}  // namespace
}  // namespace convkit::ag
