// The parts of `convkit check` that decide what is checked: the random problems cover the
// awkward cases within their limits, the term counts behind the exact comparisons are upper
// bounds, and a comparison finds one wrong element.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "check_passes.hpp"
#include "check_problems.hpp"
#include "convkit/core/error.hpp"
#include "test_util.hpp"

namespace convkit::cli {
namespace {

using I = std::int64_t;

TEST(CheckGenerator, RandomProblemsCoverTheAwkwardCasesWithinTheLimits) {
  const RandomLimits limits;
  std::map<std::string, int> seen;
  std::set<I> channels;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const CheckCase c = random_check_case(7, static_cast<std::uint64_t>(i), limits);
    const ConvProblem& p = c.problem;
    ASSERT_EQ(c.problem, random_check_case(7, static_cast<std::uint64_t>(i), limits).problem);
    ASSERT_LE(p.macs(), limits.max_macs) << p.str();
    ASSERT_LE(p.src_shape().numel(), limits.max_elements) << p.str();
    ASSERT_TRUE(p.has_bias);
    channels.insert(p.ic);
    const bool dw = p.g == p.ic && p.g > 1;
    seen["1-D"] += p.ndims == 1;
    seen["2-D"] += p.ndims == 2;
    seen["channels-last"] += p.format == MemoryFormat::ChannelsLast;
    seen["depthwise"] += dw && p.oc == p.ic;
    seen["multiplier 2"] += dw && p.oc == 2 * p.ic;
    seen["multiplier 4"] += dw && p.oc == 4 * p.ic;
    seen["grouped"] += p.g > 1 && !dw;
    seen["transposed"] += p.transposed;
    seen["padding mode"] += p.padding_mode != PaddingMode::Zeros;
    seen["channels > 200"] += p.ic > 200;
    for (int d = 0; d < p.ndims; ++d) {
      const auto s = static_cast<std::size_t>(d);
      const I span = p.dilation[s] * (p.k[s] - 1) + 1;
      seen["1-pixel input"] += p.in[s] == 1;
      seen["pointwise"] += p.k[s] == 1;
      seen["kernel larger than input"] += span > p.in[s] && !p.transposed;
      seen["stride larger than kernel"] += p.stride[s] > p.k[s];
      seen["dilation 2"] += p.dilation[s] == 2;
      seen["dilation 3"] += p.dilation[s] == 3;
      seen["asymmetric padding"] += p.pad_before[s] != p.pad_after[s];
      seen["padding larger than kernel"] += p.pad_before[s] > p.k[s];
      seen["large kernel"] += p.k[s] >= 9;
    }
  }
  for (const auto& [what, count] : seen) EXPECT_GE(count, n / 100) << what;
  EXPECT_EQ(seen.size(), 19u);
  for (const I c : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65})
    EXPECT_TRUE(channels.contains(c)) << c << " channels never drawn";
}

TEST(CheckGenerator, TermCountsBoundEveryOutputsSumSoIntegerFillsAreExact) {
  // With every input 1 the reference returns, per output element, how many products it sums
  // (plus 1 for the bias): check_terms must never be below that.
  for (int i = 0; i < 300; ++i) {
    const ConvProblem p = random_check_case(3, static_cast<std::uint64_t>(i), {}).problem;
    CheckInputs ones{.src = Tensor::ones(p.src_shape(), DType::F32, p.format),
                     .wei = Tensor::ones(p.wei_shape()),
                     .bias = Tensor::ones(p.bias_shape()),
                     .diff_dst = Tensor::ones(p.dst_shape(), DType::F32, p.format)};
    for (const CheckPass pass : kCheckPasses) {
      const std::vector<double> counts = run_reference_pass(p, pass, ones).to_vector();
      const double most = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
      EXPECT_LE(most, static_cast<double>(check_terms(p, pass)))
          << p.str() << " " << check_pass_name(pass);
    }
    const CheckInputs in = make_check_inputs(p, true, 1);
    EXPECT_GE(in.range, 1) << p.str();  // small problems always get exact integer fills
    for (const Tensor& t : {in.src, in.wei, in.bias, in.diff_dst})
      for (const double v : t.to_vector())
        ASSERT_TRUE(v == std::nearbyint(v) && std::fabs(v) <= in.range) << v;
  }
}

TEST(CheckGenerator, ComparisonsFindOneWrongElement) {
  const ConvProblem p =
      parse_check_line("g4mb1ic4ih5oc8kh3ph1", MemoryFormat::ChannelsLast, "t").problem;
  for (const bool integers : {true, false}) {
    const CheckInputs in = make_check_inputs(p, integers, 9);
    const Tensor want = run_reference_pass(p, CheckPass::Fwd, in);
    Tensor got = run_check_pass(p, CheckPass::Fwd, in, nullptr);
    EXPECT_EQ(compare_with_reference(p, CheckPass::Fwd, in, got, want, false).bad, 0);
    got = got.clone();
    got.set({0, 5, 2, 3}, got.get({0, 5, 2, 3}) + 0.5);
    const Comparison c = compare_with_reference(p, CheckPass::Fwd, in, got, want, false);
    EXPECT_EQ(c.bad, 1);
    EXPECT_EQ(c.exact, integers);
    EXPECT_EQ(index_str(c.shape, c.worst), "[0, 5, 2, 3]");
    EXPECT_DOUBLE_EQ(c.got - c.want, 0.5);
    EXPECT_LT(c.bound, 0.01);
  }
  const Tensor a = Tensor::uniform({2, 3}, -1, 1, 4);
  EXPECT_EQ(compare_bitwise(a, a.clone(), false).bad, 0);
  const Comparison flipped = compare_bitwise(a, a.clone(), true);
  EXPECT_EQ(flipped.bad, 1);
  EXPECT_EQ(index_str(flipped.shape, flipped.worst), "[1, 0]");
}

TEST(CheckGenerator, ShapeFileErrorsNameTheLine) {
  const auto path = std::filesystem::temp_directory_path() / "convkit_check_generator_test.txt";
  std::ofstream(path) << "# header\nmb1ic4ih8oc4kh3 # ok\n\nmb1ic4ih8oc4kh3q7\n";
  test::expect_error<InvalidArgument>([&] { read_check_file(path, {MemoryFormat::Contiguous}); },
                                      {path.string() + ":4: ", "unknown token 'q7'"});
  std::ofstream(path) << "mb1ic4ih8oc4kh3\n# two layouts each\nmb1ic4iw8oc2kw3\n";
  const auto cases = read_check_file(path, {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast});
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[3].origin, path.string() + ":3");
  EXPECT_EQ(cases[3].problem.format, MemoryFormat::ChannelsLast);
  EXPECT_EQ(cases[3].problem.ndims, 1);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace convkit::cli
