// Variable and the backward engine: a topological sort from the root, then each node's
// closure in reverse order, accumulating gradients into the leaves (micrograd's design).
#include "convkit/autograd/variable.hpp"

#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "autograd/tensor_math.hpp"
#include "core/check.hpp"

namespace convkit::ag {

using detail::require;

struct Variable::Impl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> node;  // null for a leaf
};

namespace {
thread_local bool t_grad_enabled = true;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<Impl>()) {
  require(value.defined(), "Variable: the value is an undefined tensor");
  require(!requires_grad || is_floating(value.dtype()),
          "Variable: only F32/F64 values can require a gradient, got {}",
          dtype_name(value.dtype()));
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

namespace {
void require_defined(bool defined, const char* what) {
  require(defined, "Variable::{}: the variable is undefined", what);
}
}  // namespace

const Tensor& Variable::value() const {
  require_defined(defined(), "value");
  return impl_->value;
}

void Variable::set_value(const Tensor& value) const {
  require_defined(defined(), "set_value");
  require(value.shape() == impl_->value.shape() && value.dtype() == impl_->value.dtype(),
          "Variable::set_value: expected {} {}, got {} {}", dtype_name(impl_->value.dtype()),
          impl_->value.shape(), dtype_name(value.dtype()), value.shape());
  impl_->value = value;
}

const Tensor& Variable::grad() const {
  require_defined(defined(), "grad");
  return impl_->grad;
}

void Variable::set_grad(const Tensor& grad) const {
  require_defined(defined(), "set_grad");
  require(!grad.defined() || grad.shape() == impl_->value.shape(),
          "Variable::set_grad: gradient shape {} differs from the value's shape {}",
          grad.defined() ? grad.shape().str() : std::string("-"), impl_->value.shape());
  impl_->grad = grad;
}

void Variable::zero_grad() const {
  require_defined(defined(), "zero_grad");
  impl_->grad = Tensor();
}

bool Variable::requires_grad() const { return defined() && impl_->requires_grad; }

void Variable::set_requires_grad(bool on) const {
  require_defined(defined(), "set_requires_grad");
  require(is_leaf(), "Variable::set_requires_grad: only leaf variables can change it (the "
                     "result of '{}' is not a leaf; use detach())",
          impl_->node ? impl_->node->name : std::string());
  require(!on || is_floating(impl_->value.dtype()),
          "Variable::set_requires_grad: only F32/F64 values can require a gradient, got {}",
          dtype_name(impl_->value.dtype()));
  impl_->requires_grad = on;
}

bool Variable::is_leaf() const { return !defined() || impl_->node == nullptr; }

const std::shared_ptr<Node>& Variable::node() const {
  require_defined(defined(), "node");
  return impl_->node;
}

Variable Variable::detach() const {
  require_defined(defined(), "detach");
  return Variable(impl_->value, false);
}

Variable Variable::from_op(Tensor value, std::vector<Variable> inputs,
                           std::function<std::vector<Tensor>(const Tensor&)> backward,
                           std::string name) {
  bool needs = false;
  if (grad_enabled())
    for (const Variable& in : inputs) needs = needs || in.requires_grad();
  Variable out(std::move(value), false);
  if (!needs) return out;
  out.impl_->requires_grad = true;
  out.impl_->node = std::make_shared<Node>(
      Node{std::move(inputs), std::move(backward), std::move(name)});
  return out;
}

void Variable::backward(const Tensor& grad_output, bool retain_graph) const {
  require_defined(defined(), "backward");
  require(impl_->requires_grad,
          "backward: the variable does not require a gradient (no input of the ops that made "
          "it requires one, or it was made under NoGradGuard)");
  const Tensor& v = impl_->value;
  Tensor seed;
  if (grad_output.defined()) {
    require(grad_output.shape() == v.shape(),
            "backward: grad_output has shape {} but the variable has shape {}",
            grad_output.shape(), v.shape());
    seed = grad_output.to(v.dtype());
  } else {
    require(v.numel() == 1,
            "backward: the variable has shape {} ({} elements); a gradient is implied only for "
            "a single element, pass grad_output",
            v.shape(), v.numel());
    seed = Tensor::ones(v.shape(), v.dtype());
  }
  NoGradGuard no_grad;

  // Depth-first post-order from the root, iterative so that deep graphs do not overflow.
  std::vector<Impl*> order;
  std::unordered_set<Impl*> seen;
  std::vector<std::pair<Impl*, std::size_t>> stack{{impl_.get(), 0}};
  seen.insert(impl_.get());
  while (!stack.empty()) {
    auto& [cur, next] = stack.back();
    if (cur->node && next < cur->node->inputs.size()) {
      const Variable& in = cur->node->inputs[next++];
      if (in.requires_grad() && seen.insert(in.impl_.get()).second)
        stack.emplace_back(in.impl_.get(), 0);
      continue;
    }
    order.push_back(cur);
    stack.pop_back();
  }

  // Gradients of the non-leaf variables reached so far, by variable.
  std::unordered_map<Impl*, Tensor> grads;
  grads[impl_.get()] = seed;
  std::vector<Node*> visited;  // freed at the end: freeing earlier could drop Impls in `order`
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Impl* cur = *it;
    auto found = grads.find(cur);
    if (found == grads.end()) continue;  // nothing flowed here (e.g. an unused input)
    const Tensor g = std::move(found->second);
    grads.erase(found);
    if (!cur->node) {
      if (!cur->grad.defined())
        cur->grad = g.clone(MemoryFormat::Contiguous);
      else
        detail::add_into(cur->grad, g);
      continue;
    }
    Node& node = *cur->node;
    require(static_cast<bool>(node.backward),
            "backward: the graph through '{}' was already freed by an earlier backward; pass "
            "retain_graph=true to the first call to go through it twice",
            node.name);
    std::vector<Tensor> input_grads = node.backward(g);
    require(input_grads.size() == node.inputs.size(),
            "backward: '{}' returned {} gradients for {} inputs", node.name, input_grads.size(),
            node.inputs.size());
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      const Variable& in = node.inputs[i];
      Tensor& gi = input_grads[i];
      if (!in.requires_grad() || !gi.defined()) continue;
      require(gi.shape() == in.shape(),
              "backward: '{}' returned a gradient of shape {} for input {} of shape {}",
              node.name, gi.shape(), i, in.shape());
      auto slot = grads.find(in.impl_.get());
      if (slot == grads.end())
        grads.emplace(in.impl_.get(), gi);
      else
        slot->second = detail::add(slot->second, gi);
    }
    visited.push_back(&node);
  }
  if (!retain_graph) {
    // Frees the saved tensors; a second backward through these nodes then says so. The nodes
    // themselves stay alive through the root, which still holds its own node.
    std::vector<Variable> keep_alive;
    for (Node* node : visited) {
      node->backward = nullptr;
      for (Variable& in : node->inputs) keep_alive.push_back(std::move(in));
      node->inputs.clear();
    }
  }
}

}  // namespace convkit::ag
