// Internal: the size rule each padding mode imposes, shared by pad() and ConvProblem.
#pragma once

#include <cstdint>

#include "convkit/ops/conv_problem.hpp"

namespace convkit::detail {

const char* padding_mode_name(PaddingMode mode);

/// Throws InvalidArgument naming `what` and spatial dimension `dim` when `mode` cannot
/// pad a size-`n` dimension by (before, after): reflect needs both < n, circular both <= n,
/// replicate a non-empty dimension. Negative padding is refused for every mode.
void check_padding_fits(PaddingMode mode, std::int64_t n, std::int64_t before,
                        std::int64_t after, int dim, const char* what);

}  // namespace convkit::detail
