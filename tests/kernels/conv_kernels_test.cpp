// Every optimized kernel in the conv list against the reference, pass by pass, over random
// problems of each family; plus the dispatch controls and thread-count reproducibility.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <set>

#include "convkit/ops/conv_dispatch.hpp"
#include "kernels/conv/conv_list.hpp"
#include "kernels/kernel_problems.hpp"
#include "ops/kernel_params.hpp"
#include "ops/conv_random.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using kernels::ConvKernel;
using kernels::ConvPass;
using test::I;
using test::KernelProblem;

constexpr double kSentinel = 1e30;  // in view gaps: must survive every call

template <typename T>
struct Buffers {
  std::vector<T> src, dst, wei, bias;
};

// Fills the logical elements of `b` (all of them if gaps is false) with values from `draw`
// and everything else with the sentinel.
template <typename T, typename Draw>
std::vector<T> fill(const test::Buffer& b, Draw&& draw) {
  std::vector<T> v(static_cast<std::size_t>(b.size), static_cast<T>(kSentinel));
  for (I i = b.offset; i < b.size; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>(draw());
  return v;
}

// Marks which elements of a (n, c, d, h, w) buffer belong to the tensor.
std::vector<char> logical_mask(const test::Buffer& b, I n, I c, const std::array<I, 3>& sp,
                               const std::array<I, 5>& s) {
  std::vector<char> m(static_cast<std::size_t>(b.size), 0);
  for (I a = 0; a < n; ++a)
    for (I ch = 0; ch < c; ++ch)
      for (I d = 0; d < sp[0]; ++d)
        for (I h = 0; h < sp[1]; ++h)
          for (I w = 0; w < sp[2]; ++w)
            m[static_cast<std::size_t>(b.offset + a * s[0] + ch * s[1] + d * s[2] + h * s[3] + w * s[4])] = 1;
  return m;
}

// One pass on one problem: runs `kernel` and the reference on the same inputs and compares.
// With integer inputs every partial sum is exact, so results must be equal; otherwise each
// element may differ by a bound proportional to the sum of its terms' magnitudes, which the
// reference computes on absolute values.
template <typename T>
class PassCheck {
 public:
  PassCheck(const KernelProblem& kp, std::uint64_t seed, bool integers) : kp_(kp) {
    std::mt19937_64 rng(seed);
    auto draw = [&]() -> double {
      if (integers) return static_cast<double>(std::uniform_int_distribution<int>(-3, 3)(rng));
      return std::normal_distribution<double>(0, 1)(rng);
    };
    in_.src = fill<T>(kp.src, draw);
    in_.dst = fill<T>(kp.dst, draw);
    in_.wei = fill<T>(kp.wei, draw);
    in_.bias = fill<T>({kp.p.g * kp.p.ocg, 0}, draw);
    // Gaps of src and dst hold the sentinel: inputs must not read them (a read would make
    // the result huge) and outputs must not write them.
    const auto& p = kp.p;
    src_mask_ = logical_mask(kp.src, p.mb, p.g * p.icg, p.in, p.src_s);
    dst_mask_ = logical_mask(kp.dst, p.mb, p.g * p.ocg, p.out, p.dst_s);
    for (std::size_t i = 0; i < src_mask_.size(); ++i)
      if (!src_mask_[i]) in_.src[i] = static_cast<T>(kSentinel);
    for (std::size_t i = 0; i < dst_mask_.size(); ++i)
      if (!dst_mask_[i]) in_.dst[i] = static_cast<T>(kSentinel);
    exact_ = integers;
  }

  // Returns "" when kernel agrees with ref on `pass`, else a description of the first miss.
  std::string check(const ConvKernel<T>& kernel, const ConvKernel<T>& ref, ConvPass pass) {
    const auto& p = kp_.p;
    const T* bias = kp_.bias ? in_.bias.data() : nullptr;
    auto abs_of = [](std::vector<T> v) {
      for (auto& x : v) x = std::abs(x);
      return v;
    };
    std::vector<T> got, want, bound;
    const std::vector<char>* mask = nullptr;
    switch (pass) {
      case ConvPass::Fwd: {
        got = want = std::vector<T>(in_.dst.size(), static_cast<T>(NAN));
        restore_gaps(got, dst_mask_);
        restore_gaps(want, dst_mask_);
        bound = want;
        kernel.fwd(p, in_.src.data() + kp_.src.offset, in_.wei.data(), bias, got.data() + kp_.dst.offset);
        ref.fwd(p, in_.src.data() + kp_.src.offset, in_.wei.data(), bias, want.data() + kp_.dst.offset);
        const auto as = abs_of(in_.src), aw = abs_of(in_.wei), ab = abs_of(in_.bias);
        ref.fwd(p, as.data() + kp_.src.offset, aw.data(), bias ? ab.data() : nullptr, bound.data() + kp_.dst.offset);
        mask = &dst_mask_;
        break;
      }
      case ConvPass::BwdData: {
        got = want = std::vector<T>(in_.src.size(), static_cast<T>(NAN));
        restore_gaps(got, src_mask_);
        restore_gaps(want, src_mask_);
        bound = want;
        kernel.bwd_data(p, in_.dst.data() + kp_.dst.offset, in_.wei.data(), got.data() + kp_.src.offset);
        ref.bwd_data(p, in_.dst.data() + kp_.dst.offset, in_.wei.data(), want.data() + kp_.src.offset);
        const auto ad = abs_of(in_.dst), aw = abs_of(in_.wei);
        ref.bwd_data(p, ad.data() + kp_.dst.offset, aw.data(), bound.data() + kp_.src.offset);
        mask = &src_mask_;
        break;
      }
      case ConvPass::BwdWeights: {
        got = want = std::vector<T>(in_.wei.size(), static_cast<T>(NAN));
        bound = want;
        kernel.bwd_weights(p, in_.src.data() + kp_.src.offset, in_.dst.data() + kp_.dst.offset, got.data());
        ref.bwd_weights(p, in_.src.data() + kp_.src.offset, in_.dst.data() + kp_.dst.offset, want.data());
        const auto as = abs_of(in_.src), ad = abs_of(in_.dst);
        ref.bwd_weights(p, as.data() + kp_.src.offset, ad.data() + kp_.dst.offset, bound.data());
        break;
      }
    }
    const double eps = sizeof(T) == 4 ? 2e-6 : 1e-14;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const bool logical = mask == nullptr || (*mask)[i];
      if (!logical) {
        if (got[i] != static_cast<T>(kSentinel))
          return fmt::format("wrote {} into a view gap at element {}", static_cast<double>(got[i]), i);
        continue;
      }
      const double tol = exact_ ? 0.0 : eps * (static_cast<double>(bound[i]) + 1e-30) * 8;
      const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      if (!(diff <= tol))  // also catches NaN: an element the kernel never wrote
        return fmt::format("element {}: got {} want {} (tolerance {}, {} inputs)", i,
                           static_cast<double>(got[i]), static_cast<double>(want[i]), tol,
                           exact_ ? "integer" : "normal");
    }
    return "";
  }

 private:
  static void restore_gaps(std::vector<T>& v, const std::vector<char>& mask) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!mask[i]) v[i] = static_cast<T>(kSentinel);
  }

  const KernelProblem& kp_;
  Buffers<T> in_;
  std::vector<char> src_mask_, dst_mask_;
  bool exact_ = false;
};

// Runs `count` random problems of `family` through every optimized kernel that supports
// them and returns, per kernel and pass, how many problems it ran.
template <typename T>
std::map<std::string, int> sweep(test::Family family, int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto list = kernels::conv_kernels<T>();
  const auto& ref = list.back();
  std::map<std::string, int> runs;
  for (int i = 0; i < count; ++i) {
    const KernelProblem kp = test::random_kernel_problem(rng, family);
    const bool integers = i % 4 != 3;
    PassCheck<T> check(kp, seed * 1000003 + static_cast<std::uint64_t>(i), integers);
    for (std::size_t k = 0; k + 1 < list.size(); ++k) {
      const auto& kernel = list[k];
      if (!kernel.supports(kp.p)) continue;
      for (ConvPass pass : {ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdWeights}) {
        if (!kernel.implements(pass)) continue;
        ++runs[fmt::format("{} {}", kernel.name, kernels::pass_name(pass))];
        const std::string miss = check.check(kernel, ref, pass);
        EXPECT_EQ(miss, "") << kernel.name << " " << kernels::pass_name(pass) << " on "
                            << kp.str() << " (problem " << i << ", seed " << seed << ")";
      }
    }
  }
  return runs;
}

class ConvKernels : public ::testing::TestWithParam<test::Family> {};

TEST_P(ConvKernels, AgreeWithTheReferenceF32) {
  // Depthwise has a dozen kernels sharing the draws: three times as many problems.
  const int count = GetParam() == test::Family::Depthwise ? 900 : 300;
  const auto runs = sweep<float>(GetParam(), test::sweep_size(count, 20 * count), 11 + static_cast<int>(GetParam()));
  for (const auto& [name, n] : runs) RecordProperty(name, n);
}

TEST_P(ConvKernels, AgreeWithTheReferenceF64) {
  sweep<double>(GetParam(), test::sweep_size(100, 2000), 21 + static_cast<int>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Family, ConvKernels,
                         ::testing::Values(test::Family::Depthwise, test::Family::Dense,
                                           test::Family::Grouped),
                         [](const auto& p) { return std::string(test::family_name(p.param)); });

// Every optimized kernel must be reached by at least one family's generator often enough,
// or the differential test above proves nothing about it.
TEST(ConvKernelsCoverage, EveryKernelPassIsExercised) {
  std::map<std::string, int> total;
  for (auto family : {test::Family::Depthwise, test::Family::Dense, test::Family::Grouped})
    for (const auto& [name, n] :
         sweep<float>(family, family == test::Family::Depthwise ? 900 : 300, 11 + static_cast<int>(family)))
      total[name] += n;
  const auto list = kernels::conv_kernels<float>();
  for (std::size_t k = 0; k + 1 < list.size(); ++k)
    for (ConvPass pass : {ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdWeights}) {
      if (!list[k].implements(pass)) continue;
      const std::string key = fmt::format("{} {}", list[k].name, kernels::pass_name(pass));
      EXPECT_GE(total[key], 10) << key << " ran on only " << total[key]
                                << " random problems; widen the generator in kernel_problems.hpp";
    }
}

TEST(ConvKernelList, EndsWithTheReferenceAndNamesAreUnique) {
  const auto list = kernels::conv_kernels<float>();
  EXPECT_EQ(std::string(list.back().name), "conv_f32__ref");
  std::set<std::string> names;
  for (const auto& k : list) EXPECT_TRUE(names.insert(k.name).second) << k.name << " listed twice";
  EXPECT_EQ(std::string(kernels::conv_kernels<double>().back().name), "conv_f64__ref");
}

// ---- dispatch controls ----

TEST(ConvDispatch, ForcingTheReferenceIsObeyedAndReported) {
  const Tensor x = Tensor::uniform({2, 8, 9, 9}, -1, 1, 1);
  const Tensor w = Tensor::uniform({8, 1, 3, 3}, -1, 1, 2);
  force_conv_kernel("ref");
  const Tensor y_ref = conv2d(x, w, {}, {.padding = 1, .groups = 8});
  EXPECT_EQ(last_conv_kernel(), "conv_f32__ref");
  force_conv_kernel("");
  const Tensor y = conv2d(x, w, {}, {.padding = 1, .groups = 8});
  const auto names = conv_kernel_names("f32");
  EXPECT_NE(std::find(names.begin(), names.end(), last_conv_kernel()), names.end());
  EXPECT_TRUE(allclose(y, y_ref, 1e-5, 1e-6));
  EXPECT_EQ(forced_conv_kernel(), "");
}

TEST(ConvDispatch, TraceNamesThePassTheProblemAndTheKernel) {
  const Tensor x = Tensor::uniform({1, 4, 5, 5}, -1, 1, 1);
  const Tensor w = Tensor::uniform({4, 1, 3, 3}, -1, 1, 2);
  force_conv_kernel("ref");
  set_conv_trace(true);
  ::testing::internal::CaptureStderr();
  conv2d(x, w, {}, {.padding = 1, .groups = 4});
  const std::string line = ::testing::internal::GetCapturedStderr();
  set_conv_trace(false);
  force_conv_kernel("");
  EXPECT_NE(line.find("convkit: fwd g4mb1ic4"), std::string::npos) << line;
  EXPECT_NE(line.find("-> conv_f32__ref"), std::string::npos) << line;
}

TEST(ConvDispatch, UnknownKernelNameIsRefused) {
  test::expect_error<InvalidArgument>([] { force_conv_kernel("dwconv_fastest"); },
                                      {"force_conv_kernel", "dwconv_fastest", "conv_f32__ref"});
  EXPECT_EQ(forced_conv_kernel(), "");
  test::expect_error<InvalidArgument>([] { conv_kernel_names("f16"); }, {"dtype", "f16"});
}

// ---- thread-count reproducibility through the public entry points ----

TEST(ConvThreads, OneAndThreeThreadsGiveIdenticalBits) {
  std::mt19937_64 rng(5);
  const int threads = omp_get_max_threads();
  for (int i = 0; i < test::sweep_size(60, 1000); ++i) {
    const ConvProblem p = test::random_conv(rng, DType::F32, 6000).p;
    const Tensor x = test::random_src(p, i), w = test::random_wei(p, i + 1);
    const Tensor b = test::random_bias(p, i + 2), dy = test::random_dst(p, i + 3);
    omp_set_num_threads(1);
    const Tensor y1 = conv_forward(p, x, w, b), dx1 = conv_backward_data(p, dy, w);
    const Tensor dw1 = conv_backward_weights(p, x, dy);
    omp_set_num_threads(3);
    const Tensor y3 = conv_forward(p, x, w, b), dx3 = conv_backward_data(p, dy, w);
    const Tensor dw3 = conv_backward_weights(p, x, dy);
    EXPECT_EQ(y1.to_vector(), y3.to_vector()) << p.str();
    EXPECT_EQ(dx1.to_vector(), dx3.to_vector()) << p.str();
    EXPECT_EQ(dw1.to_vector(), dw3.to_vector()) << p.str();
  }
  omp_set_num_threads(threads);
}

// A channels-last depthwise problem of k x k kernels ('same' padding at unit stride) with
// random src and diff_dst.
struct DwWeightsCase {
  ConvProblem p;
  Tensor x, dy;
};
DwWeightsCase channels_last_dw(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                               std::int64_t k, std::int64_t stride) {
  const Shape src{n, c, h, w}, wei{c, 1, k, k};
  const ConvOptions options{.stride = {stride}, .padding = Padding{k / 2}, .groups = c};
  const ConvProblem p = ConvProblem::make(src, wei, std::nullopt, options, false, DType::F32,
                                          MemoryFormat::ChannelsLast);
  return {p, Tensor::uniform(src, -1, 1, 1).to(MemoryFormat::ChannelsLast),
          Tensor::uniform(p.dst_shape(), -1, 1, 2).to(MemoryFormat::ChannelsLast)};
}

// Channels-last depthwise backward-weights over images of 1 MiB and more runs one image per
// call across the threads and adds the images in double (src/ops/conv_dispatch.cpp): the
// bits must match one thread's single call, for the 3x3, wide and tap-list kernels, and the
// result must match the reference.
TEST(ConvThreads, DepthwiseWeightsSplitOverImagesKeepTheirBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t c, h, w, k, stride;
    const char* kernel;
  };
  for (const Case cs : {Case{16, 128, 130, 3, 1, "dwconv2d_f32_nhwc_bwdw_k3__hwy"},
                        Case{24, 100, 111, 5, 1, "dwconv2d_f32_nhwc_bwdw_wide__hwy"},
                        Case{20, 120, 113, 5, 2, "dwconv2d_f32_nhwc__hwy"}}) {
    const auto [p, x, dy] = channels_last_dw(3, cs.c, cs.h, cs.w, cs.k, cs.stride);
    omp_set_num_threads(1);
    const Tensor one = conv_backward_weights(p, x, dy);
    EXPECT_EQ(last_conv_kernel(), cs.kernel);
    for (const int t : {2, 3}) {
      omp_set_num_threads(t);
      const Tensor split = conv_backward_weights(p, x, dy);
      EXPECT_EQ(last_conv_kernel(), cs.kernel);
      EXPECT_EQ(one.to_vector(), split.to_vector()) << cs.kernel << " with " << t << " threads";
    }
    omp_set_num_threads(threads);
    force_conv_kernel("ref");
    const Tensor want = conv_backward_weights(p, x, dy);
    force_conv_kernel("");
    const CloseResult r = allclose(one, want, 1e-4, 1e-3);
    EXPECT_TRUE(r) << cs.kernel << ": " << r.message;
  }
  omp_set_num_threads(threads);
}

// Channels-last depthwise backward-weights whose images src/ops/ does not split over the
// threads is cut by channels, into blocks that follow the thread count: the kernel's bands
// of rows (whose sums it adds in float) must not follow the call's channels. They did, and
// these shapes gave other bits at 1 and 2 threads in thousands of weights. 64 channels of
// 14x14 take the tiles at 1 thread (8 vectors) and RowSums at 3 (2 blocks of 4 vectors).
TEST(ConvThreads, DepthwiseWeightsSplitOverChannelsKeepTheirBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t n, c, h;
  };
  for (const Case cs : {Case{8, 384, 14}, Case{8, 960, 7}, Case{1, 144, 56}, Case{4, 192, 28},
                        Case{4, 64, 14}}) {
    const auto [p, x, dy] = channels_last_dw(cs.n, cs.c, cs.h, cs.h, 3, 1);
    omp_set_num_threads(1);
    const Tensor one = conv_backward_weights(p, x, dy);
    EXPECT_EQ(last_conv_kernel(), "dwconv2d_f32_nhwc_bwdw_k3__hwy");
    for (const int t : {2, 3}) {
      omp_set_num_threads(t);
      EXPECT_EQ(one.to_vector(), conv_backward_weights(p, x, dy).to_vector()) << p.str() << ", " << t;
    }
  }
  omp_set_num_threads(threads);
}

// Channels-last pointwise problems over small images run several images per GEMM, in fixed
// groups counted from the batch's first image (conv_1x1_gemm_image_group): the threads split
// the batch between groups, never through one, so with two groups or more (every call then
// runs OpenBLAS on one thread) 2 and 3 threads must give one thread's forward and
// backward-data bits; every pass must agree with the reference: a shorter last group, groups
// that do not divide among the threads, grouped weights, one image of 256 pixels. (These
// batches make one backward-weights chunk, one call on OpenBLAS's own threads, whose bits may
// follow their count; PointwiseWeightChunksKeepTheirBits checks larger ones.)
TEST(ConvThreads, PointwiseImageGroupsKeepTheirBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t n, c, oc, h, w, groups, images_per_gemm;
  };
  for (const Case cs : {Case{9, 66, 23, 5, 3, 1, 4}, Case{13, 190, 40, 7, 1, 1, 4},
                        Case{8, 160, 96, 7, 7, 1, 4}, Case{5, 55, 167, 14, 14, 1, 2},
                        Case{40, 8, 12, 4, 4, 1, 4}, Case{7, 62, 24, 13, 1, 2, 4},
                        Case{3, 9, 5, 16, 16, 1, 1}}) {
    const Shape src{cs.n, cs.c, cs.h, cs.w}, wei{cs.oc, cs.c / cs.groups, 1, 1};
    const ConvOptions options{.groups = cs.groups};
    const ConvProblem p = ConvProblem::make(src, wei, Shape{cs.oc}, options, false, DType::F32,
                                            MemoryFormat::ChannelsLast);
    const auto params = detail::dense_kernel_params(p);
    EXPECT_EQ(kernels::conv_1x1_gemm_image_group(params), cs.images_per_gemm) << p.str();
    const Tensor x = Tensor::uniform(src, -1, 1, 1).to(MemoryFormat::ChannelsLast);
    const Tensor w = Tensor::uniform(wei, -1, 1, 2), b = Tensor::uniform({cs.oc}, -1, 1, 3);
    const Tensor dy = Tensor::uniform(p.dst_shape(), -1, 1, 4).to(MemoryFormat::ChannelsLast);
    force_conv_kernel("ref");
    const Tensor want_y = conv_forward(p, x, w, b), want_dx = conv_backward_data(p, dy, w);
    const Tensor want_dw = conv_backward_weights(p, x, dy);
    force_conv_kernel("");
    const auto expect_close = [&](const Tensor& got, const Tensor& want, int t) {
      const CloseResult r = allclose(got, want, 1e-4, 1e-4);
      EXPECT_TRUE(r) << p.str() << ", " << t << " threads: " << r.message;
    };
    omp_set_num_threads(1);
    const Tensor y = conv_forward(p, x, w, b), dx = conv_backward_data(p, dy, w);
    EXPECT_EQ(last_conv_kernel(), "conv_f32_nhwc_1x1__gemm") << p.str();
    for (const int t : {1, 2, 3}) {
      omp_set_num_threads(t);
      const Tensor yt = conv_forward(p, x, w, b), dxt = conv_backward_data(p, dy, w);
      EXPECT_EQ(y.to_vector(), yt.to_vector()) << p.str() << ", " << t << " threads";
      EXPECT_EQ(dx.to_vector(), dxt.to_vector()) << p.str() << ", " << t << " threads";
      expect_close(yt, want_y, t);
      expect_close(dxt, want_dx, t);
      expect_close(conv_backward_weights(p, x, dy), want_dw, t);
    }
  }
  omp_set_num_threads(threads);
}

// Pointwise backward-weights of a batch of two chunks or more (conv_1x1_gemm_weight_chunk:
// at least 2048 pixels, in a power of two of image groups) runs the chunks on the threads,
// each into sums of its own, added in double in chunk order: 1, 2 and 3 threads must give the
// same bits, and the reference's weights. Channels-last and NCHW, a shorter last chunk,
// grouped weights, images of 4 per group, chunks that do not divide among the threads.
TEST(ConvThreads, PointwiseWeightChunksKeepTheirBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t n, c, oc, h, w, groups, chunk;
    MemoryFormat format;
  };
  const MemoryFormat last = MemoryFormat::ChannelsLast, nchw = MemoryFormat::Contiguous;
  for (const Case cs : {Case{5, 24, 40, 48, 48, 1, 1, last}, Case{6, 32, 16, 28, 28, 1, 4, last},
                        Case{7, 18, 12, 46, 46, 2, 1, last}, Case{130, 20, 36, 7, 7, 1, 64, last},
                        Case{3, 9, 13, 46, 46, 1, 1, nchw}, Case{5, 16, 8, 30, 30, 2, 4, nchw}}) {
    const Shape src{cs.n, cs.c, cs.h, cs.w}, wei{cs.oc, cs.c / cs.groups, 1, 1};
    const ConvOptions options{.groups = cs.groups};
    const ConvProblem p =
        ConvProblem::make(src, wei, Shape{cs.oc}, options, false, DType::F32, cs.format);
    EXPECT_EQ(kernels::conv_1x1_gemm_weight_chunk(detail::dense_kernel_params(p)), cs.chunk)
        << p.str();
    const Tensor x = Tensor::uniform(src, -1, 1, 5).to(cs.format);
    const Tensor dy = Tensor::uniform(p.dst_shape(), -1, 1, 6).to(cs.format);
    force_conv_kernel("ref");
    const Tensor want = conv_backward_weights(p, x, dy);
    force_conv_kernel("");
    omp_set_num_threads(1);
    const Tensor one = conv_backward_weights(p, x, dy);
    EXPECT_TRUE(last_conv_kernel().ends_with("_1x1__gemm")) << p.str() << ": " << last_conv_kernel();
    const CloseResult r = allclose(one, want, 1e-4, 1e-4);
    EXPECT_TRUE(r) << p.str() << ": " << r.message;
    for (const int t : {2, 3}) {
      omp_set_num_threads(t);
      EXPECT_EQ(one.to_vector(), conv_backward_weights(p, x, dy).to_vector()) << p.str() << ", " << t;
    }
  }
  omp_set_num_threads(threads);
}

// NCHW depthwise backward-weights on planes up to 64x64 runs the channels-last kernels on
// transposed copies (dwconv_nchw_via_nhwc.cpp): it must give the channels-last call's bits,
// for the 3x3, wide and tap-list kernels, with channel counts off the 8 x 8 transpose blocks,
// planes whose rows are not dense, and an image of 1 MiB that src/ops/ splits over the
// threads. Kernels wider than 7 take it at unit stride and dilation (the channels-last wide
// kernel's problems) and stay on the NCHW large-kernel path otherwise.
TEST(ConvDispatch, NchwDepthwiseWeightsThroughChannelsLastGiveItsBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t n, c, h, w, k, stride, dilation;
  };
  for (const Case cs : {Case{3, 40, 14, 14, 3, 1, 1}, Case{2, 17, 9, 7, 3, 2, 1},
                        Case{1, 9, 5, 11, 3, 1, 2}, Case{2, 96, 56, 56, 3, 1, 1},
                        Case{2, 24, 15, 13, 5, 2, 1}, Case{1, 19, 12, 10, 7, 1, 1},
                        Case{1, 8, 20, 20, 13, 1, 1}, Case{2, 11, 17, 23, 9, 1, 1},
                        Case{1, 8, 20, 20, 9, 2, 1}}) {
    const Shape src{cs.n, cs.c, cs.h, cs.w}, wei{cs.c, 1, cs.k, cs.k};
    const ConvOptions options{.stride = {cs.stride}, .padding = Padding{cs.dilation * (cs.k / 2)},
                              .dilation = {cs.dilation}, .groups = cs.c};
    const auto problem = [&](MemoryFormat f) {
      return ConvProblem::make(src, wei, std::nullopt, options, false, DType::F32, f);
    };
    const ConvProblem pc = problem(MemoryFormat::Contiguous);
    const ConvProblem pl = problem(MemoryFormat::ChannelsLast);
    // Rows 3 floats apart in a wider buffer: the planes' rows are not dense.
    const Tensor wide = Tensor::uniform({cs.n, cs.c, cs.h, cs.w + 3}, -1, 1, 1);
    const Tensor x = wide.narrow(3, 0, cs.w);
    const Tensor dy = Tensor::uniform(pc.dst_shape(), -1, 1, 4);
    const Tensor xl = x.to(MemoryFormat::ChannelsLast), dyl = dy.to(MemoryFormat::ChannelsLast);
    for (const int t : {1, 2}) {
      omp_set_num_threads(t);
      const Tensor dw = conv_backward_weights(pc, x, dy);
      if (cs.k > 7 && cs.stride > 1) {
        EXPECT_EQ(last_conv_kernel(), "dwconv2d_f32_nchw_bwdw_large__hwy") << pc.str();
        continue;
      }
      EXPECT_EQ(last_conv_kernel(), "dwconv2d_f32_nchw_bwdw_via_nhwc__hwy") << pc.str();
      EXPECT_EQ(dw.to_vector(), conv_backward_weights(pl, xl, dyl).to_vector()) << pc.str() << ", " << t;
    }
  }
  omp_set_num_threads(threads);
}

// NCHW depthwise forward and backward-data under kernels wider than 7 run the channels-last
// wide kernel on transposed runs of images (dwconv_nchw_via_nhwc.cpp): images are
// independent, so the bits are the channels-last call's, at any thread count, with a bias,
// channel counts off the 8 x 8 transpose blocks, kernels wider than the image and planes
// whose rows are not dense. Stride 2 stays on the NCHW kernels.
TEST(ConvDispatch, NchwWideDepthwiseThroughChannelsLastGiveItsBits) {
  const int threads = omp_get_max_threads();
  struct Case {
    std::int64_t n, c, h, w, k, stride;
  };
  for (const Case cs : {Case{2, 20, 17, 23, 9, 1}, Case{1, 8, 20, 20, 13, 1},
                        Case{3, 33, 11, 9, 15, 1}, Case{2, 16, 28, 28, 31, 1},
                        Case{1, 8, 20, 20, 9, 2}}) {
    const Shape src{cs.n, cs.c, cs.h, cs.w}, wei{cs.c, 1, cs.k, cs.k};
    const ConvOptions options{.stride = {cs.stride}, .padding = Padding{cs.k / 2}, .groups = cs.c};
    const auto problem = [&](MemoryFormat f) {
      return ConvProblem::make(src, wei, Shape{cs.c}, options, false, DType::F32, f);
    };
    const ConvProblem pc = problem(MemoryFormat::Contiguous);
    const ConvProblem pl = problem(MemoryFormat::ChannelsLast);
    // Rows 3 floats apart in a wider buffer: the planes' rows are not dense.
    const Tensor wide = Tensor::uniform({cs.n, cs.c, cs.h, cs.w + 3}, -1, 1, 1);
    const Tensor x = wide.narrow(3, 0, cs.w);
    const Tensor w = Tensor::uniform(wei, -1, 1, 2), b = Tensor::uniform({cs.c}, -1, 1, 3);
    const Tensor dy = Tensor::uniform(pc.dst_shape(), -1, 1, 4);
    const Tensor xl = x.to(MemoryFormat::ChannelsLast), dyl = dy.to(MemoryFormat::ChannelsLast);
    const bool through = cs.stride == 1;
    const std::string via = "dwconv2d_f32_nchw_wide_via_nhwc__hwy";
    for (const int t : {1, 2}) {
      omp_set_num_threads(t);
      const Tensor y = conv_forward(pc, x, w, b);
      EXPECT_EQ(last_conv_kernel() == via, through) << pc.str() << ": " << last_conv_kernel();
      const Tensor dx = conv_backward_data(pc, dy, w);
      EXPECT_EQ(last_conv_kernel() == via, through) << pc.str() << ": " << last_conv_kernel();
      if (!through) continue;
      EXPECT_EQ(y.to(MemoryFormat::ChannelsLast).to_vector(),
                conv_forward(pl, xl, w, b).to_vector())
          << pc.str() << ", " << t;
      EXPECT_EQ(dx.to(MemoryFormat::ChannelsLast).to_vector(),
                conv_backward_data(pl, dyl, w).to_vector())
          << pc.str() << ", " << t;
    }
  }
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace convkit
