// SGD with momentum, dampening, Nesterov momentum and weight decay: PyTorch's update rule.
#pragma once

#include <string_view>
#include <vector>

#include "convkit/optim/optimizer.hpp"

namespace convkit::optim {

/// Options of SGD, as torch.optim.SGD.
struct SGDOptions {
  double lr = 1e-3;         ///< >= 0
  double momentum = 0;      ///< >= 0; 0 keeps no buffer
  double dampening = 0;     ///< in [0, 1]
  double weight_decay = 0;  ///< >= 0; L2 penalty added to the gradient
  bool nesterov = false;    ///< needs momentum > 0 and dampening == 0
  bool maximize = false;    ///< ascend instead of descend
};

/// Stochastic gradient descent, exactly torch.optim.SGD (per parameter p with gradient g):
///   d = g (or -g when maximize) + weight_decay * p
///   b = d on the first step, else momentum * b + (1 - dampening) * d   (when momentum != 0)
///   d = d + momentum * b when nesterov, else d = b                       (when momentum != 0)
///   p = p - lr * d
/// Arithmetic happens in the parameter's dtype, in PyTorch's order.
///
///   optim::SGD opt(params, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
class SGD : public Optimizer {
 public:
  SGD(const std::vector<ag::Variable>& params, const SGDOptions& options);
  /// Named parameters: the names key the exported state ("fc.weight.momentum_buffer").
  SGD(NamedVariables params, const SGDOptions& options);

  void step() override;
  std::string_view kind() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

 protected:
  std::vector<std::string> buffer_names() const override;

 private:
  SGDOptions options_;
};

}  // namespace convkit::optim
