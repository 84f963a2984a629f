// Checkpoints: named tensors under "model." and "optimizer.", scalars in the metadata map.
#include "convkit/io/checkpoint.hpp"

#include <charconv>

#include <fmt/format.h>

#include "convkit/io/safetensors.hpp"
#include "core/check.hpp"

namespace convkit::io {
namespace {

constexpr const char* kFormat = "convkit.checkpoint";
constexpr const char* kVersion = "1";
constexpr std::string_view kModel = "model.";
constexpr std::string_view kOptimizer = "optimizer.";
constexpr std::string_view kExtra = "extra.";
constexpr std::string_view kRng = "rng.";

/// The whole of `text` as an integer of type T, or false.
template <typename T>
bool parse_int(const std::string& text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& c) {
  convkit::detail::require(c.epoch >= 0, "save_checkpoint: epoch must be >= 0, got {}", c.epoch);
  convkit::detail::require(c.optimizer.empty() || !c.optimizer_kind.empty(),
                           "save_checkpoint: optimizer state without an optimizer_kind");
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(c.model.size() + c.optimizer.size());
  for (const auto& [name, t] : c.model) tensors.emplace_back(std::string(kModel) + name, t);
  for (const auto& [name, t] : c.optimizer) tensors.emplace_back(std::string(kOptimizer) + name, t);
  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"format_version", kVersion},
                                          {"epoch", std::to_string(c.epoch)},
                                          {"rng_state", std::to_string(c.rng_state)},
                                          {"optimizer", c.optimizer_kind}};
  for (const auto& [key, value] : c.extra) meta.emplace(std::string(kExtra) + key, value);
  for (const auto& [name, state] : c.rng_states) {
    convkit::detail::require(
        !name.empty() && meta.emplace(std::string(kRng) + name, std::to_string(state)).second,
        "save_checkpoint: rng_states name '{}' is empty or used twice", name);
  }
  save_safetensors(path, tensors, meta);
}

namespace {

/// The checkpoint held by a parsed safetensors file named `source`.
Checkpoint checkpoint_from(SafetensorsFile file, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw FormatError(fmt::format("checkpoint '{}': {}", source, what));
  };
  auto field = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      fail(fmt::format("metadata has no '{}' (not a file written by save_checkpoint?)", key));
    return it->second;
  };
  if (field("format") != kFormat)
    fail(fmt::format("metadata 'format' is '{}', expected '{}'", field("format"), kFormat));
  if (field("format_version") != kVersion)
    fail(fmt::format("format_version '{}' is not supported (this build reads version {})",
                     field("format_version"), kVersion));
  Checkpoint c;
  if (!parse_int(field("epoch"), c.epoch) || c.epoch < 0)
    fail(fmt::format("epoch '{}' is not a non-negative integer", field("epoch")));
  if (!parse_int(field("rng_state"), c.rng_state))
    fail(fmt::format("rng_state '{}' is not an unsigned 64-bit integer", field("rng_state")));
  c.optimizer_kind = field("optimizer");
  for (auto& [key, value] : file.metadata) {
    if (key.starts_with(kExtra)) c.extra.emplace(key.substr(kExtra.size()), std::move(value));
    if (key.starts_with(kRng) && key.size() > kRng.size()) {
      std::uint64_t state = 0;
      if (!parse_int(value, state))
        fail(fmt::format("'{}' is '{}', not an unsigned 64-bit integer", key, value));
      c.rng_states.emplace_back(key.substr(kRng.size()), state);
    }
  }
  for (auto& [name, t] : file.tensors) {
    if (name.starts_with(kModel) && name.size() > kModel.size())
      c.model.emplace_back(name.substr(kModel.size()), std::move(t));
    else if (name.starts_with(kOptimizer) && name.size() > kOptimizer.size())
      c.optimizer.emplace_back(name.substr(kOptimizer.size()), std::move(t));
    else
      fail(fmt::format("tensor '{}' is neither 'model.<name>' nor 'optimizer.<key>'", name));
  }
  if (!c.optimizer.empty() && c.optimizer_kind.empty())
    fail("holds optimizer state but no optimizer kind");
  return c;
}

}  // namespace

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  return checkpoint_from(load_safetensors(path), path.string());
}

Checkpoint parse_checkpoint(std::span<const std::uint8_t> bytes, const std::string& source) {
  return checkpoint_from(parse_safetensors(bytes, source), source);
}

}  // namespace convkit::io
