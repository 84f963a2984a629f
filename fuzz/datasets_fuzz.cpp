// Fuzzes io::parse_cifar10 and io::parse_mnist: a refusal is a FormatError.
//
// Input: one selector byte, then for CIFAR-10 (even selector) the batch file's bytes; for
// MNIST (odd selector) a 4-byte little-endian length L, L bytes of the images file and the
// rest as the labels file (L is clipped to what is there).
#include <algorithm>
#include <cmath>

#include "convkit/io/datasets.hpp"
#include "fuzz_util.hpp"

using namespace convkit;

namespace {

/// What every loaded data set must satisfy, and the operations that read one.
void check_dataset(const io::Dataset& d, std::int64_t channels) {
  const Shape& s = d.images.shape();
  fuzz::check(s.rank() == 4 && s[0] > 0 && s[1] == channels && d.labels.shape() == Shape({s[0]}),
              "loaded data set has the wrong shapes");
  const float* x = d.images.data<float>();
  for (std::int64_t i = 0; i < s.numel(); ++i)
    fuzz::check(x[i] >= 0.0f && x[i] <= 1.0f, "pixel outside [0, 1]");
  const std::int64_t* y = d.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < s[0]; ++i) fuzz::check(y[i] >= 0 && y[i] < 10, "label outside 0..9");
  const std::vector<std::int64_t> last{s[0] - 1, 0};
  const auto [xb, yb] = io::gather(d, last);
  fuzz::check(xb.size(0) == 2 && yb.size(0) == 2, "gather gave the wrong batch size");
  const auto [mean, sd] = io::channel_stats(d);
  for (std::size_t c = 0; c < mean.size(); ++c)
    fuzz::check(std::isfinite(mean[c]) && std::isfinite(sd[c]) && sd[c] >= 0, "bad statistics");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool mnist = (data[0] & 1) != 0;
  const std::span<const std::uint8_t> rest = fuzz::bytes(data + 1, size - 1);
  fuzz::run<FormatError>([&] {
    if (!mnist) {
      check_dataset(io::parse_cifar10(rest), 3);
      return;
    }
    if (rest.size() < 4) return;
    std::size_t len = 0;
    for (std::size_t i = 0; i < 4; ++i) len |= std::size_t{rest[i]} << (8 * i);
    len = std::min(len, rest.size() - 4);
    check_dataset(io::parse_mnist(rest.subspan(4, len), rest.subspan(4 + len)), 1);
  });
  return 0;
}
