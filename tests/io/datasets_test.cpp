// Data-set files (CIFAR-10, MNIST) read back exactly or refused clearly; batches and augmentation.
#include "convkit/io/datasets.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "test_util.hpp"

namespace convkit::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;
using test::expect_error;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("convkit_data_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const Bytes& bytes) const {
    std::ofstream(path / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
};

/// Pixel byte k of record r of file f: distinct enough to catch any mix-up.
unsigned char pixel(int f, int r, int k) {
  return static_cast<unsigned char>((f * 31 + r * 7 + k * 13) % 256);
}

/// A CIFAR-10 batch file of `records` records, file number f, labels (f + r) % 10.
Bytes cifar_file(int f, int records) {
  Bytes b;
  for (int r = 0; r < records; ++r) {
    b.push_back(static_cast<unsigned char>((f + r) % 10));
    for (int k = 0; k < 3072; ++k) b.push_back(pixel(f, r, k));
  }
  return b;
}

/// data_batch_1..5 with 3 records each (f = 1..5), test_batch with 2 (f = 0).
void write_cifar(const TempDir& dir, const fs::path& sub = {}) {
  fs::create_directories(dir.path / sub);
  for (int f = 1; f <= 5; ++f)
    dir.write((sub / fmt::format("data_batch_{}.bin", f)).string(), cifar_file(f, 3));
  dir.write((sub / "test_batch.bin").string(), cifar_file(0, 2));
}

TEST(Datasets, Cifar10ReadsRecordsExactly) {
  TempDir dir;
  write_cifar(dir);
  const DatasetSplit s = load_cifar10(dir.path);
  ASSERT_EQ(s.train.images.shape(), Shape({15, 3, 32, 32}));
  ASSERT_EQ(s.test.images.shape(), Shape({2, 3, 32, 32}));
  EXPECT_EQ(s.train.class_names.front(), "airplane");
  EXPECT_EQ(s.train.class_names.back(), "truck");
  EXPECT_EQ(s.train.num_classes(), 10);
  for (int n = 0; n < 17; ++n) {
    const Dataset& d = n < 15 ? s.train : s.test;
    const int f = n < 15 ? 1 + n / 3 : 0, r = n < 15 ? n % 3 : n - 15, i = n < 15 ? n : n - 15;
    EXPECT_EQ(d.labels.at<std::int64_t>({i}), (f + r) % 10) << "image " << n;
    for (int c = 0; c < 3; ++c)  // planes R, G, B of 32 rows of 32
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          ASSERT_EQ(d.images.at<float>({i, c, y, x}),
                    static_cast<float>(pixel(f, r, c * 1024 + y * 32 + x)) / 255.0f)
              << "image " << n << " at " << c << "," << y << "," << x;
  }
}

TEST(Datasets, Cifar10FindsTheExtractedFolder) {
  TempDir dir;
  write_cifar(dir, "cifar-10-batches-bin");
  EXPECT_EQ(load_cifar10(dir.path).train.size(), 15);
}

TEST(Datasets, Cifar10RefusesBrokenFiles) {
  {
    TempDir dir;
    write_cifar(dir);
    fs::remove(dir.path / "data_batch_3.bin");
    expect_error<IoError>([&] { load_cifar10(dir.path); },
                          {"CIFAR-10", "data_batch_3.bin", "cannot be opened"});
  }
  {
    TempDir dir;
    write_cifar(dir);
    Bytes cut = cifar_file(4, 3);
    cut.erase(cut.end() - 100, cut.end());
    dir.write("data_batch_4.bin", cut);
    expect_error<FormatError>([&] { load_cifar10(dir.path); },
                              {"data_batch_4.bin", "9119 bytes", "multiple of 3073", "truncated"});
    dir.write("data_batch_4.bin", {});
    expect_error<FormatError>([&] { load_cifar10(dir.path); }, {"data_batch_4.bin", "has 0 bytes"});
  }
  {
    TempDir dir;
    write_cifar(dir);
    Bytes bad = cifar_file(0, 2);
    bad[3073] = 10;  // the second record's label
    dir.write("test_batch.bin", bad);
    expect_error<FormatError>([&] { load_cifar10(dir.path); },
                              {"test_batch.bin", "record 1", "mislabelled", "label 10"});
  }
}

/// An IDX file: big-endian magic and sizes, then byte k = (k * mul + add) % mod.
Bytes idx(std::uint32_t magic, std::vector<std::uint32_t> dims, std::uint32_t mul,
          std::uint32_t add, std::uint32_t mod) {
  Bytes b;
  std::uint32_t n = 1;
  dims.insert(dims.begin(), magic);
  for (std::size_t d = 0; d < dims.size(); ++d) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(dims[d] >> s));
    n *= d > 0 ? dims[d] : 1;
  }
  for (std::uint32_t k = 0; k < n; ++k)
    b.push_back(static_cast<unsigned char>((k * mul + add) % mod));
  return b;
}
Bytes idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols, std::uint32_t seed) {
  return idx(0x803, {n, rows, cols}, 29, seed, 256);
}
Bytes idx_labels(std::uint32_t n, std::uint32_t seed) { return idx(0x801, {n}, 3, seed, 10); }

/// 5 training images of rows x cols and 3 test images.
void write_mnist(const TempDir& dir, std::uint32_t rows = 28, std::uint32_t cols = 28,
                 const std::string& sep = "-") {
  dir.write("train-images" + sep + "idx3-ubyte", idx_images(5, rows, cols, 1));
  dir.write("train-labels" + sep + "idx1-ubyte", idx_labels(5, 1));
  dir.write("t10k-images" + sep + "idx3-ubyte", idx_images(3, rows, cols, 2));
  dir.write("t10k-labels" + sep + "idx1-ubyte", idx_labels(3, 2));
}

TEST(Datasets, MnistReadsImagesExactly) {
  TempDir dir;
  write_mnist(dir);
  const DatasetSplit s = load_mnist(dir.path);
  ASSERT_EQ(s.train.images.shape(), Shape({5, 1, 28, 28}));
  ASSERT_EQ(s.test.images.shape(), Shape({3, 1, 28, 28}));
  EXPECT_EQ(s.train.class_names,
            std::vector<std::string>({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  for (const auto& [d, seed] : {std::pair{&s.train, 1u}, std::pair{&s.test, 2u}}) {
    const float* x = d->images.data<float>();
    for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(d->images.numel()); ++k)
      ASSERT_EQ(x[k], static_cast<float>((k * 29 + seed) % 256) / 255.0f) << "pixel " << k;
    for (std::int64_t i = 0; i < d->size(); ++i)
      EXPECT_EQ(d->labels.at<std::int64_t>({i}), (i * 3 + seed) % 10);
  }
}

TEST(Datasets, MnistTakesSizesFromTheHeaderAndDottedNames) {
  TempDir dir;
  write_mnist(dir, 7, 5, ".");
  const DatasetSplit s = load_mnist(dir.path);
  EXPECT_EQ(s.train.images.shape(), Shape({5, 1, 7, 5}));
  EXPECT_EQ(s.test.images.at<float>({2, 0, 6, 4}),
            static_cast<float>((104 * 29 + 2) % 256) / 255.0f);
}

TEST(Datasets, MnistRefusesBrokenFiles) {
  TempDir dir;
  write_mnist(dir);
  fs::rename(dir.path / "t10k-labels-idx1-ubyte", dir.path / "t10k-labels-idx1-ubyte.gz");
  expect_error<IoError>([&] { load_mnist(dir.path); },
                        {"t10k-labels-idx1-ubyte'", "cannot be opened", "decompress"});
  write_mnist(dir);

  Bytes bad = idx_images(5, 28, 28, 1);
  bad[3] = 0x01;  // a labels magic number in the images file
  dir.write("train-images-idx3-ubyte", bad);
  expect_error<FormatError>(
      [&] { load_mnist(dir.path); },
      {"train-images-idx3-ubyte", "magic number 0x00000801", "expected 0x00000803"});
  dir.write("train-images-idx3-ubyte", {0x1f, 0x8b});  // a gzip header
  expect_error<FormatError>([&] { load_mnist(dir.path); },
                            {"train-images-idx3-ubyte", "magic number missing"});

  dir.write("train-images-idx3-ubyte", idx_images(5, 28, 28, 1));
  dir.write("train-labels-idx1-ubyte", idx_labels(4, 1));
  expect_error<FormatError>([&] { load_mnist(dir.path); }, {"train-images-idx3-ubyte", "5 images",
                                                            "train-labels-idx1-ubyte", "4 labels"});

  Bytes cut = idx_images(5, 28, 28, 1);
  cut.erase(cut.end() - 784, cut.end());  // the header still says 5 images
  dir.write("train-images-idx3-ubyte", cut);
  dir.write("train-labels-idx1-ubyte", idx_labels(5, 1));
  expect_error<FormatError>(
      [&] { load_mnist(dir.path); },
      {"train-images-idx3-ubyte", "truncated", "says 5 images (5x28x28)", "3136 bytes"});
  Bytes longer = idx_images(5, 28, 28, 1);
  longer.push_back(0);
  dir.write("train-images-idx3-ubyte", longer);
  expect_error<FormatError>([&] { load_mnist(dir.path); },
                            {"train-images-idx3-ubyte", "trailing bytes"});

  dir.write("train-images-idx3-ubyte", idx_images(5, 28, 28, 1));
  Bytes labels = idx_labels(5, 1);
  labels[8 + 2] = 11;
  dir.write("train-labels-idx1-ubyte", labels);
  expect_error<FormatError>([&] { load_mnist(dir.path); },
                            {"train-labels-idx1-ubyte", "record 2 is mislabelled", "label 11"});

  write_mnist(dir);  // test images of another size than the training ones
  dir.write("t10k-images-idx3-ubyte", idx_images(3, 12, 12, 2));
  expect_error<FormatError>([&] { load_mnist(dir.path); },
                            {"disagree", "28x28", "12x12"});
  // A folder where a file should be.
  write_mnist(dir);
  fs::remove(dir.path / "t10k-labels-idx1-ubyte");
  fs::create_directory(dir.path / "t10k-labels-idx1-ubyte");
  expect_error<IoError>([&] { load_mnist(dir.path); },
                        {"t10k-labels-idx1-ubyte", "not a regular file"});
}

TEST(Datasets, PermutationIsADeterministicPermutation) {
  const auto p = permutation(1000, 9);
  std::vector<std::int64_t> sorted = p, iota(1000);
  std::sort(sorted.begin(), sorted.end());
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_EQ(p, permutation(1000, 9));
  EXPECT_NE(p, permutation(1000, 10));
  EXPECT_NE(p, iota);
  // The same numbers on every platform (integer arithmetic only).
  EXPECT_EQ(permutation(10, 42), std::vector<std::int64_t>({0, 9, 5, 8, 6, 4, 7, 2, 1, 3}));
  EXPECT_TRUE(permutation(0, 1).empty());
  EXPECT_EQ(permutation(1, 1), std::vector<std::int64_t>({0}));
  expect_error<InvalidArgument>([] { permutation(-1, 0); }, {"permutation", "got -1"});
}

/// A data set whose every value is distinct: image i, element k holds i + k / 1000.
Dataset numbered(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
  Dataset d{Tensor::empty({n, c, h, w}), Tensor::empty({n}, DType::I64), {"a", "b", "c"}};
  const std::int64_t item = c * h * w;
  for (std::int64_t i = 0; i < n; ++i) {
    d.labels.data<std::int64_t>()[i] = i % 3;
    for (std::int64_t k = 0; k < item; ++k)
      d.images.data<float>()[i * item + k] =
          static_cast<float>(i) + static_cast<float>(k) / 1000.0f;
  }
  return d;
}

TEST(Datasets, GatherPicksImagesAndLabels) {
  const Dataset d = numbered(7, 2, 3, 4);
  const std::vector<std::int64_t> idx = {5, 0, 5, 2};
  const auto [x, y] = gather(d, idx);
  ASSERT_EQ(x.shape(), Shape({4, 2, 3, 4}));
  ASSERT_EQ(y.shape(), Shape({4}));
  EXPECT_EQ(y.dtype(), DType::I64);
  for (std::int64_t b = 0; b < 4; ++b) {
    EXPECT_EQ(y.at<std::int64_t>({b}), idx[static_cast<std::size_t>(b)] % 3);
    for (std::int64_t k = 0; k < 24; ++k)
      EXPECT_EQ(x.data<float>()[b * 24 + k],
                d.images.data<float>()[idx[static_cast<std::size_t>(b)] * 24 + k]);
  }
  EXPECT_EQ(gather(d, std::vector<std::int64_t>{}).first.shape(), Shape({0, 2, 3, 4}));
  const std::vector<std::int64_t> past_end = {1, 7}, negative = {-1};
  expect_error<InvalidArgument>([&] { gather(d, past_end); },
                                {"gather", "indices[1] = 7", "[0, 7)"});
  expect_error<InvalidArgument>([&] { gather(d, negative); }, {"indices[0] = -1"});
  Dataset bad = d;
  bad.labels = Tensor::zeros({6}, DType::I64);
  expect_error<InvalidArgument>([&] { gather(bad, std::vector<std::int64_t>{0}); },
                                {"gather", "labels", "[7]", "[6]"});
}

/// Input pixel (b, c, y, x) of the zero-padded batch, the way RandomCrop(padding) sees it.
float padded(const Tensor& in, std::int64_t b, std::int64_t c, std::int64_t y, std::int64_t x) {
  const std::int64_t h = in.size(2), w = in.size(3);
  return y < 0 || y >= h || x < 0 || x >= w ? 0.0f : in.at<float>({b, c, y, x});
}

/// Whether image b of `out` is the window at (dy, dx) of `in` padded by `pad`, mirrored if `flip`.
bool is_window(const Tensor& out, const Tensor& in, std::int64_t b, std::int64_t pad,
               std::int64_t dy, std::int64_t dx, bool flip) {
  const std::int64_t h = in.size(2), w = in.size(3);
  for (std::int64_t c = 0; c < in.size(1); ++c)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        if (out.at<float>({b, c, y, x}) !=
            padded(in, b, c, y + dy - pad, (flip ? w - 1 - x : x) + dx - pad))
          return false;
  return true;
}

TEST(Datasets, AugmentWithoutOptionsCopies) {
  const Tensor x = Tensor::uniform({4, 3, 8, 8}, 0.1, 1, 3);
  const Tensor y = augment(x, {}, 7);
  EXPECT_NE(y.raw_data(), x.raw_data());
  EXPECT_TRUE(allclose(y, x, 0, 0));
}

TEST(Datasets, AugmentFlipsExactlyTheImagesItDraws) {
  const Tensor x = Tensor::uniform({64, 2, 5, 6}, 0.1, 1, 4);
  const AugmentOptions o{.horizontal_flip = true};
  const Tensor y = augment(x, o, 11);
  int flipped = 0;
  for (std::int64_t b = 0; b < 64; ++b) {
    const bool flip = augment_draw(b, o, 11).flip;
    flipped += flip ? 1 : 0;
    EXPECT_TRUE(is_window(y, x, b, 0, 0, 0, flip)) << "image " << b << " flip " << flip;
    EXPECT_FALSE(is_window(y, x, b, 0, 0, 0, !flip)) << "image " << b << " flip " << flip;
  }
  EXPECT_GT(flipped, 16);  // about half of 64
  EXPECT_LT(flipped, 48);
  EXPECT_TRUE(allclose(augment(x, o, 11), y, 0, 0));
  EXPECT_FALSE(allclose(augment(x, o, 12), y, 0, 0));
}

TEST(Datasets, AugmentCropIsAShiftedWindowOfThePaddedImage) {
  const Tensor x = Tensor::uniform({40, 3, 9, 7}, 0.1, 1, 5);  // > 0: padding zeros stand out
  for (bool flip : {false, true}) {
    const AugmentOptions o{.crop_padding = 3, .horizontal_flip = flip};
    const Tensor y = augment(x, o, 21);
    ASSERT_EQ(y.shape(), x.shape());
    std::set<std::pair<std::int64_t, std::int64_t>> offsets;
    for (std::int64_t b = 0; b < 40; ++b) {
      const AugmentDraw d = augment_draw(b, o, 21);
      ASSERT_TRUE(d.dy >= 0 && d.dy <= 6 && d.dx >= 0 && d.dx <= 6) << d.dy << "," << d.dx;
      EXPECT_TRUE(is_window(y, x, b, 3, d.dy, d.dx, d.flip)) << "image " << b;
      offsets.emplace(d.dy, d.dx);
      // No other window matches: the draw is the only explanation of the output.
      for (std::int64_t dy = 0; dy <= 6; ++dy)
        for (std::int64_t dx = 0; dx <= 6; ++dx) {
          if (dy == d.dy && dx == d.dx) continue;
          EXPECT_FALSE(is_window(y, x, b, 3, dy, dx, d.flip)) << "image " << b;
        }
    }
    EXPECT_GT(offsets.size(), 20u);  // of 49 possible
  }
}

TEST(Datasets, AugmentRefusesBadArguments) {
  const Tensor rank3 = Tensor::zeros({3, 8, 8}), x = Tensor::zeros({1, 1, 8, 6});
  expect_error<InvalidArgument>([&] { augment(rank3, {}, 0); },
                                {"augment", "(B, C, H, W)", "[3, 8, 8]"});
  expect_error<InvalidArgument>([&] { augment(x, {.crop_padding = 9}, 0); },
                                {"crop_padding", "[0, 8]", "8x6", "got 9"});
  expect_error<InvalidArgument>([&] { augment(x, {.crop_padding = -1}, 0); }, {"got -1"});
}

TEST(Datasets, ChannelStatsAndNormalize) {
  Dataset d{Tensor::empty({2, 2, 1, 2}), Tensor::zeros({2}, DType::I64), {"a"}};
  // Channel 0 holds 1, 2, 3, 4; channel 1 holds 10, 10, 30, 30.
  const std::vector<float> v = {1, 2, 10, 10, 3, 4, 30, 30};
  std::copy(v.begin(), v.end(), d.images.data<float>());
  const auto [mean, sd] = channel_stats(d);
  EXPECT_NEAR(mean[0], 2.5, 1e-12);
  EXPECT_NEAR(sd[0], std::sqrt(1.25), 1e-12);
  EXPECT_NEAR(mean[1], 20, 1e-12);
  EXPECT_NEAR(sd[1], 10, 1e-12);
  normalize(d, mean, sd);
  const auto [m2, s2] = channel_stats(d);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(m2[static_cast<std::size_t>(c)], 0, 1e-6);
    EXPECT_NEAR(s2[static_cast<std::size_t>(c)], 1, 1e-6);
  }
  EXPECT_FLOAT_EQ(d.images.at<float>({1, 1, 0, 0}), 1.0f);  // (30 - 20) / 10
  expect_error<InvalidArgument>([&] { normalize(d, {0}, {1}); },
                                {"normalize", "one value per channel (2)", "got 1 and 1"});
  const std::vector<double> zeros = {0, 0}, bad_std = {1, 0};
  expect_error<InvalidArgument>([&] { normalize(d, zeros, bad_std); },
                                {"channel 1", "std > 0", "std 0"});
  Dataset empty{Tensor::empty({0, 3, 4, 4}), Tensor::empty({0}, DType::I64), {}};
  expect_error<InvalidArgument>([&] { channel_stats(empty); }, {"channel_stats", "empty"});
}

}  // namespace
}  // namespace convkit::io
