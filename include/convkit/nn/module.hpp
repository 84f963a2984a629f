// Module: the base of every layer, block and model; parameters, buffers, children, state_dict.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convkit/autograd/variable.hpp"
#include "convkit/core/tensor.hpp"

namespace convkit::nn {

/// Named tensors in a fixed order: what state_dict() returns and load_state_dict() takes
/// (the same pairs io::save_safetensors writes and io::load_safetensors reads).
using StateDict = std::vector<std::pair<std::string, Tensor>>;

/// A list of sizes written as one int (used for every dimension) or a braced list:
/// `.kernel = 3`, `.kernel = {3, 1}`.
struct Ints {
  std::vector<std::int64_t> v;
  Ints(std::int64_t all) : v{all} {}  // NOLINT: implicit, like PyTorch's int-or-tuple
  Ints(std::initializer_list<std::int64_t> list) : v(list) {}
  Ints(std::vector<std::int64_t> list) : v(std::move(list)) {}  // NOLINT
};

/// How a layer's output positions read its input positions along each spatial dimension,
/// which is all a receptive field needs (padding only shifts the window): output position i
/// of a direct layer reads inputs i*stride + j*dilation, j = 0..kernel-1. A transposed
/// convolution runs the other way (input i writes outputs i*stride + j*dilation), so its
/// stride divides the spacing of the positions instead of multiplying it. One value per
/// spatial dimension, height before width.
struct Geometry {
  std::vector<std::int64_t> kernel, stride, dilation;
  bool transposed = false;
};

/// Options of Module::state_dict.
struct StateDictOptions {
  /// Names of pruned parameters (nn::prune). By default a pruned parameter keeps its key
  /// "<name>" and its mask is the buffer "<name>_mask". true writes torch.nn.utils.prune's
  /// names instead: "<name>_orig", after the module's other parameters, beside "<name>_mask",
  /// which PyTorch's own pruned modules load. load_state_dict accepts either.
  bool pytorch_prune_names = false;
};

namespace detail {
struct ModuleAccess;
}

/// Seeds the generator every default initialization draws from (torch.manual_seed). Two
/// models built after the same seed get identical parameters.
void manual_seed(std::uint64_t seed);
/// The next seed of that generator (each initialized tensor takes one).
std::uint64_t next_seed();

/// The base of layers, blocks and models, shaped like torch.nn.Module.
///
/// A module owns parameters (ag::Variable, trainable unless told otherwise), buffers (plain
/// Tensors such as BatchNorm's running statistics) and children, each under a name.
/// state_dict() lists, like PyTorch, a module's own parameters, then its own buffers, then
/// each child's entries under "<child>.", in registration order; so the keys of a model built
/// with the same structure and names equal PyTorch's (`features.1.conv.0.0.weight`).
///
///   nn::Sequential net;
///   net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 3, .out = 8, .kernel = 3}));
///   net.push_back(std::make_shared<nn::ReLU>());
///   ag::Variable y = net(x);
///   io::save_safetensors("net.safetensors", net.state_dict());
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation; composite modules call their children through operator().
  virtual ag::Variable forward(const ag::Variable& x) = 0;
  /// The class name shown in summaries ("Conv2d", "InvertedResidual").
  virtual std::string type_name() const = 0;
  /// Multiply-adds of one forward pass for an input of `in` producing `out` (summary);
  /// 0 for modules that do no multiply-adds or whose work is counted in their children.
  virtual std::int64_t macs(const Shape& in, const Shape& out) const;
  /// The sliding window of a layer that has one (convolutions, pooling) for an input of
  /// shape `in`, for the summary's receptive fields; std::nullopt for layers that work on
  /// each position alone (batch norm, activations, dropout) or have no spatial layout
  /// (Linear, Flatten), and for composite modules (their children answer).
  virtual std::optional<Geometry> geometry(const Shape& in) const;

  /// forward(x), recorded by a running summary().
  ag::Variable operator()(const ag::Variable& x);

  /// Training mode for this module and every descendant (dropout active, batch norm using
  /// and updating batch statistics); eval() is train(false).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Every parameter of this module and its descendants, in state_dict order.
  std::vector<ag::Variable> parameters() const;
  std::vector<std::pair<std::string, ag::Variable>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  /// This module (named "") and every descendant, depth first, with their dotted paths.
  std::vector<std::pair<std::string, Module*>> named_modules();
  /// Direct children in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  /// This module's own parameters (not its children's).
  const std::vector<std::pair<std::string, ag::Variable>>& own_parameters() const {
    return params_;
  }
  /// Drops every parameter's gradient.
  void zero_grad();

  /// What forward reads for the parameter `name`: the parameter itself, or, when it is
  /// pruned (nn::prune), the parameter times its mask, or, when it is parametrized
  /// (nn::parametrize), the output of its parametrizations. An undefined Variable when the
  /// module has no such parameter (a convolution without bias). The public members such as
  /// Conv2d::weight stay the stored, free tensor (PyTorch's weight_orig or
  /// parametrizations.weight.original); param("weight") is the weight the layer uses.
  ag::Variable param(const std::string& name) const;
  /// The parameters this module's forward reads through param(), which are therefore the
  /// ones that can be pruned or parametrized (convolutions and Linear: weight and bias).
  virtual std::vector<std::string> transformable_params() const { return {}; }

  /// Parameters and buffers by dotted key. The tensors share storage with the module.
  StateDict state_dict(const StateDictOptions& options = {}) const;
  /// Copies values into the parameters and buffers by key (converting the dtype if needed).
  /// Checks everything before changing anything: a key whose shape differs is always an
  /// error; with `strict`, so are missing and unexpected keys. The InvalidArgument lists
  /// every missing, unexpected and shape-mismatched key.
  void load_state_dict(const StateDict& state, bool strict = true);

 protected:
  /// Adds a parameter (returned handle shares the value). Names must be unique here.
  ag::Variable register_parameter(const std::string& name, Tensor value,
                                  bool requires_grad = true);
  /// Adds a buffer (the returned Tensor shares storage with the registered one).
  Tensor register_buffer(const std::string& name, Tensor value);
  /// Adds a child under `name` and returns it.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }
  /// Puts `child` in the place of the child registered under `name` (same name, same
  /// position; it takes this module's training mode). For containers that reach their
  /// children only through children(), such as Sequential; a module that also keeps a typed
  /// pointer to the child must not use it.
  void replace_child(const std::string& name, std::shared_ptr<Module> child);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void require_new_name(const std::string& name) const;
  void collect(const std::string& prefix, StateDict* state,
               std::vector<std::pair<std::string, ag::Variable>>* params,
               std::vector<std::pair<std::string, Tensor>>* buffers,
               const StateDictOptions& options = {}) const;
  friend struct detail::ModuleAccess;  // nn::prune and nn::parametrize rearrange the storage

  std::vector<std::pair<std::string, ag::Variable>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::vector<std::string> pruned_;  // parameters masked by "<name>_mask", in pruning order
};

/// Parameter counts as Keras reports them: trainable parameters, and non-trainable ones
/// (frozen parameters plus floating-point buffers such as BatchNorm's running statistics;
/// integer counters like num_batches_tracked are not counted).
///   MobileNetV2(1.0, 1000 classes): total 3,538,984, trainable 3,504,872, non-trainable 34,112.
struct ParamCount {
  std::int64_t total = 0, trainable = 0, non_trainable = 0;
};
ParamCount count_params(const Module& module);

}  // namespace convkit::nn
