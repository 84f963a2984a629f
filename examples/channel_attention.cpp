// A small conv net with an SE ChannelAttention block and a CBAM block: keys, shapes, parameter
// counts, a short training run on a spatial task, and the attention weights of one input.
// Checks the parameter counts against the formulas, that every block output is x times its
// attention map, and that the net learns the task.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "convkit/convkit.hpp"
#include "convkit/nn/nn.hpp"

using namespace convkit;

namespace {

constexpr std::int64_t kC = 8, kR = 2, kSize = 12, kBatch = 24;

// conv -> ReLU -> SE -> conv (stride 2) -> ReLU -> CBAM -> global average -> Linear(2).
struct Net : nn::Module {
  std::shared_ptr<nn::Sequential> stem, mid;
  std::shared_ptr<nn::ChannelAttention> se;
  std::shared_ptr<nn::CBAM> cbam;
  std::shared_ptr<nn::Linear> head;
  Net() {
    stem = register_module("stem", std::make_shared<nn::Sequential>());
    stem->push_back(
        std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 1, .out = kC, .kernel = 3, .padding = 1}));
    stem->push_back(std::make_shared<nn::ReLU>());
    se = register_module("se", std::make_shared<nn::ChannelAttention>(kC, kR));
    mid = register_module("mid", std::make_shared<nn::Sequential>());
    mid->push_back(std::make_shared<nn::Conv2d>(
        nn::ConvOpts{.in = kC, .out = kC, .kernel = 3, .stride = 2, .padding = 1}));
    mid->push_back(std::make_shared<nn::ReLU>());
    cbam = register_module("cbam", std::make_shared<nn::CBAM>(nn::CBAMOpts{
                                       .channels = kC, .reduction = kR, .spatial_kernel = 3}));
    head =
        register_module("head", std::make_shared<nn::Linear>(nn::LinearOpts{.in = kC, .out = 2}));
  }
  ag::Variable forward(const ag::Variable& x) override {
    const ag::Variable f = (*cbam)((*mid)((*se)((*stem)(x))));
    return (*head)(ag::reshape(ag::mean(f, {2, 3}), {x.size(0), kC}));
  }
  std::string type_name() const override { return "Net"; }
};

// Images with one bright 3x3 square on a noisy background; label 1 when it is in the left half.
void make_batch(std::uint64_t seed, Tensor* x, Tensor* labels) {
  *x = Tensor::uniform({kBatch, 1, kSize, kSize}, 0, 0.3, seed);
  const Tensor pos = Tensor::uniform({kBatch, 3}, 0, 1, seed + 1);
  std::vector<double> lab;
  for (std::int64_t n = 0; n < kBatch; ++n) {
    const bool left = pos.get({n, 0}) < 0.5;
    const auto col =
        static_cast<std::int64_t>(pos.get({n, 1}) * (kSize / 2 - 3)) + (left ? 0 : kSize / 2);
    const auto row = static_cast<std::int64_t>(pos.get({n, 2}) * (kSize - 3));
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 3; ++j) x->set({n, 0, row + i, col + j}, 1.0);
    lab.push_back(left ? 1 : 0);
  }
  *labels = Tensor::from_values({kBatch}, lab, DType::I64);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace

int main() {
  nn::manual_seed(3);
  Net net;
  bool ok = true;
  auto check = [&ok](bool cond, const char* what) {
    if (!cond) {
      std::printf("FAIL: %s\n", what);
      ok = false;
    }
  };
  for (const auto& [key, t] : net.state_dict())
    if (key.rfind("se.", 0) == 0 || key.rfind("cbam.", 0) == 0)
      std::printf("  %-22s %s\n", key.c_str(), t.shape().str().c_str());
  const auto se_params = nn::count_params(*net.se).total,
             cbam_params = nn::count_params(*net.cbam).total;
  std::printf(
      "parameters: SE %lld (2*C*C/r = %lld), CBAM %lld (2*C*C/r + 2*3*3 = %lld), net %lld\n",
      static_cast<long long>(se_params), static_cast<long long>(2 * kC * kC / kR),
      static_cast<long long>(cbam_params), static_cast<long long>(2 * kC * kC / kR + 18),
      static_cast<long long>(nn::count_params(net).total));
  check(se_params == 2 * kC * kC / kR && cbam_params == 2 * kC * kC / kR + 18, "parameter counts");

  Tensor xt, yt, xv, yv;
  make_batch(10, &xt, &yt);
  make_batch(20, &xv, &yv);
  optim::Adam opt(net.parameters(), {.lr = 0.01});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    const ag::Variable loss = ag::cross_entropy(net(ag::Variable(xt)), yt);
    loss.backward();
    opt.step();
    last = loss.value().get_flat(0);
    if (step == 0) first = last;
    if (step % 10 == 0 || step == 39) std::printf("step %2d  loss %.4f\n", step, last);
  }
  ag::NoGradGuard no_grad;
  const Tensor logits = net(ag::Variable(xv)).value();
  int correct = 0;
  for (std::int64_t n = 0; n < kBatch; ++n)
    correct += (logits.get({n, 1}) > logits.get({n, 0})) == (yv.get({n}) == 1);
  std::printf("loss %.4f -> %.4f; held-out accuracy %d/%lld\n", first, last, correct,
              static_cast<long long>(kBatch));
  check(last < 0.5 * first, "the training loss halves");
  check(correct >= kBatch * 0.85, "held-out accuracy >= 85%");

  // One input through the blocks: the SE channel weights and CBAM's spatial map.
  const ag::Variable x0(xv.narrow(0, 0, 1).contiguous());
  const ag::Variable f = (*net.stem)(x0);
  const Tensor a = net.se->weights(f).value();
  std::printf("input 0 (label %s): SE channel weights", yv.get({0}) == 1 ? "left" : "right");
  for (std::int64_t c = 0; c < kC; ++c) std::printf(" %.2f", a.get({0, c, 0, 0}));
  const ag::Variable g = (*net.mid)((*net.se)(f));
  const ag::Variable gc = (*net.cbam->ca)(g);
  const Tensor s = net.cbam->sa->weights(gc).value();
  std::printf("\nCBAM spatial map %s:\n", s.shape().str().c_str());
  for (std::int64_t i = 0; i < s.size(2); ++i) {
    for (std::int64_t j = 0; j < s.size(3); ++j) std::printf(" %.2f", s.get({0, 0, i, j}));
    std::printf("\n");
  }
  // Each block's output is its input times its attention map.
  check(max_abs_diff((*net.se)(f).value(), ag::mul(f, ag::Variable(a)).value()) == 0,
        "SE output = x * a");
  check(max_abs_diff((*net.cbam)(g).value(), ag::mul(gc, ag::Variable(s)).value()) == 0,
        "CBAM output = x' * a_s");
  const std::vector<double> av = a.to_vector(), sv = s.to_vector();
  // (A sigmoid rounds to exactly 0 or 1 in float32 beyond about +-17, so the closed interval.)
  check(std::all_of(av.begin(), av.end(), [](double v) { return v >= 0 && v <= 1; }) &&
            std::all_of(sv.begin(), sv.end(), [](double v) { return v >= 0 && v <= 1; }),
        "attention weights in [0, 1]");
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
