// Module base: registration, recursive train/eval, state_dict and load_state_dict.
#include "convkit/nn/module.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/parametrize.hpp"
#include "core/check.hpp"
#include "nn/module_access.hpp"
#include "nn/recorder.hpp"

namespace convkit::nn {

using convkit::detail::require;

namespace {

// Atomic so that threads building modules at the same time do not race (each still gets a
// distinct seed; which one depends on the order, so build models on one thread to reproduce).
std::atomic<std::uint64_t> g_seed_state{0x5EEDC0DE5EEDC0DEull};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

void manual_seed(std::uint64_t seed) { g_seed_state.store(seed); }

std::uint64_t next_seed() {
  // splitmix64 step: consecutive seeds give unrelated Tensor::uniform streams.
  std::uint64_t z = g_seed_state.fetch_add(0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

detail::CallRecorder*& detail::active_recorder() {
  thread_local CallRecorder* recorder = nullptr;
  return recorder;
}

std::int64_t Module::macs(const Shape&, const Shape&) const { return 0; }

std::optional<Geometry> Module::geometry(const Shape&) const { return std::nullopt; }

ag::Variable Module::operator()(const ag::Variable& x) {
  ag::Variable y = forward(x);
  if (auto* recorder = detail::active_recorder())
    recorder->record(this, x.shape(), y.shape());
  return y;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::require_new_name(const std::string& name) const {
  require(!name.empty() && name.find('.') == std::string::npos,
          "{}: a parameter, buffer or child name must be non-empty without '.', got '{}'",
          type_name(), name);
  bool taken = false;
  for (const auto& p : params_) taken = taken || p.first == name;
  for (const auto& b : buffers_) taken = taken || b.first == name;
  for (const auto& c : children_) taken = taken || c.first == name;
  require(!taken, "{}: the name '{}' is already registered", type_name(), name);
}

ag::Variable Module::register_parameter(const std::string& name, Tensor value,
                                        bool requires_grad) {
  require_new_name(name);
  ag::Variable v(std::move(value), requires_grad);
  params_.emplace_back(name, v);
  return v;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  require_new_name(name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  require(child != nullptr, "{}: child '{}' is null", type_name(), name);
  require_new_name(name);
  child->train(training_);
  children_.emplace_back(name, std::move(child));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> child) {
  require(child != nullptr, "{}: replacement for child '{}' is null", type_name(), name);
  for (auto& [n, c] : children_) {
    if (n != name) continue;
    child->train(training_);
    c = std::move(child);
    return;
  }
  throw InvalidArgument(fmt::format("{}: no child named '{}' to replace", type_name(), name));
}

void Module::collect(const std::string& prefix, StateDict* state,
                     std::vector<std::pair<std::string, ag::Variable>>* params,
                     std::vector<std::pair<std::string, Tensor>>* buffers,
                     const StateDictOptions& options) const {
  // PyTorch's order (Module._save_to_state_dict): own parameters, own buffers, children.
  // torch.nn.utils.prune deletes the parameter and registers "<name>_orig" at the end.
  auto renamed = [&](const std::string& name) {
    return options.pytorch_prune_names &&
           std::find(pruned_.begin(), pruned_.end(), name) != pruned_.end();
  };
  for (const auto& [name, p] : params_) {
    if (renamed(name)) continue;
    if (state) state->emplace_back(prefix + name, p.value());
    if (params) params->emplace_back(prefix + name, p);
  }
  for (const std::string& name : pruned_) {
    if (!options.pytorch_prune_names) break;
    for (const auto& [n, p] : params_) {
      if (n != name) continue;
      if (state) state->emplace_back(prefix + name + "_orig", p.value());
      if (params) params->emplace_back(prefix + name + "_orig", p);
    }
  }
  for (const auto& [name, b] : buffers_) {
    if (state) state->emplace_back(prefix + name, b);
    if (buffers) buffers->emplace_back(prefix + name, b);
  }
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", state, params, buffers, options);
}

ag::Variable Module::param(const std::string& name) const {
  for (const auto& [n, child] : children_) {
    if (n != "parametrizations") continue;
    if (const auto* dict = dynamic_cast<const parametrize::ParametrizationDict*>(child.get()))
      if (const parametrize::ParametrizationList* list = dict->find(name)) return list->evaluate();
  }
  for (const auto& [n, p] : params_) {
    if (n != name) continue;
    if (std::find(pruned_.begin(), pruned_.end(), name) == pruned_.end()) return p;
    for (const auto& [b, mask] : buffers_)
      if (b == name + "_mask") return ag::mul(p, ag::Variable(mask));
    throw InvalidArgument(fmt::format("{}: the pruned parameter '{}' lost its mask '{}_mask'",
                                      type_name(), name, name));
  }
  return {};
}

void detail::require_transformable(const Module& m, const std::string& name, const char* what) {
  const std::vector<std::string> names = m.transformable_params();
  require(std::find(names.begin(), names.end(), name) != names.end(),
          "{}: {}'s forward does not read '{}' through Module::param, so it cannot be {}d "
          "(it can: [{}])",
          what, m.type_name(), name, what, join(names));
}

std::vector<std::pair<std::string, ag::Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, ag::Variable>> out;
  collect("", nullptr, &out, nullptr);
  return out;
}

std::vector<ag::Variable> Module::parameters() const {
  std::vector<ag::Variable> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", nullptr, nullptr, &out);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [name, child] : children_)
    for (auto& [path, m] : child->named_modules())
      out.emplace_back(path.empty() ? name : name + "." + path, m);
  return out;
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

StateDict Module::state_dict(const StateDictOptions& options) const {
  StateDict out;
  collect("", &out, nullptr, nullptr, options);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  const StateDict own = state_dict();
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) given[name] = &t;
  // A pruned parameter also loads from PyTorch's "<name>_orig" (StateDictOptions).
  std::map<std::string, std::string> alias_of;  // "<path>weight_orig" -> "<path>weight"
  auto find_pruned = [&](auto&& self, const Module& m, const std::string& prefix) -> void {
    for (const std::string& p : m.pruned_) alias_of[prefix + p + "_orig"] = prefix + p;
    for (const auto& [name, child] : m.children_) self(self, *child, prefix + name + ".");
  };
  find_pruned(find_pruned, *this, "");
  for (const auto& [alias, name] : alias_of) {
    auto it = given.find(alias);
    if (it != given.end() && !given.count(name)) {
      given[name] = it->second;
      given.erase(it);
    }
  }

  std::vector<std::string> missing, unexpected, mismatched;
  std::map<std::string, bool> expected;
  for (const auto& [name, t] : own) {
    expected[name] = true;
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
    } else if (!(it->second->shape() == t.shape())) {
      mismatched.push_back(fmt::format("{} (model {}, given {})", name, t.shape().str(),
                                       it->second->shape().str()));
    }
  }
  for (const auto& [name, t] : state) {
    auto a = alias_of.find(name);
    const bool loads = expected.count(name) || (a != alias_of.end() && given.count(a->second) &&
                                                given.at(a->second) == &t);
    if (!loads) unexpected.push_back(name);
  }

  const bool fail = !mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()));
  if (fail) {
    std::string msg = fmt::format("load_state_dict into {}:", type_name());
    if (!missing.empty()) msg += fmt::format(" missing keys: [{}];", join(missing));
    if (!unexpected.empty()) msg += fmt::format(" unexpected keys: [{}];", join(unexpected));
    if (!mismatched.empty()) msg += fmt::format(" shape mismatch: [{}];", join(mismatched));
    throw InvalidArgument(msg);
  }
  // Convert every value before copying any: a value the model's dtype cannot hold (NaN or
  // 2^63 into an int64 counter) is refused while the model is still untouched.
  std::vector<std::pair<const Tensor*, Tensor>> values;
  for (const auto& [name, t] : own) {
    auto it = given.find(name);
    if (it == given.end()) continue;
    try {
      values.emplace_back(&t, it->second->to(t.dtype()));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(
          fmt::format("load_state_dict into {}: key '{}': {}", type_name(), name, e.what()));
    }
  }
  for (const auto& [t, value] : values) t->copy_from(value);  // shares storage with the module
}

ParamCount count_params(const Module& module) {
  ParamCount c;
  for (const auto& [name, p] : module.named_parameters())
    (p.requires_grad() ? c.trainable : c.non_trainable) += p.numel();
  for (const auto& [name, b] : module.named_buffers())
    if (is_floating(b.dtype())) c.non_trainable += b.numel();
  c.total = c.trainable + c.non_trainable;
  return c;
}

}  // namespace convkit::nn
