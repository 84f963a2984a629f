// Variable: a tensor with a gradient and the node that made it; the dynamic-graph core.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convkit/core/tensor.hpp"

namespace convkit::ag {

class Variable;

/// One recorded operation: its inputs and the closure that, given the gradient of the
/// operation's output, returns the gradient of each input (an undefined Tensor for an input
/// that needs none). micrograd's `_backward`, flashlight's GradFunc.
struct Node {
  std::vector<Variable> inputs;
  std::function<std::vector<Tensor>(const Tensor& grad_output)> backward;
  std::string name;  // the op, for error messages ("conv2d", "add", ...)
};

/// A shared handle: copies refer to the same value, gradient and node (like torch.Tensor).
///   Variable w(Tensor::uniform({8, 1, 3, 3}, -1, 1, 7), /*requires_grad=*/true);
///   Variable y = ag::sum(ag::conv2d(x, w, {}, {.padding = 1, .groups = 8}));
///   y.backward();                 // w.grad() now holds d(sum)/dw
class Variable {
 public:
  Variable() = default;  // undefined: defined() is false
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  /// Replaces the value in place (optimizers, load_state_dict); shape and dtype must match.
  void set_value(const Tensor& value) const;
  /// The accumulated gradient; undefined until a backward pass reaches this variable.
  const Tensor& grad() const;
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the gradient (like set_to_none=True)

  bool requires_grad() const;
  void set_requires_grad(bool on) const;
  /// True for variables created by the user, false for results of recorded ops.
  bool is_leaf() const;
  const std::shared_ptr<Node>& node() const;

  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  int dim() const { return value().dim(); }
  std::int64_t size(int d) const { return value().size(d); }
  std::int64_t numel() const { return value().numel(); }

  /// Back-propagates from this variable: seed is ones for a single-element variable, or
  /// `grad_output` (same shape). Gradients accumulate (+=) into every leaf that requires
  /// one. The graph is freed afterwards unless retain_graph.
  void backward(const Tensor& grad_output = {}, bool retain_graph = false) const;

  /// The same value without history: never requires a gradient.
  Variable detach() const;

  /// Builds the result of an op: records `node` when grad mode is on and some input
  /// requires a gradient, else returns a plain variable. Used by every differentiable op.
  static Variable from_op(Tensor value, std::vector<Variable> inputs,
                          std::function<std::vector<Tensor>(const Tensor&)> backward,
                          std::string name);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Whether ops record the graph on this thread (true by default).
bool grad_enabled();

/// Disables recording on this thread for its lifetime (torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace convkit::ag
