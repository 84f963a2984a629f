// Checks the autograd ops against PyTorch fixtures (forward and gradients, float64 and float32).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convkit/autograd/functional.hpp"
#include "convkit/io/safetensors.hpp"

namespace convkit::ag {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Written by tools/fixtures/make_autograd_fixtures.py.
const fs::path kDir = fs::path(CONVKIT_FIXTURE_DIR) / "autograd";

std::vector<fs::path> fixture_files() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(kDir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".safetensors")
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  return files;
}

struct Case {
  fs::path path;
  DType dtype;
};

[[maybe_unused]] void PrintTo(const Case& c, std::ostream* os) {
  *os << c.path.filename().string() << ' ' << dtype_name(c.dtype);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const fs::path& p : fixture_files()) {
    out.push_back({p, DType::F64});
    out.push_back({p, DType::F32});
  }
  return out;
}

std::vector<std::int64_t> ints(const json& j) {
  if (j.is_number()) return {j.get<std::int64_t>()};
  return j.get<std::vector<std::int64_t>>();
}

Reduction reduction_of(const std::string& s) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  return Reduction::None;
}

class AutogradFixture : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    file_ = io::load_safetensors(GetParam().path);
    cfg_ = json::parse(file_.metadata.at("config"));
    dtype_ = GetParam().dtype;
    rtol_ = dtype_ == DType::F64 ? 1e-10 : 1e-4;
    atol_ = dtype_ == DType::F64 ? 1e-12 : 2e-5;
    // PyTorch 1.13's hardsigmoid backward multiplies by a float32 1/6 even in float64;
    // convkit uses the exact constant, so these gradients agree to float32 precision only.
    if (cfg_.at("op") == "activation" && cfg_.at("fn") == "hardsigmoid") rtol_ = std::max(rtol_, 1e-6);
  }

  Tensor get(const std::string& name) const { return file_.at(name).to(dtype_); }
  Variable leaf(const std::string& name) const { return Variable(get(name), true); }

  void expect_close(const Tensor& actual, const std::string& name) const {
    const Tensor expected = file_.at(name);
    ASSERT_EQ(actual.shape(), expected.shape()) << name;
    const CloseResult r = allclose(actual.to(DType::F64), expected, rtol_, atol_);
    EXPECT_TRUE(r) << name << ": " << r.message;
  }

  io::SafetensorsFile file_;
  json cfg_;
  DType dtype_ = DType::F64;
  double rtol_ = 0, atol_ = 0;
};

TEST_P(AutogradFixture, ForwardAndGradients) {
  const std::string op = cfg_.at("op");
  if (op == "batch_norm") {
    const bool affine = cfg_.at("affine");
    const Tensor rm = get("running_mean").clone(), rv = get("running_var").clone();
    const double momentum = cfg_.at("momentum"), eps = cfg_.at("eps");
    for (const std::string phase : {"", "eval."}) {
      const Variable x = leaf("x");
      const Variable w = affine ? leaf("w") : Variable(), b = affine ? leaf("b") : Variable();
      const Variable y = batch_norm(x, rm, rv, w, b, phase.empty(), momentum, eps);
      expect_close(y.value(), phase + "y");
      y.backward(get(phase + "gy"));
      expect_close(x.grad(), phase + "grad.x");
      if (affine) {
        expect_close(w.grad(), phase + "grad.w");
        expect_close(b.grad(), phase + "grad.b");
      }
      if (phase.empty()) {
        expect_close(rm, "running_mean_after");
        expect_close(rv, "running_var_after");
      }
    }
    return;
  }

  std::vector<std::pair<std::string, Variable>> leaves;
  Variable y;
  if (op == "binary") {
    const Variable a = leaf("a"), b = leaf("b");
    leaves = {{"a", a}, {"b", b}};
    const std::string fn = cfg_.at("fn");
    y = fn == "add" ? a + b : fn == "sub" ? a - b : fn == "mul" ? a * b : a / b;
  } else if (op == "cross_entropy") {
    const Variable x = leaf("x");
    leaves = {{"x", x}};
    y = cross_entropy(x, get("target"), reduction_of(cfg_.at("reduction")),
                      cfg_.at("label_smoothing").get<double>());
  } else if (op == "mse_loss") {
    const Variable x = leaf("x"), t = leaf("target");
    leaves = {{"x", x}, {"target", t}};
    y = mse_loss(x, t, reduction_of(cfg_.at("reduction")));
  } else {
    const Variable x = leaf("x");
    leaves = {{"x", x}};
    if (op == "max_pool2d" || op == "avg_pool2d") {
      Pool2dOptions o;
      o.kernel = ints(cfg_.at("kernel"));
      o.stride = ints(cfg_.at("stride"));
      o.padding = ints(cfg_.at("padding"));
      o.dilation = ints(cfg_.at("dilation"));
      o.ceil_mode = cfg_.at("ceil_mode");
      o.count_include_pad = cfg_.at("count_include_pad");
      y = op == "max_pool2d" ? max_pool2d(x, o) : avg_pool2d(x, o);
    } else if (op == "adaptive_avg_pool2d") {
      y = adaptive_avg_pool2d(x, cfg_.at("oh"), cfg_.at("ow"));
    } else if (op == "softmax") {
      y = softmax(x, cfg_.at("dim"));
    } else if (op == "log_softmax") {
      y = log_softmax(x, cfg_.at("dim"));
    } else if (op == "activation") {
      const std::string fn = cfg_.at("fn");
      if (fn == "relu") y = relu(x);
      else if (fn == "relu6") y = relu6(x);
      else if (fn == "hardsigmoid") y = hardsigmoid(x);
      else if (fn == "hardswish") y = hardswish(x);
      else if (fn == "leaky_relu") y = leaky_relu(x, cfg_.at("slope"));
      else if (fn == "sigmoid") y = sigmoid(x);
      else if (fn == "silu") y = silu(x);
      else if (fn == "tanh") y = tanh(x);
      else FAIL() << "unknown activation " << fn;
    } else {
      FAIL() << "unknown op " << op;
    }
  }
  expect_close(y.value(), "y");
  y.backward(get("gy"));
  for (const auto& [name, v] : leaves) expect_close(v.grad(), "grad." + name);
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
  std::string name = info.param.path.stem().string();
  for (char& c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) c = '_';
  return name + (info.param.dtype == DType::F32 ? "_f32" : "_f64");
}

INSTANTIATE_TEST_SUITE_P(PyTorch, AutogradFixture, testing::ValuesIn(cases()), case_name);

TEST(AutogradFixtureFiles, Present) { EXPECT_GE(fixture_files().size(), 60u); }

}  // namespace
}  // namespace convkit::ag
