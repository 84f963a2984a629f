// SGD, Adam, AdamW, schedules and clip_grad_norm against PyTorch (tests/fixtures/optim).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convkit/io/safetensors.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/clip.hpp"
#include "convkit/optim/schedule.hpp"
#include "convkit/optim/sgd.hpp"

namespace convkit::optim {
namespace {

using json = nlohmann::json;
constexpr int kParams = 3;

io::SafetensorsFile fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/optim/" + name + ".safetensors");
}

json configs(const io::SafetensorsFile& f) { return json::parse(f.metadata.at("configs")); }

/// The tolerance of the brief: rtol 1e-6 in float64, 1e-5 in float32 (PyTorch may fuse
/// multiply-adds in its vector kernels; we do not, so float32 can differ in the last bits).
double rtol(const std::string& tag) { return tag == "f32" ? 1e-5 : 1e-6; }

void expect_close(const Tensor& got, const Tensor& want, const std::string& tag,
                  const std::string& what) {
  const CloseResult r = allclose(got, want, rtol(tag), tag == "f32" ? 1e-7 : 1e-12);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

std::unique_ptr<Optimizer> make(const json& c, const std::vector<ag::Variable>& params) {
  const json& o = c.at("options");
  const std::string kind = c.at("kind");
  if (kind == "SGD")
    return std::make_unique<SGD>(params, SGDOptions{.lr = o.at("lr"),
                                                    .momentum = o.value("momentum", 0.0),
                                                    .dampening = o.value("dampening", 0.0),
                                                    .weight_decay = o.value("weight_decay", 0.0),
                                                    .nesterov = o.value("nesterov", false),
                                                    .maximize = o.value("maximize", false)});
  const std::vector<double> betas = o.value("betas", std::vector<double>{0.9, 0.999});
  if (kind == "Adam")
    return std::make_unique<Adam>(params, AdamOptions{.lr = o.at("lr"),
                                                      .beta1 = betas[0],
                                                      .beta2 = betas[1],
                                                      .eps = o.value("eps", 1e-8),
                                                      .weight_decay = o.value("weight_decay", 0.0),
                                                      .amsgrad = o.value("amsgrad", false),
                                                      .maximize = o.value("maximize", false)});
  return std::make_unique<AdamW>(params, AdamWOptions{.lr = o.at("lr"),
                                                      .beta1 = betas[0],
                                                      .beta2 = betas[1],
                                                      .eps = o.value("eps", 1e-8),
                                                      .weight_decay = o.value("weight_decay", 1e-2),
                                                      .amsgrad = o.value("amsgrad", false),
                                                      .maximize = o.value("maximize", false)});
}

TEST(OptimizerFixture, EveryConfigurationMatchesPyTorchStepByStep) {
  const io::SafetensorsFile f = fixture("optimizers");
  const json all = configs(f);
  ASSERT_GE(all.size(), 11u);
  for (const json& c : all) {
    const std::string name = c.at("name");
    for (const std::string tag : {"f32", "f64"}) {
      SCOPED_TRACE(name + " " + tag);
      std::vector<ag::Variable> params;
      for (int p = 0; p < kParams; ++p)
        params.emplace_back(f.at(fmt::format("{}.init.{}", tag, p)).clone(), true);
      std::unique_ptr<Optimizer> opt = make(c, params);
      const int steps = c.at("steps");
      for (int k = 0; k < steps; ++k) {
        opt->set_lr(c.at("lr")[static_cast<std::size_t>(k)]);
        opt->zero_grad();
        for (int p = 0; p < kParams; ++p) {
          const std::string key = fmt::format("{}.grad.{}.{}", tag, k, p);
          if (f.contains(key)) params[static_cast<std::size_t>(p)].set_grad(f.at(key).clone());
        }
        opt->step();
        for (int p = 0; p < kParams; ++p)
          expect_close(params[static_cast<std::size_t>(p)].value(),
                       f.at(fmt::format("{}.{}.step{}.{}", name, tag, k, p)), tag,
                       fmt::format("param {} after step {}", p, k));
      }
      // The exported state holds PyTorch's buffers under PyTorch's names.
      const std::string prefix = fmt::format("{}.{}.state.", name, tag);
      int compared = 0;
      for (const auto& [key, value] : opt->state_dict()) {
        if (key == "lr" || key == "initial_lr") continue;
        const std::string want_key = prefix + key;
        ASSERT_TRUE(f.contains(want_key)) << "state key " << key << " is not PyTorch's";
        if (value.dtype() == DType::I64)
          EXPECT_EQ(value.get_flat(0), f.at(want_key).get_flat(0)) << key;
        else
          expect_close(value, f.at(want_key), tag, "state " + key);
        ++compared;
      }
      int expected = 0;
      for (const auto& entry : f.tensors) expected += entry.first.starts_with(prefix) ? 1 : 0;
      EXPECT_EQ(compared, expected) << "PyTorch keeps state we do not export";
    }
  }
}

Schedule schedule_of(const json& c) {
  Schedule s = c.at("kind") == "cosine"
                   ? Schedule::cosine({.t_max = c.at("t_max"), .eta_min = c.at("eta_min")})
                   : Schedule::step_decay({.step_size = c.at("step_size"), .gamma = c.at("gamma")});
  if (c.contains("warmup"))
    s = s.with_warmup({.epochs = c.at("warmup"), .start_factor = c.at("start_factor")});
  return s;
}

TEST(ScheduleFixture, LearningRatePerEpochMatchesPyTorchSchedulers) {
  const io::SafetensorsFile f = fixture("schedules");
  for (const json& c : configs(f)) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const Tensor want = f.at(name);
    // Driven through an optimizer, as a training loop does.
    ag::Variable w(Tensor::zeros({1}), true);
    SGD opt({w}, {.lr = c.at("base_lr")});
    LrScheduler sched(opt, schedule_of(c));
    for (std::int64_t e = 0; e < want.numel(); ++e) {
      const double expected = want.get_flat(e);
      EXPECT_NEAR(opt.lr(), expected, 1e-12 + 1e-9 * std::abs(expected)) << "epoch " << e;
      sched.step();
    }
    // Jumping straight to an epoch (resume) gives the same rate as stepping there.
    sched.set_epoch(3);
    EXPECT_NEAR(opt.lr(), want.get_flat(3), 1e-12);
  }
}

TEST(ClipFixture, TotalNormAndClippedGradientsMatchPyTorch) {
  const io::SafetensorsFile f = fixture("clip");
  for (const json& c : configs(f)) {
    const std::string name = c.at("name");
    const double norm_type = c.at("norm_type").is_string() ? std::numeric_limits<double>::infinity()
                                                           : c.at("norm_type").get<double>();
    for (const std::string tag : {"f32", "f64"}) {
      SCOPED_TRACE(name + " " + tag);
      std::vector<ag::Variable> params;
      for (int p = 0; p < kParams; ++p) {
        const Tensor g = f.at(fmt::format("{}.grad.{}", tag, p));
        params.emplace_back(Tensor::zeros(g.shape(), g.dtype()), true);
        params.back().set_grad(g.clone());
      }
      const double total = clip_grad_norm(params, c.at("max_norm"), norm_type);
      const double want = f.at(fmt::format("{}.{}.total", name, tag)).get_flat(0);
      EXPECT_NEAR(total, want, rtol(tag) * want);
      for (int p = 0; p < kParams; ++p)
        expect_close(params[static_cast<std::size_t>(p)].grad(),
                     f.at(fmt::format("{}.{}.clipped.{}", name, tag, p)), tag,
                     fmt::format("clipped grad {}", p));
    }
  }
}

}  // namespace
}  // namespace convkit::optim
