// BatchNorm1d/2d and Linear: parameters and buffers like PyTorch, math in ag::.
#include <cmath>

#include "convkit/nn/layers.hpp"
#include "core/check.hpp"
#include "nn/init.hpp"

namespace convkit::nn {

using convkit::detail::require;

BatchNorm::BatchNorm(int ndims, const BatchNormOpts& options)
    : ndims_(ndims), options_(options) {
  const auto& o = options_;
  require(o.features > 0, "{}: features must be > 0, got {}", type_name(), o.features);
  require(o.eps > 0, "{}: eps must be > 0, got {}", type_name(), o.eps);
  require(o.momentum >= 0 && o.momentum <= 1, "{}: momentum must be in [0, 1], got {}",
          type_name(), o.momentum);
  if (o.affine) {
    weight = register_parameter("weight", Tensor::ones({o.features}));
    bias = register_parameter("bias", Tensor::zeros({o.features}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({o.features}));
    running_var = register_buffer("running_var", Tensor::ones({o.features}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I64));
  }
}

std::string BatchNorm::type_name() const { return ndims_ == 1 ? "BatchNorm1d" : "BatchNorm2d"; }

ag::Variable BatchNorm::forward(const ag::Variable& x) {
  if (ndims_ == 1)
    require(x.dim() == 2 || x.dim() == 3, "BatchNorm1d: input must be (N, C) or (N, C, L), got {}",
            x.shape());
  else
    require(x.dim() == 4, "BatchNorm2d: input must be (N, C, H, W), got {}", x.shape());
  require(x.size(1) == options_.features, "{}: input has {} channels, the layer {}", type_name(),
          x.size(1), options_.features);
  const bool use_batch_stats = is_training() || !options_.track_running_stats;
  if (is_training() && options_.track_running_stats) num_batches_tracked.data<std::int64_t>()[0] += 1;
  return ag::batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats,
                        options_.momentum, options_.eps);
}

Linear::Linear(const LinearOpts& options) : options_(options) {
  require(options.in > 0 && options.out > 0, "Linear: in and out must be > 0, got in {} out {}",
          options.in, options.out);
  weight = register_parameter("weight", init::default_uniform({options.out, options.in}, options.in));
  if (options.bias) bias = register_parameter("bias", init::default_uniform({options.out}, options.in));
}

ag::Variable Linear::forward(const ag::Variable& x) {
  require(x.dim() >= 1 && x.size(x.dim() - 1) == options_.in,
          "Linear: the last input dimension must be {}, got input {}", options_.in,
          x.shape());
  return ag::linear(x, param("weight"), param("bias"));
}

std::vector<std::string> Linear::transformable_params() const {
  if (bias.defined()) return {"weight", "bias"};
  return {"weight"};
}

std::int64_t Linear::macs(const Shape&, const Shape& out) const {
  return out.numel() * options_.in;
}

}  // namespace convkit::nn
