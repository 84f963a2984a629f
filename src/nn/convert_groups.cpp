// Grouped <-> dense convolution weights and modules, and the helpers the other conversions share.
#include <fmt/format.h>

#include "convkit/nn/convert.hpp"
#include "core/check.hpp"
#include "nn/convert_util.hpp"

namespace convkit::nn {

using convkit::detail::require;

namespace convert_detail {

int spatial_dims(const Tensor& weight, const char* who, const char* what) {
  require(weight.defined(), "{}: {} is undefined", who, what);
  require(weight.dim() >= 3 && weight.dim() <= 5,
          "{}: {} must be (out, in/groups, k...) with 1 to 3 spatial dimensions, got shape {}", who,
          what, weight.shape());
  require(is_floating(weight.dtype()), "{}: {} must be F32 or F64, got {}", who, what,
          dtype_name(weight.dtype()));
  return weight.dim() - 2;
}

std::int64_t at_dim(const std::vector<std::int64_t>& v, int d) {
  return v.size() == 1 ? v[0] : v.at(static_cast<std::size_t>(d));
}

DType result_dtype(const Tensor& a, const Tensor& b, const char* who) {
  require(is_floating(a.dtype()) && (!b.defined() || is_floating(b.dtype())),
          "{}: weights must be F32 or F64", who);
  return a.dtype() == DType::F64 || (b.defined() && b.dtype() == DType::F64) ? DType::F64
                                                                             : DType::F32;
}

const char* mode_name(PaddingMode m) {
  switch (m) {
    case PaddingMode::Zeros:
      return "zeros";
    case PaddingMode::Reflect:
      return "reflect";
    case PaddingMode::Replicate:
      return "replicate";
    case PaddingMode::Circular:
      return "circular";
  }
  return "?";
}

std::shared_ptr<ConvNd> make_conv(int nd, bool transposed, const ConvOpts& o) {
  if (transposed) {
    if (nd == 1) return std::make_shared<ConvTranspose1d>(o);
    if (nd == 2) return std::make_shared<ConvTranspose2d>(o);
    return std::make_shared<ConvTranspose3d>(o);
  }
  if (nd == 1) return std::make_shared<Conv1d>(o);
  if (nd == 2) return std::make_shared<Conv2d>(o);
  return std::make_shared<Conv3d>(o);
}

std::shared_ptr<ConvNd> make_conv_from(const ConvParams& p, bool training) {
  const int nd = p.weight.dim() - 2;
  std::vector<std::int64_t> kernel(p.weight.shape().begin() + 2, p.weight.shape().end());
  const ConvOptions& o = p.options;
  auto conv = make_conv(nd, false,
                        ConvOpts{.in = p.weight.size(1) * o.groups,
                                 .out = p.weight.size(0),
                                 .kernel = kernel,
                                 .stride = o.stride,
                                 .padding = o.padding,
                                 .dilation = o.dilation,
                                 .groups = o.groups,
                                 .bias = p.bias.defined(),
                                 .padding_mode = o.padding_mode});
  conv->weight.set_value(p.weight.to(conv->weight.dtype()).contiguous());
  if (p.bias.defined()) conv->bias.set_value(p.bias.to(conv->bias.dtype()).contiguous());
  conv->train(training);
  return conv;
}

}  // namespace convert_detail

using namespace convert_detail;

ConvParams conv_params(const ConvNd& conv) {
  // The weight and bias the layer uses: masked when pruned, constrained when parametrized.
  ag::NoGradGuard no_grad;
  const ag::Variable w = conv.param("weight"), b = conv.param("bias");
  return ConvParams{.weight = w.value(),
                    .bias = b.defined() ? b.value() : Tensor{},
                    .options = conv.conv_options()};
}

// Weights are walked as (rows, cols, taps): rows = out (direct) or in (transposed), cols the
// per-group channel count, taps the kernel positions; row r belongs to group r / (rows/groups).

Tensor grouped_to_dense_weight(const Tensor& weight, std::int64_t groups) {
  const char* who = "grouped_to_dense_weight";
  spatial_dims(weight, who, "weight");
  const std::int64_t rows = weight.size(0), cols = weight.size(1);
  require(groups > 0, "{}: groups must be > 0, got {}", who, groups);
  require(rows % groups == 0, "{}: groups {} does not divide the weight's first dimension {}", who,
          groups, rows);
  const std::int64_t taps = weight.numel() / (rows * cols), rows_per_group = rows / groups;
  std::vector<std::int64_t> shape(weight.shape().begin(), weight.shape().end());
  shape[1] = cols * groups;
  const std::vector<double> w = weight.to_vector();
  std::vector<double> dense(static_cast<std::size_t>(rows * cols * groups * taps), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t first_col = r / rows_per_group * cols;
    for (std::int64_t c = 0; c < cols; ++c)
      for (std::int64_t t = 0; t < taps; ++t)
        dense[static_cast<std::size_t>((r * cols * groups + first_col + c) * taps + t)] =
            w[static_cast<std::size_t>((r * cols + c) * taps + t)];
  }
  return Tensor::from_values(Shape(shape), dense, weight.dtype());
}

namespace {

/// The kernel position (ky, kx, ...) of flat tap t of a weight of `shape`.
std::vector<std::int64_t> kernel_index(const Shape& shape, std::int64_t t) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(shape.rank() - 2));
  for (int d = shape.rank() - 1; d >= 2; --d) {
    idx[static_cast<std::size_t>(d - 2)] = t % shape[d];
    t /= shape[d];
  }
  return idx;
}

}  // namespace

Tensor dense_to_grouped_weight(const Tensor& weight, std::int64_t groups) {
  const char* who = "dense_to_grouped_weight";
  spatial_dims(weight, who, "weight");
  const std::int64_t rows = weight.size(0), cols = weight.size(1);
  require(groups > 0, "{}: groups must be > 0, got {}", who, groups);
  require(rows % groups == 0 && cols % groups == 0,
          "{}: groups {} must divide both out {} and in {} (weight shape {})", who, groups, rows,
          cols, weight.shape());
  const std::int64_t taps = weight.numel() / (rows * cols), rows_per_group = rows / groups;
  const std::int64_t cols_per_group = cols / groups;
  std::vector<std::int64_t> shape(weight.shape().begin(), weight.shape().end());
  shape[1] = cols_per_group;
  const std::vector<double> w = weight.to_vector();
  std::vector<double> grouped(static_cast<std::size_t>(rows * cols_per_group * taps));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t grp = r / rows_per_group, first_col = grp * cols_per_group;
    for (std::int64_t c = 0; c < cols; ++c) {
      const bool inside = c >= first_col && c < first_col + cols_per_group;
      for (std::int64_t t = 0; t < taps; ++t) {
        const double v = w[static_cast<std::size_t>((r * cols + c) * taps + t)];
        if (inside) {
          grouped[static_cast<std::size_t>((r * cols_per_group + c - first_col) * taps + t)] = v;
          continue;
        }
        require(v == 0.0,
                "{}: the weight is not block diagonal for groups {}: weight[out {}, in {}] at "
                "kernel position ({}) is {} but output channel {} is in group {}, which reads "
                "only input channels {}..{}",
                who, groups, r, c, fmt::join(kernel_index(weight.shape(), t), ", "), v, r, grp,
                first_col, first_col + cols_per_group - 1);
      }
    }
  }
  return Tensor::from_values(Shape(shape), grouped, weight.dtype());
}

namespace {

/// `conv` rebuilt with `groups` and weight `wei` (same kind, bias and geometry).
std::shared_ptr<ConvNd> regrouped(const ConvNd& conv, std::int64_t groups, const Tensor& wei) {
  ConvOpts o = conv.options();
  o.groups = groups;
  auto out = make_conv(conv.ndims(), conv.transposed(), o);
  out->weight.set_value(wei.to(out->weight.dtype()));
  const Tensor bias = conv_params(conv).bias;
  if (bias.defined()) out->bias.set_value(bias.clone());
  out->train(conv.is_training());
  return out;
}

}  // namespace

std::shared_ptr<ConvNd> to_dense(const ConvNd& conv) {
  return regrouped(conv, 1, grouped_to_dense_weight(conv_params(conv).weight, conv.options().groups));
}

std::shared_ptr<ConvNd> to_grouped(const ConvNd& conv, std::int64_t groups) {
  const ConvOpts& o = conv.options();
  require(groups > 0 && o.in % groups == 0 && o.out % groups == 0,
          "to_grouped: groups {} must be > 0 and divide in {} and out {} of the {}", groups, o.in,
          o.out, conv.type_name());
  const Tensor dense = grouped_to_dense_weight(conv_params(conv).weight, o.groups);
  return regrouped(conv, groups, dense_to_grouped_weight(dense, groups));
}

}  // namespace convkit::nn
