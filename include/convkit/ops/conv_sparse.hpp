// Forward convolution with pruned (sparse) weights: pack the nonzeros once, skip the zeros.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit {

/// Weight sparsity (fraction of zero weights) above which conv_forward_sparse beat the dense
/// conv_forward on every layer measured: the default threshold for pruned layers' inference
/// forwards. Measured crossovers (bench/results/sparse_conv.md, convkit_sparse_bench, AMD EPYC
/// Zen 5 with AVX-512, 2 cores, 1 and 2 threads, batch 8): NCHW 0% (MobileNetV2 expansions
/// 24->144 and 32->192) to 58% (the 960->160 projection at 7x7), 3x3 64->64 36-52%;
/// channels-last 15% (3x3) to 62% (24->144 at 56x56). 0.65 is the largest plus a margin;
/// at 70% every layer measured ran at least 1.1x faster than dense.
inline constexpr double kSparseForwardPaysAbove = 0.65;

/// The nonzero weights of a direct, zero-padded float32 convolution, packed for
/// conv_forward_sparse (CSR by output channel, docs/sparse.md):
///   row_ptr()  oc + 1 entries; output channel o's nonzeros are [row_ptr[o], row_ptr[o+1])
///   cols()     index of the nonzero in o's dense weight row: ((i*kd + td)*kh + th)*kw + tw
///   offsets()  its element offset in a dense src of the problem's memory format:
///              i*src_s[c] + td*dilation_d*src_s[d] + th*dilation_h*src_s[h] + tw*dilation_w*src_s[w]
///   values()   the weight itself
/// It belongs to the problem it was packed for (problem(), has_bias aside).
class SparseConvWeights {
 public:
  SparseConvWeights() = default;
  bool defined() const { return !row_ptr_.empty(); }
  /// The problem the weights were packed for (has_bias is always false here).
  const ConvProblem& problem() const { return problem_; }
  /// Number of nonzero weights and of weights in total (oc * ic/g * kernel size).
  std::int64_t nnz() const { return static_cast<std::int64_t>(val_.size()); }
  std::int64_t dense_size() const { return dense_size_; }
  /// Fraction of zero weights, 1 - nnz/dense_size: 0 for a dense kernel, 1 for all zeros.
  double sparsity() const {
    return dense_size_ == 0 ? 0.0 : 1.0 - static_cast<double>(nnz()) / static_cast<double>(dense_size_);
  }
  std::span<const std::int64_t> row_ptr() const { return row_ptr_; }
  std::span<const std::int32_t> cols() const { return col_; }
  std::span<const std::int64_t> offsets() const { return off_; }
  std::span<const float> values() const { return val_; }

 private:
  friend SparseConvWeights pack_sparse_weights(const ConvProblem& p, const Tensor& weight);
  ConvProblem problem_{};
  std::int64_t dense_size_ = 0;
  std::vector<std::int64_t> row_ptr_, off_;
  std::vector<std::int32_t> col_;
  std::vector<float> val_;
};

/// Packs the nonzeros of `weight` (shape p.wei_shape(), float32, any strides) for problem p,
/// which must be direct (not transposed), zero-padded and float32. Exact zeros (and -0) are
/// dropped; every other value, NaN included, is kept. Cost: one pass over the weights.
///   SparseConvWeights sw = pack_sparse_weights(p, w);   // sw.sparsity() == 0.9 for a 90% mask
/// Throws InvalidArgument naming the argument for an unsupported problem or a bad weight.
SparseConvWeights pack_sparse_weights(const ConvProblem& p, const Tensor& weight);

/// dst = conv(src, w) + bias for the problem w was packed for, reading only the nonzero
/// weights: the same result as conv_forward(p, src, dense weight, bias) up to float
/// rounding, in time proportional to the nonzeros (plus a per-pixel share). src has shape
/// p.src_shape() (any strides; copied once when not dense in p.format); dst has p.format's
/// layout, shape p.dst_shape(). Threads: OpenMP over images and output rows; the bits do not
/// depend on the thread count. No autograd: for inference forwards.
///   ConvProblem p = ConvProblem::make(x, w, b, {.padding = 1});
///   SparseConvWeights sw = pack_sparse_weights(p, w);
///   Tensor y = sw.sparsity() > kSparseForwardPaysAbove ? conv_forward_sparse(p, x, sw, b)
///                                                       : conv_forward(p, x, w, b);
/// Throws InvalidArgument when w was packed for another problem, or for bad src or bias.
Tensor conv_forward_sparse(const ConvProblem& p, const Tensor& src, const SparseConvWeights& w,
                           const Tensor& bias = {});

}  // namespace convkit
