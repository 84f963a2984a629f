// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <vector>

#include "convkit/autograd/variable.hpp"

namespace convkit::optim {

/// Scales the gradients of `params` in place so that their total norm is at most max_norm,
/// and returns the total norm before clipping (torch.nn.utils.clip_grad_norm_):
///   total = || (||g_1||_q, ||g_2||_q, ...) ||_q   (q = norm_type; inf: the largest |g|)
///   g_i  *= min(1, max_norm / (total + 1e-6))
/// Parameters without a gradient are skipped; with none at all the result is 0. The norm is
/// accumulated in double. Throws InvalidArgument for max_norm < 0, norm_type <= 0, and,
/// when error_if_nonfinite, for a NaN or infinite total (the gradients are then left as they
/// are).
///
///   loss.backward();
///   double norm = optim::clip_grad_norm(params, 1.0);
///   opt.step();
double clip_grad_norm(const std::vector<ag::Variable>& params, double max_norm,
                      double norm_type = 2.0, bool error_if_nonfinite = false);

}  // namespace convkit::optim
