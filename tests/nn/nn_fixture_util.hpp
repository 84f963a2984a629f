// Helpers of the nn tests: fixture files, state dicts by prefix, deterministic weights.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "convkit/io/safetensors.hpp"
#include "convkit/nn/module.hpp"

namespace convkit::test {

/// tests/fixtures/nn/<name>.safetensors (written by tools/fixtures/make_nn_fixtures.py).
inline io::SafetensorsFile nn_fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/nn/" + name + ".safetensors");
}

/// The tensors whose names start with `prefix`, with the prefix removed, in file order.
inline nn::StateDict with_prefix(const io::SafetensorsFile& file, const std::string& prefix) {
  nn::StateDict out;
  for (const auto& [name, t] : file.tensors)
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

/// FNV-1a 64 of a key: the seed of its deterministic tensor (as in the generator).
inline std::uint64_t fnv1a64(const std::string& text) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

/// The generator's det_range + det_uniform: the deterministic value of state_dict entry `key`.
inline Tensor deterministic_entry(const std::string& key, const Shape& shape) {
  auto ends = [&](const std::string& s) {
    return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
  };
  double low = 0, high = 0;
  if (ends("running_var")) {
    low = 0.5, high = 1.5;
  } else if (ends("running_mean") || ends("bias")) {
    low = -0.1, high = 0.1;
  } else if (shape.rank() == 1) {
    low = 0.5, high = 1.5;
  } else {
    const double bound = std::sqrt(6.0 / static_cast<double>(shape.numel() / shape[0]));
    low = -bound, high = bound;
  }
  return Tensor::uniform(shape, low, high, fnv1a64(key));
}

/// Expects allclose(got, want), naming `what` on failure.
inline void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                         const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": no value";
  ASSERT_EQ(got.shape(), want.shape()) << what << ": shape " << got.shape().str() << " vs "
                                       << want.shape().str();
  const CloseResult r = allclose(got.to(DType::F64), want.to(DType::F64), rtol, atol);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

}  // namespace convkit::test
