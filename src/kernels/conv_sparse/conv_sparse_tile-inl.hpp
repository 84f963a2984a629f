// The register tiles of the sparse forward: an output tile's dot product with a stream of
// nonzeros (the 8 x 8 transposes of its channels-last patches are in transpose8x8-inl.hpp).
//
// Included once per SIMD target by conv_sparse_fwd.cpp (Highway's foreach_target re-includes
// it), hence the toggled include guard instead of #pragma once.
#if defined(CONVKIT_CONV_SPARSE_TILE_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_CONV_SPARSE_TILE_INL_
#undef CONVKIT_CONV_SPARSE_TILE_INL_
#else
#define CONVKIT_CONV_SPARSE_TILE_INL_
#endif

#include <cstdint>

#include <hwy/highway.h>

#include "kernels/conv_sparse/conv_sparse.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace sparse {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
using DI = hn::RebindToSigned<D>;

constexpr I kMaxTile = 64;  // output pixels in one tile (4 AVX-512 vectors)

// y[0 .. NV*L) = b + sum_j val[j] * x[offset_j + 0 .. NV*L), offset_j = off[j] (direct) or
// col[j] * ps (patch).
template <int NV, bool kPatch>
HWY_INLINE void Dot(const float* HWY_RESTRICT x, const SparseWeights& w, I j0, I j1, I ps,
                    float b, float* HWY_RESTRICT y) {
  const D d;
  const I L = static_cast<I>(hn::Lanes(d));
  V e0 = hn::Set(d, b), e1 = e0, e2 = e0, e3 = e0;  // even j, starting from the bias
  V o0 = hn::Zero(d), o1 = o0, o2 = o0, o3 = o0;    // odd j
  auto step = [&](I j, V& a0, V& a1, V& a2, V& a3) HWY_ATTR {
    const float* s = x + (kPatch ? I{w.col[j]} * ps : w.off[j]);
    const V v = hn::Set(d, w.val[j]);
    a0 = hn::MulAdd(v, hn::LoadU(d, s), a0);
    if constexpr (NV > 1) a1 = hn::MulAdd(v, hn::LoadU(d, s + L), a1);
    if constexpr (NV > 2) a2 = hn::MulAdd(v, hn::LoadU(d, s + 2 * L), a2);
    if constexpr (NV > 3) a3 = hn::MulAdd(v, hn::LoadU(d, s + 3 * L), a3);
  };
  I j = j0;
  for (; j + 1 < j1; j += 2) {
    step(j, e0, e1, e2, e3);
    step(j + 1, o0, o1, o2, o3);
  }
  if (j < j1) step(j, e0, e1, e2, e3);
  hn::StoreU(hn::Add(e0, o0), d, y);
  if constexpr (NV > 1) hn::StoreU(hn::Add(e1, o1), d, y + L);
  if constexpr (NV > 2) hn::StoreU(hn::Add(e2, o2), d, y + 2 * L);
  if constexpr (NV > 3) hn::StoreU(hn::Add(e3, o3), d, y + 3 * L);
}

template <bool kPatch>
void DotN(I nv, const float* x, const SparseWeights& w, I j0, I j1, I ps, float b, float* y) {
  switch (nv) {
    case 1: return Dot<1, kPatch>(x, w, j0, j1, ps, b, y);
    case 2: return Dot<2, kPatch>(x, w, j0, j1, ps, b, y);
    case 3: return Dot<3, kPatch>(x, w, j0, j1, ps, b, y);
    default: return Dot<4, kPatch>(x, w, j0, j1, ps, b, y);
  }
}

}  // namespace sparse
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
