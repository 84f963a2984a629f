// Where `convkit check` gets its problems: shape files, --problem lines and a seeded random
// generator aimed at the cases kernels get wrong (tails, tiny and padded sizes, odd strides).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "convkit/ops/conv_problem.hpp"

namespace convkit::cli {

/// One problem to check and where it came from, so that a failure names its source.
/// The problem always has a bias (has_bias), so forward with bias and the bias gradient
/// are checked too.
struct CheckCase {
  ConvProblem problem;
  std::string origin;  // "bench/shapes/check/tails.txt:12", "--problem 2", "random 17, seed 1"
};

/// "nchw" or "nhwc" (channels-last, also NWC and NDHWC).
std::string layout_name(MemoryFormat format);

/// Parses one benchdnn-style line (ConvProblem::parse's grammar) for `format`. Throws
/// InvalidArgument starting with `origin` ("FILE:LINE: ...") for a malformed or invalid line.
CheckCase parse_check_line(std::string_view line, MemoryFormat format, const std::string& origin);

/// Every problem of a shape file (one per line, '#' starts a comment, blank lines skipped),
/// once per format in `formats`. Throws IoError for an unreadable file and InvalidArgument
/// "FILE:LINE: ..." for the first bad line.
std::vector<CheckCase> read_check_file(const std::filesystem::path& path,
                                       const std::vector<MemoryFormat>& formats);

/// Limits of the random generator: every problem stays under these, so a sweep of
/// 50,000 problems takes minutes on two cores.
struct RandomLimits {
  std::int64_t max_macs = 120'000;     // multiply-adds of one forward pass
  std::int64_t max_elements = 60'000;  // elements of src, dst and weights each
};

/// The index-th random problem of `seed`: the same (seed, index) gives the same problem on
/// every platform, whatever the count asked for. Mixes 1-D, 2-D and a few 3-D problems;
/// dense, grouped, depthwise with multipliers 1-4 and pointwise; channels 1-257 biased to
/// small counts and to SIMD-width tails (7-9, 15-17, 31-33, ...) and primes; sizes down to
/// 1 pixel; kernels larger than the input (the padding makes up the difference); strides
/// larger than the kernel; dilations 2-3; asymmetric and over-sized padding; a few
/// reflect/replicate/circular and transposed problems; NCHW and channels-last.
CheckCase random_check_case(std::uint64_t seed, std::uint64_t index, const RandomLimits& limits);

}  // namespace convkit::cli
