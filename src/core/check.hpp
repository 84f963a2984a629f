// Internal helpers to refuse bad input with a formatted message (never exported).
#pragma once

#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convkit/core/error.hpp"
#include "convkit/core/shape.hpp"

namespace convkit {
struct ConvProblem;
}

// Shapes and problems format themselves, so that require(...) builds their text only when it
// throws: an eager shape.str() argument cost a heap string on every call of hot accessors.
template <>
struct fmt::formatter<convkit::Shape> : fmt::formatter<std::string_view> {
  auto format(const convkit::Shape& s, fmt::format_context& ctx) const -> decltype(ctx.out()) {
    return fmt::formatter<std::string_view>::format(s.str(), ctx);
  }
};

template <>
struct fmt::formatter<convkit::ConvProblem> : fmt::formatter<std::string_view> {
  // Defined in src/ops/conv_problem.cpp, where ConvProblem is complete.
  fmt::format_context::iterator format(const convkit::ConvProblem& p, fmt::format_context& ctx) const;
};

namespace convkit::detail {

/// Throws E with fmt-formatted text when `ok` is false. Pass Shape and ConvProblem values
/// themselves, not their str(), so that nothing is formatted unless it throws.
template <typename E = InvalidArgument, typename... Args>
inline void require(bool ok, fmt::format_string<Args...> text, Args&&... args) {
  if (!ok) throw E(fmt::format(text, std::forward<Args>(args)...));
}

}  // namespace convkit::detail
