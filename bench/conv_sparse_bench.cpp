// Google Benchmark of the sparse forward (conv_forward_sparse) against the dense dispatch
// (conv_forward, GEMM-backed) on the same layers, at weight sparsities 0-98%, 1 and 2 threads.
//
//   convkit_sparse_bench [benchmark flags] [--shapes=a.txt,b.txt]
//   names: sparse/<layer>/<nchw|nhwc>/t<threads>/s<percent>   dense/<layer>/<nchw|nhwc>/t<threads>
//
// Both sides run the public entry points (output allocation included, as a layer would).
// The dense time does not depend on the sparsity (GEMM multiplies the zeros too), so it is
// measured once per layer, layout and thread count. bench/conv_sparse_table.py turns the
// JSON output into bench/results/sparse_conv.md with the crossover sparsity of each layer.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "bench_util.hpp"
#include "convkit/ops/conv.hpp"
#include "convkit/ops/conv_sparse.hpp"

namespace convkit::bench {
namespace {

constexpr int kSparsityPercent[] = {0, 50, 70, 80, 90, 95, 98};

// Uniform weights with exactly round(percent% of them) zeroed at random positions.
Tensor pruned_weights(const ConvProblem& p, int percent) {
  const Tensor w = Tensor::uniform(p.wei_shape(), -1, 1, 2);
  const std::int64_t n = w.numel();
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  float* data = w.data<float>();
  const std::int64_t zeros = (n * percent + 50) / 100;
  for (std::int64_t i = 0; i < zeros; ++i) data[order[static_cast<std::size_t>(i)]] = 0.0f;
  return w;
}

void run(benchmark::State& state, const ConvProblem& p, int threads, int percent) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  const Tensor src = Tensor::uniform(p.src_shape(), -1, 1, 1, DType::F32, p.format);
  const Tensor wei = pruned_weights(p, percent < 0 ? 0 : percent);
  const SparseConvWeights sw = percent < 0 ? SparseConvWeights{} : pack_sparse_weights(p, wei);
  const auto once = [&] {
    return percent < 0 ? conv_forward(p, src, wei) : conv_forward_sparse(p, src, sw);
  };
  benchmark::DoNotOptimize(once());  // warm-up (OpenBLAS and OpenMP thread pools)
  for (auto _ : state) benchmark::DoNotOptimize(once());
  omp_set_num_threads(saved);
  const double n = static_cast<double>(state.iterations());
  // Useful work: the multiply-adds of the nonzero weights (all of them for the dense path).
  const double useful = percent < 0 ? 1.0 : 1.0 - sw.sparsity();
  state.counters["GFLOP"] = benchmark::Counter(2.0 * static_cast<double>(p.macs()) * useful * n / 1e9,
                                               benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
  state.counters["sparsity"] = percent < 0 ? 0.0 : sw.sparsity();
  state.SetLabel(percent < 0 ? "conv_forward" : "conv_forward_sparse");
}

void register_all(const std::vector<std::string>& files) {
  for (const std::string& file : files)
    for (const ShapeLine& line : read_shape_file(file)) {
      if (!is_direct_zero_padded(line.problem)) continue;
      const std::string layer = line.name.empty() ? line.problem.str() : line.name;
      for (const MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast})
        for (const int threads : {1, 2}) {
          const ConvProblem p = with_format(line.problem, f);
          const std::string stem = layer + "/" + format_name(f) + "/t" + std::to_string(threads);
          const auto add = [&](const std::string& name, int percent) {
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run(s, p, threads, percent); })
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
          };
          add("dense/" + stem, -1);
          for (const int percent : kSparsityPercent)
            add("sparse/" + stem + "/s" + std::to_string(percent), percent);
        }
    }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace
}  // namespace convkit::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string shapes = CONVKIT_SPARSE_BENCH_SHAPES;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--shapes=")) {
      shapes = arg.substr(9);
    } else {
      std::cerr << "convkit_sparse_bench: unknown argument '" << arg
                << "' (expected --shapes=a.txt,b.txt or benchmark flags)\n";
      return 2;
    }
  }
  try {
    convkit::bench::register_all(convkit::bench::split(shapes, ','));
  } catch (const convkit::Error& e) {
    std::cerr << "convkit_sparse_bench: " << e.what() << "\n";
    return 2;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
