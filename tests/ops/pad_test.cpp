// pad and pad_backward against hand-computed PyTorch results, and their adjointness.
#include <gtest/gtest.h>

#include "convkit/ops/pad.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

Tensor row(const std::vector<double>& v) {
  return Tensor::from_values({1, 1, static_cast<std::int64_t>(v.size())}, v, DType::F64);
}

TEST(Pad, EachModeMatchesPyTorch) {
  const Tensor x = row({1, 2, 3, 4});
  // torch.nn.functional.pad(torch.tensor([[[1.,2,3,4]]]), (2, 3), mode)
  EXPECT_EQ(pad(x, {2}, {3}, PaddingMode::Zeros).to_vector(),
            (std::vector<double>{0, 0, 1, 2, 3, 4, 0, 0, 0}));
  EXPECT_EQ(pad(x, {2}, {3}, PaddingMode::Reflect).to_vector(),
            (std::vector<double>{3, 2, 1, 2, 3, 4, 3, 2, 1}));
  EXPECT_EQ(pad(x, {2}, {3}, PaddingMode::Replicate).to_vector(),
            (std::vector<double>{1, 1, 1, 2, 3, 4, 4, 4, 4}));
  EXPECT_EQ(pad(x, {2}, {3}, PaddingMode::Circular).to_vector(),
            (std::vector<double>{3, 4, 1, 2, 3, 4, 1, 2, 3}));
  EXPECT_EQ(pad(x, {1}, {0}, PaddingMode::Zeros, 9).to_vector(),
            (std::vector<double>{9, 1, 2, 3, 4}));
}

TEST(Pad, TwoDimensionsAndChannelsLast) {
  const Tensor x = Tensor::from_values({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6}, DType::F64);
  const Tensor y = pad(x.to(MemoryFormat::ChannelsLast), {1, 0}, {0, 2}, PaddingMode::Replicate);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 5}));
  EXPECT_EQ(y.to_vector(), (std::vector<double>{1, 2, 3, 3, 3, 1, 2, 3, 3, 3, 4, 5, 6, 6, 6}));
}

TEST(Pad, BackwardIsTheAdjoint) {
  for (PaddingMode mode : {PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate,
                           PaddingMode::Circular}) {
    const Tensor x = Tensor::uniform({2, 3, 4, 5}, -1, 1, 1, DType::F64);
    const std::vector<std::int64_t> before{2, 1}, after{3, 4};
    const Tensor y = pad(x, before, after, mode);
    const Tensor r = Tensor::uniform(y.shape(), -1, 1, 2, DType::F64);
    const Tensor g = pad_backward(r, x.shape(), before, after, mode);
    double lhs = 0, rhs = 0;
    const auto vy = y.to_vector(), vr = r.to_vector(), vg = g.to_vector(), vx = x.to_vector();
    for (std::size_t i = 0; i < vy.size(); ++i) lhs += vy[i] * vr[i];
    for (std::size_t i = 0; i < vx.size(); ++i) rhs += vx[i] * vg[i];
    EXPECT_NEAR(lhs, rhs, 1e-12) << static_cast<int>(mode);
  }
}

TEST(Pad, RefusesPaddingTheModeCannotDo) {
  test::expect_error<InvalidArgument>([] { pad(row({1, 2}), {2}, {0}, PaddingMode::Reflect); },
                                      {"reflect padding (2, 0)", "input size 2"});
  test::expect_error<InvalidArgument>([] { pad(row({1, 2}), {0}, {3}, PaddingMode::Circular); },
                                      {"circular padding (0, 3)"});
  test::expect_error<InvalidArgument>([] { pad(row({1, 2}), {-1}, {0}, PaddingMode::Zeros); },
                                      {"non-negative", "(-1, 0)"});
}

}  // namespace
}  // namespace convkit
