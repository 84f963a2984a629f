// What `convkit check` does to one problem: fill the tensors, run a pass through dispatch or
// on the forced reference, and compare exactly, within an error bound, or bit for bit.
#pragma once

#include <cstdint>
#include <string>

#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit::cli {

/// The passes checked per problem: forward (with bias), backward-data, backward-weights and
/// the bias gradient.
enum class CheckPass : std::uint8_t { Fwd, BwdData, BwdWeights, BwdBias };
inline constexpr CheckPass kCheckPasses[] = {CheckPass::Fwd, CheckPass::BwdData,
                                             CheckPass::BwdWeights, CheckPass::BwdBias};
/// "fwd", "bwd_d", "bwd_w", "bwd_b" (the names of --passes).
const char* check_pass_name(CheckPass pass);

/// The inputs of every pass of one problem.
struct CheckInputs {
  Tensor src, wei, bias, diff_dst;
  /// Integer fills: every value in [-range, range], so products and sums are exact in fp32
  /// while each output's sum of |terms| stays below 2^24. 0: uniform reals in [-1, 1).
  int range = 0;
};

/// Fills the inputs from `seed`. With `integers`, the largest range in 4, 3, 2, 1 for which
/// range^2 * terms + range < 2^24 holds for every pass (terms = check_terms), so that every
/// output is an exactly representable integer whatever the order of the sums; when even 1 is
/// too much, reals. src and diff_dst have the problem's memory format.
CheckInputs make_check_inputs(const ConvProblem& p, bool integers, std::uint64_t seed);

/// An upper bound on the products summed into one output element of `pass`:
///   fwd    (ic/g) * kernel volume + 1 (the bias)
///   bwd_d  (oc/g) * kernel volume, times the copies a non-zero padding mode folds back
///   bwd_w  mb * max(input pixels, output pixels)   (transposed problems swap the sides)
///   bwd_b  mb * output pixels
std::int64_t check_terms(const ConvProblem& p, CheckPass pass);

/// Runs `pass` through the public API: dispatch picks the kernel, whose name goes to
/// *kernel ("conv_bwd_bias" for the bias gradient, which has no kernel list).
Tensor run_check_pass(const ConvProblem& p, CheckPass pass, const CheckInputs& in,
                      std::string* kernel);

/// The same pass on the reference kernel (force_conv_kernel("ref"), the previous choice
/// restored afterwards); the bias gradient is summed here in double.
Tensor run_reference_pass(const ConvProblem& p, CheckPass pass, const CheckInputs& in);

/// The outcome of comparing one output tensor.
struct Comparison {
  bool exact = true;  // bound 0 everywhere (integer fill, or a bitwise comparison)
  std::int64_t elements = 0;
  std::int64_t bad = 0;     // elements off by more than their bound (NaN counts)
  std::int64_t worst = -1;  // logical index of the worst element (largest excess)
  double got = 0, want = 0, bound = 0;
  Shape shape;
};

/// got against want element by element. Integer inputs: exact (bound 0). Reals: element i
/// may be off by (terms + 2) * FLT_EPSILON * S_i, where S_i = sum of |a*b| over its terms
/// (the reference run on |inputs|): a rigorous bound for any summation order, FMA or not.
/// `inject` (tests only) first moves got's middle element by twice its bound plus one.
Comparison compare_with_reference(const ConvProblem& p, CheckPass pass, const CheckInputs& in,
                                  Tensor got, const Tensor& want, bool inject);

/// a against b bit for bit (as stored floats). `inject` first flips the lowest bit of b's
/// middle element.
Comparison compare_bitwise(const Tensor& a, Tensor b, bool inject);

/// "[1, 0, 3, 2]": the logical coordinates of flat index `i` in `shape`.
std::string index_str(const Shape& shape, std::int64_t i);

}  // namespace convkit::cli
