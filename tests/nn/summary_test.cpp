// count_params and summary() on a small model whose numbers are worked out by hand.
#include <gtest/gtest.h>

#include "convkit/nn/nn.hpp"

namespace convkit::nn {
namespace {

TEST(Summary, HandComputedSmallModel) {
  Sequential net;
  net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 3, .out = 8, .kernel = 3, .padding = 1}));
  net.push_back(std::make_shared<BatchNorm2d>(BatchNormOpts{.features = 8}));
  net.push_back(std::make_shared<ReLU>());
  net.push_back(std::make_shared<DepthwiseConv2d>(
      DepthwiseOpts{.channels = 8, .multiplier = 2, .stride = 2, .bias = false}));
  net.push_back(std::make_shared<Flatten>());
  net.push_back(std::make_shared<Linear>(LinearOpts{.in = 16 * 4 * 4, .out = 10}));

  const ParamCount c = count_params(net);
  // conv 3*8*9 + 8 = 224; BN 8 + 8 trainable, 8 + 8 running; depthwise 16*9 = 144;
  // linear 256*10 + 10 = 2570.
  EXPECT_EQ(c.trainable, 224 + 16 + 144 + 2570);
  EXPECT_EQ(c.non_trainable, 16);
  EXPECT_EQ(c.total, 2970);

  net.train();
  const Summary s = summary(net, {2, 3, 8, 8});
  EXPECT_TRUE(net.is_training());  // mode restored
  ASSERT_EQ(s.rows.size(), 6u);
  EXPECT_EQ(s.rows[0].name, "0");
  EXPECT_EQ(s.rows[0].type, "Conv2d");
  EXPECT_EQ(s.rows[0].output, (Shape{2, 8, 8, 8}));
  EXPECT_EQ(s.rows[0].params, 224);
  EXPECT_EQ(s.rows[0].macs, 2 * 8 * 8 * 8 * 27);  // 27,648
  EXPECT_EQ(s.rows[1].params, 16);
  EXPECT_EQ(s.rows[3].type, "DepthwiseConv2d");
  EXPECT_EQ(s.rows[3].output, (Shape{2, 16, 4, 4}));
  EXPECT_EQ(s.rows[3].macs, 2 * 16 * 4 * 4 * 9);  // 4,608
  EXPECT_EQ(s.rows[4].output, (Shape{2, 256}));
  EXPECT_EQ(s.rows[5].macs, 2 * 10 * 256);  // 5,120
  EXPECT_EQ(s.total_macs, 27648 + 4608 + 5120);
  EXPECT_EQ(s.trainable_bytes, 2954 * 4);
  EXPECT_EQ(s.param_bytes, 2970 * 4);

  const std::string table = s.str();
  EXPECT_NE(table.find("Total params: 2,970 (11.60 KB)"), std::string::npos) << table;
  EXPECT_NE(table.find("Trainable params: 2,954 (11.54 KB)"), std::string::npos) << table;
  EXPECT_NE(table.find("Non-trainable params: 16 (64 B)"), std::string::npos) << table;
  EXPECT_NE(table.find("Total MACs: 37,376"), std::string::npos) << table;
  EXPECT_NE(table.find("[2, 16, 4, 4]"), std::string::npos) << table;
}

TEST(Summary, MobileNetV2Totals) {
  MobileNetV2 model;
  const Summary s = summary(model, {1, 3, 224, 224});
  EXPECT_EQ(s.rows.front().name, "features.0.0");
  EXPECT_EQ(s.rows.front().output, (Shape{1, 32, 112, 112}));
  EXPECT_EQ(s.rows.back().name, "classifier.1");
  EXPECT_EQ(s.rows.back().output, (Shape{1, 1000}));
  EXPECT_EQ(s.count.total, 3'538'984);
  // torchvision's MobileNetV2 is quoted at 300 M multiply-adds (convolutions and the
  // classifier; batch norm and activations are not counted).
  EXPECT_EQ(s.total_macs, 300'774'272);  // PyTorch forward hooks give the same
  EXPECT_NE(s.str().find("Total params: 3,538,984 (13.50 MB)"), std::string::npos);
}

TEST(Summary, Formatting) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(1000), "1,000");
  EXPECT_EQ(with_commas(-3504872), "-3,504,872");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(2048), "2.00 KB");
  EXPECT_EQ(format_bytes(14019488), "13.37 MB");
}

}  // namespace
}  // namespace convkit::nn
