// The model presets of the convkit command: what --model names, and how a saved file says
// which preset it holds.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convkit/nn/module.hpp"

namespace convkit::cli {

/// Everything that decides a preset's architecture. Saved into exported weights and
/// checkpoints as metadata, so `convkit summary FILE` can rebuild the model.
struct ModelSpec {
  std::string preset = "standard_cnn";  // one of preset_names()
  double width = 1.0;                   // > 0; multiplies every layer's channels
  std::int64_t classes = 10;            // > 0
  std::int64_t in_channels = 3;         // > 0
  std::int64_t image_size = 32;         // > 0: square input side the model is adapted to
};

/// "standard_cnn", "separable_cnn", "mobilenet_v1", "mobilenet_v2".
const std::vector<std::string>& preset_names();
/// One line saying what the preset is, for --help and the compare report.
std::string describe(const ModelSpec& spec);

/// Builds the preset. Throws InvalidArgument naming the preset or the option that is wrong.
///  - standard_cnn: three stages of two 3x3 Conv-BN-ReLU at 32, 64, 128 channels (times
///    width), 2x2 max-pool between stages, global average pool, Linear.
///  - separable_cnn: the same with every 3x3 convolution replaced by a depthwise 3x3 and a
///    pointwise 1x1 (each followed by BN, ReLU after the pointwise one).
///  - mobilenet_v1 / mobilenet_v2: torchvision's models with `width`, adapted to the input
///    size: total stride 8 for images up to 64 pixels, 16 up to 128, else 32.
std::shared_ptr<nn::Module> make_model(const ModelSpec& spec);

/// The spec as safetensors metadata ("convkit.model", "convkit.width", ...), and back.
/// from_metadata throws FormatError naming `source` when a key is missing or malformed.
std::map<std::string, std::string> to_metadata(const ModelSpec& spec);
ModelSpec from_metadata(const std::map<std::string, std::string>& metadata,
                        const std::string& source);

}  // namespace convkit::cli
