// Learning-rate schedules as closed forms, and the scheduler that applies them.
#include "convkit/optim/schedule.hpp"

#include <cmath>
#include <numbers>

#include "core/check.hpp"

namespace convkit::optim {

using convkit::detail::require;

Schedule Schedule::constant() {
  return Schedule([](double base_lr, std::int64_t) { return base_lr; });
}

Schedule Schedule::cosine(const CosineOptions& o) {
  require(o.t_max > 0, "Schedule::cosine: t_max must be > 0, got {}", o.t_max);
  require(std::isfinite(o.eta_min) && o.eta_min >= 0,
          "Schedule::cosine: eta_min must be finite and >= 0, got {}", o.eta_min);
  return Schedule([o](double base_lr, std::int64_t epoch) {
    const double angle =
        std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(o.t_max);
    return o.eta_min + (base_lr - o.eta_min) * (1 + std::cos(angle)) / 2;
  });
}

Schedule Schedule::step_decay(const StepDecayOptions& o) {
  require(o.step_size > 0, "Schedule::step_decay: step_size must be > 0, got {}", o.step_size);
  require(std::isfinite(o.gamma) && o.gamma > 0,
          "Schedule::step_decay: gamma must be finite and > 0, got {}", o.gamma);
  return Schedule([o](double base_lr, std::int64_t epoch) {
    return base_lr * std::pow(o.gamma, static_cast<double>(epoch / o.step_size));
  });
}

Schedule Schedule::with_warmup(const WarmupOptions& o) const {
  require(o.epochs >= 0, "Schedule::with_warmup: epochs must be >= 0, got {}", o.epochs);
  require(o.start_factor > 0 && o.start_factor <= 1,
          "Schedule::with_warmup: start_factor must be in (0, 1], got {}", o.start_factor);
  return Schedule([o, after = fn_](double base_lr, std::int64_t epoch) {
    if (epoch >= o.epochs) return after(base_lr, epoch - o.epochs);
    const double progress = static_cast<double>(epoch) / static_cast<double>(o.epochs);
    return base_lr * (o.start_factor + (1 - o.start_factor) * progress);
  });
}

double Schedule::lr(double base_lr, std::int64_t epoch) const {
  require(epoch >= 0, "Schedule::lr: epoch must be >= 0, got {}", epoch);
  return fn_(base_lr, epoch);
}

LrScheduler::LrScheduler(Optimizer& optimizer, Schedule schedule)
    : optimizer_(optimizer), schedule_(std::move(schedule)) {
  set_epoch(0);
}

void LrScheduler::step() { set_epoch(epoch_ + 1); }

void LrScheduler::set_epoch(std::int64_t epoch) {
  require(epoch >= 0, "LrScheduler::set_epoch: epoch must be >= 0, got {}", epoch);
  optimizer_.set_lr(schedule_.lr(optimizer_.initial_lr(), epoch));
  epoch_ = epoch;
}

}  // namespace convkit::optim
