// The kernels' view of a direct problem on dense tensors (internal; shared by the sparse
// forward, the benchmarks and the kernel tests).
#pragma once

#include <array>
#include <cstdint>

#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"
#include "kernels/conv/conv_list.hpp"

namespace convkit::detail {

/// The kernels' view of a direct, zero-padded problem on dense tensors of p.format, built
/// the way src/ops/conv.cpp builds it (spatial slots right-aligned, element strides).
inline kernels::ConvParams dense_kernel_params(const ConvProblem& p) {
  using I = std::int64_t;
  kernels::ConvParams k;
  const int nd = p.ndims;
  const auto right = [nd](const std::array<I, 3>& a, I fill) {
    std::array<I, 3> r{fill, fill, fill};
    for (int i = 0; i < nd; ++i) r[static_cast<std::size_t>(3 - nd + i)] = a[static_cast<std::size_t>(i)];
    return r;
  };
  const auto strides = [nd](const Shape& shape, MemoryFormat f) {
    const Shape s = dense_strides(shape, f);
    std::array<I, 5> r{s[0], s[1], 0, 0, 0};
    for (int i = 0; i < nd; ++i) r[static_cast<std::size_t>(2 + 3 - nd + i)] = s[2 + i];
    return r;
  };
  k.mb = p.mb;
  k.g = p.g;
  k.icg = p.ic / p.g;
  k.ocg = p.oc / p.g;
  k.in = right(p.in, 1);
  k.out = right(p.out, 1);
  k.k = right(p.k, 1);
  k.stride = right(p.stride, 1);
  k.dilation = right(p.dilation, 1);
  k.pad = right(p.pad_before, 0);
  k.src_s = strides(p.src_shape(), p.format);
  k.dst_s = strides(p.dst_shape(), p.format);
  k.wei_s = strides(p.wei_shape(), MemoryFormat::Contiguous);
  return k;
}

}  // namespace convkit::detail
