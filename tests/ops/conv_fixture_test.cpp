// Checks convkit's convolutions, forward and every gradient, against the PyTorch fixtures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convkit/core/tensor.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Written by tools/fixtures/make_conv_fixtures.py; see tests/fixtures/conv/README.md.
const fs::path kConvFixtureDir = fs::path(CONVKIT_FIXTURE_DIR) / "conv";

/// Every *.safetensors file in the fixture folder, sorted (empty if the folder is missing, so
/// that test registration never throws; ConvFixtureFiles.AtLeast80Present then fails).
std::vector<fs::path> conv_fixture_files() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(kConvFixtureDir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".safetensors") {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct FixtureCase {
  fs::path path;
  DType dtype;
};

// How gtest names a case in failure lines ("conv2d_k3_p1.safetensors F32").
[[maybe_unused]] void PrintTo(const FixtureCase& c, std::ostream* os) {
  *os << c.path.filename().string() << ' ' << dtype_name(c.dtype);
}

std::vector<FixtureCase> fixture_cases() {
  std::vector<FixtureCase> cases;
  for (const fs::path& path : conv_fixture_files()) {
    cases.push_back({path, DType::F32});
    cases.push_back({path, DType::F64});
  }
  return cases;
}

/// "conv2d_dw_mult2_s2_same" + "_f32", with anything outside [A-Za-z0-9_] turned into '_'.
std::string case_name(const testing::TestParamInfo<FixtureCase>& info) {
  std::string name = info.param.path.stem().string();
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  return name + (info.param.dtype == DType::F32 ? "_f32" : "_f64");
}

PaddingMode parse_padding_mode(const std::string& s) {
  if (s == "zeros") return PaddingMode::Zeros;
  if (s == "reflect") return PaddingMode::Reflect;
  if (s == "replicate") return PaddingMode::Replicate;
  if (s == "circular") return PaddingMode::Circular;
  throw InvalidArgument("fixture: unknown padding_mode '" + s + "'");
}

/// The ConvOptions a fixture's config describes (the JSON written by make_conv_fixtures.py).
ConvOptions parse_options(const json& cfg) {
  ConvOptions o;
  o.stride = cfg.at("stride").get<std::vector<std::int64_t>>();
  o.dilation = cfg.at("dilation").get<std::vector<std::int64_t>>();
  o.groups = cfg.at("groups").get<std::int64_t>();
  o.padding_mode = parse_padding_mode(cfg.at("padding_mode").get<std::string>());
  const json& pad = cfg.at("padding");
  if (pad.is_string()) {
    const auto s = pad.get<std::string>();
    if (s == "same") {
      o.padding = Padding::same();
    } else if (s == "valid") {
      o.padding = Padding::valid();
    } else {
      throw InvalidArgument("fixture: unknown padding '" + s + "'");
    }
  } else {
    o.padding = Padding::asymmetric(pad.at("before").get<std::vector<std::int64_t>>(),
                                    pad.at("after").get<std::vector<std::int64_t>>());
  }
  if (cfg.contains("output_padding")) {
    o.output_padding = cfg.at("output_padding").get<std::vector<std::int64_t>>();
  }
  return o;
}

/// Compares `got` with the fixture's `want`, naming `what` (role, file) on failure.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": convkit returned an undefined tensor";
  ASSERT_EQ(dtype_name(got.dtype()), dtype_name(want.dtype())) << what;
  ASSERT_EQ(got.shape(), want.shape())
      << what << ": shape " << got.shape().str() << ", PyTorch " << want.shape().str();
  const bool f32 = want.dtype() == DType::F32;
  const double rtol = f32 ? 1e-4 : 1e-10;
  const double atol = f32 ? 1e-5 : 1e-10;
  const CloseResult r = allclose(got, want, rtol, atol);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

class ConvFixtureTest : public testing::TestWithParam<FixtureCase> {};

TEST_P(ConvFixtureTest, MatchesPyTorch) {
  const FixtureCase& fc = GetParam();
  const std::string file = fc.path.filename().string();
  SCOPED_TRACE(fc.path.string());

  const io::SafetensorsFile fx = io::load_safetensors(fc.path);
  ASSERT_EQ(fx.metadata.count("config"), 1u) << file << ": no \"config\" in __metadata__";
  const json cfg = json::parse(fx.metadata.at("config"));
  SCOPED_TRACE("config " + cfg.dump());

  const std::string pre = fc.dtype == DType::F32 ? "f32." : "f64.";
  const bool has_bias = cfg.at("bias").get<bool>();
  const bool channels_last = cfg.at("channels_last").get<bool>();
  const bool transposed = cfg.at("kind").get<std::string>() == "conv_transpose";
  const int ndims = cfg.at("ndims").get<int>();
  const ConvOptions options = parse_options(cfg);

  Tensor src = fx.at(pre + "src");
  const Tensor& wei = fx.at(pre + "wei");
  const Tensor bias = has_bias ? fx.at(pre + "bias") : Tensor{};
  ASSERT_EQ(dtype_name(src.dtype()), dtype_name(fc.dtype)) << file;
  ASSERT_EQ(src.dim(), ndims + 2) << file;

  const MemoryFormat format =
      channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  src = src.to(format);
  const Tensor diff_dst = fx.at(pre + "diff_dst").to(format);

  const ConvProblem p = ConvProblem::make(src, wei, bias, options, transposed);
  EXPECT_EQ(p.ndims, ndims) << file;
  EXPECT_EQ(p.transposed, transposed) << file;
  EXPECT_EQ(p.has_bias, has_bias) << file;
  EXPECT_EQ(dtype_name(p.dtype), dtype_name(fc.dtype)) << file;
  EXPECT_TRUE(p.format == format) << file << ": problem format is not the src format";
  EXPECT_EQ(p.dst_shape().str(), fx.at(pre + "dst").shape().str())
      << file << ": problem " << p.str();

  const Tensor dst = conv_forward(p, src, wei, bias);
  expect_close(dst, fx.at(pre + "dst"), "dst of " + file);
  if (channels_last && dst.defined()) {
    EXPECT_TRUE(dst.is_contiguous(MemoryFormat::ChannelsLast)) << file << ": " << dst.str();
    // memory_format() can only tell the formats apart when the strides differ.
    if (!dst.is_contiguous(MemoryFormat::Contiguous)) {
      EXPECT_TRUE(dst.memory_format() == MemoryFormat::ChannelsLast) << file << ": " << dst.str();
    }
  }

  expect_close(conv_backward_data(p, diff_dst, wei), fx.at(pre + "diff_src"),
               "diff_src of " + file);
  expect_close(conv_backward_weights(p, src, diff_dst), fx.at(pre + "diff_wei"),
               "diff_wei of " + file);
  if (has_bias) {
    expect_close(conv_backward_bias(p, diff_dst), fx.at(pre + "diff_bias"),
                 "diff_bias of " + file);
  }

  // The PyTorch-style one-call forms build the same problem from the tensors.
  Tensor one_call;
  switch (ndims * 2 + (transposed ? 1 : 0)) {
    case 2: one_call = conv1d(src, wei, bias, options); break;
    case 3: one_call = conv_transpose1d(src, wei, bias, options); break;
    case 4: one_call = conv2d(src, wei, bias, options); break;
    case 5: one_call = conv_transpose2d(src, wei, bias, options); break;
    case 6: one_call = conv3d(src, wei, bias, options); break;
    case 7: one_call = conv_transpose3d(src, wei, bias, options); break;
    default: FAIL() << file << ": ndims " << ndims;
  }
  expect_close(one_call, fx.at(pre + "dst"), "one-call dst of " + file);
}

INSTANTIATE_TEST_SUITE_P(ConvFixture, ConvFixtureTest, testing::ValuesIn(fixture_cases()),
                         case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ConvFixtureTest);

// An empty or missing fixture folder must not pass silently.
TEST(ConvFixtureFiles, AtLeast80Present) {
  const auto files = conv_fixture_files();
  EXPECT_GE(files.size(), 80u) << "in " << kConvFixtureDir.string()
                               << "; regenerate with /usr/bin/python3 "
                                  "tools/fixtures/make_conv_fixtures.py";
}

// Every file carries both dtypes and every role its config calls for, in the right shapes.
TEST(ConvFixtureFiles, CompleteAndConsistent) {
  for (const fs::path& path : conv_fixture_files()) {
    SCOPED_TRACE(path.string());
    const io::SafetensorsFile fx = io::load_safetensors(path);
    ASSERT_EQ(fx.metadata.count("config"), 1u);
    const json cfg = json::parse(fx.metadata.at("config"));
    const bool has_bias = cfg.at("bias").get<bool>();
    for (const char* pre : {"f32.", "f64."}) {
      const DType dtype = std::string(pre) == "f32." ? DType::F32 : DType::F64;
      std::vector<std::string> roles = {"src", "wei", "dst", "diff_dst", "diff_src", "diff_wei"};
      if (has_bias) {
        roles.emplace_back("bias");
        roles.emplace_back("diff_bias");
      }
      for (const std::string& role : roles) {
        ASSERT_TRUE(fx.contains(pre + role)) << pre << role;
        EXPECT_EQ(dtype_name(fx.at(pre + role).dtype()), dtype_name(dtype)) << pre << role;
      }
      const auto shape_of = [&](const char* role) {
        return fx.at(pre + std::string(role)).shape().str();
      };
      EXPECT_EQ(shape_of("diff_dst"), shape_of("dst"));
      EXPECT_EQ(shape_of("diff_src"), shape_of("src"));
      EXPECT_EQ(shape_of("diff_wei"), shape_of("wei"));
    }
  }
}

}  // namespace
}  // namespace convkit
