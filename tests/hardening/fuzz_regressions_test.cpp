// Inputs the fuzzers (fuzz/, docs/hardening.md) found to crash or misbehave, replayed through
// the public API: each is now refused with InvalidArgument or handled exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/ops/conv.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using test::expect_error;
using I = std::int64_t;
constexpr I kMax = std::numeric_limits<I>::max();

// fuzz/corpus/state_dict/counter-f64-2p63: 2^63 passed the range check `v <= (double)INT64_MAX`
// (that double is 2^63) and the cast to int64 was undefined (x86 gave INT64_MIN).
TEST(FuzzRegressions, DoubleTwoTo63DoesNotFitInt64) {
  expect_error<InvalidArgument>([] { Tensor::from_values({1}, {0x1p63}, DType::I64); },
                                {"does not fit in I64"});
  expect_error<InvalidArgument>([] { Tensor::full({2}, -0x1p63 * 2, DType::I64); },
                                {"does not fit in I64"});
  expect_error<InvalidArgument>([] { Tensor::from_values({1}, {256.0}, DType::U8); },
                                {"256", "does not fit in U8"});
  // The edges that do fit still convert exactly.
  const Tensor t = Tensor::from_values({3}, {0x1p63 - 1024, -0x1p63, 255.0}, DType::I64);
  EXPECT_EQ(t.data<I>()[0], kMax - 1023);
  EXPECT_EQ(t.data<I>()[1], std::numeric_limits<I>::min());
  EXPECT_EQ(Tensor::from_values({1}, {255.0}, DType::U8).data<std::uint8_t>()[0], 255);
}

}  // namespace
}  // namespace convkit
