// The `convkit compare` report: the console table and a self-contained HTML page with SVG charts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convkit::cli {

/// One epoch of one model's training; accuracies in [0, 1].
struct EpochPoint {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0, test_accuracy = 0;
};

/// What `convkit compare` measured for one model.
struct ModelResult {
  std::string name;         // "standard CNN", "separable CNN", "MobileNetV2 0.35"
  std::string description;  // one line, e.g. "3x3 convs 32-64-128, BN, ReLU"
  std::int64_t params = 0, macs_per_image = 0;
  double latency_b1_ms = 0, latency_b32_ms = 0;  // inference, per batch
  double train_images_per_s = 0;
  double train_accuracy = 0, test_accuracy = 0;  // final, in [0, 1]
  double train_seconds = 0;
  std::vector<EpochPoint> curve;  // one point per epoch, empty for 0 epochs
};

/// Everything the report shows. The strings may hold any bytes: the HTML escapes them.
struct CompareReport {
  std::string dataset;  // "embedded shapes, 6000 train / 1000 test, 32x32 RGB, seed 0"
  std::string budget;   // "4 epochs, batch 64, AdamW lr 0.003, cosine"
  std::string machine;  // "2 threads, convkit 0.1.0, AVX-512 kernels"
  std::string date;     // ISO timestamp
  std::vector<ModelResult> models;
};

/// The console table, one row per model: params, MACs/image, inference latency at batch 1
/// and 32 (ms per batch), training images/s, final train and test accuracy (%), training
/// time (s); columns aligned, thousands separated, "-" for a value that is not finite.
///   Model             Params  MACs/image  Latency b1 (ms)  ...  Test acc (%)
///   standard CNN      94,410  12,345,678            0.812  ...          97.3
std::string render_table(const CompareReport& report);

/// A self-contained HTML page (polyglot markup: well-formed XML after the <!DOCTYPE html>
/// line; no scripts, no external references): the dataset, budget, machine and date; a
/// two-sentence reading guide; the table of render_table; and three inline SVG charts:
/// accuracy against epoch (test solid, train dashed), test accuracy against parameters (log
/// axis) and inference latency bars (batch 1 and batch 32 side by side). Every number
/// written is finite, whatever the report holds.
std::string render_html(const CompareReport& report);

/// `text` made safe for XML text and quoted attributes: & < > " ' as entities, invalid UTF-8
/// and control characters other than tab and newline replaced by U+FFFD.
std::string escape_xml(std::string_view text);

}  // namespace convkit::cli
