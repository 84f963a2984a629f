// clip_grad_norm: total gradient norm in double, then one scale for every gradient.
#include "convkit/optim/clip.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.hpp"

namespace convkit::optim {

using convkit::detail::require;

namespace {

/// Adds |g|^q over the tensor to `acc` (or takes the max of |g| when q is infinite).
template <typename T>
void accumulate(const T* g, std::int64_t n, double q, double& acc) {
  const bool inf = std::isinf(q);
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = std::abs(static_cast<double>(g[i]));
    if (inf)
      acc = std::isnan(a) || std::isnan(acc) ? std::numeric_limits<double>::quiet_NaN()
                                             : std::max(acc, a);
    else
      acc += q == 2 ? a * a : q == 1 ? a : std::pow(a, q);
  }
}

template <typename T>
void scale(T* g, std::int64_t n, T coef) {
  for (std::int64_t i = 0; i < n; ++i) g[i] = g[i] * coef;
}

}  // namespace

double clip_grad_norm(const std::vector<ag::Variable>& params, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  require(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got {}", max_norm);
  require(norm_type > 0, "clip_grad_norm: norm_type must be > 0 (or infinity), got {}", norm_type);
  std::vector<Tensor> grads;
  for (const ag::Variable& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad().contiguous());
  if (grads.empty()) return 0;

  double acc = 0;
  for (const Tensor& g : grads) {
    if (g.dtype() == DType::F32)
      accumulate(g.data<float>(), g.numel(), norm_type, acc);
    else if (g.dtype() == DType::F64)
      accumulate(g.data<double>(), g.numel(), norm_type, acc);
    else
      require(false, "clip_grad_norm: gradients must be F32 or F64, got {}", dtype_name(g.dtype()));
  }
  const double total = std::isinf(norm_type) ? acc
                       : norm_type == 2      ? std::sqrt(acc)
                       : norm_type == 1      ? acc
                                             : std::pow(acc, 1 / norm_type);
  require(!error_if_nonfinite || std::isfinite(total),
          "clip_grad_norm: the total norm of order {} of the gradients is non-finite ({}), so "
          "they cannot be clipped; pass error_if_nonfinite = false to clip anyway",
          norm_type, total);
  const double coef = max_norm / (total + 1e-6);
  // Scaling by 1 changes nothing, so skip it; a NaN coefficient scales (to NaN) like PyTorch's.
  if (coef >= 1) return total;
  for (const ag::Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    Tensor g = p.grad();
    const bool in_place = g.is_contiguous();
    if (!in_place) g = g.contiguous();
    if (g.dtype() == DType::F32)
      scale(g.data<float>(), g.numel(), static_cast<float>(coef));
    else
      scale(g.data<double>(), g.numel(), coef);
    if (!in_place) p.set_grad(g);
  }
  return total;
}

}  // namespace convkit::optim
