// Building and validating ConvProblem from PyTorch-style arguments: the one place where
// a convolution's arguments are checked.
#include "convkit/ops/conv_problem.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/check.hpp"
#include "ops/pad_check.hpp"

namespace convkit {

using detail::require;

Padding Padding::asymmetric(std::vector<std::int64_t> before, std::vector<std::int64_t> after) {
  Padding p;
  p.before = std::move(before);
  p.after = std::move(after);
  return p;
}

Padding Padding::same() {
  Padding p;
  p.kind = Kind::Same;
  return p;
}

Padding Padding::valid() {
  Padding p;
  p.kind = Kind::Valid;
  return p;
}

namespace {

// One value per spatial dimension from a vector of 1 or ndims values.
std::array<std::int64_t, 3> per_dim(const std::vector<std::int64_t>& v, const char* name, int nd,
                                    std::int64_t unused) {
  require(v.size() == 1 || v.size() == static_cast<std::size_t>(nd),
          "{} has {} values [{}]; a {}-D convolution takes 1 or {}", name, v.size(),
          fmt::join(v, ", "), nd, nd);
  std::array<std::int64_t, 3> out{unused, unused, unused};
  for (int i = 0; i < nd; ++i) out[static_cast<std::size_t>(i)] = v.size() == 1 ? v[0] : v[static_cast<std::size_t>(i)];
  return out;
}

std::string dims_str(const std::array<std::int64_t, 3>& a, int nd) {
  return fmt::format("[{}]", fmt::join(a.begin(), a.begin() + nd, ", "));
}

}  // namespace

ConvProblem ConvProblem::make(const Shape& src, const Shape& wei, std::optional<Shape> bias,
                              const ConvOptions& o, bool transposed, DType dtype,
                              MemoryFormat format) {
  const char* what = transposed ? "conv_transpose" : "conv";
  require(is_floating(dtype), "{}: tensors must be F32 or F64, got {}", what, dtype_name(dtype));
  require(src.rank() >= 3 && src.rank() <= 5,
          "{}: src must have rank 3, 4 or 5 (batch, channels, 1-3 spatial sizes), got shape {} "
          "of rank {}",
          what, src, src.rank());
  require(wei.rank() == src.rank(), "{}: wei has shape {} of rank {} but src {} has rank {}", what,
          wei, wei.rank(), src, src.rank());

  ConvProblem p;
  const int nd = src.rank() - 2;
  p.ndims = nd;
  p.transposed = transposed;
  p.dtype = dtype;
  p.format = format;
  p.padding_mode = o.padding_mode;
  p.mb = src[0];
  p.ic = src[1];
  p.g = o.groups;
  for (int i = 0; i < nd; ++i) {
    p.in[static_cast<std::size_t>(i)] = src[i + 2];
    p.k[static_cast<std::size_t>(i)] = wei[i + 2];
  }
  p.stride = per_dim(o.stride, "stride", nd, 1);
  p.dilation = per_dim(o.dilation, "dilation", nd, 1);
  p.output_padding = per_dim(o.output_padding, "output_padding", nd, 0);
  for (int i = 0; i < nd; ++i) {
    require(p.stride[static_cast<std::size_t>(i)] > 0, "{}: stride must be positive, got {}", what,
            dims_str(p.stride, nd));
    require(p.dilation[static_cast<std::size_t>(i)] > 0, "{}: dilation must be positive, got {}",
            what, dims_str(p.dilation, nd));
    require(p.k[static_cast<std::size_t>(i)] > 0,
            "{}: kernel sizes must be positive, got wei shape {}", what, wei);
  }
  require(p.g > 0, "{}: groups must be positive, got {}", what, p.g);
  require(p.ic % p.g == 0, "{}: in_channels {} (src shape {}) is not divisible by groups {}", what,
          p.ic, src, p.g);

  // Channels: PyTorch's weight layouts. Direct (oc, ic/g, k...); transposed (ic, oc/g, k...).
  if (!transposed) {
    p.oc = wei[0];
    require(p.oc % p.g == 0, "{}: out_channels {} (wei shape {}) is not divisible by groups {}",
            what, p.oc, wei, p.g);
    require(wei[1] == p.ic / p.g,
            "{}: wei shape {} has {} input channels per group, but src has in_channels {} / "
            "groups {} = {}",
            what, wei, wei[1], p.ic, p.g, p.ic / p.g);
  } else {
    require(wei[0] == p.ic,
            "{}: wei shape {} has {} in dimension 0, but it must equal src's in_channels {} "
            "(transposed weights are (in, out/groups, k...))",
            what, wei, wei[0], p.ic);
    p.oc = checked_mul(wei[1], p.g, "conv_transpose out_channels");
  }
  if (bias) {
    require(*bias == Shape{p.oc}, "{}: bias has shape {}, expected [{}] (one per output channel)",
            what, bias->str(), p.oc);
    p.has_bias = true;
  }

  // Padding.
  if (transposed) {
    require(o.padding_mode == PaddingMode::Zeros,
            "conv_transpose: padding_mode must be zeros, got {} (as in PyTorch)",
            detail::padding_mode_name(o.padding_mode));
    require(o.padding.kind == Padding::Kind::Explicit || o.padding.kind == Padding::Kind::Valid,
            "conv_transpose: padding='same' is not defined; give explicit padding");
  } else {
    for (int i = 0; i < nd; ++i)
      require(p.output_padding[static_cast<std::size_t>(i)] == 0,
              "conv: output_padding {} is only for transposed convolution",
              dims_str(p.output_padding, nd));
  }
  if (o.padding.kind == Padding::Kind::Explicit) {
    p.pad_before = per_dim(o.padding.before, "padding (before)", nd, 0);
    p.pad_after = per_dim(o.padding.after, "padding (after)", nd, 0);
    for (int i = 0; i < nd; ++i)
      require(p.pad_before[static_cast<std::size_t>(i)] >= 0 &&
                  p.pad_after[static_cast<std::size_t>(i)] >= 0,
              "{}: padding must be non-negative, got before {} after {}", what,
              dims_str(p.pad_before, nd), dims_str(p.pad_after, nd));
  } else if (o.padding.kind == Padding::Kind::Same) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(nd); ++i) {
      const std::int64_t span = checked_add(
          checked_mul(p.dilation[i], p.k[i] - 1, "conv 'same' padding"), 1, "conv 'same' padding");
      // Stride 1: PyTorch's rule (total = span - 1); stride > 1: TensorFlow's. Both put the
      // extra pixel after.
      std::int64_t total = span - 1;
      if (p.stride[i] > 1) {
        // ceil(in / stride), written so that a huge in + stride cannot overflow.
        const std::int64_t n_out = p.in[i] / p.stride[i] + (p.in[i] % p.stride[i] != 0 ? 1 : 0);
        total = std::max<std::int64_t>(
            checked_add(checked_mul(n_out - 1, p.stride[i], "conv 'same' padding"), span - p.in[i],
                        "conv 'same' padding"),
            0);
      }
      p.pad_before[i] = total / 2;
      p.pad_after[i] = total - total / 2;
    }
  }

  for (std::size_t i = 0; i < static_cast<std::size_t>(nd); ++i) {
    const std::int64_t n = p.in[i], pb = p.pad_before[i], pa = p.pad_after[i];
    const char* axis = nd == 1 ? "" : (nd == 2 ? (i == 0 ? " (height)" : " (width)")
                                               : (i == 0 ? " (depth)" : i == 1 ? " (height)" : " (width)"));
    detail::check_padding_fits(o.padding_mode, n, pb, pa, static_cast<int>(i), what);
    const std::int64_t span =
        checked_add(checked_mul(p.dilation[i], p.k[i] - 1, "conv kernel extent"), 1,
                    "conv kernel extent");
    if (!transposed) {
      const std::int64_t padded =
          checked_add(checked_add(n, pb, "conv padded input"), pa, "conv padded input");
      require(span <= padded,
              "conv: effective kernel size {} (dilation {} x (kernel {} - 1) + 1) is larger than "
              "the padded input size {} (input {} + padding {} + {}) in spatial dimension {}{}",
              span, p.dilation[i], p.k[i], padded, n, pb, pa, i, axis);
      p.out[i] = (padded - span) / p.stride[i] + 1;
    } else {
      const std::int64_t op = p.output_padding[i];
      require(op >= 0 && (op < p.stride[i] || op < p.dilation[i]),
              "conv_transpose: output_padding {} must be non-negative and smaller than either "
              "stride {} or dilation {} in spatial dimension {}{}",
              op, p.stride[i], p.dilation[i], i, axis);
      require(n > 0, "conv_transpose: src has size 0 in spatial dimension {}{}", i, axis);
      const std::int64_t grown =
          checked_add(checked_add(checked_mul(n - 1, p.stride[i], "conv_transpose output size"),
                                  span, "conv_transpose output size"),
                      op, "conv_transpose output size");
      // Both paddings are >= 0 and grown >= 1, so only their sum can overflow.
      p.out[i] = grown - checked_add(pb, pa, "conv_transpose padding");
      require(p.out[i] > 0,
              "conv_transpose: output size {} is not positive in spatial dimension {}{}: "
              "(in {} - 1) x stride {} - padding {} - {} + dilation {} x (kernel {} - 1) + "
              "output_padding {} + 1",
              p.out[i], i, axis, n, p.stride[i], pb, pa, p.dilation[i], p.k[i], op);
    }
  }
  // Every tensor the problem touches must have a countable size in bytes.
  for (const Shape& s : {p.src_shape(), p.wei_shape(), p.dst_shape()}) {
    const std::int64_t n = s.numel();
    std::int64_t bytes = 0;
    require(!__builtin_mul_overflow(n, dtype_size(dtype), &bytes),
            "{}: a tensor of shape {} needs more bytes than int64 can count", what, s);
  }
  return p;
}

ConvProblem ConvProblem::make(const Tensor& src, const Tensor& wei, const Tensor& bias,
                              const ConvOptions& options, bool transposed) {
  const char* what = transposed ? "conv_transpose" : "conv";
  require(src.defined(), "{}: src is undefined", what);
  require(wei.defined(), "{}: wei is undefined", what);
  require(wei.dtype() == src.dtype(), "{}: wei has dtype {} but src has {}", what,
          dtype_name(wei.dtype()), dtype_name(src.dtype()));
  require(!bias.defined() || bias.dtype() == src.dtype(), "{}: bias has dtype {} but src has {}",
          what, dtype_name(bias.dtype()), dtype_name(src.dtype()));
  return make(src.shape(), wei.shape(), bias.defined() ? std::optional(bias.shape()) : std::nullopt,
              options, transposed, src.dtype(), src.memory_format());
}

void ConvProblem::validate() const {
  require(ndims >= 1 && ndims <= 3, "ConvProblem: ndims must be 1, 2 or 3, got {}", ndims);
  require(g > 0, "ConvProblem: groups must be positive, got {}", g);
  auto v = [&](const std::array<std::int64_t, 3>& a) {
    return std::vector<std::int64_t>(a.begin(), a.begin() + ndims);
  };
  const ConvOptions o{.stride = v(stride),
                      .padding = Padding::asymmetric(v(pad_before), v(pad_after)),
                      .dilation = v(dilation),
                      .groups = g,
                      .padding_mode = padding_mode,
                      .output_padding = v(output_padding)};
  const ConvProblem rebuilt =
      make(src_shape(), wei_shape(), has_bias ? std::optional(bias_shape()) : std::nullopt, o,
           transposed, dtype, format);
  require(rebuilt == *this,
          "ConvProblem {} is inconsistent: its arguments give {}; build problems with "
          "ConvProblem::make",
          str(), rebuilt);
}

namespace {
Shape make_shape(std::int64_t a, std::int64_t b, const std::array<std::int64_t, 3>& sp, int nd) {
  std::array<std::int64_t, 5> v{a, b, sp[0], sp[1], sp[2]};
  return Shape(std::span<const std::int64_t>(v.data(), static_cast<std::size_t>(nd + 2)));
}
}  // namespace

Shape ConvProblem::src_shape() const { return make_shape(mb, ic, in, ndims); }
Shape ConvProblem::dst_shape() const { return make_shape(mb, oc, out, ndims); }
Shape ConvProblem::wei_shape() const {
  return transposed ? make_shape(ic, oc / g, k, ndims) : make_shape(oc, ic / g, k, ndims);
}

std::int64_t ConvProblem::macs() const {
  // Each (batch, output channel, output pixel) of the direct convolution sums ic/g x k taps;
  // a transposed convolution is a direct one with src and dst exchanged.
  const auto& small = transposed ? in : out;
  const std::int64_t per_group_in = transposed ? oc / g : ic / g;
  std::int64_t m = checked_mul(mb, transposed ? ic : oc, "macs");
  for (int i = 0; i < ndims; ++i) {
    m = checked_mul(m, small[static_cast<std::size_t>(i)], "macs");
    m = checked_mul(m, k[static_cast<std::size_t>(i)], "macs");
  }
  return checked_mul(m, per_group_in, "macs");
}

std::string ConvProblem::str() const {
  static constexpr const char* letters3[] = {"d", "h", "w"};
  const char* const* L = letters3 + (3 - ndims);
  std::string s = fmt::format("g{}mb{}ic{}", g, mb, ic);
  for (int i = 0; i < ndims; ++i) s += fmt::format("i{}{}", L[i], in[static_cast<std::size_t>(i)]);
  s += fmt::format("oc{}", oc);
  for (int i = 0; i < ndims; ++i) s += fmt::format("o{}{}", L[i], out[static_cast<std::size_t>(i)]);
  for (int i = 0; i < ndims; ++i) s += fmt::format("k{}{}", L[i], k[static_cast<std::size_t>(i)]);
  for (int i = 0; i < ndims; ++i) s += fmt::format("s{}{}", L[i], stride[static_cast<std::size_t>(i)]);
  for (int i = 0; i < ndims; ++i) s += fmt::format("p{}{}", L[i], pad_before[static_cast<std::size_t>(i)]);
  // benchdnn writes dilation as the number of skipped taps (d - 1).
  for (int i = 0; i < ndims; ++i) s += fmt::format("d{}{}", L[i], dilation[static_cast<std::size_t>(i)] - 1);
  if (pad_after != pad_before) s += fmt::format("_pad_after{}", dims_str(pad_after, ndims));
  if (padding_mode != PaddingMode::Zeros) s += fmt::format("_{}", detail::padding_mode_name(padding_mode));
  if (transposed) s += fmt::format("_transposed_op{}", dims_str(output_padding, ndims));
  return s;
}

}  // namespace convkit

fmt::format_context::iterator fmt::formatter<convkit::ConvProblem>::format(
    const convkit::ConvProblem& p, fmt::format_context& ctx) const {
  return fmt::formatter<std::string_view>::format(p.str(), ctx);
}
