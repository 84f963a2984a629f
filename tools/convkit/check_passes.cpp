// One problem's passes for `convkit check`: fills, dispatched and reference runs, comparisons.
#include "check_passes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"

namespace convkit::cli {

using I = std::int64_t;

namespace {

constexpr double kExactLimit = 16777216.0;  // 2^24: every integer below it is a float

I volume(const std::array<I, 3>& sizes, int nd) {
  I v = 1;
  for (int i = 0; i < nd; ++i) v *= sizes[static_cast<std::size_t>(i)];
  return v;
}

// Rounds every stored value to the nearest integer (the tensors are dense: storage = numel).
void round_in_place(const Tensor& t) {
  float* v = t.data<float>();
  for (I i = 0; i < t.numel(); ++i) v[i] = std::nearbyint(v[i]);
}

Tensor abs_of(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor a = t.clone();
  float* v = a.data<float>();
  for (I i = 0; i < a.numel(); ++i) v[i] = std::fabs(v[i]);
  return a;
}

// Restores the previous kernel override when it goes out of scope.
class ForceReference {
 public:
  ForceReference() : previous_(forced_conv_kernel()) { force_conv_kernel("ref"); }
  ~ForceReference() { force_conv_kernel(previous_); }
  ForceReference(const ForceReference&) = delete;
  ForceReference& operator=(const ForceReference&) = delete;

 private:
  std::string previous_;
};

// diff_bias in double: the oracle of conv_backward_bias, which no kernel list covers.
Tensor bias_gradient_in_double(const ConvProblem& p, const Tensor& diff_dst) {
  const std::vector<double> v = diff_dst.to_vector();  // logical (n, c, pixels) order
  const I pixels = p.mb * p.oc == 0 ? 0 : static_cast<I>(v.size()) / (p.mb * p.oc);
  std::vector<double> sums(static_cast<std::size_t>(p.oc), 0.0);
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.oc; ++c)
      for (I i = 0; i < pixels; ++i)
        sums[static_cast<std::size_t>(c)] +=
            v[static_cast<std::size_t>((n * p.oc + c) * pixels + i)];
  return Tensor::from_values(p.bias_shape(), sums);
}

}  // namespace

const char* check_pass_name(CheckPass pass) {
  switch (pass) {
    case CheckPass::Fwd:
      return "fwd";
    case CheckPass::BwdData:
      return "bwd_d";
    case CheckPass::BwdWeights:
      return "bwd_w";
    case CheckPass::BwdBias:
      return "bwd_b";
  }
  return "?";
}

I check_terms(const ConvProblem& p, CheckPass pass) {
  const int nd = p.ndims;
  const I kvol = volume(p.k, nd);
  const I invol = volume(p.in, nd), outvol = volume(p.out, nd);
  switch (pass) {
    case CheckPass::Fwd:
      return p.ic / p.g * kvol + 1;
    case CheckPass::BwdData: {
      I copies = 1;  // reflect / replicate / circular padding adds padded copies back
      if (p.padding_mode != PaddingMode::Zeros)
        for (int i = 0; i < nd; ++i)
          copies *= 1 + p.pad_before[static_cast<std::size_t>(i)] +
                    p.pad_after[static_cast<std::size_t>(i)];
      return p.oc / p.g * kvol * copies;
    }
    case CheckPass::BwdWeights:
      return p.mb * std::max(invol, outvol);
    case CheckPass::BwdBias:
      return p.mb * outvol;
  }
  return 0;
}

CheckInputs make_check_inputs(const ConvProblem& p, bool integers, std::uint64_t seed) {
  CheckInputs in;
  if (integers) {
    I terms = 0;
    for (const CheckPass pass : kCheckPasses) terms = std::max(terms, check_terms(p, pass));
    for (int r = 4; r >= 1 && in.range == 0; --r)
      if (static_cast<double>(terms) * r * r + r < kExactLimit) in.range = r;
  }
  const double half = in.range > 0 ? in.range + 0.5 : 1.0;
  const auto fill = [&](const Shape& shape, std::uint64_t s, MemoryFormat format) {
    Tensor t = Tensor::uniform(shape, -half, half, s, DType::F32, format);
    if (in.range > 0) round_in_place(t);
    return t;
  };
  in.src = fill(p.src_shape(), seed, p.format);
  in.wei = fill(p.wei_shape(), seed + 1, MemoryFormat::Contiguous);
  if (p.has_bias) in.bias = fill(p.bias_shape(), seed + 2, MemoryFormat::Contiguous);
  in.diff_dst = fill(p.dst_shape(), seed + 3, p.format);
  return in;
}

Tensor run_check_pass(const ConvProblem& p, CheckPass pass, const CheckInputs& in,
                      std::string* kernel) {
  Tensor out;
  switch (pass) {
    case CheckPass::Fwd:
      out = conv_forward(p, in.src, in.wei, in.bias);
      break;
    case CheckPass::BwdData:
      out = conv_backward_data(p, in.diff_dst, in.wei);
      break;
    case CheckPass::BwdWeights:
      out = conv_backward_weights(p, in.src, in.diff_dst);
      break;
    case CheckPass::BwdBias:
      out = conv_backward_bias(p, in.diff_dst);
      break;
  }
  if (kernel) *kernel = pass == CheckPass::BwdBias ? "conv_bwd_bias" : last_conv_kernel();
  return out;
}

Tensor run_reference_pass(const ConvProblem& p, CheckPass pass, const CheckInputs& in) {
  if (pass == CheckPass::BwdBias) return bias_gradient_in_double(p, in.diff_dst);
  const ForceReference forced;
  return run_check_pass(p, pass, in, nullptr);
}

Comparison compare_with_reference(const ConvProblem& p, CheckPass pass, const CheckInputs& in,
                                  Tensor got, const Tensor& want, bool inject) {
  Comparison c;
  c.shape = want.shape();
  c.elements = want.numel();
  c.exact = in.range > 0;
  std::vector<double> g = got.to_vector(), w = want.to_vector(), s;
  double factor = 0;  // bound = factor * S_i
  if (!c.exact) {
    const CheckInputs abs{.src = abs_of(in.src),
                          .wei = abs_of(in.wei),
                          .bias = abs_of(in.bias),
                          .diff_dst = abs_of(in.diff_dst),
                          .range = 0};
    s = run_reference_pass(p, pass, abs).to_vector();
    factor = static_cast<double>(check_terms(p, pass) + 2) * FLT_EPSILON;
  }
  const auto bound_of = [&](std::size_t i) { return c.exact ? 0.0 : factor * s[i]; };
  if (inject && !g.empty()) {
    const std::size_t mid = g.size() / 2;
    g[mid] += 2 * bound_of(mid) + 1;
  }
  double worst_excess = -1;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double bound = bound_of(i), err = std::fabs(g[i] - w[i]);
    if (err <= bound) continue;  // false for NaN: counted below
    ++c.bad;
    const double excess = std::isnan(err) ? HUGE_VAL : err - bound;
    if (excess > worst_excess) {
      worst_excess = excess;
      c.worst = static_cast<I>(i);
      c.got = g[i];
      c.want = w[i];
      c.bound = bound;
    }
  }
  return c;
}

Comparison compare_bitwise(const Tensor& a, Tensor b, bool inject) {
  Comparison c;
  c.shape = a.shape();
  c.elements = a.numel();
  const Tensor x = a.contiguous();
  const Tensor y = b.clone(MemoryFormat::Contiguous);
  const float* u = x.data<float>();
  float* v = y.data<float>();
  if (inject && c.elements > 0) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v[c.elements / 2], sizeof bits);
    bits ^= 1u;
    std::memcpy(&v[c.elements / 2], &bits, sizeof bits);
  }
  for (I i = 0; i < c.elements; ++i) {
    if (std::memcmp(&u[i], &v[i], sizeof(float)) == 0) continue;
    if (c.bad++ == 0) {
      c.worst = i;
      c.got = v[i];
      c.want = u[i];
    }
  }
  return c;
}

std::string index_str(const Shape& shape, I i) {
  std::vector<I> idx(static_cast<std::size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = shape[d] > 0 ? i % shape[d] : 0;
    i = shape[d] > 0 ? i / shape[d] : 0;
  }
  return fmt::format("[{}]", fmt::join(idx, ", "));
}

}  // namespace convkit::cli
