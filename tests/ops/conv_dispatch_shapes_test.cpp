// The public entry points reach the optimized kernels on every benchmark shape: the kernels'
// own tests build their parameters by hand, so only this test sees what src/ops/ passes them.
#include <gtest/gtest.h>

#include <string>

#include "bench_util.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"

namespace convkit {
namespace {

// Each problem of bench/shapes/, at batch 1 to keep it cheap, in NCHW and channels-last: forward,
// backward-data and backward-weights all run a kernel other than the reference.
TEST(ConvDispatchShapes, BenchmarkProblemsRunOptimizedKernels) {
  const std::string dir = std::string(CONVKIT_FIXTURE_DIR) + "/../../bench/shapes/";
  force_conv_kernel("");
  for (const char* file :
       {"mobilenet_v2_dw.txt", "mobilenet_v2_pw.txt", "replknet_dw.txt", "dw_misc.txt"})
    for (const bench::ShapeLine& s : bench::read_shape_file(dir + file))
      for (const MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        ConvProblem p = s.problem;
        p.mb = 1;
        p.format = format;
        const Tensor x = Tensor::uniform(p.src_shape(), -1, 1, 1, DType::F32, p.format);
        const Tensor w = Tensor::uniform(p.wei_shape(), -1, 1, 2);
        const Tensor dy = Tensor::uniform(p.dst_shape(), -1, 1, 3, DType::F32, p.format);
        conv_forward(p, x, w);
        EXPECT_FALSE(last_conv_kernel().ends_with("__ref")) << "fwd " << file << " " << p.str();
        conv_backward_data(p, dy, w);
        EXPECT_FALSE(last_conv_kernel().ends_with("__ref"))
            << "bwd_data " << file << " " << p.str();
        conv_backward_weights(p, x, dy);
        EXPECT_FALSE(last_conv_kernel().ends_with("__ref"))
            << "bwd_weights " << file << " " << p.str();
      }
}

}  // namespace
}  // namespace convkit
