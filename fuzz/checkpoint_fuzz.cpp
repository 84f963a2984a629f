// Fuzzes io::parse_checkpoint (load_checkpoint's parser): a refusal is a FormatError.
#include "convkit/io/checkpoint.hpp"
#include "fuzz_util.hpp"

using namespace convkit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::run<FormatError>([&] {
    const io::Checkpoint c = io::parse_checkpoint(fuzz::bytes(data, size));
    fuzz::check(c.epoch >= 0, "accepted a negative epoch");
    fuzz::check(c.optimizer.empty() || !c.optimizer_kind.empty(),
                "accepted optimizer state without an optimizer kind");
    for (const auto& [name, t] : c.model)
      fuzz::check(!name.empty() && t.defined(), "bad model entry");
    for (const auto& [name, t] : c.optimizer)
      fuzz::check(!name.empty() && t.defined(), "bad optimizer entry");
    for (const auto& [name, state] : c.rng_states) fuzz::check(!name.empty(), "empty rng name");
  });
  return 0;
}
