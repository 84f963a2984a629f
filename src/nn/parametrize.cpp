// register_parametrization / remove_parametrizations: moving a parameter into the
// "parametrizations" child and back (torch.nn.utils.parametrize's layout), and freeze.
#include "convkit/nn/parametrize.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/check.hpp"
#include "nn/module_access.hpp"

namespace convkit::nn::parametrize {

using convkit::detail::require;
using nn::detail::ModuleAccess;

ParametrizationList::ParametrizationList(ag::Variable free) : original(std::move(free)) {
  ModuleAccess::params(*this).emplace_back("original", original);
}

void ParametrizationList::append(std::shared_ptr<Parametrization> p) {
  register_module(std::to_string(children().size()), std::move(p));
}

ag::Variable ParametrizationList::forward(const ag::Variable& x) {
  ag::Variable y = x;
  for (const auto& [name, p] : children()) y = p->forward(y);  // not operator(): no summary row
  return y;
}

ag::Variable ParametrizationList::evaluate() const {
  return const_cast<ParametrizationList*>(this)->forward(original);
}

const ParametrizationList* ParametrizationDict::find(const std::string& name) const {
  for (const auto& [n, child] : children())
    if (n == name) return dynamic_cast<const ParametrizationList*>(child.get());
  return nullptr;
}

ParametrizationList* ParametrizationDict::find(const std::string& name) {
  return const_cast<ParametrizationList*>(std::as_const(*this).find(name));
}

namespace {

ParametrizationDict* dict_of(const Module& module) {
  for (const auto& [n, child] : module.children())
    if (n == "parametrizations") return dynamic_cast<ParametrizationDict*>(child.get());
  return nullptr;
}

// p's output for `free` must keep the parameter's shape and dtype.
void check_output(Parametrization& p, const Tensor& free, const Tensor& like, const Module& m,
                  const std::string& name) {
  ag::NoGradGuard no_grad;
  const ag::Variable y = p.forward(ag::Variable(free));
  require(y.defined() && y.shape() == like.shape() && y.dtype() == like.dtype(),
          "register_parametrization: {} on {}.{} must keep its shape {} and dtype {}, got {} {}",
          p.type_name(), m.type_name(), name, like.shape(), dtype_name(like.dtype()),
          y.defined() ? y.shape().str() : "undefined",
          y.defined() ? dtype_name(y.dtype()) : "");
}

}  // namespace

void register_parametrization(Module& module, const std::string& name,
                              std::shared_ptr<Parametrization> p) {
  require(p != nullptr, "register_parametrization: the parametrization for '{}' is null", name);
  nn::detail::require_transformable(module, name, "parametrize");
  const auto& pruned = ModuleAccess::pruned(module);
  require(std::find(pruned.begin(), pruned.end(), name) == pruned.end(),
          "register_parametrization: {}.{} is pruned; make the pruning permanent first "
          "(nn::prune::remove)",
          module.type_name(), name);
  ParametrizationDict* dict = dict_of(module);
  if (ParametrizationList* list = dict ? dict->find(name) : nullptr) {
    const ag::Variable current = list->evaluate();
    check_output(*p, current.value(), current.value(), module, name);
    list->append(std::move(p));
    return;
  }
  auto& params = ModuleAccess::params(module);
  auto it = std::find_if(params.begin(), params.end(), [&](const auto& e) { return e.first == name; });
  require(it != params.end(), "register_parametrization: {} has no parameter '{}'",
          module.type_name(), name);
  const ag::Variable original = it->second;
  const Tensor free = p->right_inverse(original.value());
  require(free.defined() && free.shape() == original.shape() && free.dtype() == original.dtype(),
          "register_parametrization: {}'s right_inverse must keep {}.{}'s shape {} and dtype {}",
          p->type_name(), module.type_name(), name, original.shape(),
          dtype_name(original.dtype()));
  check_output(*p, free, original.value(), module, name);

  original.set_value(free);
  auto list = std::make_shared<ParametrizationList>(original);
  list->original_index = static_cast<std::size_t>(it - params.begin());
  params.erase(it);
  if (!dict) {
    auto made = std::make_shared<ParametrizationDict>();
    dict = made.get();
    ModuleAccess::add_child(module, "parametrizations", std::move(made));
  }
  list->append(std::move(p));
  dict->add(name, std::move(list));
}

bool is_parametrized(const Module& module, const std::string& name) {
  const ParametrizationDict* dict = dict_of(module);
  if (!dict) return false;
  return name.empty() ? !dict->children().empty() : dict->find(name) != nullptr;
}

void remove_parametrizations(Module& module, const std::string& name, bool leave_parametrized) {
  ParametrizationDict* dict = dict_of(module);
  ParametrizationList* list = dict ? dict->find(name) : nullptr;
  require(list != nullptr, "remove_parametrizations: {}.{} is not parametrized",
          module.type_name(), name);
  ag::Variable original = list->original;
  if (leave_parametrized) {
    ag::NoGradGuard no_grad;
    original.set_value(list->evaluate().value().contiguous());
  }
  original.zero_grad();
  // Back after the parameters the layer lists before it (weight before bias), else where
  // it stood.
  auto& params = ModuleAccess::params(module);
  std::size_t at = std::min(list->original_index, params.size());
  const std::vector<std::string> order = module.transformable_params();
  const auto rank = [&](const std::string& n) { return std::find(order.begin(), order.end(), n); };
  if (rank(name) != order.end()) {
    at = 0;
    for (std::size_t i = 0; i < params.size(); ++i)
      if (rank(params[i].first) < rank(name)) at = i + 1;
  }
  params.insert(params.begin() + static_cast<std::ptrdiff_t>(at), {name, original});
  auto& lists = ModuleAccess::children(*dict);
  std::erase_if(lists, [&](const auto& e) { return e.first == name; });
  if (lists.empty())
    std::erase_if(ModuleAccess::children(module),
                  [](const auto& e) { return e.first == "parametrizations"; });
}

}  // namespace convkit::nn::parametrize

namespace convkit::nn {

namespace {
ag::Variable stored_param(Module& module, const std::string& name, const char* what) {
  for (const auto& [n, p] : module.own_parameters())
    if (n == name) return p;
  for (const auto& [n, child] : module.children())
    if (const auto* dict = dynamic_cast<const parametrize::ParametrizationDict*>(child.get()))
      if (const auto* list = dict->find(name)) return list->original;
  throw InvalidArgument(fmt::format("{}: {} has no parameter '{}'", what, module.type_name(), name));
}
}  // namespace

void freeze(Module& module, const std::string& name) {
  ag::Variable p = stored_param(module, name, "freeze");
  p.set_requires_grad(false);
  p.zero_grad();
}

void unfreeze(Module& module, const std::string& name) {
  stored_param(module, name, "unfreeze").set_requires_grad(true);
}

}  // namespace convkit::nn
