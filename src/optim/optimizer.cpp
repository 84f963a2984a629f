// Optimizer base: parameter checks, learning rate, zero_grad, and state export and import.
#include "convkit/optim/optimizer.hpp"

#include <cmath>
#include <map>
#include <set>
#include <unordered_set>

#include "core/check.hpp"

namespace convkit::optim {

using convkit::detail::require;

NamedVariables number_params(const std::vector<ag::Variable>& params) {
  NamedVariables named;
  named.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), params[i]);
  return named;
}

Optimizer::Optimizer(NamedVariables params, double lr, std::string_view who) : who_(who) {
  std::unordered_set<std::string> seen_names;
  std::set<const void*> seen_data;
  for (const auto& [name, p] : params) {
    require(!name.empty(), "{}: a parameter has an empty name", who_);
    require(seen_names.insert(name).second, "{}: parameter name '{}' is used twice", who_, name);
    require(p.defined(), "{}: parameter '{}' is an undefined Variable", who_, name);
    require(p.is_leaf(),
            "{}: parameter '{}' is not a leaf (the result of an op); optimize the "
            "variables you created, as PyTorch does",
            who_, name);
    require(is_floating(p.dtype()),
            "{}: parameter '{}' has dtype {}; only F32 and F64 can be "
            "optimized",
            who_, name, dtype_name(p.dtype()));
    // Two entries sharing memory would be updated twice per step: a silent wrong answer.
    require(p.numel() == 0 || seen_data.insert(p.value().raw_data()).second,
            "{}: parameter '{}' is the same variable (or memory) as an earlier parameter", who_,
            name);
    names_.push_back(name);
    params_.push_back(p);
  }
  states_.resize(params_.size());
  set_lr(lr);
  initial_lr_ = lr;
}

void Optimizer::zero_grad() const {
  for (const ag::Variable& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  require(std::isfinite(lr) && lr >= 0, "{}: lr must be finite and >= 0, got {}", who_, lr);
  lr_ = lr;
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  out.emplace_back("lr", Tensor::full({}, lr_, DType::F64));
  out.emplace_back("initial_lr", Tensor::full({}, initial_lr_, DType::F64));
  const std::vector<std::string> buffers = buffer_names();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ParamState& s = states_[i];
    if (s.buffers.empty()) continue;  // never stepped: no state, as in PyTorch
    if (counts_steps()) {
      Tensor step = Tensor::empty({}, DType::I64);
      *step.data<std::int64_t>() = s.step;
      out.emplace_back(names_[i] + ".step", step);
    }
    for (std::size_t b = 0; b < buffers.size(); ++b)
      out.emplace_back(names_[i] + "." + buffers[b], s.buffers[b].clone());
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : state) {
    require(by_name.emplace(name, &t).second, "{}.load_state_dict: key '{}' appears twice", who_,
            name);
    require(t.defined(), "{}.load_state_dict: key '{}' holds an undefined tensor", who_, name);
  }
  auto take = [&](const std::string& key) -> const Tensor* {
    const auto it = by_name.find(key);
    if (it == by_name.end()) return nullptr;
    const Tensor* t = it->second;
    by_name.erase(it);
    return t;
  };
  auto scalar = [&](const std::string& key) {
    const Tensor* t = take(key);
    require(t != nullptr, "{}.load_state_dict: key '{}' is missing", who_, key);
    require(t->numel() == 1, "{}.load_state_dict: '{}' must hold one number, got shape {}", who_,
            key, t->shape());
    return t->get_flat(0);
  };
  const double lr = scalar("lr");
  const double initial_lr = scalar("initial_lr");
  require(std::isfinite(lr) && lr >= 0 && std::isfinite(initial_lr) && initial_lr >= 0,
          "{}.load_state_dict: lr {} and initial_lr {} must be finite and >= 0", who_, lr,
          initial_lr);

  // Build the new state aside, so that a refusal leaves this optimizer as it was.
  const std::vector<std::string> buffers = buffer_names();
  std::vector<ParamState> loaded(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = names_[i];
    const Tensor& value = params_[i].value();
    std::vector<const Tensor*> found;
    std::vector<std::string> missing;
    for (const std::string& b : buffers) {
      found.push_back(take(name + "." + b));
      if (found.back() == nullptr) missing.push_back(name + "." + b);
    }
    const Tensor* step = counts_steps() ? take(name + ".step") : nullptr;
    if (counts_steps() && step == nullptr) missing.push_back(name + ".step");
    const std::size_t expected = buffers.size() + (counts_steps() ? 1 : 0);
    if (missing.size() == expected) continue;  // no state for this parameter: starts fresh
    require(missing.empty(), "{}.load_state_dict: parameter '{}' has partial state; missing [{}]",
            who_, name, fmt::join(missing, ", "));
    for (std::size_t b = 0; b < buffers.size(); ++b) {
      const Tensor& t = *found[b];
      require(t.shape() == value.shape(),
              "{}.load_state_dict: '{}.{}' has shape {} but the parameter has shape {}", who_, name,
              buffers[b], t.shape(), value.shape());
      require(is_floating(t.dtype()), "{}.load_state_dict: '{}.{}' has dtype {}, not F32/F64", who_,
              name, buffers[b], dtype_name(t.dtype()));
      // A private, contiguous copy in the parameter's dtype (never aliasing the caller's).
      Tensor own = Tensor::empty(value.shape(), value.dtype());
      own.copy_from(t);
      loaded[i].buffers.push_back(own);
    }
    if (step != nullptr) {
      require(step->numel() == 1,
              "{}.load_state_dict: '{}.step' must hold one number, got "
              "shape {}",
              who_, name, step->shape());
      const double v = step->get_flat(0);
      require(v >= 0 && v == std::floor(v) && v < 9.0e15,
              "{}.load_state_dict: '{}.step' must be a non-negative integer, got {}", who_, name,
              v);
      loaded[i].step = static_cast<std::int64_t>(v);
    }
  }
  if (!by_name.empty()) {
    std::vector<std::string> unexpected;
    for (const auto& entry : by_name) unexpected.push_back("'" + entry.first + "'");
    require(false, "{}.load_state_dict: unexpected keys [{}] (parameters are [{}])", who_,
            fmt::join(unexpected, ", "), fmt::join(names_, ", "));
  }
  states_ = std::move(loaded);
  lr_ = lr;
  initial_lr_ = initial_lr;
}

}  // namespace convkit::optim
