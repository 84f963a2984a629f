// Optimizer: the base of SGD, Adam and AdamW — parameters, learning rate, zero_grad, state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convkit/autograd/variable.hpp"
#include "convkit/core/tensor.hpp"

namespace convkit::optim {

/// Tensors by name, in a fixed order: an optimizer's state, a model's state_dict.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
/// Parameters by name (e.g. a Module's named_parameters()).
using NamedVariables = std::vector<std::pair<std::string, ag::Variable>>;

/// Names parameters "0", "1", ... (PyTorch's optimizer state_dict numbers them the same way).
NamedVariables number_params(const std::vector<ag::Variable>& params);

/// What every optimizer shares: a list of float32/float64 leaf parameters, each updated from
/// its gradient by step(); one learning rate that schedules change with set_lr(); and state
/// (momentum buffers, moment estimates, step counts) exported and imported as named tensors
/// so that a checkpoint can resume bit-identically.
///
///   optim::SGD opt(model_params, {.lr = 0.1, .momentum = 0.9});
///   for (...) { opt.zero_grad(); loss.backward(); opt.step(); }
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() const;
  /// Updates every parameter that has a gradient; parameters without one are skipped and
  /// their state is left untouched, as in PyTorch. A gradient must have its parameter's shape.
  virtual void step() = 0;

  /// The learning rate the next step() uses.
  double lr() const { return lr_; }
  /// Sets the learning rate (schedules call this); must be finite and >= 0.
  void set_lr(double lr);
  /// The learning rate given at construction: the base that schedules scale
  /// (PyTorch's param_group["initial_lr"]). Restored by load_state_dict.
  double initial_lr() const { return initial_lr_; }

  const std::vector<ag::Variable>& params() const { return params_; }
  const std::vector<std::string>& names() const { return names_; }
  /// "SGD", "Adam" or "AdamW": what a state written by this optimizer can be loaded into.
  virtual std::string_view kind() const = 0;

  /// The state as named tensors: "lr" and "initial_lr" (F64 scalars), and per parameter that
  /// has been stepped "<name>.<buffer>" (e.g. "conv.weight.momentum_buffer",
  /// "conv.weight.exp_avg", "conv.weight.step" as an I64 scalar). The tensors are copies.
  NamedTensors state_dict() const;
  /// Restores a state_dict() of an optimizer of the same kind and options over parameters
  /// of the same names and shapes. Parameters absent from `state` start fresh. Throws
  /// InvalidArgument listing unexpected keys and naming any shape or dtype mismatch; on a
  /// throw the optimizer is unchanged.
  void load_state_dict(const NamedTensors& state);

 protected:
  /// Checks the parameters (defined, leaves, float32/float64, requiring a gradient, names
  /// unique and non-empty, no variable twice) and the learning rate.
  Optimizer(NamedVariables params, double lr, std::string_view who);

  /// The buffers each parameter's state holds, in export order (e.g. {"momentum_buffer"}).
  virtual std::vector<std::string> buffer_names() const = 0;
  /// Per-parameter state: the buffers (undefined until the first step) and the step count.
  struct ParamState {
    std::vector<Tensor> buffers;  // one per buffer_names(), contiguous, the parameter's dtype
    std::int64_t step = 0;
  };
  std::vector<ParamState>& states() { return states_; }
  /// Whether this optimizer counts steps per parameter (exports "<name>.step").
  virtual bool counts_steps() const { return false; }

 private:
  std::vector<ag::Variable> params_;
  std::vector<std::string> names_;
  std::vector<ParamState> states_;
  double lr_ = 0;
  double initial_lr_ = 0;
  std::string who_;
};

}  // namespace convkit::optim
