// Convolutions with external weights (per-sample, modulated, separable), composed of conv2d,
// reshape and elementwise ops, so their gradients come from those ops' backward passes.
#include <cmath>
#include <functional>
#include <string>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/external.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

// Runs fn; an InvalidArgument from inside gets `prefix` in front of its message, so that the
// caller sees which op (and which step of it) refused.
template <typename Fn>
auto renamed(const std::string& prefix, Fn&& fn) {
  try {
    return fn();
  } catch (const InvalidArgument& e) {
    std::string what = e.what();
    for (const std::string p : {"conv_transpose: ", "conv: "})
      if (what.rfind(p, 0) == 0) what.erase(0, p.size());
    throw InvalidArgument(prefix + what);
  }
}

// The same values laid out as `format`; the gradient passes through unchanged.
Variable as_format(const Variable& x, MemoryFormat format) {
  if (x.value().is_contiguous(format)) return x;
  return Variable::from_op(
      x.value().to(format), {x}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; },
      "to_memory_format");
}

ConvOptions conv_options(const std::vector<I>& stride, const Padding& padding,
                         const std::vector<I>& dilation, PaddingMode mode, I groups) {
  return {.stride = stride,
          .padding = padding,
          .dilation = dilation,
          .groups = groups,
          .padding_mode = mode};
}

void require_same_dtype(const Variable& a, const Variable& b, const char* op, const char* na,
                        const char* nb) {
  if (b.defined()) detail::require_same_dtype(a.value(), b.value(), op, na, nb);
}

}  // namespace

Variable conv2d_per_sample(const Variable& x, const Variable& w, const Variable& b,
                           const ConvOptions& options) {
  const char* op = "conv2d_per_sample";
  require(x.defined() && w.defined(), "{}: x or w is undefined", op);
  detail::require_float(x.value(), op, "x");
  require_same_dtype(x, w, op, "x", "w");
  require_same_dtype(x, b, op, "x", "b");
  require(x.dim() == 4, "{}: x must be (N, C, H, W), got shape {}", op, x.shape());
  require(w.dim() == 5, "{}: w must be (N, out, C/groups, kh, kw), got shape {}", op,
          w.shape());
  const I n = x.size(0), c = x.size(1), out = w.size(1), cg = w.size(2);
  require(n >= 1, "{}: the batch is empty (x {}); each sample needs its own kernel", op,
          x.shape());
  require(w.size(0) == n, "{}: x has {} samples but w has {} kernels (x {}, w {})", op, n,
          w.size(0), x.shape(), w.shape());
  require(options.groups >= 1, "{}: groups must be >= 1, got {}", op, options.groups);
  require(cg * options.groups == c,
          "{}: w's {} input channels per group times groups {} must equal x's {} channels "
          "(x {}, w {})",
          op, cg, options.groups, c, x.shape(), w.shape());
  if (b.defined())
    require(b.dim() == 2 && b.size(0) == n && b.size(1) == out,
            "{}: b must be (N, out) = [{}, {}], got {}", op, n, out, b.shape());
  // One sample's convolution, validated with the sample's own channel counts.
  const Shape src{1, c, x.size(2), x.size(3)}, wei{out, cg, w.size(3), w.size(4)};
  const ConvProblem p = renamed(std::string(op) + ": ", [&] {
    return ConvProblem::make(src, wei,
                             b.defined() ? std::optional<Shape>(Shape{out}) : std::nullopt, options,
                             false, x.dtype());
  });
  ConvOptions grouped = options;
  grouped.groups = n * options.groups;
  const Variable xv = reshape(x, {1, n * c, x.size(2), x.size(3)});
  const Variable wv = reshape(w, {n * out, cg, w.size(3), w.size(4)});
  const Variable bv = b.defined() ? reshape(b, {n * out}) : Variable();
  const Variable y = reshape(conv2d(xv, wv, bv, grouped), {n, out, p.out[0], p.out[1]});
  return as_format(y, x.value().memory_format());
}

Variable modulated_conv2d(const Variable& x, const Variable& weight, const Variable& styles,
                          const ModulatedConvOptions& o, const Variable& bias) {
  const char* op = "modulated_conv2d";
  require(x.defined() && weight.defined() && styles.defined(),
          "{}: x, weight or styles is undefined", op);
  detail::require_float(x.value(), op, "x");
  require_same_dtype(x, weight, op, "x", "weight");
  require_same_dtype(x, styles, op, "x", "styles");
  require_same_dtype(x, bias, op, "x", "bias");
  require(x.dim() == 4, "{}: x must be (N, in, H, W), got shape {}", op, x.shape());
  require(weight.dim() == 4, "{}: weight must be (out, in, kh, kw), got shape {}", op,
          weight.shape());
  require(styles.dim() == 2, "{}: styles must be (N, in), got shape {}", op, styles.shape());
  const I n = x.size(0), in = x.size(1), out = weight.size(0);
  const I kh = weight.size(2), kw = weight.size(3);
  require(weight.size(1) == in, "{}: weight {} has {} input channels but x {} has {}", op,
          weight.shape(), weight.size(1), x.shape(), in);
  require(styles.size(0) == n && styles.size(1) == in,
          "{}: styles must be (N, in) = [{}, {}] for x {}, got {}", op, n, in, x.shape(),
          styles.shape());
  if (bias.defined())
    require(bias.dim() == 1 && bias.size(0) == out, "{}: bias must have shape [{}], got {}", op,
            out, bias.shape());
  require(std::isfinite(o.eps) && o.eps >= 0, "{}: eps must be finite and >= 0, got {}", op, o.eps);
  const ConvOptions co = conv_options(o.stride, o.padding, o.dilation, o.padding_mode, 1);
  const std::string prefix = std::string(op) + ": ";
  Variable y;
  if (o.fused) {
    // w'[n,o,i] = weight[o,i] * styles[n,i], one kernel per sample.
    Variable w = reshape(weight, {1, out, in, kh, kw}) * reshape(styles, {n, 1, in, 1, 1});
    if (o.demodulate) w = w * rsqrt(add(sum(square(w), {2, 3, 4}, true), o.eps));
    y = renamed(prefix, [&] { return conv2d_per_sample(x, w, {}, co); });
  } else {
    y = renamed(prefix, [&] { return conv2d(x * reshape(styles, {n, in, 1, 1}), weight, {}, co); });
    if (o.demodulate) {
      // sum_{i,kh,kw} (weight[o,i] styles[n,i])^2 = sum_i styles[n,i]^2 * |weight[o,i]|^2:
      // an (N, in) x (in, out) product instead of materializing N kernels.
      const Variable norms = permute(sum(square(weight), {2, 3}), {1, 0});  // (in, out)
      const Variable d = rsqrt(add(matmul(square(styles), norms), o.eps));  // (N, out)
      y = y * reshape(d, {n, out, 1, 1});
    }
  }
  if (bias.defined()) y = y + reshape(bias, {1, out, 1, 1});
  return y;
}

Variable separable_conv2d(const Variable& x, const Variable& dw, const Variable& pw,
                          const Variable& dw_bias, const Variable& pw_bias,
                          const SeparableConvOptions& o) {
  const char* op = "separable_conv2d";
  require(x.defined() && dw.defined() && pw.defined(), "{}: x, dw or pw is undefined", op);
  require(x.dim() == 4, "{}: x must be (N, C, H, W), got shape {}", op, x.shape());
  const I c = x.size(1);
  require(dw.dim() == 4 && dw.size(1) == 1 && c > 0 && dw.size(0) % c == 0 && dw.size(0) > 0,
          "{}: dw must be (C*mult, 1, kh, kw) with C = {} (x {}), got {}", op, c, x.shape(),
          dw.shape());
  require(pw.dim() == 4 && pw.size(1) == dw.size(0) && pw.size(2) == 1 && pw.size(3) == 1,
          "{}: pw must be (out, {}, 1, 1) to follow dw {}, got {}", op, dw.size(0),
          dw.shape(), pw.shape());
  const ConvOptions co = conv_options(o.stride, o.padding, o.dilation, o.padding_mode, c);
  const Variable t =
      renamed(std::string(op) + ": depthwise step: ", [&] { return conv2d(x, dw, dw_bias, co); });
  return renamed(std::string(op) + ": pointwise step: ", [&] { return conv2d(t, pw, pw_bias); });
}

Variable separable_conv2d_per_sample(const Variable& x, const Variable& dw, const Variable& pw,
                                     const Variable& dw_bias, const Variable& pw_bias,
                                     const SeparableConvOptions& o) {
  const char* op = "separable_conv2d_per_sample";
  require(x.defined() && dw.defined() && pw.defined(), "{}: x, dw or pw is undefined", op);
  require(x.dim() == 4, "{}: x must be (N, C, H, W), got shape {}", op, x.shape());
  const I c = x.size(1);
  require(dw.dim() == 5 && dw.size(2) == 1 && c > 0 && dw.size(1) % c == 0 && dw.size(1) > 0,
          "{}: dw must be (N, C*mult, 1, kh, kw) with C = {} (x {}), got {}", op, c,
          x.shape(), dw.shape());
  require(pw.dim() == 5 && pw.size(2) == dw.size(1) && pw.size(3) == 1 && pw.size(4) == 1,
          "{}: pw must be (N, out, {}, 1, 1) to follow dw {}, got {}", op, dw.size(1),
          dw.shape(), pw.shape());
  const ConvOptions co = conv_options(o.stride, o.padding, o.dilation, o.padding_mode, c);
  const Variable t = renamed(std::string(op) + ": depthwise step: ",
                             [&] { return conv2d_per_sample(x, dw, dw_bias, co); });
  return renamed(std::string(op) + ": pointwise step: ",
                 [&] { return conv2d_per_sample(t, pw, pw_bias); });
}

}  // namespace convkit::ag
