// Options shared by the convkit subcommands: the data source, training settings, threads.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <map>
#include <string>

#include "convkit/io/datasets.hpp"
#include "trainer.hpp"

namespace convkit::cli {

struct DataOptions {
  std::string source = "embedded";  // "embedded", "cifar10" or "mnist"
  std::filesystem::path dir = {};   // the folder of the cifar10 / mnist files
  std::int64_t train_size = 6000;   // embedded only
  std::int64_t test_size = 1000;    // embedded only
  std::int64_t image_size = 32;     // embedded only
  std::uint64_t seed = 0;           // embedded only: which images
};

/// A data set ready for training: pixels standardized per channel with the training set's
/// mean and deviation, and a line describing it.
struct LoadedData {
  io::DatasetSplit split;
  std::string description;  // "embedded shapes: 6000 train / 1000 test, 3x32x32, seed 0"
};

/// Checks that a number is > 0 (or >= 0): "--epochs: must be > 0, got -3" (CLI11's own
/// checks print the whole range of a double).
CLI::Validator positive();
CLI::Validator non_negative();
/// A width multiplier: in (0, 16].
CLI::Validator width_range();
/// An unsigned 64-bit integer written in decimal digits ("-1" is refused, not wrapped).
CLI::Validator unsigned_integer();

/// What must be equal for a checkpoint of a run on these data to continue it.
std::map<std::string, std::string> data_identity(const DataOptions& options);

/// Adds --data, --data-dir, --train-size, --test-size, --image-size, --data-seed.
void add_data_options(CLI::App& app, DataOptions& options);
/// Loads (or generates) and standardizes. Throws InvalidArgument for a bad combination,
/// IoError / FormatError from the loaders.
LoadedData load_data(const DataOptions& options);

/// Adds --epochs, --batch, --optimizer, --lr, --weight-decay, --seed, --crop-padding, --flip,
/// --no-flip, --nchw.
void add_train_options(CLI::App& app, TrainConfig& config);

/// Adds --threads (0: every core).
void add_threads_option(CLI::App& app, int& threads);
/// Applies --threads to OpenMP (kernels and OpenBLAS alike); returns the count in use.
int apply_threads(int threads);

/// Writes `text` to `path` atomically (temporary file in the same folder, then rename), so a
/// failure leaves any previous file whole. Throws IoError naming the path.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);
/// Throws IoError naming `path` when its folder does not exist or cannot be written:
/// checked before a long run instead of after it.
void check_writable(const std::filesystem::path& path, const std::string& what);

}  // namespace convkit::cli
