// Which problems the NCHW depthwise forward / backward-data kernels take (dwconv_nchw.hpp).
#include "kernels/dwconv/dwconv_nchw.hpp"

namespace convkit::kernels {

bool dwconv_nchw_layout_ok(const ConvParams& p) {
  return p.icg == 1 && p.ocg >= 1 && p.in[0] == 1 && p.out[0] == 1 && p.k[0] == 1 && p.pad[0] == 0 &&
         p.src_s[4] == 1 && p.dst_s[4] == 1;
}

template <int K, int S>
bool dwconv_nchw_kxk_supports(const ConvParams& p) {
  // Only the w direction is compiled in; kernel rows, h stride and h dilation are run-time.
  return dwconv_nchw_layout_ok(p) && p.k[2] == K && p.stride[2] == S && p.dilation[2] == 1;
}

template bool dwconv_nchw_kxk_supports<3, 1>(const ConvParams&);
template bool dwconv_nchw_kxk_supports<3, 2>(const ConvParams&);
template bool dwconv_nchw_kxk_supports<5, 1>(const ConvParams&);
template bool dwconv_nchw_kxk_supports<5, 2>(const ConvParams&);
template bool dwconv_nchw_kxk_supports<7, 1>(const ConvParams&);
template bool dwconv_nchw_kxk_supports<7, 2>(const ConvParams&);

bool dwconv_nchw_large_supports(const ConvParams& p) {
  // The tile engine's zero weight row bounds kw (dwconv_nchw_tile-inl.hpp: kTileMaxKw).
  return dwconv_nchw_layout_ok(p) && p.k[2] >= 9 && p.k[2] <= 63 && p.wei_s[4] == 1 &&
         p.stride[1] == 1 && p.stride[2] == 1 && p.dilation[1] == 1 && p.dilation[2] == 1;
}

bool dwconv_nchw_generic_supports(const ConvParams& p) { return dwconv_nchw_layout_ok(p); }

}  // namespace convkit::kernels
