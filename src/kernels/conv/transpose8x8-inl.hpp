// An 8 x 8 float transpose in registers (AVX2 and AVX-512 targets), shared by the kernels
// that move between channels-last pixels and per-channel planes.
//
// Included once per SIMD target (Highway's foreach_target re-includes it), hence the
// toggled include guard instead of #pragma once.
#if defined(CONVKIT_TRANSPOSE8X8_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_TRANSPOSE8X8_INL_
#undef CONVKIT_TRANSPOSE8X8_INL_
#else
#define CONVKIT_TRANSPOSE8X8_INL_
#endif

#include <cstdint>

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {

#if HWY_TARGET <= HWY_AVX2
// Writes the 8 x 8 block rows[r][c] transposed: column c to y[off[c] .. + 8). Three rounds of
// in-register shuffles instead of 64 gathered lanes (channels-last patches and outputs).
HWY_INLINE void Transpose8x8(const float* const* rows, float* HWY_RESTRICT y, const std::int64_t* off) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::Full256<float> d;
  const hn::Full256<double> dd;
  auto r = [&](int k) HWY_ATTR { return hn::LoadU(d, rows[k]); };
  // Pairs of rows interleaved within 128-bit blocks: (r0 c0, r1 c0, r0 c1, r1 c1 | c4 c5).
  const auto t0 = hn::InterleaveLower(r(0), r(1)), t1 = hn::InterleaveUpper(d, r(0), r(1));
  const auto t2 = hn::InterleaveLower(r(2), r(3)), t3 = hn::InterleaveUpper(d, r(2), r(3));
  const auto t4 = hn::InterleaveLower(r(4), r(5)), t5 = hn::InterleaveUpper(d, r(4), r(5));
  const auto t6 = hn::InterleaveLower(r(6), r(7)), t7 = hn::InterleaveUpper(d, r(6), r(7));
  // Pairs of pairs: 4 rows of one column per 128-bit block (columns c | c + 4).
  auto lo = [&](hn::Vec<decltype(d)> x, hn::Vec<decltype(d)> z) HWY_ATTR {
    return hn::BitCast(d, hn::InterleaveLower(hn::BitCast(dd, x), hn::BitCast(dd, z)));
  };
  auto hi = [&](hn::Vec<decltype(d)> x, hn::Vec<decltype(d)> z) HWY_ATTR {
    return hn::BitCast(d, hn::InterleaveUpper(dd, hn::BitCast(dd, x), hn::BitCast(dd, z)));
  };
  const auto u0 = lo(t0, t2), u1 = hi(t0, t2), u2 = lo(t1, t3), u3 = hi(t1, t3);
  const auto u4 = lo(t4, t6), u5 = hi(t4, t6), u6 = lo(t5, t7), u7 = hi(t5, t7);
  // Rows 0-3 and 4-7 of each column joined.
  hn::StoreU(hn::ConcatLowerLower(d, u4, u0), d, y + off[0]);
  hn::StoreU(hn::ConcatLowerLower(d, u5, u1), d, y + off[1]);
  hn::StoreU(hn::ConcatLowerLower(d, u6, u2), d, y + off[2]);
  hn::StoreU(hn::ConcatLowerLower(d, u7, u3), d, y + off[3]);
  hn::StoreU(hn::ConcatUpperUpper(d, u4, u0), d, y + off[4]);
  hn::StoreU(hn::ConcatUpperUpper(d, u5, u1), d, y + off[5]);
  hn::StoreU(hn::ConcatUpperUpper(d, u6, u2), d, y + off[6]);
  hn::StoreU(hn::ConcatUpperUpper(d, u7, u3), d, y + off[7]);
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
