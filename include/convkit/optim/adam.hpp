// Adam and AdamW (optionally AMSGrad): PyTorch's update rules with bias correction.
#pragma once

#include <string_view>
#include <vector>

#include "convkit/optim/optimizer.hpp"

namespace convkit::optim {

/// Options of Adam, as torch.optim.Adam.
struct AdamOptions {
  double lr = 1e-3;         ///< >= 0
  double beta1 = 0.9;       ///< in [0, 1)
  double beta2 = 0.999;     ///< in [0, 1)
  double eps = 1e-8;        ///< >= 0
  double weight_decay = 0;  ///< >= 0; Adam: L2 added to the gradient; AdamW: decoupled
  bool amsgrad = false;     ///< keep the maximum of the second moments
  bool maximize = false;
};

/// Options of AdamW: AdamOptions with torch.optim.AdamW's default weight_decay of 0.01.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

/// Adam, exactly torch.optim.Adam (per parameter p, gradient g, step t counted from 1):
///   g = g (or -g when maximize) + weight_decay * p
///   m = beta1 * m + (1 - beta1) * g ;  v = beta2 * v + (1 - beta2) * g * g
///   v_hat = max(v_hat, v) when amsgrad, else v
///   p = p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
/// State per parameter: step, exp_avg (m), exp_avg_sq (v), max_exp_avg_sq (amsgrad).
///
///   optim::Adam opt(params, {.lr = 1e-3, .beta2 = 0.99});
class Adam : public Optimizer {
 public:
  Adam(const std::vector<ag::Variable>& params, const AdamOptions& options);
  Adam(NamedVariables params, const AdamOptions& options);

  void step() override;
  std::string_view kind() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }

 protected:
  /// AdamW's constructor: the same update with decoupled weight decay.
  Adam(NamedVariables params, const AdamOptions& options, bool decoupled);
  std::vector<std::string> buffer_names() const override;
  bool counts_steps() const override { return true; }

 private:
  AdamOptions options_;
  bool decoupled_ = false;
};

/// AdamW, exactly torch.optim.AdamW: Adam without the L2 term in the gradient, and instead
/// p = p * (1 - lr * weight_decay) before the moment updates (decoupled weight decay).
///
///   optim::AdamW opt(params, {.lr = 3e-4, .weight_decay = 0.05});
class AdamW : public Adam {
 public:
  AdamW(const std::vector<ag::Variable>& params, const AdamWOptions& options);
  AdamW(NamedVariables params, const AdamWOptions& options);
};

}  // namespace convkit::optim
