// The training progress display of the convkit command.
#include "progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace convkit::cli {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

Progress::Progress(std::FILE* out) : out_(out), tty_(::isatty(::fileno(out)) == 1) {}

void Progress::begin(std::string label, int epochs) {
  finish();
  label_ = std::move(label);
  epochs_ = epochs;
  run_start_ = Clock::now();
  last_draw_ = {};
  last_quarter_ = -1;
  first_epoch_ = -1;
}

void Progress::write_line(const std::string& text, bool in_place) {
  if (tty_) {
    // \r and clear-to-end-of-line: the bar shrinks without leaving stale characters.
    std::fprintf(out_, "\r%s\x1b[K%s", text.c_str(), in_place ? "" : "\n");
    open_line_ = in_place;
  } else {
    std::fprintf(out_, "%s\n", text.c_str());
  }
  std::fflush(out_);
}

void Progress::step(int epoch, std::int64_t step, std::int64_t steps, double loss, double accuracy,
                    double images_per_s) {
  const double epoch_fraction = static_cast<double>(step) / static_cast<double>(steps);
  // The ETA assumes the remaining steps go at this run's average pace so far.
  const double elapsed = std::chrono::duration<double>(Clock::now() - run_start_).count();
  // Epochs done before this process (a resumed run) took no time here: leave them out.
  if (first_epoch_ < 0) first_epoch_ = epoch - 1;
  const double done =
      (epoch - 1 - first_epoch_ + epoch_fraction) / std::max(1, epochs_ - first_epoch_);
  const double eta = done > 0 ? elapsed * (1 - done) / done : NAN;
  const std::string stats =
      fmt::format("epoch {}/{} step {}/{} loss {:.4f} acc {:5.1f}% {:.0f} img/s ETA {}", epoch,
                  epochs_, step, steps, loss, 100 * accuracy, images_per_s, format_duration(eta));
  if (tty_) {
    const auto now = Clock::now();
    if (step != steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(epoch_fraction * kWidth);
    write_line(
        fmt::format("{} [{}{}] {}", label_, std::string(static_cast<std::size_t>(filled), '#'),
                    std::string(static_cast<std::size_t>(kWidth - filled), '.'), stats),
        true);
    return;
  }
  // Lines at a quarter, half and three quarters: the epoch line covers the end.
  const std::int64_t quarter = step * 4 / steps;
  if (quarter == 0 || quarter == 4 || quarter == last_quarter_) return;
  last_quarter_ = quarter;
  write_line(label_ + " " + stats, false);
}

void Progress::epoch_done(int epoch, double loss, double train_accuracy, double test_accuracy,
                          double seconds) {
  last_quarter_ = -1;
  write_line(fmt::format("{} epoch {}/{}: loss {:.4f}, train accuracy {:.1f}%, test accuracy "
                         "{:.1f}%, {}",
                         label_, epoch, epochs_, loss, 100 * train_accuracy, 100 * test_accuracy,
                         format_duration(seconds)),
             false);
}

void Progress::finish() {
  if (tty_ && open_line_) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
  }
  open_line_ = false;
}

}  // namespace convkit::cli
