// The model presets of the convkit command and their metadata round trip.
#include "models.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "convkit/core/error.hpp"
#include "convkit/nn/nn.hpp"

namespace convkit::cli {

namespace {

std::int64_t scaled(std::int64_t channels, double width) {
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(channels) * width));
}

std::int64_t total_stride_for(std::int64_t image_size) {
  return image_size <= 64 ? 8 : image_size <= 128 ? 16 : 32;
}

/// standard_cnn and separable_cnn: stages of two 3x3 convolutions, the same depth and widths;
/// `separable` swaps each for depthwise 3x3 + BN + ReLU + pointwise 1x1 + BN + ReLU.
std::shared_ptr<nn::Module> make_cnn(const ModelSpec& spec, bool separable) {
  auto net = std::make_shared<nn::Sequential>();
  auto conv3x3 = [&](std::int64_t in, std::int64_t out) {
    if (!separable) {
      net->push_back(std::make_shared<nn::ConvBNAct>(nn::ConvBNActOpts{.in = in, .out = out}));
      return;
    }
    auto block = std::make_shared<nn::Sequential>();
    block->push_back(
        std::make_shared<nn::ConvBNAct>(nn::ConvBNActOpts{.in = in, .out = in, .groups = in}));
    block->push_back(
        std::make_shared<nn::ConvBNAct>(nn::ConvBNActOpts{.in = in, .out = out, .kernel = 1}));
    net->push_back(block);
  };
  std::int64_t channels = spec.in_channels;
  const std::int64_t widths[] = {scaled(32, spec.width), scaled(64, spec.width),
                                 scaled(128, spec.width)};
  for (int stage = 0; stage < 3; ++stage) {
    if (stage > 0) net->push_back(std::make_shared<nn::MaxPool2d>(nn::PoolOpts{.kernel = 2}));
    conv3x3(channels, widths[stage]);
    conv3x3(widths[stage], widths[stage]);
    channels = widths[stage];
  }
  net->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net->push_back(std::make_shared<nn::Flatten>());
  net->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = channels, .out = spec.classes}));
  return net;
}

void check(const ModelSpec& spec) {
  const auto& names = preset_names();
  if (std::find(names.begin(), names.end(), spec.preset) == names.end())
    throw InvalidArgument(fmt::format("model: unknown preset '{}' (choose one of: {})", spec.preset,
                                      fmt::join(names, ", ")));
  if (!(spec.width > 0 && spec.width <= 16))
    throw InvalidArgument(fmt::format("model: width must be in (0, 16], got {}", spec.width));
  if (spec.classes <= 0)
    throw InvalidArgument(fmt::format("model: classes must be > 0, got {}", spec.classes));
  if (spec.in_channels <= 0)
    throw InvalidArgument(fmt::format("model: in_channels must be > 0, got {}", spec.in_channels));
  // Three stages pool twice, mobilenets stride 8 to 32: smaller inputs have no pixels left.
  if (spec.image_size < 8)
    throw InvalidArgument(fmt::format("model: image_size must be >= 8, got {}", spec.image_size));
}

}  // namespace

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names{"standard_cnn", "separable_cnn", "mobilenet_v1",
                                              "mobilenet_v2"};
  return names;
}

std::string describe(const ModelSpec& spec) {
  const auto w = [&](std::int64_t c) { return scaled(c, spec.width); };
  if (spec.preset == "standard_cnn")
    return fmt::format("3 stages x 2 Conv3x3-BN-ReLU at {}-{}-{} channels, max-pool, linear", w(32),
                       w(64), w(128));
  if (spec.preset == "separable_cnn")
    return fmt::format(
        "standard_cnn with each 3x3 conv as depthwise 3x3 + pointwise 1x1 ({}-{}-{} channels)",
        w(32), w(64), w(128));
  const std::string name = spec.preset == "mobilenet_v1" ? "MobileNetV1" : "MobileNetV2";
  return fmt::format("torchvision {} width {}, total stride {} for {}x{} inputs", name, spec.width,
                     total_stride_for(spec.image_size), spec.image_size, spec.image_size);
}

std::shared_ptr<nn::Module> make_model(const ModelSpec& spec) {
  check(spec);
  if (spec.preset == "standard_cnn") return make_cnn(spec, false);
  if (spec.preset == "separable_cnn") return make_cnn(spec, true);
  const nn::MobileNetOpts options{.width = spec.width,
                                  .num_classes = spec.classes,
                                  .in_channels = spec.in_channels,
                                  .total_stride = total_stride_for(spec.image_size)};
  if (spec.preset == "mobilenet_v1") return std::make_shared<nn::MobileNetV1>(options);
  return std::make_shared<nn::MobileNetV2>(options);
}

std::map<std::string, std::string> to_metadata(const ModelSpec& spec) {
  return {{"convkit.model", spec.preset},
          {"convkit.width", fmt::format("{}", spec.width)},
          {"convkit.classes", std::to_string(spec.classes)},
          {"convkit.in_channels", std::to_string(spec.in_channels)},
          {"convkit.image_size", std::to_string(spec.image_size)}};
}

ModelSpec from_metadata(const std::map<std::string, std::string>& metadata,
                        const std::string& source) {
  auto get = [&](const std::string& key) -> const std::string& {
    const auto it = metadata.find(key);
    if (it == metadata.end())
      throw FormatError(fmt::format(
          "{}: no '{}' in the file's metadata (not written by convkit train --export or its "
          "checkpoints)",
          source, key));
    return it->second;
  };
  auto integer = [&](const std::string& key) {
    const std::string& text = get(key);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      throw FormatError(
          fmt::format("{}: metadata '{}' is '{}', not an integer", source, key, text));
    return v;
  };
  ModelSpec spec;
  spec.preset = get("convkit.model");
  const std::string& width = get("convkit.width");
  try {
    std::size_t used = 0;
    spec.width = std::stod(width, &used);
    if (used != width.size()) throw std::invalid_argument(width);
  } catch (const std::exception&) {
    throw FormatError(
        fmt::format("{}: metadata 'convkit.width' is '{}', not a number", source, width));
  }
  spec.classes = integer("convkit.classes");
  spec.in_channels = integer("convkit.in_channels");
  spec.image_size = integer("convkit.image_size");
  try {
    check(spec);
  } catch (const InvalidArgument& e) {
    throw FormatError(fmt::format("{}: {}", source, e.what()));
  }
  return spec;
}

}  // namespace convkit::cli
