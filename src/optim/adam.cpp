// Adam and AdamW: torch.optim's single-tensor updates, in the parameter's dtype and order.
#include "convkit/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include "core/check.hpp"
#include "optim/dense_param.hpp"

namespace convkit::optim {
namespace {

using convkit::detail::require;

const AdamOptions& checked(const AdamOptions& o, const char* who) {
  require(o.beta1 >= 0 && o.beta1 < 1, "{}: beta1 must be in [0, 1), got {}", who, o.beta1);
  require(o.beta2 >= 0 && o.beta2 < 1, "{}: beta2 must be in [0, 1), got {}", who, o.beta2);
  require(std::isfinite(o.eps) && o.eps >= 0, "{}: eps must be >= 0, got {}", who, o.eps);
  require(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
          "{}: weight_decay must be >= 0, got {}", who, o.weight_decay);
  return o;
}

AdamOptions as_adam(const AdamWOptions& o) {
  return {.lr = o.lr,
          .beta1 = o.beta1,
          .beta2 = o.beta2,
          .eps = o.eps,
          .weight_decay = o.weight_decay,
          .amsgrad = o.amsgrad,
          .maximize = o.maximize};
}

/// One parameter's update at step `t` (already incremented). The bias corrections are
/// computed in double like PyTorch's Python scalars, then rounded to T where they meet a
/// tensor; every tensor expression keeps PyTorch's evaluation order.
template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, T* v_max, std::int64_t n, std::int64_t t,
                 const AdamOptions& o, double lr, bool decoupled) {
  const auto step = static_cast<double>(t);
  const double bias_correction1 = 1 - std::pow(o.beta1, step);
  const double bias_correction2 = 1 - std::pow(o.beta2, step);
  const T neg_step_size = static_cast<T>(-(lr / bias_correction1));
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T beta1 = static_cast<T>(o.beta1), one_minus_beta1 = static_cast<T>(1 - o.beta1);
  const T beta2 = static_cast<T>(o.beta2), one_minus_beta2 = static_cast<T>(1 - o.beta2);
  const T eps = static_cast<T>(o.eps);
  const T wd = static_cast<T>(o.weight_decay);
  const T decay = static_cast<T>(1 - lr * o.weight_decay);
  for (std::int64_t i = 0; i < n; ++i) {
    T grad = o.maximize ? -g[i] : g[i];
    if (decoupled)
      p[i] = p[i] * decay;
    else if (o.weight_decay != 0)
      grad = grad + wd * p[i];
    m[i] = m[i] * beta1 + one_minus_beta1 * grad;
    v[i] = v[i] * beta2 + one_minus_beta2 * grad * grad;
    T second = v[i];
    if (v_max != nullptr) second = v_max[i] = std::max(v_max[i], v[i]);
    const T denom = std::sqrt(second) / bias_correction2_sqrt + eps;
    p[i] = p[i] + neg_step_size * m[i] / denom;
  }
}

}  // namespace

Adam::Adam(const std::vector<ag::Variable>& params, const AdamOptions& options)
    : Adam(number_params(params), options, false) {}

Adam::Adam(NamedVariables params, const AdamOptions& options)
    : Adam(std::move(params), options, false) {}

Adam::Adam(NamedVariables params, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(params), options.lr, decoupled ? "AdamW" : "Adam"),
      options_(checked(options, decoupled ? "AdamW" : "Adam")),
      decoupled_(decoupled) {}

std::vector<std::string> Adam::buffer_names() const {
  if (options_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  const std::size_t nbuf = buffer_names().size();
  for (std::size_t i = 0; i < params().size(); ++i) {
    const ag::Variable& param = params()[i];
    if (!param.grad().defined()) continue;
    require(param.grad().shape() == param.shape(),
            "{}.step: gradient of '{}' has shape {} but the parameter has shape {}", kind(),
            names()[i], param.grad().shape(), param.shape());
    detail::DenseParam dense(param);
    ParamState& s = states()[i];
    if (s.buffers.empty())
      for (std::size_t b = 0; b < nbuf; ++b)
        s.buffers.push_back(Tensor::zeros(dense.value.shape(), dense.value.dtype()));
    s.step += 1;
    auto run = [&]<typename T>(T*) {
      adam_update<T>(dense.value.data<T>(), dense.grad.data<T>(), s.buffers[0].data<T>(),
                     s.buffers[1].data<T>(), options_.amsgrad ? s.buffers[2].data<T>() : nullptr,
                     dense.numel(), s.step, options_, lr(), decoupled_);
    };
    if (dense.value.dtype() == DType::F32)
      run(static_cast<float*>(nullptr));
    else
      run(static_cast<double*>(nullptr));
    dense.commit();
  }
}

AdamW::AdamW(const std::vector<ag::Variable>& params, const AdamWOptions& options)
    : Adam(number_params(params), as_adam(options), true) {}

AdamW::AdamW(NamedVariables params, const AdamWOptions& options)
    : Adam(std::move(params), as_adam(options), true) {}

}  // namespace convkit::optim
