// Resuming from a checkpoint continues bit-identically to a run that was never interrupted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>

#include <fmt/format.h>

#include "convkit/autograd/functional.hpp"
#include "convkit/io/checkpoint.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/clip.hpp"
#include "convkit/optim/schedule.hpp"
#include "convkit/optim/sgd.hpp"

namespace convkit::optim {
namespace {

namespace fs = std::filesystem;

/// A two-layer classifier made of Variables: linear -> relu -> linear -> cross-entropy.
struct TinyModel {
  NamedVariables params;
  explicit TinyModel(std::uint64_t seed) {
    params = {{"fc1.weight", ag::Variable(Tensor::uniform({5, 6}, -0.4, 0.4, seed), true)},
              {"fc1.bias", ag::Variable(Tensor::uniform({5}, -0.4, 0.4, seed + 1), true)},
              {"fc2.weight", ag::Variable(Tensor::uniform({3, 5}, -0.4, 0.4, seed + 2), true)},
              {"fc2.bias", ag::Variable(Tensor::uniform({3}, -0.4, 0.4, seed + 3), true)}};
  }
  const ag::Variable& at(std::size_t i) const { return params[i].second; }
  ag::Variable loss(const Tensor& x, const Tensor& y) const {
    ag::Variable h = ag::relu(ag::linear(ag::Variable(x), at(0), at(1)));
    return ag::cross_entropy(ag::linear(h, at(2), at(3)), y);
  }
  std::vector<ag::Variable> variables() const {
    std::vector<ag::Variable> v;
    for (const auto& entry : params) v.push_back(entry.second);
    return v;
  }
  NamedTensors state_dict() const {
    NamedTensors out;
    for (const auto& [name, p] : params) out.emplace_back(name, p.value().clone());
    return out;
  }
  void load_state_dict(const NamedTensors& state) const {
    ASSERT_EQ(state.size(), params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      ASSERT_EQ(state[i].first, params[i].first);
      params[i].second.set_value(state[i].second);
    }
  }
};

/// One run's moving parts; `rng` is the caller-owned counter that seeds each batch.
struct Run {
  TinyModel model;
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<LrScheduler> sched;
  std::uint64_t rng = 1000;

  Run(std::uint64_t seed, const std::function<std::unique_ptr<Optimizer>(NamedVariables)>& make)
      : model(seed), opt(make(model.params)) {
    sched = std::make_unique<LrScheduler>(
        *opt, Schedule::cosine({.t_max = 10, .eta_min = 1e-3}).with_warmup({.epochs = 2}));
  }
  void train_step() {
    const Tensor x = Tensor::normal({8, 6}, 0, 1, rng);
    const Tensor u = Tensor::uniform({8}, 0, 3, rng + 1, DType::F64);
    Tensor y = Tensor::empty({8}, DType::I64);
    for (std::int64_t i = 0; i < 8; ++i)
      y.data<std::int64_t>()[i] = static_cast<std::int64_t>(u.get_flat(i));
    rng += 2;
    opt->zero_grad();
    model.loss(x, y).backward();
    clip_grad_norm(model.variables(), 0.5);
    opt->step();
    sched->step();
  }
};

void expect_resume_is_exact(const std::function<std::unique_ptr<Optimizer>(NamedVariables)>& make,
                            const std::string& label) {
  constexpr int kTotal = 9, kBefore = 4;
  Run straight(7, make);
  for (int s = 0; s < kTotal; ++s) straight.train_step();

  const fs::path path = fs::temp_directory_path() /
                        fmt::format("convkit_resume_{}_{}.safetensors", ::getpid(), label);
  {
    Run first(7, make);
    for (int s = 0; s < kBefore; ++s) first.train_step();
    io::save_checkpoint(path, {.model = first.model.state_dict(),
                               .optimizer = first.opt->state_dict(),
                               .optimizer_kind = std::string(first.opt->kind()),
                               .epoch = first.sched->epoch(),
                               .rng_state = first.rng});
  }
  // Fresh objects, initialized differently: everything must come from the file.
  Run resumed(99, make);
  const io::Checkpoint ck = io::load_checkpoint(path);
  fs::remove(path);
  ASSERT_EQ(ck.optimizer_kind, resumed.opt->kind());
  resumed.model.load_state_dict(ck.model);
  resumed.opt->load_state_dict(ck.optimizer);
  resumed.sched->set_epoch(ck.epoch);
  resumed.rng = ck.rng_state;
  EXPECT_EQ(ck.epoch, kBefore);
  for (int s = kBefore; s < kTotal; ++s) resumed.train_step();

  EXPECT_EQ(resumed.opt->lr(), straight.opt->lr());
  for (std::size_t i = 0; i < straight.model.params.size(); ++i) {
    const CloseResult r = allclose(resumed.model.at(i).value(), straight.model.at(i).value(), 0, 0);
    EXPECT_TRUE(r.ok) << label << " " << straight.model.params[i].first << ": " << r.message;
  }
  // And training did move the weights (the comparison is not trivially true).
  EXPECT_FALSE(allclose(straight.model.at(0).value(), TinyModel(7).at(0).value(), 1e-3, 0).ok);
}

TEST(Resume, SgdMomentumContinuesBitIdentically) {
  expect_resume_is_exact(
      [](NamedVariables p) {
        return std::make_unique<SGD>(std::move(p),
                                     SGDOptions{.lr = 0.3, .momentum = 0.9, .weight_decay = 1e-3});
      },
      "sgd");
}

TEST(Resume, AdamContinuesBitIdentically) {
  expect_resume_is_exact(
      [](NamedVariables p) {
        return std::make_unique<Adam>(std::move(p), AdamOptions{.lr = 0.05});
      },
      "adam");
}

TEST(Resume, AdamWAmsgradContinuesBitIdentically) {
  expect_resume_is_exact(
      [](NamedVariables p) {
        return std::make_unique<AdamW>(std::move(p), AdamWOptions{.lr = 0.05, .amsgrad = true});
      },
      "adamw");
}

}  // namespace
}  // namespace convkit::optim
