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
// bwd_weights accumulates image after image with beta = 1 GEMMs: a fixed order, so one thread
// count always gives the same bits.
#include "kernels/conv_gemm/conv_gemm.hpp"
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

}  // namespace

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
  const I np = pixels(p.out);
  for (I n = 0; n < p.mb; ++n)
    for (I g = 0; g < p.g; ++g) {
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
  const I np = pixels(p.out);
  for (I n = 0; n < p.mb; ++n)
    for (I g = 0; g < p.g; ++g) {
      const T* dd = diff_dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      T* ds = diff_src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      gemm::mm<T>(p.icg, np, p.ocg, Mat<const T>{wei + g * p.ocg * p.icg, p.icg, true},
                  gemm::pixel_mat<const T>(dl, dd, 0), T(0), gemm::pixel_mat<T>(sl, ds, 0));
    }
}

template <typename T>
void conv_1x1_gemm_bwd_weights(const ConvParams& p, const T* src, const T* diff_dst, T* diff_wei) {
  const PixelLayout sl = src_layout(p), dl = dst_layout(p);
  const I np = pixels(p.out);
  for (I g = 0; g < p.g; ++g) {
    T* dw = diff_wei + g * p.ocg * p.icg;
    if (p.mb == 0) std::fill(dw, dw + p.ocg * p.icg, T(0));
    for (I n = 0; n < p.mb; ++n) {
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
