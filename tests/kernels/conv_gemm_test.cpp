// The GEMM-backed convolutions through the public API: dispatch picks them for dense,
// grouped and pointwise problems (never depthwise ones) in 1-D, 2-D and 3-D, and problems
// large enough to cut im2col into several pixel blocks agree with the reference.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "convkit/convkit.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

struct PassKernels {
  std::string fwd, bwd_data, bwd_weights;
};

// Runs the three passes of conv(x, w) and reports which kernel ran each.
PassKernels kernels_of(const Tensor& x, const Tensor& w, const ConvOptions& o) {
  const ConvProblem p = ConvProblem::make(x, w, Tensor{}, o, false);
  PassKernels k;
  const Tensor y = conv_forward(p, x, w, Tensor{});
  k.fwd = last_conv_kernel();
  conv_backward_data(p, y, w);
  k.bwd_data = last_conv_kernel();
  conv_backward_weights(p, x, y);
  k.bwd_weights = last_conv_kernel();
  return k;
}

void expect_all(const PassKernels& k, const std::string& name, const std::string& what) {
  EXPECT_EQ(k.fwd, name) << what;
  EXPECT_EQ(k.bwd_data, name) << what;
  EXPECT_EQ(k.bwd_weights, name) << what;
}

TEST(ConvGemm, DispatchPicksTheGemmKernels) {
  const auto cl = MemoryFormat::ChannelsLast;
  const Tensor x2 = Tensor::uniform({2, 8, 5, 6}, -1, 1, 1);
  const Tensor w1 = Tensor::uniform({12, 8, 1, 1}, -1, 1, 2);
  expect_all(kernels_of(x2, w1, {}), "conv_f32_nchw_1x1__gemm", "pointwise NCHW");
  expect_all(kernels_of(x2.to(cl), w1, {}), "conv_f32_nhwc_1x1__gemm", "pointwise NHWC");
  expect_all(kernels_of(x2, w1, {.stride = {2}}), "conv_f32_im2col__gemm", "pointwise stride 2");
  expect_all(kernels_of(x2, Tensor::uniform({6, 4, 3, 3}, -1, 1, 3), {.padding = 1, .groups = 2}),
             "conv_f32_im2col__gemm", "grouped 3x3");
  expect_all(kernels_of(x2.to(cl), Tensor::uniform({6, 8, 3, 2}, -1, 1, 4), {.dilation = {2}}),
             "conv_f32_im2col__gemm", "dense 3x2 dilated NHWC");
  const Tensor x1 = Tensor::uniform({1, 6, 9}, -1, 1, 5, DType::F64);
  expect_all(kernels_of(x1, Tensor::uniform({4, 6, 1}, -1, 1, 6, DType::F64), {}),
             "conv_f64_nchw_1x1__gemm", "1-D pointwise");
  expect_all(kernels_of(x1, Tensor::uniform({4, 3, 3}, -1, 1, 7, DType::F64), {.groups = 2}),
             "conv_f64_im2col__gemm", "1-D grouped");
  const Tensor x3 = Tensor::uniform({1, 4, 3, 4, 5}, -1, 1, 8);
  expect_all(kernels_of(x3, Tensor::uniform({6, 4, 1, 1, 1}, -1, 1, 9), {}),
             "conv_f32_nchw_1x1__gemm", "3-D pointwise");
  expect_all(kernels_of(x3, Tensor::uniform({6, 4, 2, 3, 3}, -1, 1, 10), {.padding = 1}),
             "conv_f32_im2col__gemm", "3-D dense");
  // Depthwise belongs to the dwconv kernels, whatever the multiplier.
  const PassKernels dw = kernels_of(x2, Tensor::uniform({16, 1, 3, 3}, -1, 1, 11), {.groups = 8});
  for (const std::string& k : {dw.fwd, dw.bwd_data, dw.bwd_weights})
    EXPECT_EQ(k.find("gemm"), std::string::npos) << k;
}

// The three passes with the default kernels and with the reference forced.
void expect_matches_reference(const Tensor& x, const Tensor& w, const Tensor& b,
                              const ConvOptions& o, const std::string& what) {
  const ConvProblem p = ConvProblem::make(x, w, b, o, false);
  const Tensor dy = Tensor::uniform(p.dst_shape(), -1, 1, 77, p.dtype, p.format);
  auto run = [&] {
    return std::array<Tensor, 3>{conv_forward(p, x, w, b), conv_backward_data(p, dy, w),
                                 conv_backward_weights(p, x, dy)};
  };
  const auto got = run();
  EXPECT_NE(last_conv_kernel().find("gemm"), std::string::npos) << what;
  force_conv_kernel("ref");
  const auto want = run();
  force_conv_kernel("");
  for (std::size_t i = 0; i < 3; ++i) {
    const CloseResult r = allclose(got[i], want[i], 1e-4, 1e-4);
    EXPECT_TRUE(r) << what << " pass " << i << ": " << r.message;
  }
}

// 64 input channels x 3x3 make 576 col rows; 44x44 output pixels then need two blocks of
// the ~4 MiB col in f32 and three in f64, so block edges and the beta = 1 accumulation of
// backward-weights across blocks and images are exercised.
TEST(ConvGemm, ProblemsCutIntoSeveralPixelBlocksMatchTheReference) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = Tensor::uniform({2, 64, 44, 44}, -1, 1, 1, dt);
    const Tensor w = Tensor::uniform({4, 64, 3, 3}, -1, 1, 2, dt);
    const Tensor b = Tensor::uniform({4}, -1, 1, 3, dt);
    expect_matches_reference(x, w, b, {.padding = 1}, "NCHW");
    expect_matches_reference(x.to(MemoryFormat::ChannelsLast), w, b, {.padding = 1}, "NHWC");
  }
  // A view with gaps between rows: dst is dense but src is not, and im2col reads through it.
  const Tensor wide = Tensor::uniform({1, 64, 44, 47}, -1, 1, 4);
  expect_matches_reference(wide.narrow(3, 2, 44), Tensor::uniform({4, 64, 3, 3}, -1, 1, 5),
                           Tensor{}, {.padding = 1}, "src view");
}

// One image and one group make a single task, so src/ops/ calls the kernel outside a parallel
// region and OpenBLAS splits each GEMM over the OpenMP threads itself. Its partition (and so
// which edge micro-kernels sum which elements) depends on the thread count: the bits are
// reproducible for a given count, and only close across counts.
TEST(ConvGemm, OpenBlasThreadsAreReproducibleForAGivenCount) {
  const int threads = omp_get_max_threads();
  const Tensor x = Tensor::uniform({1, 48, 40, 40}, -1, 1, 1);
  for (const Tensor& w : {Tensor::uniform({96, 48, 1, 1}, -1, 1, 2),
                          Tensor::uniform({32, 48, 3, 3}, -1, 1, 3)}) {
    const ConvProblem p = ConvProblem::make(x, w, Tensor{}, {.padding = w.size(2) / 2}, false);
    const Tensor dy = Tensor::uniform(p.dst_shape(), -1, 1, 4);
    auto run = [&](int n) {
      omp_set_num_threads(n);
      return std::array<Tensor, 3>{conv_forward(p, x, w, Tensor{}), conv_backward_data(p, dy, w),
                                   conv_backward_weights(p, x, dy)};
    };
    const auto one = run(1), two = run(2), two_again = run(2);
    EXPECT_NE(last_conv_kernel().find("gemm"), std::string::npos);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(two[i].to_vector(), two_again[i].to_vector()) << "pass " << i << " k" << w.size(2);
      // Backward-weights sums 1,600 products per element, so an element near zero can
      // differ by far more than 1e-5 of itself: bound the error by the largest magnitude.
      double scale = 0;
      for (double v : two[i].to_vector()) scale = std::max(scale, std::abs(v));
      const CloseResult r = allclose(one[i], two[i], 1e-5, 1e-6 * scale);
      EXPECT_TRUE(r) << "pass " << i << " k" << w.size(2) << ": " << r.message;
    }
  }
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace convkit
