// MobileNetV1 and MobileNetV2 built exactly like torchvision (structure, rounding, keys, init).
#include <algorithm>
#include <array>

#include "convkit/nn/mobilenet.hpp"
#include "core/check.hpp"
#include "nn/init.hpp"

namespace convkit::nn {

using convkit::detail::require;

namespace {

void check_options(const char* model, const MobileNetOpts& o) {
  // Above 1000 the channel counts stop being meaningful long before they overflow.
  require(o.width > 0 && o.width <= 1000, "{}: width must be in (0, 1000], got {}", model,
          o.width);
  require(o.num_classes > 0, "{}: num_classes must be > 0, got {}", model, o.num_classes);
  require(o.dropout >= 0 && o.dropout <= 1, "{}: dropout must be in [0, 1], got {}", model,
          o.dropout);
  require(o.in_channels > 0, "{}: in_channels must be > 0, got {}", model, o.in_channels);
  require(o.total_stride == 8 || o.total_stride == 16 || o.total_stride == 32,
          "{}: total_stride must be 8, 16 or 32, got {}", model, o.total_stride);
}

/// Hands out the strides of the five stride-2 layers in order: the first ones become 1 when
/// the total stride is below 32.
class StrideBudget {
 public:
  explicit StrideBudget(std::int64_t total_stride)
      : to_drop_(total_stride == 32 ? 0 : total_stride == 16 ? 1 : 2) {}
  std::int64_t next(std::int64_t stride) {
    if (stride != 2 || to_drop_ == 0) return stride;
    --to_drop_;
    return 1;
  }

 private:
  int to_drop_;
};

/// torchvision's MobileNetV2 initialization, applied to every descendant.
void torchvision_init(Module& model) {
  for (auto& [path, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<ConvNd*>(m)) {
      const Shape& w = conv->weight.shape();
      conv->weight.value().copy_from(
          init::kaiming_normal_fan_out(w, w.numel() / w[1]));  // fan_out = out * prod(k)
      if (conv->bias.defined()) conv->bias.value().fill(0);
    } else if (auto* linear = dynamic_cast<Linear*>(m)) {
      linear->weight.value().copy_from(Tensor::normal(linear->weight.shape(), 0, 0.01, next_seed()));
      if (linear->bias.defined()) linear->bias.value().fill(0);
    }  // BatchNorm already starts at ones / zeros
  }
}

ag::Variable pool_and_classify(Sequential& features, Sequential& classifier,
                               const ag::Variable& x) {
  ag::Variable y = features(x);
  y = ag::flatten(ag::adaptive_avg_pool2d(y, 1, 1), 1);
  return classifier(y);
}

}  // namespace

MobileNetV2::MobileNetV2(const MobileNetOpts& o) {
  check_options("MobileNetV2", o);
  struct Stage { std::int64_t t, c, n, s; };
  constexpr std::array<Stage, 7> stages{{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2},
                                         {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2},
                                         {6, 320, 1, 1}}};
  std::int64_t channels = make_divisible(32 * o.width);
  const std::int64_t last = make_divisible(1280 * std::max(1.0, o.width));
  StrideBudget strides(o.total_stride);
  features = register_module("features", std::make_shared<Sequential>());
  features->push_back(std::make_shared<ConvBNAct>(ConvBNActOpts{
      .in = o.in_channels, .out = channels, .stride = strides.next(2), .act = Act::ReLU6}));
  for (const Stage& st : stages) {
    const std::int64_t out = make_divisible(static_cast<double>(st.c) * o.width);
    const std::int64_t stage_stride = strides.next(st.s);
    for (std::int64_t i = 0; i < st.n; ++i) {
      features->push_back(std::make_shared<InvertedResidual>(
          channels, out, i == 0 ? stage_stride : 1, static_cast<double>(st.t)));
      channels = out;
    }
  }
  features->push_back(std::make_shared<ConvBNAct>(
      ConvBNActOpts{.in = channels, .out = last, .kernel = 1, .act = Act::ReLU6}));
  classifier = register_module("classifier", std::make_shared<Sequential>());
  classifier->push_back(std::make_shared<Dropout>(o.dropout, o.dropout_seed));
  classifier->push_back(std::make_shared<Linear>(LinearOpts{.in = last, .out = o.num_classes}));
  if (o.torchvision_init) torchvision_init(*this);
}

ag::Variable MobileNetV2::forward(const ag::Variable& x) {
  return pool_and_classify(*features, *classifier, x);
}

MobileNetV1::MobileNetV1(const MobileNetOpts& o) {
  check_options("MobileNetV1", o);
  struct Block { std::int64_t out, stride; };
  constexpr std::array<Block, 13> blocks{{{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                          {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                          {512, 1}, {1024, 2}, {1024, 1}}};
  std::int64_t channels = make_divisible(32 * o.width);
  StrideBudget strides(o.total_stride);
  features = register_module("features", std::make_shared<Sequential>());
  features->push_back(std::make_shared<ConvBNAct>(ConvBNActOpts{
      .in = o.in_channels, .out = channels, .stride = strides.next(2), .act = Act::ReLU}));
  for (const Block& b : blocks) {
    const std::int64_t out = make_divisible(static_cast<double>(b.out) * o.width);
    auto block = std::make_shared<Sequential>();
    block->push_back(std::make_shared<ConvBNAct>(ConvBNActOpts{
        .in = channels, .out = channels, .stride = strides.next(b.stride), .groups = channels}));
    block->push_back(
        std::make_shared<ConvBNAct>(ConvBNActOpts{.in = channels, .out = out, .kernel = 1}));
    features->push_back(block);
    channels = out;
  }
  classifier = register_module("classifier", std::make_shared<Sequential>());
  classifier->push_back(std::make_shared<Dropout>(o.dropout, o.dropout_seed));
  classifier->push_back(
      std::make_shared<Linear>(LinearOpts{.in = channels, .out = o.num_classes}));
  if (o.torchvision_init) torchvision_init(*this);
}

ag::Variable MobileNetV1::forward(const ag::Variable& x) {
  return pool_and_classify(*features, *classifier, x);
}

}  // namespace convkit::nn
