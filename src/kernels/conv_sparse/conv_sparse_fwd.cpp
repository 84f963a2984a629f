// The optimized sparse forward convolution (Highway): output tiles held in registers while
// the nonzero weights of one output channel stream past, "Fast Sparse ConvNets" style.
//
// Every output tile is NV vectors of consecutive output pixels of one channel o:
//
//   acc[lanes] = bias[o] + sum over j in row o:  val[j] * x[base + off_j + lane]
//
// and only the source of x differs between the two paths:
//
//   direct (NCHW, w stride 1, tile inside the row's interior where every tap is valid):
//     x = src itself; pixel ow's receptive field starts at x_row + ow, so the tile's NV
//     vectors for nonzero j are src[x_row + ow0 + off[j] ...] — plain unaligned loads of a
//     shifted source row (for 1x1 the rows flatten: the sparse x dense product over hw).
//
//        src channel i, row ih:  . . . [ow0 + off_j ........ NV*L ........] . . .
//        acc (registers)      :        [ow0 ............... NV*L ........]  -> dst row
//
//   patch (everything else: padding edges, w stride > 1, channels-last, short rows):
//     up to 4 vectors of pending output pixels (any positions: the edge pixels of many rows
//     share one tile) are gathered into a per-thread patch, one row per weight column
//     col = (i, td, th, tw), zeros where the tap falls into the padding (vector gathers with
//     int32 offsets, masked only when some pixel of the tile touches the padding); then
//     x = patch and the offset of nonzero j is col[j] * ps:
//
//        patch [col 0] t0 t1 t2 ... t(ps-1)
//              [col 1] t0 t1 ...                 acc(o) -> dst[o][pixel t] (NCHW)
//              ...                               or out[o][t] -> dst[pixel t][o] (NHWC,
//                                                   a gather across out's rows per vector)
//
//     Channels-last pays for the transposition at both ends (the patch in, `out` back out),
//     about a gather per 16 values moved, which is why its crossover sparsity is higher.
//
// Every accumulation runs the nonzeros in CSR order on two chains (even and odd j, added at
// the end, to hide the FMA latency), the same in both paths and for every NV, so a pixel gets
// the same bits whichever tile or path computes it. The caller guarantees a valid
// SparseConvParams whose offsets were packed for src's strides.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <vector>

#include "kernels/conv_sparse/conv_sparse.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv_sparse/conv_sparse_fwd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/conv/transpose8x8-inl.hpp"
#include "kernels/conv_sparse/conv_sparse_tile-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
// The tile primitives (conv_sparse_tile-inl.hpp); Transpose8x8 is transpose8x8-inl.hpp's.
using sparse::D;
using sparse::DI;
using sparse::DotN;
using sparse::I;
using sparse::kMaxTile;

// True when the pixels of `sz` lie at unit steps of one flattened index under strides s.
bool flattens(const std::array<I, 5>& s, const std::array<I, 3>& sz) {
  I expect = 1;
  for (int dim = 2; dim >= 0; --dim) {
    const auto u = static_cast<std::size_t>(dim);
    if (sz[u] > 1 && s[u + 2] != expect) return false;
    expect *= sz[u];
  }
  return true;
}

// Per-thread scratch, grown once per call (never inside the loops).
float* Scratch(I n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<std::size_t>(n)) buffer.resize(static_cast<std::size_t>(n));
  return buffer.data();
}

// One group of one image: the state both paths share.
struct Group {
  const ConvParams& p;
  const SparseWeights& w;
  const float* s;      // src at (image, first channel of the group)
  float* y;            // dst at (image, first channel of the group)
  const float* bias;   // null or bias of the group's first channel
  I o0;                // the group's first output channel
  I L, tile;           // lanes, pixels of a full tile
  float* patch;        // icg*kk rows of `tile` floats
  float* out;          // ocg rows of `tile` floats (channels-last stores)
  bool gather;         // every src offset of the group fits int32: patch rows by gathers
  // Two queues of pixels for the patch path, so that interior pixels (every tap inside the
  // input) share tiles and take the unmasked gathers and transposes: 0 interior, 1 edges.
  I queue[2][kMaxTile];
  I queued[2] = {0, 0};

  float b(I o) const { return bias ? bias[o] : 0.0f; }

  // Direct tiles over output pixels [a, b) (b - a >= L) whose field starts at s[xrow + q]
  // and whose outputs are y[o*dst_s1 + yrow + q].
  void Direct(I xrow, I yrow, I a, I e) {
    auto at = [&](I q, I nv) {
      for (I o = 0; o < p.ocg; ++o)
        DotN<false>(nv, s + (xrow + q), w, w.row_ptr[o0 + o], w.row_ptr[o0 + o + 1], 0, b(o),
                    y + o * p.dst_s[1] + yrow + q);
    };
    // Widest tiles first (a 54-pixel row is 3 vectors and an overlapping one, not 4 singles).
    I q = a;
    for (I nv = std::min(tile, e - q) / L; nv > 0; nv = std::min(tile, e - q) / L) {
      at(q, nv);
      q += nv * L;
    }
    if (q < e) at(e - L, 1);  // overlaps the last tile: same bits again
  }

  void Add(int which, I q) {
    queue[which][queued[which]++] = q;
    if (queued[which] == tile) Flush(queue[which], queued[which]);
  }
  void FlushAll() {
    Flush(queue[0], queued[0]);
    Flush(queue[1], queued[1]);
  }

  // Gathers the queued pixels into the patch and computes every output channel for them.
  void Flush(const I* pending, I& count) {
    if (count == 0) return;
    const I nv = (count + L - 1) / L, ps = nv * L;
    const I oh_n = p.out[1], ow_n = p.out[2];
    I id0[kMaxTile], ih0[kMaxTile], iw0[kMaxTile], base[kMaxTile], dst_off[kMaxTile];
    bool interior = true;  // every tap of every pixel inside the input: no checks, gathers
    I od = 0, oh = 0, ow = 0;
    for (I t = 0; t < count; ++t) {
      const I q = pending[t];
      if (t > 0 && q == pending[t - 1] + 1 && ow + 1 < ow_n) {
        ++ow;  // the next pixel of the same row: no divisions
      } else {
        const I r = q / ow_n;
        ow = q % ow_n, od = r / oh_n, oh = r % oh_n;
      }
      id0[t] = od * p.stride[0] - p.pad[0];
      ih0[t] = oh * p.stride[1] - p.pad[1];
      iw0[t] = ow * p.stride[2] - p.pad[2];
      base[t] = id0[t] * p.src_s[2] + ih0[t] * p.src_s[3] + iw0[t] * p.src_s[4];
      dst_off[t] = od * p.dst_s[2] + oh * p.dst_s[3] + ow * p.dst_s[4];
      interior = interior && id0[t] >= 0 && id0[t] + (p.k[0] - 1) * p.dilation[0] < p.in[0] &&
                 ih0[t] >= 0 && ih0[t] + (p.k[1] - 1) * p.dilation[1] < p.in[1] &&
                 iw0[t] >= 0 && iw0[t] + (p.k[2] - 1) * p.dilation[2] < p.in[2];
    }
    const D d;
    const DI di;
    float* row = patch;
    if (gather) {
      // Lanes past `count` repeat pixel 0: their loads stay in bounds and are never stored.
      alignas(64) std::int32_t b32[kMaxTile], d32[kMaxTile], h32[kMaxTile], w32[kMaxTile];
      for (I t = 0; t < ps; ++t) {
        const I u = t < count ? t : 0;
        b32[t] = static_cast<std::int32_t>(base[u]);
        d32[t] = static_cast<std::int32_t>(id0[u]);
        h32[t] = static_cast<std::int32_t>(ih0[u]);
        w32[t] = static_cast<std::int32_t>(iw0[u]);
      }
      // Lanes whose coordinate v0 + delta lies in [0, n).
      auto inside = [&](const std::int32_t* v0, I k, I delta, I n) HWY_ATTR {
        const auto x = hn::Add(hn::LoadU(di, v0 + k * L), hn::Set(di, static_cast<std::int32_t>(delta)));
        return hn::And(hn::Gt(x, hn::Set(di, -1)), hn::Lt(x, hn::Set(di, static_cast<std::int32_t>(n))));
      };
      // Channels-last interior tiles: blocks of 8 pixels x 8 channels by transposes.
      I i8 = 0;
#if HWY_TARGET <= HWY_AVX2
      if (interior && p.src_s[1] == 1 && count % 8 == 0) {
        const I kk = p.k[0] * p.k[1] * p.k[2];
        i8 = p.icg / 8 * 8;
        I tap_index = 0;
        for (I td = 0; td < p.k[0]; ++td)
          for (I th = 0; th < p.k[1]; ++th)
            for (I tw = 0; tw < p.k[2]; ++tw, ++tap_index) {
              const I tap = td * p.dilation[0] * p.src_s[2] + th * p.dilation[1] * p.src_s[3] +
                            tw * p.dilation[2] * p.src_s[4];
              I off[8];
              for (I c = 0; c < 8; ++c) off[c] = c * kk * ps;
              for (I i0 = 0; i0 < i8; i0 += 8)
                for (I t = 0; t < count; t += 8) {
                  const float* rows[8];
                  for (I k = 0; k < 8; ++k) rows[k] = s + (base[t + k] + tap + i0);
                  Transpose8x8(rows, patch + (i0 * kk + tap_index) * ps + t, off);
                }
            }
      }
#endif
      for (I i = 0; i < p.icg; ++i)
        for (I td = 0; td < p.k[0]; ++td)
          for (I th = 0; th < p.k[1]; ++th)
            for (I tw = 0; tw < p.k[2]; ++tw, row += ps) {
              if (i < i8) continue;  // done by the transposes
              const I dd = td * p.dilation[0], dh = th * p.dilation[1], dw = tw * p.dilation[2];
              const auto tap = hn::Set(di, static_cast<std::int32_t>(
                  i * p.src_s[1] + dd * p.src_s[2] + dh * p.src_s[3] + dw * p.src_s[4]));
              for (I k = 0; k < nv; ++k) {
                const auto at = hn::Add(hn::LoadU(di, b32 + k * L), tap);
                if (interior) {
                  hn::StoreU(hn::GatherIndex(d, s, at), d, row + k * L);
                } else {  // padding: gather from offset 0 there, then zero those lanes
                  const auto ok = hn::And(hn::And(inside(d32, k, dd, p.in[0]), inside(h32, k, dh, p.in[1])),
                                          inside(w32, k, dw, p.in[2]));
                  const auto x = hn::GatherIndex(d, s, hn::IfThenElseZero(ok, at));
                  hn::StoreU(hn::IfThenElseZero(hn::RebindMask(d, ok), x), d, row + k * L);
                }
              }
            }
    } else {  // offsets beyond int32: scalar loads
      for (I i = 0; i < p.icg; ++i)
        for (I td = 0; td < p.k[0]; ++td)
          for (I th = 0; th < p.k[1]; ++th)
            for (I tw = 0; tw < p.k[2]; ++tw, row += ps) {
              const I dd = td * p.dilation[0], dh = th * p.dilation[1], dw = tw * p.dilation[2];
              const I tap = i * p.src_s[1] + dd * p.src_s[2] + dh * p.src_s[3] + dw * p.src_s[4];
              for (I t = 0; t < count; ++t) {
                const I id = id0[t] + dd, ih = ih0[t] + dh, iw = iw0[t] + dw;
                const bool ok = id >= 0 && id < p.in[0] && ih >= 0 && ih < p.in[1] && iw >= 0 &&
                                iw < p.in[2];
                row[t] = ok ? s[base[t] + tap] : 0.0f;
              }
            }
    }
    if (p.dst_s[1] == 1) {  // channels-last: rows of `out`, then one pixel's channels at a time
      for (I o = 0; o < p.ocg; ++o)
        DotN<true>(nv, patch, w, w.row_ptr[o0 + o], w.row_ptr[o0 + o + 1], ps, b(o), out + o * ps);
      I t = 0;
#if HWY_TARGET <= HWY_AVX2
      for (; t + 8 <= count; t += 8) {  // 8 pixels x 8 channels per block
        I o = 0;
        for (; o + 8 <= p.ocg; o += 8) {
          const float* rows[8];
          for (int k = 0; k < 8; ++k) rows[k] = out + (o + k) * ps + t;
          Transpose8x8(rows, y + o, dst_off + t);
        }
        for (; o < p.ocg; ++o)
          for (I c = 0; c < 8; ++c) y[dst_off[t + c] + o] = out[o * ps + t + c];
      }
#endif
      const auto across = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<std::int32_t>(ps)));
      for (; t < count; ++t) {
        float* yt = y + dst_off[t];
        I o = 0;
        for (; o + L <= p.ocg; o += L)
          hn::StoreU(hn::GatherIndex(d, out + o * ps + t, across), d, yt + o);
        for (; o < p.ocg; ++o) yt[o] = out[o * ps + t];
      }
    } else {
      alignas(64) float tmp[kMaxTile];
      for (I o = 0; o < p.ocg; ++o) {
        DotN<true>(nv, patch, w, w.row_ptr[o0 + o], w.row_ptr[o0 + o + 1], ps, b(o), tmp);
        for (I t = 0; t < count; ++t) y[o * p.dst_s[1] + dst_off[t]] = tmp[t];
      }
    }
    count = 0;
  }
};

}  // namespace

void SparseFwd(const SparseConvParams& sp, const float* src, const float* bias, float* dst) {
  const ConvParams& p = sp.conv;
  const D d;
  const I L = static_cast<I>(hn::Lanes(d));
  const I tile = std::min<I>(4, kMaxTile / L) * L;
  const I kk = p.k[0] * p.k[1] * p.k[2];
  const I oh_n = p.out[1], ow_n = p.out[2];
  float* patch = Scratch(p.icg * kk * tile + p.ocg * tile);
  // Direct rows: consecutive outputs read consecutive inputs and write consecutive outputs.
  const bool rows = p.stride[2] == 1 && p.src_s[4] == 1 && p.dst_s[4] == 1 && ow_n >= L;
  bool flat = flattens(p.src_s, p.in) && flattens(p.dst_s, p.out);
  for (std::size_t u = 0; u < 3; ++u)
    flat = flat && p.k[u] == 1 && p.stride[u] == 1 && p.pad[u] == 0 && p.in[u] == p.out[u];
  // The part of each row where every tap of the kernel is inside the input (w stride 1).
  const I wlo = std::min(p.pad[2], ow_n);
  // Gathers take int32 offsets from the group's src origin: bound every offset a tap forms.
  I reach = p.icg * std::abs(p.src_s[1]);
  for (std::size_t u = 0; u < 3; ++u)
    reach += (p.in[u] + p.pad[u] + p.out[u] * p.stride[u] + p.k[u] * p.dilation[u]) * std::abs(p.src_s[u + 2]);
  const bool gather = reach < INT32_MAX / 2;
  const I whi = std::clamp<I>(p.in[2] + p.pad[2] - (p.k[2] - 1) * p.dilation[2], wlo, ow_n);
  // The same interior for any w stride, for the patch path's queues.
  const I cut_lo = std::min((p.pad[2] + p.stride[2] - 1) / p.stride[2], ow_n);
  const I last = p.in[2] + p.pad[2] - 1 - (p.k[2] - 1) * p.dilation[2];  // last valid ow*sw
  const I cut_hi = last < 0 ? cut_lo : std::clamp<I>(last / p.stride[2] + 1, cut_lo, ow_n);
  for (I n = 0; n < p.mb; ++n)
    for (I gr = 0; gr < p.g; ++gr) {
      Group g{p, sp.w, src + n * p.src_s[0] + gr * p.icg * p.src_s[1],
              dst + n * p.dst_s[0] + gr * p.ocg * p.dst_s[1], bias ? bias + gr * p.ocg : nullptr,
              gr * p.ocg, L, tile, patch, patch + p.icg * kk * tile, gather, {}, {0, 0}};
      if (flat) {
        const I a = sp.row_begin * ow_n, e = sp.row_end * ow_n;
        if (e - a >= L) {
          g.Direct(0, 0, a, e);
        } else {
          for (I q = a; q < e; ++q) g.Add(0, q);
        }
      } else {
        for (I r = sp.row_begin; r < sp.row_end; ++r) {
          const I od = r / oh_n, oh = r % oh_n;
          const I id0 = od * p.stride[0] - p.pad[0], ih0 = oh * p.stride[1] - p.pad[1];
          const bool inside = id0 >= 0 && id0 + (p.k[0] - 1) * p.dilation[0] < p.in[0] &&
                              ih0 >= 0 && ih0 + (p.k[1] - 1) * p.dilation[1] < p.in[1];
          if (!inside) {
            for (I ow = 0; ow < ow_n; ++ow) g.Add(1, r * ow_n + ow);
            continue;
          }
          for (I ow = 0; ow < cut_lo; ++ow) g.Add(1, r * ow_n + ow);
          if (rows && whi - wlo >= L)
            g.Direct(id0 * p.src_s[2] + ih0 * p.src_s[3] - p.pad[2], od * p.dst_s[2] + oh * p.dst_s[3],
                     wlo, whi);
          else
            for (I ow = cut_lo; ow < cut_hi; ++ow) g.Add(0, r * ow_n + ow);
          for (I ow = cut_hi; ow < ow_n; ++ow) g.Add(1, r * ow_n + ow);
        }
      }
      g.FlushAll();
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(SparseFwd);

void conv_sparse_fwd_hwy(const SparseConvParams& p, const float* src, const float* bias,
                         float* dst) {
  HWY_DYNAMIC_DISPATCH(SparseFwd)(p, src, bias, dst);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
