// The training loop of the convkit command: batches, schedule, evaluation, checkpoints.
#include "trainer.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <sstream>

#include "convkit/autograd/functional.hpp"
#include "convkit/core/error.hpp"
#include "convkit/io/checkpoint.hpp"
#include "convkit/nn/layers.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/schedule.hpp"
#include "convkit/optim/sgd.hpp"

namespace convkit::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// splitmix64 finalizer: unrelated seeds for (seed, epoch, step) triples.
std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
  std::uint64_t z =
      a * 0x9E3779B97F4A7C15ull + b * 0xBF58476D1CE4E5B9ull + c + 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

extern "C" void on_sigint(int) {
  stop_requested().store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

struct Resolved {
  double lr, weight_decay;
};

Resolved resolve(const TrainConfig& c) {
  if (c.epochs <= 0) throw InvalidArgument(fmt::format("epochs must be > 0, got {}", c.epochs));
  if (c.batch <= 0) throw InvalidArgument(fmt::format("batch must be > 0, got {}", c.batch));
  if (c.optimizer != "sgd" && c.optimizer != "adamw")
    throw InvalidArgument(fmt::format("optimizer must be 'sgd' or 'adamw', got '{}'", c.optimizer));
  if (!std::isfinite(c.lr) || !std::isfinite(c.weight_decay))
    throw InvalidArgument(
        fmt::format("lr and weight decay must be finite, got {} and {}", c.lr, c.weight_decay));
  if (c.augment.crop_padding < 0)
    throw InvalidArgument(fmt::format("crop padding must be >= 0, got {}", c.augment.crop_padding));
  const bool sgd = c.optimizer == "sgd";
  return {c.lr > 0 ? c.lr
          : sgd    ? 0.05
                   : 0.003,
          c.weight_decay >= 0 ? c.weight_decay
          : sgd               ? 5e-4
                              : 0.05};
}

std::unique_ptr<optim::Optimizer> make_optimizer(nn::Module& model, const TrainConfig& c,
                                                 const Resolved& r) {
  if (c.optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        model.named_parameters(),
        optim::SGDOptions{
            .lr = r.lr, .momentum = 0.9, .weight_decay = r.weight_decay, .nesterov = true});
  return std::make_unique<optim::AdamW>(
      model.named_parameters(), optim::AdamWOptions{.lr = r.lr, .weight_decay = r.weight_decay});
}

/// A linear warm-up over the first 5% of the steps, then a cosine decay to zero.
optim::Schedule make_schedule(std::int64_t total_steps) {
  const std::int64_t warmup = std::min<std::int64_t>(total_steps / 20, total_steps - 1);
  return optim::Schedule::cosine({.t_max = std::max<std::int64_t>(1, total_steps - warmup)})
      .with_warmup({.epochs = std::max<std::int64_t>(0, warmup)});
}

/// What must be equal for a checkpoint to continue this run (checked on resume).
std::map<std::string, std::string> run_identity(const ModelSpec& spec, const TrainConfig& c,
                                                const Resolved& r) {
  auto id = to_metadata(spec);
  id["train.epochs"] = std::to_string(c.epochs);
  id["train.batch"] = std::to_string(c.batch);
  id["train.lr"] = fmt::format("{}", r.lr);
  id["train.weight_decay"] = fmt::format("{}", r.weight_decay);
  id["train.seed"] = std::to_string(c.seed);
  id["train.crop_padding"] = std::to_string(c.augment.crop_padding);
  id["train.flip"] = std::to_string(c.augment.horizontal_flip ? 1 : 0);
  id["train.layout"] = c.channels_last ? "channels-last" : "nchw";
  for (const auto& [key, value] : c.identity) id[key] = value;
  return id;
}

std::string history_text(const std::vector<EpochStats>& history) {
  std::string text;
  for (const EpochStats& e : history)
    text += fmt::format("{} {:.17g} {:.17g} {:.17g} {:.17g} {}\n", e.epoch, e.train_loss,
                        e.train_accuracy, e.test_accuracy, e.train_seconds, e.images);
  return text;
}

std::vector<EpochStats> parse_history(const std::string& text, const std::string& source) {
  std::vector<EpochStats> history;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    EpochStats e;
    std::istringstream in(line);
    if (!(in >> e.epoch >> e.train_loss >> e.train_accuracy >> e.test_accuracy >> e.train_seconds >>
          e.images))
      throw FormatError(fmt::format("{}: malformed history line '{}'", source, line));
    history.push_back(e);
  }
  return history;
}

/// Loads `path` into model and optimizer; returns the history it holds.
std::vector<EpochStats> resume_from(const std::filesystem::path& path, nn::Module& model,
                                    optim::Optimizer& opt,
                                    const std::map<std::string, std::string>& identity,
                                    std::vector<std::string>& notes) {
  const io::Checkpoint ck = io::load_checkpoint(path);
  // Sums split over threads round differently: another count continues the run, not bit for
  // bit the run an uninterrupted process would have made.
  const std::string threads = std::to_string(omp_get_max_threads());
  if (const auto it = ck.extra.find("train.threads"); it != ck.extra.end() && it->second != threads)
    notes.push_back(fmt::format(
        "note: '{}' was written with {} threads, this run uses {}: it continues the run, but not "
        "bit for bit as one uninterrupted process would (use --threads {} for that)",
        path.string(), it->second, threads, it->second));
  for (const auto& [key, want] : identity) {
    const auto it = ck.extra.find(key);
    const std::string have = it == ck.extra.end() ? "(missing)" : it->second;
    if (have != want)
      throw InvalidArgument(fmt::format(
          "resume: checkpoint '{}' was written with {} = {}, this run has {}; use the same "
          "options or another --checkpoint",
          path.string(), key, have, want));
  }
  if (ck.optimizer_kind != opt.kind())
    throw InvalidArgument(fmt::format("resume: checkpoint '{}' holds {} state, this run uses {}",
                                      path.string(), ck.optimizer_kind, opt.kind()));
  model.load_state_dict(ck.model);
  opt.load_state_dict(ck.optimizer);
  nn::load_dropout_rng_states(model, ck.rng_states);
  const auto history = ck.extra.count("history") != 0
                           ? parse_history(ck.extra.at("history"), path.string())
                           : std::vector<EpochStats>{};
  if (static_cast<std::int64_t>(history.size()) != ck.epoch)
    throw FormatError(
        fmt::format("{}: epoch {} but {} history lines", path.string(), ck.epoch, history.size()));
  return history;
}

}  // namespace

void validate(const TrainConfig& config) { resolve(config); }

std::string describe_optimizer(const TrainConfig& config) {
  const Resolved r = resolve(config);
  return fmt::format("{}, peak lr {}, weight decay {}",
                     config.optimizer == "sgd" ? "SGD (Nesterov momentum 0.9)" : "AdamW", r.lr,
                     r.weight_decay);
}

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }

std::int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const Tensor l = logits.contiguous().to(DType::F32);
  const Tensor y = labels.contiguous();
  const std::int64_t n = l.size(0), classes = l.size(1);
  const float* p = l.data<float>();
  const std::int64_t* t = y.data<std::int64_t>();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = p + i * classes;
    right += (std::max_element(row, row + classes) - row) == t[i] ? 1 : 0;
  }
  return right;
}

double evaluate(nn::Module& model, const io::Dataset& data, std::int64_t batch,
                bool channels_last) {
  ag::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::int64_t right = 0;
  std::vector<std::int64_t> index;
  for (std::int64_t start = 0; start < data.size(); start += batch) {
    const std::int64_t n = std::min(batch, data.size() - start);
    index.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) index[static_cast<std::size_t>(i)] = start + i;
    auto [x, y] = io::gather(data, index);
    if (channels_last) x = x.to(MemoryFormat::ChannelsLast);
    right += count_correct(model(ag::Variable(x)).value(), y);
  }
  model.train(was_training);
  return data.size() == 0 ? 0 : static_cast<double>(right) / static_cast<double>(data.size());
}

TrainResult train(nn::Module& model, const ModelSpec& spec, const io::DatasetSplit& data,
                  const TrainConfig& config, const StepCallback& on_step,
                  const EpochCallback& on_epoch) {
  const Resolved r = resolve(config);
  const std::int64_t n = data.train.size();
  const std::int64_t steps = n / config.batch;  // the last partial batch is dropped
  if (steps == 0)
    throw InvalidArgument(
        fmt::format("batch {} is larger than the training set ({} images)", config.batch, n));
  auto opt = make_optimizer(model, config, r);
  optim::LrScheduler sched(*opt, make_schedule(steps * config.epochs));
  const auto identity = run_identity(spec, config, r);

  TrainResult result;
  if (config.resume && !config.checkpoint.empty() && std::filesystem::exists(config.checkpoint)) {
    result.epochs = resume_from(config.checkpoint, model, *opt, identity, result.notes);
    result.resumed_from = static_cast<int>(result.epochs.size());
    sched.set_epoch(result.resumed_from * steps);
  }
  model.train();
  for (int epoch = result.resumed_from; epoch < config.epochs; ++epoch) {
    const auto order = io::permutation(n, mix(config.seed, static_cast<std::uint64_t>(epoch)));
    EpochStats stats{.epoch = epoch + 1};
    double loss_sum = 0;
    std::int64_t right = 0;
    const auto start = Clock::now();
    for (std::int64_t step = 0; step < steps; ++step) {
      if (stop_requested().load()) {
        result.interrupted = true;
        return result;
      }
      auto [x, y] = io::gather(
          data.train, std::span(order).subspan(static_cast<std::size_t>(step * config.batch),
                                               static_cast<std::size_t>(config.batch)));
      x = io::augment(x, config.augment,
                      mix(config.seed, static_cast<std::uint64_t>(epoch),
                          static_cast<std::uint64_t>(step) + 1));
      if (config.channels_last) x = x.to(MemoryFormat::ChannelsLast);
      opt->zero_grad();
      const ag::Variable logits = model(ag::Variable(x));
      ag::Variable loss = ag::cross_entropy(logits, y);
      loss.backward();
      opt->step();
      sched.step();
      loss_sum += loss.value().get_flat(0);
      right += count_correct(logits.value(), y);
      stats.images += config.batch;
      if (config.interrupt_at_step > 0 && epoch * steps + step + 1 == config.interrupt_at_step)
        std::raise(SIGINT);  // through the installed handler, like a Ctrl-C in the terminal
      if (on_step)
        on_step(epoch + 1, step + 1, steps, loss_sum / static_cast<double>(step + 1),
                static_cast<double>(right) / static_cast<double>(stats.images),
                static_cast<double>(stats.images) / seconds_since(start));
    }
    stats.train_seconds = seconds_since(start);
    stats.train_loss = loss_sum / static_cast<double>(steps);
    stats.train_accuracy = static_cast<double>(right) / static_cast<double>(stats.images);
    stats.test_accuracy = evaluate(model, data.test, 256, config.channels_last);
    result.epochs.push_back(stats);
    if (!config.checkpoint.empty()) {
      auto extra = identity;
      extra["history"] = history_text(result.epochs);
      extra["train.threads"] = std::to_string(omp_get_max_threads());
      io::save_checkpoint(config.checkpoint, {.model = model.state_dict(),
                                              .optimizer = opt->state_dict(),
                                              .optimizer_kind = std::string(opt->kind()),
                                              .epoch = epoch + 1,
                                              .rng_state = config.seed,
                                              .rng_states = nn::dropout_rng_states(model),
                                              .extra = extra});
    }
    if (on_epoch) on_epoch(stats);
    if (config.stop_after > 0 && epoch + 1 >= config.stop_after && epoch + 1 < config.epochs) {
      result.interrupted = true;
      return result;
    }
  }
  return result;
}

TrainResult train_with_progress(nn::Module& model, const ModelSpec& spec,
                                const io::DatasetSplit& data, const TrainConfig& config,
                                Progress& progress, const std::string& label) {
  progress.begin(label, config.epochs);
  TrainResult result = train(
      model, spec, data, config,
      [&](int epoch, std::int64_t step, std::int64_t steps, double loss, double acc, double ips) {
        progress.step(epoch, step, steps, loss, acc, ips);
      },
      [&](const EpochStats& e) {
        progress.epoch_done(e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy,
                            e.train_seconds);
      });
  progress.finish();
  return result;
}

}  // namespace convkit::cli
