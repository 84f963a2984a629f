// The training progress display: a one-line bar redrawn in place on a terminal, plain lines
// (a few per epoch) when the output is a file or a pipe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace convkit::cli {

class Progress {
 public:
  /// Writes to `out` (stderr by default); a bar when `out` is a terminal.
  explicit Progress(std::FILE* out = stderr);
  /// Starts a run: `label` prefixes every line ("standard_cnn"), `epochs` in all.
  void begin(std::string label, int epochs);
  /// One training step done. Redraws the bar at most 10 times a second; plain output prints
  /// a line at each quarter of the epoch.
  void step(int epoch, std::int64_t step, std::int64_t steps, double loss, double accuracy,
            double images_per_s);
  /// An epoch is done: replaces the bar with its summary line.
  void epoch_done(int epoch, double loss, double train_accuracy, double test_accuracy,
                  double seconds);
  /// Ends a bar line that is still open (after an interruption).
  void finish();
  bool is_terminal() const { return tty_; }

 private:
  void write_line(const std::string& text, bool in_place);
  std::FILE* out_;
  bool tty_;
  bool open_line_ = false;
  std::string label_;
  int epochs_ = 0;
  std::chrono::steady_clock::time_point run_start_, last_draw_;
  std::int64_t last_quarter_ = -1;
  int first_epoch_ = -1;  // epochs done before the first step this process saw
};

/// "1:05" / "12s"
std::string format_duration(double seconds);

}  // namespace convkit::cli
