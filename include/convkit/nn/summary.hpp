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
  std::int64_t params = 0;  // the module's parameters (trainable or not, parametrizations' too)
  std::int64_t macs = 0;    // multiply-adds of its forward pass for that input
  /// Receptive field of one output element in model-input pixels, per spatial dimension of
  /// the output ({h, w} for 2-D layers); empty when the output has no spatial dimensions
  /// (after Flatten, Linear, or a global pool done inside a forward). See summary().
  std::vector<std::int64_t> receptive_field;
};

struct Summary {
  Shape input;  // the shape summarized, batch included
  std::vector<SummaryRow> rows;
  ParamCount count;          // count_params(model)
  std::int64_t param_bytes = 0, trainable_bytes = 0, non_trainable_bytes = 0;
  std::int64_t total_macs = 0;  // sum over rows
  /// The table: name, type, output shape, receptive field ("7x7", "9" for 1-D, "-" when
  /// none), params, MACs; then the totals with sizes in KB/MB (1 KB = 1024 bytes), like
  /// Keras' model.summary().
  std::string str() const;
};

/// Runs the model once on zeros of shape `input` (batch included) in eval mode without
/// recording a graph, restores its mode, and lists every leaf module that ran (a module
/// without children other than its parametrizations; the model itself when it is one layer,
/// named after its type), in named_modules() order, with the numbers of its first call. Multiply-adds count the whole
/// batch.
///
/// Receptive fields follow the leaf calls in execution order, each dimension on its own,
/// starting from rf = 1 and jump = 1 (input pixels between neighbouring positions): a layer
/// with a Module::geometry() adds (kernel-1)*dilation*jump to rf and multiplies jump by its
/// stride; other layers keep both. The result is the theoretical field (padding ignored, so
/// it may exceed the image: MobileNetV2's last convolution sees 491x491 of a 224x224 input).
///   - Blocks are followed along their main path: a skip connection adds nothing, since the
///     identity sees less than the branch beside it (InvertedResidual, Residual).
///   - Global pooling sees its whole input: rf grows by (extent-1)*jump. So does pooling done
///     by code inside a forward, recognized when a layer's input is 1x1 after a larger map
///     (SqueezeExcitation's fc1) or when a spatial map follows non-spatial ones.
///   - A transposed convolution divides jump by its stride; rf grows by jump times the
///     widest span of inputs that reach one output: the largest tap offset m*dilation
///     (m < kernel) that is a multiple of the stride, divided by the stride. Later fields
///     may then be fractional and are rounded up.
///   - Rows whose output has no spatial dimensions (Flatten, Linear, Dropout after them)
///     have none: every element there may depend on every input pixel.
///   - A module called twice counts twice along the chain; its row shows the first call.
///   std::cout << nn::summary(model, {1, 3, 224, 224}).str();
Summary summary(Module& model, const Shape& input);

/// "1,234,567"
std::string with_commas(std::int64_t n);
/// "13.37 MB" / "133.25 KB" / "12 B"
std::string format_bytes(std::int64_t bytes);

}  // namespace convkit::nn
