// Internal helpers shared by the conversion files: per-dimension options, building modules.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convkit/nn/convert.hpp"

namespace convkit::nn::convert_detail {

/// Spatial dimensions of a direct weight (out, in/groups, k...): 1, 2 or 3, else throws.
int spatial_dims(const Tensor& weight, const char* who, const char* what);

/// The value of a one-or-per-dimension option list at dimension d.
std::int64_t at_dim(const std::vector<std::int64_t>& v, int d);

/// F64 when either is F64, else F32; throws for integer weights.
DType result_dtype(const Tensor& a, const Tensor& b, const char* who);

/// "zeros", "reflect", "replicate", "circular".
const char* mode_name(PaddingMode m);

/// "Conv2d" etc. of a direct convolution with nd spatial dimensions (transposed: ConvTranspose).
std::shared_ptr<ConvNd> make_conv(int nd, bool transposed, const ConvOpts& opts);

/// A new module of `params` (weight shape gives in/out/kernel; groups from the options),
/// direct, parameters copied in and converted to the module's dtype, in the given mode.
std::shared_ptr<ConvNd> make_conv_from(const ConvParams& params, bool training);

}  // namespace convkit::nn::convert_detail
