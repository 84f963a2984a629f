// Convolutions with external weights: PyTorch fixtures (tests/fixtures/external), fused against
// non-fused modulation, per-sample against a loop of conv2d, gradchecks and bad inputs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ag_test_util.hpp"
#include "convkit/autograd/external.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/layers.hpp"
#include "test_util.hpp"

namespace convkit::ag {
namespace {

using nlohmann::json;
using test::expect_gradcheck;
using test::rnd;
using I = std::int64_t;
using V = std::vector<Variable>;

io::SafetensorsFile fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/external/" + name +
                              ".safetensors");
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const CloseResult r = allclose(got.to(DType::F64), want.to(DType::F64), rtol, atol);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

// Runs `fn` on the file's inputs (as `dtype`), backpropagates sum(y * R) and compares y and
// every input's gradient with the tensors named <prefix>y and <prefix>grad.<input>.
void check_fixture(const std::string& name, const std::vector<std::string>& input_names,
                   const std::function<Variable(const io::SafetensorsFile&, const json&,
                                                const std::vector<Variable>&)>& fn,
                   const std::string& prefix, DType dtype) {
  SCOPED_TRACE(name + " " + prefix + (dtype == DType::F64 ? " F64" : " F32"));
  const io::SafetensorsFile f = fixture(name);
  const json cfg = json::parse(f.metadata.at("config"));
  std::vector<Variable> in;
  for (const std::string& n : input_names)
    in.push_back(f.contains(n) ? Variable(f.at(n).to(dtype), true) : Variable());
  const Variable y = fn(f, cfg, in);
  const double rtol = dtype == DType::F64 ? 1e-9 : 2e-4, atol = dtype == DType::F64 ? 1e-11 : 2e-5;
  expect_close(y.value(), f.at(prefix + "y"), rtol, atol, "y");
  sum(y * Variable(f.at("R").to(dtype))).backward();
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i].defined())
      expect_close(in[i].grad(), f.at(prefix + "grad." + input_names[i]), rtol, atol * 10,
                   "grad." + input_names[i]);
}

ModulatedConvOptions mod_options(const json& c, bool fused) {
  return {.stride = {c.at("stride").get<I>()},
          .padding = c.at("padding").get<I>(),
          .demodulate = c.at("demodulate").get<bool>(),
          .eps = c.at("eps").get<double>(),
          .fused = fused};
}

TEST(ExternalConvFixture, ModulatedFusedAndNonFusedMatchPyTorch) {
  for (const char* name :
       {"modconv_demod", "modconv_nodemod", "modconv_demod_s2_bias", "modconv_k1_nodemod"})
    for (DType dt : {DType::F64, DType::F32})
      for (bool fused : {true, false}) {
        auto fn = [fused](const io::SafetensorsFile&, const json& c, const V& v) {
          return modulated_conv2d(v[0], v[1], v[2], mod_options(c, fused), v[3]);
        };
        // Each convkit path against PyTorch's fused and non-fused results.
        check_fixture(name, {"x", "weight", "styles", "bias"}, fn, "", dt);
        check_fixture(name, {"x", "weight", "styles", "bias"}, fn, "nonfused.", dt);
      }
}

ConvOptions per_sample_options(const json& c) {
  return {.stride = {c.at("stride").get<I>()},
          .padding = c.at("padding").get<I>(),
          .dilation = {c.at("dilation").get<I>()},
          .groups = c.at("groups").get<I>()};
}

TEST(ExternalConvFixture, PerSampleMatchesPyTorch) {
  for (const char* name : {"per_sample_g2_p1", "per_sample_k2x3_s2_d2_nobias"})
    for (DType dt : {DType::F64, DType::F32})
      for (bool channels_last : {false, true}) {
        auto fn = [](const io::SafetensorsFile&, const json& c, const V& v) {
          return conv2d_per_sample(v[0], v[1], v[2], per_sample_options(c));
        };
        if (channels_last) {  // x laid out NHWC: same values, NHWC output
          const io::SafetensorsFile f = fixture(name);
          const json c = json::parse(f.metadata.at("config"));
          const Variable x(f.at("x").to(dt).to(MemoryFormat::ChannelsLast), true);
          const Variable w(f.at("w").to(dt), true);
          const Variable b = f.contains("b") ? Variable(f.at("b").to(dt), true) : Variable();
          const Variable y = conv2d_per_sample(x, w, b, per_sample_options(c));
          EXPECT_EQ(y.value().memory_format(), MemoryFormat::ChannelsLast) << name;
          sum(y * Variable(f.at("R").to(dt))).backward();
          const double rtol = dt == DType::F64 ? 1e-9 : 2e-4,
                       atol = dt == DType::F64 ? 1e-11 : 2e-5;
          expect_close(y.value(), f.at("y"), rtol, atol, std::string(name) + " cl y");
          expect_close(x.grad(), f.at("grad.x"), rtol, atol * 10, std::string(name) + " cl grad.x");
          expect_close(w.grad(), f.at("grad.w"), rtol, atol * 10, std::string(name) + " cl grad.w");
          continue;
        }
        check_fixture(name, {"x", "w", "b"}, fn, "", dt);
      }
}

TEST(ExternalConvFixture, SeparableMatchesPyTorch) {
  for (const char* name : {"separable_mult2_d2_p2", "separable_s2_nobias"})
    for (DType dt : {DType::F64, DType::F32}) {
      auto fn = [](const io::SafetensorsFile&, const json& c, const V& v) {
        return separable_conv2d(v[0], v[1], v[2], v[3], v[4],
                                {.stride = {c.at("stride").get<I>()},
                                 .padding = c.at("padding").get<I>(),
                                 .dilation = {c.at("dilation").get<I>()}});
      };
      check_fixture(name, {"x", "dw", "pw", "dw_bias", "pw_bias"}, fn, "", dt);
    }
}

TEST(ExternalConv, PerSampleEqualsALoopOfConv2d) {
  const Tensor x = Tensor::uniform({3, 4, 9, 7}, -1, 1, 11);
  const Tensor w = Tensor::uniform({3, 8, 1, 3, 3}, -1, 1, 12);  // depthwise, multiplier 2
  const Tensor b = Tensor::uniform({3, 8}, -1, 1, 13);
  const ConvOptions o{.stride = {2, 1}, .padding = Padding::same(), .groups = 4};
  for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    const Tensor y = conv2d_per_sample(Variable(x.to(fmt)), Variable(w), Variable(b), o).value();
    for (I n = 0; n < 3; ++n) {
      const Tensor yn = conv2d(Variable(x.narrow(0, n, 1).contiguous()),
                               Variable(w.narrow(0, n, 1).contiguous().reshape({8, 1, 3, 3})),
                               Variable(b.narrow(0, n, 1).contiguous().reshape({8})), o)
                            .value();
      expect_close(y.narrow(0, n, 1), yn, 1e-6, 1e-6, "sample " + std::to_string(n));
    }
  }
}

TEST(ExternalConv, FusedAndNonFusedAgreeWithReflectPadding) {
  const Variable x(Tensor::uniform({4, 6, 10, 10}, -1, 1, 21));
  const Variable weight(Tensor::uniform({5, 6, 3, 3}, -1, 1, 22));
  const Variable styles(Tensor::uniform({4, 6}, 0.1, 2, 23));
  for (bool demod : {true, false}) {
    ModulatedConvOptions o{.padding = 1, .padding_mode = PaddingMode::Reflect, .demodulate = demod};
    const Tensor a = modulated_conv2d(x, weight, styles, o).value();
    o.fused = false;
    const Tensor b = modulated_conv2d(x, weight, styles, o).value();
    expect_close(a, b, 1e-5, 1e-5, demod ? "demodulated" : "modulated");
  }
}

TEST(ExternalConv, DemodulationRemovesTheStyleScale) {
  // Demodulation rescales every kernel to unit norm, so multiplying all of one sample's styles
  // by 3 leaves its output unchanged (up to eps); without demodulation the output triples.
  const Variable x(Tensor::uniform({2, 3, 5, 5}, -1, 1, 31));
  const Variable weight(Tensor::uniform({4, 3, 3, 3}, -1, 1, 32));
  const Tensor s = Tensor::uniform({2, 3}, 0.5, 1.5, 33);
  const Tensor s3 = s.clone();
  for (I i = 0; i < 3; ++i) s3.set({1, i}, 3 * s.get({1, i}));
  const Tensor a = modulated_conv2d(x, weight, Variable(s), {.padding = 1}).value();
  const Tensor b = modulated_conv2d(x, weight, Variable(s3), {.padding = 1}).value();
  expect_close(a, b, 1e-5, 1e-6, "demodulation removes the style's scale");
  const Tensor c =
      modulated_conv2d(x, weight, Variable(s3), {.padding = 1, .demodulate = false}).value();
  EXPECT_GT(std::abs(c.get({1, 0, 2, 2}) - a.get({1, 0, 2, 2})), 1e-3);
}

TEST(ExternalConvGrad, PerSample) {
  const Variable x = rnd({2, 4, 5, 6}, 1), w = rnd({2, 6, 2, 3, 2}, 2), b = rnd({2, 6}, 3);
  expect_gradcheck(
      [](const V& v) {
        return conv2d_per_sample(v[0], v[1], v[2], {.stride = {2, 1}, .padding = 1, .groups = 2});
      },
      {x, w, b});
  const Variable xcl(x.value().to(MemoryFormat::ChannelsLast), true);
  expect_gradcheck(
      [](const V& v) {
        return conv2d_per_sample(v[0], v[1], {}, {.padding = {0, 1}, .dilation = {2}, .groups = 2});
      },
      {xcl, w});
  expect_gradcheck(
      [](const V& v) {
        return conv2d_per_sample(v[0], v[1], v[2],
                                 {.padding = 1, .groups = 2, .padding_mode = PaddingMode::Reflect});
      },
      {x, w, b});
}

TEST(ExternalConvGrad, ModulatedEveryPath) {
  const Variable x = rnd({2, 3, 5, 5}, 4), weight = rnd({4, 3, 3, 3}, 5);
  const Variable styles = rnd({2, 3}, 6, true, 0.3, 1.7), bias = rnd({4}, 7);
  for (bool fused : {true, false})
    for (bool demod : {true, false}) {
      SCOPED_TRACE(std::string(fused ? "fused" : "non-fused") + (demod ? " demod" : ""));
      const ModulatedConvOptions o{
          .stride = {2}, .padding = 1, .demodulate = demod, .fused = fused};
      expect_gradcheck([o](const V& v) { return modulated_conv2d(v[0], v[1], v[2], o, v[3]); },
                       {x, weight, styles, bias});
    }
}

TEST(ExternalConvGrad, Separable) {
  const Variable x = rnd({2, 3, 6, 6}, 8), dw = rnd({6, 1, 3, 3}, 9), pw = rnd({4, 6, 1, 1}, 10);
  const Variable db = rnd({6}, 11), pb = rnd({4}, 12);
  expect_gradcheck(
      [](const V& v) {
        return separable_conv2d(v[0], v[1], v[2], v[3], v[4], {.stride = {2}, .padding = 1});
      },
      {x, dw, pw, db, pb});
  const Variable dwn = rnd({2, 6, 1, 3, 3}, 13), pwn = rnd({2, 4, 6, 1, 1}, 14);
  const Variable dbn = rnd({2, 6}, 15), pbn = rnd({2, 4}, 16);
  expect_gradcheck(
      [](const V& v) {
        return separable_conv2d_per_sample(v[0], v[1], v[2], v[3], v[4],
                                           {.padding = Padding::same(), .dilation = {2}});
      },
      {x, dwn, pwn, dbn, pbn});
}

TEST(ExternalConv, RefusesBadInput) {
  using convkit::test::expect_error;
  const Variable x(Tensor::zeros({2, 4, 5, 5})), w(Tensor::zeros({2, 6, 4, 3, 3}));
  expect_error<InvalidArgument>(
      [&] {
        conv2d_per_sample(x, Variable(Tensor::zeros({3, 6, 4, 3, 3})));
      },
      {"conv2d_per_sample", "2 samples", "3 kernels"});
  expect_error<InvalidArgument>(
      [&] {
        conv2d_per_sample(x, Variable(Tensor::zeros({2, 6, 3, 3, 3})));
      },
      {"conv2d_per_sample", "3 input channels", "groups 1", "4 channels"});
  expect_error<InvalidArgument>([&] { conv2d_per_sample(x, w, {}, {.groups = 2}); },
                                {"conv2d_per_sample", "groups 2"});
  expect_error<InvalidArgument>([&] { conv2d_per_sample(x, w, Variable(Tensor::zeros({6}))); },
                                {"conv2d_per_sample", "b must be (N, out) = [2, 6]", "[6]"});
  expect_error<InvalidArgument>(
      [&] {
        conv2d_per_sample(x, Variable(Tensor::zeros({6, 4, 3, 3})));
      },
      {"conv2d_per_sample", "w must be (N, out, C/groups, kh, kw)"});
  expect_error<InvalidArgument>(
      [&] {
        conv2d_per_sample(Variable(Tensor::zeros({0, 4, 5, 5})),
                          Variable(Tensor::zeros({0, 6, 4, 3, 3})));
      },
      {"conv2d_per_sample", "batch is empty"});
  expect_error<InvalidArgument>(
      [&] {
        conv2d_per_sample(x, Variable(Tensor::zeros({2, 6, 4, 7, 7})));
      },
      {"conv2d_per_sample"});  // kernel larger than the input, refused by the conv problem
  const Variable weight(Tensor::zeros({3, 4, 3, 3}));
  expect_error<InvalidArgument>(
      [&] {
        modulated_conv2d(x, weight, Variable(Tensor::zeros({3, 4})));
      },
      {"modulated_conv2d", "styles must be (N, in) = [2, 4]", "[3, 4]"});
  expect_error<InvalidArgument>(
      [&] {
        modulated_conv2d(x, Variable(Tensor::zeros({3, 5, 3, 3})), Variable(Tensor::zeros({2, 4})));
      },
      {"modulated_conv2d", "5 input channels", "has 4"});
  expect_error<InvalidArgument>(
      [&] {
        modulated_conv2d(x, weight, Variable(Tensor::zeros({2, 4})), {.eps = -1});
      },
      {"modulated_conv2d", "eps", "-1"});
  expect_error<InvalidArgument>(
      [&] {
        modulated_conv2d(x, weight, Variable(Tensor::zeros({2, 4})), {},
                         Variable(Tensor::zeros({4})));
      },
      {"modulated_conv2d", "bias must have shape [3]", "[4]"});
  expect_error<InvalidArgument>(
      [&] {
        modulated_conv2d(x, weight, Variable(Tensor::zeros({2, 4}, DType::F64)));
      },
      {"modulated_conv2d", "F32", "F64"});
  expect_error<InvalidArgument>(
      [&] {
        separable_conv2d(x, Variable(Tensor::zeros({6, 1, 3, 3})),
                         Variable(Tensor::zeros({2, 6, 1, 1})));
      },
      {"separable_conv2d", "dw must be (C*mult, 1, kh, kw) with C = 4", "[6, 1, 3, 3]"});
  expect_error<InvalidArgument>(
      [&] {
        separable_conv2d(x, Variable(Tensor::zeros({8, 1, 3, 3})),
                         Variable(Tensor::zeros({2, 4, 1, 1})));
      },
      {"separable_conv2d", "pw must be (out, 8, 1, 1)", "[2, 4, 1, 1]"});
  expect_error<InvalidArgument>(
      [&] {
        separable_conv2d(x, Variable(Tensor::zeros({8, 1, 3, 3})),
                         Variable(Tensor::zeros({2, 8, 1, 1})), Variable(Tensor::zeros({5})));
      },
      {"separable_conv2d: depthwise step", "bias"});
}

// The snippet of docs/external-weights.md (keep the two in step).
TEST(DocsExternal, ExampleRuns) {
  nn::manual_seed(0);
  ag::Variable x(Tensor::uniform({4, 8, 16, 16}, -1, 1, 1));
  ag::Variable z(Tensor::normal({4, 32}, 0, 1, 2));
  nn::Linear hyper({.in = 32, .out = 16 * 8 * 3 * 3});
  ag::Variable w = ag::reshape(hyper(z), {4, 16, 8, 3, 3});
  ag::Variable y = ag::conv2d_per_sample(x, w, {}, {.padding = 1});
  nn::Linear affine({.in = 32, .out = 8});
  ag::Variable weight(Tensor::normal({16, 8, 3, 3}, 0, 1, 3), true);
  ag::Variable s = ag::add(affine(z), 1.0);
  ag::Variable m = ag::modulated_conv2d(x, weight, s, {.padding = 1});
  ag::Variable dw(Tensor::uniform({16, 1, 3, 3}, -1, 1, 4), true);
  ag::Variable pw(Tensor::uniform({24, 16, 1, 1}, -1, 1, 5), true);
  ag::Variable t = ag::separable_conv2d(x, dw, pw, {}, {}, {.stride = {2}, .padding = 1});
  ag::sum(y).backward();
  EXPECT_EQ(y.shape(), (Shape{4, 16, 16, 16}));
  EXPECT_EQ(m.shape(), (Shape{4, 16, 16, 16}));
  EXPECT_EQ(t.shape(), (Shape{4, 24, 8, 8}));
  EXPECT_TRUE(hyper.weight.grad().defined());
}

}  // namespace
}  // namespace convkit::ag
