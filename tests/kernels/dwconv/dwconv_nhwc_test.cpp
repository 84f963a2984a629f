// The channels-last depthwise kernels (the tap-list engine and the 3x3 and wide strategies)
// against the reference on every SIMD target compiled in (AVX-512, AVX2, scalar), every pass
// each implements, on random problems and on the shapes that stress channel tails,
// multipliers, 'same' rows and large windows.
#include <gtest/gtest.h>

#include <hwy/aligned_allocator.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv/conv_list.hpp"
#include "kernels/dwconv/dwconv_test_util.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/conv_random.hpp"

namespace convkit {
namespace {

using kernels::ConvKernel;
using test::I;
using test::KernelProblem;

// Every channels-last entry of the list: the tap-list engine and the 3x3 and wide strategies.
std::vector<const ConvKernel<float>*> nhwc_kernels() {
  std::vector<const ConvKernel<float>*> out;
  for (const auto& k : kernels::conv_kernels<float>())
    if (std::string(k.name).rfind("dwconv2d_f32_nhwc", 0) == 0) out.push_back(&k);
  if (out.size() < 5) throw std::logic_error("the channels-last depthwise kernels are not listed");
  return out;
}

TEST(DwconvNhwc, EveryTargetAgreesWithTheReference) {
  const auto kernels = nhwc_kernels();
  const auto& ref = kernels::conv_kernels<float>().back();
  // At least `count` problems, and more until every strategy has run on `each` of them (the
  // 3x3 one takes about one draw in twenty).
  const int count = test::sweep_size(150, 3000), each = test::sweep_size(30, 600);
  std::string targets;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    targets += std::string(targets.empty() ? "" : " ") + hwy::TargetName(target);
    std::mt19937_64 rng(17);
    int ran = 0;
    std::map<std::string, int> per_kernel;
    auto enough = [&] {
      if (ran < count) return false;
      for (const auto* kernel : kernels)
        if (per_kernel[kernel->name] < each) return false;
      return true;
    };
    for (int tries = 0; !enough() && tries < 100000; ++tries) {
      KernelProblem kp = test::random_kernel_problem(rng, test::Family::Depthwise);
      if (kp.nd == 3) continue;
      // Lay every problem out channels-last (the generator draws NCHW too).
      auto& p = kp.p;
      test::detail::lay_out(rng, p.mb, p.g, p.in, true, kp.view, p.src_s, kp.src);
      test::detail::lay_out(rng, p.mb, p.g * p.ocg, p.out, true, kp.view, p.dst_s, kp.dst);
      if (!kernels.back()->supports(p)) continue;  // the tap-list engine takes them all
      ++ran;
      for (const auto* kernel : kernels) {
        if (!kernel->supports(p)) continue;
        ++per_kernel[kernel->name];
        EXPECT_EQ(test::compare_exact(*kernel, ref, kp, rng), "")
            << kernel->name << " on " << kp.str() << " (" << hwy::TargetName(target) << ")";
      }
    }
    EXPECT_GE(ran, count);
    for (const auto* kernel : kernels)
      EXPECT_GE(per_kernel[kernel->name], each) << kernel->name << " (" << hwy::TargetName(target) << ")";
  }
  hwy::SetSupportedTargetsForTest(0);
  RecordProperty("targets", targets);
}

// Shapes the random draw seldom reaches: many channels with tails around 8 and 16 lanes and
// multipliers 2-5 (the permuted src lanes), large kernels over small images (every column
// an edge), stride above the kernel, width 1, and kernel widths around the backward-weights
// register blocks (8 and 16 columns), and long rows for the kernel-row runs.
TEST(DwconvNhwc, RareShapesAgreeWithTheReference) {
  const auto kernels = nhwc_kernels();
  const auto& ref = kernels::conv_kernels<float>().back();
  const test::DwShape shapes[] = {
      {23, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},
      {17, 5, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1},
      {33, 2, 5, 8, 5, 5, 1, 2, 2, 2, 1, 1},
      {20, 1, 28, 28, 31, 31, 1, 1, 15, 15, 1, 1},
      {40, 1, 12, 20, 13, 13, 1, 1, 6, 6, 1, 1},
      {9, 4, 10, 10, 3, 3, 4, 4, 0, 0, 1, 1},
      {31, 1, 9, 1, 3, 3, 1, 1, 1, 1, 1, 1},
      {15, 2, 6, 30, 1, 17, 1, 1, 0, 8, 1, 1},
      {16, 1, 5, 40, 3, 9, 1, 1, 1, 4, 1, 1},
      {64, 1, 4, 22, 2, 15, 1, 1, 0, 7, 1, 2},
      {48, 1, 14, 14, 3, 3, 2, 2, 1, 1, 2, 2},
      {7, 1, 3, 3, 7, 7, 1, 1, 3, 3, 1, 1},
      // Wide rows at unit w stride (3-wide kernels take the kernel-row runs),
      // a multiplier, and widths that no block size 6-8 divides.
      {24, 1, 5, 45, 5, 5, 1, 1, 2, 2, 1, 1},
      {20, 2, 4, 30, 3, 7, 1, 1, 1, 3, 1, 1},
      {17, 1, 3, 61, 3, 3, 1, 1, 1, 1, 1, 1},
      {32, 3, 6, 28, 3, 3, 2, 1, 1, 1, 1, 1},
      // The 3x3 path (multiplier 1, unit dilation): an image smaller than the kernel, only a
      // tail vector, padding 2 and 3 (backward-data's turned kernel pads 0 and -1), w stride
      // 2 on odd and even widths, h stride 3, and rows long enough for every block size
      // (8, 4, 2, 1) between the edge columns.
      {17, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},
      {33, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1},
      {3, 1, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1},
      {16, 1, 9, 9, 3, 3, 1, 1, 2, 2, 1, 1},
      {15, 1, 8, 8, 3, 3, 1, 1, 3, 3, 1, 1},
      {48, 1, 13, 17, 3, 3, 2, 2, 1, 1, 1, 1},
      {16, 1, 4, 12, 3, 3, 2, 2, 1, 1, 1, 1},
      {40, 1, 11, 29, 3, 3, 3, 2, 1, 1, 1, 1},
      {24, 1, 7, 7, 3, 3, 1, 2, 0, 0, 1, 1},
      {31, 1, 6, 40, 3, 3, 1, 1, 1, 1, 1, 1},
      {20, 1, 5, 47, 3, 3, 2, 2, 1, 1, 1, 1},
      // Dilation at unit stride (one undilated pass per column residue): 'same' at 2, 3 in w
      // only, dilation past the width, and padding past 2 * dilation (backward-data's turned
      // kernel pads negatively).
      {24, 1, 9, 11, 3, 3, 1, 1, 2, 2, 2, 2},
      {17, 1, 7, 13, 3, 3, 1, 1, 1, 3, 1, 3},
      {16, 1, 5, 4, 3, 3, 1, 1, 3, 5, 3, 3},
      {9, 1, 6, 7, 3, 3, 1, 1, 5, 5, 2, 2},
      // 'Same' rows (padding 1, every output column; backward-weights runs them whole, at
      // stride 2 on 16-register targets): unit stride and stride 2 on odd and even widths
      // down to 2, two channel vectors at a time and a lone one.
      {48, 1, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1},
      {32, 1, 6, 10, 3, 3, 1, 2, 1, 1, 1, 1},
      {16, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1},
      {48, 1, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1},
      {16, 1, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1},
      {33, 1, 11, 11, 3, 3, 3, 2, 1, 1, 1, 1},
      {24, 1, 5, 3, 3, 3, 2, 2, 1, 1, 2, 1},  // width 3 at stride 2, h dilation 2
      // 5- and 7-wide kernel rows as runs (forward RowRun, backward-weights RunImage:
      // multiplier 1, unit w dilation): w stride 2 with padding up to kw - 1 on odd and even
      // widths (blocks of 8, 7 and short ones; 17 and 3 outputs keep backward-weights' old
      // path), an image narrower than the kernel, a tail vector; unit w stride under h
      // dilation (also backward-data); a multiplier keeps single taps.
      {33, 1, 9, 33, 5, 5, 2, 2, 2, 2, 1, 1},
      {17, 1, 8, 28, 5, 5, 2, 2, 4, 4, 1, 1},
      {24, 1, 11, 31, 7, 7, 2, 2, 3, 3, 1, 1},
      {16, 1, 6, 3, 7, 7, 2, 2, 6, 6, 1, 1},
      {40, 1, 7, 17, 5, 7, 1, 2, 2, 1, 1, 1},
      {20, 1, 13, 23, 5, 5, 1, 1, 2, 2, 2, 1},
      {9, 1, 12, 16, 7, 7, 1, 1, 3, 3, 2, 1},
      {8, 2, 9, 19, 5, 5, 2, 2, 2, 2, 1, 1},
      {20, 1, 13, 21, 5, 5, 1, 1, 2, 2, 2, 1},
      {12, 1, 9, 6, 5, 5, 2, 2, 2, 2, 1, 1},
      {7, 1, 10, 13, 7, 5, 2, 2, 3, 2, 1, 1},
      // Rows of at most 16 outputs in images of several bands (backward-weights' RowSums
      // without RowSumsImages): pairs of vectors and a lone one, at w stride 1 and 2.
      {40, 1, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1},
      {24, 1, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1},
      // Rows of at most 16 input pixels with 'same' padding in tiles of pixels, every vector
      // of a tile before the next tile (Tiles3, WeightTileImages): one tile of 7 and a tail
      // vector, 7 + 7 (a tail on AVX-512), width and height 2, 8 + 8, 5 + 5, stride 2 on even
      // and odd widths (the last column right of the image), width 3 at stride 2 with an odd
      // height, h stride 3, and 48 channels (backward-weights only: the forward's tiles want
      // 64 on AVX2).
      {67, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},
      {136, 1, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1},
      {64, 1, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1},
      {72, 1, 5, 16, 3, 3, 1, 1, 1, 1, 1, 1},
      {80, 1, 3, 10, 3, 3, 1, 1, 1, 1, 1, 1},
      {64, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1},
      {130, 1, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1},
      {64, 1, 9, 3, 3, 3, 2, 2, 1, 1, 1, 1},
      {96, 1, 8, 6, 3, 3, 3, 2, 1, 1, 1, 1},
      {48, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},
      // Images of 1 MiB and more, where backward-weights prefetches the next vectors' lines
      // ('same' rows at stride 1 and 2, a channel tail past the last prefetched line).
      {52, 1, 73, 70, 3, 3, 1, 1, 1, 1, 1, 1},
      {44, 1, 81, 77, 3, 3, 2, 2, 1, 1, 1, 1},
      // ... where the stride-2 forward goes in bands of output rows: of one row ('same'
      // rows, a lone vector after the pairs), and of several without padding (the bands'
      // top padding negative).
      {200, 1, 33, 41, 3, 3, 2, 2, 1, 1, 1, 1},
      {96, 1, 61, 50, 3, 3, 2, 2, 0, 0, 1, 1},
      // The wide path (unit stride and dilation, multiplier 1): chunks of taps with a
      // remainder of every size, kernels wider than the image, blocks of every width along
      // rows of 29 and 1, a tail vector, and padding past kw - 1 (backward-data's turned
      // kernel pads negatively).
      {17, 1, 7, 29, 5, 5, 1, 1, 2, 2, 1, 1},
      {16, 1, 9, 29, 7, 9, 1, 1, 3, 4, 1, 1},
      {5, 1, 6, 6, 13, 13, 1, 1, 6, 6, 1, 1},
      {33, 1, 3, 1, 1, 11, 1, 1, 0, 5, 1, 1},
      {16, 1, 5, 40, 3, 6, 1, 1, 1, 7, 1, 1},
      {32, 1, 28, 28, 31, 31, 1, 1, 15, 15, 1, 1},
  };
  std::mt19937_64 rng(3);
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const test::DwShape& s : shapes) {
      const KernelProblem kp = test::dw_problem(s, true, rng);
      const auto& p = kp.p;
      ASSERT_TRUE(kernels.back()->supports(p)) << kp.str();
      for (const auto* kernel : kernels) {
        if (!kernel->supports(p)) continue;
        EXPECT_EQ(test::compare_exact(*kernel, ref, kp, rng), "")
            << kernel->name << " on " << kp.str() << " (" << hwy::TargetName(target) << ")";
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The 3x3 strategy stores the outputs of large passes non-temporally (forward, and
// backward-data at unit stride and at stride 2). pass_out_bytes says how large the whole
// pass is, so small images take that path here, on every target, with vector-aligned
// buffers: channels that fill whole vectors, and 40 channels in 48-float pixels (a tail
// vector on AVX-512, whose lanes keep plain stores). Passes that large also walk 32-channel
// pixels whole on AVX2 (WholePixels), streamed or not. Integer values, exact comparison.
TEST(DwconvNhwc, LargeOutputsStoredNonTemporallyAgreeWithTheReference) {
  const ConvKernel<float>* k3 = nullptr;
  for (const auto* k : nhwc_kernels())
    if (std::string(k->name) == "dwconv2d_f32_nhwc_k3__hwy") k3 = k;
  ASSERT_NE(k3, nullptr);
  const auto& ref = kernels::conv_kernels<float>().back();
  std::mt19937_64 rng(5);
  auto fill = [&](float* p, I n) {
    for (I i = 0; i < n; ++i) p[i] = static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng));
  };
  struct Case {
    test::DwShape shape;
    I px;  // floats per pixel, >= channels
  };
  const Case cases[] = {{{64, 1, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1}, 64},
                        {{48, 1, 10, 17, 3, 3, 2, 2, 1, 1, 1, 1}, 48},
                        {{40, 1, 7, 12, 3, 3, 1, 2, 1, 1, 1, 1}, 48},
                        {{32, 1, 6, 8, 3, 3, 1, 1, 0, 2, 1, 1}, 32},
                        // 32 channels: on AVX2 a pass this large walks each pixel whole
                        // ('same' rows at stride 1 and 2, dilation, pixels not aligned).
                        {{32, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1}, 32},
                        {{32, 1, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1}, 32},
                        {{32, 1, 7, 10, 3, 3, 1, 1, 2, 2, 2, 2}, 32},
                        {{32, 1, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1}, 36}};
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const Case& cs : cases) {
      KernelProblem kp = test::dw_problem(cs.shape, true, rng);
      auto& p = kp.p;
      const I c = p.g, ih = p.in[1], iw = p.in[2], oh = p.out[1], ow = p.out[2];
      p.src_s = {ih * iw * cs.px, 1, ih * iw * cs.px, iw * cs.px, cs.px};
      p.dst_s = {oh * ow * cs.px, 1, oh * ow * cs.px, ow * cs.px, cs.px};
      p.pass_out_bytes = I{1} << 30;
      ASSERT_TRUE(k3->supports(p)) << kp.str();
      const I src_n = p.mb * ih * iw * cs.px, dst_n = p.mb * oh * ow * cs.px;
      auto src = hwy::AllocateAligned<float>(static_cast<std::size_t>(src_n));
      auto dst = hwy::AllocateAligned<float>(static_cast<std::size_t>(dst_n));
      auto wei = hwy::AllocateAligned<float>(static_cast<std::size_t>(9 * c));
      auto bias = hwy::AllocateAligned<float>(static_cast<std::size_t>(c));
      auto got = hwy::AllocateAligned<float>(static_cast<std::size_t>(std::max(src_n, dst_n)));
      auto want = hwy::AllocateAligned<float>(static_cast<std::size_t>(std::max(src_n, dst_n)));
      fill(src.get(), src_n);
      fill(dst.get(), dst_n);
      fill(wei.get(), 9 * c);
      fill(bias.get(), c);
      // The gaps between pixels must survive: both sides start from the same bits.
      auto count_wrong = [&](I n) {
        I wrong = 0;
        for (I i = 0; i < n; ++i) wrong += got[static_cast<std::size_t>(i)] != want[static_cast<std::size_t>(i)];
        return wrong;
      };
      const std::string where = kp.str() + " (" + hwy::TargetName(target) + ")";
      std::fill(got.get(), got.get() + dst_n, 7.0f);
      std::fill(want.get(), want.get() + dst_n, 7.0f);
      k3->fwd(p, src.get(), wei.get(), bias.get(), got.get());
      ref.fwd(p, src.get(), wei.get(), bias.get(), want.get());
      EXPECT_EQ(count_wrong(dst_n), 0) << "forward of " << where;
      std::fill(got.get(), got.get() + src_n, 7.0f);
      std::fill(want.get(), want.get() + src_n, 7.0f);
      k3->bwd_data(p, dst.get(), wei.get(), got.get());
      ref.bwd_data(p, dst.get(), wei.get(), want.get());
      EXPECT_EQ(count_wrong(src_n), 0) << "backward-data of " << where;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace convkit
