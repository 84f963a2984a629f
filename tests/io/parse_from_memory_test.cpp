// The from-memory parsers (parse_cifar10, parse_mnist, parse_checkpoint) read what the file
// loaders read, and refuse malformed bytes with a FormatError naming the source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "convkit/io/checkpoint.hpp"
#include "convkit/io/datasets.hpp"
#include "convkit/io/safetensors.hpp"
#include "test_util.hpp"

namespace convkit::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using test::expect_error;

/// `records` CIFAR-10 records: label r % 10, pixel k of record r = (r * 7 + k * 13) % 256.
Bytes cifar(int records) {
  Bytes b;
  for (int r = 0; r < records; ++r) {
    b.push_back(static_cast<std::uint8_t>(r % 10));
    for (int k = 0; k < 3072; ++k) b.push_back(static_cast<std::uint8_t>((r * 7 + k * 13) % 256));
  }
  return b;
}

/// An IDX file: big-endian magic and sizes, then `body`.
Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& body) {
  Bytes b;
  auto put = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put(magic);
  for (std::uint32_t d : dims) put(d);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

TEST(ParseFromMemory, Cifar10ReadsRecords) {
  const Dataset d = parse_cifar10(cifar(12));
  ASSERT_EQ(d.images.shape(), Shape({12, 3, 32, 32}));
  EXPECT_EQ(d.labels.data<std::int64_t>()[11], 1);
  EXPECT_EQ(d.class_names.front(), "airplane");
  // Record 11, channel 2 (blue), row 31, column 5: pixel byte 2 * 1024 + 31 * 32 + 5.
  const int k = 2 * 1024 + 31 * 32 + 5;
  EXPECT_FLOAT_EQ(d.images.data<float>()[11 * 3072 + k],
                  static_cast<float>((11 * 7 + k * 13) % 256) / 255.0f);
}

TEST(ParseFromMemory, Cifar10RefusesBadBytes) {
  expect_error<FormatError>([] { parse_cifar10({}, "empty.bin"); },
                            {"'empty.bin'", "has 0 bytes", "positive multiple of 3073"});
  Bytes cut = cifar(2);
  cut.pop_back();
  expect_error<FormatError>([&] { parse_cifar10(cut); }, {"'<buffer>'", "has 6145 bytes"});
  Bytes bad = cifar(3);
  bad[2 * 3073] = 10;
  expect_error<FormatError>([&] { parse_cifar10(bad, "b.bin"); },
                            {"'b.bin'", "record 2 is mislabelled", "label 10"});
}

TEST(ParseFromMemory, MnistReadsImagesAndLabels) {
  Bytes pixels(2 * 3 * 4);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 10);
  const Dataset d = parse_mnist(idx(0x803, {2, 3, 4}, pixels), idx(0x801, {2}, {7, 9}));
  ASSERT_EQ(d.images.shape(), Shape({2, 1, 3, 4}));
  EXPECT_EQ(d.labels.data<std::int64_t>()[0], 7);
  EXPECT_EQ(d.labels.data<std::int64_t>()[1], 9);
  EXPECT_FLOAT_EQ(d.images.data<float>()[23], 230.0f / 255.0f);
}

TEST(ParseFromMemory, MnistRefusesBadBytes) {
  const Bytes images = idx(0x803, {2, 1, 1}, {0, 1}), labels = idx(0x801, {2}, {0, 1});
  expect_error<FormatError>([&] { parse_mnist(labels, labels, "im", "lb"); },
                            {"'im'", "not an uncompressed IDX file of images", "0x00000801"});
  expect_error<FormatError>(
      [&] {
        parse_mnist(images, idx(0x801, {3}, {0, 1, 2}));
      },
      {"disagree", "'<images>' holds 2 images", "'<labels>' 3 labels"});
  expect_error<FormatError>(
      [&] {
        parse_mnist(idx(0x803, {5, 1, 1}, {0, 1}), labels);
      },
      {"'<images>' is truncated", "5 images"});
  expect_error<FormatError>(
      [&] {
        parse_mnist(images, idx(0x801, {2}, {0, 10}));
      },
      {"record 1 is mislabelled", "label 10"});
  // Sizes whose product would overflow a 64-bit count are refused as truncated.
  expect_error<FormatError>(
      [&] {
        parse_mnist(idx(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {0, 1}), labels);
      },
      {"truncated", "4294967295 images"});
}

TEST(ParseFromMemory, CheckpointEqualsLoadCheckpoint) {
  const fs::path path =
      fs::temp_directory_path() / fmt::format("convkit_parse_ckpt_{}.safetensors", ::getpid());
  save_checkpoint(path, {.model = {{"w", Tensor::from_values({2}, {1, 2})}},
                         .optimizer = {{"0.m", Tensor::zeros({2})}},
                         .optimizer_kind = "SGD",
                         .epoch = 4,
                         .rng_state = 99,
                         .rng_states = {{"drop", 5}},
                         .extra = {{"note", "x"}}});
  std::ifstream in(path, std::ios::binary);
  const Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Checkpoint a = load_checkpoint(path), b = parse_checkpoint(bytes);
  fs::remove(path);
  EXPECT_EQ(b.epoch, 4);
  EXPECT_EQ(b.rng_state, 99u);
  EXPECT_EQ(b.optimizer_kind, a.optimizer_kind);
  EXPECT_EQ(b.rng_states, a.rng_states);
  EXPECT_EQ(b.extra, a.extra);
  ASSERT_EQ(b.model.size(), 1u);
  EXPECT_EQ(b.model[0].first, "w");
  EXPECT_TRUE(allclose(b.model[0].second, a.model[0].second));
  ASSERT_EQ(b.optimizer.size(), 1u);
  EXPECT_EQ(b.optimizer[0].first, "0.m");
}

TEST(ParseFromMemory, CheckpointRefusesBadBytes) {
  expect_error<FormatError>([] { parse_checkpoint({}, "ck"); },
                            {"safetensors file 'ck'", "too short"});
  const Bytes plain = serialize_safetensors({{"model.w", Tensor::zeros({1})}});
  expect_error<FormatError>([&] { parse_checkpoint(plain, "ck"); },
                            {"checkpoint 'ck'", "no 'format'"});
  const Bytes negative = serialize_safetensors({}, {{"format", "convkit.checkpoint"},
                                                    {"format_version", "1"},
                                                    {"epoch", "-3"},
                                                    {"rng_state", "0"},
                                                    {"optimizer", ""}});
  expect_error<FormatError>([&] { parse_checkpoint(negative); },
                            {"checkpoint '<buffer>'", "epoch '-3'"});
}

}  // namespace
}  // namespace convkit::io
