// The differentiable functional API: every op records its backward on the graph.
// Semantics follow torch.nn.functional; shapes are PyTorch's (N, C, spatial...).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "convkit/autograd/variable.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit::ag {

// ---- convolution (through conv_forward / conv_backward_* of convkit/ops/conv.hpp) ----
/// y = conv(x, w) + b for any ConvOptions (groups, depthwise multiplier, dilation, 'same',
/// padding modes, channels-last input). `b` may be undefined. Output size per dimension:
/// floor((in + pad_before + pad_after - dilation*(k-1) - 1)/stride) + 1.
Variable conv1d(const Variable& x, const Variable& w, const Variable& b = {},
                const ConvOptions& options = {});
Variable conv2d(const Variable& x, const Variable& w, const Variable& b = {},
                const ConvOptions& options = {});
Variable conv3d(const Variable& x, const Variable& w, const Variable& b = {},
                const ConvOptions& options = {});
/// Transposed convolutions; w is (in, out/groups, k...), options.output_padding applies.
Variable conv_transpose1d(const Variable& x, const Variable& w, const Variable& b = {},
                          const ConvOptions& options = {});
Variable conv_transpose2d(const Variable& x, const Variable& w, const Variable& b = {},
                          const ConvOptions& options = {});
Variable conv_transpose3d(const Variable& x, const Variable& w, const Variable& b = {},
                          const ConvOptions& options = {});

// ---- elementwise with NumPy/PyTorch broadcasting ----
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable add(const Variable& a, double b);
Variable mul(const Variable& a, double b);
Variable neg(const Variable& a);
/// x*x elementwise; gradient 2x.
Variable square(const Variable& x);
/// 1/sqrt(x) elementwise (torch.rsqrt); gradient -x^(-3/2)/2. inf at 0, NaN below 0.
Variable rsqrt(const Variable& x);
/// x^exponent elementwise (torch.pow with a scalar exponent); gradient exponent*x^(exponent-1),
/// 0 for exponent 0. Negative x with a non-integer exponent gives NaN, as in PyTorch.
///   ag::pow(x, 0.5)   // sqrt
Variable pow(const Variable& x, double exponent);
Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator/(const Variable& a, const Variable& b);

// ---- activations ----
Variable relu(const Variable& x);
Variable relu6(const Variable& x);
Variable leaky_relu(const Variable& x, double negative_slope = 0.01);
Variable sigmoid(const Variable& x);
Variable hardsigmoid(const Variable& x);  // relu6(x + 3) / 6
Variable hardswish(const Variable& x);    // x * relu6(x + 3) / 6
Variable silu(const Variable& x);
Variable softplus(const Variable& x);  // log(1 + exp(x)); x itself above 20, like PyTorch
Variable abs(const Variable& x);       // gradient sign(x), 0 at 0
Variable tanh(const Variable& x);
Variable softmax(const Variable& x, int dim);
Variable log_softmax(const Variable& x, int dim);

// ---- linear algebra and shape ----
/// (..., k) x (k, n) -> (..., n); both 2-D is the plain matrix product.
Variable matmul(const Variable& a, const Variable& b);
/// y = x w^T + b with w (out, in), b (out) or undefined: torch.nn.functional.linear.
Variable linear(const Variable& x, const Variable& w, const Variable& b = {});
Variable reshape(const Variable& x, const std::vector<std::int64_t>& sizes);  // one -1 allowed
Variable flatten(const Variable& x, int start_dim = 1, int end_dim = -1);
Variable permute(const Variable& x, const std::vector<int>& dims);
Variable concat(const std::vector<Variable>& xs, int dim);

// ---- tied entries (parametrizations) ----
/// Views x as rows of P = group_of.size() entries (x.numel() must be a multiple of P; for a
/// convolution weight, P is the kernel's kh*kw) and replaces each entry by the mean of the
/// entries of its row that share its group: y[r, i] = mean{x[r, j] : group_of[j] ==
/// group_of[i]}. Every member of a group gets the same bits (one sum, in position order, in
/// double). The map is a symmetric projection, so the gradient is tie_mean of the gradient.
///   // left-right symmetric 1x3 kernels: positions 0 and 2 tied, 1 alone
///   Variable w_sym = ag::tie_mean(w, {0, 1, 0});
Variable tie_mean(const Variable& x, const std::vector<std::int64_t>& group_of);

// ---- reductions ----
Variable sum(const Variable& x);  // all elements -> shape ()
Variable sum(const Variable& x, const std::vector<int>& dims, bool keepdim = false);
Variable mean(const Variable& x);
Variable mean(const Variable& x, const std::vector<int>& dims, bool keepdim = false);
/// Maximum over `dims` (torch.amax; an empty list reduces every dimension). NaN propagates.
/// Gradient as PyTorch's amax: split evenly among the elements equal to the maximum (two
/// tied maxima get g/2 each), where torch.max(x, dim) and max pooling route it to one index.
///   ag::amax(x, {2, 3}, true)   // global max pooling: (N, C, H, W) -> (N, C, 1, 1)
Variable amax(const Variable& x, const std::vector<int>& dims, bool keepdim = false);

// ---- pooling (2-D; kernel, stride and padding per PyTorch, stride defaults to kernel) ----
struct Pool2dOptions {
  std::vector<std::int64_t> kernel{2};
  std::vector<std::int64_t> stride{};  // empty: equal to kernel
  std::vector<std::int64_t> padding{0};
  std::vector<std::int64_t> dilation{1};  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};
Variable max_pool2d(const Variable& x, const Pool2dOptions& options);
Variable avg_pool2d(const Variable& x, const Pool2dOptions& options);
/// Output (N, C, oh, ow); bins as PyTorch: start floor(i*in/out), end ceil((i+1)*in/out).
Variable adaptive_avg_pool2d(const Variable& x, std::int64_t oh, std::int64_t ow);

// ---- normalization and regularization ----
/// Batch norm over (N, C, ...): in training, normalizes with the batch statistics (biased
/// variance) and, when running_mean/var are defined, updates them in place with
/// momentum and the unbiased variance, exactly like PyTorch; in eval, uses the running
/// statistics. weight and bias may be undefined (affine=false).
Variable batch_norm(const Variable& x, const Tensor& running_mean, const Tensor& running_var,
                    const Variable& weight, const Variable& bias, bool training,
                    double momentum = 0.1, double eps = 1e-5);
/// Zeroes elements with probability p and scales the rest by 1/(1-p) when training;
/// identity otherwise. The mask comes from `seed` (deterministic).
Variable dropout(const Variable& x, double p, bool training, std::uint64_t seed);
/// Pads the spatial dimensions (before/after per dimension) in any PaddingMode.
Variable pad(const Variable& x, const std::vector<std::int64_t>& before,
             const std::vector<std::int64_t>& after, PaddingMode mode = PaddingMode::Zeros,
             double value = 0);

// ---- losses ----
enum class Reduction { Mean, Sum, None };
/// logits (N, C), targets (N) class indices stored as I64 (or F32/F64 holding integers);
/// label_smoothing as torch.nn.functional.cross_entropy. Also (N, C, d...) logits with
/// (N, d...) targets (per-pixel classes); Mean then averages over all N*d positions.
Variable cross_entropy(const Variable& logits, const Tensor& targets,
                       Reduction reduction = Reduction::Mean, double label_smoothing = 0);
Variable mse_loss(const Variable& input, const Variable& target,
                  Reduction reduction = Reduction::Mean);

}  // namespace convkit::ag
