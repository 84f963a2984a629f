// Dense and grouped convolutions of any kernel, stride, dilation, padding and layout:
// im2col of a block of output pixels into per-thread scratch, then one GEMM per block.
//
// Per image n, group g and block of B output pixels starting at p0 (pixels = od*oh*ow
// flattened), with K = icg*kd*kh*kw in the weight's (i, kd, kh, kw) order:
//   col  [K][B]   col[(i,kd,kh,kw)][j] = src[i][od*sd - pd + kd*dd][..][..] or 0 in padding
//   fwd          dst[oc][B]   = W_g [oc][K] x col            (written in place, any layout)
//   bwd_data     col          = W_g^T x diff_dst[oc][B], then col2im adds col into diff_src
//   bwd_weights  diff_W_g    += diff_dst[oc][B] x col^T      (beta = 1 after the first block)
// dst and diff_dst are used in place when their pixels flatten to one stride (NCHW or
// channels-last, dense); otherwise (views with gaps) the block goes through scratch.
// Blocks keep col within about 4 MiB, so scratch stays bounded and the GEMM reads col from
// cache. Scratch is one thread_local vector sized once per call, before any loop; nothing
// allocates inside the loops. bwd_weights reduces images and blocks in a fixed order, so a
// given thread count always gives the same bits.
#include <algorithm>

#include "kernels/conv_gemm/conv_gemm.hpp"
#include "kernels/conv_gemm/gemm.hpp"

namespace convkit::kernels {

using gemm::I;
using gemm::Mat;
using gemm::PixelLayout;

namespace {

struct Geometry {
  I k = 0;       // rows of col: icg * kernel size
  I pixels = 0;  // output pixels of one image
  I block = 0;   // output pixels per col block
};

template <typename T>
Geometry geometry(const ConvParams& p) {
  Geometry geo;
  geo.k = p.icg * p.k[0] * p.k[1] * p.k[2];
  geo.pixels = p.out[0] * p.out[1] * p.out[2];
  const I budget = (I{4} << 20) / static_cast<I>(sizeof(T));
  geo.block = std::clamp<I>(budget / std::max<I>(geo.k, 1), std::min<I>(geo.pixels, 64),
                            std::max<I>(geo.pixels, 1));
  return geo;
}

// Output positions o in [0, n) whose input o*stride + off lies in [0, in): [lo, hi).
struct Span {
  I lo, hi;
};
Span valid_outputs(I off, I stride, I in, I n) {
  // ceil(-off / stride), written so that a huge stride cannot overflow.
  const I lo = off >= 0 ? 0 : -off / stride + (-off % stride != 0 ? 1 : 0);
  const I hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  return {std::min(lo, n), std::clamp(hi, std::min(lo, n), n)};
}

// Walks the rows r = (i, kd, kh, kw) of col and, for output pixels [p0, p0 + b), their runs
// along w: calls fn(r, base, w0, a, e, w1, line, off) per run of output w positions
// [w0, w1), whose column index is base + w; only [a, e) read the input, at w*sw + off of
// the input row at element offset `line` (meaningless when a == e).
template <typename Fn>
void walk_columns(const ConvParams& p, I p0, I b, Fn&& fn) {
  const auto& s = p.src_s;
  I r = 0;
  for (I i = 0; i < p.icg; ++i)
    for (I kd = 0; kd < p.k[0]; ++kd)
      for (I kh = 0; kh < p.k[1]; ++kh)
        for (I kw = 0; kw < p.k[2]; ++kw, ++r) {
          const I off_w = kw * p.dilation[2] - p.pad[2];
          const Span ws = valid_outputs(off_w, p.stride[2], p.in[2], p.out[2]);
          I ow = p0 % p.out[2], oh = (p0 / p.out[2]) % p.out[1], od = p0 / (p.out[2] * p.out[1]);
          for (I j = 0; j < b;) {
            const I run = std::min(p.out[2] - ow, b - j);
            const I id = od * p.stride[0] - p.pad[0] + kd * p.dilation[0];
            const I ih = oh * p.stride[1] - p.pad[1] + kh * p.dilation[1];
            const bool inside = id >= 0 && id < p.in[0] && ih >= 0 && ih < p.in[1];
            // Only rows inside the image have an offset (id, ih may be huge in padding).
            const I line = inside ? i * s[1] + id * s[2] + ih * s[3] : 0;
            // Pixels of this run: ow .. ow + run; the valid ones are [ws.lo, ws.hi).
            const I a = inside ? std::clamp(ws.lo, ow, ow + run) : ow + run;
            const I e = inside ? std::clamp(ws.hi, a, ow + run) : ow + run;
            fn(r, j - ow, ow, a, e, ow + run, line, off_w);
            j += run;
            ow = 0;
            if (++oh == p.out[1]) oh = 0, ++od;
          }
        }
}

// col[r][j] for output pixels [p0, p0 + b) of one image and group (src at its first channel).
template <typename T>
void im2col(const ConvParams& p, const T* src, I p0, I b, T* col) {
  const I sw = p.stride[2], s4 = p.src_s[4];
  walk_columns(p, p0, b, [&](I r, I base, I w0, I a, I e, I w1, I line, I off) {
    T* row = col + r * b;
    for (I w = w0; w < a; ++w) row[base + w] = T(0);
    if (a < e && sw == 1 && s4 == 1)  // stride 1 on a unit-stride row (NCHW): a plain copy
      std::copy(src + line + a + off, src + line + e + off, row + base + a);
    else
      for (I w = a; w < e; ++w) row[base + w] = src[line + (w * sw + off) * s4];
    for (I w = e; w < w1; ++w) row[base + w] = T(0);
  });
}

// The adjoint of im2col: adds col[r][j] into diff_src (which the caller zeroed).
template <typename T>
void col2im(const ConvParams& p, const T* col, I p0, I b, T* diff_src) {
  const I sw = p.stride[2], s4 = p.src_s[4];
  walk_columns(p, p0, b, [&](I r, I base, I, I a, I e, I, I line, I off) {
    const T* row = col + r * b;
    for (I w = a; w < e; ++w) diff_src[line + (w * sw + off) * s4] += row[base + w];
  });
}

// Zeroes the icg channels of one image and group of diff_src.
template <typename T>
void zero_src(const ConvParams& p, T* diff_src) {
  const I n = p.in[0] * p.in[1] * p.in[2];
  for (I i = 0; i < p.icg; ++i)
    gemm::for_pixels(p.in, p.src_s, 0, n, [&](I, I off) { diff_src[i * p.src_s[1] + off] = T(0); });
}

// Copies pixels [p0, p0 + b) of `oc` channels of a strided tensor into dense [oc][b].
template <typename T>
void gather(const ConvParams& p, const T* t, I oc, I p0, I b, T* out) {
  for (I o = 0; o < oc; ++o)
    gemm::for_pixels(p.out, p.dst_s, p0, p0 + b,
                     [&](I j, I off) { out[o * b + j] = t[o * p.dst_s[1] + off]; });
}

}  // namespace

bool conv_im2col_gemm_supports(const ConvParams& p) {
  if (gemm::depthwise(p) || p.icg < 1 || p.ocg < 1 || !gemm::dense_weights(p)) return false;
  const Geometry geo = geometry<double>(p);
  return gemm::strides_fit_int(p) && gemm::fit_int(geo.k, geo.pixels, p.icg, p.ocg) &&
         gemm::fit_int(geo.k * geo.block, p.ocg * geo.block);
}

template <typename T>
void conv_im2col_gemm_fwd(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst) {
  const Geometry geo = geometry<T>(p);
  const PixelLayout dl = gemm::pixel_layout(p.dst_s, p.out, p.ocg);
  T* col = gemm::scratch<T>(geo.k * geo.block + (dl.ok ? 0 : p.ocg * geo.block));
  T* tmp = col + geo.k * geo.block;
  for (I n = 0; n < p.mb; ++n)
    for (I g = 0; g < p.g; ++g) {
      const T* s = src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      T* d = dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      const T* bg = bias ? bias + g * p.ocg : nullptr;
      const Mat<const T> w{wei + g * p.ocg * geo.k, geo.k, false};
      for (I p0 = 0; p0 < geo.pixels; p0 += geo.block) {
        const I b = std::min(geo.block, geo.pixels - p0);
        im2col(p, s, p0, b, col);
        const Mat<const T> cols{col, b, false};
        if (dl.ok) {
          const Mat<T> out = gemm::pixel_mat<T>(dl, d, p0);
          if (bg) gemm::fill_rows<T>(out, p.ocg, b, bg);
          gemm::mm<T>(p.ocg, b, geo.k, w, cols, bg ? T(1) : T(0), out);
        } else {
          gemm::mm<T>(p.ocg, b, geo.k, w, cols, T(0), Mat<T>{tmp, b, false});
          for (I o = 0; o < p.ocg; ++o) {
            const T add = bg ? bg[o] : T(0);
            gemm::for_pixels(p.out, p.dst_s, p0, p0 + b, [&](I j, I off) {
              d[o * p.dst_s[1] + off] = tmp[o * b + j] + add;
            });
          }
        }
      }
    }
}

template <typename T>
void conv_im2col_gemm_bwd_data(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src) {
  const Geometry geo = geometry<T>(p);
  const PixelLayout dl = gemm::pixel_layout(p.dst_s, p.out, p.ocg);
  T* col = gemm::scratch<T>(geo.k * geo.block + (dl.ok ? 0 : p.ocg * geo.block));
  T* tmp = col + geo.k * geo.block;
  for (I n = 0; n < p.mb; ++n)
    for (I g = 0; g < p.g; ++g) {
      const T* dd = diff_dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      T* ds = diff_src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      const Mat<const T> wt{wei + g * p.ocg * geo.k, geo.k, true};
      zero_src(p, ds);
      for (I p0 = 0; p0 < geo.pixels; p0 += geo.block) {
        const I b = std::min(geo.block, geo.pixels - p0);
        Mat<const T> grad{tmp, b, false};
        if (dl.ok)
          grad = gemm::pixel_mat<const T>(dl, dd, p0);
        else
          gather(p, dd, p.ocg, p0, b, tmp);
        gemm::mm<T>(geo.k, b, p.ocg, wt, grad, T(0), Mat<T>{col, b, false});
        col2im(p, col, p0, b, ds);
      }
    }
}

template <typename T>
void conv_im2col_gemm_bwd_weights(const ConvParams& p, const T* src, const T* diff_dst,
                                  T* diff_wei) {
  const Geometry geo = geometry<T>(p);
  const PixelLayout dl = gemm::pixel_layout(p.dst_s, p.out, p.ocg);
  T* col = gemm::scratch<T>(geo.k * geo.block + (dl.ok ? 0 : p.ocg * geo.block));
  T* tmp = col + geo.k * geo.block;
  for (I g = 0; g < p.g; ++g) {
    T* dw = diff_wei + g * p.ocg * geo.k;
    bool first = true;
    for (I n = 0; n < p.mb; ++n) {
      const T* s = src + n * p.src_s[0] + g * p.icg * p.src_s[1];
      const T* dd = diff_dst + n * p.dst_s[0] + g * p.ocg * p.dst_s[1];
      for (I p0 = 0; p0 < geo.pixels; p0 += geo.block, first = false) {
        const I b = std::min(geo.block, geo.pixels - p0);
        im2col(p, s, p0, b, col);
        Mat<const T> grad{tmp, b, false};
        if (dl.ok)
          grad = gemm::pixel_mat<const T>(dl, dd, p0);
        else
          gather(p, dd, p.ocg, p0, b, tmp);
        gemm::mm<T>(p.ocg, geo.k, b, grad, Mat<const T>{col, b, true}, first ? T(0) : T(1),
                    Mat<T>{dw, geo.k, false});
      }
    }
    if (first) std::fill(dw, dw + p.ocg * geo.k, T(0));  // an empty batch
  }
}

#define CONVKIT_INSTANTIATE(T)                                                           \
  template void conv_im2col_gemm_fwd<T>(const ConvParams&, const T*, const T*, const T*, T*);  \
  template void conv_im2col_gemm_bwd_data<T>(const ConvParams&, const T*, const T*, T*);       \
  template void conv_im2col_gemm_bwd_weights<T>(const ConvParams&, const T*, const T*, T*);
CONVKIT_INSTANTIATE(float)
CONVKIT_INSTANTIATE(double)
#undef CONVKIT_INSTANTIATE

}  // namespace convkit::kernels
