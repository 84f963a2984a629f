// Runs the example of docs/nn.md (keep the two in step).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "convkit/autograd/functional.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"

namespace convkit {
namespace {

TEST(DocsNn, ExampleRuns) {
  const Tensor targets = Tensor::from_values({8}, {0, 1, 2, 3, 4, 5, 6, 7}, DType::I64);
  const auto path = std::filesystem::temp_directory_path() / "convkit_docs_nn.safetensors";
  std::ostringstream cout;

  nn::manual_seed(0);
  nn::Sequential net;
  net.push_back(std::make_shared<nn::ConvBNAct>(nn::ConvBNActOpts{.in = 3, .out = 16, .stride = 2}));
  net.push_back(std::make_shared<nn::SeparableConv2d>(
      nn::SeparableOpts{.in = 16, .out = 32, .kernels_per_layer = 2}));
  net.push_back(std::make_shared<nn::ChannelScale>(32, /*bias=*/true));
  net.push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net.push_back(std::make_shared<nn::Flatten>());
  net.push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 32, .out = 10}));

  ag::Variable logits = net(ag::Variable(Tensor::uniform({8, 3, 32, 32}, -1, 1, 1)));
  ag::cross_entropy(logits, targets).backward();

  io::save_safetensors(path, net.state_dict());
  net.load_state_dict(io::load_safetensors(path).tensors);
  cout << nn::summary(net, {1, 3, 32, 32}).str();

  EXPECT_EQ(logits.shape(), (Shape{8, 10}));
  for (const auto& p : net.parameters()) EXPECT_TRUE(p.grad().defined());
  EXPECT_EQ(net.state_dict()[6].first, "1.depthwise.weight");
  EXPECT_NE(cout.str().find("1.depthwise"), std::string::npos);  // leaves are listed
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace convkit
