// Reference convolution kernels: obviously correct, any shape and layout, double accumulation.
// They are the last entry of every dispatch list and the oracle of every kernel test.
#include "kernels/conv/conv_ref.hpp"

namespace convkit::kernels {
namespace {

using I = std::int64_t;

// Offset of (n, c, d, h, w) under five element strides.
inline I at(const std::array<I, 5>& s, I n, I c, I d, I h, I w) {
  return n * s[0] + c * s[1] + d * s[2] + h * s[3] + w * s[4];
}

// Input coordinate read by output coordinate o through tap t, or -1 when it falls in padding.
inline I input_of(const ConvParams& p, int dim, I o, I t) {
  const I i = o * p.stride[dim] - p.pad[dim] + t * p.dilation[dim];
  return (i >= 0 && i < p.in[dim]) ? i : -1;
}

// Output coordinate that reads input coordinate i through tap t, or -1 when none does:
// the inverse of input_of, used so that backward-data gathers instead of scattering.
inline I output_of(const ConvParams& p, int dim, I i, I t) {
  const I num = i + p.pad[dim] - t * p.dilation[dim];
  if (num < 0 || num % p.stride[dim] != 0) return -1;
  const I o = num / p.stride[dim];
  return o < p.out[dim] ? o : -1;
}

}  // namespace

template <typename T>
void conv_fwd_ref(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst) {
  for (I n = 0; n < p.mb; ++n)
    for (I gr = 0; gr < p.g; ++gr)
      for (I oc = 0; oc < p.ocg; ++oc) {
        const I o = gr * p.ocg + oc;
        for (I od = 0; od < p.out[0]; ++od)
          for (I oh = 0; oh < p.out[1]; ++oh)
            for (I ow = 0; ow < p.out[2]; ++ow) {
              double acc = bias ? static_cast<double>(bias[o]) : 0.0;
              for (I ic = 0; ic < p.icg; ++ic)
                for (I kd = 0; kd < p.k[0]; ++kd) {
                  const I id = input_of(p, 0, od, kd);
                  if (id < 0) continue;
                  for (I kh = 0; kh < p.k[1]; ++kh) {
                    const I ih = input_of(p, 1, oh, kh);
                    if (ih < 0) continue;
                    for (I kw = 0; kw < p.k[2]; ++kw) {
                      const I iw = input_of(p, 2, ow, kw);
                      if (iw < 0) continue;
                      acc += static_cast<double>(src[at(p.src_s, n, gr * p.icg + ic, id, ih, iw)]) *
                             static_cast<double>(wei[at(p.wei_s, o, ic, kd, kh, kw)]);
                    }
                  }
                }
              dst[at(p.dst_s, n, o, od, oh, ow)] = static_cast<T>(acc);
            }
      }
}

template <typename T>
void conv_bwd_data_ref(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src) {
  for (I n = 0; n < p.mb; ++n)
    for (I gr = 0; gr < p.g; ++gr)
      for (I ic = 0; ic < p.icg; ++ic)
        for (I id = 0; id < p.in[0]; ++id)
          for (I ih = 0; ih < p.in[1]; ++ih)
            for (I iw = 0; iw < p.in[2]; ++iw) {
              double acc = 0.0;
              for (I oc = 0; oc < p.ocg; ++oc) {
                const I o = gr * p.ocg + oc;
                for (I kd = 0; kd < p.k[0]; ++kd) {
                  const I od = output_of(p, 0, id, kd);
                  if (od < 0) continue;
                  for (I kh = 0; kh < p.k[1]; ++kh) {
                    const I oh = output_of(p, 1, ih, kh);
                    if (oh < 0) continue;
                    for (I kw = 0; kw < p.k[2]; ++kw) {
                      const I ow = output_of(p, 2, iw, kw);
                      if (ow < 0) continue;
                      acc += static_cast<double>(diff_dst[at(p.dst_s, n, o, od, oh, ow)]) *
                             static_cast<double>(wei[at(p.wei_s, o, ic, kd, kh, kw)]);
                    }
                  }
                }
              }
              diff_src[at(p.src_s, n, gr * p.icg + ic, id, ih, iw)] = static_cast<T>(acc);
            }
}

template <typename T>
void conv_bwd_weights_ref(const ConvParams& p, const T* src, const T* diff_dst, T* diff_wei) {
  for (I gr = 0; gr < p.g; ++gr)
    for (I oc = 0; oc < p.ocg; ++oc)
      for (I ic = 0; ic < p.icg; ++ic)
        for (I kd = 0; kd < p.k[0]; ++kd)
          for (I kh = 0; kh < p.k[1]; ++kh)
            for (I kw = 0; kw < p.k[2]; ++kw) {
              const I o = gr * p.ocg + oc;
              double acc = 0.0;
              for (I n = 0; n < p.mb; ++n)
                for (I od = 0; od < p.out[0]; ++od) {
                  const I id = input_of(p, 0, od, kd);
                  if (id < 0) continue;
                  for (I oh = 0; oh < p.out[1]; ++oh) {
                    const I ih = input_of(p, 1, oh, kh);
                    if (ih < 0) continue;
                    for (I ow = 0; ow < p.out[2]; ++ow) {
                      const I iw = input_of(p, 2, ow, kw);
                      if (iw < 0) continue;
                      acc += static_cast<double>(diff_dst[at(p.dst_s, n, o, od, oh, ow)]) *
                             static_cast<double>(src[at(p.src_s, n, gr * p.icg + ic, id, ih, iw)]);
                    }
                  }
                }
              diff_wei[at(p.wei_s, o, ic, kd, kh, kw)] = static_cast<T>(acc);
            }
}

template <typename T>
void conv_bwd_bias_ref(const ConvParams& p, const T* diff_dst, T* diff_bias) {
  for (I o = 0; o < p.g * p.ocg; ++o) {
    double acc = 0.0;
    for (I n = 0; n < p.mb; ++n)
      for (I od = 0; od < p.out[0]; ++od)
        for (I oh = 0; oh < p.out[1]; ++oh)
          for (I ow = 0; ow < p.out[2]; ++ow)
            acc += static_cast<double>(diff_dst[at(p.dst_s, n, o, od, oh, ow)]);
    diff_bias[o] = static_cast<T>(acc);
  }
}

template void conv_fwd_ref<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void conv_fwd_ref<double>(const ConvParams&, const double*, const double*, const double*, double*);
template void conv_bwd_data_ref<float>(const ConvParams&, const float*, const float*, float*);
template void conv_bwd_data_ref<double>(const ConvParams&, const double*, const double*, double*);
template void conv_bwd_weights_ref<float>(const ConvParams&, const float*, const float*, float*);
template void conv_bwd_weights_ref<double>(const ConvParams&, const double*, const double*, double*);
template void conv_bwd_bias_ref<float>(const ConvParams&, const float*, float*);
template void conv_bwd_bias_ref<double>(const ConvParams&, const double*, double*);

}  // namespace convkit::kernels
