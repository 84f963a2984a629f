// NaN and Inf propagate through every kernel family like PyTorch's (no crash, no hang),
// float32 results stay within a rounding bound of float64 for 31x31 kernels and 1,024
// channels, and requests over the tensor memory limit are refused before allocation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "convkit/autograd/functional.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using I = std::int64_t;

struct Case {
  const char* name;
  Shape src, wei;
  ConvOptions options;
  MemoryFormat format = MemoryFormat::Contiguous;
};

std::vector<Case> families() {
  return {
      {"dw3x3 nchw", {2, 16, 9, 9}, {16, 1, 3, 3}, {.padding = 1, .groups = 16}},
      {"dw3x3 nhwc", {2, 16, 9, 9}, {16, 1, 3, 3}, {.padding = 1, .groups = 16},
       MemoryFormat::ChannelsLast},
      {"dw13x13 nchw", {1, 8, 20, 20}, {8, 1, 13, 13}, {.padding = 6, .groups = 8}},
      {"dw5x5 s2", {1, 8, 11, 11}, {8, 1, 5, 5}, {.stride = {2}, .padding = 2, .groups = 8}},
      {"dense3x3 gemm", {2, 6, 9, 9}, {10, 6, 3, 3}, {.padding = 1}},
      {"pointwise", {2, 12, 7, 7}, {20, 12, 1, 1}, {}},
      {"grouped", {1, 8, 9, 9}, {8, 2, 3, 3}, {.padding = 1, .groups = 4}},
  };
}

// Weights without zeros, so every output whose window covers the bad pixel must see it.
Tensor nonzero_weights(const Shape& s) {
  Tensor w = Tensor::uniform(s, 0.25, 1.0, 3);
  for (I i = 0; i < w.numel(); i += 2) w.set_flat(i, -w.get_flat(i));
  return w;
}

TEST(Numerics, NanAndInfReachExactlyTheOutputsThatSeeThem) {
  for (const Case& c : families()) {
    for (double bad : {std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
      SCOPED_TRACE(std::string(c.name) + (std::isnan(bad) ? " NaN" : " Inf"));
      Tensor x = Tensor::uniform(c.src, -1, 1, 4);
      const I w = c.src[3], pixel = 4 * w + 4;  // (4, 4) of image 0, channel 0
      x.set_flat(pixel, bad);
      const Tensor wei = nonzero_weights(c.wei);
      const Tensor xs = x.to(c.format);
      const Tensor y = ag::conv2d(ag::Variable(xs), ag::Variable(wei), {}, c.options).value();
      force_conv_kernel("ref");
      const Tensor ref = ag::conv2d(ag::Variable(x), ag::Variable(wei), {}, c.options).value();
      force_conv_kernel("");
      ASSERT_EQ(y.shape(), ref.shape());
      I non_finite = 0;
      for (I i = 0; i < y.numel(); ++i) {
        const double a = y.get_flat(i), b = ref.get_flat(i);
        // Same class as the reference: NaN where it is NaN, the same infinity, finite elsewhere.
        ASSERT_EQ(std::isnan(a), std::isnan(b)) << "output " << i << ": " << a << " vs " << b;
        if (!std::isnan(b)) {
          ASSERT_EQ(std::isinf(a), std::isinf(b)) << "output " << i << ": " << a << " vs " << b;
          if (std::isinf(b)) {
            ASSERT_EQ(a, b) << "output " << i;
          }
        }
        non_finite += !std::isfinite(a);
      }
      EXPECT_GT(non_finite, 0);
      EXPECT_LT(non_finite, y.numel());  // only the outputs that see the pixel
    }
  }
}

// The gradients of x and w for a NaN in one element of the output gradient.
std::pair<Tensor, Tensor> nan_gradients(const Case& c) {
  const ag::Variable x(Tensor::uniform(c.src, -1, 1, 5).to(c.format), true);
  const ag::Variable w(nonzero_weights(c.wei), true);
  ag::Variable y = ag::conv2d(x, w, {}, c.options);
  Tensor g = Tensor::ones(y.shape());
  g.set_flat(0, std::numeric_limits<double>::quiet_NaN());
  y.backward(g);
  return {x.grad(), w.grad()};
}

TEST(Numerics, NanGradientsReachWhatTheReferenceReaches) {
  for (const Case& c : families()) {
    SCOPED_TRACE(c.name);
    const auto [gx, gw] = nan_gradients(c);
    force_conv_kernel("ref");
    const auto [rx, rw] = nan_gradients(c);
    force_conv_kernel("");
    I nan_x = 0;
    for (I i = 0; i < gx.numel(); ++i) {
      ASSERT_EQ(std::isnan(gx.get_flat(i)), std::isnan(rx.get_flat(i))) << "diff_src " << i;
      nan_x += std::isnan(gx.get_flat(i));
    }
    // Weight gradients: at least where the reference has NaN. The reference leaves padding
    // out of the sum; the large-kernel backward-weights multiplies it as zeros, as im2col-based
    // peers (PyTorch's CPU path) do, so NaN * 0 may also reach taps that only see padding.
    for (I i = 0; i < gw.numel(); ++i)
      if (std::isnan(rw.get_flat(i))) {
        ASSERT_TRUE(std::isnan(gw.get_flat(i))) << "diff_wei " << i;
      }
    EXPECT_GT(nan_x, 0);
    EXPECT_LT(nan_x, gx.numel());
  }
}

TEST(Numerics, ActivationsPoolingAndLossesKeepNan) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor t = Tensor::from_values({1, 1, 2, 2}, {nan, 1, -1, 0.5});
  const ag::Variable x(t);
  for (auto f : {ag::relu, ag::relu6, ag::sigmoid, ag::tanh, ag::hardswish, ag::silu})
    EXPECT_TRUE(std::isnan(f(x).value().get_flat(0)));
  EXPECT_TRUE(std::isnan(ag::max_pool2d(x, {.kernel = {2}}).value().get_flat(0)));
  EXPECT_TRUE(std::isnan(ag::avg_pool2d(x, {.kernel = {2}}).value().get_flat(0)));
  const ag::Variable logits(Tensor::from_values({1, 3}, {std::numeric_limits<double>::infinity(), 0, 1}));
  const Tensor target = Tensor::from_values({1}, {1}, DType::I64);
  const double loss = ag::cross_entropy(logits, target).value().get_flat(0);
  EXPECT_FALSE(std::isfinite(loss));  // PyTorch: inf (log-softmax of an infinite logit)
}

// |y32 - y64| <= (terms + 2) * 2^-24 * sum|x*w| for each output: the bound of recursive
// float32 summation of `terms` products, with one rounding for each product and the result.
void expect_within_rounding_bound(const Shape& src, const Shape& wei, const ConvOptions& o,
                                  I terms, const char* what) {
  const Tensor x64 = Tensor::uniform(src, -1, 1, 6, DType::F64);
  const Tensor w64 = Tensor::uniform(wei, -1, 1, 7, DType::F64);
  const Tensor x32 = x64.to(DType::F32), w32 = w64.to(DType::F32);
  // The float64 result from the float32 inputs, so that only the arithmetic differs.
  const Tensor exact = conv2d(x32.to(DType::F64), w32.to(DType::F64), {}, o);
  auto abs = [](const Tensor& t) { return ag::abs(ag::Variable(t)).value(); };
  const Tensor scale = conv2d(abs(x32.to(DType::F64)), abs(w32.to(DType::F64)), {}, o);
  const Tensor got = conv2d(x32, w32, {}, o);
  const double unit = std::ldexp(1.0, -24);
  double worst = 0;
  for (I i = 0; i < got.numel(); ++i) {
    const double bound = static_cast<double>(terms + 2) * unit * scale.get_flat(i);
    const double err = std::abs(got.get_flat(i) - exact.get_flat(i));
    ASSERT_LE(err, bound) << what << " output " << i << " (" << last_conv_kernel() << ")";
    worst = std::max(worst, scale.get_flat(i) > 0 ? err / (unit * scale.get_flat(i)) : 0.0);
  }
  std::printf("%s (%s): worst error %.1f units of 2^-24 * sum|x*w|, bound %lld\n", what,
              last_conv_kernel().c_str(), worst, static_cast<long long>(terms + 2));
}

TEST(Numerics, Float32ErrorIsBoundedFor31x31KernelsAnd1024Channels) {
  expect_within_rounding_bound({1, 1024, 12, 12}, {1024, 1, 31, 31},
                               {.padding = 15, .groups = 1024}, 31 * 31, "depthwise 31x31, C=1024");
  expect_within_rounding_bound({2, 1024, 6, 6}, {64, 1024, 1, 1}, {}, 1024, "pointwise 1024->64");
  expect_within_rounding_bound({1, 1024, 5, 5}, {32, 1024, 3, 3}, {.padding = 1}, 1024 * 9,
                               "dense 3x3 1024->32");
}

TEST(Limits, RequestsOverTheMemoryLimitAreRefusedBeforeAllocation) {
  set_tensor_memory_limit(std::int64_t{1} << 30);  // 1 GiB
  test::expect_error<InvalidArgument>([] { Tensor::empty({1879048192}); },
                                      {"[1879048192]", "7516192768 bytes", "limit of 1073741824"});
  test::expect_error<InvalidArgument>([] { Tensor::zeros({std::int64_t{1} << 31}); },
                                      {"8589934592 bytes", "memory limit"});
  test::expect_error<InvalidArgument>([] { Tensor::empty({std::int64_t{1} << 62}); },
                                      {"more bytes than int64 can count"});
  EXPECT_EQ(Tensor::zeros({1024, 1024}).nbytes(), 4194304);  // under the limit: fine
  // A transposed convolution whose output would be 2^40 floats: refused, nothing allocated.
  const Tensor x = Tensor::ones({1, 1, 1024, 1024}), w = Tensor::ones({1, 1, 1, 1});
  test::expect_error<InvalidArgument>([&] { conv_transpose2d(x, w, {}, {.stride = {1024}}); },
                                      {"bytes", "limit"});
  set_tensor_memory_limit(0);
  test::expect_error<InvalidArgument>([] { set_tensor_memory_limit(-1); }, {">= 0", "-1"});
}

}  // namespace
}  // namespace convkit
