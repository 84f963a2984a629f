// The public sparse forward: agrees with the dense conv_forward over random problems, gives
// the same bits for any thread count, and refuses problems, weights and tensors not its own.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "convkit/ops/conv_sparse.hpp"
#include "ops/conv_random.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

// Zeroes each weight with probability `sparsity` (a random pruning mask).
Tensor prune(const Tensor& w, double sparsity, std::uint64_t seed) {
  Tensor out = w.clone();
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution zero(sparsity);
  for (std::int64_t i = 0; i < out.numel(); ++i)
    if (zero(rng)) out.set_flat(i, 0.0);
  return out;
}

bool supported(const ConvProblem& p) {
  return !p.transposed && p.padding_mode == PaddingMode::Zeros && p.dtype == DType::F32;
}

TEST(ConvSparse, RandomProblemsMatchTheDenseReference) {
  std::mt19937_64 rng(5);
  const int count = test::sweep_size(120, 5000);
  int ran = 0;
  force_conv_kernel("ref");
  for (int i = 0; i < count; ++i) {
    const test::RandomConv rc = test::random_conv(rng, DType::F32, 4000);
    const ConvProblem& p = rc.p;
    const double sparsity = std::array{0.0, 0.5, 0.9, 0.99, 1.0}[static_cast<std::size_t>(i % 5)];
    const Tensor w = prune(test::random_wei(p, 2 * i + 1), sparsity, i);
    if (!supported(p)) {
      test::expect_error<InvalidArgument>([&] { pack_sparse_weights(p, w); },
                                          {"pack_sparse_weights", "problem"});
      continue;
    }
    const Tensor x = test::random_src(p, 2 * i), b = test::random_bias(p, 3 * i);
    const SparseConvWeights sw = pack_sparse_weights(p, w);
    const Tensor got = conv_forward_sparse(p, x, sw, b);
    const Tensor want = conv_forward(p, x, w, b);
    EXPECT_EQ(got.memory_format(), want.memory_format()) << p.str();
    const CloseResult r = allclose(got, want, 1e-5, 1e-5);
    EXPECT_TRUE(r) << p.str() << " sparsity " << sparsity << ": " << r.message;
    ++ran;
  }
  force_conv_kernel("");
  EXPECT_GT(ran, count / 2);
  RecordProperty("supported_problems", ran);
}

TEST(ConvSparse, SparsityCountsTheZeros) {
  const ConvProblem p = ConvProblem::make(Shape{1, 4, 5, 5}, Shape{6, 4, 3, 3}, std::nullopt, {});
  const Tensor zeros = Tensor::zeros(p.wei_shape());
  EXPECT_EQ(pack_sparse_weights(p, zeros).nnz(), 0);
  EXPECT_DOUBLE_EQ(pack_sparse_weights(p, zeros).sparsity(), 1.0);
  const Tensor ones = Tensor::ones(p.wei_shape());
  EXPECT_DOUBLE_EQ(pack_sparse_weights(p, ones).sparsity(), 0.0);
  Tensor some = Tensor::zeros(p.wei_shape());
  for (std::int64_t i = 0; i < 54; ++i) some.set_flat(i * 4, 1.5);
  const SparseConvWeights sw = pack_sparse_weights(p, some);
  EXPECT_EQ(sw.nnz(), 54);
  EXPECT_EQ(sw.dense_size(), 216);
  EXPECT_DOUBLE_EQ(sw.sparsity(), 0.75);
  EXPECT_EQ(sw.row_ptr().size(), 7u);
  // All-zero weights give the bias alone.
  const Tensor x = Tensor::uniform(p.src_shape(), -1, 1, 9);
  const ConvProblem pb = ConvProblem::make(Shape{1, 4, 5, 5}, Shape{6, 4, 3, 3}, Shape{6}, {});
  const Tensor b = Tensor::uniform(Shape{6}, -1, 1, 10);
  const Tensor y = conv_forward_sparse(pb, x, pack_sparse_weights(pb, zeros), b);
  for (std::int64_t c = 0; c < 6; ++c) EXPECT_EQ(y.get({0, c, 1, 2}), b.get({c}));
}

// A pointwise and a 3x3 layer in both layouts, batch 1 and 3: 1, 2 and 3 threads, same bits.
TEST(ConvSparse, BitsDoNotDependOnTheThreadCount) {
  for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast})
    for (const std::int64_t mb : {1, 3})
      for (const std::int64_t k : {1, 3}) {
        const ConvProblem p = ConvProblem::make(Shape{mb, 24, 19, 23}, Shape{40, 24, k, k}, Shape{40},
                                                {.padding = k / 2}, false, DType::F32, f);
        const Tensor x = test::random_src(p, 1), b = test::random_bias(p, 2);
        const SparseConvWeights sw = pack_sparse_weights(p, prune(test::random_wei(p, 3), 0.8, 4));
        const int saved = omp_get_max_threads();
        std::vector<Tensor> ys;
        for (const int t : {1, 2, 3}) {
          omp_set_num_threads(t);
          ys.push_back(conv_forward_sparse(p, x, sw, b));
        }
        omp_set_num_threads(saved);
        for (std::size_t i = 1; i < ys.size(); ++i)
          EXPECT_EQ(std::memcmp(ys[0].data<float>(), ys[i].data<float>(),
                                static_cast<std::size_t>(ys[0].nbytes())), 0)
              << p.str() << " threads " << i + 1;
      }
}

TEST(ConvSparse, SrcInAnotherLayoutIsLaidOutOnce) {
  const ConvProblem p = ConvProblem::make(Shape{2, 5, 9, 7}, Shape{6, 5, 3, 3}, std::nullopt,
                                          {.stride = {2}, .padding = 1});
  const Tensor x = test::random_src(p, 1).to(MemoryFormat::ChannelsLast);
  const Tensor w = prune(test::random_wei(p, 2), 0.5, 3);
  force_conv_kernel("ref");
  const Tensor want = conv_forward(p, x, w);
  force_conv_kernel("");
  const CloseResult r = allclose(conv_forward_sparse(p, x, pack_sparse_weights(p, w)), want, 1e-5, 1e-5);
  EXPECT_TRUE(r) << r.message;
}

TEST(ConvSparse, RefusesWhatIsNotItsOwn) {
  using test::expect_error;
  const ConvProblem p = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{8, 4, 3, 3}, std::nullopt, {.padding = 1});
  const Tensor w = Tensor::ones(p.wei_shape()), x = Tensor::ones(p.src_shape());
  const SparseConvWeights sw = pack_sparse_weights(p, w);
  // Packed for another problem: other size, other layout, other stride.
  const ConvProblem wide = ConvProblem::make(Shape{1, 4, 6, 8}, Shape{8, 4, 3, 3}, std::nullopt, {.padding = 1});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(wide, Tensor::ones(wide.src_shape()), sw); },
                                {"conv_forward_sparse", "packed for problem", p.str(), wide.str()});
  const ConvProblem nhwc = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{8, 4, 3, 3}, std::nullopt,
                                             {.padding = 1}, false, DType::F32, MemoryFormat::ChannelsLast);
  expect_error<InvalidArgument>([&] { conv_forward_sparse(nhwc, x, sw); },
                                {"packed for problem", "contiguous", "channels-last"});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(p, x, SparseConvWeights{}); },
                                {"conv_forward_sparse", "empty", "pack_sparse_weights"});
  // Tensors that do not fit the problem.
  expect_error<InvalidArgument>([&] { conv_forward_sparse(p, Tensor::ones(Shape{1, 4, 6, 7}), sw); },
                                {"src has shape [1, 4, 6, 7]", "[1, 4, 6, 6]"});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(p, Tensor{}, sw); }, {"src is undefined"});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(p, x.to(DType::F64), sw); }, {"src has dtype F64", "F32"});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(p, x, sw, Tensor::ones(Shape{8})); },
                                {"a bias was given"});
  const ConvProblem pb = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{8, 4, 3, 3}, Shape{8}, {.padding = 1});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(pb, x, sw); }, {"bias is undefined"});
  expect_error<InvalidArgument>([&] { conv_forward_sparse(pb, x, sw, Tensor::ones(Shape{7})); },
                                {"bias has dtype F32 and shape [7]", "shape [8]"});
  // Problems and weights the sparse path does not take.
  expect_error<InvalidArgument>([&] { pack_sparse_weights(p, Tensor::ones(Shape{8, 4, 3, 2})); },
                                {"pack_sparse_weights", "weight has shape [8, 4, 3, 2]", "[8, 4, 3, 3]"});
  expect_error<InvalidArgument>([&] { pack_sparse_weights(p, w.to(DType::F64)); }, {"weight has dtype F64"});
  expect_error<InvalidArgument>([&] { pack_sparse_weights(p, Tensor{}); }, {"weight is undefined"});
  const ConvProblem reflect = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{8, 4, 3, 3}, std::nullopt,
                                                {.padding = 1, .padding_mode = PaddingMode::Reflect});
  expect_error<InvalidArgument>([&] { pack_sparse_weights(reflect, w); }, {"pads with mode reflect", "zeros only"});
  const ConvProblem tr = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{4, 8, 3, 3}, std::nullopt, {}, true);
  expect_error<InvalidArgument>([&] { pack_sparse_weights(tr, Tensor::ones(tr.wei_shape())); }, {"is transposed"});
  const ConvProblem f64 = ConvProblem::make(Shape{1, 4, 6, 6}, Shape{8, 4, 3, 3}, std::nullopt, {}, false, DType::F64);
  expect_error<InvalidArgument>([&] { pack_sparse_weights(f64, Tensor::ones(f64.wei_shape(), DType::F64)); },
                                {"dtype F64", "float32 only"});
  // A hand-edited problem never reaches the kernel.
  ConvProblem edited = p;
  edited.out[0] = 9;
  expect_error<InvalidArgument>([&] { conv_forward_sparse(edited, x, sw); }, {""});
}

}  // namespace
}  // namespace convkit
