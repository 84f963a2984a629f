// The sparse weight packer and the reference sparse forward: naive loops over the packed
// nonzeros, accumulating in double, for every problem; the oracle of the optimized kernel.
#include "kernels/conv_sparse/conv_sparse.hpp"

namespace convkit::kernels {
namespace {

using I = std::int64_t;

I taps(const ConvParams& p) { return p.k[0] * p.k[1] * p.k[2]; }

// Calls fn(o, col, value) for every nonzero of dense weights, row by row, ascending col.
template <typename Fn>
void for_nonzeros(const ConvParams& p, const float* wei, Fn&& fn) {
  for (I o = 0; o < p.g * p.ocg; ++o) {
    I col = 0;
    for (I i = 0; i < p.icg; ++i)
      for (I a = 0; a < p.k[0]; ++a)
        for (I b = 0; b < p.k[1]; ++b)
          for (I c = 0; c < p.k[2]; ++c, ++col) {
            const float v = wei[o * p.wei_s[0] + i * p.wei_s[1] + a * p.wei_s[2] +
                                b * p.wei_s[3] + c * p.wei_s[4]];
            if (v != 0.0f) fn(o, col, v);
          }
  }
}

}  // namespace

void conv_sparse_count(const ConvParams& p, const float* wei, I* nnz) {
  for (I o = 0; o < p.g * p.ocg; ++o) nnz[o] = 0;
  for_nonzeros(p, wei, [&](I o, I, float) { ++nnz[o]; });
}

void conv_sparse_pack(const ConvParams& p, const float* wei, I* row_ptr, std::int32_t* col,
                      I* off, float* val) {
  const I kk = taps(p);
  I j = 0;
  row_ptr[0] = 0;
  I row = 0;
  for_nonzeros(p, wei, [&](I o, I c, float v) {
    while (row < o) row_ptr[++row] = j;  // close the rows before o (empty ones too)
    const I i = c / kk, t = c % kk;
    const I td = t / (p.k[1] * p.k[2]), th = (t / p.k[2]) % p.k[1], tw = t % p.k[2];
    col[j] = static_cast<std::int32_t>(c);
    off[j] = i * p.src_s[1] + td * p.dilation[0] * p.src_s[2] +
             th * p.dilation[1] * p.src_s[3] + tw * p.dilation[2] * p.src_s[4];
    val[j] = v;
    ++j;
  });
  while (row < p.g * p.ocg) row_ptr[++row] = j;
}

void conv_sparse_fwd_ref(const SparseConvParams& sp, const float* src, const float* bias,
                         float* dst) {
  const ConvParams& p = sp.conv;
  const I kk = taps(p);
  for (I n = 0; n < p.mb; ++n)
    for (I o = 0; o < p.g * p.ocg; ++o) {
      const I gr = o / p.ocg;
      for (I r = sp.row_begin; r < sp.row_end; ++r) {
        const I od = r / p.out[1], oh = r % p.out[1];
        for (I ow = 0; ow < p.out[2]; ++ow) {
          double acc = bias ? static_cast<double>(bias[o]) : 0.0;
          for (I j = sp.w.row_ptr[o]; j < sp.w.row_ptr[o + 1]; ++j) {
            // Decode the tap from col alone (off is the optimized kernel's business).
            const I c = sp.w.col[j], i = c / kk, t = c % kk;
            const I td = t / (p.k[1] * p.k[2]), th = (t / p.k[2]) % p.k[1], tw = t % p.k[2];
            const I id = od * p.stride[0] - p.pad[0] + td * p.dilation[0];
            const I ih = oh * p.stride[1] - p.pad[1] + th * p.dilation[1];
            const I iw = ow * p.stride[2] - p.pad[2] + tw * p.dilation[2];
            if (id < 0 || id >= p.in[0] || ih < 0 || ih >= p.in[1] || iw < 0 || iw >= p.in[2])
              continue;
            const float x = src[n * p.src_s[0] + (gr * p.icg + i) * p.src_s[1] +
                                id * p.src_s[2] + ih * p.src_s[3] + iw * p.src_s[4]];
            acc += static_cast<double>(sp.w.val[j]) * static_cast<double>(x);
          }
          dst[n * p.dst_s[0] + o * p.dst_s[1] + od * p.dst_s[2] + oh * p.dst_s[3] +
              ow * p.dst_s[4]] = static_cast<float>(acc);
        }
      }
    }
}

}  // namespace convkit::kernels
