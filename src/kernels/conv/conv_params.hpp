// The plain description of one direct, zero-padded convolution that conv kernels receive.
#pragma once

#include <array>
#include <cstdint>

namespace convkit::kernels {

/// A direct convolution on raw memory, spatial sizes right-aligned into three slots
/// (d, h, w); a 2-D problem has d = 1, a 1-D problem d = h = 1. Padding is zeros,
/// `pad` is the padding before each dimension; the padding after is implied by
/// the output size, which the caller computed (it may be smaller than the formula's,
/// as for transposed convolutions whose output_padding exceeds the stride).
/// Strides are in elements and may describe any layout (NCDHW, NDHWC, strided views):
///   src  [n][c][d][h][w] at n*src_s[0] + c*src_s[1] + d*src_s[2] + h*src_s[3] + w*src_s[4]
///   dst  the same with oc channels and out sizes
///   wei  [o][i][kd][kh][kw] with i in [0, ic/g), output channel o in group o / (oc/g);
///        src/ops/ always passes wei (and diff_wei) dense in this order
struct ConvParams {
  std::int64_t mb = 0, g = 1, icg = 0, ocg = 0;  // channels per group
  std::array<std::int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1}, dilation{1, 1, 1}, pad{0, 0, 0};
  std::array<std::int64_t, 5> src_s{}, dst_s{}, wei_s{};
  /// Bytes the whole pass writes (dst, or diff_src for backward-data) when src/ops/ splits
  /// the problem into calls, one per thread or image run; 0: this call is the whole pass.
  /// Kernels that choose non-temporal stores by output size read it, since the threads'
  /// slices share the last-level cache.
  std::int64_t pass_out_bytes = 0;
};

}  // namespace convkit::kernels
