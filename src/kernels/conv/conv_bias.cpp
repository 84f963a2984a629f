// The fast bias gradient (Highway, run-time dispatch): per-channel sums of diff_dst.
//
// Two layouts are vectorized:
//   rows       diff_dst[n][o][od][oh][ow], ow stride 1: lanes run along ow
//   channels   diff_dst[n][od][oh][ow][o], o stride 1: lanes run along o, one per channel
// A channel's sum is the same in both (and in the scalar code for leftover channels): each
// lane or scalar adds its image's elements in T in pixel order, then the image's total is
// added in double. Rows add per lane and reduce the lanes at the end of each image.
#include "kernels/conv/conv_bias.hpp"

#include <algorithm>
#include <cstdint>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/conv_bias.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;

// Channel o, rows contiguous: one vector accumulator per image, lanes reduced per image.
template <typename T>
double channel_rows(const ConvParams& p, const T* base) {
  const hn::ScalableTag<T> d;
  const I L = static_cast<I>(hn::Lanes(d));
  const I ow = p.out[2];
  double total = 0.0;
  for (I n = 0; n < p.mb; ++n) {
    auto acc = hn::Zero(d);
    T tail = 0;
    for (I od = 0; od < p.out[0]; ++od)
      for (I oh = 0; oh < p.out[1]; ++oh) {
        const T* row = base + n * p.dst_s[0] + od * p.dst_s[2] + oh * p.dst_s[3];
        I w = 0;
        for (; w + L <= ow; w += L) acc = hn::Add(acc, hn::LoadU(d, row + w));
        for (; w < ow; ++w) tail += row[w];
      }
    total += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, acc))) + static_cast<double>(tail);
  }
  return total;
}

// Channels [o0, o0 + L) of a channels-last tensor: lane j sums channel o0 + j.
template <typename T>
void channels_vector(const ConvParams& p, const T* dd, I o0, T* diff_bias) {
  const hn::ScalableTag<T> d;
  const I L = static_cast<I>(hn::Lanes(d));
  double total[hn::MaxLanes(d)] = {};
  HWY_ALIGN T lanes[hn::MaxLanes(d)];
  for (I n = 0; n < p.mb; ++n) {
    auto acc = hn::Zero(d);
    for (I od = 0; od < p.out[0]; ++od)
      for (I oh = 0; oh < p.out[1]; ++oh)
        for (I ow = 0; ow < p.out[2]; ++ow)
          acc = hn::Add(acc, hn::LoadU(d, dd + n * p.dst_s[0] + od * p.dst_s[2] +
                                              oh * p.dst_s[3] + ow * p.dst_s[4] + o0));
    hn::Store(acc, d, lanes);
    for (I j = 0; j < L; ++j) total[j] += static_cast<double>(lanes[j]);
  }
  for (I j = 0; j < L; ++j) diff_bias[o0 + j] = static_cast<T>(total[j]);
}

// Channel o of any layout, with the same per-image order as a channels-last lane.
template <typename T>
double channel_scalar(const ConvParams& p, const T* base) {
  double total = 0.0;
  for (I n = 0; n < p.mb; ++n) {
    T acc = 0;
    for (I od = 0; od < p.out[0]; ++od)
      for (I oh = 0; oh < p.out[1]; ++oh)
        for (I ow = 0; ow < p.out[2]; ++ow)
          acc += base[n * p.dst_s[0] + od * p.dst_s[2] + oh * p.dst_s[3] + ow * p.dst_s[4]];
    total += static_cast<double>(acc);
  }
  return total;
}

template <typename T>
void bias(const ConvParams& p, const T* diff_dst, T* diff_bias) {
  const I channels = p.g * p.ocg;
  const bool rows = p.dst_s[4] == 1 || p.out[2] == 1;
  const bool last = !rows && p.dst_s[1] == 1;
  I o = 0;
  if (last) {
    const I L = static_cast<I>(hn::Lanes(hn::ScalableTag<T>()));
    for (; o + L <= channels; o += L) channels_vector(p, diff_dst, o, diff_bias);
  }
  for (; o < channels; ++o) {
    const T* base = diff_dst + o * p.dst_s[1];
    diff_bias[o] = static_cast<T>(rows && p.out[2] > 1 ? channel_rows(p, base) : channel_scalar(p, base));
  }
}

}  // namespace

void BiasF32(const ConvParams& p, const float* diff_dst, float* diff_bias) { bias(p, diff_dst, diff_bias); }
void BiasF64(const ConvParams& p, const double* diff_dst, double* diff_bias) { bias(p, diff_dst, diff_bias); }

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BiasF32);
HWY_EXPORT(BiasF64);

template <>
void conv_bwd_bias<float>(const ConvParams& p, const float* diff_dst, float* diff_bias) {
  HWY_DYNAMIC_DISPATCH(BiasF32)(p, diff_dst, diff_bias);
}

template <>
void conv_bwd_bias<double>(const ConvParams& p, const double* diff_dst, double* diff_bias) {
  HWY_DYNAMIC_DISPATCH(BiasF64)(p, diff_dst, diff_bias);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
