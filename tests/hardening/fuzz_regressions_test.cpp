// Inputs the fuzzers (fuzz/, docs/hardening.md) found to crash or misbehave, replayed through
// the public API: each is now refused with InvalidArgument or handled exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/ops/conv.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using test::expect_error;
using I = std::int64_t;
constexpr I kMax = std::numeric_limits<I>::max();

// fuzz/corpus/state_dict/counter-f64-2p63: 2^63 passed the range check `v <= (double)INT64_MAX`
// (that double is 2^63) and the cast to int64 was undefined (x86 gave INT64_MIN).
TEST(FuzzRegressions, DoubleTwoTo63DoesNotFitInt64) {
  expect_error<InvalidArgument>([] { Tensor::from_values({1}, {0x1p63}, DType::I64); },
                                {"does not fit in I64"});
  expect_error<InvalidArgument>([] { Tensor::full({2}, -0x1p63 * 2, DType::I64); },
                                {"does not fit in I64"});
  expect_error<InvalidArgument>([] { Tensor::from_values({1}, {256.0}, DType::U8); },
                                {"256", "does not fit in U8"});
  // The edges that do fit still convert exactly.
  const Tensor t = Tensor::from_values({3}, {0x1p63 - 1024, -0x1p63, 255.0}, DType::I64);
  EXPECT_EQ(t.data<I>()[0], kMax - 1023);
  EXPECT_EQ(t.data<I>()[1], std::numeric_limits<I>::min());
  EXPECT_EQ(Tensor::from_values({1}, {255.0}, DType::U8).data<std::uint8_t>()[0], 255);
}

/// Conv2d(2, 3, 3) -> BatchNorm2d(3) -> Flatten -> Linear(12, 2), as in fuzz/state_dict_fuzz.cpp.
std::unique_ptr<nn::Sequential> small_model() {
  auto net = std::make_unique<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 2, .out = 3, .kernel = 3}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 3}));
  net->push_back(std::make_shared<nn::Flatten>());
  net->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 12, .out = 2}));
  return net;
}

// fuzz/corpus/state_dict/counter-f64-nan: load_state_dict copied key by key, so a value that
// failed to convert (NaN into the int64 counter) left the keys before it already overwritten.
TEST(FuzzRegressions, LoadStateDictRefusesUnconvertibleValuesBeforeChangingAnything) {
  for (const double bad : {std::nan(""), -HUGE_VAL, 0x1p63}) {
    auto net = small_model();
    const Tensor before = net->state_dict()[0].second.clone();  // "0.weight"
    nn::StateDict state = {{"0.weight", Tensor::full({3, 2, 3, 3}, 0.5)},
                           {"1.num_batches_tracked", Tensor::full({}, bad, DType::F64)}};
    // Through the file format too: the bytes a fuzzer would hand over.
    state = io::parse_safetensors(io::serialize_safetensors(state)).tensors;
    expect_error<InvalidArgument>(
        [&] { net->load_state_dict(state, false); },
        {"load_state_dict into Sequential", "'1.num_batches_tracked'", "does not fit in I64"});
    EXPECT_TRUE(allclose(net->state_dict()[0].second, before)) << "0.weight changed, bad " << bad;
  }
  // A convertible value still loads, converted.
  auto net = small_model();
  net->load_state_dict({{"1.num_batches_tracked", Tensor::full({}, 7.0, DType::F64)}}, false);
  EXPECT_EQ(net->state_dict()[6].second.data<I>()[0], 7);
}

// fuzz/corpus/conv_args/crash-transposed-padding-overflow: output size = grown - before - after
// overflowed int64 for huge explicit paddings of a transposed convolution.
TEST(FuzzRegressions, TransposedConvHugePaddingIsRefused) {
  const I huge = (I{1} << 62) + (I{1} << 61);
  expect_error<InvalidArgument>(
      [&] {
        ConvProblem::make(Shape{1, 1, 3, 3}, Shape{1, 1, 3, 3}, std::nullopt,
                          {.padding = Padding::asymmetric({huge, 0}, {huge, 0})}, true);
      },
      {"conv_transpose padding", "overflows int64"});
  // One huge side alone gives a clear "not positive" refusal.
  expect_error<InvalidArgument>(
      [&] {
        ConvProblem::make(Shape{1, 1, 3, 3}, Shape{1, 1, 3, 3}, std::nullopt,
                          {.padding = Padding::asymmetric({kMax, 0}, {0, 0})}, true);
      },
      {"output size", "is not positive in spatial dimension 0"});
}

// Found reading the code beside the crash above: "same" padding with stride > 1 computed
// ceil(in / stride) as (in + stride - 1) / stride, which overflows for a huge stride.
TEST(FuzzRegressions, SamePaddingWithHugeStride) {
  const ConvProblem p = ConvProblem::make(Shape{1, 1, I{1} << 60}, Shape{1, 1, 1}, std::nullopt,
                                          {.stride = {kMax}, .padding = Padding::same()});
  EXPECT_EQ(p.out[0], 1);
  EXPECT_EQ(p.pad_before[0], 0);
  EXPECT_EQ(p.pad_after[0], 0);
}

// fuzz/corpus/safetensors/crash-strides-overflow: shape [2^62, 0, 4] holds no bytes, so the
// size check passed, but its strides (sizes multiplied with 0 counted as 1) overflow and
// Tensor::empty threw InvalidArgument out of a parser documented to throw FormatError.
TEST(FuzzRegressions, SafetensorsShapeWithoutStridesIsAFormatError) {
  const std::string header =
      R"({"x":{"dtype":"U8","shape":[4611686018427387904,0,4],"data_offsets":[0,0]}})";
  std::vector<std::uint8_t> bytes(8);
  bytes[0] = static_cast<std::uint8_t>(header.size());
  bytes.insert(bytes.end(), header.begin(), header.end());
  expect_error<FormatError>([&] { io::parse_safetensors(bytes, "f"); },
                            {"tensor 'x'", "[4611686018427387904, 0, 4]", "no strides"});
  // The largest layout that fits still loads (empty).
  const std::string ok =
      R"({"x":{"dtype":"U8","shape":[0,2,4611686018427387903],"data_offsets":[0,0]}})";
  std::vector<std::uint8_t> fine(8);
  fine[0] = static_cast<std::uint8_t>(ok.size());
  fine.insert(fine.end(), ok.begin(), ok.end());
  EXPECT_EQ(io::parse_safetensors(fine).at("x").shape(), Shape({0, 2, 4611686018427387903}));
}

// fuzz/corpus/conv_args/crash-zero-out-channels: with 0 output channels the empty tensors'
// null data pointers were offset (undefined behaviour) on the way to the kernel. Empty
// outputs are now returned at once and empty sums (no input channels) give the bias.
TEST(FuzzRegressions, ConvolutionsWithEmptyTensors) {
  const Tensor x = Tensor::uniform({2, 3, 5, 5}, -1, 1, 1);
  const Tensor none = conv2d(x, Tensor::empty({0, 3, 3, 3}));
  EXPECT_EQ(none.shape(), Shape({2, 0, 3, 3}));
  // No input channels: every output is an empty sum, so it is the bias.
  const Tensor b = Tensor::from_values({2}, {0.5, -2});
  const Tensor y = conv2d(Tensor::empty({1, 0, 4, 4}), Tensor::empty({2, 0, 3, 3}), b);
  ASSERT_EQ(y.shape(), Shape({1, 2, 2, 2}));
  for (I i = 0; i < 8; ++i) EXPECT_EQ(y.data<float>()[i], i < 4 ? 0.5f : -2.0f);
  const Tensor t = conv_transpose2d(Tensor::empty({1, 0, 2, 2}), Tensor::empty({0, 2, 3, 3}), b);
  ASSERT_EQ(t.shape(), Shape({1, 2, 4, 4}));
  EXPECT_EQ(t.data<float>()[15], 0.5f);
  EXPECT_EQ(t.data<float>()[16], -2.0f);
  // Only padding: an empty input padded to 2x2 gives zeros.
  const Tensor z =
      conv2d(Tensor::empty({1, 1, 0, 0}), Tensor::ones({1, 1, 1, 1}), {}, {.padding = 1});
  ASSERT_EQ(z.shape(), Shape({1, 1, 2, 2}));
  for (I i = 0; i < 4; ++i) EXPECT_EQ(z.data<float>()[i], 0.0f);
}

// fuzz/corpus/conv_args/crash-huge-stride-nhwc: im2col tested `stride * channel stride == 1`
// for its plain-copy path, which overflows for a huge stride on a channels-last input (the
// overflow is visible under CONVKIT_SANITIZE; the result was right by luck).
TEST(FuzzRegressions, HugeStrideOnChannelsLastInput) {
  const Tensor x = Tensor::uniform({1, 3, 5, 5}, -1, 1, 4).to(MemoryFormat::ChannelsLast);
  const Tensor w = Tensor::uniform({2, 3, 3, 3}, -1, 1, 5);
  const Tensor y = conv2d(x, w, {}, {.stride = {(I{1} << 62) + 1}});
  ASSERT_EQ(y.shape(), Shape({1, 2, 1, 1}));
  const Tensor all = conv2d(x, w).contiguous();  // (1, 2, 3, 3): its (0, 0) pixels
  const Tensor yc = y.contiguous();
  EXPECT_FLOAT_EQ(yc.data<float>()[0], all.data<float>()[0]);
  EXPECT_FLOAT_EQ(yc.data<float>()[1], all.data<float>()[9]);
}

// fuzz/corpus/conv_args/crash-huge-stride-padding: im2col's first valid output position,
// ceil(pad / stride), was computed as (pad + stride - 1) / stride, which overflows for a huge
// stride (visible under CONVKIT_SANITIZE). With any stride above the padded input only the
// first output exists, so a huge stride must give what stride 100 gives.
TEST(FuzzRegressions, HugeStrideWithPadding3d) {
  const Tensor x = Tensor::uniform({1, 2, 1, 4, 4}, -1, 1, 6);
  const Tensor w = Tensor::uniform({2, 2, 2, 2, 1}, -1, 1, 7);
  const ConvOptions huge{.stride = {kMax}, .padding = {4, 1, 5}};
  const ConvOptions hundred{.stride = {100}, .padding = {4, 1, 5}};
  const Tensor a = conv3d(x, w, {}, huge), b = conv3d(x, w, {}, hundred);
  ASSERT_EQ(a.shape(), Shape({1, 2, 1, 1, 1}));
  EXPECT_TRUE(allclose(a, b));
  // Padding only on the left of a row whose one output reads inside the image.
  const Tensor c = conv3d(x, w, {}, {.stride = {kMax}, .padding = {1, 0, 1}});
  const Tensor d = conv3d(x, w, {}, {.stride = {100}, .padding = {1, 0, 1}});
  EXPECT_TRUE(allclose(c, d));
}

// fuzz/corpus/conv_args/crash-dwconv-floordiv: the depthwise kernels' FloorDiv computed
// -((-a + b - 1) / b), which overflows for a huge stride b (visible under CONVKIT_SANITIZE).
// One input channel, two outputs: a depthwise convolution with multiplier 2.
TEST(FuzzRegressions, HugeStrideDepthwise) {
  const Tensor x = Tensor::uniform({1, 1, 5, 5}, -1, 1, 8);
  const Tensor w = Tensor::uniform({2, 1, 3, 2}, -1, 1, 9);
  const Tensor a = conv2d(x, w, {}, {.stride = {kMax}, .padding = 5, .dilation = {4}});
  const Tensor b = conv2d(x, w, {}, {.stride = {100}, .padding = 5, .dilation = {4}});
  ASSERT_EQ(a.shape(), Shape({1, 2, 1, 1}));
  EXPECT_TRUE(allclose(a, b));
}

// fuzz/corpus/conv_args/crash-dwconv-nhwc-step: the channels-last depthwise kernel computed
// the step between neighbouring outputs' pixels, stride x channels, which overflows for a huge
// stride although a stride that large leaves one output (visible under CONVKIT_SANITIZE).
TEST(FuzzRegressions, HugeStrideDepthwiseChannelsLast) {
  const Tensor x = Tensor::uniform({2, 4, 2, 4}, -1, 1, 10).to(MemoryFormat::ChannelsLast);
  const Tensor w = Tensor::uniform({4, 1, 3, 2}, -1, 1, 11);
  const I huge = (I{1} << 62) + 1;
  const Tensor a = conv2d(x, w, {}, {.stride = {huge}, .padding = 7, .groups = 4});
  const Tensor b = conv2d(x, w, {}, {.stride = {100}, .padding = 7, .groups = 4});
  ASSERT_EQ(a.shape(), Shape({2, 4, 1, 1}));
  EXPECT_TRUE(allclose(a, b));
  // Transposed (the backward-data kernel): a huge stride spreads the inputs far apart.
  const Tensor xt = Tensor::uniform({1, 4, 1, 1}, -1, 1, 12).to(MemoryFormat::ChannelsLast);
  const Tensor t = conv_transpose2d(xt, w, {}, {.stride = {huge}, .groups = 4});
  const Tensor u = conv_transpose2d(xt, w, {}, {.stride = {100}, .groups = 4});
  EXPECT_TRUE(allclose(t, u));
}

// fuzz/corpus/conv_args/crash-dwconv-nhwc-transposed-count: the channels-last depthwise
// backward-data kernel (transposed convolutions run it) counted a phase's columns as
// (iw - r + sw - 1) / sw and tested divisibility as FloorDiv(t, s) * s == t; both overflow
// for a huge stride (visible under CONVKIT_SANITIZE). A single input column makes any
// stride give the same output.
TEST(FuzzRegressions, HugeStrideTransposedDepthwiseChannelsLast) {
  const Tensor x = Tensor::uniform({2, 6, 1}, -1, 1, 13).to(MemoryFormat::ChannelsLast);
  const Tensor w = Tensor::uniform({6, 1, 16}, -1, 1, 14);
  const ConvOptions huge{.stride = {kMax}, .dilation = {5}, .output_padding = {4}};
  const ConvOptions hundred{.stride = {100}, .dilation = {5}, .output_padding = {4}};
  const Tensor a = conv_transpose1d(x, w, {}, huge), b = conv_transpose1d(x, w, {}, hundred);
  ASSERT_EQ(a.shape(), Shape({2, 1, 80}));
  EXPECT_TRUE(allclose(a, b));
}

// fuzz/corpus/conv_args/crash-dwconv-nchw-huge-padding: the NCHW depthwise row kernel formed
// a pointer to input row -padding (kernel row 0) before skipping the rows outside the image;
// with a huge padding the offset overflowed. Padding p before and dilation p make kernel row
// 0 read row oy - p (always padding here) and row 1 read row oy, for any p >= 8.
TEST(FuzzRegressions, HugePaddingAndDilationDepthwise) {
  const Tensor x = Tensor::uniform({1, 1, 6, 6}, -1, 1, 15);
  const Tensor w = Tensor::uniform({1, 1, 2, 2}, -1, 1, 16);
  auto run = [&](I p) {
    return conv2d(x, w, {}, {.padding = Padding::asymmetric({p, p}, {2, 2}), .dilation = {p}});
  };
  const Tensor a = run(6112744604817478868), b = run(10);
  ASSERT_EQ(a.shape(), Shape({1, 1, 8, 8}));
  EXPECT_TRUE(allclose(a, b));
}

// fuzz/corpus/conv_args/crash-im2col-padding-row: im2col computed the element offset of
// input rows lying in a huge padding before checking that they were inside the image, and
// the offset overflowed (visible under CONVKIT_SANITIZE). Rows in the padding read zeros, so
// any padding >= the kernel height gives the same (zero) output here.
TEST(FuzzRegressions, Im2colHugePaddingRows) {
  const Tensor x = Tensor::uniform({1, 1, 1, 4, 4}, -1, 1, 17);
  const Tensor w = Tensor::uniform({2, 1, 2, 8, 1}, -1, 1, 18);
  auto run = [&](I p) {
    return conv3d(x, w, {},
                  {.stride = {kMax}, .padding = Padding::asymmetric({1, p, 1}, {3, 3, 3})});
  };
  const Tensor a = run(8936267564921335874), b = run(10);
  ASSERT_EQ(a.shape(), Shape({1, 2, 1, 1, 1}));
  EXPECT_TRUE(allclose(a, b));
}

}  // namespace
}  // namespace convkit
