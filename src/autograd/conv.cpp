// Differentiable convolutions, direct and transposed, through the ops-level entry points.
#include <string>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"
#include "convkit/ops/conv.hpp"

namespace convkit::ag {

using detail::require;

namespace {

// ConvProblem::make, with its refusals renamed after the functional op ("conv2d: ...").
ConvProblem make_problem(const Tensor& x, const Tensor& w, const Tensor& b,
                         const ConvOptions& options, bool transposed, const char* name) {
  try {
    return ConvProblem::make(x, w, b, options, transposed);
  } catch (const InvalidArgument& e) {
    std::string what = e.what();
    for (const std::string prefix : {"conv_transpose: ", "conv: "})
      if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
    throw InvalidArgument(std::string(name) + ": " + what);
  }
}

// Builds the problem from the tensors, runs conv_forward, and records conv_backward_data,
// conv_backward_weights and conv_backward_bias for the inputs that need them.
Variable conv(const Variable& x, const Variable& w, const Variable& b, const ConvOptions& options,
              bool transposed, int rank, const char* name) {
  require(x.defined(), "{}: the input x is undefined", name);
  require(w.defined(), "{}: the weight w is undefined", name);
  require(x.dim() == rank, "{}: x must have rank {} (N, C, {} spatial), got shape {}", name, rank,
          rank - 2, x.shape());
  const Tensor tx = x.value(), tw = w.value();
  const Tensor tb = b.defined() ? b.value() : Tensor();
  const ConvProblem p = make_problem(tx, tw, tb, options, transposed, name);
  Tensor y = conv_forward(p, tx, tw, tb);
  const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.requires_grad();
  return Variable::from_op(
      std::move(y), {x, w, b},
      [p, tx, tw, gx, gw, gb](const Tensor& g) -> std::vector<Tensor> {
        const Tensor dy = g.to(p.dtype).to(p.format);
        Tensor dx, dw, db;
        if (gx) dx = conv_backward_data(p, dy, tw);
        if (gw) dw = conv_backward_weights(p, tx, dy);
        if (gb) db = conv_backward_bias(p, dy);
        return {dx, dw, db};
      },
      name);
}

}  // namespace

Variable conv1d(const Variable& x, const Variable& w, const Variable& b, const ConvOptions& o) {
  return conv(x, w, b, o, false, 3, "conv1d");
}
Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const ConvOptions& o) {
  return conv(x, w, b, o, false, 4, "conv2d");
}
Variable conv3d(const Variable& x, const Variable& w, const Variable& b, const ConvOptions& o) {
  return conv(x, w, b, o, false, 5, "conv3d");
}
Variable conv_transpose1d(const Variable& x, const Variable& w, const Variable& b,
                          const ConvOptions& o) {
  return conv(x, w, b, o, true, 3, "conv_transpose1d");
}
Variable conv_transpose2d(const Variable& x, const Variable& w, const Variable& b,
                          const ConvOptions& o) {
  return conv(x, w, b, o, true, 4, "conv_transpose2d");
}
Variable conv_transpose3d(const Variable& x, const Variable& w, const Variable& b,
                          const ConvOptions& o) {
  return conv(x, w, b, o, true, 5, "conv_transpose3d");
}

}  // namespace convkit::ag
