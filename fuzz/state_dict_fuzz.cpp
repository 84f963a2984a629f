// Fuzzes Module::load_state_dict with parsed safetensors: a fixed Conv2d+BatchNorm2d+Linear model.
#include <cstring>
#include <memory>

#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "fuzz_util.hpp"

using namespace convkit;

namespace {

/// Conv2d(2, 3, 3) -> BatchNorm2d(3) -> Flatten -> Linear(12, 2): keys 0.weight, 0.bias,
/// 1.weight, 1.bias, 1.running_mean, 1.running_var, 1.num_batches_tracked, 3.weight, 3.bias.
std::unique_ptr<nn::Sequential> make_model() {
  nn::manual_seed(1);
  auto net = std::make_unique<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 2, .out = 3, .kernel = 3}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 3}));
  net->push_back(std::make_shared<nn::Flatten>());
  net->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 12, .out = 2}));
  net->eval();
  return net;
}

/// A deep copy of the model's state, to see whether a refused load changed anything.
nn::StateDict snapshot(const nn::Module& m) {
  nn::StateDict out;
  for (const auto& [name, t] : m.state_dict()) out.emplace_back(name, t.clone());
  return out;
}

bool same_bytes(const nn::StateDict& a, const nn::StateDict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Tensor x = a[i].second.contiguous(), y = b[i].second.contiguous();
    if (a[i].first != b[i].first || x.dtype() != y.dtype() || !(x.shape() == y.shape()) ||
        std::memcmp(x.raw_data(), y.raw_data(), static_cast<std::size_t>(x.nbytes())) != 0)
      return false;
  }
  return true;
}

/// Loads `state`; a refusal (InvalidArgument) must leave the model exactly as it was.
void load(nn::Module& m, const nn::StateDict& state, bool strict) {
  const nn::StateDict before = snapshot(m);
  try {
    m.load_state_dict(state, strict);
  } catch (const InvalidArgument&) {
    fuzz::check(same_bytes(before, snapshot(m)), "a refused load_state_dict changed the model");
    throw;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  io::SafetensorsFile file;
  try {
    file = io::parse_safetensors(fuzz::bytes(data, size));
  } catch (const FormatError&) {
    return 0;  // the safetensors target covers the parser
  }
  const auto net = make_model();
  fuzz::run<InvalidArgument>([&] { load(*net, file.tensors, false); });
  fuzz::run<InvalidArgument>([&] { load(*net, file.tensors, true); });
  // Whatever was loaded, the model still runs and gives a (1, 2) output.
  ag::NoGradGuard no_grad;
  const ag::Variable y = (*net)(ag::Variable(Tensor::ones({1, 2, 4, 4})));
  fuzz::check(y.value().shape() == Shape({1, 2}), "forward after load gave the wrong shape");
  return 0;
}
