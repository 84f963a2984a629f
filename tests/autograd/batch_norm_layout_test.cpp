// Batch norm on channels-last tensors (SIMD loops across the channels of whole pixels, chunks
// of pixels on the threads) gives the bits of the NCHW path (scalar loops, channels on the
// threads), forward, running statistics and all three gradients, at any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include "convkit/autograd/functional.hpp"

namespace convkit::ag {
namespace {

struct Result {
  std::vector<double> y, running_mean, running_var, dx, dw, db;
};

Result run(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& g0,
           MemoryFormat format, bool training) {
  const Shape c{x0.size(1)};
  Tensor rm = Tensor::uniform(c, -0.5, 0.5, 11, x0.dtype());
  Tensor rv = Tensor::uniform(c, 0.5, 2, 12, x0.dtype());
  Variable x(x0.to(format).clone(format), true);
  Variable w(w0.clone(), true), b(b0.clone(), true);
  Variable y = batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
  EXPECT_EQ(y.value().memory_format(), x.value().memory_format());
  y.backward(g0.to(format));
  return {y.value().to_vector(), rm.to_vector(),       rv.to_vector(),
          x.grad().to_vector(),  w.grad().to_vector(), b.grad().to_vector()};
}

TEST(BatchNormLayout, ChannelsLastEqualsNchwBitForBit) {
  // Channel counts around the vector widths; values per channel under one 512-value chunk of
  // the sums, exactly one and two chunks, and several with a shorter last one.
  const Shape shapes[] = {{2, 1, 3, 3},   {3, 5, 4, 1},   {2, 16, 5, 5},    {4, 20, 3, 7},
                          {1, 35, 6, 6},  {8, 48, 14, 14}, {2, 33, 1, 40},  {2, 20, 16, 16},
                          {4, 3, 16, 16}, {3, 17, 20, 20}};
  for (const DType dtype : {DType::F32, DType::F64})
    for (const Shape& s : shapes)
      for (const bool training : {true, false}) {
        const Tensor x = Tensor::normal(s, 0.7, 2.0, 1, dtype);
        const Tensor w = Tensor::uniform({s[1]}, 0.5, 1.5, 2, dtype);
        const Tensor b = Tensor::uniform({s[1]}, -1, 1, 3, dtype);
        const Tensor g = Tensor::normal(s, 0, 1, 4, dtype);
        const Result nchw = run(x, w, b, g, MemoryFormat::Contiguous, training);
        const Result nhwc = run(x, w, b, g, MemoryFormat::ChannelsLast, training);
        const std::string what =
            s.str() + (dtype == DType::F32 ? " f32" : " f64") + (training ? " training" : " eval");
        EXPECT_EQ(nchw.y, nhwc.y) << what;
        EXPECT_EQ(nchw.running_mean, nhwc.running_mean) << what;
        EXPECT_EQ(nchw.running_var, nhwc.running_var) << what;
        EXPECT_EQ(nchw.dx, nhwc.dx) << what;
        EXPECT_EQ(nchw.dw, nhwc.dw) << what;
        EXPECT_EQ(nchw.db, nhwc.db) << what;
      }
}

// Channels-last runs chunks of pixels on the threads and NCHW runs channels: 1, 2 and 3
// threads must give the same bits in both layouts (5 chunks of the sums here).
TEST(BatchNormLayout, ThreadCountKeepsTheBits) {
  const int threads = omp_get_max_threads();
  const Shape s{4, 40, 24, 24};
  const Tensor x = Tensor::normal(s, 0.7, 2.0, 1), g = Tensor::normal(s, 0, 1, 4);
  const Tensor w = Tensor::uniform({s[1]}, 0.5, 1.5, 2), b = Tensor::uniform({s[1]}, -1, 1, 3);
  for (const MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    omp_set_num_threads(1);
    const Result one = run(x, w, b, g, format, true);
    for (const int t : {2, 3}) {
      omp_set_num_threads(t);
      const Result more = run(x, w, b, g, format, true);
      EXPECT_EQ(one.y, more.y) << t;
      EXPECT_EQ(one.running_var, more.running_var) << t;
      EXPECT_EQ(one.dx, more.dx) << t;
      EXPECT_EQ(one.dw, more.dw) << t;
      EXPECT_EQ(one.db, more.db) << t;
    }
  }
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace convkit::ag
