// gradcheck (float64) of every non-convolution differentiable op, plus forward spot checks.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ag_test_util.hpp"
#include "test_util.hpp"

namespace convkit::ag {
namespace {

using test::expect_gradcheck;
using test::rnd;

using V = std::vector<Variable>;

TEST(ElementwiseGrad, BroadcastingBinaryOps) {
  const Variable a = rnd({2, 3, 4}, 1), b = rnd({3, 1}, 2), c = rnd({4}, 3);
  const Variable pos = rnd({3, 1}, 4, true, 0.5, 2.0);  // away from 0 for div
  expect_gradcheck([](const V& v) { return add(v[0], v[1]); }, {a, b});
  expect_gradcheck([](const V& v) { return sub(v[0], v[1]); }, {a, c});
  expect_gradcheck([](const V& v) { return mul(v[0], v[1]); }, {b, c});
  expect_gradcheck([](const V& v) { return div(v[0], v[1]); }, {a, pos});
  expect_gradcheck([](const V& v) { return v[0] * v[1] + v[0] / v[1] - v[1]; }, {a, pos});
  expect_gradcheck([](const V& v) { return neg(mul(add(v[0], 2.5), -3.0)); }, {a});
  EXPECT_EQ(add(a, b).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(mul(b, c).shape(), (Shape{3, 4}));
}

TEST(ElementwiseGrad, ScalarAndSameVariableTwice) {
  const Variable a = rnd({}, 5), x = rnd({3}, 6);
  expect_gradcheck([](const V& v) { return mul(v[0], v[1]); }, {a, x});
  expect_gradcheck([](const V& v) { return mul(v[0], v[0]); }, {x});
}

TEST(ElementwiseGrad, RefusesMismatches) {
  convkit::test::expect_error<InvalidArgument>(
      [] { mul(rnd({2, 3}, 1), rnd({4}, 2)); }, {"mul", "[2, 3]", "[4]"});
  convkit::test::expect_error<InvalidArgument>(
      [] { add(rnd({2}, 1), Variable(Tensor::ones({2}), false)); }, {"add", "F64", "F32"});
}

TEST(ActivationGrad, EveryActivation) {
  // Values spread over [-5, 8] so that every piece of the piecewise functions is exercised;
  // the chance of landing within eps of a kink is negligible.
  const Variable x = rnd({3, 11}, 7, true, -5, 8);
  expect_gradcheck([](const V& v) { return relu(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return relu6(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return leaky_relu(v[0], 0.2); }, {x});
  expect_gradcheck([](const V& v) { return sigmoid(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return hardsigmoid(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return hardswish(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return silu(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return tanh(v[0]); }, {x});
}

TEST(ActivationGrad, SoftmaxAlongEachDim) {
  const Variable x = rnd({2, 3, 4}, 8, true, -3, 3);
  for (int dim : {0, 1, 2, -1}) {
    expect_gradcheck([dim](const V& v) { return softmax(v[0], dim); }, {x});
    expect_gradcheck([dim](const V& v) { return log_softmax(v[0], dim); }, {x});
  }
  const std::vector<double> s = sum(softmax(x, 1), {1}).value().to_vector();
  for (double e : s) EXPECT_NEAR(e, 1.0, 1e-12);
  EXPECT_THROW(softmax(x, 3), InvalidArgument);
}

TEST(ShapeGrad, MatmulAndLinear) {
  const Variable a = rnd({2, 3, 4}, 9), b = rnd({4, 5}, 10), m = rnd({3, 4}, 11);
  expect_gradcheck([](const V& v) { return matmul(v[0], v[1]); }, {a, b});
  expect_gradcheck([](const V& v) { return matmul(v[0], v[1]); }, {m, b});
  const Variable x = rnd({2, 4}, 12), w = rnd({3, 4}, 13), bias = rnd({3}, 14);
  expect_gradcheck([](const V& v) { return linear(v[0], v[1], v[2]); }, {x, w, bias});
  expect_gradcheck([](const V& v) { return linear(v[0], v[1]); }, {a, w});
  EXPECT_EQ(linear(a, w, bias).shape(), (Shape{2, 3, 3}));
  // An empty inner dimension gives zeros, like PyTorch.
  const Variable e = linear(rnd({2, 0}, 1), rnd({3, 0}, 2), bias);
  EXPECT_EQ(e.shape(), (Shape{2, 3}));
  EXPECT_EQ(e.value().get({1, 2}), bias.value().get({2}));
  EXPECT_EQ(matmul(rnd({3, 0}, 1), rnd({0, 2}, 2)).shape(), (Shape{3, 2}));
  convkit::test::expect_error<InvalidArgument>([&] { matmul(m, m); }, {"matmul", "[3, 4]"});
  convkit::test::expect_error<InvalidArgument>([&] { linear(x, rnd({3, 5}, 1)); },
                                               {"linear", "[2, 4]", "[3, 5]"});
}

TEST(ShapeGrad, ReshapeFlattenPermuteConcat) {
  const Variable x = rnd({2, 3, 4}, 15), y = rnd({2, 1, 4}, 16), z = rnd({2, 2, 4}, 17);
  expect_gradcheck([](const V& v) { return reshape(v[0], {4, -1}); }, {x});
  expect_gradcheck([](const V& v) { return flatten(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return flatten(v[0], 0, 1); }, {x});
  expect_gradcheck([](const V& v) { return permute(v[0], {2, 0, 1}); }, {x});
  expect_gradcheck([](const V& v) { return concat({v[0], v[1], v[2]}, 1); }, {x, y, z});
  expect_gradcheck([](const V& v) { return concat({v[0], v[0]}, -1); }, {x});
  EXPECT_EQ(flatten(x).shape(), (Shape{2, 12}));
  EXPECT_EQ(permute(x, {2, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(permute(x, {2, 0, 1}).value().get({3, 1, 2}), x.value().get({1, 2, 3}));
  EXPECT_EQ(concat({x, y, z}, 1).shape(), (Shape{2, 6, 4}));
  EXPECT_THROW(permute(x, {0, 0, 1}), InvalidArgument);
  convkit::test::expect_error<InvalidArgument>([&] { concat({x, rnd({3, 3, 4}, 1)}, 1); },
                                               {"concat", "[3, 3, 4]"});
}

TEST(ReduceGrad, SumAndMean) {
  const Variable x = rnd({2, 3, 4}, 18);
  expect_gradcheck([](const V& v) { return sum(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return mean(v[0]); }, {x});
  expect_gradcheck([](const V& v) { return sum(v[0], {0, 2}); }, {x});
  expect_gradcheck([](const V& v) { return mean(v[0], {-1}, true); }, {x});
  EXPECT_EQ(sum(x, {0, 2}).shape(), (Shape{3}));
  EXPECT_EQ(mean(x, {1}, true).shape(), (Shape{2, 1, 4}));
  EXPECT_EQ(sum(x).shape(), Shape{});
  double total = 0;
  for (double v : x.value().to_vector()) total += v;
  EXPECT_NEAR(mean(x).value().get_flat(0), total / 24, 1e-12);
}

TEST(PoolGrad, MaxPool) {
  const Variable x = rnd({2, 2, 7, 6}, 19);
  for (bool ceil : {false, true}) {
    Pool2dOptions o{.kernel = {3}, .stride = {2}, .padding = {1}, .dilation = {1}, .ceil_mode = ceil};
    expect_gradcheck([o](const V& v) { return max_pool2d(v[0], o); }, {x});
  }
  Pool2dOptions dil{.kernel = {2, 3}, .stride = {1, 2}, .padding = {1, 0}, .dilation = {2}};
  expect_gradcheck([dil](const V& v) { return max_pool2d(v[0], dil); }, {x});
  const Variable x3 = rnd({2, 5, 5}, 20);
  expect_gradcheck([](const V& v) { return max_pool2d(v[0], {}); }, {x3});
  EXPECT_EQ(max_pool2d(x3, {}).shape(), (Shape{2, 2, 2}));
}

TEST(PoolGrad, AvgAndAdaptivePool) {
  const Variable x = rnd({2, 2, 7, 6}, 21);
  for (bool ceil : {false, true})
    for (bool include : {false, true}) {
      Pool2dOptions o{.kernel = {3}, .stride = {2}, .padding = {1}, .ceil_mode = ceil,
                      .count_include_pad = include};
      expect_gradcheck([o](const V& v) { return avg_pool2d(v[0], o); }, {x});
    }
  expect_gradcheck([](const V& v) { return adaptive_avg_pool2d(v[0], 3, 4); }, {x});
  expect_gradcheck([](const V& v) { return adaptive_avg_pool2d(v[0], 1, 1); }, {x});
  const Variable cl(x.value().to(MemoryFormat::ChannelsLast), true);
  expect_gradcheck([](const V& v) { return adaptive_avg_pool2d(v[0], 5, 4); }, {cl});
  convkit::test::expect_error<InvalidArgument>(
      [&] { avg_pool2d(x, {.kernel = {2}, .padding = {2}}); }, {"avg_pool2d", "padding"});
  convkit::test::expect_error<InvalidArgument>(
      [&] { avg_pool2d(x, {.kernel = {2}, .dilation = {2}}); }, {"avg_pool2d", "dilation", "(2, 2)"});
}

TEST(NormGrad, BatchNormTrainingAndEval) {
  const Variable x = rnd({3, 2, 3, 2}, 22), w = rnd({2}, 23), b = rnd({2}, 24);
  expect_gradcheck(
      [](const V& v) { return batch_norm(v[0], {}, {}, v[1], v[2], true); }, {x, w, b});
  expect_gradcheck([](const V& v) { return batch_norm(v[0], {}, {}, {}, {}, true); }, {x});
  const Variable x2 = rnd({4, 3}, 25);
  expect_gradcheck([](const V& v) { return batch_norm(v[0], {}, {}, {}, v[1], true); },
                   {x2, rnd({3}, 26)});
  const Tensor rm = Tensor::uniform({2}, -1, 1, 27, DType::F64);
  const Tensor rv = Tensor::uniform({2}, 0.5, 2, 28, DType::F64);
  expect_gradcheck(
      [rm, rv](const V& v) { return batch_norm(v[0], rm, rv, v[1], v[2], false); }, {x, w, b});
  convkit::test::expect_error<InvalidArgument>(
      [&] { batch_norm(rnd({1, 2}, 1), {}, {}, {}, {}, true); }, {"more than 1 value"});
  convkit::test::expect_error<InvalidArgument>(
      [&] { batch_norm(x, {}, {}, rnd({3}, 1), {}, true); }, {"weight", "[2]", "[3]"});
}

TEST(RegularizationGrad, DropoutAndPad) {
  const Variable x = rnd({2, 3, 4, 4}, 29);
  expect_gradcheck([](const V& v) { return dropout(v[0], 0.4, true, 7); }, {x});
  const Variable d = dropout(x, 0.4, true, 7);
  int zeros = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double yv = d.value().get_flat(i), xv = x.value().get_flat(i);
    if (yv == 0) ++zeros;
    else EXPECT_NEAR(yv, xv / 0.6, 1e-12);
  }
  EXPECT_GT(zeros, 20);
  EXPECT_LT(zeros, 60);
  EXPECT_EQ(dropout(x, 0.4, false, 7).value().to_vector(), x.value().to_vector());
  EXPECT_EQ(sum(dropout(x, 1.0, true, 7)).value().get_flat(0), 0.0);
  for (PaddingMode m : {PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate,
                        PaddingMode::Circular})
    expect_gradcheck([m](const V& v) { return pad(v[0], {1, 2}, {3, 0}, m, 0.5); }, {x});
  EXPECT_EQ(pad(x, {1}, {2}).shape(), (Shape{2, 3, 7, 7}));
}

TEST(LossGrad, CrossEntropyAndMse) {
  const Variable logits = rnd({4, 5}, 30, true, -2, 2);
  const Tensor targets = Tensor::from_values({4}, {0, 3, 4, 1}, DType::I64);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (double ls : {0.0, 0.1})
      expect_gradcheck([&targets, r, ls](const V& v) { return cross_entropy(v[0], targets, r, ls); },
                       {logits});
  const Variable pix = rnd({2, 3, 2, 2}, 33, true, -2, 2);
  const Tensor pix_targets =
      Tensor::from_values({2, 2, 2}, {0, 1, 2, 2, 1, 0, 0, 1}, DType::I64);
  for (Reduction r : {Reduction::Mean, Reduction::None})
    expect_gradcheck(
        [&pix_targets, r](const V& v) { return cross_entropy(v[0], pix_targets, r, 0.1); }, {pix});
  convkit::test::expect_error<InvalidArgument>(
      [&] { cross_entropy(pix, Tensor::zeros({2, 2}, DType::I64)); },
      {"cross_entropy", "[2, 2, 2]", "[2, 2]"});
  const Variable a = rnd({2, 3}, 31), b = rnd({2, 3}, 32);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    expect_gradcheck([r](const V& v) { return mse_loss(v[0], v[1], r); }, {a, b});
  convkit::test::expect_error<InvalidArgument>(
      [&] { cross_entropy(logits, Tensor::from_values({4}, {0, 5, 1, 1}, DType::I64)); },
      {"cross_entropy", "target 5"});
  convkit::test::expect_error<InvalidArgument>(
      [&] { cross_entropy(logits, Tensor::from_values({3}, {0, 1, 1}, DType::I64)); },
      {"cross_entropy", "[4]", "[3]"});
  // A uniform prediction costs log(C) per sample.
  const Variable flat(Tensor::zeros({2, 5}, DType::F64));
  EXPECT_NEAR(cross_entropy(flat, Tensor::from_values({2}, {1, 2}, DType::I64)).value().get_flat(0),
              std::log(5.0), 1e-12);
}

}  // namespace
}  // namespace convkit::ag

namespace convkit::ag {
namespace {

// Every op gives the same values and gradients for a channels-last input as for a contiguous one.
TEST(ChannelsLast, SameResultsAndGradients) {
  const Tensor base = Tensor::uniform({2, 3, 5, 4}, -2, 2, 40, DType::F64);
  const Tensor other = Tensor::uniform({2, 3, 5, 4}, -2, 2, 41, DType::F64);
  const std::vector<std::pair<const char*, test::Fn>> ops = {
      {"batch_norm", [](const V& v) { return batch_norm(v[0], {}, {}, {}, {}, true); }},
      {"max_pool2d", [](const V& v) { return max_pool2d(v[0], {.kernel = {2}, .padding = {1}}); }},
      {"avg_pool2d", [](const V& v) { return avg_pool2d(v[0], {.kernel = {3}, .stride = {1}}); }},
      {"adaptive", [](const V& v) { return adaptive_avg_pool2d(v[0], 2, 3); }},
      {"relu6", [](const V& v) { return relu6(v[0]); }},
      {"add", [](const V& v) { return v[0] + v[1]; }},
      {"mul_channel", [](const V& v) { return v[0] * mean(v[1], {2, 3}, true); }},
      {"softmax", [](const V& v) { return softmax(v[0], 1); }},
      {"concat", [](const V& v) { return concat({v[0], v[1]}, 1); }},
      {"pad", [](const V& v) { return pad(v[0], {1}, {2}, PaddingMode::Reflect); }},
      {"permute", [](const V& v) { return permute(v[0], {0, 2, 3, 1}); }},
      {"flatten", [](const V& v) { return flatten(v[0]); }},
  };
  for (const auto& [name, fn] : ops) {
    SCOPED_TRACE(name);
    std::vector<Tensor> grads[2];
    Tensor outs[2];
    for (int cl = 0; cl < 2; ++cl) {
      const MemoryFormat f = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
      const Variable a(base.to(f), true), b(other.to(f), true);
      const Variable y = fn({a, b});
      outs[cl] = y.value();
      y.backward(Tensor::uniform(y.shape(), -1, 1, 42, DType::F64));
      grads[cl] = {a.grad(), b.grad()};
    }
    EXPECT_TRUE(allclose(outs[1], outs[0], 1e-12, 1e-12));
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(grads[0][i].defined(), grads[1][i].defined());
      if (grads[0][i].defined()) {
        EXPECT_TRUE(allclose(grads[1][i], grads[0][i], 1e-12, 1e-12));
      }
    }
  }
}

}  // namespace
}  // namespace convkit::ag
