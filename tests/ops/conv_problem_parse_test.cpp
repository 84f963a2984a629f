// ConvProblem::parse: the inverse of str() on random problems, benchdnn's defaults, and one
// test per kind of malformed line (the message names the line and the bad token).
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "convkit/ops/conv.hpp"
#include "ops/conv_random.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using test::expect_error;

TEST(ConvProblemParse, RoundTripsRandomProblems) {
  std::mt19937_64 rng(20261122);
  const int n = test::sweep_size(300, 5000);
  for (int i = 0; i < n; ++i) {
    for (const DType dtype : {DType::F32, DType::F64}) {
      ConvProblem p = test::random_conv(rng, dtype, 4096).p;
      const ConvProblem q = ConvProblem::parse(p.str(), p.dtype, p.format);
      p.has_bias = false;  // the text does not carry the bias
      ASSERT_EQ(q, p) << "line " << p.str() << " parsed as " << q.str();
    }
  }
}

TEST(ConvProblemParse, FullLineOfTheIssue) {
  const ConvProblem p = ConvProblem::parse("g32mb8ic32ih112iw112oc32kh3kw3sh1sw1ph1pw1");
  EXPECT_EQ(p.ndims, 2);
  EXPECT_EQ(p.g, 32);
  EXPECT_EQ(p.mb, 8);
  EXPECT_EQ(p.ic, 32);
  EXPECT_EQ(p.oc, 32);
  EXPECT_EQ(p.out, (std::array<std::int64_t, 3>{112, 112, 1}));
  EXPECT_EQ(p.format, MemoryFormat::Contiguous);
  EXPECT_EQ(p.str(), "g32mb8ic32ih112iw112oc32oh112ow112kh3kw3sh1sw1ph1pw1dh0dw0");
}

TEST(ConvProblemParse, BenchdnnDefaults) {
  // mb 2, g 1, oc = ic, iw = ih, kw = kh, stride 1, padding 0, no dilation.
  const ConvProblem p = ConvProblem::parse("ic16ih10kh3", DType::F64, MemoryFormat::ChannelsLast);
  EXPECT_EQ(p.mb, 2);
  EXPECT_EQ(p.g, 1);
  EXPECT_EQ(p.oc, 16);
  EXPECT_EQ(p.in, (std::array<std::int64_t, 3>{10, 10, 1}));
  EXPECT_EQ(p.k, (std::array<std::int64_t, 3>{3, 3, 1}));
  EXPECT_EQ(p.out, (std::array<std::int64_t, 3>{8, 8, 1}));
  EXPECT_EQ(p.dtype, DType::F64);
  EXPECT_EQ(p.format, MemoryFormat::ChannelsLast);
  // Only width letters: 1-D; a depth letter: 3-D with the other sizes copied from it.
  EXPECT_EQ(ConvProblem::parse("mb1ic4iw9kw3").ndims, 1);
  const ConvProblem q = ConvProblem::parse("mb1ic4id5kd3dd1pd2");
  EXPECT_EQ(q.ndims, 3);
  EXPECT_EQ(q.in, (std::array<std::int64_t, 3>{5, 5, 5}));
  EXPECT_EQ(q.dilation, (std::array<std::int64_t, 3>{2, 2, 2}));
  EXPECT_EQ(q.out, (std::array<std::int64_t, 3>{5, 5, 5}));
}

TEST(ConvProblemParse, SeparatorsNamesAndSuffixes) {
  std::string name;
  const ConvProblem p = ConvProblem::parse(
      "  mb2_g4ic4oc8_ih7iw6kh3sh2ph1_n\"mnet:conv1/dw\"_pad_after[0, 2]_reflect ",
      DType::F32, MemoryFormat::Contiguous, &name);
  EXPECT_EQ(name, "mnet:conv1/dw");
  EXPECT_EQ(p.oc, 8);
  EXPECT_EQ(p.pad_after, (std::array<std::int64_t, 3>{0, 2, 0}));
  EXPECT_EQ(p.padding_mode, PaddingMode::Reflect);
  const ConvProblem t = ConvProblem::parse("mb1ic4oc2ih3kh3sh2_transposed_op[1, 0]");
  EXPECT_TRUE(t.transposed);
  EXPECT_EQ(t.out, (std::array<std::int64_t, 3>{8, 7, 1}));
  // Given output sizes are checked, not trusted.
  EXPECT_EQ(ConvProblem::parse("ic3ih8oh8kh3ph1").out[0], 8);
}

TEST(ConvProblemParse, MalformedLines) {
  expect_error<InvalidArgument>([] { ConvProblem::parse("   "); }, {"line ''", "empty"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih8kh3xy5"); },
                                {"'mb2ic4ih8kh3xy5'", "unknown token 'xy5'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ihkh3"); },
                                {"'ih' must be followed by a non-negative integer", "'kh3'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih8kh3ph"); },
                                {"'ph'", "end of line"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih8kh3ph-1"); },
                                {"'ph'", "'-1'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih8ih9kh3"); },
                                {"'ih' is given twice", "ih9"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ih8kh3"); }, {"'ic'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4kh3"); },
                                {"no input size", "ih"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih8"); },
                                {"no kernel size", "kh"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("mb2ic4ih99999999999999999999kh3"); },
                                {"does not fit in int64"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("g3ic4ih8kh3"); },
                                {"'ic4'", "not divisible", "'g3'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih8oh7kh3ph1"); },
                                {"'oh7'", "computed output size 8"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih2kh5"); },
                                {"line 'ic4ih2kh5'", "effective kernel size 5"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih8kh3n\"open"); },
                                {"no closing quote"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih8kh3_pad_after[1, 2"); },
                                {"'pad_after'", "']'"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih8kh3_pad_after[1]"); },
                                {"'pad_after' has 1 values", "2-D"});
  expect_error<InvalidArgument>([] { ConvProblem::parse("ic4ih8kh3_reflect_circular"); },
                                {"padding mode given twice", "circular"});
}

// The benchmark shape files stay readable: every problem line parses, and the model files
// hold the layer counts they claim (MobileNetV2: 17 depthwise, 34 pointwise layers), each
// line named, at batch 8 (32 for dw_misc's beyond-the-LLC case).
TEST(ConvProblemParse, BenchmarkShapeFiles) {
  const std::string dir = std::string(CONVKIT_FIXTURE_DIR) + "/../../bench/shapes/";
  for (const auto& [file, lines] : {std::pair{"mobilenet_v2_dw.txt", 17},
                                    std::pair{"mobilenet_v2_pw.txt", 34},
                                    std::pair{"replknet_dw.txt", 2}, std::pair{"dw_misc.txt", 5}}) {
    std::ifstream in(dir + file);
    ASSERT_TRUE(in) << "cannot read " << dir + file;
    int problems = 0;
    for (std::string line; std::getline(in, line);) {
      if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string name;
      const ConvProblem p = ConvProblem::parse(line, DType::F32, MemoryFormat::Contiguous, &name);
      EXPECT_FALSE(name.empty()) << file << ": " << line;
      EXPECT_TRUE(p.mb == 8 || p.mb == 32) << "batch 8 (32 for the beyond-LLC case): " << line;
      ++problems;
    }
    EXPECT_EQ(problems, lines) << file;
  }
}

}  // namespace
}  // namespace convkit
