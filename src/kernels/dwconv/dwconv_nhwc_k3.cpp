// Depthwise forward and backward-data for channels-last 3x3 kernels (MobileNet's layers),
// float32, multiplier 1: unit stride with any padding and dilation, and w stride 2 with
// PyTorch's 'same' padding of 1 and unit dilation (any h stride there).
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src  [n][ih][iw][c]   dst  [n][oh][ow][c]   wr [tap][c] (repacked per call)
//   wb   [c / L][tap][L]  (Tiles3's weights, blocked by vector per call)
// The caller guarantees dwconv_nhwc_k3_supports(p); padding is never read nor multiplied.
//
// Two channel vectors walk the whole image together, row by row: their input plane is a few
// KiB of lines C floats apart, so the three rows under the kernel stay in L1 while they
// slide and no tap list is built per block. 'Same' rows stream their columns with all 18
// weights in registers, each column finishing, adding to and starting outputs (SameRow3,
// SameRow3S2); other rows go in register blocks of 8, 4, 2 and 1 outputs that load each
// column once (Run3), with the outputs at the edges testing each tap (Edge3). Images of 'same'
// rows of at most 16 pixels (MobileNet's 7x7 and 14x14 layers) go instead in tiles of up to
// 8 outputs, each tile taking every channel vector before the next (Tiles3).
// Backward-data at unit stride is the forward of diff_dst with the kernel turned half a
// turn; at stride 2 even diff_src columns take one tap and odd ones two (PlaneS2BwdData).
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc_k3.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers


/// Stores a full vector of output: with kStream a non-temporal store (p vector-aligned), for
/// outputs far larger than the caches, which then skip reading each line before writing it.
template <bool kStream>
HWY_INLINE void StoreOut(V v, float* p) {
  if constexpr (kStream)
    hn::Stream(v, D(), p);
  else
    hn::StoreU(v, D(), p);
}

/// Prefetches the lines of NV vectors from p.
template <int NV>
HWY_INLINE void PrefetchVectors(const float* p) {
  const I floats = NV * LanesI();
  for (I f = 0; f < floats; f += 16) Touch(p + f);
}

/// P outputs out + q*out_px whose taps all lie inside their row, for NV adjacent channel
/// vectors (L floats apart): rows[a] is kernel row a's first column (null: the row is
/// padding), w[t] tap t's weights, both at the first vector's channel offset. Output q,
/// tap b reads column SW*q + b. Two vectors give twice the independent FMA chains: one
/// output's 9 taps are a chain of 9 dependent FMAs.
template <int P, int SW, int NV, bool kTail>
HWY_INLINE void Run3(const float* const (&rows)[3], const float* const (&w)[9], I in_px,
                     const V (&init)[NV], float* out, I out_px, I valid) {
  const D d;
  const I L = LanesI();
  V acc[NV][P];
  for (int u = 0; u < NV; ++u)
    for (int q = 0; q < P; ++q) acc[u][q] = init[u];
  for (int a = 0; a < 3; ++a) {
    if (rows[a] == nullptr) continue;
    V w0[NV], w1[NV], w2[NV];
    for (int u = 0; u < NV; ++u) {
      w0[u] = hn::LoadU(d, w[a * 3] + u * L);
      w1[u] = hn::LoadU(d, w[a * 3 + 1] + u * L);
      w2[u] = hn::LoadU(d, w[a * 3 + 2] + u * L);
    }
    const float* in = rows[a];
    HWY_UNROLL(32)
    for (int c = 0; c < SW * (P - 1) + 3; ++c) {
      for (int u = 0; u < NV; ++u) {
        const V x = LoadPx<kTail>(in + c * in_px + u * L, valid);
        if (c % SW == 0 && c / SW < P) acc[u][c / SW] = hn::MulAdd(x, w0[u], acc[u][c / SW]);
        if (c >= 1 && (c - 1) % SW == 0 && (c - 1) / SW < P)
          acc[u][(c - 1) / SW] = hn::MulAdd(x, w1[u], acc[u][(c - 1) / SW]);
        if (c >= 2 && (c - 2) % SW == 0 && (c - 2) / SW < P)
          acc[u][(c - 2) / SW] = hn::MulAdd(x, w2[u], acc[u][(c - 2) / SW]);
      }
    }
  }
  for (int q = 0; q < P; ++q)
    for (int u = 0; u < NV; ++u) StorePx<kTail>(acc[u][q], out + q * out_px + u * L, valid);
}

/// One output (NV vectors) whose first column `col` may leave the row: each tap tests its
/// column. The kernel rows go into separate sums, which keeps the dependent chains short.
template <int NV, bool kTail>
HWY_INLINE void Edge3(const float* const (&rows)[3], const float* const (&w)[9], I col, I in_w,
                      I in_px, const V (&init)[NV], float* out, I valid) {
  const D d;
  const I L = LanesI();
  V acc[NV][3];
  for (int u = 0; u < NV; ++u) {
    acc[u][0] = init[u];
    acc[u][1] = acc[u][2] = hn::Zero(d);
  }
  for (int a = 0; a < 3; ++a) {
    if (rows[a] == nullptr) continue;
    for (int b = 0; b < 3; ++b) {
      const I c = col + b;
      if (c < 0 || c >= in_w) continue;
      for (int u = 0; u < NV; ++u)
        acc[u][a] = hn::MulAdd(LoadPx<kTail>(rows[a] + c * in_px + u * L, valid),
                               hn::LoadU(d, w[a * 3 + b] + u * L), acc[u][a]);
    }
  }
  for (int u = 0; u < NV; ++u)
    StorePx<kTail>(hn::Add(hn::Add(acc[u][0], acc[u][1]), acc[u][2]), out + u * L, valid);
}

/// A whole output row of a 'same' 3x3 at unit stride (pw = 1, out_w = in_w >= 2) for NV full
/// vectors, with the kernel rows in kRows (bit a: row a lies inside the image) and all 9*NV
/// weights in registers: each column, loaded once per kernel row, finishes the output to
/// its left, adds to the one above it and starts the one to its right, so the row's edges
/// need no tests and no weight is reloaded along the row.
template <unsigned kRows, int NV, bool kStream, bool kAhead>
HWY_INLINE void SameRow3(const float* const (&base)[3], const V (&w)[NV][9], const V (&init)[NV],
                         I n, I in_px, float* y, I out_px, I ahead) {
  const I L = LanesI();
  constexpr int kLast = (kRows & 4u) ? 2 : 1;  // the kernel row no earlier output row read
  V prev[NV], cur[NV], next[NV];  // outputs c - 1, c and c + 1 of column c
  auto column = [&](I c, bool left, bool right) {
    for (int u = 0; u < NV; ++u) next[u] = init[u];
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      if (kAhead && a == kLast) PrefetchVectors<NV>(base[a] + c * in_px + ahead);
      for (int u = 0; u < NV; ++u) {
        const V x = hn::LoadU(D(), base[a] + c * in_px + u * L);
        if (left) prev[u] = hn::MulAdd(x, w[u][a * 3 + 2], prev[u]);
        cur[u] = hn::MulAdd(x, w[u][a * 3 + 1], cur[u]);
        if (right) next[u] = hn::MulAdd(x, w[u][a * 3], next[u]);
      }
    }
  };
  for (int u = 0; u < NV; ++u) cur[u] = init[u];
  column(0, false, true);
  for (int u = 0; u < NV; ++u) prev[u] = cur[u], cur[u] = next[u];
  for (I c = 1; c + 1 < n; ++c) {
    column(c, true, true);
    for (int u = 0; u < NV; ++u) {
      StoreOut<kStream>(prev[u], y + (c - 1) * out_px + u * L);
      prev[u] = cur[u];
      cur[u] = next[u];
    }
  }
  column(n - 1, true, false);
  for (int u = 0; u < NV; ++u) {
    StoreOut<kStream>(prev[u], y + (n - 2) * out_px + u * L);
    StoreOut<kStream>(cur[u], y + (n - 1) * out_px + u * L);
  }
}

/// SameRow3 at w stride 2 (pw = 1, out_w = (in_w + 1) / 2): output o reads columns 2o - 1,
/// 2o and 2o + 1, so each odd column finishes one output and starts the next; the first
/// output has no column to its left, and the last none to its right when in_w is odd.
template <unsigned kRows, int NV, bool kStream, bool kAhead>
HWY_INLINE void SameRow3S2(const float* const (&base)[3], const V (&w)[NV][9], const V (&init)[NV],
                           I in_w, I out_w, I in_px, float* y, I out_px, I ahead) {
  const I L = LanesI();
  constexpr int kLast = (kRows & 4u) ? 2 : 1;  // rows kLast - 1, kLast: new to this row
  V acc[NV], next[NV];
  for (int u = 0; u < NV; ++u) next[u] = init[u];
  auto output = [&](I o, bool has_right, bool starts_next) {
    for (int u = 0; u < NV; ++u) acc[u] = next[u], next[u] = init[u];
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      if (kAhead && a >= kLast - 1) {
        PrefetchVectors<NV>(base[a] + 2 * o * in_px + ahead);
        if (has_right) PrefetchVectors<NV>(base[a] + (2 * o + 1) * in_px + ahead);
      }
      for (int u = 0; u < NV; ++u) {
        const float* px = base[a] + 2 * o * in_px + u * L;
        acc[u] = hn::MulAdd(hn::LoadU(D(), px), w[u][a * 3 + 1], acc[u]);
        if (has_right) {
          const V x = hn::LoadU(D(), px + in_px);
          acc[u] = hn::MulAdd(x, w[u][a * 3 + 2], acc[u]);
          if (starts_next) next[u] = hn::MulAdd(x, w[u][a * 3], next[u]);
        }
      }
    }
    for (int u = 0; u < NV; ++u) StoreOut<kStream>(acc[u], y + o * out_px + u * L);
  };
  for (I o = 0; o + 1 < out_w; ++o) output(o, true, true);
  output(out_w - 1, 2 * out_w <= in_w, false);
}

/// NV channel vectors from o0 (the first `valid` lanes when kTail) of the whole image.
template <int SW, int NV, bool kTail, bool kStream, bool kAhead = false>
void Plane3(const PassGeo& g, const float* const (&wt)[9], const float* bias, const float* in,
            float* out, I o0, I valid, I ahead = 0) {
  const I L = LanesI();
  V init[NV];
  for (int u = 0; u < NV; ++u)
    init[u] = bias ? LoadPx<kTail>(bias + o0 + u * L, valid) : hn::Zero(D());
  const float* w[9];
  for (int t = 0; t < 9; ++t) w[t] = wt[t] + o0;
  // Outputs [lo, hi) read only columns inside the row.
  const I lo = std::min(g.out_w, std::max<I>(0, CeilDiv(g.pw, SW)));
  const I hi = std::max(lo, std::min(g.out_w, FloorDiv(g.in_w - 3 + g.pw, SW) + 1));
  const bool same = !kTail && g.pw == 1 && g.in_w >= 2 &&
                    g.out_w == (SW == 1 ? g.in_w : (g.in_w + 1) / 2);
  V wv[NV][9];  // for the 'same' rows; nine loads per plane either way
  for (int u = 0; u < NV; ++u)
    for (int t = 0; t < 9; ++t) wv[u][t] = hn::LoadU(D(), w[t] + u * L);
  for (I oh = 0; oh < g.out_h; ++oh) {
    const float* base[3];  // column 0 of each kernel row at channel o0
    for (int a = 0; a < 3; ++a) {
      const I r = oh * g.sh - g.ph + a * g.dh;
      base[a] = r >= 0 && r < g.in_h ? in + r * g.in_row + o0 : nullptr;
    }
    float* y = out + oh * g.out_row + o0;
    if (same) {
      const unsigned rows = (base[0] ? 1u : 0u) | (base[1] ? 2u : 0u) | (base[2] ? 4u : 0u);
      auto row = [&](auto kept) {
        constexpr unsigned kRows = decltype(kept)::value;
        if constexpr (SW == 1)
          SameRow3<kRows, NV, kStream, kAhead>(base, wv, init, g.in_w, g.in_px, y, g.out_px,
                                               ahead);
        else
          SameRow3S2<kRows, NV, kStream, kAhead>(base, wv, init, g.in_w, g.out_w, g.in_px, y,
                                                 g.out_px, ahead);
      };
      if (rows == 7u || rows == 6u || rows == 3u) {
        rows == 7u   ? row(std::integral_constant<unsigned, 7u>())
        : rows == 6u ? row(std::integral_constant<unsigned, 6u>())
                     : row(std::integral_constant<unsigned, 3u>());
        continue;
      }
    }
    for (I ow = 0; ow < lo; ++ow)
      Edge3<NV, kTail>(base, w, ow * SW - g.pw, g.in_w, g.in_px, init, y + ow * g.out_px, valid);
    I ow = lo;
    auto run = [&](auto width) {
      constexpr int P = decltype(width)::value;
      const I first = (ow * SW - g.pw) * g.in_px;  // >= 0 inside [lo, hi)
      const float* rows[3];
      for (int a = 0; a < 3; ++a) rows[a] = base[a] ? base[a] + first : nullptr;
      Run3<P, SW, NV, kTail>(rows, w, g.in_px, init, y + ow * g.out_px, g.out_px, valid);
      ow += P;
    };
    // Register blocks: NV * P accumulators and 3 * NV weights.
    constexpr int kMaxP = kManyRegs || NV == 1 ? 8 : 8 / NV;
    while (ow + kMaxP <= hi) run(std::integral_constant<int, kMaxP>());
    if (kMaxP > 4 && ow + 4 <= hi) run(std::integral_constant<int, 4>());
    if (ow + 2 <= hi) run(std::integral_constant<int, 2>());
    if (ow < hi) run(std::integral_constant<int, 1>());
    for (ow = hi; ow < g.out_w; ++ow)
      Edge3<NV, kTail>(base, w, ow * SW - g.pw, g.in_w, g.in_px, init, y + ow * g.out_px, valid);
  }
}

/// Outputs [ow0, ow0 + T) of one output row at w stride SW for the first `vectors` channel
/// vectors (all full), one vector after another: kernel rows in kRows (bit a: row a lies
/// inside the image, base[a] its column 0 at channel 0), wb[v][tap][L] the weights blocked
/// by vector. Column j of the tile is input column ow0 * SW - 1 + j (pw = 1) and feeds
/// output t through tap b where j = SW * t + b; `left` drops column 0 (left of the image),
/// `right` the last. Each output takes its taps in Run3's order (kernel row, then column),
/// with T independent chains.
template <int SW, int T, unsigned kRows>
HWY_NOINLINE void Tile3(const float* const (&base)[3], const float* wb, const float* bias,
                        I vectors, I ow0, bool left, bool right, I in_px, float* y, I out_px) {
  constexpr int kCols = SW * (T - 1) + 3;
  const D d;
  const I L = LanesI();
  const float* col[3];
  TileColumns<SW, kRows>(base, ow0, in_px, col);
  float* out = y + ow0 * out_px;
  for (I v = 0; v < vectors; ++v) {
    const I o = v * L;
    const float* w = wb + v * 9 * L;
    const V init = bias ? hn::LoadU(d, bias + o) : hn::Zero(d);
    V acc[T];
    for (int t = 0; t < T; ++t) acc[t] = init;
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      const V w0 = hn::Load(d, w + (a * 3) * L), w1 = hn::Load(d, w + (a * 3 + 1) * L),
              w2 = hn::Load(d, w + (a * 3 + 2) * L);
      HWY_UNROLL(32)
      for (int j = 0; j < kCols; ++j) {
        if ((j == 0 && left) || (j == kCols - 1 && right)) continue;
        const V x = hn::LoadU(d, col[a] + (j - 1) * in_px + o);
        if (j % SW == 0 && j / SW < T) acc[j / SW] = hn::MulAdd(x, w0, acc[j / SW]);
        if (j >= 1 && (j - 1) % SW == 0 && (j - 1) / SW < T)
          acc[(j - 1) / SW] = hn::MulAdd(x, w1, acc[(j - 1) / SW]);
        if (j >= 2 && (j - 2) % SW == 0 && (j - 2) / SW < T)
          acc[(j - 2) / SW] = hn::MulAdd(x, w2, acc[(j - 2) / SW]);
      }
    }
    for (int t = 0; t < T; ++t) hn::StoreU(acc[t], d, out + t * out_px + o);
  }
}

/// Whether the full vectors of a pass take Tiles3: TileGeometry, and pixels of at least 8
/// vectors. Rows of 28 pixels ran 15-30% slower in tiles, and pixels of 32 and 48 channels
/// 9-13% slower: a tile's loop over the vectors is then too short. The test reads the
/// geometry and the pixel stride, never this call's channels, which src/ops/ cuts by the
/// thread count, so the bits do not depend on it.
template <int SW>
bool TilesFit(const PassGeo& g) {
  return TileGeometry(SW, g.in_w, g.out_w, g.pw, g.in_h, g.out_h, g.sh, g.ph, g.dh) &&
         g.in_px >= 8 * LanesI();
}

/// The first `vectors` channel vectors (all full) of a TilesFit image, row by row in tiles
/// (ForEachTile), each tile taking every vector before the next. Why: Plane3 walks a 7- or
/// 14-pixel row two vectors at a time, paying a row's set-up for a few outputs, and the two
/// vectors' 18 weights do not fit in 16 registers beside the sums; a tile keeps T sums and
/// one kernel row's 3 weights, and reads its pixels' channels in order. At batch 8 (AVX2,
/// Zen 3, 1 and 2 threads, calls alternating in one process) MobileNetV2's 7x7x960 forward
/// takes 20-27% less time, 14x14x384 10-15%, 14x14x576 at stride 2 3-12%; backward-data
/// likewise.
template <int SW>
void Tiles3(const PassGeo& g, I vectors, const float* wb, const float* bias, const float* in,
            float* out) {
  for (I oh = 0; oh < g.out_h; ++oh) {
    const float* base[3];
    unsigned rows = 0;
    for (int a = 0; a < 3; ++a) {
      const I r = oh * g.sh - 1 + a;
      base[a] = r >= 0 && r < g.in_h ? in + r * g.in_row : nullptr;
      rows |= base[a] ? 1u << a : 0u;
    }
    float* y = out + oh * g.out_row;
    ForEachTile<SW>(g.out_w, g.in_w, [&](I ow0, auto width, bool left, bool right) {
      WithRows(rows, [&](auto kept) {
        Tile3<SW, decltype(width)::value, decltype(kept)::value>(
            base, wb, bias, vectors, ow0, left, right, g.in_px, y, g.out_px);
      });
    });
  }
}

/// Every channel vector of one image, two at a time, or all four at once with `whole` (see
/// WholePixels); wt[t] is tap t's repacked weights (Channels layout). With kStream the 'same'
/// rows store without reading the lines first. With `wb` (the weights blocked by vector, given
/// where the pass is TilesFit) the full vectors go through Tiles3 instead.
template <int SW, bool kStream>
void Image3(const PassGeo& g, const Channels& ch, const float* const (&wt)[9], const float* bias,
            const float* in, float* out, bool whole, const float* wb) {
  const I L = LanesI();
  if (whole) {
    Plane3<SW, 4, false, kStream>(g, wt, bias, in, out, 0, L);
    return;
  }
  const I full = ch.o() / L;
  if (wb && full > 0) {  // the caller found the pass TilesFit
    Tiles3<SW>(g, full, wb, bias, in, out);
    if (full < ch.vectors())
      Plane3<SW, 1, true, false>(g, wt, bias, in, out, full * L, ch.valid(full));
    return;
  }
  // Each walk prefetches, on its 'same' rows, the lines the next one reads (same pixels, the
  // next two vectors): 56x56x144 at batch 8 ran its forward and backward-data in 1.7 ms
  // without and 0.9 ms with (AVX2, Zen 3, 1 thread).
  const bool prefetch = PrefetchAhead(g.in_h * g.in_w * ch.o() * static_cast<I>(sizeof(float)));
  // At stride 2 such images go in bands of output rows whose input rows (all of this call's
  // channels) take about 128 KiB, every vector walking a band before the next one starts:
  // walking the whole image per vector pair, each pass swept the image for one line of each
  // pixel. MobileNetV2's 112x112x96 layer at batch 8 took 9-13% less time at 1 thread,
  // 30-40% less at 2; 56x56x144 8-10% (AVX2, Zen 3, calls alternating in one process). At
  // unit stride the bands measured even. Outputs are not reductions: their bits do not
  // depend on the bands.
  I band = g.out_h;
  if (SW == 2 && prefetch) {
    const I rows_bytes = g.sh * g.in_w * ch.o() * static_cast<I>(sizeof(float));
    band = std::clamp<I>((I{128} << 10) / std::max<I>(rows_bytes, 1), 1, g.out_h);
  }
  for (I oh0 = 0; oh0 < g.out_h; oh0 += band) {
    PassGeo b = g;  // output rows [oh0, oh0 + band): row oh of b is row oh0 + oh of g
    b.out_h = std::min(band, g.out_h - oh0);
    b.ph = g.ph - oh0 * g.sh;
    float* o = out + oh0 * g.out_row;
    I v = 0;
    for (; v + 2 <= full; v += 2) {
      if (prefetch && v + 4 <= full)
        Plane3<SW, 2, false, kStream, true>(b, wt, bias, in, o, v * L, L, 2 * L);
      else
        Plane3<SW, 2, false, kStream>(b, wt, bias, in, o, v * L, L);
    }
    for (; v < full; ++v) Plane3<SW, 1, false, kStream>(b, wt, bias, in, o, v * L, L);
    if (v < ch.vectors()) Plane3<SW, 1, true, false>(b, wt, bias, in, o, v * L, ch.valid(v));
  }
}

/// Image3 at unit stride with w dilation dw (dw = 1: one pass, g itself): the outputs of one
/// column residue r (mod dw) read only the input columns of one residue, dw apart, so each
/// residue is an undilated pass over every dw-th column (in_px and out_px times dw), whose
/// padding is the number of its windows' columns left of the image. A dilation-2 'same'
/// layer (padding 2) becomes two 'same' passes with padding 1, on the fast rows.
template <bool kStream>
void ImageDilated(const PassGeo& g, I dw, const Channels& ch, const float* const (&wt)[9],
                  const float* bias, const float* in, float* out, bool whole, const float* wb) {
  for (I r = 0; r < std::min(dw, g.out_w); ++r) {
    const I first = r - g.pw;                    // input column of output r's first tap
    const I c0 = (first % dw + dw) % dw;         // the residue's first column in the image
    PassGeo sub = g;
    sub.in_w = c0 < g.in_w ? (g.in_w - c0 + dw - 1) / dw : 0;
    sub.out_w = (g.out_w - r + dw - 1) / dw;
    sub.pw = (c0 - first) / dw;                  // exact; negative for negative pads
    sub.in_px = dw * g.in_px;
    sub.out_px = dw * g.out_px;
    Image3<1, kStream>(sub, ch, wt, bias, in + c0 * g.in_px, out + r * g.out_px, whole, wb);
  }
}

/// Backward-data of a 'same' 3x3 at w stride 2 (pw = 1, ow = (iw + 1) / 2), multiplier 1:
/// diff_src column 2o takes diff_dst column o through tap 1, column 2o + 1 takes column o
/// through tap 2 and column o + 1 through tap 0; the kernel rows reaching diff_src row ih
/// are those with ih + ph - a a multiple of sh. Each diff_dst column is loaded once per
/// kernel row; nothing in the padding is read or multiplied.
template <int NV, bool kTail, bool kStream>
void PlaneS2BwdData(const Geo& g, const float* const (&wt)[9], const float* dy, float* dx, I o0,
                    I valid) {
  const D d;
  const I L = LanesI();
  V wv[NV][9];
  for (int u = 0; u < NV; ++u)
    for (int t = 0; t < 9; ++t) wv[u][t] = hn::LoadU(d, wt[t] + o0 + u * L);
  for (I ih = 0; ih < g.ih; ++ih) {
    const float* rows[3];
    int ka[3];
    int nr = 0;
    for (int a = 0; a < 3; ++a) {
      const I t = ih + g.ph - a;
      if (t < 0 || t % g.sh != 0 || t / g.sh >= g.oh) continue;
      rows[nr] = dy + t / g.sh * g.dst_row + o0;
      ka[nr++] = a;
    }
    float* y = dx + ih * g.src_row + o0;
    for (I o = 0; o < g.ow; ++o) {
      V even[NV], odd[NV];
      for (int u = 0; u < NV; ++u) even[u] = odd[u] = hn::Zero(d);
      const bool next = o + 1 < g.ow;
      for (int r = 0; r < nr; ++r) {
        const int a = ka[r];
        for (int u = 0; u < NV; ++u) {
          const V x = LoadPx<kTail>(rows[r] + o * g.dst_px + u * L, valid);
          even[u] = hn::MulAdd(x, wv[u][a * 3 + 1], even[u]);
          odd[u] = hn::MulAdd(x, wv[u][a * 3 + 2], odd[u]);
          if (next)
            odd[u] = hn::MulAdd(LoadPx<kTail>(rows[r] + (o + 1) * g.dst_px + u * L, valid),
                                wv[u][a * 3], odd[u]);
        }
      }
      for (int u = 0; u < NV; ++u) {
        float* e = y + 2 * o * g.src_px + u * L;
        if constexpr (kStream) {
          StoreOut<true>(even[u], e);
          if (2 * o + 1 < g.iw) StoreOut<true>(odd[u], e + g.src_px);
        } else {
          StorePx<kTail>(even[u], e, valid);
          if (2 * o + 1 < g.iw) StorePx<kTail>(odd[u], e + g.src_px, valid);
        }
      }
    }
  }
}

/// PlaneS2BwdData over every channel vector of one image, two at a time; kStream stores the
/// full vectors non-temporally.
template <bool kStream>
void ImageS2BwdData(const Geo& g, const Channels& ch, const float* const (&wt)[9],
                    const float* dy, float* dx) {
  const I L = LanesI();
  const I full = ch.o() / L;
  I v = 0;
  for (; v + 2 <= full; v += 2) PlaneS2BwdData<2, false, kStream>(g, wt, dy, dx, v * L, L);
  for (; v < full; ++v) PlaneS2BwdData<1, false, kStream>(g, wt, dy, dx, v * L, L);
  if (v < ch.vectors()) PlaneS2BwdData<1, true, false>(g, wt, dy, dx, v * L, ch.valid(v));
}

/// Bytes the whole pass writes: ConvParams::pass_out_bytes where the dispatcher split it into
/// calls, else this call's `elems` output floats.
inline I PassOutBytes(const ConvParams& p, I elems) {
  return p.pass_out_bytes > 0 ? p.pass_out_bytes : elems * static_cast<I>(sizeof(float));
}

/// Whether a pass stores its output non-temporally: when the whole pass writes 8 MiB or more
/// (a quarter of a 32 MiB last-level cache, which the input shares), and every pixel of this
/// call's output at `out` is vector-aligned. One channel-vector walk writes
/// one or two lines of each pixel, so plain stores read every line for ownership from memory
/// and wrote it back partly filled, once per walk: on AVX2 (Zen 3) MobileNetV2's 112x112x32
/// and 56x56x144 forward layers ran at 2.0 and 2.1 ms with plain stores and at 0.77 and 0.81
/// ms streamed, while a 28x28x192 layer (4.8 MB of output, which the next layer finds in
/// the cache) ran 15% slower streamed.
inline bool StreamOutput(I bytes, const float* out, I px, I row, I image) {
  const auto aligned = [](I floats) { return floats % LanesI() == 0; };
  return bytes >= (I{8} << 20) &&
         reinterpret_cast<std::uintptr_t>(out) % static_cast<std::uintptr_t>(LanesI() * 4) == 0 &&
         aligned(px) && aligned(row) && aligned(image);
}

/// Whether Image3 walks a pixel's channels whole: where they are 4 full vectors (32 channels
/// on AVX2, two lines) and the pass writes 32 MiB or more, so that its input, as large, cannot
/// stay in a 32 MiB last-level cache. Two walks of two vectors each read one line of every
/// pixel, the second walk from memory again: 112x112x32 at batch 32 ran its forward in 7.6
/// ms that way and in 4.7 ms whole (AVX2, Zen 3, 1 thread). Where the input stays in the cache
/// (batch 8), the two walks are faster: 4 vectors' weights do not fit in 16 registers.
inline bool WholePixels(I bytes, const Channels& ch) {
  return !kManyRegs && ch.o() == 4 * LanesI() && bytes >= (I{32} << 20);
}

/// For a TilesFit pass of unit w dilation not streamed, the full vectors' weights blocked by
/// vector for Tiles3, wb[v][tap][L] = wt[tap][v * L + l]; otherwise null.
template <int SW>
hwy::AlignedFreeUniquePtr<float[]> TileWeights(const PassGeo& g, I dw, bool stream,
                                               const Channels& ch, const float* const (&wt)[9]) {
  const I L = LanesI(), full = ch.o() / L;
  if (stream || dw != 1 || full == 0 || !TilesFit<SW>(g)) return nullptr;
  auto wb = hwy::AllocateAligned<float>(static_cast<std::size_t>(full * 9 * L));
  for (I v = 0; v < full; ++v)
    for (int t = 0; t < 9; ++t)
      std::copy(wt[t] + v * L, wt[t] + v * L + L, wb.get() + (v * 9 + t) * L);
  return wb;
}

void FwdK3(const ConvParams& p, const float* src, const float* wei, const float* bias,
           float* dst) {
  const Geo g = GeoOf(p);
  Channels ch(p, 9);
  ch.Repack(p, wei);
  const std::vector<float> padded = PaddedBias(ch, bias);
  const float* b = bias ? padded.data() : nullptr;
  const PassGeo k3{g.ih,      g.iw,      g.oh,      g.ow,      g.sh, g.ph, g.pw,
                   g.src_row, g.src_px,  g.dst_row, g.dst_px,  g.dh};
  const float* wt[9];
  for (int t = 0; t < 9; ++t) wt[t] = ch.weights(t);
  const I bytes = PassOutBytes(p, p.mb * g.oh * g.ow * ch.o());
  const bool stream = StreamOutput(bytes, dst, g.dst_px, g.dst_row, p.dst_s[0]);
  const bool whole = WholePixels(bytes, ch);
  const auto wb = g.sw == 2 ? TileWeights<2>(k3, g.dw, stream, ch, wt)
                            : TileWeights<1>(k3, g.dw, stream, ch, wt);
  for (I n = 0; n < p.mb; ++n) {
    const float* x = src + n * p.src_s[0];
    float* y = dst + n * p.dst_s[0];
    if (stream)
      g.sw == 2 ? Image3<2, true>(k3, ch, wt, b, x, y, whole, wb.get())
                : ImageDilated<true>(k3, g.dw, ch, wt, b, x, y, whole, wb.get());
    else
      g.sw == 2 ? Image3<2, false>(k3, ch, wt, b, x, y, whole, wb.get())
                : ImageDilated<false>(k3, g.dw, ch, wt, b, x, y, whole, wb.get());
  }
  if (stream) hwy::FlushStream();
}

void BwdDataK3(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Geo g = GeoOf(p);
  Channels ch(p, 9);
  ch.Repack(p, wei);
  const float* wt[9];
  const I bytes = PassOutBytes(p, p.mb * g.ih * g.iw * ch.o());
  const bool stream = StreamOutput(bytes, diff_src, g.src_px, g.src_row, p.src_s[0]);
  const bool whole = WholePixels(bytes, ch);
  if (g.sw == 2) {
    for (int t = 0; t < 9; ++t) wt[t] = ch.weights(t);
    for (I n = 0; n < p.mb; ++n) {
      const float* dy = diff_dst + n * p.dst_s[0];
      float* dx = diff_src + n * p.src_s[0];
      stream ? ImageS2BwdData<true>(g, ch, wt, dy, dx) : ImageS2BwdData<false>(g, ch, wt, dy, dx);
    }
    if (stream) hwy::FlushStream();
    return;
  }
  // Unit stride: the forward of diff_dst with the kernel turned half a turn, which pads
  // dilation * 2 - pad on each side.
  const PassGeo k3{g.oh,      g.ow,     g.ih,      g.iw,     1,   2 * g.dh - g.ph, 2 * g.dw - g.pw,
                   g.dst_row, g.dst_px, g.src_row, g.src_px, g.dh};
  for (int t = 0; t < 9; ++t) wt[t] = ch.weights(8 - t);
  const auto wb = TileWeights<1>(k3, g.dw, stream, ch, wt);
  for (I n = 0; n < p.mb; ++n) {
    const float* dy = diff_dst + n * p.dst_s[0];
    float* dx = diff_src + n * p.src_s[0];
    stream ? ImageDilated<true>(k3, g.dw, ch, wt, nullptr, dy, dx, whole, wb.get())
           : ImageDilated<false>(k3, g.dw, ch, wt, nullptr, dy, dx, whole, wb.get());
  }
  if (stream) hwy::FlushStream();
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(FwdK3);
HWY_EXPORT(BwdDataK3);

bool dwconv_nhwc_k3_supports(const ConvParams& p) {
  if (!dwconv_nhwc_supports(p) || p.ocg != 1 || p.k[1] != 3 || p.k[2] != 3) return false;
  const bool unit = p.stride[1] == 1 && p.stride[2] == 1;  // any dilation
  const bool same_s2 = p.dilation[1] == 1 && p.dilation[2] == 1 && p.stride[2] == 2 &&
                       p.pad[2] == 1 && p.in[2] >= 2 && p.out[2] == (p.in[2] + 1) / 2;
  return unit || same_s2;
}

void dwconv_nhwc_k3_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                            const float* bias, float* dst) {
  HWY_DYNAMIC_DISPATCH(FwdK3)(p, src, wei, bias, dst);
}

void dwconv_nhwc_k3_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                 float* diff_src) {
  HWY_DYNAMIC_DISPATCH(BwdDataK3)(p, diff_dst, wei, diff_src);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
