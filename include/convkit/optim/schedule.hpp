// Learning-rate schedules (cosine annealing, step decay, linear warm-up) and the scheduler.
#pragma once

#include <cstdint>
#include <functional>

#include "convkit/optim/optimizer.hpp"

namespace convkit::optim {

/// Cosine annealing, torch.optim.lr_scheduler.CosineAnnealingLR's closed form:
///   lr(e) = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t_max)) / 2
struct CosineOptions {
  std::int64_t t_max = 0;  ///< > 0: epochs to reach eta_min
  double eta_min = 0;      ///< >= 0
};

/// Step decay, torch.optim.lr_scheduler.StepLR:  lr(e) = base_lr * gamma^floor(e / step_size)
struct StepDecayOptions {
  std::int64_t step_size = 0;  ///< > 0
  double gamma = 0.1;          ///< > 0
};

/// Linear warm-up, torch.optim.lr_scheduler.LinearLR(start_factor, 1.0, epochs) followed by
/// another schedule through SequentialLR(milestones=[epochs]):
///   lr(e) = base_lr * (start_factor + (1 - start_factor) * e / epochs)   for e < epochs
///   lr(e) = after(e - epochs)                                            afterwards
struct WarmupOptions {
  std::int64_t epochs = 0;          ///< >= 0; 0 means no warm-up
  double start_factor = 1.0 / 3.0;  ///< in (0, 1], PyTorch's default
};

/// A learning rate as a pure function of the base rate and the epoch (or step) number.
/// Closed forms make resuming exact: the rate at epoch e never depends on the path there.
///
///   auto s = optim::Schedule::cosine({.t_max = 90}).with_warmup({.epochs = 5});
///   double lr = s.lr(0.1, 3);   // in warm-up: 0.1 * (1/3 + (2/3) * 3/5)
class Schedule {
 public:
  /// lr(e) = base_lr.
  static Schedule constant();
  static Schedule cosine(const CosineOptions& options);
  static Schedule step_decay(const StepDecayOptions& options);
  /// This schedule, delayed by a linear warm-up of options.epochs epochs.
  Schedule with_warmup(const WarmupOptions& options) const;

  /// The learning rate at `epoch` (>= 0) for a base rate `base_lr`.
  double lr(double base_lr, std::int64_t epoch) const;

 private:
  using Fn = std::function<double(double base_lr, std::int64_t epoch)>;
  explicit Schedule(Fn fn) : fn_(std::move(fn)) {}
  Fn fn_;
};

/// Drives an optimizer's learning rate along a schedule from its initial_lr(), like a
/// torch.optim.lr_scheduler: construction sets epoch 0's rate, each step() advances one
/// epoch. Keeps a reference: the optimizer must outlive the scheduler.
///
///   optim::LrScheduler sched(opt, optim::Schedule::step_decay({.step_size = 30}));
///   for (int epoch = 0; epoch < 90; ++epoch) { train_one_epoch(); sched.step(); }
///   sched.set_epoch(saved_epoch);   // when resuming from a checkpoint
class LrScheduler {
 public:
  LrScheduler(Optimizer& optimizer, Schedule schedule);
  /// Advances one epoch and sets the optimizer's learning rate for it.
  void step();
  /// Jumps to `epoch` (>= 0) and sets the optimizer's learning rate for it.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  /// The rate the optimizer was given for the current epoch.
  double lr() const { return optimizer_.lr(); }

 private:
  Optimizer& optimizer_;
  Schedule schedule_;
  std::int64_t epoch_ = 0;
};

}  // namespace convkit::optim
