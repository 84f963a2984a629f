// Layers other than convolutions: batch norm, linear, activations, pools, dropout, containers.
#pragma once

#include <memory>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/module.hpp"

namespace convkit::nn {

/// Options of BatchNorm1d/2d, as in PyTorch.
struct BatchNormOpts {
  std::int64_t features = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;               // parameters weight (ones) and bias (zeros)
  bool track_running_stats = true;  // buffers running_mean, running_var, num_batches_tracked
};
/// Batch normalization over (N, C) or (N, C, L) (BatchNorm1d) or (N, C, H, W) (BatchNorm2d).
/// Training uses the batch statistics and updates the running ones with momentum and the
/// unbiased variance; eval uses the running statistics. Keys: weight, bias, running_mean,
/// running_var, num_batches_tracked (I64 scalar), PyTorch's order.
class BatchNorm : public Module {
 public:
  BatchNorm(int ndims, const BatchNormOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override;
  const BatchNormOpts& options() const { return options_; }
  ag::Variable weight, bias;
  Tensor running_mean, running_var, num_batches_tracked;

 private:
  int ndims_;  // 1 or 2
  BatchNormOpts options_;
};
struct BatchNorm1d : BatchNorm { explicit BatchNorm1d(const BatchNormOpts& o) : BatchNorm(1, o) {} };
struct BatchNorm2d : BatchNorm { explicit BatchNorm2d(const BatchNormOpts& o) : BatchNorm(2, o) {} };

/// Options of Linear.
struct LinearOpts {
  std::int64_t in = 0, out = 0;
  bool bias = true;
};
/// y = x W^T + b, W (out, in); PyTorch's initialization U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  explicit Linear(const LinearOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "Linear"; }
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  /// weight and bias (when there is one) can be pruned or parametrized.
  std::vector<std::string> transformable_params() const override;
  ag::Variable weight, bias;

 private:
  LinearOpts options_;
};

/// An activation without parameters: ReLU, ReLU6, Sigmoid, Hardsigmoid, Hardswish, SiLU,
/// Tanh; LeakyReLU(slope) and Softmax(dim) take an argument.
enum class Act { None, ReLU, ReLU6, LeakyReLU, Sigmoid, Hardsigmoid, Hardswish, SiLU, Tanh };
/// The function of an activation kind (None is the identity).
ag::Variable activate(Act kind, const ag::Variable& x, double negative_slope = 0.01);
const char* act_name(Act kind);

class Activation : public Module {
 public:
  explicit Activation(Act kind, double negative_slope = 0.01)
      : kind_(kind), negative_slope_(negative_slope) {}
  ag::Variable forward(const ag::Variable& x) override {
    return activate(kind_, x, negative_slope_);
  }
  std::string type_name() const override { return act_name(kind_); }
  Act kind() const { return kind_; }

 private:
  Act kind_;
  double negative_slope_;
};
struct ReLU : Activation { ReLU() : Activation(Act::ReLU) {} };
struct ReLU6 : Activation { ReLU6() : Activation(Act::ReLU6) {} };
struct LeakyReLU : Activation {
  explicit LeakyReLU(double negative_slope = 0.01) : Activation(Act::LeakyReLU, negative_slope) {}
};
struct Sigmoid : Activation { Sigmoid() : Activation(Act::Sigmoid) {} };
struct Hardsigmoid : Activation { Hardsigmoid() : Activation(Act::Hardsigmoid) {} };
struct Hardswish : Activation { Hardswish() : Activation(Act::Hardswish) {} };
struct SiLU : Activation { SiLU() : Activation(Act::SiLU) {} };
struct Tanh : Activation { Tanh() : Activation(Act::Tanh) {} };

/// softmax along `dim` (negative counts from the end).
class Softmax : public Module {
 public:
  explicit Softmax(int dim = -1) : dim_(dim) {}
  ag::Variable forward(const ag::Variable& x) override { return ag::softmax(x, dim_); }
  std::string type_name() const override { return "Softmax"; }

 private:
  int dim_;
};

/// Options of MaxPool2d and AvgPool2d, as in PyTorch (stride empty: equal to kernel).
struct PoolOpts {
  Ints kernel = 2;
  std::vector<std::int64_t> stride{};
  Ints padding = 0;
  Ints dilation = 1;             // max pooling only (AvgPool2d refuses anything but 1)
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const PoolOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::optional<Geometry> geometry(const Shape& in) const override;

 private:
  ag::Pool2dOptions options_;
};
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const PoolOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::optional<Geometry> geometry(const Shape& in) const override;

 private:
  ag::Pool2dOptions options_;
};
/// Average pooling to a fixed (oh, ow) output; AdaptiveAvgPool2d(1) is global pooling.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::int64_t oh, std::int64_t ow = -1);  // ow -1: equal to oh
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  /// Per dimension the widest bin and the largest step between bin starts: both in/out
  /// when out divides in; the whole input for global pooling (out 1).
  std::optional<Geometry> geometry(const Shape& in) const override;

 private:
  std::int64_t oh_, ow_;
};

/// Zeroes each element with probability p in training (scaling the rest by 1/(1-p)); the
/// identity in eval. Deterministic: the module keeps a seeded RNG state, advanced once per
/// training forward, so a run from the same seed drops the same elements.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }
  /// The RNG state (to save and restore with a checkpoint).
  std::uint64_t rng_state() const { return state_; }
  void set_rng_state(std::uint64_t state) { state_ = state; }

 private:
  double p_;
  std::uint64_t state_;
};

/// The RNG state of every Dropout in `model`, by module path ("classifier.0"), in module
/// order: save them with a checkpoint (io::Checkpoint::rng_states) so that a resumed run
/// drops the same elements as an uninterrupted one.
std::vector<std::pair<std::string, std::uint64_t>> dropout_rng_states(Module& model);
/// Restores states from dropout_rng_states. Throws InvalidArgument naming the paths when a
/// Dropout of `model` has no state in `states` or a state names no Dropout of `model`.
void load_dropout_rng_states(Module& model,
                             const std::vector<std::pair<std::string, std::uint64_t>>& states);

/// Flattens dimensions start_dim..end_dim into one (default: all but the batch).
class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1, int end_dim = -1) : start_(start_dim), end_(end_dim) {}
  ag::Variable forward(const ag::Variable& x) override { return ag::flatten(x, start_, end_); }
  std::string type_name() const override { return "Flatten"; }

 private:
  int start_, end_;
};

class Identity : public Module {
 public:
  ag::Variable forward(const ag::Variable& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

/// Children applied in order, named "0", "1", ... like torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  /// Appends a module under the next index and returns it.
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    register_module(std::to_string(size()), module);
    return module;
  }
  std::size_t size() const { return children().size(); }
  /// The i-th module.
  Module& operator[](std::size_t i) const;
  /// The i-th module as a shared pointer (to keep it, or to replace it).
  std::shared_ptr<Module> at(std::size_t i) const;
  /// Puts `module` in the i-th place (keys keep the index: "i.<its keys>"); fusion uses it.
  void replace(std::size_t i, std::shared_ptr<Module> module);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "Sequential"; }
};

/// x + body(x): the residual connection; body's keys are prefixed "body.".
class Residual : public Module {
 public:
  explicit Residual(std::shared_ptr<Module> body);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "Residual"; }
  std::shared_ptr<Module> body;
};

}  // namespace convkit::nn
