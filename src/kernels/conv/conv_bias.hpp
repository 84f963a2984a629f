// The fast bias gradient: per-channel sums of diff_dst over batch and space, vectorized.
#pragma once

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// diff_bias[o] = sum of diff_dst[n][o][od][oh][ow] over n and the output pixels, for the
/// g*ocg channels of p (only mb, g, ocg, out and dst_s are read). Rows with w stride 1 and
/// channels-last layouts (c stride 1) are vectorized, anything else runs scalar code. Each
/// channel's sum is the same bits whichever channels share the call: every image is summed
/// in T, in a fixed order, and the images are added in double. Matches conv_bwd_bias_ref
/// within T's rounding. Allocates nothing, starts no threads.
template <typename T>
void conv_bwd_bias(const ConvParams& p, const T* diff_dst, T* diff_bias);

}  // namespace convkit::kernels
