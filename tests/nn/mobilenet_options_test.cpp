// MobileNet options beyond torchvision's: input channels and the total stride for small images.
#include <gtest/gtest.h>

#include "convkit/autograd/variable.hpp"
#include "convkit/nn/nn.hpp"
#include "test_util.hpp"

namespace convkit::nn {
namespace {

std::vector<std::pair<std::string, Shape>> shapes_of(const Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [k, t] : m.state_dict()) out.emplace_back(k, t.shape());
  return out;
}

Shape feature_shape(Module& model, Sequential& features, const Shape& input) {
  ag::NoGradGuard no_grad;
  model.eval();
  return features(ag::Variable(Tensor::zeros(input))).shape();
}

TEST(MobileNetOptions, TotalStrideDropsTheEarliestStrides) {
  for (const std::int64_t total : {32, 16, 8}) {
    MobileNetV2 v2({.width = 0.35, .num_classes = 10, .total_stride = total});
    MobileNetV1 v1({.width = 0.25, .num_classes = 10, .total_stride = total});
    const std::int64_t side = 64 / total;
    EXPECT_EQ(feature_shape(v2, *v2.features, {2, 3, 64, 64}), Shape({2, 1280, side, side}));
    EXPECT_EQ(feature_shape(v1, *v1.features, {2, 3, 64, 64}), Shape({2, 256, side, side}));
  }
  // Total stride 8: the stem and the 24-channel stage run at stride 1, the rest as before.
  MobileNetV2 small({.total_stride = 8});
  ag::NoGradGuard no_grad;
  small.eval();
  ag::Variable x(Tensor::zeros({1, 3, 32, 32}));
  const std::int64_t expected[] = {32, 32, 32, 32, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4};
  for (std::size_t i = 0; i < small.features->size(); ++i) {
    x = (*small.features)[i](x);
    EXPECT_EQ(x.size(2), expected[i]) << "features." << i;
  }
}

TEST(MobileNetOptions, KeysAndShapesDoNotDependOnStrideOrInputChannelsBeyondTheStem) {
  MobileNetV2 torchvision_like({.num_classes = 10});
  MobileNetV2 small({.num_classes = 10, .total_stride = 8});
  EXPECT_EQ(shapes_of(torchvision_like), shapes_of(small));
  MobileNetV2 grey({.num_classes = 10, .in_channels = 1});
  EXPECT_EQ(grey.state_dict().front().second.shape(), Shape({32, 1, 3, 3}));
  MobileNetV1 grey_v1({.num_classes = 10, .in_channels = 1});
  EXPECT_EQ(grey_v1.state_dict().front().second.shape(), Shape({32, 1, 3, 3}));
}

TEST(MobileNetOptions, RefusesBadValues) {
  test::expect_error<InvalidArgument>([] { MobileNetV2({.total_stride = 4}); },
                                      {"total_stride", "4"});
  test::expect_error<InvalidArgument>([] { MobileNetV1({.total_stride = 64}); },
                                      {"total_stride", "64"});
  test::expect_error<InvalidArgument>([] { MobileNetV2({.in_channels = 0}); },
                                      {"in_channels", "0"});
}

}  // namespace
}  // namespace convkit::nn
