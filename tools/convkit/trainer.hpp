// The training loop shared by `convkit train` and `convkit compare`: epochs of shuffled,
// augmented batches, an optimizer on a per-step cosine schedule, evaluation, checkpoints,
// resume and a clean stop on Ctrl-C.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convkit/io/datasets.hpp"
#include "convkit/nn/module.hpp"
#include "models.hpp"
#include "progress.hpp"

namespace convkit::cli {

struct TrainConfig {
  int epochs = 10;                  // > 0
  std::int64_t batch = 64;          // > 0
  std::string optimizer = "adamw";  // "sgd" (momentum 0.9, nesterov) or "adamw"
  double lr = 0;                    // <= 0: the optimizer's default (sgd 0.05, adamw 0.003)
  double weight_decay = -1;         // < 0: the default (sgd 5e-4, adamw 0.05)
  io::AugmentOptions augment = {};
  std::uint64_t seed = 0;                 // data order and augmentation (the caller seeds weights)
  bool channels_last = true;              // batches in NHWC: the faster depthwise kernels
  std::filesystem::path checkpoint = {};  // empty: none; else written after every epoch
  bool resume = false;                    // continue from `checkpoint` when it exists
  int stop_after = 0;  // > 0: stop as if interrupted once this many epochs are complete
  std::int64_t interrupt_at_step = 0;  // > 0: raise SIGINT after this many steps (tests)
  /// More entries that a checkpoint must hold with equal values to be resumed by this run
  /// (the data set: source, sizes, seed).
  std::map<std::string, std::string> identity = {};
};

/// What one epoch did. Accuracies in [0, 1]; train ones over the epoch's (augmented)
/// batches in training mode, as the progress bar shows them.
struct EpochStats {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0, test_accuracy = 0;
  double train_seconds = 0;  // training steps only, evaluation excluded
  std::int64_t images = 0;
};

struct TrainResult {
  std::vector<EpochStats> epochs;  // every epoch so far, resumed ones included
  bool interrupted = false;        // stopped by the stop flag before finishing
  int resumed_from = 0;            // epochs loaded from the checkpoint
  std::vector<std::string> notes;  // what the caller should tell the user (e.g. on resume)
};

/// Called as training advances: (epoch 1-based, step, steps per epoch, mean loss so far,
/// accuracy so far, images per second so far this epoch).
using StepCallback = std::function<void(int epoch, std::int64_t step, std::int64_t steps,
                                        double loss, double accuracy, double images_per_s)>;
using EpochCallback = std::function<void(const EpochStats&)>;

/// Throws InvalidArgument naming what is wrong with `config` (before any data is read).
void validate(const TrainConfig& config);

/// "AdamW, peak lr 0.003, weight decay 0.05" (the defaults resolved). Throws like train()
/// for an unknown optimizer.
std::string describe_optimizer(const TrainConfig& config);

/// Set by the SIGINT handler; the trainer checks it between steps.
std::atomic<bool>& stop_requested();
/// Installs a SIGINT handler that sets stop_requested() once; a second Ctrl-C kills.
void install_interrupt_handler();

/// Trains `model` (built from `spec`, which the checkpoint records) on data.train and
/// evaluates on data.test after each epoch. With config.resume and an existing checkpoint it
/// first loads weights, optimizer state, schedule position and history, so an interrupted
/// run continues exactly where an uninterrupted one would be. Throws InvalidArgument for a
/// bad config or a checkpoint of another model or optimizer.
TrainResult train(nn::Module& model, const ModelSpec& spec, const io::DatasetSplit& data,
                  const TrainConfig& config, const StepCallback& on_step = {},
                  const EpochCallback& on_epoch = {});

/// train() with its steps and epochs shown on `progress` under `label`.
TrainResult train_with_progress(nn::Module& model, const ModelSpec& spec,
                                const io::DatasetSplit& data, const TrainConfig& config,
                                Progress& progress, const std::string& label);

/// Accuracy of `model` in eval mode on `data`, in batches of `batch`.
double evaluate(nn::Module& model, const io::Dataset& data, std::int64_t batch, bool channels_last);

/// Fraction of rows of (N, classes) `logits` whose largest entry is at `labels`.
std::int64_t count_correct(const Tensor& logits, const Tensor& labels);

}  // namespace convkit::cli
