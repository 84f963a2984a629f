// A model with Dropout resumes bit-identically when its generator states travel with the
// checkpoint (io::Checkpoint::rng_states), and visibly does not when they are left out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "convkit/autograd/functional.hpp"
#include "convkit/io/checkpoint.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/optim/sgd.hpp"
#include "test_util.hpp"

namespace convkit::io {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<nn::Sequential> make_model() {
  nn::manual_seed(11);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(
      std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 3, .out = 6, .kernel = 3, .padding = 1}));
  m->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 6}));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Dropout>(0.3, 5));
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Dropout>(0.2, 9));
  m->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 6 * 5 * 5, .out = 4}));
  return m;
}

void step(nn::Module& model, optim::SGD& opt, int i) {
  const Tensor x = Tensor::uniform({4, 3, 5, 5}, -1, 1, 100 + static_cast<std::uint64_t>(i));
  const Tensor y = Tensor::from_values({4}, {0, 1, 2, 3}, DType::I64);
  model.train();
  opt.zero_grad();
  ag::cross_entropy(model(ag::Variable(x)), y).backward();
  opt.step();
}

// 6 steps straight, or 3 steps, a checkpoint, fresh objects and 3 more steps.
nn::StateDict run(bool interrupted, bool keep_rng, const fs::path& file) {
  auto model = make_model();
  optim::SGD opt(model->named_parameters(), {.lr = 0.05, .momentum = 0.9});
  if (!interrupted) {
    for (int i = 0; i < 6; ++i) step(*model, opt, i);
    return model->state_dict();
  }
  for (int i = 0; i < 3; ++i) step(*model, opt, i);
  save_checkpoint(file,
                  {.model = model->state_dict(),
                   .optimizer = opt.state_dict(),
                   .optimizer_kind = std::string(opt.kind()),
                   .epoch = 3,
                   .rng_states = keep_rng ? nn::dropout_rng_states(*model)
                                          : std::vector<std::pair<std::string, std::uint64_t>>{}});
  auto resumed = make_model();
  optim::SGD opt2(resumed->named_parameters(), {.lr = 0.05, .momentum = 0.9});
  const Checkpoint c = load_checkpoint(file);
  resumed->load_state_dict(c.model);
  opt2.load_state_dict(c.optimizer);
  if (keep_rng) nn::load_dropout_rng_states(*resumed, c.rng_states);
  for (int i = 3; i < 6; ++i) step(*resumed, opt2, i);
  return resumed->state_dict();
}

bool same_bits(const nn::StateDict& a, const nn::StateDict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || a[i].second.to_vector() != b[i].second.to_vector())
      return false;
  return true;
}

TEST(CheckpointDropout, ResumeWithGeneratorStatesIsBitIdentical) {
  const fs::path file =
      fs::temp_directory_path() / ("convkit_dropout_" + std::to_string(getpid()) + ".safetensors");
  const nn::StateDict straight = run(false, false, file);
  EXPECT_TRUE(same_bits(straight, run(true, true, file)));
  // Without the states the resumed Dropouts start over from their seeds: other masks.
  EXPECT_FALSE(same_bits(straight, run(true, false, file)));
  fs::remove(file);
}

TEST(CheckpointDropout, StatesAreNamedByPathAndChecked) {
  auto model = make_model();
  const auto states = nn::dropout_rng_states(*model);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].first, "3");
  EXPECT_EQ(states[1].first, "5");
  test::expect_error<InvalidArgument>(
      [&] {
        nn::load_dropout_rng_states(*model, {{"3", 1}, {"9", 2}});
      },
      {"load_dropout_rng_states", "no state for Dropout [5]", "for no Dropout [9]"});
  const fs::path file =
      fs::temp_directory_path() / ("convkit_rng_" + std::to_string(getpid()) + ".safetensors");
  save_checkpoint(file, {.rng_states = {{"a.b", 18446744073709551615ull}, {"c", 0}}});
  const Checkpoint c = load_checkpoint(file);
  ASSERT_EQ(c.rng_states.size(), 2u);
  EXPECT_EQ(c.rng_states[0],
            (std::pair<std::string, std::uint64_t>{"a.b", 18446744073709551615ull}));
  test::expect_error<InvalidArgument>(
      [&] {
        save_checkpoint(file, {.rng_states = {{"x", 1}, {"x", 2}}});
      },
      {"rng_states", "'x'", "twice"});
  save_safetensors(file, {},
                   {{"format", "convkit.checkpoint"},
                    {"format_version", "1"},
                    {"epoch", "0"},
                    {"rng_state", "0"},
                    {"optimizer", ""},
                    {"rng.d", "-4"}});
  test::expect_error<FormatError>([&] { load_checkpoint(file); }, {"'rng.d'", "-4"});
  fs::remove(file);
}

}  // namespace
}  // namespace convkit::io
