// Padding the spatial dimensions of a tensor: zeros/constant, reflect, replicate, circular.
#pragma once

#include <cstdint>
#include <vector>

#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit {

/// Pads dimensions 2.. of a rank 3-5 tensor (N, C, spatial...) by before[i] / after[i]
/// elements (one value for all dimensions, or one per spatial dimension), like PyTorch's
/// F.pad with mode "constant" (Zeros, filled with `value`), "reflect" (mirror without
/// repeating the edge; needs padding < size), "replicate" (repeat the edge) or "circular"
/// (wrap around; needs padding <= size). Output size: in + before + after. Keeps the layout.
///   Tensor y = pad(x, {1}, {2}, PaddingMode::Reflect);   // (N, C, H+3, W+3)
Tensor pad(const Tensor& src, const std::vector<std::int64_t>& before,
           const std::vector<std::int64_t>& after, PaddingMode mode, double value = 0.0);

/// The gradient of pad: every element of diff_dst is added to the source element it was
/// copied from (padding made of the constant contributes nothing). Returns src_shape.
Tensor pad_backward(const Tensor& diff_dst, const Shape& src_shape,
                    const std::vector<std::int64_t>& before,
                    const std::vector<std::int64_t>& after, PaddingMode mode);

}  // namespace convkit
