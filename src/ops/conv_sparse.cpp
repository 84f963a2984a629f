// The sparse-weight forward convolution: packs pruned weights for a problem, checks that
// the packed weights and tensors belong to the problem, and splits images x rows over threads.
#include "convkit/ops/conv_sparse.hpp"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "core/check.hpp"
#include "ops/pad_check.hpp"
#include "kernels/conv_sparse/conv_sparse.hpp"
#include "ops/conv_dispatch.hpp"
#include "ops/kernel_params.hpp"

namespace convkit {

using detail::require;
using I = std::int64_t;

namespace {

const char* format_name(MemoryFormat f) {
  return f == MemoryFormat::ChannelsLast ? "channels-last" : "contiguous";
}

// The problems the sparse path computes; everything else gets a message naming the field.
void require_supported(const ConvProblem& p, const char* entry) {
  require(!p.transposed, "{}: problem {} is transposed; only direct convolutions have a sparse path",
          entry, p);
  require(p.padding_mode == PaddingMode::Zeros,
          "{}: problem {} pads with mode {}; the sparse path pads with zeros only", entry, p,
          detail::padding_mode_name(p.padding_mode));
  require(p.dtype == DType::F32, "{}: problem {} has dtype {}; the sparse path is float32 only",
          entry, p, dtype_name(p.dtype));
}

ConvProblem without_bias(ConvProblem p) {
  p.has_bias = false;
  return p;
}

}  // namespace

SparseConvWeights pack_sparse_weights(const ConvProblem& p, const Tensor& weight) {
  p.validate();
  require_supported(p, "pack_sparse_weights");
  require(weight.defined(), "pack_sparse_weights: weight is undefined");
  require(weight.dtype() == DType::F32, "pack_sparse_weights: weight has dtype {} but must be F32",
          dtype_name(weight.dtype()));
  require(weight.shape() == p.wei_shape(),
          "pack_sparse_weights: weight has shape {} but problem {} needs {}", weight.shape(),
          p, p.wei_shape());
  const Tensor w = weight.contiguous();
  const kernels::ConvParams k = detail::dense_kernel_params(p);
  const I cols = k.icg * k.k[0] * k.k[1] * k.k[2];
  require(cols <= INT32_MAX, "pack_sparse_weights: {} weights per output channel exceed the "
          "packed format's 32-bit column index (problem {})", cols, p);
  SparseConvWeights sw;
  sw.problem_ = without_bias(p);
  sw.dense_size_ = p.wei_shape().numel();
  std::vector<I> nnz(static_cast<std::size_t>(p.oc));
  kernels::conv_sparse_count(k, w.data<float>(), nnz.data());
  I total = 0;
  for (const I n : nnz) total += n;
  sw.row_ptr_.resize(static_cast<std::size_t>(p.oc + 1));
  sw.col_.resize(static_cast<std::size_t>(total));
  sw.off_.resize(static_cast<std::size_t>(total));
  sw.val_.resize(static_cast<std::size_t>(total));
  kernels::conv_sparse_pack(k, w.data<float>(), sw.row_ptr_.data(), sw.col_.data(),
                            sw.off_.data(), sw.val_.data());
  return sw;
}

Tensor conv_forward_sparse(const ConvProblem& p, const Tensor& src, const SparseConvWeights& w,
                           const Tensor& bias) {
  constexpr const char* entry = "conv_forward_sparse";
  p.validate();
  require(w.defined(), "{}: the sparse weights are empty (use pack_sparse_weights)", entry);
  require_supported(p, entry);
  require(without_bias(p) == w.problem(),
          "{}: the sparse weights were packed for problem {} ({}) but the call is for problem "
          "{} ({})", entry, w.problem(), format_name(w.problem().format), p,
          format_name(p.format));
  require(src.defined(), "{}: src is undefined", entry);
  require(src.dtype() == DType::F32, "{}: src has dtype {} but the problem is F32", entry,
          dtype_name(src.dtype()));
  require(src.shape() == p.src_shape(), "{}: src has shape {} but problem {} needs {}", entry,
          src.shape(), p, p.src_shape());
  if (p.has_bias) {
    require(bias.defined(), "{}: bias is undefined but problem {} has one", entry, p);
    require(bias.dtype() == DType::F32 && bias.shape() == p.bias_shape(),
            "{}: bias has dtype {} and shape {} but must be F32 with shape {}", entry,
            dtype_name(bias.dtype()), bias.shape(), p.bias_shape());
  } else {
    require(!bias.defined(), "{}: a bias was given but the problem was built without one", entry);
  }
  // The packed offsets address a dense src of p.format: lay src out so once.
  const Tensor in = src.is_contiguous(p.format) ? src : src.to(p.format);
  const Tensor b = p.has_bias ? bias.contiguous() : Tensor{};
  Tensor dst = Tensor::empty(p.dst_shape(), DType::F32, p.format);

  kernels::SparseConvParams base;
  base.conv = detail::dense_kernel_params(p);
  base.w = {w.row_ptr().data(), w.cols().data(), w.offsets().data(), w.values().data()};
  const auto& kc = base.conv;
  const auto* kernel = &kernels::kSparseConvKernels[0];
  for (const auto& candidate : kernels::kSparseConvKernels)
    if (candidate.supports(kc)) {
      kernel = &candidate;
      break;
    }
  detail::note_conv_kernel(kernel->name, "fwd", p);
  // Tasks: images x row chunks, several per thread; every element's bits are independent of
  // the split (the kernel tiles each row the same way wherever a chunk starts).
  const I rows = kc.out[0] * kc.out[1];
  const I threads = omp_get_max_threads();
  const I chunks = std::clamp<I>((4 * threads + p.mb - 1) / std::max<I>(p.mb, 1), 1, std::max<I>(rows, 1));
  const I tasks = p.mb * chunks;
  const float* s = in.data<float>();
  const float* bp = p.has_bias ? b.data<float>() : nullptr;
  float* d = dst.data<float>();
#pragma omp parallel for schedule(static) if (tasks > 1)
  for (I t = 0; t < tasks; ++t) {
    const I n = t / chunks, c = t % chunks;
    kernels::SparseConvParams one = base;
    one.conv.mb = 1;
    one.row_begin = c * rows / chunks;
    one.row_end = (c + 1) * rows / chunks;
    kernel->fwd(one, s + n * kc.src_s[0], bp, d + n * kc.dst_s[0]);
  }
  return dst;
}

}  // namespace convkit
