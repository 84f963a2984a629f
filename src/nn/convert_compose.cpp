// Two chained direct convolutions as one: the generic composition, separable and spatially
// separable convolutions made dense.
#include <array>
#include <numeric>

#include <fmt/format.h>

#include "convkit/nn/convert.hpp"
#include "core/check.hpp"
#include "nn/convert_util.hpp"

namespace convkit::nn {

using convkit::detail::require;
using namespace convert_detail;

namespace {

/// Who is asking and what the two convolutions are called in messages.
struct Names {
  const char* who;
  const char* first;
  const char* second;
};

/// Padding along one dimension: fixed (before, after), or 'same' at stride > 1, whose amount
/// depends on the input size (TensorFlow's rule).
struct DimPad {
  bool dynamic = false;
  std::int64_t before = 0, after = 0;
  bool pads() const { return dynamic || before != 0 || after != 0; }
};

/// One convolution's geometry per spatial dimension (unused dimensions: 1, no padding).
struct Geo {
  std::array<std::int64_t, 3> k{1, 1, 1}, s{1, 1, 1}, d{1, 1, 1};
  std::array<DimPad, 3> pad{};
  bool pads_any = false;
  bool identity(int i) const {
    const auto u = static_cast<std::size_t>(i);
    return k[u] == 1 && s[u] == 1 && !pad[u].pads();
  }
};

void check_list(const std::vector<std::int64_t>& v, int nd, std::int64_t min, const Names& n,
                const char* conv, const char* what) {
  require(v.size() == 1 || v.size() == static_cast<std::size_t>(nd),
          "{}: {} convolution's {} needs 1 or {} values, got {}", n.who, conv, what, nd, v.size());
  for (std::int64_t x : v)
    require(x >= min, "{}: {} convolution's {} must be >= {}, got {}", n.who, conv, what, min,
            fmt::join(v, ", "));
}

Geo geometry_of(const ConvParams& p, int nd, const Names& n, const char* conv) {
  const ConvOptions& o = p.options;
  check_list(o.stride, nd, 1, n, conv, "stride");
  check_list(o.dilation, nd, 1, n, conv, "dilation");
  if (o.padding.kind == Padding::Kind::Explicit) {
    check_list(o.padding.before, nd, 0, n, conv, "padding (before)");
    check_list(o.padding.after, nd, 0, n, conv, "padding (after)");
  }
  Geo g;
  for (int i = 0; i < nd; ++i) {
    const auto u = static_cast<std::size_t>(i);
    g.k[u] = p.weight.size(2 + i);
    g.s[u] = at_dim(o.stride, i);
    g.d[u] = at_dim(o.dilation, i);
    DimPad& pad = g.pad[u];
    if (o.padding.kind == Padding::Kind::Explicit) {
      pad.before = at_dim(o.padding.before, i);
      pad.after = at_dim(o.padding.after, i);
    } else if (o.padding.kind == Padding::Kind::Same) {
      if (g.s[u] > 1 && g.k[u] > 1) {
        pad.dynamic = true;
      } else {  // stride 1 (or kernel 1): total = dilation*(k-1), extra pixel after
        const std::int64_t total = g.d[u] * (g.k[u] - 1);
        pad.before = total / 2;
        pad.after = total - total / 2;
      }
    }
    g.pads_any = g.pads_any || pad.pads();
  }
  return g;
}

std::string pad_str(const DimPad& p) {
  return p.dynamic ? std::string("'same' at stride > 1")
                   : fmt::format("({}, {})", p.before, p.after);
}

ConvParams compose_impl(const ConvParams& a, const ConvParams& b, const Names& n) {
  const int nd = spatial_dims(a.weight, n.who, n.first);
  require(spatial_dims(b.weight, n.who, n.second) == nd,
          "{}: the {} weight {} and the {} weight {} have different spatial dimensions", n.who,
          n.first, a.weight.shape(), n.second, b.weight.shape());
  const DType dtype = result_dtype(a.weight, b.weight, n.who);
  for (const auto* p : {&a, &b}) {
    const char* name = p == &a ? n.first : n.second;
    require(p->options.groups > 0 && p->weight.size(0) % p->options.groups == 0,
            "{}: {} convolution's groups {} must be > 0 and divide its {} output channels", n.who,
            name, p->options.groups, p->weight.size(0));
    require(!p->bias.defined() || p->bias.numel() == p->weight.size(0),
            "{}: {} convolution's bias has {} values for {} output channels", n.who, name,
            p->bias.defined() ? p->bias.numel() : 0, p->weight.size(0));
  }
  const Tensor A = grouped_to_dense_weight(a.weight, a.options.groups);  // (M, C, ka...)
  const Tensor B = grouped_to_dense_weight(b.weight, b.options.groups);  // (O, M, kb...)
  const std::int64_t M = A.size(0), C = A.size(1), O = B.size(0);
  require(B.size(1) == M,
          "{}: the {} convolution reads {} channels but the {} convolution makes {}", n.who,
          n.second, B.size(1), n.first, M);
  const Geo ga = geometry_of(a, nd, n, n.first), gb = geometry_of(b, nd, n, n.second);

  // Where may the second one pad, and with what?
  const PaddingMode ma = a.options.padding_mode, mb = b.options.padding_mode;
  require(!(ga.pads_any && gb.pads_any && ma != mb),
          "{}: padding modes do not compose: the {} convolution pads with {}, the {} with {}; "
          "one convolution has one padding mode",
          n.who, n.first, mode_name(ma), n.second, mode_name(mb));
  const std::vector<double> b1 = a.bias.defined() ? a.bias.to_vector() : std::vector<double>{};
  for (int i = 0; i < nd; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (gb.pad[u].pads()) {
      require(ga.identity(i),
              "{}: the {} convolution pads spatial dimension {} by {} where the {} convolution "
              "is not the identity (kernel {}, stride {}, padding {}); that padding would sit "
              "between the two kernels, which one convolution cannot reproduce",
              n.who, n.second, i, pad_str(gb.pad[u]), n.first, ga.k[u], ga.s[u],
              pad_str(ga.pad[u]));
      if (mb == PaddingMode::Zeros)
        for (std::size_t m = 0; m < b1.size(); ++m)
          require(b1[m] == 0.0,
                  "{}: the {} convolution zero-pads spatial dimension {} by {} but the {} "
                  "convolution's bias is not zero (bias[{}] = {}): one convolution would give "
                  "the padded positions that bias; make the {} bias zero or the {} padding 0",
                  n.who, n.second, i, pad_str(gb.pad[u]), n.first, m, b1[m], n.first, n.second);
    }
    if (ga.pad[u].dynamic)
      require(gb.identity(i),
              "{}: the {} convolution's 'same' padding at stride {} depends on the input size "
              "along spatial dimension {}, and the {} convolution is not the identity there "
              "(kernel {}, stride {}); the result would need another 'same' rule",
              n.who, n.first, ga.s[u], i, n.second, gb.k[u], gb.s[u]);
  }

  // Geometry of the result per dimension.
  Geo g;
  std::array<std::int64_t, 3> step_a{0, 0, 0}, step_b{0, 0, 0};
  bool any_dynamic = false;
  for (std::size_t u = 0; u < 3; ++u) {
    const std::int64_t reach_a = ga.d[u] * (ga.k[u] - 1),
                       reach_b = gb.d[u] * ga.s[u] * (gb.k[u] - 1);
    std::int64_t D = 0;
    if (ga.k[u] > 1) D = ga.d[u];
    if (gb.k[u] > 1) D = std::gcd(D, gb.d[u] * ga.s[u]);
    if (D == 0) D = 1;
    g.d[u] = D;
    g.k[u] = (reach_a + reach_b) / D + 1;
    g.s[u] = ga.s[u] * gb.s[u];
    step_a[u] = ga.d[u] / D;
    step_b[u] = gb.d[u] * ga.s[u] / D;
    // The second pads only where the first is the identity (stride 1, no padding).
    g.pad[u] = ga.pad[u].dynamic || gb.pad[u].dynamic
                   ? DimPad{.dynamic = true}
                   : DimPad{.before = ga.pad[u].before + ga.s[u] * gb.pad[u].before,
                            .after = ga.pad[u].after + ga.s[u] * gb.pad[u].after};
    any_dynamic = any_dynamic || g.pad[u].dynamic;
  }
  Padding padding;
  if (!any_dynamic) {
    std::vector<std::int64_t> before, after;
    for (int i = 0; i < nd; ++i) {
      before.push_back(g.pad[static_cast<std::size_t>(i)].before);
      after.push_back(g.pad[static_cast<std::size_t>(i)].after);
    }
    padding = Padding::asymmetric(before, after);
  } else {
    for (int i = 0; i < nd; ++i) {  // one 'same' for every dimension: fixed ones must match it
      const auto u = static_cast<std::size_t>(i);
      if (g.pad[u].dynamic) continue;
      const std::int64_t total = g.d[u] * (g.k[u] - 1);
      require((g.s[u] == 1 || g.k[u] == 1) && g.pad[u].before == total / 2 &&
                  g.pad[u].after == total - total / 2,
              "{}: the result needs 'same' padding (stride > 1) along one dimension and fixed "
              "padding {} along spatial dimension {} (kernel {}, stride {}), which 'same' "
              "does not give; one padding cannot express both",
              n.who, pad_str(g.pad[u]), i, g.k[u], g.s[u]);
    }
    padding = Padding::same();
  }

  // W[o, c, i*step_a + j*step_b] += B[o, m, j] * A[m, c, i], walking only non-zero taps.
  const std::int64_t ka = A.numel() / (M * C), kb = B.numel() / (O * M);
  const std::int64_t K = g.k[0] * g.k[1] * g.k[2];
  const std::vector<double> av = A.to_vector(), bv = B.to_vector();
  std::vector<double> w(static_cast<std::size_t>(O * C * K), 0.0);
  auto unflat = [](std::int64_t t, const std::array<std::int64_t, 3>& k) {
    return std::array<std::int64_t, 3>{t / (k[1] * k[2]), t / k[2] % k[1], t % k[2]};
  };
  for (std::int64_t o = 0; o < O; ++o)
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t j = 0; j < kb; ++j) {
        const double bw = bv[static_cast<std::size_t>((o * M + m) * kb + j)];
        if (bw == 0.0) continue;
        const auto jj = unflat(j, gb.k);
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t i = 0; i < ka; ++i) {
            const double aw = av[static_cast<std::size_t>((m * C + c) * ka + i)];
            if (aw == 0.0) continue;
            const auto ii = unflat(i, ga.k);
            std::int64_t pos = 0;
            for (std::size_t u = 0; u < 3; ++u)
              pos = pos * g.k[u] + ii[u] * step_a[u] + jj[u] * step_b[u];
            w[static_cast<std::size_t>((o * C + c) * K + pos)] += bw * aw;
          }
      }
  std::vector<std::int64_t> wshape{O, C};
  for (int i = 0; i < nd; ++i) wshape.push_back(g.k[static_cast<std::size_t>(i)]);

  ConvParams out;
  out.weight = Tensor::from_values(Shape(wshape), w, dtype);
  if (a.bias.defined() || b.bias.defined()) {
    std::vector<double> bias = b.bias.defined() ? b.bias.to_vector() : std::vector<double>(O, 0.0);
    for (std::int64_t o = 0; o < O && !b1.empty(); ++o)
      for (std::int64_t m = 0; m < M; ++m) {
        double tap_sum = 0;
        for (std::int64_t j = 0; j < kb; ++j)
          tap_sum += bv[static_cast<std::size_t>((o * M + m) * kb + j)];
        bias[static_cast<std::size_t>(o)] += tap_sum * b1[static_cast<std::size_t>(m)];
      }
    out.bias = Tensor::from_values(Shape{O}, bias, dtype);
  }
  std::vector<std::int64_t> stride, dilation;
  for (int i = 0; i < nd; ++i) {
    stride.push_back(g.s[static_cast<std::size_t>(i)]);
    dilation.push_back(g.d[static_cast<std::size_t>(i)]);
  }
  out.options = ConvOptions{.stride = stride,
                            .padding = padding,
                            .dilation = dilation,
                            .groups = 1,
                            .padding_mode = ga.pads_any   ? ma
                                            : gb.pads_any ? mb
                                                          : PaddingMode::Zeros};
  return out;
}

std::shared_ptr<ConvNd> compose_modules(const ConvNd& first, const ConvNd& second, const Names& n) {
  require(!first.transposed() && !second.transposed(),
          "{}: only direct convolutions compose, got {} ({}) then {} ({})", n.who,
          first.type_name(), n.first, second.type_name(), n.second);
  return make_conv_from(compose_impl(conv_params(first), conv_params(second), n),
                        first.is_training());
}

}  // namespace

ConvParams compose(const ConvParams& first, const ConvParams& second) {
  return compose_impl(first, second, Names{"compose", "first", "second"});
}

std::shared_ptr<ConvNd> compose(const ConvNd& first, const ConvNd& second) {
  return compose_modules(first, second, Names{"compose", "first", "second"});
}

std::shared_ptr<Conv2d> to_dense(const SeparableConv2d& conv) {
  return std::dynamic_pointer_cast<Conv2d>(
      compose_modules(*conv.depthwise, *conv.pointwise,
                      Names{"to_dense(SeparableConv2d)", "depthwise", "pointwise"}));
}

std::shared_ptr<Conv2d> to_dense(const SpatiallySeparableConv2d& conv) {
  return std::dynamic_pointer_cast<Conv2d>(
      compose_modules(*conv.vertical, *conv.horizontal,
                      Names{"to_dense(SpatiallySeparableConv2d)", "vertical", "horizontal"}));
}

}  // namespace convkit::nn
