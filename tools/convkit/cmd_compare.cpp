// convkit compare: a standard CNN, its depthwise-separable twin and a small MobileNetV2
// trained on the same data with the same budget; a table and a self-contained HTML report.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "convkit/core/error.hpp"
#include "convkit/nn/summary.hpp"
#include "models.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "report.hpp"

namespace convkit::cli {

namespace {

// The defaults fit the README's main job into about a minute of training on 2 cores: a short
// budget, where augmentation only slows learning down (measured: MobileNetV2 0.35 reached 20%
// test accuracy with crops and flips, 34% without, after 3 epochs of 4,000 images).
struct CompareArgs {
  DataOptions data{.train_size = 4000};
  TrainConfig config{.epochs = 3, .batch = 32};
  double width = 0.5;  // the two CNNs' (16-32-64 channels); the MobileNetV2 is width 0.35
  std::filesystem::path report = "report.html";
  int threads = 0;
};

/// Median inference time of one batch of `batch` images, in milliseconds: a warm-up call,
/// then calls until `budget` seconds or `max_calls` have passed.
double latency_ms(nn::Module& model, const Shape& image, std::int64_t batch, bool channels_last,
                  double budget, int max_calls) {
  using Clock = std::chrono::steady_clock;
  ag::NoGradGuard no_grad;
  model.eval();
  Tensor x = Tensor::uniform({batch, image[1], image[2], image[3]}, -1, 1, 5);
  if (channels_last) x = x.to(MemoryFormat::ChannelsLast);
  model(ag::Variable(x));
  std::vector<double> times;
  const auto start = Clock::now();
  while (
      static_cast<int>(times.size()) < max_calls &&
      (times.size() < 3 || std::chrono::duration<double>(Clock::now() - start).count() < budget)) {
    const auto t0 = Clock::now();
    model(ag::Variable(x));
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  model.train();
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2),
                   times.end());
  return 1e3 * times[times.size() / 2];
}

/// The processor's name from /proc/cpuinfo, or "unknown CPU".
std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  return "unknown CPU";
}

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

int run_compare(CompareArgs& a) {
  const int threads = apply_threads(a.threads);
  validate(a.config);
  check_writable(a.report, "--report");
  const LoadedData data = load_data(a.data);
  const Shape& image = data.split.train.images.shape();
  if (a.config.augment.crop_padding > image[2])
    throw InvalidArgument(fmt::format("--crop-padding {} is larger than the images ({} pixels)",
                                      a.config.augment.crop_padding, image[2]));
  a.config.identity = data_identity(a.data);
  if (image[2] != image[3])
    throw InvalidArgument(
        fmt::format("the presets take square images, the data has {}x{}", image[2], image[3]));
  const std::vector<ModelSpec> specs{{.preset = "standard_cnn", .width = a.width},
                                     {.preset = "separable_cnn", .width = a.width},
                                     {.preset = "mobilenet_v2", .width = 0.35}};
  CompareReport report;
  report.dataset = data.description;
  report.budget =
      fmt::format("{} epochs of batch {}; {}, warm-up then cosine decay; augmentation: {}; seed {}",
                  a.config.epochs, a.config.batch, describe_optimizer(a.config),
                  a.config.augment.crop_padding == 0 && !a.config.augment.horizontal_flip
                      ? std::string("none")
                      : fmt::format("crop padding {}, {}flip", a.config.augment.crop_padding,
                                    a.config.augment.horizontal_flip ? "" : "no "),
                  a.config.seed);
  report.machine = fmt::format("{}, {} threads, {} batches, convkit {}", cpu_name(), threads,
                               a.config.channels_last ? "channels-last" : "NCHW", "0.1.0");
  report.date = now_iso();
  std::printf("data: %s\nbudget: %s\nmachine: %s\n", report.dataset.c_str(), report.budget.c_str(),
              report.machine.c_str());
  std::fflush(stdout);

  Progress progress;
  install_interrupt_handler();
  for (ModelSpec spec : specs) {
    spec.classes = data.split.train.num_classes();
    spec.in_channels = image[1];
    spec.image_size = image[2];
    nn::manual_seed(a.config.seed);  // each model starts from its own seeded initialization
    const auto model = make_model(spec);
    const nn::Summary summary = nn::summary(*model, {1, image[1], image[2], image[3]});
    ModelResult r;
    r.name = spec.preset == "mobilenet_v2" ? "MobileNetV2 0.35" : spec.preset;
    r.description = describe(spec);
    r.params = summary.count.trainable;  // as PyTorch counts: batch-norm statistics are not
    r.macs_per_image = summary.total_macs;
    const TrainResult result =
        train_with_progress(*model, spec, data.split, a.config, progress, r.name);
    if (result.interrupted || stop_requested().load()) {
      std::printf("interrupted while training %s; no report written\n", r.name.c_str());
      return kInterruptedStatus;
    }
    std::int64_t images = 0;
    for (const EpochStats& e : result.epochs) {
      r.train_seconds += e.train_seconds;
      images += e.images;
      r.curve.push_back({e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy});
    }
    r.train_images_per_s = r.train_seconds > 0 ? static_cast<double>(images) / r.train_seconds : 0;
    r.train_accuracy = result.epochs.back().train_accuracy;
    r.test_accuracy = result.epochs.back().test_accuracy;
    r.latency_b1_ms = latency_ms(*model, image, 1, a.config.channels_last, 0.5, 200);
    r.latency_b32_ms = latency_ms(*model, image, 32, a.config.channels_last, 1.0, 50);
    report.models.push_back(std::move(r));
  }
  if (stop_requested().load()) {  // Ctrl-C while timing the last model
    std::printf("interrupted; no report written\n");
    return kInterruptedStatus;
  }
  std::printf("\n%s\n", render_table(report).c_str());
  write_file_atomically(a.report, render_html(report));
  std::printf("report: %s\n", std::filesystem::absolute(a.report).lexically_normal().c_str());
  return 0;
}

}  // namespace

Runner add_compare(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "train a standard CNN, its depthwise-separable twin and a MobileNetV2 (width 0.35) on "
      "the same data with the same budget; print a table and write an HTML report");
  add_data_options(*cmd, args->data);
  add_train_options(*cmd, args->config);
  cmd->add_option("--width", args->width,
                  "channel width multiplier of the two CNNs (default 0.5: 16-32-64 channels)")
      ->check(width_range());
  cmd->add_option("--report", args->report, "where the HTML report goes (default report.html)");
  add_threads_option(*cmd, args->threads);
  return [args] { return run_compare(*args); };
}

}  // namespace convkit::cli
