// Depthwise backward-weights of NCHW tensors through the channels-last kernels: each image's
// src and diff_dst are transposed into channels-last scratch and the channels-last kernel
// the list would pick sums the image there. The NCHW row kernels walk one channel's plane at
// a time, which on planes of 28x28 and smaller measured 2-9x slower than the transposes and
// the channels-last kernel together, 1.2-2x at 56x56 (batch 8, 1 thread, two runs on a
// noisy machine: MobileNetV2's 7x7x960 3x3 took 2.8 ms, now 0.33-0.38; 14x14x384 2.4 ms,
// now 0.45-0.67).
//
// Forward and backward-data run the same way for kernels wider than 7 (RepLKNet's), on runs
// of images whose output is transposed back. For 3x3 to 7x7 kernels they ran 1.5-9x faster
// on branch wip/nchw-via-nhwc but are not listed: the MobileNetV2 SGD-step parity test sits
// within float32 rounding of a ReLU6 gate (tests/nn/mobilenet_parity_test.cpp). The weight
// gradient feeds no gate.
//
// Memory walked:
//   src, dst, diff_*  [n][c][h][w]  any image, channel and row strides, unit w stride
//   scratch (dense)   [n][h][w][c]  per thread, grown once per call (one image for
//                                   backward-weights, a run of up to 4 MiB otherwise)
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/dwconv/dwconv_nchw.hpp"
#include "kernels/dwconv/dwconv_nhwc.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_via_nhwc.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/conv/transpose8x8-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using I = std::int64_t;

/// The rows a plane is walked in: one row of h * w pixels when its rows are dense (7x7
/// planes then still fill 8 x 8 blocks), else h rows of w.
struct PlaneRows {
  I rows, n;
};
PlaneRows RowsOf(I h, I w, I row) { return row == w ? PlaneRows{1, h * w} : PlaneRows{h, w}; }

/// out[j*out_stride + i] = in[i*in_stride + j] for i < rows and j < cols, in 8 x 8 register
/// blocks where the target has them. The blocks go along the side with the longer stride
/// (the planes) in the outer loop: across the planes in the inner loop, the transpose back
/// made 13x13 forward through it 20% slower.
void Transpose(const float* in, I in_stride, I rows, I cols, float* out, I out_stride) {
  I full_rows = 0, full_cols = 0;  // the part in whole blocks
#if HWY_TARGET <= HWY_AVX2
  full_rows = rows / 8 * 8;
  full_cols = cols / 8 * 8;
  const I off[8] = {0,              out_stride,     2 * out_stride, 3 * out_stride,
                    4 * out_stride, 5 * out_stride, 6 * out_stride, 7 * out_stride};
  const auto block = [&](I i, I j) {
    const float* src[8];
    for (int r = 0; r < 8; ++r) src[r] = in + (i + r) * in_stride + j;
    Transpose8x8(src, out + j * out_stride + i, off);
  };
  if (in_stride >= out_stride) {
    for (I i = 0; i < full_rows; i += 8)
      for (I j = 0; j < full_cols; j += 8) block(i, j);
  } else {
    for (I j = 0; j < full_cols; j += 8)
      for (I i = 0; i < full_rows; i += 8) block(i, j);
  }
#endif
  for (I i = 0; i < full_rows; ++i)
    for (I j = full_cols; j < cols; ++j) out[j * out_stride + i] = in[i * in_stride + j];
  for (I i = full_rows; i < rows; ++i)
    for (I j = 0; j < cols; ++j) out[j * out_stride + i] = in[i * in_stride + j];
}

/// One image's planes to pixels: px[(y*w + x)*c + k] = planes[k*c_stride + y*row + x].
void ToPixels(const float* planes, I c, I c_stride, I h, I w, I row, float* px) {
  const PlaneRows pr = RowsOf(h, w, row);
  for (I r = 0; r < pr.rows; ++r) Transpose(planes + r * row, c_stride, c, pr.n, px + r * w * c, c);
}

/// The inverse: planes[k*c_stride + y*row + x] = px[(y*w + x)*c + k].
void ToPlanes(const float* px, I c, I h, I w, float* planes, I c_stride, I row) {
  const PlaneRows pr = RowsOf(h, w, row);
  for (I r = 0; r < pr.rows; ++r) Transpose(px + r * w * c, c, pr.n, c, planes + r * row, c_stride);
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(ToPixels);
HWY_EXPORT(ToPlanes);

namespace {

using I = std::int64_t;

/// p as a channels-last problem on `images` dense scratch images. Its output is never
/// streamed past the cache (pass_out_bytes 0): the transpose back reads it at once.
ConvParams ChannelsLast(const ConvParams& p, I images) {
  ConvParams q = p;
  q.mb = images;
  q.pass_out_bytes = 0;
  const I c = p.g * p.icg, o = p.g * p.ocg;
  const I ih = p.in[1], iw = p.in[2], oh = p.out[1], ow = p.out[2];
  q.src_s = {ih * iw * c, 1, ih * iw * c, iw * c, c};
  q.dst_s = {oh * ow * o, 1, oh * ow * o, ow * o, o};
  return q;
}

/// One thread's scratch, grown once per call.
template <typename T>
T* Scratch(I count) {
  thread_local std::vector<T> scratch;
  if (scratch.size() < static_cast<std::size_t>(count)) scratch.resize(static_cast<std::size_t>(count));
  return scratch.data();
}

struct Planes {
  I c, h, w, c_stride, row, image;  // channels, rows, columns and the tensor's strides
  I px() const { return h * w * c; }  // floats of one dense channels-last image
};

Planes SrcPlanes(const ConvParams& p) {
  return {p.g * p.icg, p.in[1], p.in[2], p.src_s[1], p.src_s[3], p.src_s[0]};
}
Planes DstPlanes(const ConvParams& p) {
  return {p.g * p.ocg, p.out[1], p.out[2], p.dst_s[1], p.dst_s[3], p.dst_s[0]};
}

void ToPixels(const Planes& t, const float* planes, float* px) {
  HWY_DYNAMIC_DISPATCH(ToPixels)(planes, t.c, t.c_stride, t.h, t.w, t.row, px);
}
void ToPlanes(const Planes& t, const float* px, float* planes) {
  HWY_DYNAMIC_DISPATCH(ToPlanes)(px, t.c, t.h, t.w, planes, t.c_stride, t.row);
}

/// Scratch bytes a run of images may take (input and output together): the run stays in L2
/// or L3 between the transposes and the kernel.
constexpr I kRunBytes = I{4} << 20;

/// Runs pass(q, in_px, out_px) on runs of images transposed from `in` (planes `ti`) into
/// scratch, and transposes each run's output back into `out` (planes `to`). Images are
/// independent in forward and backward-data, so the run length changes no bits.
template <typename Pass>
void ThroughPixels(const ConvParams& p, const Planes& ti, const float* in, const Planes& to,
                   float* out, Pass&& pass) {
  const I per_image = ti.px() + to.px();
  const I run = std::clamp<I>(kRunBytes / std::max<I>(per_image * 4, 1), 1, std::max<I>(p.mb, 1));
  float* xs = Scratch<float>(run * per_image);
  float* ys = xs + run * ti.px();
  for (I n0 = 0; n0 < p.mb; n0 += run) {
    const I k = std::min(run, p.mb - n0);
    for (I n = 0; n < k; ++n) ToPixels(ti, in + (n0 + n) * ti.image, xs + n * ti.px());
    pass(ChannelsLast(p, k), xs, ys);
    for (I n = 0; n < k; ++n) ToPlanes(to, ys + n * to.px(), out + (n0 + n) * to.image);
  }
}

}  // namespace

bool dwconv_nchw_wide_via_nhwc_supports(const ConvParams& p) {
  // Kernels wider than 7 at unit stride and dilation, planes up to 64x64, no multiplier: the
  // channels-last wide kernel on the transposed copies against the NCHW large-kernel path
  // (batch 8, kernel-only, one run on a noisy machine; 1 thread, then 2): RepLKNet's 13x13
  // at 56x56x128 forward 55 -> 18 and 17 -> 12 ms, backward-data 52 -> 19 and 18 -> 12 ms;
  // 31x31 at 28x28x256 forward 118 -> 36 and 89 -> 12 ms, backward-data 137 -> 34 and
  // 101 -> 13 ms. The 3x3 to 7x7 problems (MobileNetV2's) keep the NCHW row kernels in
  // forward and backward-data: see the comment at the top.
  const ConvParams q = ChannelsLast(p, 1);
  return dwconv_nchw_layout_ok(p) && p.ocg == 1 && p.in[1] * p.in[2] <= 64 * 64 &&
         p.k[2] > 7 && dwconv_nhwc_wide_supports(q);
}

void dwconv_nchw_wide_via_nhwc_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                                       const float* bias, float* dst) {
  ThroughPixels(p, SrcPlanes(p), src, DstPlanes(p), dst,
                [&](const ConvParams& q, const float* xs, float* ys) {
                  dwconv_nhwc_wide_fwd_hwy(q, xs, wei, bias, ys);
                });
}

void dwconv_nchw_wide_via_nhwc_bwd_data_hwy(const ConvParams& p, const float* diff_dst,
                                            const float* wei, float* diff_src) {
  ThroughPixels(p, DstPlanes(p), diff_dst, SrcPlanes(p), diff_src,
                [&](const ConvParams& q, const float* ys, float* xs) {
                  dwconv_nhwc_wide_bwd_data_hwy(q, ys, wei, xs);
                });
}

bool dwconv_nchw_bwdw_via_nhwc_supports(const ConvParams& p) {
  // Planes up to 64x64, no multiplier, kernels up to 7 wide or the channels-last wide
  // kernel's (unit stride and dilation). On MobileNetV2's 112x112 layers the transposes from
  // memory made 2 threads slower than the row kernels (32 channels: 1.24 against 1.94 ms),
  // and 56x56 at unit stride came out even. RepLKNet's layers (batch 8, 1 thread) went from
  // the NCHW large-kernel path's 57 to 21 ms (13x13 at 56x56x128) and 121 to 32 ms (31x31 at
  // 28x28x256); wider kernels at other strides stay there.
  const ConvParams q = ChannelsLast(p, 1);
  return dwconv_nchw_layout_ok(p) && p.ocg == 1 && p.in[1] * p.in[2] <= 64 * 64 &&
         dwconv_nhwc_supports(q) && (p.k[2] <= 7 || dwconv_nhwc_wide_supports(q));
}

void dwconv_nchw_bwdw_via_nhwc_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                   float* diff_wei) {
  // One image per channels-last call: its result is that image's float sums exactly, and
  // adding them in double in image order gives the bits of one channels-last call over the
  // batch (their images_in_double contract). Each call sets up its channels and sums again
  // (a few small allocations per image).
  const Planes ts = SrcPlanes(p), td = DstPlanes(p);
  const I weights = td.c * p.wei_s[0];  // diff_wei is dense
  float* xs = Scratch<float>(ts.px() + td.px() + weights);
  float* ys = xs + ts.px();
  float* one = ys + td.px();
  double* total = Scratch<double>(weights);
  std::fill(total, total + weights, 0.0);
  const ConvParams q = ChannelsLast(p, 1);
  const auto pass = dwconv_nhwc_bwdw_k3_supports(q) ? dwconv_nhwc_bwdw_k3_hwy
                    : dwconv_nhwc_wide_supports(q)  ? dwconv_nhwc_bwdw_wide_hwy
                                                    : dwconv_nhwc_bwd_weights_hwy;
  for (I n = 0; n < p.mb; ++n) {
    ToPixels(ts, src + n * ts.image, xs);
    ToPixels(td, diff_dst + n * td.image, ys);
    pass(q, xs, ys, one);
    for (I i = 0; i < weights; ++i) total[i] += one[i];
  }
  for (I i = 0; i < weights; ++i) diff_wei[i] = static_cast<float>(total[i]);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
