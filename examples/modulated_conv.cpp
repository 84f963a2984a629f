// StyleGAN2's modulated convolution with styles made at run time: a Linear maps a style vector
// to per-channel scales, modulated_conv2d applies them; a few Adam steps fit a fixed teacher.
// Checks that the loss falls and that the fused and non-fused forms agree (values, gradients).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "convkit/convkit.hpp"
#include "convkit/nn/nn.hpp"

using namespace convkit;

namespace {

constexpr std::int64_t kBatch = 8, kStyle = 6, kIn = 4, kOut = 4, kSize = 8;

// One modulated layer: styles = affine(z) + 1 (StyleGAN2 initializes the bias to 1), then the
// convolution with the shared weight modulated and demodulated per sample.
struct ModLayer {
  nn::Linear affine{nn::LinearOpts{.in = kStyle, .out = kIn}};
  ag::Variable weight;
  explicit ModLayer(std::uint64_t seed)
      : weight(Tensor::normal({kOut, kIn, 3, 3}, 0, 1, seed), true) {}
  ag::Variable operator()(const ag::Variable& x, const ag::Variable& z, bool fused) {
    const ag::Variable styles = ag::add(affine(z), 1.0);
    return ag::modulated_conv2d(x, weight, styles, {.padding = 1, .fused = fused});
  }
  std::vector<ag::Variable> parameters() {
    std::vector<ag::Variable> p = affine.parameters();
    p.push_back(weight);
    return p;
  }
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace

int main() {
  nn::manual_seed(1);
  ModLayer teacher(101), student(202);
  const ag::Variable x(Tensor::uniform({kBatch, kIn, kSize, kSize}, -1, 1, 7));
  const ag::Variable z(Tensor::normal({kBatch, kStyle}, 0, 1, 8));
  ag::Variable target;
  {
    ag::NoGradGuard no_grad;
    target = teacher(x, z, true).detach();
  }
  std::printf("x %s, style vectors %s -> styles [%lld, %lld], weight %s, y %s\n",
              x.shape().str().c_str(), z.shape().str().c_str(), static_cast<long long>(kBatch),
              static_cast<long long>(kIn), student.weight.shape().str().c_str(),
              target.shape().str().c_str());

  // Fused (one grouped convolution of per-sample kernels) vs non-fused (scale x, shared conv,
  // scale y): same values and the same gradients to every parameter.
  bool ok = true;
  std::vector<Tensor> grads[2];
  Tensor outs[2];
  for (int f = 0; f < 2; ++f) {
    for (const ag::Variable& p : student.parameters()) p.zero_grad();
    const ag::Variable y = student(x, z, f == 0);
    ag::mse_loss(y, target).backward();
    outs[f] = y.value();
    for (const ag::Variable& p : student.parameters()) grads[f].push_back(p.grad().clone());
  }
  const double dy = max_abs_diff(outs[0], outs[1]);
  double dg = 0;
  for (std::size_t i = 0; i < grads[0].size(); ++i)
    dg = std::max(dg, max_abs_diff(grads[0][i], grads[1][i]));
  std::printf("fused vs non-fused: max |dy| = %.3g, max |dgrad| = %.3g\n", dy, dg);
  if (!(dy < 1e-4 && dg < 1e-4)) {
    std::printf("FAIL: the two forms disagree\n");
    ok = false;
  }

  optim::Adam opt(student.parameters(), {.lr = 0.05});
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    const ag::Variable loss = ag::mse_loss(student(x, z, step % 2 == 0), target);
    loss.backward();
    opt.step();
    last = loss.value().get_flat(0);
    if (step == 0) first = last;
    if (step % 10 == 0 || step == 59)
      std::printf("step %2d (%s)  loss %.5f\n", step, step % 2 == 0 ? "fused" : "non-fused", last);
  }
  std::printf("loss %.5f -> %.5f (%.1fx lower)\n", first, last, first / last);
  if (!(last < 0.25 * first)) {
    std::printf("FAIL: the loss did not fall to a quarter\n");
    ok = false;
  }
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
