// safetensors read and write, validated like the reference implementation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "convkit/core/tensor.hpp"

namespace convkit::io {

/// Largest header accepted, as in the reference implementation (100 MB).
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

/// The contents of a safetensors file: named tensors (in file order) and the
/// optional `__metadata__` string map.
struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor named `name`; throws InvalidArgument listing the names present if absent.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
};

/// Parses a whole safetensors buffer. Layout:
///   [u64 little-endian header length n][n bytes UTF-8 JSON object][data buffer]
/// JSON: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
///        "data_offsets": [begin, end]}, ...}, offsets relative to the data buffer.
/// Throws FormatError naming the tensor and the broken rule when the buffer is
/// malformed (header too large or truncated, not a JSON object, invalid UTF-8,
/// duplicate keys, unknown dtype, offsets unsorted / overlapping / with gaps /
/// past the end, byte length != element count x dtype size, trailing bytes).
/// `source` names the buffer in messages (a path, usually).
SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes,
                                  const std::string& source = "<buffer>");

/// Reads and parses a file; IoError when it cannot be read.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

/// Serializes tensors (any layout; stored row-major) and metadata. The header is
/// padded with spaces to a multiple of 8 bytes. Names must be unique and non-empty
/// and must not be "__metadata__".
std::vector<std::uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

/// Writes atomically: a temporary file in the same folder, fsynced, then renamed over
/// `path`, then the folder fsynced (best effort), so a failed save never destroys an
/// existing file. A failed save removes its temporary; only a crash leaves one behind
/// (named "<path>.tmp.<pid>.<n>").
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace convkit::io
