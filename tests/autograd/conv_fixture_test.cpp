// Runs every PyTorch conv fixture (tests/fixtures/conv) through the autograd path: forward,
// then backward with the fixture's upstream gradient, against PyTorch's autograd results.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convkit/autograd/functional.hpp"
#include "convkit/io/safetensors.hpp"

namespace convkit::ag {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using I = std::int64_t;

std::vector<fs::path> conv_files() {
  std::vector<fs::path> files;
  std::error_code ec;
  const fs::path dir = fs::path(CONVKIT_FIXTURE_DIR) / "conv";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".safetensors")
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  return files;
}

// The ConvOptions of a config written by tools/fixtures/make_conv_fixtures.py.
ConvOptions options_of(const json& cfg) {
  ConvOptions o;
  o.stride = cfg.at("stride").get<std::vector<I>>();
  o.dilation = cfg.at("dilation").get<std::vector<I>>();
  o.groups = cfg.at("groups").get<I>();
  const std::string mode = cfg.at("padding_mode");
  o.padding_mode = mode == "reflect"     ? PaddingMode::Reflect
                   : mode == "replicate" ? PaddingMode::Replicate
                   : mode == "circular"  ? PaddingMode::Circular
                                         : PaddingMode::Zeros;
  const json& pad = cfg.at("padding");
  if (pad.is_string())
    o.padding = pad.get<std::string>() == "same" ? Padding::same() : Padding::valid();
  else
    o.padding = Padding::asymmetric(pad.at("before").get<std::vector<I>>(),
                                    pad.at("after").get<std::vector<I>>());
  if (cfg.contains("output_padding")) o.output_padding = cfg.at("output_padding").get<std::vector<I>>();
  return o;
}

Variable run(const json& cfg, const Variable& x, const Variable& w, const Variable& b) {
  const ConvOptions o = options_of(cfg);
  const bool t = cfg.at("kind").get<std::string>() == "conv_transpose";
  switch (cfg.at("ndims").get<int>()) {
    case 1: return t ? conv_transpose1d(x, w, b, o) : conv1d(x, w, b, o);
    case 2: return t ? conv_transpose2d(x, w, b, o) : conv2d(x, w, b, o);
    default: return t ? conv_transpose3d(x, w, b, o) : conv3d(x, w, b, o);
  }
}

// Every `step`-th file (the kernels themselves are checked on every file and both dtypes by
// tests/ops/conv_fixture_test.cpp; here it is the autograd wiring).
void check_all(DType dtype, std::size_t step) {
  const std::vector<fs::path> all = conv_files();
  ASSERT_GE(all.size(), 80u);
  std::vector<fs::path> files;
  for (std::size_t i = 0; i < all.size(); i += step) files.push_back(all[i]);
  const std::string pre = dtype == DType::F32 ? "f32." : "f64.";
  const double rtol = dtype == DType::F32 ? 1e-4 : 1e-10, atol = dtype == DType::F32 ? 1e-5 : 1e-10;
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.filename().string());
    const io::SafetensorsFile fx = io::load_safetensors(path);
    const json cfg = json::parse(fx.metadata.at("config"));
    const bool bias = cfg.at("bias").get<bool>();
    const MemoryFormat format = cfg.at("channels_last").get<bool>() ? MemoryFormat::ChannelsLast
                                                                     : MemoryFormat::Contiguous;
    const Variable x(fx.at(pre + "src").to(format), true), w(fx.at(pre + "wei"), true);
    const Variable b = bias ? Variable(fx.at(pre + "bias"), true) : Variable();
    const Variable y = run(cfg, x, w, b);
    auto expect = [&](const Tensor& got, const std::string& role) {
      ASSERT_TRUE(got.defined()) << role;
      const CloseResult r = allclose(got, fx.at(pre + role), rtol, atol);
      EXPECT_TRUE(r) << role << ": " << r.message;
    };
    expect(y.value(), "dst");
    y.backward(fx.at(pre + "diff_dst"));
    expect(x.grad(), "diff_src");
    expect(w.grad(), "diff_wei");
    if (bias) expect(b.grad(), "diff_bias");
  }
}

TEST(AgConvFixture, EveryFileF64) { check_all(DType::F64, 1); }
TEST(AgConvFixture, EveryFifthFileF32) { check_all(DType::F32, 5); }

}  // namespace
}  // namespace convkit::ag
