// Constrained kernels through parametrizations: a radially symmetric 5x5 kernel and a
// left-right symmetric one learn a target filter; the constraints hold bit for bit after
// every step, only the free parameters train, and the state_dict uses PyTorch's keys.
#include <cmath>
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;
namespace P = nn::parametrize;

// Trains conv (1 -> 1 channel) to reproduce `teacher` on random images; returns the loss.
double fit(nn::Conv2d& conv, nn::Conv2d& teacher, int steps) {
  optim::Adam opt(conv.parameters(), {.lr = 0.05});
  double loss = 0;
  for (int step = 0; step < steps; ++step) {
    const ag::Variable x(Tensor::uniform({4, 1, 16, 16}, -1, 1, 100 + step));
    const Tensor target = [&] {
      ag::NoGradGuard no_grad;
      return teacher(x).value();
    }();
    opt.zero_grad();
    ag::Variable l = ag::mse_loss(conv(x), ag::Variable(target));
    l.backward();
    opt.step();
    loss = l.value().get_flat(0);
  }
  return loss;
}

int main() {
  nn::manual_seed(7);
  // A Mexican-hat teacher: radially symmetric, so a radial student can match it exactly.
  nn::Conv2d teacher({.in = 1, .out = 1, .kernel = 5, .padding = 2, .bias = false});
  std::vector<double> hat(25);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      const double r2 = (y - 2) * (y - 2) + (x - 2) * (x - 2);
      hat[static_cast<std::size_t>(y * 5 + x)] = (1 - r2 / 4) * std::exp(-r2 / 4);
    }
  teacher.weight.set_value(Tensor::from_values({1, 1, 5, 5}, hat));

  nn::Conv2d radial({.in = 1, .out = 1, .kernel = 5, .padding = 2, .bias = false});
  P::register_parametrization(radial, "weight", P::rotation_symmetric(P::Rotation::Radial));
  nn::Conv2d mirror({.in = 1, .out = 1, .kernel = 5, .padding = 2, .bias = false});
  P::register_parametrization(mirror, "weight", P::symmetric(P::Flip::LeftRight));

  const double loss_radial = fit(radial, teacher, 150), loss_mirror = fit(mirror, teacher, 150);
  const Tensor w = radial.param("weight").value();
  std::printf("radial kernel after training (the teacher's in brackets):\n");
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 5; ++x)
      std::printf(" %7.4f [%7.4f]", w.get_flat(y * 5 + x), hat[static_cast<std::size_t>(y * 5 + x)]);
    std::printf("\n");
  }
  bool exact = true;  // every position at the same distance holds the same bits
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x)
      exact = exact && w.get_flat(y * 5 + x) == w.get_flat(x * 5 + (4 - y)) &&
              w.get_flat(y * 5 + x) == w.get_flat(y * 5 + (4 - x));
  const Tensor m = mirror.param("weight").value();
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) exact = exact && m.get_flat(y * 5 + x) == m.get_flat(y * 5 + 4 - x);
  std::printf("final loss: radial %.2e, left-right %.2e; constraints exact: %s\n", loss_radial,
              loss_mirror, exact ? "yes" : "no");
  std::printf("state_dict keys:");
  for (const auto& [key, t] : radial.state_dict()) std::printf(" %s", key.c_str());
  std::printf("\n");
  const bool ok = exact && loss_radial < 1e-4 && loss_mirror < 1e-4 &&
                  radial.state_dict().front().first == "parametrizations.weight.original";
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
