// The embedded shapes data set: determinism, layout, balance, and that trivial rules fail on it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "convkit/io/datasets.hpp"
#include "test_util.hpp"

namespace convkit::io {
namespace {

using test::expect_error;

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<std::size_t>(a.nbytes())) == 0;
}

/// The default split (6000 train, 1000 test, 32x32, seed 0), made once for the tests here.
const DatasetSplit& default_split() {
  static const DatasetSplit split = make_shapes();
  return split;
}

/// Accuracy on `test` of a nearest-centroid classifier on the 3-vector feature(data, i),
/// fitted on `train`: what a model learns from that feature alone.
using Feature = std::function<std::array<double, 3>(const Dataset&, std::int64_t)>;
double nearest_centroid_accuracy(const Dataset& train, const Dataset& test, const Feature& f) {
  std::vector<std::array<double, 3>> centroid(10, {0, 0, 0});
  std::vector<double> count(10, 0);
  const std::int64_t* y = train.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < train.size(); ++i) {
    const auto v = f(train, i);
    for (int k = 0; k < 3; ++k) centroid[static_cast<std::size_t>(y[i])][k] += v[k];
    count[static_cast<std::size_t>(y[i])] += 1;
  }
  for (std::size_t c = 0; c < 10; ++c)
    for (auto& v : centroid[c]) v /= count[c];
  std::int64_t right = 0;
  const std::int64_t* yt = test.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < test.size(); ++i) {
    const auto v = f(test, i);
    std::int64_t best = 0;
    double best_d = 1e300;
    for (std::int64_t c = 0; c < 10; ++c) {
      double d = 0;
      for (int k = 0; k < 3; ++k) {
        const double e = v[k] - centroid[static_cast<std::size_t>(c)][k];
        d += e * e;
      }
      if (d < best_d) best_d = d, best = c;
    }
    right += best == yt[i] ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(test.size());
}

std::array<double, 3> mean_rgb(const Dataset& d, std::int64_t i) {
  const std::int64_t s = d.images.size(2), plane = s * s;
  const float* x = d.images.data<float>() + i * 3 * plane;
  std::array<double, 3> m{0, 0, 0};
  for (int c = 0; c < 3; ++c) {
    for (std::int64_t k = 0; k < plane; ++k) m[c] += x[c * plane + k];
    m[c] /= static_cast<double>(plane);
  }
  return m;
}

std::array<double, 3> centre_rgb(const Dataset& d, std::int64_t i) {
  const std::int64_t s = d.images.size(2), plane = s * s;
  const float* x = d.images.data<float>() + i * 3 * plane + (s / 2) * s + s / 2;
  return {x[0], x[plane], x[2 * plane]};
}

TEST(ShapesDataset, ShapesDtypesAndValueRange) {
  const DatasetSplit s = make_shapes({.train = 120, .test = 30, .image_size = 40, .seed = 3});
  EXPECT_EQ(s.train.images.shape(), Shape({120, 3, 40, 40}));
  EXPECT_EQ(s.test.images.shape(), Shape({30, 3, 40, 40}));
  EXPECT_EQ(s.train.labels.shape(), Shape({120}));
  EXPECT_EQ(s.train.images.dtype(), DType::F32);
  EXPECT_EQ(s.train.labels.dtype(), DType::I64);
  EXPECT_TRUE(s.train.images.is_contiguous());
  EXPECT_EQ(s.train.size(), 120);
  EXPECT_EQ(s.train.num_classes(), 10);
  EXPECT_EQ(s.train.class_names, shapes_class_names());
  EXPECT_EQ(s.test.class_names, shapes_class_names());
  for (const Dataset* d : {&s.train, &s.test}) {
    const float* x = d->images.data<float>();
    const std::int64_t outside =
        std::count_if(x, x + d->images.numel(), [](float v) { return !(v >= 0.0f && v <= 1.0f); });
    EXPECT_EQ(outside, 0) << "values outside [0, 1]";
    const std::int64_t* y = d->labels.data<std::int64_t>();
    for (std::int64_t i = 0; i < d->size(); ++i) ASSERT_TRUE(y[i] >= 0 && y[i] < 10) << y[i];
  }
}

TEST(ShapesDataset, ClassNames) {
  const std::vector<std::string> expected = {"disc",         "ring", "square",  "square_frame",
                                             "triangle",     "plus", "x_cross", "stripes",
                                             "checkerboard", "star"};
  EXPECT_EQ(shapes_class_names(), expected);
}

TEST(ShapesDataset, DeterministicForASeed) {
  const ShapesOptions o{.train = 50, .test = 20, .seed = 11};
  const DatasetSplit a = make_shapes(o), b = make_shapes(o);
  EXPECT_TRUE(same_bytes(a.train.images, b.train.images));
  EXPECT_TRUE(same_bytes(a.train.labels, b.train.labels));
  EXPECT_TRUE(same_bytes(a.test.images, b.test.images));
  EXPECT_TRUE(same_bytes(a.test.labels, b.test.labels));
  const DatasetSplit c = make_shapes({.train = 50, .test = 20, .seed = 12});
  EXPECT_FALSE(same_bytes(a.train.images, c.train.images));
  EXPECT_FALSE(same_bytes(a.test.images, c.test.images));
  EXPECT_FALSE(same_bytes(a.train.labels, c.train.labels));
}

TEST(ShapesDataset, LabelsAreBalancedInEachSplit) {
  const DatasetSplit s = make_shapes({.train = 1003, .test = 97, .image_size = 16, .seed = 2});
  for (const Dataset* d : {&s.train, &s.test}) {
    std::vector<std::int64_t> count(10, 0);
    const std::int64_t* y = d->labels.data<std::int64_t>();
    for (std::int64_t i = 0; i < d->size(); ++i) ++count[static_cast<std::size_t>(y[i])];
    for (std::int64_t c = 0; c < 10; ++c) {
      // Class c gets the indices i < N with i % 10 == c: ceil((N - c) / 10) of them.
      EXPECT_EQ(count[static_cast<std::size_t>(c)], (d->size() - c + 9) / 10) << "class " << c;
    }
    // Shuffled, not in blocks or in i % 10 order.
    std::int64_t in_order = 0;
    for (std::int64_t i = 0; i < d->size(); ++i) in_order += y[i] == i % 10 ? 1 : 0;
    EXPECT_LT(in_order, d->size() / 4);
  }
}

TEST(ShapesDataset, TrainAndTestDiffer) {
  const DatasetSplit& s = default_split();
  const auto bytes = [](const Dataset& d, std::int64_t i) {
    const auto item = static_cast<std::size_t>(d.images.numel() / d.size()) * sizeof(float);
    return std::string_view(static_cast<const char*>(d.images.raw_data()) + i * item, item);
  };
  std::set<std::size_t> train_images;  // hashes of the training images
  for (std::int64_t i = 0; i < s.train.size(); ++i)
    train_images.insert(std::hash<std::string_view>{}(bytes(s.train, i)));
  EXPECT_EQ(static_cast<std::int64_t>(train_images.size()), s.train.size()) << "repeated images";
  for (std::int64_t i = 0; i < s.test.size(); ++i)
    EXPECT_EQ(train_images.count(std::hash<std::string_view>{}(bytes(s.test, i))), 0u)
        << "test image " << i << " is also in the training split";
}

TEST(ShapesDataset, MeanColourDoesNotRevealTheClass) {
  const DatasetSplit& s = default_split();
  const double acc = nearest_centroid_accuracy(s.train, s.test, mean_rgb);
  std::printf("nearest centroid on mean RGB: test accuracy %.3f (chance 0.1)\n", acc);
  EXPECT_LT(acc, 0.3);
}

TEST(ShapesDataset, CentrePixelDoesNotRevealTheClass) {
  const DatasetSplit& s = default_split();
  const double acc = nearest_centroid_accuracy(s.train, s.test, centre_rgb);
  std::printf("nearest centroid on centre pixel RGB: test accuracy %.3f (chance 0.1)\n", acc);
  EXPECT_LT(acc, 0.3);
}

TEST(ShapesDataset, RejectsBadOptions) {
  expect_error<InvalidArgument>([] { make_shapes({.train = 0}); },
                                {"make_shapes", "train and test", "got 0 and 1000"});
  expect_error<InvalidArgument>([] { make_shapes({.test = -3}); }, {"got 6000 and -3"});
  expect_error<InvalidArgument>([] { make_shapes({.image_size = 8}); },
                                {"image_size", "[16, 4096]", "got 8"});
}

}  // namespace
}  // namespace convkit::io
