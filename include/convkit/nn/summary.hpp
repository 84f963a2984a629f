// A Keras-style summary of a model: per-layer output shapes, parameters and multiply-adds.
#pragma once

#include <string>
#include <vector>

#include "convkit/nn/module.hpp"

namespace convkit::nn {

/// One leaf module of the model as the summary shows it.
struct SummaryRow {
  std::string name;  // PyTorch path, e.g. "features.1.conv.0.0"
  std::string type;  // "Conv2d"
  Shape output;      // output shape for the summarized input (first call)
  std::int64_t params = 0;  // the module's own parameters (trainable or not)
  std::int64_t macs = 0;    // multiply-adds of its forward pass for that input
};

struct Summary {
  std::vector<SummaryRow> rows;
  ParamCount count;          // count_params(model)
  std::int64_t param_bytes = 0, trainable_bytes = 0, non_trainable_bytes = 0;
  std::int64_t total_macs = 0;  // sum over rows
  /// The table: name, type, output shape, params, MACs; then the totals with sizes in KB/MB
  /// (1 KB = 1024 bytes), like Keras' model.summary().
  std::string str() const;
};

/// Runs the model once on zeros of shape `input` (batch included) in eval mode without
/// recording a graph, restores its mode, and lists every leaf module that ran, in
/// named_modules() order. Multiply-adds count the whole batch.
///   std::cout << nn::summary(model, {1, 3, 224, 224}).str();
Summary summary(Module& model, const Shape& input);

/// "1,234,567"
std::string with_commas(std::int64_t n);
/// "13.37 MB" / "133.25 KB" / "12 B"
std::string format_bytes(std::int64_t bytes);

}  // namespace convkit::nn
