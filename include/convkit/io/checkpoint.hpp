// Training checkpoints: model and optimizer state, epoch and RNG state in one safetensors file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "convkit/core/tensor.hpp"

namespace convkit::io {

/// Everything a training run needs to continue where it stopped. The tensors are named
/// (a Module's state_dict(), an Optimizer's state_dict()); the scalars are the caller's.
struct Checkpoint {
  std::vector<std::pair<std::string, Tensor>> model = {};      ///< e.g. module.state_dict()
  std::vector<std::pair<std::string, Tensor>> optimizer = {};  ///< e.g. optimizer.state_dict()
  std::string optimizer_kind = {};  ///< e.g. optimizer.kind(): "SGD"; empty without optimizer
  std::int64_t epoch = 0;           ///< >= 0: epochs (or steps) completed
  std::uint64_t rng_state = 0;      ///< the caller's random-number state (seed or counter)
  /// Named generator states, e.g. nn::dropout_rng_states(model): what a model draws from
  /// in training, needed for a bit-identical resume of models with dropout.
  std::vector<std::pair<std::string, std::uint64_t>> rng_states = {};
  std::map<std::string, std::string> extra = {};  ///< the caller's own notes (strings)
};

/// Writes `checkpoint` to `path` as ONE safetensors file, atomically: the bytes go to a
/// temporary file in the same folder, which is fsynced, renamed over `path`, and the folder
/// fsynced. A failure at any point (an exception, a crash, a full disk, an unwritable folder)
/// leaves the previous file at `path` whole and loadable.
/// Layout: tensors "model.<name>" and "optimizer.<key>"; __metadata__ holds
///   format = "convkit.checkpoint", format_version = "1", epoch, rng_state (decimal),
///   optimizer (the kind), "rng.<name>" (decimal) for each rng_states entry and
///   "extra.<key>" for each extra entry.
/// Throws InvalidArgument for a negative epoch or duplicate names; IoError when writing fails.
///
///   io::save_checkpoint("run/last.safetensors",
///                       {.model = model.state_dict(), .optimizer = opt.state_dict(),
///                        .optimizer_kind = std::string(opt.kind()), .epoch = epoch + 1,
///                        .rng_states = nn::dropout_rng_states(model)});
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);

/// Reads a file written by save_checkpoint. Throws IoError when it cannot be read and
/// FormatError (naming the file and what is wrong) when it is not a valid safetensors file
/// or not a convkit checkpoint: missing or unknown format, version, epoch or rng_state,
/// tensors outside "model." / "optimizer.", optimizer tensors without an optimizer kind, an
/// "rng.<name>" that is not an unsigned 64-bit integer.
Checkpoint load_checkpoint(const std::filesystem::path& path);

/// The bytes of a file written by save_checkpoint (what load_checkpoint reads) as a
/// Checkpoint. `source` names the bytes in messages. Throws FormatError as load_checkpoint does.
///
///   io::Checkpoint c = io::parse_checkpoint(bytes, "received checkpoint");
Checkpoint parse_checkpoint(std::span<const std::uint8_t> bytes,
                            const std::string& source = "<buffer>");

}  // namespace convkit::io
