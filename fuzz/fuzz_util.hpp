// Shared by the fuzz targets: run an input, let the documented exceptions pass, abort on the rest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <string_view>

#include "convkit/core/error.hpp"

namespace convkit::fuzz {

/// Stops the run so that libFuzzer reports the input as a crash.
[[noreturn]] inline void fail(std::string_view what) {
  std::fprintf(stderr, "fuzz target invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

/// fail() unless `cond`.
inline void check(bool cond, std::string_view what) {
  if (!cond) fail(what);
}

/// Runs fn(). An exception of one of the types `Allowed` (the refusals the API documents for
/// this input) ends the input quietly; any other exception aborts, naming its message.
template <typename... Allowed, typename Fn>
void run(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (((dynamic_cast<const Allowed*>(&e) != nullptr) || ...)) return;
    std::fprintf(stderr, "undocumented exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "undocumented exception of a type not derived from std::exception\n");
    std::abort();
  }
}

inline std::span<const std::uint8_t> bytes(const std::uint8_t* data, std::size_t size) {
  return {data, size};
}

}  // namespace convkit::fuzz
