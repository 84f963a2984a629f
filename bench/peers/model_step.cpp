// One MobileNetV2 training step (forward, cross-entropy, backward, SGD-momentum update) timed
// with convkit, for the side-by-side run against PyTorch (bench/peers/model_step.sh).
//
//   model_step --threads N [--batch 8] [--size 224] [--width 1.0] [--format nchw|nhwc]
//              [--steps 6]
// Prints one JSON line: the best and median step time over the steps after a warm-up step,
// and the forward / backward / update split of the best step.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/optim/sgd.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

int usage(const std::string& why) {
  std::cerr << "model_step: " << why
            << "\nusage: model_step --threads N [--batch B] [--size S] [--width W] "
               "[--format nchw|nhwc] [--steps K]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace convkit;
  int threads = 1, steps = 6;
  std::int64_t batch = 8, size = 224;
  double width = 1.0;
  std::string format = "nchw";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage("option '" + arg + "' needs a value");
    const char* value = argv[++i];
    if (arg == "--threads") threads = std::atoi(value);
    else if (arg == "--steps") steps = std::atoi(value);
    else if (arg == "--batch") batch = std::atoll(value);
    else if (arg == "--size") size = std::atoll(value);
    else if (arg == "--width") width = std::atof(value);
    else if (arg == "--format") format = value;
    else return usage("unknown option '" + arg + "'");
  }
  if (threads < 1 || steps < 2 || batch < 1 || size < 32 || width <= 0)
    return usage("--threads >= 1, --steps >= 2, --batch >= 1, --size >= 32, --width > 0");
  if (format != "nchw" && format != "nhwc") return usage("--format is nchw or nhwc");
  omp_set_num_threads(threads);
  try {
    nn::manual_seed(1);
    nn::MobileNetV2 model({.width = width, .num_classes = 1000, .dropout = 0.2});
    model.train();
    optim::SGD opt(model.named_parameters(), {.lr = 0.01, .momentum = 0.9, .weight_decay = 4e-5});
    const MemoryFormat f = format == "nhwc" ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    const Tensor x = Tensor::uniform({batch, 3, size, size}, -1, 1, 7, DType::F32, f);
    std::vector<double> target(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < target.size(); ++i) target[i] = static_cast<double>((i * 37) % 1000);
    const Tensor y = Tensor::from_values({batch}, target, DType::I64);
    std::vector<double> totals;
    double best = 1e30, best_fwd = 0, best_bwd = 0, best_upd = 0;
    for (int s = 0; s < steps; ++s) {
      const auto t0 = clock_type::now();
      opt.zero_grad();
      ag::Variable loss = ag::cross_entropy(model(ag::Variable(x)), y);
      const double fwd = seconds_since(t0);
      loss.backward();
      const double bwd = seconds_since(t0) - fwd;
      opt.step();
      const double total = seconds_since(t0);
      if (s == 0) continue;  // warm-up: first-touch of every buffer
      totals.push_back(total);
      if (total < best) best = total, best_fwd = fwd, best_bwd = bwd, best_upd = total - fwd - bwd;
    }
    std::sort(totals.begin(), totals.end());
    fmt::print(
        "{{\"impl\": \"convkit\", \"format\": \"{}\", \"threads\": {}, \"batch\": {}, \"size\": {}, "
        "\"width\": {}, \"best\": {:.6f}, \"median\": {:.6f}, \"forward\": {:.6f}, \"backward\": "
        "{:.6f}, \"update\": {:.6f}}}\n",
        format, threads, batch, size, width, best, totals[totals.size() / 2], best_fwd, best_bwd,
        best_upd);
  } catch (const Error& e) {
    std::cerr << "model_step: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
