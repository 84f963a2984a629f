// The functional convolution API: checks tensors against the problem, lays the problem out
// for a kernel, picks the kernel and splits the work across threads.
#include "convkit/ops/conv.hpp"

#include <omp.h>

#include <algorithm>

#include "convkit/ops/pad.hpp"
#include "core/check.hpp"
#include "kernels/conv/conv_bias.hpp"
#include "kernels/conv/conv_list.hpp"
#include "ops/conv_dispatch.hpp"

namespace convkit {

using detail::require;
using I = std::int64_t;
using kernels::ConvParams;
using detail::run_conv_bwd_data;
using detail::run_conv_bwd_weights;
using detail::run_conv_fwd;

namespace {

// Element strides of a rank 3-5 tensor as (n, c, d, h, w), unused spatial slots 0.
std::array<I, 5> strides5(const Tensor& t) {
  std::array<I, 5> s{};
  const int nd = t.dim() - 2;
  s[0] = t.stride(0);
  s[1] = t.stride(1);
  for (int i = 0; i < nd; ++i) s[static_cast<std::size_t>(2 + 3 - nd + i)] = t.stride(2 + i);
  return s;
}

std::array<I, 3> right_aligned(const std::array<I, 3>& a, int nd, I fill) {
  std::array<I, 3> r{fill, fill, fill};
  for (int i = 0; i < nd; ++i) r[static_cast<std::size_t>(3 - nd + i)] = a[static_cast<std::size_t>(i)];
  return r;
}

// Spatial sizes of a rank 3-5 tensor, left-aligned like ConvProblem's arrays.
std::array<I, 3> spatial_sizes(const Tensor& t) {
  std::array<I, 3> sp{1, 1, 1};
  for (int i = 0; i < t.dim() - 2; ++i) sp[static_cast<std::size_t>(i)] = t.size(2 + i);
  return sp;
}

// The direct, zero-padded convolution that computes problem p, on these tensors:
// `lo` is the direct convolution's input side, `hi` its output side. For a direct problem
// they are (src, dst); for a transposed one (dst, src), since a transposed convolution is
// the adjoint of the direct one with the sides exchanged. `padded` says lo is a copy that
// already holds the padding (non-zero padding modes).
ConvParams direct_params(const ConvProblem& p, const Tensor& lo, const Tensor& hi,
                         const Tensor& wei, bool padded) {
  ConvParams k;
  const int nd = p.ndims;
  k.mb = p.mb;
  k.g = p.g;
  k.icg = lo.size(1) / p.g;
  k.ocg = hi.size(1) / p.g;
  k.in = right_aligned(spatial_sizes(lo), nd, 1);
  k.out = right_aligned(spatial_sizes(hi), nd, 1);
  k.k = right_aligned(p.k, nd, 1);
  k.stride = right_aligned(p.stride, nd, 1);
  k.dilation = right_aligned(p.dilation, nd, 1);
  k.pad = padded ? std::array<I, 3>{0, 0, 0} : right_aligned(p.pad_before, nd, 0);
  k.src_s = strides5(lo);
  k.dst_s = strides5(hi);
  k.wei_s = strides5(wei);
  return k;
}

void expect(const Tensor& t, const char* role, const Shape& shape, const ConvProblem& p,
            const char* entry, const char* origin) {
  require(t.defined(), "{}: {} is undefined", entry, role);
  require(t.dtype() == p.dtype, "{}: {} has dtype {} but the problem is {}", entry, role,
          dtype_name(t.dtype()), dtype_name(p.dtype));
  require(t.shape() == shape, "{}: {} has shape {} but {} has shape {} (problem {})", entry, role,
          t.shape(), origin, shape, p);
}

// Adds bias[c] to every element of channel c of dst.
template <typename T>
void add_bias(const Tensor& dst, const Tensor& bias) {
  T* d = dst.data<T>();
  const T* b = bias.data<T>();
  const I bs = bias.stride(0);
  const std::array<I, 5> s = strides5(dst);
  const std::array<I, 3> sp = right_aligned(spatial_sizes(dst), dst.dim() - 2, 1);
  for (I n = 0; n < dst.size(0); ++n)
    for (I c = 0; c < dst.size(1); ++c)
      for (I a = 0; a < sp[0]; ++a)
        for (I h = 0; h < sp[1]; ++h)
          for (I w = 0; w < sp[2]; ++w)
            d[n * s[0] + c * s[1] + a * s[2] + h * s[3] + w * s[4]] += b[c * bs];
}

std::vector<I> before_of(const ConvProblem& p) {
  return {p.pad_before.begin(), p.pad_before.begin() + p.ndims};
}
std::vector<I> after_of(const ConvProblem& p) {
  return {p.pad_after.begin(), p.pad_after.begin() + p.ndims};
}

bool pads_a_copy(const ConvProblem& p) {
  return !p.transposed && p.padding_mode != PaddingMode::Zeros;
}

// The input the direct kernel reads: src itself, or a padded copy for non-zero modes.
Tensor kernel_input(const ConvProblem& p, const Tensor& src) {
  return pads_a_copy(p) ? pad(src, before_of(p), after_of(p), p.padding_mode) : src;
}

template <typename Fn>
void typed(DType t, Fn&& fn) {
  if (t == DType::F32)
    fn(static_cast<float*>(nullptr));
  else
    fn(static_cast<double*>(nullptr));
}

}  // namespace

Tensor conv_forward(const ConvProblem& p, const Tensor& src, const Tensor& wei,
                    const Tensor& bias) {
  p.validate();
  expect(src, "src", p.src_shape(), p, "conv_forward", "the problem's src");
  expect(wei, "wei", p.wei_shape(), p, "conv_forward", "the problem's wei");
  if (p.has_bias)
    expect(bias, "bias", p.bias_shape(), p, "conv_forward", "the problem's bias");
  else
    require(!bias.defined(), "conv_forward: a bias was given but the problem was built without one");
  Tensor dst = Tensor::empty(p.dst_shape(), p.dtype, p.format);
  // Kernels take dense (o, i, k...) weights; a strided weight view is copied once.
  const Tensor w = wei.contiguous();
  // Empty tensors have null data, which the kernels must not offset: an empty dst needs no
  // work, and an empty src or wei (no input channels, or only padding) makes every output an
  // empty sum, so dst is the bias (or zero).
  const bool empty_sum = src.numel() == 0 || w.numel() == 0;
  if (dst.numel() == 0) return dst;
  if (empty_sum) dst.fill(0);
  typed(p.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (empty_sum) {
      if (p.has_bias) add_bias<T>(dst, bias);
    } else if (p.transposed) {
      const ConvParams k = direct_params(p, dst, src, w, false);
      run_conv_bwd_data<T>(p, k, src.data<T>(), w.data<T>(), dst.data<T>());
      if (p.has_bias) add_bias<T>(dst, bias);
    } else {
      const Tensor in = kernel_input(p, src);
      const ConvParams k = direct_params(p, in, dst, w, pads_a_copy(p));
      run_conv_fwd<T>(p, k, in.data<T>(), w.data<T>(), p.has_bias ? bias.data<T>() : nullptr,
                 dst.data<T>());
    }
  });
  return dst;
}

Tensor conv_backward_data(const ConvProblem& p, const Tensor& diff_dst, const Tensor& wei) {
  p.validate();
  expect(diff_dst, "diff_dst", p.dst_shape(), p, "conv_backward_data", "the forward output");
  expect(wei, "wei", p.wei_shape(), p, "conv_backward_data", "the problem's wei");
  Tensor diff_src;
  // Kernels take dense (o, i, k...) weights; a strided weight view is copied once.
  const Tensor w = wei.contiguous();
  typed(p.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (p.transposed) {
      diff_src = Tensor::empty(p.src_shape(), p.dtype, p.format);
      const ConvParams k = direct_params(p, diff_dst, diff_src, w, false);
      run_conv_fwd<T>(p, k, diff_dst.data<T>(), w.data<T>(), nullptr, diff_src.data<T>());
    } else if (pads_a_copy(p)) {
      Shape padded = p.src_shape();
      for (int i = 0; i < p.ndims; ++i)
        padded[2 + i] += p.pad_before[static_cast<std::size_t>(i)] + p.pad_after[static_cast<std::size_t>(i)];
      const Tensor diff_padded = Tensor::empty(padded, p.dtype, p.format);
      const ConvParams k = direct_params(p, diff_padded, diff_dst, w, true);
      run_conv_bwd_data<T>(p, k, diff_dst.data<T>(), w.data<T>(), diff_padded.data<T>());
      diff_src = pad_backward(diff_padded, p.src_shape(), before_of(p), after_of(p), p.padding_mode);
    } else {
      diff_src = Tensor::empty(p.src_shape(), p.dtype, p.format);
      const ConvParams k = direct_params(p, diff_src, diff_dst, w, false);
      run_conv_bwd_data<T>(p, k, diff_dst.data<T>(), w.data<T>(), diff_src.data<T>());
    }
  });
  return diff_src;
}

Tensor conv_backward_weights(const ConvProblem& p, const Tensor& src, const Tensor& diff_dst) {
  p.validate();
  expect(src, "src", p.src_shape(), p, "conv_backward_weights", "the problem's src");
  expect(diff_dst, "diff_dst", p.dst_shape(), p, "conv_backward_weights", "the forward output");
  Tensor diff_wei = Tensor::empty(p.wei_shape(), p.dtype);
  typed(p.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (p.transposed) {
      const ConvParams k = direct_params(p, diff_dst, src, diff_wei, false);
      run_conv_bwd_weights<T>(p, k, diff_dst.data<T>(), src.data<T>(), diff_wei.data<T>());
    } else {
      const Tensor in = kernel_input(p, src);
      const ConvParams k = direct_params(p, in, diff_dst, diff_wei, pads_a_copy(p));
      run_conv_bwd_weights<T>(p, k, in.data<T>(), diff_dst.data<T>(), diff_wei.data<T>());
    }
  });
  return diff_wei;
}

Tensor conv_backward_bias(const ConvProblem& p, const Tensor& diff_dst) {
  p.validate();
  expect(diff_dst, "diff_dst", p.dst_shape(), p, "conv_backward_bias", "the forward output");
  Tensor diff_bias = Tensor::empty(p.bias_shape(), p.dtype);
  typed(p.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    ConvParams k;  // only the output side matters: every channel summed over batch and space
    k.mb = p.mb;
    k.g = 1;
    k.ocg = p.oc;
    k.out = right_aligned(p.out, p.ndims, 1);
    k.dst_s = strides5(diff_dst);
    // Channel blocks for the threads; a channel's sum does not depend on its block. Blocks
    // are a multiple of 16 channels so that channels-last tensors keep full vectors.
    const I channels = p.oc;
    const I threads = omp_get_max_threads();
    const I block = std::max<I>(16, (channels / (4 * threads) + 15) / 16 * 16);
    const I blocks = (channels + block - 1) / block;
    const T* dd = diff_dst.data<T>();
    T* db = diff_bias.data<T>();
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (I b = 0; b < blocks; ++b) {
      ConvParams one = k;
      one.ocg = std::min(block, channels - b * block);
      kernels::conv_bwd_bias<T>(one, dd + b * block * k.dst_s[1], db + b * block);
    }
  });
  return diff_bias;
}

namespace {
Tensor one_call(const Tensor& src, const Tensor& wei, const Tensor& bias, const ConvOptions& o,
                bool transposed, int rank, const char* name) {
  require(src.defined(), "{}: src is undefined", name);
  require(src.dim() == rank, "{}: src must have rank {} (N, C, {} spatial), got shape {}", name,
          rank, rank - 2, src.shape());
  const ConvProblem p = ConvProblem::make(src, wei, bias, o, transposed);
  return conv_forward(p, src, wei, bias);
}
}  // namespace

Tensor conv1d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, false, 3, "conv1d");
}
Tensor conv2d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, false, 4, "conv2d");
}
Tensor conv3d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, false, 5, "conv3d");
}
Tensor conv_transpose1d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, true, 3, "conv_transpose1d");
}
Tensor conv_transpose2d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, true, 4, "conv_transpose2d");
}
Tensor conv_transpose3d(const Tensor& s, const Tensor& w, const Tensor& b, const ConvOptions& o) {
  return one_call(s, w, b, o, true, 5, "conv_transpose3d");
}

}  // namespace convkit
