// Pointwise (1x1, stride 1, no padding) convolutions as plain GEMMs on the tensors
// themselves: no im2col, no copies, no scratch.
//
// Per image n and group g, with P = pixels (d*h*w flattened), W_g = wei rows of group g:
//   NCHW  src  [ic][P] (ld = channel stride)     dst [oc][P]:  dst = W_g   x src
//   NHWC  src  [P][ic] (ld = pixel stride)       dst [P][oc]:  dst = src   x W_g^T
//   bwd_data     diff_src = W_g^T x diff_dst      (NHWC: diff_dst x W_g)
//   bwd_weights  diff_W_g = sum over images of diff_dst x src^T  (NHWC: diff_dst^T x src)
// Channels of a group are a sub-range of the tensor's, so groups and channel views only move
// the base pointer; the caller guarantees the pixels flatten to one stride (supports()).
// A dense channels-last batch (each image's pixels right after the last image's) is one
// matrix of all its pixels, so small images go through the GEMM in fixed groups of images
// (conv_1x1_gemm_image_group), counted from the call's first image: src/ops/ starts every
// call at a multiple of the group, so an image's bits never depend on the thread count.
// bwd_weights accumulates group after group with beta = 1 GEMMs: a fixed order, so one thread
// count always gives the same bits; src/ops/ runs it on chunks of images
// (conv_1x1_gemm_weight_chunk) and adds their sums, the same way at any thread count.
#include "kernels/conv_gemm/conv_gemm.hpp"

#include <algorithm>

#include "kernels/conv_gemm/gemm.hpp"

namespace convkit::kernels {

using gemm::I;
using gemm::Mat;
using gemm::PixelLayout;

namespace {

I pixels(const std::array<I, 3>& sp) { return sp[0] * sp[1] * sp[2]; }

PixelLayout src_layout(const ConvParams& p) {
  return gemm::pixel_layout(p.src_s, p.in, p.icg);
}
PixelLayout dst_layout(const ConvParams& p) {
  return gemm::pixel_layout(p.dst_s, p.out, p.ocg);
}

/// Pixels a GEMM should have for OpenBLAS to run near its speed, and at most how many images
/// go into one. Measured through src/ops/ with OpenBLAS's SkylakeX kernels, batch 8, calls
/// alternating in one process, against a GEMM per image: MobileNetV2's 7x7 pointwise layers
/// (49 pixels an image, groups of 4) take 22-37% less time forward and 16-31% less
/// backward-data at 1 and 2 threads, backward-weights 1-8% less at 1 thread and 12-25% at 2
/// (one call on OpenBLAS's threads instead of 8 short ones); the 14x14 layers (groups of 2)
/// 3-7% less forward, the others even. Groups of 8 measured within 5% of groups of 4 either
/// way; 4 lets a batch of 8 give two threads a group each: calls inside the threads' parallel
/// region run OpenBLAS on one thread, whose bits do not depend on the thread count, while one
/// call on OpenBLAS's own threads can round otherwise (its SSE3 kernels do).
constexpr I kGroupPixels = 256;
constexpr I kMaxImageGroup = 4;
constexpr I kChunkPixels = 2048;  // at least, per backward-weights chunk (below)

}  // namespace

I conv_1x1_gemm_image_group(const ConvParams& p) {
  const PixelLayout s = src_layout(p), d = dst_layout(p);
  const I np = pixels(p.out);
  const bool dense = s.ok && d.ok && s.pixel_major && d.pixel_major && p.src_s[0] == np * s.ps &&
                     p.dst_s[0] == np * d.ps;
  if (!dense || np <= 0) return 1;
  I group = 1;
  while (group < kMaxImageGroup && group * np < kGroupPixels) group *= 2;
  return gemm::fit_int(group * np) ? group : 1;
}

// Backward-weights is dW_g = sum over pixels of diff_dst x src^T: a GEMM of ocg x icg with
// every pixel of the call in its k dimension, which OpenBLAS threads over ocg and icg alone:
// on MobileNetV2's 112x112 and 56x56 layers (16 to 144 channels) two threads took longer than
// one. src/ops/ instead runs chunks of images on the threads (ConvKernel::weight_chunk), each
// a single-threaded GEMM into sums of its own. At batch 8 (SkylakeX kernels, AVX-512 Xeon,
// calls alternating in one process) two threads then take 37-64% less time on the 112x112 and
// 56x56 layers (32 -> 16 channels: 2.7 -> 1.0 ms), 23-49% less on the 28x28 ones, and NCHW
// 40-50% and 12-15%; one thread takes 0-6% more (its GEMMs are the same, into several sums).
// A chunk takes at least 2048 pixels, in a power of two of image groups: chunks of one
// 28x28 image or two 14x14 ones ran 8-12% slower at one thread than one GEMM over the batch;
// and its sums (ocg x icg per group), written and read once more when the chunks are added,
// stay under 1/16 of what it reads (ocg + icg floats per pixel and group): with a quarter,
// a 14x14 layer of 576 x 96 channels ran 17-22% slower in 4 chunks at 1 and 2 threads.
// MobileNetV2's 14x14 and 7x7 layers keep one GEMM over a batch of 8.
I conv_1x1_gemm_weight_chunk(const ConvParams& p) {
  const I group = conv_1x1_gemm_image_group(p), np = pixels(p.out);
  if (np <= 0 || p.ocg + p.icg <= 0) return 1;
  const I want = std::max(kChunkPixels, 16 * (p.ocg * p.icg / (p.ocg + p.icg)));
  I groups = 1;
  while (groups * group * np < want) groups *= 2;
  return groups * group;
}

template <GemmLayout L>
bool conv_1x1_gemm_supports(const ConvParams& p) {
  for (std::size_t i = 0; i < 3; ++i)
    if (p.k[i] != 1 || p.stride[i] != 1 || p.pad[i] != 0 || p.in[i] != p.out[i]) return false;
  if (gemm::depthwise(p) || p.icg < 1 || p.ocg < 1 || !gemm::dense_weights(p)) return false;
  if (!gemm::strides_fit_int(p) || !gemm::fit_int(p.icg, p.ocg, pixels(p.out))) return false;
  const PixelLayout s = src_layout(p), d = dst_layout(p);
  const bool want_pixel_major = L == GemmLayout::Nhwc;
  return s.ok && d.ok && s.pixel_major == want_pixel_major && d.pixel_major == want_pixel_major;
}

template <typename T>
void conv_1x1_gemm_fwd(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst) {
  const PixelLayout sl = src_layout(p), dl = dst_layout(p);
  const I group = conv_1x1_gemm_image_group(p);
  for (I n = 0; n < p.mb; n += group)
    for (I g = 0; g < p.g; ++g) {
      const I np = pixels(p.out) * std::min(group, p.mb - n);
      const T* s = src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      T* d = dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      const Mat<T> out = gemm::pixel_mat<T>(dl, d, 0);
      if (bias) gemm::fill_rows<T>(out, p.ocg, np, bias + g * p.ocg);
      gemm::mm<T>(p.ocg, np, p.icg, Mat<const T>{wei + g * p.ocg * p.icg, p.icg, false},
                  gemm::pixel_mat<const T>(sl, s, 0), bias ? T(1) : T(0), out);
    }
}

template <typename T>
void conv_1x1_gemm_bwd_data(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src) {
  const PixelLayout sl = src_layout(p), dl = dst_layout(p);
  const I group = conv_1x1_gemm_image_group(p);
  for (I n = 0; n < p.mb; n += group)
    for (I g = 0; g < p.g; ++g) {
      const I np = pixels(p.out) * std::min(group, p.mb - n);
      const T* dd = diff_dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      T* ds = diff_src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      gemm::mm<T>(p.icg, np, p.ocg, Mat<const T>{wei + g * p.ocg * p.icg, p.icg, true},
                  gemm::pixel_mat<const T>(dl, dd, 0), T(0), gemm::pixel_mat<T>(sl, ds, 0));
    }
}

template <typename T>
void conv_1x1_gemm_bwd_weights(const ConvParams& p, const T* src, const T* diff_dst, T* diff_wei) {
  const PixelLayout sl = src_layout(p), dl = dst_layout(p);
  const I group = conv_1x1_gemm_image_group(p);
  for (I g = 0; g < p.g; ++g) {
    T* dw = diff_wei + g * p.ocg * p.icg;
    if (p.mb == 0) std::fill(dw, dw + p.ocg * p.icg, T(0));
    for (I n = 0; n < p.mb; n += group) {
      const I np = pixels(p.out) * std::min(group, p.mb - n);
      const T* s = src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      const T* dd = diff_dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      gemm::mm<T>(p.ocg, p.icg, np, gemm::pixel_mat<const T>(dl, dd, 0),
                  gemm::pixel_mat<const T>(sl, s, 0).transposed(), n == 0 ? T(0) : T(1),
                  Mat<T>{dw, p.icg, false});
    }
  }
}

template bool conv_1x1_gemm_supports<GemmLayout::Nchw>(const ConvParams&);
template bool conv_1x1_gemm_supports<GemmLayout::Nhwc>(const ConvParams&);
#define CONVKIT_INSTANTIATE(T)                                                           \
  template void conv_1x1_gemm_fwd<T>(const ConvParams&, const T*, const T*, const T*, T*);  \
  template void conv_1x1_gemm_bwd_data<T>(const ConvParams&, const T*, const T*, T*);       \
  template void conv_1x1_gemm_bwd_weights<T>(const ConvParams&, const T*, const T*, T*);
CONVKIT_INSTANTIATE(float)
CONVKIT_INSTANTIATE(double)
#undef CONVKIT_INSTANTIATE

}  // namespace convkit::kernels
