// Sparse-weight forward convolution kernels: the packed (CSR-like) weight view, the packer and
// the one list of forward kernels (optimized first, reference last).
#pragma once

#include <cstdint>

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// The nonzero weights of a convolution, row by output channel (CSR):
///
///   output channel o (0 .. g*ocg)       nonzeros j in [row_ptr[o], row_ptr[o+1])
///   col[j]  = ((i*kd + td)*kh + th)*kw + tw     the tap's index in o's dense weight row
///                                               (i: input channel within o's group)
///   off[j]  = i*src_s[1] + td*dd*src_s[2] + th*dh*src_s[3] + tw*dw*src_s[4]
///             the tap's element offset from the receptive field's origin in src
///   val[j]  = wei[o][i][td][th][tw]  (!= 0)
///
/// Within a row the nonzeros ascend by col. `off` is precomputed for the src strides the
/// packer was given (a dense layout: NCDHW or channels-last); a kernel adds it to the address
/// of input pixel (od*sd - pd, oh*sh - ph, ow*sw - pw) of channel (group * icg). Offsets of
/// taps that fall into the padding point outside src: only use them where the tap is valid.
struct SparseWeights {
  const std::int64_t* row_ptr = nullptr;  // g*ocg + 1 entries, row_ptr[0] == 0
  const std::int32_t* col = nullptr;
  const std::int64_t* off = nullptr;
  const float* val = nullptr;
};

/// One call of a sparse forward kernel: the convolution (wei_s unused), the packed weights,
/// and the part of dst to write: images [0, p.mb) of the pointers given, every group, and
/// output rows [row_begin, row_end), a row being one (od, oh) pair, numbered od*oh_n + oh.
struct SparseConvParams {
  ConvParams conv;
  SparseWeights w;
  std::int64_t row_begin = 0, row_end = 0;
};

/// Number of nonzeros of each output channel of dense weights `wei` (layout p.wei_s, as for
/// the dense kernels) into nnz[0 .. g*ocg).
void conv_sparse_count(const ConvParams& p, const float* wei, std::int64_t* nnz);
/// Fills the packed arrays (sized from conv_sparse_count: g*ocg + 1 row pointers, and the
/// total number of nonzeros for col, off and val). Offsets use p.src_s.
void conv_sparse_pack(const ConvParams& p, const float* wei, std::int64_t* row_ptr,
                      std::int32_t* col, std::int64_t* off, float* val);

/// dst = conv(src, sparse weights) + bias (bias may be null) on the rows of p. Writes every
/// element of those rows of dst.
void conv_sparse_fwd_ref(const SparseConvParams& p, const float* src, const float* bias,
                         float* dst);
/// The optimized forward (conv_sparse_fwd.cpp): takes every problem.
void conv_sparse_fwd_hwy(const SparseConvParams& p, const float* src, const float* bias,
                         float* dst);

/// One sparse forward kernel. Contract as for ConvKernel: supports() alone decides, the
/// kernel writes every element of its rows, allocates nothing in its loops (per-thread
/// scratch grown once per call), starts no threads; each output element's bits do not depend
/// on how src/ops/ splits images and rows.
struct SparseConvKernel {
  const char* name;
  bool (*supports)(const ConvParams&);
  void (*fwd)(const SparseConvParams&, const float* src, const float* bias, float* dst);
};

inline bool sparse_supports_everything(const ConvParams&) { return true; }

/// The list, fastest first; the reference last.
inline constexpr SparseConvKernel kSparseConvKernels[] = {
    {"conv_sparse_f32__hwy", sparse_supports_everything, conv_sparse_fwd_hwy},
    {"conv_sparse_f32__ref", sparse_supports_everything, conv_sparse_fwd_ref},
};

}  // namespace convkit::kernels
