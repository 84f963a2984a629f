// Tensor: layouts, views, fills, element access, allclose and overflow-checked sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "convkit/core/tensor.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using test::expect_error;

TEST(Tensor, ContiguousAndChannelsLastStrides) {
  const Tensor a = Tensor::zeros({2, 3, 4, 5});
  EXPECT_EQ(a.strides(), (Shape{60, 20, 5, 1}));
  EXPECT_TRUE(a.is_contiguous());
  const Tensor b = Tensor::zeros({2, 3, 4, 5}, DType::F32, MemoryFormat::ChannelsLast);
  EXPECT_EQ(b.strides(), (Shape{60, 1, 15, 3}));  // N H W C
  EXPECT_EQ(b.memory_format(), MemoryFormat::ChannelsLast);
  const Tensor c = Tensor::zeros({2, 3, 4, 5, 6}, DType::F64, MemoryFormat::ChannelsLast);
  EXPECT_EQ(c.strides(), (Shape{360, 1, 90, 18, 3}));  // N D H W C
  expect_error<InvalidArgument>([] { Tensor::zeros({2, 3}, DType::F32, MemoryFormat::ChannelsLast); },
                                {"channels-last", "[2, 3]"});
}

TEST(Tensor, StorageIs64ByteAligned) {
  for (std::int64_t n : {1, 3, 17, 1000}) {
    const Tensor t = Tensor::zeros({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64, 0u);
  }
}

TEST(Tensor, LayoutConversionKeepsLogicalValues) {
  const Tensor a = Tensor::uniform({2, 3, 4, 5}, -1, 1, 7, DType::F64);
  const Tensor b = a.to(MemoryFormat::ChannelsLast);
  EXPECT_EQ(b.memory_format(), MemoryFormat::ChannelsLast);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_EQ(a.get({1, 2, 3, 4}), b.at<double>({1, 2, 3, 4}));
  const Tensor c = b.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector(), a.to_vector());
  EXPECT_EQ(a.to(MemoryFormat::Contiguous).storage(), a.storage());  // no copy when already so
}

TEST(Tensor, SeededFillsAreDeterministicAndInRange) {
  const Tensor a = Tensor::uniform({1000}, -2, 3, 42);
  const Tensor b = Tensor::uniform({1000}, -2, 3, 42);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), Tensor::uniform({1000}, -2, 3, 43).to_vector());
  double lo = 1e9, hi = -1e9, mean = 0;
  for (double v : a.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    mean += v / 1000;
  }
  EXPECT_GE(lo, -2);
  EXPECT_LT(hi, 3);
  EXPECT_NEAR(mean, 0.5, 0.2);
  // Values are drawn in logical order, so the layout does not change them.
  EXPECT_EQ(Tensor::normal({2, 3, 4, 4}, 0, 1, 5).to_vector(),
            Tensor::normal({2, 3, 4, 4}, 0, 1, 5, DType::F32, MemoryFormat::ChannelsLast).to_vector());
  double m = 0, v2 = 0;
  const auto n = Tensor::normal({20000}, 1.5, 2.0, 9, DType::F64).to_vector();
  for (double v : n) m += v / 20000;
  for (double v : n) v2 += (v - m) * (v - m) / 20000;
  EXPECT_NEAR(m, 1.5, 0.05);
  EXPECT_NEAR(std::sqrt(v2), 2.0, 0.05);
}

TEST(Tensor, FullOnesZeros) {
  for (double v : Tensor::full({3, 2}, 2.5, DType::F64).to_vector()) EXPECT_EQ(v, 2.5);
  for (double v : Tensor::ones({4}, DType::U8).to_vector()) EXPECT_EQ(v, 1);
  for (double v : Tensor::zeros({2, 2}, DType::I64).to_vector()) EXPECT_EQ(v, 0);
  expect_error<InvalidArgument>([] { Tensor::full({2}, 300, DType::U8); }, {"300", "U8"});
}

TEST(Tensor, ReshapeIsAViewWhenContiguous) {
  const Tensor a = Tensor::from_values({2, 3}, {0, 1, 2, 3, 4, 5});
  const Tensor b = a.reshape({3, -1});
  EXPECT_EQ(b.shape(), (Shape{3, 2}));
  EXPECT_EQ(b.storage(), a.storage());
  b.set({2, 1}, 50);
  EXPECT_EQ(a.get({1, 2}), 50);
  expect_error<InvalidArgument>([&] { a.reshape({4, 2}); }, {"[2, 3] -> [4, 2]", "6 and 8"});
  // A channels-last tensor reshapes by logical order (through a copy).
  const Tensor cl = Tensor::uniform({1, 2, 2, 2}, 0, 1, 3, DType::F32, MemoryFormat::ChannelsLast);
  EXPECT_EQ(cl.reshape({8}).to_vector(), cl.to_vector());
}

TEST(Tensor, NarrowBatchSharesStorage) {
  const Tensor a = Tensor::uniform({5, 2, 3, 3}, 0, 1, 1);
  const Tensor b = a.narrow(0, 2, 2);
  EXPECT_EQ(b.shape(), (Shape{2, 2, 3, 3}));
  EXPECT_EQ(b.storage(), a.storage());
  EXPECT_EQ(b.get({0, 1, 2, 2}), a.get({2, 1, 2, 2}));
  b.set({1, 0, 0, 0}, -7);
  EXPECT_EQ(a.get({3, 0, 0, 0}), -7);
  expect_error<InvalidArgument>([&] { a.narrow(0, 4, 2); }, {"[4, 4 + 2)", "size 5"});
  // Narrowing a non-batch dimension gives a strided view that copies correctly.
  const Tensor c = a.narrow(3, 1, 2);
  EXPECT_FALSE(c.is_contiguous());
  EXPECT_EQ(c.contiguous().get({4, 1, 2, 1}), a.get({4, 1, 2, 2}));
}

TEST(Tensor, ElementAccessChecksIndexAndType) {
  const Tensor a = Tensor::zeros({2, 3}, DType::F64);
  a.at<double>({1, 2}) = 4;
  EXPECT_EQ(a.get({1, 2}), 4);
  expect_error<InvalidArgument>([&] { a.at<float>({0, 0}); }, {"holds F64", "F32"});
  expect_error<InvalidArgument>([&] { a.get({2, 0}); }, {"index 2 out of range", "[2, 3]"});
  expect_error<InvalidArgument>([&] { a.get({0}); }, {"1 values for a rank-2"});
}

TEST(Tensor, AllcloseReportsWorstElement) {
  const Tensor a = Tensor::from_values({2, 2}, {1, 2, 3, 4}, DType::F64);
  Tensor b = a.clone();
  EXPECT_TRUE(allclose(a, b));
  b.set({1, 0}, 3.5);
  b.set({0, 1}, 2.01);
  const CloseResult r = allclose(a, b, 1e-5, 1e-3);
  EXPECT_FALSE(r);
  EXPECT_EQ(r.worst_index, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(r.a, 3);
  EXPECT_EQ(r.b, 3.5);
  EXPECT_NE(r.message.find("2 of 4 elements"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("[1, 0]"), std::string::npos) << r.message;
  const Tensor nan = Tensor::full({1}, std::numeric_limits<double>::quiet_NaN(), DType::F64);
  EXPECT_FALSE(allclose(nan, nan));
  EXPECT_TRUE(allclose(nan, nan, 0, 0, /*equal_nan=*/true));
  const Tensor inf = Tensor::full({1}, std::numeric_limits<double>::infinity(), DType::F64);
  EXPECT_TRUE(allclose(inf, inf));
  expect_error<InvalidArgument>([&] { allclose(a, Tensor::zeros({4})); }, {"[2, 2] and [4] differ"});
}

TEST(Tensor, DtypeConversion) {
  const Tensor a = Tensor::from_values({3}, {1.5, -2, 7}, DType::F64);
  const Tensor f = a.to(DType::F32);
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.to_vector(), a.to_vector());
  expect_error<InvalidArgument>([&] { a.to(DType::U8); }, {"-2", "U8"});
}

TEST(Tensor, OverflowingShapesAreRefusedBeforeAllocation) {
  constexpr std::int64_t big = std::int64_t{1} << 32;
  expect_error<InvalidArgument>([] { Tensor::empty({big, big, big}); },
                                {"element count that overflows int64"});
  // 2^62 elements count fine, but their bytes do not.
  expect_error<InvalidArgument>([] { Tensor::empty({std::int64_t{1} << 31, std::int64_t{1} << 31}); },
                                {"more bytes than int64 can count"});
  expect_error<InvalidArgument>([] { Tensor::empty({std::int64_t{1} << 62}, DType::U8); },
                                {"more than can be addressed"});
  // 1879048192 floats (7 GiB) is a legal size; zero pages cost nothing until written.
  EXPECT_EQ(Tensor::zeros({1879048192}).nbytes(), std::int64_t{7516192768});
}

TEST(Tensor, EmptyTensors) {
  const Tensor a = Tensor::zeros({0, 3, 4, 4});
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.to_vector().empty());
  EXPECT_EQ(a.to(MemoryFormat::ChannelsLast).shape(), a.shape());
  EXPECT_TRUE(allclose(a, a.clone()));
}

TEST(Tensor, FromStorageRefusesViewsOutsideStorage) {
  auto s = std::make_shared<Storage>(40);  // 10 floats
  EXPECT_NO_THROW(Tensor::from_storage(s, DType::F32, {2, 5}, {5, 1}, 0));
  expect_error<InvalidArgument>([&] { Tensor::from_storage(s, DType::F32, {2, 5}, {5, 1}, 1); },
                                {"reaches element 10", "holds 10"});
}

}  // namespace
}  // namespace convkit
