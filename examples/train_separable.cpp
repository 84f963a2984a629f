// Trains a small depthwise-separable network on generated stripes, with checkpoints and resume.
//
//   train_separable [checkpoint] [stop_after]
//
// Trains for 4 epochs, saving `checkpoint` (default train_separable.safetensors) after each
// one. With `stop_after` it stops early, as if interrupted; run it again and it resumes from
// the checkpoint exactly where it stopped: the printed numbers equal an uninterrupted run's.
// docs/training.md walks through it.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <numbers>
#include <string>

#include "convkit/autograd/functional.hpp"
#include "convkit/convkit.hpp"
#include "convkit/nn/nn.hpp"

using namespace convkit;

namespace {

constexpr std::int64_t kClasses = 4;  // stripes at 0, 45, 90 and 135 degrees
constexpr std::int64_t kSize = 16;    // 16x16 single-channel images
constexpr std::int64_t kBatch = 16;
constexpr int kEpochs = 4;
constexpr int kStepsPerEpoch = 10;
constexpr int kWarmupSteps = 3;

// --- data: `n` noisy stripe images and their classes, the same for the same seed ---------
std::pair<Tensor, Tensor> stripes(std::int64_t n, std::uint64_t seed) {
  const Tensor draw = Tensor::uniform({n, 3}, 0, 1, seed, DType::F64);
  const Tensor noise = Tensor::normal({n, 1, kSize, kSize}, 0, 0.3, seed + 1);
  Tensor x = Tensor::empty({n, 1, kSize, kSize});
  Tensor y = Tensor::empty({n}, DType::I64);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto cls = std::min<std::int64_t>(kClasses - 1,
                                            static_cast<std::int64_t>(draw.get({i, 0}) * kClasses));
    const double period = 3 + 3 * draw.get({i, 1});  // pixels
    const double phase = 2 * std::numbers::pi * draw.get({i, 2});
    const double angle = static_cast<double>(cls) * std::numbers::pi / 4;
    y.set({i}, static_cast<double>(cls));
    for (std::int64_t h = 0; h < kSize; ++h)
      for (std::int64_t w = 0; w < kSize; ++w) {
        const double t =
            (static_cast<double>(w) * std::cos(angle) + static_cast<double>(h) * std::sin(angle)) /
            period;
        x.set({i, 0, h, w}, std::sin(2 * std::numbers::pi * t + phase) + noise.get({i, 0, h, w}));
      }
  }
  return {x, y};
}

// --- model: 16x16x1 -> 4 logits -------------------------------------------------------------
std::shared_ptr<nn::Sequential> make_model() {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(
      nn::ConvOpts{.in = 1, .out = 8, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 8}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::SeparableConv2d>(
      nn::SeparableOpts{.in = 8, .out = 16, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 16}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::MaxPool2d>(nn::PoolOpts{.kernel = 2}));
  net->push_back(std::make_shared<nn::DepthwiseConv2d>(
      nn::DepthwiseOpts{.channels = 16, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 16}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net->push_back(std::make_shared<nn::Flatten>());
  net->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 16, .out = kClasses}));
  return net;
}

// Fraction of `x` classified as `y`, in eval mode (batch norm uses its running statistics).
double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
  ag::NoGradGuard no_grad;
  model.eval();
  const Tensor logits = model(ag::Variable(x)).value();
  model.train();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < kClasses; ++c)
      if (logits.get({i, c}) > logits.get({i, best})) best = c;
    right += static_cast<double>(best) == y.get({i}) ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(y.numel());
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path checkpoint = argc > 1 ? argv[1] : "train_separable.safetensors";
  const int stop_after = argc > 2 ? std::atoi(argv[2]) : kEpochs;

  nn::manual_seed(0);  // the same initial weights on every run
  auto model = make_model();
  optim::AdamW opt(model->named_parameters(), {.lr = 0.02, .weight_decay = 1e-4});
  // One scheduler step per training step: a linear warm-up, then a cosine decay to 1e-3.
  optim::LrScheduler sched(
      opt,
      optim::Schedule::cosine({.t_max = kEpochs * kStepsPerEpoch - kWarmupSteps, .eta_min = 1e-3})
          .with_warmup({.epochs = kWarmupSteps}));
  int epoch = 0;  // epochs completed
  std::uint64_t data_seed =
      1000;  // the data stream's position: saved, so resuming sees the same batches

  if (std::filesystem::exists(checkpoint)) {
    const io::Checkpoint ck = io::load_checkpoint(checkpoint);
    if (ck.optimizer_kind != opt.kind()) {
      std::fprintf(stderr, "%s holds %s state, not AdamW\n", checkpoint.c_str(),
                   ck.optimizer_kind.c_str());
      return 1;
    }
    model->load_state_dict(ck.model);   // weights and batch-norm statistics
    opt.load_state_dict(ck.optimizer);  // moments, step counts, learning rate
    epoch = static_cast<int>(ck.epoch);
    sched.set_epoch(epoch * kStepsPerEpoch);
    data_seed = ck.rng_state;
    std::printf("resumed from epoch %d (%s)\n", epoch, checkpoint.c_str());
  }

  const auto [test_x, test_y] = stripes(256, 7);
  for (; epoch < kEpochs && epoch < stop_after; ++epoch) {
    double loss_sum = 0;
    for (int step = 0; step < kStepsPerEpoch; ++step) {
      const auto [x, y] = stripes(kBatch, data_seed);
      data_seed += 2;  // stripes() draws from seed and seed + 1
      opt.zero_grad();
      ag::Variable loss = ag::cross_entropy((*model)(ag::Variable(x)), y);
      loss.backward();
      optim::clip_grad_norm(model->parameters(), 5.0);
      opt.step();
      sched.step();
      loss_sum += loss.value().get_flat(0);
    }
    io::save_checkpoint(checkpoint, {.model = model->state_dict(),
                                     .optimizer = opt.state_dict(),
                                     .optimizer_kind = std::string(opt.kind()),
                                     .epoch = epoch + 1,
                                     .rng_state = data_seed});
    std::printf("epoch %d: mean loss %.4f, lr %.5f, test accuracy %.3f\n", epoch + 1,
                loss_sum / kStepsPerEpoch, opt.lr(), accuracy(*model, test_x, test_y));
  }
  // A fingerprint of the final weights: an interrupted and resumed run prints the same one.
  double sum = 0;
  for (const auto& [name, t] : model->state_dict())
    for (double v : t.to_vector()) sum += v;
  std::printf("weights checksum %.17g\n", sum);
  return 0;
}
