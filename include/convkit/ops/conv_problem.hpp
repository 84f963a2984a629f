// ConvProblem: the one normalized description of every convolution convkit runs.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convkit/core/tensor.hpp"

namespace convkit {

/// How values outside the input are made up. Zeros pads inside the convolution;
/// the others are applied as PyTorch does: pad the input, then an unpadded convolution.
enum class PaddingMode : std::uint8_t { Zeros, Reflect, Replicate, Circular };

/// Padding: an int for every side, one int per spatial dimension, explicit
/// (before, after) per dimension, "same" or "valid".
///   "same", stride 1:  total = dilation*(k-1), before = total/2, extra pixel after (PyTorch)
///   "same", stride s:  total = max((ceil(in/s)-1)*s + (k-1)*dilation + 1 - in, 0),
///                      before = total/2, extra pixel after (TensorFlow/Keras)
///   "valid":           no padding.
struct Padding {
  enum class Kind : std::uint8_t { Explicit, Same, Valid };
  Kind kind = Kind::Explicit;
  std::vector<std::int64_t> before{0};  // one value (all dims) or one per spatial dim
  std::vector<std::int64_t> after{0};

  Padding() = default;
  Padding(std::int64_t all) : before{all}, after{all} {}  // NOLINT: implicit like PyTorch's int
  Padding(std::initializer_list<std::int64_t> per_dim) : before(per_dim), after(per_dim) {}
  static Padding asymmetric(std::vector<std::int64_t> before, std::vector<std::int64_t> after);
  static Padding same();
  static Padding valid();
};

/// Options of a convolution, named as in PyTorch. Vectors hold one value (used for
/// every spatial dimension) or one per spatial dimension.
///   conv2d(x, w, b, {.stride = {2}, .padding = Padding::same(), .groups = 32});
struct ConvOptions {
  std::vector<std::int64_t> stride{1};
  Padding padding{};
  std::vector<std::int64_t> dilation{1};
  std::int64_t groups = 1;
  PaddingMode padding_mode = PaddingMode::Zeros;
  /// Transposed convolution only: extra size added after the output, < stride or < dilation.
  std::vector<std::int64_t> output_padding{0};
};

/// A validated convolution, 1-D, 2-D or 3-D, direct or transposed.
///
/// Direct (PyTorch Conv*d): src (mb, ic, in...), wei (oc, ic/g, k...), dst (mb, oc, out...),
///   out = floor((in + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1.
///   Output channel o belongs to group o / (oc/g). Depthwise with multiplier K is
///   g == ic, oc == K*ic: output channel c*K + m is input channel c's m-th kernel.
/// Transposed (PyTorch ConvTranspose*d, the adjoint of a direct convolution):
///   src (mb, ic, in...), wei (ic, oc/g, k...), dst (mb, oc, out...),
///   out = (in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_padding + 1.
/// Unused spatial slots (ndims < 3) hold size 1, stride 1, dilation 1, padding 0.
struct ConvProblem {
  int ndims = 2;  // spatial dimensions: 1, 2 or 3
  bool transposed = false;
  std::int64_t mb = 0, ic = 0, oc = 0, g = 1;
  std::array<std::int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1}, dilation{1, 1, 1};
  std::array<std::int64_t, 3> pad_before{0, 0, 0}, pad_after{0, 0, 0};
  std::array<std::int64_t, 3> output_padding{0, 0, 0};
  PaddingMode padding_mode = PaddingMode::Zeros;
  bool has_bias = false;
  DType dtype = DType::F32;
  MemoryFormat format = MemoryFormat::Contiguous;  // of src and dst

  /// Builds and validates a problem from shapes. `bias` is the bias shape, if any.
  /// Throws InvalidArgument naming the argument and the values for every bad combination.
  static ConvProblem make(const Shape& src, const Shape& wei, std::optional<Shape> bias,
                          const ConvOptions& options, bool transposed = false,
                          DType dtype = DType::F32,
                          MemoryFormat format = MemoryFormat::Contiguous);
  /// Same, taking shapes, dtype and memory format from tensors (bias may be undefined).
  static ConvProblem make(const Tensor& src, const Tensor& wei, const Tensor& bias,
                          const ConvOptions& options, bool transposed = false);

  /// Throws InvalidArgument unless the fields are exactly what make() builds from them
  /// (the entry points call it, so a hand-edited problem cannot reach a kernel).
  void validate() const;
  bool operator==(const ConvProblem&) const = default;

  Shape src_shape() const;
  Shape wei_shape() const;
  Shape dst_shape() const;
  Shape bias_shape() const { return Shape{oc}; }

  /// Multiply-adds of one forward pass.
  std::int64_t macs() const;
  /// benchdnn-style description, e.g. "g32mb8ic32ih112iw112oc32kh3kw3sh1sw1ph1pw1".
  std::string str() const;

  /// Reads a benchdnn-style line, the inverse of str(): parse(p.str(), p.dtype, p.format)
  /// equals p except has_bias, which the text does not carry (parse gives false).
  ///   ConvProblem::parse("g32mb8ic32ih112oc32kh3ph1")  // iw = ih, kw = kh, ...
  /// Letters: mb g ic oc, then i o k s p d followed by d/h/w (input, output, kernel,
  /// stride, padding before, dilation written as skipped taps, d - 1). Tokens may be
  /// separated by '_' and surrounding blanks are ignored. The problem is 3-D when a depth
  /// letter appears, else 2-D when a height letter appears, else 1-D. Defaults as in
  /// benchdnn: mb 2, g 1, oc = ic, stride 1, padding 0, dilation 0; a missing size copies
  /// the other sizes of its kind (iw = ih, kw = kh, ...). ic, the input size and the kernel
  /// size are required. Output sizes are optional; when given they must equal the computed
  /// ones. Suffixes written by str(): "_pad_after[a, b]", "_reflect" / "_replicate" /
  /// "_circular", "_transposed_op[a, b]". A name n"..." (benchdnn) may appear anywhere;
  /// it is stored in *name when name is not null.
  /// Throws InvalidArgument naming the line and the bad token for malformed text, and
  /// make()'s message (with the line) for an invalid problem.
  static ConvProblem parse(std::string_view line, DType dtype = DType::F32,
                           MemoryFormat format = MemoryFormat::Contiguous,
                           std::string* name = nullptr);
};

}  // namespace convkit
