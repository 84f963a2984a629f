// Properties of the reference convolution over random problems: float32 agrees with float64,
// results do not depend on memory layout, strided views or the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include "convkit/ops/conv_dispatch.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

// These are properties of the reference alone: optimized kernels round differently per
// layout and view (the list-driven test in conv_kernels_test.cpp covers them).
class ConvRef : public ::testing::Test {
 protected:
  void SetUp() override { force_conv_kernel("ref"); }
  void TearDown() override { force_conv_kernel(""); }
};

struct Passes {
  Tensor dst, diff_src, diff_wei, diff_bias;
};

Passes run_all(const ConvProblem& p, const Tensor& x, const Tensor& w, const Tensor& b,
               const Tensor& dy) {
  return {conv_forward(p, x, w, b), conv_backward_data(p, dy, w),
          conv_backward_weights(p, x, dy), p.has_bias ? conv_backward_bias(p, dy) : Tensor{}};
}

// bias_tol < 0: the same tolerance as the other passes.
void expect_same(const Passes& a, const Passes& b, double tol, const std::string& what,
                 double bias_tol = -1) {
  for (auto [x, y, role] : {std::tuple{a.dst, b.dst, "dst"}, {a.diff_src, b.diff_src, "diff_src"},
                            {a.diff_wei, b.diff_wei, "diff_wei"}, {a.diff_bias, b.diff_bias, "diff_bias"}}) {
    if (!x.defined()) continue;
    const double t = role == std::string("diff_bias") && bias_tol >= 0 ? bias_tol : tol;
    const CloseResult r = allclose(x, y, t, t);
    EXPECT_TRUE(r) << role << " of " << what << ": " << r.message;
  }
}

TEST_F(ConvRef, Float32AgreesWithFloat64) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < test::sweep_size(200, 5000); ++i) {
    const ConvProblem p64 = test::random_conv(rng, DType::F64, 3000).p;
    ConvProblem p32 = p64;
    p32.dtype = DType::F32;
    const Tensor x = test::random_src(p64, i), w = test::random_wei(p64, i + 1);
    const Tensor b = test::random_bias(p64, i + 2), dy = test::random_dst(p64, i + 3);
    auto f32 = [](const Tensor& t) { return t.defined() ? t.to(DType::F32) : t; };
    Passes lo = run_all(p32, f32(x), f32(w), f32(b), f32(dy));
    const Passes hi = run_all(p64, x, w, b, dy);
    // Inputs were rounded to float32 first, so the float32 run differs from the float64 one
    // by that rounding (relative 6e-8 per term) plus one final rounding.
    expect_same(lo, hi, 2e-5, p64.str());
  }
}

TEST_F(ConvRef, LayoutDoesNotChangeResults) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < test::sweep_size(100, 2500); ++i) {
    ConvProblem p = test::random_conv(rng, DType::F32, 3000).p;
    p.format = MemoryFormat::Contiguous;
    const Tensor x = test::random_src(p, i), w = test::random_wei(p, i + 1);
    const Tensor b = test::random_bias(p, i + 2), dy = test::random_dst(p, i + 3);
    const Passes nchw = run_all(p, x, w, b, dy);
    ConvProblem q = p;
    q.format = MemoryFormat::ChannelsLast;
    const Passes nhwc = run_all(q, x.to(MemoryFormat::ChannelsLast), w,  b,
                                dy.to(MemoryFormat::ChannelsLast));
    EXPECT_EQ(nhwc.dst.memory_format() == MemoryFormat::ChannelsLast || nhwc.dst.numel() == 0 ||
                  nhwc.dst.is_contiguous(),
              true);
    // The reference passes make the same sums in the same order: bitwise equal. The bias
    // gradient has no reference kernel: its NCHW rows are summed in SIMD lanes and its
    // channels-last pixels one after another, so the two round differently where a row is
    // as wide as a vector (8 floats on AVX2, 16 on AVX-512).
    expect_same(nchw, nhwc, 0.0, p.str(), 1e-5);
  }
}

TEST_F(ConvRef, StridedViewsGiveTheSameResults) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < test::sweep_size(60, 1500); ++i) {
    const ConvProblem p = test::random_conv(rng, DType::F64, 2000).p;
    // Views into larger tensors: one extra image and channel before, so that the data neither
    // starts at the storage's beginning nor is contiguous.
    Shape big = p.src_shape();
    big[0] += 1;
    big[1] += 1;
    const Tensor host = Tensor::uniform(big, -1, 1, i, DType::F64, p.format);
    const Tensor x = host.narrow(0, 1, p.mb).narrow(1, 1, p.ic);
    Shape wbig = p.wei_shape();
    wbig[0] += 2;
    const Tensor w = Tensor::uniform(wbig, -1, 1, i + 1, DType::F64).narrow(0, 2, p.wei_shape()[0]);
    const Tensor b = test::random_bias(p, i + 2), dy = test::random_dst(p, i + 3);
    expect_same(run_all(p, x, w, b, dy), run_all(p, x.clone(), w.clone(), b, dy), 0.0, p.str());
  }
}

TEST_F(ConvRef, ThreadCountDoesNotChangeResults) {
  std::mt19937_64 rng(10);
  const int threads = omp_get_max_threads();
  for (int i = 0; i < test::sweep_size(40, 1000); ++i) {
    const ConvProblem p = test::random_conv(rng, DType::F32, 3000).p;
    const Tensor x = test::random_src(p, i), w = test::random_wei(p, i + 1);
    const Tensor b = test::random_bias(p, i + 2), dy = test::random_dst(p, i + 3);
    omp_set_num_threads(1);
    const Passes one = run_all(p, x, w, b, dy);
    omp_set_num_threads(3);
    const Passes three = run_all(p, x, w, b, dy);
    expect_same(one, three, 0.0, p.str());
  }
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace convkit
