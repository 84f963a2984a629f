// count_params and summary() on small models whose numbers (receptive fields included) are
// worked out by hand, and on MobileNetV2.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>

#include "convkit/nn/nn.hpp"

namespace convkit::nn {
namespace {

/// The table line of the layer at `path` ("" when there is none).
std::string row_line(const std::string& table, const std::string& path) {
  const std::size_t at = table.find("\n" + path + " ");
  if (at == std::string::npos) return "";
  return table.substr(at + 1, table.find('\n', at + 1) - at - 1);
}

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
  using Field = std::vector<std::int64_t>;
  EXPECT_EQ(s.input, (Shape{2, 3, 8, 8}));
  EXPECT_EQ(s.rows[0].receptive_field, (Field{3, 3}));
  EXPECT_EQ(s.rows[2].receptive_field, (Field{3, 3}));  // ReLU keeps it
  EXPECT_EQ(s.rows[3].receptive_field, (Field{5, 5}));  // 3 + (3-1)*1
  EXPECT_TRUE(s.rows[4].receptive_field.empty());       // Flatten: no spatial output
  EXPECT_TRUE(s.rows[5].receptive_field.empty());
  EXPECT_EQ(s.total_macs, 27648 + 4608 + 5120);
  EXPECT_EQ(s.trainable_bytes, 2954 * 4);
  EXPECT_EQ(s.param_bytes, 2970 * 4);

  const std::string table = s.str();
  EXPECT_NE(table.find("Total params: 2,970 (11.60 KB)"), std::string::npos) << table;
  EXPECT_NE(table.find("Trainable params: 2,954 (11.54 KB)"), std::string::npos) << table;
  EXPECT_NE(table.find("Non-trainable params: 16 (64 B)"), std::string::npos) << table;
  EXPECT_NE(table.find("Total MACs: 37,376"), std::string::npos) << table;
  EXPECT_NE(table.find("[2, 16, 4, 4]"), std::string::npos) << table;
  EXPECT_EQ(table.rfind("Input shape: [2, 3, 8, 8]\n", 0), 0u) << table;
  EXPECT_NE(table.find(" RF  "), std::string::npos) << table;
  EXPECT_NE(row_line(table, "3").find(" 5x5 "), std::string::npos) << table;
  EXPECT_NE(row_line(table, "4").find(" - "), std::string::npos) << table;
}

// rf += (k-1)*dilation*jump and jump *= stride, layer after layer, per dimension.
TEST(Summary, ReceptiveFieldsHandComputed) {
  Sequential net;
  net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 3, .out = 4, .kernel = 3, .padding = 1}));
  net.push_back(std::make_shared<BatchNorm2d>(BatchNormOpts{.features = 4}));
  net.push_back(std::make_shared<Conv2d>(
      ConvOpts{.in = 4, .out = 4, .kernel = 3, .stride = 2, .padding = 1}));
  net.push_back(std::make_shared<Conv2d>(
      ConvOpts{.in = 4, .out = 4, .kernel = 3, .padding = 2, .dilation = 2}));
  net.push_back(std::make_shared<MaxPool2d>(PoolOpts{.kernel = 2}));
  net.push_back(std::make_shared<ReLU>());
  net.push_back(std::make_shared<SpatiallySeparableConv2d>(4, 4, 3));  // (3,1) then (1,3)
  net.push_back(std::make_shared<AvgPool2d>(PoolOpts{.kernel = 3, .stride = {1}, .padding = 1}));
  net.push_back(std::make_shared<AdaptiveAvgPool2d>(1));
  net.push_back(std::make_shared<Flatten>());
  net.push_back(std::make_shared<Linear>(LinearOpts{.in = 4, .out = 2}));

  const Summary s = summary(net, {1, 3, 32, 32});
  using Field = std::vector<std::int64_t>;
  std::vector<std::pair<std::string, Field>> got;
  for (const auto& r : s.rows) got.emplace_back(r.name, r.receptive_field);
  const std::vector<std::pair<std::string, Field>> want{
      {"0", {3, 3}},      // 1 + 2*1, jump 1
      {"1", {3, 3}},      // batch norm: unchanged
      {"2", {5, 5}},      // 3 + 2*1, jump 2
      {"3", {13, 13}},    // 5 + 2*2*2 (dilation 2)
      {"4", {15, 15}},    // 13 + 1*2, jump 4
      {"5", {15, 15}},    // ReLU
      {"6.0", {23, 15}},  // (3,1): 15 + 2*4 along the height only
      {"6.1", {23, 23}},  // (1,3): the width catches up
      {"7", {31, 31}},    // 23 + 2*4, stride 1
      {"8", {59, 59}},    // global pool over the 8x8 map: 31 + 7*4
      {"9", {}},          // Flatten
      {"10", {}},         // Linear
  };
  EXPECT_EQ(got, want);
  const std::string table = s.str();
  EXPECT_NE(row_line(table, "6.0").find(" 23x15 "), std::string::npos) << table;
  EXPECT_NE(row_line(table, "8").find(" 59x59 "), std::string::npos) << table;
}

TEST(Summary, ReceptiveFieldsOfAdaptivePoolingAndOneDimension) {
  // 7 -> 3 bins [0,3) [2,5) [4,7): window 3, step 2.
  Sequential net2d;
  net2d.push_back(std::make_shared<Conv2d>(
      ConvOpts{.in = 1, .out = 1, .kernel = 3, .stride = 2, .padding = 1}));  // 14 -> 7
  net2d.push_back(std::make_shared<AdaptiveAvgPool2d>(3, 7));  // width 7 -> 7: window 1
  net2d.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 1, .out = 1, .kernel = 2}));
  const Summary s2 = summary(net2d, {1, 1, 14, 14});
  using Field = std::vector<std::int64_t>;
  EXPECT_EQ(s2.rows[0].receptive_field, (Field{3, 3}));
  EXPECT_EQ(s2.rows[1].receptive_field, (Field{7, 3}));   // 3 + 2*2; jump 4 and 2
  EXPECT_EQ(s2.rows[2].receptive_field, (Field{11, 5}));  // + 1*4 and + 1*2

  Sequential net1d;
  net1d.push_back(std::make_shared<Conv1d>(ConvOpts{.in = 2, .out = 3, .kernel = 5, .stride = 2}));
  net1d.push_back(std::make_shared<Conv1d>(ConvOpts{.in = 3, .out = 3, .kernel = 3}));
  const Summary s1 = summary(net1d, {1, 2, 20});
  EXPECT_EQ(s1.rows[0].receptive_field, (Field{5}));
  EXPECT_EQ(s1.rows[1].receptive_field, (Field{9}));  // 5 + 2*2
  EXPECT_NE(row_line(s1.str(), "1").find(" 9 "), std::string::npos) << s1.str();
}

// A transposed convolution halves the spacing; one output of kernel 4 (or 3), stride 2 sees
// two neighbouring inputs. Checked against the sets of input pixels each output reads.
TEST(Summary, ReceptiveFieldsThroughTransposedConvolution) {
  for (std::int64_t k : {3, 4}) {
    Sequential net;
    net.push_back(std::make_shared<Conv2d>(
        ConvOpts{.in = 1, .out = 2, .kernel = 3, .stride = 2, .padding = 1}));
    net.push_back(std::make_shared<ConvTranspose2d>(
        ConvOpts{.in = 2, .out = 2, .kernel = k, .stride = 2, .padding = 1,
                 .output_padding = k == 3 ? 1 : 0}));
    net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 2, .out = 1, .kernel = 3, .padding = 1}));
    const Summary s = summary(net, {1, 1, 16, 16});
    using Field = std::vector<std::int64_t>;
    EXPECT_EQ(s.rows[0].receptive_field, (Field{3, 3})) << k;  // jump 2
    EXPECT_EQ(s.rows[1].receptive_field, (Field{5, 5})) << k;  // + 1*2, jump 1
    EXPECT_EQ(s.rows[1].output, (Shape{1, 2, 16, 16})) << k;
    EXPECT_EQ(s.rows[2].receptive_field, (Field{7, 7})) << k;  // + 2*1
  }
}

// SqueezeExcitation pools inside its forward: fc1 sees a 1x1 map after a 4x4 one, so from
// there every element depends on the whole map.
TEST(Summary, ReceptiveFieldsAfterPoolingInsideAForward) {
  Sequential net;
  net.push_back(std::make_shared<Conv2d>(
      ConvOpts{.in = 3, .out = 8, .kernel = 3, .stride = 2, .padding = 1}));  // 8 -> 4
  net.push_back(std::make_shared<SqueezeExcitation>(8, 4));
  net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 8, .out = 8, .kernel = 3, .padding = 1}));
  const Summary s = summary(net, {1, 3, 8, 8});
  using Field = std::vector<std::int64_t>;
  ASSERT_EQ(s.rows.size(), 4u);
  EXPECT_EQ(s.rows[0].receptive_field, (Field{3, 3}));    // jump 2
  EXPECT_EQ(s.rows[1].name, "1.fc1");
  EXPECT_EQ(s.rows[1].receptive_field, (Field{9, 9}));    // 3 + (4-1)*2
  EXPECT_EQ(s.rows[2].receptive_field, (Field{9, 9}));    // fc2
  EXPECT_EQ(s.rows[3].receptive_field, (Field{13, 13}));  // 9 + 2*2
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

// torchvision's MobileNetV2 at 224: the receptive field grows by 2*jump at each 3x3
// convolution (the stem and each block's depthwise one) and the stride-2 ones double the
// jump; the 1x1 convolutions, batch norms and skip connections add nothing.
TEST(Summary, MobileNetV2ReceptiveFields) {
  MobileNetV2 model;
  const Summary s = summary(model, {1, 3, 224, 224});
  std::map<std::string, std::vector<std::int64_t>> field;
  for (const auto& r : s.rows) field[r.name] = r.receptive_field;
  auto square = [](std::int64_t v) { return std::vector<std::int64_t>{v, v}; };

  std::int64_t rf = 3, jump = 2;  // the stem: 3x3 stride 2
  EXPECT_EQ(field.at("features.0.0"), square(3));
  EXPECT_EQ(field.at("features.0.2"), square(3));
  struct Stage { std::int64_t t, n, s; };  // expansion, blocks, first stride
  const Stage stages[] = {{1, 1, 1}, {6, 2, 2}, {6, 3, 2}, {6, 4, 2},
                          {6, 3, 1}, {6, 3, 2}, {6, 1, 1}};
  int block = 1;
  for (const Stage& st : stages) {
    for (std::int64_t i = 0; i < st.n; ++i, ++block) {
      const std::string path = fmt::format("features.{}.conv.", block);
      const std::string dw = path + (st.t == 1 ? "0.0" : "1.0");
      if (st.t != 1) {
        EXPECT_EQ(field.at(path + "0.0"), square(rf)) << path;  // the 1x1 expansion
      }
      rf += 2 * jump;
      jump *= i == 0 ? st.s : 1;
      EXPECT_EQ(field.at(dw), square(rf)) << dw;
      EXPECT_EQ(field.at(path + (st.t == 1 ? "2" : "3")), square(rf)) << path;  // last BN
    }
  }
  EXPECT_EQ(jump, 32);
  EXPECT_EQ(rf, 491);
  // Spot values: after the stride-2 stem, the first depthwise 3x3 sees 3 + 2*2.
  EXPECT_EQ(field.at("features.1.conv.0.0"), square(7));
  EXPECT_EQ(field.at("features.2.conv.1.0"), square(11));
  EXPECT_EQ(field.at("features.17.conv.1.0"), square(491));
  EXPECT_EQ(field.at("features.18.0"), square(491));  // the last 1x1 ConvBNAct
  EXPECT_EQ(field.at("features.18.2"), square(491));
  // Global pooling and flatten happen inside MobileNetV2::forward: the classifier has none.
  EXPECT_TRUE(field.at("classifier.0").empty());
  EXPECT_TRUE(field.at("classifier.1").empty());
  EXPECT_NE(row_line(s.str(), "features.18.0").find(" 491x491 "), std::string::npos) << s.str();
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
