// Optimizer options validation, parameter checks, state export/import, schedules and clipping
// edges.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "convkit/autograd/functional.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/clip.hpp"
#include "convkit/optim/schedule.hpp"
#include "convkit/optim/sgd.hpp"
#include "test_util.hpp"

namespace convkit::optim {
namespace {

using test::expect_error;

ag::Variable param(std::uint64_t seed, const Shape& shape = {3, 4}) {
  return ag::Variable(Tensor::uniform(shape, -1, 1, seed, DType::F64), true);
}

TEST(OptimizerOptions, RefuseBadValuesNamingThem) {
  std::vector<ag::Variable> ps{param(1)};
  expect_error<InvalidArgument>([&] { SGD(ps, {.lr = -0.1}); }, {"SGD", "lr", "-0.1"});
  expect_error<InvalidArgument>([&] { SGD(ps, {.lr = NAN}); }, {"lr", "nan"});
  expect_error<InvalidArgument>([&] { SGD(ps, {.momentum = -1}); }, {"momentum", "-1"});
  expect_error<InvalidArgument>([&] { SGD(ps, {.dampening = 1.5}); }, {"dampening", "1.5"});
  expect_error<InvalidArgument>([&] { SGD(ps, {.weight_decay = -2}); }, {"weight_decay", "-2"});
  expect_error<InvalidArgument>([&] { SGD(ps, {.nesterov = true}); }, {"nesterov", "momentum > 0"});
  expect_error<InvalidArgument>(
      [&] { SGD(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
      {"nesterov", "dampening 0.1"});
  expect_error<InvalidArgument>([&] { Adam(ps, {.beta1 = 1.0}); }, {"Adam", "beta1", "[0, 1)"});
  expect_error<InvalidArgument>([&] { Adam(ps, {.beta2 = -0.1}); }, {"beta2", "-0.1"});
  expect_error<InvalidArgument>([&] { Adam(ps, {.eps = -1e-8}); }, {"eps"});
  expect_error<InvalidArgument>([&] { AdamW(ps, {.weight_decay = -1}); },
                                {"AdamW", "weight_decay"});
  expect_error<InvalidArgument>([&] { AdamW(ps, {.lr = -1}); }, {"AdamW", "lr"});
  SGD ok(ps, {.lr = 0.1});
  expect_error<InvalidArgument>([&] { ok.set_lr(-3); }, {"lr", "-3"});
  EXPECT_EQ(ok.lr(), 0.1);
}

// Frozen parameters (requires_grad false) may be passed, as model.parameters() hands them
// to PyTorch's optimizers when fine-tuning: they get no gradient and step() leaves them
// (and their weight decay) alone.
TEST(OptimizerParams, FrozenParametersAreAcceptedAndNeverChange) {
  ag::Variable frozen(Tensor::from_values({4}, {1.0, -2.0, 0.5, 3.0}, DType::F64), false);
  ag::Variable live = param(3);
  for (int kind = 0; kind < 3; ++kind) {
    const Tensor before = frozen.value().clone(), live_before = live.value().clone();
    std::unique_ptr<Optimizer> opt;
    if (kind == 0)
      opt = std::make_unique<SGD>(std::vector<ag::Variable>{frozen, live},
                                  SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
    if (kind == 1)
      opt = std::make_unique<Adam>(std::vector<ag::Variable>{frozen, live},
                                   AdamOptions{.weight_decay = 0.1});
    if (kind == 2)
      opt = std::make_unique<AdamW>(std::vector<ag::Variable>{frozen, live},
                                    AdamWOptions{.weight_decay = 0.1});
    opt->zero_grad();
    ag::sum(ag::mul(live, frozen)).backward();  // frozen broadcasts over live's rows
    EXPECT_FALSE(frozen.grad().defined());
    opt->step();
    EXPECT_EQ(frozen.value().to_vector(), before.to_vector()) << opt->kind();
    EXPECT_NE(live.value().to_vector(), live_before.to_vector()) << opt->kind();
  }
}

TEST(OptimizerParams, RefuseWhatCannotBeOptimized) {
  ag::Variable a = param(1);
  expect_error<InvalidArgument>([&] { SGD({a, a}, {}); }, {"'1'", "same variable"});
  expect_error<InvalidArgument>([&] { SGD({ag::Variable()}, {}); }, {"'0'", "undefined"});
  expect_error<InvalidArgument>(
      [&] { SGD({ag::Variable(Tensor::zeros({2}, DType::I64), true)}, {}); }, {"I64"});
  expect_error<InvalidArgument>([&] { SGD({ag::mul(a, 2.0)}, {}); }, {"not a leaf"});
  expect_error<InvalidArgument>(
      [&] {
        SGD(NamedVariables{{"w", a}, {"w", param(2)}}, {});
      },
      {"'w'", "twice"});
}

TEST(OptimizerStep, SkipsParametersWithoutGradientAndZeroGradDropsThem) {
  ag::Variable a = param(1), b = param(2);
  const Tensor b0 = b.value().clone();
  SGD opt({a, b}, {.lr = 0.5, .momentum = 0.9});
  a.set_grad(Tensor::ones({3, 4}, DType::F64));
  opt.step();
  EXPECT_TRUE(allclose(b.value(), b0, 0, 0));
  const NamedTensors state = opt.state_dict();
  ASSERT_EQ(state.size(), 3u);  // lr, initial_lr, 0.momentum_buffer (1 was never stepped)
  EXPECT_EQ(state[2].first, "0.momentum_buffer");
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(OptimizerStep, ChannelsLastParameterIsUpdatedLikeAContiguousOne) {
  const Tensor w = Tensor::uniform({2, 3, 4, 5}, -1, 1, 3);
  const Tensor g = Tensor::uniform({2, 3, 4, 5}, -1, 1, 4);
  ag::Variable plain(w.clone(), true), nhwc(w.to(MemoryFormat::ChannelsLast), true);
  Adam a({plain}, {.lr = 0.1}), b({nhwc}, {.lr = 0.1});
  for (int k = 0; k < 3; ++k) {
    plain.set_grad(g.clone());
    nhwc.set_grad(g.to(MemoryFormat::ChannelsLast));
    a.step();
    b.step();
  }
  EXPECT_TRUE(allclose(nhwc.value(), plain.value(), 0, 0));
}

TEST(OptimizerState, RoundTripContinuesBitIdentically) {
  for (int kind = 0; kind < 3; ++kind) {
    SCOPED_TRACE(kind);
    auto make = [&](const std::vector<ag::Variable>& ps) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.9});
      if (kind == 1) return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.1, .amsgrad = true});
      return std::make_unique<AdamW>(ps, AdamWOptions{.lr = 0.1});
    };
    std::vector<ag::Variable> p1{param(1), param(2, {5})};
    std::vector<ag::Variable> p2{ag::Variable(p1[0].value().clone(), true),
                                 ag::Variable(p1[1].value().clone(), true)};
    auto o1 = make(p1);
    auto grads = [](int k, const std::vector<ag::Variable>& ps) {
      for (std::size_t i = 0; i < ps.size(); ++i)
        ps[i].set_grad(Tensor::uniform(ps[i].shape(), -1, 1, 100 + 10 * k + i, DType::F64));
    };
    for (int k = 0; k < 3; ++k) {
      grads(k, p1);
      o1->step();
    }
    o1->set_lr(0.05);
    // A fresh optimizer over copies of the parameters, loaded from the state.
    for (std::size_t i = 0; i < p1.size(); ++i) p2[i].set_value(p1[i].value().clone());
    auto o2 = make(p2);
    o2->load_state_dict(o1->state_dict());
    EXPECT_EQ(o2->lr(), 0.05);
    for (int k = 3; k < 6; ++k) {
      grads(k, p1);
      o1->step();
      grads(k, p2);
      o2->step();
    }
    for (std::size_t i = 0; i < p1.size(); ++i)
      EXPECT_TRUE(allclose(p2[i].value(), p1[i].value(), 0, 0));
  }
}

TEST(OptimizerState, LoadRefusesForeignStateAndStaysUnchanged) {
  ag::Variable a = param(1);
  Adam adam({a}, {.lr = 0.1});
  a.set_grad(Tensor::ones({3, 4}, DType::F64));
  adam.step();
  NamedTensors state = adam.state_dict();

  SGD sgd({param(5)}, {.lr = 0.3, .momentum = 0.9});
  expect_error<InvalidArgument>([&] { sgd.load_state_dict(state); },
                                {"SGD", "unexpected keys", "0.exp_avg"});
  EXPECT_EQ(sgd.lr(), 0.3);

  Adam ams({param(5)}, {.lr = 0.3, .amsgrad = true});
  expect_error<InvalidArgument>([&] { ams.load_state_dict(state); }, {"0.max_exp_avg_sq"});

  Adam other_shape({param(5, {12})}, {.lr = 0.3});
  expect_error<InvalidArgument>([&] { other_shape.load_state_dict(state); },
                                {"0.exp_avg", "[3, 4]", "[12]"});
  NamedTensors extra = state;
  extra.emplace_back("1.exp_avg", Tensor::zeros({1}));
  Adam fresh({param(5)}, {.lr = 0.3});
  expect_error<InvalidArgument>([&] { fresh.load_state_dict(extra); },
                                {"unexpected keys", "'1.exp_avg'"});
  EXPECT_EQ(fresh.lr(), 0.3);
  NamedTensors no_lr(state.begin() + 1, state.end());
  expect_error<InvalidArgument>([&] { fresh.load_state_dict(no_lr); }, {"'lr' is missing"});
}

TEST(Schedules, ClosedFormsAndValidation) {
  const Schedule cos = Schedule::cosine({.t_max = 4, .eta_min = 0.0});
  EXPECT_DOUBLE_EQ(cos.lr(1.0, 0), 1.0);
  EXPECT_DOUBLE_EQ(cos.lr(1.0, 2), 0.5);
  EXPECT_NEAR(cos.lr(1.0, 4), 0.0, 1e-16);
  const Schedule warm = Schedule::step_decay({.step_size = 2, .gamma = 0.5})
                            .with_warmup({.epochs = 2, .start_factor = 0.5});
  EXPECT_DOUBLE_EQ(warm.lr(1.0, 0), 0.5);
  EXPECT_DOUBLE_EQ(warm.lr(1.0, 1), 0.75);
  EXPECT_DOUBLE_EQ(warm.lr(1.0, 2), 1.0);
  EXPECT_DOUBLE_EQ(warm.lr(1.0, 4), 0.5);
  EXPECT_DOUBLE_EQ(Schedule::constant().with_warmup({.epochs = 0}).lr(0.3, 7), 0.3);
  expect_error<InvalidArgument>([] { Schedule::cosine({.t_max = 0}); }, {"t_max", "0"});
  expect_error<InvalidArgument>([] { Schedule::cosine({.t_max = 3, .eta_min = -1}); }, {"eta_min"});
  expect_error<InvalidArgument>([] { Schedule::step_decay({.step_size = 2, .gamma = 0}); },
                                {"gamma"});
  expect_error<InvalidArgument>([] { Schedule::step_decay({.step_size = -1}); }, {"step_size"});
  expect_error<InvalidArgument>(
      [] { Schedule::constant().with_warmup({.epochs = 3, .start_factor = 0}); }, {"start_factor"});
  expect_error<InvalidArgument>([&] { cos.lr(1.0, -1); }, {"epoch", "-1"});
}

TEST(Schedules, SchedulerScalesTheInitialLrEvenAfterLoadingState) {
  ag::Variable a = param(1);
  SGD opt({a}, {.lr = 0.2});
  LrScheduler sched(opt, Schedule::step_decay({.step_size = 1, .gamma = 0.5}));
  sched.step();
  sched.step();
  EXPECT_DOUBLE_EQ(opt.lr(), 0.05);
  SGD resumed({param(2)}, {.lr = 99});  // constructed with another rate: initial_lr is restored
  resumed.load_state_dict(opt.state_dict());
  LrScheduler again(resumed, Schedule::step_decay({.step_size = 1, .gamma = 0.5}));
  again.set_epoch(2);
  EXPECT_DOUBLE_EQ(resumed.lr(), 0.05);
}

TEST(Clip, EdgeCases) {
  EXPECT_EQ(clip_grad_norm({param(1)}, 1.0), 0.0);  // no gradients at all
  ag::Variable a = param(1);
  a.set_grad(Tensor::full({3, 4}, 1.0, DType::F64));
  expect_error<InvalidArgument>([&] { clip_grad_norm({a}, -1); }, {"max_norm", "-1"});
  expect_error<InvalidArgument>([&] { clip_grad_norm({a}, 1, 0); }, {"norm_type", "0"});
  EXPECT_DOUBLE_EQ(clip_grad_norm({a}, 100.0), std::sqrt(12.0));
  EXPECT_EQ(a.grad().get_flat(0), 1.0);  // not clipped
  a.grad().set_flat(3, std::numeric_limits<double>::infinity());
  expect_error<InvalidArgument>([&] { clip_grad_norm({a}, 1.0, 2.0, true); }, {"non-finite"});
  EXPECT_EQ(a.grad().get_flat(0), 1.0);
}

}  // namespace
}  // namespace convkit::optim
