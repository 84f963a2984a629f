// SGD: torch.optim.SGD's single-tensor update, in the parameter's dtype and PyTorch's order.
#include "convkit/optim/sgd.hpp"

#include <cmath>

#include "core/check.hpp"
#include "optim/dense_param.hpp"

namespace convkit::optim {
namespace {

using convkit::detail::require;

const SGDOptions& checked(const SGDOptions& o) {
  require(std::isfinite(o.momentum) && o.momentum >= 0, "SGD: momentum must be >= 0, got {}",
          o.momentum);
  require(o.dampening >= 0 && o.dampening <= 1, "SGD: dampening must be in [0, 1], got {}",
          o.dampening);
  require(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
          "SGD: weight_decay must be >= 0, got {}", o.weight_decay);
  require(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
          "SGD: nesterov needs momentum > 0 and dampening == 0, got momentum {} and dampening {}",
          o.momentum, o.dampening);
  return o;
}

/// One parameter's update. `buf` is null without momentum; `first` says it is uninitialized.
/// Scalars are rounded to T first, as PyTorch does when it passes them to a T kernel.
template <typename T>
void sgd_update(T* p, const T* g, T* buf, bool first, std::int64_t n, const SGDOptions& o,
                double lr) {
  const T wd = static_cast<T>(o.weight_decay);
  const T momentum = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1 - o.dampening);
  const T neg_lr = static_cast<T>(-lr);
  for (std::int64_t i = 0; i < n; ++i) {
    T d = o.maximize ? -g[i] : g[i];
    if (o.weight_decay != 0) d = d + wd * p[i];
    if (buf != nullptr) {
      buf[i] = first ? d : buf[i] * momentum + keep * d;
      d = o.nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] = p[i] + neg_lr * d;
  }
}

}  // namespace

SGD::SGD(const std::vector<ag::Variable>& params, const SGDOptions& options)
    : SGD(number_params(params), options) {}

SGD::SGD(NamedVariables params, const SGDOptions& options)
    : Optimizer(std::move(params), options.lr, "SGD"), options_(checked(options)) {}

std::vector<std::string> SGD::buffer_names() const {
  if (options_.momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::step() {
  for (std::size_t i = 0; i < params().size(); ++i) {
    const ag::Variable& param = params()[i];
    if (!param.grad().defined()) continue;
    require(param.grad().shape() == param.shape(),
            "SGD.step: gradient of '{}' has shape {} but the parameter has shape {}", names()[i],
            param.grad().shape(), param.shape());
    detail::DenseParam dense(param);
    ParamState& s = states()[i];
    const bool first = s.buffers.empty();
    if (options_.momentum != 0 && first)
      s.buffers.push_back(Tensor::empty(dense.value.shape(), dense.value.dtype()));
    const bool has_buf = options_.momentum != 0;
    if (dense.value.dtype() == DType::F32)
      sgd_update(dense.value.data<float>(), dense.grad.data<float>(),
                 has_buf ? s.buffers[0].data<float>() : nullptr, first, dense.numel(), options_,
                 lr());
    else
      sgd_update(dense.value.data<double>(), dense.grad.data<double>(),
                 has_buf ? s.buffers[0].data<double>() : nullptr, first, dense.numel(), options_,
                 lr());
    dense.commit();
  }
}

}  // namespace convkit::optim
