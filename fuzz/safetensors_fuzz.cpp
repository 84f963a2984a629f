// Fuzzes io::parse_safetensors: a refusal is a FormatError; an accepted buffer round-trips.
#include <cstring>

#include "convkit/io/safetensors.hpp"
#include "fuzz_util.hpp"

using namespace convkit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::run<FormatError>([&] {
    const io::SafetensorsFile file = io::parse_safetensors(fuzz::bytes(data, size));
    // Accepted: the header and the data buffer add up to the input, and writing the
    // tensors back and reading them again gives the same names, shapes, dtypes and bytes.
    std::size_t payload = 0;
    for (const auto& [name, t] : file.tensors) {
      fuzz::check(!name.empty() && name != "__metadata__", "accepted a reserved tensor name");
      fuzz::check(t.defined() && t.is_contiguous(), "parsed tensor not dense");
      payload += static_cast<std::size_t>(t.nbytes());
    }
    fuzz::check(payload <= size, "tensors hold more bytes than the input");
    std::vector<std::uint8_t> again;
    fuzz::run<>([&] { again = io::serialize_safetensors(file.tensors, file.metadata); });
    const io::SafetensorsFile back = io::parse_safetensors(again);
    fuzz::check(back.metadata == file.metadata, "metadata changed in a round trip");
    fuzz::check(back.tensors.size() == file.tensors.size(), "tensor count changed");
    for (std::size_t i = 0; i < back.tensors.size(); ++i) {
      const auto& [an, a] = file.tensors[i];
      const auto& [bn, b] = back.tensors[i];
      fuzz::check(an == bn && a.dtype() == b.dtype() && a.shape() == b.shape(),
                  "tensor name, dtype or shape changed in a round trip");
      fuzz::check(a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(),
                                                 static_cast<std::size_t>(a.nbytes())) == 0,
                  "tensor bytes changed in a round trip");
    }
  });
  return 0;
}
