// Fuzzes convolution-argument validation: ConvProblem::make on random argument tuples, then,
// when it accepts a small problem, conv_forward on real tensors.
//
// The bytes are read with libFuzzer's FuzzedDataProvider as: spatial rank, tensor ranks, sizes
// (mostly small, sometimes 0, huge or from the edges of int64), groups, stride, dilation,
// padding (int, per dimension, asymmetric, same, valid), padding mode, transposed,
// output_padding, bias shape, dtype and memory format. A refusal must be InvalidArgument.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "convkit/ops/conv.hpp"
#include "fuzz_util.hpp"

using namespace convkit;
using I = std::int64_t;

namespace {

constexpr I kMax = std::numeric_limits<I>::max(), kMin = std::numeric_limits<I>::min();
constexpr I kSpecial[] = {kMax,
                          kMin,
                          kMax - 1,
                          kMin + 1,
                          I{1} << 31,
                          I{1} << 32,
                          (I{1} << 31) - 1,
                          I{1} << 62,
                          (I{1} << 62) + 1,
                          3037000500,
                          -(I{1} << 32),
                          65536};
/// Elements of any one tensor, and multiply-adds, above which the problem is only validated.
constexpr I kMaxNumel = 1 << 14, kMaxMacs = 1 << 20;

struct Reader {
  FuzzedDataProvider in;
  I size() {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
        return in.ConsumeIntegralInRange<I>(-3, 0);
      case 1:
        return kSpecial[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kSpecial) - 1)];
      case 2:
        return in.ConsumeIntegral<I>();
      case 3:
        return in.ConsumeIntegralInRange<I>(7, 40);
      default:
        return in.ConsumeIntegralInRange<I>(1, 6);
    }
  }
  /// One value (every dimension), one per dimension, or (rarely) a wrong count.
  std::vector<I> sizes(int ndims) {
    const int pick = in.ConsumeIntegralInRange<int>(0, 7);
    const int count = pick < 4 ? 1 : pick < 7 ? ndims : in.ConsumeIntegralInRange<int>(0, 4);
    std::vector<I> v;
    for (int i = 0; i < count; ++i) v.push_back(size());
    return v;
  }
  /// A rank near `usual`: usually exactly it.
  int rank(int usual) {
    return in.ConsumeIntegralInRange<int>(0, 7) != 0 ? usual : in.ConsumeIntegralInRange<int>(0, 6);
  }
};

/// Checks what make() promises for a problem it accepted.
void check_accepted(const ConvProblem& p, const Shape& src, const Shape& wei) {
  fuzz::run<>([&] { p.validate(); });
  fuzz::check(p.src_shape() == src && p.wei_shape() == wei, "problem shapes differ from input");
  fuzz::check(p.dst_shape().numel() >= 0, "negative output size");
  ConvProblem q;
  fuzz::run<>([&] { q = ConvProblem::parse(p.str(), p.dtype, p.format); });
  q.has_bias = p.has_bias;
  fuzz::check(q == p, "ConvProblem::parse(p.str()) differs from p");
}

/// Runs the problem once on small tensors; the output has the promised shape and is finite.
void run_small(const ConvProblem& p) {
  const Shape ss = p.src_shape(), ws = p.wei_shape(), ds = p.dst_shape();
  if (ss.numel() > kMaxNumel || ws.numel() > kMaxNumel || ds.numel() > kMaxNumel ||
      p.macs() > kMaxMacs)
    return;
  // Reflect, replicate and circular padding pad a copy of src first (as PyTorch does, and as
  // conv_problem.hpp documents), whose size grows with the padding: cap it too.
  if (!p.transposed && p.padding_mode != PaddingMode::Zeros) {
    I padded = p.mb * p.ic;
    for (int i = 0; i < p.ndims; ++i) {
      const auto d = static_cast<std::size_t>(i);
      const I size = p.in[d] + p.pad_before[d] + p.pad_after[d];  // make() checked this sum
      if (__builtin_mul_overflow(padded, size, &padded) || padded > kMaxNumel) return;
    }
  }
  const Tensor src = Tensor::uniform(ss, -1, 1, 1, p.dtype, p.format);
  const Tensor wei = Tensor::uniform(ws, -1, 1, 2, p.dtype);
  const Tensor bias = p.has_bias ? Tensor::uniform(p.bias_shape(), -1, 1, 3, p.dtype) : Tensor();
  const Tensor dst = conv_forward(p, src, wei, bias);
  fuzz::check(dst.shape() == ds, "conv_forward output shape differs from dst_shape()");
  const Tensor d = dst.to(DType::F64).contiguous();
  for (I i = 0; i < d.numel(); ++i)
    fuzz::check(std::isfinite(d.data<double>()[i]), "conv_forward output not finite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader r{FuzzedDataProvider(data, size)};
  const int ndims = r.in.ConsumeIntegralInRange<int>(1, 3);
  const bool transposed = r.in.ConsumeBool();
  std::vector<I> src(static_cast<std::size_t>(r.rank(ndims + 2))),
      wei(static_cast<std::size_t>(r.rank(ndims + 2)));
  for (I& v : src) v = r.size();
  for (I& v : wei) v = r.size();
  ConvOptions o;
  o.groups = r.in.ConsumeIntegralInRange<int>(0, 3) == 0 ? r.size() : 1;
  o.stride = r.sizes(ndims);
  o.dilation = r.sizes(ndims);
  switch (r.in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      o.padding = Padding(r.size());
      break;
    case 1:
      o.padding.before = o.padding.after = r.sizes(ndims);
      break;
    case 2: {
      std::vector<I> before = r.sizes(ndims), after = r.sizes(ndims);  // in this order
      o.padding = Padding::asymmetric(std::move(before), std::move(after));
      break;
    }
    case 3:
      o.padding = Padding::same();
      break;
    case 4:
      o.padding = Padding::valid();
      break;
    default:
      break;  // the default, 0
  }
  o.padding_mode = static_cast<PaddingMode>(r.in.ConsumeIntegralInRange<int>(0, 3));
  if (r.in.ConsumeBool()) o.output_padding = r.sizes(ndims);
  // Usually the weight's in-channel slot agrees with ic / groups, so deeper checks are reached.
  if (r.in.ConsumeBool() && src.size() > 1 && wei.size() > 1 && o.groups > 0)
    (transposed ? wei[0] : wei[1]) = transposed ? src[1] : src[1] / o.groups;
  std::optional<std::vector<I>> bias;
  if (r.in.ConsumeBool())
    bias = r.in.ConsumeBool() || wei.empty() ? r.sizes(1) : std::vector<I>{wei[0]};
  const auto dtype = static_cast<DType>(r.in.ConsumeIntegralInRange<int>(0, 3));
  const auto format = r.in.ConsumeBool() ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;

  // CONVKIT_FUZZ_VERBOSE=1 prints what each input became (to read a reproducer).
  static const bool verbose = std::getenv("CONVKIT_FUZZ_VERBOSE") != nullptr;
  fuzz::run<InvalidArgument>([&] {
    try {
      const Shape ss{std::span<const I>(src)}, ws{std::span<const I>(wei)};
      std::optional<Shape> bs;
      if (bias) bs = Shape(std::span<const I>(*bias));
      const ConvProblem p = ConvProblem::make(ss, ws, bs, o, transposed, dtype, format);
      if (verbose) std::fprintf(stderr, "accepted: %s\n", p.str().c_str());
      check_accepted(p, ss, ws);
      run_small(p);
    } catch (const InvalidArgument& e) {
      if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
      throw;
    }
  });
  return 0;
}
