// Private access to a Module's storage for nn::prune and nn::parametrize (internal).
#pragma once

#include "convkit/nn/module.hpp"

namespace convkit::nn::detail {

/// nn::prune renames nothing but adds masks; nn::parametrize moves a parameter into the
/// "parametrizations" child. Both need the module's lists, which users only read.
struct ModuleAccess {
  static auto& params(Module& m) { return m.params_; }
  static auto& buffers(Module& m) { return m.buffers_; }
  static auto& children(Module& m) { return m.children_; }
  static auto& pruned(Module& m) { return m.pruned_; }
  static const auto& pruned(const Module& m) { return m.pruned_; }
  static void add_child(Module& m, const std::string& name, std::shared_ptr<Module> child) {
    m.add_child(name, std::move(child));
  }
  static Tensor add_buffer(Module& m, const std::string& name, Tensor value) {
    return m.register_buffer(name, std::move(value));
  }
};

/// Throws unless `name` is one of m.transformable_params() and is registered; `what` names
/// the operation for the message ("prune", "register_parametrization").
void require_transformable(const Module& m, const std::string& name, const char* what);

}  // namespace convkit::nn::detail
