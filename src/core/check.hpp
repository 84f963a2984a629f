// Internal helpers to refuse bad input with a formatted message (never exported).
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convkit/core/error.hpp"

namespace convkit::detail {

/// Throws E with fmt-formatted text when `ok` is false.
template <typename E = InvalidArgument, typename... Args>
inline void require(bool ok, fmt::format_string<Args...> text, Args&&... args) {
  if (!ok) throw E(fmt::format(text, std::forward<Args>(args)...));
}

}  // namespace convkit::detail
